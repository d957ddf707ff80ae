"""Decisions from the load test's own measurements (issue #15's e2e), on moto.

The IR stand-in's job names its benchmark endpoints and windows (as botocore's model has them:
``EndpointConfiguration.EndpointName``/``VariantName``, ``InvocationStartTime``/
``InvocationEndTime``); the benchmark endpoints' per-minute ``Invocations`` and ``ModelLatency``
are put into moto's CloudWatch, as SageMaker publishes them. The synthesized Recommend workflow
then decides from the measured curves; the same job without metrics falls back to IR's scalars.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.conftest import load_event
from tests.e2e.harness import InferenceRecommenderStandIn, LocalAws, LocalStack, local_aws
from tests.e2e.test_recommend_workflow import (
    RECOMMENDATIONS_PATTERN,
    TEMPLATE,
    create_endpoint,
)

pytestmark = pytest.mark.e2e

# The benchmark ran 13 minutes, ending 20 minutes before the run: stairs to IR's 648 requests
# per minute, with p99 latencies in microseconds (as CloudWatch reports ModelLatency). The SLO
# of the template's endpoint is p99 300 ms: every step meets it, the top one at 291 ms.
RATES = [40, 200, 200, 200, 420, 420, 420, 600, 600, 600, 648, 648, 648]
LATENCIES_US = [
    90_000, 110_000, 120_000, 115_000, 180_000, 190_000, 185_000,
    240_000, 250_000, 245_000, 290_000, 292_000, 291_000,
]  # fmt: skip
BENCHMARK = "bench-c5-xlarge"


@functools.cache
def window() -> tuple[datetime, datetime]:
    """The benchmark's window, fixed once: the job's times and the metrics' minutes must agree
    even when a minute turns between the two (it did, and the first minute moved)."""
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=33)
    return start + timedelta(seconds=30), start + timedelta(minutes=len(RATES))


def recommendations_with_windows() -> list[dict[str, Any]]:
    """The docs' sample candidate (ml.c5.xlarge, 648 rpm), with its benchmark's name and window."""
    [c5] = copy.deepcopy(
        load_event("ir_job_completed_docs_sample.json")["InferenceRecommendations"]
    )
    start, end = window()
    c5["EndpointConfiguration"]["EndpointName"] = BENCHMARK
    c5["InvocationStartTime"] = start.timestamp()
    c5["InvocationEndTime"] = end.timestamp()
    return [c5]


def put_benchmark_metrics() -> None:
    """The benchmark endpoint's per-minute metrics, one value a minute, in moto's CloudWatch."""
    # Uncompressed: the harness reads JSON-protocol bodies (botocore gzips PutMetricData's).
    cloudwatch = boto3.client("cloudwatch", config=Config(disable_request_compression=True))
    first = window()[0].replace(second=0)
    dimensions = [
        {"Name": "EndpointName", "Value": BENCHMARK},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]
    data = [
        {"MetricName": name, "Dimensions": dimensions, "Timestamp": minute, "Value": float(v)}
        for i, (rate, latency) in enumerate(zip(RATES, LATENCIES_US, strict=True))
        for minute in [first + timedelta(minutes=i)]
        for name, v in (("Invocations", rate), ("ModelLatency", latency))
    ]
    cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=data)


@pytest.fixture
def ir() -> InferenceRecommenderStandIn:
    return InferenceRecommenderStandIn(recommendations=recommendations_with_windows())


@pytest.fixture
def aws(ir: InferenceRecommenderStandIn) -> Iterator[LocalAws]:
    with local_aws(ir) as aws:
        yield aws


@pytest.fixture
def stack(aws: LocalAws) -> LocalStack:
    return LocalStack(aws, TEMPLATE)


def decide(stack: LocalStack) -> dict[str, Any]:
    create_endpoint()
    events = stack.route_events("recommendations", RECOMMENDATIONS_PATTERN)
    run = stack.run("measured")
    assert run.status == "SUCCEEDED", run.cause
    [event] = stack.messages(events)
    return dict(event["detail"])


def test_a_job_with_metrics_is_decided_from_the_measured_curve(stack: LocalStack) -> None:
    put_benchmark_metrics()

    detail = decide(stack)

    assert detail["evidence"] == "measured-curve", detail["evidence_reason"]
    [candidate] = detail["candidates"]
    # Sustained within the SLO up to the top step: IR's 648 stands, confirmed by the curve.
    assert candidate["capacity_at_slo"] == 648
    assert candidate["latency_at_peak_ms"] == pytest.approx(291, abs=1)
    assert candidate["unit_check"]["unit"] == "us"  # IR's scalar read as microseconds matches
    # 3240 rpm at 0.5 of 648: 10 instances; IR's scaling advice was read and compared.
    assert (detail["instance_type"], detail["instance_count"]) == ("ml.c5.xlarge", 10)
    cross_check = detail["autoscaling_cross_check"]
    assert (cross_check["ir_target_value"], cross_check["agrees"]) == (324, True)


def test_the_same_job_without_metrics_falls_back_to_irs_summary(stack: LocalStack) -> None:
    detail = decide(stack)

    assert detail["evidence"] == "ir-summary"
    assert detail["evidence_reason"]
    assert (detail["instance_type"], detail["instance_count"]) == ("ml.c5.xlarge", 10)
