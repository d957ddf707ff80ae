"""The Apply path of an inference component (issue 17): its pure pieces and every request of its
steps, compared whole with ``expected_params`` (Stubber validates each against botocore's model).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import ANY, Stubber
from rightsizing_runtime import apply, apply_steps, component_apply
from rightsizing_runtime.errors import EndpointNotFoundError, UnsupportedEndpointError

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:Apply:run-1"
NOW = datetime(2026, 11, 1, tzinfo=UTC)
NAME = "llama-ic"
RESOURCE_ID = "inference-component/llama-ic"
DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
METRIC = "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.31.0-lmi13.0.0-cu124"
NEW_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.33.0-lmi15.0.0-cu128"
LOCK_KEY = {"pk": {"S": "endpoint#llm-endpoint"}, "sk": {"S": "lock"}}
#: The cleanup's lock expiry is now + lock_seconds (test_apply_steps freezes the clock for it).
ANY_EXPIRY = ANY

DESCRIPTION: dict[str, Any] = {
    "InferenceComponentName": NAME,
    "InferenceComponentArn": (
        "arn:aws:sagemaker:us-east-1:123456789012:inference-component/llama-ic"
    ),
    "EndpointName": "llm-endpoint",
    "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/llm-endpoint",
    "VariantName": "AllTraffic",
    "Specification": {
        "ModelName": "llama-model",
        "Container": {
            "DeployedImage": {
                "SpecifiedImage": IMAGE,
                "ResolvedImage": IMAGE + "@sha256:" + "0" * 64,
                "ResolutionTime": NOW,
            },
            "Environment": {"OPTION_MAX_MODEL_LEN": "4096"},
        },
        "StartupParameters": {"ModelDataDownloadTimeoutInSeconds": 600},
        "ComputeResourceRequirements": {
            "NumberOfAcceleratorDevicesRequired": 1.0,
            "MinMemoryRequiredInMb": 16384,
        },
    },
    "RuntimeConfig": {"DesiredCopyCount": 4, "CurrentCopyCount": 4},
    "CreationTime": NOW,
    "LastModifiedTime": NOW,
    "InferenceComponentStatus": "InService",
}
ENDPOINT = {
    "EndpointName": "llm-endpoint",
    "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/llm-endpoint",
    "EndpointConfigName": "llm-endpoint-config",
    "EndpointStatus": "InService",
    "CreationTime": NOW,
    "LastModifiedTime": NOW,
}
CONFIG: dict[str, Any] = {
    "EndpointConfigName": "llm-endpoint-config",
    "EndpointConfigArn": (
        "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/llm-endpoint-config"
    ),
    "ProductionVariants": [
        {
            "VariantName": "AllTraffic",
            "InstanceType": "ml.g5.12xlarge",
            "InitialInstanceCount": 2,
            "ManagedInstanceScaling": {
                "Status": "ENABLED",
                "MinInstanceCount": 1,
                "MaxInstanceCount": 4,
            },
        }
    ],
    "CreationTime": NOW,
}
# EC2 DescribeInstanceTypes of g5.12xlarge: 4 NVIDIA A10G.
G5_12XLARGE = {
    "InstanceType": "g5.12xlarge",
    "GpuInfo": {
        "Gpus": [
            {
                "Name": "A10G",
                "Manufacturer": "NVIDIA",
                "Count": 4,
                "MemoryInfo": {"SizeInMiB": 24576},
            }
        ],
        "TotalGpuMemoryInMiB": 98304,
    },
}
TRACKING: dict[str, Any] = {
    "PolicyName": "llama-concurrency",
    "PolicyType": "TargetTrackingScaling",
    "TargetTrackingScalingPolicyConfiguration": {
        "TargetValue": 3.0,
        "PredefinedMetricSpecification": {"PredefinedMetricType": METRIC},
        "ScaleOutCooldown": 60,
        "ScaleInCooldown": 300,
    },
}
SNAPSHOT_AUTOSCALING = {"MinCapacity": 1, "MaxCapacity": 6, "Policies": [TRACKING]}
SETTINGS = {
    "endpoint_name": "llm-endpoint",
    "variant_name": "AllTraffic",
    "inference_component_name": NAME,
    "lock_seconds": 10800,
}


def recommendation(**block: Any) -> dict[str, Any]:
    """An IC recommendation ("Event detail for an IC"): 4 -> 8 copies, 2 per g5.12xlarge."""
    detail: dict[str, Any] = {
        "schema_version": "1",
        "kind": "inference-component",
        "endpoint_name": "llm-endpoint",
        "variant_name": "AllTraffic",
        "inference_component_name": NAME,
        "action": "apply",
        "reason": "cheapest",
        "job_name": "llm-job",
        "instance_type": "ml.g5.12xlarge",
        "instance_count": 4,
        "estimated_cost_per_hour": 11.0,
        "autoscaling": {
            "metric": METRIC,
            "target_value": 2.0,
            "min_capacity": 1,
            "max_capacity": 8,
        },
        "inference_component": {
            "copy_count": 8,
            "copies_per_instance": 2,
            "compute_resource_requirements": None,
            "container": None,
            "current": {"copy_count": 4, "instance_type": "ml.g5.12xlarge"},
            **block,
        },
        "current": {"instance_type": "ml.g5.12xlarge", "estimated_cost_per_hour": 14.18},
    }
    return detail


def state(**extra: Any) -> dict[str, Any]:
    return {"settings": dict(SETTINGS), "recommendation": recommendation(), **extra}


@pytest.fixture
def stubs(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Stubber]]:
    monkeypatch.setenv("LEDGER_TABLE_NAME", "ledger")
    stubbers = {
        "sagemaker": Stubber(apply_steps.sagemaker),
        "autoscaling": Stubber(apply_steps.autoscaling),
        "dynamodb": Stubber(apply_steps.dynamodb),
        "ec2": Stubber(apply_steps.ec2),
    }
    for stubber in stubbers.values():
        stubber.activate()
    try:
        yield stubbers
        for stubber in stubbers.values():
            stubber.assert_no_pending_responses()
    finally:
        for stubber in stubbers.values():
            stubber.deactivate()


def expect_describe(stubs: dict[str, Stubber], description: dict[str, Any] = DESCRIPTION) -> None:
    stubs["sagemaker"].add_response(
        "describe_inference_component", description, {"InferenceComponentName": NAME}
    )


def expect_endpoint(stubs: dict[str, Stubber], config: dict[str, Any] = CONFIG) -> None:
    stubs["sagemaker"].add_response("describe_endpoint", ENDPOINT, {"EndpointName": "llm-endpoint"})
    stubs["sagemaker"].add_response(
        "describe_endpoint_config", config, {"EndpointConfigName": "llm-endpoint-config"}
    )


def expect_autoscaling_reads(
    stubs: dict[str, Stubber], autoscaling: dict[str, Any] | None = SNAPSHOT_AUTOSCALING
) -> None:
    targets = (
        []
        if autoscaling is None
        else [
            {
                "ServiceNamespace": "sagemaker",
                "ResourceId": RESOURCE_ID,
                "ScalableDimension": DIMENSION,
                "MinCapacity": autoscaling["MinCapacity"],
                "MaxCapacity": autoscaling["MaxCapacity"],
                "RoleARN": "arn:aws:iam::123456789012:role/aws-service-role/x",
                "CreationTime": NOW,
            }
        ]
    )
    stubs["autoscaling"].add_response(
        "describe_scalable_targets",
        {"ScalableTargets": targets},
        {
            "ServiceNamespace": "sagemaker",
            "ResourceIds": [RESOURCE_ID],
            "ScalableDimension": DIMENSION,
        },
    )
    policies = [
        {
            **policy,
            "PolicyARN": "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:x",
            "ServiceNamespace": "sagemaker",
            "ResourceId": RESOURCE_ID,
            "ScalableDimension": DIMENSION,
            "CreationTime": NOW,
        }
        for policy in (autoscaling or {}).get("Policies", [])
    ]
    stubs["autoscaling"].add_response(
        "describe_scaling_policies",
        {"ScalingPolicies": policies},
        {
            "ServiceNamespace": "sagemaker",
            "ResourceId": RESOURCE_ID,
            "ScalableDimension": DIMENSION,
        },
    )


def expect_store(stubs: dict[str, Stubber], stored: dict[str, Any]) -> None:
    stubs["dynamodb"].add_response(
        "update_item",
        {},
        {
            "TableName": "ledger",
            "Key": LOCK_KEY,
            "UpdateExpression": "SET run_snapshot = :snapshot",
            "ConditionExpression": "holder = :me",
            "ExpressionAttributeValues": {
                ":me": {"S": EXECUTION},
                ":snapshot": {"S": json.dumps(stored, sort_keys=True, default=str)},
            },
        },
    )


CURRENT_SPECIFICATION = {
    "ModelName": "llama-model",
    "Container": {"Image": IMAGE, "Environment": {"OPTION_MAX_MODEL_LEN": "4096"}},
    "StartupParameters": {"ModelDataDownloadTimeoutInSeconds": 600},
    "ComputeResourceRequirements": {
        "NumberOfAcceleratorDevicesRequired": 1.0,
        "MinMemoryRequiredInMb": 16384,
    },
}


def stored(
    update_request: dict[str, Any], autoscaling: Any = SNAPSHOT_AUTOSCALING
) -> dict[str, Any]:
    return {
        "kind": "inference-component",
        "inference_component_name": NAME,
        "endpoint_config_name": "llm-endpoint-config",
        "instance_type": "ml.g5.12xlarge",
        "instance_count": 2,
        "copy_count": 4,
        "autoscaling": autoscaling,
        "update_request": update_request,
    }


# -- Pure pieces ------------------------------------------------------------------------------


def test_the_described_specification_becomes_the_requests() -> None:
    assert component_apply.specification_request(DESCRIPTION["Specification"]) == (
        CURRENT_SPECIFICATION
    )


@pytest.mark.parametrize(
    ("gpus", "copies", "expected"), [(4, 2, 2), (4, 4, 1), (8, 3, 2), (1, 1, 1), (0, 2, None)]
)
def test_accelerators_per_copy_is_gpus_over_copies(gpus: int, copies: int, expected: Any) -> None:
    assert component_apply.accelerators_per_copy(gpus, copies) == expected


def test_more_copies_than_gpus_cannot_be_placed() -> None:
    with pytest.raises(ValueError, match="at least one accelerator"):
        component_apply.accelerators_per_copy(4, 5)


def test_gpus_are_read_from_ec2s_gpu_info() -> None:
    assert component_apply.gpus_of(G5_12XLARGE) == 4
    assert component_apply.gpus_of({"InstanceType": "c5.xlarge"}) == 0
    assert component_apply.ec2_instance_type("ml.g5.12xlarge") == "g5.12xlarge"


def test_the_recommended_policy_keeps_the_snapshots_name_and_cooldowns() -> None:
    result = component_apply.recommended_autoscaling(SNAPSHOT_AUTOSCALING, recommendation())
    configuration = result["Policies"][0]["TargetTrackingScalingPolicyConfiguration"]
    assert (result["MinCapacity"], result["MaxCapacity"]) == (1, 8)
    assert result["Policies"][0]["PolicyName"] == "llama-concurrency"
    assert configuration == {
        **TRACKING["TargetTrackingScalingPolicyConfiguration"],
        "TargetValue": 2.0,
    }


def test_a_component_without_autoscaling_gets_the_recommended_metric() -> None:
    detail = recommendation()
    detail["autoscaling"]["metric"] = "SageMakerInferenceComponentInvocationsPerCopy"
    [policy] = component_apply.recommended_autoscaling(None, detail)["Policies"]
    assert policy["PolicyName"] == "rightsizing-copies"
    assert policy["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerInferenceComponentInvocationsPerCopy"
    }


def test_a_variant_metric_is_refused_for_copies() -> None:
    detail = recommendation()
    detail["autoscaling"]["metric"] = "SageMakerVariantInvocationsPerInstance"
    with pytest.raises(ValueError, match="not a predefined metric of inference component"):
        component_apply.recommended_autoscaling(None, detail)


# -- ComponentSnapshot ---------------------------------------------------------------------------


def test_a_copy_count_change_sends_no_specification(stubs: dict[str, Stubber]) -> None:
    expect_describe(stubs)
    expect_endpoint(stubs)
    expect_autoscaling_reads(stubs)
    request = {"InferenceComponentName": NAME, "RuntimeConfig": {"CopyCount": 8}}
    expect_store(stubs, stored(request))

    snapshot = apply_steps.component_snapshot(state(lock={"holder": EXECUTION}), EXECUTION)

    assert snapshot["update_request"] == request
    assert snapshot["already_applied"] is False
    assert snapshot["autoscaling"] == SNAPSHOT_AUTOSCALING
    assert snapshot["accelerators_per_copy"] is None  # no compute change: EC2 not asked


def test_compute_and_container_changes_carry_the_whole_specification(
    stubs: dict[str, Stubber],
) -> None:
    detail = recommendation(
        compute_resource_requirements={"MinMemoryRequiredInMb": 24576},
        container={"Image": NEW_IMAGE, "Environment": {"OPTION_MAX_MODEL_LEN": "8192"}},
    )
    expect_describe(stubs)
    expect_endpoint(stubs)
    stubs["ec2"].add_response(
        "describe_instance_types",
        {"InstanceTypes": [G5_12XLARGE]},
        {"InstanceTypes": ["g5.12xlarge"]},
    )
    expect_autoscaling_reads(stubs)
    request = {
        "InferenceComponentName": NAME,
        "RuntimeConfig": {"CopyCount": 8},
        "Specification": {
            "ModelName": "llama-model",
            "Container": {"Image": NEW_IMAGE, "Environment": {"OPTION_MAX_MODEL_LEN": "8192"}},
            "StartupParameters": {"ModelDataDownloadTimeoutInSeconds": 600},
            # 4 GPUs per g5.12xlarge / 2 copies per instance.
            "ComputeResourceRequirements": {
                "NumberOfAcceleratorDevicesRequired": 2,
                "MinMemoryRequiredInMb": 24576,
            },
        },
    }
    expect_store(stubs, stored(request))

    snapshot = apply_steps.component_snapshot({**state(), "recommendation": detail}, EXECUTION)

    assert snapshot["update_request"] == request
    assert snapshot["accelerators_per_copy"] == 2


def test_another_instance_type_is_refused_before_anything(stubs: dict[str, Stubber]) -> None:
    expect_describe(stubs)
    config = copy.deepcopy(CONFIG)
    config["ProductionVariants"][0]["InstanceType"] = "ml.g6.12xlarge"
    expect_endpoint(stubs, config)

    with pytest.raises(
        UnsupportedEndpointError, match=r"runs ml\.g6\.12xlarge.*nothing was changed"
    ):
        apply_steps.component_snapshot(state(), EXECUTION)


def test_more_copies_than_gpus_is_refused(stubs: dict[str, Stubber]) -> None:
    detail = recommendation(
        copies_per_instance=8, compute_resource_requirements={"MinMemoryRequiredInMb": 8192}
    )
    expect_describe(stubs)
    expect_endpoint(stubs)
    stubs["ec2"].add_response(
        "describe_instance_types",
        {"InstanceTypes": [G5_12XLARGE]},
        {"InstanceTypes": ["g5.12xlarge"]},
    )
    with pytest.raises(UnsupportedEndpointError, match="8 copies per instance cannot share 4"):
        apply_steps.component_snapshot({**state(), "recommendation": detail}, EXECUTION)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"InferenceComponentStatus": "Updating"}, "is Updating, not InService"),
        ({"EndpointName": "other-endpoint"}, "is on other-endpoint"),
    ],
)
def test_a_component_that_cannot_be_changed_is_refused(
    stubs: dict[str, Stubber], change: dict[str, Any], message: str
) -> None:
    expect_describe(stubs, {**DESCRIPTION, **change})
    with pytest.raises(UnsupportedEndpointError, match=message):
        apply_steps.component_snapshot(state(), EXECUTION)


def test_a_missing_component_is_named(stubs: dict[str, Stubber]) -> None:
    stubs["sagemaker"].add_client_error(
        "describe_inference_component",
        "ValidationException",
        "Could not find inference component",
        expected_params={"InferenceComponentName": NAME},
    )
    with pytest.raises(EndpointNotFoundError, match="inference component 'llama-ic'"):
        apply_steps.component_snapshot(state(), EXECUTION)


def test_a_component_already_on_the_recommendation_is_no_change(stubs: dict[str, Stubber]) -> None:
    description = copy.deepcopy(DESCRIPTION)
    description["RuntimeConfig"] = {"DesiredCopyCount": 8, "CurrentCopyCount": 8}
    expect_describe(stubs, description)
    expect_endpoint(stubs)
    expect_autoscaling_reads(stubs)
    request = {"InferenceComponentName": NAME, "RuntimeConfig": {"CopyCount": 8}}
    expect_store(stubs, {**stored(request), "copy_count": 8})

    snapshot = apply_steps.component_snapshot(state(), EXECUTION)

    assert snapshot["already_applied"] is True
    assert apply.outcome({**state(), "snapshot": snapshot})[0] == "no-change"


# -- UpdateComponent, CheckComponent ------------------------------------------------------------


def test_update_sends_the_snapshots_request(stubs: dict[str, Stubber]) -> None:
    request = {"InferenceComponentName": NAME, "RuntimeConfig": {"CopyCount": 8}}
    stubs["sagemaker"].add_response(
        "update_inference_component",
        {"InferenceComponentArn": DESCRIPTION["InferenceComponentArn"]},
        request,
    )
    result = apply_steps.component_update(state(snapshot={"update_request": request}), EXECUTION)
    assert result == {"request": request}


def test_check_reports_status_reason_and_copies(stubs: dict[str, Stubber]) -> None:
    expect_describe(stubs, {**DESCRIPTION, "InferenceComponentStatus": "Updating"})
    assert apply_steps.component_check(state(), EXECUTION) == {
        "status": "Updating",
        "failure_reason": None,
        "copy_count": 4,
    }


# -- EnsureComponentAutoscaling ----------------------------------------------------------------


def expect_registration(stubs: dict[str, Stubber], autoscaling: dict[str, Any]) -> None:
    stubs["autoscaling"].add_response(
        "register_scalable_target",
        {},
        {
            "ServiceNamespace": "sagemaker",
            "ResourceId": RESOURCE_ID,
            "ScalableDimension": DIMENSION,
            "MinCapacity": autoscaling["MinCapacity"],
            "MaxCapacity": autoscaling["MaxCapacity"],
        },
    )
    for policy in autoscaling["Policies"]:
        stubs["autoscaling"].add_response(
            "put_scaling_policy",
            {"PolicyARN": "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:x"},
            {
                **policy,
                "ServiceNamespace": "sagemaker",
                "ResourceId": RESOURCE_ID,
                "ScalableDimension": DIMENSION,
            },
        )


def test_an_updated_component_gets_the_recommended_autoscaling(stubs: dict[str, Stubber]) -> None:
    request = {"InferenceComponentName": NAME, "RuntimeConfig": {"CopyCount": 8}}
    description = copy.deepcopy(DESCRIPTION)
    description["RuntimeConfig"] = {"DesiredCopyCount": 8, "CurrentCopyCount": 8}
    expect_describe(stubs, description)
    new = component_apply.recommended_autoscaling(SNAPSHOT_AUTOSCALING, recommendation())
    expect_registration(stubs, new)

    result = apply_steps.component_ensure_autoscaling(
        state(
            snapshot={"autoscaling": SNAPSHOT_AUTOSCALING}, component_update={"request": request}
        ),
        EXECUTION,
    )

    assert result["serves"] == "new" and result["applied"] == new
    assert apply.outcome({**state(), "autoscaling": result})[0] == "applied"


def test_a_rolled_back_component_gets_the_snapshots_autoscaling(stubs: dict[str, Stubber]) -> None:
    request = {
        "InferenceComponentName": NAME,
        "RuntimeConfig": {"CopyCount": 8},
        "Specification": {**CURRENT_SPECIFICATION, "Container": {"Image": NEW_IMAGE}},
    }
    expect_describe(stubs, {**DESCRIPTION, "FailureReason": "rolled back: alarm"})
    expect_registration(stubs, SNAPSHOT_AUTOSCALING)

    result = apply_steps.component_ensure_autoscaling(
        state(
            snapshot={"autoscaling": SNAPSHOT_AUTOSCALING}, component_update={"request": request}
        ),
        EXECUTION,
    )

    assert result["serves"] == "previous" and result["applied"] == SNAPSHOT_AUTOSCALING


def test_a_run_that_failed_before_the_update_restores_the_snapshot(
    stubs: dict[str, Stubber],
) -> None:
    expect_describe(stubs)
    expect_registration(stubs, SNAPSHOT_AUTOSCALING)
    result = apply_steps.component_ensure_autoscaling(
        state(snapshot={"autoscaling": SNAPSHOT_AUTOSCALING}), EXECUTION
    )
    assert result["serves"] == "previous"


@pytest.mark.parametrize("status", sorted(component_apply.BUSY_STATUSES))
def test_autoscaling_waits_while_the_component_is_busy(
    stubs: dict[str, Stubber], status: str
) -> None:
    expect_describe(stubs, {**DESCRIPTION, "InferenceComponentStatus": status})
    with pytest.raises(apply_steps.ComponentBusyError):
        apply_steps.component_ensure_autoscaling(
            state(snapshot={"autoscaling": SNAPSHOT_AUTOSCALING}), EXECUTION
        )


# -- Record ------------------------------------------------------------------------------------


def test_the_record_of_an_applied_component_names_its_copies(
    stubs: dict[str, Stubber], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(apply_steps, "emit", lambda *_args: None)
    request = {"InferenceComponentName": NAME, "RuntimeConfig": {"CopyCount": 8}}
    run = state(
        snapshot={
            "kind": "inference-component",
            "update_request": request,
            "copy_count": 4,
            "compute_resource_requirements": CURRENT_SPECIFICATION["ComputeResourceRequirements"],
            "image": IMAGE,
            "autoscaling": SNAPSHOT_AUTOSCALING,
            "instance_type": "ml.g5.12xlarge",
        },
        autoscaling={"serves": "new", "inference_component_name": NAME, "applied": {}},
    )
    written: list[dict[str, Any]] = []
    stubs["dynamodb"].add_response("put_item", {}, None)
    original = apply_steps.dynamodb.put_item

    def capture(**kwargs: Any) -> Any:
        written.append(json.loads(kwargs["Item"]["record"]["S"]))
        return original(**kwargs)

    monkeypatch.setattr(apply_steps.dynamodb, "put_item", capture)

    outcome = apply_steps.record(run, EXECUTION)

    assert outcome["result"] == "applied"
    assert "llama-ic is in service with the recommended copies" in outcome["reason"]
    [item] = written
    assert item["inference_component"] == {
        "name": NAME,
        "before": {
            "copy_count": 4,
            "compute_resource_requirements": CURRENT_SPECIFICATION["ComputeResourceRequirements"],
            "image": IMAGE,
        },
        "after": {
            "copy_count": 8,
            "copies_per_instance": 2,
            "compute_resource_requirements": None,
            "image": None,
        },
    }


# -- An interrupted IC run ----------------------------------------------------------------------


def test_a_cleanup_of_an_ic_run_repairs_from_what_it_asked_for(stubs: dict[str, Stubber]) -> None:
    """TakeOver of an aborted IC run: the stored update request, not a new endpoint config,
    tells EnsureComponentAutoscaling which configuration the IC runs."""
    cleanup = "arn:aws:states:us-east-1:123456789012:execution:Apply:cleanup-1"
    request = {"InferenceComponentName": NAME, "RuntimeConfig": {"CopyCount": 8}}
    kept = stored(request)
    stubs["dynamodb"].add_response(
        "update_item",
        {
            "Attributes": {
                **LOCK_KEY,
                "holder": {"S": EXECUTION},
                "expires_at": {"N": "0"},
                "run_snapshot": {"S": json.dumps(kept, sort_keys=True)},
            }
        },
        {
            "TableName": "ledger",
            "Key": LOCK_KEY,
            "UpdateExpression": "SET holder = :me, expires_at = :expires",
            "ConditionExpression": "holder = :dead",
            "ExpressionAttributeValues": {
                ":me": {"S": cleanup},
                ":dead": {"S": EXECUTION},
                ":expires": {"N": ANY_EXPIRY},
            },
            "ReturnValues": "ALL_OLD",
        },
    )
    taken = apply_steps.take_over(
        {
            "interrupted": {
                "execution_arn": EXECUTION,
                "status": "ABORTED",
                "input": json.dumps({"settings": SETTINGS, "recommendation": recommendation()}),
            }
        },
        cleanup,
    )
    assert taken["repair"] is True
    assert taken["snapshot"] == kept
    assert taken["component_update"] == {"request": request}
    assert "new_config" not in taken


def test_an_approval_request_for_a_component_names_its_copies() -> None:
    """ApplyMode.APPROVAL: the approver reads the component's copies before the instances."""
    from rightsizing_runtime import approval

    detail = recommendation()
    request = approval.request(
        {"settings": {**SETTINGS, "approval_timeout_seconds": 3600}, "recommendation": detail},
        NOW,
    )
    assert request["summary"].startswith("llama-ic: 4 -> 8 copies; ml.g5.12xlarge")
    assert request["change"]["inference_component"] == {
        "name": NAME,
        "copy_count_before": 4,
        "copy_count_after": 8,
        "copies_per_instance": 2,
    }
