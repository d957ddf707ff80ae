"""Measured load-latency curves (issue #15): capacity at SLO, the unit check, the request.

The curves are hand-made, minute by minute, so each rule (ramp-up skipped, sustained for three
consecutive minutes, a gap breaks a run, noise does not count) is pinned on a case that shows
it. The GetMetricData request is checked by botocore's Stubber against CloudWatch's model.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber
from botocore.validate import validate_parameters
from rightsizing_runtime import evidence, select_recommendation
from rightsizing_runtime.decision import (
    Candidate,
    DecisionInput,
    Guardrails,
    Slo,
    candidates_from_job,
    decide,
)
from rightsizing_runtime.evidence import Benchmark, Point, capacity_at_slo, unit_check

from rightsizing_constructs.cli import main
from tests.test_handlers import (
    JOB_NAME,
    describe_endpoint_config_response,
    docs_sample_job,
    settings_document,
    stub_endpoint,
)

T0 = datetime(2026, 11, 1, 10, 2, tzinfo=UTC)
SLO_MS = Decimal(300)
P99 = Slo(percentile="P99", max_latency_ms=SLO_MS)


def curve(
    rates: Sequence[int], latencies: Sequence[int], missing: Sequence[int] = ()
) -> list[Point]:
    """Minute i at rates[i] requests per minute per instance and latencies[i] ms."""
    return [
        Point(
            minute=T0 + timedelta(minutes=i),
            requests_per_minute_per_instance=Fraction(r),
            latency_ms=Decimal(lat),
        )
        for i, (r, lat) in enumerate(zip(rates, latencies, strict=True))
        if i not in missing
    ]


# -- Capacity at SLO ---------------------------------------------------------------------------


def test_a_ramp_sustains_the_mean_rate_of_its_best_three_minutes() -> None:
    # Latency grows with load; 300 ms is crossed after 500 requests per minute.
    rates = [100, 200, 300, 400, 500, 600, 700]
    latencies = [50, 60, 80, 150, 280, 420, 900]
    # The last three minutes within the SLO are 300, 400, 500: 1200 requests in 3 minutes.
    assert capacity_at_slo(curve(rates, latencies), SLO_MS) == 400


def test_a_plateau_within_the_slo_is_its_rate() -> None:
    rates = [50, 600, 600, 600, 600, 600]
    latencies = [40, 250, 260, 255, 270, 265]
    assert capacity_at_slo(curve(rates, latencies), SLO_MS) == 600


def test_saturation_past_the_slo_keeps_the_last_sustained_rate() -> None:
    # Stairs of three minutes; at 900 the endpoint saturates (the rate stalls, latency explodes).
    rates = [100, 300, 300, 300, 600, 600, 600, 900, 880, 870]
    latencies = [40, 90, 95, 92, 200, 210, 220, 2500, 4000, 6000]
    assert capacity_at_slo(curve(rates, latencies), SLO_MS) == 600


def test_a_single_lucky_minute_is_noise_not_capacity() -> None:
    rates = [100, 400, 400, 400, 800, 800, 800, 800]
    latencies = [40, 200, 210, 190, 350, 290, 360, 340]
    assert capacity_at_slo(curve(rates, latencies), SLO_MS) == 400


def test_a_noisy_step_sustains_its_mean_not_its_slowest_minute() -> None:
    # A steady 600 step as a load generator delivers it: 588, 612, 597 requests.
    rates = [100, 588, 612, 597, 900, 900, 900]
    latencies = [40, 250, 262, 255, 800, 900, 950]
    assert capacity_at_slo(curve(rates, latencies), SLO_MS) == 599


def test_a_missing_minute_breaks_a_run() -> None:
    rates = [100, 500, 500, 500, 500, 500]
    latencies = [40, 200, 200, 200, 200, 200]
    # Minutes 1, 2 | 4, 5: no three consecutive minutes at 500.
    assert capacity_at_slo(curve(rates, latencies, missing=[3]), SLO_MS) is None
    assert capacity_at_slo(curve(rates, latencies, missing=[1]), SLO_MS) == 500


def test_the_first_minute_is_ramp_up() -> None:
    # Counted, the first minute would make 900 sustained with the next two.
    rates = [900, 900, 900, 200, 200, 200]
    latencies = [100, 100, 100, 100, 100, 100]
    assert capacity_at_slo(curve(rates, latencies), SLO_MS) == Fraction(900 + 900 + 200, 3)
    assert capacity_at_slo(curve(rates, latencies), SLO_MS, ramp_up_minutes=0) == 900


def test_a_curve_that_never_meets_the_slo_has_no_capacity() -> None:
    assert capacity_at_slo(curve([100, 200, 300, 400], [400, 500, 600, 700]), SLO_MS) is None
    assert capacity_at_slo([], SLO_MS) is None


def test_the_slo_bound_is_inclusive() -> None:
    assert capacity_at_slo(curve([1, 7, 7, 7], [300, 300, 300, 300]), SLO_MS) == 7
    over = curve([1, 7, 7, 7], [300, 300, 301, 300])
    assert capacity_at_slo(over, SLO_MS) is None


def test_sustain_minutes_is_configurable() -> None:
    rates, latencies = [100, 700, 700, 300, 300, 300], [40, 100, 100, 100, 100, 100]
    assert capacity_at_slo(curve(rates, latencies), SLO_MS) == Fraction(700 + 700 + 300, 3)
    assert capacity_at_slo(curve(rates, latencies), SLO_MS, sustain_minutes=2) == 700
    assert capacity_at_slo(curve(rates, latencies), SLO_MS, sustain_minutes=6) is None


# -- Unit check ---------------------------------------------------------------------------------


def test_the_docs_sample_is_in_microseconds() -> None:
    """IR's 263596 for ml.c5.xlarge at 648 requests per minute (the docs' genuine sample)."""
    [recommendation] = docs_sample_job()["InferenceRecommendations"]
    check = unit_check(recommendation["Metrics"]["ModelLatency"], Decimal("291.2"))
    assert check.unit == "us"
    assert check.model_latency_ms == Decimal("263.596")
    assert "microseconds" in check.reason


def test_a_scalar_in_milliseconds_is_recognized() -> None:
    check = unit_check(250, Decimal("291.2"))
    assert (check.unit, check.model_latency_ms) == ("ms", Decimal(250))


def test_neither_unit_matching_takes_the_larger_latency_and_says_so() -> None:
    check = unit_check(263596, Decimal(2))
    assert check.unit == "unknown"
    assert check.model_latency_ms == Decimal(263596)
    assert "neither" in check.reason and "larger" in check.reason


def test_the_tolerance_is_a_factor_of_ten_either_way() -> None:
    assert unit_check(100_000, Decimal(1000)).unit == "us"
    assert unit_check(100_000, Decimal(10)).unit == "us"
    assert unit_check(100_000, Decimal("1000.1")).unit == "unknown"
    assert unit_check(100_000, Decimal("9.9")).unit == "unknown"
    assert unit_check(100, Decimal(1000)).unit == "ms"
    assert unit_check(0, Decimal(0)).unit == "us"
    assert unit_check(0, Decimal(1)).unit == "unknown"


# -- The request and the fallback ---------------------------------------------------------------

START = datetime(2026, 11, 1, 10, 1, 30, tzinfo=UTC)
END = datetime(2026, 11, 1, 10, 14, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 1, 11, 0, tzinfo=UTC)


def job_with_windows(count: int = 1) -> dict[str, Any]:
    """The docs' sample with its benchmark window (botocore's members of the recommendation)."""
    job = docs_sample_job()
    [recommendation] = job["InferenceRecommendations"]
    recommendation.update(InvocationStartTime=START, InvocationEndTime=END)
    job["InferenceRecommendations"] = []
    for index in range(count):
        copied = copy.deepcopy(recommendation)
        copied["RecommendationId"] = f"{JOB_NAME}/r{index}"
        copied["EndpointConfiguration"]["EndpointName"] = f"{JOB_NAME}-e{index}"
        job["InferenceRecommendations"].append(copied)
    return job


def expected_request(count: int = 1) -> dict[str, Any]:
    def query(query_id: str, metric: str, stat: str, endpoint: str) -> dict[str, Any]:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/SageMaker",
                    "MetricName": metric,
                    "Dimensions": [
                        {"Name": "EndpointName", "Value": endpoint},
                        {"Name": "VariantName", "Value": "AllTraffic"},
                    ],
                },
                "Period": 60,
                "Stat": stat,
            },
            "ReturnData": True,
        }

    queries = []
    for index in range(count):
        endpoint = f"{JOB_NAME}-e{index}"
        queries += [
            query(f"inv_{index}", "Invocations", "Sum", endpoint),
            query(f"lat_{index}", "ModelLatency", "p99", endpoint),
        ]
    return {
        "MetricDataQueries": queries,
        # Widened to whole minutes: the benchmark ran from 10:01:30 to 10:14:00.
        "StartTime": datetime(2026, 11, 1, 10, 1, tzinfo=UTC),
        "EndTime": datetime(2026, 11, 1, 10, 14, tzinfo=UTC),
        "ScanBy": "TimestampAscending",
    }


def metric_results(index: int, rates: Sequence[int], latencies_us: Sequence[int]) -> list[dict]:
    stamps = [
        datetime(2026, 11, 1, 10, 1, tzinfo=UTC) + timedelta(minutes=i) for i in range(len(rates))
    ]
    return [
        {
            "Id": f"inv_{index}",
            "Label": "Invocations",
            "Timestamps": stamps,
            "Values": [float(r) for r in rates],
            "StatusCode": "Complete",
        },
        {
            "Id": f"lat_{index}",
            "Label": "ModelLatency",
            "Timestamps": stamps,
            "Values": [float(v) for v in latencies_us],
            "StatusCode": "Complete",
        },
    ]


# Stairs to IR's 648 requests per minute; p99 in microseconds, as CloudWatch reports it. The
# first minute (10:01) starts before the window (10:01:30): partial, never part of the curve.
RATES = [40, 200, 200, 200, 420, 420, 420, 600, 600, 600, 648, 648, 648]
LATENCIES_US = [
    90_000, 110_000, 120_000, 115_000, 180_000, 190_000, 185_000,
    240_000, 250_000, 245_000, 290_000, 292_000, 291_000,
]  # fmt: skip


@pytest.fixture
def stubs() -> Iterator[tuple[Stubber, Stubber]]:
    with (
        Stubber(select_recommendation.sagemaker) as sagemaker,
        Stubber(select_recommendation.cloudwatch) as cloudwatch,
    ):
        yield sagemaker, cloudwatch
        sagemaker.assert_no_pending_responses()
        cloudwatch.assert_no_pending_responses()


def scaling_response(target_value: float = 324.0) -> dict[str, Any]:
    """GetScalingConfigurationRecommendation's answer (botocore's SageMaker output shape)."""
    return {
        "InferenceRecommendationsJobName": JOB_NAME,
        "RecommendationId": f"{JOB_NAME}/r0",
        "DynamicScalingConfiguration": {
            "MinCapacity": 1,
            "MaxCapacity": 10,
            "ScaleInCooldown": 300,
            "ScaleOutCooldown": 300,
            "ScalingPolicies": [
                {
                    "TargetTracking": {
                        "MetricSpecification": {
                            "Predefined": {
                                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                            }
                        },
                        "TargetValue": target_value,
                    }
                }
            ],
        },
    }


SCALING_REQUEST = {
    "InferenceRecommendationsJobName": JOB_NAME,
    "RecommendationId": f"{JOB_NAME}/r0",
    "ScalingPolicyObjective": {"MaxInvocationsPerMinute": 3240},
}


def select(
    stubs: tuple[Stubber, Stubber],
    job: dict[str, Any],
    max_latency_ms: int = 300,
    scaling: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run Select; ``scaling``: IR's scaling answer, asked for after a measured-curve decision."""
    sagemaker, _ = stubs
    sagemaker.add_response("describe_inference_recommendations_job", job, {"JobName": JOB_NAME})
    stub_endpoint(sagemaker)
    sagemaker.add_response(
        "describe_endpoint_config",
        describe_endpoint_config_response("ml.m5.2xlarge", 6),
        {"EndpointConfigName": "fraud-scoring-config-1"},
    )
    if scaling is not None:
        sagemaker.add_response("get_scaling_configuration_recommendation", scaling, SCALING_REQUEST)
    settings = settings_document(
        slo={"percentile": "P99", "max_latency_ms": max_latency_ms},
        guardrails={"min_instances": 1, "max_instances": 20, "allowed_instance_types": []},
    )
    return select_recommendation.handler({"settings": settings, "job": {"job_name": JOB_NAME}})


@pytest.fixture(autouse=True)
def _now(monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler's clock: shortly after the load test."""

    class Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
            return NOW

    monkeypatch.setattr(select_recommendation, "datetime", Clock)


def test_select_reads_one_request_for_every_benchmark_and_decides_on_the_curve(
    stubs: tuple[Stubber, Stubber],
) -> None:
    _, cloudwatch = stubs
    cloudwatch.add_response(
        "get_metric_data",
        {"MetricDataResults": metric_results(0, RATES, LATENCIES_US)},
        expected_request(),
    )
    detail = select(stubs, job_with_windows(), max_latency_ms=200, scaling=scaling_response())
    assert detail["evidence"] == "measured-curve"
    [candidate] = detail["candidates"]
    # 420 requests per minute held three minutes within 200 ms; IR's 648 saturates past it.
    assert candidate["capacity_at_slo"] == 420
    assert candidate["latency_at_peak_ms"] == 291
    assert candidate["unit_check"]["unit"] == "us"
    # IR's scalar (263.6 ms at saturation) exceeds 200 ms, but the curve meets it at 420.
    assert candidate["eligible"] is True
    assert detail["instance_count"] == 16  # ceil(3240 / (420 * 0.5))
    assert detail["autoscaling"]["target_value"] == 210.0


def test_no_benchmark_window_decides_from_irs_scalars_without_reading(
    stubs: tuple[Stubber, Stubber],
) -> None:
    detail = select(stubs, docs_sample_job())
    assert detail["evidence"] == "ir-summary"
    assert "window" in detail["evidence_reason"]
    assert detail["candidates"][0]["capacity_at_slo"] is None
    assert detail["candidates"][0]["unit_check"] is None


def test_a_cloudwatch_error_falls_back(stubs: tuple[Stubber, Stubber]) -> None:
    _, cloudwatch = stubs
    cloudwatch.add_client_error(
        "get_metric_data", "AccessDenied", "not authorized", expected_params=expected_request()
    )
    detail = select(stubs, job_with_windows())
    assert detail["evidence"] == "ir-summary"
    assert "AccessDenied" in detail["evidence_reason"]
    assert (detail["instance_type"], detail["instance_count"]) == ("ml.c5.xlarge", 10)


def test_an_empty_series_falls_back(stubs: tuple[Stubber, Stubber]) -> None:
    _, cloudwatch = stubs
    cloudwatch.add_response(
        "get_metric_data", {"MetricDataResults": metric_results(0, [], [])}, expected_request()
    )
    detail = select(stubs, job_with_windows())
    assert detail["evidence"] == "ir-summary"
    assert "no per-minute" in detail["evidence_reason"]


def test_a_load_test_older_than_fifteen_days_is_not_read() -> None:
    job = job_with_windows()
    later = START + timedelta(days=15, minutes=1)
    found = evidence.gather_evidence(job, P99, read=lambda _: pytest.fail("read"), now=later)
    assert found.kind == "ir-summary"
    assert "15 days" in found.reason


def test_one_candidate_without_a_curve_makes_the_whole_decision_ir_summary() -> None:
    job = job_with_windows(2)
    pages = [{"MetricDataResults": metric_results(0, RATES, LATENCIES_US)}]
    found = evidence.gather_evidence(job, P99, read=lambda _: pages, now=NOW)
    assert found.kind == "ir-summary"
    assert f"{JOB_NAME}-e1/AllTraffic" in found.reason


def test_requests_respect_getmetricdata_limits() -> None:
    benchmark = Benchmark(
        recommendation_id="r",
        endpoint_name="e",
        variant_name="AllTraffic",
        instance_count=1,
        start=START,
        end=START + timedelta(hours=5),
        ir_model_latency=1,
    )
    # 301 minutes: 100,800 datapoints allow 334 queries (167 benchmarks) per request.
    requests = evidence.metric_requests([benchmark] * 400, "P95")
    assert [len(r["MetricDataQueries"]) for r in requests] == [334, 334, 132]
    stats = {q["Id"][:4]: q["MetricStat"]["Stat"] for r in requests for q in r["MetricDataQueries"]}
    assert stats == {"inv_": "Sum", "lat_": "p95"}
    # A short window: 500 queries per request at most.
    short = dataclasses.replace(benchmark, end=START + timedelta(minutes=5))
    assert [
        len(r["MetricDataQueries"]) for r in evidence.metric_requests([short] * 300, "P99")
    ] == [
        500,
        100,
    ]


def test_the_benchmark_instance_count_divides_the_load() -> None:
    job = job_with_windows()
    job["InferenceRecommendations"][0]["EndpointConfiguration"]["InitialInstanceCount"] = 2
    [benchmark] = evidence.benchmarks_from_job(job)
    pages = [{"MetricDataResults": metric_results(0, [2 * r for r in RATES], LATENCIES_US)}]
    series = evidence.read_results(pages)
    points = evidence.curve(benchmark, series["inv_0"], series["lat_0"])
    # Whole minutes inside the window only: 10:01 began before it (10:01:30).
    assert [p.requests_per_minute_per_instance for p in points] == RATES[1:]


def test_a_minute_the_window_covers_in_part_is_left_out() -> None:
    job = job_with_windows()
    job["InferenceRecommendations"][0]["InvocationEndTime"] = END - timedelta(seconds=1)
    [benchmark] = evidence.benchmarks_from_job(job)
    series = evidence.read_results([{"MetricDataResults": metric_results(0, RATES, LATENCIES_US)}])
    points = evidence.curve(benchmark, series["inv_0"], series["lat_0"])
    assert points[0].minute == datetime(2026, 11, 1, 10, 2, tzinfo=UTC)
    assert points[-1].minute == datetime(2026, 11, 1, 10, 12, tzinfo=UTC)


def test_aws_cli_output_timestamps_are_read() -> None:
    """``plan --metrics`` reads what ``aws cloudwatch get-metric-data`` prints: ISO strings."""
    page = {
        "MetricDataResults": [
            {"Id": "inv_0", "Timestamps": ["2026-11-01T10:01:00+00:00"], "Values": [5.0]}
        ]
    }
    assert evidence.read_results([page]) == {
        "inv_0": {datetime(2026, 11, 1, 10, 1, tzinfo=UTC): 5.0}
    }


# -- In the decision ---------------------------------------------------------------------------


def candidate(**overrides: Any) -> Candidate:
    values: dict[str, Any] = {
        "recommendation_id": "r",
        "instance_type": "ml.c5.xlarge",
        "serverless": False,
        "cost_per_hour": Decimal("0.204"),
        "cost_per_inference": None,
        "max_invocations": 648,
        "model_latency_ms": Decimal("263.596"),
    }
    values.update(overrides)
    return Candidate(**values)


def decision_input(peak: int = 3240, slo_ms: int = 300) -> DecisionInput:
    return DecisionInput(
        peak_requests_per_minute=Fraction(peak),
        target_utilization=Fraction(1, 2),
        slo=Slo(percentile="P99", max_latency_ms=Decimal(slo_ms)),
        guardrails=Guardrails(max_instances=20),
    )


def test_the_measured_capacity_caps_max_invocations() -> None:
    decision = decide(
        [candidate(capacity_at_slo=Fraction(420), meets_slo_measured=True)], decision_input()
    )
    assert decision.chosen is not None
    assert decision.chosen.instance_count == 16  # ceil(3240 / (420 * 0.5))
    assert decision.autoscaling is not None and decision.autoscaling.target_value == 210.0
    # A curve measured past IR's MaxInvocations does not raise it.
    decision = decide(
        [candidate(capacity_at_slo=Fraction(700), meets_slo_measured=True)], decision_input()
    )
    assert decision.chosen is not None and decision.chosen.instance_count == 10


def test_a_curve_that_never_met_the_slo_is_ineligible_whatever_ir_says() -> None:
    decision = decide([candidate(meets_slo_measured=False)], decision_input(slo_ms=300))
    assert decision.action == "reject"
    assert "measured P99 latency never stayed within the SLO of 300 ms" in decision.reason


def test_with_a_curve_irs_latency_at_saturation_is_not_the_verdict() -> None:
    measured = candidate(capacity_at_slo=Fraction(420), meets_slo_measured=True)
    assert decide([measured], decision_input(slo_ms=200)).action == "apply"
    assert decide([candidate()], decision_input(slo_ms=200)).action == "reject"


def test_a_zero_measured_capacity_is_ineligible() -> None:
    decision = decide(
        [candidate(capacity_at_slo=Fraction(0), meets_slo_measured=True)], decision_input()
    )
    assert decision.action == "reject"
    assert "no throughput within the SLO" in decision.reason


def test_an_unsettled_unit_judges_irs_larger_reading_against_the_slo() -> None:
    job = job_with_windows()
    # The curve says 2-3 ms where IR's 263596 reads 263.6 ms or 263596 ms: neither matches.
    fast = [latency // 100 for latency in LATENCIES_US]
    pages = [{"MetricDataResults": metric_results(0, RATES, fast)}]
    found = evidence.gather_evidence(job, P99, read=lambda _: pages, now=NOW)
    [applied] = found.apply(candidates_from_job(job))
    assert applied.capacity_at_slo == 648
    assert applied.meets_slo_measured is None
    assert applied.model_latency_ms == Decimal(263596)
    made = decide([applied], decision_input())
    assert made.action == "reject"
    assert "latency 263596 ms exceeds the P99 SLO of 300 ms" in made.reason


def test_evidence_applies_to_candidates_by_recommendation_id() -> None:
    job = job_with_windows()
    pages = [{"MetricDataResults": metric_results(0, RATES, LATENCIES_US)}]
    found = evidence.gather_evidence(job, P99, read=lambda _: pages, now=NOW)
    [applied] = found.apply(candidates_from_job(job))
    assert applied.capacity_at_slo == 648
    assert applied.meets_slo_measured is True
    assert applied.model_latency_ms == Decimal("263.596")


# -- plan --metrics: the same decision offline ---------------------------------------------------


def _cli_json(document: Any) -> Any:
    """What the AWS CLI prints: timestamps as ISO 8601 strings."""
    return json.loads(json.dumps(document, default=lambda stamp: stamp.isoformat()))


def test_plan_with_metrics_decides_as_select_does(
    stubs: tuple[Stubber, Stubber], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, cloudwatch = stubs
    results = {"MetricDataResults": metric_results(0, RATES, LATENCIES_US), "Messages": []}
    cloudwatch.add_response("get_metric_data", results, expected_request())
    published = select(stubs, job_with_windows(), max_latency_ms=200, scaling=scaling_response())
    capsys.readouterr()  # Select's own output: its metrics line (EMF, README "Metrics")
    job, metrics = tmp_path / "job.json", tmp_path / "metrics.json"
    job.write_text(json.dumps(_cli_json(job_with_windows())))
    metrics.write_text(json.dumps(_cli_json(results)))
    flags = [
        *("--job-description", str(job), "--peak-requests-per-minute", "3240"),
        *("--slo-percentile", "P99", "--slo-ms", "200", "--max-instances", "20"),
        *("--endpoint-name", "fraud-scoring", "--metrics", str(metrics)),
    ]
    assert main(["plan", *flags]) == 0
    printed = json.loads(capsys.readouterr().out)
    # Select also read the current config; everything else is the same decision.
    for key in ("evidence", "evidence_reason", "instance_type", "instance_count", "autoscaling"):
        assert printed[key] == published[key], key
    assert printed["candidates"][0]["capacity_at_slo"] == 420
    assert printed["candidates"][0]["unit_check"] == published["candidates"][0]["unit_check"]
    # Without --metrics: IR's scalars, and why.
    assert main(["plan", *flags[:-2]]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["evidence"], printed["action"]) == ("ir-summary", "reject")
    assert "--metrics" in printed["evidence_reason"]


def test_metrics_request_prints_the_cli_input_of_selects_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "job.json"
    job.write_text(json.dumps(_cli_json(job_with_windows(2))))
    argv = ["metrics-request", "--job-description", str(job), "--slo-percentile", "P99"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == _cli_json(expected_request(2))
    # The CLI's own model check: what it prints is a valid GetMetricData input.
    validate_parameters(
        {**printed, "StartTime": datetime.now(UTC), "EndTime": datetime.now(UTC)},
        botocore.session.get_session()
        .get_service_model("cloudwatch")
        .operation_model("GetMetricData")
        .input_shape,
    )


def test_metrics_request_needs_benchmark_windows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "job.json"
    job.write_text(json.dumps(_cli_json(docs_sample_job())))
    argv = ["metrics-request", "--job-description", str(job), "--slo-percentile", "P99"]
    assert main(argv) == 2
    assert "names no benchmark endpoint and window" in capsys.readouterr().err


def test_a_malformed_metrics_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job, metrics = tmp_path / "job.json", tmp_path / "metrics.json"
    job.write_text(json.dumps(_cli_json(job_with_windows())))
    metrics.write_text(json.dumps({"MetricDataResults": [{"Id": "inv_0", "Values": ["many"]}]}))
    argv = ["plan", "--job-description", str(job), "--metrics", str(metrics)]
    assert (
        main([*argv, "--peak-requests-per-minute", "1", "--slo-percentile", "P99", "--slo-ms", "9"])
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: malformed metrics") and "aws cloudwatch get-metric-data" in err


def test_readme_documents_the_evidence_keys_of_the_recommendation_detail(
    stubs: tuple[Stubber, Stubber],
) -> None:
    _, cloudwatch = stubs
    cloudwatch.add_response(
        "get_metric_data",
        {"MetricDataResults": metric_results(0, RATES, LATENCIES_US)},
        expected_request(),
    )
    detail = select(stubs, job_with_windows(), scaling=scaling_response())
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("### The recommendation event") : readme.index("### The finding")]
    keys = ["evidence", "evidence_reason", *detail["candidates"][0]["unit_check"]]
    keys += ["autoscaling_cross_check", *detail["autoscaling_cross_check"]]
    keys += ["capacity_at_slo", "latency_at_peak_ms", "unit_check"]
    assert {*keys} <= {
        *detail,
        *detail["candidates"][0],
        *detail["candidates"][0]["unit_check"],
        *detail["autoscaling_cross_check"],
    }
    assert [key for key in keys if f"`{key}" not in section and f" {key}" not in section] == []


# -- IR's own autoscaling recommendation, a second opinion ---------------------------------------


def test_irs_scaling_target_is_recorded_with_the_reason_it_differs(
    stubs: tuple[Stubber, Stubber],
) -> None:
    _, cloudwatch = stubs
    cloudwatch.add_response(
        "get_metric_data",
        {"MetricDataResults": metric_results(0, RATES, LATENCIES_US)},
        expected_request(),
    )
    detail = select(stubs, job_with_windows(), max_latency_ms=200, scaling=scaling_response())
    check = detail["autoscaling_cross_check"]
    assert (check["target_value"], check["ir_target_value"]) == (210.0, 324.0)
    assert (check["ir_min_capacity"], check["ir_max_capacity"]) == (1, 10)
    assert check["agrees"] is False
    assert "CPU utilization per core, not the latency SLO" in check["reason"]
    # The decision keeps its own target.
    assert detail["autoscaling"]["target_value"] == 210.0


def test_an_error_asking_ir_is_recorded_not_raised(stubs: tuple[Stubber, Stubber]) -> None:
    sagemaker, cloudwatch = stubs
    cloudwatch.add_response(
        "get_metric_data",
        {"MetricDataResults": metric_results(0, RATES, LATENCIES_US)},
        expected_request(),
    )
    # Stubbed after Select's reads: the job, the endpoint, its config, then this.
    original = sagemaker.add_response

    def then_error(method: str, *args: Any, **kwargs: Any) -> None:
        original(method, *args, **kwargs)
        if method == "describe_endpoint_config":
            sagemaker.add_client_error(
                "get_scaling_configuration_recommendation",
                "AccessDeniedException",
                "not authorized",
                expected_params=SCALING_REQUEST,
            )

    sagemaker.add_response = then_error  # type: ignore[method-assign]
    detail = select(stubs, job_with_windows(), max_latency_ms=200)
    check = detail["autoscaling_cross_check"]
    assert check["ir_target_value"] is None and check["agrees"] is None
    assert "AccessDeniedException" in check["reason"]
    assert detail["action"] == "apply"


def test_an_ir_summary_decision_asks_ir_nothing(stubs: tuple[Stubber, Stubber]) -> None:
    assert select(stubs, docs_sample_job())["autoscaling_cross_check"] is None


def test_targets_within_a_tenth_agree() -> None:
    assert evidence.scaling_cross_check(scaling_response(300.0), 324.0)["agrees"] is True
    assert evidence.scaling_cross_check(scaling_response(291.0), 324.0)["agrees"] is False
    agreed = evidence.scaling_cross_check(scaling_response(324.0), 324.0)
    assert agreed["reason"].endswith("the decision 324.0")


def test_a_policy_on_another_metric_is_no_target() -> None:
    response = scaling_response()
    tracking = response["DynamicScalingConfiguration"]["ScalingPolicies"][0]["TargetTracking"]
    tracking["MetricSpecification"] = {
        "Customized": {"MetricName": "ModelLatency", "Namespace": "AWS/SageMaker"}
    }
    check = evidence.scaling_cross_check(response, 324.0)
    assert check["ir_target_value"] is None
    assert "no target on SageMakerVariantInvocationsPerInstance" in check["reason"]


def test_the_curves_change_the_choice_irs_scalars_would_make() -> None:
    """c5's scalar looks fine at saturation, but its p99 leaves the SLO at a third of it."""
    job = job_with_windows(2)
    c5, m5 = job["InferenceRecommendations"]
    c5["Metrics"].update(MaxInvocations=648, ModelLatency=150_000)
    m5["Metrics"].update(CostPerHour=0.23, MaxInvocations=600, ModelLatency=200_000)
    m5["EndpointConfiguration"]["InstanceType"] = "ml.m5.xlarge"
    rates = [40, 200, 200, 200, 420, 420, 420, 600, 600, 600, 648, 648, 648]
    # 10:01 is before the window, 10:02 ramp-up: 200 holds from 10:03 to 10:05.
    c5_rates = [40, 200, 200, 200, 200, 420, 420, 420, 600, 600, 600, 648, 648]
    heavy_tail = [90_000, 250_000, 260_000, 255_000, 258_000] + [900_000] * 8
    light_tail = [50_000, 80_000, 85_000, 82_000, 120_000, 125_000, 121_000] + [190_000] * 6
    pages = [
        {
            "MetricDataResults": metric_results(0, c5_rates, heavy_tail)
            + metric_results(1, [min(r, 600) for r in rates], light_tail)
        }
    ]
    candidates = candidates_from_job(job)
    by_scalars = decide(candidates, decision_input())
    assert by_scalars.chosen is not None
    assert by_scalars.chosen.candidate.instance_type == "ml.c5.xlarge"
    found = evidence.gather_evidence(job, P99, read=lambda _: pages, now=NOW)
    assert found.kind == "measured-curve"
    by_curves = decide(found.apply(candidates), decision_input())
    assert by_curves.chosen is not None
    assert (by_curves.chosen.candidate.instance_type, by_curves.chosen.instance_count) == (
        "ml.m5.xlarge",
        11,
    )
    [c5_judged] = [e for e in by_curves.evaluations if e.candidate.instance_type == "ml.c5.xlarge"]
    assert c5_judged.instance_count == 33  # ceil(3240 / (200 * 0.5)), more than 20
    assert "more than the maximum of 20" in c5_judged.reason


def test_results_cloudwatch_calls_incomplete_fall_back_in_select_and_fail_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forbidden = metric_results(0, RATES, LATENCIES_US)
    forbidden[1]["StatusCode"] = "Forbidden"
    job = job_with_windows()
    found = evidence.gather_evidence(
        job, P99, read=lambda _: [{"MetricDataResults": forbidden}], now=NOW
    )
    assert found.kind == "ir-summary"
    assert "Forbidden for lat_0" in found.reason
    # plan reports a file it cannot trust instead of quietly deciding without it.
    job_file, metrics = tmp_path / "job.json", tmp_path / "metrics.json"
    job_file.write_text(json.dumps(_cli_json(job)))
    metrics.write_text(json.dumps(_cli_json({"MetricDataResults": forbidden})))
    argv = ["plan", "--job-description", str(job_file), "--metrics", str(metrics)]
    flags = ["--peak-requests-per-minute", "1", "--slo-percentile", "P99", "--slo-ms", "9"]
    assert main([*argv, *flags]) == 2
    assert "Forbidden for lat_0" in capsys.readouterr().err


def test_a_connection_error_falls_back() -> None:
    from botocore.exceptions import EndpointConnectionError

    def unreachable(_request: Any) -> Any:
        raise EndpointConnectionError(endpoint_url="https://monitoring.us-east-1.amazonaws.com")

    found = evidence.gather_evidence(job_with_windows(), P99, read=unreachable, now=NOW)
    assert found.kind == "ir-summary"
    assert "Could not connect" in found.reason


def test_wire_timestamps_are_epoch_seconds() -> None:
    page = {"MetricDataResults": [{"Id": "inv_0", "Timestamps": [1793527260], "Values": [1.0]}]}
    [[stamp]] = [list(v) for v in evidence.read_results([page]).values()]
    assert stamp == datetime.fromtimestamp(1793527260, UTC)
