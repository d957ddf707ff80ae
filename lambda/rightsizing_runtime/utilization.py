"""The passive audit's judgement: is a variant over- or under-provisioned, from its history (pure).

The audit (``audit.py``) reads each variant's CloudWatch history over the lookback window and
hands it here as :class:`History`; :func:`classify` turns it into a :class:`Finding` with its
evidence. Rules, in order (README, "Utilization audit"):

1. fewer than ``MIN_HOURS_OF_DATA`` hours with data in the window: ``InsufficientData``, never a
   guess (Compute Optimizer asks for the same 30 hours);
2. no invocation in the window: ``Idle``, with what the variant costs per hour if known;
3. any of: ``ModelLatency`` at the SLO's percentile above the SLO; a utilization (CPU per core,
   memory, GPU per GPU, GPU memory per GPU, at the audit's percentile) above the band's top;
   the peak ``InvocationsPerInstance`` above the capacity per instance that the last
   recommendation measured: ``Underprovisioned``;
4. every measured utilization below the band's bottom (and the invocation peak below the bottom
   share of the measured capacity, when known): ``Overprovisioned``;
5. otherwise ``Optimized``.

``CPUUtilization`` is summed over vCPUs (0-400 % on 4 vCPUs), ``GPUUtilization`` and
``GPUMemoryUtilization`` over GPUs: they are divided by the instance's vCPU and GPU counts before
they are compared with the band. ``ModelLatency`` is in microseconds.

Inference components (:func:`classify_component`) are judged by the same rules, on the
per-copy metrics SageMaker publishes for them: their utilizations (``CPUUtilizationNormalized``,
``MemoryUtilizationNormalized``, ``GPUUtilizationNormalized``, ``GPUMemoryUtilizationNormalized``
in ``/aws/sagemaker/InferenceComponents``) are already 0-100 % per copy, over the copy's
reservation (or its limit when nothing is reserved): GPU utilization is already normalized per
GPU there, so nothing is divided. Their load is the per-copy peak of ``ConcurrentRequestsPerCopy``
against the concurrent requests per copy the component's last recommendation measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Fewer hours with data than this in the window is ``InsufficientData``.
MIN_HOURS_OF_DATA = 30
OVERPROVISIONED = "Overprovisioned"
UNDERPROVISIONED = "Underprovisioned"
OPTIMIZED = "Optimized"
IDLE = "Idle"
INSUFFICIENT_DATA = "InsufficientData"
#: Every classification of an endpoint variant, most actionable first.
CLASSIFICATIONS = (UNDERPROVISIONED, OVERPROVISIONED, IDLE, OPTIMIZED, INSUFFICIENT_DATA)
_MICROSECONDS_PER_MILLISECOND = 1000


@dataclass(frozen=True, kw_only=True)
class Band:
    """The utilization band a right-sized variant runs in, in percent (default 60-80)."""

    low: float = 60
    high: float = 80


@dataclass(frozen=True, kw_only=True)
class Shape:
    """What an instance type has: the utilizations are summed over these."""

    vcpus: int
    gpus: int = 0


@dataclass(frozen=True, kw_only=True)
class Slo:
    """The latency SLO the variant is held to: ``percentile`` (``p99``) at most this."""

    percentile: str
    max_latency_ms: float


@dataclass(frozen=True, kw_only=True)
class Capacity:
    """What the last recommendation measured for the type the variant runs on."""

    max_invocations_per_instance_per_minute: float | None = None
    cost_per_hour: float | None = None


@dataclass(frozen=True, kw_only=True)
class History:
    """One variant's CloudWatch history over the window (None: no datapoint for it)."""

    hours_with_data: int
    invocations: float | None
    invocations_per_instance_peak: float | None
    model_latency_us: float | None
    #: Percent at the audit's percentile, summed over vCPUs / GPUs as CloudWatch reports them.
    cpu: float | None
    memory: float | None
    gpu: float | None = None
    gpu_memory: float | None = None


@dataclass(frozen=True, kw_only=True)
class Finding:
    """The audit's verdict on one variant, with the numbers it rests on."""

    classification: str
    reasons: tuple[str, ...]
    evidence: Mapping[str, Any] = field(default_factory=dict)
    cost_per_hour: float | None = None


def classify(
    history: History,
    *,
    shape: Shape | None,
    instance_count: int,
    band: Band,
    slo: Slo | None,
    capacity: Capacity,
) -> Finding:
    """Judge one variant (rules in the module docstring)."""
    cost = (
        None
        if capacity.cost_per_hour is None
        else round(capacity.cost_per_hour * instance_count, 4)
    )
    utilizations = _normalized(history, shape)
    evidence: dict[str, Any] = {
        "hours_with_data": history.hours_with_data,
        "invocations": history.invocations,
        "invocations_per_instance_peak": history.invocations_per_instance_peak,
        "measured_capacity_per_instance": capacity.max_invocations_per_instance_per_minute,
        "model_latency_ms": None
        if history.model_latency_us is None
        else round(history.model_latency_us / _MICROSECONDS_PER_MILLISECOND, 3),
        "slo": None
        if slo is None
        else {"percentile": slo.percentile, "max_latency_ms": slo.max_latency_ms},
        "vcpus": None if shape is None else shape.vcpus,
        "gpus": None if shape is None else shape.gpus,
        "instance_count": instance_count,
        **{f"{name}_percent": value for name, value in utilizations.items()},
    }

    return _judge(
        hours_with_data=history.hours_with_data,
        invocations=history.invocations,
        utilizations=utilizations,
        band=band,
        slo=slo,
        model_latency_us=history.model_latency_us,
        peak=_Peak(
            label="invocations per instance peak",
            unit="/min",
            value=history.invocations_per_instance_peak,
            limit=capacity.max_invocations_per_instance_per_minute,
        ),
        evidence=evidence,
        cost=cost,
    )


@dataclass(frozen=True, kw_only=True)
class ComponentHistory:
    """One inference component's per-copy CloudWatch history over the window (None: no data)."""

    hours_with_data: int
    invocations: float | None
    #: The largest per-minute ``Sum`` of ``InvocationsPerCopy``.
    invocations_per_copy_peak: float | None
    #: The ``Maximum`` of ``ConcurrentRequestsPerCopy`` over the window.
    concurrent_requests_per_copy_peak: float | None
    #: Percent at the audit's percentile, already normalized per copy (0-100).
    cpu: float | None
    memory: float | None
    gpu: float | None = None
    gpu_memory: float | None = None


def classify_component(
    history: ComponentHistory,
    *,
    copy_count: int,
    band: Band,
    capacity_per_copy: float | None = None,
) -> Finding:
    """Judge one inference component (the module docstring's rules, on per-copy metrics).

    ``capacity_per_copy``: the concurrent requests one copy served within the SLO in the
    component's last recommendation (``capacity_per_copy`` of its candidate on the same
    instance type), or None. Latency is not judged: a component's SLO is on time to first
    token, which CloudWatch does not publish.
    """

    def percent(value: float | None) -> float | None:
        return None if value is None else round(value, 2)

    utilizations = {
        "cpu_normalized": percent(history.cpu),
        "memory_normalized": percent(history.memory),
        "gpu_normalized": percent(history.gpu),
        "gpu_memory_normalized": percent(history.gpu_memory),
    }
    evidence: dict[str, Any] = {
        "hours_with_data": history.hours_with_data,
        "invocations": history.invocations,
        "invocations_per_copy_peak": history.invocations_per_copy_peak,
        "concurrent_requests_per_copy_peak": history.concurrent_requests_per_copy_peak,
        "measured_capacity_per_copy": capacity_per_copy,
        "copy_count": copy_count,
        **{f"{name}_percent": value for name, value in utilizations.items()},
    }
    return _judge(
        hours_with_data=history.hours_with_data,
        invocations=history.invocations,
        utilizations=utilizations,
        band=band,
        slo=None,
        model_latency_us=None,
        peak=_Peak(
            label="concurrent requests per copy peak",
            unit="",
            value=history.concurrent_requests_per_copy_peak,
            limit=capacity_per_copy,
        ),
        evidence=evidence,
        cost=None,
    )


@dataclass(frozen=True, kw_only=True)
class _Peak:
    """The peak load against the capacity the last recommendation measured (rules 3 and 4)."""

    label: str
    unit: str
    value: float | None
    limit: float | None


def _judge(
    *,
    hours_with_data: int,
    invocations: float | None,
    utilizations: Mapping[str, float | None],
    band: Band,
    slo: Slo | None,
    model_latency_us: float | None,
    peak: _Peak,
    evidence: Mapping[str, Any],
    cost: float | None,
) -> Finding:
    """The rules of the module docstring, on measures already per core / per GPU / per copy."""

    def finding(classification: str, reasons: list[str]) -> Finding:
        return Finding(
            classification=classification,
            reasons=tuple(reasons),
            evidence=evidence,
            cost_per_hour=cost,
        )

    if hours_with_data < MIN_HOURS_OF_DATA:
        return finding(
            INSUFFICIENT_DATA,
            [
                f"{hours_with_data} hours with data in the window, fewer than "
                f"{MIN_HOURS_OF_DATA}: no judgement"
            ],
        )
    if not invocations:
        priced = "cost unknown" if cost is None else f"{cost} per hour"
        return finding(IDLE, [f"no invocations in the window ({priced})"])
    measured = {name: value for name, value in utilizations.items() if value is not None}
    if not measured:
        return finding(
            INSUFFICIENT_DATA,
            ["no utilization metric (instance type unknown or metrics missing): no judgement"],
        )

    # SageMaker does not document percentiles for ModelLatency: when CloudWatch returns none,
    # say so rather than judge latency from another statistic.
    unjudged = (
        [f"ModelLatency {slo.percentile} not returned by CloudWatch: latency not judged"]
        if slo is not None and model_latency_us is None
        else []
    )
    under = _underprovisioned(model_latency_us, measured, band, slo, peak)
    if under:
        return finding(UNDERPROVISIONED, under + unjudged)
    over = [f"{name} {value:.1f}% below {band.low:g}%" for name, value in measured.items()]
    if not any(value >= band.low for value in measured.values()):
        if peak.value is None or peak.limit is None:
            return finding(OVERPROVISIONED, over + unjudged)
        if peak.value < peak.limit * band.low / 100:
            over.append(
                f"{peak.label} {peak.value:g}{peak.unit} below {band.low:g}% of the "
                f"measured {peak.limit:g}{peak.unit}"
            )
            return finding(OVERPROVISIONED, over + unjudged)
    held = "the SLO met" if slo is not None and not unjudged else "no SLO judged"
    return finding(
        OPTIMIZED, [f"utilization within {band.low:g}-{band.high:g}% and {held}", *unjudged]
    )


def _normalized(history: History, shape: Shape | None) -> dict[str, float | None]:
    """Percent per vCPU / per GPU (None when the metric or the instance's counts are unknown)."""

    def per(value: float | None, count: int | None) -> float | None:
        if value is None or not count:
            return None
        return round(value / count, 2)

    return {
        "cpu_per_core": per(history.cpu, None if shape is None else shape.vcpus),
        "memory": None if history.memory is None else round(history.memory, 2),
        "gpu_per_gpu": per(history.gpu, None if shape is None else shape.gpus),
        "gpu_memory_per_gpu": per(history.gpu_memory, None if shape is None else shape.gpus),
    }


def _underprovisioned(
    model_latency_us: float | None,
    measured: Mapping[str, float],
    band: Band,
    slo: Slo | None,
    peak: _Peak,
) -> list[str]:
    reasons = []
    if slo is not None and model_latency_us is not None:
        latency_ms = model_latency_us / _MICROSECONDS_PER_MILLISECOND
        if latency_ms > slo.max_latency_ms:
            reasons.append(
                f"ModelLatency {slo.percentile} {latency_ms:.1f} ms above the SLO of "
                f"{slo.max_latency_ms:g} ms"
            )
    reasons += [
        f"{name} {value:.1f}% above {band.high:g}%"
        for name, value in measured.items()
        if value > band.high
    ]
    if peak.value is not None and peak.limit is not None and peak.value > peak.limit:
        reasons.append(
            f"{peak.label} {peak.value:g}{peak.unit} above the {peak.limit:g}{peak.unit} the "
            "last recommendation measured"
        )
    return reasons
