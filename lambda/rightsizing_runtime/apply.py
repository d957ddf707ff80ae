"""Pure pieces of the Apply workflow: names, the new endpoint config, autoscaling, outcomes.

No AWS calls here: ``apply_steps`` makes them. Field names follow botocore's models for SageMaker
and Application Auto Scaling (AWS_NOTES.md, "Endpoints and autoscaling").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from .aws import service_model

#: Tag that marks endpoint configs this library created (only those may ever be cleaned up).
MANAGED_TAG_KEY = "rightsizing-constructs:created-by"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
INVOCATIONS_METRIC = "SageMakerVariantInvocationsPerInstance"
#: Name of the target-tracking policy the library creates when the endpoint had none.
DEFAULT_POLICY_NAME = "rightsizing-invocations-per-instance"
#: Application Auto Scaling's default cooldowns (seconds), used when the endpoint had no policy.
DEFAULT_COOLDOWN_SECONDS = 300
HOURS_PER_MONTH = 730
#: Endpoint statuses of an update still under way: the workflow polls on, and autoscaling cannot
#: be changed until they end.
BUSY_STATUSES = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})

_SAGEMAKER = service_model("sagemaker")
# Every field of a DescribeEndpointConfig response that CreateEndpointConfig accepts, read from
# botocore's model so that a field SageMaker adds later is copied too.
COPIED_CONFIG_FIELDS = tuple(
    name
    for name in _SAGEMAKER.operation_model("DescribeEndpointConfig").output_shape.members
    if name in _SAGEMAKER.operation_model("CreateEndpointConfig").input_shape.members
    and name != "EndpointConfigName"
)


def new_config_name(endpoint_name: str, execution_arn: str) -> str:
    """A name for the new endpoint config: the endpoint's, ``-rs-`` and a hash of the run.

    At most 57 characters (SageMaker allows 63) and the same for a retried step, so a retry
    cannot create a second config.
    """
    digest = hashlib.sha256(execution_arn.encode()).hexdigest()[:12]
    return f"{endpoint_name[:40].rstrip('-')}-rs-{digest}"


def resource_id(endpoint_name: str, variant_name: str) -> str:
    """Application Auto Scaling's ResourceId of an endpoint variant."""
    return f"endpoint/{endpoint_name}/variant/{variant_name}"


def config_fields(description: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a DescribeEndpointConfig response that a new config copies.

    Empty values are left out: a described config may show an unset structure as ``{}``, which
    CreateEndpointConfig would reject as missing its required members.
    """
    return {
        k: description[k]
        for k in COPIED_CONFIG_FIELDS
        if k in description and description[k] not in (None, {}, [])
    }


def new_config_request(
    *,
    current: Mapping[str, Any],
    tags: Sequence[Mapping[str, str]],
    name: str,
    variant_name: str,
    instance_type: str,
    instance_count: int,
    execution_arn: str,
) -> dict[str, Any]:
    """CreateEndpointConfig: a copy of ``current``, only the variant's type and count changed.

    ``current`` holds :func:`config_fields` of the endpoint's config; ``tags`` its tags (those
    under the reserved ``aws:`` prefix cannot be set and are left out).
    """
    request: dict[str, Any] = {k: v for k, v in current.items() if k in COPIED_CONFIG_FIELDS}
    variants = [dict(v) for v in request["ProductionVariants"]]
    matching = [v for v in variants if v["VariantName"] == variant_name]
    if not matching:
        raise ValueError(f"the endpoint config has no variant {variant_name!r}")
    matching[0]["InstanceType"] = instance_type
    matching[0]["InitialInstanceCount"] = instance_count
    request["ProductionVariants"] = variants
    request["EndpointConfigName"] = name
    kept = [
        dict(t) for t in tags if not t["Key"].startswith("aws:") and t["Key"] != MANAGED_TAG_KEY
    ]
    request["Tags"] = [*kept, {"Key": MANAGED_TAG_KEY, "Value": execution_arn[-256:]}]
    return request


def variant_of(config: Mapping[str, Any], variant_name: str) -> Mapping[str, Any]:
    """The variant ``variant_name`` of an endpoint config's fields."""
    variants: list[Mapping[str, Any]] = config.get("ProductionVariants", [])
    for variant in variants:
        if variant.get("VariantName") == variant_name:
            return variant
    raise ValueError(f"the endpoint config has no variant {variant_name!r}")


def autoscaling_snapshot(
    targets: Sequence[Mapping[str, Any]], policies: Sequence[Mapping[str, Any]]
) -> dict[str, Any] | None:
    """What Application Auto Scaling holds for a variant, in the form this module re-applies.

    ``targets``/``policies`` are DescribeScalableTargets' ``ScalableTargets`` and
    DescribeScalingPolicies' ``ScalingPolicies`` for the variant. None when it has no target.
    """
    if not targets:
        return None
    target = targets[0]
    snapshot: dict[str, Any] = {
        "MinCapacity": target["MinCapacity"],
        "MaxCapacity": target["MaxCapacity"],
        "Policies": [
            {
                k: policy[k]
                for k in (
                    "PolicyName",
                    "PolicyType",
                    "StepScalingPolicyConfiguration",
                    "TargetTrackingScalingPolicyConfiguration",
                    "PredictiveScalingPolicyConfiguration",
                )
                if k in policy
            }
            for policy in policies
        ],
    }
    if "SuspendedState" in target:
        snapshot["SuspendedState"] = target["SuspendedState"]
    return snapshot


def _tracks_invocations(policy: Mapping[str, Any]) -> bool:
    configuration = policy.get("TargetTrackingScalingPolicyConfiguration") or {}
    predefined = configuration.get("PredefinedMetricSpecification") or {}
    return predefined.get("PredefinedMetricType") == INVOCATIONS_METRIC


def recommended_autoscaling(
    snapshot: Mapping[str, Any] | None, recommendation: Mapping[str, Any]
) -> dict[str, Any]:
    """The autoscaling to put on the new config.

    The recommendation's min, max and target value; everything else (policy name, cooldowns,
    scale-in, other policies) kept from ``snapshot``.
    """
    autoscaling = recommendation["autoscaling"]
    policies = [dict(p) for p in (snapshot or {}).get("Policies", [])]
    tracking = next((p for p in policies if _tracks_invocations(p)), None)
    if tracking is None:
        tracking = {
            "PolicyName": DEFAULT_POLICY_NAME,
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "PredefinedMetricSpecification": {"PredefinedMetricType": INVOCATIONS_METRIC},
                "ScaleInCooldown": DEFAULT_COOLDOWN_SECONDS,
                "ScaleOutCooldown": DEFAULT_COOLDOWN_SECONDS,
            },
        }
        policies.append(tracking)
    configuration = dict(tracking["TargetTrackingScalingPolicyConfiguration"])
    configuration["TargetValue"] = float(autoscaling["target_value"])
    tracking["TargetTrackingScalingPolicyConfiguration"] = configuration
    result: dict[str, Any] = {
        "MinCapacity": int(autoscaling["min_capacity"]),
        "MaxCapacity": int(autoscaling["max_capacity"]),
        "Policies": policies,
    }
    if snapshot and "SuspendedState" in snapshot:
        result["SuspendedState"] = snapshot["SuspendedState"]
    return result


def register_request(
    endpoint_name: str, variant_name: str, autoscaling: Mapping[str, Any]
) -> dict[str, Any]:
    """RegisterScalableTarget for ``autoscaling`` (as :func:`autoscaling_snapshot` shapes it)."""
    request: dict[str, Any] = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": resource_id(endpoint_name, variant_name),
        "ScalableDimension": SCALABLE_DIMENSION,
        "MinCapacity": autoscaling["MinCapacity"],
        "MaxCapacity": autoscaling["MaxCapacity"],
    }
    if "SuspendedState" in autoscaling:
        request["SuspendedState"] = autoscaling["SuspendedState"]
    return request


def policy_requests(
    endpoint_name: str, variant_name: str, autoscaling: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """PutScalingPolicy for each policy of ``autoscaling``."""
    return [
        {
            **policy,
            "ServiceNamespace": "sagemaker",
            "ResourceId": resource_id(endpoint_name, variant_name),
            "ScalableDimension": SCALABLE_DIMENSION,
        }
        for policy in autoscaling["Policies"]
    ]


def monthly_savings(before_per_hour: float | None, after_per_hour: float | None) -> float | None:
    """Estimated monthly savings (730 hours) of going from one hourly cost to the other."""
    if before_per_hour is None or after_per_hour is None:
        return None
    saved = (Decimal(str(before_per_hour)) - Decimal(str(after_per_hour))) * HOURS_PER_MONTH
    return float(saved.quantize(Decimal("0.01")))


#: Outcomes of an apply run, as recorded in the ledger and notified.
APPLIED = "applied"
NO_CHANGE = "no-change"
REJECTED = "rejected"
ROLLED_BACK = "rolled-back"
FAILED = "failed"


def outcome(state: Mapping[str, Any]) -> tuple[str, str]:
    """The run's outcome and reason, from the workflow state it ended with.

    One place decides it, for every path: a lock held by another run is ``rejected``; an endpoint
    already running the recommendation is ``no-change``; autoscaling applied for the new config
    is ``applied``; back on the old config is ``rolled-back`` (SageMaker rolled the update back)
    or ``failed`` (an error stopped the run); an error before anything changed is ``failed``.
    """
    error = state.get("error") or {}
    if error.get("Error") == "EndpointLockedError":
        return REJECTED, _cause(error)
    if (state.get("snapshot") or {}).get("already_applied"):
        return NO_CHANGE, "the endpoint already runs the recommended instance type and count"
    ensured = state.get("autoscaling") or {}
    if ensured.get("serves") == "new":
        return APPLIED, (
            f"{ensured.get('endpoint_config_name')} is in service with the recommended "
            "instance type, count and autoscaling"
        )
    update = state.get("update") or {}
    if error:
        return FAILED, _cause(error)
    if update.get("status") == "InService" and ensured.get("serves") == "previous":
        reason = update.get("failure_reason") or "SageMaker rolled the update back"
        return ROLLED_BACK, reason
    if update.get("status"):
        return FAILED, update.get("failure_reason") or f"the update ended {update['status']}"
    return FAILED, "the run ended before the update"


def _cause(error: Mapping[str, Any]) -> str:
    """The message of a Step Functions error: a Lambda error's ``errorMessage`` when it has one."""
    cause = error.get("Cause") or error.get("Error") or "unknown error"
    try:
        parsed = json.loads(cause)
    except (TypeError, ValueError):
        return str(cause)
    return str(parsed.get("errorMessage", cause)) if isinstance(parsed, dict) else str(cause)
