"""ApplyStep: the AWS calls of the Apply workflow, one step per invocation.

Input: ``{"step": "<name>", "state": <the workflow state>, "execution_arn": "..."}``; the
output becomes ``$.<step's result path>`` in the state machine. The order, the waits and the
compensation are the state machine's (``rightsizing_constructs.apply``); each step here is
idempotent, so a retried invocation does no harm. The ledger table is ``LEDGER_TABLE_NAME``.

State keys: ``recommendation`` (the event detail), ``settings`` (endpoint, variant, deployment,
lock duration), ``snapshot``, ``new_config``, ``update``, ``autoscaling``, ``error``.
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

from . import apply
from .aws import (
    CLIENT_CONFIG,
    endpoint_not_found,
    error_code,
    retryable_errors_typed,
    sagemaker_client,
)
from .errors import EndpointNotFoundError, UnsupportedEndpointError

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

sagemaker = sagemaker_client()
autoscaling = boto3.client("application-autoscaling", config=CLIENT_CONFIG)
dynamodb = boto3.client("dynamodb", config=CLIENT_CONFIG)


class EndpointLockedError(RuntimeError):
    """Another run holds the endpoint's lock; this run changes nothing (DESIGN.md invariant 3)."""


class EndpointBusyError(RuntimeError):
    """The endpoint is updating; the state machine retries the step later."""


@retryable_errors_typed
def handler(event: dict[str, Any], _context: object = None) -> Any:
    """Run the step named in the event."""
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
    """
    now = int(time.time())
    expires = now + int(state["settings"]["lock_seconds"])
    try:
        dynamodb.put_item(
            TableName=_table(),
            Item={
                **_endpoint_key(state),
                "sk": {"S": "lock"},
                "holder": {"S": execution_arn},
                "expires_at": {"N": str(expires)},
            },
            ConditionExpression="attribute_not_exists(pk) OR expires_at < :now OR holder = :me",
            ExpressionAttributeValues={":now": {"N": str(now)}, ":me": {"S": execution_arn}},
        )
    except ClientError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise
        holder = dynamodb.get_item(
            TableName=_table(),
            Key={**_endpoint_key(state), "sk": {"S": "lock"}},
            ConsistentRead=True,
        ).get("Item", {})
        raise EndpointLockedError(
            f"{state['settings']['endpoint_name']} is being changed by "
            f"{holder.get('holder', {}).get('S', 'another run')}; "
            "this recommendation is not applied"
        ) from error
    return {"holder": execution_arn, "expires_at": expires}


def release_lock(state: Mapping[str, Any], execution_arn: str) -> dict[str, Any]:
    """Release the lock if this run holds it (never another run's)."""
    try:
        dynamodb.delete_item(
            TableName=_table(),
            Key={**_endpoint_key(state), "sk": {"S": "lock"}},
            ConditionExpression="holder = :me",
            ExpressionAttributeValues={":me": {"S": execution_arn}},
        )
    except ClientError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise
        return {"released": False}
    return {"released": True}


# -- Snapshot and new config ----------------------------------------------------------------------


def snapshot(state: Mapping[str, Any], _execution_arn: str) -> dict[str, Any]:
    """Everything needed to copy the endpoint config and to restore autoscaling."""
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
    tags = sagemaker.list_tags(ResourceArn=description["EndpointConfigArn"]).get("Tags", [])
    resource = apply.resource_id(endpoint_name, variant_name)
    targets = autoscaling.describe_scalable_targets(
        ServiceNamespace="sagemaker",
        ResourceIds=[resource],
        ScalableDimension=apply.SCALABLE_DIMENSION,
    )["ScalableTargets"]
    policies = autoscaling.describe_scaling_policies(
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension=apply.SCALABLE_DIMENSION,
    )["ScalingPolicies"]
    recommendation = state["recommendation"]
    already = (
        variant.get("InstanceType") == recommendation["instance_type"]
        and variant.get("InitialInstanceCount") == recommendation["instance_count"]
    )
    snapshot_autoscaling = apply.autoscaling_snapshot(targets, policies)
    return {
        "endpoint_config_name": endpoint["EndpointConfigName"],
        "config": fields,
        "tags": tags,
        "instance_type": variant.get("InstanceType"),
        "instance_count": variant.get("InitialInstanceCount"),
        "autoscaling": snapshot_autoscaling,
        "already_applied": already,
        # UpdateEndpoint fails when it changes the instance type of an autoscaled variant.
        "deregister_first": snapshot_autoscaling is not None
        and variant.get("InstanceType") != recommendation["instance_type"],
    }


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


# -- Record ---------------------------------------------------------------------------------------


def record(state: Mapping[str, Any], execution_arn: str) -> dict[str, Any]:
    """Write the run's decision record to the ledger (DESIGN.md invariant 5); return the outcome."""
    result, reason = apply.outcome(state)
    settings, recommendation = state["settings"], state.get("recommendation") or {}
    before = state.get("snapshot") or {}
    current = recommendation.get("current") or {}
    after_cost = recommendation.get("estimated_cost_per_hour") if result == apply.APPLIED else None
    before_cost = current.get("estimated_cost_per_hour")
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
        "estimated_monthly_savings": apply.monthly_savings(before_cost, after_cost),
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
    return {
        "result": result,
        "reason": reason,
        "estimated_monthly_savings": item["estimated_monthly_savings"],
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
    "release_lock": release_lock,
}
