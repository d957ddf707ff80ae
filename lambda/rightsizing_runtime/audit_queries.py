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

Inference components (same page, "SageMaker AI endpoint invocation metrics" and "SageMaker AI
inference component metrics",
https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html), dimension
``InferenceComponentName`` alone:

- ``Invocations`` (``AWS/SageMaker``): ``Sum``, as for a variant;
- ``InvocationsPerCopy`` (``AWS/SageMaker``): valid statistic ``Sum``; its largest per-minute
  ``Sum`` over the last ``PEAK_DAYS`` days is the requests one copy served in its busiest
  minute (the ``InvocationsPerInstance`` reasoning, per copy);
- ``ConcurrentRequestsPerCopy`` (``AWS/SageMaker``): valid statistics ``Min`` and ``Max``; its
  ``Maximum`` over the window is the copy's peak concurrency, compared with what the
  component's last recommendation measured per copy;
- ``CPUUtilizationNormalized``, ``MemoryUtilizationNormalized``, ``GPUUtilizationNormalized``,
  ``GPUMemoryUtilizationNormalized`` (``/aws/sagemaker/InferenceComponents``): 0-100 % per
  copy, over the copy's reservation (``NumberOfCpuCoresRequired``,
  ``NumberOfAcceleratorDevicesRequired``, ``MinMemoryRequiredInMb``) or its limit: already
  normalized, read at the audit's percentile like the variants' utilizations (the page lists
  no valid statistics for them, as for ``CPUUtilization``); the hourly ``SampleCount`` of
  ``CPUUtilizationNormalized`` counts the hours with data.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .utilization import Band, Capacity, ComponentHistory, Finding, History, Shape, Slo

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
COMPONENT_NAMESPACE = "/aws/sagemaker/InferenceComponents"
#: GetIdleRecommendations' resource type filter value for endpoints (botocore's compute-optimizer
#: model, ``IdleRecommendationResourceType``) and its largest page (``IdleMaxResults``: 0-100).
IDLE_RESOURCE_TYPE = "SageMakerEndpoint"
IDLE_PAGE_SIZE = 100


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
    #: Inference components watched by name (their per-copy metrics).
    inference_components: tuple[str, ...] = ()
    #: Compute Optimizer's idle findings for the watched endpoints.
    compute_optimizer_idle: bool = False


@dataclass(frozen=True, kw_only=True)
class Component:
    """An inference component being audited, as it runs now (DescribeInferenceComponent)."""

    endpoint_name: str
    variant_name: str
    inference_component_name: str
    instance_type: str | None
    copy_count: int


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
        inference_components=tuple(raw.get("inference_components") or ()),
        compute_optimizer_idle=bool(raw.get("compute_optimizer_idle")),
    )


# -- The queries ---------------------------------------------------------------------------------


def _dimensions(variant: Variant) -> list[dict[str, str]]:
    return [
        {"Name": "EndpointName", "Value": variant.endpoint_name},
        {"Name": "VariantName", "Value": variant.variant_name},
    ]


def _query(
    query_id: str,
    dimensions: list[dict[str, str]],
    namespace: str,
    metric: str,
    stat: str,
    period: int,
) -> dict[str, Any]:
    """One MetricDataQuery: a variant's (``_dimensions``) or a component's."""
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": metric,
                "Dimensions": dimensions,
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
        return _query(f"v{index}_{key}", _dimensions(variant), namespace, metric, stat, period)

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
        _dimensions(variant),
        INVOCATION_NAMESPACE,
        "InvocationsPerInstance",
        "Sum",
        PEAK_PERIOD_SECONDS,
    )


def _component_dimensions(component: Component) -> list[dict[str, str]]:
    return [{"Name": "InferenceComponentName", "Value": component.inference_component_name}]


def component_queries(
    index: int, component: Component, percentile: str, window_seconds: int
) -> list[dict[str, Any]]:
    """The window's MetricDataQueries of one inference component (ids ``c<index>_<what>``).

    As :func:`variant_queries`: one statistic over the whole window each, the hourly sample
    count of ``CPUUtilizationNormalized`` aside. The GPU measures are always asked for: a
    component without accelerators gets no datapoint, and the measure is left out.
    """

    def query(key: str, namespace: str, metric: str, stat: str, period: int) -> dict[str, Any]:
        return _query(
            f"c{index}_{key}", _component_dimensions(component), namespace, metric, stat, period
        )

    window = window_seconds
    return [
        query("hours", COMPONENT_NAMESPACE, "CPUUtilizationNormalized", "SampleCount", HOUR),
        query("invocations", INVOCATION_NAMESPACE, "Invocations", "Sum", window),
        query("concurrency", INVOCATION_NAMESPACE, "ConcurrentRequestsPerCopy", "Maximum", window),
        query("cpu", COMPONENT_NAMESPACE, "CPUUtilizationNormalized", percentile, window),
        query("memory", COMPONENT_NAMESPACE, "MemoryUtilizationNormalized", percentile, window),
        query("gpu", COMPONENT_NAMESPACE, "GPUUtilizationNormalized", percentile, window),
        query(
            "gpumemory", COMPONENT_NAMESPACE, "GPUMemoryUtilizationNormalized", percentile, window
        ),
    ]


def component_peak_query(index: int, component: Component) -> dict[str, Any]:
    """``InvocationsPerCopy``, ``Sum`` per minute: its largest value is the per-copy peak."""
    return _query(
        f"c{index}_peak",
        _component_dimensions(component),
        INVOCATION_NAMESPACE,
        "InvocationsPerCopy",
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

    def component_history(self, index: int) -> ComponentHistory:
        """The inference component ``index``'s history."""

        def first(key: str) -> float | None:
            return self.first.get(f"c{index}_{key}")

        peak = self.largest.get(f"c{index}_peak")
        concurrency = self.largest.get(f"c{index}_concurrency")
        return ComponentHistory(
            hours_with_data=self.positive.get(f"c{index}_hours", 0),
            invocations=first("invocations"),
            invocations_per_copy_peak=None if peak is None else round(peak, 3),
            concurrent_requests_per_copy_peak=None
            if concurrency is None
            else round(concurrency, 3),
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


def component_finding(
    component: Component,
    verdict: Finding,
    settings: Settings,
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    """The ``detail`` of an inference component's "Rightsizing Finding".

    ``endpoint_name``, ``variant_name`` and ``inference_component_name`` together name the
    component as the engine's registry does (its identity is the endpoint and the component);
    ``kind`` is ``inference-component``, as on its recommendation events.
    """
    return {
        "schema_version": SCHEMA_VERSION,
        "source": "cloudwatch",
        "resource_type": "sagemaker-inference-component",
        "kind": "inference-component",
        "endpoint_name": component.endpoint_name,
        "variant_name": component.variant_name,
        "inference_component_name": component.inference_component_name,
        "instance_type": component.instance_type,
        "copy_count": component.copy_count,
        "classification": verdict.classification,
        "reasons": list(verdict.reasons),
        "evidence": dict(verdict.evidence),
        "cost_per_hour": verdict.cost_per_hour,
        "lookback_days": settings.lookback_days,
        "percentile": settings.percentile,
        "band": {"low": settings.band.low, "high": settings.band.high},
        "window": {"start": start.isoformat(), "end": end.isoformat()},
    }


def component_capacity(record: Mapping[str, Any] | None, component: Component) -> float | None:
    """The concurrent requests per copy its last recommendation measured, or None.

    From the component's recommendation record: its first candidate on the instance type the
    component runs on (``capacity_per_copy``).
    """
    if record is None or record.get("inference_component_name") != (
        component.inference_component_name
    ):
        return None
    for candidate in record.get("candidates") or []:
        if candidate.get("instance_type") == component.instance_type:
            capacity = candidate.get("capacity_per_copy")
            return None if capacity is None else float(capacity)
    return None


def endpoint_name_of(arn: str) -> str:
    """The endpoint name in ``arn:aws:sagemaker:<region>:<account>:endpoint/<name>``.

    SageMaker writes names in lower case in its ARNs, so compare it with ``str.lower()``.
    """
    return arn.split(":endpoint/", 1)[-1]


def idle_finding(
    recommendation: Mapping[str, Any], variant: Variant, now: datetime
) -> dict[str, Any]:
    """A "Rightsizing Finding" from Compute Optimizer's idle recommendation of a watched endpoint.

    One per instance variant of the endpoint (a run is started per variant); the saving is the
    whole endpoint's, as Compute Optimizer estimates it (``IdleRecommendation`` in botocore's
    compute-optimizer model: ``finding`` Idle|Unattached|Unused, ``savingsOpportunity``
    ``{savingsOpportunityPercentage, estimatedMonthlySavings{currency, value}}``, the same after
    discounts, ``utilizationMetrics`` with ``Maximum`` or ``Average`` values).
    """
    savings = recommendation.get("savingsOpportunity") or {}
    discounted = recommendation.get("savingsOpportunityAfterDiscounts") or {}
    refreshed = recommendation.get("lastRefreshTimestamp")
    description = recommendation.get("findingDescription")
    return {
        "schema_version": SCHEMA_VERSION,
        "source": "compute-optimizer",
        "resource_type": "sagemaker-endpoint",
        "endpoint_name": variant.endpoint_name,
        "variant_name": variant.variant_name,
        "instance_type": variant.instance_type,
        "instance_count": variant.instance_count,
        "resource_arn": recommendation.get("resourceArn"),
        "classification": recommendation.get("finding", "Idle"),
        "reasons": [description or "Compute Optimizer finds the endpoint idle"],
        "finding_description": description,
        "estimated_monthly_savings": savings.get("estimatedMonthlySavings"),
        "savings_opportunity_percentage": savings.get("savingsOpportunityPercentage"),
        "estimated_monthly_savings_after_discounts": discounted.get("estimatedMonthlySavings"),
        "utilization_metrics": [
            {"name": m.get("name"), "statistic": m.get("statistic"), "value": m.get("value")}
            for m in recommendation.get("utilizationMetrics") or []
        ],
        "lookback_days": recommendation.get("lookBackPeriodInDays"),
        "last_refresh": refreshed.isoformat() if isinstance(refreshed, datetime) else refreshed,
        "window": {"end": now.isoformat()},
    }


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


def opt_in_required_finding(now: datetime, what: str = "EC2 findings") -> dict[str, Any]:
    """The one finding of an account that has not opted in to Compute Optimizer."""
    return {
        "schema_version": SCHEMA_VERSION,
        "source": "compute-optimizer",
        "resource_type": "account",
        "classification": "OptInRequired",
        "reasons": [
            f"this account has not opted in to AWS Compute Optimizer, so it has no {what}: "
            "opt in (aws compute-optimizer update-enrollment-status --status Active) and "
            "allow 30 hours of metrics"
        ],
        "window": {"end": now.isoformat()},
    }


#: Findings recorded under their endpoint's partition.
_ENDPOINT_RESOURCES = (
    "sagemaker-endpoint-variant",
    "sagemaker-inference-component",
    "sagemaker-endpoint",
)


def ledger_key(finding: Mapping[str, Any]) -> str:
    """The ledger partition of a finding: the endpoint's, the instance's or the account's."""
    if finding["resource_type"] in _ENDPOINT_RESOURCES:
        return f"endpoint#{finding['endpoint_name']}"
    if finding["resource_type"] == "ec2-instance":
        return f"instance#{finding['instance_arn']}"
    return "account#compute-optimizer"


def ledger_sort_key(finding: Mapping[str, Any]) -> str:
    """The ledger sort key of a finding: ``finding#<window end>#<variant>``, then more.

    For a component ``#inference-component#<name>``, for Compute Optimizer's idle finding of
    an endpoint ``#compute-optimizer``: neither overwrites the variant's own finding.
    """
    key = f"finding#{finding['window']['end']}#{finding.get('variant_name', '')}"
    if finding["resource_type"] == "sagemaker-inference-component":
        return f"{key}#inference-component#{finding['inference_component_name']}"
    if finding["resource_type"] == "sagemaker-endpoint":
        return f"{key}#compute-optimizer"
    return key
