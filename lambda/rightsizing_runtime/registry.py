"""The engine's registry: every rightsized endpoint's settings, and what triggers its runs (pure).

The constructs write it at synth time (``rightsizing_constructs.registry``) as one JSON document,
shipped to the Route function as a Lambda layer (``/opt/rightsizing/registry.json``), so that the
engine's few rules carry no endpoint's settings (docs/fleet.md)::

    {"registry_version": 1,
     "endpoints": [{"settings": <settings document>,
                    "apply_settings": <apply settings> | null,
                    "triggers": {"schedule": "<schedule expression>" | null,
                                 "model_package_group_name": "<group>" | null,
                                 "latency_alarm_name": "<alarm>" | null,
                                 "audit_classifications": ["Overprovisioned", ...] | null}}]}

A key whose value would be null is left out of the document (the readers use ``.get``).

Values only known at deploy time (the stack's partition and account, the job role's ARN) are
written as placeholders, ``${rs:<n>}``; the Route function's environment variable
``REGISTRY_VALUES`` maps each number to its deployed value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

REGISTRY_VERSION = 1
#: Where the layer puts the registry in the function's file system (layers unpack into /opt).
DEFAULT_PATH = "/opt/rightsizing/registry.json"
_PLACEHOLDER = re.compile(r"\$\{rs:(\d+)\}")


class InvalidRegistryError(ValueError):
    """The registry document is not one this runtime reads."""


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One endpoint variant, or one inference component, the engine rightsizes."""

    endpoint_name: str
    variant_name: str
    settings: Mapping[str, Any]
    apply_settings: Mapping[str, Any] | None
    schedule: str | None
    model_package_group_name: str | None
    latency_alarm_name: str | None
    audit_classifications: tuple[str, ...]
    #: The inference component rightsized (``InferenceComponentRightsizing``); None: a variant.
    inference_component_name: str | None = None

    @property
    def target(self) -> str:
        """What the entry rightsizes on its endpoint: the inference component, or the variant."""
        return self.inference_component_name or self.variant_name

    @property
    def applies(self) -> bool:
        """Whether ``apply`` recommendations are applied (``ApplyMode.AUTO``)."""
        return self.apply_settings is not None


@dataclass(frozen=True)
class Registry:
    """The endpoints, found by what an event names."""

    entries: tuple[Entry, ...]
    _by_endpoint: dict[tuple[str, str], Entry] = field(init=False, repr=False)
    _by_group: dict[str, tuple[Entry, ...]] = field(init=False, repr=False)
    _by_alarm: dict[str, Entry] = field(init=False, repr=False)
    _by_schedule: dict[str, tuple[Entry, ...]] = field(init=False, repr=False)
    _approved_by_name: dict[str, tuple[Entry, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_group: dict[str, list[Entry]] = {}
        by_schedule: dict[str, list[Entry]] = {}
        for entry in self.entries:
            if entry.model_package_group_name:
                by_group.setdefault(entry.model_package_group_name.lower(), []).append(entry)
            if entry.schedule:
                by_schedule.setdefault(entry.schedule, []).append(entry)
        object.__setattr__(
            self, "_by_endpoint", {(e.endpoint_name, e.target): e for e in self.entries}
        )
        object.__setattr__(self, "_by_group", {k: tuple(v) for k, v in by_group.items()})
        object.__setattr__(
            self,
            "_by_alarm",
            {e.latency_alarm_name: e for e in self.entries if e.latency_alarm_name},
        )
        object.__setattr__(self, "_by_schedule", {k: tuple(v) for k, v in by_schedule.items()})
        approved_by_name: dict[str, list[Entry]] = {}
        for entry in self.entries:
            if entry.model_package_group_name:
                approved_by_name.setdefault(entry.endpoint_name, []).append(entry)
        object.__setattr__(
            self, "_approved_by_name", {k: tuple(v) for k, v in approved_by_name.items()}
        )

    def endpoint(self, endpoint_name: str, target: str) -> Entry | None:
        """The entry of this endpoint variant (or inference component), if it is rightsized.

        ``target`` is the variant's name, or the inference component's for an entry that
        rightsizes one (:func:`target_of` reads it from an event).
        """
        return self._by_endpoint.get((endpoint_name, target))

    def approved_in(self, group_name: str) -> tuple[Entry, ...]:
        """The endpoints whose runs start on approvals in this model package group."""
        return self._by_group.get(group_name.lower(), ())

    def approved_variants_of(self, endpoint_name: str) -> tuple[Entry, ...]:
        """The variants of this endpoint whose runs start on model approvals."""
        return self._approved_by_name.get(endpoint_name, ())

    def alarmed_by(self, alarm_name: str) -> Entry | None:
        """The endpoint whose latency alarm this is."""
        return self._by_alarm.get(alarm_name)

    def scheduled_by(self, expression: str) -> tuple[Entry, ...]:
        """The endpoints whose runs start on this schedule expression."""
        return self._by_schedule.get(expression, ())


def load(document: Mapping[str, Any], values: Mapping[str, str]) -> Registry:
    """The registry of a document, its placeholders replaced by ``values``."""
    if not isinstance(document, Mapping) or document.get("registry_version") != REGISTRY_VERSION:
        version = document.get("registry_version") if isinstance(document, Mapping) else None
        raise InvalidRegistryError(
            f"registry_version {version!r} is not supported; this runtime reads {REGISTRY_VERSION}"
        )
    resolved = substitute(document, values)
    try:
        return Registry(tuple(_entry(raw) for raw in resolved["endpoints"]))
    except (KeyError, TypeError) as wrong:
        raise InvalidRegistryError(f"registry entry is malformed: {wrong!r}") from None


def _entry(raw: Mapping[str, Any]) -> Entry:
    settings = raw["settings"]
    triggers = raw.get("triggers") or {}
    return Entry(
        endpoint_name=str(settings["endpoint_name"]),
        variant_name=str(settings["variant_name"]),
        settings=settings,
        apply_settings=raw.get("apply_settings"),
        schedule=triggers.get("schedule"),
        model_package_group_name=triggers.get("model_package_group_name"),
        latency_alarm_name=triggers.get("latency_alarm_name"),
        audit_classifications=tuple(triggers.get("audit_classifications") or ()),
        inference_component_name=settings.get("inference_component_name"),
    )


def target_of(fields: Mapping[str, Any]) -> str:
    """What an event or run request names on its endpoint: an inference component or a variant."""
    return str(fields.get("inference_component_name") or fields.get("variant_name"))


def substitute(value: Any, values: Mapping[str, str]) -> Any:
    """``value`` with every ``${rs:<n>}`` replaced by ``values[n]`` (strings, lists, objects)."""
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in values:
                raise InvalidRegistryError(f"no value for the placeholder ${{rs:{key}}}")
            return values[key]

        return _PLACEHOLDER.sub(replace, value)
    if isinstance(value, Mapping):
        return {k: substitute(v, values) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [substitute(v, values) for v in value]
    return value


def read(path: str, values_json: str) -> Registry:
    """The registry in the file at ``path``, with the environment's ``REGISTRY_VALUES``."""
    with open(path, encoding="utf-8") as file:
        document = json.load(file)
    values = json.loads(values_json) if values_json else {}
    return load(document, {str(k): str(v) for k, v in values.items()})
