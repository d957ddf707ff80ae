"""An Apply run stopped in the middle of an update (StopExecution), end to end: the status-change
event finishes it through the synthesized FinishInterruptedApply rule, or, when that event never
comes, the next run that takes the expired lock restores autoscaling (DESIGN.md invariants 1,
3 and 5; issue 11, item 8)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from tests.e2e.harness import (
    EndpointUpdateStandIn,
    InferenceRecommenderStandIn,
    LocalAws,
    LocalStack,
    local_aws,
)
from tests.e2e.test_apply_workflow import (
    OLD_AUTOSCALING,
    TEMPLATE,
    assert_old_or_new,
    autoscale_endpoint,
    endpoint_state,
    lock_of,
    recommendation,
    records,
)
from tests.e2e.test_recommend_workflow import create_endpoint

pytestmark = pytest.mark.e2e


@pytest.fixture
def updates() -> EndpointUpdateStandIn:
    return EndpointUpdateStandIn()


@pytest.fixture
def stack(updates: EndpointUpdateStandIn) -> Iterator[LocalStack]:
    """The apply_workflow scenarios' stack: fraud-scoring on ml.c5.2xlarge x6, autoscaled."""
    aws: LocalAws
    with local_aws(InferenceRecommenderStandIn(), updates) as aws:
        deployed = LocalStack(aws, TEMPLATE)
        create_endpoint()
        autoscale_endpoint()
        yield deployed


def _stop_mid_update(stack: LocalStack, updates: EndpointUpdateStandIn) -> dict[str, Any]:
    """Start an apply, stop it while the endpoint updates; returns its description."""
    updates.polls_before_done = 10**6  # the update does not end by itself
    sfn = boto3.client("stepfunctions")
    arn = stack._start(
        stack.apply_state_machine_arn,
        "stopped",
        json.dumps(
            {
                "settings": stack.endpoint_input()["apply_settings"],
                "recommendation": recommendation(),
            }
        ),
    )
    deadline = time.monotonic() + 30
    # Stop it while it waits between two polls of the updating endpoint (moto's interpreter,
    # unlike AWS, can end a run FAILED when the stop lands in the middle of a Choice state).
    while not (updates.describes >= 2 and _waiting(sfn, arn)):
        assert time.monotonic() < deadline, "the run never reached the update"
        time.sleep(0.05)
    sfn.stop_execution(executionArn=arn, cause="an operator stopped it")
    description = stack._wait(arn, 30)
    assert description.status == "ABORTED"
    assert "ReleaseLock" not in description.states  # nothing after the stop ran
    # What the stop left: an updating endpoint, its scalable target deregistered, the lock held.
    assert endpoint_state()["autoscaling"] is None
    assert lock_of(stack)["holder"]["S"] == arn  # type: ignore[index]
    return dict(sfn.describe_execution(executionArn=arn))


def _waiting(sfn: Any, arn: str) -> bool:
    """The execution's last event: it entered a Wait state."""
    events = sfn.get_execution_history(executionArn=arn)["events"]
    return bool(events) and events[-1]["type"] == "WaitStateEntered"


def _status_change(execution: dict[str, Any]) -> dict[str, Any]:
    """The "Step Functions Execution Status Change" event AWS sends for ``execution``."""
    now = int(datetime.now(UTC).timestamp() * 1000)
    return {
        "Source": "aws.states",
        "DetailType": "Step Functions Execution Status Change",
        "Resources": [execution["executionArn"]],
        "Detail": json.dumps(
            {
                "executionArn": execution["executionArn"],
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


def test_an_abort_mid_update_is_finished_by_the_status_change_event(
    stack: LocalStack, updates: EndpointUpdateStandIn
) -> None:
    stopped = _stop_mid_update(stack, updates)
    # SageMaker rolls the update back a little later; the event arrives meanwhile.
    updates.outcome = "RolledBack"
    updates.polls_before_done = updates.describes + 2
    boto3.client("events").put_events(Entries=[_status_change(stopped)])

    [cleanup] = stack.deliver()

    # It took the lock over, waited out the update, restored the old autoscaling, recorded.
    assert cleanup.states[:3] == ["CheckApplyInput", "TakeOver", "Repair"]
    assert cleanup.states.count("EnsureAutoscaling") == 1
    assert cleanup.status == "FAILED" and cleanup.error == "RightsizingNotApplied"
    assert assert_old_or_new(endpoint_state()) == "old"
    [record] = records(stack)
    assert record["outcome"] == "failed"
    assert record["reason"].startswith(f"the apply execution {stopped['executionArn']} was ABORTED")
    assert record["before"]["autoscaling"] == OLD_AUTOSCALING
    assert lock_of(stack) is None


def test_without_the_event_the_next_run_restores_the_autoscaling(
    stack: LocalStack, updates: EndpointUpdateStandIn
) -> None:
    stopped = _stop_mid_update(stack, updates)
    # The update finishes on the new config; no status-change event comes; the lock expires.
    updates.polls_before_done = updates.describes
    assert endpoint_state()["instance_type"] == "ml.m5.xlarge"
    boto3.client("dynamodb").update_item(
        TableName=stack.ledger_table,
        Key={"pk": {"S": "endpoint#fraud-scoring"}, "sk": {"S": "lock"}},
        UpdateExpression="SET expires_at = :expired",
        ExpressionAttributeValues={":expired": {"N": "1"}},
    )

    # The same recommendation again: already applied, but without autoscaling.
    execution = stack.run("next", {"recommendation": recommendation()}, machine="apply", limit=30)

    assert execution.status == "SUCCEEDED", execution.cause
    assert "CreateConfig" not in execution.states and "EnsureAutoscaling" in execution.states
    state = endpoint_state()
    assert state["instance_type"] == "ml.m5.xlarge" and state["autoscaling"] == OLD_AUTOSCALING
    [record] = records(stack)
    assert record["outcome"] == "no-change"
    assert record["inherited_from"] == stopped["executionArn"]
    assert lock_of(stack) is None
