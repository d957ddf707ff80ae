"""ApplyStep: the AWS calls of the Apply workflow, one step per invocation.

Input: ``{"step": "<name>", "state": <the workflow state>, "execution_arn": "..."}``; the
output becomes ``$.<step's result path>`` in the state machine. The order, the waits and the
compensation are the state machine's (``rightsizing_constructs.apply``); each step here is
idempotent, so a retried invocation does no harm. The ledger table is ``LEDGER_TABLE_NAME``.

State keys: ``recommendation`` (the event detail), ``settings`` (endpoint, variant, deployment,
lock duration, the execution role and keys it may pass), ``lock``, ``snapshot``, ``new_config``,
``update``, ``autoscaling``, ``error``.

The lock item (``pk=endpoint#<name>``, ``sk=lock``) also keeps the run's snapshot
(``run_snapshot``: "snapshot" is a DynamoDB reserved word; what
autoscaling the endpoint must keep) until the run releases it: a run that was aborted or timed
out is finished by :func:`take_over` (started by the Apply rule on the execution's status
change), and one whose cleanup never came leaves it for the next run that takes the expired
lock (:func:`acquire_lock`, :func:`snapshot`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

from . import apply, approval, component_apply, component_decision
from .aws import (
    CLIENT_CONFIG,
    endpoint_not_found,
    error_code,
    is_retryable,
    retryable_errors_typed,
    sagemaker_client,
)
from .errors import EndpointNotFoundError, UnsupportedEndpointError
from .metrics import (
    APPLIED_CHANGES,
    APPLIED_MONTHLY_SAVING,
    ENDPOINT_NAME,
    VARIANT_NAME,
    emit,
)

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

sagemaker = sagemaker_client()
autoscaling = boto3.client("application-autoscaling", config=CLIENT_CONFIG)
dynamodb = boto3.client("dynamodb", config=CLIENT_CONFIG)
kms = boto3.client("kms", config=CLIENT_CONFIG)
# GPUs per instance of an inference component's instance type (issue 17: accelerators per copy).
ec2 = boto3.client("ec2", config=CLIENT_CONFIG)


class EndpointLockedError(RuntimeError):
    """Another run holds the endpoint's lock; this run changes nothing (DESIGN.md invariant 3)."""


class EndpointBusyError(RuntimeError):
    """The endpoint is updating; the state machine retries the step later."""


class ComponentBusyError(RuntimeError):
    """The inference component is updating; the state machine retries the step later."""


@retryable_errors_typed
def handler(event: dict[str, Any], _context: object = None) -> Any:
    """Run the step named in the event."""
    if event["step"] == "await_approval":
        # The .waitForTaskToken invocation: its answer comes later, by SendTaskSuccess/Failure.
        return await_approval(event["state"], event["execution_arn"], event["task_token"])
    step = STEPS[event["step"]]
    return step(event["state"], event["execution_arn"])


def _table() -> str:
    return os.environ["LEDGER_TABLE_NAME"]


def _endpoint_key(state: Mapping[str, Any]) -> dict[str, Any]:
    return {"pk": {"S": f"endpoint#{state['settings']['endpoint_name']}"}}


# -- Lock ---------------------------------------------------------------------------------------


def acquire_lock(state: Mapping[str, Any], execution_arn: str) -> dict[str, Any]:
    """Take the endpoint's lock for this run, or raise :class:`EndpointLockedError`.

    A conditional write: free, expired (a run that died), or already ours (a retried step).
    Taking over an expired lock keeps the snapshot the dead run stored with it: when that run
    may have left the endpoint without its autoscaling, this run restores it (``inherited``).
    """
    now = int(time.time())
    expires = now + int(state["settings"]["lock_seconds"])
    try:
        previous = dynamodb.update_item(
            TableName=_table(),
            Key=_lock_key(state),
            UpdateExpression="SET holder = :me, expires_at = :expires",
            ConditionExpression="attribute_not_exists(pk) OR expires_at < :now OR holder = :me",
            ExpressionAttributeValues={
                ":now": {"N": str(now)},
                ":me": {"S": execution_arn},
                ":expires": {"N": str(expires)},
            },
            ReturnValues="ALL_OLD",
        ).get("Attributes", {})
    except ClientError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise
        holder = dynamodb.get_item(
            TableName=_table(), Key=_lock_key(state), ConsistentRead=True
        ).get("Item", {})
        raise EndpointLockedError(
            f"{state['settings']['endpoint_name']} is being changed by "
            f"{holder.get('holder', {}).get('S', 'another run')}; "
            "this recommendation is not applied"
        ) from error
    lock: dict[str, Any] = {"holder": execution_arn, "expires_at": expires}
    stored = _stored_snapshot(previous)
    dead = previous.get("holder", {}).get("S")
    if dead and dead != execution_arn and stored and stored.get("autoscaling"):
        lock["inherited"] = {"from": dead, "autoscaling": stored["autoscaling"]}
    return lock


def _lock_key(state: Mapping[str, Any]) -> dict[str, Any]:
    return {**_endpoint_key(state), "sk": {"S": "lock"}}


def _stored_snapshot(item: Mapping[str, Any]) -> dict[str, Any] | None:
    """The snapshot a run stored with its lock (:func:`snapshot`), if any."""
    text = item.get("run_snapshot", {}).get("S")
    return json.loads(text) if text else None


def _may_lack_autoscaling(state: Mapping[str, Any]) -> bool:
    """Whether the run may leave the endpoint without the autoscaling it must have.

    It deregistered the scalable target (or inherited a dead run's snapshot) and
    EnsureAutoscaling never finished: the lock keeps the snapshot for the next run.
    """
    if state.get("autoscaling"):
        return False
    snapshot_ = state.get("snapshot") or {}
    inherited = (state.get("lock") or {}).get("inherited")
    deregistered = bool(state.get("new_config")) and bool(snapshot_.get("deregister_first"))
    return deregistered or (inherited is not None and not snapshot_)


def release_lock(state: Mapping[str, Any], execution_arn: str) -> dict[str, Any]:
    """Release the lock if this run holds it (never another run's).

    A run that may have left the endpoint without its autoscaling (:func:`_may_lack_autoscaling`)
    expires its lock instead of deleting it: the snapshot stays, and the next run restores it.
    """
    keep = _may_lack_autoscaling(state)
    try:
        if keep:
            dynamodb.update_item(
                TableName=_table(),
                Key=_lock_key(state),
                UpdateExpression="SET expires_at = :expired",
                ConditionExpression="holder = :me",
                ExpressionAttributeValues={":me": {"S": execution_arn}, ":expired": {"N": "0"}},
            )
        else:
            dynamodb.delete_item(
                TableName=_table(),
                Key=_lock_key(state),
                ConditionExpression="holder = :me",
                ExpressionAttributeValues={":me": {"S": execution_arn}},
            )
    except ClientError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise
        return {"released": False}
    return {"released": True, "snapshot_kept": keep}


def take_over(state: Mapping[str, Any], execution_arn: str) -> dict[str, Any]:
    """Finish an apply run that was aborted or timed out: the cleanup execution's first step.

    ``state["interrupted"]`` is what the Apply rule passes from the "Step Functions Execution
    Status Change" event: the execution's ARN, its status and its input (recommendation and
    settings). If that run still holds the endpoint's lock, this execution takes it over and
    returns the run's state (the snapshot stored with the lock, the config it may have
    created) with ``repair`` true: the workflow then makes autoscaling match what the endpoint
    serves (EnsureAutoscaling waits out an update still under way), records ``failed`` and
    releases the lock. Otherwise the run changed nothing that needs repair (it held no lock,
    or had released it), and the record says so.
    """
    interrupted = state["interrupted"]
    dead, status = interrupted["execution_arn"], interrupted.get("status") or "ABORTED"
    original = json.loads(interrupted.get("input") or "{}")
    settings = original.get("settings") or {}
    if "endpoint_name" not in settings:
        # A cleanup of a cleanup: the run it finished carried the original's input.
        inner = json.loads((original.get("interrupted") or {}).get("input") or "{}")
        settings, original = inner.get("settings") or {}, inner
    reason = f"the apply execution {dead} was {status}"
    result: dict[str, Any] = {
        "settings": settings,
        "recommendation": original.get("recommendation") or {},
        "interrupted": {"execution_arn": dead, "status": status},
        "error": {"Error": apply.INTERRUPTED_ERROR, "Cause": reason},
        "repair": False,
    }
    if "endpoint_name" not in settings:
        result["error"]["Cause"] = reason + "; its input named no endpoint, nothing to repair"
        result["settings"] = {"endpoint_name": "unknown", "variant_name": "unknown"}
        return result
    try:
        previous = dynamodb.update_item(
            TableName=_table(),
            Key=_lock_key(result),
            # The lock now lasts as long as this execution may run.
            UpdateExpression="SET holder = :me, expires_at = :expires",
            ConditionExpression="holder = :dead",
            ExpressionAttributeValues={
                ":me": {"S": execution_arn},
                ":dead": {"S": dead},
                ":expires": {"N": str(int(time.time()) + int(settings.get("lock_seconds", 0)))},
            },
            ReturnValues="ALL_OLD",
        )["Attributes"]
    except ClientError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise
        result["error"]["Cause"] = reason + "; it held no lock, so it left nothing to repair"
        return result
    result["lock"] = {"holder": execution_arn, "taken_from": dead}
    stored = _stored_snapshot(previous)
    if stored is None:
        result["error"]["Cause"] = reason + " before it changed anything"
        return result
    result["snapshot"] = stored
    if stored.get("kind") == component_decision.KIND:
        # An IC run: what it asked UpdateInferenceComponent for tells new from previous.
        result["component_update"] = {"request": stored.get("update_request")}
    else:
        result["new_config"] = {"name": stored["new_config_name"]}
    result["repair"] = True
    return result


# -- Snapshot and new config ----------------------------------------------------------------------


def snapshot(state: Mapping[str, Any], execution_arn: str) -> dict[str, Any]:
    """Everything needed to copy the endpoint config and to restore autoscaling.

    Refuses, before anything changes, a config this run could not copy: a variant field that
    cannot move to the recommended type (``apply.VARIANT_FIELDS_ON_TYPE_CHANGE``), or an
    execution role or KMS key the endpoint's settings do not allow (``apply.missing_permissions``).
    The snapshot is stored with the lock, where a cleanup or the next run finds it.
    """
    settings = state["settings"]
    endpoint_name, variant_name = settings["endpoint_name"], settings["variant_name"]
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as error:
        if endpoint_not_found(error):
            raise EndpointNotFoundError(f"endpoint {endpoint_name!r} does not exist") from error
        raise
    if endpoint["EndpointStatus"] != "InService":
        raise UnsupportedEndpointError(
            f"endpoint {endpoint_name!r} is {endpoint['EndpointStatus']}, not InService; "
            "nothing was changed"
        )
    description = sagemaker.describe_endpoint_config(
        EndpointConfigName=endpoint["EndpointConfigName"]
    )
    fields = apply.config_fields(description)
    variant = apply.variant_of(fields, variant_name)
    recommendation = state["recommendation"]
    already = (
        variant.get("InstanceType") == recommendation["instance_type"]
        and variant.get("InitialInstanceCount") == recommendation["instance_count"]
    )
    if not already:
        problems = apply.type_change_refusals(fields, variant_name, recommendation["instance_type"])
        problems += apply.missing_permissions(fields, settings, _resolve_aliases(fields, settings))
        if problems:
            raise UnsupportedEndpointError("; ".join(problems) + "; nothing was changed")
    tags = sagemaker.list_tags(ResourceArn=description["EndpointConfigArn"]).get("Tags", [])
    snapshot_autoscaling, repair = _autoscaling_now(
        state, apply.resource_id(endpoint_name, variant_name), apply.SCALABLE_DIMENSION
    )
    result = {
        "endpoint_config_name": endpoint["EndpointConfigName"],
        "config": fields,
        "tags": tags,
        "instance_type": variant.get("InstanceType"),
        "instance_count": variant.get("InitialInstanceCount"),
        "autoscaling": snapshot_autoscaling,
        "already_applied": already,
        "repair_autoscaling": repair,
        # UpdateEndpoint fails when it changes the instance type of an autoscaled variant.
        "deregister_first": snapshot_autoscaling is not None
        and variant.get("InstanceType") != recommendation["instance_type"],
    }
    _store_with_lock(state, execution_arn, result)
    return result


def _autoscaling_now(
    state: Mapping[str, Any], resource: str, dimension: str
) -> tuple[dict[str, Any] | None, bool]:
    """The target's autoscaling as registered now, and whether this run must repair it.

    A dead run that removed the target and never restored it left what it removed with its
    lock (``inherited``): this run restores that.
    """
    targets = autoscaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource], ScalableDimension=dimension
    )["ScalableTargets"]
    policies = autoscaling.describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=dimension
    )["ScalingPolicies"]
    registered = apply.autoscaling_snapshot(targets, policies)
    inherited = (state.get("lock") or {}).get("inherited")
    if registered is None and inherited is not None:
        return inherited["autoscaling"], True
    return registered, False


def _resolve_aliases(fields: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """The key ARN of each key alias the config names (None if it cannot be read).

    Only with ``kms_keys`` given: DescribeKey is granted on those keys alone, so an alias of
    another key cannot be read, and it is not allowed either way.
    """
    resolved: dict[str, Any] = {}
    if not settings.get("kms_key_arns"):
        return resolved
    for _where, key_id in apply.kms_key_ids(fields):
        if apply.is_key_alias(key_id) and key_id not in resolved:
            try:
                resolved[key_id] = kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
            except ClientError as error:
                if is_retryable(error):
                    # Throttled, or KMS failing: no answer about the key; the step is retried.
                    raise
                logger.info("cannot read %s: %s", key_id, error_code(error))
                resolved[key_id] = None
    return resolved


def _store_with_lock(
    state: Mapping[str, Any], execution_arn: str, snapshot_: Mapping[str, Any]
) -> None:
    """Keep what a repair needs with this run's lock (raises if the lock is no longer ours)."""
    stored = {
        key: snapshot_[key]
        for key in (
            "endpoint_config_name",
            "instance_type",
            "instance_count",
            "autoscaling",
            "deregister_first",
        )
    }
    stored["new_config_name"] = apply.new_config_name(
        state["settings"]["endpoint_name"], execution_arn
    )
    _write_run_snapshot(state, execution_arn, stored)


def _write_run_snapshot(
    state: Mapping[str, Any], execution_arn: str, stored: Mapping[str, Any]
) -> None:
    """Keep ``stored`` with this run's lock (raises if the lock is no longer ours)."""
    try:
        dynamodb.update_item(
            TableName=_table(),
            Key=_lock_key(state),
            UpdateExpression="SET run_snapshot = :snapshot",
            ConditionExpression="holder = :me",
            ExpressionAttributeValues={
                ":me": {"S": execution_arn},
                ":snapshot": {"S": _json(stored)},
            },
        )
    except ClientError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise
        raise EndpointLockedError(
            f"this run's lock on {state['settings']['endpoint_name']} expired and was taken; "
            "nothing was changed"
        ) from error


def create_config(state: Mapping[str, Any], execution_arn: str) -> dict[str, Any]:
    """Create the new endpoint config (a retry finds it already there)."""
    settings, recommendation = state["settings"], state["recommendation"]
    name = apply.new_config_name(settings["endpoint_name"], execution_arn)
    request = apply.new_config_request(
        current=state["snapshot"]["config"],
        tags=state["snapshot"]["tags"],
        name=name,
        variant_name=settings["variant_name"],
        instance_type=recommendation["instance_type"],
        instance_count=int(recommendation["instance_count"]),
        execution_arn=execution_arn,
    )
    try:
        sagemaker.create_endpoint_config(**request)
    except ClientError as error:
        if "already exist" not in str(error):
            raise
        logger.info("endpoint config %s already exists (retried step)", name)
    return {"name": name}


# -- Update ---------------------------------------------------------------------------------------


def deregister(state: Mapping[str, Any], _execution_arn: str) -> dict[str, Any]:
    """Deregister the variant's scalable target (also deletes its policies) before a type change."""
    settings = state["settings"]
    try:
        autoscaling.deregister_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=apply.resource_id(settings["endpoint_name"], settings["variant_name"]),
            ScalableDimension=apply.SCALABLE_DIMENSION,
        )
    except ClientError as error:
        if error_code(error) != "ObjectNotFoundException":
            raise
    return {"deregistered": True}


def update(state: Mapping[str, Any], _execution_arn: str) -> dict[str, Any]:
    """Point the endpoint at the new config; the new instance count takes effect.

    ``RetainAllVariantProperties`` keeps the variants' current weights, and excluding
    ``DesiredInstanceCount`` lets the new config's ``InitialInstanceCount`` apply (AWS_NOTES.md).
    """
    settings = state["settings"]
    request: dict[str, Any] = {
        "EndpointName": settings["endpoint_name"],
        "EndpointConfigName": state["new_config"]["name"],
        "RetainAllVariantProperties": True,
        "ExcludeRetainedVariantProperties": [{"VariantPropertyType": "DesiredInstanceCount"}],
    }
    if settings.get("deployment_config"):
        request["DeploymentConfig"] = settings["deployment_config"]
    sagemaker.update_endpoint(**request)
    return {"status": "Updating"}


def check_update(state: Mapping[str, Any], _execution_arn: str) -> dict[str, Any]:
    """Where the update stands: status, the config the endpoint serves, SageMaker's reason."""
    endpoint = sagemaker.describe_endpoint(EndpointName=state["settings"]["endpoint_name"])
    return {
        "status": endpoint["EndpointStatus"],
        "endpoint_config_name": endpoint.get("EndpointConfigName"),
        "failure_reason": endpoint.get("FailureReason"),
    }


def ensure_autoscaling(state: Mapping[str, Any], _execution_arn: str) -> dict[str, Any]:
    """Give the endpoint the autoscaling that matches the config it serves now.

    On the new config: the recommendation's autoscaling. On the previous one (rolled back, or the
    run failed before the update): the snapshot's, exactly. This one step both finishes a
    successful run and compensates a failed one (DESIGN.md invariant 1).
    """
    settings = state["settings"]
    endpoint_name, variant_name = settings["endpoint_name"], settings["variant_name"]
    endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    if endpoint["EndpointStatus"] in apply.BUSY_STATUSES:
        raise EndpointBusyError(f"{endpoint_name} is {endpoint['EndpointStatus']}")
    serving = endpoint.get("EndpointConfigName")
    new_config = (state.get("new_config") or {}).get("name")
    snapshot_autoscaling = state["snapshot"]["autoscaling"]
    if new_config is not None and serving == new_config:
        desired: Mapping[str, Any] | None = apply.recommended_autoscaling(
            snapshot_autoscaling, state["recommendation"]
        )
        serves = "new"
    else:
        desired = snapshot_autoscaling
        serves = "previous"
    if desired is not None:
        autoscaling.register_scalable_target(
            **apply.register_request(endpoint_name, variant_name, desired)
        )
        for request in apply.policy_requests(endpoint_name, variant_name, desired):
            autoscaling.put_scaling_policy(**request)
    return {"serves": serves, "endpoint_config_name": serving, "applied": desired}


# -- Inference components (issue 17; contract "Apply for an IC") ---------------------------------
#
# The same lock, record, notify and release as an endpoint's run; these steps replace Snapshot,
# CreateConfig, Deregister, UpdateEndpoint, CheckUpdate and EnsureAutoscaling when the event's
# detail has "kind": "inference-component". The scalable target stays registered throughout
# (``component_apply``: AWS refuses no IC update on an autoscaled target), so no step removes it.


def _component_name(state: Mapping[str, Any]) -> str:
    return str(state["settings"]["inference_component_name"])


def _describe_component(name: str) -> dict[str, Any]:
    try:
        return dict(sagemaker.describe_inference_component(InferenceComponentName=name))
    except ClientError as error:
        if endpoint_not_found(error):
            raise EndpointNotFoundError(f"inference component {name!r} does not exist") from error
        raise


def component_snapshot(state: Mapping[str, Any], execution_arn: str) -> dict[str, Any]:
    """The IC, its endpoint's instance type and its copy autoscaling; the update to send.

    Refuses before anything changes (``UnsupportedEndpointError``, recorded and notified): an
    IC not in service, on another endpoint, with per-instance-type ``Specifications``, whose
    endpoint runs another instance type than the recommendation's (only same-type changes are
    applied: contract, "The decision for an IC"), or with more copies per instance than GPUs.
    """
    settings, recommendation = state["settings"], state["recommendation"]
    name, endpoint_name = _component_name(state), settings["endpoint_name"]
    block = component_apply.changes(recommendation)
    if recommendation.get("inference_component_name") not in (None, name):
        raise UnsupportedEndpointError(
            f"the recommendation is for {recommendation.get('inference_component_name')}, the "
            f"settings for {name}; nothing was changed"
        )
    description = _describe_component(name)
    fields = component_apply.component_fields(description)
    problems = []
    if fields["status"] != "InService":
        problems.append(f"inference component {name!r} is {fields['status']}, not InService")
    if fields["endpoint_name"] != endpoint_name:
        problems.append(f"inference component {name!r} is on {fields['endpoint_name']}")
    if description.get("Specifications"):
        problems.append(
            f"inference component {name!r} has a specification per instance type "
            "(Specifications), which this release does not change"
        )
    if problems:
        raise UnsupportedEndpointError("; ".join(problems) + "; nothing was changed")
    endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    variant_name = fields["variant_name"] or settings["variant_name"]
    variant = apply.variant_of(apply.config_fields(config), variant_name)
    instance_type = variant.get("InstanceType")
    if instance_type != recommendation["instance_type"]:
        raise UnsupportedEndpointError(
            f"endpoint {endpoint_name!r} runs {instance_type}, the recommendation is for "
            f"{recommendation['instance_type']}: an inference component is only changed on its "
            "endpoint's instance type (a new type needs a new endpoint config, by hand); "
            "nothing was changed"
        )
    accelerators = None
    if block.get("compute_resource_requirements"):
        # Accelerators per copy = GPUs per instance / copies per instance (contract).
        [described] = ec2.describe_instance_types(
            InstanceTypes=[component_apply.ec2_instance_type(instance_type)]
        )["InstanceTypes"]
        try:
            accelerators = component_apply.accelerators_per_copy(
                component_apply.gpus_of(described), int(block["copies_per_instance"])
            )
        except ValueError as error:
            raise UnsupportedEndpointError(f"{error}; nothing was changed") from error
    specification = component_apply.desired_specification(
        fields["specification"], recommendation, accelerators
    )
    copy_count = int(block["copy_count"])
    snapshot_autoscaling, repair = _autoscaling_now(
        state, component_apply.resource_id(name), component_apply.SCALABLE_DIMENSION
    )
    result = {
        "kind": component_decision.KIND,
        "inference_component_name": name,
        "endpoint_config_name": endpoint["EndpointConfigName"],
        "instance_type": instance_type,
        "instance_count": variant.get("InitialInstanceCount"),
        "copy_count": fields["copy_count"],
        "compute_resource_requirements": fields["compute_resource_requirements"],
        "image": fields["image"],
        "environment": fields["environment"],
        "specification": fields["specification"],
        "accelerators_per_copy": accelerators,
        "autoscaling": snapshot_autoscaling,
        "already_applied": component_apply.already_applied(fields, specification, copy_count),
        "repair_autoscaling": repair,
        "update_request": component_apply.update_request(name, specification, copy_count),
    }
    stored = {
        key: result[key]
        for key in (
            "kind",
            "inference_component_name",
            "endpoint_config_name",
            "instance_type",
            "instance_count",
            "copy_count",
            "autoscaling",
            "update_request",
        )
    }
    _write_run_snapshot(state, execution_arn, stored)
    return result


def component_update(state: Mapping[str, Any], _execution_arn: str) -> dict[str, Any]:
    """UpdateInferenceComponent as the snapshot worked it out (copies; specification if changed).

    The result (``$.component_update``) keeps the request: what EnsureComponentAutoscaling
    compares the IC with to tell the new configuration from the previous one.
    """
    request = state["snapshot"]["update_request"]
    sagemaker.update_inference_component(**request)
    return {"request": request}


def component_check(state: Mapping[str, Any], _execution_arn: str) -> dict[str, Any]:
    """Where the IC's update stands: status and SageMaker's reason."""
    description = _describe_component(_component_name(state))
    return {
        "status": description.get("InferenceComponentStatus"),
        "failure_reason": description.get("FailureReason"),
        "copy_count": (description.get("RuntimeConfig") or {}).get("DesiredCopyCount"),
    }


def component_ensure_autoscaling(state: Mapping[str, Any], _execution_arn: str) -> dict[str, Any]:
    """Give the IC the copy autoscaling that matches what it runs now (DESIGN.md invariant 1).

    On the requested configuration (:func:`component_apply.serves_requested`): the
    recommendation's bounds, metric and target; otherwise (failed, rolled back, or the run
    stopped before the update): the snapshot's, exactly. Registering an existing target again
    updates it in place (Application Auto Scaling API Reference, RegisterScalableTarget).
    """
    name = _component_name(state)
    description = _describe_component(name)
    status = description.get("InferenceComponentStatus")
    if status in component_apply.BUSY_STATUSES:
        raise ComponentBusyError(f"inference component {name} is {status}")
    request = (state.get("component_update") or {}).get("request")
    snapshot_autoscaling = state["snapshot"]["autoscaling"]
    if component_apply.serves_requested(description, request):
        desired: Mapping[str, Any] | None = component_apply.recommended_autoscaling(
            snapshot_autoscaling, state["recommendation"]
        )
        serves = "new"
    else:
        desired = snapshot_autoscaling
        serves = "previous"
    if desired is not None:
        autoscaling.register_scalable_target(**component_apply.register_request(name, desired))
        for policy in component_apply.policy_requests(name, desired):
            autoscaling.put_scaling_policy(**policy)
    return {
        "serves": serves,
        "inference_component_name": name,
        "status": status,
        "copy_count": (description.get("RuntimeConfig") or {}).get("DesiredCopyCount"),
        "applied": desired,
    }


# -- Approval (ApplyMode.APPROVAL) ---------------------------------------------------------------


def request_approval(state: Mapping[str, Any], _execution_arn: str) -> dict[str, Any]:
    """What the approver is told (:func:`approval.request`): the change, its saving, commands."""
    return approval.request(state, datetime.now(UTC))


def await_approval(state: Mapping[str, Any], execution_arn: str, task_token: str) -> dict[str, Any]:
    """Keep the task token where ``approve``/``reject`` find it (``approval.sort_key``).

    The execution waits on the token (the state's ``.waitForTaskToken``); this return value is
    not its result. A newer run's item replaces an older one's (README, "Approval").
    """
    dynamodb.put_item(
        TableName=_table(), Item=approval.item(state, execution_arn, task_token, datetime.now(UTC))
    )
    return {"waiting": True}


def _close_approval(state: Mapping[str, Any], execution_arn: str) -> None:
    """Remove this run's waiting-approval item, never a newer run's."""
    if "approval" not in state and "approval_request" not in state:
        return
    try:
        dynamodb.delete_item(
            TableName=_table(),
            Key={
                **_endpoint_key(state),
                "sk": {"S": approval.state_sort_key(state["settings"])},
            },
            ConditionExpression="execution_arn = :me",
            ExpressionAttributeValues={":me": {"S": execution_arn}},
        )
    except ClientError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise


# -- Record ---------------------------------------------------------------------------------------


def record(state: Mapping[str, Any], execution_arn: str) -> dict[str, Any]:
    """Write the run's decision record to the ledger (DESIGN.md invariant 5); return the outcome."""
    _close_approval(state, execution_arn)
    result, reason = approval.not_approved(state.get("approval") or {}) or apply.outcome(state)
    settings, recommendation = state["settings"], state.get("recommendation") or {}
    before = state.get("snapshot") or {}
    current = recommendation.get("current") or {}
    after_cost = recommendation.get("estimated_cost_per_hour") if result == apply.APPLIED else None
    before_cost = current.get("estimated_cost_per_hour")
    savings = apply.monthly_savings(before_cost, after_cost)
    item = {
        "outcome": result,
        "reason": reason,
        "execution_arn": execution_arn,
        "job_name": recommendation.get("job_name"),
        "before": {
            "endpoint_config_name": before.get("endpoint_config_name"),
            "instance_type": before.get("instance_type"),
            "instance_count": before.get("instance_count"),
            "autoscaling": before.get("autoscaling"),
            "cost_per_hour": before_cost,
        },
        "after": {
            "endpoint_config_name": (state.get("autoscaling") or {}).get("endpoint_config_name"),
            "instance_type": recommendation.get("instance_type")
            if result == apply.APPLIED
            else None,
            "instance_count": recommendation.get("instance_count")
            if result == apply.APPLIED
            else None,
            "autoscaling": (state.get("autoscaling") or {}).get("applied"),
            "cost_per_hour": after_cost,
        },
        "estimated_monthly_savings": savings,
        # A cleanup's record names the run it finished; a run that restored a dead run's
        # autoscaling names that run.
        "interrupted": state.get("interrupted"),
        "inherited_from": ((state.get("lock") or {}).get("inherited") or {}).get("from"),
        # ApplyMode.APPROVAL: the answer (SendTaskSuccess's output, or the error for none).
        **({"approval": state["approval"]} if "approval" in state else {}),
        # An inference component's run: its copies and specification before and after.
        **(
            {"inference_component": _component_record(state, result)}
            if component_apply.is_component(recommendation)
            else {}
        ),
    }
    recorded_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    dynamodb.put_item(
        TableName=_table(),
        Item={
            **_endpoint_key(state),
            "sk": {"S": f"run#{recorded_at}#{execution_arn.rsplit(':', 1)[-1]}"},
            "recorded_at": {"S": recorded_at},
            "outcome": {"S": result},
            "record": {"S": _json(item)},
        },
    )
    logger.info("%s: %s (%s)", settings["endpoint_name"], result, reason)
    if result == apply.APPLIED:
        # README, "Metrics": an EMF line, after the record is written (a retried Record emits
        # again: EMF counts are at least once, like the metrics EMF extracts).
        emit(
            {APPLIED_CHANGES: 1, APPLIED_MONTHLY_SAVING: savings},
            {ENDPOINT_NAME: settings["endpoint_name"], VARIANT_NAME: settings["variant_name"]},
        )
    return {
        "result": result,
        "reason": reason,
        "estimated_monthly_savings": item["estimated_monthly_savings"],
    }


def _component_record(state: Mapping[str, Any], result: str) -> dict[str, Any]:
    """The IC part of a run's record: name, copies, compute requirements and image, before/after."""
    before = state.get("snapshot") or {}
    block = component_apply.changes(state.get("recommendation") or {})
    request = (before.get("update_request") or {}) if result == apply.APPLIED else {}
    specification = request.get("Specification") or {}
    return {
        "name": (state.get("settings") or {}).get("inference_component_name"),
        "before": {
            "copy_count": before.get("copy_count"),
            "compute_resource_requirements": before.get("compute_resource_requirements"),
            "image": before.get("image"),
        },
        "after": {
            "copy_count": block.get("copy_count") if result == apply.APPLIED else None,
            "copies_per_instance": block.get("copies_per_instance")
            if result == apply.APPLIED
            else None,
            "compute_resource_requirements": specification.get("ComputeResourceRequirements"),
            "image": (specification.get("Container") or {}).get("Image"),
        },
    }


def _json(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


STEPS: dict[str, Callable[[Mapping[str, Any], str], Any]] = {
    "acquire_lock": acquire_lock,
    "snapshot": snapshot,
    "create_config": create_config,
    "deregister": deregister,
    "update": update,
    "check_update": check_update,
    "ensure_autoscaling": ensure_autoscaling,
    "record": record,
    "request_approval": request_approval,
    "release_lock": release_lock,
    "take_over": take_over,
    "component_snapshot": component_snapshot,
    "component_update": component_update,
    "component_check": component_check,
    "component_ensure_autoscaling": component_ensure_autoscaling,
}
