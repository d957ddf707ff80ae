"""An inference component's run: prepare it, start its AI recommendation job, decide.

The StartJob and Select functions hand a settings document with ``"kind":
"inference-component"`` (``InferenceComponentRightsizing``; README, "Inference components") to
this module; the endpoint path's modules (``start_job.py``, ``select_recommendation.py``) keep
IR's jobs. One job per workflow execution, named as IR jobs are (``job_request.job_name``), so a
retried StartJob finds the job it started and the clean-up of an aborted execution finds the job
from the execution's ARN alone (``stop_job.py`` stops either kind).

The requests follow botocore's SageMaker model: ``CreateAIRecommendationJob`` (required
``AIRecommendationJobName``, ``ModelSource``, ``OutputConfig``, ``AIWorkloadConfigIdentifier``,
``PerformanceTarget``, ``RoleArn``), ``DescribeAIRecommendationJob`` and
``DescribeInferenceComponent``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from .aws import endpoint_not_found, error_code
from .component_decision import KIND, candidates_from_ai_job
from .errors import EndpointNotFoundError, UnsupportedEndpointError
from .traffic import CONFIGURED
from .triggers import trigger_from

logger = logging.getLogger(__name__)


def is_component(document: Mapping[str, Any]) -> bool:
    """Whether a settings document (or event detail) is an inference component's."""
    return isinstance(document, Mapping) and document.get("kind") == KIND


Describe = Callable[[str], Mapping[str, Any]]


@dataclass(frozen=True)
class Reads:
    """The SageMaker reads a component's run makes, each by name (the handlers' clients)."""

    endpoint: Describe
    component: Describe
    endpoint_config: Describe
    job: Describe
    #: GPUs of one instance of a SageMaker type (EC2 DescribeInstanceTypes); Select only.
    gpus: Callable[[str], int | None] | None = None


def prepare(event: Mapping[str, Any], reads: Reads) -> dict[str, Any]:
    """The run's settings document: checked against the endpoint and component, trigger resolved.

    Raises before any job is paid for when the endpoint or component is missing, or the
    component is on another endpoint.
    """
    document = event["settings"]
    run = dict(document)
    run["trigger"] = trigger_from(event.get("trigger")).render()
    check_component(document, reads)
    # Peak concurrency is the configured number (measuring it is left to a later version).
    run["peak_source"] = dict(CONFIGURED)
    logger.info(
        "prepared a %s run of %s/%s",
        run["trigger"].get("kind"),
        document["endpoint_name"],
        document["inference_component_name"],
    )
    return run


def check_component(
    document: Mapping[str, Any], reads: Reads
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The endpoint's and the component's descriptions, after checking the endpoint hosts it.

    SageMaker answers a Describe of a missing endpoint with a ValidationException "Could not
    find ..." (``aws.endpoint_not_found``); botocore's model lists no error of its own for
    DescribeInferenceComponent, so a missing component is read the same way.
    """
    endpoint_name = str(document["endpoint_name"])
    component_name = str(document["inference_component_name"])
    try:
        endpoint = dict(reads.endpoint(endpoint_name))
    except ClientError as error:
        if endpoint_not_found(error):
            raise EndpointNotFoundError(
                f"endpoint {endpoint_name!r} does not exist in this account and region"
            ) from error
        raise
    try:
        component = dict(reads.component(component_name))
    except ClientError as error:
        if endpoint_not_found(error):
            raise UnsupportedEndpointError(
                f"inference component {component_name!r} does not exist in this account and region"
            ) from error
        raise
    if component.get("EndpointName") != endpoint_name:
        raise UnsupportedEndpointError(
            f"inference component {component_name!r} is on endpoint "
            f"{component.get('EndpointName')!r}, not {endpoint_name!r}"
        )
    return endpoint, component


def create_job_request(document: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The keyword arguments of ``create_ai_recommendation_job`` for these settings."""
    job = document["job"]
    request: dict[str, Any] = {
        "AIRecommendationJobName": name,
        "ModelSource": {"S3": {"S3Uri": document["model"]["s3_uri"]}},
        "OutputConfig": {"S3OutputLocation": job["output_s3_uri"]},
        "AIWorkloadConfigIdentifier": job["workload_config_name"],
        # One performance target per job (AIRecommendationPerformanceTarget).
        "PerformanceTarget": {"Constraints": [{"Metric": job["objective"]}]},
        "RoleArn": document["job_role_arn"],
        "OptimizeModel": bool(job.get("optimize_model", False)),
    }
    if job.get("framework"):
        request["InferenceSpecification"] = {"Framework": job["framework"]}
    if job.get("instance_types"):
        request["ComputeSpec"] = {"InstanceTypes": list(job["instance_types"])}
    return request


def start(
    document: Mapping[str, Any],
    name: str,
    create_job: Callable[..., Mapping[str, Any]],
    reads: Reads,
) -> dict[str, Any]:
    """Start (or, on a retried invocation, find) the AI recommendation job of this execution."""
    try:
        job_arn = create_job(**create_job_request(document, name))["AIRecommendationJobArn"]
    except ClientError as error:
        if error_code(error) != "ResourceInUse":
            raise
        # A retry of this very invocation: the first attempt created the job; a second would
        # bill twice.
        job_arn = reads.job(name)["AIRecommendationJobArn"]
        logger.info("AI recommendation job %s already exists; reusing it", name)
    logger.info(
        "started %s for %s/%s",
        name,
        document["endpoint_name"],
        document["inference_component_name"],
    )
    return {"job_name": name, "job_arn": job_arn}


def status(name: str, reads: Reads) -> dict[str, str]:
    """``{"status"}`` of the AI recommendation job: one poll of the Recommend workflow.

    ``AIRecommendationJobStatus`` (InProgress, Completed, Failed, Stopping, Stopped) is a
    required member of the output (botocore's SageMaker model).
    """
    return {"status": str(reads.job(name)["AIRecommendationJobStatus"])}


def select(
    document: Mapping[str, Any],
    name: str,
    reads: Reads,
    recommend: Callable[..., dict[str, Any]],
) -> dict[str, Any]:
    """Decide on the completed AI job: the recommendation event's ``detail``."""
    description = reads.job(name)
    # A job that did not complete raises here (with SageMaker's FailureReason), before the
    # endpoint is read.
    candidates_from_ai_job(description)
    endpoint, component = check_component(document, reads)
    config = dict(reads.endpoint_config(str(endpoint["EndpointConfigName"])))
    instance_type = next(
        (
            v.get("InstanceType")
            for v in config.get("ProductionVariants") or []
            if v.get("VariantName") == document["variant_name"]
        ),
        None,
    )
    return recommend(
        description=description,
        inference_component=component,
        endpoint=endpoint,
        endpoint_config=config,
        trigger=document.get("trigger"),
        # The component's own packing (GPUs / accelerators per copy), whatever else the
        # endpoint hosts: its current cost and whether its requirements change.
        gpus_per_instance=None
        if reads.gpus is None or not instance_type
        else reads.gpus(instance_type),
    )
