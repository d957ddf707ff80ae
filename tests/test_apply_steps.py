"""The Apply workflow's steps, request by request and field by field (Stubber, botocore-validated).

Issue 19: the lock's condition and expiry, errors that must fail a step rather than be taken for
something else, suspended scaling surviving snapshot, apply and restore, which variant a snapshot
reads, when the scalable target is deregistered, and every field of the ledger record. Every
request is compared whole with ``expected_params`` (no ``ANY`` where the value is the point):
the clock is frozen so that times are exact too.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from rightsizing_runtime import apply, apply_steps
from rightsizing_runtime.errors import EndpointNotFoundError, UnsupportedEndpointError

from tests.test_apply_core import (
    CONFIG,
    CONFIG_ARN,
    DIMENSION,
    ENDPOINT_ARN,
    EXECUTION,
    RECOMMENDATION,
    RESOURCE_ID,
    SETTINGS,
    SNAPSHOT_AUTOSCALING,
    STEP,
    TRACKING,
    state,
)

#: 2026-11-01T00:00:00.750Z: the lock's times are whole seconds, so the fraction must go.
NOW = 1_793_491_200.75
NOW_SECONDS = 1_793_491_200
LOCK_KEY = {"pk": {"S": "endpoint#fraud-scoring"}, "sk": {"S": "lock"}}
SUSPENDED = {
    "DynamicScalingInSuspended": True,
    "DynamicScalingOutSuspended": False,
    "ScheduledScalingSuspended": True,
}
NEW_CONFIG = apply.new_config_name("fraud-scoring", EXECUTION)


@pytest.fixture
def stubs(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Stubber]]:
    monkeypatch.setenv("LEDGER_TABLE_NAME", "ledger")
    monkeypatch.setattr(apply_steps, "time", SimpleNamespace(time=lambda: NOW))
    monkeypatch.setattr(apply_steps, "datetime", _FrozenDatetime)
    stubbers = {
        "sagemaker": Stubber(apply_steps.sagemaker),
        "autoscaling": Stubber(apply_steps.autoscaling),
        "dynamodb": Stubber(apply_steps.dynamodb),
    }
    for stubber in stubbers.values():
        stubber.activate()
    yield stubbers
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()
        stubber.deactivate()


class _FrozenDatetime(datetime):
    """The clock at NOW, on a machine whose local time is two hours ahead of UTC."""

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        if tz is None:
            return datetime.fromtimestamp(NOW + 7200, UTC).replace(tzinfo=None)
        return datetime.fromtimestamp(NOW, tz)


def lock_write(holder: str = EXECUTION, expires: int = NOW_SECONDS + 10800) -> dict[str, Any]:
    return {
        "TableName": "ledger",
        "Item": {**LOCK_KEY, "holder": {"S": holder}, "expires_at": {"N": str(expires)}},
        "ConditionExpression": "attribute_not_exists(pk) OR expires_at < :now OR holder = :me",
        "ExpressionAttributeValues": {":now": {"N": str(NOW_SECONDS)}, ":me": {"S": holder}},
    }


def lock_release(holder: str = EXECUTION) -> dict[str, Any]:
    return {
        "TableName": "ledger",
        "Key": LOCK_KEY,
        "ConditionExpression": "holder = :me",
        "ExpressionAttributeValues": {":me": {"S": holder}},
    }


# -- Lock -----------------------------------------------------------------------------------------


def test_the_lock_expires_lock_seconds_after_it_is_taken(stubs: dict[str, Stubber]) -> None:
    stubs["dynamodb"].add_response("put_item", {}, lock_write(expires=NOW_SECONDS + 10800))
    lock = apply_steps.acquire_lock(state(), EXECUTION)
    assert lock == {"holder": EXECUTION, "expires_at": NOW_SECONDS + 10800}


def test_the_lock_duration_is_the_settings(stubs: dict[str, Stubber]) -> None:
    stubs["dynamodb"].add_response("put_item", {}, lock_write(expires=NOW_SECONDS + 600))
    settings = {**SETTINGS, "lock_seconds": 600}
    assert apply_steps.acquire_lock(state(settings=settings), EXECUTION)["expires_at"] == (
        NOW_SECONDS + 600
    )


def test_a_held_lock_names_its_holder(stubs: dict[str, Stubber]) -> None:
    holder = "arn:aws:states:us-east-1:123456789012:execution:Apply:run-0"
    stubs["dynamodb"].add_client_error(
        "put_item", "ConditionalCheckFailedException", expected_params=lock_write()
    )
    stubs["dynamodb"].add_response(
        "get_item",
        {"Item": {**LOCK_KEY, "holder": {"S": holder}}},
        {"TableName": "ledger", "Key": LOCK_KEY, "ConsistentRead": True},
    )
    with pytest.raises(apply_steps.EndpointLockedError) as raised:
        apply_steps.acquire_lock(state(), EXECUTION)
    assert str(raised.value) == (
        f"fraud-scoring is being changed by {holder}; this recommendation is not applied"
    )


def test_a_lock_released_meanwhile_still_rejects_the_run(stubs: dict[str, Stubber]) -> None:
    # The holder finished between the failed write and the read: the run is still rejected
    # (it lost the race), and says so without a holder's name.
    stubs["dynamodb"].add_client_error(
        "put_item", "ConditionalCheckFailedException", expected_params=lock_write()
    )
    stubs["dynamodb"].add_response(
        "get_item", {}, {"TableName": "ledger", "Key": LOCK_KEY, "ConsistentRead": True}
    )
    with pytest.raises(apply_steps.EndpointLockedError) as raised:
        apply_steps.acquire_lock(state(), EXECUTION)
    assert str(raised.value) == (
        "fraud-scoring is being changed by another run; this recommendation is not applied"
    )


@pytest.mark.parametrize(
    "code",
    ["ProvisionedThroughputExceededException", "InternalServerError", "ResourceNotFoundException"],
)
def test_a_lock_write_failing_otherwise_fails_the_step(
    stubs: dict[str, Stubber], code: str
) -> None:
    # Not "held by another run": the step fails with DynamoDB's error (the state machine retries
    # or records a failure); it must not be taken for a rejection that ends the run Succeeded.
    stubs["dynamodb"].add_client_error("put_item", code, expected_params=lock_write())
    with pytest.raises(ClientError) as raised:
        apply_steps.acquire_lock(state(), EXECUTION)
    assert type(raised.value).__name__ == code
    assert not isinstance(raised.value, apply_steps.EndpointLockedError)
    outcome = apply.outcome({"error": {"Error": code, "Cause": str(raised.value)}})
    assert outcome == ("failed", str(raised.value))


def test_release_deletes_the_lock_only_if_this_run_holds_it(stubs: dict[str, Stubber]) -> None:
    stubs["dynamodb"].add_response("delete_item", {}, lock_release())
    assert apply_steps.release_lock(state(), EXECUTION) == {"released": True}


def test_another_runs_lock_is_left_alone(stubs: dict[str, Stubber]) -> None:
    stubs["dynamodb"].add_client_error(
        "delete_item", "ConditionalCheckFailedException", expected_params=lock_release()
    )
    assert apply_steps.release_lock(state(), EXECUTION) == {"released": False}


@pytest.mark.parametrize(
    "code", ["InternalServerError", "ProvisionedThroughputExceededException", "ThrottlingException"]
)
def test_a_failed_release_fails_the_step_so_it_is_retried(
    stubs: dict[str, Stubber], code: str
) -> None:
    # Swallowing it would leave the lock in place for its whole lifetime (hours): the error
    # reaches the state machine, whose Retry on ReleaseLock must match its name.
    stubs["dynamodb"].add_client_error("delete_item", code, expected_params=lock_release())
    with pytest.raises(ClientError) as raised:
        apply_steps.release_lock(state(), EXECUTION)
    assert type(raised.value).__name__ == code


# -- Snapshot -------------------------------------------------------------------------------------


def describe_endpoint(status: str = "InService", config: str = "fraud-scoring-config-1") -> dict:
    return {
        "EndpointName": "fraud-scoring",
        "EndpointArn": ENDPOINT_ARN,
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": datetime(2026, 10, 1, tzinfo=UTC),
        "LastModifiedTime": datetime(2026, 10, 1, tzinfo=UTC),
    }


def scalable_target(resource_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "ServiceNamespace": "sagemaker",
        "ResourceId": resource_id,
        "ScalableDimension": DIMENSION,
        "MinCapacity": 2,
        "MaxCapacity": 12,
        "RoleARN": "arn:aws:iam::123456789012:role/aas",
        "CreationTime": datetime(2026, 10, 1, tzinfo=UTC),
        **extra,
    }


def scaling_policy(policy: dict[str, Any], resource_id: str) -> dict[str, Any]:
    return {
        **policy,
        "PolicyARN": "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:"
        + policy["PolicyName"],
        "ServiceNamespace": "sagemaker",
        "ResourceId": resource_id,
        "ScalableDimension": DIMENSION,
        "Alarms": [{"AlarmName": "TargetTracking-x", "AlarmARN": "arn:aws:cloudwatch:x"}],
        "CreationTime": datetime(2026, 10, 1, tzinfo=UTC),
    }


def stub_snapshot_reads(
    stubs: dict[str, Stubber],
    *,
    variant: str = "AllTraffic",
    targets: list[dict[str, Any]] | None = None,
    policies: list[dict[str, Any]] | None = None,
) -> None:
    resource = f"endpoint/fraud-scoring/variant/{variant}"
    stubs["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint(), {"EndpointName": "fraud-scoring"}
    )
    stubs["sagemaker"].add_response(
        "describe_endpoint_config", CONFIG, {"EndpointConfigName": "fraud-scoring-config-1"}
    )
    stubs["sagemaker"].add_response(
        "list_tags",
        {"Tags": [{"Key": "team", "Value": "fraud"}]},
        {"ResourceArn": CONFIG_ARN},
    )
    stubs["autoscaling"].add_response(
        "describe_scalable_targets",
        {"ScalableTargets": [scalable_target(resource)] if targets is None else targets},
        {
            "ServiceNamespace": "sagemaker",
            "ResourceIds": [resource],
            "ScalableDimension": DIMENSION,
        },
    )
    stubs["autoscaling"].add_response(
        "describe_scaling_policies",
        {
            "ScalingPolicies": [scaling_policy(p, resource) for p in (TRACKING, STEP)]
            if policies is None
            else policies
        },
        {"ServiceNamespace": "sagemaker", "ResourceId": resource, "ScalableDimension": DIMENSION},
    )


def test_the_snapshot_is_of_the_configured_variant(stubs: dict[str, Stubber]) -> None:
    # The second of two variants: its type, count and scalable target, not the first one's.
    resource = "endpoint/fraud-scoring/variant/Shadowless"
    stub_snapshot_reads(
        stubs, variant="Shadowless", targets=[scalable_target(resource)], policies=[]
    )
    recommendation = {**RECOMMENDATION, "instance_type": "ml.c5.large", "instance_count": 2}
    snapshot = apply_steps.snapshot(
        state(settings={**SETTINGS, "variant_name": "Shadowless"}, recommendation=recommendation),
        EXECUTION,
    )
    assert snapshot == {
        "endpoint_config_name": "fraud-scoring-config-1",
        "config": apply.config_fields(CONFIG),
        "tags": [{"Key": "team", "Value": "fraud"}],
        "instance_type": "ml.c5.large",
        "instance_count": 1,
        "autoscaling": {"MinCapacity": 2, "MaxCapacity": 12, "Policies": []},
        "already_applied": False,
        "deregister_first": False,  # same type, another count: no deregistration
    }


def test_a_config_without_tags_has_an_empty_tag_list(stubs: dict[str, Stubber]) -> None:
    stubs["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint(), {"EndpointName": "fraud-scoring"}
    )
    stubs["sagemaker"].add_response(
        "describe_endpoint_config", CONFIG, {"EndpointConfigName": "fraud-scoring-config-1"}
    )
    stubs["sagemaker"].add_response("list_tags", {}, {"ResourceArn": CONFIG_ARN})
    stubs["autoscaling"].add_response(
        "describe_scalable_targets",
        {"ScalableTargets": []},
        {
            "ServiceNamespace": "sagemaker",
            "ResourceIds": [RESOURCE_ID],
            "ScalableDimension": DIMENSION,
        },
    )
    stubs["autoscaling"].add_response(
        "describe_scaling_policies",
        {"ScalingPolicies": []},
        {
            "ServiceNamespace": "sagemaker",
            "ResourceId": RESOURCE_ID,
            "ScalableDimension": DIMENSION,
        },
    )
    snapshot = apply_steps.snapshot(state(), EXECUTION)
    assert (snapshot["tags"], snapshot["autoscaling"]) == ([], None)


def test_suspended_scaling_is_part_of_the_snapshot(stubs: dict[str, Stubber]) -> None:
    stub_snapshot_reads(stubs, targets=[scalable_target(RESOURCE_ID, SuspendedState=SUSPENDED)])
    snapshot = apply_steps.snapshot(state(), EXECUTION)
    assert snapshot["autoscaling"] == {**SNAPSHOT_AUTOSCALING, "SuspendedState": SUSPENDED}
    json.dumps(snapshot)


@pytest.mark.parametrize(
    ("instance_type", "instance_count", "autoscaled", "already", "deregister"),
    [
        ("ml.c5.2xlarge", 6, True, True, False),  # what it runs: nothing to do
        ("ml.c5.2xlarge", 8, True, False, False),  # only the count: UpdateEndpoint allows it
        ("ml.m5.xlarge", 6, True, False, True),  # only the type: the target must go first
        ("ml.m5.xlarge", 8, True, False, True),
        ("ml.m5.xlarge", 8, False, False, False),  # no scalable target: nothing to deregister
    ],
)
def test_already_applied_and_deregister_first(
    stubs: dict[str, Stubber],
    instance_type: str,
    instance_count: int,
    autoscaled: bool,
    already: bool,
    deregister: bool,
) -> None:
    stub_snapshot_reads(
        stubs,
        targets=None if autoscaled else [],
        policies=None if autoscaled else [],
    )
    recommendation = {
        **RECOMMENDATION,
        "instance_type": instance_type,
        "instance_count": instance_count,
    }
    snapshot = apply_steps.snapshot(state(recommendation=recommendation), EXECUTION)
    assert (snapshot["already_applied"], snapshot["deregister_first"]) == (already, deregister)
    assert (snapshot["autoscaling"] is not None) is autoscaled


@pytest.mark.parametrize("status", ["Updating", "Creating", "RollingBack", "Failed"])
def test_an_endpoint_not_in_service_is_not_touched(stubs: dict[str, Stubber], status: str) -> None:
    stubs["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint(status), {"EndpointName": "fraud-scoring"}
    )
    with pytest.raises(UnsupportedEndpointError) as raised:
        apply_steps.snapshot(state(), EXECUTION)
    assert str(raised.value) == (
        f"endpoint 'fraud-scoring' is {status}, not InService; nothing was changed"
    )


def test_a_missing_endpoint_is_named(stubs: dict[str, Stubber]) -> None:
    stubs["sagemaker"].add_client_error(
        "describe_endpoint",
        "ValidationException",
        'Could not find endpoint "fraud-scoring".',
        expected_params={"EndpointName": "fraud-scoring"},
    )
    with pytest.raises(EndpointNotFoundError) as raised:
        apply_steps.snapshot(state(), EXECUTION)
    assert str(raised.value) == "endpoint 'fraud-scoring' does not exist"


@pytest.mark.parametrize(
    ("code", "message"),
    [("ThrottlingException", "Rate exceeded"), ("ValidationException", "1 validation error")],
)
def test_other_describe_errors_fail_the_snapshot_as_they_are(
    stubs: dict[str, Stubber], code: str, message: str
) -> None:
    stubs["sagemaker"].add_client_error(
        "describe_endpoint", code, message, expected_params={"EndpointName": "fraud-scoring"}
    )
    with pytest.raises(ClientError) as raised:
        apply_steps.snapshot(state(), EXECUTION)
    assert not isinstance(raised.value, EndpointNotFoundError)
    assert raised.value.response["Error"] == {"Code": code, "Message": message}


def test_a_config_without_the_variant_fails_the_snapshot(stubs: dict[str, Stubber]) -> None:
    stubs["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint(), {"EndpointName": "fraud-scoring"}
    )
    stubs["sagemaker"].add_response(
        "describe_endpoint_config", CONFIG, {"EndpointConfigName": "fraud-scoring-config-1"}
    )
    with pytest.raises(ValueError, match=r"^the endpoint config has no variant 'Blue'$"):
        apply_steps.snapshot(state(settings={**SETTINGS, "variant_name": "Blue"}), EXECUTION)


# -- CreateConfig ---------------------------------------------------------------------------------


def create_request(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "current": apply.config_fields(CONFIG),
        "tags": [{"Key": "team", "Value": "fraud"}],
        "name": NEW_CONFIG,
        "variant_name": "AllTraffic",
        "instance_type": "ml.m5.xlarge",
        "instance_count": 8,
        "execution_arn": EXECUTION,
    }
    arguments.update(overrides)
    return apply.new_config_request(**arguments)


def test_the_new_config_is_named_after_the_endpoint_and_the_run() -> None:
    assert NEW_CONFIG == "fraud-scoring-rs-ab706b52ca7b"
    assert apply.new_config_name("a" * 63, EXECUTION) == "a" * 40 + "-rs-ab706b52ca7b"
    # A dash where the name is cut is dropped: no "--rs-".
    assert apply.new_config_name("b" * 39 + "-tail", EXECUTION) == "b" * 39 + "-rs-ab706b52ca7b"


def test_an_existing_config_of_this_run_is_reused(
    stubs: dict[str, Stubber], caplog: pytest.LogCaptureFixture
) -> None:
    # A retried CreateConfig finds the config its first attempt made (SageMaker's message).
    stubs["sagemaker"].add_client_error(
        "create_endpoint_config",
        "ValidationException",
        "Cannot create already existing endpoint configuration "
        f'"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{NEW_CONFIG}".',
        expected_params=create_request(),
    )
    assert apply_steps.create_config(state(), EXECUTION) == {"name": NEW_CONFIG}
    assert [r.getMessage() for r in caplog.records] == [
        f"endpoint config {NEW_CONFIG} already exists (retried step)"
    ]


def test_the_recommendations_count_is_sent_as_an_integer(stubs: dict[str, Stubber]) -> None:
    # The event carries JSON numbers; 8.0 would not pass botocore's integer validation.
    stubs["sagemaker"].add_response(
        "create_endpoint_config", {"EndpointConfigArn": CONFIG_ARN + "-2"}, create_request()
    )
    recommendation = {**RECOMMENDATION, "instance_count": 8.0}
    assert apply_steps.create_config(state(recommendation=recommendation), EXECUTION) == {
        "name": NEW_CONFIG
    }


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ValidationException", 'Could not find model "fraud-model".'),
        ("ResourceLimitExceeded", "endpoint config limit reached"),
    ],
)
def test_other_create_errors_fail_the_step(
    stubs: dict[str, Stubber], code: str, message: str
) -> None:
    stubs["sagemaker"].add_client_error(
        "create_endpoint_config", code, message, expected_params=create_request()
    )
    with pytest.raises(ClientError) as raised:
        apply_steps.create_config(state(), EXECUTION)
    assert raised.value.response["Error"] == {"Code": code, "Message": message}


# -- Deregister, update, check ---------------------------------------------------------------------

DEREGISTER = {
    "ServiceNamespace": "sagemaker",
    "ResourceId": RESOURCE_ID,
    "ScalableDimension": DIMENSION,
}


def test_deregister_the_variants_scalable_target(stubs: dict[str, Stubber]) -> None:
    stubs["autoscaling"].add_response("deregister_scalable_target", {}, DEREGISTER)
    assert apply_steps.deregister(state(), EXECUTION) == {"deregistered": True}


def test_deregister_of_a_target_already_gone_is_done(stubs: dict[str, Stubber]) -> None:
    stubs["autoscaling"].add_client_error(
        "deregister_scalable_target", "ObjectNotFoundException", expected_params=DEREGISTER
    )
    assert apply_steps.deregister(state(), EXECUTION) == {"deregistered": True}


@pytest.mark.parametrize("code", ["ConcurrentUpdateException", "InternalServiceException"])
def test_deregister_errors_fail_the_step(stubs: dict[str, Stubber], code: str) -> None:
    stubs["autoscaling"].add_client_error(
        "deregister_scalable_target", code, expected_params=DEREGISTER
    )
    with pytest.raises(ClientError) as raised:
        apply_steps.deregister(state(), EXECUTION)
    assert type(raised.value).__name__ == code


def test_update_without_a_deployment_config(stubs: dict[str, Stubber]) -> None:
    stubs["sagemaker"].add_response(
        "update_endpoint",
        {"EndpointArn": ENDPOINT_ARN},
        {
            "EndpointName": "fraud-scoring",
            "EndpointConfigName": NEW_CONFIG,
            "RetainAllVariantProperties": True,
            "ExcludeRetainedVariantProperties": [{"VariantPropertyType": "DesiredInstanceCount"}],
        },
    )
    result = apply_steps.update(state(new_config={"name": NEW_CONFIG}), EXECUTION)
    assert result == {"status": "Updating"}


def test_check_update_reports_status_config_and_reason(stubs: dict[str, Stubber]) -> None:
    stubs["sagemaker"].add_response(
        "describe_endpoint",
        {**describe_endpoint("InService"), "FailureReason": "alarm fraud-5xx went off"},
        {"EndpointName": "fraud-scoring"},
    )
    stubs["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint("Updating"), {"EndpointName": "fraud-scoring"}
    )
    assert apply_steps.check_update(state(), EXECUTION) == {
        "status": "InService",
        "endpoint_config_name": "fraud-scoring-config-1",
        "failure_reason": "alarm fraud-5xx went off",
    }
    assert apply_steps.check_update(state(), EXECUTION) == {
        "status": "Updating",
        "endpoint_config_name": "fraud-scoring-config-1",
        "failure_reason": None,
    }


# -- EnsureAutoscaling ----------------------------------------------------------------------------

POLICY_TARGET = {
    "ServiceNamespace": "sagemaker",
    "ResourceId": RESOURCE_ID,
    "ScalableDimension": DIMENSION,
}


def expect_registration(stubber: Stubber, register: dict[str, Any], policies: list[dict]) -> None:
    """The exact requests, written out here rather than built by the code under test."""
    stubber.add_response("register_scalable_target", {}, {**POLICY_TARGET, **register})
    for policy in policies:
        stubber.add_response(
            "put_scaling_policy", {"PolicyARN": "arn:x"}, {**policy, **POLICY_TARGET}
        )


def test_suspended_scaling_survives_the_apply(stubs: dict[str, Stubber]) -> None:
    stubs["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint(config=NEW_CONFIG), {"EndpointName": "fraud-scoring"}
    )
    tracking = copy.deepcopy(TRACKING)
    tracking["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] = 450.0
    expect_registration(
        stubs["autoscaling"],
        {"MinCapacity": 1, "MaxCapacity": 10, "SuspendedState": SUSPENDED},
        [tracking, STEP],
    )
    snapshot = {**SNAPSHOT_AUTOSCALING, "SuspendedState": SUSPENDED}
    current = state(new_config={"name": NEW_CONFIG})
    current["snapshot"]["autoscaling"] = snapshot
    result = apply_steps.ensure_autoscaling(current, EXECUTION)
    assert result == {
        "serves": "new",
        "endpoint_config_name": NEW_CONFIG,
        "applied": {
            "MinCapacity": 1,
            "MaxCapacity": 10,
            "Policies": [tracking, STEP],
            "SuspendedState": SUSPENDED,
        },
    }


def test_suspended_scaling_survives_the_restore(stubs: dict[str, Stubber]) -> None:
    stubs["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint(), {"EndpointName": "fraud-scoring"}
    )
    expect_registration(
        stubs["autoscaling"],
        {"MinCapacity": 2, "MaxCapacity": 12, "SuspendedState": SUSPENDED},
        [TRACKING, STEP],
    )
    snapshot = {**SNAPSHOT_AUTOSCALING, "SuspendedState": SUSPENDED}
    current = state(new_config={"name": NEW_CONFIG})
    current["snapshot"]["autoscaling"] = snapshot
    assert apply_steps.ensure_autoscaling(current, EXECUTION) == {
        "serves": "previous",
        "endpoint_config_name": "fraud-scoring-config-1",
        "applied": snapshot,
    }


def test_an_endpoint_without_autoscaling_gets_none_back(stubs: dict[str, Stubber]) -> None:
    # Rolled back, or failed before the update: nothing to register (no stubbed call allowed).
    stubs["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint(), {"EndpointName": "fraud-scoring"}
    )
    current = state(new_config={"name": NEW_CONFIG})
    current["snapshot"]["autoscaling"] = None
    assert apply_steps.ensure_autoscaling(current, EXECUTION) == {
        "serves": "previous",
        "endpoint_config_name": "fraud-scoring-config-1",
        "applied": None,
    }


def test_an_endpoint_without_autoscaling_gets_the_recommended_one(
    stubs: dict[str, Stubber],
) -> None:
    stubs["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint(config=NEW_CONFIG), {"EndpointName": "fraud-scoring"}
    )
    policy = {
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
    }
    expect_registration(stubs["autoscaling"], {"MinCapacity": 1, "MaxCapacity": 10}, [policy])
    current = state(new_config={"name": NEW_CONFIG})
    current["snapshot"]["autoscaling"] = None
    result = apply_steps.ensure_autoscaling(current, EXECUTION)
    assert result["serves"] == "new"
    assert result["applied"] == {"MinCapacity": 1, "MaxCapacity": 10, "Policies": [policy]}


def test_a_run_that_failed_before_creating_a_config_restores_the_snapshot(
    stubs: dict[str, Stubber],
) -> None:
    stubs["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint(), {"EndpointName": "fraud-scoring"}
    )
    expect_registration(
        stubs["autoscaling"], {"MinCapacity": 2, "MaxCapacity": 12}, [TRACKING, STEP]
    )
    result = apply_steps.ensure_autoscaling(state(), EXECUTION)  # no new_config in the state
    assert result["serves"] == "previous"


@pytest.mark.parametrize("status", sorted(apply.BUSY_STATUSES))
def test_autoscaling_waits_while_the_endpoint_is_busy(
    stubs: dict[str, Stubber], status: str
) -> None:
    stubs["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint(status), {"EndpointName": "fraud-scoring"}
    )
    with pytest.raises(apply_steps.EndpointBusyError) as raised:
        apply_steps.ensure_autoscaling(state(new_config={"name": NEW_CONFIG}), EXECUTION)
    assert str(raised.value) == f"fraud-scoring is {status}"


def test_busy_statuses_are_those_of_an_update_under_way() -> None:
    assert frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"}) == (
        apply.BUSY_STATUSES
    )


def test_a_failed_endpoint_gets_its_autoscaling_back(stubs: dict[str, Stubber]) -> None:
    # Failed is final: no waiting, the snapshot is restored on the config it still names.
    stubs["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint("Failed"), {"EndpointName": "fraud-scoring"}
    )
    expect_registration(
        stubs["autoscaling"], {"MinCapacity": 2, "MaxCapacity": 12}, [TRACKING, STEP]
    )
    result = apply_steps.ensure_autoscaling(state(new_config={"name": NEW_CONFIG}), EXECUTION)
    assert result["serves"] == "previous"


# -- Record ---------------------------------------------------------------------------------------

RECORDED_AT = "2026-11-01T00:00:00.750000Z"


def expect_record(stubber: Stubber, outcome: str) -> list[dict[str, Any]]:
    """The put_item of the record: every attribute exact, and the record (JSON) kept to be
    compared whole, parsed, by the test."""
    records: list[dict[str, Any]] = []

    def keep(params: dict[str, Any], **_: Any) -> None:
        text = params["Item"]["record"]["S"]
        # The record is written with sorted keys: the same run gives the same text.
        assert text == json.dumps(json.loads(text), sort_keys=True)
        records.append(json.loads(text))

    stubber.client.meta.events.register_first(
        "provide-client-params.dynamodb.PutItem", keep, unique_id="test-record"
    )
    stubber.add_response(
        "put_item",
        {},
        {
            "TableName": "ledger",
            "Item": {
                "pk": {"S": "endpoint#fraud-scoring"},
                "sk": {"S": f"run#{RECORDED_AT}#run-1"},
                "recorded_at": {"S": RECORDED_AT},
                "outcome": {"S": outcome},
                "record": {"S": ANY},  # compared whole below, parsed
            },
        },
    )
    return records


@pytest.fixture(autouse=True)
def _forget_record_hooks() -> Iterator[None]:
    yield
    apply_steps.dynamodb.meta.events.unregister(
        "provide-client-params.dynamodb.PutItem", unique_id="test-record"
    )


def test_the_record_of_an_applied_run_holds_every_field(
    stubs: dict[str, Stubber], caplog: pytest.LogCaptureFixture
) -> None:
    applied = apply.recommended_autoscaling(SNAPSHOT_AUTOSCALING, RECOMMENDATION)
    records = expect_record(stubs["dynamodb"], "applied")
    result = apply_steps.record(
        state(
            recommendation={**RECOMMENDATION, "current": {"estimated_cost_per_hour": 2.448}},
            new_config={"name": NEW_CONFIG},
            autoscaling={"serves": "new", "endpoint_config_name": NEW_CONFIG, "applied": applied},
        ),
        EXECUTION,
    )
    reason = f"{NEW_CONFIG} is in service with the recommended instance type, count and autoscaling"
    assert records == [
        {
            "outcome": "applied",
            "reason": reason,
            "execution_arn": EXECUTION,
            "job_name": "rightsizing-0123456789abcdef01234567",
            "before": {
                "endpoint_config_name": "fraud-scoring-config-1",
                "instance_type": "ml.c5.2xlarge",
                "instance_count": 6,
                "autoscaling": SNAPSHOT_AUTOSCALING,
                "cost_per_hour": 2.448,
            },
            "after": {
                "endpoint_config_name": NEW_CONFIG,
                "instance_type": "ml.m5.xlarge",
                "instance_count": 8,
                "autoscaling": applied,
                "cost_per_hour": 1.84,
            },
            "estimated_monthly_savings": 443.84,
        }
    ]
    assert result == {"result": "applied", "reason": reason, "estimated_monthly_savings": 443.84}
    assert [r.getMessage() for r in caplog.records] == [f"fraud-scoring: applied ({reason})"]


def test_the_record_of_a_rolled_back_run_has_no_after_type_or_cost(
    stubs: dict[str, Stubber],
) -> None:
    records = expect_record(stubs["dynamodb"], "rolled-back")
    result = apply_steps.record(
        state(
            new_config={"name": NEW_CONFIG},
            update={"status": "InService", "failure_reason": "alarm fraud-5xx went off"},
            autoscaling={
                "serves": "previous",
                "endpoint_config_name": "fraud-scoring-config-1",
                "applied": SNAPSHOT_AUTOSCALING,
            },
        ),
        EXECUTION,
    )
    [record] = records
    assert record["after"] == {
        "endpoint_config_name": "fraud-scoring-config-1",
        "instance_type": None,
        "instance_count": None,
        "autoscaling": SNAPSHOT_AUTOSCALING,
        "cost_per_hour": None,
    }
    assert record["before"]["cost_per_hour"] == 2.448
    assert record["estimated_monthly_savings"] is None
    assert result == {
        "result": "rolled-back",
        "reason": "alarm fraud-5xx went off",
        "estimated_monthly_savings": None,
    }


def test_the_record_of_a_rejected_run_has_no_snapshot(stubs: dict[str, Stubber]) -> None:
    cause = json.dumps({"errorType": "EndpointLockedError", "errorMessage": "held by run-0"})
    records = expect_record(stubs["dynamodb"], "rejected")
    current = state(error={"Error": "EndpointLockedError", "Cause": cause})
    del current["snapshot"]
    result = apply_steps.record(current, EXECUTION)
    [record] = records
    assert record["before"] == {
        "endpoint_config_name": None,
        "instance_type": None,
        "instance_count": None,
        "autoscaling": None,
        "cost_per_hour": 2.448,
    }
    assert record["after"]["instance_type"] is None
    assert (record["outcome"], record["reason"]) == ("rejected", "held by run-0")
    assert result["result"] == "rejected"


def test_the_handler_runs_the_named_step_for_the_execution(stubs: dict[str, Stubber]) -> None:
    stubs["dynamodb"].add_response("delete_item", {}, lock_release(EXECUTION))
    result = apply_steps.handler(
        {"step": "release_lock", "state": state(), "execution_arn": EXECUTION}
    )
    assert result == {"released": True}
    assert set(apply_steps.STEPS) == {
        "acquire_lock",
        "snapshot",
        "create_config",
        "deregister",
        "update",
        "check_update",
        "ensure_autoscaling",
        "record",
        "release_lock",
    }
    assert all(step is getattr(apply_steps, name) for name, step in apply_steps.STEPS.items())
