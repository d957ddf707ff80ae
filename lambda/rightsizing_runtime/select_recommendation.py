"""Select: read the finished job, decide, and return the recommendation event's ``detail``.

Input: ``{"settings": <settings document>, "job": {"job_name": ...}}``. Output: the ``detail``
(schema in ``recommendation.py``), which the state machine puts on EventBridge. A job that did not
complete raises :class:`InvalidJobResultError` with IR's failure reason; nothing is recommended.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from .aws import endpoint_not_found, sagemaker_client
from .decision import CurrentConfig, candidates_from_job, current_config_from, decide
from .errors import EndpointNotFoundError
from .recommendation import recommendation_detail
from .settings import EndpointSettings, parse_settings

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

sagemaker = sagemaker_client()


def handler(event: dict[str, Any], _context: object = None) -> dict[str, Any]:
    """Decide on the completed job of this execution."""
    settings = parse_settings(event["settings"])
    name = event["job"]["job_name"]
    description = sagemaker.describe_inference_recommendations_job(JobName=name)
    candidates = candidates_from_job(description)
    current = current_config(settings)
    decision = decide(candidates, settings.decision_input, current)
    logger.info("%s for %s: %s", decision.action, settings.endpoint_name, decision.reason)
    return recommendation_detail(
        decision=decision,
        decision_input=settings.decision_input,
        endpoint_name=settings.endpoint_name,
        variant_name=settings.variant_name,
        job_name=name,
        current=current,
    )


def current_config(settings: EndpointSettings) -> CurrentConfig:
    """What the endpoint's variant runs now, from its current endpoint config."""
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=settings.endpoint_name)
        config = sagemaker.describe_endpoint_config(
            EndpointConfigName=endpoint["EndpointConfigName"]
        )
    except ClientError as error:
        if endpoint_not_found(error):
            raise EndpointNotFoundError(
                f"endpoint {settings.endpoint_name!r} (or its config) no longer exists"
            ) from error
        raise
    return current_config_from(config, settings.variant_name)
