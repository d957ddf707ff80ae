"""Select: read the finished job, decide, and return the recommendation event's ``detail``.

Input: ``{"settings": <settings document>, "job": {"job_name": ...}}``: the run's own job, or
the stored one Prepare chose to reuse (``settings.reuse``). Output: the ``detail``
(schema in ``recommendation.py``), which the state machine puts on EventBridge. A job that did not
complete raises :class:`InvalidJobResultError` with IR's failure reason; nothing is recommended.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from . import component_job
from .aws import CLIENT_CONFIG, endpoint_not_found, retryable_errors_typed, sagemaker_client
from .component_apply import ec2_instance_type, gpus_of
from .component_decision import recommend_component, settings_from
from .decision import candidates_from_job
from .errors import EndpointNotFoundError
from .evidence import MEASURED, gather_evidence, scaling_cross_check
from .metrics import ENDPOINT_NAME, OUTCOME, VARIANT_NAME, emit, run_values
from .recommendation import Measured, recommend
from .settings import EndpointSettings, parse_settings

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

sagemaker = sagemaker_client()
# The benchmark endpoints' per-minute metrics (evidence.py): one GetMetricData per job.
cloudwatch = boto3.client("cloudwatch", config=CLIENT_CONFIG)
# An inference component's instance type's GPUs (its packing): DescribeInstanceTypes.
ec2 = boto3.client("ec2", config=CLIENT_CONFIG)
# What an inference component's decision reads (component_job.py).
COMPONENT_READS = component_job.Reads(
    endpoint=lambda name: sagemaker.describe_endpoint(EndpointName=name),
    component=lambda name: sagemaker.describe_inference_component(InferenceComponentName=name),
    endpoint_config=lambda name: sagemaker.describe_endpoint_config(EndpointConfigName=name),
    job=lambda name: sagemaker.describe_ai_recommendation_job(AIRecommendationJobName=name),
    gpus=lambda instance_type: gpus_of_type(
        ec2.describe_instance_types(InstanceTypes=[ec2_instance_type(instance_type)])
    ),
)


@retryable_errors_typed
def handler(event: dict[str, Any], _context: object = None) -> dict[str, Any]:
    """Decide on the completed job of this execution."""
    name = event["job"]["job_name"]
    if component_job.is_component(event["settings"]):
        return _decide_component(event["settings"], name)
    settings = parse_settings(event["settings"])
    # A job that did not complete raises here, before the endpoint is read.
    description = sagemaker.describe_inference_recommendations_job(JobName=name)
    candidates = candidates_from_job(description)
    evidence = gather_evidence(
        description,
        settings.decision_input.slo,
        read=lambda request: cloudwatch.get_paginator("get_metric_data").paginate(**request),
        now=datetime.now(UTC),
    )
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
        evidence=evidence,
    )
    if detail["evidence"] == MEASURED and detail["autoscaling"] is not None:
        detail["autoscaling_cross_check"] = cross_check(name, detail, settings)
    logger.info(
        "%s for %s (%s: %s): %s",
        detail["action"],
        settings.endpoint_name,
        detail["evidence"],
        detail["evidence_reason"],
        detail["reason"],
    )
    # The run's metrics (README, "Metrics"): an EMF line, no API call.
    emit(
        run_values(detail, description),
        {
            ENDPOINT_NAME: settings.endpoint_name,
            VARIANT_NAME: settings.variant_name,
            OUTCOME: detail["action"],
        },
    )
    return detail


def gpus_of_type(response: Mapping[str, Any]) -> int | None:
    """GPUs of the one type a DescribeInstanceTypes response describes (None: not found)."""
    described = response.get("InstanceTypes") or []
    return gpus_of(described[0]) if described else None


def _decide_component(document: Mapping[str, Any], name: str) -> dict[str, Any]:
    """An inference component's run: its AI recommendation job, decided (component_decision)."""
    settings = settings_from(document)
    detail = component_job.select(
        document,
        name,
        COMPONENT_READS,
        lambda **state: recommend_component(settings=settings, **state),
    )
    logger.info(
        "%s for %s/%s: %s",
        detail["action"],
        document["endpoint_name"],
        document["inference_component_name"],
        detail["reason"],
    )
    # The run's metrics, as for endpoints; the AI job reports no benchmark cost (None).
    emit(
        run_values(detail, {}),
        {
            ENDPOINT_NAME: str(document["endpoint_name"]),
            VARIANT_NAME: str(document["variant_name"]),
            OUTCOME: detail["action"],
        },
    )
    return detail


def cross_check(
    job_name: str, detail: Mapping[str, Any], settings: EndpointSettings
) -> dict[str, Any]:
    """IR's autoscaling recommendation for the chosen candidate, next to the decision's target.

    A second opinion, never a reason to fail: an error is recorded in the cross-check.
    """
    [chosen] = [c for c in detail["candidates"] if c["chosen"]]
    target = detail["autoscaling"]["target_value"]
    peak = math.ceil(settings.decision_input.peak_requests_per_minute)
    try:
        response = sagemaker.get_scaling_configuration_recommendation(
            InferenceRecommendationsJobName=job_name,
            RecommendationId=chosen["recommendation_id"],
            # The expected peak to the endpoint (botocore's ScalingPolicyObjective).
            ScalingPolicyObjective={"MaxInvocationsPerMinute": peak},
        )
    except (ClientError, BotoCoreError) as error:
        return scaling_cross_check(None, target, str(error))
    return scaling_cross_check(response, target)


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
