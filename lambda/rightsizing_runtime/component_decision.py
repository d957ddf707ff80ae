"""The decision for an inference component (IC), from an AI recommendation job (issue #17).

Pure functions only, like ``decision.py`` (whose guardrails, hysteresis and number formatting
it reuses): no AWS calls, no clock. The Select step of the IC workflow, the ``plan`` command and
the decision benchmark all call :func:`recommend_component` / :func:`decide_component`.

What SageMaker returns (``DescribeAIRecommendationJob``, botocore 1.44.8's model): one
``Recommendations[]`` entry per configuration it benchmarked, with ``DeploymentConfiguration``
(``InstanceType``, ``InstanceCount``, ``CopyCountPerInstance``, ``MinCpuMemoryRequiredInMb``,
``ImageUri``, ``EnvironmentVariables``) and ``ExpectedPerformance``: a list of
``{Metric, Stat, Value, Unit}`` whose four members are free strings. AWS documents no vocabulary
for them (https://docs.aws.amazon.com/sagemaker/latest/APIReference/
API_AIRecommendationPerformanceMetric.html: "The name of the performance metric", "The
statistical measure for the metric", "The unit of the metric value", each only ``Type:
String``). What the docs do name: the job's objectives ``ttft-ms`` ("time to first token in
milliseconds"), ``throughput`` and ``cost`` (API_AIRecommendationConstraint.html), and the
benchmark's latency thresholds ``ttft_sla_ms`` (time to first token) and ``tpot_sla_ms`` (time
per output token, "inter-token latency"), evaluated on a ``search_stat`` such as ``avg`` or a
percentile (https://docs.aws.amazon.com/sagemaker/latest/dg/
generative-ai-inference-recommendations-concurrency-search.html). So metric names are recognised
conservatively (:func:`latency_ms`, :func:`listed_price`): only those names, in any case and
punctuation, with a unit that says milliseconds or seconds and a statistic that bounds the SLO's
percentile; anything else is *not measured*, which makes the candidate ineligible with that
reason. Nothing is guessed.

Capacity (contract of issue #17): the job measured ``InstanceCount * CopyCountPerInstance``
copies under the workload's ``workload_concurrency`` concurrent requests (the aiperf workload's
``concurrency``; https://docs.nvidia.com/aiperf/benchmark-modes/load-generator-options-reference:
"--concurrency ... sends requests as fast as possible within concurrency limits"), so one copy
serves ``concurrency / copies`` concurrent requests within the measured latency. At a peak of
``R`` concurrent requests and target utilization ``u``, the component needs
``copies = ceil(R / (capacity_per_copy * u))`` copies (at least ``min_copies``) on
``ceil(copies / copies_per_instance)`` instances (at least ``min_instances``). All exact.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from .decision import (
    Action,
    Autoscaling,
    Guardrails,
    InvalidJobResultError,
    VariantNotFoundError,
    exact,
    fmt,
    money,
    saving_too_small,
)

KIND = "inference-component"
#: The detail's ``evidence`` for an IC decision: the job's own ExpectedPerformance.
EVIDENCE = "ai-recommendation"
#: Application Auto Scaling predefined metric for IC copies (concurrent requests per copy).
SCALING_METRIC = "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
#: ``AIRecommendationJobStatus`` of a finished job (botocore: InProgress, Completed, Failed,
#: Stopping, Stopped).
COMPLETED = "Completed"
SCHEMA_VERSION = "1"
SETTINGS_VERSION = 1

#: SLO metrics the settings may name, and the ExpectedPerformance names recognised for each
#: (compared without case or punctuation: ``time_to_first_token`` = ``TimeToFirstToken``).
#: ``ttft``/``time to first token`` and ``tpot``/``inter-token latency`` are the documented
#: names (see the module docstring); nothing else is taken for them.
LATENCY_NAMES = {
    "ttft": frozenset({"ttft", "ttftms", "timetofirsttoken", "timetofirsttokenms"}),
    "itl": frozenset(
        {
            "itl",
            "itlms",
            "intertokenlatency",
            "intertokenlatencyms",
            "tpot",
            "tpotms",
            "timeperoutputtoken",
            "timeperoutputtokenms",
        }
    ),
}
_MILLISECONDS = frozenset({"ms", "msec", "millisecond", "milliseconds"})
_SECONDS = frozenset({"s", "sec", "second", "seconds"})
#: Cost metrics: the ``cost`` objective's name, or an explicit hourly name; the hour must be
#: said by the name or the unit (a cost per token or per request is not a price per hour).
_COST_NAMES = frozenset({"cost", "costperhour", "hourlycost", "priceperhour", "hourlyprice"})
#: Units of a price per hour in US dollars (``USD/hour``, ``$/hr``, ``USD per hour``...), or of
#: an hour alone when the name says the currency-free ``cost``; anything else (per month, per
#: token, another currency) is not taken.
_PER_HOUR_UNITS = frozenset(
    {"usdhour", "usdperhour", "usdhr", "usdh", "hour", "perhour", "hr", "h", "dollarsperhour"}
)
_PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?)")


def _key(text: object) -> str:
    return re.sub(r"[^a-z0-9.]", "", str(text).lower())


@dataclass(frozen=True, kw_only=True)
class ComponentSlo:
    """``metric`` (``ttft`` or ``itl``) at ``percentile`` (``p90``) at most ``max_latency_ms``."""

    metric: str
    percentile: str
    max_latency_ms: Decimal

    def __post_init__(self) -> None:
        if self.metric not in LATENCY_NAMES:
            raise ValueError(f"slo.metric must be one of {', '.join(LATENCY_NAMES)}")
        if _percentile(self.percentile) is None:
            raise ValueError(f"slo.percentile must be like p90, got {self.percentile!r}")


@dataclass(frozen=True, kw_only=True)
class ComponentInput:
    """What the decision needs besides the candidates (the IC settings document's numbers)."""

    peak_concurrent_requests: Fraction
    target_utilization: Fraction
    #: Concurrent requests the job's workload drove against the recommended deployment.
    workload_concurrency: int
    slo: ComponentSlo
    guardrails: Guardrails
    min_copies: int = 1
    #: US dollars per instance-hour by type, for types the job gives no usable price for.
    hourly_prices: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.peak_concurrent_requests < 0:
            raise ValueError("peak_concurrent_requests must be >= 0")
        if not 0 < self.target_utilization <= 1:
            raise ValueError("target_utilization must be in (0, 1]")
        if self.workload_concurrency < 1:
            raise ValueError("workload_concurrency must be >= 1")
        if self.min_copies < 1:
            raise ValueError("guardrails.min_copies must be >= 1")
        if not 1 <= self.guardrails.min_instances <= self.guardrails.max_instances:
            raise ValueError("guardrails need 1 <= min_instances <= max_instances")


@dataclass(frozen=True, kw_only=True)
class ComponentSettings:
    """The IC settings document (contract of issue #17), parsed."""

    endpoint_name: str
    variant_name: str
    inference_component_name: str
    decision_input: ComponentInput


def settings_from(document: Mapping[str, Any]) -> ComponentSettings:
    """Parse an IC settings document; ``ValueError`` names what is wrong."""
    if document.get("kind") != KIND or document.get("settings_version") != SETTINGS_VERSION:
        raise ValueError(
            f"not an inference-component settings document (kind {document.get('kind')!r}, "
            f"settings_version {document.get('settings_version')!r})"
        )
    slo = document["slo"]
    rails = document.get("guardrails") or {}
    cap = rails.get("max_cost_per_hour")
    guardrails = Guardrails(
        min_instances=int(rails.get("min_instances", 1)),
        max_instances=int(rails.get("max_instances", 10)),
        allowed_instance_types=tuple(rails.get("allowed_instance_types") or ()),
        max_cost_per_hour=None if cap is None else exact(cap),
        min_saving_percent=exact(rails.get("min_saving_percent", 0)),
        min_saving_per_month=exact(rails.get("min_saving_per_month", 0)),
    )
    return ComponentSettings(
        endpoint_name=str(document["endpoint_name"]),
        variant_name=str(document.get("variant_name", "AllTraffic")),
        inference_component_name=str(document["inference_component_name"]),
        decision_input=ComponentInput(
            peak_concurrent_requests=Fraction(exact(document["peak_concurrent_requests"])),
            target_utilization=Fraction(exact(document.get("target_utilization", "0.5"))),
            workload_concurrency=int(document["job"]["workload_concurrency"]),
            slo=ComponentSlo(
                metric=str(slo.get("metric", "ttft")),
                percentile=str(slo["percentile"]),
                max_latency_ms=exact(slo["max_latency_ms"]),
            ),
            guardrails=guardrails,
            min_copies=int(rails.get("min_copies", 1)),
            hourly_prices={
                str(t): exact(p) for t, p in (document.get("hourly_prices") or {}).items()
            },
        ),
    )


@dataclass(frozen=True, kw_only=True)
class ComponentCandidate:
    """One configuration the AI recommendation job benchmarked."""

    #: ``<job>/<index>``: recommendations carry no id of their own.
    recommendation_id: str
    instance_type: str | None
    instance_count: int | None
    copies_per_instance: int | None
    min_memory_mb: int | None = None
    image_uri: str | None = None
    environment: Mapping[str, str] | None = None
    expected_performance: tuple[Mapping[str, str], ...] = ()
    #: The job optimized the model for this configuration (``OptimizationDetails``, e.g.
    #: speculative decoding): its container and environment are part of the recommendation.
    optimized: bool = False


def candidates_from_ai_job(description: Mapping[str, Any]) -> list[ComponentCandidate]:
    """Read the candidates of a ``DescribeAIRecommendationJob`` response.

    Raises :class:`decision.InvalidJobResultError` (with SageMaker's ``FailureReason``) when the
    job is not ``Completed`` or has no recommendations.
    """
    name = description.get("AIRecommendationJobName", "<unnamed>")
    status = description.get("AIRecommendationJobStatus")
    if status != COMPLETED:
        reason = description.get("FailureReason")
        raise InvalidJobResultError(
            f"AI recommendation job {name} is {status or 'missing a status'}, not Completed"
            + (f": {reason}" if reason else "")
        )
    recommendations = description.get("Recommendations") or []
    if not recommendations:
        raise InvalidJobResultError(f"AI recommendation job {name} completed with none")
    return [_candidate(f"{name}/{i}", r) for i, r in enumerate(recommendations)]


def _candidate(recommendation_id: str, recommendation: Mapping[str, Any]) -> ComponentCandidate:
    deployment = recommendation.get("DeploymentConfiguration") or {}
    details = ((recommendation.get("ModelDetails") or {}).get("InstanceDetails") or [{}])[0]

    def pick(key: str) -> Any:
        # DeploymentConfiguration first; ModelDetails.InstanceDetails says the same when it is
        # the one present (API_AIRecommendationModelDetails: "instance type, count, and model
        # copies per instance").
        value = deployment.get(key)
        return details.get(key) if value is None else value

    environment = deployment.get("EnvironmentVariables")
    return ComponentCandidate(
        recommendation_id=recommendation_id,
        instance_type=pick("InstanceType"),
        instance_count=pick("InstanceCount"),
        copies_per_instance=pick("CopyCountPerInstance"),
        min_memory_mb=deployment.get("MinCpuMemoryRequiredInMb"),
        image_uri=deployment.get("ImageUri"),
        environment=None if environment is None else dict(environment),
        expected_performance=tuple(
            dict(m) for m in recommendation.get("ExpectedPerformance") or []
        ),
        optimized=bool(recommendation.get("OptimizationDetails")),
    )


def _percentile(stat: object) -> Decimal | None:
    key = _key(stat)
    if key in ("max", "maximum"):
        return Decimal(100)
    matched = _PERCENTILE.fullmatch(key)
    return Decimal(matched.group(1)) if matched else None


def _value(text: object) -> Decimal | None:
    try:
        value = Decimal(str(text))
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() and value >= 0 else None


def latency_ms(candidate: ComponentCandidate, slo: ComponentSlo) -> tuple[Decimal | None, str]:
    """The candidate's measured latency for the SLO's metric, in ms, or None and why not.

    A statistic at the SLO's percentile is taken, else the lowest higher percentile (or the
    maximum): it bounds the SLO's percentile from above, so judging it is conservative. A
    lower percentile or a mean says nothing about the tail: not measured.
    """
    wanted = _percentile(slo.percentile)
    assert wanted is not None
    found: list[tuple[Decimal, Decimal]] = []
    for metric in candidate.expected_performance:
        name = _key(metric.get("Metric"))
        if name not in LATENCY_NAMES[slo.metric]:
            continue
        level = _percentile(metric.get("Stat"))
        value = _value(metric.get("Value"))
        # Without a Unit, only a name that says milliseconds (``ttft-ms``) has one.
        unit = _key(metric.get("Unit") or ("ms" if name.endswith("ms") else ""))
        if level is None or level < wanted or value is None:
            continue
        if unit in _MILLISECONDS:
            found.append((level, value))
        elif unit in _SECONDS:
            found.append((level, value * 1000))
    if not found:
        return None, (
            f"the job reports no {slo.metric.upper()} at {slo.percentile} or above in "
            "ExpectedPerformance (not measured)"
        )
    return min(found)[1], "measured"


def listed_price(candidate: ComponentCandidate) -> tuple[Decimal | None, str]:
    """The job's own price per instance-hour (a cost metric of ExpectedPerformance), or None.

    The docs do not say whether a cost is per instance or for the recommended deployment's
    ``InstanceCount`` instances; both readings agree only for one instance, so a cost is taken
    only then (elsewhere the settings' ``hourly_prices`` apply).
    """
    for metric in candidate.expected_performance:
        name, unit = _key(metric.get("Metric")), _key(metric.get("Unit") or "")
        hourly = (name != "cost" and not unit) or unit in _PER_HOUR_UNITS
        value = _value(metric.get("Value"))
        if name in _COST_NAMES and hourly and value is not None and candidate.instance_count == 1:
            return value, "expected-performance"
    return None, "no cost per hour for one instance in ExpectedPerformance"


@dataclass(frozen=True, kw_only=True)
class ComponentEvaluation:
    """A candidate judged against the SLO and guardrails at the planned peak."""

    candidate: ComponentCandidate
    latency_ms: Decimal | None
    capacity_per_copy: Fraction | None
    copies: int | None
    instance_count: int | None
    price_per_hour: Decimal | None
    #: ``expected-performance`` or ``hourly-prices`` (None: no price).
    price_source: str | None
    #: ``copies / copies_per_instance * price``: the component's share of its instances.
    cost_at_peak_per_hour: Decimal | None
    eligible: bool
    reason: str


def copies_needed(
    peak: Fraction, capacity_per_copy: Fraction, utilization: Fraction, min_copies: int
) -> int:
    """``max(min_copies, ceil(R / (capacity_per_copy * u)))``, exactly."""
    return max(min_copies, math.ceil(peak / (capacity_per_copy * utilization)))


def evaluate_component(
    candidate: ComponentCandidate, inputs: ComponentInput
) -> ComponentEvaluation:
    """Judge one candidate: copies and instances at peak, its price, cost and eligibility."""
    latency, why = latency_ms(candidate, inputs.slo)
    judged = ComponentEvaluation(
        candidate=candidate,
        latency_ms=latency,
        capacity_per_copy=None,
        copies=None,
        instance_count=None,
        price_per_hour=None,
        price_source=None,
        cost_at_peak_per_hour=None,
        eligible=False,
        reason="",
    )
    count, per_instance = candidate.instance_count, candidate.copies_per_instance
    if candidate.instance_type is None:
        return _with(judged, reason="the recommendation names no instance type")
    # The price is recorded whatever else the candidate lacks: the current cost reads it.
    price, source = listed_price(candidate)
    if price is None and candidate.instance_type in inputs.hourly_prices:
        price, source = inputs.hourly_prices[candidate.instance_type], "hourly-prices"
    if price is not None and (not price.is_finite() or price < 0):
        price = None
    judged = _with(judged, price_per_hour=price, price_source=None if price is None else source)
    if not count or not per_instance or count < 1 or per_instance < 1:
        return _with(judged, reason="the recommendation has no instance count or copies")
    if latency is None:
        return _with(judged, reason=why)
    capacity = Fraction(inputs.workload_concurrency, count * per_instance)
    copies = copies_needed(
        inputs.peak_concurrent_requests, capacity, inputs.target_utilization, inputs.min_copies
    )
    instances = max(inputs.guardrails.min_instances, math.ceil(Fraction(copies, per_instance)))
    judged = _with(judged, capacity_per_copy=capacity, copies=copies, instance_count=instances)
    if price is None:
        return _with(judged, reason=f"no hourly price for {candidate.instance_type}")
    cost = price * copies / per_instance
    problems = _problems(candidate.instance_type, latency, instances, cost, inputs)
    return _with(
        judged,
        cost_at_peak_per_hour=cost,
        eligible=not problems,
        reason="; ".join(problems) or "eligible",
    )


def _problems(
    instance_type: str, latency: Decimal, instances: int, cost: Decimal, inputs: ComponentInput
) -> list[str]:
    slo, rails = inputs.slo, inputs.guardrails
    problems = []
    if latency > slo.max_latency_ms:
        problems.append(
            f"{slo.metric.upper()} {fmt(latency)} ms exceeds the {slo.percentile} SLO of "
            f"{fmt(slo.max_latency_ms)} ms"
        )
    if not rails.allows(instance_type):
        problems.append(
            f"{instance_type} is not in the allowed instance types "
            f"({', '.join(rails.allowed_instance_types)})"
        )
    if instances > rails.max_instances:
        problems.append(
            f"needs {instances} instances at peak, more than the maximum of {rails.max_instances}"
        )
    if rails.max_cost_per_hour is not None and cost > rails.max_cost_per_hour:
        costs, maximum = money(cost, rails.max_cost_per_hour)
        problems.append(f"costs {costs} per hour at peak, more than the maximum of {maximum}")
    return problems


def _with(evaluation: ComponentEvaluation, **changes: Any) -> ComponentEvaluation:
    fields = {**evaluation.__dict__, **changes}
    return ComponentEvaluation(**fields)


@dataclass(frozen=True, kw_only=True)
class CurrentComponent:
    """What the component and its endpoint's variant run now."""

    endpoint_config_name: str | None
    instance_type: str | None
    #: Instances the variant runs (DescribeEndpoint ``CurrentInstanceCount``).
    instance_count: int | None
    #: ManagedInstanceScaling ``MaxInstanceCount`` when it is ENABLED, else None.
    max_instance_count: int | None
    copy_count: int | None
    #: Copies one instance holds: the type's GPUs / the component's accelerators per copy when
    #: both are known; else current copies / current instances (as if the endpoint hosted this
    #: component alone; a fraction when uneven).
    copies_per_instance: Fraction | None
    compute_resource_requirements: Mapping[str, Any] | None
    image: str | None
    environment: Mapping[str, str] | None


def current_component_from(
    inference_component: Mapping[str, Any],
    endpoint: Mapping[str, Any] | None,
    endpoint_config: Mapping[str, Any],
    variant_name: str,
    gpus_per_instance: int | None = None,
) -> CurrentComponent:
    """The current state, from the component's, endpoint's and endpoint config's descriptions.

    Without ``endpoint`` the config's ``InitialInstanceCount`` counts as the running instances.
    ``gpus_per_instance`` (EC2 ``DescribeInstanceTypes`` of the variant's type) gives the
    component's own packing, whatever else the endpoint hosts.
    """
    variant = next(
        (
            v
            for v in endpoint_config.get("ProductionVariants") or []
            if v.get("VariantName") == variant_name
        ),
        None,
    )
    if variant is None:
        raise VariantNotFoundError(
            f"endpoint config {endpoint_config.get('EndpointConfigName')} has no variant "
            f"{variant_name!r}"
        )
    running: Mapping[str, Any] = next(
        (
            v
            for v in (endpoint or {}).get("ProductionVariants") or []
            if v.get("VariantName") == variant_name
        ),
        {},
    )
    instances = running.get("CurrentInstanceCount", variant.get("InitialInstanceCount"))
    scaling = variant.get("ManagedInstanceScaling") or {}
    runtime = inference_component.get("RuntimeConfig") or {}
    copies = runtime.get("CurrentCopyCount", runtime.get("DesiredCopyCount"))
    specification = inference_component.get("Specification") or {}
    container = specification.get("Container") or {}
    image = (container.get("DeployedImage") or {}).get("SpecifiedImage")
    return CurrentComponent(
        endpoint_config_name=endpoint_config.get("EndpointConfigName"),
        instance_type=variant.get("InstanceType"),
        instance_count=instances,
        max_instance_count=scaling.get("MaxInstanceCount")
        if scaling.get("Status") == "ENABLED"
        else None,
        copy_count=copies,
        copies_per_instance=_packing(
            specification.get("ComputeResourceRequirements"), gpus_per_instance, copies, instances
        ),
        compute_resource_requirements=specification.get("ComputeResourceRequirements"),
        image=image,
        environment=container.get("Environment"),
    )


def _packing(
    requirements: Mapping[str, Any] | None,
    gpus_per_instance: int | None,
    copies: int | None,
    instances: int | None,
) -> Fraction | None:
    """Copies per instance: the GPUs over the accelerators each copy reserves, when known."""
    accelerators = (requirements or {}).get("NumberOfAcceleratorDevicesRequired")
    if gpus_per_instance and accelerators and accelerators >= 1:
        return Fraction(int(gpus_per_instance // accelerators))
    return Fraction(copies, instances) if copies and instances else None


@dataclass(frozen=True, kw_only=True)
class ComponentDecision:
    """The outcome for an inference component."""

    action: Action
    reason: str
    chosen: ComponentEvaluation | None
    autoscaling: Autoscaling | None
    evaluations: tuple[ComponentEvaluation, ...]


def _rank(evaluation: ComponentEvaluation) -> tuple[Decimal, Decimal, int, str]:
    """Cheapest at peak first; ties: lower latency, fewer instances, then type name."""
    assert evaluation.cost_at_peak_per_hour is not None and evaluation.latency_ms is not None
    assert evaluation.instance_count is not None and evaluation.candidate.instance_type
    return (
        evaluation.cost_at_peak_per_hour,
        evaluation.latency_ms,
        evaluation.instance_count,
        evaluation.candidate.instance_type,
    )


def decide_component(
    candidates: Sequence[ComponentCandidate],
    inputs: ComponentInput,
    current: CurrentComponent | None = None,
) -> ComponentDecision:
    """The cheapest candidate at peak that meets the SLO inside the guardrails, and the action.

    ``reject``: none is eligible. ``no-change``: the cheapest one needs another instance type,
    or more instances than the endpoint's managed instance scaling allows (both need a new
    endpoint config: said in the reason, the candidate is still reported); or the component
    already runs it; or the saving is below the guardrails' minimum while the current copies
    meet the SLO (hysteresis). ``apply`` otherwise.
    """
    evaluations = tuple(evaluate_component(c, inputs) for c in candidates)
    eligible = sorted((e for e in evaluations if e.eligible), key=_rank)
    if not eligible:
        return ComponentDecision(
            action="reject",
            reason="no candidate meets the SLO inside the guardrails: "
            + " | ".join(f"{e.candidate.instance_type}: {e.reason}" for e in evaluations),
            chosen=None,
            autoscaling=None,
            evaluations=evaluations,
        )
    best = eligible[0]
    evaluations = tuple(_explain(e, best) for e in evaluations)
    chosen = next(e for e in evaluations if e.candidate is best.candidate)
    assert chosen.capacity_per_copy is not None and chosen.cost_at_peak_per_hour is not None
    assert chosen.candidate.copies_per_instance is not None
    autoscaling = Autoscaling(
        metric=SCALING_METRIC,
        target_value=float(chosen.capacity_per_copy * inputs.target_utilization),
        min_capacity=inputs.min_copies,
        max_capacity=inputs.guardrails.max_instances * chosen.candidate.copies_per_instance,
    )
    action, why = _action(chosen, evaluations, inputs, current)
    return ComponentDecision(
        action=action,
        reason=why + _summary(chosen, inputs),
        chosen=chosen,
        autoscaling=autoscaling,
        evaluations=evaluations,
    )


def _summary(chosen: ComponentEvaluation, inputs: ComponentInput) -> str:
    candidate, slo = chosen.candidate, inputs.slo
    assert chosen.cost_at_peak_per_hour is not None
    return (
        f"{candidate.instance_type} x{chosen.instance_count} with {chosen.copies} copies "
        f"({candidate.copies_per_instance} per instance) is the cheapest configuration that "
        f"meets the {slo.percentile} {slo.metric.upper()} SLO of {fmt(slo.max_latency_ms)} ms "
        f"at {fmt(inputs.peak_concurrent_requests)} concurrent requests "
        f"({money(chosen.cost_at_peak_per_hour)[0]} per hour at peak)"
    )


def _action(
    chosen: ComponentEvaluation,
    evaluations: Sequence[ComponentEvaluation],
    inputs: ComponentInput,
    current: CurrentComponent | None,
) -> tuple[Action, str]:
    """The action and the reason's first clause (the summary follows it)."""
    if current is None:
        return "apply", ""
    candidate = chosen.candidate
    if current.instance_type != candidate.instance_type:
        return "no-change", (
            f"the endpoint runs {current.instance_type} and the choice needs "
            f"{candidate.instance_type}: only the copies of the same instance type are changed; "
            "change the instance type by hand (a new endpoint config), then run again: "
        )
    # Without managed instance scaling, the copies can only use the instances running now.
    limit = current.max_instance_count
    limit_name = "its ManagedInstanceScaling MaxInstanceCount"
    if limit is None:
        limit, limit_name = current.instance_count, "the instances it runs (no managed scaling)"
    assert chosen.instance_count is not None
    if limit is not None and chosen.instance_count > limit:
        return "no-change", (
            f"the choice needs {chosen.instance_count} instances, more than {limit_name} "
            f"({limit}): raise it by hand (a new endpoint config), then run again: "
        )
    if (
        current.copy_count == chosen.copies
        and requirements_change(chosen, current) is None
        and container_change(chosen, current) is None
    ):
        return "no-change", "the component already runs it: "
    too_small = _hysteresis(chosen, evaluations, inputs, current)
    if too_small is not None:
        return "no-change", f"{too_small}; "
    return "apply", ""


def _hysteresis(
    chosen: ComponentEvaluation,
    evaluations: Sequence[ComponentEvaluation],
    inputs: ComponentInput,
    current: CurrentComponent,
) -> str | None:
    """``decision.saving_too_small`` when the current copies meet the SLO at peak.

    They do when the job measured a configuration of the current type and copies per instance
    that is eligible, and the component runs at least the copies it needs.
    """
    measured = next(
        (
            e
            for e in evaluations
            if e.eligible
            and e.candidate.instance_type == current.instance_type
            and e.candidate.copies_per_instance == current.copies_per_instance
        ),
        None,
    )
    if (
        measured is None
        or measured.copies is None
        or measured.price_per_hour is None
        or current.copy_count is None
        or current.copies_per_instance is None
        or current.copy_count < measured.copies
    ):
        return None
    assert chosen.cost_at_peak_per_hour is not None
    current_cost = measured.price_per_hour * _decimal(
        Fraction(current.copy_count) / current.copies_per_instance
    )
    return saving_too_small(
        f"{current.copy_count} copies on {current.instance_type}",
        current_cost,
        chosen.cost_at_peak_per_hour,
        inputs.guardrails,
    )


def _explain(evaluation: ComponentEvaluation, chosen: ComponentEvaluation) -> ComponentEvaluation:
    if not evaluation.eligible:
        return evaluation
    if evaluation.candidate is chosen.candidate:
        return _with(evaluation, reason="chosen")
    assert evaluation.cost_at_peak_per_hour is not None
    assert chosen.cost_at_peak_per_hour is not None
    if evaluation.cost_at_peak_per_hour > chosen.cost_at_peak_per_hour:
        costs, against = money(evaluation.cost_at_peak_per_hour, chosen.cost_at_peak_per_hour)
        return _with(
            evaluation,
            reason=f"eligible, but costs {costs} per hour at peak against {against} for the "
            "chosen one",
        )
    return _with(
        evaluation,
        reason="eligible, same cost at peak, ranked lower on latency, instance count, then name",
    )


def requirements_change(
    chosen: ComponentEvaluation, current: CurrentComponent | None
) -> dict[str, Any] | None:
    """The ComputeResourceRequirements to set, or None when the recommendation keeps them.

    They change when the recommended memory per copy (``MinCpuMemoryRequiredInMb``, which
    "maps to the Inference Component's ComputeResourceRequirements$MinMemoryRequiredInMb",
    botocore's documentation of the shape) differs, or the copies per instance do (accelerators
    per copy follow from them: the apply path sets ``NumberOfAcceleratorDevicesRequired`` from
    the type's GPUs).
    """
    candidate = chosen.candidate
    now = dict((current.compute_resource_requirements if current else None) or {})
    memory = candidate.min_memory_mb or now.get("MinMemoryRequiredInMb")
    same_memory = memory == now.get("MinMemoryRequiredInMb")
    same_packing = current is not None and current.copies_per_instance == Fraction(
        candidate.copies_per_instance or 0
    )
    if current is not None and same_memory and same_packing:
        return None
    return None if memory is None else {"MinMemoryRequiredInMb": memory}


def container_change(
    chosen: ComponentEvaluation, current: CurrentComponent | None
) -> dict[str, Any] | None:
    """The container (image and environment) to set, or None when the recommendation keeps it.

    Only a recommendation the job optimized the model for (``OptimizationDetails``) changes
    the container: otherwise its image and environment are the job's defaults for serving the
    model, not a change to make. The recommended environment is merged over the component's
    own (its model id, tokens... stay).
    """
    candidate = chosen.candidate
    if not candidate.optimized or candidate.image_uri is None:
        return None
    environment = {**dict((current.environment if current else None) or {})}
    environment.update(candidate.environment or {})
    if (
        current is not None
        and current.image == candidate.image_uri
        and dict(current.environment or {}) == environment
    ):
        return None
    return {"Image": candidate.image_uri, "Environment": environment}


def recommend_component(
    *,
    description: Mapping[str, Any],
    settings: ComponentSettings,
    inference_component: Mapping[str, Any] | None = None,
    endpoint: Mapping[str, Any] | None = None,
    endpoint_config: Mapping[str, Any] | None = None,
    trigger: Mapping[str, Any] | None = None,
    model_fingerprint: str | None = None,
    job_reused: bool = False,
    gpus_per_instance: int | None = None,
) -> dict[str, Any]:
    """Decide on a ``DescribeAIRecommendationJob`` response; return the event detail.

    With ``inference_component`` and ``endpoint_config`` (and optionally ``endpoint``), the
    current state is known: the action can be ``no-change``. Every key of the endpoint detail
    (``recommendation.recommendation_detail``) is present, with the IC keys of the contract.
    """
    current = (
        None
        if inference_component is None or endpoint_config is None
        else current_component_from(
            inference_component,
            endpoint,
            endpoint_config,
            settings.variant_name,
            gpus_per_instance=gpus_per_instance,
        )
    )
    inputs = settings.decision_input
    made = decide_component(candidates_from_ai_job(description), inputs, current)
    chosen = made.chosen
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "endpoint_name": settings.endpoint_name,
        "variant_name": settings.variant_name,
        "inference_component_name": settings.inference_component_name,
        "job_name": str(description.get("AIRecommendationJobName", "")),
        "trigger": None if trigger is None else dict(trigger),
        "model_fingerprint": model_fingerprint,
        "job_reused": job_reused,
        "pending": None,
        "action": made.action,
        "reason": made.reason,
        "evidence": EVIDENCE,
        "evidence_reason": "the AI recommendation job's ExpectedPerformance",
        "instance_type": chosen.candidate.instance_type if chosen else None,
        "instance_count": chosen.instance_count if chosen else None,
        "autoscaling": None if made.autoscaling is None else dict(made.autoscaling.__dict__),
        "autoscaling_cross_check": None,
        "estimated_cost_per_hour": _number(chosen.cost_at_peak_per_hour) if chosen else None,
        "inference_component": _component(chosen, current),
        "current": _current(current, made.evaluations),
        "inputs": _inputs(inputs),
        "candidates": [_candidate_detail(e, e is chosen, inputs.slo) for e in made.evaluations],
    }


def _component(
    chosen: ComponentEvaluation | None, current: CurrentComponent | None
) -> dict[str, Any] | None:
    now = (
        None
        if current is None
        else {
            "copy_count": current.copy_count,
            "copies_per_instance": _number(current.copies_per_instance),
            "instance_type": current.instance_type,
            "compute_resource_requirements": current.compute_resource_requirements,
            "image": current.image,
            "environment": current.environment,
        }
    )
    if chosen is None:
        return None if now is None else {"current": now}
    return {
        "copy_count": chosen.copies,
        "copies_per_instance": chosen.candidate.copies_per_instance,
        "compute_resource_requirements": requirements_change(chosen, current),
        "container": container_change(chosen, current),
        "current": now,
    }


def _current(
    current: CurrentComponent | None, evaluations: Sequence[ComponentEvaluation]
) -> dict[str, Any] | None:
    if current is None:
        return None
    price = next(
        (
            e.price_per_hour
            for e in evaluations
            if e.candidate.instance_type == current.instance_type and e.price_per_hour is not None
        ),
        None,
    )
    cost = (
        None
        if price is None or current.copy_count is None or not current.copies_per_instance
        else _number(price * _decimal(current.copy_count / current.copies_per_instance))
    )
    return {
        "endpoint_config_name": current.endpoint_config_name,
        "instance_type": current.instance_type,
        "instance_count": current.instance_count,
        "estimated_cost_per_hour": cost,
        "copy_count": current.copy_count,
        "max_instance_count": current.max_instance_count,
    }


def _inputs(inputs: ComponentInput) -> dict[str, Any]:
    rails = inputs.guardrails
    return {
        # The endpoint detail's peak in requests per minute does not apply to a component.
        "peak_requests_per_minute": None,
        "peak_source": {"kind": "configured"},
        "peak_concurrent_requests": _number(inputs.peak_concurrent_requests),
        "workload_concurrency": inputs.workload_concurrency,
        "target_utilization": _number(inputs.target_utilization),
        "slo": {
            "metric": inputs.slo.metric,
            "percentile": inputs.slo.percentile,
            "max_latency_ms": _number(inputs.slo.max_latency_ms),
        },
        "guardrails": {
            "min_instances": rails.min_instances,
            "max_instances": rails.max_instances,
            "allowed_instance_types": list(rails.allowed_instance_types),
            "max_cost_per_hour": _number(rails.max_cost_per_hour),
            "min_saving_percent": _number(rails.min_saving_percent),
            "min_saving_per_month": _number(rails.min_saving_per_month),
            "min_copies": inputs.min_copies,
        },
        "hourly_prices": {t: _number(p) for t, p in inputs.hourly_prices.items()},
    }


def _candidate_detail(
    evaluation: ComponentEvaluation, chosen: bool, slo: ComponentSlo
) -> dict[str, Any]:
    candidate = evaluation.candidate
    latency = _number(evaluation.latency_ms)
    return {
        "recommendation_id": candidate.recommendation_id,
        "instance_type": candidate.instance_type,
        "serverless": False,
        "cost_per_hour": _number(evaluation.price_per_hour),
        "price_source": evaluation.price_source,
        "cost_per_inference": None,
        "max_invocations_per_instance_per_minute": None,
        "model_latency_ms": None,
        "ttft_ms": latency if slo.metric == "ttft" else None,
        "itl_ms": latency if slo.metric == "itl" else None,
        "recommended_instance_count": candidate.instance_count,
        "copies_per_instance": candidate.copies_per_instance,
        "capacity_per_copy": None
        if evaluation.capacity_per_copy is None
        else _number(evaluation.capacity_per_copy),
        "copies": evaluation.copies,
        "instance_count": evaluation.instance_count,
        "cost_at_peak_per_hour": _number(evaluation.cost_at_peak_per_hour),
        "min_memory_required_mb": candidate.min_memory_mb,
        "image_uri": candidate.image_uri,
        "expected_performance": [dict(m) for m in candidate.expected_performance],
        "eligible": evaluation.eligible,
        "chosen": chosen,
        "reason": evaluation.reason,
        "capacity_at_slo": None,
        "latency_at_peak_ms": None,
        "unit_check": None,
    }


def _decimal(value: Fraction) -> Decimal:
    return Decimal(value.numerator) / Decimal(value.denominator)


def _number(value: Decimal | Fraction | None) -> float | int | None:
    """JSON numbers, as the endpoint detail writes them (integers stay integers)."""
    if value is None or (isinstance(value, Decimal) and not value.is_finite()):
        return None
    if value == int(value):
        return int(value)
    return round(float(value), 6) if isinstance(value, Fraction) else float(value)
