"""How the utilization audit judges a variant: lookback, statistic and band."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ._validation import ValidationProblems


class LookbackPeriod(enum.Enum):
    """How much history the audit reads (Compute Optimizer's choices)."""

    DAYS_14 = 14
    DAYS_32 = 32
    DAYS_93 = 93


class UtilizationPercentile(enum.Enum):
    """The statistic of the utilization metrics the audit compares with the band.

    Named like :class:`LatencyPercentile`; CloudWatch's statistic is the lower-case value.
    """

    P90 = "P90"
    P95 = "P95"
    P99 = "P99"


@dataclass(frozen=True, kw_only=True)
class UtilizationBand:
    """Where a right-sized variant's utilization runs, in percent.

    Below ``low`` on every measure is overprovisioned, above ``high`` on any is
    underprovisioned.
    """

    low: float = 60
    high: float = 80

    def __post_init__(self) -> None:
        problems = ValidationProblems("UtilizationBand")
        problems.check(
            isinstance(self.low, int | float)
            and isinstance(self.high, int | float)
            and 0 < self.low < self.high <= 100,
            f"need 0 < low < high <= 100 (percent), got low={self.low!r}, high={self.high!r}",
        )
        problems.keep_on(self)
