"""The synthesized Apply workflow end to end: DESIGN.md invariants 1, 2, 3 and 5, proven by
making each AWS call of the apply path fail (see harness.py for how the calls are served)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk.assertions import Template

from tests.e2e.harness import (
    EndpointUpdateStandIn,
    InferenceRecommenderStandIn,
    LocalAws,
    LocalStack,
    local_aws,
)
from tests.e2e.test_recommend_workflow import QUICK_JOB, create_endpoint, recommendations
from tests.infra import rightsizing

pytestmark = pytest.mark.e2e

RESOURCE_ID = "endpoint/fraud-scoring/variant/AllTraffic"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
TEMPLATE = Template.from_stack(
    cdk.Stack.of(rightsizing(poll_interval=cdk.Duration.seconds(1), job=QUICK_JOB))
).to_json()

# What the endpoint runs before the run: ml.c5.2xlarge x6, autoscaled 2..12 on invocations.
OLD_AUTOSCALING = {
    "MinCapacity": 2,
    "MaxCapacity": 12,
    "Policies": [
        {
            "PolicyName": "fraud-invocations",
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": 200.0,
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                },
                "ScaleOutCooldown": 60,
                "ScaleInCooldown": 600,
                "DisableScaleIn": False,
            },
        }
    ],
}


def recommendation(**overrides: Any) -> dict[str, Any]:
    """A recommendation event detail (schema 1) for fraud-scoring: ml.m5.xlarge x8."""
    detail: dict[str, Any] = {
        "schema_version": "1",
        "endpoint_name": "fraud-scoring",
        "variant_name": "AllTraffic",
        "job_name": "rightsizing-0123456789abcdef01234567",
        "action": "apply",
        "reason": "ml.m5.xlarge x8 is the cheapest configuration that meets the SLO",
        "instance_type": "ml.m5.xlarge",
        "instance_count": 8,
        "autoscaling": {
            "metric": "SageMakerVariantInvocationsPerInstance",
            "target_value": 450.0,
            "min_capacity": 1,
            "max_capacity": 10,
        },
        "estimated_cost_per_hour": 1.84,
        "current": {
            "endpoint_config_name": "fraud-scoring-config-1",
            "instance_type": "ml.c5.2xlarge",
            "instance_count": 6,
            "estimated_cost_per_hour": 2.448,
        },
        "candidates": [],
    }
    detail.update(overrides)
    return detail


def autoscale_endpoint() -> None:
    autoscaling = boto3.client("application-autoscaling")
    autoscaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=RESOURCE_ID,
        ScalableDimension=DIMENSION,
        MinCapacity=OLD_AUTOSCALING["MinCapacity"],
        MaxCapacity=OLD_AUTOSCALING["MaxCapacity"],
    )
    for policy in OLD_AUTOSCALING["Policies"]:
        autoscaling.put_scaling_policy(
            ServiceNamespace="sagemaker",
            ResourceId=RESOURCE_ID,
            ScalableDimension=DIMENSION,
            **policy,
        )


def endpoint_state() -> dict[str, Any]:
    """What the endpoint serves and how it autoscales, read back from (local) AWS."""
    sagemaker = boto3.client("sagemaker")
    autoscaling = boto3.client("application-autoscaling")
    endpoint = sagemaker.describe_endpoint(EndpointName="fraud-scoring")
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    [variant] = config["ProductionVariants"]
    targets = autoscaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[RESOURCE_ID], ScalableDimension=DIMENSION
    )["ScalableTargets"]
    policies = autoscaling.describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId=RESOURCE_ID, ScalableDimension=DIMENSION
    )["ScalingPolicies"]
    return {
        "status": endpoint["EndpointStatus"],
        "config": endpoint["EndpointConfigName"],
        "instance_type": variant["InstanceType"],
        "instance_count": variant["InitialInstanceCount"],
        "autoscaling": None
        if not targets
        else {
            "MinCapacity": targets[0]["MinCapacity"],
            "MaxCapacity": targets[0]["MaxCapacity"],
            "Policies": [
                {
                    k: p[k]
                    for k in (
                        "PolicyName",
                        "PolicyType",
                        "TargetTrackingScalingPolicyConfiguration",
                    )
                }
                for p in policies
            ],
        },
    }


NEW_AUTOSCALING = {
    "MinCapacity": 1,
    "MaxCapacity": 10,
    "Policies": [
        {
            "PolicyName": "fraud-invocations",
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                **OLD_AUTOSCALING["Policies"][0]["TargetTrackingScalingPolicyConfiguration"],
                "TargetValue": 450.0,
            },
        }
    ],
}


def assert_old_or_new(state: dict[str, Any]) -> str:
    """Invariants 1 and 2: on the old config with the old autoscaling, or on the new config with
    the new autoscaling; never without autoscaling. Returns which."""
    assert state["status"] == "InService", state
    if state["config"] == "fraud-scoring-config-1":
        assert (state["instance_type"], state["instance_count"]) == ("ml.c5.2xlarge", 6)
        assert state["autoscaling"] == OLD_AUTOSCALING, state
        return "old"
    assert (state["instance_type"], state["instance_count"]) == ("ml.m5.xlarge", 8), state
    assert state["autoscaling"] == NEW_AUTOSCALING, state
    return "new"


def lock_of(stack: LocalStack) -> dict[str, Any] | None:
    return next(iter(stack.ledger_items("lock")), None)


def records(stack: LocalStack) -> list[dict[str, Any]]:
    return [json.loads(i["record"]["S"]) for i in stack.ledger_items("run#")]


def hold_lock(stack: LocalStack, holder: str, expires_at: int) -> None:
    """Put a lock in the ledger as another apply run holding it would have."""
    boto3.client("dynamodb").put_item(
        TableName=stack.ledger_table,
        Item={
            "pk": {"S": "endpoint#fraud-scoring"},
            "sk": {"S": "lock"},
            "holder": {"S": f"arn:aws:states:us-east-1:123456789012:execution:apply:{holder}"},
            "expires_at": {"N": str(expires_at)},
        },
    )


@pytest.fixture
def updates() -> EndpointUpdateStandIn:
    return EndpointUpdateStandIn()


@pytest.fixture
def aws(updates: EndpointUpdateStandIn) -> Iterator[LocalAws]:
    with local_aws(InferenceRecommenderStandIn(recommendations=recommendations()), updates) as aws:
        yield aws


@pytest.fixture
def stack(aws: LocalAws) -> LocalStack:
    stack = LocalStack(aws, TEMPLATE)
    create_endpoint()
    autoscale_endpoint()
    return stack


def apply(stack: LocalStack, name: str = "apply", **overrides: Any) -> Any:
    return stack.run(name, {"recommendation": recommendation(**overrides)}, machine="apply")


def test_recommend_then_apply_through_the_synthesized_rule(
    stack: LocalStack, updates: EndpointUpdateStandIn
) -> None:
    recommended = stack.run("recommend")
    assert recommended.status == "SUCCEEDED", recommended.cause

    # The engine rule's pattern and input transformer, on moto: the recommendation event
    # starts the Recommend workflow, which hands it to the Apply workflow.
    [routed] = stack.deliver()
    assert routed.states == ["Route", "RouteAction", "StartApply", "ApplyStarted"]
    [applied] = stack.executions("apply")

    assert applied.status == "SUCCEEDED", applied.cause
    assert assert_old_or_new(endpoint_state()) == "new"
    # The type changed, so the scalable target was deregistered before the update.
    assert applied.states.index("Deregister") < applied.states.index("UpdateEndpoint")
    [update] = updates.updates
    assert update["params"]["RetainAllVariantProperties"] is True
    assert update["params"]["ExcludeRetainedVariantProperties"] == [
        {"VariantPropertyType": "DesiredInstanceCount"}
    ]
    # Invariant 2: the previous config survives as the rollback target.
    boto3.client("sagemaker").describe_endpoint_config(EndpointConfigName="fraud-scoring-config-1")
    # Invariant 5: the decision record.
    [record] = records(stack)
    assert record["outcome"] == "applied"
    assert record["before"]["instance_type"] == "ml.c5.2xlarge"
    assert record["before"]["autoscaling"] == OLD_AUTOSCALING
    assert record["after"]["instance_type"] == "ml.m5.xlarge"
    assert record["after"]["cost_per_hour"] == 1.84
    assert record["job_name"].startswith("rightsizing-")
    assert lock_of(stack) is None  # released


def test_rolled_back_update_restores_the_old_autoscaling(
    stack: LocalStack, updates: EndpointUpdateStandIn
) -> None:
    updates.outcome = "RolledBack"

    execution = apply(stack)

    assert execution.status == "FAILED"
    assert execution.error == "RightsizingNotApplied"
    assert "Auto-rollback alarm" in (execution.cause or "")
    assert assert_old_or_new(endpoint_state()) == "old"
    [record] = records(stack)
    assert record["outcome"] == "rolled-back"
    assert lock_of(stack) is None


def test_same_type_updates_without_deregistering(
    stack: LocalStack, updates: EndpointUpdateStandIn
) -> None:
    execution = apply(stack, instance_type="ml.c5.2xlarge", instance_count=4)

    assert execution.status == "SUCCEEDED", execution.cause
    assert "Deregister" not in execution.states
    state = endpoint_state()
    assert (state["instance_type"], state["instance_count"]) == ("ml.c5.2xlarge", 4)
    assert state["autoscaling"]["MaxCapacity"] == 10


def test_duplicate_delivery_is_no_change(stack: LocalStack) -> None:
    assert apply(stack, name="first").status == "SUCCEEDED"
    second = apply(stack, name="second")
    assert second.status == "SUCCEEDED", second.cause
    assert "CreateConfig" not in second.states
    assert [r["outcome"] for r in records(stack)].count("no-change") == 1
    assert assert_old_or_new(endpoint_state()) == "new"


def test_second_run_while_locked_is_rejected_with_a_record(stack: LocalStack) -> None:
    # A run that holds the lock (as one in the middle of an update would).
    hold_lock(stack, "first", expires_at=9999999999)

    execution = apply(stack, name="second")

    assert execution.status == "SUCCEEDED"  # a rejection is recorded, not an alarm
    assert "CreateConfig" not in execution.states
    [record] = records(stack)
    assert record["outcome"] == "rejected"
    assert "being changed by" in record["reason"]
    assert assert_old_or_new(endpoint_state()) == "old"
    # The other run's lock is untouched.
    assert lock_of(stack)["holder"]["S"].endswith(":first")  # type: ignore[index]


def test_an_expired_lock_is_taken_over(stack: LocalStack) -> None:
    hold_lock(stack, "died", expires_at=1)
    assert apply(stack).status == "SUCCEEDED"
    assert lock_of(stack) is None


# Each AWS call of the apply path, failing for good (a validation or permission error that no
# retry cures) or transiently (throttling, absorbed by retries).
PERMANENT = "ValidationException"
FAILURES = [
    ("dynamodb", "UpdateItem", PERMANENT, 99, "old"),  # the lock cannot be taken
    ("sagemaker", "DescribeEndpointConfig", PERMANENT, 99, "old"),
    ("sagemaker", "ListTags", PERMANENT, 99, "old"),
    ("application-autoscaling", "DescribeScalableTargets", PERMANENT, 99, "old"),
    ("application-autoscaling", "DescribeScalingPolicies", PERMANENT, 99, "old"),
    ("sagemaker", "CreateEndpointConfig", PERMANENT, 99, "old"),
    ("application-autoscaling", "DeregisterScalableTarget", PERMANENT, 99, "old"),
    ("sagemaker", "UpdateEndpoint", PERMANENT, 99, "old"),
    ("sagemaker", "DescribeEndpoint", "ThrottlingException", 3, "new"),
    ("application-autoscaling", "RegisterScalableTarget", "ThrottlingException", 3, "new"),
    ("application-autoscaling", "PutScalingPolicy", "ThrottlingException", 3, "new"),
    ("dynamodb", "DeleteItem", PERMANENT, 99, "new"),
    ("sns", "Publish", PERMANENT, 99, "new"),
]


@pytest.mark.parametrize(
    ("service", "operation", "code", "times", "ends_on"),
    FAILURES,
    ids=[f"{f[1]}-{f[2]}" for f in FAILURES],
)
def test_a_failing_call_never_leaves_the_endpoint_half_applied(
    stack: LocalStack,
    aws: LocalAws,
    service: str,
    operation: str,
    code: str,
    times: int,
    ends_on: str,
) -> None:
    aws.fail_next(service, operation, code, times=times)

    execution = apply(stack)
    aws.stop_failing()

    assert aws.calls_of(service, operation) >= 1
    assert assert_old_or_new(endpoint_state()) == ends_on
    assert execution.status == ("SUCCEEDED" if ends_on == "new" else "FAILED"), execution.cause
    if operation == "DeleteItem":
        # The lock could not be released: it expires (a stale lock never blocks for good).
        lock = lock_of(stack)
        assert lock is not None and int(lock["expires_at"]["N"]) > 0
    else:
        assert lock_of(stack) is None
    if (service, operation) != ("dynamodb", "PutItem"):
        # Invariant 5: a record, whatever failed.
        [record] = records(stack)
        assert record["outcome"] == ("applied" if ends_on == "new" else "failed")


EVERY_CALL = [
    ("dynamodb", "PutItem"),
    ("dynamodb", "UpdateItem"),
    ("dynamodb", "DeleteItem"),
    ("sagemaker", "DescribeEndpoint"),
    ("sagemaker", "DescribeEndpointConfig"),
    ("sagemaker", "ListTags"),
    ("sagemaker", "CreateEndpointConfig"),
    ("sagemaker", "UpdateEndpoint"),
    ("application-autoscaling", "DescribeScalableTargets"),
    ("application-autoscaling", "DescribeScalingPolicies"),
    ("application-autoscaling", "DeregisterScalableTarget"),
    ("application-autoscaling", "RegisterScalableTarget"),
    ("application-autoscaling", "PutScalingPolicy"),
    ("sns", "Publish"),
    ("sagemaker", "CreateInferenceRecommendationsJob"),
    ("sagemaker", "DescribeInferenceRecommendationsJob"),
    # Not events:PutEvents: moto's optimized EventBridge integration turns any error of it into
    # an invalid "States.Runtime" custom error and aborts the run, which AWS does not do (the
    # state's States.TaskFailed retry covers it there).
]


def test_every_call_throttled_once_is_absorbed_by_retries(stack: LocalStack, aws: LocalAws) -> None:
    for service, operation in EVERY_CALL:
        aws.fail_next(service, operation, "ThrottlingException")

    recommended = stack.run("recommend")
    [routed] = stack.deliver()
    [applied] = stack.executions("apply")

    assert recommended.status == "SUCCEEDED", recommended.cause
    assert routed.status == "SUCCEEDED", routed.cause
    assert applied.status == "SUCCEEDED", applied.cause
    unused = [(i.service, i.operation) for i in aws.injected if i.times]
    assert unused == []  # every one of them was throttled, and retried
    assert assert_old_or_new(endpoint_state()) == "new"
    [record] = records(stack)
    assert record["outcome"] == "applied"


def test_two_runs_at_once_never_interleave(stack: LocalStack) -> None:
    """Invariant 3 with real concurrent executions: one applies, the other is rejected."""
    both = json.dumps(
        {
            "recommendation": recommendation(),
            "settings": stack.endpoint_input()["apply_settings"],
        }
    )
    first = stack._start(stack.apply_state_machine_arn, "one", both)
    second = stack._start(stack.apply_state_machine_arn, "two", both)
    outcomes = sorted(r["outcome"] for r in _wait_records(stack, 2))
    executions = [stack._wait(first, 60), stack._wait(second, 60)]

    assert all(e.status == "SUCCEEDED" for e in executions), [e.cause for e in executions]
    assert outcomes in (["applied", "rejected"], ["applied", "no-change"])
    # Exactly one of them changed the endpoint.
    assert sum("CreateConfig" in e.states for e in executions) == 1
    assert assert_old_or_new(endpoint_state()) == "new"
    assert lock_of(stack) is None


def _wait_records(stack: LocalStack, count: int) -> list[dict[str, Any]]:
    import time

    deadline = time.monotonic() + 60
    while len(found := records(stack)) < count:
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
    return found
