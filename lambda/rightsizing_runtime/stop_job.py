"""StopJob: stop the IR job of an execution that is giving up, was aborted or timed out.

Input: ``{"execution_arn": "...", "reason": "..."}``. Two callers, one shape:

- the workflow's own failure and timeout paths (the job may or may not exist yet);
- the rule on "Step Functions Execution Status Change" (ABORTED, TIMED_OUT): an aborted or
  timed-out Standard execution runs no further state, so it cannot stop its own load test.

The job name is derived from the execution ARN (``job_request.job_name``), so no stored state is
needed to find it (DESIGN.md invariant 6: no orphaned load tests billing). Stopping is idempotent.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from .aws import error_code, retryable_errors_typed, sagemaker_client
from .job_request import job_name

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

sagemaker = sagemaker_client()

# Stopping a job that was never created (ResourceNotFound), or that already finished
# (ValidationException), is not a failure: nothing is left billing.
_NOTHING_TO_STOP = frozenset({"ResourceNotFound", "ValidationException"})


@retryable_errors_typed
def handler(event: dict[str, Any], _context: object = None) -> dict[str, Any]:
    """Stop the job of ``execution_arn``; report whether there was one to stop."""
    execution_arn = event["execution_arn"]
    reason = event.get("reason", "unspecified")
    name = job_name(execution_arn)
    try:
        sagemaker.stop_inference_recommendations_job(JobName=name)
    except ClientError as error:
        if error_code(error) not in _NOTHING_TO_STOP:
            raise
        logger.info("nothing to stop for %s (%s): %s", execution_arn, name, error)
        return {"job_name": name, "stopped": False, "reason": reason}
    logger.info("stopped %s of execution %s: %s", name, execution_arn, reason)
    return {"job_name": name, "stopped": True, "reason": reason}
