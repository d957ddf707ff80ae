"""StartJob: prepare a run (endpoint, trigger, model), then start its Inference Recommender job.

Two steps of the Recommend workflow run here (``event["step"]``):

- ``prepare``: ``{"settings", "trigger"}`` -> the run's settings document: the endpoint's
  settings, checked against the endpoint, with ``trigger`` resolved (``triggers.py``) and, for a
  model approval, the approved version as the model IR tests. A version the endpoint does not
  serve raises :class:`ModelMismatchError`: the library never swaps a model silently. With
  ``peak_traffic`` in the settings, the peak is measured (``traffic.py``) and replaces
  ``peak_requests_per_minute``; ``peak_source`` says where the run's peak came from.
- ``start`` (the default): ``{"settings", "execution_arn"}`` -> ``{"job_name", "job_arn"}``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

from .aws import (
    CLIENT_CONFIG,
    endpoint_not_found,
    error_code,
    retryable_errors_typed,
    sagemaker_client,
)
from .errors import EndpointNotFoundError, ModelMismatchError, UnsupportedEndpointError
from .job_request import create_job_request, job_name
from .settings import EndpointSettings, parse_settings
from .traffic import CONFIGURED, resolve_peak
from .triggers import trigger_from

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

sagemaker = sagemaker_client()
cloudwatch = boto3.client("cloudwatch", config=CLIENT_CONFIG)


@retryable_errors_typed
def handler(event: dict[str, Any], _context: object = None) -> dict[str, Any]:
    """Run the ``prepare`` or ``start`` step."""
    if event.get("step") == "prepare":
        return prepare(event)
    return start(event)


def prepare(event: Mapping[str, Any]) -> dict[str, Any]:
    """The run's settings document (see the module docstring)."""
    document = event["settings"]
    settings = parse_settings(document)
    trigger = trigger_from(event.get("trigger"))
    endpoint = check_endpoint(settings)
    run = dict(document)
    run["trigger"] = trigger.render()
    version = trigger.model_package_version_arn
    if version is not None:
        served = served_model_packages(endpoint, settings.variant_name)
        if version not in served:
            raise ModelMismatchError(
                f"{version} was approved, but {settings.endpoint_name}/{settings.variant_name} "
                f"serves {', '.join(sorted(served)) or 'no model package version'}; deploy the "
                "new version first (the next run then rightsizes it). Nothing was changed."
            )
        run["model"] = {"model_package_version_arn": version}
    # -- Peak traffic (#14): measured when the settings ask for it ----------------------------
    run.update(peak_of(settings))
    logger.info("prepared a %s run of %s", trigger.kind, settings.endpoint_name)
    return run


def start(event: Mapping[str, Any]) -> dict[str, Any]:
    """Start (or, on a retried invocation, find) the recommendation job of this execution."""
    settings = parse_settings(event["settings"])
    execution_arn = event["execution_arn"]
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


def peak_of(settings: EndpointSettings) -> dict[str, Any]:
    """``peak_source``, and the measured ``peak_requests_per_minute`` (``traffic.py``)."""
    if settings.peak_traffic is None:
        return {"peak_source": dict(CONFIGURED)}
    return resolve_peak(
        settings.peak_traffic,
        configured=settings.decision_input.peak_requests_per_minute,
        endpoint_name=settings.endpoint_name,
        variant_name=settings.variant_name,
        read=lambda request: cloudwatch.get_paginator("get_metric_data").paginate(**request),
        now=datetime.now(UTC),
    )


def check_endpoint(settings: EndpointSettings) -> dict[str, Any]:
    """The endpoint's description, read before any load test is paid for.

    Raises when the endpoint or variant is not there, or cannot be rightsized.
    """
    try:
        endpoint = dict(sagemaker.describe_endpoint(EndpointName=settings.endpoint_name))
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
    return endpoint


def served_model_packages(endpoint: Mapping[str, Any], variant_name: str) -> set[str]:
    """The model package versions the variant's model is made from (its containers')."""
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model_name = next(
        (
            v.get("ModelName")
            for v in config.get("ProductionVariants", [])
            if v.get("VariantName") == variant_name
        ),
        None,
    )
    if not model_name:
        return set()
    model = sagemaker.describe_model(ModelName=model_name)
    containers = [model.get("PrimaryContainer") or {}, *(model.get("Containers") or [])]
    return {c["ModelPackageName"] for c in containers if c.get("ModelPackageName")}
