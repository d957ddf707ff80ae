"""The latency objective and the guardrails no recommendation may cross."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration

from ..instance_types import is_instance_type_or_family
from ._validation import ValidationProblems, is_number, is_token, millisecond_problems


class LatencyPercentile(enum.Enum):
    """The latency percentile an SLO or an IR latency threshold is expressed at."""

    #: 95th percentile.
    P95 = "P95"
    #: 99th percentile.
    P99 = "P99"


@dataclass(frozen=True, kw_only=True)
class LatencySlo:
    """The latency service-level objective: ``percentile`` latency at most ``max_latency``.

    A candidate is eligible only when the model latency IR measured at its sustainable peak is
    within ``max_latency``. ``max_latency`` must be a whole number of milliseconds (IR's
    thresholds are integers of milliseconds).
    """

    percentile: LatencyPercentile
    max_latency: Duration

    def __post_init__(self) -> None:
        problems = ValidationProblems("LatencySlo")
        problems.extend(latency_problems(self.percentile, "max_latency", self.max_latency))
        problems.keep_on(self)

    @classmethod
    def p95(cls, max_latency: Duration) -> LatencySlo:
        """95th percentile latency at most ``max_latency``."""
        return cls(percentile=LatencyPercentile.P95, max_latency=max_latency)

    @classmethod
    def p99(cls, max_latency: Duration) -> LatencySlo:
        """99th percentile latency at most ``max_latency``."""
        return cls(percentile=LatencyPercentile.P99, max_latency=max_latency)

    @property
    def max_latency_ms(self) -> int:
        """The objective in whole milliseconds."""
        return int(self.max_latency.to_milliseconds())


def latency_problems(percentile: Any, name: str, duration: Any) -> list[str]:
    """What is wrong with a percentile and a latency in whole milliseconds."""
    found = (
        []
        if isinstance(percentile, LatencyPercentile)
        else [f"percentile must be LatencyPercentile.P95 or .P99, got {percentile!r}"]
    )
    return found + millisecond_problems(name, duration)


@dataclass(frozen=True, kw_only=True)
class Guardrails:
    """Bounds that no recommendation may cross (DESIGN.md invariant 4).

    A candidate that needs more than ``max_instances`` at peak, is not an allowed type, or costs
    more than ``max_cost_per_hour`` at peak is never chosen; when none is left the recommendation
    is ``reject`` and nothing changes.
    """

    #: Fewest instances to run; also the autoscaling minimum. Default: 1.
    min_instances: int = 1
    #: Most instances to run at peak; also the autoscaling maximum. Default: 10.
    max_instances: int = 10
    #: Exact types (``ml.c5.xlarge``) or families (``ml.c5``). Default: every instance type.
    allowed_instance_types: Sequence[str] = ()
    #: Most dollars per hour at peak (instance count times IR's ``CostPerHour``). Default: no cap.
    max_cost_per_hour: float | None = None
    #: Hysteresis: when the endpoint's current configuration already meets the SLO at peak, a
    #: change must save at least this percentage of its hourly cost, or the result is
    #: ``no-change``. An endpoint that misses its SLO is always changed. Default: 0.
    min_saving_percent: float = 0
    #: Hysteresis, in dollars per month (730 hours): the same rule as ``min_saving_percent``;
    #: both must be met. Default: 0.
    min_saving_per_month: float = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_instance_types", tuple(self.allowed_instance_types))
        problems = ValidationProblems("Guardrails")
        problems.check(
            isinstance(self.min_instances, int) and self.min_instances >= 1,
            f"min_instances must be a whole number >= 1, got {self.min_instances!r}",
        )
        problems.check(
            isinstance(self.max_instances, int) and self.max_instances >= 1,
            f"max_instances must be a whole number >= 1, got {self.max_instances!r}",
        )
        if isinstance(self.min_instances, int) and isinstance(self.max_instances, int):
            problems.check(
                self.min_instances <= self.max_instances,
                f"min_instances ({self.min_instances}) must not exceed max_instances "
                f"({self.max_instances}); raise max_instances or lower min_instances",
            )
        for name in self.allowed_instance_types:
            problems.check(
                is_token(name) or is_instance_type_or_family(name),
                f"allowed_instance_types has {name!r}, which is neither a SageMaker real-time "
                "instance type (ml.c5.xlarge) nor a family of them (ml.c5)",
            )
        if self.max_cost_per_hour is not None:
            problems.check(
                is_number(self.max_cost_per_hour) and self.max_cost_per_hour > 0,
                f"max_cost_per_hour must be a positive number of dollars, "
                f"got {self.max_cost_per_hour!r}",
            )
        problems.check(
            is_number(self.min_saving_percent) and 0 <= self.min_saving_percent < 100,
            f"min_saving_percent must be a number in [0, 100), got {self.min_saving_percent!r}",
        )
        problems.check(
            is_number(self.min_saving_per_month) and self.min_saving_per_month >= 0,
            f"min_saving_per_month must be a number of dollars >= 0, "
            f"got {self.min_saving_per_month!r}",
        )
        problems.keep_on(self)

    def render(self) -> dict[str, Any]:
        """The ``guardrails`` object of the settings document."""
        return {
            "min_instances": self.min_instances,
            "max_instances": self.max_instances,
            "allowed_instance_types": list(self.allowed_instance_types),
            "max_cost_per_hour": self.max_cost_per_hour,
            "min_saving_percent": self.min_saving_percent,
            "min_saving_per_month": self.min_saving_per_month,
        }
