"""Build the ``CreateInferenceRecommendationsJob`` request from the settings (pure).

Field names follow botocore's SageMaker service model, not the doc samples (AWS_NOTES.md): the
job type is exactly ``Default`` or ``Advanced``; stopping conditions have no
``CompletionCriteria``; ``ModelLatencyThresholds`` holds exactly one threshold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from .settings import EndpointSettings

#: Every job this library starts is named with this prefix; IAM policies are scoped to it.
JOB_NAME_PREFIX = "rightsizing-"
_JOB_NAME_HASH_CHARS = 24


def job_name(execution_arn: str) -> str:
    """The IR job name for one workflow execution.

    Derived from the execution ARN alone so that (1) a retried StartJob asks for the same name
    and cannot start a second load test, and (2) the clean-up of an aborted or timed-out
    execution finds the job from the execution event without any stored state. At 36 characters
    it stays under the 40 at which IR truncates the names of the resources it derives from the
    job name, so those names stay unique too.
    """
    digest = hashlib.sha256(execution_arn.encode()).hexdigest()[:_JOB_NAME_HASH_CHARS]
    return JOB_NAME_PREFIX + digest


def create_job_request(settings: EndpointSettings, name: str) -> dict[str, Any]:
    """The keyword arguments of ``create_inference_recommendations_job`` for these settings."""
    job = settings.job
    job_type = job["job_type"]
    input_config: dict[str, Any] = _model_input(settings.model)
    request: dict[str, Any] = {
        "JobName": name,
        "JobType": job_type,
        "RoleArn": settings.job_role_arn,
        "InputConfig": input_config,
        # JobDescription is at most 128 characters.
        "JobDescription": (f"rightsizing of {settings.endpoint_name}/{settings.variant_name}")[
            :128
        ],
    }
    if job_type == "Advanced":
        input_config["JobDurationInSeconds"] = int(job["job_duration_seconds"])
        input_config["EndpointConfigurations"] = [
            {"InstanceType": instance_type} for instance_type in job["instance_types"]
        ]
        if job.get("traffic_pattern"):
            input_config["TrafficPattern"] = _traffic_pattern(job["traffic_pattern"])
        resource_limit = _drop_none(
            MaxNumberOfTests=job.get("max_number_of_tests"),
            MaxParallelOfTests=job.get("max_parallel_of_tests"),
        )
        if resource_limit:
            input_config["ResourceLimit"] = resource_limit
        stopping_conditions = _stopping_conditions(job.get("stopping_conditions") or {})
        if stopping_conditions:
            request["StoppingConditions"] = stopping_conditions
    elif job_type != "Default":
        raise ValueError(f"job_type must be 'Default' or 'Advanced', got {job_type!r}")
    return request


def _model_input(model: Mapping[str, Any]) -> dict[str, Any]:
    if "model_package_version_arn" in model:
        return {"ModelPackageVersionArn": model["model_package_version_arn"]}
    container = model["container_config"]
    payload = _drop_none(
        SamplePayloadUrl=container.get("sample_payload_url"),
        SupportedContentTypes=container.get("supported_content_types"),
    )
    container_config = _drop_none(
        Domain=container.get("domain"),
        Task=container.get("task"),
        Framework=container.get("framework"),
        FrameworkVersion=container.get("framework_version"),
        NearestModelName=container.get("nearest_model_name"),
        SupportedInstanceTypes=container.get("supported_instance_types"),
        DataInputConfig=container.get("data_input_config"),
        SupportedResponseMIMETypes=container.get("supported_response_mime_types"),
        PayloadConfig=payload or None,
    )
    return {"ModelName": model["model_name"], "ContainerConfig": container_config}


def _traffic_pattern(pattern: Mapping[str, Any]) -> dict[str, Any]:
    if "phases" in pattern:
        return {
            "TrafficType": "PHASES",
            "Phases": [
                {
                    "InitialNumberOfUsers": phase["initial_number_of_users"],
                    "SpawnRate": phase["spawn_rate"],
                    "DurationInSeconds": phase["duration_seconds"],
                }
                for phase in pattern["phases"]
            ],
        }
    stairs = pattern["stairs"]
    return {
        "TrafficType": "STAIRS",
        "Stairs": {
            "DurationInSeconds": stairs["duration_seconds"],
            "NumberOfSteps": stairs["number_of_steps"],
            "UsersPerStep": stairs["users_per_step"],
        },
    }


def _stopping_conditions(conditions: Mapping[str, Any]) -> dict[str, Any]:
    threshold = conditions.get("model_latency_threshold")
    return _drop_none(
        MaxInvocations=conditions.get("max_invocations"),
        ModelLatencyThresholds=None
        if threshold is None
        else [
            {
                "Percentile": threshold["percentile"],
                "ValueInMilliseconds": int(threshold["value_ms"]),
            }
        ],
        FlatInvocations=conditions.get("flat_invocations"),
    )


def _drop_none(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}
