"""The settings document: what the construct bakes into the workflow for one endpoint.

The construct (``rightsizing_constructs``) validates its typed settings at synth time and renders
them into this JSON document (snake_case, versioned); the workflow carries it in the execution
state as ``$.settings``. This module reads it back for the handlers. Keys are documented in the
README ("Settings document"); a change that is not backwards compatible bumps
``SETTINGS_VERSION``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from .decision import DecisionInput, Guardrails, Slo, exact
from .traffic import ObservedPeak, parse_peak_traffic

SETTINGS_VERSION = 1


class InvalidSettingsError(ValueError):
    """The settings document is missing a key or has a value of the wrong kind."""


@dataclass(frozen=True, kw_only=True)
class EndpointSettings:
    """The parts of the settings document the handlers read, typed."""

    endpoint_name: str
    variant_name: str
    job_role_arn: str
    model: Mapping[str, Any]
    job: Mapping[str, Any]
    decision_input: DecisionInput
    #: What started the run (``triggers.Trigger.render()``), once the Prepare step resolved it.
    trigger: Mapping[str, Any] | None = None
    #: What the run's load test measures (``measurements.fingerprint``), once prepared.
    model_fingerprint: str | None = None
    #: The stored job the run decides from instead of a new load test (``{"job_name", ...}``).
    reuse: Mapping[str, Any] | None = None
    #: The approved version the endpoint does not serve yet, whose recommendation is pending
    #: (``{"model_package_version_arn", "expires_at", "served"}``).
    pending: Mapping[str, Any] | None = None
    #: How Prepare measures the peak (``peak_traffic``; None: the configured number is used).
    peak_traffic: ObservedPeak | None = None
    #: Where the run's peak came from (``traffic.resolve_peak``), once Prepare resolved it.
    peak_source: Mapping[str, Any] | None = None


def parse_settings(document: Mapping[str, Any]) -> EndpointSettings:
    """Read a settings document; raise :class:`InvalidSettingsError` naming what is wrong."""
    if not isinstance(document, Mapping):
        raise InvalidSettingsError(f"settings must be a JSON object, got {type(document).__name__}")
    version = document.get("settings_version")
    if version != SETTINGS_VERSION:
        raise InvalidSettingsError(
            f"settings_version {version!r} is not supported; this runtime reads {SETTINGS_VERSION}"
        )
    try:
        slo = document["slo"]
        guardrails = document["guardrails"]
        max_cost = guardrails.get("max_cost_per_hour")
        return EndpointSettings(
            endpoint_name=_text(document, "endpoint_name"),
            variant_name=_text(document, "variant_name"),
            job_role_arn=_text(document, "job_role_arn"),
            model=document["model"],
            job=document["job"],
            decision_input=DecisionInput(
                peak_requests_per_minute=_fraction(document["peak_requests_per_minute"]),
                target_utilization=_fraction(document["target_utilization"]),
                slo=Slo(
                    percentile=_text(slo, "percentile"),
                    max_latency_ms=exact(slo["max_latency_ms"]),
                ),
                guardrails=Guardrails(
                    min_instances=int(guardrails["min_instances"]),
                    max_instances=int(guardrails["max_instances"]),
                    allowed_instance_types=tuple(guardrails.get("allowed_instance_types") or ()),
                    max_cost_per_hour=None if max_cost is None else exact(max_cost),
                    min_saving_percent=exact(guardrails.get("min_saving_percent", 0)),
                    min_saving_per_month=exact(guardrails.get("min_saving_per_month", 0)),
                ),
            ),
            trigger=document.get("trigger"),
            model_fingerprint=document.get("model_fingerprint"),
            reuse=document.get("reuse"),
            pending=document.get("pending"),
            peak_traffic=parse_peak_traffic(document.get("peak_traffic")),
            peak_source=document.get("peak_source"),
        )
    except InvalidSettingsError:
        raise
    except KeyError as missing:
        raise InvalidSettingsError(f"settings are missing the key {missing}") from None
    except (TypeError, AttributeError, ArithmeticError, ValueError) as wrong:
        raise InvalidSettingsError(f"settings have a value of the wrong kind: {wrong}") from None


def _text(document: Mapping[str, Any], key: str) -> str:
    value = document[key]
    if not isinstance(value, str) or not value:
        raise InvalidSettingsError(
            f"settings key {key!r} must be a non-empty string, got {value!r}"
        )
    return value


def _fraction(value: int | float | str) -> Fraction:
    """The exact rational of a JSON number as written (0.1 is 1/10, not the binary float)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidSettingsError(f"expected a number, got {value!r}")
    return Fraction(Decimal(str(value)))
