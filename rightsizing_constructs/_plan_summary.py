"""The one line ``plan`` prints on stderr: the choice, what it and the current state cost."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ._runtime import import_runtime


def summary(detail: dict[str, Any]) -> str:
    """One line for people: the choice and what it and the current config cost, with units."""
    if detail.get("kind") == "inference-component":
        return _component_summary(detail)
    peak = _peak_note(detail)
    if detail["action"] == "reject":
        return "plan: reject: no candidate is eligible; the reasons are in the detail" + peak
    cost = Decimal(repr(detail["estimated_cost_per_hour"]))
    per_month = cost * import_runtime("decision").HOURS_PER_MONTH
    line = (
        f"plan: {detail['action']} {detail['instance_type']} x{detail['instance_count']}, "
        f"{_usd(cost)} per hour at peak ({_usd(per_month, cents=True)} per month){peak}"
    )
    current = detail["current"]
    if current is not None and current["instance_type"] is not None:
        now = current["estimated_cost_per_hour"]
        line += f"; now {current['instance_type']} x{current['instance_count']}, " + (
            "cost unknown (IR did not price its type)"
            if now is None
            else f"{_usd(Decimal(repr(now)))} per hour"
        )
    return line


def _peak_note(detail: dict[str, Any]) -> str:
    """Where the peak came from: the flag, always.

    ``plan`` reads no metrics, unlike a run whose endpoint has ``peak_traffic``: its
    ``inputs.peak_source`` says ``configured``.
    """
    inputs = detail["inputs"]
    return (
        f"; peak {inputs['peak_requests_per_minute']} requests per minute, "
        f"{inputs['peak_source']['kind']} (--peak-requests-per-minute)"
    )


def _usd(amount: Decimal, *, cents: bool = False) -> str:
    """``2.04 USD``, at most 4 decimals (or cents, for a month).

    IR's ``CostPerHour`` is in US dollars (SageMaker Developer Guide, "Recommendation results").
    """
    rounded = round(amount, 2 if cents else 4)
    return f"{rounded if cents else rounded.normalize():f} USD"


def _component_summary(detail: dict[str, Any]) -> str:
    """One line for people, like the endpoint's: the choice, its copies and cost, with units."""
    inputs = detail["inputs"]
    peak = (
        f"; peak {inputs['peak_concurrent_requests']} concurrent requests, configured "
        "(--peak-concurrent-requests)"
    )
    if detail["action"] == "reject":
        return "plan: reject: no candidate is eligible; the reasons are in the detail" + peak
    hours = import_runtime("decision").HOURS_PER_MONTH
    cost = Decimal(repr(detail["estimated_cost_per_hour"]))
    component = detail["inference_component"]
    line = (
        f"plan: {detail['action']} {detail['instance_type']} x{detail['instance_count']}, "
        f"{component['copy_count']} copies ({component['copies_per_instance']} per instance), "
        f"{_usd(cost)} per hour at peak ({_usd(cost * hours, cents=True)} per month){peak}"
    )
    current = detail["current"]
    if current is not None:
        now = current["estimated_cost_per_hour"]
        line += f"; now {current['copy_count']} copies on {current['instance_type']}, " + (
            "cost unknown" if now is None else f"{_usd(Decimal(repr(now)))} per hour"
        )
    return line
