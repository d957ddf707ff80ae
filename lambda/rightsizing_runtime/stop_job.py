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
from collections.abc import Callable
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
    # The execution's event does not say whether it ran an IR job or an inference component's
    # AI recommendation job (both named after the execution): stop whichever exists.
    stops: tuple[tuple[str, Callable[[], object]], ...] = (
        ("IR", lambda: sagemaker.stop_inference_recommendations_job(JobName=name)),
        ("AI", lambda: sagemaker.stop_ai_recommendation_job(AIRecommendationJobName=name)),
    )
    # One execution runs one kind: the first that stops ends the search.
    stopped = next((kind for kind, stop in stops if _stop(stop, execution_arn, name)), None)
    if stopped is None:
        return {"job_name": name, "stopped": False, "reason": reason}
    logger.info("stopped %s job %s of execution %s: %s", stopped, name, execution_arn, reason)
    return {"job_name": name, "stopped": True, "reason": reason}


def _stop(stop: Callable[[], object], execution_arn: str, name: str) -> bool:
    """Whether ``stop`` stopped a job; a job never created or already finished is no error."""
    try:
        stop()
    except ClientError as error:
        if error_code(error) not in _NOTHING_TO_STOP:
            raise
        logger.info("nothing to stop for %s (%s): %s", execution_arn, name, error)
        return False
    return True
