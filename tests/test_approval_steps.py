"""ApplyMode.APPROVAL's steps: what the approver is told, the token in the ledger, the record of a
run that was not approved (Stubber, expected_params on every call, clock frozen)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber
from rightsizing_runtime import apply_steps, approval

from rightsizing_constructs import cli
from tests.test_apply_core import EXECUTION, state
from tests.test_apply_steps import NOW, NOW_SECONDS, expect_record
from tests.test_apply_steps import stubs as stubs  # the fixture

TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAf" + "x" * 40


@pytest.fixture(autouse=True)
def fresh_record_hook() -> Iterator[None]:
    """expect_record's hook has a unique id: the first one registered on the module's client
    would keep the records of an earlier test; each test here registers its own."""

    def drop() -> None:
        apply_steps.dynamodb.meta.events.unregister(
            "provide-client-params.dynamodb.PutItem", unique_id="test-record"
        )

    drop()
    yield
    drop()


APPROVAL_KEY = {"pk": {"S": "endpoint#fraud-scoring"}, "sk": {"S": "approval#AllTraffic"}}


def approval_state(**parts: Any) -> dict[str, Any]:
    """A run of an APPROVAL endpoint (3-day time-out) before its snapshot."""
    current = state(**parts)
    del current["snapshot"]
    current["settings"]["approval_timeout_seconds"] = 3 * 86400
    current["recommendation"]["current"] = {
        "instance_type": "ml.c5.2xlarge",
        "instance_count": 6,
        "estimated_cost_per_hour": 2.448,
    }
    return current


def test_the_request_says_what_changes_and_what_it_saves() -> None:
    now = datetime.fromtimestamp(NOW, UTC)
    asked = approval.request(approval_state(), now)

    assert asked["change"] == {
        "before": {"instance_type": "ml.c5.2xlarge", "instance_count": 6, "cost_per_hour": 2.448},
        "after": {"instance_type": "ml.m5.xlarge", "instance_count": 8, "cost_per_hour": 1.84},
        "estimated_monthly_savings": pytest.approx((2.448 - 1.84) * 730),
        "job_name": "rightsizing-0123456789abcdef01234567",
    }
    assert asked["summary"] == (
        "ml.c5.2xlarge x6 (2.4480 USD/hour) -> ml.m5.xlarge x8 (1.8400 USD/hour); "
        "estimated saving 443.84 USD/month"
    )
    assert asked["approve_command"].startswith(
        "python -m rightsizing_constructs approve --endpoint-name fraud-scoring "
        "--variant-name AllTraffic"
    )
    assert asked["expires_at"] == "2026-11-04T00:00:00Z"


def test_a_components_commands_name_it_so_they_find_its_token() -> None:
    current = approval_state()
    current["settings"]["inference_component_name"] = "llama-ic"
    asked = approval.request(current, datetime.fromtimestamp(NOW, UTC))
    for command in (asked["approve_command"], asked["reject_command"]):
        assert "--variant-name AllTraffic --ledger-table <the engine's ledger table> " in command
        assert "--inference-component-name llama-ic" in command
    # What the command reads is where the run keeps its token.
    parsed = cli._parser().parse_args(
        shlex.split(
            asked["approve_command"]
            .removeprefix("python -m rightsizing_constructs ")
            .replace("<the engine's ledger table>", "Ledger")
        )
    )
    assert approval.sort_key(parsed.variant_name, parsed.inference_component_name) == (
        approval.state_sort_key(current["settings"])
    )


def test_the_token_is_kept_where_the_cli_finds_it(stubs: dict[str, Stubber]) -> None:
    current = approval_state(approval_request={"summary": "a -> b"})
    stubs["dynamodb"].add_response(
        "put_item",
        {},
        {
            "TableName": "ledger",
            "Item": {
                **APPROVAL_KEY,
                "task_token": {"S": TOKEN},
                "execution_arn": {"S": EXECUTION},
                "job_name": {"S": "rightsizing-0123456789abcdef01234567"},
                "requested_at": {"S": "2026-11-01T00:00:00Z"},
                "expires_at": {"N": str(NOW_SECONDS + 3 * 86400)},
                "summary": {"S": "a -> b"},
            },
        },
    )

    event = {"step": "await_approval", "state": current, "execution_arn": EXECUTION}
    assert apply_steps.handler({**event, "task_token": TOKEN}) == {"waiting": True}


def test_an_inference_components_token_is_kept_under_its_own_key(
    stubs: dict[str, Stubber],
) -> None:
    """Two components of one endpoint never overwrite each other's waiting approval."""
    current = approval_state(approval_request={"summary": "4 -> 8 copies"})
    current["settings"]["inference_component_name"] = "llama-ic"
    stubs["dynamodb"].add_response(
        "put_item",
        {},
        {
            "TableName": "ledger",
            "Item": {
                **APPROVAL_KEY,
                "sk": {"S": "approval#AllTraffic#llama-ic"},
                "task_token": {"S": TOKEN},
                "execution_arn": {"S": EXECUTION},
                "job_name": {"S": "rightsizing-0123456789abcdef01234567"},
                "requested_at": {"S": "2026-11-01T00:00:00Z"},
                "expires_at": {"N": str(NOW_SECONDS + 3 * 86400)},
                "summary": {"S": "4 -> 8 copies"},
            },
        },
    )

    event = {"step": "await_approval", "state": current, "execution_arn": EXECUTION}
    assert apply_steps.handler({**event, "task_token": TOKEN}) == {"waiting": True}


def expect_close(stubs: dict[str, Stubber]) -> None:
    stubs["dynamodb"].add_response(
        "delete_item",
        {},
        {
            "TableName": "ledger",
            "Key": APPROVAL_KEY,
            "ConditionExpression": "execution_arn = :me",
            "ExpressionAttributeValues": {":me": {"S": EXECUTION}},
        },
    )


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            {"Error": "ApprovalRejected", "Cause": "not during the sale"},
            "the change was rejected: not during the sale; nothing was changed",
        ),
        (
            {"Error": "States.Timeout", "Cause": None},
            "no approval came before approval_timeout; nothing was changed",
        ),
    ],
)
def test_a_rejected_or_timed_out_approval_records_rejected(
    stubs: dict[str, Stubber], error: dict[str, Any], reason: str
) -> None:
    expect_close(stubs)
    records = expect_record(stubs["dynamodb"], "rejected")

    result = apply_steps.record(approval_state(approval=error), EXECUTION)

    [record] = records
    assert (record["outcome"], record["reason"]) == ("rejected", reason)
    assert record["approval"] == error
    assert record["after"]["instance_type"] is None
    assert result["result"] == "rejected"


def test_a_newer_runs_token_is_not_removed(stubs: dict[str, Stubber]) -> None:
    stubs["dynamodb"].add_client_error(
        "delete_item",
        "ConditionalCheckFailedException",
        expected_params={
            "TableName": "ledger",
            "Key": APPROVAL_KEY,
            "ConditionExpression": "execution_arn = :me",
            "ExpressionAttributeValues": {":me": {"S": EXECUTION}},
        },
    )
    records = expect_record(stubs["dynamodb"], "rejected")
    apply_steps.record(approval_state(approval={"Error": "States.Timeout"}), EXECUTION)
    assert json.dumps(records[0]["approval"]) == '{"Error": "States.Timeout"}'
