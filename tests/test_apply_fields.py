"""What a config copy may carry: variant fields across instance families (issue 11, item 9), and
the execution role and KMS keys an endpoint allows (item 7). Pure functions, and the Snapshot
step against botocore's models (Stubber): a refusal happens before anything changes."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aws_cdk as cdk
import botocore.session
import botocore.validate
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template
from botocore.stub import Stubber
from rightsizing_runtime import apply, apply_steps
from rightsizing_runtime.errors import UnsupportedEndpointError

from rightsizing_constructs import ApplyMode
from tests.infra import as_list, endpoint_input, rightsizing, stack, statements_of

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:Apply:run-1"
KEY = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-4e5f-6789-0abc-def012345678"
OTHER_KEY = "arn:aws:kms:us-east-1:123456789012:key/99999999-4e5f-6789-0abc-def012345678"
ROLE = "arn:aws:iam::123456789012:role/fraud-scoring-endpoint"
NOW = datetime(2026, 11, 1, tzinfo=UTC)
_SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")

# A value SageMaker would accept for each ProductionVariant field (validated below).
FIELD_VALUES: dict[str, Any] = {
    "VariantName": "AllTraffic",
    "ModelName": "fraud-model",
    "InitialInstanceCount": 2,
    "InitialVariantWeight": 1.0,
    "ModelDataDownloadTimeoutInSeconds": 600,
    "ContainerStartupHealthCheckTimeoutInSeconds": 600,
    "VariantInstanceProvisionTimeoutInSeconds": 900,
    "EnableSSMAccess": True,
    "CoreDumpConfig": {"DestinationS3Uri": "s3://dumps/fraud"},
    "ManagedInstanceScaling": {"Status": "ENABLED", "MinInstanceCount": 1, "MaxInstanceCount": 4},
    "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
    "VolumeSizeInGB": 64,
    "InferenceAmiVersion": "al2-ami-sagemaker-inference-gpu-2",
    "AcceleratorPartitionLayouts": [{"AcceleratorPartitionTypes": ["mig-3g.40gb"]}],
    "CapacityReservationConfig": {
        "CapacityReservationPreference": "capacity-reservations-only",
        "MlReservationArn": "arn:aws:sagemaker:us-east-1:123456789012:reserved-capacity/r-1",
    },
    "InstancePools": [{"InstanceType": "ml.g5.xlarge", "Priority": 1}],
    "AcceleratorType": "ml.eia2.medium",
    "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
}

# What a move does to each field, in both directions of a cross-family move and within a
# family: kept, dropped, or refused (the run changes nothing and records why).
KEPT, DROPPED, REFUSED = "kept", "dropped", "refused"
EXPECTED: dict[str, tuple[str, str, str]] = {
    # field: (ml.g5 -> ml.c5, ml.c5 -> ml.g5, ml.g5.xlarge -> ml.g5.2xlarge)
    "VariantName": (KEPT, KEPT, KEPT),
    "ModelName": (KEPT, KEPT, KEPT),
    "InitialVariantWeight": (KEPT, KEPT, KEPT),
    "ModelDataDownloadTimeoutInSeconds": (KEPT, KEPT, KEPT),
    "ContainerStartupHealthCheckTimeoutInSeconds": (KEPT, KEPT, KEPT),
    "VariantInstanceProvisionTimeoutInSeconds": (KEPT, KEPT, KEPT),
    "EnableSSMAccess": (KEPT, KEPT, KEPT),
    "CoreDumpConfig": (KEPT, KEPT, KEPT),
    "ManagedInstanceScaling": (KEPT, KEPT, KEPT),
    "RoutingConfig": (KEPT, KEPT, KEPT),
    "VolumeSizeInGB": (KEPT, KEPT, KEPT),
    # A GPU AMI: dropped on a CPU type, kept on a GPU one.
    "InferenceAmiVersion": (DROPPED, KEPT, KEPT),
    "AcceleratorPartitionLayouts": (REFUSED, REFUSED, KEPT),
    "CapacityReservationConfig": (REFUSED, REFUSED, REFUSED),
    "InstancePools": (REFUSED, REFUSED, REFUSED),
    "AcceleratorType": (REFUSED, REFUSED, REFUSED),
    "ServerlessConfig": (REFUSED, REFUSED, REFUSED),
}
MOVES = [
    ("ml.g5.xlarge", "ml.c5.xlarge"),
    ("ml.c5.xlarge", "ml.g5.xlarge"),
    ("ml.g5.xlarge", "ml.g5.2xlarge"),
]


def test_every_variant_field_is_decided() -> None:
    """A field botocore adds to ProductionVariant fails here until the table decides it."""
    members = set(_SAGEMAKER.shape_for("ProductionVariant").members)
    assert set(apply.VARIANT_FIELDS_ON_TYPE_CHANGE) == members
    assert set(FIELD_VALUES) | {"InstanceType"} == members
    for action, why in apply.VARIANT_FIELDS_ON_TYPE_CHANGE.values():
        assert (
            action
            in (
                apply.SET,
                apply.KEEP,
                apply.SAME_ACCELERATOR,
                apply.SAME_FAMILY,
                apply.SAME_TYPE,
                apply.REFUSE,
            )
            and why
        )


@pytest.mark.parametrize("field", sorted(EXPECTED))
@pytest.mark.parametrize("move", range(3), ids=["g5-to-c5", "c5-to-g5", "g5-within-family"])
def test_each_field_on_each_move(field: str, move: int) -> None:
    source, target = MOVES[move]
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "fraud-model",
        "InstanceType": source,
        "InitialInstanceCount": 2,
        field: FIELD_VALUES[field],
    }
    changed, refused = apply.type_change(variant, target)
    expected = EXPECTED[field][move]
    if expected == REFUSED:
        [reason] = refused
        assert reason.startswith(f"{field} cannot move from {source} to {target}: ")
        return
    assert refused == []
    assert changed["InstanceType"] == target
    assert (field in changed) == (expected == KEPT)
    if expected == KEPT:
        assert changed[field] == FIELD_VALUES[field]


@pytest.mark.parametrize(
    ("ami", "target", "kept"),
    [
        ("al2-ami-sagemaker-inference-gpu-3-1", "ml.g6.xlarge", True),
        ("al2-ami-sagemaker-inference-gpu-3-1", "ml.p4d.24xlarge", True),
        ("al2-ami-sagemaker-inference-gpu-3-1", "ml.inf2.xlarge", False),
        ("al2-ami-sagemaker-inference-neuron-2", "ml.trn1.2xlarge", True),
        ("al2-ami-sagemaker-inference-neuron-2", "ml.g5.xlarge", False),
        ("al2-ami-sagemaker-inference-neuron-2", "ml.m5.xlarge", False),
        ("al2023-ami-sagemaker-inference-gpu-4-1", "ml.g6e.xlarge", True),
    ],
)
def test_an_ami_follows_its_accelerator(ami: str, target: str, kept: bool) -> None:
    # Every AMI botocore knows names its accelerator (so none is dropped by mistake).
    enum = _SAGEMAKER.shape_for("ProductionVariantInferenceAmiVersion").enum
    assert all(apply._ami_accelerator(a) for a in enum)
    variant = {"VariantName": "A", "InstanceType": "ml.g5.xlarge", "InferenceAmiVersion": ami}
    changed, refused = apply.type_change(variant, target)
    assert refused == [] and ("InferenceAmiVersion" in changed) == kept


def test_count_only_changes_keep_type_bound_fields() -> None:
    """The same type (a count change) keeps even the fields a type change refuses."""
    variant = {
        "VariantName": "A",
        "InstanceType": "ml.p4d.24xlarge",
        "InitialInstanceCount": 2,
        "CapacityReservationConfig": FIELD_VALUES["CapacityReservationConfig"],
        "AcceleratorPartitionLayouts": FIELD_VALUES["AcceleratorPartitionLayouts"],
    }
    changed, refused = apply.type_change(variant, "ml.p4d.24xlarge")
    assert refused == [] and changed == variant


def test_new_config_request_drops_a_gpu_ami_on_a_cpu_type_and_validates() -> None:
    config = {
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": "m",
                "InstanceType": "ml.g5.xlarge",
                "InitialInstanceCount": 2,
                "InferenceAmiVersion": "al2-ami-sagemaker-inference-gpu-2",
                "RoutingConfig": {"RoutingStrategy": "RANDOM"},
            }
        ]
    }
    request = apply.new_config_request(
        current=config,
        tags=[],
        name="fraud-rs-1",
        variant_name="AllTraffic",
        instance_type="ml.c5.xlarge",
        instance_count=4,
        execution_arn=EXECUTION,
    )
    assert request["ProductionVariants"] == [
        {
            "VariantName": "AllTraffic",
            "ModelName": "m",
            "InstanceType": "ml.c5.xlarge",
            "InitialInstanceCount": 4,
            "RoutingConfig": {"RoutingStrategy": "RANDOM"},
        }
    ]
    botocore.validate.validate_parameters(
        request, _SAGEMAKER.operation_model("CreateEndpointConfig").input_shape
    )
    with pytest.raises(ValueError, match="CapacityReservationConfig cannot move"):
        apply.new_config_request(
            current={
                "ProductionVariants": [
                    {
                        **config["ProductionVariants"][0],
                        "CapacityReservationConfig": FIELD_VALUES["CapacityReservationConfig"],
                    }
                ]
            },
            tags=[],
            name="x",
            variant_name="AllTraffic",
            instance_type="ml.c5.xlarge",
            instance_count=4,
            execution_arn=EXECUTION,
        )


def test_field_values_are_valid_production_variant_members() -> None:
    for field, value in FIELD_VALUES.items():
        variant = {"VariantName": "A", field: value}
        botocore.validate.validate_parameters(
            {"EndpointConfigName": "x", "ProductionVariants": [variant]},
            _SAGEMAKER.operation_model("CreateEndpointConfig").input_shape,
        )


# -- Execution role and KMS keys (item 7) ---------------------------------------------------------

ALLOWED = {"endpoint_name": "fraud-scoring", "execution_role_arn": ROLE, "kms_key_arns": [KEY]}


def test_every_kms_key_of_a_config_is_found() -> None:
    config = {
        "KmsKeyId": KEY,
        "DataCaptureConfig": {"KmsKeyId": "alias/capture"},
        "AsyncInferenceConfig": {"OutputConfig": {"KmsKeyId": OTHER_KEY}},
        "ProductionVariants": [{"CoreDumpConfig": {"KmsKeyId": "0a1b2c3d"}}],
    }
    assert apply.kms_key_ids(config) == [
        ("KmsKeyId", KEY),
        ("DataCaptureConfig.KmsKeyId", "alias/capture"),
        ("AsyncInferenceConfig.OutputConfig.KmsKeyId", OTHER_KEY),
        ("ProductionVariants[0].CoreDumpConfig.KmsKeyId", "0a1b2c3d"),
    ]


@pytest.mark.parametrize(
    ("config", "settings", "names"),
    [
        ({"ExecutionRoleArn": ROLE, "KmsKeyId": KEY}, ALLOWED, []),
        # A role path does not change which role it is; a key may be named by its ID.
        (
            {
                "ExecutionRoleArn": "arn:aws:iam::123456789012:role/team/fraud-scoring-endpoint",
                "KmsKeyId": KEY.rsplit("/", 1)[1],
            },
            ALLOWED,
            [],
        ),
        ({"ExecutionRoleArn": ROLE}, {"endpoint_name": "fraud-scoring"}, ["execution_role"]),
        ({"KmsKeyId": KEY}, {"endpoint_name": "fraud-scoring"}, ["kms_keys"]),
        ({"DataCaptureConfig": {"KmsKeyId": OTHER_KEY}}, ALLOWED, ["kms_keys"]),
        (
            {
                "ExecutionRoleArn": "arn:aws:iam::123456789012:role/other",
                "AsyncInferenceConfig": {"OutputConfig": {"KmsKeyId": OTHER_KEY}},
            },
            ALLOWED,
            ["execution_role", "kms_keys"],
        ),
        ({"KmsKeyId": "alias/volumes"}, ALLOWED, []),  # resolves to KEY (below)
        ({"KmsKeyId": "alias/unreadable"}, ALLOWED, ["kms_keys"]),
        ({}, {"endpoint_name": "fraud-scoring"}, []),
    ],
)
def test_missing_permissions_name_the_setting_to_add(
    config: dict[str, Any], settings: dict[str, Any], names: list[str]
) -> None:
    problems = apply.missing_permissions(
        config, settings, {"alias/volumes": KEY, "alias/unreadable": None}
    )
    assert [next(n for n in ("execution_role=", "kms_keys=") if n in p) for p in problems] == [
        f"{name}=" for name in names
    ]
    assert all("EndpointRightsizing(fraud-scoring)" in p for p in problems)


@pytest.fixture
def stubs(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Stubber]]:
    monkeypatch.setenv("LEDGER_TABLE_NAME", "ledger")
    stubbers = {
        "sagemaker": Stubber(apply_steps.sagemaker),
        "autoscaling": Stubber(apply_steps.autoscaling),
        "dynamodb": Stubber(apply_steps.dynamodb),
        "kms": Stubber(apply_steps.kms),
    }
    for stubber in stubbers.values():
        stubber.activate()
    yield stubbers
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()
        stubber.deactivate()


CONFIG = {
    "EndpointConfigName": "fraud-scoring-config-1",
    "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/fraud-1",
    "ProductionVariants": [
        {
            "VariantName": "AllTraffic",
            "ModelName": "fraud-model",
            "InstanceType": "ml.c5.2xlarge",
            "InitialInstanceCount": 6,
        }
    ],
    "ExecutionRoleArn": ROLE,
    "KmsKeyId": "alias/fraud-volumes",
    "CreationTime": NOW,
}


def _state(settings: dict[str, Any], **recommendation: Any) -> dict[str, Any]:
    return {
        "settings": {
            "endpoint_name": "fraud-scoring",
            "variant_name": "AllTraffic",
            "lock_seconds": 3600,
            **settings,
        },
        "recommendation": {
            "instance_type": "ml.m5.xlarge",
            "instance_count": 8,
            **recommendation,
        },
        "lock": {"holder": EXECUTION},
    }


def _described(stubs: dict[str, Stubber], config: dict[str, Any]) -> None:
    stubs["sagemaker"].add_response(
        "describe_endpoint",
        {
            "EndpointName": "fraud-scoring",
            "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/fraud-scoring",
            "EndpointConfigName": "fraud-scoring-config-1",
            "EndpointStatus": "InService",
            "CreationTime": NOW,
            "LastModifiedTime": NOW,
        },
        {"EndpointName": "fraud-scoring"},
    )
    stubs["sagemaker"].add_response(
        "describe_endpoint_config", config, {"EndpointConfigName": "fraud-scoring-config-1"}
    )


def test_snapshot_refuses_a_role_and_key_not_allowed_before_anything(
    stubs: dict[str, Stubber],
) -> None:
    """No setting: the run stops at Snapshot (no tags, no autoscaling read, nothing written)."""
    _described(stubs, CONFIG)
    with pytest.raises(UnsupportedEndpointError) as refused:
        apply_steps.snapshot(_state({}), EXECUTION)
    message = str(refused.value)
    assert "execution_role=iam.Role.from_role_arn" in message and ROLE in message
    assert "kms_keys=" in message and "alias/fraud-volumes" in message
    assert message.endswith("nothing was changed")


def test_snapshot_resolves_a_key_alias_and_goes_on_when_allowed(
    stubs: dict[str, Stubber],
) -> None:
    _described(stubs, CONFIG)
    stubs["kms"].add_response(
        "describe_key",
        {"KeyMetadata": {"KeyId": KEY.rsplit("/", 1)[1], "Arn": KEY}},
        {"KeyId": "alias/fraud-volumes"},
    )
    stubs["sagemaker"].add_response(
        "list_tags", {"Tags": []}, {"ResourceArn": CONFIG["EndpointConfigArn"]}
    )
    target = {"ServiceNamespace": "sagemaker", "ScalableDimension": apply.SCALABLE_DIMENSION}
    resource = apply.resource_id("fraud-scoring", "AllTraffic")
    stubs["autoscaling"].add_response(
        "describe_scalable_targets", {"ScalableTargets": []}, {**target, "ResourceIds": [resource]}
    )
    stubs["autoscaling"].add_response(
        "describe_scaling_policies", {"ScalingPolicies": []}, {**target, "ResourceId": resource}
    )
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
                ":snapshot": {
                    "S": '{"autoscaling": null, "deregister_first": false, '
                    '"endpoint_config_name": "fraud-scoring-config-1", "instance_count": 6, '
                    '"instance_type": "ml.c5.2xlarge", '
                    '"new_config_name": "fraud-scoring-rs-ab706b52ca7b"}'
                },
            },
        },
    )
    snapshot = apply_steps.snapshot(
        _state({"execution_role_arn": ROLE, "kms_key_arns": [KEY]}), EXECUTION
    )
    assert snapshot["already_applied"] is False and snapshot["autoscaling"] is None


def test_snapshot_refuses_a_capacity_reservation_on_another_type(
    stubs: dict[str, Stubber],
) -> None:
    config = copy.deepcopy(CONFIG)
    del config["ExecutionRoleArn"], config["KmsKeyId"]
    config["ProductionVariants"][0]["CapacityReservationConfig"] = FIELD_VALUES[
        "CapacityReservationConfig"
    ]
    _described(stubs, config)
    with pytest.raises(UnsupportedEndpointError, match="CapacityReservationConfig cannot move"):
        apply_steps.snapshot(_state({}), EXECUTION)


# -- The settings, in the template ---------------------------------------------------------------


def test_the_role_and_keys_are_granted_scoped_and_carried_in_the_settings() -> None:
    scope = stack()
    endpoint = rightsizing(
        scope,
        execution_role=iam.Role.from_role_arn(scope, "EndpointRole", ROLE),
        kms_keys=[kms.Key.from_key_arn(scope, "VolumeKey", KEY)],
    )
    template = Template.from_stack(scope)
    statements = statements_of(template, "RightsizingEngineApplyStepRole")
    assert {
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": ROLE,
        "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    } in statements
    assert {
        "Effect": "Allow",
        "Action": "kms:CreateGrant",
        "Resource": KEY,
        "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
    } in statements
    assert {"Effect": "Allow", "Action": "kms:DescribeKey", "Resource": KEY} in statements
    settings = endpoint_input(template)["apply_settings"]
    assert (settings["execution_role_arn"], settings["kms_key_arns"]) == (ROLE, [KEY])
    assert endpoint.execution_role is not None and len(endpoint.kms_keys) == 1


def test_without_the_settings_nothing_is_passed_or_used() -> None:
    template = Template.from_stack(cdk.Stack.of(rightsizing()))
    actions = {
        action
        for statement in statements_of(template, "RightsizingEngineApplyStepRole")
        for action in as_list(statement["Action"])
    }
    assert not actions & {"iam:PassRole", "kms:CreateGrant", "kms:DescribeKey"}
    assert "execution_role_arn" not in endpoint_input(template)["apply_settings"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"execution_role": ROLE}, "execution_role must be an iam.IRole"),
        ({"kms_keys": KEY}, "kms_keys must be a list of kms.IKey"),
        ({"apply_mode": ApplyMode.RECOMMEND_ONLY, "kms_keys": ["k"]}, "nothing is applied"),
    ],
)
def test_the_settings_are_validated(overrides: dict[str, Any], message: str) -> None:
    if overrides.get("kms_keys") == ["k"]:
        scope = stack()
        overrides["kms_keys"] = [kms.Key.from_key_arn(scope, "K", KEY)]
        with pytest.raises(ValueError, match=message):
            rightsizing(scope, **overrides)
        return
    with pytest.raises(ValueError, match=message):
        rightsizing(**overrides)
