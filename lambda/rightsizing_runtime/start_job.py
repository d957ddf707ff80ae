"""StartJob: check the endpoint, then start the Inference Recommender job for one execution.

Input (from the state machine): ``{"settings": <settings document>, "execution_arn": "..."}``.
Output: ``{"job_name", "job_arn"}``.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from .aws import endpoint_not_found, error_code, sagemaker_client
from .errors import EndpointNotFoundError, UnsupportedEndpointError
from .job_request import create_job_request, job_name
from .settings import EndpointSettings, parse_settings

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

sagemaker = sagemaker_client()


def handler(event: dict[str, Any], _context: object = None) -> dict[str, str]:
    """Start (or, on a retried invocation, find) the recommendation job of this execution."""
    settings = parse_settings(event["settings"])
    execution_arn = event["execution_arn"]
    check_endpoint(settings)
    name = job_name(execution_arn)
    try:
        job_arn = sagemaker.create_inference_recommendations_job(
            **create_job_request(settings, name)
        )["JobArn"]
    except ClientError as error:
        if error_code(error) != "ResourceInUse":
            raise
        # A retry of this very invocation: the first attempt created the job. Starting a second
        # load test would bill twice, so reuse it.
        job_arn = sagemaker.describe_inference_recommendations_job(JobName=name)["JobArn"]
        logger.info("job %s already exists for %s; reusing it", name, execution_arn)
    logger.info("started %s for %s/%s", name, settings.endpoint_name, settings.variant_name)
    return {"job_name": name, "job_arn": job_arn}


def check_endpoint(settings: EndpointSettings) -> None:
    """Fail before any load test is paid for when the endpoint or variant is not there."""
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=settings.endpoint_name)
    except ClientError as error:
        if endpoint_not_found(error):
            raise EndpointNotFoundError(
                f"endpoint {settings.endpoint_name!r} does not exist in this account and region"
            ) from error
        raise
    variants = {v["VariantName"]: v for v in endpoint.get("ProductionVariants", [])}
    variant = variants.get(settings.variant_name)
    if variant is None:
        raise UnsupportedEndpointError(
            f"endpoint {settings.endpoint_name!r} has no variant {settings.variant_name!r} "
            f"(it has {', '.join(sorted(variants)) or 'none'})"
        )
    if "CurrentServerlessConfig" in variant:
        raise UnsupportedEndpointError(
            f"variant {settings.variant_name!r} of {settings.endpoint_name!r} is serverless; "
            "only instance-based variants are rightsized"
        )
