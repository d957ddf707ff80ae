"""rightsizing-constructs: rightsize SageMaker real-time endpoints with Inference Recommender.

Add :class:`EndpointRightsizing` to a CDK stack; it creates the workflow that load-tests the
model, picks the cheapest configuration that meets the latency SLO at the expected peak, and
publishes a "Rightsizing Recommendation" event (README: "The recommendation event").
"""

from .recommend import (
    RECOMMENDATION_DETAIL_TYPE,
    RECOMMENDATION_EVENT_SOURCE,
    EndpointRightsizing,
)
from .settings import (
    ContainerConfig,
    Guardrails,
    JobType,
    LatencyPercentile,
    LatencySlo,
    LatencyThreshold,
    Phase,
    RecommenderJob,
    Stairs,
    StoppingConditions,
    TrafficPattern,
)

__version__ = "0.1.0"

__all__ = [
    "RECOMMENDATION_DETAIL_TYPE",
    "RECOMMENDATION_EVENT_SOURCE",
    "ContainerConfig",
    "EndpointRightsizing",
    "Guardrails",
    "JobType",
    "LatencyPercentile",
    "LatencySlo",
    "LatencyThreshold",
    "Phase",
    "RecommenderJob",
    "Stairs",
    "StoppingConditions",
    "TrafficPattern",
    "__version__",
]
