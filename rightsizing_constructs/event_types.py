"""The events the library publishes and starts runs on: their ``source`` and ``detail-type``.

The runtime owns the names (``rightsizing_runtime.triggers``); the constructs read them from
there, so the rules' patterns and the handlers cannot drift apart. README, "Triggers" and
"The recommendation event".
"""

from __future__ import annotations

from ._runtime import import_runtime

_TRIGGERS = import_runtime("triggers")

#: ``source`` of the library's events on EventBridge (recommendations, run requests, findings).
EVENT_SOURCE: str = _TRIGGERS.EVENT_SOURCE
#: ``source`` of the recommendation event on EventBridge.
RECOMMENDATION_EVENT_SOURCE = EVENT_SOURCE
#: ``detail-type`` of the recommendation event on EventBridge.
RECOMMENDATION_DETAIL_TYPE: str = _TRIGGERS.RECOMMENDATION
#: ``detail-type`` of the manual trigger (README, "Triggers").
RUN_REQUESTED_DETAIL_TYPE: str = _TRIGGERS.RUN_REQUESTED
#: ``detail-type`` of the utilization audit's findings (README, "Utilization audit").
FINDING_DETAIL_TYPE: str = _TRIGGERS.FINDING
#: ``detail-type`` of an Apply run's outcome (README, "The apply outcome event").
APPLY_OUTCOME_DETAIL_TYPE: str = _TRIGGERS.APPLY_OUTCOME
#: ``detail-type`` of SageMaker's model package events (the model-approval trigger).
MODEL_PACKAGE_STATE_CHANGE: str = _TRIGGERS.MODEL_PACKAGE_STATE_CHANGE
#: ``detail-type`` of SageMaker's endpoint status events (a pending recommendation's apply).
ENDPOINT_STATE_CHANGE: str = _TRIGGERS.ENDPOINT_STATE_CHANGE
#: ``detail-type`` of CloudWatch's alarm events (the latency-alarm trigger).
ALARM_STATE_CHANGE: str = _TRIGGERS.ALARM_STATE_CHANGE
