"""What started a run: the EventBridge event one of the engine's rules delivered.

The engine's rules hand the Recommend workflow ``{"trigger": {"source", "detail_type",
"event"}}``; its Route step finds the endpoint in the registry and gives the run
(README, "Triggers")::

    {"settings": {...}, "apply_settings": {...},
     "trigger": {"source": ..., "detail_type": ..., "event": <the whole event>}}

This module names the trigger and pulls out what the run needs from its event (pure).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: ``source`` of the library's own events (recommendations, run requests, findings).
EVENT_SOURCE = "rightsizing-constructs"
#: ``detail-type`` of the manual trigger: ``aws events put-events`` with it starts a run.
RUN_REQUESTED = "Rightsizing Run Requested"
#: ``detail-type`` of the utilization audit's findings (README, "Utilization audit").
FINDING = "Rightsizing Finding"
#: ``detail-type`` of the recommendation event (README, "The recommendation event").
RECOMMENDATION = "Rightsizing Recommendation"
#: ``detail-type`` of the Apply workflow's outcome (README, "The apply outcome event").
APPLY_OUTCOME = "Rightsizing Apply Outcome"
MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"
#: SageMaker's endpoint status events; ``EndpointStatus`` is upper snake case (``IN_SERVICE``),
#: unlike the API's ``InService`` ("Events that Amazon SageMaker AI sends to Amazon
#: EventBridge", SageMaker developer guide).
ENDPOINT_STATE_CHANGE = "SageMaker Endpoint State Change"
#: The kind of a run on an endpoint that started serving a config: it applies a pending
#: recommendation, if one waits for the version now served (``pending.py``).
IN_SERVICE_KIND = "endpoint-in-service"
ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"

_KINDS = {
    ("aws.sagemaker", MODEL_PACKAGE_STATE_CHANGE): "model-approval",
    ("aws.sagemaker", ENDPOINT_STATE_CHANGE): IN_SERVICE_KIND,
    ("aws.cloudwatch", ALARM_STATE_CHANGE): "latency-alarm",
    (EVENT_SOURCE, RUN_REQUESTED): "manual",
    (EVENT_SOURCE, FINDING): "audit-finding",
}


class InvalidTriggerError(ValueError):
    """The trigger event is not one this library starts runs on, or lacks what it needs."""


@dataclass(frozen=True, kw_only=True)
class Trigger:
    """Why this run started, for the run itself and for its decision record."""

    kind: str
    #: The event's ``id`` (or None for a direct start), to trace a run back to its event.
    event_id: str | None
    #: Model approval only: the approved version, which IR tests.
    model_package_version_arn: str | None = None
    #: A run request's ``force_load_test``: load-test even if a stored job could be reused.
    force_load_test: bool = False

    def render(self) -> dict[str, Any]:
        """The ``trigger`` object of the settings document and of the recommendation event."""
        rendered: dict[str, Any] = {"kind": self.kind, "event_id": self.event_id}
        if self.model_package_version_arn is not None:
            rendered["model_package_version_arn"] = self.model_package_version_arn
        if self.force_load_test:
            rendered["force_load_test"] = True
        return rendered


def trigger_from(trigger: Mapping[str, Any] | None) -> Trigger:
    """Read the ``trigger`` input; none at all is a direct (manual) start-execution."""
    if trigger is None:
        return Trigger(kind="manual", event_id=None)
    if not isinstance(trigger, Mapping):
        raise InvalidTriggerError(f"trigger must be a JSON object, got {trigger!r}")
    event = trigger.get("event") or {}
    kind = _KINDS.get((str(trigger.get("source")), str(trigger.get("detail_type"))))
    if kind is None:
        raise InvalidTriggerError(
            f"no run starts on {trigger.get('detail_type')!r} events from {trigger.get('source')!r}"
        )
    if not isinstance(event, Mapping):
        raise InvalidTriggerError(f"trigger event must be a JSON object, got {event!r}")
    event_id = event.get("id")
    detail = event.get("detail") or {}
    if kind == "manual" and detail.get("requested_by") == IN_SERVICE_KIND:
        # An endpoint several registered variants share started serving a config (Route).
        return Trigger(kind=IN_SERVICE_KIND, event_id=event_id)
    if kind == "manual" and detail.get("force_load_test") is True:
        return Trigger(kind="manual", event_id=event_id, force_load_test=True)
    if kind == "manual" and detail.get("requested_by") == "schedule":
        # The engine's schedule rules request runs with this event too (RequestScheduledRuns).
        return Trigger(kind="schedule", event_id=event_id)
    if kind == "manual" and detail.get("requested_by") == "model-approval":
        # An approval in a group several endpoints serve fans out as run requests (Route).
        arn = detail.get("model_package_version_arn")
        if not isinstance(arn, str) or not arn:
            raise InvalidTriggerError("a model-approval run request without its version's ARN")
        return Trigger(kind="model-approval", event_id=event_id, model_package_version_arn=arn)
    if kind == IN_SERVICE_KIND and detail.get("EndpointStatus") != "IN_SERVICE":
        raise InvalidTriggerError(
            f"endpoint event with status {detail.get('EndpointStatus')!r}: only IN_SERVICE "
            "starts a run"
        )
    if kind != "model-approval":
        return Trigger(kind=kind, event_id=event_id)
    if detail.get("ModelApprovalStatus") != "Approved":
        raise InvalidTriggerError(
            f"model package event with status {detail.get('ModelApprovalStatus')!r}: only "
            "Approved versions start a run"
        )
    arn = detail.get("ModelPackageArn")
    if not isinstance(arn, str) or not arn:
        raise InvalidTriggerError("model package event without a ModelPackageArn")
    return Trigger(kind=kind, event_id=event_id, model_package_version_arn=arn)
