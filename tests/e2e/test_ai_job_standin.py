"""The AI recommendation job stand-in (harness.py), through a real boto3 client in local_aws.

The IC workflow's end-to-end tests rely on it answering as SageMaker does: botocore serializes
each request and parses each answer by the service model, so a request or an answer unlike the
API fails here first.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ParamValidationError

from tests.conftest import load_event
from tests.e2e.harness import AiRecommendationStandIn, InferenceRecommenderStandIn, local_aws

pytestmark = pytest.mark.e2e

ROLE = "arn:aws:iam::123456789012:role/rightsizing-ai-job"


def create(sagemaker: Any, name: str = "llama-ic-job", **changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "AIRecommendationJobName": name,
        "ModelSource": {"S3": {"S3Uri": "s3://example-models/llama/"}},
        "OutputConfig": {"S3OutputLocation": "s3://example-rightsizing/ai-recommendations/"},
        "AIWorkloadConfigIdentifier": "llm-workload",
        "PerformanceTarget": {"Constraints": [{"Metric": "ttft-ms"}]},
        "RoleArn": ROLE,
        "InferenceSpecification": {"Framework": "VLLM"},
        "ComputeSpec": {"InstanceTypes": ["ml.g5.2xlarge", "ml.g6.2xlarge"]},
    }
    request.update(changes)
    return dict(sagemaker.create_ai_recommendation_job(**request))


def test_a_job_runs_then_completes_with_the_tests_recommendations() -> None:
    recommendations = load_event("ai_recommendation_job_completed.json")["Recommendations"]
    ai = AiRecommendationStandIn(recommendations=recommendations, polls_before_done=2)
    with local_aws(InferenceRecommenderStandIn(), ai=ai):
        sagemaker = boto3.client("sagemaker")
        arn = create(sagemaker)["AIRecommendationJobArn"]
        assert arn.endswith(":ai-recommendation-job/llama-ic-job")
        statuses = [
            sagemaker.describe_ai_recommendation_job(AIRecommendationJobName="llama-ic-job")[
                "AIRecommendationJobStatus"
            ]
            for _ in range(3)
        ]
        assert statuses == ["InProgress", "InProgress", "Completed"]
        done = sagemaker.describe_ai_recommendation_job(AIRecommendationJobName="llama-ic-job")
    assert done["Recommendations"] == recommendations
    assert done["ComputeSpec"]["InstanceTypes"] == ["ml.g5.2xlarge", "ml.g6.2xlarge"]
    assert done["EndTime"] >= done["CreationTime"]
    assert ai.most_running == 1


def test_a_failed_job_says_why() -> None:
    ai = AiRecommendationStandIn(outcome="Failed", polls_before_done=0)
    with local_aws(InferenceRecommenderStandIn(), ai=ai):
        sagemaker = boto3.client("sagemaker")
        create(sagemaker)
        failed = sagemaker.describe_ai_recommendation_job(AIRecommendationJobName="llama-ic-job")
    assert failed["AIRecommendationJobStatus"] == "Failed"
    assert failed["FailureReason"] == ai.failure_reason
    assert "Recommendations" not in failed


def test_a_stopped_job_is_stopping_then_stopped_and_cannot_be_stopped_again() -> None:
    ai = AiRecommendationStandIn(polls_before_done=None)
    with local_aws(InferenceRecommenderStandIn(), ai=ai):
        sagemaker = boto3.client("sagemaker")
        create(sagemaker)
        sagemaker.stop_ai_recommendation_job(AIRecommendationJobName="llama-ic-job")
        stopped = sagemaker.describe_ai_recommendation_job(AIRecommendationJobName="llama-ic-job")
        with pytest.raises(ClientError) as again:
            sagemaker.stop_ai_recommendation_job(AIRecommendationJobName="llama-ic-job")
    assert stopped["AIRecommendationJobStatus"] == "Stopped"
    assert again.value.response["Error"]["Code"] == "ValidationException"


def test_names_in_use_and_unknown_jobs_are_sagemakers_errors() -> None:
    with local_aws(InferenceRecommenderStandIn(), ai=AiRecommendationStandIn()):
        sagemaker = boto3.client("sagemaker")
        create(sagemaker)
        with pytest.raises(sagemaker.exceptions.ResourceInUse):
            create(sagemaker)
        with pytest.raises(sagemaker.exceptions.ResourceNotFound):
            sagemaker.describe_ai_recommendation_job(AIRecommendationJobName="no-such-job")


def test_every_request_is_validated_against_botocores_model() -> None:
    with local_aws(InferenceRecommenderStandIn(), ai=AiRecommendationStandIn()) as aws:
        sagemaker = boto3.client("sagemaker")
        # The client validates too; the stand-in must refuse what a client that does not
        # (the Step Functions SDK integration) would send.
        with pytest.raises(ParamValidationError):
            aws.ai.handle(
                "CreateAIRecommendationJob",
                {"AIRecommendationJobName": "x", "PerformanceTarget": {"Constraints": []}},
            )
        with pytest.raises(ParamValidationError):
            aws.ai.handle("DescribeAIRecommendationJob", {"AIRecommendationJobName": 7})
        assert sagemaker.list_endpoints()["Endpoints"] == []  # moto still answers the rest


def test_workload_configs_are_created_and_described() -> None:
    spec = {"benchmark": {"type": "aiperf"}, "parameters": {"concurrency": 8}}
    ai = AiRecommendationStandIn(require_workload_config=True)
    with local_aws(InferenceRecommenderStandIn(), ai=ai):
        sagemaker = boto3.client("sagemaker")
        with pytest.raises(sagemaker.exceptions.ResourceNotFound):
            create(sagemaker)
        sagemaker.create_ai_workload_config(
            AIWorkloadConfigName="llm-workload",
            AIWorkloadConfigs={"WorkloadSpec": {"Inline": json.dumps(spec)}},
        )
        described = sagemaker.describe_ai_workload_config(AIWorkloadConfigName="llm-workload")
        create(sagemaker)
    assert json.loads(described["AIWorkloadConfigs"]["WorkloadSpec"]["Inline"]) == spec
    assert described["AIWorkloadConfigArn"].endswith(":ai-workload-config/llm-workload")
