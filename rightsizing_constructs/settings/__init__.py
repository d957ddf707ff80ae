"""Settings types of the rightsizing constructs, grouped by what they decide.

They behave like jsii structs: immutable, keyword-only, equal by value. Each checks its own
fields when created and raises one ``ValueError`` that lists every problem; checks that need
several settings together (an SLO and a job's latency threshold, say) live in the construct.
Values that are unresolved CDK tokens are not checked: they are only known at deploy time.

- :mod:`.job`: the Inference Recommender job (Default or Advanced, traffic, stopping rules);
- :mod:`.slo`: the latency objective and the guardrails;
- :mod:`.deployment`: apply mode and how the endpoint update shifts traffic;
- :mod:`.triggers`: model approvals, latency alarms, audit findings;
- :mod:`.audit`: how the utilization audit judges a variant;
- :mod:`.access`: how the engine's roles are granted the endpoints;
- :mod:`.traffic`: where the peak traffic a run sizes for comes from;
- :mod:`.component`: an inference component's workload, objective and AI recommendation job.
"""

from __future__ import annotations

from ._validation import ValidationProblems, is_number, is_token, problems_of
from .access import EndpointAccess
from .audit import LookbackPeriod, UtilizationBand, UtilizationPercentile
from .component import (
    MAX_AI_JOB_INSTANCE_TYPES,
    AIObjective,
    AIRecommendationJob,
    AIWorkload,
    InferenceFramework,
    TimeToFirstTokenSlo,
    TokenLatencyPercentile,
)
from .deployment import ApplyMode, Deployment, TrafficShift
from .job import (
    MAX_INSTANCE_TYPES_PER_JOB,
    MAX_JOB_DURATION_SECONDS,
    ContainerConfig,
    JobType,
    LatencyThreshold,
    Phase,
    RecommenderJob,
    Stairs,
    StoppingConditions,
    TrafficPattern,
)
from .slo import Guardrails, LatencyPercentile, LatencySlo
from .traffic import PeakTraffic
from .triggers import AUDIT_CLASSIFICATIONS, AuditFinding, LatencyAlarm, ModelApproval

__all__ = [
    "AUDIT_CLASSIFICATIONS",
    "MAX_AI_JOB_INSTANCE_TYPES",
    "MAX_INSTANCE_TYPES_PER_JOB",
    "MAX_JOB_DURATION_SECONDS",
    "AIObjective",
    "AIRecommendationJob",
    "AIWorkload",
    "ApplyMode",
    "AuditFinding",
    "ContainerConfig",
    "Deployment",
    "EndpointAccess",
    "Guardrails",
    "InferenceFramework",
    "JobType",
    "LatencyAlarm",
    "LatencyPercentile",
    "LatencySlo",
    "LatencyThreshold",
    "LookbackPeriod",
    "ModelApproval",
    "PeakTraffic",
    "Phase",
    "RecommenderJob",
    "Stairs",
    "StoppingConditions",
    "TimeToFirstTokenSlo",
    "TokenLatencyPercentile",
    "TrafficPattern",
    "TrafficShift",
    "UtilizationBand",
    "UtilizationPercentile",
    "ValidationProblems",
    "is_number",
    "is_token",
    "problems_of",
]
