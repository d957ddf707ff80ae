"""The Apply workflow's pure pieces and its steps' requests (Stubber, botocore-validated)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber
from rightsizing_runtime import apply, apply_steps

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:Apply:run-1"
ENDPOINT_ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/fraud-scoring"
CONFIG_ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/fraud-scoring-config-1"
RESOURCE_ID = "endpoint/fraud-scoring/variant/AllTraffic"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
NOW = datetime(2026, 11, 1, tzinfo=UTC)

CONFIG = {
    "EndpointConfigName": "fraud-scoring-config-1",
    "EndpointConfigArn": CONFIG_ARN,
    "ProductionVariants": [
        {
            "VariantName": "AllTraffic",
            "ModelName": "fraud-model",
            "InstanceType": "ml.c5.2xlarge",
            "InitialInstanceCount": 6,
            "InitialVariantWeight": 1.0,
            "VolumeSizeInGB": 30,
        },
        {
            "VariantName": "Shadowless",
            "ModelName": "fraud-model-b",
            "InstanceType": "ml.c5.large",
            "InitialInstanceCount": 1,
        },
    ],
    "DataCaptureConfig": {
        "EnableCapture": True,
        "InitialSamplingPercentage": 10,
        "DestinationS3Uri": "s3://capture/fraud",
        "CaptureOptions": [{"CaptureMode": "Input"}],
    },
    "KmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/1234",
    "CreationTime": NOW,
}
TRACKING = {
    "PolicyName": "fraud-invocations",
    "PolicyType": "TargetTrackingScaling",
    "TargetTrackingScalingPolicyConfiguration": {
        "TargetValue": 200.0,
        "PredefinedMetricSpecification": {
            "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
        },
        "ScaleOutCooldown": 60,
        "ScaleInCooldown": 600,
        "DisableScaleIn": True,
    },
}
STEP = {
    "PolicyName": "fraud-cpu-steps",
    "PolicyType": "StepScaling",
    "StepScalingPolicyConfiguration": {
        "AdjustmentType": "ChangeInCapacity",
        "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}],
    },
}
SNAPSHOT_AUTOSCALING = {"MinCapacity": 2, "MaxCapacity": 12, "Policies": [TRACKING, STEP]}
RECOMMENDATION = {
    "endpoint_name": "fraud-scoring",
    "variant_name": "AllTraffic",
    "job_name": "rightsizing-0123456789abcdef01234567",
    "action": "apply",
    "instance_type": "ml.m5.xlarge",
    "instance_count": 8,
    "autoscaling": {"target_value": 450.0, "min_capacity": 1, "max_capacity": 10},
    "estimated_cost_per_hour": 1.84,
    "current": {"estimated_cost_per_hour": 2.448},
}
SETTINGS = {"endpoint_name": "fraud-scoring", "variant_name": "AllTraffic", "lock_seconds": 10800}


def state(**parts: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "settings": dict(SETTINGS),
        "recommendation": copy.deepcopy(RECOMMENDATION),
        "snapshot": {
            "endpoint_config_name": "fraud-scoring-config-1",
            "config": apply.config_fields(CONFIG),
            "tags": [{"Key": "team", "Value": "fraud"}],
            "instance_type": "ml.c5.2xlarge",
            "instance_count": 6,
            "autoscaling": copy.deepcopy(SNAPSHOT_AUTOSCALING),
            "already_applied": False,
            "deregister_first": True,
        },
    }
    base.update(parts)
    return base


# -- Pure pieces --------------------------------------------------------------------------------


def test_new_config_copies_everything_but_type_and_count() -> None:
    request = apply.new_config_request(
        current=apply.config_fields(CONFIG),
        tags=[
            {"Key": "team", "Value": "fraud"},
            {"Key": "aws:cloudformation:stack-name", "Value": "x"},
        ],
        name="fraud-scoring-rs-abc",
        variant_name="AllTraffic",
        instance_type="ml.m5.xlarge",
        instance_count=8,
        execution_arn=EXECUTION,
    )
    changed, other = request["ProductionVariants"]
    assert changed == {**CONFIG["ProductionVariants"][0], "InstanceType": "ml.m5.xlarge",
                       "InitialInstanceCount": 8}  # fmt: skip
    assert other == CONFIG["ProductionVariants"][1]
    assert request["DataCaptureConfig"] == CONFIG["DataCaptureConfig"]
    assert request["KmsKeyId"] == CONFIG["KmsKeyId"]
    assert "CreationTime" not in request and "EndpointConfigArn" not in request
    assert request["Tags"] == [
        {"Key": "team", "Value": "fraud"},
        {"Key": apply.MANAGED_TAG_KEY, "Value": EXECUTION},
    ]


def test_copied_fields_come_from_the_model() -> None:
    # Everything CreateEndpointConfig takes that DescribeEndpointConfig returns, name aside.
    assert {"ProductionVariants", "DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig",
            "ExplainerConfig", "ShadowProductionVariants", "VpcConfig",
            "EnableNetworkIsolation"} <= set(apply.COPIED_CONFIG_FIELDS)  # fmt: skip
    assert "EndpointConfigName" not in apply.COPIED_CONFIG_FIELDS


def test_empty_described_structures_are_not_copied() -> None:
    assert "DataCaptureConfig" not in apply.config_fields({**CONFIG, "DataCaptureConfig": {}})


def test_new_config_names_are_valid_and_stable() -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    pattern = model.shape_for("EndpointConfigName").metadata["pattern"]
    name = apply.new_config_name("a" * 63, EXECUTION)
    assert re.fullmatch(pattern, name) and len(name) <= 63
    assert apply.new_config_name("fraud-scoring", EXECUTION) == apply.new_config_name(
        "fraud-scoring", EXECUTION
    )
    assert apply.new_config_name("fraud-scoring", EXECUTION).startswith("fraud-scoring-rs-")


def test_recommended_autoscaling_keeps_the_rest_of_the_snapshot() -> None:
    result = apply.recommended_autoscaling(SNAPSHOT_AUTOSCALING, RECOMMENDATION)
    assert (result["MinCapacity"], result["MaxCapacity"]) == (1, 10)
    tracking, step = result["Policies"]
    assert tracking["PolicyName"] == "fraud-invocations"
    configuration = tracking["TargetTrackingScalingPolicyConfiguration"]
    assert configuration["TargetValue"] == 450.0
    assert (configuration["ScaleInCooldown"], configuration["ScaleOutCooldown"]) == (600, 60)
    assert configuration["DisableScaleIn"] is True
    assert step == STEP
    # The snapshot itself is untouched (it is the rollback target).
    assert TRACKING["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 200.0


def test_recommended_autoscaling_without_a_previous_policy() -> None:
    result = apply.recommended_autoscaling(None, RECOMMENDATION)
    [policy] = result["Policies"]
    assert policy["PolicyName"] == apply.DEFAULT_POLICY_NAME
    assert policy["TargetTrackingScalingPolicyConfiguration"] == {
        "PredefinedMetricSpecification": {
            "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
        },
        "ScaleInCooldown": 300,
        "ScaleOutCooldown": 300,
        "TargetValue": 450.0,
    }


def test_monthly_savings() -> None:
    assert apply.monthly_savings(2.448, 1.84) == 443.84
    assert apply.monthly_savings(None, 1.84) is None


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ({"error": {"Error": "EndpointLockedError", "Cause": json.dumps(
            {"errorMessage": "fraud-scoring is being changed by x"})}}, "rejected"),
        ({"snapshot": {"already_applied": True}}, "no-change"),
        ({"autoscaling": {"serves": "new", "endpoint_config_name": "c2"}}, "applied"),
        ({"update": {"status": "InService", "failure_reason": "alarm"},
          "autoscaling": {"serves": "previous"}}, "rolled-back"),
        ({"update": {"status": "Failed", "failure_reason": "capacity"},
          "autoscaling": {"serves": "previous"}}, "failed"),
        ({"error": {"Error": "ClientError", "Cause": "boom"},
          "autoscaling": {"serves": "previous"}}, "failed"),
        ({}, "failed"),
    ],
)  # fmt: skip
def test_outcome_of_each_path(parts: dict[str, Any], expected: str) -> None:
    assert apply.outcome(parts)[0] == expected


def test_a_lambda_errors_message_is_the_reason() -> None:
    result, reason = apply.outcome(
        {"error": {"Error": "EndpointLockedError", "Cause": json.dumps(
            {"errorType": "EndpointLockedError", "errorMessage": "held by run-0"})}}
    )  # fmt: skip
    assert (result, reason) == ("rejected", "held by run-0")


def test_config_fields_drop_only_empty_values_and_what_create_does_not_take() -> None:
    described = {
        **CONFIG,
        "EnableNetworkIsolation": False,  # a real value, however falsy: copied
        "ShadowProductionVariants": [],
        "AsyncInferenceConfig": None,
        "ExplainerConfig": {},
        "EndpointConfigName": "fraud-scoring-config-1",
    }
    assert apply.config_fields(described) == {
        "ProductionVariants": CONFIG["ProductionVariants"],
        "DataCaptureConfig": CONFIG["DataCaptureConfig"],
        "KmsKeyId": CONFIG["KmsKeyId"],
        "EnableNetworkIsolation": False,
    }


def test_variant_of_finds_the_named_variant() -> None:
    fields = apply.config_fields(CONFIG)
    assert apply.variant_of(fields, "Shadowless") == CONFIG["ProductionVariants"][1]
    with pytest.raises(ValueError, match=r"^the endpoint config has no variant 'Blue'$"):
        apply.variant_of(fields, "Blue")
    with pytest.raises(ValueError, match=r"^the endpoint config has no variant 'AllTraffic'$"):
        apply.variant_of({}, "AllTraffic")


def test_resource_id_of_a_variant() -> None:
    assert apply.resource_id("fraud-scoring", "Blue") == "endpoint/fraud-scoring/variant/Blue"


def test_autoscaling_snapshot_keeps_what_put_scaling_policy_takes() -> None:
    described = {
        **TRACKING,
        "PolicyARN": "arn:x",
        "ServiceNamespace": "sagemaker",
        "ResourceId": RESOURCE_ID,
        "ScalableDimension": DIMENSION,
        "Alarms": [{"AlarmName": "a", "AlarmARN": "arn:a"}],
        "CreationTime": NOW,
    }
    predictive = {
        "PolicyName": "fraud-predictive",
        "PolicyType": "PredictiveScaling",
        "PredictiveScalingPolicyConfiguration": {
            "MetricSpecifications": [],
            "Mode": "ForecastOnly",
        },
    }
    targets = [
        {"MinCapacity": 2, "MaxCapacity": 12, "RoleARN": "arn:r", "CreationTime": NOW},
        {"MinCapacity": 9, "MaxCapacity": 99},
    ]
    assert apply.autoscaling_snapshot(targets, [described, STEP, predictive]) == {
        "MinCapacity": 2,
        "MaxCapacity": 12,
        "Policies": [TRACKING, STEP, predictive],
    }
    assert apply.autoscaling_snapshot([], [described]) is None


def test_a_policy_tracking_another_metric_is_kept_beside_the_recommended_one() -> None:
    cpu = {
        "PolicyName": "fraud-cpu",
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 70.0,
            "CustomizedMetricSpecification": {
                "MetricName": "CPUUtilization",
                "Namespace": "/aws/sagemaker/Endpoints",
                "Statistic": "Average",
            },
        },
    }
    result = apply.recommended_autoscaling(
        {"MinCapacity": 2, "MaxCapacity": 12, "Policies": [cpu]}, RECOMMENDATION
    )
    assert result == {
        "MinCapacity": 1,
        "MaxCapacity": 10,
        "Policies": [
            cpu,
            {
                "PolicyName": "rightsizing-invocations-per-instance",
                "PolicyType": "TargetTrackingScaling",
                "TargetTrackingScalingPolicyConfiguration": {
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                    },
                    "ScaleInCooldown": 300,
                    "ScaleOutCooldown": 300,
                    "TargetValue": 450.0,
                },
            },
        ],
    }


def test_recommended_autoscaling_takes_json_numbers_as_the_api_wants_them() -> None:
    # JSON gives 450 for 450.0 and may give 1.0 for 1: TargetValue is a double, capacities ints.
    recommendation = {
        "autoscaling": {"target_value": 450, "min_capacity": 1.0, "max_capacity": 10.0}
    }
    result = apply.recommended_autoscaling(None, recommendation)
    assert (result["MinCapacity"], result["MaxCapacity"]) == (1, 10)
    assert all(type(result[k]) is int for k in ("MinCapacity", "MaxCapacity"))
    value = result["Policies"][0]["TargetTrackingScalingPolicyConfiguration"]["TargetValue"]
    assert (value, type(value)) == (450.0, float)


def test_recommended_autoscaling_keeps_suspended_scaling() -> None:
    suspended = {"DynamicScalingInSuspended": True}
    snapshot = {**SNAPSHOT_AUTOSCALING, "SuspendedState": suspended}
    assert apply.recommended_autoscaling(snapshot, RECOMMENDATION)["SuspendedState"] == suspended
    assert "SuspendedState" not in apply.recommended_autoscaling(
        SNAPSHOT_AUTOSCALING, RECOMMENDATION
    )


def test_register_and_policy_requests() -> None:
    suspended = {"ScheduledScalingSuspended": True}
    autoscaling = {**SNAPSHOT_AUTOSCALING, "SuspendedState": suspended}
    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": RESOURCE_ID,
        "ScalableDimension": DIMENSION,
    }
    assert apply.register_request("fraud-scoring", "AllTraffic", autoscaling) == {
        **target,
        "MinCapacity": 2,
        "MaxCapacity": 12,
        "SuspendedState": suspended,
    }
    assert apply.register_request("fraud-scoring", "AllTraffic", SNAPSHOT_AUTOSCALING) == {
        **target,
        "MinCapacity": 2,
        "MaxCapacity": 12,
    }
    assert apply.policy_requests("fraud-scoring", "AllTraffic", autoscaling) == [
        {**TRACKING, **target},
        {**STEP, **target},
    ]


@pytest.mark.parametrize(
    ("before", "after", "saved"),
    [
        (2.448, 1.84, 443.84),
        (0.204, 0.2, 2.92),  # exact decimals: 0.004 * 730, not 2.9199999
        (1.0, 1.5, -365.0),  # a change that costs more says so
        (0.001, 0.0, 0.73),
        (None, 1.84, None),
        (2.448, None, None),
    ],
)
def test_monthly_savings_are_730_hours_of_the_difference(
    before: float | None, after: float | None, saved: float | None
) -> None:
    assert apply.monthly_savings(before, after) == saved


@pytest.mark.parametrize(
    ("ended_with", "expected"),
    [
        ({"error": {"Error": "EndpointLockedError", "Cause": "held"},
          "autoscaling": {"serves": "new"}}, ("rejected", "held")),
        ({"snapshot": {"already_applied": True}, "error": {"Error": "X", "Cause": "late"}},
         ("no-change", "the endpoint already runs the recommended instance type and count")),
        ({"autoscaling": {"serves": "new", "endpoint_config_name": "c2"},
          "error": {"Error": "States.Timeout", "Cause": "check timed out"}},
         ("applied", "c2 is in service with the recommended instance type, count and autoscaling")),
        ({"update": {"status": "InService"}, "autoscaling": {"serves": "previous"}},
         ("rolled-back", "SageMaker rolled the update back")),
        ({"update": {"status": "InService", "failure_reason": "alarm fraud-5xx"},
          "autoscaling": {"serves": "previous"}}, ("rolled-back", "alarm fraud-5xx")),
        ({"update": {"status": "InService", "failure_reason": "alarm"},
          "autoscaling": {"serves": "previous"}, "error": {"Error": "E", "Cause": "boom"}},
         ("failed", "boom")),
        ({"update": {"status": "Failed"}, "autoscaling": {"serves": "previous"}},
         ("failed", "the update ended Failed")),
        ({"update": {"status": "UpdateRollbackFailed", "failure_reason": "capacity"}},
         ("failed", "capacity")),
        ({"update": {"status": "InService"}}, ("failed", "the update ended InService")),
        ({"update": {}}, ("failed", "the run ended before the update")),
        ({"error": {"Error": "UpdateTimedOut"}}, ("failed", "UpdateTimedOut")),
        ({"error": {"Cause": ""}}, ("failed", "unknown error")),
        ({"error": {"Error": "E", "Cause": json.dumps({"errorType": "E"})}},
         ("failed", json.dumps({"errorType": "E"}))),
        ({"error": {"Error": "E", "Cause": json.dumps(["a list"])}},
         ("failed", json.dumps(["a list"]))),
        ({"error": {"Error": "E", "Cause": json.dumps({"errorMessage": 42})}}, ("failed", "42")),
    ],
)  # fmt: skip
def test_outcome_and_reason_of_each_path(
    ended_with: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert apply.outcome(ended_with) == expected


def test_a_name_ending_in_x_keeps_it() -> None:
    # Only a dash is dropped where the name is cut, never the name's own last characters.
    assert apply.new_config_name("fraud-scoring-X", EXECUTION) == "fraud-scoring-X-rs-ab706b52ca7b"


def test_a_new_config_for_a_missing_variant_says_which() -> None:
    with pytest.raises(ValueError, match=r"^the endpoint config has no variant 'Blue'$"):
        apply.new_config_request(
            current=apply.config_fields(CONFIG),
            tags=[],
            name="fraud-scoring-rs-abc",
            variant_name="Blue",
            instance_type="ml.m5.xlarge",
            instance_count=8,
            execution_arn=EXECUTION,
        )


def test_the_created_by_tag_fits_a_tag_value() -> None:
    limit = botocore.session.get_session().get_service_model("sagemaker").shape_for("TagValue")
    long_arn = "arn:aws:states:us-east-1:123456789012:execution:" + "x" * 300
    request = apply.new_config_request(
        current=apply.config_fields(CONFIG),
        tags=[],
        name="fraud-scoring-rs-abc",
        variant_name="AllTraffic",
        instance_type="ml.m5.xlarge",
        instance_count=8,
        execution_arn=long_arn,
    )
    [tag] = request["Tags"]
    assert tag == {"Key": apply.MANAGED_TAG_KEY, "Value": long_arn[-256:]}
    assert len(tag["Value"]) == limit.metadata["max"] == 256


# -- What a copy may carry: refusals, keys and roles, word for word --------------------------------

ROLE = "arn:aws:iam::123456789012:role/fraud-scoring-endpoint"
KEY = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-4e5f-6789-0abc-def012345678"


def test_a_serverless_variant_is_refused_by_name() -> None:
    # It has no instance type: the message says "this variant", not an empty type.
    variant = {"VariantName": "AllTraffic", "ModelName": "m", "ServerlessConfig": {"x": 1}}
    assert apply.type_change(variant, "ml.m5.xlarge") == (
        {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.xlarge"},
        [
            "ServerlessConfig cannot move from this variant to ml.m5.xlarge: a serverless "
            "variant has no instance type; the recommendation is for instances"
        ],
    )


@pytest.mark.parametrize("instance_type", ["ml.m5.xlarge", "ml.c5.2xlarge"])
def test_a_field_this_release_does_not_know_is_refused_on_any_change(instance_type: str) -> None:
    # A ProductionVariant member botocore adds later: never copied blind, even for a count.
    variant = {**CONFIG["ProductionVariants"][0], "WarmPoolConfig": {"Size": 2}}
    changed, refused = apply.type_change(variant, instance_type)
    assert "WarmPoolConfig" not in changed
    assert refused == [
        f"WarmPoolConfig cannot move from ml.c5.2xlarge to {instance_type}: a field this release "
        "does not know how to carry over"
    ]


def test_a_new_config_the_fields_refuse_raises_every_reason() -> None:
    current = copy.deepcopy(apply.config_fields(CONFIG))
    current["ProductionVariants"][0]["AcceleratorType"] = "ml.eia2.medium"
    current["ProductionVariants"][0]["InstancePools"] = [{"InstanceType": "ml.c5.xlarge"}]
    with pytest.raises(ValueError) as raised:
        apply.new_config_request(
            current=current,
            tags=[],
            name="fraud-scoring-rs-abc",
            variant_name="AllTraffic",
            instance_type="ml.m5.xlarge",
            instance_count=8,
            execution_arn=EXECUTION,
        )
    assert str(raised.value) == "; ".join(
        [
            # In the variant's own order.
            "AcceleratorType cannot move from ml.c5.2xlarge to ml.m5.xlarge: "
            + apply.VARIANT_FIELDS_ON_TYPE_CHANGE["AcceleratorType"][1],
            "InstancePools cannot move from ml.c5.2xlarge to ml.m5.xlarge: "
            + apply.VARIANT_FIELDS_ON_TYPE_CHANGE["InstancePools"][1],
        ]
    )


def test_the_keys_of_every_variant_are_found() -> None:
    variants = [
        {"VariantName": "A", "CoreDumpConfig": {"KmsKeyId": "alias/a"}},
        {"VariantName": "B", "CoreDumpConfig": {"KmsKeyId": "alias/b"}},
    ]
    assert apply.kms_key_ids({"ProductionVariants": variants, "KmsKeyId": ""}) == [
        ("ProductionVariants[0].CoreDumpConfig.KmsKeyId", "alias/a"),
        ("ProductionVariants[1].CoreDumpConfig.KmsKeyId", "alias/b"),
    ]


@pytest.mark.parametrize(
    ("key_id", "alias"),
    [
        ("alias/fraud", True),
        ("arn:aws:kms:us-east-1:123456789012:alias/fraud", True),
        (KEY, False),
        ("0a1b2c3d-4e5f-6789-0abc-def012345678", False),
    ],
)
def test_an_alias_by_name_or_arn(key_id: str, alias: bool) -> None:
    assert apply.is_key_alias(key_id) is alias


def test_a_role_of_another_account_is_another_role() -> None:
    # Same name and path, another account: not the role the settings allow.
    other = "arn:aws:iam::999999999999:role/fraud-scoring-endpoint"
    settings = {"endpoint_name": "fraud-scoring", "execution_role_arn": ROLE}
    assert apply.missing_permissions({"ExecutionRoleArn": other}, settings, {}) == [
        f"the endpoint config's ExecutionRoleArn {other} is not the execution_role of "
        "EndpointRightsizing(fraud-scoring): add execution_role=iam.Role.from_role_arn(..., "
        f"'{other}') so the Apply workflow may pass it to SageMaker"
    ]
    assert apply.missing_permissions({"ExecutionRoleArn": ROLE}, settings, {}) == []


def test_settings_without_an_endpoint_name_still_say_what_to_add() -> None:
    assert apply.missing_permissions({"KmsKeyId": KEY}, {}, {}) == [
        f"the endpoint config's KmsKeyId {KEY} is not among the kms_keys of "
        "EndpointRightsizing(the endpoint): add kms_keys=[kms.Key.from_key_arn(..., "
        "<its key ARN>)] so the Apply workflow may use it"
    ]


# -- Steps, against botocore's models -----------------------------------------------------------


@pytest.fixture
def stubs(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Stubber]]:
    monkeypatch.setenv("LEDGER_TABLE_NAME", "ledger")
    stubbers = {
        "sagemaker": Stubber(apply_steps.sagemaker),
        "autoscaling": Stubber(apply_steps.autoscaling),
        "dynamodb": Stubber(apply_steps.dynamodb),
    }
    for stubber in stubbers.values():
        stubber.activate()
    try:
        yield stubbers
        for stubber in stubbers.values():
            stubber.assert_no_pending_responses()
    finally:  # a failed test must not leave its responses to the next one
        for stubber in stubbers.values():
            stubber.deactivate()


def test_snapshot(stubs: dict[str, Stubber]) -> None:
    sagemaker, autoscaling = stubs["sagemaker"], stubs["autoscaling"]
    sagemaker.add_response(
        "describe_endpoint",
        {
            "EndpointName": "fraud-scoring",
            "EndpointArn": ENDPOINT_ARN,
            "EndpointConfigName": "fraud-scoring-config-1",
            "EndpointStatus": "InService",
            "CreationTime": NOW,
            "LastModifiedTime": NOW,
        },
        {"EndpointName": "fraud-scoring"},
    )
    sagemaker.add_response(
        "describe_endpoint_config", CONFIG, {"EndpointConfigName": "fraud-scoring-config-1"}
    )
    sagemaker.add_response(
        "list_tags", {"Tags": [{"Key": "team", "Value": "fraud"}]}, {"ResourceArn": CONFIG_ARN}
    )
    autoscaling.add_response(
        "describe_scalable_targets",
        {
            "ScalableTargets": [
                {
                    "ServiceNamespace": "sagemaker",
                    "ResourceId": RESOURCE_ID,
                    "ScalableDimension": DIMENSION,
                    "MinCapacity": 2,
                    "MaxCapacity": 12,
                    "RoleARN": "arn:aws:iam::123456789012:role/aas",
                    "CreationTime": NOW,
                }
            ]
        },
        {
            "ServiceNamespace": "sagemaker",
            "ResourceIds": [RESOURCE_ID],
            "ScalableDimension": DIMENSION,
        },
    )
    autoscaling.add_response(
        "describe_scaling_policies",
        {
            "ScalingPolicies": [
                {
                    **policy,
                    "PolicyARN": "arn:x",
                    "ServiceNamespace": "sagemaker",
                    "ResourceId": RESOURCE_ID,
                    "ScalableDimension": DIMENSION,
                    "CreationTime": NOW,
                }
                for policy in (TRACKING, STEP)
            ]
        },
        {
            "ServiceNamespace": "sagemaker",
            "ResourceId": RESOURCE_ID,
            "ScalableDimension": DIMENSION,
        },
    )
    # The snapshot is kept with the lock, for a cleanup or the next run (apply_steps.take_over).
    stubs["dynamodb"].add_response(
        "update_item",
        {},
        {
            "TableName": "ledger",
            "Key": {"pk": {"S": "endpoint#fraud-scoring"}, "sk": {"S": "lock"}},
            "UpdateExpression": "SET run_snapshot = :snapshot",
            "ConditionExpression": "holder = :me",
            "ExpressionAttributeValues": {
                ":me": {"S": EXECUTION},
                # What a repair needs, as sorted JSON (a run's own new config is named after it).
                ":snapshot": {
                    "S": '{"autoscaling": {"MaxCapacity": 12, "MinCapacity": 2, "Policies": ['
                    '{"PolicyName": "fraud-invocations", "PolicyType": "TargetTrackingScaling", '
                    '"TargetTrackingScalingPolicyConfiguration": {"DisableScaleIn": true, '
                    '"PredefinedMetricSpecification": {"PredefinedMetricType": '
                    '"SageMakerVariantInvocationsPerInstance"}, "ScaleInCooldown": 600, '
                    '"ScaleOutCooldown": 60, "TargetValue": 200.0}}, {"PolicyName": '
                    '"fraud-cpu-steps", "PolicyType": "StepScaling", '
                    '"StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity", '
                    '"StepAdjustments": [{"MetricIntervalLowerBound": 0.0, '
                    '"ScalingAdjustment": 1}]}}]}, "deregister_first": true, '
                    '"endpoint_config_name": "fraud-scoring-config-1", "instance_count": 6, '
                    '"instance_type": "ml.c5.2xlarge", '
                    '"new_config_name": "fraud-scoring-rs-ab706b52ca7b"}'
                },
            },
        },
    )
    # CONFIG's volume key is one the endpoint's settings allow.
    allowed = {**SETTINGS, "kms_key_arns": [CONFIG["KmsKeyId"]]}
    snapshot = apply_steps.snapshot(state(settings=allowed), EXECUTION)
    assert snapshot == {
        "endpoint_config_name": "fraud-scoring-config-1",
        "config": apply.config_fields(CONFIG),
        "tags": [{"Key": "team", "Value": "fraud"}],
        "instance_type": "ml.c5.2xlarge",
        "instance_count": 6,
        "autoscaling": SNAPSHOT_AUTOSCALING,
        "already_applied": False,
        "repair_autoscaling": False,
        "deregister_first": True,
    }
    json.dumps(snapshot)  # it travels through the state machine as JSON


def test_create_config_request(stubs: dict[str, Stubber]) -> None:
    name = apply.new_config_name("fraud-scoring", EXECUTION)
    expected = apply.new_config_request(
        current=apply.config_fields(CONFIG),
        tags=[{"Key": "team", "Value": "fraud"}],
        name=name,
        variant_name="AllTraffic",
        instance_type="ml.m5.xlarge",
        instance_count=8,
        execution_arn=EXECUTION,
    )
    stubs["sagemaker"].add_response(
        "create_endpoint_config", {"EndpointConfigArn": CONFIG_ARN + "x"}, expected
    )
    assert apply_steps.create_config(state(), EXECUTION) == {"name": name}


def test_update_request_with_a_canary_deployment(stubs: dict[str, Stubber]) -> None:
    deployment = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 600,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
            }
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "fraud-5xx"}]},
    }
    stubs["sagemaker"].add_response(
        "update_endpoint",
        {"EndpointArn": ENDPOINT_ARN},
        {
            "EndpointName": "fraud-scoring",
            "EndpointConfigName": "fraud-scoring-rs-abc",
            "RetainAllVariantProperties": True,
            "ExcludeRetainedVariantProperties": [{"VariantPropertyType": "DesiredInstanceCount"}],
            "DeploymentConfig": deployment,
        },
    )
    apply_steps.update(
        state(
            settings={**SETTINGS, "deployment_config": deployment},
            new_config={"name": "fraud-scoring-rs-abc"},
        ),
        EXECUTION,
    )


def _describe(stubber: Stubber, status: str, config: str) -> None:
    stubber.add_response(
        "describe_endpoint",
        {
            "EndpointName": "fraud-scoring",
            "EndpointArn": ENDPOINT_ARN,
            "EndpointConfigName": config,
            "EndpointStatus": status,
            "CreationTime": NOW,
            "LastModifiedTime": NOW,
        },
        {"EndpointName": "fraud-scoring"},
    )


def _expect_autoscaling(stubber: Stubber, autoscaling: dict[str, Any]) -> None:
    stubber.add_response(
        "register_scalable_target",
        {},
        apply.register_request("fraud-scoring", "AllTraffic", autoscaling),
    )
    for request in apply.policy_requests("fraud-scoring", "AllTraffic", autoscaling):
        stubber.add_response("put_scaling_policy", {"PolicyARN": "arn:x"}, request)


def test_ensure_autoscaling_on_the_new_config(stubs: dict[str, Stubber]) -> None:
    _describe(stubs["sagemaker"], "InService", "fraud-scoring-rs-abc")
    _expect_autoscaling(
        stubs["autoscaling"], apply.recommended_autoscaling(SNAPSHOT_AUTOSCALING, RECOMMENDATION)
    )
    result = apply_steps.ensure_autoscaling(
        state(new_config={"name": "fraud-scoring-rs-abc"}), EXECUTION
    )
    assert result["serves"] == "new"


def test_ensure_autoscaling_restores_the_snapshot_on_the_old_config(
    stubs: dict[str, Stubber],
) -> None:
    _describe(stubs["sagemaker"], "InService", "fraud-scoring-config-1")
    _expect_autoscaling(stubs["autoscaling"], SNAPSHOT_AUTOSCALING)
    result = apply_steps.ensure_autoscaling(
        state(new_config={"name": "fraud-scoring-rs-abc"}), EXECUTION
    )
    assert result == {
        "serves": "previous",
        "endpoint_config_name": "fraud-scoring-config-1",
        "applied": SNAPSHOT_AUTOSCALING,
    }


def test_ensure_autoscaling_waits_for_an_updating_endpoint(stubs: dict[str, Stubber]) -> None:
    _describe(stubs["sagemaker"], "Updating", "fraud-scoring-config-1")
    with pytest.raises(apply_steps.EndpointBusyError, match="Updating"):
        apply_steps.ensure_autoscaling(state(new_config={"name": "x"}), EXECUTION)
