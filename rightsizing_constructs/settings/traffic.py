"""Where the peak traffic a run sizes for comes from: measured, instead of typed by hand."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import Duration

from .._runtime import import_runtime
from ._validation import ValidationProblems, human, is_number, is_token

_DAY = 86_400
#: The longest lookback: CloudWatch keeps 1-hour datapoints 455 days, and nothing older
#: (CloudWatch User Guide, "Metrics retention"). The runtime's table, so both agree.
MAX_LOOKBACK_SECONDS: int = import_runtime("traffic").RETENTION_BY_PERIOD[-1][1]
#: The shortest lookback: a day holds one whole daily traffic cycle.
MIN_LOOKBACK_SECONDS = _DAY


@dataclass(frozen=True, kw_only=True)
class PeakTraffic:
    """The peak traffic a run sizes for, measured from the variant's ``Invocations``.

    Create it with :meth:`observed`. At the start of each run the workflow reads the variant's
    ``AWS/SageMaker`` ``Invocations`` (``Sum``) over ``lookback``, takes the ``percentile`` of
    the per-minute request rates, multiplies it by ``growth``, raises it to ``at_least``, rounds
    it up to a whole request per minute, and sizes the instance count for that instead of
    ``peak_requests_per_minute``. ``peak_requests_per_minute`` stays the fallback: with less
    than ``min_history`` of data, no requests at all, or an error reading CloudWatch, the run
    uses it and says why (the recommendation's ``inputs.peak_source``).

    CloudWatch keeps 1-minute datapoints 15 days, 5-minute 63 days, 1-hour 455 days
    (CloudWatch User Guide, "Metrics retention"): a lookback over 15 days reads 5-minute
    averages (over 63 days hourly ones), which smooth the busiest minute away; ``growth``
    must then cover the difference.
    """

    #: How much history to read, 1 to 455 days. Default: 14 days (1-minute data).
    lookback: Duration = field(default_factory=lambda: Duration.days(14))
    #: The percentile of the per-minute request rates, in (0, 100]; 100 is the busiest
    #: minute. Default: 100.
    percentile: float = 100
    #: Headroom on the measured peak, at least 1. Default: 1.2 (20 % more).
    growth: float = 1.2
    #: The least peak to size for, in requests per minute, at least 0. Default: no floor.
    at_least: float | None = None
    #: Less history than this (first to last datapoint) falls back to
    #: ``peak_requests_per_minute``; at most ``lookback``. Default: 1 day.
    min_history: Duration = field(default_factory=lambda: Duration.days(1))

    def __post_init__(self) -> None:
        problems = ValidationProblems("PeakTraffic")
        lookback = _seconds(problems, "lookback", self.lookback)
        min_history = _seconds(problems, "min_history", self.min_history)
        if lookback is not None:
            problems.check(
                MIN_LOOKBACK_SECONDS <= lookback <= MAX_LOOKBACK_SECONDS,
                f"lookback must be between 1 day (one whole daily cycle) and 455 days "
                "(CloudWatch keeps 1-hour datapoints 455 days, nothing older), got "
                f"{human(self.lookback)}",
            )
        if lookback is not None and min_history is not None:
            problems.check(
                min_history <= lookback,
                f"min_history ({human(self.min_history)}) must be at most lookback "
                f"({human(self.lookback)}): no run could ever have enough history",
            )
        _number(
            problems,
            "percentile",
            self.percentile,
            lambda v: 0 < v <= 100,
            "in (0, 100] (100 is the busiest minute)",
        )
        _number(
            problems,
            "growth",
            self.growth,
            lambda v: v >= 1,
            "at least 1 (for a peak below the measured one, set peak_requests_per_minute "
            "and leave peak_traffic out)",
        )
        if self.at_least is not None:
            _number(problems, "at_least", self.at_least, lambda v: v >= 0, "at least 0")
        problems.keep_on(self)

    @classmethod
    def observed(
        cls,
        *,
        lookback: Duration | None = None,
        percentile: float = 100,
        growth: float = 1.2,
        at_least: float | None = None,
        min_history: Duration | None = None,
    ) -> PeakTraffic:
        """The ``percentile`` of the per-minute requests over ``lookback``, times ``growth``.

        Defaults: the busiest minute of the last 14 days, plus 20 %, no floor, at least a day
        of history (else ``peak_requests_per_minute``).
        """
        return cls(
            lookback=lookback if lookback is not None else Duration.days(14),
            percentile=percentile,
            growth=growth,
            at_least=at_least,
            min_history=min_history if min_history is not None else Duration.days(1),
        )

    def render(self) -> dict[str, Any]:
        """The ``peak_traffic`` object of the settings document (README, "Settings document")."""
        return {
            "source": import_runtime("traffic").OBSERVED,
            "lookback_seconds": int(self.lookback.to_seconds()),
            "percentile": self.percentile,
            "growth": self.growth,
            "at_least": self.at_least,
            "min_history_seconds": int(self.min_history.to_seconds()),
        }


def _seconds(problems: ValidationProblems, name: str, duration: Any) -> int | None:
    """A duration in whole seconds, known at synth time (it is written into the settings)."""
    if not isinstance(duration, Duration):
        problems.check(
            False, f"{name} must be a Duration such as Duration.days(14), got {duration!r}"
        )
        return None
    if is_token(duration.to_string()):
        problems.check(False, f"{name} must be known at synth time, not a token")
        return None
    try:
        return int(duration.to_seconds())
    except Exception:  # jsii raises a plain Error for fractional seconds
        problems.check(False, f"{name} must be a whole number of seconds, got {human(duration)}")
        return None


def _number(
    problems: ValidationProblems, name: str, value: Any, ok: Callable[[Any], bool], rule: str
) -> None:
    """A number meeting ``ok``; a token is checked at deploy time, not here."""
    if is_token(value):
        return
    problems.check(is_number(value) and ok(value), f"{name} must be {rule}, got {value!r}")
