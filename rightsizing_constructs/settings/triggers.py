"""What starts a run besides a manual request: model approvals, latency alarms, audit findings.

(A schedule is an ``events.Schedule``.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .._runtime import import_runtime
from ._validation import ValidationProblems, is_token

_GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


@dataclass(frozen=True, kw_only=True)
class ModelApproval:
    """Trigger: a new version approved in a Model Package Group runs IR on that version.

    Fires on ``SageMaker Model Package State Change`` events of ``model_package_group_name``
    with ``ModelApprovalStatus`` ``Approved``. The library never swaps the model: when the
    endpoint does not serve the approved version, the run records ``model-mismatch`` and
    changes nothing (deploy the version with your pipeline; a later run rightsizes it).
    """

    #: The Model Package Group whose approved versions start a run.
    model_package_group_name: str

    def __post_init__(self) -> None:
        problems = ValidationProblems("ModelApproval")
        problems.check(
            is_token(self.model_package_group_name)
            or (
                isinstance(self.model_package_group_name, str)
                and bool(_GROUP_NAME.match(self.model_package_group_name))
            ),
            "model_package_group_name must be a Model Package Group name (1-63 letters, digits "
            f"and hyphens), got {self.model_package_group_name!r}",
        )
        problems.raise_if_any()


@dataclass(frozen=True, kw_only=True)
class LatencyAlarm:
    """Trigger: ``ModelLatency`` above the SLO for ``minutes`` consecutive minutes re-runs the loop.

    A CloudWatch alarm on the variant's ``AWS/SageMaker`` ``ModelLatency`` (microseconds) at
    the SLO's percentile, one-minute periods, threshold the SLO; the run starts when it goes
    into ALARM (missing data is not breaching: an idle endpoint does not alarm).
    """

    #: Consecutive breaching minutes before the run starts. Default: 5.
    minutes: int = 5

    def __post_init__(self) -> None:
        problems = ValidationProblems("LatencyAlarm")
        problems.check(
            isinstance(self.minutes, int) and 1 <= self.minutes <= 1440,
            f"minutes must be a whole number of minutes from 1 to 1440, got {self.minutes!r}",
        )
        problems.raise_if_any()


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
        problems.raise_if_any()
