"""JobSlots: at most K Inference Recommender jobs at once across an engine.

IR jobs stand up real endpoints that count against account quotas, so the Recommend workflow
holds one of K slots from just before it starts its job until the job has ended (or been
stopped). The slots are items in the ledger table (``LEDGER_TABLE_NAME``):
``pk`` ``job-slots#<state machine name>``, ``sk`` ``slot#<i>`` for i in 0..K-1, with the
holding execution's ARN and an expiry.

- ``acquire`` takes a slot that is free, expired (its holder died without releasing it), or
  already held by this execution (so a retried invocation is harmless); when none is, it raises
  :class:`NoJobSlotError` and the state machine waits and asks again: runs queue, none is lost.
- ``release`` deletes whichever slot this execution holds; releasing twice is harmless. The
  workflow releases when its job has ended; the orphaned-job rule releases for executions that
  were aborted or timed out.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.exceptions import ClientError

from .aws import CLIENT_CONFIG, error_code, retryable_errors_typed
from .errors import NoJobSlotError

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

dynamodb = boto3.client("dynamodb", config=CLIENT_CONFIG)

_TAKEN = "ConditionalCheckFailedException"


@retryable_errors_typed
def handler(event: dict[str, Any], _context: object = None) -> dict[str, Any]:
    """``{"action": "acquire" | "release", "execution_arn", "max_concurrent_jobs", ...}``."""
    if event["action"] == "acquire":
        return acquire(event)
    if event["action"] == "release":
        return release(event["execution_arn"], int(event["max_concurrent_jobs"]))
    raise ValueError(f"action must be acquire or release, got {event['action']!r}")


def slots_key(execution_arn: str) -> str:
    """The partition of the slots of the state machine that ``execution_arn`` belongs to."""
    # arn:aws:states:<region>:<account>:execution:<state machine>:<execution>
    return "job-slots#" + execution_arn.split(":")[6]


def acquire(event: Mapping[str, Any]) -> dict[str, Any]:
    """Take a slot for ``execution_arn`` for at most ``hold_seconds``; return its number."""
    execution_arn = event["execution_arn"]
    now = int(time.time())
    for slot in range(int(event["max_concurrent_jobs"])):
        try:
            dynamodb.put_item(
                TableName=_table(),
                Item={
                    "pk": {"S": slots_key(execution_arn)},
                    "sk": {"S": f"slot#{slot}"},
                    "holder": {"S": execution_arn},
                    "expires_at": {"N": str(now + int(event["hold_seconds"]))},
                },
                ConditionExpression=(
                    "attribute_not_exists(pk) OR holder = :me OR expires_at < :now"
                ),
                ExpressionAttributeValues={":me": {"S": execution_arn}, ":now": {"N": str(now)}},
            )
        except ClientError as error:
            if error_code(error) == _TAKEN:
                continue
            raise
        logger.info("%s holds IR job slot %d", execution_arn, slot)
        return {"slot": slot}
    raise NoJobSlotError(
        f"all {event['max_concurrent_jobs']} IR job slots are taken; waiting for one to free up"
    )


def release(execution_arn: str, max_concurrent_jobs: int) -> dict[str, Any]:
    """Free the slot ``execution_arn`` holds, if any."""
    for slot in range(max_concurrent_jobs):
        try:
            dynamodb.delete_item(
                TableName=_table(),
                Key={"pk": {"S": slots_key(execution_arn)}, "sk": {"S": f"slot#{slot}"}},
                ConditionExpression="holder = :me",
                ExpressionAttributeValues={":me": {"S": execution_arn}},
            )
        except ClientError as error:
            if error_code(error) == _TAKEN:
                continue
            raise
        logger.info("%s released IR job slot %d", execution_arn, slot)
        return {"released": slot}
    return {"released": None}


def _table() -> str:
    return os.environ["LEDGER_TABLE_NAME"]
