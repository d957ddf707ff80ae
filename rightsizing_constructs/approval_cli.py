"""``approve`` and ``reject``: answer an Apply run that waits for approval (``ApplyMode.APPROVAL``).

Unlike ``plan`` and ``run``, these call AWS, with the caller's credentials (boto3's default
chain): ``dynamodb:GetItem`` on the engine's ledger table, to read the waiting run's task token
(``pk=endpoint#<name>``, ``sk=approval#<variant>[#<component>]``, written by ``WaitForApproval``
step), and ``states:SendTaskSuccess`` or ``states:SendTaskFailure`` (Step Functions API
Reference: these actions take no resource-level permission; the token itself names the
execution). With ``--token`` the ledger is not read.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from ._runtime import import_runtime

#: The error a rejection sends: the Apply workflow records it as ``rejected``.
REJECTED_ERROR = "ApprovalRejected"
#: SendTaskSuccess/Failure errors that mean the run no longer waits on that token.
_GONE = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}


class AnswerError(Exception):
    """The answer could not be given (no waiting run, a stale token); one line, exit 2."""


def add_commands(commands: Any) -> None:
    """The ``approve`` and ``reject`` sub-commands."""
    for name, what in (
        ("approve", "apply the recommendation the run waits with"),
        ("reject", "reject it: nothing is changed, the ledger records rejected"),
    ):
        command = commands.add_parser(
            name,
            help=f"{what} (ApplyMode.APPROVAL)",
            description=f"Answer an Apply run that waits for approval: {what}.",
        )
        command.add_argument("--endpoint-name", help="the endpoint (as in the construct)")
        command.add_argument("--variant-name", default="AllTraffic", help="default AllTraffic")
        command.add_argument(
            "--inference-component-name",
            help="for an InferenceComponentRightsizing: the component whose run waits",
        )
        command.add_argument(
            "--ledger-table", help="the engine's ledger table (its ledger_table.table_name)"
        )
        command.add_argument(
            "--token", help="the run's task token (instead of reading it from the ledger)"
        )
        if name == "reject":
            command.add_argument(
                "--reason", default="rejected by an approver", help="recorded with the run"
            )


def _waiting(arguments: argparse.Namespace, dynamodb: Any) -> dict[str, Any]:
    """The ledger's approval item of the endpoint variant (token, execution, job)."""
    if not (arguments.endpoint_name and arguments.ledger_table):
        raise AnswerError("give --endpoint-name and --ledger-table, or --token")
    sort_key = import_runtime("approval").sort_key
    key = {
        "pk": {"S": f"endpoint#{arguments.endpoint_name}"},
        "sk": {"S": sort_key(arguments.variant_name, arguments.inference_component_name)},
    }
    item = dynamodb.get_item(TableName=arguments.ledger_table, Key=key, ConsistentRead=True).get(
        "Item"
    )
    if not item:
        raise AnswerError(
            f"no run waits for approval of {arguments.endpoint_name}/"
            f"{arguments.inference_component_name or arguments.variant_name} "
            f"in {arguments.ledger_table} (answered, timed out, or not asked yet)"
        )
    return {name: next(iter(value.values())) for name, value in item.items()}


def answer(arguments: argparse.Namespace, session: Any = None) -> str:
    """Send the approval or the rejection; return what was answered, as JSON."""
    import boto3  # only these commands call AWS
    from botocore.exceptions import ClientError

    session = session or boto3.session.Session()
    if arguments.token:
        waiting: dict[str, Any] = {"task_token": arguments.token}
    else:
        waiting = _waiting(arguments, session.client("dynamodb"))
    states = session.client("stepfunctions")
    answered_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        if arguments.command == "approve":
            states.send_task_success(
                taskToken=waiting["task_token"],
                output=json.dumps({"approved": True, "approved_at": answered_at}),
            )
        else:
            states.send_task_failure(
                taskToken=waiting["task_token"], error=REJECTED_ERROR, cause=arguments.reason
            )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in _GONE:
            raise AnswerError(f"the run no longer waits on this token ({code})") from error
        raise AnswerError(f"{code}: {error}") from error
    return json.dumps(
        {
            "answer": "approved" if arguments.command == "approve" else "rejected",
            "answered_at": answered_at,
            "execution_arn": waiting.get("execution_arn"),
            "job_name": waiting.get("job_name"),
        },
        indent=2,
    )
