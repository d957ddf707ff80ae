"""Select: read the finished job, decide, and return the recommendation event's ``detail``.

Input: ``{"settings": <settings document>, "job": {"job_name": ...}}``: the run's own job, or
the stored one Prepare chose to reuse (``settings.reuse``). Output: the ``detail``
(schema in ``recommendation.py``), which the state machine puts on EventBridge. A job that did not
complete raises :class:`InvalidJobResultError` with IR's failure reason; nothing is recommended.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from .aws import endpoint_not_found, retryable_errors_typed, sagemaker_client
from .decision import candidates_from_job
from .errors import EndpointNotFoundError
from .metrics import ENDPOINT_NAME, OUTCOME, VARIANT_NAME, emit, run_values
from .recommendation import Measured, recommend
from .settings import EndpointSettings, parse_settings

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

sagemaker = sagemaker_client()


@retryable_errors_typed
def handler(event: dict[str, Any], _context: object = None) -> dict[str, Any]:
    """Decide on the completed job of this execution."""
    settings = parse_settings(event["settings"])
    name = event["job"]["job_name"]
    # A job that did not complete raises here, before the endpoint is read.
    job = sagemaker.describe_inference_recommendations_job(JobName=name)
    candidates = candidates_from_job(job)
    detail = recommend(
        candidates=candidates,
        job_name=name,
        decision_input=settings.decision_input,
        endpoint_name=settings.endpoint_name,
        variant_name=settings.variant_name,
        endpoint_config=current_endpoint_config(settings),
        trigger=settings.trigger,
        measured=Measured(
            model_fingerprint=settings.model_fingerprint,
            job_reused=settings.reuse is not None,
            pending=settings.pending,
        ),
        peak_source=settings.peak_source,
    )
    logger.info("%s for %s: %s", detail["action"], settings.endpoint_name, detail["reason"])
    # The run's metrics (README, "Metrics"): an EMF line, no API call.
    emit(
        run_values(detail, job),
        {
            ENDPOINT_NAME: settings.endpoint_name,
            VARIANT_NAME: settings.variant_name,
            OUTCOME: detail["action"],
        },
    )
    return detail


def current_endpoint_config(settings: EndpointSettings) -> dict[str, Any]:
    """The ``DescribeEndpointConfig`` response of the endpoint's current config."""
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=settings.endpoint_name)
        return dict(
            sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        )
    except ClientError as error:
        if endpoint_not_found(error):
            raise EndpointNotFoundError(
                f"endpoint {settings.endpoint_name!r} (or its config) no longer exists"
            ) from error
        raise
