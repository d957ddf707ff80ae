"""What starts a run besides a manual request: model approvals, latency alarms, audit findings.

(A schedule is an ``events.Schedule``.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from aws_cdk import Duration

from .._runtime import import_runtime
from ._validation import ValidationProblems, duration_range_problems, human, is_token

_GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


@dataclass(frozen=True, kw_only=True)
class ModelApproval:
    """Trigger: a new version approved in a Model Package Group runs IR on that version.

    Fires on ``SageMaker Model Package State Change`` events of ``model_package_group_name``
    with ``ModelApprovalStatus`` ``Approved``. The library never swaps the model. When the
    endpoint already serves the approved version, the run is an ordinary one. When it does not
    yet (approval usually starts the deployment), the version is sized before it ships: the
    recommendation is ``pending``, kept in the ledger and in an SSM parameter a pipeline can
    read before it deploys (README, "Size before shipping"), and applied (``ApplyMode.AUTO``) or
    notified when the endpoint starts serving that version. A newer approval supersedes it.
    """

    #: The Model Package Group whose approved versions start a run.
    model_package_group_name: str
    #: How long a pending recommendation waits for the endpoint to serve its version (1 hour to
    #: 90 days); after that it is dropped, and the next trigger load-tests again. Default: 14
    #: days.
    pending_expires_after: Duration = field(default_factory=lambda: Duration.days(14))

    def __post_init__(self) -> None:
        problems = ValidationProblems("ModelApproval")
        problems.extend(
            duration_range_problems(
                "pending_expires_after",
                self.pending_expires_after,
                Duration.hours(1),
                Duration.days(90),
            )
        )
        problems.check(
            is_token(self.model_package_group_name)
            or (
                isinstance(self.model_package_group_name, str)
                and bool(_GROUP_NAME.match(self.model_package_group_name))
            ),
            "model_package_group_name must be a Model Package Group name (1-63 letters, digits "
            f"and hyphens), got {self.model_package_group_name!r}",
        )
        problems.keep_on(self)


@dataclass(frozen=True, kw_only=True)
class LatencyAlarm:
    """Trigger: ``ModelLatency`` above the SLO for ``breaching_for`` re-runs the loop.

    A CloudWatch alarm on the variant's ``AWS/SageMaker`` ``ModelLatency`` (microseconds) at
    the SLO's percentile, one-minute periods, threshold the SLO, that goes into ALARM when every
    minute of ``breaching_for`` breaches; the run starts then (missing data is not breaching: an
    idle endpoint does not alarm).
    """

    #: How long, in whole minutes (1 minute to 1 day), the latency must stay above the SLO
    #: before a run starts. Default: 5 minutes.
    breaching_for: Duration = field(default_factory=lambda: Duration.minutes(5))

    def __post_init__(self) -> None:
        problems = ValidationProblems("LatencyAlarm")
        minutes = _whole_minutes(self.breaching_for)
        given = self.breaching_for
        problems.check(
            minutes is not None and 1 <= minutes <= _MAX_EVALUATED_MINUTES,
            "breaching_for must be a whole number of minutes from 1 minute to 1 day (CloudWatch "
            "evaluates at most a day of one-minute periods), got "
            f"{human(given) if isinstance(given, Duration) else repr(given)}",
        )
        problems.keep_on(self)

    @property
    def minutes(self) -> int:
        """``breaching_for`` in minutes: the alarm's evaluation periods."""
        minutes = _whole_minutes(self.breaching_for)
        assert minutes is not None, "an invalid LatencyAlarm reached the construct"
        return minutes


# EvaluationPeriods x Period must not exceed one day (PutMetricAlarm, "EvaluationPeriods").
_MAX_EVALUATED_MINUTES = 1440


def _whole_minutes(duration: object) -> int | None:
    if not isinstance(duration, Duration) or is_token(duration.to_string()):
        return None
    try:
        return int(duration.to_minutes())
    except Exception:  # jsii raises a plain Error for a fractional number of minutes
        return None


#: What the utilization audit can find about a variant (README, "Utilization audit"); the
#: runtime owns the names.
AUDIT_CLASSIFICATIONS: tuple[str, ...] = import_runtime("utilization").CLASSIFICATIONS


@dataclass(frozen=True, kw_only=True)
class AuditFinding:
    """Trigger: a "Rightsizing Finding" of the utilization audit for this variant starts a run.

    Closes the loop audit -> load test -> apply: a :class:`UtilizationAudit` that watches the
    endpoint publishes a finding per variant; those with one of ``classifications`` start a
    recommend run, like any other trigger.
    """

    #: The findings that start a run. Default: over- and under-provisioned.
    classifications: Sequence[str] = ("Overprovisioned", "Underprovisioned")

    def __post_init__(self) -> None:
        object.__setattr__(self, "classifications", tuple(self.classifications))
        problems = ValidationProblems("AuditFinding")
        unknown = [c for c in self.classifications if c not in AUDIT_CLASSIFICATIONS]
        problems.check(bool(self.classifications), "classifications must not be empty")
        problems.check(
            not unknown,
            f"classifications must be among {', '.join(AUDIT_CLASSIFICATIONS)}, got {unknown}",
        )
        problems.keep_on(self)
