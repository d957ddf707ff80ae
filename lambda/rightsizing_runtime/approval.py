"""``ApplyMode.APPROVAL``: what a person is asked, where the answer's token is kept (pure).

The Apply workflow's ``RequestApproval`` step says what would change and what it saves
(:func:`request`), ``AskForApproval`` notifies it, and ``WaitForApproval`` (a
``.waitForTaskToken`` task) stores the task token in the ledger (:func:`item`) under the
endpoint's ``pk`` with ``sk=approval#<variant>``, where ``python -m rightsizing_constructs
approve|reject`` finds it and calls ``SendTaskSuccess`` / ``SendTaskFailure`` (Step Functions
API Reference). A newer recommendation for the same variant replaces the item: approving by
endpoint answers the newest; the older run waits until its time-out (or an answer by
``--token``), then records ``rejected``.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from . import apply

#: The error ``reject`` sends (``SendTaskFailure``'s ``error``).
REJECTED_ERROR = "ApprovalRejected"
#: What Step Functions raises when the wait's ``TimeoutSecondsPath`` runs out.
TIMEOUT_ERROR = "States.Timeout"


def sort_key(variant_name: str, inference_component_name: str | None = None) -> str:
    """The ledger sort key of a waiting approval (under ``endpoint#<name>``).

    ``approval#<variant>`` for a variant; ``approval#<variant>#<component>`` for an inference
    component, so the components of one endpoint each wait for their own answer.
    """
    if inference_component_name:
        return f"approval#{variant_name}#{inference_component_name}"
    return f"approval#{variant_name}"


def state_sort_key(settings: Mapping[str, Any]) -> str:
    """:func:`sort_key` of a run's apply settings."""
    return sort_key(settings["variant_name"], settings.get("inference_component_name"))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def request(state: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """What the approver is told: the change, its cost, its saving, how to answer."""
    settings, recommendation = state["settings"], state["recommendation"]
    current = recommendation.get("current") or {}
    before_cost = _number(current.get("estimated_cost_per_hour"))
    after_cost = _number(recommendation.get("estimated_cost_per_hour"))
    saving = apply.monthly_savings(before_cost, after_cost)
    change = {
        "before": {
            "instance_type": current.get("instance_type"),
            "instance_count": current.get("instance_count"),
            "cost_per_hour": before_cost,
        },
        "after": {
            "instance_type": recommendation.get("instance_type"),
            "instance_count": recommendation.get("instance_count"),
            "cost_per_hour": after_cost,
        },
        "estimated_monthly_savings": saving,
        "job_name": recommendation.get("job_name"),
    }
    block = recommendation.get("inference_component") or {}
    if recommendation.get("kind") == "inference-component":
        # An inference component's change is its copies (issue 17): say so first.
        change["inference_component"] = {
            "name": recommendation.get("inference_component_name"),
            "copy_count_before": (block.get("current") or {}).get("copy_count"),
            "copy_count_after": block.get("copy_count"),
            "copies_per_instance": block.get("copies_per_instance"),
        }
    names = (
        f"--endpoint-name {shlex.quote(str(settings['endpoint_name']))} "
        f"--variant-name {shlex.quote(str(settings['variant_name']))} "
        "--ledger-table <the engine's ledger table>"
    )
    if settings.get("inference_component_name"):
        # The component's run waits under its own key (sort_key): the command must name it.
        component_name = shlex.quote(str(settings["inference_component_name"]))
        names += f" --inference-component-name {component_name}"
    expires = now + timedelta(seconds=int(settings["approval_timeout_seconds"]))
    summary = _summary(change)
    if "inference_component" in change:
        component = change["inference_component"]
        summary = (
            f"{component['name']}: {component['copy_count_before']} -> "
            f"{component['copy_count_after']} copies; {summary}"
        )
    return {
        "summary": summary,
        "change": change,
        "approve_command": f"python -m rightsizing_constructs approve {names}",
        "reject_command": f"python -m rightsizing_constructs reject {names} --reason '...'",
        "expires_at": expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _summary(change: Mapping[str, Any]) -> str:
    before, after = change["before"], change["after"]

    def config(side: Mapping[str, Any]) -> str:
        cost = side["cost_per_hour"]
        priced = "unknown cost" if cost is None else f"{cost:.4f} USD/hour"
        return f"{side['instance_type']} x{side['instance_count']} ({priced})"

    saving = change["estimated_monthly_savings"]
    saves = "unknown" if saving is None else f"{saving:.2f} USD/month"
    return f"{config(before)} -> {config(after)}; estimated saving {saves}"


def item(
    state: Mapping[str, Any], execution_arn: str, task_token: str, now: datetime
) -> dict[str, Any]:
    """The ledger item of a waiting approval (DynamoDB attribute values)."""
    settings, recommendation = state["settings"], state["recommendation"]
    expires = int(now.timestamp()) + int(settings["approval_timeout_seconds"])
    return {
        "pk": {"S": f"endpoint#{settings['endpoint_name']}"},
        "sk": {"S": state_sort_key(settings)},
        "task_token": {"S": task_token},
        "execution_arn": {"S": execution_arn},
        "job_name": {"S": str(recommendation.get("job_name"))},
        "requested_at": {"S": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
        "expires_at": {"N": str(expires)},
        "summary": {"S": str((state.get("approval_request") or {}).get("summary", ""))},
    }


def not_approved(approval: Mapping[str, Any]) -> tuple[str, str] | None:
    """The outcome of a run that was not approved (``$.approval`` holds the error), or None."""
    error = approval.get("Error")
    if error is None:
        return None
    cause = apply.cause(approval)
    if error == REJECTED_ERROR:
        return apply.REJECTED, f"the change was rejected: {cause}; nothing was changed"
    if error == TIMEOUT_ERROR:
        return apply.REJECTED, "no approval came before approval_timeout; nothing was changed"
    return apply.FAILED, f"the approval could not be asked for: {cause}; nothing was changed"
