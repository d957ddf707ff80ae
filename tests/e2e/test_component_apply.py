"""An inference component's recommendation applied through the synthesized Apply state machine
(issue 17): copies, compute requirements and container changed, copy autoscaling registered;
every AWS call of the path made to fail once leaves the IC on its old or its new configuration,
with its autoscaling (DESIGN.md invariants 1, 3 and 5).

moto has no inference component APIs: ``InferenceComponentStandIn`` (harness.py) answers them,
validating every request against botocore's model. The stack is an
``InferenceComponentRightsizing`` (``ApplyMode.AUTO``); the runs start the Apply machine with the
component's apply settings from the engine's registry, as Route's StartApply does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk.assertions import Template

from rightsizing_constructs import (
    RECOMMENDATION_DETAIL_TYPE,
    RECOMMENDATION_EVENT_SOURCE,
    RightsizingEngine,
)
from tests.e2e.harness import (
    Execution,
    InferenceComponentStandIn,
    InferenceRecommenderStandIn,
    LocalAws,
    LocalStack,
    local_aws,
)
from tests.infra import stack
from tests.test_component_construct import component

pytestmark = pytest.mark.e2e

ENDPOINT = "llm-endpoint"
NAME = "llama-ic"
RESOURCE_ID = f"inference-component/{NAME}"
DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
METRIC = "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.31.0-lmi13.0.0-cu124"
NEW_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.33.0-lmi15.0.0-cu128"


def _template() -> dict[str, Any]:
    """The lead's ``InferenceComponentRightsizing`` on an engine polling every second."""
    scope = stack()
    engine = RightsizingEngine(scope, "RightsizingEngine", poll_interval=cdk.Duration.seconds(1))
    construct = component(
        scope,
        engine=engine,
        endpoint_name=ENDPOINT,
        inference_component_name=NAME,
    )
    return dict(Template.from_stack(cdk.Stack.of(construct)).to_json())


TEMPLATE = _template()

OLD_SPECIFICATION = {
    "ModelName": "llama-model",
    "Container": {"Image": IMAGE, "Environment": {"OPTION_MAX_MODEL_LEN": "4096"}},
    "ComputeResourceRequirements": {
        "NumberOfAcceleratorDevicesRequired": 1,
        "MinMemoryRequiredInMb": 16384,
    },
}
NEW_SPECIFICATION = {
    "ModelName": "llama-model",
    "Container": {"Image": NEW_IMAGE, "Environment": {"OPTION_MAX_MODEL_LEN": "8192"}},
    # 4 GPUs of a g4dn.12xlarge (moto's EC2 DescribeInstanceTypes) / 2 copies per instance.
    "ComputeResourceRequirements": {
        "NumberOfAcceleratorDevicesRequired": 2,
        "MinMemoryRequiredInMb": 24576,
    },
}
OLD_AUTOSCALING: dict[str, Any] = {
    "MinCapacity": 1,
    "MaxCapacity": 4,
    "Policies": [
        {
            "PolicyName": "llama-concurrency",
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": 4.0,
                "PredefinedMetricSpecification": {"PredefinedMetricType": METRIC},
                "ScaleOutCooldown": 60,
                "ScaleInCooldown": 300,
                "DisableScaleIn": False,
            },
        }
    ],
}
NEW_AUTOSCALING = {
    "MinCapacity": 1,
    "MaxCapacity": 8,
    "Policies": [
        {
            **OLD_AUTOSCALING["Policies"][0],
            "TargetTrackingScalingPolicyConfiguration": {
                **OLD_AUTOSCALING["Policies"][0]["TargetTrackingScalingPolicyConfiguration"],
                "TargetValue": 2.0,
            },
        }
    ],
}


def recommendation(**overrides: Any) -> dict[str, Any]:
    """An IC recommendation event detail (contract, "Event detail for an IC")."""
    detail: dict[str, Any] = {
        "schema_version": "1",
        "kind": "inference-component",
        "endpoint_name": ENDPOINT,
        "variant_name": "AllTraffic",
        "inference_component_name": NAME,
        "job_name": "llm-ai-recommendation-1",
        "evidence": "ai-recommendation",
        "action": "apply",
        "reason": "2 copies per instance is the cheapest configuration that meets TTFT p90",
        "instance_type": INSTANCE_TYPE,
        "instance_count": 4,
        "estimated_cost_per_hour": 22.7,
        "autoscaling": {
            "metric": METRIC,
            "target_value": 2.0,
            "min_capacity": 1,
            "max_capacity": 8,
        },
        "inference_component": {
            "copy_count": 8,
            "copies_per_instance": 2,
            "compute_resource_requirements": {"MinMemoryRequiredInMb": 24576},
            "container": {"Image": NEW_IMAGE, "Environment": {"OPTION_MAX_MODEL_LEN": "8192"}},
            "current": {"copy_count": 4, "instance_type": INSTANCE_TYPE},
        },
        "current": {
            "instance_type": INSTANCE_TYPE,
            "instance_count": 2,
            "estimated_cost_per_hour": 28.36,
        },
        "candidates": [],
    }
    detail.update(overrides)
    return detail


# moto's SageMaker accepts no g5 type (its own instance-type enum stops at g4dn); its EC2 has
# both, with GpuInfo: the endpoint runs ml.g4dn.12xlarge, 4 NVIDIA T4 per instance.
INSTANCE_TYPE = "ml.g4dn.12xlarge"


def create_component(
    instance_type: str = INSTANCE_TYPE, managed_max_instances: int | None = None
) -> None:
    """llm-endpoint (2 x ``instance_type``) hosting llama-ic: 4 copies, autoscaled 1..4.

    With ``managed_max_instances``, the variant's managed instance scaling goes up to it.
    """
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model(
        ModelName="llama-model",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/model",
        PrimaryContainer={"Image": IMAGE},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="llm-endpoint-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                # An IC endpoint's variant names no model (its ICs do); moto requires one.
                "ModelName": "llama-model",
                "InstanceType": instance_type,
                "InitialInstanceCount": 2,
                **(
                    {}
                    if managed_max_instances is None
                    else {
                        "ManagedInstanceScaling": {
                            "Status": "ENABLED",
                            "MinInstanceCount": 1,
                            "MaxInstanceCount": managed_max_instances,
                        }
                    }
                ),
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="llm-endpoint-config")
    sagemaker.create_inference_component(
        InferenceComponentName=NAME,
        EndpointName=ENDPOINT,
        VariantName="AllTraffic",
        Specification=OLD_SPECIFICATION,
        RuntimeConfig={"CopyCount": 4},
    )
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


def component_state(components: InferenceComponentStandIn) -> dict[str, Any]:
    """What the IC runs and how its copies autoscale, read back from (local) AWS."""
    component = components.components[NAME]
    autoscaling = boto3.client("application-autoscaling")
    targets = autoscaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[RESOURCE_ID], ScalableDimension=DIMENSION
    )["ScalableTargets"]
    policies = autoscaling.describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId=RESOURCE_ID, ScalableDimension=DIMENSION
    )["ScalingPolicies"]
    return {
        "status": component.status,
        "specification": component.specification,
        "copy_count": component.copy_count,
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


def assert_old_or_new(state: dict[str, Any]) -> str:
    """On the old configuration with the old autoscaling, or the new with the new; never
    without autoscaling, never half of each. Returns which."""
    assert state["status"] == "InService", state
    if state["copy_count"] == 4:
        assert state["specification"] == OLD_SPECIFICATION, state
        assert state["autoscaling"] == OLD_AUTOSCALING, state
        return "old"
    assert (state["copy_count"], state["specification"]) == (8, NEW_SPECIFICATION), state
    assert state["autoscaling"] == NEW_AUTOSCALING, state
    return "new"


def records(deployed: LocalStack) -> list[dict[str, Any]]:
    return [json.loads(i["record"]["S"]) for i in deployed.ledger_items("run#")]


def lock_of(deployed: LocalStack) -> dict[str, Any] | None:
    return next(iter(deployed.ledger_items("lock")), None)


@pytest.fixture
def components() -> InferenceComponentStandIn:
    return InferenceComponentStandIn()


@pytest.fixture
def aws(components: InferenceComponentStandIn) -> Iterator[LocalAws]:
    with local_aws(InferenceRecommenderStandIn(), components=components) as aws:
        yield aws


@pytest.fixture
def deployed(aws: LocalAws) -> LocalStack:
    deployed = LocalStack(aws, TEMPLATE)
    create_component()
    return deployed


def ic_apply_settings(deployed: LocalStack) -> dict[str, Any]:
    """The IC's apply settings, from the engine's registry (as Route hands them to StartApply)."""
    [settings] = [
        e["apply_settings"]
        for e in deployed.registry
        if (e["apply_settings"] or {}).get("inference_component_name") == NAME
    ]
    return dict(settings)


def apply(deployed: LocalStack, name: str = "apply", **overrides: Any) -> Execution:
    arn = deployed._start(
        deployed.apply_state_machine_arn,
        name,
        json.dumps(
            {"settings": ic_apply_settings(deployed), "recommendation": recommendation(**overrides)}
        ),
    )
    return deployed._wait(arn, 90)


def test_an_ic_recommendation_is_applied_with_copy_autoscaling(
    deployed: LocalStack, components: InferenceComponentStandIn
) -> None:
    execution = apply(deployed)

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.states[:4] == ["CheckApplyInput", "NeedsApproval", "AcquireLock", "ApplyKind"]
    assert "ComponentSnapshot" in execution.states and "Snapshot" not in execution.states
    assert assert_old_or_new(component_state(components)) == "new"
    # The scalable target was never removed: no Deregister on this path.
    assert "Deregister" not in execution.states
    [update] = components.updates
    assert update["RuntimeConfig"] == {"CopyCount": 8}
    [record] = records(deployed)
    assert record["outcome"] == "applied"
    assert record["inference_component"]["before"]["copy_count"] == 4
    assert record["inference_component"]["after"]["copy_count"] == 8
    assert record["before"]["autoscaling"] == OLD_AUTOSCALING
    assert lock_of(deployed) is None


def test_a_copy_count_only_change_sends_no_specification(
    deployed: LocalStack, components: InferenceComponentStandIn
) -> None:
    block = {**recommendation()["inference_component"]}
    block.update(compute_resource_requirements=None, container=None)
    execution = apply(deployed, inference_component=block)

    assert execution.status == "SUCCEEDED", execution.cause
    [update] = components.updates
    assert "Specification" not in update
    state = component_state(components)
    assert (state["copy_count"], state["specification"]) == (8, OLD_SPECIFICATION)
    assert state["autoscaling"] == NEW_AUTOSCALING


def test_a_rolled_back_update_restores_the_old_autoscaling(
    deployed: LocalStack, components: InferenceComponentStandIn
) -> None:
    components.outcome = "RolledBack"

    execution = apply(deployed)

    assert execution.status == "FAILED" and execution.error == "RightsizingNotApplied"
    assert assert_old_or_new(component_state(components)) == "old"
    [record] = records(deployed)
    assert record["outcome"] == "rolled-back"
    assert "alarm llm-ttft" in record["reason"]


def test_another_instance_type_is_refused_recorded_and_notified(
    deployed: LocalStack, components: InferenceComponentStandIn
) -> None:
    queue = deployed.subscribe_queue("notifications")

    execution = apply(deployed, instance_type="ml.g5.12xlarge")

    assert execution.status == "FAILED"
    assert components.updates == []
    assert assert_old_or_new(component_state(components)) == "old"
    [record] = records(deployed)
    assert record["outcome"] == "failed"
    assert "runs ml.g4dn.12xlarge, the recommendation is for ml.g5.12xlarge" in record["reason"]
    [message] = deployed.messages(queue)
    assert message["outcome"] == "failed" and "ml.g5.12xlarge" in message["reason"]
    assert lock_of(deployed) is None


def test_the_same_recommendation_again_is_no_change(
    deployed: LocalStack, components: InferenceComponentStandIn
) -> None:
    assert apply(deployed, name="first").status == "SUCCEEDED"
    second = apply(deployed, name="second")
    assert second.status == "SUCCEEDED", second.cause
    assert "UpdateComponent" not in second.states
    assert [r["outcome"] for r in records(deployed)].count("no-change") == 1
    assert len(components.updates) == 1


# Every AWS call of the IC apply path, made to fail once with an error no retry of botocore's
# cures (ValidationException; EC2's answer is a 400 with no retryable code). ``skip`` lets that
# many calls of the operation through first: a run calls DescribeInferenceComponent at
# ComponentSnapshot, at each CheckComponent, and at EnsureComponentAutoscaling.
PERMANENT = "ValidationException"
FAIL_ONCE = [
    ("dynamodb", "UpdateItem", 0, "old"),  # AcquireLock
    ("sagemaker", "DescribeInferenceComponent", 0, "old"),  # ComponentSnapshot
    ("sagemaker", "DescribeEndpoint", 0, "old"),
    ("sagemaker", "DescribeEndpointConfig", 0, "old"),
    ("ec2", "DescribeInstanceTypes", 0, "old"),
    ("application-autoscaling", "DescribeScalableTargets", 0, "old"),
    ("application-autoscaling", "DescribeScalingPolicies", 0, "old"),
    ("dynamodb", "UpdateItem", 1, "old"),  # the snapshot kept with the lock
    ("sagemaker", "UpdateInferenceComponent", 0, "old"),
    ("sagemaker", "DescribeInferenceComponent", 1, "new"),  # CheckComponent
    ("sagemaker", "DescribeInferenceComponent", 3, "new"),  # EnsureComponentAutoscaling
    ("application-autoscaling", "RegisterScalableTarget", 0, "new"),
    ("application-autoscaling", "PutScalingPolicy", 0, "new"),
    ("dynamodb", "PutItem", 0, "new"),  # Record
    ("sns", "Publish", 0, "new"),  # Notify
    ("dynamodb", "DeleteItem", 0, "new"),  # ReleaseLock
]


@pytest.mark.parametrize(
    ("service", "operation", "skip", "ends_on"),
    FAIL_ONCE,
    ids=[f"{f[1]}-after-{f[2]}" for f in FAIL_ONCE],
)
def test_any_call_failing_once_leaves_the_ic_old_or_new_with_autoscaling(
    deployed: LocalStack,
    aws: LocalAws,
    components: InferenceComponentStandIn,
    service: str,
    operation: str,
    skip: int,
    ends_on: str,
) -> None:
    aws.fail_next(service, operation, PERMANENT, skip=skip)

    execution = apply(deployed)
    unused = [i for i in aws.injected if i.times]
    aws.stop_failing()

    assert unused == [], f"{operation} was not called {skip + 1} times"
    assert assert_old_or_new(component_state(components)) == ends_on
    if (service, operation) == ("dynamodb", "PutItem"):
        # The record could not be written: the run fails (an alarm), the IC is fine.
        assert execution.status == "FAILED"
        return
    [record] = records(deployed)
    assert record["outcome"] == ("applied" if ends_on == "new" else "failed"), record
    assert execution.status == ("SUCCEEDED" if ends_on == "new" else "FAILED"), execution.cause
    if operation == "DeleteItem":
        assert lock_of(deployed) is not None  # it expires: a stale lock never blocks for good
    else:
        assert lock_of(deployed) is None


def test_the_recommendation_event_reaches_the_apply_machine_through_the_engine_rule(
    deployed: LocalStack, components: InferenceComponentStandIn
) -> None:
    """The event as the Recommend workflow publishes it: the engine's Requests rule, Route
    (keyed by endpoint and component) and StartApply hand it to the Apply machine."""
    [result] = deployed.events.put_events(
        Entries=[
            {
                "Source": RECOMMENDATION_EVENT_SOURCE,
                "DetailType": RECOMMENDATION_DETAIL_TYPE,
                "Detail": json.dumps(recommendation()),
            }
        ]
    )["Entries"]
    assert "EventId" in result, result

    [routed] = deployed.deliver()
    assert routed.status == "SUCCEEDED", routed.cause
    assert "StartApply" in routed.states, routed.states
    [applied] = deployed.executions("apply", limit=90)

    assert applied.status == "SUCCEEDED", applied.cause
    assert "ComponentSnapshot" in applied.states
    assert assert_old_or_new(component_state(components)) == "new"
    [record] = records(deployed)
    assert record["outcome"] == "applied"


def _waiting(arn: str) -> bool:
    """The execution's last event: it entered a Wait state."""
    events = boto3.client("stepfunctions").get_execution_history(executionArn=arn)["events"]
    return bool(events) and events[-1]["type"] == "WaitStateEntered"


def test_an_ic_run_stopped_mid_update_is_finished_by_the_status_change_event(
    deployed: LocalStack, components: InferenceComponentStandIn
) -> None:
    """StopExecution while the IC updates: its copy autoscaling is still registered (this path
    never removes it); the FinishInterruptedApply rule's cleanup waits the update out and puts
    the autoscaling that matches what the IC then runs (here the new configuration)."""
    components.polls_before_done = 10**6  # the update does not end by itself
    sfn = boto3.client("stepfunctions")
    arn = deployed._start(
        deployed.apply_state_machine_arn,
        "stopped",
        json.dumps({"settings": ic_apply_settings(deployed), "recommendation": recommendation()}),
    )
    deadline = time.monotonic() + 30
    while not (components.describes >= 2 and _waiting(arn)):
        assert time.monotonic() < deadline, "the run never reached the update"
        time.sleep(0.05)
    sfn.stop_execution(executionArn=arn, cause="an operator stopped it")
    stopped = deployed._wait(arn, 30)
    assert stopped.status == "ABORTED"
    assert component_state(components)["autoscaling"] == OLD_AUTOSCALING  # never without it
    execution = sfn.describe_execution(executionArn=arn)
    # The update finishes on the new configuration a little later; the event arrives meanwhile.
    components.polls_before_done = components.describes + 2
    now = int(time.time() * 1000)
    boto3.client("events").put_events(
        Entries=[
            {
                "Source": "aws.states",
                "DetailType": "Step Functions Execution Status Change",
                "Resources": [arn],
                "Detail": json.dumps(
                    {
                        "executionArn": arn,
                        "stateMachineArn": execution["stateMachineArn"],
                        "name": execution["name"],
                        "status": "ABORTED",
                        "startDate": now,
                        "stopDate": now,
                        "input": execution["input"],
                        "inputDetails": {"included": True},
                        "output": None,
                        "outputDetails": None,
                    }
                ),
            }
        ]
    )

    [cleanup] = deployed.deliver(limit=90)

    assert cleanup.states[:3] == ["CheckApplyInput", "TakeOver", "Repair"]
    assert "EnsureComponentAutoscaling" in cleanup.states
    assert cleanup.status == "FAILED" and cleanup.error == "RightsizingNotApplied"
    assert assert_old_or_new(component_state(components)) == "new"
    [record] = records(deployed)
    assert record["outcome"] == "failed"
    assert record["reason"].startswith(f"the apply execution {arn} was ABORTED")
    assert lock_of(deployed) is None
