"""The inference-component decision (issue #17): from an AI recommendation job to the event."""

from __future__ import annotations

import copy
import json
import os
import re
from decimal import Decimal
from fractions import Fraction
from typing import Any

import botocore.session
import pytest
from botocore.model import Shape
from hypothesis import given, settings
from hypothesis import strategies as st
from rightsizing_runtime import component_decision as cd
from rightsizing_runtime.decision import (
    Candidate,
    DecisionInput,
    Guardrails,
    InvalidJobResultError,
    Slo,
    VariantNotFoundError,
)
from rightsizing_runtime.recommendation import recommend

from tests.conftest import load_event

SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")
G5 = "ml.g5.2xlarge"
G6 = "ml.g6.2xlarge"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.33.0-lmi15.0.0-cu128"
ENVIRONMENT = {"OPTION_MAX_MODEL_LEN": "4096", "OPTION_TENSOR_PARALLEL_DEGREE": "1"}


def job() -> dict[str, Any]:
    return load_event("ai_recommendation_job_completed.json")


def inputs(
    peak: int | str = 40,
    slo_ms: str = "500",
    percentile: str = "p90",
    concurrency: int = 8,
    min_copies: int = 1,
    prices: dict[str, str] | None = None,
    **guardrails: Any,
) -> cd.ComponentInput:
    guardrails.setdefault("max_instances", 12)
    return cd.ComponentInput(
        peak_concurrent_requests=Fraction(peak),
        target_utilization=Fraction("0.5"),
        workload_concurrency=concurrency,
        slo=cd.ComponentSlo(metric="ttft", percentile=percentile, max_latency_ms=Decimal(slo_ms)),
        guardrails=Guardrails(**guardrails),
        min_copies=min_copies,
        hourly_prices={t: Decimal(p) for t, p in (prices or {}).items()},
    )


def candidate(
    instance_type: str | None = G5,
    *,
    count: int | None = 1,
    per_instance: int | None = 2,
    ttft_ms: str | None = "300",
    cost: str | None = "1.515",
    extra: tuple[dict[str, str], ...] = (),
) -> cd.ComponentCandidate:
    performance: list[dict[str, str]] = list(extra)
    if ttft_ms is not None:
        performance.append(
            {"Metric": "time_to_first_token", "Stat": "p90", "Value": ttft_ms, "Unit": "ms"}
        )
    if cost is not None:
        performance.append({"Metric": "cost", "Value": cost, "Unit": "USD/hour"})
    return cd.ComponentCandidate(
        recommendation_id=f"job/{instance_type}",
        instance_type=instance_type,
        instance_count=count,
        copies_per_instance=per_instance,
        min_memory_mb=12288,
        image_uri=IMAGE,
        environment=dict(ENVIRONMENT),
        expected_performance=tuple(performance),
    )


def current(
    instance_type: str = G5,
    *,
    copies: int = 20,
    instances: int = 10,
    max_instances: int | None = 12,
    memory: int = 12288,
    image: str = IMAGE,
    environment: dict[str, str] | None = None,
) -> cd.CurrentComponent:
    return cd.current_component_from(
        inference_component(copies, memory, image, environment),
        {"ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": instances}]},
        endpoint_config(instance_type, instances, max_instances),
        "AllTraffic",
    )


def inference_component(
    copies: int = 20,
    memory: int = 12288,
    image: str = IMAGE,
    environment: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "InferenceComponentName": "llama-ic",
        "EndpointName": "llm-endpoint",
        "VariantName": "AllTraffic",
        "Specification": {
            "ModelName": "llama",
            "Container": {
                "DeployedImage": {"SpecifiedImage": image, "ResolvedImage": image + "@sha256:1"},
                "Environment": dict(ENVIRONMENT if environment is None else environment),
            },
            "ComputeResourceRequirements": {
                "MinMemoryRequiredInMb": memory,
                "NumberOfAcceleratorDevicesRequired": 1,
            },
        },
        "RuntimeConfig": {"DesiredCopyCount": copies, "CurrentCopyCount": copies},
    }


def endpoint_config(
    instance_type: str = G5, instances: int = 10, max_instances: int | None = 12
) -> dict[str, Any]:
    variant: dict[str, Any] = {
        "VariantName": "AllTraffic",
        "InstanceType": instance_type,
        "InitialInstanceCount": instances,
    }
    if max_instances is not None:
        variant["ManagedInstanceScaling"] = {
            "Status": "ENABLED",
            "MinInstanceCount": 1,
            "MaxInstanceCount": max_instances,
        }
    return {"EndpointConfigName": "llm-endpoint-config-1", "ProductionVariants": [variant]}


def _walk(value: Any, shape: Shape, path: str) -> list[str]:
    """Problems of ``value`` against botocore's ``shape``: unknown keys, types, enums, patterns,
    lengths, ranges and required members."""
    problems: list[str] = []
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(value, dict), path
        for name in shape.required_members:
            if name not in value:
                problems.append(f"{path}.{name} is required")
        for name, member in value.items():
            if name not in shape.members:
                problems.append(f"{path}.{name} is not a member of {shape.name}")
            else:
                problems += _walk(member, shape.members[name], f"{path}.{name}")
    elif kind == "list":
        assert isinstance(value, list), path
        for index, item in enumerate(value):
            problems += _walk(item, shape.member, f"{path}[{index}]")
    elif kind == "map":
        assert isinstance(value, dict), path
        for key, item in value.items():
            problems += _walk(key, shape.key, f"{path} key")
            problems += _walk(item, shape.value, f"{path}.{key}")
    elif kind == "string":
        if not isinstance(value, str):
            return [f"{path} is not a string"]
        enum = shape.enum
        pattern = shape.metadata.get("pattern")
        if enum and value not in enum:
            problems.append(f"{path}={value!r} is not one of {shape.name}")
        if pattern and not re.fullmatch(pattern.replace("\\p{L}", "\\w"), value):
            problems.append(f"{path}={value!r} does not match {pattern}")
        if not shape.metadata.get("min", 0) <= len(value) <= shape.metadata.get("max", 1 << 30):
            problems.append(f"{path} has a length out of range")
    elif kind in ("integer", "long"):
        if type(value) is not int or not shape.metadata.get("min", 0) <= value:
            problems.append(f"{path}={value!r} is not a valid {shape.name}")
    elif kind == "boolean" and not isinstance(value, bool):
        problems.append(f"{path} is not a boolean")
    elif kind == "timestamp" and not isinstance(value, str | int | float):
        problems.append(f"{path} is not a timestamp")
    return problems


class TestFixture:
    def test_the_fixture_is_botocores_output_shape(self) -> None:
        shape = SAGEMAKER.operation_model("DescribeAIRecommendationJob").output_shape
        assert _walk(job(), shape, "job") == []

    def test_the_walker_finds_a_wrong_enum_a_missing_member_and_an_unknown_key(self) -> None:
        shape = SAGEMAKER.operation_model("DescribeAIRecommendationJob").output_shape
        broken = job()
        broken["AIRecommendationJobStatus"] = "COMPLETED"
        del broken["RoleArn"]
        broken["Recommendations"][0]["DeploymentConfiguration"]["CopiesPerInstance"] = 2
        problems = _walk(broken, shape, "job")
        assert len(problems) == 3, problems

    def test_candidates_are_read_from_the_deployment_configuration(self) -> None:
        g5, g6 = cd.candidates_from_ai_job(job())
        assert (g5.instance_type, g5.instance_count, g5.copies_per_instance) == (G5, 1, 2)
        assert g5.min_memory_mb == 12288
        assert g5.image_uri == IMAGE and g5.environment == ENVIRONMENT
        assert g5.recommendation_id == "llama-ic-2026-11-30/0"
        assert g6.copies_per_instance == 1

    def test_model_details_stand_in_for_a_missing_deployment_configuration(self) -> None:
        described = job()
        del described["Recommendations"][1]["DeploymentConfiguration"]
        g6 = cd.candidates_from_ai_job(described)[1]
        assert (g6.instance_type, g6.instance_count, g6.copies_per_instance) == (G6, 1, 1)
        assert g6.image_uri is None

    def test_a_ttft_in_seconds_is_converted_to_milliseconds(self) -> None:
        g6 = cd.candidates_from_ai_job(job())[1]
        latency, _ = cd.latency_ms(g6, inputs().slo)
        assert latency == Decimal("420.00")


class TestFailedJob:
    def test_a_failed_job_raises_with_sagemakers_failure_reason(self) -> None:
        failed = job()
        failed["AIRecommendationJobStatus"] = "Failed"
        failed["FailureReason"] = "Insufficient capacity for ml.g6.2xlarge"
        del failed["Recommendations"]
        with pytest.raises(InvalidJobResultError, match="Failed, not Completed: Insufficient"):
            cd.candidates_from_ai_job(failed)

    def test_a_completed_job_without_recommendations_raises(self) -> None:
        empty = job()
        empty["Recommendations"] = []
        with pytest.raises(InvalidJobResultError, match="completed with none"):
            cd.candidates_from_ai_job(empty)


class TestCapacityMath:
    def test_per_copy_capacity_is_concurrency_over_the_copies_measured(self) -> None:
        # 8 concurrent requests on 1 instance x 2 copies: 4 per copy; at u=0.5, 2 per copy.
        judged = cd.evaluate_component(candidate(), inputs(peak=40))
        assert judged.capacity_per_copy == 4
        assert (judged.copies, judged.instance_count) == (20, 10)
        assert judged.cost_at_peak_per_hour == Decimal("1.515") * 20 / 2

    def test_exactly_at_the_boundary_no_copy_is_added(self) -> None:
        assert cd.copies_needed(Fraction(40), Fraction(4), Fraction("0.5"), 1) == 20
        assert cd.copies_needed(Fraction("40.01"), Fraction(4), Fraction("0.5"), 1) == 21
        assert cd.copies_needed(Fraction(7), Fraction(10), Fraction("0.7"), 1) == 1

    def test_an_odd_copy_count_needs_a_whole_instance(self) -> None:
        judged = cd.evaluate_component(candidate(), inputs(peak=42))
        assert (judged.copies, judged.instance_count) == (21, 11)

    def test_min_copies_and_min_instances_raise_the_counts(self) -> None:
        judged = cd.evaluate_component(candidate(), inputs(peak=1, min_copies=3, min_instances=4))
        assert (judged.copies, judged.instance_count) == (3, 4)


class TestIneligible:
    @pytest.mark.parametrize(
        ("built", "settings", "reason"),
        [
            (candidate(None), inputs(), "names no instance type"),
            (candidate(per_instance=None), inputs(), "no instance count or copies"),
            (candidate(count=0), inputs(), "no instance count or copies"),
            (candidate(ttft_ms=None), inputs(), "no TTFT at p90 or above"),
            (candidate(ttft_ms="501"), inputs(), "TTFT 501 ms exceeds the p90 SLO of 500 ms"),
            (
                candidate(),
                inputs(allowed_instance_types=("ml.g6",)),
                "ml.g5.2xlarge is not in the allowed instance types (ml.g6)",
            ),
            (candidate(), inputs(max_instances=9), "needs 10 instances at peak, more than the"),
            (
                candidate(),
                inputs(max_cost_per_hour=Decimal(15)),
                "costs 15.15 per hour at peak, more than the maximum of 15",
            ),
            (candidate(cost=None), inputs(), "no hourly price for ml.g5.2xlarge"),
        ],
    )
    def test_each_reason(self, built: cd.ComponentCandidate, settings: Any, reason: str) -> None:
        judged = cd.evaluate_component(built, settings)
        assert not judged.eligible
        assert reason in judged.reason

    def test_every_problem_is_said_at_once(self) -> None:
        judged = cd.evaluate_component(
            candidate(ttft_ms="900"), inputs(max_instances=2, allowed_instance_types=("ml.g6",))
        )
        assert judged.reason.count(";") == 2


class TestMetricNames:
    def slo_latency(self, *metrics: dict[str, str], percentile: str = "p90") -> Decimal | None:
        built = candidate(ttft_ms=None, extra=metrics)
        return cd.latency_ms(built, inputs(percentile=percentile).slo)[0]

    @pytest.mark.parametrize("name", ["ttft", "TTFT", "TimeToFirstToken", "time-to-first-token"])
    def test_documented_names_in_any_case_and_punctuation(self, name: str) -> None:
        assert self.slo_latency({"Metric": name, "Stat": "P90", "Value": "12", "Unit": "ms"}) == 12

    def test_an_unrecognised_name_is_not_measured(self) -> None:
        assert (
            self.slo_latency({"Metric": "latency", "Stat": "p90", "Value": "1", "Unit": "ms"})
            is None
        )

    def test_a_unit_is_needed_unless_the_name_says_milliseconds(self) -> None:
        assert self.slo_latency({"Metric": "ttft", "Stat": "p90", "Value": "12"}) is None
        assert self.slo_latency({"Metric": "ttft-ms", "Stat": "p90", "Value": "12"}) == 12
        assert (
            self.slo_latency({"Metric": "ttft", "Stat": "p90", "Value": "1", "Unit": "tokens"})
            is None
        )

    def test_a_lower_percentile_or_a_mean_says_nothing_about_the_tail(self) -> None:
        assert (
            self.slo_latency({"Metric": "ttft", "Stat": "p50", "Value": "1", "Unit": "ms"}) is None
        )
        assert (
            self.slo_latency({"Metric": "ttft", "Stat": "avg", "Value": "1", "Unit": "ms"}) is None
        )
        assert self.slo_latency({"Metric": "ttft", "Value": "1", "Unit": "ms"}) is None

    def test_the_lowest_percentile_at_or_above_the_slo_is_judged(self) -> None:
        metrics = (
            {"Metric": "ttft", "Stat": "p99", "Value": "400", "Unit": "ms"},
            {"Metric": "ttft", "Stat": "p95", "Value": "300", "Unit": "ms"},
            {"Metric": "ttft", "Stat": "max", "Value": "900", "Unit": "ms"},
        )
        assert self.slo_latency(*metrics, percentile="p90") == 300
        assert self.slo_latency(*metrics, percentile="p99") == 400
        assert self.slo_latency(*metrics, percentile="p99.9") == 900

    def test_a_value_that_is_not_a_latency_is_not_measured(self) -> None:
        for value in ("NaN", "-1", "fast"):
            metric = {"Metric": "ttft", "Stat": "p90", "Value": value, "Unit": "ms"}
            assert self.slo_latency(metric) is None


class TestPrices:
    def test_the_jobs_cost_per_hour_of_one_instance_is_the_price(self) -> None:
        judged = cd.evaluate_component(candidate(), inputs(prices={G5: "9"}))
        assert (judged.price_per_hour, judged.price_source) == (
            Decimal("1.515"),
            "expected-performance",
        )

    def test_a_multi_instance_recommendations_cost_is_not_taken(self) -> None:
        # Per instance or for the 2 instances? The docs do not say: the settings' price counts.
        judged = cd.evaluate_component(candidate(count=2), inputs(prices={G5: "1.6"}))
        assert (judged.price_per_hour, judged.price_source) == (Decimal("1.6"), "hourly-prices")

    @pytest.mark.parametrize(
        "metric",
        [
            {"Metric": "cost", "Value": "0.2", "Unit": "USD/1M tokens"},
            {"Metric": "cost", "Value": "1100", "Unit": "USD/month"},
            {"Metric": "cost", "Value": "1.4", "Unit": "EUR/hour"},
            {"Metric": "cost", "Value": "1.5"},
            {"Metric": "cost_per_inference", "Value": "0.001", "Unit": "USD"},
        ],
    )
    def test_a_cost_that_is_not_dollars_per_hour_is_not_a_price(
        self, metric: dict[str, str]
    ) -> None:
        judged = cd.evaluate_component(candidate(cost=None, extra=(metric,)), inputs())
        assert judged.reason == "no hourly price for ml.g5.2xlarge"

    @pytest.mark.parametrize(
        "metric",
        [
            {"Metric": "CostPerHour", "Value": "1.5"},
            {"Metric": "cost", "Value": "1.5", "Unit": "$/hr"},
            {"Metric": "hourly_cost", "Value": "1.5", "Unit": "USD per hour"},
        ],
    )
    def test_a_price_per_hour_is_read_as_people_write_it(self, metric: dict[str, str]) -> None:
        judged = cd.evaluate_component(candidate(cost=None, extra=(metric,)), inputs())
        assert judged.price_per_hour == Decimal("1.5")

    def test_an_unmeasured_candidate_keeps_its_price_for_the_current_cost(self) -> None:
        judged = cd.evaluate_component(candidate(ttft_ms=None), inputs())
        assert not judged.eligible and judged.price_per_hour == Decimal("1.515")
        assert judged.cost_at_peak_per_hour is None

    def test_a_negative_hourly_price_is_no_price(self) -> None:
        judged = cd.evaluate_component(candidate(cost=None), inputs(prices={G5: "-1"}))
        assert judged.reason == "no hourly price for ml.g5.2xlarge"
        assert judged.price_per_hour is None

    def test_hourly_prices_fill_in_for_a_missing_cost(self) -> None:
        judged = cd.evaluate_component(candidate(cost=None), inputs(prices={G5: "1.5"}))
        assert judged.eligible and judged.cost_at_peak_per_hour == Decimal(15)


class TestChoice:
    def test_the_cheapest_eligible_candidate_wins(self) -> None:
        made = cd.decide_component(cd.candidates_from_ai_job(job()), inputs(slo_ms="500"))
        assert made.action == "apply"
        assert made.chosen is not None and made.chosen.candidate.instance_type == G6
        assert made.chosen.cost_at_peak_per_hour == Decimal("9.7760")

    def test_a_tighter_slo_moves_to_the_faster_type(self) -> None:
        made = cd.decide_component(cd.candidates_from_ai_job(job()), inputs(slo_ms="400"))
        assert made.chosen is not None and made.chosen.candidate.instance_type == G5
        g6 = next(e for e in made.evaluations if e.candidate.instance_type == G6)
        assert "TTFT 420 ms exceeds the p90 SLO of 400 ms" in g6.reason

    def test_no_eligible_candidate_is_a_reject_naming_every_reason(self) -> None:
        made = cd.decide_component(cd.candidates_from_ai_job(job()), inputs(slo_ms="100"))
        assert made.action == "reject" and made.chosen is None and made.autoscaling is None
        assert (
            "ml.g5.2xlarge: TTFT 310 ms" in made.reason and "ml.g6.2xlarge: TTFT 420" in made.reason
        )

    def test_equal_cost_prefers_lower_latency(self) -> None:
        slow, fast = candidate("ml.g5.xlarge", ttft_ms="200"), candidate(G5, ttft_ms="100")
        made = cd.decide_component([slow, fast], inputs())
        assert made.chosen is not None and made.chosen.candidate is fast
        assert "same cost at peak, ranked lower" in made.evaluations[0].reason

    def test_equal_cost_and_latency_prefers_fewer_instances_then_the_name(self) -> None:
        # Two copies per instance at twice the price: same cost, half the instances.
        # Both measured 4 copies under 16 requests: 4 per copy, 20 copies at peak.
        packed = candidate("ml.g6.4xlarge", per_instance=4, cost="3.03")
        spread = candidate("ml.g5.4xlarge", count=2, per_instance=2, cost=None)
        made = cd.decide_component(
            [spread, packed], inputs(concurrency=16, prices={"ml.g5.4xlarge": "1.515"})
        )
        assert [e.cost_at_peak_per_hour for e in made.evaluations] == [Decimal("15.15")] * 2
        assert made.chosen is not None and made.chosen.candidate is packed
        twin = candidate("ml.g5.12xlarge")
        made = cd.decide_component([candidate(G5), twin], inputs())
        assert made.chosen is not None and made.chosen.candidate.instance_type == "ml.g5.12xlarge"

    def test_autoscaling_targets_concurrent_requests_per_copy(self) -> None:
        made = cd.decide_component([candidate()], inputs(min_copies=2, max_instances=12))
        assert made.autoscaling is not None
        assert made.autoscaling.metric == (
            "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
        )
        assert made.autoscaling.target_value == 2.0  # 4 per copy at u = 0.5
        assert (made.autoscaling.min_capacity, made.autoscaling.max_capacity) == (2, 24)


class TestAction:
    def test_another_instance_type_is_no_change_saying_what_to_do(self) -> None:
        made = cd.decide_component(
            cd.candidates_from_ai_job(job()), inputs(), current(G5, copies=24, instances=12)
        )
        assert made.action == "no-change"
        assert made.chosen is not None and made.chosen.candidate.instance_type == G6
        assert "runs ml.g5.2xlarge and the choice needs ml.g6.2xlarge" in made.reason
        assert "new endpoint config" in made.reason

    def test_more_instances_than_managed_scaling_allows_is_no_change(self) -> None:
        made = cd.decide_component(
            [candidate()], inputs(), current(max_instances=8, copies=4, instances=2)
        )
        assert made.action == "no-change"
        assert "needs 10 instances, more than its ManagedInstanceScaling MaxInstanceCount (8)" in (
            made.reason
        )

    def test_without_managed_scaling_the_running_instances_are_the_limit(self) -> None:
        made = cd.decide_component(
            [candidate()], inputs(), current(max_instances=None, copies=8, instances=4)
        )
        assert made.action == "no-change"
        assert "the instances it runs (no managed scaling) (4)" in made.reason

    def test_the_same_copies_and_spec_is_no_change(self) -> None:
        made = cd.decide_component([candidate()], inputs(), current(copies=20, instances=10))
        assert made.action == "no-change"
        assert made.reason.startswith("the component already runs it")

    def test_fewer_copies_are_applied_when_the_saving_is_enough(self) -> None:
        made = cd.decide_component(
            [candidate()], inputs(min_saving_percent=Decimal(10)), current(copies=24, instances=12)
        )
        assert made.action == "apply"
        assert made.chosen is not None and made.chosen.copies == 20

    def test_hysteresis_keeps_a_current_that_meets_the_slo_for_a_small_saving(self) -> None:
        # 24 -> 20 copies saves 2 instances of 1.515: 3.03/h, 2211.9/month, 16.7%.
        made = cd.decide_component(
            [candidate()], inputs(min_saving_percent=Decimal(20)), current(copies=24, instances=12)
        )
        assert made.action == "no-change"
        assert "the current 24 copies on ml.g5.2xlarge meets the SLO" in made.reason
        assert "2211.9 per month (16.7%)" in made.reason

    def test_hysteresis_never_keeps_too_few_copies(self) -> None:
        made = cd.decide_component(
            [candidate()], inputs(min_saving_percent=Decimal(99)), current(copies=16, instances=8)
        )
        assert made.action == "apply"


class TestDetail:
    def settings(self, **changes: Any) -> cd.ComponentSettings:
        return cd.ComponentSettings(
            endpoint_name="llm-endpoint",
            variant_name="AllTraffic",
            inference_component_name="llama-ic",
            decision_input=inputs(**changes),
        )

    def test_every_key_of_the_endpoint_detail_is_present(self) -> None:
        endpoint_detail = recommend(
            candidates=[
                Candidate(
                    recommendation_id="r",
                    instance_type="ml.c5.xlarge",
                    serverless=False,
                    cost_per_hour=Decimal("0.2"),
                    cost_per_inference=None,
                    max_invocations=600,
                    model_latency_ms=Decimal(50),
                )
            ],
            job_name="j",
            decision_input=DecisionInput(
                peak_requests_per_minute=Fraction(100),
                target_utilization=Fraction(1, 2),
                slo=Slo(percentile="P99", max_latency_ms=Decimal(100)),
                guardrails=Guardrails(),
            ),
            endpoint_name="e",
            variant_name="AllTraffic",
            endpoint_config={
                "EndpointConfigName": "c",
                "ProductionVariants": [
                    {
                        "VariantName": "AllTraffic",
                        "InstanceType": "ml.c5.xlarge",
                        "InitialInstanceCount": 1,
                    }
                ],
            },
        )
        detail = cd.recommend_component(
            description=job(),
            settings=self.settings(),
            inference_component=inference_component(),
            endpoint_config=endpoint_config(G6),
        )
        assert set(endpoint_detail) <= set(detail)
        assert set(endpoint_detail["current"]) <= set(detail["current"])
        assert set(endpoint_detail["inputs"]) <= set(detail["inputs"])
        assert set(endpoint_detail["inputs"]["guardrails"]) <= set(detail["inputs"]["guardrails"])
        for mine in detail["candidates"]:
            assert set(endpoint_detail["candidates"][0]) <= set(mine)
        assert json.loads(json.dumps(detail, allow_nan=False)) == detail

    def test_the_detail_says_copies_and_changes_only_what_the_recommendation_changes(self) -> None:
        detail = cd.recommend_component(
            description=job(),
            settings=self.settings(),
            inference_component=inference_component(copies=12, memory=24576),
            endpoint={
                "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": 12}]
            },
            endpoint_config=endpoint_config(G6, 12),
        )
        assert detail["kind"] == "inference-component"
        assert detail["inference_component_name"] == "llama-ic"
        assert detail["evidence"] == "ai-recommendation"
        assert (detail["action"], detail["instance_type"], detail["instance_count"]) == (
            "apply",
            G6,
            10,
        )
        component = detail["inference_component"]
        assert (component["copy_count"], component["copies_per_instance"]) == (10, 1)
        assert component["compute_resource_requirements"] is None  # 24576 MB, 1 per instance
        assert component["container"] is None  # same image and environment
        assert component["current"]["copy_count"] == 12
        assert detail["current"]["estimated_cost_per_hour"] == pytest.approx(0.9776 * 12)
        assert detail["estimated_cost_per_hour"] == pytest.approx(9.776)
        chosen = next(c for c in detail["candidates"] if c["chosen"])
        assert (chosen["ttft_ms"], chosen["capacity_per_copy"], chosen["copies"]) == (420, 8, 10)
        assert detail["autoscaling"]["target_value"] == 4.0

    def test_new_memory_is_in_the_detail_and_a_plain_recommendation_keeps_the_container(
        self,
    ) -> None:
        other = copy.deepcopy(ENVIRONMENT) | {"OPTION_MAX_MODEL_LEN": "2048"}
        detail = cd.recommend_component(
            description=job(),
            settings=self.settings(),
            inference_component=inference_component(copies=12, memory=16384, environment=other),
            endpoint_config=endpoint_config(G6, 12),
        )
        component = detail["inference_component"]
        assert component["compute_resource_requirements"] == {"MinMemoryRequiredInMb": 24576}
        # The job's image and environment are its defaults for serving the model, not a change
        # (the issue: container and environment only when the recommendation says so).
        assert component["container"] is None

    def test_an_optimized_recommendation_sets_its_container_over_the_components_environment(
        self,
    ) -> None:
        optimized = job()
        for recommendation in optimized["Recommendations"]:
            recommendation["OptimizationDetails"] = [{"OptimizationType": "SpeculativeDecoding"}]
        own = {"HF_MODEL_ID": "meta-llama/Llama-3-8B", "OPTION_MAX_MODEL_LEN": "2048"}
        detail = cd.recommend_component(
            description=optimized,
            settings=self.settings(),
            inference_component=inference_component(copies=12, memory=16384, environment=own),
            endpoint_config=endpoint_config(G6, 12),
        )
        # The component's own variables stay; the job's win where both set one.
        assert detail["inference_component"]["container"] == {
            "Image": IMAGE,
            "Environment": {"HF_MODEL_ID": "meta-llama/Llama-3-8B", **ENVIRONMENT},
        }

    def test_the_current_packing_is_the_gpus_over_each_copys_accelerators(self) -> None:
        """On an endpoint hosting other components too, the component's own packing counts:
        not its copies over every instance of the variant."""
        component = inference_component(copies=8, memory=12288)  # 1 accelerator a copy
        current = cd.current_component_from(
            component, None, endpoint_config(G6, 8), "AllTraffic", gpus_per_instance=4
        )
        assert current.copies_per_instance == 4
        alone = cd.current_component_from(component, None, endpoint_config(G6, 8), "AllTraffic")
        assert alone.copies_per_instance == 1  # 8 copies over 8 instances, without the GPUs

    def test_without_the_current_state_the_detail_applies_and_says_none(self) -> None:
        detail = cd.recommend_component(description=job(), settings=self.settings())
        assert detail["current"] is None and detail["action"] == "apply"
        assert detail["inference_component"]["current"] is None

    def test_a_missing_variant_is_named(self) -> None:
        with pytest.raises(VariantNotFoundError, match="no variant 'Blue'"):
            cd.current_component_from(inference_component(), None, endpoint_config(), "Blue")


class TestSettings:
    def test_the_contracts_document_parses(self) -> None:
        parsed = cd.settings_from(
            {
                "settings_version": 1,
                "kind": "inference-component",
                "endpoint_name": "llm-endpoint",
                "variant_name": "AllTraffic",
                "inference_component_name": "llama-ic",
                "job": {"job_type": "ai-recommendation", "workload_concurrency": 8},
                "slo": {"metric": "ttft", "percentile": "p90", "max_latency_ms": 500},
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
                "hourly_prices": {"ml.g5.2xlarge": 1.515},
            }
        )
        assert parsed.inference_component_name == "llama-ic"
        settings = parsed.decision_input
        assert settings.workload_concurrency == 8 and settings.target_utilization == Fraction(1, 2)
        assert settings.guardrails.max_instances == 4
        assert settings.hourly_prices == {"ml.g5.2xlarge": Decimal("1.515")}

    def test_an_endpoint_settings_document_is_refused(self) -> None:
        with pytest.raises(ValueError, match="not an inference-component settings document"):
            cd.settings_from({"settings_version": 1, "endpoint_name": "e"})

    def test_an_unknown_slo_metric_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"slo\.metric"):
            cd.ComponentSlo(metric="e2e", percentile="p90", max_latency_ms=Decimal(1))


EXAMPLES = int(os.environ.get("RIGHTSIZING_PROPERTY_EXAMPLES", "300"))

measured_candidates = st.lists(
    st.builds(
        candidate,
        st.sampled_from([G5, G6, "ml.g6e.xlarge", "ml.p4d.24xlarge"]),
        count=st.integers(1, 4),
        per_instance=st.integers(1, 8),
        ttft_ms=st.integers(1, 2000).map(str),
        cost=st.decimals("0.1", "40", places=3).map(str),
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    measured_candidates,
    st.integers(0, 2000),
    st.integers(1, 64),
    st.sampled_from(["0.5", "0.7", "1"]),
    st.integers(1, 3),
)
def test_the_chosen_copies_carry_the_peak_within_the_measured_load(
    candidates: list[cd.ComponentCandidate],
    peak: int,
    concurrency: int,
    utilization: str,
    min_copies: int,
) -> None:
    decision_input = cd.ComponentInput(
        peak_concurrent_requests=Fraction(peak),
        target_utilization=Fraction(utilization),
        workload_concurrency=concurrency,
        slo=cd.ComponentSlo(metric="ttft", percentile="p90", max_latency_ms=Decimal(1000)),
        guardrails=Guardrails(max_instances=1000),
        min_copies=min_copies,
    )
    made = cd.decide_component(candidates, decision_input)
    for judged in made.evaluations:
        if judged.eligible:
            assert judged.copies is not None and judged.instance_count is not None
            assert judged.capacity_per_copy is not None and judged.latency_ms is not None
            # Each copy is planned at most at u times the load the job measured per copy...
            assert (
                Fraction(peak, judged.copies)
                <= judged.capacity_per_copy * decision_input.target_utilization
            )
            # ...one copy fewer would not do (unless the minimum holds it up)...
            if judged.copies > min_copies:
                fewer = Fraction(peak, judged.copies - 1)
                assert fewer > judged.capacity_per_copy * decision_input.target_utilization
            # ...and the instances hold the copies.
            per_instance = judged.candidate.copies_per_instance
            assert per_instance is not None
            assert judged.instance_count * per_instance >= judged.copies
            assert judged.latency_ms <= 1000
    if made.chosen is not None:
        assert made.action == "apply" and made.chosen.cost_at_peak_per_hour is not None
        assert all(
            made.chosen.cost_at_peak_per_hour <= e.cost_at_peak_per_hour
            for e in made.evaluations
            if e.eligible and e.cost_at_peak_per_hour is not None
        )
    else:
        assert made.action == "reject"
