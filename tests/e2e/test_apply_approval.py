"""ApplyMode.APPROVAL end to end: the synthesized Apply workflow waits in moto's ASL interpreter
(its ``.waitForTaskToken`` callbacks), and the ``approve``/``reject`` commands answer it through
moto's Step Functions with the token they read from the ledger."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rightsizing_constructs import cli
from tests.e2e.harness import (
    EndpointUpdateStandIn,
    Execution,
    InferenceRecommenderStandIn,
    LocalAws,
    LocalStack,
    local_aws,
)
from tests.e2e.test_apply_workflow import (
    TEMPLATE,
    assert_old_or_new,
    autoscale_endpoint,
    endpoint_state,
    lock_of,
    recommendation,
    records,
)
from tests.e2e.test_recommend_workflow import create_endpoint, recommendations

pytestmark = pytest.mark.e2e


@pytest.fixture
def aws() -> Iterator[LocalAws]:
    ir = InferenceRecommenderStandIn(recommendations=recommendations())
    with local_aws(ir, EndpointUpdateStandIn()) as aws:
        yield aws


@pytest.fixture
def stack(aws: LocalAws) -> LocalStack:
    """fraud-scoring, autoscaled, in moto; its apply runs get an approval_timeout (start)."""
    stack = LocalStack(aws, TEMPLATE)
    create_endpoint()
    autoscale_endpoint()
    return stack


def start(stack: LocalStack, name: str, timeout_seconds: int = 60, **overrides: Any) -> str:
    """Start an Apply run of an APPROVAL endpoint (its apply settings carry the time-out)."""
    # A time-out under the construct's 1-minute minimum, given through the apply settings.
    settings = {
        **stack.endpoint_input()["apply_settings"],
        "approval_timeout_seconds": timeout_seconds,
    }
    execution_input = {"settings": settings, "recommendation": recommendation(**overrides)}
    return stack._start(stack.apply_state_machine_arn, name, json.dumps(execution_input))


def waiting(stack: LocalStack, arn: str, limit: float = 30) -> dict[str, Any]:
    """Wait until the run's token is in the ledger; return the approval item."""
    deadline = time.monotonic() + limit
    while True:
        items = stack.ledger_items("approval#")
        if items and items[0]["execution_arn"]["S"] == arn:
            return items[0]
        assert time.monotonic() < deadline, f"{arn} never asked for approval"
        time.sleep(0.2)


def states_of(stack: LocalStack, arn: str) -> list[str]:
    history = stack.sfn.get_execution_history(executionArn=arn)["events"]
    return [
        e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e
    ]


def answer(stack: LocalStack, *command: str) -> int:
    return cli.main(
        [
            *command,
            "--endpoint-name",
            "fraud-scoring",
            "--ledger-table",
            stack.ledger_table,
        ]
    )


def finished(stack: LocalStack, arn: str) -> Execution:
    return stack._wait(arn, 60)


def test_an_approval_run_waits_without_the_lock_and_changes_nothing(stack: LocalStack) -> None:
    arn = start(stack, "waits")

    item = waiting(stack, arn)

    # Still at the wait: nothing applied, no lock held, the token kept with the job.
    assert stack.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    assert states_of(stack, arn)[-1] == "WaitForApproval"
    assert item["job_name"]["S"] == recommendation()["job_name"]
    assert item["task_token"]["S"]
    assert "ml.c5.2xlarge x6" in item["summary"]["S"]
    assert "ml.m5.xlarge x8" in item["summary"]["S"]
    assert lock_of(stack) is None
    assert assert_old_or_new(endpoint_state()) == "old"
    assert records(stack) == []
    assert answer(stack, "reject") == 0  # let it end before the mock goes
    assert finished(stack, arn).status == "SUCCEEDED"


def test_approve_applies_and_releases_the_lock(stack: LocalStack, capsys: Any) -> None:
    arn = start(stack, "approved")
    waiting(stack, arn)

    assert answer(stack, "approve") == 0

    execution = finished(stack, arn)
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.states.index("WaitForApproval") < execution.states.index("AcquireLock")
    assert assert_old_or_new(endpoint_state()) == "new"
    [record] = records(stack)
    assert record["outcome"] == "applied"
    assert record["approval"]["approved"] is True
    assert lock_of(stack) is None
    assert stack.ledger_items("approval#") == []
    printed, _end = json.JSONDecoder().raw_decode(capsys.readouterr().out)
    assert printed["execution_arn"] == arn


def test_reject_records_rejected_and_changes_nothing(stack: LocalStack) -> None:
    arn = start(stack, "rejected")
    waiting(stack, arn)

    assert answer(stack, "reject", "--reason", "not during the sale") == 0

    execution = finished(stack, arn)
    assert execution.status == "SUCCEEDED", execution.cause
    assert "AcquireLock" not in execution.states
    assert assert_old_or_new(endpoint_state()) == "old"
    [record] = records(stack)
    assert record["outcome"] == "rejected"
    # moto 5.2's SendTaskFailure drops ``cause`` (responses.py passes only ``error``): in AWS the
    # reason follows "rejected:"; tests/test_approval_cli.py checks the command sends it.
    assert record["reason"].startswith("the change was rejected")
    assert lock_of(stack) is None
    assert stack.ledger_items("approval#") == []


def test_no_answer_before_the_timeout_records_rejected(stack: LocalStack) -> None:
    arn = start(stack, "timed-out", timeout_seconds=2)

    execution = finished(stack, arn)

    assert execution.status == "SUCCEEDED", execution.cause
    assert "AcquireLock" not in execution.states
    assert assert_old_or_new(endpoint_state()) == "old"
    [record] = records(stack)
    assert record["outcome"] == "rejected"
    assert "approval_timeout" in record["reason"]
    assert lock_of(stack) is None
    assert stack.ledger_items("approval#") == []
    # An answer after the time-out finds nothing waiting.
    assert answer(stack, "approve") == 2


def test_an_auto_run_does_not_wait(stack: LocalStack) -> None:
    execution = stack.run("auto", {"recommendation": recommendation()}, machine="apply")

    assert execution.status == "SUCCEEDED", execution.cause
    assert "WaitForApproval" not in execution.states
    assert execution.states.index("NeedsApproval") < execution.states.index("AcquireLock")


def test_the_wait_blocks_no_other_run_and_approval_judges_the_endpoint_as_it_is(
    stack: LocalStack,
) -> None:
    # GIVEN a run waiting for approval (it holds no lock)
    arn = start(stack, "waiting-first")
    waiting(stack, arn)
    # WHEN another run applies the same change meanwhile (an AUTO run: nothing blocks it)
    other = stack.run("auto-meanwhile", {"recommendation": recommendation()}, machine="apply")
    assert other.status == "SUCCEEDED", other.cause
    assert assert_old_or_new(endpoint_state()) == "new"
    # THEN the approved run reads its snapshot now: nothing left to change
    assert answer(stack, "approve") == 0
    execution = finished(stack, arn)
    assert execution.status == "SUCCEEDED", execution.cause
    assert "CreateConfig" not in execution.states
    outcomes = sorted(r["outcome"] for r in records(stack))
    assert outcomes == ["applied", "no-change"]
    assert assert_old_or_new(endpoint_state()) == "new"
    assert lock_of(stack) is None
