"""Route: the head of the Recommend workflow, what an event means for the engine's fleet.

The engine's few rules deliver every event that may concern its endpoints, whatever the
endpoint (docs/fleet.md); this step looks the endpoints up in the registry
(``registry.json``, a layer at ``REGISTRY_PATH``, placeholders filled from ``REGISTRY_VALUES``)
and returns the workflow's next state, with ``route.action``:

- ``run``: one endpoint's rightsizing run: ``settings`` (its settings document), ``trigger``
  (the event, as Prepare reads it) and ``apply_settings``;
- ``apply``: an ``apply`` recommendation for an endpoint in ``ApplyMode.AUTO`` or ``APPROVAL``
  (its apply settings make the Apply workflow wait for an approval):
  ``recommendation`` and ``apply_settings``;
- ``fan_out``: runs of several endpoints (a schedule, an approval in a group several endpoints
  serve, an endpoint several such variants share starting to serve a config):
  ``route.requests``, one "Rightsizing Run Requested" detail each;
- ``ignore``: nothing to do; with ``route.record`` true (an event that names an endpoint the
  engine does not rightsize) the workflow records it in the ledger under the named endpoint.

Inputs (the execution's, as ``input``): ``{"trigger": {"source", "detail_type", "event"}}``
(the rules'), ``{"scheduled": "<expression>"}`` (a schedule rule's), or a direct start:
``{"endpoint_name", "variant_name"}``, or a whole settings document ``{"settings": ...}``. No AWS
call: the decision is in the registry.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from functools import cache
from typing import Any

from . import registry
from .triggers import (
    ALARM_STATE_CHANGE,
    ENDPOINT_STATE_CHANGE,
    EVENT_SOURCE,
    FINDING,
    IN_SERVICE_KIND,
    MODEL_PACKAGE_STATE_CHANGE,
    RECOMMENDATION,
    RUN_REQUESTED,
    InvalidTriggerError,
)

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)


@cache
def _registry(path: str, values: str) -> registry.Registry:
    """The registry, read once per container (the layer does not change under a function)."""
    return registry.read(path, values)


def current() -> registry.Registry:
    """The engine's registry, as this function's layer and environment give it."""
    return _registry(
        os.environ.get("REGISTRY_PATH", registry.DEFAULT_PATH),
        os.environ.get("REGISTRY_VALUES", ""),
    )


def handler(event: dict[str, Any], _context: object = None) -> dict[str, Any]:
    """The workflow's next state for the execution's input, ``event["input"]``."""
    decision = route(event["input"], current())
    logger.info("route: %s", decision["route"])
    return decision


def route(event: Mapping[str, Any], fleet: registry.Registry) -> dict[str, Any]:
    """What ``event`` means for ``fleet`` (pure)."""
    if "scheduled" in event:
        expression = str(event["scheduled"])
        return _fan_out(fleet.scheduled_by(expression), "schedule", f"schedule {expression}")
    trigger = event.get("trigger")
    if trigger is None:
        manual = {"source": EVENT_SOURCE, "detail_type": RUN_REQUESTED, "event": None}
        if isinstance(event.get("settings"), Mapping):
            # A direct start with a whole settings document (a person re-running with changes).
            return {
                "route": {"action": "run"},
                "settings": dict(event["settings"]),
                "apply_settings": event.get("apply_settings"),
                "trigger": manual,
            }
        return _run_of(fleet, event, manual, f"a direct start of {_named(event)}")
    if not isinstance(trigger, Mapping):
        raise InvalidTriggerError(f"trigger must be a JSON object, got {trigger!r}")
    kind = (trigger.get("source"), trigger.get("detail_type"))
    wrapped = trigger.get("event") or {}
    detail = wrapped.get("detail") if isinstance(wrapped, Mapping) else None
    detail = detail if isinstance(detail, Mapping) else {}
    if kind == (EVENT_SOURCE, RUN_REQUESTED):
        return _run_of(fleet, detail, trigger, f"run request {wrapped.get('id')}")
    if kind == (EVENT_SOURCE, FINDING):
        return _finding(fleet, detail, trigger)
    if kind == (EVENT_SOURCE, RECOMMENDATION):
        return _recommendation(fleet, detail)
    if kind == ("aws.sagemaker", MODEL_PACKAGE_STATE_CHANGE):
        return _approval(fleet, detail, trigger)
    if kind == ("aws.sagemaker", ENDPOINT_STATE_CHANGE):
        return _in_service(fleet, detail, trigger)
    if kind == ("aws.cloudwatch", ALARM_STATE_CHANGE):
        entry = fleet.alarmed_by(str(detail.get("alarmName")))
        if entry is None:
            return _ignore(f"alarm {detail.get('alarmName')!r} is no endpoint's latency alarm")
        return _run(entry, trigger)
    raise InvalidTriggerError(f"no run starts on {kind[1]!r} events from {kind[0]!r}")


def _named(fields: Mapping[str, Any]) -> str:
    return f"{fields.get('endpoint_name')}/{registry.target_of(fields)}"


def _run_of(
    fleet: registry.Registry,
    fields: Mapping[str, Any],
    trigger: Mapping[str, Any],
    what: str,
) -> dict[str, Any]:
    """A run of the endpoint ``fields`` names, or a recorded ignore if the engine lacks it."""
    entry = fleet.endpoint(str(fields.get("endpoint_name")), registry.target_of(fields))
    if entry is None:
        return _ignore(
            f"{what} names {_named(fields)}, which this engine does not rightsize",
            record=fields,
        )
    return _run(entry, trigger)


def _finding(
    fleet: registry.Registry, detail: Mapping[str, Any], trigger: Mapping[str, Any]
) -> dict[str, Any]:
    entry = fleet.endpoint(str(detail.get("endpoint_name")), registry.target_of(detail))
    classification = detail.get("classification")
    if entry is None or classification not in entry.audit_classifications:
        # Findings of endpoints without an AuditFinding trigger are the audit's to report.
        return _ignore(f"no run starts on a {classification} finding of {_named(detail)}")
    return _run(entry, trigger)


def _recommendation(fleet: registry.Registry, detail: Mapping[str, Any]) -> dict[str, Any]:
    entry = fleet.endpoint(str(detail.get("endpoint_name")), registry.target_of(detail))
    if entry is None or not entry.applies or detail.get("action") != "apply":
        return _ignore(f"no apply of {_named(detail)} (not in ApplyMode.AUTO or APPROVAL here)")
    return {
        "route": {"action": "apply"},
        "recommendation": dict(detail),
        "settings": dict(entry.settings),
        "apply_settings": dict(entry.apply_settings or {}),
    }


def _approval(
    fleet: registry.Registry, detail: Mapping[str, Any], trigger: Mapping[str, Any]
) -> dict[str, Any]:
    group = str(detail.get("ModelPackageGroupName"))
    entries = fleet.approved_in(group)
    if detail.get("ModelApprovalStatus") != "Approved" or not entries:
        return _ignore(f"no endpoint runs on approvals in {group!r}")
    version = detail.get("ModelPackageArn")
    return _run_each(entries, trigger, "model-approval", f"approval of {version}", version=version)


def _in_service(
    fleet: registry.Registry, detail: Mapping[str, Any], trigger: Mapping[str, Any]
) -> dict[str, Any]:
    """An endpoint started serving a config: its variants sized on approval check what waits.

    Only variants with a model-approval trigger can have a pending recommendation
    (``pending.py``); every other endpoint's state changes are nothing to this engine.
    """
    name = str(detail.get("EndpointName"))
    entries = fleet.approved_variants_of(name)
    if detail.get("EndpointStatus") != "IN_SERVICE" or not entries:
        return _ignore(f"no pending recommendation can wait for endpoint {name!r}")
    return _run_each(entries, trigger, IN_SERVICE_KIND, f"endpoint {name} in service")


def _run_each(
    entries: tuple[registry.Entry, ...],
    trigger: Mapping[str, Any],
    requested_by: str,
    what: str,
    *,
    version: Any = None,
) -> dict[str, Any]:
    """One endpoint's run on the event itself; several: a run request each (``_fan_out``)."""
    if len(entries) == 1:
        return _run(entries[0], trigger)
    return _fan_out(entries, requested_by, what, version=version)


def _run(entry: registry.Entry, trigger: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "route": {"action": "run"},
        "settings": dict(entry.settings),
        "apply_settings": None if entry.apply_settings is None else dict(entry.apply_settings),
        "trigger": dict(trigger),
    }


def _fan_out(
    entries: tuple[registry.Entry, ...], requested_by: str, what: str, *, version: Any = None
) -> dict[str, Any]:
    if not entries:
        return _ignore(f"no endpoint runs on {what}")
    requests = []
    for entry in entries:
        request: dict[str, Any] = {
            "endpoint_name": entry.endpoint_name,
            "variant_name": entry.variant_name,
            "requested_by": requested_by,
        }
        if entry.inference_component_name is not None:
            request["inference_component_name"] = entry.inference_component_name
        if version is not None:
            request["model_package_version_arn"] = version
        requests.append(request)
    return {"route": {"action": "fan_out", "requests": requests, "reason": what}}


def _ignore(reason: str, *, record: Mapping[str, Any] | None = None) -> dict[str, Any]:
    route: dict[str, Any] = {"action": "ignore", "reason": reason, "record": record is not None}
    if record is not None:
        route["endpoint_name"] = str(record.get("endpoint_name"))
        route["variant_name"] = str(record.get("variant_name"))
        if record.get("inference_component_name"):
            route["inference_component_name"] = str(record["inference_component_name"])
    return {"route": route}
