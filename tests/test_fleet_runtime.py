"""Fleet pieces of the runtime: hysteresis, triggers, IR job slots (approvals: test_closed_loop)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import aws_cdk as cdk
import pytest
from botocore.stub import Stubber
from rightsizing_runtime import job_slots
from rightsizing_runtime.decision import CurrentConfig, decide
from rightsizing_runtime.errors import NoJobSlotError
from rightsizing_runtime.triggers import InvalidTriggerError, trigger_from

from rightsizing_constructs import RightsizingEngine
from tests.infra import stack
from tests.test_decision import candidate, inputs

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:RecommendSM:run-1"
VERSION = "arn:aws:sagemaker:us-east-1:123456789012:model-package/fraud-scoring/4"


# -- Hysteresis -------------------------------------------------------------------------------

# ml.c5.xlarge at 0.204 per hour sustains 648 rpm: 1000 rpm at u=0.5 needs 4 (0.816 per hour).
CURRENT_C5_X5 = CurrentConfig(
    endpoint_config_name="c", instance_type="ml.c5.xlarge", instance_count=5
)


def test_a_small_saving_on_a_healthy_endpoint_is_no_change() -> None:
    # 5 -> 4 instances saves 0.204 per hour = 148.92 per month, 20 %.
    decision = decide([candidate()], inputs(min_saving_per_month=Decimal(200)), CURRENT_C5_X5)
    assert decision.action == "no-change"
    assert "would save 148.92 per month (20%)" in decision.reason
    assert decide(
        [candidate()], inputs(min_saving_per_month=Decimal(100)), CURRENT_C5_X5
    ).action == ("apply")
    assert decide([candidate()], inputs(min_saving_percent=Decimal(25)), CURRENT_C5_X5).action == (
        "no-change"
    )


def test_an_endpoint_that_misses_its_slo_is_always_fixed() -> None:
    # 3 instances cannot carry the peak (4 needed): the change is made however small the saving.
    short = CurrentConfig(endpoint_config_name="c", instance_type="ml.c5.xlarge", instance_count=3)
    decision = decide([candidate()], inputs(min_saving_percent=Decimal(99)), short)
    assert decision.action == "apply"


def test_a_current_type_ir_did_not_measure_is_not_kept_for_hysteresis() -> None:
    unmeasured = CurrentConfig(
        endpoint_config_name="c", instance_type="ml.g5.xlarge", instance_count=1
    )
    decision = decide([candidate()], inputs(min_saving_percent=Decimal(99)), unmeasured)
    assert decision.action == "apply"


# -- Triggers ---------------------------------------------------------------------------------


def test_trigger_kinds() -> None:
    assert trigger_from(None).kind == "manual"
    run = {"source": "rightsizing-constructs", "detail_type": "Rightsizing Run Requested"}
    assert trigger_from({**run, "event": {"id": "e1", "detail": {}}}).render() == {
        "kind": "manual",
        "event_id": "e1",
    }
    scheduled = {**run, "event": {"detail": {"requested_by": "schedule"}}}
    assert trigger_from(scheduled).kind == "schedule"
    alarm = {"source": "aws.cloudwatch", "detail_type": "CloudWatch Alarm State Change"}
    assert trigger_from({**alarm, "event": {}}).kind == "latency-alarm"
    approval = {
        "source": "aws.sagemaker",
        "detail_type": "SageMaker Model Package State Change",
        "event": {"detail": {"ModelApprovalStatus": "Approved", "ModelPackageArn": VERSION}},
    }
    assert trigger_from(approval).model_package_version_arn == VERSION


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ({"source": "aws.ec2", "detail_type": "EC2 Instance State-change Notification"}, "no run"),
        (
            {
                "source": "aws.sagemaker",
                "detail_type": "SageMaker Model Package State Change",
                "event": {"detail": {"ModelApprovalStatus": "Rejected"}},
            },
            "only Approved",
        ),
        ("not an object", "JSON object"),
    ],
)
def test_unknown_or_unusable_triggers_are_refused(trigger: Any, message: str) -> None:
    with pytest.raises(InvalidTriggerError, match=message):
        trigger_from(trigger)


# -- Job slots --------------------------------------------------------------------------------


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    monkeypatch.setenv("LEDGER_TABLE_NAME", "ledger")
    monkeypatch.setattr(job_slots.time, "time", lambda: 1_800_000_000)
    with Stubber(job_slots.dynamodb) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def _put(slot: int) -> dict[str, Any]:
    return {
        "TableName": "ledger",
        "Item": {
            "pk": {"S": "job-slots#RecommendSM"},
            "sk": {"S": f"slot#{slot}"},
            "holder": {"S": EXECUTION},
            "expires_at": {"N": str(1_800_000_000 + 3600)},
        },
        "ConditionExpression": "attribute_not_exists(pk) OR holder = :me OR expires_at < :now",
        "ExpressionAttributeValues": {":me": {"S": EXECUTION}, ":now": {"N": "1800000000"}},
    }


def _taken(stubber: Stubber, method: str, params: dict[str, Any]) -> None:
    stubber.add_client_error(
        method, service_error_code="ConditionalCheckFailedException", expected_params=params
    )


def test_acquire_takes_the_first_free_slot(dynamodb: Stubber) -> None:
    _taken(dynamodb, "put_item", _put(0))
    dynamodb.add_response("put_item", {}, _put(1))
    event = {"action": "acquire", "execution_arn": EXECUTION, "max_concurrent_jobs": 3}
    assert job_slots.handler({**event, "hold_seconds": 3600}) == {"slot": 1}


def test_acquire_with_every_slot_taken_waits(dynamodb: Stubber) -> None:
    _taken(dynamodb, "put_item", _put(0))
    _taken(dynamodb, "put_item", _put(1))
    event = {"action": "acquire", "execution_arn": EXECUTION, "max_concurrent_jobs": 2}
    with pytest.raises(NoJobSlotError, match="all 2 IR job slots are taken"):
        job_slots.handler({**event, "hold_seconds": 3600})


def test_release_frees_only_this_executions_slot(dynamodb: Stubber) -> None:
    def delete(slot: int) -> dict[str, Any]:
        return {
            "TableName": "ledger",
            "Key": {"pk": {"S": "job-slots#RecommendSM"}, "sk": {"S": f"slot#{slot}"}},
            "ConditionExpression": "holder = :me",
            "ExpressionAttributeValues": {":me": {"S": EXECUTION}},
        }

    _taken(dynamodb, "delete_item", delete(0))
    dynamodb.add_response("delete_item", {}, delete(1))
    assert job_slots.handler(
        {"action": "release", "execution_arn": EXECUTION, "max_concurrent_jobs": 2}
    ) == {"released": 1}


# -- Engine settings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_concurrent_jobs": 0}, "max_concurrent_jobs must be a whole number from 1 to 100"),
        ({"max_concurrent_jobs": True}, "max_concurrent_jobs"),
        (
            {"poll_interval": cdk.Duration.millis(10)},
            "poll_interval must be a whole number of seconds",
        ),
        (
            {"queue_timeout": cdk.Duration.seconds(10)},
            r"queue_timeout \(10 seconds\) must be at least poll_interval",
        ),
    ],
)
def test_engine_settings_are_validated(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RightsizingEngine(stack(), "Engine", **settings)


def test_one_engine_per_stack() -> None:
    scope = stack()
    assert RightsizingEngine.of(scope) is RightsizingEngine.of(scope)
