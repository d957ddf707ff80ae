"""An inference component recommended and applied end to end (issue #17's e2e), on moto.

A run request names the endpoint and the component; the synthesized Recommend workflow starts
the AI recommendation job (``AiRecommendationStandIn``, every request validated by botocore's
model), polls it, decides, and puts the recommendation on the bus; the engine's rule, Route and
StartApply hand it to the Apply workflow, which updates the component
(``InferenceComponentStandIn``) and registers its copy autoscaling in moto.

moto's SageMaker accepts no g5 or g6 instance type, so the endpoint runs ``ml.g4dn.12xlarge``
(4 GPUs in moto's EC2) and the stand-in's job recommends that type: an AI job would only
recommend the GPU types of ``AIRecommendationInstanceType``, which the Stubber tests use.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from rightsizing_constructs import AIRecommendationJob, Guardrails, RightsizingEngine
from tests.conftest import load_event
from tests.e2e.harness import (
    AiRecommendationStandIn,
    InferenceComponentStandIn,
    InferenceRecommenderStandIn,
    LocalAws,
    LocalStack,
    local_aws,
)
from tests.e2e.test_component_apply import (
    ENDPOINT,
    INSTANCE_TYPE,
    METRIC,
    NAME,
    OLD_AUTOSCALING,
    component_state,
    create_component,
)
from tests.infra import stack
from tests.test_component_construct import component

pytestmark = pytest.mark.e2e


def _template() -> dict[str, Any]:
    scope = stack()
    engine = RightsizingEngine(scope, "RightsizingEngine", poll_interval=cdk.Duration.seconds(1))
    construct = component(
        scope,
        engine=engine,
        endpoint_name=ENDPOINT,
        inference_component_name=NAME,
        peak_concurrent_requests=12,
        guardrails=Guardrails(max_instances=4),
        # The stand-in's job ends after a few polls: the first poll after a second.
        job=AIRecommendationJob(expected_duration=cdk.Duration.seconds(2)),
    )
    return dict(Template.from_stack(cdk.Stack.of(construct)).to_json())


TEMPLATE = _template()
# The job measured 2 copies on one instance at the workload's 8 requests in flight: 4 per copy.
# 12 at peak, planned at half of that: 6 copies, 3 instances (managed scaling allows 4). The
# component's 4 copies hold 8: it is under-provisioned, and the change costs more.
NEW_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.33.0-lmi15.0.0-cu128"


def recommendations() -> list[dict[str, Any]]:
    """The fixture's first recommendation, on the endpoint's type, TTFT read at the SLO's p95."""
    [first, _] = copy.deepcopy(
        load_event("ai_recommendation_job_completed.json")["Recommendations"]
    )
    first["ModelDetails"]["InstanceDetails"][0]["InstanceType"] = INSTANCE_TYPE
    first["DeploymentConfiguration"]["InstanceType"] = INSTANCE_TYPE
    first["ExpectedPerformance"] = [
        {"Metric": "time_to_first_token", "Stat": "p95", "Value": "310", "Unit": "ms"},
        {"Metric": "cost", "Value": "3.912", "Unit": "USD/hour"},
    ]
    # The job optimized the model (speculative decoding): its container is part of the change.
    first["OptimizationDetails"] = [{"OptimizationType": "SpeculativeDecoding"}]
    first["DeploymentConfiguration"]["EnvironmentVariables"] = {"OPTION_SPECULATIVE_DRAFT": "on"}
    return [first]


@pytest.fixture
def ai() -> AiRecommendationStandIn:
    return AiRecommendationStandIn(recommendations=recommendations())


@pytest.fixture
def components() -> InferenceComponentStandIn:
    return InferenceComponentStandIn()


@pytest.fixture
def aws(ai: AiRecommendationStandIn, components: InferenceComponentStandIn) -> Iterator[LocalAws]:
    with local_aws(InferenceRecommenderStandIn(), ai=ai, components=components) as aws:
        yield aws


@pytest.fixture
def deployed(aws: LocalAws) -> LocalStack:
    deployed = LocalStack(aws, TEMPLATE)
    # 2 x g4dn.12xlarge, 4 copies autoscaled 1..4; managed instance scaling up to 4 instances.
    create_component(managed_max_instances=4)
    return deployed


RUN_REQUEST = {"endpoint_name": ENDPOINT, "inference_component_name": NAME}


def test_a_component_is_recommended_and_applied_with_copy_autoscaling(
    deployed: LocalStack, ai: AiRecommendationStandIn, components: InferenceComponentStandIn
) -> None:
    recommended = deployed.run("ic-run", RUN_REQUEST, limit=90)

    assert recommended.status == "SUCCEEDED", recommended.cause
    assert "DescribeAIJob" in recommended.states
    assert "DescribeJob" not in recommended.states  # no IR job for a component
    [job] = ai.jobs.values()
    assert job.request["AIWorkloadConfigIdentifier"].startswith("rightsizing-test-")
    assert job.request["PerformanceTarget"] == {"Constraints": [{"Metric": "ttft-ms"}]}
    assert deployed.aws.calls_of("sagemaker", "CreateInferenceRecommendationsJob") == 0

    [routed] = deployed.deliver()  # the recommendation, as the engine's rule delivers it
    assert routed.status == "SUCCEEDED", routed.cause
    [applied] = deployed.executions("apply", limit=90)

    assert applied.status == "SUCCEEDED", applied.cause
    state = component_state(components)
    assert state["status"] == "InService"
    assert state["copy_count"] == 6
    # The job's 12 GiB per copy (MinCpuMemoryRequiredInMb), half of the instance's 4 GPUs each
    # (2 copies per instance), and the job's container.
    assert state["specification"]["ComputeResourceRequirements"] == {
        "MinMemoryRequiredInMb": 12288,
        "NumberOfAcceleratorDevicesRequired": 2,
    }
    # The job's image, its variable added to the component's own (which stays).
    assert state["specification"]["Container"] == {
        "Image": NEW_IMAGE,
        "Environment": {"OPTION_MAX_MODEL_LEN": "4096", "OPTION_SPECULATIVE_DRAFT": "on"},
    }
    # Copy autoscaling: 4 requests in flight per copy, planned at half; up to 4 x 2 copies.
    assert state["autoscaling"]["MinCapacity"] == 1
    assert state["autoscaling"]["MaxCapacity"] == 8
    [policy] = state["autoscaling"]["Policies"]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 2.0
    assert tracking["PredefinedMetricSpecification"] == {"PredefinedMetricType": METRIC}
    outcomes = [json.loads(i["record"]["S"])["outcome"] for i in deployed.ledger_items("run#")]
    assert "applied" in outcomes


def test_a_failed_ai_job_changes_nothing_and_is_recorded(
    deployed: LocalStack, ai: AiRecommendationStandIn, components: InferenceComponentStandIn
) -> None:
    ai.outcome = "Failed"

    recommended = deployed.run("ic-failed", RUN_REQUEST, limit=90)

    assert recommended.status == "FAILED"
    assert "Insufficient capacity" in str(recommended.cause)
    assert deployed.executions("apply") == []
    assert components.updates == []
    assert component_state(components)["autoscaling"] == OLD_AUTOSCALING
