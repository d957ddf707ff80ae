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
from rightsizing_runtime.errors import (
    EndpointNotFoundError,
    TransientAwsError,
    UnsupportedEndpointError,
)

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
    monkeypatch.setattr(apply_steps, "datetime", FrozenDatetime)
    stubbers = {
        "sagemaker": Stubber(apply_steps.sagemaker),
        "autoscaling": Stubber(apply_steps.autoscaling),
        "dynamodb": Stubber(apply_steps.dynamodb),
        "kms": Stubber(apply_steps.kms),
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


class FrozenDatetime(datetime):
    """The clock at NOW, on a machine whose local time is two hours ahead of UTC."""

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        if tz is None:
            return datetime.fromtimestamp(NOW + 7200, UTC).replace(tzinfo=None)
        return datetime.fromtimestamp(NOW, tz)


DEAD = "arn:aws:states:us-east-1:123456789012:execution:Apply:run-0"
#: What a run stores with its lock at Snapshot (apply_steps._store_with_lock), written out.
STORED = {
    "endpoint_config_name": "fraud-scoring-config-1",
    "instance_type": "ml.c5.2xlarge",
    "instance_count": 6,
    "autoscaling": SNAPSHOT_AUTOSCALING,
    "deregister_first": True,
    "new_config_name": "fraud-scoring-rs-c2e7489846ac",
}


def lock_write(holder: str = EXECUTION, expires: int = NOW_SECONDS + 10800) -> dict[str, Any]:
    """AcquireLock's UpdateItem: free, expired (strictly before now) or already this run's."""
    return {
        "TableName": "ledger",
        "Key": LOCK_KEY,
        "UpdateExpression": "SET holder = :me, expires_at = :expires",
        "ConditionExpression": "attribute_not_exists(pk) OR expires_at < :now OR holder = :me",
        "ExpressionAttributeValues": {
            ":now": {"N": str(NOW_SECONDS)},
            ":me": {"S": holder},
            ":expires": {"N": str(expires)},
        },
        "ReturnValues": "ALL_OLD",
    }


def lock_release(holder: str = EXECUTION) -> dict[str, Any]:
    """ReleaseLock's DeleteItem: only the holder's."""
    return {
        "TableName": "ledger",
        "Key": LOCK_KEY,
        "ConditionExpression": "holder = :me",
        "ExpressionAttributeValues": {":me": {"S": holder}},
    }


def lock_expiry(holder: str = EXECUTION) -> dict[str, Any]:
    """ReleaseLock's UpdateItem that keeps the snapshot: the lock expires now (0), still the
    holder's, so the next run may take it and finds the snapshot."""
    return {
        "TableName": "ledger",
        "Key": LOCK_KEY,
        "UpdateExpression": "SET expires_at = :expired",
        "ConditionExpression": "holder = :me",
        "ExpressionAttributeValues": {":me": {"S": holder}, ":expired": {"N": "0"}},
    }


def stored_item(holder: str, stored: dict[str, Any] | None, expires: int = 0) -> dict[str, Any]:
    """The lock item as DynamoDB returns it (ALL_OLD), with a stored snapshot or none."""
    item: dict[str, Any] = {
        **LOCK_KEY,
        "holder": {"S": holder},
        "expires_at": {"N": str(expires)},
    }
    if stored is not None:
        item["run_snapshot"] = {"S": json.dumps(stored, sort_keys=True)}
    return item


# -- Lock -----------------------------------------------------------------------------------------


def test_the_stored_new_config_name_is_the_dead_runs() -> None:
    assert apply.new_config_name("fraud-scoring", DEAD) == STORED["new_config_name"]


def test_the_lock_expires_lock_seconds_after_it_is_taken(stubs: dict[str, Stubber]) -> None:
    stubs["dynamodb"].add_response("update_item", {}, lock_write(expires=NOW_SECONDS + 10800))
    lock = apply_steps.acquire_lock(state(), EXECUTION)
    assert lock == {"holder": EXECUTION, "expires_at": NOW_SECONDS + 10800}


def test_the_lock_duration_is_the_settings(stubs: dict[str, Stubber]) -> None:
    stubs["dynamodb"].add_response("update_item", {}, lock_write(expires=NOW_SECONDS + 600))
    settings = {**SETTINGS, "lock_seconds": 600}
    assert apply_steps.acquire_lock(state(settings=settings), EXECUTION) == {
        "holder": EXECUTION,
        "expires_at": NOW_SECONDS + 600,
    }


def test_a_dead_runs_expired_lock_passes_on_its_autoscaling(stubs: dict[str, Stubber]) -> None:
    # The run died after deregistering (or expired its lock to keep the snapshot): this run
    # takes the lock and must restore what the dead run stored.
    stubs["dynamodb"].add_response(
        "update_item", {"Attributes": stored_item(DEAD, STORED)}, lock_write()
    )
    assert apply_steps.acquire_lock(state(), EXECUTION) == {
        "holder": EXECUTION,
        "expires_at": NOW_SECONDS + 10800,
        "inherited": {"from": DEAD, "autoscaling": SNAPSHOT_AUTOSCALING},
    }


@pytest.mark.parametrize(
    ("holder", "stored"),
    [
        (EXECUTION, STORED),  # a retried AcquireLock finds its own lock: nothing to inherit
        (DEAD, None),  # the dead run stopped before its snapshot
        (DEAD, {**STORED, "autoscaling": None}),  # it had no autoscaling to lose
    ],
)
def test_nothing_is_inherited_without_autoscaling_from_another_run(
    stubs: dict[str, Stubber], holder: str, stored: dict[str, Any] | None
) -> None:
    stubs["dynamodb"].add_response(
        "update_item", {"Attributes": stored_item(holder, stored)}, lock_write()
    )
    assert apply_steps.acquire_lock(state(), EXECUTION) == {
        "holder": EXECUTION,
        "expires_at": NOW_SECONDS + 10800,
    }


def test_a_held_lock_names_its_holder(stubs: dict[str, Stubber]) -> None:
    stubs["dynamodb"].add_client_error(
        "update_item", "ConditionalCheckFailedException", expected_params=lock_write()
    )
    stubs["dynamodb"].add_response(
        "get_item",
        {"Item": {**LOCK_KEY, "holder": {"S": DEAD}}},
        {"TableName": "ledger", "Key": LOCK_KEY, "ConsistentRead": True},
    )
    with pytest.raises(apply_steps.EndpointLockedError) as raised:
        apply_steps.acquire_lock(state(), EXECUTION)
    assert str(raised.value) == (
        f"fraud-scoring is being changed by {DEAD}; this recommendation is not applied"
    )


def test_a_lock_released_meanwhile_still_rejects_the_run(stubs: dict[str, Stubber]) -> None:
    # The holder finished between the failed write and the read: the run is still rejected
    # (it lost the race), and says so without a holder's name.
    stubs["dynamodb"].add_client_error(
        "update_item", "ConditionalCheckFailedException", expected_params=lock_write()
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
    stubs["dynamodb"].add_client_error("update_item", code, expected_params=lock_write())
    with pytest.raises(ClientError) as raised:
        apply_steps.acquire_lock(state(), EXECUTION)
    assert type(raised.value).__name__ == code
    assert not isinstance(raised.value, apply_steps.EndpointLockedError)
    outcome = apply.outcome({"error": {"Error": code, "Cause": str(raised.value)}})
    assert outcome == ("failed", str(raised.value))


# -- ReleaseLock ----------------------------------------------------------------------------------

AFTER_UPDATE = {"new_config": {"name": NEW_CONFIG}}
ENSURED = {"autoscaling": {"serves": "new", "endpoint_config_name": NEW_CONFIG, "applied": {}}}
INHERITED = {"lock": {"inherited": {"from": DEAD, "autoscaling": SNAPSHOT_AUTOSCALING}}}


def test_release_deletes_the_lock_only_if_this_run_holds_it(stubs: dict[str, Stubber]) -> None:
    stubs["dynamodb"].add_response("delete_item", {}, lock_release())
    assert apply_steps.release_lock(state(), EXECUTION) == {
        "released": True,
        "snapshot_kept": False,
    }


@pytest.mark.parametrize(
    ("parts", "keep"),
    [
        # Deregistered (type change), and EnsureAutoscaling never finished: the next run must
        # restore the snapshot, so it stays with an expired lock.
        ({**AFTER_UPDATE}, True),
        ({**AFTER_UPDATE, **ENSURED}, False),  # EnsureAutoscaling put it back
        ({**AFTER_UPDATE, "snapshot": {"deregister_first": False}}, False),  # count only
        ({}, False),  # failed before CreateConfig: nothing deregistered
        ({"snapshot": None}, False),  # rejected or failed before Snapshot
        # Inherited a dead run's snapshot, then failed before its own Snapshot: pass it on.
        ({**INHERITED, "snapshot": None}, True),
        ({**INHERITED}, False),  # its own snapshot holds the inherited autoscaling
        ({**INHERITED, "snapshot": None, **ENSURED}, False),
        ({**AFTER_UPDATE, "snapshot": None, "lock": {"holder": EXECUTION}}, False),
    ],
)
def test_release_keeps_the_snapshot_while_autoscaling_may_be_missing(
    stubs: dict[str, Stubber], parts: dict[str, Any], keep: bool
) -> None:
    if keep:
        stubs["dynamodb"].add_response("update_item", {}, lock_expiry())
    else:
        stubs["dynamodb"].add_response("delete_item", {}, lock_release())
    assert apply_steps.release_lock(state(**parts), EXECUTION) == {
        "released": True,
        "snapshot_kept": keep,
    }


@pytest.mark.parametrize(
    ("parts", "method", "request_of"),
    [({}, "delete_item", lock_release), (AFTER_UPDATE, "update_item", lock_expiry)],
)
def test_another_runs_lock_is_left_alone(
    stubs: dict[str, Stubber], parts: dict[str, Any], method: str, request_of: Any
) -> None:
    stubs["dynamodb"].add_client_error(
        method, "ConditionalCheckFailedException", expected_params=request_of()
    )
    assert apply_steps.release_lock(state(**parts), EXECUTION) == {"released": False}


@pytest.mark.parametrize(
    "code", ["InternalServerError", "ProvisionedThroughputExceededException", "ThrottlingException"]
)
@pytest.mark.parametrize(
    ("parts", "method", "request_of"),
    [({}, "delete_item", lock_release), (AFTER_UPDATE, "update_item", lock_expiry)],
)
def test_a_failed_release_fails_the_step_so_it_is_retried(
    stubs: dict[str, Stubber], code: str, parts: dict[str, Any], method: str, request_of: Any
) -> None:
    # Swallowing it would leave the lock in place for its whole lifetime (hours): the error
    # reaches the state machine, whose Retry on ReleaseLock must match its name.
    stubs["dynamodb"].add_client_error(method, code, expected_params=request_of())
    with pytest.raises(ClientError) as raised:
        apply_steps.release_lock(state(**parts), EXECUTION)
    assert type(raised.value).__name__ == code


# -- TakeOver (an aborted or timed-out run, finished by a new execution) -------------------------

CLEANUP = "arn:aws:states:us-east-1:123456789012:execution:Apply:cleanup-1"


def interrupted(
    status: str | None = "TIMED_OUT", original: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The cleanup execution's input, as the FinishInterruptedApply rule builds it."""
    if original is None:
        original = {"recommendation": RECOMMENDATION, "settings": SETTINGS}
    event: dict[str, Any] = {"execution_arn": DEAD, "input": json.dumps(original)}
    if status is not None:
        event["status"] = status
    return {"interrupted": event}


def take_over_request(lock_seconds: int = 10800, execution: str = CLEANUP) -> dict[str, Any]:
    return {
        "TableName": "ledger",
        "Key": LOCK_KEY,
        "UpdateExpression": "SET holder = :me, expires_at = :expires",
        "ConditionExpression": "holder = :dead",
        "ExpressionAttributeValues": {
            ":me": {"S": execution},
            ":dead": {"S": DEAD},
            ":expires": {"N": str(NOW_SECONDS + lock_seconds)},
        },
        "ReturnValues": "ALL_OLD",
    }


def test_take_over_a_run_that_held_the_lock_and_its_snapshot(stubs: dict[str, Stubber]) -> None:
    stubs["dynamodb"].add_response(
        "update_item",
        {"Attributes": stored_item(DEAD, STORED, NOW_SECONDS + 60)},
        take_over_request(),
    )
    assert apply_steps.take_over(interrupted(), CLEANUP) == {
        "settings": SETTINGS,
        "recommendation": RECOMMENDATION,
        "interrupted": {"execution_arn": DEAD, "status": "TIMED_OUT"},
        "error": {
            "Error": "ApplyInterrupted",
            "Cause": f"the apply execution {DEAD} was TIMED_OUT",
        },
        "repair": True,
        "lock": {"holder": CLEANUP, "taken_from": DEAD},
        "snapshot": STORED,
        "new_config": {"name": STORED["new_config_name"]},
    }


def test_take_over_a_run_that_held_no_lock(stubs: dict[str, Stubber]) -> None:
    stubs["dynamodb"].add_client_error(
        "update_item", "ConditionalCheckFailedException", expected_params=take_over_request()
    )
    # No status in the event: an abort is assumed.
    assert apply_steps.take_over(interrupted(status=None), CLEANUP) == {
        "settings": SETTINGS,
        "recommendation": RECOMMENDATION,
        "interrupted": {"execution_arn": DEAD, "status": "ABORTED"},
        "error": {
            "Error": "ApplyInterrupted",
            "Cause": f"the apply execution {DEAD} was ABORTED; it held no lock, so it left "
            "nothing to repair",
        },
        "repair": False,
    }


def test_take_over_a_run_stopped_before_its_snapshot(stubs: dict[str, Stubber]) -> None:
    stubs["dynamodb"].add_response(
        "update_item", {"Attributes": stored_item(DEAD, None)}, take_over_request()
    )
    assert apply_steps.take_over(interrupted("ABORTED"), CLEANUP) == {
        "settings": SETTINGS,
        "recommendation": RECOMMENDATION,
        "interrupted": {"execution_arn": DEAD, "status": "ABORTED"},
        "error": {
            "Error": "ApplyInterrupted",
            "Cause": f"the apply execution {DEAD} was ABORTED before it changed anything",
        },
        "repair": False,
        "lock": {"holder": CLEANUP, "taken_from": DEAD},
    }


def test_take_over_of_a_cleanup_reads_the_original_input(stubs: dict[str, Stubber]) -> None:
    # The cleanup itself was cut short: its input is the first cleanup's, which carries the
    # original run's; the lock is then held by the first cleanup (DEAD here).
    settings = {**SETTINGS, "lock_seconds": 7200}
    first = interrupted(original={"recommendation": RECOMMENDATION, "settings": settings})
    stubs["dynamodb"].add_client_error(
        "update_item",
        "ConditionalCheckFailedException",
        expected_params=take_over_request(lock_seconds=7200),
    )
    result = apply_steps.take_over(interrupted("ABORTED", original=first), CLEANUP)
    assert (result["settings"], result["recommendation"]) == (settings, RECOMMENDATION)


def test_take_over_without_a_lock_duration_holds_the_lock_until_now(
    stubs: dict[str, Stubber],
) -> None:
    # An input from before lock_seconds existed: the lock is taken, already expired.
    settings = {"endpoint_name": "fraud-scoring", "variant_name": "AllTraffic"}
    stubs["dynamodb"].add_client_error(
        "update_item",
        "ConditionalCheckFailedException",
        expected_params=take_over_request(lock_seconds=0),
    )
    original = {"recommendation": RECOMMENDATION, "settings": settings}
    assert apply_steps.take_over(interrupted(original=original), CLEANUP)["settings"] == settings


@pytest.mark.parametrize("original", [{}, {"settings": {"variant_name": "AllTraffic"}}, None])
def test_take_over_of_an_input_without_an_endpoint_changes_nothing(
    stubs: dict[str, Stubber], original: dict[str, Any] | None
) -> None:
    # No endpoint, no lock to look for: no AWS call (the stubs allow none). None: the event
    # carried no input at all.
    event = interrupted("ABORTED", original=original or {})
    if original is None:
        del event["interrupted"]["input"]
    assert apply_steps.take_over(event, CLEANUP) == {
        "settings": {"endpoint_name": "unknown", "variant_name": "unknown"},
        "recommendation": {},
        "interrupted": {"execution_arn": DEAD, "status": "ABORTED"},
        "error": {
            "Error": "ApplyInterrupted",
            "Cause": f"the apply execution {DEAD} was ABORTED; its input named no endpoint, "
            "nothing to repair",
        },
        "repair": False,
    }


@pytest.mark.parametrize("code", ["InternalServerError", "ThrottlingException"])
def test_a_take_over_failing_otherwise_fails_the_step(stubs: dict[str, Stubber], code: str) -> None:
    stubs["dynamodb"].add_client_error("update_item", code, expected_params=take_over_request())
    with pytest.raises(ClientError) as raised:
        apply_steps.take_over(interrupted(), CLEANUP)
    assert type(raised.value).__name__ == code


def test_the_outcome_of_a_cleanup_is_failed_with_what_it_repaired() -> None:
    error = {"Error": "ApplyInterrupted", "Cause": f"the apply execution {DEAD} was TIMED_OUT"}
    assert apply.outcome({"error": error}) == ("failed", error["Cause"])
    ensured = {"serves": "new", "endpoint_config_name": "fraud-scoring-rs-x"}
    assert apply.outcome({"error": error, "autoscaling": ensured}) == (
        "failed",
        f"{error['Cause']}; fraud-scoring-rs-x is in service with the autoscaling that matches it",
    )


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


#: The endpoint's settings allow CONFIG's volume key (a config naming a key is refused otherwise).
ALLOWED = {**SETTINGS, "kms_key_arns": [CONFIG["KmsKeyId"]]}


def stub_snapshot_reads(
    stubs: dict[str, Stubber],
    *,
    variant: str = "AllTraffic",
    targets: list[dict[str, Any]] | None = None,
    policies: list[dict[str, Any]] | None = None,
    tags: dict[str, Any] | None = None,
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
        {"Tags": [{"Key": "team", "Value": "fraud"}]} if tags is None else tags,
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


def store_request(stored: dict[str, Any]) -> dict[str, Any]:
    """Snapshot's UpdateItem: the snapshot, as sorted JSON, on this run's lock only."""
    return {
        "TableName": "ledger",
        "Key": LOCK_KEY,
        "UpdateExpression": "SET run_snapshot = :snapshot",
        "ConditionExpression": "holder = :me",
        "ExpressionAttributeValues": {
            ":me": {"S": EXECUTION},
            ":snapshot": {"S": json.dumps(stored, sort_keys=True)},
        },
    }


def expect_store(stubs: dict[str, Stubber], **stored: Any) -> None:
    """The snapshot kept with the lock: CONFIG's AllTraffic variant unless told otherwise."""
    kept = {
        "endpoint_config_name": "fraud-scoring-config-1",
        "instance_type": "ml.c5.2xlarge",
        "instance_count": 6,
        "autoscaling": SNAPSHOT_AUTOSCALING,
        "deregister_first": True,
        "new_config_name": "fraud-scoring-rs-ab706b52ca7b",
        **stored,
    }
    stubs["dynamodb"].add_response("update_item", {}, store_request(kept))


def test_the_snapshot_is_of_the_configured_variant(stubs: dict[str, Stubber]) -> None:
    # The second of two variants: its type, count and scalable target, not the first one's.
    resource = "endpoint/fraud-scoring/variant/Shadowless"
    stub_snapshot_reads(
        stubs, variant="Shadowless", targets=[scalable_target(resource)], policies=[]
    )
    autoscaling = {"MinCapacity": 2, "MaxCapacity": 12, "Policies": []}
    expect_store(
        stubs,
        instance_type="ml.c5.large",
        instance_count=1,
        autoscaling=autoscaling,
        deregister_first=False,
    )
    recommendation = {**RECOMMENDATION, "instance_type": "ml.c5.large", "instance_count": 2}
    snapshot = apply_steps.snapshot(
        state(settings={**ALLOWED, "variant_name": "Shadowless"}, recommendation=recommendation),
        EXECUTION,
    )
    assert snapshot == {
        "endpoint_config_name": "fraud-scoring-config-1",
        "config": apply.config_fields(CONFIG),
        "tags": [{"Key": "team", "Value": "fraud"}],
        "instance_type": "ml.c5.large",
        "instance_count": 1,
        "autoscaling": autoscaling,
        "already_applied": False,
        "repair_autoscaling": False,
        "deregister_first": False,  # same type, another count: no deregistration
    }


def test_a_config_without_tags_or_autoscaling(stubs: dict[str, Stubber]) -> None:
    stub_snapshot_reads(stubs, targets=[], policies=[], tags={})
    expect_store(stubs, autoscaling=None, deregister_first=False)
    snapshot = apply_steps.snapshot(state(settings=ALLOWED), EXECUTION)
    assert (snapshot["tags"], snapshot["autoscaling"]) == ([], None)
    assert (snapshot["repair_autoscaling"], snapshot["deregister_first"]) == (False, False)


def test_suspended_scaling_is_part_of_the_snapshot(stubs: dict[str, Stubber]) -> None:
    stub_snapshot_reads(stubs, targets=[scalable_target(RESOURCE_ID, SuspendedState=SUSPENDED)])
    suspended = {**SNAPSHOT_AUTOSCALING, "SuspendedState": SUSPENDED}
    expect_store(stubs, autoscaling=suspended)  # the repair a cleanup makes keeps it too
    snapshot = apply_steps.snapshot(state(settings=ALLOWED), EXECUTION)
    assert snapshot["autoscaling"] == suspended


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
    expect_store(
        stubs,
        autoscaling=SNAPSHOT_AUTOSCALING if autoscaled else None,
        deregister_first=deregister,
    )
    recommendation = {
        **RECOMMENDATION,
        "instance_type": instance_type,
        "instance_count": instance_count,
    }
    snapshot = apply_steps.snapshot(
        state(settings=ALLOWED, recommendation=recommendation), EXECUTION
    )
    assert (snapshot["already_applied"], snapshot["deregister_first"]) == (already, deregister)
    assert (snapshot["autoscaling"] is not None) is autoscaled


def test_an_endpoint_already_running_the_recommendation_is_not_refused(
    stubs: dict[str, Stubber],
) -> None:
    # Nothing will be copied, so nothing is passed to SageMaker: the key the settings do not
    # allow is no reason to refuse (the run records no-change).
    stub_snapshot_reads(stubs)
    expect_store(stubs, deregister_first=False)
    recommendation = {**RECOMMENDATION, "instance_type": "ml.c5.2xlarge", "instance_count": 6}
    snapshot = apply_steps.snapshot(state(recommendation=recommendation), EXECUTION)
    assert snapshot["already_applied"] is True


def test_a_key_the_settings_do_not_allow_refuses_before_anything(
    stubs: dict[str, Stubber],
) -> None:
    # Refused after the two reads: no tags, no autoscaling read, nothing stored, no change.
    stubs["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint(), {"EndpointName": "fraud-scoring"}
    )
    stubs["sagemaker"].add_response(
        "describe_endpoint_config", CONFIG, {"EndpointConfigName": "fraud-scoring-config-1"}
    )
    with pytest.raises(UnsupportedEndpointError) as raised:
        apply_steps.snapshot(state(), EXECUTION)
    assert str(raised.value) == (
        f"the endpoint config's KmsKeyId {CONFIG['KmsKeyId']} is not among the kms_keys of "
        "EndpointRightsizing(fraud-scoring): add kms_keys=[kms.Key.from_key_arn(..., "
        "<its key ARN>)] so the Apply workflow may use it; nothing was changed"
    )


def test_type_and_permission_refusals_are_reported_together(stubs: dict[str, Stubber]) -> None:
    config = copy.deepcopy(CONFIG)
    config["ProductionVariants"][0]["AcceleratorType"] = "ml.eia2.medium"
    stubs["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint(), {"EndpointName": "fraud-scoring"}
    )
    stubs["sagemaker"].add_response(
        "describe_endpoint_config", config, {"EndpointConfigName": "fraud-scoring-config-1"}
    )
    with pytest.raises(UnsupportedEndpointError) as raised:
        apply_steps.snapshot(state(), EXECUTION)
    assert str(raised.value) == (
        "AcceleratorType cannot move from ml.c5.2xlarge to ml.m5.xlarge: "
        + apply.VARIANT_FIELDS_ON_TYPE_CHANGE["AcceleratorType"][1]
        + f"; the endpoint config's KmsKeyId {CONFIG['KmsKeyId']} is not among the kms_keys of "
        "EndpointRightsizing(fraud-scoring): add kms_keys=[kms.Key.from_key_arn(..., "
        "<its key ARN>)] so the Apply workflow may use it; nothing was changed"
    )


ALIAS_CONFIG = {**CONFIG, "KmsKeyId": "alias/fraud-volumes"}


def describe_alias_config(stubs: dict[str, Stubber]) -> None:
    stubs["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint(), {"EndpointName": "fraud-scoring"}
    )
    stubs["sagemaker"].add_response(
        "describe_endpoint_config", ALIAS_CONFIG, {"EndpointConfigName": "fraud-scoring-config-1"}
    )


def test_a_key_alias_kms_cannot_resolve_is_refused(
    stubs: dict[str, Stubber], caplog: pytest.LogCaptureFixture
) -> None:
    describe_alias_config(stubs)
    stubs["kms"].add_client_error(
        "describe_key",
        "NotFoundException",
        "Alias arn:aws:kms:us-east-1:123456789012:alias/fraud-volumes is not found.",
        expected_params={"KeyId": "alias/fraud-volumes"},
    )
    with pytest.raises(UnsupportedEndpointError) as raised:
        apply_steps.snapshot(state(settings=ALLOWED), EXECUTION)
    assert str(raised.value) == (
        "the endpoint config's KmsKeyId alias/fraud-volumes is not among the kms_keys of "
        "EndpointRightsizing(fraud-scoring): add kms_keys=[kms.Key.from_key_arn(..., "
        "<its key ARN>)] so the Apply workflow may use it; nothing was changed"
    )
    assert [r.getMessage() for r in caplog.records] == [
        "cannot read alias/fraud-volumes: NotFoundException"
    ]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 400),
        ("KMSInternalException", 500),
        ("DependencyTimeoutException", 500),
    ],
)
def test_kms_failing_is_no_answer_about_the_key(
    stubs: dict[str, Stubber], code: str, status: int
) -> None:
    # Taking it for "cannot read" would refuse the apply and advise a setting it already has.
    describe_alias_config(stubs)
    stubs["kms"].add_client_error(
        "describe_key", code, "m", status, expected_params={"KeyId": "alias/fraud-volumes"}
    )
    with pytest.raises(TransientAwsError) as raised:
        apply_steps.handler(
            {"step": "snapshot", "state": state(settings=ALLOWED), "execution_arn": EXECUTION}
        )
    cause = raised.value.__cause__
    assert isinstance(cause, ClientError) and cause.response["Error"]["Code"] == code


def test_each_key_alias_is_resolved_once(stubs: dict[str, Stubber]) -> None:
    # The volume and the data capture under one alias: one DescribeKey, and both allowed.
    config = copy.deepcopy(ALIAS_CONFIG)
    config["DataCaptureConfig"]["KmsKeyId"] = "alias/fraud-volumes"
    stubs["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint(), {"EndpointName": "fraud-scoring"}
    )
    stubs["sagemaker"].add_response(
        "describe_endpoint_config", config, {"EndpointConfigName": "fraud-scoring-config-1"}
    )
    stubs["kms"].add_response(
        "describe_key",
        {"KeyMetadata": {"KeyId": "1234", "Arn": CONFIG["KmsKeyId"]}},
        {"KeyId": "alias/fraud-volumes"},
    )
    stubs["sagemaker"].add_response("list_tags", {}, {"ResourceArn": CONFIG_ARN})
    for method, params in (
        ("describe_scalable_targets", {"ResourceIds": [RESOURCE_ID]}),
        ("describe_scaling_policies", {"ResourceId": RESOURCE_ID}),
    ):
        key = "ScalableTargets" if method == "describe_scalable_targets" else "ScalingPolicies"
        stubs["autoscaling"].add_response(
            method,
            {key: []},
            {"ServiceNamespace": "sagemaker", "ScalableDimension": DIMENSION, **params},
        )
    expect_store(stubs, autoscaling=None, deregister_first=False)
    assert apply_steps.snapshot(state(settings=ALLOWED), EXECUTION)["config"] == (
        apply.config_fields(config)
    )


def test_without_kms_keys_no_alias_is_read(stubs: dict[str, Stubber]) -> None:
    # DescribeKey is granted on the allowed keys only: with none, no call, and the alias refused.
    describe_alias_config(stubs)
    with pytest.raises(UnsupportedEndpointError, match=r"^the endpoint config's KmsKeyId alias/"):
        apply_steps.snapshot(state(), EXECUTION)


@pytest.mark.parametrize(
    ("autoscaled", "repair", "autoscaling"),
    [
        # The dead run deregistered the target and died: this run restores what it stored.
        (False, True, SNAPSHOT_AUTOSCALING),
        # The endpoint has a target again (someone registered one): that one is the snapshot.
        (True, False, {"MinCapacity": 2, "MaxCapacity": 12, "Policies": []}),
    ],
)
def test_a_snapshot_under_an_inherited_lock(
    stubs: dict[str, Stubber], autoscaled: bool, repair: bool, autoscaling: dict[str, Any]
) -> None:
    stub_snapshot_reads(
        stubs, targets=[scalable_target(RESOURCE_ID)] if autoscaled else [], policies=[]
    )
    expect_store(stubs, autoscaling=autoscaling)
    current = state(settings=ALLOWED, **INHERITED)
    snapshot = apply_steps.snapshot(current, EXECUTION)
    assert (snapshot["autoscaling"], snapshot["repair_autoscaling"]) == (autoscaling, repair)
    assert snapshot["deregister_first"] is True  # a target is there to deregister, or restored


def test_a_snapshot_whose_lock_was_taken_changes_nothing(stubs: dict[str, Stubber]) -> None:
    stub_snapshot_reads(stubs)
    kept = {**STORED, "new_config_name": NEW_CONFIG}
    stubs["dynamodb"].add_client_error(
        "update_item", "ConditionalCheckFailedException", expected_params=store_request(kept)
    )
    with pytest.raises(apply_steps.EndpointLockedError) as raised:
        apply_steps.snapshot(state(settings=ALLOWED), EXECUTION)
    assert str(raised.value) == (
        "this run's lock on fraud-scoring expired and was taken; nothing was changed"
    )


def test_a_snapshot_that_cannot_be_stored_fails_the_step(stubs: dict[str, Stubber]) -> None:
    stub_snapshot_reads(stubs)
    kept = {**STORED, "new_config_name": NEW_CONFIG}
    stubs["dynamodb"].add_client_error(
        "update_item", "InternalServerError", expected_params=store_request(kept)
    )
    with pytest.raises(ClientError) as raised:
        apply_steps.snapshot(state(settings=ALLOWED), EXECUTION)
    assert not isinstance(raised.value, apply_steps.EndpointLockedError)
    assert type(raised.value).__name__ == "InternalServerError"


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
    stubber.add_response("put_item", {}, record_request(outcome))
    return records


def record_request(outcome: str) -> dict[str, Any]:
    """Record's PutItem at the frozen clock; the record's JSON is compared whole, parsed, by
    :func:`expect_record`'s callers."""
    return {
        "TableName": "ledger",
        "Item": {
            "pk": {"S": "endpoint#fraud-scoring"},
            "sk": {"S": f"run#{RECORDED_AT}#run-1"},
            "recorded_at": {"S": RECORDED_AT},
            "outcome": {"S": outcome},
            "record": {"S": ANY},
        },
    }


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
            "interrupted": None,
            "inherited_from": None,
        }
    ]
    assert result == {"result": "applied", "reason": reason, "estimated_monthly_savings": 443.84}
    assert [r.getMessage() for r in caplog.records] == [f"fraud-scoring: applied ({reason})"]


def test_an_applied_run_emits_its_change_and_saving_as_emf(
    stubs: dict[str, Stubber], capsys: pytest.CaptureFixture[str]
) -> None:
    """README, "Metrics": AppliedChanges and AppliedMonthlySaving, per variant and fleet."""
    applied = apply.recommended_autoscaling(SNAPSHOT_AUTOSCALING, RECOMMENDATION)
    expect_record(stubs["dynamodb"], "applied")
    apply_steps.record(
        state(
            recommendation={**RECOMMENDATION, "current": {"estimated_cost_per_hour": 2.448}},
            new_config={"name": NEW_CONFIG},
            autoscaling={"serves": "new", "endpoint_config_name": NEW_CONFIG, "applied": applied},
        ),
        EXECUTION,
    )
    [line] = capsys.readouterr().out.splitlines()
    document = json.loads(line)
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive == {
        "Namespace": "Rightsizing",
        "Dimensions": [[], ["EndpointName", "VariantName"]],
        "Metrics": [
            {"Name": "AppliedChanges", "Unit": "Count"},
            {"Name": "AppliedMonthlySaving", "Unit": "None"},
        ],
    }
    assert (document["EndpointName"], document["VariantName"]) == ("fraud-scoring", "AllTraffic")
    assert (document["AppliedChanges"], document["AppliedMonthlySaving"]) == (1, 443.84)


def test_a_run_that_did_not_apply_emits_no_applied_change(
    stubs: dict[str, Stubber], capsys: pytest.CaptureFixture[str]
) -> None:
    expect_record(stubs["dynamodb"], "rolled-back")
    apply_steps.record(
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
    assert capsys.readouterr().out == ""


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


def test_the_record_of_a_cleanup_names_the_run_it_finished(stubs: dict[str, Stubber]) -> None:
    # TakeOver's state, then EnsureAutoscaling put the snapshot's autoscaling back.
    cause = f"the apply execution {DEAD} was TIMED_OUT"
    records = expect_record(stubs["dynamodb"], "failed")
    result = apply_steps.record(
        {
            "settings": SETTINGS,
            "recommendation": RECOMMENDATION,
            "interrupted": {"execution_arn": DEAD, "status": "TIMED_OUT"},
            "error": {"Error": "ApplyInterrupted", "Cause": cause},
            "repair": True,
            "lock": {"holder": EXECUTION, "taken_from": DEAD},
            "snapshot": STORED,
            "new_config": {"name": STORED["new_config_name"]},
            "autoscaling": {
                "serves": "previous",
                "endpoint_config_name": "fraud-scoring-config-1",
                "applied": SNAPSHOT_AUTOSCALING,
            },
        },
        EXECUTION,
    )
    reason = f"{cause}; fraud-scoring-config-1 is in service with the autoscaling that matches it"
    assert records == [
        {
            "outcome": "failed",
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
                "endpoint_config_name": "fraud-scoring-config-1",
                "instance_type": None,
                "instance_count": None,
                "autoscaling": SNAPSHOT_AUTOSCALING,
                "cost_per_hour": None,
            },
            "estimated_monthly_savings": None,
            "interrupted": {"execution_arn": DEAD, "status": "TIMED_OUT"},
            "inherited_from": None,
        }
    ]
    assert result == {"result": "failed", "reason": reason, "estimated_monthly_savings": None}


def test_the_record_of_a_run_that_inherited_names_the_dead_run(stubs: dict[str, Stubber]) -> None:
    records = expect_record(stubs["dynamodb"], "failed")
    apply_steps.record(
        state(**INHERITED, error={"Error": "ClientError", "Cause": "AccessDenied"}), EXECUTION
    )
    [record] = records
    assert (record["inherited_from"], record["interrupted"]) == (DEAD, None)
    assert (record["outcome"], record["reason"]) == ("failed", "AccessDenied")


def test_the_handler_runs_the_named_step_for_the_execution(stubs: dict[str, Stubber]) -> None:
    stubs["dynamodb"].add_response("delete_item", {}, lock_release(EXECUTION))
    result = apply_steps.handler(
        {"step": "release_lock", "state": state(), "execution_arn": EXECUTION}
    )
    assert result == {"released": True, "snapshot_kept": False}
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
        "take_over",
        "request_approval",  # ApplyMode.APPROVAL; await_approval takes the token too (handler)
        # An inference component's run (issue 17; tests/test_component_apply.py).
        "component_snapshot",
        "component_update",
        "component_check",
        "component_ensure_autoscaling",
    }
    assert all(step is getattr(apply_steps, name) for name, step in apply_steps.STEPS.items())
