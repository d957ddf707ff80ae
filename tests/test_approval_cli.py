"""``approve`` / ``reject``: the calls they make (botocore Stubber, expected_params on each)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from rightsizing_constructs import approval_cli, cli

TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAf" + "x" * 40
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:Apply:run-1"
KEY = {"pk": {"S": "endpoint#fraud-scoring"}, "sk": {"S": "approval#AllTraffic"}}
ITEM = {
    **KEY,
    "task_token": {"S": TOKEN},
    "execution_arn": {"S": EXECUTION},
    "job_name": {"S": "rightsizing-0123"},
}


class Session:
    """A boto3 session whose clients are stubbed (nothing reaches AWS)."""

    def __init__(self) -> None:
        self.clients = {
            name: boto3.client(name, region_name="us-east-1")
            for name in ("dynamodb", "stepfunctions")
        }
        self.stubs = {name: Stubber(client) for name, client in self.clients.items()}

    def client(self, name: str) -> Any:
        return self.clients[name]


@pytest.fixture
def session() -> Iterator[Session]:
    session = Session()
    for stub in session.stubs.values():
        stub.activate()
    yield session
    for stub in session.stubs.values():
        stub.assert_no_pending_responses()
        stub.deactivate()


def parse(*argv: str) -> Any:
    return cli._parser().parse_args(list(argv))


BY_ENDPOINT = ("--endpoint-name", "fraud-scoring", "--ledger-table", "Ledger")


def expect_item(session: Session, item: dict[str, Any] | None = ITEM) -> None:
    session.stubs["dynamodb"].add_response(
        "get_item",
        {"Item": item} if item else {},
        {"TableName": "Ledger", "Key": KEY, "ConsistentRead": True},
    )


def test_approve_reads_the_token_and_sends_task_success(session: Session) -> None:
    expect_item(session)
    session.stubs["stepfunctions"].add_response(
        "send_task_success", {}, {"taskToken": TOKEN, "output": ANY}
    )

    printed = json.loads(approval_cli.answer(parse("approve", *BY_ENDPOINT), session))

    assert printed["answer"] == "approved"
    assert printed["execution_arn"] == EXECUTION
    assert printed["job_name"] == "rightsizing-0123"


def test_an_inference_components_approval_is_its_own(session: Session) -> None:
    """Components of one endpoint each wait under their own key, not the variant's."""
    key = {"pk": {"S": "endpoint#llm"}, "sk": {"S": "approval#AllTraffic#llama-ic"}}
    session.stubs["dynamodb"].add_response(
        "get_item",
        {"Item": {**ITEM, **key}},
        {"TableName": "Ledger", "Key": key, "ConsistentRead": True},
    )
    session.stubs["stepfunctions"].add_response(
        "send_task_success", {}, {"taskToken": TOKEN, "output": ANY}
    )
    args = parse(
        "approve",
        "--endpoint-name",
        "llm",
        "--inference-component-name",
        "llama-ic",
        "--ledger-table",
        "Ledger",
    )

    assert json.loads(approval_cli.answer(args, session))["answer"] == "approved"


def test_reject_sends_task_failure_with_the_reason(session: Session) -> None:
    expect_item(session)
    session.stubs["stepfunctions"].add_response(
        "send_task_failure",
        {},
        {"taskToken": TOKEN, "error": "ApprovalRejected", "cause": "not during the sale"},
    )

    args = parse("reject", *BY_ENDPOINT, "--reason", "not during the sale")
    printed = json.loads(approval_cli.answer(args, session))

    assert printed["answer"] == "rejected"


def test_a_token_given_skips_the_ledger(session: Session) -> None:
    session.stubs["stepfunctions"].add_response(
        "send_task_success", {}, {"taskToken": TOKEN, "output": ANY}
    )
    approval_cli.answer(parse("approve", "--token", TOKEN), session)


def test_nothing_waiting_is_one_clear_error(session: Session) -> None:
    expect_item(session, None)
    with pytest.raises(approval_cli.AnswerError, match="no run waits for approval"):
        approval_cli.answer(parse("approve", *BY_ENDPOINT), session)


def test_a_run_that_stopped_waiting_is_one_clear_error(session: Session) -> None:
    expect_item(session)
    session.stubs["stepfunctions"].add_client_error(
        "send_task_success",
        "TaskTimedOut",
        expected_params={"taskToken": TOKEN, "output": ANY},
    )
    with pytest.raises(approval_cli.AnswerError, match="no longer waits"):
        approval_cli.answer(parse("approve", *BY_ENDPOINT), session)


def test_without_endpoint_or_token_the_command_exits_2(capsys: Any) -> None:
    assert cli.main(["approve", "--endpoint-name", "fraud-scoring"]) == 2
    assert "give --endpoint-name and --ledger-table, or --token" in capsys.readouterr().err
