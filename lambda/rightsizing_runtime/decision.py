"""The decision core: which IR candidate to run, how many instances, how to autoscale it.

Pure functions only: no AWS calls, no clock, no environment. The Select handler, the ``plan``
command and the tests all call :func:`decide`, so a reviewer who runs ``plan`` on a job's
description sees exactly what the workflow would have done.

Capacity math (DESIGN.md, "Decision core"): with expected peak traffic ``R`` requests per minute,
a candidate that sustains ``MaxInvocations`` requests per minute per instance, and a target
utilization ``u`` (headroom for bursts), the candidate needs ``n = ceil(R / (MaxInvocations * u))``
instances, raised to the guardrail minimum. All of it is computed with exact rationals and
decimals: a peak that needs exactly 10 instances gets 10, never 11 through float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

#: Application Auto Scaling predefined metric the target value is expressed in (requests per
#: minute per instance, the same unit as IR's ``MaxInvocations``).
SCALING_METRIC = "SageMakerVariantInvocationsPerInstance"

Action = Literal["apply", "no-change", "reject"]

_MICROSECONDS_PER_MILLISECOND = Decimal(1000)
#: Hours in a month, as AWS's pricing pages count them (365 * 24 / 12).
HOURS_PER_MONTH = Decimal(730)


class InvalidJobResultError(ValueError):
    """The job description cannot be decided on (not COMPLETED, no recommendations, malformed)."""


class VariantNotFoundError(ValueError):
    """The endpoint (config) has no production variant of the configured name."""


def model_latency_ms(model_latency_us: int | float) -> Decimal:
    """Convert IR's ``Metrics.ModelLatency`` to milliseconds.

    IR reports ``ModelLatency`` in **microseconds**. The SageMaker docs contradict themselves (one
    page says milliseconds), but the genuine sample output in the docs (ml.c5.xlarge, CostPerHour
    0.204, MaxInvocations 648, ModelLatency 263596) only makes sense in microseconds (264 ms at
    saturation, not 4.4 minutes), and CloudWatch's ``AWS/SageMaker`` ``ModelLatency`` metric is in
    microseconds too. This is the only place the unit is converted.
    """
    return Decimal(str(model_latency_us)) / _MICROSECONDS_PER_MILLISECOND


def exact(value: int | float | str | Decimal) -> Decimal:
    """A decimal equal to the value as written (``0.204`` stays 0.204, not its binary float)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One configuration IR measured, in the units the decision uses."""

    recommendation_id: str | None
    instance_type: str | None
    serverless: bool
    cost_per_hour: Decimal | None
    cost_per_inference: Decimal | None
    #: Requests per minute one instance sustained before saturating (IR ``MaxInvocations``).
    max_invocations: int | None
    model_latency_ms: Decimal | None
    #: Highest per-instance rate its benchmark sustained within the SLO, measured on the
    #: per-minute curve (``evidence.py``); it caps ``max_invocations``. None: not measured.
    capacity_at_slo: Fraction | None = None
    #: Whether the measured curve met the SLO at all (False: ineligible, whatever IR's scalar
    #: says); None: no curve (or one whose unit check failed), IR's scalar
    #: ``model_latency_ms`` is judged against the SLO instead.
    meets_slo_measured: bool | None = None

    def planning_capacity(self) -> Fraction | None:
        """Requests per minute per instance to plan with: MaxInvocations, capped by the curve."""
        if self.max_invocations is None:
            return None
        if self.capacity_at_slo is None:
            return Fraction(self.max_invocations)
        return min(Fraction(self.max_invocations), self.capacity_at_slo)


@dataclass(frozen=True, kw_only=True)
class Slo:
    """The latency objective: ``percentile`` (``P95``/``P99``) at most ``max_latency_ms``."""

    percentile: str
    max_latency_ms: Decimal


@dataclass(frozen=True, kw_only=True)
class Guardrails:
    """Bounds no recommendation may cross."""

    min_instances: int = 1
    max_instances: int = 10
    #: Exact types (``ml.c5.xlarge``) or families (``ml.c5``); empty allows every type.
    allowed_instance_types: tuple[str, ...] = ()
    max_cost_per_hour: Decimal | None = None
    #: Hysteresis: when the current configuration already meets the SLO, a change must save at
    #: least this percentage of its cost...
    min_saving_percent: Decimal = Decimal(0)
    #: ...and at least this much per month (``HOURS_PER_MONTH`` hours), or the result is
    #: ``no-change``: fleets do not churn for pennies.
    min_saving_per_month: Decimal = Decimal(0)

    def allows(self, instance_type: str) -> bool:
        """Whether ``instance_type`` is allowed, as an exact type or as a member of a family."""
        return is_allowed_type(instance_type, self.allowed_instance_types)


def is_allowed_type(instance_type: str, allowed_instance_types: Sequence[str]) -> bool:
    """Whether ``instance_type`` is allowed: listed, or in a listed family.

    ``ml.c5`` allows ``ml.c5.xlarge``; an empty list allows every type.
    """
    return not allowed_instance_types or any(
        instance_type == allowed or instance_type.startswith(allowed + ".")
        for allowed in allowed_instance_types
    )


@dataclass(frozen=True, kw_only=True)
class DecisionInput:
    """What the decision needs besides the candidates."""

    peak_requests_per_minute: Fraction
    target_utilization: Fraction
    slo: Slo
    guardrails: Guardrails

    def __post_init__(self) -> None:
        if self.peak_requests_per_minute < 0:
            raise ValueError(
                f"peak_requests_per_minute must be >= 0, got {self.peak_requests_per_minute}"
            )
        if not 0 < self.target_utilization <= 1:
            raise ValueError(
                f"target_utilization must be in (0, 1], got {float(self.target_utilization)}"
            )
        if not 1 <= self.guardrails.min_instances <= self.guardrails.max_instances:
            raise ValueError(
                "guardrails need 1 <= min_instances <= max_instances, got "
                f"min {self.guardrails.min_instances}, max {self.guardrails.max_instances}"
            )


@dataclass(frozen=True, kw_only=True)
class CurrentConfig:
    """What the endpoint's variant runs now (from ``DescribeEndpointConfig``)."""

    endpoint_config_name: str
    instance_type: str | None
    instance_count: int | None


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """A candidate judged against the SLO and guardrails."""

    candidate: Candidate
    #: Instances needed at peak; None when it cannot be computed (serverless, no throughput).
    instance_count: int | None
    cost_at_peak_per_hour: Decimal | None
    eligible: bool
    #: Why it is ineligible, or (filled in by :func:`decide`) why an eligible one was not chosen.
    reason: str


@dataclass(frozen=True, kw_only=True)
class Autoscaling:
    """Target tracking for the chosen candidate."""

    metric: str
    target_value: float
    min_capacity: int
    max_capacity: int


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The outcome: what to run, why, and how every candidate fared."""

    action: Action
    reason: str
    chosen: Evaluation | None
    autoscaling: Autoscaling | None
    evaluations: tuple[Evaluation, ...]


def candidates_from_job(description: Mapping[str, Any]) -> list[Candidate]:
    """Read the candidates of a ``DescribeInferenceRecommendationsJob`` response.

    Raises :class:`InvalidJobResultError` when the job is not COMPLETED or has no recommendations.
    """
    status = description.get("Status")
    name = description.get("JobName", "<unnamed>")
    if status != "COMPLETED":
        reason = description.get("FailureReason")
        detail = f": {reason}" if reason else ""
        raise InvalidJobResultError(
            f"recommendation job {name} is {status or 'missing a Status'}, not COMPLETED{detail}"
        )
    recommendations = description.get("InferenceRecommendations") or []
    if not recommendations:
        raise InvalidJobResultError(f"recommendation job {name} completed with no recommendations")
    return [_candidate(recommendation) for recommendation in recommendations]


def _candidate(recommendation: Mapping[str, Any]) -> Candidate:
    metrics = recommendation.get("Metrics") or {}
    endpoint = recommendation.get("EndpointConfiguration") or {}
    latency = metrics.get("ModelLatency")
    cost_per_hour = metrics.get("CostPerHour")
    cost_per_inference = metrics.get("CostPerInference")
    return Candidate(
        recommendation_id=recommendation.get("RecommendationId"),
        instance_type=endpoint.get("InstanceType"),
        serverless="ServerlessConfig" in endpoint,
        cost_per_hour=None if cost_per_hour is None else exact(cost_per_hour),
        cost_per_inference=None if cost_per_inference is None else exact(cost_per_inference),
        max_invocations=metrics.get("MaxInvocations"),
        model_latency_ms=None if latency is None else model_latency_ms(latency),
    )


def current_config_from(endpoint_config: Mapping[str, Any], variant_name: str) -> CurrentConfig:
    """What ``variant_name`` runs in a ``DescribeEndpointConfig`` response.

    Raises :class:`VariantNotFoundError` when the config has no such variant.
    """
    for variant in endpoint_config.get("ProductionVariants") or []:
        if variant.get("VariantName") == variant_name:
            return CurrentConfig(
                endpoint_config_name=endpoint_config.get("EndpointConfigName", ""),
                instance_type=variant.get("InstanceType"),
                instance_count=variant.get("InitialInstanceCount"),
            )
    names = [v.get("VariantName") for v in endpoint_config.get("ProductionVariants") or []]
    raise VariantNotFoundError(
        f"endpoint config {endpoint_config.get('EndpointConfigName')} has no variant "
        f"{variant_name!r} (it has {', '.join(map(str, names)) or 'none'})"
    )


def instances_needed(
    peak_requests_per_minute: Fraction,
    max_invocations_per_instance: int | Fraction,
    target_utilization: Fraction,
    min_instances: int,
) -> int:
    """``max(min_instances, ceil(R / (MaxInvocations * u)))``, exactly."""
    per_instance = max_invocations_per_instance * target_utilization
    return max(min_instances, math.ceil(peak_requests_per_minute / per_instance))


def evaluate(candidate: Candidate, decision_input: DecisionInput) -> Evaluation:
    """Judge one candidate: instances needed at peak, cost at peak, and eligibility."""
    guardrails = decision_input.guardrails
    slo = decision_input.slo
    if candidate.serverless or candidate.instance_type is None:
        return _ineligible(
            candidate, "serverless configuration: only real-time instances are sized"
        )
    if candidate.max_invocations is None or candidate.max_invocations <= 0:
        return _ineligible(candidate, "IR measured no sustainable throughput (MaxInvocations)")
    if candidate.meets_slo_measured is False:
        return _ineligible(
            candidate,
            f"its benchmark's measured {slo.percentile} latency never stayed within the SLO of "
            f"{_fmt(slo.max_latency_ms)} ms for a sustained run of minutes",
        )
    capacity = candidate.planning_capacity()
    assert capacity is not None
    if capacity <= 0:
        return _ineligible(candidate, "its benchmark sustained no throughput within the SLO")
    if candidate.cost_per_hour is None:
        return _ineligible(candidate, "IR reported no CostPerHour")
    if not _is_price(candidate.cost_per_hour):
        # A negative price would win every comparison, a NaN break them (and is no JSON
        # number for the event).
        return _ineligible(
            candidate, f"IR reported a CostPerHour of {candidate.cost_per_hour}, not a price"
        )
    count = instances_needed(
        decision_input.peak_requests_per_minute,
        capacity,
        decision_input.target_utilization,
        guardrails.min_instances,
    )
    cost = candidate.cost_per_hour * count
    problems = []
    if candidate.model_latency_ms is None:
        problems.append("IR reported no ModelLatency")
    elif not candidate.model_latency_ms.is_finite() or candidate.model_latency_ms < 0:
        problems.append(
            f"IR reported a ModelLatency of {candidate.model_latency_ms} ms, not a latency"
        )
    elif candidate.meets_slo_measured is None and candidate.model_latency_ms > slo.max_latency_ms:
        # With a measured curve, IR's scalar (at saturation) is not the latency at the planned
        # load: the capacity at SLO already holds the percentile within the objective.
        problems.append(
            f"latency {_fmt(candidate.model_latency_ms)} ms exceeds the {slo.percentile} SLO "
            f"of {_fmt(slo.max_latency_ms)} ms"
        )
    if not guardrails.allows(candidate.instance_type):
        problems.append(
            f"{candidate.instance_type} is not in the allowed instance types "
            f"({', '.join(guardrails.allowed_instance_types)})"
        )
    if count > guardrails.max_instances:
        problems.append(
            f"needs {count} instances at peak, more than the maximum of {guardrails.max_instances}"
        )
    if guardrails.max_cost_per_hour is not None and cost > guardrails.max_cost_per_hour:
        costs, maximum = _money(cost, guardrails.max_cost_per_hour)
        problems.append(f"costs {costs} per hour at peak, more than the maximum of {maximum}")
    return Evaluation(
        candidate=candidate,
        instance_count=count,
        cost_at_peak_per_hour=cost,
        eligible=not problems,
        reason="; ".join(problems) or "eligible",
    )


def _is_price(value: Decimal) -> bool:
    return value.is_finite() and value >= 0


def _ineligible(candidate: Candidate, reason: str) -> Evaluation:
    return Evaluation(
        candidate=candidate,
        instance_count=None,
        cost_at_peak_per_hour=None,
        eligible=False,
        reason=reason,
    )


def _rank(evaluation: Evaluation) -> tuple[Decimal, Decimal, int, str]:
    """Cheapest at peak first; ties: lower latency, fewer instances, then type name."""
    assert evaluation.cost_at_peak_per_hour is not None
    assert evaluation.candidate.model_latency_ms is not None
    assert evaluation.instance_count is not None
    assert evaluation.candidate.instance_type is not None
    return (
        evaluation.cost_at_peak_per_hour,
        evaluation.candidate.model_latency_ms,
        evaluation.instance_count,
        evaluation.candidate.instance_type,
    )


def decide(
    candidates: Sequence[Candidate],
    decision_input: DecisionInput,
    current: CurrentConfig | None = None,
) -> Decision:
    """Choose the cheapest candidate at peak that meets the SLO inside the guardrails.

    ``action`` is ``reject`` when no candidate is eligible, ``no-change`` when ``current`` already
    runs the chosen type and count, or when ``current`` meets the SLO too and the saving is below
    the guardrails' minimum (:func:`saving_below_minimum`), ``apply`` otherwise.
    """
    evaluations = [evaluate(candidate, decision_input) for candidate in candidates]
    eligible = sorted((e for e in evaluations if e.eligible), key=_rank)
    if not eligible:
        return Decision(
            action="reject",
            reason="no candidate meets the SLO inside the guardrails: "
            + " | ".join(_describe(e) for e in evaluations),
            chosen=None,
            autoscaling=None,
            evaluations=tuple(evaluations),
        )
    chosen = eligible[0]
    explained = tuple(_explain(e, chosen) for e in evaluations)
    chosen = next(e for e in explained if e.candidate is chosen.candidate)
    capacity = chosen.candidate.planning_capacity()
    assert capacity is not None
    assert chosen.cost_at_peak_per_hour is not None
    autoscaling = Autoscaling(
        metric=SCALING_METRIC,
        target_value=float(capacity * decision_input.target_utilization),
        min_capacity=decision_input.guardrails.min_instances,
        max_capacity=decision_input.guardrails.max_instances,
    )
    summary = (
        f"{chosen.candidate.instance_type} x{chosen.instance_count} is the cheapest configuration "
        f"that meets the {decision_input.slo.percentile} SLO of "
        f"{_fmt(decision_input.slo.max_latency_ms)} ms at "
        f"{_fmt(decision_input.peak_requests_per_minute)} requests per minute "
        f"({_money(chosen.cost_at_peak_per_hour)[0]} per hour at peak)"
    )
    if (
        current is not None
        and current.instance_type == chosen.candidate.instance_type
        and current.instance_count == chosen.instance_count
    ):
        return Decision(
            action="no-change",
            reason=f"the endpoint already runs it: {summary}",
            chosen=chosen,
            autoscaling=autoscaling,
            evaluations=explained,
        )
    too_small = saving_below_minimum(chosen, evaluations, current, decision_input.guardrails)
    if too_small is not None:
        return Decision(
            action="no-change",
            reason=f"{too_small}; {summary}",
            chosen=chosen,
            autoscaling=autoscaling,
            evaluations=explained,
        )
    return Decision(
        action="apply",
        reason=summary + _cost_change(chosen, evaluations, current),
        chosen=chosen,
        autoscaling=autoscaling,
        evaluations=explained,
    )


def saving_below_minimum(
    chosen: Evaluation,
    evaluations: Sequence[Evaluation],
    current: CurrentConfig | None,
    guardrails: Guardrails,
) -> str | None:
    """Why changing to ``chosen`` is not worth it, or None when it is (hysteresis).

    Only a current configuration that itself meets the SLO at peak inside the guardrails (IR
    measured its type, it is eligible, and it runs at least the instances it needs) is kept for
    a small saving: an endpoint that misses its SLO is always fixed.
    """
    if current is None or current.instance_type is None or current.instance_count is None:
        return None
    measured = next(
        (e for e in evaluations if e.candidate.instance_type == current.instance_type), None
    )
    if (
        measured is None
        or not measured.eligible
        or measured.instance_count is None
        or current.instance_count < measured.instance_count
        or current.instance_count > guardrails.max_instances
    ):
        return None
    assert measured.candidate.cost_per_hour is not None
    assert chosen.cost_at_peak_per_hour is not None
    return saving_too_small(
        f"{current.instance_type} x{current.instance_count}",
        measured.candidate.cost_per_hour * current.instance_count,
        chosen.cost_at_peak_per_hour,
        guardrails,
    )


def saving_too_small(
    current_label: str, current_cost: Decimal, new_cost: Decimal, guardrails: Guardrails
) -> str | None:
    """The hysteresis arithmetic: why a change saves too little to be worth it, or None.

    Too little: a change from ``current_cost`` to ``new_cost`` per hour saves below either
    guardrail minimum.

    Shared by :func:`saving_below_minimum` and the inference-component decision
    (``component_decision.py``), which decide *whether* the current configuration meets the SLO
    each in their own terms; ``current_label`` names it in the reason.
    """
    saving = current_cost - new_cost
    percent = Decimal(0) if current_cost == 0 else saving * 100 / current_cost
    per_month = saving * HOURS_PER_MONTH
    if percent >= guardrails.min_saving_percent and per_month >= guardrails.min_saving_per_month:
        return None
    return (
        f"the current {current_label} meets the SLO and the "
        f"change would save {_fmt(round(per_month, 2))} per month "
        f"({_fmt(round(percent, 1))}%), below the minimum of "
        f"{_fmt(guardrails.min_saving_per_month)} per month and "
        f"{_fmt(guardrails.min_saving_percent)}%"
    )


def money(*amounts: Decimal) -> list[str]:
    """Dollar amounts for people (:func:`_money`), for the other decision modules."""
    return _money(*amounts)


def fmt(value: Decimal | Fraction | int) -> str:
    """A number for people (:func:`_fmt`), for the other decision modules."""
    return _fmt(value)


def _cost_change(
    chosen: Evaluation, evaluations: Sequence[Evaluation], current: CurrentConfig | None
) -> str:
    """How an ``apply`` changes the cost at peak against what the endpoint runs now.

    A clause for the recommendation's reason ("; it raises the cost from ... to ..."), or ""
    when the current configuration is not known. A change that raises the cost says why: the
    current configuration cannot serve the peak inside the SLO and guardrails (the only way
    the cheapest eligible choice can cost more, see :func:`saving_below_minimum`).
    """
    if current is None or current.instance_type is None or current.instance_count is None:
        return ""
    now = f"the current {current.instance_type} x{current.instance_count}"
    measured = next(
        (e for e in evaluations if e.candidate.instance_type == current.instance_type), None
    )
    price = None if measured is None else measured.candidate.cost_per_hour
    if measured is None or price is None or not _is_price(price):
        return f"; IR gave no price for {now}, so the change in cost is unknown"
    assert chosen.cost_at_peak_per_hour is not None
    before = price * current.instance_count
    after = chosen.cost_at_peak_per_hour
    per_month = _fmt(round(abs(after - before) * HOURS_PER_MONTH, 2))
    if after > before:
        shown_before, shown_after = _money(before, after)
        # Only a current configuration that cannot serve the peak inside the SLO and guardrails
        # costs less than the cheapest eligible choice: it is ineligible, or runs too few.
        why = (
            f"not eligible ({measured.reason})"
            if not measured.eligible
            else f"too few for the peak (it needs {measured.instance_count})"
        )
        return (
            f"; it raises the cost from {shown_before} to {shown_after} per hour ({per_month} "
            f"more per month): {now} is {why}"
        )
    if after < before:
        saved = _money(before - after)[0]
        return (
            f"; it saves {saved} per hour ({per_month} per month) against {now} "
            f"({_money(before)[0]} per hour)"
        )
    return f"; it costs the same as {now}"


def _explain(evaluation: Evaluation, chosen: Evaluation) -> Evaluation:
    """Say why an eligible candidate other than the chosen one lost."""
    if not evaluation.eligible:
        return evaluation
    if evaluation.candidate is chosen.candidate:
        return _with_reason(evaluation, "chosen")
    assert evaluation.cost_at_peak_per_hour is not None
    assert chosen.cost_at_peak_per_hour is not None
    if evaluation.cost_at_peak_per_hour > chosen.cost_at_peak_per_hour:
        costs, against = _money(evaluation.cost_at_peak_per_hour, chosen.cost_at_peak_per_hour)
        reason = (
            f"eligible, but costs {costs} per hour at peak against {against} for the chosen one"
        )
    else:
        reason = "eligible, same cost at peak, ranked lower on latency, instance count, then name"
    return _with_reason(evaluation, reason)


def _with_reason(evaluation: Evaluation, reason: str) -> Evaluation:
    return Evaluation(
        candidate=evaluation.candidate,
        instance_count=evaluation.instance_count,
        cost_at_peak_per_hour=evaluation.cost_at_peak_per_hour,
        eligible=evaluation.eligible,
        reason=reason,
    )


def _describe(evaluation: Evaluation) -> str:
    name = evaluation.candidate.instance_type or "serverless"
    return f"{name}: {evaluation.reason}"


def _money(*amounts: Decimal) -> list[str]:
    """Dollar amounts for people, at most 4 decimals.

    IR's prices are binary floats (0.20399999618530273 for 0.204); the event's numbers keep
    them exactly, its sentences round them, unless that would show two different amounts as the
    same.
    """
    rounded = [round(amount, 4) for amount in amounts]
    distinct = len(set(rounded)) == len(set(amounts))
    return [_fmt(r if distinct else a) for r, a in zip(rounded, amounts, strict=True)]


def _fmt(value: Decimal | Fraction | int) -> str:
    """A number for people: no exponent, no trailing zeros."""
    if isinstance(value, Fraction):
        number = Decimal(value.numerator) / Decimal(value.denominator)
    else:
        number = Decimal(value)
    return format(number.normalize(), "f")
