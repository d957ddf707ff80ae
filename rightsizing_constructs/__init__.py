"""rightsizing-constructs: rightsize SageMaker real-time endpoints with Inference Recommender.

Add :class:`EndpointRightsizing` to a CDK stack, once per endpoint: the stack's shared
:class:`RightsizingEngine` load-tests the model, picks the cheapest configuration that meets the
latency SLO at the expected peak, publishes a "Rightsizing Recommendation" event (README: "The
recommendation event") and applies it.

The public names are imported on first use, so ``python -m rightsizing_constructs plan`` runs
without loading the CDK (which starts a Node.js process).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS = {
    "RECOMMENDATION_DETAIL_TYPE": "event_types",
    "RECOMMENDATION_EVENT_SOURCE": "event_types",
    "RUN_REQUESTED_DETAIL_TYPE": "event_types",
    "FINDING_DETAIL_TYPE": "event_types",
    "UtilizationAudit": "audit",
    "AuditFinding": "settings",
    "LookbackPeriod": "settings",
    "UtilizationBand": "settings",
    "UtilizationPercentile": "settings",
    "EndpointRightsizing": "endpoint",
    "InferenceComponentRightsizing": "component",
    "AIObjective": "settings",
    "AIRecommendationJob": "settings",
    "AIWorkload": "settings",
    "InferenceFramework": "settings",
    "TimeToFirstTokenSlo": "settings",
    "TokenLatencyPercentile": "settings",
    "EndpointAccess": "settings",
    "RightsizingEngine": "engine",
    "RightsizingDashboard": "dashboard",
    "RightsizingHub": "hub",
    "APPLY_OUTCOME_DETAIL_TYPE": "event_types",
    "LatencyAlarm": "settings",
    "ModelApproval": "settings",
    "PeakTraffic": "settings",
    "ApplyMode": "settings",
    "ContainerConfig": "settings",
    "Deployment": "settings",
    "Guardrails": "settings",
    "JobType": "settings",
    "LatencyPercentile": "settings",
    "LatencySlo": "settings",
    "LatencyThreshold": "settings",
    "Phase": "settings",
    "RecommenderJob": "settings",
    "Stairs": "settings",
    "StoppingConditions": "settings",
    "TrafficPattern": "settings",
    "TrafficShift": "settings",
}

__all__ = [
    "APPLY_OUTCOME_DETAIL_TYPE",
    "FINDING_DETAIL_TYPE",
    "RECOMMENDATION_DETAIL_TYPE",
    "RECOMMENDATION_EVENT_SOURCE",
    "RUN_REQUESTED_DETAIL_TYPE",
    "AIObjective",
    "AIRecommendationJob",
    "AIWorkload",
    "ApplyMode",
    "AuditFinding",
    "ContainerConfig",
    "Deployment",
    "EndpointAccess",
    "EndpointRightsizing",
    "Guardrails",
    "InferenceComponentRightsizing",
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
    "RightsizingDashboard",
    "RightsizingEngine",
    "RightsizingHub",
    "Stairs",
    "StoppingConditions",
    "TimeToFirstTokenSlo",
    "TokenLatencyPercentile",
    "TrafficPattern",
    "TrafficShift",
    "UtilizationAudit",
    "UtilizationBand",
    "UtilizationPercentile",
    "__version__",
]

if TYPE_CHECKING:
    from .audit import UtilizationAudit
    from .component import InferenceComponentRightsizing
    from .dashboard import RightsizingDashboard
    from .endpoint import EndpointRightsizing
    from .engine import RightsizingEngine
    from .event_types import (
        APPLY_OUTCOME_DETAIL_TYPE,
        FINDING_DETAIL_TYPE,
        RECOMMENDATION_DETAIL_TYPE,
        RECOMMENDATION_EVENT_SOURCE,
        RUN_REQUESTED_DETAIL_TYPE,
    )
    from .hub import RightsizingHub
    from .settings import (
        AIObjective,
        AIRecommendationJob,
        AIWorkload,
        ApplyMode,
        AuditFinding,
        ContainerConfig,
        Deployment,
        EndpointAccess,
        Guardrails,
        InferenceFramework,
        JobType,
        LatencyAlarm,
        LatencyPercentile,
        LatencySlo,
        LatencyThreshold,
        LookbackPeriod,
        ModelApproval,
        PeakTraffic,
        Phase,
        RecommenderJob,
        Stairs,
        StoppingConditions,
        TimeToFirstTokenSlo,
        TokenLatencyPercentile,
        TrafficPattern,
        TrafficShift,
        UtilizationBand,
        UtilizationPercentile,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rightsizing_constructs' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
