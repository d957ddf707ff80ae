"""An inference component's run in the StartJob function: prepare, start and poll its AI job.

Every request goes through the handler's own boto3 client under a Stubber, so botocore checks
each against the SageMaker model (the ``AI...`` members included) and ``expected_params`` pins
it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber
from rightsizing_runtime import select_recommendation, start_job
from rightsizing_runtime.decision import InvalidJobResultError
from rightsizing_runtime.errors import EndpointNotFoundError, UnsupportedEndpointError
from rightsizing_runtime.job_request import job_name

from tests.conftest import load_event
from tests.infra import ACCOUNT, REGION

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
EXECUTION_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:Recommend:run-1"
JOB_NAME = job_name(EXECUTION_ARN)
JOB_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:ai-recommendation-job/{JOB_NAME}"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/JobRole"


def settings(**overrides: Any) -> dict[str, Any]:
    """An inference component's settings document, as InferenceComponentRightsizing writes it."""
    document: dict[str, Any] = {
        "settings_version": 1,
        "kind": "inference-component",
        "endpoint_name": "llm-endpoint",
        "variant_name": "AllTraffic",
        "inference_component_name": "llama-ic",
        "job_role_arn": ROLE_ARN,
        "model": {"s3_uri": "s3://models/llama/"},
        "job": {
            "job_type": "ai-recommendation",
            "workload_config_name": "rightsizing-test-1a2b3c4d",
            "objective": "ttft-ms",
            "instance_types": ["ml.g5.2xlarge", "ml.g6.2xlarge"],
            "output_s3_uri": "s3://results/rightsizing/",
            "framework": "VLLM",
            "optimize_model": False,
            "workload_concurrency": 8,
        },
        "slo": {"metric": "ttft", "percentile": "p95", "max_latency_ms": 500},
        "peak_concurrent_requests": 40,
        "target_utilization": 0.5,
        "guardrails": {
            "min_instances": 1,
            "max_instances": 4,
            "allowed_instance_types": [],
            "max_cost_per_hour": None,
            "min_saving_percent": 0,
            "min_saving_per_month": 0,
            "min_copies": 1,
        },
        "timeout_seconds": 14400,
        "first_poll_seconds": 2400,
        "max_polls": 200,
        "slot_hold_seconds": 18000,
    }
    document.update(overrides)
    return document


@pytest.fixture
def sagemaker() -> Iterator[Stubber]:
    with Stubber(start_job.sagemaker) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def endpoint_response(name: str = "llm-endpoint") -> dict[str, Any]:
    return {
        "EndpointName": name,
        "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{name}",
        "EndpointConfigName": f"{name}-config-1",
        "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": 2}],
        "EndpointStatus": "InService",
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
    }


def component_response(endpoint_name: str = "llm-endpoint") -> dict[str, Any]:
    return {
        "InferenceComponentName": "llama-ic",
        "InferenceComponentArn": (
            f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:inference-component/llama-ic"
        ),
        "EndpointName": endpoint_name,
        "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{endpoint_name}",
        "VariantName": "AllTraffic",
        "Specification": {
            "ModelName": "llama",
            "ComputeResourceRequirements": {
                "NumberOfAcceleratorDevicesRequired": 1,
                "MinMemoryRequiredInMb": 16384,
            },
        },
        "RuntimeConfig": {"DesiredCopyCount": 4, "CurrentCopyCount": 4},
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
        "InferenceComponentStatus": "InService",
    }


def stub_component(stubber: Stubber, endpoint_name: str = "llm-endpoint") -> None:
    stubber.add_response("describe_endpoint", endpoint_response(), {"EndpointName": "llm-endpoint"})
    stubber.add_response(
        "describe_inference_component",
        component_response(endpoint_name),
        {"InferenceComponentName": "llama-ic"},
    )


CREATE_REQUEST = {
    "AIRecommendationJobName": JOB_NAME,
    "ModelSource": {"S3": {"S3Uri": "s3://models/llama/"}},
    "OutputConfig": {"S3OutputLocation": "s3://results/rightsizing/"},
    "AIWorkloadConfigIdentifier": "rightsizing-test-1a2b3c4d",
    "PerformanceTarget": {"Constraints": [{"Metric": "ttft-ms"}]},
    "RoleArn": ROLE_ARN,
    "OptimizeModel": False,
    "InferenceSpecification": {"Framework": "VLLM"},
    "ComputeSpec": {"InstanceTypes": ["ml.g5.2xlarge", "ml.g6.2xlarge"]},
}


def test_start_creates_the_ai_recommendation_job_of_the_execution(sagemaker: Stubber) -> None:
    sagemaker.add_response(
        "create_ai_recommendation_job", {"AIRecommendationJobArn": JOB_ARN}, CREATE_REQUEST
    )
    result = start_job.handler(
        {"step": "start", "settings": settings(), "execution_arn": EXECUTION_ARN}
    )
    assert result == {"job_name": JOB_NAME, "job_arn": JOB_ARN}


def test_a_job_without_types_or_framework_lets_sagemaker_choose(sagemaker: Stubber) -> None:
    document = settings()
    document["job"] = {**document["job"], "instance_types": [], "framework": None}
    request = {
        k: v
        for k, v in CREATE_REQUEST.items()
        if k not in ("ComputeSpec", "InferenceSpecification")
    }
    sagemaker.add_response(
        "create_ai_recommendation_job", {"AIRecommendationJobArn": JOB_ARN}, request
    )
    start_job.handler({"step": "start", "settings": document, "execution_arn": EXECUTION_ARN})


def test_a_retried_start_finds_its_job_instead_of_paying_twice(sagemaker: Stubber) -> None:
    sagemaker.add_client_error(
        "create_ai_recommendation_job",
        service_error_code="ResourceInUse",
        service_message="already exists",
        expected_params=CREATE_REQUEST,
    )
    sagemaker.add_response(
        "describe_ai_recommendation_job",
        ai_job_description("InProgress"),
        {"AIRecommendationJobName": JOB_NAME},
    )
    result = start_job.handler(
        {"step": "start", "settings": settings(), "execution_arn": EXECUTION_ARN}
    )
    assert result["job_arn"] == JOB_ARN


def ai_job_description(status: str) -> dict[str, Any]:
    return {
        "AIRecommendationJobName": JOB_NAME,
        "AIRecommendationJobArn": JOB_ARN,
        "AIRecommendationJobStatus": status,
        "ModelSource": {"S3": {"S3Uri": "s3://models/llama/"}},
        "OutputConfig": {"S3OutputLocation": "s3://results/rightsizing/"},
        "AIWorkloadConfigIdentifier": "rightsizing-test-1a2b3c4d",
        "RoleArn": ROLE_ARN,
        "CreationTime": NOW,
    }


@pytest.mark.parametrize("status", ["InProgress", "Completed", "Failed", "Stopped"])
def test_status_is_one_poll_of_the_job(sagemaker: Stubber, status: str) -> None:
    sagemaker.add_response(
        "describe_ai_recommendation_job",
        ai_job_description(status),
        {"AIRecommendationJobName": JOB_NAME},
    )
    result = start_job.handler(
        {"step": "status", "settings": settings(), "job": {"job_name": JOB_NAME}}
    )
    assert result == {"status": status}


def test_prepare_checks_the_component_and_resolves_the_trigger(sagemaker: Stubber) -> None:
    stub_component(sagemaker)
    run = start_job.handler({"step": "prepare", "settings": settings(), "trigger": None})
    assert run["trigger"]["kind"] == "manual"
    assert run["peak_source"]["kind"] == "configured"
    # Nothing of an endpoint's run (model fingerprints, reuse, pending) is made up for it.
    assert "reuse" not in run and "model_fingerprint" not in run


def test_prepare_refuses_a_missing_endpoint_before_any_job(sagemaker: Stubber) -> None:
    sagemaker.add_client_error(
        "describe_endpoint",
        service_error_code="ValidationException",
        service_message='Could not find endpoint "llm-endpoint".',
        expected_params={"EndpointName": "llm-endpoint"},
    )
    with pytest.raises(EndpointNotFoundError, match="'llm-endpoint' does not exist"):
        start_job.handler({"step": "prepare", "settings": settings(), "trigger": None})


def test_prepare_refuses_a_missing_component(sagemaker: Stubber) -> None:
    sagemaker.add_response(
        "describe_endpoint", endpoint_response(), {"EndpointName": "llm-endpoint"}
    )
    sagemaker.add_client_error(
        "describe_inference_component",
        service_error_code="ValidationException",
        service_message='Could not find inference component "llama-ic".',
        expected_params={"InferenceComponentName": "llama-ic"},
    )
    with pytest.raises(UnsupportedEndpointError, match="'llama-ic' does not exist"):
        start_job.handler({"step": "prepare", "settings": settings(), "trigger": None})


def test_prepare_refuses_a_component_on_another_endpoint(sagemaker: Stubber) -> None:
    stub_component(sagemaker, endpoint_name="other-endpoint")
    with pytest.raises(UnsupportedEndpointError, match="is on endpoint 'other-endpoint'"):
        start_job.handler({"step": "prepare", "settings": settings(), "trigger": None})


# -- SelectRecommendation on a component's AI job ---------------------------------------------


@pytest.fixture
def select_sagemaker() -> Iterator[Stubber]:
    with Stubber(select_recommendation.sagemaker) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def select_ec2() -> Iterator[Stubber]:
    """The component's type's GPUs: ml.g5.2xlarge is g5.2xlarge, one NVIDIA A10G."""
    with Stubber(select_recommendation.ec2) as stubber:
        stubber.add_response(
            "describe_instance_types",
            {
                "InstanceTypes": [
                    {
                        "InstanceType": "g5.2xlarge",
                        "GpuInfo": {
                            "Gpus": [{"Name": "A10G", "Manufacturer": "NVIDIA", "Count": 1}]
                        },
                    }
                ]
            },
            {"InstanceTypes": ["g5.2xlarge"]},
        )
        yield stubber
        stubber.assert_no_pending_responses()


def completed_job() -> dict[str, Any]:
    """The AI job fixture as this run's job, its TTFT read at the SLO's p95."""
    job = load_event("ai_recommendation_job_completed.json")
    job["AIRecommendationJobName"], job["AIRecommendationJobArn"] = JOB_NAME, JOB_ARN
    for key in ("CreationTime", "StartTime", "EndTime"):
        job[key] = datetime.fromisoformat(job[key])
    for recommendation in job["Recommendations"]:
        for metric in recommendation["ExpectedPerformance"]:
            if metric.get("Stat") == "p90":
                metric["Stat"] = "p95"
    return job


def endpoint_config_response() -> dict[str, Any]:
    return {
        "EndpointConfigName": "llm-endpoint-config-1",
        "EndpointConfigArn": (
            f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/llm-endpoint-config-1"
        ),
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "InstanceType": "ml.g5.2xlarge",
                "InitialInstanceCount": 2,
                "ManagedInstanceScaling": {
                    "Status": "ENABLED",
                    "MinInstanceCount": 1,
                    "MaxInstanceCount": 4,
                },
            }
        ],
        "CreationTime": NOW,
    }


def stub_select(stubber: Stubber, job: dict[str, Any]) -> None:
    stubber.add_response(
        "describe_ai_recommendation_job", job, {"AIRecommendationJobName": JOB_NAME}
    )
    stubber.add_response("describe_endpoint", endpoint_response(), {"EndpointName": "llm-endpoint"})
    stubber.add_response(
        "describe_inference_component",
        component_response(),
        {"InferenceComponentName": "llama-ic"},
    )
    stubber.add_response(
        "describe_endpoint_config",
        endpoint_config_response(),
        {"EndpointConfigName": "llm-endpoint-config-1"},
    )


def test_select_reports_a_cheaper_type_without_applying_it(
    select_sagemaker: Stubber, select_ec2: Stubber
) -> None:
    # 12 requests in flight at 0.5: g6 (8 per copy, 1 per instance) needs 3 x 0.9776 an hour,
    # g5 (4 per copy, 2 per instance) 3 x 1.515. The endpoint runs g5: a type change needs a
    # new endpoint config, which is not applied to an endpoint hosting components.
    stub_select(select_sagemaker, completed_job())
    document = settings(trigger={"kind": "manual"}, peak_concurrent_requests=12)
    detail = select_recommendation.handler({"settings": document, "job": {"job_name": JOB_NAME}})
    assert detail["kind"] == "inference-component"
    assert detail["inference_component_name"] == "llama-ic"
    assert detail["job_name"] == JOB_NAME
    assert detail["evidence"] == "ai-recommendation"
    assert detail["trigger"] == {"kind": "manual"}
    assert detail["action"] == "no-change"
    assert detail["instance_type"] == "ml.g6.2xlarge"
    assert "ml.g6.2xlarge" in detail["reason"]
    assert detail["inference_component"]["current"]["copy_count"] == 4


def test_select_sizes_the_copies_on_the_endpoints_type(
    select_sagemaker: Stubber, select_ec2: Stubber
) -> None:
    stub_select(select_sagemaker, completed_job())
    document = settings(peak_concurrent_requests=12)
    document["guardrails"] = {**document["guardrails"], "allowed_instance_types": ["ml.g5"]}
    detail = select_recommendation.handler({"settings": document, "job": {"job_name": JOB_NAME}})
    assert detail["action"] == "apply", detail["reason"]
    assert (detail["instance_type"], detail["instance_count"]) == ("ml.g5.2xlarge", 3)
    assert detail["inference_component"]["copy_count"] == 6
    assert detail["inference_component"]["copies_per_instance"] == 2
    assert detail["autoscaling"]["metric"] == (
        "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
    )
    # 4 requests in flight per copy measured, planned at half.
    assert detail["autoscaling"]["target_value"] == 2
    # Now: 4 copies of 1 GPU each on 1-GPU instances, 4 instances' worth (EC2's GpuInfo).
    assert detail["current"]["estimated_cost_per_hour"] == pytest.approx(4 * 1.515)


def test_select_raises_the_jobs_failure_reason_before_reading_the_endpoint(
    select_sagemaker: Stubber,
) -> None:
    failed = {
        **ai_job_description("Failed"),
        "FailureReason": "The model could not be loaded on ml.g5.2xlarge",
    }
    select_sagemaker.add_response(
        "describe_ai_recommendation_job", failed, {"AIRecommendationJobName": JOB_NAME}
    )
    with pytest.raises(InvalidJobResultError, match="could not be loaded"):
        select_recommendation.handler({"settings": settings(), "job": {"job_name": JOB_NAME}})
