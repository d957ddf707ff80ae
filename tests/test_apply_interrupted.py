"""Time-outs and aborts of the Apply workflow (issue 11, item 8): the machine outlives its own
worst case, and a run that is still cut short is finished by the FinishInterruptedApply rule
(templates). The steps behind it (TakeOver, a release that keeps the snapshot, a lock that
passes it on, the cleanup's record) are pinned request by request in test_apply_steps.py."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from rightsizing_constructs import _duration
from tests.infra import definition, endpoint_input, rightsizing


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


#: The longest approval wait an endpoint may ask for (ApplyMode.APPROVAL's 30 days).
_MAX_APPROVAL = 30 * 86400


def _worst_case_of(template: Template, approval_seconds: float = 0) -> float:
    """The longest an Apply run can take, from the synthesized definition alone.

    ``approval_seconds``: how long WaitForApproval waits (its ``TimeoutSecondsPath``); the
    lock is taken after it, so the lock's bound is the worst case without it.
    """
    apply_definition = definition(template, "apply")
    states = apply_definition["States"]
    [function] = [
        f["Properties"]
        for k, f in template.find_resources("AWS::Lambda::Function").items()
        if k.startswith("RightsizingEngineApplyStep")
    ]
    # The update watches loop until their poll counters reach the budgets in these Choices.
    [budget] = [c["NumericGreaterThanEquals"] for c in states["UpdateBudgetSpent"]["Choices"]]
    [component_budget] = [
        c["NumericGreaterThanEquals"] for c in states["ComponentBudgetSpent"]["Choices"]
    ]
    return _duration.worst_case_seconds(
        states,
        apply_definition["StartAt"],
        task_seconds=function["Timeout"],
        loop_bounds={"WaitForUpdate": budget, "WaitForComponent": component_budget},
        path_seconds={"$.settings.approval_timeout_seconds": approval_seconds},
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
    # The machine outlives the longest approval wait too; the lock, taken after it, does not
    # need to (it outlives the run's path from AcquireLock on by the same 2 hours as before).
    assert timeout >= _worst_case_of(template, _MAX_APPROVAL) + 3600
    assert lock >= worst + 2 * 3600


def test_the_default_worst_case_is_what_the_readme_says(template: Template) -> None:
    """README, "Applying a recommendation": about 28 hours with the default 5-minute poll."""
    # 28 h 35 min: the approval path's RequestApproval and AskForApproval (their retries) add
    # half an hour to the 28 h 3 min of the path from AcquireLock on.
    assert 28 * 3600 + 30 * 60 < _worst_case_of(template) < 28 * 3600 + 36 * 60
    # 30 days (the longest approval wait) + 29 h 35 min; the lock: 30 h 35 min.
    assert definition(template, "apply")["TimeoutSeconds"] == 30 * 86400 + 106500
    assert endpoint_input(template)["apply_settings"]["lock_seconds"] == 106500 + 3600


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
    # An inference component's interrupted run is repaired by its own step (issue 17).
    assert states["Repair"]["Choices"] == [
        {
            "And": [
                {"Variable": "$.repair", "BooleanEquals": True},
                {
                    "And": [
                        {"Variable": "$.recommendation.kind", "IsPresent": True},
                        {
                            "Variable": "$.recommendation.kind",
                            "StringEquals": "inference-component",
                        },
                    ]
                },
            ],
            "Next": "EnsureComponentAutoscaling",
        },
        {"Variable": "$.repair", "BooleanEquals": True, "Next": "EnsureAutoscaling"},
    ]
    assert states["Repair"]["Default"] == "Record"
