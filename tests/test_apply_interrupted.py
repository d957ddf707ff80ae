"""Time-outs and aborts of the Apply workflow (issue 11, item 8): the machine outlives its own
worst case, a run that is still cut short is finished by the FinishInterruptedApply rule, and
a lock whose cleanup never came keeps the snapshot for the next run (Stubber, templates)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from botocore.stub import ANY, Stubber
from rightsizing_runtime import apply, apply_steps

from rightsizing_constructs import _duration
from tests.infra import definition, endpoint_input, rightsizing

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:Apply:cleanup-1"
DEAD = "arn:aws:states:us-east-1:123456789012:execution:Apply:run-1"
LOCK_KEY = {"pk": {"S": "endpoint#fraud-scoring"}, "sk": {"S": "lock"}}
SETTINGS = {"endpoint_name": "fraud-scoring", "variant_name": "AllTraffic", "lock_seconds": 7200}
AUTOSCALING = {"MinCapacity": 2, "MaxCapacity": 12, "Policies": []}
STORED = {
    "endpoint_config_name": "fraud-scoring-config-1",
    "instance_type": "ml.c5.2xlarge",
    "instance_count": 6,
    "autoscaling": AUTOSCALING,
    "deregister_first": True,
    "new_config_name": apply.new_config_name("fraud-scoring", DEAD),
}
RECOMMENDATION = {"instance_type": "ml.m5.xlarge", "instance_count": 8}


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.from_stack(cdk.Stack.of(rightsizing()))


# -- The time-out outlives the worst case ---------------------------------------------------------


def test_the_worst_case_of_a_small_definition() -> None:
    """By hand: a task retried, a counted loop of a wait and a task, a catch to a longer tail."""
    states = {
        "Start": {"Type": "Task", "Next": "Wait", "TimeoutSeconds": 10,
                  "Retry": [{"ErrorEquals": ["A"], "MaxAttempts": 2, "IntervalSeconds": 3},
                            {"ErrorEquals": ["B"], "MaxAttempts": 1, "IntervalSeconds": 100,
                             "MaxDelaySeconds": 5}]},
        "Wait": {"Type": "Wait", "Seconds": 30, "Next": "Poll"},
        "Poll": {"Type": "Task", "Next": "Again", "TimeoutSeconds": 1,
                 "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Slow"}]},
        "Again": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThanEquals": 4,
                  "Next": "Done"}], "Default": "Wait"},
        "Slow": {"Type": "Wait", "Seconds": 1000, "Next": "Done"},
        "Done": {"Type": "Succeed"},
    }  # fmt: skip
    # Start: 4 attempts of 10 s, waits 3 + 6 (rate 2) + min(100, 5); the loop 4 x (30 + 1);
    # then the catch's 1000 s, longer than going straight to Done.
    expected = 4 * 10 + 3 + 6 + 5 + 4 * (30 + 1) + 1000
    assert _duration.worst_case_seconds(
        states, "Start", task_seconds=60, loop_bounds={"Wait": 4}
    ) == pytest.approx(expected)
    with pytest.raises(ValueError, match="needs one bound"):
        _duration.worst_case_seconds(states, "Start", task_seconds=60, loop_bounds={})


def _worst_case_of(template: Template) -> float:
    """The longest an Apply run can take, from the synthesized definition alone."""
    apply_definition = definition(template, "apply")
    states = apply_definition["States"]
    [function] = [
        f["Properties"]
        for k, f in template.find_resources("AWS::Lambda::Function").items()
        if k.startswith("RightsizingEngineApplyStep")
    ]
    # The update watch loops until its poll counter reaches the budget in this Choice.
    [budget] = [c["NumericGreaterThanEquals"] for c in states["UpdateBudgetSpent"]["Choices"]]
    return _duration.worst_case_seconds(
        states,
        apply_definition["StartAt"],
        task_seconds=function["Timeout"],
        loop_bounds={"WaitForUpdate": budget},
    )


@pytest.mark.parametrize("poll_minutes", [5, 1])
def test_the_machine_and_the_lock_outlive_the_worst_case(
    template: Template, poll_minutes: int
) -> None:
    if poll_minutes != 5:  # the default engine's is the module's template
        template = Template.from_stack(
            cdk.Stack.of(rightsizing(poll_interval=cdk.Duration.minutes(poll_minutes)))
        )
    worst = _worst_case_of(template)
    timeout = definition(template, "apply")["TimeoutSeconds"]
    lock = endpoint_input(template)["apply_settings"]["lock_seconds"]
    # The old 3-hour time-out (the update's 2 hours + 1) was shorter than the machine's own path.
    assert worst > 3 * 3600
    assert timeout >= worst + 3600
    assert lock >= timeout + 3600


def test_the_default_worst_case_is_what_the_readme_says(template: Template) -> None:
    """README, "Applying a recommendation": about 28 hours with the default 5-minute poll."""
    assert 28 * 3600 < _worst_case_of(template) < 28 * 3600 + 3 * 60  # 28 h 3 min
    assert definition(template, "apply")["TimeoutSeconds"] == 104580  # 29 h 3 min


# -- The cleanup rule, the alarm, the cleanup path -------------------------------------------------


def test_aborted_and_timed_out_runs_start_the_cleanup(template: Template) -> None:
    [rule] = [
        r["Properties"]
        for k, r in template.find_resources("AWS::Events::Rule").items()
        if "FinishInterruptedApply" in k
    ]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert pattern["detail"]["status"] == ["ABORTED", "TIMED_OUT"]
    assert "ApplyStateMachine" in json.dumps(pattern["detail"]["stateMachineArn"])
    [target] = rule["Targets"]
    assert "ApplyStateMachine" in json.dumps(target["Arn"])
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 8
    assert "DeadLetterConfig" in target
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {
        "detail-executionArn": "$.detail.executionArn",
        "detail-status": "$.detail.status",
        "detail-input": "$.detail.input",
    }
    assert json.loads(transformer["InputTemplate"].replace("<", '"<').replace(">", '>"')) == {
        "interrupted": {
            "execution_arn": "<detail-executionArn>",
            "status": "<detail-status>",
            "input": "<detail-input>",
        }
    }


def test_failed_applies_counts_timed_out_and_aborted_runs(template: Template) -> None:
    [alarm] = [
        a["Properties"]
        for k, a in template.find_resources("AWS::CloudWatch::Alarm").items()
        if "FailedApplies" in k
    ]
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    assert metrics["expr_1"]["Expression"] == "failed + timedout + aborted"
    assert {
        metrics[name]["MetricStat"]["Metric"]["MetricName"]
        for name in ("failed", "timedout", "aborted")
    } == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}


def test_the_cleanup_input_takes_over_then_repairs(template: Template) -> None:
    states = definition(template, "apply")["States"]
    check = states["CheckApplyInput"]["Choices"]
    assert check[1] == {
        "Variable": "$.interrupted.execution_arn",
        "IsPresent": True,
        "Next": "TakeOver",
    }
    assert states["TakeOver"]["ResultPath"] == "$"
    assert states["TakeOver"]["Next"] == "Repair"
    assert states["TakeOver"]["Catch"][0]["Next"] == "Record"
    assert states["Repair"]["Choices"] == [
        {"Variable": "$.repair", "BooleanEquals": True, "Next": "EnsureAutoscaling"}
    ]
    assert states["Repair"]["Default"] == "Record"


# -- The steps (Stubber) ----------------------------------------------------------------------


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    monkeypatch.setenv("LEDGER_TABLE_NAME", "ledger")
    with Stubber(apply_steps.dynamodb) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def _interrupted(status: str = "ABORTED") -> dict[str, Any]:
    original = {"recommendation": RECOMMENDATION, "settings": SETTINGS}
    return {"execution_arn": DEAD, "status": status, "input": json.dumps(original)}


def _take_over_request() -> dict[str, Any]:
    return {
        "TableName": "ledger",
        "Key": LOCK_KEY,
        "UpdateExpression": "SET holder = :me, expires_at = :expires",
        "ConditionExpression": "holder = :dead",
        "ExpressionAttributeValues": {
            ":me": {"S": EXECUTION},
            ":dead": {"S": DEAD},
            ":expires": {"N": ANY},
        },
        "ReturnValues": "ALL_OLD",
    }


def test_take_over_a_run_that_held_the_lock(dynamodb: Stubber) -> None:
    dynamodb.add_response(
        "update_item",
        {
            "Attributes": {
                **LOCK_KEY,
                "holder": {"S": DEAD},
                "run_snapshot": {"S": json.dumps(STORED)},
            }
        },
        _take_over_request(),
    )
    state = apply_steps.take_over({"interrupted": _interrupted("TIMED_OUT")}, EXECUTION)
    assert state["repair"] is True
    assert state["settings"] == SETTINGS and state["recommendation"] == RECOMMENDATION
    assert state["snapshot"] == STORED
    assert state["new_config"] == {"name": STORED["new_config_name"]}
    assert state["lock"] == {"holder": EXECUTION, "taken_from": DEAD}
    # Whatever EnsureAutoscaling finds, the record says the run failed and why.
    state["autoscaling"] = {"serves": "new", "endpoint_config_name": "fraud-scoring-rs-x"}
    result, reason = apply.outcome(state)
    assert result == "failed"
    assert reason.startswith(f"the apply execution {DEAD} was TIMED_OUT; fraud-scoring-rs-x")
    json.dumps(state)  # it becomes the workflow state


def test_take_over_a_run_that_held_no_lock(dynamodb: Stubber) -> None:
    dynamodb.add_client_error("update_item", "ConditionalCheckFailedException")
    state = apply_steps.take_over({"interrupted": _interrupted()}, EXECUTION)
    assert state["repair"] is False and "lock" not in state
    assert apply.outcome(state) == (
        "failed",
        f"the apply execution {DEAD} was ABORTED; it held no lock, so it left nothing to repair",
    )


def test_take_over_a_run_stopped_before_its_snapshot(dynamodb: Stubber) -> None:
    dynamodb.add_response(
        "update_item", {"Attributes": {**LOCK_KEY, "holder": {"S": DEAD}}}, _take_over_request()
    )
    state = apply_steps.take_over({"interrupted": _interrupted()}, EXECUTION)
    assert state["repair"] is False and state["lock"]["holder"] == EXECUTION
    assert apply.outcome(state)[1].endswith("before it changed anything")


def test_take_over_of_a_cleanup_reads_the_original_input(dynamodb: Stubber) -> None:
    cleanup_input = json.dumps({"interrupted": _interrupted()})
    first_cleanup = "arn:aws:states:us-east-1:123456789012:execution:Apply:cleanup-0"
    dynamodb.add_client_error("update_item", "ConditionalCheckFailedException")
    state = apply_steps.take_over(
        {"interrupted": {"execution_arn": first_cleanup, "input": cleanup_input}}, EXECUTION
    )
    assert state["settings"] == SETTINGS


def _release_request(keep: bool) -> dict[str, Any]:
    if keep:
        return {
            "TableName": "ledger",
            "Key": LOCK_KEY,
            "UpdateExpression": "SET expires_at = :expired",
            "ConditionExpression": "holder = :me",
            "ExpressionAttributeValues": {":me": {"S": EXECUTION}, ":expired": {"N": "0"}},
        }
    return {
        "TableName": "ledger",
        "Key": LOCK_KEY,
        "ConditionExpression": "holder = :me",
        "ExpressionAttributeValues": {":me": {"S": EXECUTION}},
    }


@pytest.mark.parametrize(
    ("parts", "keep"),
    [
        # Deregistered, and EnsureAutoscaling never finished: the next run must restore it.
        ({"new_config": {"name": "x"}, "snapshot": STORED}, True),
        (
            {"new_config": {"name": "x"}, "snapshot": STORED, "autoscaling": {"serves": "new"}},
            False,
        ),
        ({"new_config": {"name": "x"}, "snapshot": {**STORED, "deregister_first": False}}, False),
        ({"snapshot": STORED}, False),  # failed before CreateConfig: nothing was deregistered
        # Inherited a dead run's snapshot, then failed before its own: pass it on.
        ({"lock": {"inherited": {"from": DEAD, "autoscaling": AUTOSCALING}}}, True),
    ],
)
def test_release_keeps_the_snapshot_while_autoscaling_may_be_missing(
    dynamodb: Stubber, parts: dict[str, Any], keep: bool
) -> None:
    method = "update_item" if keep else "delete_item"
    dynamodb.add_response(method, {}, _release_request(keep))
    result = apply_steps.release_lock({"settings": SETTINGS, **parts}, EXECUTION)
    assert result == {"released": True, "snapshot_kept": keep}


def test_the_next_run_inherits_a_dead_runs_autoscaling(dynamodb: Stubber) -> None:
    dynamodb.add_response(
        "update_item",
        {
            "Attributes": {
                **LOCK_KEY,
                "holder": {"S": DEAD},
                "expires_at": {"N": "0"},
                "run_snapshot": {"S": json.dumps(STORED)},
            }
        },
        {
            "TableName": "ledger",
            "Key": LOCK_KEY,
            "UpdateExpression": "SET holder = :me, expires_at = :expires",
            "ConditionExpression": "attribute_not_exists(pk) OR expires_at < :now OR holder = :me",
            "ExpressionAttributeValues": {
                ":now": {"N": ANY},
                ":me": {"S": EXECUTION},
                ":expires": {"N": ANY},
            },
            "ReturnValues": "ALL_OLD",
        },
    )
    lock = apply_steps.acquire_lock({"settings": SETTINGS}, EXECUTION)
    assert lock["inherited"] == {"from": DEAD, "autoscaling": AUTOSCALING}


def test_the_record_of_a_cleanup_names_the_run(dynamodb: Stubber) -> None:
    state = {
        "settings": SETTINGS,
        "recommendation": RECOMMENDATION,
        "interrupted": {"execution_arn": DEAD, "status": "ABORTED"},
        "error": {"Error": apply.INTERRUPTED_ERROR, "Cause": f"the apply execution {DEAD}"},
        "snapshot": copy.deepcopy(STORED),
    }
    dynamodb.add_response(
        "put_item",
        {},
        {
            "TableName": "ledger",
            "Item": {
                **{"pk": LOCK_KEY["pk"]},
                "sk": {"S": ANY},
                "recorded_at": {"S": ANY},
                "outcome": {"S": "failed"},
                "record": {"S": ANY},
            },
        },
    )
    assert apply_steps.record(state, EXECUTION)["result"] == "failed"
