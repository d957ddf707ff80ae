"""The ``detail`` of the "Rightsizing Recommendation" event: schema version 1.

The event is the seam of the system (DESIGN.md): the Recommend workflow produces it, the apply
rule, notifications and people consume it, and the ``plan`` command prints it. Every key below is
documented in the README ("The recommendation event"); adding a key is backwards compatible,
renaming or removing one bumps ``SCHEMA_VERSION``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from .decision import (
    Candidate,
    CurrentConfig,
    Decision,
    DecisionInput,
    Evaluation,
    current_config_from,
    decide,
)
from .evidence import Evidence, Measurement, UnitCheck, ir_summary, rate

SCHEMA_VERSION = "1"
#: The action of a recommendation for an approved version the endpoint does not serve yet: it
#: is kept (``pending.py``) and applied once the endpoint serves that version, never before.
PENDING = "pending"


#: Every parameter a pending recommendation is kept in is under this path (``pending.py``);
#: the IAM policy is scoped to it.
PENDING_PARAMETER_PREFIX = "/rightsizing/pending/"


def pending_parameter_name(endpoint_name: str, variant_name: str, version_arn: str) -> str:
    """``/rightsizing/pending/<endpoint>/<variant>/<group>/<version>``: where a pipeline reads it.

    From ``arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>``. Endpoint,
    variant and group names are letters, digits and hyphens (SageMaker's patterns), all allowed
    in parameter names; the name has 7 levels of the 15 allowed and at most 300 characters of
    the 1,011 (Systems Manager quotas).
    """
    group, version = version_arn.split(":", 5)[5].split("/")[1:3]
    return f"{PENDING_PARAMETER_PREFIX}{endpoint_name}/{variant_name}/{group}/{version}"


@dataclass(frozen=True, kw_only=True)
class Measured:
    """What the decision's measurements were taken of, for the record."""

    #: ``measurements.fingerprint`` of the model and job definition (None: not known, ``plan``).
    model_fingerprint: str | None = None
    #: Whether the job was a stored one, reused instead of a new load test.
    job_reused: bool = False
    #: The approved version not served yet (Prepare's ``pending``), or None.
    pending: Mapping[str, Any] | None = None


def recommend(
    *,
    candidates: Sequence[Candidate],
    job_name: str,
    decision_input: DecisionInput,
    endpoint_name: str | None,
    variant_name: str,
    endpoint_config: Mapping[str, Any] | None = None,
    trigger: Mapping[str, Any] | None = None,
    measured: Measured | None = None,
    peak_source: Mapping[str, Any] | None = None,
    evidence: Evidence | None = None,
) -> dict[str, Any]:
    """Decide on a job's candidates (``candidates_from_job``); return the event detail.

    ``endpoint_config`` is the endpoint's current ``DescribeEndpointConfig`` response, when known:
    with it, a recommendation the endpoint already runs is ``no-change``. Shared by the Select
    handler and the ``plan`` command, so both decide alike. ``trigger`` is what started the run
    (``triggers.Trigger.render()``), recorded as is, and so is ``peak_source``: where the
    peak came from (``traffic.resolve_peak``; None: the configured number). ``measured``: what
    the job measured. ``evidence``: the benchmarks' measured curves (``evidence.py``); None
    decides from IR's scalars.
    """
    current = (
        None if endpoint_config is None else current_config_from(endpoint_config, variant_name)
    )
    evidence = evidence or ir_summary("no benchmark metrics were read")
    decision = decide(evidence.apply(candidates), decision_input, current)
    return recommendation_detail(
        decision=decision,
        decision_input=decision_input,
        endpoint_name=endpoint_name,
        variant_name=variant_name,
        job_name=job_name,
        current=current,
        trigger=trigger,
        measured=measured or Measured(),
        peak_source=peak_source,
        evidence=evidence,
    )


def recommendation_detail(
    *,
    decision: Decision,
    decision_input: DecisionInput,
    endpoint_name: str | None,
    variant_name: str,
    job_name: str,
    current: CurrentConfig | None,
    trigger: Mapping[str, Any] | None = None,
    measured: Measured | None = None,
    peak_source: Mapping[str, Any] | None = None,
    evidence: Evidence | None = None,
) -> dict[str, Any]:
    """Render a decision as the event's JSON-serializable ``detail``.

    With ``measured.pending``, the action is ``pending`` (the decision's own action is kept in
    ``pending.decision``): nothing is applied before the endpoint serves the version.
    """
    measured = measured or Measured()
    evidence = evidence or ir_summary("no benchmark metrics were read")
    chosen = decision.chosen
    action: str = decision.action
    reason = decision.reason
    pending = None
    if measured.pending is not None:
        version = measured.pending["model_package_version_arn"]
        pending = {
            "model_package_version_arn": version,
            "expires_at": measured.pending["expires_at"],
            "decision": decision.action,
            "parameter_name": pending_parameter_name(
                str(endpoint_name), variant_name, str(version)
            ),
        }
        action = PENDING
        reason = f"pending until {endpoint_name}/{variant_name} serves {version}: {reason}"
    return {
        "schema_version": SCHEMA_VERSION,
        "endpoint_name": endpoint_name,
        "variant_name": variant_name,
        "job_name": job_name,
        "trigger": None if trigger is None else dict(trigger),
        "model_fingerprint": measured.model_fingerprint,
        "job_reused": measured.job_reused,
        "pending": pending,
        "action": action,
        "reason": reason,
        "evidence": evidence.kind,
        "evidence_reason": evidence.reason,
        "instance_type": chosen.candidate.instance_type if chosen else None,
        "instance_count": chosen.instance_count if chosen else None,
        "autoscaling": None
        if decision.autoscaling is None
        else {
            "metric": decision.autoscaling.metric,
            "target_value": decision.autoscaling.target_value,
            "min_capacity": decision.autoscaling.min_capacity,
            "max_capacity": decision.autoscaling.max_capacity,
        },
        # IR's own autoscaling target next to the decision's (the Select function fills it in
        # for measured-curve decisions: evidence.scaling_cross_check); null otherwise.
        "autoscaling_cross_check": None,
        "estimated_cost_per_hour": _number(chosen.cost_at_peak_per_hour) if chosen else None,
        "current": _current(current, decision.evaluations),
        "inputs": _inputs(decision_input, peak_source),
        "candidates": [
            _candidate(
                evaluation,
                evaluation is chosen,
                evidence.measurements.get(evaluation.candidate.recommendation_id or ""),
            )
            for evaluation in decision.evaluations
        ],
    }


def _current(
    current: CurrentConfig | None, evaluations: tuple[Evaluation, ...]
) -> Mapping[str, Any] | None:
    if current is None:
        return None
    # The current cost is known when IR measured the current instance type.
    cost_per_hour = next(
        (
            e.candidate.cost_per_hour
            for e in evaluations
            if e.candidate.instance_type == current.instance_type
            and e.candidate.cost_per_hour is not None
        ),
        None,
    )
    estimated = (
        None
        if cost_per_hour is None or current.instance_count is None
        else _number(cost_per_hour * current.instance_count)
    )
    return {
        "endpoint_config_name": current.endpoint_config_name,
        "instance_type": current.instance_type,
        "instance_count": current.instance_count,
        "estimated_cost_per_hour": estimated,
    }


def _inputs(
    decision_input: DecisionInput, peak_source: Mapping[str, Any] | None
) -> Mapping[str, Any]:
    guardrails = decision_input.guardrails
    return {
        "peak_requests_per_minute": _number(decision_input.peak_requests_per_minute),
        # Without a measured peak the number is the configured one (traffic.CONFIGURED).
        "peak_source": {"kind": "configured"} if peak_source is None else dict(peak_source),
        "target_utilization": _number(decision_input.target_utilization),
        "slo": {
            "percentile": decision_input.slo.percentile,
            "max_latency_ms": _number(decision_input.slo.max_latency_ms),
        },
        "guardrails": {
            "min_instances": guardrails.min_instances,
            "max_instances": guardrails.max_instances,
            "allowed_instance_types": list(guardrails.allowed_instance_types),
            "max_cost_per_hour": _number(guardrails.max_cost_per_hour),
            "min_saving_percent": _number(guardrails.min_saving_percent),
            "min_saving_per_month": _number(guardrails.min_saving_per_month),
        },
    }


def _candidate(
    evaluation: Evaluation, chosen: bool, measurement: Measurement | None
) -> Mapping[str, Any]:
    candidate = evaluation.candidate
    return {
        "recommendation_id": candidate.recommendation_id,
        "instance_type": candidate.instance_type,
        "serverless": candidate.serverless,
        "cost_per_hour": _number(candidate.cost_per_hour),
        "cost_per_inference": _number(candidate.cost_per_inference),
        "max_invocations_per_instance_per_minute": candidate.max_invocations,
        "model_latency_ms": _number(candidate.model_latency_ms),
        "instance_count": evaluation.instance_count,
        "cost_at_peak_per_hour": _number(evaluation.cost_at_peak_per_hour),
        "eligible": evaluation.eligible,
        "chosen": chosen,
        "reason": evaluation.reason,
        # The measured curve's verdict (null with ``evidence`` ``ir-summary``).
        "capacity_at_slo": None if measurement is None else rate(measurement.capacity_at_slo),
        "latency_at_peak_ms": None
        if measurement is None
        else _number(measurement.latency_at_peak_ms),
        "unit_check": None if measurement is None else _unit_check(measurement.unit_check),
    }


def _unit_check(check: UnitCheck | None) -> Mapping[str, Any] | None:
    if check is None:
        return None
    return {
        "unit": check.unit,
        "ir_model_latency": check.ir_model_latency,
        "plateau_latency_ms": _number(check.plateau_latency_ms),
        "reason": check.reason,
    }


def _number(value: Decimal | Fraction | None) -> float | int | None:
    """JSON numbers: integers stay integers, the rest become the nearest float.

    A NaN or infinity (IR reports NaN for metrics it did not measure) is null: JSON has no such
    numbers, and EventBridge refuses a detail that holds one.
    """
    if value is None or (isinstance(value, Decimal) and not value.is_finite()):
        return None
    if value == int(value):
        return int(value)
    return float(value)
