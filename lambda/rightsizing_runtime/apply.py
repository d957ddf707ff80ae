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
from .decision import HOURS_PER_MONTH

#: Tag that marks endpoint configs this library created (only those may ever be cleaned up).
MANAGED_TAG_KEY = "rightsizing-constructs:created-by"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
INVOCATIONS_METRIC = "SageMakerVariantInvocationsPerInstance"
#: Name of the target-tracking policy the library creates when the endpoint had none.
DEFAULT_POLICY_NAME = "rightsizing-invocations-per-instance"
#: Application Auto Scaling's default cooldowns (seconds), used when the endpoint had no policy.
DEFAULT_COOLDOWN_SECONDS = 300
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


# -- A change of instance type: what each variant field becomes ---------------------------------

#: The run sets the field (the recommendation's type and count).
SET = "set"
#: Copied unchanged: the field does not depend on the instance type.
KEEP = "keep"
#: Copied while the new type has the accelerator the field is built for; dropped otherwise
#: (SageMaker then uses its default for the new type).
SAME_ACCELERATOR = "same-accelerator"
#: Copied within the same family (``ml.g5.xlarge`` -> ``ml.g5.2xlarge``); across families the
#: change is refused before anything changes, with the reason recorded.
SAME_FAMILY = "same-family"
#: Copied only while the instance type stays the same; a type change is refused.
SAME_TYPE = "same-type"
#: Its presence refuses any change: the library cannot carry it over.
REFUSE = "refuse"

#: Every member of botocore's ``ProductionVariant`` shape, what a change of instance type does to
#: it, and the AWS documentation that says why (SageMaker API reference, "ProductionVariant",
#: unless named). A member botocore adds later fails ``test_every_variant_field_is_decided``
#: until it is decided here.
VARIANT_FIELDS_ON_TYPE_CHANGE: dict[str, tuple[str, str]] = {
    "VariantName": (KEEP, "blue/green and rolling updates need the same variant name"),
    "ModelName": (KEEP, "the model IR load-tested on the new type"),
    "InitialInstanceCount": (SET, "the recommendation's count"),
    "InstanceType": (SET, "the recommendation's type"),
    "InitialVariantWeight": (KEEP, "traffic share between variants, not a property of the type"),
    "ModelDataDownloadTimeoutInSeconds": (KEEP, "time to download the model, model-specific"),
    "ContainerStartupHealthCheckTimeoutInSeconds": (KEEP, "container health check, model-specific"),
    "VariantInstanceProvisionTimeoutInSeconds": (
        KEEP,
        "how long capacity provisioning may retry (300-3600 s), for whichever type is asked",
    ),
    "EnableSSMAccess": (KEEP, "SSM access to the variant's instances, any type"),
    "CoreDumpConfig": (KEEP, "where container core dumps go (S3 URI and key), any type"),
    "ManagedInstanceScaling": (KEEP, "instance-count bounds (min, max, scale-in), any type"),
    "RoutingConfig": (KEEP, "the routing strategy across instances, any type"),
    "VolumeSizeInGB": (
        KEEP,
        "the storage the model needs; SageMaker rejects it on types with local NVMe instance "
        "storage (Developer Guide, 'Host instance storage volumes'): then CreateEndpointConfig "
        "fails before anything changes and SageMaker's message is the recorded reason",
    ),
    "InferenceAmiVersion": (
        SAME_ACCELERATOR,
        "each AMI is built for one accelerator ('Accelerator: GPU' with its NVIDIA driver and "
        "CUDA, or 'Inferentia2 and Trainium' with its Neuron driver): kept on a type with that "
        "accelerator, dropped on one without it (SageMaker's default AMI for the type)",
    ),
    "AcceleratorPartitionLayouts": (
        SAME_FAMILY,
        "MIG profiles such as mig-3g.40gb name a GPU and its memory, and SageMaker applies the "
        "layout to every accelerator of the variant's instance type: valid for that family's "
        "GPU only; re-plan the partitions for another family",
    ),
    "CapacityReservationConfig": (
        SAME_TYPE,
        "an ML capacity reservation (MlReservationArn) reserves instances of one type; with "
        "capacity-reservations-only, instances of another type would fail to launch",
    ),
    "InstancePools": (
        SAME_TYPE,
        "a heterogeneous variant lists its own instance types and priorities in its pools; one "
        "recommended type cannot replace them",
    ),
    "AcceleratorType": (
        REFUSE,
        "Elastic Inference is no longer available ('This parameter is no longer supported'): a "
        "copy would be rejected, and dropping it would remove the accelerator the model uses",
    ),
    "ServerlessConfig": (
        REFUSE,
        "a serverless variant has no instance type; the recommendation is for instances",
    ),
}

#: Instance families by accelerator, for ``InferenceAmiVersion`` (its documented accelerators).
_NEURON_FAMILIES = ("ml.inf2", "ml.trn1", "ml.trn1n", "ml.trn2")
_AMI_ACCELERATORS = {"gpu": "GPU", "neuron": "Neuron"}


def instance_family(instance_type: str) -> str:
    """``ml.g5`` of ``ml.g5.2xlarge``."""
    return instance_type.rsplit(".", 1)[0]


def accelerator_of(instance_type: str) -> str | None:
    """``GPU`` (NVIDIA: the g and p families), ``Neuron`` (Inferentia2, Trainium), or None."""
    family = instance_family(instance_type)
    if family in _NEURON_FAMILIES:
        return "Neuron"
    if family.startswith(("ml.g", "ml.p")):
        return "GPU"
    return None


def _ami_accelerator(ami_version: str) -> str | None:
    """The accelerator an ``InferenceAmiVersion`` is built for (``...-inference-gpu-2``: GPU)."""
    for marker, accelerator in _AMI_ACCELERATORS.items():
        if f"-inference-{marker}-" in ami_version:
            return accelerator
    return None


def type_change(variant: Mapping[str, Any], instance_type: str) -> tuple[dict[str, Any], list[str]]:
    """The variant with ``instance_type``, per :data:`VARIANT_FIELDS_ON_TYPE_CHANGE`.

    Returns the new variant (count not set yet) and the reasons the change is refused (empty
    when it may go ahead). A field not in the table is refused: it was never decided.
    """
    current_type = str(variant.get("InstanceType") or "")
    changed: dict[str, Any] = {}
    refused: list[str] = []
    for field_name, value in variant.items():
        action, why = VARIANT_FIELDS_ON_TYPE_CHANGE.get(
            field_name, (REFUSE, "a field this release does not know how to carry over")
        )
        moving = current_type != instance_type
        if action in (KEEP, SET):
            changed[field_name] = value
        elif action == SAME_ACCELERATOR:
            if _ami_accelerator(str(value)) == accelerator_of(instance_type):
                changed[field_name] = value
        elif (action == SAME_TYPE and not moving) or (
            action == SAME_FAMILY
            and (not moving or instance_family(current_type) == instance_family(instance_type))
        ):
            changed[field_name] = value
        else:
            refused.append(
                f"{field_name} cannot move from {current_type or 'this variant'} to "
                f"{instance_type}: {why}"
            )
    changed["InstanceType"] = instance_type
    return changed, refused


def type_change_refusals(
    current: Mapping[str, Any], variant_name: str, instance_type: str
) -> list[str]:
    """Why the variant of ``current`` (:func:`config_fields`) cannot move to ``instance_type``."""
    return type_change(variant_of(current, variant_name), instance_type)[1]


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
    """CreateEndpointConfig: a copy of ``current`` with the variant's type and count changed.

    The variant's other fields follow :data:`VARIANT_FIELDS_ON_TYPE_CHANGE` (a change it
    refuses raises ``ValueError``; the Snapshot step refuses it first). ``current`` holds
    :func:`config_fields` of the endpoint's config; ``tags`` its tags (those under the reserved
    ``aws:`` prefix cannot be set and are left out).
    """
    request: dict[str, Any] = {k: v for k, v in current.items() if k in COPIED_CONFIG_FIELDS}
    variants = [dict(v) for v in request["ProductionVariants"]]
    matching = [i for i, v in enumerate(variants) if v["VariantName"] == variant_name]
    if not matching:
        raise ValueError(f"the endpoint config has no variant {variant_name!r}")
    changed, refused = type_change(variants[matching[0]], instance_type)
    if refused:
        raise ValueError("; ".join(refused))
    changed["InitialInstanceCount"] = instance_count
    variants[matching[0]] = changed
    request["ProductionVariants"] = variants
    request["EndpointConfigName"] = name
    kept = [
        dict(t) for t in tags if not t["Key"].startswith("aws:") and t["Key"] != MANAGED_TAG_KEY
    ]
    request["Tags"] = [*kept, {"Key": MANAGED_TAG_KEY, "Value": execution_arn[-256:]}]
    return request


# -- Roles and keys the new config passes to SageMaker ---------------------------------------------


def kms_key_ids(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every ``KmsKeyId`` in an endpoint config's fields, with where it is.

    The volume key (``KmsKeyId``), and those of ``DataCaptureConfig``,
    ``AsyncInferenceConfig.OutputConfig``, a variant's ``CoreDumpConfig``...: found by name, so
    a key SageMaker adds in a new structure is found too.
    """
    found: list[tuple[str, str]] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "KmsKeyId" and isinstance(item, str) and item:
                found.append((where, item))
            else:
                found += kms_key_ids(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += kms_key_ids(item, f"{path}[{index}]")
    return found


def is_key_alias(key_id: str) -> bool:
    """``alias/name`` or an alias ARN (``arn:aws:kms:...:alias/name``): DescribeKey resolves it."""
    return key_id.startswith("alias/") or ":alias/" in key_id


def key_allowed(key_id: str, allowed_key_arns: Sequence[str]) -> bool:
    """Whether ``key_id`` (a key ARN or key ID, as a config names it) is one of the allowed keys."""
    return any(key_id in (arn, arn.rsplit("/", 1)[-1]) for arn in allowed_key_arns)


def _role_identity(role_arn: str) -> tuple[str, str]:
    """Account and role name of a role ARN (a path does not change which role it is)."""
    parts = role_arn.split(":", 5)
    account = parts[4] if len(parts) == 6 else ""
    return account, role_arn.rsplit("/", 1)[-1]


def missing_permissions(
    config: Mapping[str, Any], settings: Mapping[str, Any], key_arns: Mapping[str, str | None]
) -> list[str]:
    """What the Apply workflow would need, and was not given, to create a copy of ``config``.

    CreateEndpointConfig with ``ExecutionRoleArn`` needs ``iam:PassRole`` on it, and
    CreateEndpoint/UpdateEndpoint with a ``KmsKeyId`` need ``kms:CreateGrant`` on the key (the
    SageMaker Developer Guide, "API Permissions: Actions, Permissions, and Resources Reference";
    AWS_NOTES.md): the endpoint's settings ``execution_role`` and ``kms_keys`` grant them
    (``settings['execution_role_arn']``, ``settings['kms_key_arns']``). ``key_arns`` maps each
    key alias the config names to the key ARN it resolves to (None when it could not be read).
    Each problem names the setting to add.
    """
    endpoint = settings.get("endpoint_name", "the endpoint")
    problems = []
    role = config.get("ExecutionRoleArn")
    allowed_role = settings.get("execution_role_arn")
    if role and (allowed_role is None or _role_identity(role) != _role_identity(allowed_role)):
        problems.append(
            f"the endpoint config's ExecutionRoleArn {role} is not the execution_role of "
            f"EndpointRightsizing({endpoint}): add execution_role=iam.Role.from_role_arn(..., "
            f"'{role}') so the Apply workflow may pass it to SageMaker"
        )
    allowed_keys = list(settings.get("kms_key_arns") or [])
    for where, key_id in kms_key_ids(config):
        resolved = key_arns.get(key_id) if is_key_alias(key_id) else key_id
        if resolved is None or not key_allowed(resolved, allowed_keys):
            problems.append(
                f"the endpoint config's {where} {key_id} is not among the kms_keys of "
                f"EndpointRightsizing({endpoint}): add kms_keys=[kms.Key.from_key_arn(..., "
                "<its key ARN>)] so the Apply workflow may use it"
            )
    return problems


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


def _tracks(policy: Mapping[str, Any], metrics: Sequence[str]) -> bool:
    configuration = policy.get("TargetTrackingScalingPolicyConfiguration") or {}
    predefined = configuration.get("PredefinedMetricSpecification") or {}
    return predefined.get("PredefinedMetricType") in metrics


def recommended_autoscaling(
    snapshot: Mapping[str, Any] | None,
    recommendation: Mapping[str, Any],
    *,
    metric: str = INVOCATIONS_METRIC,
    tracked: Sequence[str] = (INVOCATIONS_METRIC,),
    default_policy_name: str = DEFAULT_POLICY_NAME,
) -> dict[str, Any]:
    """The autoscaling to put on the new config.

    The recommendation's min, max and target value on ``metric``; everything else (policy name,
    cooldowns, scale-in, other policies) kept from ``snapshot``. The policy changed is the
    snapshot's first target tracking on one of ``tracked`` (an inference component's per-copy
    metrics, say: ``component_apply``), or a new one named ``default_policy_name``.
    """
    autoscaling = recommendation["autoscaling"]
    policies = [dict(p) for p in (snapshot or {}).get("Policies", [])]
    tracking = next((p for p in policies if _tracks(p, tracked)), None)
    if tracking is None:
        tracking = {
            "PolicyName": default_policy_name,
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "PredefinedMetricSpecification": {"PredefinedMetricType": metric},
                "ScaleInCooldown": DEFAULT_COOLDOWN_SECONDS,
                "ScaleOutCooldown": DEFAULT_COOLDOWN_SECONDS,
            },
        }
        policies.append(tracking)
    configuration = dict(tracking["TargetTrackingScalingPolicyConfiguration"])
    configuration["TargetValue"] = float(autoscaling["target_value"])
    predefined = dict(configuration.get("PredefinedMetricSpecification") or {})
    if predefined.get("PredefinedMetricType") != metric:
        # The recommendation's metric (an IC moving between its two per-copy metrics).
        configuration["PredefinedMetricSpecification"] = {"PredefinedMetricType": metric}
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
    return register_request_for(
        resource_id(endpoint_name, variant_name), SCALABLE_DIMENSION, autoscaling
    )


def register_request_for(
    resource: str, dimension: str, autoscaling: Mapping[str, Any]
) -> dict[str, Any]:
    """RegisterScalableTarget of any SageMaker ``resource`` and ``dimension``."""
    request: dict[str, Any] = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": resource,
        "ScalableDimension": dimension,
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
    return policy_requests_for(
        resource_id(endpoint_name, variant_name), SCALABLE_DIMENSION, autoscaling
    )


def policy_requests_for(
    resource: str, dimension: str, autoscaling: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """PutScalingPolicy for each policy of ``autoscaling`` on any SageMaker ``resource``."""
    return [
        {
            **policy,
            "ServiceNamespace": "sagemaker",
            "ResourceId": resource,
            "ScalableDimension": dimension,
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
#: The error a cleanup execution carries for the run it finishes (``apply_steps.take_over``).
INTERRUPTED_ERROR = "ApplyInterrupted"


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
    if error.get("Error") == INTERRUPTED_ERROR:
        # A cleanup of an aborted or timed-out run: whatever the endpoint serves, the run failed.
        ensured = state.get("autoscaling") or {}
        if not ensured:
            return FAILED, _cause(error)
        return FAILED, (
            f"{_cause(error)}; {ensured.get('endpoint_config_name')} is in service with the "
            "autoscaling that matches it"
        )
    component = (state.get("recommendation") or {}).get("kind") == "inference-component"
    if (state.get("snapshot") or {}).get("already_applied"):
        if component:
            return NO_CHANGE, (
                "the inference component already runs the recommended copy count and specification"
            )
        return NO_CHANGE, "the endpoint already runs the recommended instance type and count"
    ensured = state.get("autoscaling") or {}
    if ensured.get("serves") == "new":
        if component:
            return APPLIED, (
                f"inference component {ensured.get('inference_component_name')} is in service "
                "with the recommended copies, compute requirements and copy autoscaling"
            )
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


def cause(error: Mapping[str, Any]) -> str:
    """The message of a Step Functions error (a Lambda error's ``errorMessage`` when it has one)."""
    return _cause(error)
