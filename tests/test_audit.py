"""The utilization audit's runtime: classification, every AWS call (Stubber), batching at scale."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws
from rightsizing_runtime import audit, audit_queries
from rightsizing_runtime.utilization import (
    IDLE,
    INSUFFICIENT_DATA,
    OPTIMIZED,
    OVERPROVISIONED,
    UNDERPROVISIONED,
    Band,
    Capacity,
    History,
    Shape,
    Slo,
    classify,
)

README = Path(__file__).resolve().parents[1] / "README.md"
BAND = Band(low=60, high=80)
SLO = Slo(percentile="p99", max_latency_ms=300)
END = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
START = END - timedelta(days=14)


def history(**overrides: Any) -> History:
    """Two weeks of a healthy, busy variant on a 4-vCPU CPU instance (values as CloudWatch
    reports them: CPU summed over vCPUs)."""
    values: dict[str, Any] = {
        "hours_with_data": 336,
        "invocations": 1_000_000,
        "invocations_per_instance_peak": 500,
        "model_latency_us": 120_000,
        "cpu": 280,  # 70 % per core on 4 vCPUs
        "memory": 70,
    }
    values.update(overrides)
    return History(**values)


FOUR_VCPUS = Shape(vcpus=4)


def judge(h: History, shape: Shape | None = FOUR_VCPUS, **kwargs: Any) -> Any:
    settings: dict[str, Any] = {
        "shape": shape,
        "instance_count": 2,
        "band": BAND,
        "slo": SLO,
        "capacity": Capacity(),
    }
    settings.update(kwargs)
    return classify(h, **settings)


# -- Classification ------------------------------------------------------------------------------


def test_within_the_band_and_the_slo_is_optimized() -> None:
    finding = judge(history())
    assert finding.classification == OPTIMIZED
    assert finding.evidence["cpu_per_core_percent"] == 70


def test_a_multi_core_cpu_instance_is_judged_per_core() -> None:
    # ml.c5.4xlarge, 16 vCPUs: CloudWatch's 400 % is 25 % a core, well below the band.
    finding = judge(history(cpu=400, memory=30), shape=Shape(vcpus=16))
    assert finding.classification == OVERPROVISIONED
    assert finding.evidence["cpu_per_core_percent"] == 25
    assert "cpu_per_core 25.0% below 60%" in finding.reasons
    # Read as one core, 400 % would have looked saturated.
    assert judge(history(cpu=400, memory=30), shape=Shape(vcpus=4)).classification == (
        UNDERPROVISIONED
    )


def test_a_gpu_instance_with_several_gpus_is_judged_per_gpu() -> None:
    # ml.g5.12xlarge: 4 GPUs, 48 vCPUs. 340 % GPU is 85 % per GPU: above the band.
    shape = Shape(vcpus=48, gpus=4)
    busy = judge(history(cpu=1200, memory=50, gpu=340, gpu_memory=200), shape=shape)
    assert busy.classification == UNDERPROVISIONED
    assert busy.evidence["gpu_per_gpu_percent"] == 85
    assert busy.evidence["gpu_memory_per_gpu_percent"] == 50
    assert "gpu_per_gpu 85.0% above 80%" in busy.reasons
    quiet = judge(history(cpu=480, memory=20, gpu=120, gpu_memory=80), shape=shape)
    assert quiet.classification == OVERPROVISIONED  # 30 % per GPU, 10 % per core
    steady = judge(history(cpu=480, memory=20, gpu=280, gpu_memory=80), shape=shape)
    assert steady.classification == OPTIMIZED  # one GPU measure (70 %) in the band


def test_latency_above_the_slo_is_underprovisioned_whatever_the_utilization() -> None:
    finding = judge(history(model_latency_us=450_000, cpu=100, memory=20))
    assert finding.classification == UNDERPROVISIONED
    assert finding.reasons == ("ModelLatency p99 450.0 ms above the SLO of 300 ms",)


def test_peak_above_the_measured_capacity_is_underprovisioned() -> None:
    capacity = Capacity(max_invocations_per_instance_per_minute=400, cost_per_hour=0.2)
    finding = judge(history(invocations_per_instance_peak=520), capacity=capacity)
    assert finding.classification == UNDERPROVISIONED
    assert "above the 400/min the last recommendation measured" in finding.reasons[0]


def test_low_utilization_but_a_peak_near_capacity_is_not_overprovisioned() -> None:
    capacity = Capacity(max_invocations_per_instance_per_minute=600)
    near = judge(history(cpu=100, memory=30, invocations_per_instance_peak=500), capacity=capacity)
    assert near.classification == OPTIMIZED
    far = judge(history(cpu=100, memory=30, invocations_per_instance_peak=100), capacity=capacity)
    assert far.classification == OVERPROVISIONED
    assert "invocations per instance peak 100/min below 60% of the measured 600/min" in (
        far.reasons
    )


def test_an_idle_endpoint_is_flagged_with_its_cost_per_hour() -> None:
    capacity = Capacity(cost_per_hour=1.41)
    finding = judge(history(invocations=0, cpu=8, memory=12), capacity=capacity, instance_count=3)
    assert finding.classification == IDLE
    assert finding.cost_per_hour == 4.23
    assert finding.reasons == ("no invocations in the window (4.23 per hour)",)
    unpriced = judge(history(invocations=None))
    assert unpriced.classification == IDLE
    assert unpriced.cost_per_hour is None


def test_less_than_30_hours_of_data_is_insufficient_never_a_guess() -> None:
    finding = judge(history(hours_with_data=29, cpu=10, memory=5, invocations=0))
    assert finding.classification == INSUFFICIENT_DATA
    assert "29 hours with data" in finding.reasons[0]
    assert judge(history(hours_with_data=30)).classification == OPTIMIZED


def test_an_unknown_instance_shape_is_not_judged() -> None:
    finding = judge(history(memory=None), shape=None)
    assert finding.classification == INSUFFICIENT_DATA
    # Memory needs no shape: it alone is enough to judge.
    assert judge(history(memory=20), shape=None).classification == OVERPROVISIONED


# -- Every call, against botocore's models -------------------------------------------------------


@pytest.fixture
def stubs() -> Iterator[dict[str, Stubber]]:
    clients = {
        name: getattr(audit, name)
        for name in (
            "sagemaker",
            "cloudwatch",
            "ec2",
            "tagging",
            "dynamodb",
            "events",
            "compute_optimizer",
        )
    }
    stubbers = {name: Stubber(client) for name, client in clients.items()}
    for stubber in stubbers.values():
        stubber.activate()
    yield stubbers
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()
        stubber.deactivate()


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGER_TABLE_NAME", "ledger")
    monkeypatch.setenv("EVENT_BUS_NAME", "default")


def settings(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "endpoint_names": [],
        "tags": {},
        "lookback_days": 14,
        "percentile": "p99",
        "band": {"low": 60, "high": 80},
        "slo": None,
        "compute_optimizer": False,
    }
    values.update(overrides)
    return values


def stub_endpoint(stubs: dict[str, Stubber], name: str, instance_type: str, count: int) -> None:
    stubs["sagemaker"].add_response(
        "describe_endpoint",
        {
            "EndpointName": name,
            "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}",
            "EndpointConfigName": f"{name}-config",
            "EndpointStatus": "InService",
            "CreationTime": END,
            "LastModifiedTime": END,
            "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": count}],
        },
        {"EndpointName": name},
    )
    stubs["sagemaker"].add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": f"{name}-config",
            "EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{name}",
            "CreationTime": END,
            "ProductionVariants": [
                {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": instance_type}
            ],
        },
        {"EndpointConfigName": f"{name}-config"},
    )


def recommendation_record(instance_type: str) -> dict[str, Any]:
    """A ledger item as the Recommend workflow writes it (the event detail in ``record``)."""
    detail = {
        "variant_name": "AllTraffic",
        "inputs": {"slo": {"percentile": "P99", "max_latency_ms": 300}},
        "candidates": [
            {
                "instance_type": instance_type,
                "cost_per_hour": 0.204,
                "max_invocations_per_instance_per_minute": 648,
            }
        ],
    }
    return {
        "pk": {"S": "endpoint#fraud-scoring"},
        "sk": {"S": "recommendation#2026-11-20T00:00:00Z#run-1"},
        "record": {"S": json.dumps(detail)},
    }


def metric_result(query_id: str, values: list[float]) -> dict[str, Any]:
    return {
        "Id": query_id,
        "Label": query_id,
        "Timestamps": [END] * len(values),
        "Values": values,
        "StatusCode": "Complete",
    }


def test_named_endpoint_audited_recorded_and_published(
    stubs: dict[str, Stubber], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(audit, "datetime", _FrozenDatetime)
    stub_endpoint(stubs, "fraud-scoring", "ml.c5.xlarge", 2)
    stubs["ec2"].add_response(
        "describe_instance_types",
        {"InstanceTypes": [{"InstanceType": "c5.xlarge", "VCpuInfo": {"DefaultVCpus": 4}}]},
        {"InstanceTypes": ["c5.xlarge"]},
    )
    stubs["dynamodb"].add_response(
        "query",
        {"Items": [recommendation_record("ml.c5.xlarge")]},
        {
            "TableName": "ledger",
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": {"S": "endpoint#fraud-scoring"},
                ":prefix": {"S": "recommendation#"},
            },
            "ScanIndexForward": False,
            "Limit": 10,
        },
    )
    variant = audit_queries.Variant(
        endpoint_name="fraud-scoring",
        variant_name="AllTraffic",
        instance_type="ml.c5.xlarge",
        instance_count=2,
    )
    queries = audit_queries.variant_queries(0, variant, Shape(vcpus=4), SLO, "p99", 14 * 86400)
    stubs["cloudwatch"].add_response(
        "get_metric_data",
        {
            "MetricDataResults": [
                metric_result("v0_hours", [60.0] * 336),
                metric_result("v0_invocations", [2_000_000.0]),
                metric_result("v0_cpu", [100.0]),
                metric_result("v0_memory", [35.0]),
                metric_result("v0_latency", [90_000.0]),
            ]
        },
        {
            "MetricDataQueries": queries,
            "StartTime": START,
            "EndTime": END,
            "ScanBy": "TimestampDescending",
        },
    )
    # The peak: InvocationsPerInstance, Sum per minute, over the last 14 days.
    stubs["cloudwatch"].add_response(
        "get_metric_data",
        {"MetricDataResults": [metric_result("v0_peak", [120.5, 300.0, 0.0, 299.5])]},
        {
            "MetricDataQueries": [
                {
                    "Id": "v0_peak",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/SageMaker",
                            "MetricName": "InvocationsPerInstance",
                            "Dimensions": [
                                {"Name": "EndpointName", "Value": "fraud-scoring"},
                                {"Name": "VariantName", "Value": "AllTraffic"},
                            ],
                        },
                        "Period": 60,
                        "Stat": "Sum",
                    },
                    "ReturnData": True,
                }
            ],
            "StartTime": END - timedelta(days=14),
            "EndTime": END,
            "ScanBy": "TimestampDescending",
        },
    )
    stubs["dynamodb"].add_response(
        "batch_write_item",
        {"UnprocessedItems": {}},
        {
            "RequestItems": {
                "ledger": [
                    {
                        "PutRequest": {
                            "Item": {
                                "pk": {"S": "endpoint#fraud-scoring"},
                                "sk": {"S": f"finding#{END.isoformat()}#AllTraffic"},
                                "classification": {"S": OVERPROVISIONED},
                                "record": ANY,  # the detail, checked as published below
                            }
                        }
                    }
                ]
            }
        },
    )
    stubs["events"].add_response(
        "put_events",
        {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]},
        {
            "Entries": [
                {
                    "Source": "rightsizing-constructs",
                    "DetailType": "Rightsizing Finding",
                    "Detail": ANY,
                    "EventBusName": "default",
                }
            ]
        },
    )
    published: list[dict[str, Any]] = []
    stubs["events"].client.meta.events.register(
        "provide-client-params.events.PutEvents",
        lambda params, **_: published.extend(json.loads(e["Detail"]) for e in params["Entries"]),
    )

    result = audit.handler({"settings": settings(endpoint_names=["fraud-scoring"])})

    assert result["by_classification"] == {OVERPROVISIONED: 1}
    assert emf_counts(capsys.readouterr().out) == {
        "Idle": 0,
        "InsufficientData": 0,
        "Optimized": 0,
        "Overprovisioned": 1,
        "Underprovisioned": 0,
    }
    [finding] = published
    assert finding["classification"] == OVERPROVISIONED
    assert finding["endpoint_name"] == "fraud-scoring"
    assert finding["cost_per_hour"] == 0.408  # IR's 0.204 per hour, 2 instances
    assert finding["evidence"]["cpu_per_core_percent"] == 25
    assert finding["evidence"]["measured_capacity_per_instance"] == 648
    # The largest per-minute Sum of InvocationsPerInstance (not its Maximum, about 1/N).
    assert finding["evidence"]["invocations_per_instance_peak"] == 300.0
    assert finding["evidence"]["slo"] == {"percentile": "p99", "max_latency_ms": 300}
    assert finding["window"] == {"start": START.isoformat(), "end": END.isoformat()}
    assert_documented(finding)


def emf_counts(out: str) -> dict[str, int]:
    """The audit's EMF lines (README, "Metrics"): AuditFindings by Classification, fleet-wide."""
    counts = {}
    for line in out.splitlines():
        document = json.loads(line)
        [directive] = document["_aws"]["CloudWatchMetrics"]
        assert directive == {
            "Namespace": "Rightsizing",
            "Dimensions": [["Classification"]],
            "Metrics": [{"Name": "AuditFindings", "Unit": "Count"}],
        }
        counts[document["Classification"]] = document["AuditFindings"]
    return counts


def assert_documented(finding: dict[str, Any]) -> None:
    """README's "The finding event" names every key of the detail and of its evidence."""
    text = README.read_text()
    section = text[text.index("### The finding event") : text.index("## Review a decision")]
    documented = set(re.findall(r"`([a-z_]+)`", section)) | set(
        re.findall(r"[ ,`]([a-z_]+)[,`]", section)
    )
    missing = [k for k in [*finding, *finding.get("evidence", {})] if k not in documented]
    assert missing == []


class _FrozenDatetime(datetime):
    """``datetime.now`` at END plus some minutes (the audit aligns the window to the hour)."""

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return END + timedelta(minutes=17)


def test_tagged_endpoints_are_found_with_the_tagging_api(stubs: dict[str, Stubber]) -> None:
    stubs["tagging"].add_response(
        "get_resources",
        {
            "PaginationToken": "next",
            "ResourceTagMappingList": [
                {"ResourceARN": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/fraud-scoring"}
            ],
        },
        {
            "ResourceTypeFilters": ["sagemaker:endpoint"],
            "TagFilters": [
                {"Key": "rightsizing", "Values": ["on"]},
                {"Key": "team", "Values": ["risk"]},
            ],
        },
    )
    stubs["tagging"].add_response(
        "get_resources",
        {"PaginationToken": "", "ResourceTagMappingList": []},
        {
            "ResourceTypeFilters": ["sagemaker:endpoint"],
            "TagFilters": [
                {"Key": "rightsizing", "Values": ["on"]},
                {"Key": "team", "Values": ["risk"]},
            ],
            "PaginationToken": "next",
        },
    )
    assert audit.tagged_endpoints({"team": "risk", "rightsizing": "on"}) == ["fraud-scoring"]


def test_without_names_or_tags_every_endpoint_in_service_is_watched(
    stubs: dict[str, Stubber],
) -> None:
    stubs["sagemaker"].add_response(
        "list_endpoints",
        {
            "Endpoints": [_summary("a")],
            "NextToken": "t",
        },
        {"StatusEquals": "InService", "MaxResults": 100},
    )
    stubs["sagemaker"].add_response(
        "list_endpoints",
        {"Endpoints": [_summary("b")]},
        {"StatusEquals": "InService", "MaxResults": 100, "NextToken": "t"},
    )
    stub_endpoint(stubs, "a", "ml.m5.large", 1)
    stub_endpoint(stubs, "b", "ml.g5.12xlarge", 2)
    variants = audit.watched_variants(audit_queries.parse_settings(settings()))
    assert [(v.endpoint_name, v.instance_type, v.instance_count) for v in variants] == [
        ("a", "ml.m5.large", 1),
        ("b", "ml.g5.12xlarge", 2),
    ]


def _summary(name: str) -> dict[str, Any]:
    return {
        "EndpointName": name,
        "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}",
        "CreationTime": END,
        "LastModifiedTime": END,
        "EndpointStatus": "InService",
    }


def test_instance_shapes_come_from_ec2_gpus_included(stubs: dict[str, Stubber]) -> None:
    stubs["ec2"].add_response(
        "describe_instance_types",
        {
            "InstanceTypes": [{"InstanceType": "c5.4xlarge", "VCpuInfo": {"DefaultVCpus": 16}}],
            "NextToken": "page-2",
        },
        {"InstanceTypes": ["c5.4xlarge", "g5.12xlarge"]},
    )
    stubs["ec2"].add_response(
        "describe_instance_types",
        {
            "InstanceTypes": [
                {
                    "InstanceType": "g5.12xlarge",
                    "VCpuInfo": {"DefaultVCpus": 48},
                    "GpuInfo": {"Gpus": [{"Name": "A10G", "Manufacturer": "NVIDIA", "Count": 4}]},
                },
            ]
        },
        {"InstanceTypes": ["c5.4xlarge", "g5.12xlarge"], "NextToken": "page-2"},
    )
    assert audit.instance_shapes({"ml.g5.12xlarge", "ml.c5.4xlarge"}) == {
        "ml.c5.4xlarge": Shape(vcpus=16, gpus=0),
        "ml.g5.12xlarge": Shape(vcpus=48, gpus=4),
    }


def test_an_instance_type_ec2_does_not_know_is_left_out(stubs: dict[str, Stubber]) -> None:
    stubs["ec2"].add_client_error(
        "describe_instance_types",
        "InvalidInstanceType",
        expected_params={"InstanceTypes": ["c5.xlarge", "inf9.xlarge"]},
    )
    stubs["ec2"].add_response(
        "describe_instance_types",
        {"InstanceTypes": [{"InstanceType": "c5.xlarge", "VCpuInfo": {"DefaultVCpus": 4}}]},
        {"InstanceTypes": ["c5.xlarge"]},
    )
    stubs["ec2"].add_client_error(
        "describe_instance_types",
        "InvalidInstanceType",
        expected_params={"InstanceTypes": ["inf9.xlarge"]},
    )
    assert audit.instance_shapes({"ml.c5.xlarge", "ml.inf9.xlarge"}) == {
        "ml.c5.xlarge": Shape(vcpus=4)
    }


def test_compute_optimizer_findings_carry_its_verdict_and_savings(
    stubs: dict[str, Stubber],
) -> None:
    arn = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"
    stubs["compute_optimizer"].add_response(
        "get_ec2_instance_recommendations",
        {
            "instanceRecommendations": [
                {
                    "instanceArn": arn,
                    "instanceName": "trainer",
                    "currentInstanceType": "p3.8xlarge",
                    "finding": "Overprovisioned",
                    "findingReasonCodes": ["GPUOverprovisioned", "CPUOverprovisioned"],
                    "lookBackPeriodInDays": 14.0,
                    "recommendationOptions": [
                        {
                            "instanceType": "p3.2xlarge",
                            "rank": 1,
                            "performanceRisk": 1.0,
                            "savingsOpportunity": {
                                "savingsOpportunityPercentage": 75.0,
                                "estimatedMonthlySavings": {"currency": "USD", "value": 6700.5},
                            },
                        },
                        {"instanceType": "g5.12xlarge", "rank": 2},
                    ],
                }
            ]
        },
        {},
    )
    [finding] = audit.compute_optimizer_findings(END)
    assert finding["resource_type"] == "ec2-instance"
    assert finding["classification"] == "Overprovisioned"
    assert finding["finding_reason_codes"] == ["GPUOverprovisioned", "CPUOverprovisioned"]
    assert finding["top_option"]["instance_type"] == "p3.2xlarge"
    assert finding["estimated_monthly_savings"] == {"currency": "USD", "value": 6700.5}
    assert audit_queries.ledger_key(finding) == f"instance#{arn}"
    assert_documented(finding)


def test_compute_optimizer_not_opted_in_is_a_finding_not_a_crash(
    stubs: dict[str, Stubber],
) -> None:
    stubs["compute_optimizer"].add_client_error(
        "get_ec2_instance_recommendations",
        "OptInRequiredException",
        "The account is not registered for recommendations",
        expected_params={},
    )
    [finding] = audit.compute_optimizer_findings(END)
    assert finding["classification"] == "OptInRequired"
    assert "update-enrollment-status" in finding["reasons"][0]
    assert audit_queries.ledger_key(finding) == "account#compute-optimizer"
    assert_documented(finding)


def test_a_failed_event_entry_fails_the_invocation(stubs: dict[str, Stubber]) -> None:
    stubs["events"].add_response(
        "put_events",
        {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]},
        {"Entries": ANY},
    )
    with pytest.raises(RuntimeError, match="1 finding events not published"):
        audit.publish([{"classification": IDLE}])


# -- GetMetricData at fleet scale ----------------------------------------------------------------


def fleet(size: int) -> list[tuple[audit_queries.Variant, Shape, Slo]]:
    """``size`` endpoints, one in four on a GPU instance (which adds two queries)."""
    return [
        (
            audit_queries.Variant(
                endpoint_name=f"endpoint-{i}",
                variant_name="AllTraffic",
                instance_type="ml.g5.xlarge" if i % 4 == 0 else "ml.c5.xlarge",
                instance_count=2,
            ),
            Shape(vcpus=4, gpus=1 if i % 4 == 0 else 0),
            SLO,
        )
        for i in range(size)
    ]


def count_get_metric_data(read: Any, sizes: tuple[int, ...]) -> dict[int, int]:
    """The GetMetricData calls ``read(fleet, readings)`` makes, against moto's CloudWatch."""
    calls: dict[int, int] = {}
    with mock_aws():
        client = boto3.client("cloudwatch", region_name="us-east-1")
        counted: list[int] = []
        client.meta.events.register(
            "provide-client-params.cloudwatch.GetMetricData",
            lambda params, **_: counted.append(len(params["MetricDataQueries"])),
        )
        saved = audit.cloudwatch
        audit.cloudwatch = client
        try:
            for size in sizes:
                counted.clear()
                readings = audit_queries.Readings()
                read(fleet(size), readings)
                assert all(q <= audit_queries.MAX_QUERIES_PER_CALL for q in counted)
                calls[size] = len(counted)
        finally:
            audit.cloudwatch = saved
    return calls


@pytest.mark.parametrize("lookback_days", [14, 32, 93])
def test_window_calls_grow_with_the_fleet_in_bounded_steps(lookback_days: int) -> None:
    """Measured against moto's CloudWatch: the window's calls for 1 to 500 endpoints (up to 8
    queries per variant, the hourly counts filling the datapoint budget)."""
    start = END - timedelta(days=lookback_days)
    calls = count_get_metric_data(
        lambda variants, readings: audit.read_window(variants, "p99", start, END, readings),
        (1, 10, 100, 250, 500),
    )
    print(f"lookback {lookback_days} days: window GetMetricData calls by endpoints {calls}")
    hours = lookback_days * 24
    per_call = min(
        audit_queries.MAX_QUERIES_PER_CALL // 8,
        audit_queries.MAX_DATAPOINTS_PER_CALL // (hours + 6),
    )
    for size, made in calls.items():
        assert made <= -(-size // per_call) + 1, (size, made)
    assert calls[1] == 1
    assert calls[500] <= 12  # not one call per endpoint: 500 endpoints in about a dozen


def test_peak_calls_hold_five_variants_each() -> None:
    """The per-minute peak over 14 days is 20,160 datapoints a variant: 5 fit in a call's
    100,800, whatever the lookback (measured against moto up to 100 endpoints; 500 counted
    from the same packing)."""
    start = END - timedelta(days=93)
    calls = count_get_metric_data(
        lambda variants, readings: audit.read_peaks(
            [v for v, _, _ in variants], start, END, readings
        ),
        (1, 10, 100),
    )
    assert calls == {1: 1, 10: 2, 100: 20}
    per_variant = audit_queries.peak_datapoints(14 * 86400)
    assert per_variant == 20_160
    packed = list(audit_queries.batches([[{}]] * 500, per_variant))
    assert len(packed) == 100


def test_the_peak_is_read_per_minute_over_the_last_14_days_whatever_the_lookback() -> None:
    """One-minute data is kept 15 days; a 93-day lookback still reads the peak per minute."""
    variant = fleet(1)[0][0]
    query = audit_queries.peak_query(3, variant)
    assert query["Id"] == "v3_peak"
    assert query["MetricStat"]["Period"] == 60
    assert query["MetricStat"]["Stat"] == "Sum"
    assert query["MetricStat"]["Metric"]["MetricName"] == "InvocationsPerInstance"
    window = audit_queries.variant_queries(3, variant, Shape(vcpus=4), SLO, "p99", 93 * 86400)
    metrics = {(q["MetricStat"]["Metric"]["MetricName"], q["MetricStat"]["Stat"]) for q in window}
    assert ("InvocationsPerInstance", "Maximum") not in metrics
    assert all(q["MetricStat"]["Metric"]["MetricName"] != "InvocationsPerInstance" for q in window)


def test_readings_keep_the_largest_minute_across_pages() -> None:
    readings = audit_queries.Readings()
    readings.add("v0_peak", [10.0, 250.25])
    readings.add("v0_peak", [249.0, 251.5, 0.0])
    readings.add("v0_hours", [60.0, 0.0, 59.0])
    readings.add("v0_hours", [60.0])
    readings.add("v0_cpu", [120.0])
    history = readings.history(0)
    assert history.invocations_per_instance_peak == 251.5
    assert history.hours_with_data == 3
    assert history.cpu == 120.0
    assert history.memory is None
    assert readings.history(1).invocations_per_instance_peak is None


def test_latency_the_cloudwatch_percentile_does_not_return_is_said_not_judged() -> None:
    verdict = judge(history(model_latency_us=None))
    assert verdict.classification == OPTIMIZED
    assert verdict.reasons == (
        "utilization within 60-80% and no SLO judged",
        "ModelLatency p99 not returned by CloudWatch: latency not judged",
    )


# -- Inference components and Compute Optimizer's idle endpoints (issue 17) ----------------------

LLM_ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/llm-endpoint"
IDLE_FILTERS = [{"name": "ResourceType", "values": ["SageMakerEndpoint"]}]


def ic_query(query_id: str, namespace: str, metric: str, stat: str, period: int) -> dict[str, Any]:
    """A GetMetricData query of the component ``llama-ic`` as the SageMaker guide names it
    ("SageMaker AI inference component metrics": dimension InferenceComponentName alone)."""
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": metric,
                "Dimensions": [{"Name": "InferenceComponentName", "Value": "llama-ic"}],
            },
            "Period": period,
            "Stat": stat,
        },
        "ReturnData": True,
    }


WINDOW = 14 * 86400
IC_NAMESPACE = "/aws/sagemaker/InferenceComponents"
#: Which statistic of which metric (SageMaker developer guide, "Amazon SageMaker AI metrics in
#: Amazon CloudWatch"): InvocationsPerCopy Sum, ConcurrentRequestsPerCopy Min/Max, Invocations
#: Sum; the normalized utilizations at the audit's percentile.
IC_WINDOW_QUERIES = [
    ic_query("c0_hours", IC_NAMESPACE, "CPUUtilizationNormalized", "SampleCount", 3600),
    ic_query("c0_invocations", "AWS/SageMaker", "Invocations", "Sum", WINDOW),
    ic_query("c0_concurrency", "AWS/SageMaker", "ConcurrentRequestsPerCopy", "Maximum", WINDOW),
    ic_query("c0_cpu", IC_NAMESPACE, "CPUUtilizationNormalized", "p99", WINDOW),
    ic_query("c0_memory", IC_NAMESPACE, "MemoryUtilizationNormalized", "p99", WINDOW),
    ic_query("c0_gpu", IC_NAMESPACE, "GPUUtilizationNormalized", "p99", WINDOW),
    ic_query("c0_gpumemory", IC_NAMESPACE, "GPUMemoryUtilizationNormalized", "p99", WINDOW),
]
IC_PEAK_QUERY = ic_query("c0_peak", "AWS/SageMaker", "InvocationsPerCopy", "Sum", 60)


def describe_component_response(**overrides: Any) -> dict[str, Any]:
    """DescribeInferenceComponent of ``llama-ic`` (botocore's sagemaker model shape)."""
    response: dict[str, Any] = {
        "InferenceComponentName": "llama-ic",
        "InferenceComponentArn": (
            "arn:aws:sagemaker:us-east-1:123456789012:inference-component/llama-ic"
        ),
        "EndpointName": "llm-endpoint",
        "EndpointArn": LLM_ARN,
        "VariantName": "AllTraffic",
        "Specification": {
            "ComputeResourceRequirements": {
                "MinMemoryRequiredInMb": 24576,
                "NumberOfAcceleratorDevicesRequired": 1,
            }
        },
        "RuntimeConfig": {
            "DesiredCopyCount": 4,
            "CurrentCopyCount": 4,
            "PlacementStatus": [{"InstanceType": "ml.g5.12xlarge", "CurrentCopyCount": 4}],
        },
        "CreationTime": END,
        "LastModifiedTime": END,
        "InferenceComponentStatus": "InService",
    }
    response.update(overrides)
    return response


def component_record() -> dict[str, Any]:
    """A component's recommendation in the ledger (issue 17's event detail, in ``record``)."""
    detail = {
        "kind": "inference-component",
        "endpoint_name": "llm-endpoint",
        "variant_name": "AllTraffic",
        "inference_component_name": "llama-ic",
        "inputs": {"slo": {"metric": "ttft", "percentile": "p90", "max_latency_ms": 500}},
        "candidates": [
            {"instance_type": "ml.g6.12xlarge", "copies_per_instance": 4, "capacity_per_copy": 6},
            {"instance_type": "ml.g5.12xlarge", "copies_per_instance": 4, "capacity_per_copy": 4},
        ],
    }
    return {
        "pk": {"S": "endpoint#llm-endpoint"},
        "sk": {"S": "recommendation#2026-11-20T00:00:00Z#run-2"},
        "record": {"S": json.dumps(detail)},
    }


def ledger_query(stubs: dict[str, Stubber], endpoint: str, items: list[dict[str, Any]]) -> None:
    stubs["dynamodb"].add_response(
        "query",
        {"Items": items},
        {
            "TableName": "ledger",
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"endpoint#{endpoint}"},
                ":prefix": {"S": "recommendation#"},
            },
            "ScanIndexForward": False,
            "Limit": 10,
        },
    )


def idle_recommendation(arn: str, **overrides: Any) -> dict[str, Any]:
    """One of GetIdleRecommendations' ``idleRecommendations`` (botocore's model shape)."""
    recommendation: dict[str, Any] = {
        "resourceArn": arn,
        "resourceId": arn.rsplit("/", 1)[-1],
        "resourceType": "SageMakerEndpoint",
        "accountId": "123456789012",
        "finding": "Idle",
        "findingDescription": "No invocations in the lookback period.",
        "savingsOpportunity": {
            "savingsOpportunityPercentage": 100.0,
            "estimatedMonthlySavings": {"currency": "USD", "value": 8244.6},
        },
        "savingsOpportunityAfterDiscounts": {
            "savingsOpportunityPercentage": 100.0,
            "estimatedMonthlySavings": {"currency": "USD", "value": 7420.1},
        },
        "utilizationMetrics": [{"name": "Invocations", "statistic": "Maximum", "value": 0.0}],
        "lookBackPeriodInDays": 14.0,
        "lastRefreshTimestamp": END,
    }
    recommendation.update(overrides)
    return recommendation


def test_components_and_idle_endpoints_are_audited_recorded_and_published(
    stubs: dict[str, Stubber], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handler with inference_components and compute_optimizer_idle: every call in order,
    each with its exact request; three findings on one endpoint, three ledger items."""
    monkeypatch.setattr(audit, "datetime", _FrozenDatetime)
    stub_endpoint(stubs, "llm-endpoint", "ml.g5.12xlarge", 2)
    stubs["ec2"].add_response(
        "describe_instance_types",
        {
            "InstanceTypes": [
                {
                    "InstanceType": "g5.12xlarge",
                    "VCpuInfo": {"DefaultVCpus": 48},
                    "GpuInfo": {"Gpus": [{"Name": "A10G", "Manufacturer": "NVIDIA", "Count": 4}]},
                }
            ]
        },
        {"InstanceTypes": ["g5.12xlarge"]},
    )
    # The endpoint's newest record is its component's: not the variant's capacity.
    ledger_query(stubs, "llm-endpoint", [component_record()])
    variant = audit_queries.Variant(
        endpoint_name="llm-endpoint",
        variant_name="AllTraffic",
        instance_type="ml.g5.12xlarge",
        instance_count=2,
    )
    variant_window = audit_queries.variant_queries(
        0, variant, Shape(vcpus=48, gpus=4), None, "p99", WINDOW
    )
    stubs["cloudwatch"].add_response(
        "get_metric_data",
        {
            "MetricDataResults": [
                metric_result("v0_hours", [60.0] * 336),
                metric_result("v0_invocations", [250_000.0]),
                metric_result("v0_cpu", [480.0]),
                metric_result("v0_memory", [40.0]),
                metric_result("v0_gpu", [120.0]),
                metric_result("v0_gpumemory", [200.0]),
            ]
        },
        {
            "MetricDataQueries": variant_window,
            "StartTime": START,
            "EndTime": END,
            "ScanBy": "TimestampDescending",
        },
    )
    stubs["cloudwatch"].add_response(
        "get_metric_data",
        {"MetricDataResults": [metric_result("v0_peak", [20.0])]},
        {
            "MetricDataQueries": [audit_queries.peak_query(0, variant)],
            "StartTime": START,
            "EndTime": END,
            "ScanBy": "TimestampDescending",
        },
    )
    stubs["sagemaker"].add_response(
        "describe_inference_component",
        describe_component_response(),
        {"InferenceComponentName": "llama-ic"},
    )
    ledger_query(stubs, "llm-endpoint", [component_record()])
    stubs["cloudwatch"].add_response(
        "get_metric_data",
        {
            "MetricDataResults": [
                metric_result("c0_hours", [60.0] * 336),
                metric_result("c0_invocations", [250_000.0]),
                metric_result("c0_concurrency", [6.0]),
                metric_result("c0_cpu", [30.0]),
                metric_result("c0_memory", [55.0]),
                metric_result("c0_gpu", [85.0]),
                metric_result("c0_gpumemory", [70.0]),
            ]
        },
        {
            "MetricDataQueries": IC_WINDOW_QUERIES,
            "StartTime": START,
            "EndTime": END,
            "ScanBy": "TimestampDescending",
        },
    )
    stubs["cloudwatch"].add_response(
        "get_metric_data",
        {"MetricDataResults": [metric_result("c0_peak", [12.0, 40.0, 38.0])]},
        {
            "MetricDataQueries": [IC_PEAK_QUERY],
            "StartTime": END - timedelta(days=14),
            "EndTime": END,
            "ScanBy": "TimestampDescending",
        },
    )
    stubs["compute_optimizer"].add_response(
        "get_idle_recommendations",
        {"idleRecommendations": [idle_recommendation(LLM_ARN)], "nextToken": "page-2"},
        {"filters": IDLE_FILTERS, "maxResults": 100},
    )
    stubs["compute_optimizer"].add_response(
        "get_idle_recommendations",
        {
            "idleRecommendations": [
                idle_recommendation("arn:aws:sagemaker:us-east-1:123456789012:endpoint/other")
            ]
        },
        {"filters": IDLE_FILTERS, "maxResults": 100, "nextToken": "page-2"},
    )
    written: list[dict[str, Any]] = []
    stubs["dynamodb"].client.meta.events.register(
        "provide-client-params.dynamodb.BatchWriteItem",
        lambda params, **_: written.extend(
            r["PutRequest"]["Item"] for r in params["RequestItems"]["ledger"]
        ),
    )
    stubs["dynamodb"].add_response(
        "batch_write_item", {"UnprocessedItems": {}}, {"RequestItems": {"ledger": ANY}}
    )
    stubs["events"].add_response(
        "put_events",
        {"FailedEntryCount": 0, "Entries": [{"EventId": str(i)} for i in range(3)]},
        {"Entries": ANY},
    )
    published: list[dict[str, Any]] = []
    stubs["events"].client.meta.events.register(
        "provide-client-params.events.PutEvents",
        lambda params, **_: published.extend(json.loads(e["Detail"]) for e in params["Entries"]),
    )

    result = audit.handler(
        {
            "settings": settings(
                endpoint_names=["llm-endpoint"],
                inference_components=["llama-ic"],
                compute_optimizer_idle=True,
            )
        }
    )

    assert result["variants"] == 1
    assert result["inference_components"] == 1
    assert result["by_classification"] == {OVERPROVISIONED: 1, UNDERPROVISIONED: 1, IDLE: 1}
    variant_finding, component, idle = published
    assert variant_finding["resource_type"] == "sagemaker-endpoint-variant"
    assert variant_finding["evidence"]["measured_capacity_per_instance"] is None
    assert component["resource_type"] == "sagemaker-inference-component"
    assert component["kind"] == "inference-component"
    # What the engine routes a component's run by (issue 17's identity).
    assert (
        component["endpoint_name"],
        component["variant_name"],
        component["inference_component_name"],
    ) == ("llm-endpoint", "AllTraffic", "llama-ic")
    assert component["classification"] == UNDERPROVISIONED
    assert component["reasons"] == [
        "gpu_normalized 85.0% above 80%",
        "concurrent requests per copy peak 6 above the 4 the last recommendation measured",
    ]
    assert component["copy_count"] == 4
    assert component["instance_type"] == "ml.g5.12xlarge"
    assert component["evidence"]["invocations_per_copy_peak"] == 40.0
    assert component["evidence"]["gpu_normalized_percent"] == 85.0  # not divided by 4 GPUs
    assert idle["source"] == "compute-optimizer"
    assert idle["resource_type"] == "sagemaker-endpoint"
    assert (idle["endpoint_name"], idle["variant_name"]) == ("llm-endpoint", "AllTraffic")
    assert idle["classification"] == IDLE  # what AuditFinding(classifications=["Idle"]) matches
    assert idle["estimated_monthly_savings"] == {"currency": "USD", "value": 8244.6}
    assert idle["estimated_monthly_savings_after_discounts"] == {
        "currency": "USD",
        "value": 7420.1,
    }
    assert idle["last_refresh"] == END.isoformat()
    for finding in published:
        assert_documented(finding)
    # One ledger item each, none overwriting another (same endpoint, variant and window).
    end = END.isoformat()
    assert [(w["pk"]["S"], w["sk"]["S"]) for w in written] == [
        ("endpoint#llm-endpoint", f"finding#{end}#AllTraffic"),
        ("endpoint#llm-endpoint", f"finding#{end}#AllTraffic#inference-component#llama-ic"),
        ("endpoint#llm-endpoint", f"finding#{end}#AllTraffic#compute-optimizer"),
    ]


def test_idle_findings_match_watched_endpoints_whatever_the_case_one_per_variant(
    stubs: dict[str, Stubber],
) -> None:
    """SageMaker lowercases names in ARNs; an endpoint with two instance variants gets two
    findings with the endpoint's saving; unwatched endpoints and other types are left out."""
    stubs["compute_optimizer"].add_response(
        "get_idle_recommendations",
        {
            "idleRecommendations": [
                idle_recommendation("arn:aws:sagemaker:us-east-1:123456789012:endpoint/ab-test"),
                idle_recommendation(
                    "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc",
                    resourceType="EC2Instance",
                ),
                idle_recommendation("arn:aws:sagemaker:us-east-1:123456789012:endpoint/other"),
            ],
            "errors": [
                {
                    "identifier": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/new",
                    "code": "InsufficientData",
                    "message": "not enough data",
                    "resourceType": "SageMakerEndpoint",
                }
            ],
        },
        {"filters": IDLE_FILTERS, "maxResults": 100},
    )
    variants = [
        audit_queries.Variant(
            endpoint_name="AB-Test",
            variant_name=name,
            instance_type="ml.c5.xlarge",
            instance_count=1,
        )
        for name in ("Blue", "Green")
    ]
    findings = audit.idle_findings(variants, END)
    assert [(f["endpoint_name"], f["variant_name"]) for f in findings] == [
        ("AB-Test", "Blue"),
        ("AB-Test", "Green"),
    ]
    assert all(f["estimated_monthly_savings"]["value"] == 8244.6 for f in findings)
    assert audit_queries.ledger_key(findings[0]) == "endpoint#AB-Test"


def test_idle_findings_of_an_account_not_opted_in_are_one_finding(
    stubs: dict[str, Stubber],
) -> None:
    stubs["compute_optimizer"].add_client_error(
        "get_idle_recommendations",
        "OptInRequiredException",
        "The account is not registered for recommendations",
        expected_params={"filters": IDLE_FILTERS, "maxResults": 100},
    )
    [finding] = audit.idle_findings([], END)
    assert finding["classification"] == "OptInRequired"
    assert "no idle SageMaker endpoint findings" in finding["reasons"][0]
    assert "update-enrollment-status" in finding["reasons"][0]


def test_idle_findings_fail_on_access_denied_as_the_ec2_read_does(
    stubs: dict[str, Stubber],
) -> None:
    """Only the opt-in is a finding; a denied call is a deployment fault and fails the run."""
    stubs["compute_optimizer"].add_client_error(
        "get_idle_recommendations",
        "AccessDeniedException",
        "not authorized to perform compute-optimizer:GetIdleRecommendations",
        expected_params={"filters": IDLE_FILTERS, "maxResults": 100},
    )
    with pytest.raises(audit.ClientError, match="AccessDeniedException"):
        audit.idle_findings([], END)


def test_two_opt_in_findings_become_one() -> None:
    """EC2 and idle reads both not opted in: one ledger item and one event, not two with the
    same key (BatchWriteItem rejects duplicate keys in a request)."""
    ec2_one = audit_queries.opt_in_required_finding(END)
    idle_one = audit_queries.opt_in_required_finding(END, "idle SageMaker endpoint findings")
    other = {"classification": OVERPROVISIONED}
    merged = audit._one_opt_in([other, ec2_one], [idle_one], END)
    assert merged[0] == other
    [opt_in] = [f for f in merged if f["classification"] == "OptInRequired"]
    assert "EC2 or idle SageMaker endpoint findings" in opt_in["reasons"][0]
    assert audit._one_opt_in([other], [idle_one], END) == [other, idle_one]


def test_a_missing_component_is_skipped_and_its_type_read_from_its_specification(
    stubs: dict[str, Stubber],
) -> None:
    stubs["sagemaker"].add_client_error(
        "describe_inference_component",
        "ValidationException",
        "Could not find inference component 'gone-ic'.",
        expected_params={"InferenceComponentName": "gone-ic"},
    )
    stubs["sagemaker"].add_response(
        "describe_inference_component",
        describe_component_response(
            Specification={
                "InstanceType": "ml.g6.2xlarge",
                "ComputeResourceRequirements": {"MinMemoryRequiredInMb": 1024},
            },
            RuntimeConfig={"DesiredCopyCount": 1, "CurrentCopyCount": 1},
        ),
        {"InferenceComponentName": "llama-ic"},
    )
    [component] = audit.watched_components(["gone-ic", "llama-ic"])
    assert component == audit_queries.Component(
        endpoint_name="llm-endpoint",
        variant_name="AllTraffic",
        inference_component_name="llama-ic",
        instance_type="ml.g6.2xlarge",
        copy_count=1,
    )


def test_a_component_reads_its_own_recommendation_and_a_variant_skips_it(
    stubs: dict[str, Stubber],
) -> None:
    items = [component_record(), recommendation_record("ml.g5.12xlarge")]
    ledger_query(stubs, "llm-endpoint", items)
    ledger_query(stubs, "llm-endpoint", items)
    ledger_query(stubs, "llm-endpoint", items)
    ic = audit.last_recommendation("llm-endpoint", "llama-ic")
    assert ic is not None and ic["kind"] == "inference-component"
    variant = audit.last_recommendation("llm-endpoint")
    assert variant is not None and "inference_component_name" not in variant
    assert audit.last_recommendation("llm-endpoint", "other-ic") is None
    component = audit_queries.Component(
        endpoint_name="llm-endpoint",
        variant_name="AllTraffic",
        inference_component_name="llama-ic",
        instance_type="ml.g5.12xlarge",
        copy_count=4,
    )
    # The candidate on the type it runs on, not the first one.
    assert audit_queries.component_capacity(ic, component) == 4.0
    assert audit_queries.component_capacity(variant, component) is None
    moved = audit_queries.Component(**{**component.__dict__, "instance_type": "ml.p5.48xlarge"})
    assert audit_queries.component_capacity(ic, moved) is None


def test_component_queries_pack_into_calls_like_the_variants() -> None:
    """Seven window queries and one per-minute peak per component: the batching of variants
    (500 queries, 100,800 datapoints a call) holds them too."""
    component = audit_queries.Component(
        endpoint_name="e",
        variant_name="v",
        inference_component_name="c",
        instance_type=None,
        copy_count=1,
    )
    queries = audit_queries.component_queries(0, component, "p99", WINDOW)
    assert len(queries) == 7
    per_component = audit_queries.window_datapoints(WINDOW)
    calls = list(audit_queries.batches([queries] * 200, per_component))
    assert all(len(c) <= audit_queries.MAX_QUERIES_PER_CALL for c in calls)
    assert len(calls) == 3  # 71 components (497 queries) a call
    peaks = list(
        audit_queries.batches(
            [[audit_queries.component_peak_query(i, component)] for i in range(10)],
            audit_queries.peak_datapoints(14 * 86400),
        )
    )
    assert [len(c) for c in peaks] == [5, 5]


def test_readings_give_a_component_its_peaks() -> None:
    readings = audit_queries.Readings()
    readings.add("c0_peak", [3.0, 41.5])
    readings.add("c0_peak", [40.0])
    readings.add("c0_concurrency", [6.25])
    readings.add("c0_hours", [60.0, 0.0])
    readings.add("c0_gpu", [71.0])
    history = readings.component_history(0)
    assert history.invocations_per_copy_peak == 41.5
    assert history.concurrent_requests_per_copy_peak == 6.25
    assert history.hours_with_data == 1
    assert history.gpu == 71.0
    assert history.cpu is None
