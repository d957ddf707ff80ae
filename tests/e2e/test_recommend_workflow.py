"""The synthesized Recommend workflow, executed end to end on this machine (see harness.py)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk.assertions import Template
from botocore.config import Config

from rightsizing_constructs import (
    RECOMMENDATION_DETAIL_TYPE,
    RECOMMENDATION_EVENT_SOURCE,
    RecommenderJob,
)
from tests.conftest import load_event
from tests.e2e.harness import InferenceRecommenderStandIn, LocalAws, LocalStack, local_aws
from tests.infra import rightsizing

pytestmark = pytest.mark.e2e

#: The stand-in's jobs end after a few polls, not minutes: the first poll comes after 1 second.
QUICK_JOB = RecommenderJob.default(expected_duration=cdk.Duration.seconds(2))


def synthesized(**overrides: Any) -> dict[str, Any]:
    """The template of one EndpointRightsizing with a 1-second poll (Wait states really wait),
    and a job expected to take 2 seconds: the first poll after 1 second, as every later one."""
    settings: dict[str, Any] = {"poll_interval": cdk.Duration.seconds(1), "job": QUICK_JOB}
    settings.update(overrides)
    construct = rightsizing(**settings)
    return Template.from_stack(cdk.Stack.of(construct)).to_json()


TEMPLATE = synthesized()


def recommendations() -> list[dict[str, Any]]:
    """The docs sample's candidate (ml.c5.xlarge, 648 rpm, 263.596 ms) and an ml.m5.xlarge."""
    [c5] = load_event("ir_job_completed_docs_sample.json")["InferenceRecommendations"]
    m5 = copy.deepcopy(c5)
    m5["RecommendationId"] = "m5"
    m5["EndpointConfiguration"]["InstanceType"] = "ml.m5.xlarge"
    m5["Metrics"].update(CostPerHour=0.23, MaxInvocations=900, ModelLatency=120000)
    return [c5, m5]


def create_endpoint(instance_type: str = "ml.c5.2xlarge", count: int = 6) -> None:
    """The endpoint being rightsized, in moto."""
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model(
        ModelName="fraud-model",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/model",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/fraud:3"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="fraud-scoring-config-1",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "fraud-model",
                "InstanceType": instance_type,
                "InitialInstanceCount": count,
            }
        ],
    )
    sagemaker.create_endpoint(
        EndpointName="fraud-scoring", EndpointConfigName="fraud-scoring-config-1"
    )


RECOMMENDATIONS_PATTERN = {
    "source": [RECOMMENDATION_EVENT_SOURCE],
    "detail-type": [RECOMMENDATION_DETAIL_TYPE],
}


@pytest.fixture
def ir() -> InferenceRecommenderStandIn:
    return InferenceRecommenderStandIn(recommendations=recommendations())


@pytest.fixture
def aws(ir: InferenceRecommenderStandIn) -> Iterator[LocalAws]:
    with local_aws(ir) as aws:
        yield aws


@pytest.fixture
def stack(aws: LocalAws) -> LocalStack:
    return LocalStack(aws, TEMPLATE)


def test_happy_path_puts_the_recommendation_event(
    stack: LocalStack, ir: InferenceRecommenderStandIn
) -> None:
    create_endpoint()
    events = stack.route_events("recommendations", RECOMMENDATIONS_PATTERN)
    notifications = stack.subscribe_queue("notifications")

    execution = stack.run("happy")

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.states.count("DescribeJob") == 3  # IN_PROGRESS, IN_PROGRESS, COMPLETED
    assert execution.states[-4:] == [
        "PutRecommendationEvent",
        "RecordRecommendation",
        "NotifyRecommendation",
        "Done",
    ]
    [job] = ir.jobs.values()
    assert job.request["JobType"] == "Default"
    [event] = stack.messages(events)
    detail = event["detail"]
    # ml.m5.xlarge: ceil(3240 / 450) = 8 x 0.23 = 1.84/h beats ml.c5.xlarge 10 x 0.204 = 2.04/h.
    assert (detail["action"], detail["instance_type"], detail["instance_count"]) == (
        "apply",
        "ml.m5.xlarge",
        8,
    )
    assert detail["current"]["instance_type"] == "ml.c5.2xlarge"
    [notification] = stack.messages(notifications)
    assert notification["action"] == "apply" and notification["endpoint_name"] == "fraud-scoring"


def test_no_candidate_meets_the_slo_is_recorded_as_reject(stack: LocalStack) -> None:
    create_endpoint()
    events = stack.route_events("recommendations", RECOMMENDATIONS_PATTERN)
    # The settings a construct with a 50 ms SLO renders (test_construct pins the rendering).
    endpoint = stack.endpoint_input()
    settings = {**endpoint["settings"], "slo": {"percentile": "P99", "max_latency_ms": 50}}
    strict = {**endpoint, "settings": settings}  # a direct start: no trigger event

    execution = stack.run("strict", strict)

    assert execution.status == "SUCCEEDED", execution.cause
    [event] = stack.messages(events)
    assert event["detail"]["action"] == "reject"
    assert event["detail"]["instance_type"] is None
    assert "exceeds the P99 SLO of 50 ms" in event["detail"]["reason"]
    # The decision record (DESIGN.md invariant 5).
    [record] = stack.ledger_items("recommendation#")
    assert record["outcome"]["S"] == "reject"
    assert json.loads(record["record"]["S"])["candidates"]


def test_a_measured_peak_is_what_the_run_sizes_for(stack: LocalStack) -> None:
    """Per-minute Invocations in (moto's) CloudWatch: the run sizes for their peak x growth."""
    create_endpoint()
    events = stack.route_events("recommendations", RECOMMENDATIONS_PATTERN)
    # Uncompressed: the harness reads JSON-protocol bodies (botocore gzips PutMetricData's).
    cloudwatch = boto3.client("cloudwatch", config=Config(disable_request_compression=True))
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    minutes = [now - timedelta(minutes=m) for m in range(2, 24 * 60)]  # a day, whole minutes
    data = [
        {
            "MetricName": "Invocations",
            "Dimensions": [
                {"Name": "EndpointName", "Value": "fraud-scoring"},
                {"Name": "VariantName", "Value": "AllTraffic"},
            ],
            "Timestamp": minute,
            "Value": 500.0 if i == 90 else 300.0,
            "Unit": "None",
        }
        for i, minute in enumerate(minutes)
    ]
    for first in range(0, len(data), 1000):  # PutMetricData takes at most 1,000 values
        cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=data[first : first + 1000])
    # The settings a construct with PeakTraffic.observed(lookback=Duration.days(1),
    # min_history=Duration.hours(12)) renders (test_traffic_construct pins the rendering).
    endpoint = stack.endpoint_input()
    peak_traffic = {
        "source": "observed",
        "lookback_seconds": 86_400,
        "percentile": 100,
        "growth": 1.2,
        "at_least": None,
        "min_history_seconds": 12 * 3600,
    }
    measured = {**endpoint, "settings": {**endpoint["settings"], "peak_traffic": peak_traffic}}

    execution = stack.run("measured", measured)

    assert execution.status == "SUCCEEDED", execution.cause
    [event] = stack.messages(events)
    inputs = event["detail"]["inputs"]
    assert inputs["peak_requests_per_minute"] == 600  # the busiest minute, 500, x 1.2
    assert inputs["peak_source"]["kind"] == "observed", inputs["peak_source"]
    assert inputs["peak_source"]["observed_per_minute"] == 500
    # At 600 rather than the configured 3240: ml.c5.xlarge x2 (0.408/h) beats ml.m5.xlarge x2.
    detail = event["detail"]
    assert (detail["instance_type"], detail["instance_count"]) == ("ml.c5.xlarge", 2)


def test_failed_job_fails_the_run_with_irs_reason(
    stack: LocalStack, ir: InferenceRecommenderStandIn
) -> None:
    create_endpoint()
    ir.outcome = "FAILED"
    notifications = stack.subscribe_queue("notifications")

    execution = stack.run("failed")

    assert execution.status == "FAILED"
    assert execution.error == "InvalidJobResultError"
    assert "ResourceLimitExceeded" in (execution.cause or "")
    assert execution.states[-5:] == [
        "StopJob",
        "ReleaseSlotAfterFailure",
        "RecordFailure",
        "NotifyFailure",
        "Failed",
    ]
    [record] = stack.ledger_items("recommendation#")
    assert record["outcome"]["S"] == "failed"
    assert record["reason"]["S"] == "InvalidJobResultError"
    [notification] = stack.messages(notifications)
    assert notification["error"] == "InvalidJobResultError"
    assert "ResourceLimitExceeded" in notification["cause"]


def test_job_that_never_finishes_is_stopped_when_the_poll_budget_is_spent(
    aws: LocalAws, ir: InferenceRecommenderStandIn
) -> None:
    create_endpoint()
    ir.polls_before_done = None
    stack = LocalStack(aws, synthesized(timeout=cdk.Duration.seconds(3)))

    execution = stack.run("timeout")

    assert execution.status == "FAILED"
    assert execution.error == "JobTimedOut"
    assert "JobTimedOut" in execution.states and "StopJob" in execution.states
    [job] = ir.jobs.values()
    assert job.status == "STOPPED"  # no orphaned load test


def test_unknown_endpoint_fails_before_any_job(
    stack: LocalStack, ir: InferenceRecommenderStandIn
) -> None:
    execution = stack.run("unknown")

    assert execution.status == "FAILED"
    assert execution.error == "EndpointNotFoundError"
    assert ir.jobs == {}


def test_throttling_is_absorbed_by_retries(
    stack: LocalStack, aws: LocalAws, ir: InferenceRecommenderStandIn
) -> None:
    create_endpoint()
    events = stack.route_events("recommendations", RECOMMENDATIONS_PATTERN)
    # The state machine's SDK task and each handler's own calls are throttled. Step Functions
    # makes one call per attempt and names unmodeled errors SageMaker.SageMakerException: only
    # the workflow's own Retry can absorb these three.
    aws.fail_next("sagemaker", "DescribeInferenceRecommendationsJob", "ThrottlingException", 3)
    aws.fail_next("sagemaker", "DescribeEndpoint", "ThrottlingException")
    aws.fail_next("sagemaker", "CreateInferenceRecommendationsJob", "ThrottlingException")

    execution = stack.run("throttled")

    assert execution.status == "SUCCEEDED", execution.cause
    assert all(injected.times == 0 for injected in aws.injected)
    assert len(ir.jobs) == 1
    assert len(stack.messages(events)) == 1


def test_a_job_that_does_not_exist_fails_at_once(
    stack: LocalStack, aws: LocalAws, ir: InferenceRecommenderStandIn
) -> None:
    """The poll's one modeled error is not retried (its name is SageMaker's modeled one)."""
    create_endpoint()
    aws.fail_next("sagemaker", "DescribeInferenceRecommendationsJob", "ResourceNotFound")

    execution = stack.run("vanished")

    assert execution.status == "FAILED"
    assert execution.error == "SageMaker.ResourceNotFoundException"
    assert execution.states.count("DescribeJob") == 1
    assert execution.states[-5:] == [
        "StopJob",
        "ReleaseSlotAfterFailure",
        "RecordFailure",
        "NotifyFailure",
        "Failed",
    ]


def test_abort_rule_matches_aborted_and_timed_out_executions(stack: LocalStack) -> None:
    """The synthesized rule's pattern, on moto's EventBridge: which status changes reach it."""
    [rule] = [
        r
        for k, r in stack.resources.items()
        if r["Type"] == "AWS::Events::Rule" and k.startswith("RightsizingEngineStopOrphanedJob")
    ]
    pattern = rule["Properties"]["EventPattern"]
    pattern["detail"]["stateMachineArn"] = [stack.state_machine_arn]  # the Ref, deployed
    matched = stack.route_events("status-changes", pattern)

    def put(status: str, machine: str) -> None:
        stack.events.put_events(
            Entries=[
                {
                    "Source": "aws.states",
                    "DetailType": "Step Functions Execution Status Change",
                    "Detail": json.dumps(
                        {"status": status, "stateMachineArn": machine, "executionArn": status}
                    ),
                }
            ]
        )

    put("ABORTED", stack.state_machine_arn)
    put("TIMED_OUT", stack.state_machine_arn)
    put("FAILED", stack.state_machine_arn)  # the workflow stopped its job itself
    put("SUCCEEDED", stack.state_machine_arn)
    put("ABORTED", stack.state_machine_arn + "-other")
    delivered = sorted(m["detail"]["executionArn"] for m in stack.messages(matched))
    assert delivered == ["ABORTED", "TIMED_OUT"]
