"""Pure pieces of the utilization audit: its settings, the CloudWatch queries, the findings' shape.

No AWS calls here: ``audit`` makes them. Which statistic each metric is read with follows what
SageMaker documents for it ("Amazon SageMaker AI metrics in Amazon CloudWatch", the endpoint
invocation and instance metrics):

- ``Invocations``: valid statistic ``Sum`` (the requests in the window);
- ``InvocationsPerInstance``: SageMaker sends ``1/numberOfInstances`` per request; valid
  statistic ``Sum``, so the per-minute ``Sum`` is the requests one instance served in that
  minute. The peak is the largest per-minute ``Sum``: any other statistic of this metric is a
  fraction of one request. One-minute data is kept 15 days (GetMetricData's ``Period``: data
  older than that only at 5-minute or 1-hour periods), so the peak is read over the last
  ``PEAK_DAYS`` days, whatever the lookback;
- ``ModelLatency`` (microseconds): at the SLO's percentile. SageMaker documents Average, Sum,
  Min, Max and SampleCount for it, not percentiles: when CloudWatch returns no percentile, the
  finding says latency was not judged (never a guess from another statistic);
- ``CPUUtilization``, ``MemoryUtilization``, ``GPUUtilization``, ``GPUMemoryUtilization``
  (``/aws/sagemaker/Endpoints``, percent, CPU and GPU summed over cores and GPUs): at the
  audit's percentile over the window; ``CPUUtilization``'s hourly ``SampleCount`` counts the
  hours with data. A statistic CloudWatch does not return leaves that measure out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .utilization import Band, Capacity, Finding, History, Shape, Slo

SCHEMA_VERSION = 1
#: GetMetricData's limits per call (CloudWatch API reference): queries and returned datapoints.
MAX_QUERIES_PER_CALL = 500
MAX_DATAPOINTS_PER_CALL = 100_800
#: How far back the per-minute invocation peak is read (one-minute data is kept 15 days).
PEAK_DAYS = 14
#: The period of the peak's datapoints: one minute, the unit of IR's MaxInvocations.
PEAK_PERIOD_SECONDS = 60
HOUR = 3600
INVOCATION_NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What the construct asks the audit to do (its rule's input)."""

    endpoint_names: tuple[str, ...]
    tags: Mapping[str, str]
    lookback_days: int
    percentile: str
    band: Band
    slo: Slo | None
    compute_optimizer: bool


@dataclass(frozen=True, kw_only=True)
class Variant:
    """An instance variant being audited, as it runs now."""

    endpoint_name: str
    variant_name: str
    instance_type: str
    instance_count: int


def parse_settings(raw: Mapping[str, Any]) -> Settings:
    """The rule input's ``settings`` object."""
    slo = raw.get("slo")
    return Settings(
        endpoint_names=tuple(raw.get("endpoint_names") or ()),
        tags=dict(raw.get("tags") or {}),
        lookback_days=int(raw["lookback_days"]),
        percentile=str(raw["percentile"]),
        band=Band(low=float(raw["band"]["low"]), high=float(raw["band"]["high"])),
        slo=None
        if not slo
        else Slo(percentile=str(slo["percentile"]).lower(), max_latency_ms=slo["max_latency_ms"]),
        compute_optimizer=bool(raw.get("compute_optimizer")),
    )


# -- The queries ---------------------------------------------------------------------------------


def _dimensions(variant: Variant) -> list[dict[str, str]]:
    return [
        {"Name": "EndpointName", "Value": variant.endpoint_name},
        {"Name": "VariantName", "Value": variant.variant_name},
    ]


def _query(
    query_id: str, variant: Variant, namespace: str, metric: str, stat: str, period: int
) -> dict[str, Any]:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": metric,
                "Dimensions": _dimensions(variant),
            },
            "Period": period,
            "Stat": stat,
        },
        "ReturnData": True,
    }


def variant_queries(
    index: int,
    variant: Variant,
    shape: Shape | None,
    slo: Slo | None,
    percentile: str,
    window_seconds: int,
) -> list[dict[str, Any]]:
    """The window's MetricDataQueries of one variant (ids ``v<index>_<what>``).

    Each asks for one statistic over the whole window (one datapoint), except ``hours``: the
    sample count per hour of ``CPUUtilization``, which SageMaker publishes every minute while
    the instances run, counts the hours with data. The invocation peak has queries of its own
    (:func:`peak_query`): a different window and period.
    """

    def query(key: str, namespace: str, metric: str, stat: str, period: int) -> dict[str, Any]:
        return _query(f"v{index}_{key}", variant, namespace, metric, stat, period)

    queries = [
        query("hours", INSTANCE_NAMESPACE, "CPUUtilization", "SampleCount", HOUR),
        query("invocations", INVOCATION_NAMESPACE, "Invocations", "Sum", window_seconds),
        query("cpu", INSTANCE_NAMESPACE, "CPUUtilization", percentile, window_seconds),
        query("memory", INSTANCE_NAMESPACE, "MemoryUtilization", percentile, window_seconds),
    ]
    if slo is not None:
        queries.append(
            query("latency", INVOCATION_NAMESPACE, "ModelLatency", slo.percentile, window_seconds)
        )
    if shape is not None and shape.gpus:
        queries.append(
            query("gpu", INSTANCE_NAMESPACE, "GPUUtilization", percentile, window_seconds)
        )
        queries.append(
            query(
                "gpumemory", INSTANCE_NAMESPACE, "GPUMemoryUtilization", percentile, window_seconds
            )
        )
    return queries


def peak_query(index: int, variant: Variant) -> dict[str, Any]:
    """``InvocationsPerInstance``, ``Sum`` per minute: its largest value is the peak."""
    return _query(
        f"v{index}_peak",
        variant,
        INVOCATION_NAMESPACE,
        "InvocationsPerInstance",
        "Sum",
        PEAK_PERIOD_SECONDS,
    )


def window_datapoints(window_seconds: int) -> int:
    """The most datapoints one variant's window queries return: hourly counts, one per other."""
    return window_seconds // HOUR + 6


def peak_datapoints(peak_seconds: int) -> int:
    """The most datapoints one variant's peak query returns: one per minute."""
    return peak_seconds // PEAK_PERIOD_SECONDS


def batches(
    per_variant: Sequence[list[dict[str, Any]]], datapoints_per_variant: int
) -> Iterator[list[dict[str, Any]]]:
    """Whole variants' queries packed into calls within GetMetricData's limits."""
    batch: list[dict[str, Any]] = []
    points = 0
    for queries in per_variant:
        if batch and (
            len(batch) + len(queries) > MAX_QUERIES_PER_CALL
            or points + datapoints_per_variant > MAX_DATAPOINTS_PER_CALL
        ):
            yield batch
            batch, points = [], 0
        batch += queries
        points += datapoints_per_variant
    if batch:
        yield batch


@dataclass
class Readings:
    """What GetMetricData returned, reduced as it arrives (a variant's minutes are not kept).

    Per query id: how many positive values (the hours with data), the largest value (the peak)
    and the first value (a whole-window statistic).
    """

    positive: dict[str, int] = field(default_factory=dict)
    largest: dict[str, float] = field(default_factory=dict)
    first: dict[str, float] = field(default_factory=dict)

    def add(self, query_id: str, values: Sequence[float]) -> None:
        """Fold one page's ``Values`` of ``query_id`` in."""
        if not values:
            return
        self.positive[query_id] = self.positive.get(query_id, 0) + sum(1 for v in values if v > 0)
        top = max(values)
        self.largest[query_id] = max(self.largest.get(query_id, top), top)
        self.first.setdefault(query_id, float(values[0]))

    def history(self, index: int) -> History:
        """The variant ``index``'s history."""

        def first(key: str) -> float | None:
            return self.first.get(f"v{index}_{key}")

        peak = self.largest.get(f"v{index}_peak")
        return History(
            hours_with_data=self.positive.get(f"v{index}_hours", 0),
            invocations=first("invocations"),
            invocations_per_instance_peak=None if peak is None else round(peak, 3),
            model_latency_us=first("latency"),
            cpu=first("cpu"),
            memory=first("memory"),
            gpu=first("gpu"),
            gpu_memory=first("gpumemory"),
        )


# -- The findings --------------------------------------------------------------------------------


def endpoint_finding(
    variant: Variant,
    verdict: Finding,
    settings: Settings,
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    """The ``detail`` of an endpoint variant's "Rightsizing Finding" (README, "The finding")."""
    return {
        "schema_version": SCHEMA_VERSION,
        "source": "cloudwatch",
        "resource_type": "sagemaker-endpoint-variant",
        "endpoint_name": variant.endpoint_name,
        "variant_name": variant.variant_name,
        "instance_type": variant.instance_type,
        "instance_count": variant.instance_count,
        "classification": verdict.classification,
        "reasons": list(verdict.reasons),
        "evidence": dict(verdict.evidence),
        "cost_per_hour": verdict.cost_per_hour,
        "lookback_days": settings.lookback_days,
        "percentile": settings.percentile,
        "band": {"low": settings.band.low, "high": settings.band.high},
        "window": {"start": start.isoformat(), "end": end.isoformat()},
    }


def from_recommendation(
    record: Mapping[str, Any] | None, variant: Variant, default_slo: Slo | None
) -> tuple[Slo | None, Capacity]:
    """The SLO the endpoint is held to and what IR measured for the type it runs on."""
    if record is None or record.get("variant_name") != variant.variant_name:
        return default_slo, Capacity()
    slo_input = record.get("inputs", {}).get("slo") or {}
    slo = (
        Slo(
            percentile=str(slo_input["percentile"]).lower(),
            max_latency_ms=slo_input["max_latency_ms"],
        )
        if slo_input.get("percentile") and slo_input.get("max_latency_ms")
        else default_slo
    )
    measured: Mapping[str, Any] = next(
        (c for c in record["candidates"] if c.get("instance_type") == variant.instance_type), {}
    )
    return slo, Capacity(
        max_invocations_per_instance_per_minute=measured.get(
            "max_invocations_per_instance_per_minute"
        ),
        cost_per_hour=measured.get("cost_per_hour"),
    )


def compute_optimizer_finding(recommendation: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """A "Rightsizing Finding" from one of Compute Optimizer's EC2 instance recommendations."""
    options = sorted(recommendation.get("recommendationOptions", []), key=lambda o: o["rank"])
    top = options[0] if options else None
    savings = (top or {}).get("savingsOpportunity") or {}
    return {
        "schema_version": SCHEMA_VERSION,
        "source": "compute-optimizer",
        "resource_type": "ec2-instance",
        "instance_arn": recommendation["instanceArn"],
        "instance_name": recommendation.get("instanceName"),
        "instance_type": recommendation.get("currentInstanceType"),
        "classification": recommendation["finding"],
        "reasons": list(recommendation.get("findingReasonCodes", [])),
        "finding_reason_codes": list(recommendation.get("findingReasonCodes", [])),
        "idle": recommendation.get("idle"),
        "top_option": None
        if top is None
        else {
            "instance_type": top["instanceType"],
            "performance_risk": top.get("performanceRisk"),
            "savings_opportunity_percentage": savings.get("savingsOpportunityPercentage"),
        },
        "estimated_monthly_savings": savings.get("estimatedMonthlySavings"),
        "lookback_days": recommendation.get("lookBackPeriodInDays"),
        "window": {"end": now.isoformat()},
    }


def opt_in_required_finding(now: datetime) -> dict[str, Any]:
    """The one finding of an account that has not opted in to Compute Optimizer."""
    return {
        "schema_version": SCHEMA_VERSION,
        "source": "compute-optimizer",
        "resource_type": "account",
        "classification": "OptInRequired",
        "reasons": [
            "this account has not opted in to AWS Compute Optimizer, so it has no EC2 "
            "findings: opt in (aws compute-optimizer update-enrollment-status --status "
            "Active) and allow 30 hours of metrics"
        ],
        "window": {"end": now.isoformat()},
    }


def ledger_key(finding: Mapping[str, Any]) -> str:
    """The ledger partition of a finding: the endpoint's, the instance's or the account's."""
    if finding["resource_type"] == "sagemaker-endpoint-variant":
        return f"endpoint#{finding['endpoint_name']}"
    if finding["resource_type"] == "ec2-instance":
        return f"instance#{finding['instance_arn']}"
    return "account#compute-optimizer"
