"""Measured load-latency curves of IR's benchmark endpoints (issue #15).

IR reports one ``ModelLatency`` per candidate, at ``MaxInvocations``, of unstated statistic and
contested unit; the SLO is a percentile at the planned peak. The load test leaves better
evidence: each recommendation names the endpoint it was measured on
(``EndpointConfiguration.EndpointName``/``VariantName``) and the benchmark's window
(``InvocationStartTime``/``InvocationEndTime``, members of ``InferenceRecommendation`` in
botocore's SageMaker model, ``DescribeInferenceRecommendationsJob`` output; not under
``Metrics``), and that endpoint's ``AWS/SageMaker`` metrics stay in CloudWatch after IR
deletes it.

Here, from one batched GetMetricData request per job (:func:`metric_requests`):

- each candidate's curve: per minute, requests per minute per instance (``Invocations``
  ``Sum`` / the benchmark's ``InitialInstanceCount``) against ``ModelLatency`` at the SLO's
  percentile in ms (CloudWatch's ``ModelLatency`` is in microseconds: SageMaker Developer
  Guide, "Amazon SageMaker AI metrics in Amazon CloudWatch");
- its **capacity at SLO** (:func:`capacity_at_slo`): the highest per-instance rate sustained
  (mean over the window) for ``sustain_minutes`` consecutive minutes with the percentile within
  the objective every minute;
- a **unit check** (:func:`unit_check`): IR's scalar against the curve's plateau latency,
  read as microseconds and as milliseconds.

Whatever is missing (no windows, a window past CloudWatch's 15 days of 1-minute data, an
error, an empty series) falls back to IR's scalars (``ir-summary``) and says why: a
measurement never fails a run. No AWS client here: the Select handler and ``plan`` pass a
``read`` function (as ``traffic.py``), so the call is where its permission is derived from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from .decision import Candidate, Slo, exact

NAMESPACE = "AWS/SageMaker"
PERIOD = 60
#: "A single GetMetricData call can include as many as 500 MetricDataQuery structures" and
#: "as many as 100,800 data points" (botocore's CloudWatch model, GetMetricData).
MAX_QUERIES = 500
MAX_DATAPOINTS = 100_800
#: 1-minute datapoints are kept 15 days (CloudWatch API Reference, GetMetricData; CloudWatch
#: User Guide, "Metrics retention"): an older benchmark has no per-minute curve.
RETENTION = timedelta(days=15)
#: Minutes a rate must hold with the percentile within the SLO to count as sustained.
SUSTAIN_MINUTES = 3
#: Minutes at the start of each benchmark skipped as ramp-up (endpoint warming, users spawning).
RAMP_UP_MINUTES = 1
#: IR's scalar and the plateau's percentile are different statistics (IR does not say which it
#: reports: a mean at saturation may be several times below its p99), so a unit "matches"
#: within this factor either way; the two readings differ by 1000x, more than 10 x 10, so at
#: most one can match.
UNIT_TOLERANCE = Decimal(10)
#: Minutes at or above this share of the curve's highest rate are its plateau.
PLATEAU_SHARE = Fraction(95, 100)
_US_PER_MS = Decimal(1000)
#: ``MetricDataResult.StatusCode`` values whose values cannot be trusted (CloudWatch API
#: Reference, ``MetricDataResult``).
_UNUSABLE_STATUS = ("InternalError", "Forbidden")

Kind = Literal["measured-curve", "ir-summary"]
MEASURED: Kind = "measured-curve"
IR_SUMMARY: Kind = "ir-summary"

#: Reads one GetMetricData request: its response pages (``MetricDataResults`` each).
Reader = Callable[[Mapping[str, Any]], Iterable[Mapping[str, Any]]]


@dataclass(frozen=True, kw_only=True)
class Benchmark:
    """Where and when IR load-tested one recommendation."""

    recommendation_id: str
    endpoint_name: str
    variant_name: str
    instance_count: int
    start: datetime
    end: datetime
    #: IR's ``Metrics.ModelLatency`` as reported (unit settled by :func:`unit_check`).
    ir_model_latency: int | None


@dataclass(frozen=True, kw_only=True)
class Point:
    """One minute of a benchmark: load per instance and the percentile latency."""

    minute: datetime
    requests_per_minute_per_instance: Fraction
    latency_ms: Decimal


@dataclass(frozen=True, kw_only=True)
class UnitCheck:
    """Which unit IR's scalar ``ModelLatency`` is in, judged against the measured plateau."""

    #: ``us``, ``ms``, or ``unknown`` (neither matched: the larger latency, ms, is used).
    unit: Literal["us", "ms", "unknown"]
    ir_model_latency: int
    plateau_latency_ms: Decimal
    #: IR's scalar in ms under the settled unit (the larger reading when ``unknown``).
    model_latency_ms: Decimal
    reason: str


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """What a candidate's curve says."""

    #: Highest per-instance rate sustained within the SLO; None: never met it.
    capacity_at_slo: Fraction | None
    #: Median percentile latency over the plateau (the curve's busiest minutes).
    latency_at_peak_ms: Decimal
    unit_check: UnitCheck | None


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """What a decision rests on: measured curves for every candidate, or IR's scalars."""

    kind: Kind
    reason: str
    #: By recommendation ID; empty for ``ir-summary``.
    measurements: Mapping[str, Measurement] = dataclasses.field(default_factory=dict)

    def apply(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        """The candidates with their measured capacity, SLO verdict and settled latency."""
        applied = []
        for candidate in candidates:
            found = self.measurements.get(candidate.recommendation_id or "")
            if found is None:
                applied.append(candidate)
                continue
            check = found.unit_check
            meets: bool | None = found.capacity_at_slo is not None
            if meets and check is not None and check.unit == "unknown":
                # IR and CloudWatch disagree past any unit: trust neither alone. The curve
                # still caps the capacity, and IR's scalar, read as the larger latency, is
                # judged against the SLO as it is without a curve.
                meets = None
            applied.append(
                dataclasses.replace(
                    candidate,
                    capacity_at_slo=found.capacity_at_slo,
                    meets_slo_measured=meets,
                    model_latency_ms=candidate.model_latency_ms
                    if check is None
                    else check.model_latency_ms,
                )
            )
        return applied


def ir_summary(reason: str) -> Evidence:
    """Decide from IR's scalars, saying why no curve was used."""
    return Evidence(kind=IR_SUMMARY, reason=reason)


def benchmarks_from_job(description: Mapping[str, Any]) -> list[Benchmark]:
    """The real-time recommendations that name their benchmark endpoint and window."""
    found = []
    for recommendation in description.get("InferenceRecommendations") or []:
        endpoint = recommendation.get("EndpointConfiguration") or {}
        start = recommendation.get("InvocationStartTime")
        end = recommendation.get("InvocationEndTime")
        if (
            "ServerlessConfig" in endpoint
            or not endpoint.get("EndpointName")
            or start is None
            or end is None
        ):
            continue
        found.append(
            Benchmark(
                recommendation_id=str(recommendation.get("RecommendationId", "")),
                endpoint_name=endpoint["EndpointName"],
                variant_name=endpoint.get("VariantName", "AllTraffic"),
                # IR benchmarks one instance unless it says otherwise.
                instance_count=int(endpoint.get("InitialInstanceCount") or 1),
                start=_timestamp(start),
                end=_timestamp(end),
                ir_model_latency=(recommendation.get("Metrics") or {}).get("ModelLatency"),
            )
        )
    return found


def metric_requests(benchmarks: Sequence[Benchmark], percentile: str) -> list[dict[str, Any]]:
    """GetMetricData requests for every benchmark's two series: one, unless limits split it.

    Per benchmark ``i``: ``inv_i``, ``Invocations`` ``Sum``, and ``lat_i``, ``ModelLatency``
    at ``p95``/``p99`` (CloudWatch's percentile statistic, "p" and the percentile), period 60
    s, over the span from the earliest start to the latest end, widened to whole minutes.
    """
    start = _floor_minute(min(b.start for b in benchmarks))
    latest = max(b.end for b in benchmarks)
    end = _floor_minute(latest) + (
        timedelta(seconds=PERIOD) if latest.second or latest.microsecond else timedelta()
    )
    minutes = max(1, int((end - start).total_seconds()) // PERIOD)
    per_request = min(MAX_QUERIES, MAX_DATAPOINTS // minutes) // 2
    if per_request < 1:
        raise ValueError(f"a {minutes}-minute window exceeds GetMetricData's datapoint limit")
    stat = percentile.lower()
    queries = []
    for index, benchmark in enumerate(benchmarks):
        queries += [
            _query(f"inv_{index}", "Invocations", "Sum", benchmark),
            _query(f"lat_{index}", "ModelLatency", stat, benchmark),
        ]
    return [
        {
            "MetricDataQueries": queries[first : first + 2 * per_request],
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        }
        for first in range(0, len(queries), 2 * per_request)
    ]


def _query(query_id: str, metric: str, stat: str, benchmark: Benchmark) -> dict[str, Any]:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": NAMESPACE,
                "MetricName": metric,
                "Dimensions": [
                    {"Name": "EndpointName", "Value": benchmark.endpoint_name},
                    {"Name": "VariantName", "Value": benchmark.variant_name},
                ],
            },
            "Period": PERIOD,
            "Stat": stat,
        },
        "ReturnData": True,
    }


def read_results(pages: Iterable[Mapping[str, Any]]) -> dict[str, dict[datetime, Any]]:
    """Query ID -> timestamp -> value, over every page (``UnusableData`` if CloudWatch says so)."""
    series: dict[str, dict[datetime, Any]] = {}
    for page in pages:
        for result in page.get("MetricDataResults", []):
            if result.get("StatusCode") in _UNUSABLE_STATUS:
                raise UnusableData(f"CloudWatch answered {result['StatusCode']} for {result['Id']}")
            values = series.setdefault(str(result["Id"]), {})
            for stamp, value in zip(
                result.get("Timestamps", []), result.get("Values", []), strict=True
            ):
                values[_timestamp(stamp)] = value
    return series


class UnusableData(Exception):
    """CloudWatch answered, but says its values are incomplete (``InternalError``/``Forbidden``)."""


def curve(
    benchmark: Benchmark, invocations: Mapping[datetime, Any], latency_us: Mapping[datetime, Any]
) -> list[Point]:
    """The benchmark's whole minutes with both series, inside its window, in time order.

    A datapoint's timestamp starts its period; a minute the window covers only in part has a
    partial ``Sum`` (a rate too low) and mixes load-test traffic with none.
    """
    last = benchmark.end - timedelta(seconds=PERIOD)
    return [
        Point(
            minute=minute,
            requests_per_minute_per_instance=Fraction(exact(invocations[minute]))
            / benchmark.instance_count,
            latency_ms=exact(latency_us[minute]) / _US_PER_MS,
        )
        for minute in sorted(invocations.keys() & latency_us.keys())
        if benchmark.start <= minute <= last
    ]


def capacity_at_slo(
    points: Sequence[Point],
    max_latency_ms: Decimal,
    *,
    sustain_minutes: int = SUSTAIN_MINUTES,
    ramp_up_minutes: int = RAMP_UP_MINUTES,
) -> Fraction | None:
    """The highest rate held ``sustain_minutes`` consecutive minutes within the SLO, or None.

    A window counts when each of its minutes is present (a missing minute breaks a run), one
    minute after the other, and within ``max_latency_ms``. It sustained its mean rate (its
    requests over its minutes): every minute of it, the busiest included, met the SLO, and a
    minute's ``Invocations`` moves with the load generator's arrivals, so the window's
    *lowest* minute would understate a steady step by that noise (``make decision-bench``:
    1.077x the oracle's cost with the lowest minute, 1.049x with the mean, no violation
    either way). The first ``ramp_up_minutes`` of the curve are skipped.
    """
    if not points:
        return None
    start = points[0].minute + timedelta(minutes=ramp_up_minutes)
    kept = [p for p in points if p.minute >= start]
    best: Fraction | None = None
    run: list[Point] = []
    for point in kept:
        consecutive = bool(run) and point.minute - run[-1].minute == timedelta(seconds=PERIOD)
        if point.latency_ms > max_latency_ms:
            run = []
            continue
        run = [*run, point] if consecutive else [point]
        if len(run) >= sustain_minutes:
            window = run[-sustain_minutes:]
            held = sum((p.requests_per_minute_per_instance for p in window), Fraction(0))
            held /= len(window)
            best = held if best is None else max(best, held)
    return best


def plateau_latency_ms(points: Sequence[Point]) -> Decimal:
    """Lower median of the percentile latency over the busiest minutes (the load test's peak)."""
    top = max(p.requests_per_minute_per_instance for p in points)
    busy = sorted(
        p.latency_ms for p in points if p.requests_per_minute_per_instance >= top * PLATEAU_SHARE
    )
    return busy[(len(busy) - 1) // 2]


def unit_check(ir_model_latency: int, plateau_ms: Decimal) -> UnitCheck:
    """Which reading of IR's scalar (µs or ms) matches the measured plateau within tolerance.

    When neither matches, the larger latency (ms) is used, and judged against the SLO
    (:meth:`Evidence.apply`): a wrong guess then rejects a candidate rather than overloads it.
    """
    as_us = exact(ir_model_latency) / _US_PER_MS
    as_ms = exact(ir_model_latency)
    unit: Literal["us", "ms", "unknown"]
    if _matches(as_us, plateau_ms):
        unit, used = "us", as_us
        reason = f"IR's {ir_model_latency} read as microseconds matches the measured plateau"
    elif _matches(as_ms, plateau_ms):
        unit, used = "ms", as_ms
        reason = f"IR's {ir_model_latency} read as milliseconds matches the measured plateau"
    else:
        unit, used = "unknown", max(as_us, as_ms)
        reason = (
            f"IR's {ir_model_latency} matches the measured plateau neither as microseconds nor "
            "as milliseconds: the larger reading (ms) is used"
        )
    return UnitCheck(
        unit=unit,
        ir_model_latency=ir_model_latency,
        plateau_latency_ms=plateau_ms,
        model_latency_ms=used,
        reason=f"{reason} ({_fmt(plateau_ms)} ms, within a factor of {UNIT_TOLERANCE})",
    )


def _matches(reading_ms: Decimal, plateau_ms: Decimal) -> bool:
    if reading_ms <= 0 or plateau_ms <= 0:
        return reading_ms == plateau_ms
    return max(reading_ms, plateau_ms) <= UNIT_TOLERANCE * min(reading_ms, plateau_ms)


def measure(benchmark: Benchmark, points: Sequence[Point], slo: Slo) -> Measurement:
    """A candidate's capacity at SLO, plateau latency and unit check, from its curve."""
    plateau = plateau_latency_ms(points)
    return Measurement(
        capacity_at_slo=capacity_at_slo(points, slo.max_latency_ms),
        latency_at_peak_ms=plateau,
        unit_check=None
        if benchmark.ir_model_latency is None
        else unit_check(benchmark.ir_model_latency, plateau),
    )


def evidence_from_results(
    benchmarks: Sequence[Benchmark], series: Mapping[str, Mapping[datetime, Any]], slo: Slo
) -> Evidence:
    """Measured curves when every benchmark has one; else IR's scalars for all, and why.

    One kind of evidence per decision: a candidate judged on IR's scalar next to one judged
    on its curve would be compared on different terms.
    """
    measurements = {}
    for index, benchmark in enumerate(benchmarks):
        points = curve(benchmark, series.get(f"inv_{index}", {}), series.get(f"lat_{index}", {}))
        if len(points) <= RAMP_UP_MINUTES:
            return ir_summary(
                f"CloudWatch holds no per-minute Invocations and ModelLatency of "
                f"{benchmark.endpoint_name}/{benchmark.variant_name} in its benchmark window"
            )
        measurements[benchmark.recommendation_id] = measure(benchmark, points, slo)
    return Evidence(
        kind=MEASURED,
        reason=f"per-minute {slo.percentile} ModelLatency and Invocations of the "
        f"{len(benchmarks)} benchmark endpoint{'' if len(benchmarks) == 1 else 's'} "
        f"(capacity held {SUSTAIN_MINUTES} consecutive minutes within the SLO; the first "
        f"{RAMP_UP_MINUTES} skipped as ramp-up)",
        measurements=measurements,
    )


def gather_evidence(
    description: Mapping[str, Any], slo: Slo, *, read: Reader, now: datetime
) -> Evidence:
    """Read the job's benchmark curves through ``read``; IR's scalars when that cannot be done."""
    benchmarks, why = _benchmarks(description)
    if why:
        return ir_summary(why)
    if now - min(b.start for b in benchmarks) > RETENTION:
        return ir_summary("the load test is older than CloudWatch's 15 days of 1-minute data")
    try:
        series: dict[str, dict[datetime, Any]] = {}
        for request in metric_requests(benchmarks, slo.percentile):
            series.update(read_results(read(request)))
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        return ir_summary(f"could not read CloudWatch ({code}: {error})")
    except (BotoCoreError, UnusableData, ValueError) as error:
        return ir_summary(f"could not read CloudWatch ({error})")
    return evidence_from_results(benchmarks, series, slo)


def evidence_offline(
    description: Mapping[str, Any], slo: Slo, pages: Iterable[Mapping[str, Any]] | None
) -> Evidence:
    """What ``plan`` decides on: the GetMetricData output it was given, if any (no clock).

    ``UnusableData`` and ``ValueError`` (a timestamp that is none) propagate: a file the
    user passed is reported, not silently ignored.
    """
    benchmarks, why = _benchmarks(description)
    if why:
        return ir_summary(why)
    if pages is None:
        return ir_summary("plan was given no --metrics (the benchmarks' GetMetricData output)")
    return evidence_from_results(benchmarks, read_results(pages), slo)


def _benchmarks(description: Mapping[str, Any]) -> tuple[list[Benchmark], str]:
    """The job's benchmarks, or why they cannot give every real-time candidate a curve."""
    benchmarks = benchmarks_from_job(description)
    realtime = [
        r
        for r in description.get("InferenceRecommendations") or []
        if "ServerlessConfig" not in (r.get("EndpointConfiguration") or {})
    ]
    if not benchmarks or len(benchmarks) < len(realtime):
        return [], "the job does not name every benchmark's endpoint and window"
    return benchmarks, ""


#: The Application Auto Scaling metric the decision's target is expressed in.
_INVOCATIONS_PER_INSTANCE = "SageMakerVariantInvocationsPerInstance"
#: Targets within this share of each other agree (IR rounds to whole invocations).
_AGREEMENT = Fraction(1, 10)


def scaling_cross_check(
    response: Mapping[str, Any] | None, target_value: float, error: str = ""
) -> dict[str, Any]:
    """The event's ``autoscaling_cross_check``: IR's own target next to the decision's.

    ``response`` is ``GetScalingConfigurationRecommendation``'s (botocore's SageMaker model:
    ``DynamicScalingConfiguration.ScalingPolicies[].TargetTracking{MetricSpecification
    {Predefined{PredefinedMetricType}}, TargetValue}``). IR derives its target from CPU
    utilization per core (``TargetCpuUtilizationPerCore``, default 50), not from a latency
    objective, so the decision keeps its own target and says why when the two differ.
    """
    checked: dict[str, Any] = {
        "target_value": target_value,
        "ir_target_value": None,
        "ir_min_capacity": None,
        "ir_max_capacity": None,
        "agrees": None,
        "reason": "",
    }
    if response is None:
        checked["reason"] = f"IR's scaling recommendation could not be read ({error})"
        return checked
    scaling = response.get("DynamicScalingConfiguration") or {}
    checked["ir_min_capacity"] = scaling.get("MinCapacity")
    checked["ir_max_capacity"] = scaling.get("MaxCapacity")
    targets = [
        t for t in map(_invocations_target, scaling.get("ScalingPolicies") or []) if t is not None
    ]
    if not targets:
        checked["reason"] = f"IR recommended no target on {_INVOCATIONS_PER_INSTANCE}"
        return checked
    ir_target = targets[0]
    checked["ir_target_value"] = ir_target
    ours = Fraction(Decimal(str(target_value)))
    theirs = Fraction(Decimal(str(ir_target)))
    checked["agrees"] = abs(ours - theirs) <= _AGREEMENT * ours
    checked["reason"] = (
        f"IR's GetScalingConfigurationRecommendation targets {ir_target} invocations per "
        f"instance per minute, the decision {target_value}"
        + (
            ""
            if checked["agrees"]
            else ": they differ; IR's target comes from CPU utilization per core, not the "
            "latency SLO, so the decision's (capacity at SLO x target utilization) is kept"
        )
    )
    return checked


def _invocations_target(policy: Mapping[str, Any]) -> float | None:
    """A scaling policy's target on invocations per instance, or None (another metric)."""
    tracking = policy.get("TargetTracking") or {}
    predefined = (tracking.get("MetricSpecification") or {}).get("Predefined") or {}
    if predefined.get("PredefinedMetricType") != _INVOCATIONS_PER_INSTANCE:
        return None
    value = tracking.get("TargetValue")
    return None if value is None else float(value)


def _timestamp(value: Any) -> datetime:
    """A timestamp as an aware datetime.

    boto3 gives datetimes; the AWS CLI prints ISO 8601, or epoch seconds with
    ``--cli-timestamp-format wire``.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    stamp = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _floor_minute(stamp: datetime) -> datetime:
    return stamp.replace(second=0, microsecond=0)


def _fmt(value: Decimal) -> str:
    return format(round(value, 3).normalize(), "f")


def rate(value: Fraction | None) -> float | int | None:
    """A per-minute rate as a JSON number (an integer stays one), or None."""
    if value is None:
        return None
    return int(value) if value.denominator == 1 else round(float(value), 3)
