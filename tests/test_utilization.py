"""The audit's judgement at its edges: band limits, the SLO, the measured capacity (issue 19).

Each limit is tested exactly at it and just past it; missing evidence (no SLO, no latency, no
shape) must be judged without it, not crash; reasons and evidence are compared whole.
"""

from __future__ import annotations

from typing import Any

import pytest
from rightsizing_runtime.utilization import (
    IDLE,
    INSUFFICIENT_DATA,
    MIN_HOURS_OF_DATA,
    OPTIMIZED,
    OVERPROVISIONED,
    UNDERPROVISIONED,
    Band,
    Capacity,
    ComponentHistory,
    Finding,
    Shape,
    Slo,
    classify,
    classify_component,
)

from tests.test_audit import history

SLO = Slo(percentile="p99", max_latency_ms=300)
FOUR_VCPUS = Shape(vcpus=4)
MEASURED = Capacity(max_invocations_per_instance_per_minute=648, cost_per_hour=0.204)


def judge(*, shape: Shape | None = FOUR_VCPUS, **overrides: Any) -> Finding:
    """A variant of 2 instances, band 60-80 %, SLO p99 300 ms, nothing measured by IR."""
    arguments: dict[str, Any] = {
        "shape": shape,
        "instance_count": 2,
        "band": Band(low=60, high=80),
        "slo": SLO,
        "capacity": Capacity(),
    }
    history_fields = {k: overrides.pop(k) for k in list(overrides) if k not in arguments}
    arguments.update(overrides)
    return classify(history(**history_fields), **arguments)


def test_the_evidence_of_a_finding_whole() -> None:
    finding = judge(capacity=MEASURED, model_latency_us=123_456.7891, cpu=100, memory=70.456)
    assert finding == Finding(
        classification=OPTIMIZED,
        reasons=("utilization within 60-80% and the SLO met",),
        evidence={
            "hours_with_data": 336,
            "invocations": 1_000_000,
            "invocations_per_instance_peak": 500,
            "measured_capacity_per_instance": 648,
            "model_latency_ms": 123.457,
            "slo": {"percentile": "p99", "max_latency_ms": 300},
            "vcpus": 4,
            "gpus": 0,
            "instance_count": 2,
            "cpu_per_core_percent": 25.0,
            "memory_percent": 70.46,
            "gpu_per_gpu_percent": None,
            "gpu_memory_per_gpu_percent": None,
        },
        cost_per_hour=0.408,
    )


# -- Band edges -----------------------------------------------------------------------------------


def test_exactly_at_the_top_of_the_band_is_not_underprovisioned() -> None:
    at = judge(cpu=320, memory=80)  # 80 % a core on 4 vCPUs
    assert at.classification == OPTIMIZED
    over = judge(cpu=322, memory=80)
    assert (over.classification, over.reasons) == (
        UNDERPROVISIONED,
        ("cpu_per_core 80.5% above 80%",),
    )
    memory = judge(cpu=320, memory=80.5)
    assert memory.reasons == ("memory 80.5% above 80%",)


def test_exactly_at_the_bottom_of_the_band_is_not_overprovisioned() -> None:
    assert judge(cpu=240, memory=60).classification == OPTIMIZED  # 60 % a core
    # One measure at the bottom keeps the variant in the band however low the others are.
    assert judge(cpu=200, memory=60).classification == OPTIMIZED
    assert judge(cpu=240, memory=10).classification == OPTIMIZED
    below = judge(cpu=236, memory=59)
    assert (below.classification, below.reasons) == (
        OVERPROVISIONED,
        ("cpu_per_core 59.0% below 60%", "memory 59.0% below 60%"),
    )


def test_every_gpu_measure_is_judged_per_gpu_at_the_edges() -> None:
    shape = Shape(vcpus=48, gpus=4)
    at = judge(shape=shape, cpu=1200, memory=70, gpu=320, gpu_memory=240)  # 80 %, 60 % a GPU
    assert at.classification == OPTIMIZED
    over = judge(shape=shape, cpu=1200, memory=70, gpu=320, gpu_memory=324)
    assert over.reasons == ("gpu_memory_per_gpu 81.0% above 80%",)
    low = judge(shape=shape, cpu=480, memory=20, gpu=236, gpu_memory=100)
    assert low.classification == OVERPROVISIONED
    assert low.reasons == (
        "cpu_per_core 10.0% below 60%",
        "memory 20.0% below 60%",
        "gpu_per_gpu 59.0% below 60%",
        "gpu_memory_per_gpu 25.0% below 60%",
    )


def test_a_band_of_fractions_is_printed_as_set() -> None:
    finding = judge(band=Band(low=55.5, high=75.5), cpu=260, memory=65)
    assert finding.reasons == ("utilization within 55.5-75.5% and the SLO met",)
    assert judge(band=Band(low=55.5, high=75.5), cpu=100, memory=50).reasons == (
        "cpu_per_core 25.0% below 55.5%",
        "memory 50.0% below 55.5%",
    )


# -- The SLO and the measured capacity ------------------------------------------------------------


def test_latency_exactly_at_the_slo_meets_it() -> None:
    assert judge(model_latency_us=300_000).classification == OPTIMIZED
    over = judge(model_latency_us=300_001)
    assert (over.classification, over.reasons) == (
        UNDERPROVISIONED,
        ("ModelLatency p99 300.0 ms above the SLO of 300 ms",),
    )
    assert judge(
        model_latency_us=350_000, slo=Slo(percentile="p95", max_latency_ms=250.5)
    ).reasons == ("ModelLatency p95 350.0 ms above the SLO of 250.5 ms",)


def test_latency_history_without_an_slo_is_judged_on_utilization() -> None:
    # No SLO configured and none in the ledger: the latency is evidence, never a verdict.
    finding = judge(slo=None, model_latency_us=950_000)
    assert (finding.classification, finding.reasons) == (
        OPTIMIZED,
        ("utilization within 60-80% and no SLO judged",),
    )
    assert finding.evidence["slo"] is None
    assert finding.evidence["model_latency_ms"] == 950.0
    # Nothing to say about a latency that nobody set a limit for, even when none came back.
    low = judge(slo=None, model_latency_us=None, cpu=100, memory=20)
    assert (low.classification, low.reasons) == (
        OVERPROVISIONED,
        ("cpu_per_core 25.0% below 60%", "memory 20.0% below 60%"),
    )


def test_missing_latency_evidence_is_judged_without_it_and_said() -> None:
    # CloudWatch returns no ModelLatency percentile (SageMaker documents none): the verdict
    # rests on the rest, and the reasons say the latency was not judged, on every verdict.
    unjudged = "ModelLatency p99 not returned by CloudWatch: latency not judged"
    over = judge(model_latency_us=None, cpu=100, memory=20)
    assert (over.classification, over.reasons) == (
        OVERPROVISIONED,
        ("cpu_per_core 25.0% below 60%", "memory 20.0% below 60%", unjudged),
    )
    assert over.evidence["model_latency_ms"] is None
    under = judge(model_latency_us=None, cpu=340)
    assert (under.classification, under.reasons) == (
        UNDERPROVISIONED,
        ("cpu_per_core 85.0% above 80%", unjudged),
    )


def test_a_peak_exactly_at_the_measured_capacity_is_not_underprovisioned() -> None:
    assert judge(capacity=MEASURED, invocations_per_instance_peak=648).classification == OPTIMIZED
    over = judge(capacity=MEASURED, invocations_per_instance_peak=648.5)
    assert over.reasons == (
        "invocations per instance peak 648.5/min above the 648/min the last recommendation "
        "measured",
    )


def test_a_peak_exactly_at_the_bands_share_of_capacity_is_not_overprovisioned() -> None:
    capacity = Capacity(max_invocations_per_instance_per_minute=600)
    # 60 % of 600 is 360: a peak there is in the band, below it the variant is oversized.
    at = judge(capacity=capacity, cpu=100, memory=30, invocations_per_instance_peak=360)
    assert at.classification == OPTIMIZED
    below = judge(capacity=capacity, cpu=100, memory=30, invocations_per_instance_peak=359)
    assert below.reasons == (
        "cpu_per_core 25.0% below 60%",
        "memory 30.0% below 60%",
        "invocations per instance peak 359/min below 60% of the measured 600/min",
    )


def test_low_utilization_without_a_peak_or_a_capacity_is_overprovisioned() -> None:
    reasons = ("cpu_per_core 25.0% below 60%", "memory 30.0% below 60%")
    no_capacity = judge(cpu=100, memory=30, invocations_per_instance_peak=500)
    assert (no_capacity.classification, no_capacity.reasons) == (OVERPROVISIONED, reasons)
    no_peak = judge(capacity=MEASURED, cpu=100, memory=30, invocations_per_instance_peak=None)
    assert (no_peak.classification, no_peak.reasons) == (OVERPROVISIONED, reasons)


def test_every_reason_for_underprovisioned_in_order() -> None:
    finding = judge(
        shape=Shape(vcpus=4, gpus=1),
        capacity=MEASURED,
        model_latency_us=400_000,
        cpu=340,
        memory=90,
        gpu=95,
        gpu_memory=85,
        invocations_per_instance_peak=700,
    )
    assert finding.reasons == (
        "ModelLatency p99 400.0 ms above the SLO of 300 ms",
        "cpu_per_core 85.0% above 80%",
        "memory 90.0% above 80%",
        "gpu_per_gpu 95.0% above 80%",
        "gpu_memory_per_gpu 85.0% above 80%",
        "invocations per instance peak 700/min above the 648/min the last recommendation measured",
    )


# -- Too little to judge, or nothing to judge -----------------------------------------------------


def test_thirty_hours_of_data_are_enough() -> None:
    assert MIN_HOURS_OF_DATA == 30
    short = judge(hours_with_data=29)
    assert (short.classification, short.reasons) == (
        INSUFFICIENT_DATA,
        ("29 hours with data in the window, fewer than 30: no judgement",),
    )
    assert judge(hours_with_data=30).classification == OPTIMIZED


@pytest.mark.parametrize("invocations", [0, 0.0, None])
def test_no_invocations_is_idle_with_the_cost_of_its_instances(invocations: float | None) -> None:
    priced = judge(
        invocations=invocations,
        instance_count=3,
        capacity=Capacity(cost_per_hour=0.1234567),
    )
    assert (priced.classification, priced.reasons, priced.cost_per_hour) == (
        IDLE,
        ("no invocations in the window (0.3704 per hour)",),
        0.3704,
    )
    unpriced = judge(invocations=invocations)
    assert (unpriced.reasons, unpriced.cost_per_hour) == (
        ("no invocations in the window (cost unknown)",),
        None,
    )


def test_no_measured_utilization_is_insufficient_data() -> None:
    finding = judge(shape=None, memory=None, cpu=300)
    assert (finding.classification, finding.reasons) == (
        INSUFFICIENT_DATA,
        ("no utilization metric (instance type unknown or metrics missing): no judgement",),
    )
    assert finding.evidence["cpu_per_core_percent"] is None
    assert (finding.evidence["vcpus"], finding.evidence["gpus"]) == (None, None)


def test_gpu_metrics_on_an_instance_without_gpus_are_not_divided_by_zero() -> None:
    finding = judge(shape=Shape(vcpus=4, gpus=0), gpu=95, gpu_memory=95)
    assert finding.classification == OPTIMIZED
    assert finding.evidence["gpu_per_gpu_percent"] is None
    assert finding.evidence["gpu_memory_per_gpu_percent"] is None


def test_utilizations_are_rounded_to_hundredths() -> None:
    finding = judge(shape=Shape(vcpus=3, gpus=3), cpu=200, memory=66.666, gpu=200, gpu_memory=199)
    assert {k: v for k, v in finding.evidence.items() if k.endswith("_percent")} == {
        "cpu_per_core_percent": 66.67,
        "memory_percent": 66.67,
        "gpu_per_gpu_percent": 66.67,
        "gpu_memory_per_gpu_percent": 66.33,
    }


# -- Inference components: the same rules on per-copy metrics (issue 17) --------------------------


def component_history(**overrides: Any) -> ComponentHistory:
    """Two weeks of a busy LLM component on one GPU per copy (metrics already 0-100 % a copy)."""
    values: dict[str, Any] = {
        "hours_with_data": 336,
        "invocations": 250_000,
        "invocations_per_copy_peak": 40,
        "concurrent_requests_per_copy_peak": 3,
        "cpu": 35,
        "memory": 50,
        "gpu": 70,
        "gpu_memory": 65,
    }
    values.update(overrides)
    return ComponentHistory(**values)


def judge_component(capacity_per_copy: float | None = None, **overrides: Any) -> Finding:
    return classify_component(
        component_history(**overrides),
        copy_count=4,
        band=Band(low=60, high=80),
        capacity_per_copy=capacity_per_copy,
    )


def test_a_component_is_judged_on_its_normalized_metrics_as_they_come() -> None:
    """GPUUtilizationNormalized is already per GPU (and per copy): 70 is 70 %, not divided by
    a GPU count as the variants' GPUUtilization is."""
    finding = judge_component(capacity_per_copy=4)
    assert finding == Finding(
        classification=OPTIMIZED,
        reasons=("utilization within 60-80% and no SLO judged",),
        evidence={
            "hours_with_data": 336,
            "invocations": 250_000,
            "invocations_per_copy_peak": 40,
            "concurrent_requests_per_copy_peak": 3,
            "measured_capacity_per_copy": 4,
            "copy_count": 4,
            "cpu_normalized_percent": 35,
            "memory_normalized_percent": 50,
            "gpu_normalized_percent": 70,
            "gpu_memory_normalized_percent": 65,
        },
        cost_per_hour=None,
    )


def test_a_component_above_the_band_on_any_measure_is_underprovisioned() -> None:
    finding = judge_component(gpu=80.01, gpu_memory=92)
    assert finding.classification == UNDERPROVISIONED
    assert finding.reasons == (
        "gpu_normalized 80.0% above 80%",
        "gpu_memory_normalized 92.0% above 80%",
    )
    assert judge_component(gpu=80, gpu_memory=80).classification == OPTIMIZED


def test_a_component_peak_concurrency_above_what_a_copy_held_is_underprovisioned() -> None:
    finding = judge_component(capacity_per_copy=4, concurrent_requests_per_copy_peak=6)
    assert finding.classification == UNDERPROVISIONED
    assert finding.reasons == (
        "concurrent requests per copy peak 6 above the 4 the last recommendation measured",
    )
    at = judge_component(capacity_per_copy=4, concurrent_requests_per_copy_peak=4)
    assert at.classification == OPTIMIZED


def test_a_quiet_component_is_overprovisioned_unless_its_copies_peak_near_capacity() -> None:
    quiet = {"cpu": 10, "memory": 30, "gpu": 20, "gpu_memory": 40}
    far = judge_component(capacity_per_copy=8, concurrent_requests_per_copy_peak=2, **quiet)
    assert far.classification == OVERPROVISIONED
    assert far.reasons[-1] == "concurrent requests per copy peak 2 below 60% of the measured 8"
    near = judge_component(capacity_per_copy=8, concurrent_requests_per_copy_peak=5, **quiet)
    assert near.classification == OPTIMIZED
    unmeasured = judge_component(concurrent_requests_per_copy_peak=5, **quiet)
    assert unmeasured.classification == OVERPROVISIONED


def test_a_component_without_invocations_is_idle_and_without_data_insufficient() -> None:
    assert judge_component(invocations=0).classification == IDLE
    assert judge_component(invocations=None).reasons == (
        "no invocations in the window (cost unknown)",
    )
    few = judge_component(hours_with_data=MIN_HOURS_OF_DATA - 1)
    assert few.classification == INSUFFICIENT_DATA
    blind = judge_component(cpu=None, memory=None, gpu=None, gpu_memory=None)
    assert blind.classification == INSUFFICIENT_DATA


def test_a_cpu_component_is_judged_without_gpu_measures() -> None:
    finding = judge_component(gpu=None, gpu_memory=None, cpu=20, memory=30)
    assert finding.classification == OVERPROVISIONED
    assert finding.reasons == (
        "cpu_normalized 20.0% below 60%",
        "memory_normalized 30.0% below 60%",
    )
