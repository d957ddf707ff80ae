"""Whether and how a recommendation reaches the endpoint: apply mode and traffic shifting."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

from ._validation import ValidationProblems, is_token


class ApplyMode(enum.Enum):
    """Whether recommendations are applied to the endpoint."""

    #: The apply rule exists: every ``apply`` recommendation is applied by the Apply workflow.
    AUTO = "auto"
    #: No apply rule: recommendations are published and notified only.
    RECOMMEND_ONLY = "recommend-only"
    #: Like ``AUTO``, but the Apply workflow waits for a person's approval (``approve`` /
    #: ``reject`` commands) before it takes the lock and changes anything; without an answer
    #: within ``approval_timeout`` the change is rejected and recorded.
    APPROVAL = "approval"


class TrafficShift(enum.Enum):
    """How a blue/green update moves traffic to the new fleet (``TrafficRoutingConfig.Type``)."""

    ALL_AT_ONCE = "ALL_AT_ONCE"
    CANARY = "CANARY"
    LINEAR = "LINEAR"


# The percent of capacity a shift may move, as the factory methods name it. SageMaker's
# TrafficRoutingConfig (botocore's model, CanarySize and LinearStepSize): a canary is at most 50 %
# of the variant's instances, a linear step 10-50 %.
_PERCENT_RANGES = {
    TrafficShift.CANARY: ("percent", 1, 50),
    TrafficShift.LINEAR: ("step_percent", 10, 50),
}


@dataclass(frozen=True, kw_only=True)
class Deployment:
    """How ``UpdateEndpoint`` rolls out the new config: blue/green with a traffic shift.

    Use :meth:`all_at_once`, :meth:`canary` or :meth:`linear`. ``rollback_alarms`` (CloudWatch
    alarms, up to 10: ``cloudwatch.IAlarm`` objects or alarm names) make SageMaker roll the
    update back when one goes off while it runs.
    """

    traffic: TrafficShift = TrafficShift.ALL_AT_ONCE
    #: Percent of capacity shifted first (canary: 1-50) or per step (linear: 10-50).
    step_percent: int | None = None
    #: Wait between traffic shifts (0 to 1 hour).
    wait: Duration | None = None
    #: How long the old fleet is kept after the shift (0 to 1 hour). Default: SageMaker's.
    termination_wait: Duration | None = None
    #: Alarms (``cloudwatch.IAlarm``, or names) that roll the update back. Default: none.
    rollback_alarms: Sequence[cloudwatch.IAlarm | str] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "rollback_alarms", tuple(self.rollback_alarms))
        problems = ValidationProblems("Deployment")
        if self.traffic in _PERCENT_RANGES:
            name, low, high = _PERCENT_RANGES[self.traffic]
            problems.check(
                isinstance(self.step_percent, int)
                and not isinstance(self.step_percent, bool)
                and low <= self.step_percent <= high,
                f"{name} must be a whole number from {low} to {high} for a "
                f"{self.traffic.value.lower()} deployment (SageMaker's TrafficRoutingConfig "
                f"limit), got {self.step_percent!r}",
            )
        for name, value in (("wait", self.wait), ("termination_wait", self.termination_wait)):
            if value is not None and not is_token(value.to_string()):
                problems.check(
                    0 <= value.to_seconds() <= 3600,
                    f"{name} must be 0 to 1 hour, got {value.to_human_string()}",
                )
        problems.check(
            len(self.rollback_alarms) <= 10,
            f"at most 10 rollback_alarms (SageMaker's limit), got {len(self.rollback_alarms)}",
        )
        problems.check(
            all(_alarm_name(alarm) is not None for alarm in self.rollback_alarms),
            "rollback_alarms must be CloudWatch alarms (cloudwatch.IAlarm) or alarm names, "
            f"got {list(self.rollback_alarms)!r}",
        )
        problems.keep_on(self)

    @classmethod
    def all_at_once(
        cls,
        *,
        rollback_alarms: Sequence[cloudwatch.IAlarm | str] = (),
        termination_wait: Duration | None = None,
    ) -> Deployment:
        """Shift all traffic at once (SageMaker's default)."""
        return cls(rollback_alarms=rollback_alarms, termination_wait=termination_wait)

    @classmethod
    def canary(
        cls,
        *,
        percent: int,
        wait: Duration,
        rollback_alarms: Sequence[cloudwatch.IAlarm | str] = (),
    ) -> Deployment:
        """Shift ``percent`` of capacity, wait ``wait`` (watching the alarms), then the rest."""
        return cls(
            traffic=TrafficShift.CANARY,
            step_percent=percent,
            wait=wait,
            rollback_alarms=rollback_alarms,
        )

    @classmethod
    def linear(
        cls,
        *,
        step_percent: int,
        wait: Duration,
        rollback_alarms: Sequence[cloudwatch.IAlarm | str] = (),
    ) -> Deployment:
        """Shift ``step_percent`` of capacity every ``wait`` until all traffic has moved."""
        return cls(
            traffic=TrafficShift.LINEAR,
            step_percent=step_percent,
            wait=wait,
            rollback_alarms=rollback_alarms,
        )

    def render(self) -> dict[str, Any] | None:
        """``UpdateEndpoint``'s ``DeploymentConfig``; None for SageMaker's default."""
        if (
            self.traffic is TrafficShift.ALL_AT_ONCE
            and not self.rollback_alarms
            and self.termination_wait is None
        ):
            return None
        routing: dict[str, Any] = {
            "Type": self.traffic.value,
            "WaitIntervalInSeconds": int(self.wait.to_seconds()) if self.wait else 0,
        }
        size = {"Type": "CAPACITY_PERCENT", "Value": self.step_percent}
        if self.traffic is TrafficShift.CANARY:
            routing["CanarySize"] = size
        if self.traffic is TrafficShift.LINEAR:
            routing["LinearStepSize"] = size
        policy: dict[str, Any] = {"TrafficRoutingConfiguration": routing}
        if self.termination_wait is not None:
            policy["TerminationWaitInSeconds"] = int(self.termination_wait.to_seconds())
        config: dict[str, Any] = {"BlueGreenUpdatePolicy": policy}
        if self.rollback_alarms:
            config["AutoRollbackConfiguration"] = {
                "Alarms": [{"AlarmName": _alarm_name(alarm)} for alarm in self.rollback_alarms]
            }
        return config


def _alarm_name(alarm: object) -> str | None:
    """The name of a rollback alarm given as an alarm or a name (None: neither)."""
    if isinstance(alarm, str):
        return alarm if alarm else None
    name = getattr(alarm, "alarm_name", None)  # a cloudwatch.IAlarm (jsii interfaces are duck)
    return name if isinstance(name, str) else None
