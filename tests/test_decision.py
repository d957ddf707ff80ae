"""The decision core: capacity math, eligibility, choice, and its properties."""

from __future__ import annotations

import math
import os
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rightsizing_runtime.decision import (
    SCALING_METRIC,
    Candidate,
    CurrentConfig,
    DecisionInput,
    Guardrails,
    InvalidJobResultError,
    Slo,
    VariantNotFoundError,
    candidates_from_job,
    current_config_from,
    decide,
    instances_needed,
    is_allowed_type,
    model_latency_ms,
)

from tests.conftest import load_event


def candidate(
    instance_type: str | None = "ml.c5.xlarge",
    *,
    cost: str = "0.204",
    max_invocations: int | None = 648,
    latency_ms: str | None = "100",
    serverless: bool = False,
) -> Candidate:
    return Candidate(
        recommendation_id=f"rec-{instance_type}",
        instance_type=instance_type,
        serverless=serverless,
        cost_per_hour=Decimal(cost),
        cost_per_inference=None,
        max_invocations=max_invocations,
        model_latency_ms=None if latency_ms is None else Decimal(latency_ms),
    )


def inputs(
    peak: int | str = 1000,
    utilization: str = "0.5",
    slo_ms: str = "200",
    **guardrails: object,
) -> DecisionInput:
    return DecisionInput(
        peak_requests_per_minute=Fraction(peak),
        target_utilization=Fraction(utilization),
        slo=Slo(percentile="P99", max_latency_ms=Decimal(slo_ms)),
        guardrails=Guardrails(**guardrails),  # type: ignore[arg-type]
    )


class TestModelLatencyUnit:
    def test_ir_model_latency_is_microseconds(self) -> None:
        # The genuine docs sample: ml.c5.xlarge saturating at 648 requests per minute with
        # ModelLatency 263596. In microseconds that is 263.596 ms, a plausible latency at
        # saturation; in milliseconds it would be over 4 minutes per request.
        assert model_latency_ms(263596) == Decimal("263.596")

    def test_docs_sample_reads_as_a_candidate(self) -> None:
        [sample] = candidates_from_job(load_event("ir_job_completed_docs_sample.json"))
        assert sample.instance_type == "ml.c5.xlarge"
        assert sample.max_invocations == 648
        assert sample.model_latency_ms == Decimal("263.596")
        # CostPerInference = CostPerHour / (MaxInvocations * 60) in the genuine sample.
        assert sample.cost_per_hour is not None and sample.cost_per_inference is not None
        assert math.isclose(
            float(sample.cost_per_inference),
            float(sample.cost_per_hour) / (648 * 60),
            rel_tol=1e-6,
        )

    def test_docs_sample_meets_a_300_ms_slo_but_not_250(self) -> None:
        candidates = candidates_from_job(load_event("ir_job_completed_docs_sample.json"))
        assert decide(candidates, inputs(peak=648, slo_ms="300")).action == "apply"
        rejected = decide(candidates, inputs(peak=648, slo_ms="250"))
        assert rejected.action == "reject"
        assert "latency 263.596 ms exceeds the P99 SLO of 250 ms" in rejected.reason


class TestCapacityMath:
    def test_exactly_ten_instances_is_ten_not_eleven(self) -> None:
        # 0.1 and 0.7 are inexact in binary floats: 7 / (100 * 0.7) * 10 would drift.
        assert instances_needed(Fraction(700), 100, Fraction("0.7"), 1) == 10
        assert instances_needed(Fraction("3240"), 648, Fraction("0.5"), 1) == 10
        assert instances_needed(Fraction("3240.01"), 648, Fraction("0.5"), 1) == 11

    def test_minimum_instances_raise_the_count(self) -> None:
        assert instances_needed(Fraction(1), 648, Fraction("0.5"), 3) == 3

    def test_cost_at_peak_is_count_times_cost_per_hour(self) -> None:
        decision = decide([candidate(cost="0.204")], inputs(peak=3240))
        assert decision.chosen is not None
        assert decision.chosen.instance_count == 10
        assert decision.chosen.cost_at_peak_per_hour == Decimal("2.040")

    def test_target_value_is_max_invocations_times_utilization(self) -> None:
        decision = decide([candidate(max_invocations=648)], inputs(utilization="0.5"))
        assert decision.autoscaling is not None
        assert decision.autoscaling.metric == SCALING_METRIC
        assert decision.autoscaling.target_value == 324.0

    def test_autoscaling_bounds_are_the_guardrails(self) -> None:
        decision = decide([candidate()], inputs(min_instances=2, max_instances=7))
        assert decision.autoscaling is not None
        assert (decision.autoscaling.min_capacity, decision.autoscaling.max_capacity) == (2, 7)


class TestEligibility:
    def test_serverless_is_never_chosen(self) -> None:
        decision = decide([candidate(None, serverless=True)], inputs())
        assert decision.action == "reject"
        assert decision.chosen is None
        assert "serverless" in decision.evaluations[0].reason

    def test_type_outside_allowed_families(self) -> None:
        decision = decide([candidate("ml.g5.xlarge")], inputs(allowed_instance_types=("ml.c5",)))
        assert decision.action == "reject"
        assert "not in the allowed instance types" in decision.evaluations[0].reason

    def test_more_than_max_instances(self) -> None:
        decision = decide([candidate(max_invocations=100)], inputs(peak=1000, max_instances=4))
        assert decision.action == "reject"
        assert "needs 20 instances at peak, more than the maximum of 4" in decision.reason

    def test_over_max_cost(self) -> None:
        decision = decide([candidate(cost="1.5")], inputs(max_cost_per_hour=Decimal("4")))
        # 1000 / (648 * 0.5) -> 4 instances -> $6/h
        assert decision.action == "reject"
        assert "costs 6 per hour at peak, more than the maximum of 4" in decision.reason

    def test_no_throughput_measured(self) -> None:
        decision = decide([candidate(max_invocations=0)], inputs())
        assert "no sustainable throughput" in decision.evaluations[0].reason

    def test_every_problem_is_listed(self) -> None:
        decision = decide(
            [candidate("ml.g5.xlarge", latency_ms="900", max_invocations=10)],
            inputs(allowed_instance_types=("ml.c5",), max_instances=2),
        )
        reason = decision.evaluations[0].reason
        assert "latency" in reason and "allowed" in reason and "maximum of 2" in reason

    @pytest.mark.parametrize(
        ("instance_type", "allowed", "expected"),
        [
            ("ml.c5.xlarge", (), True),
            ("ml.c5.xlarge", ("ml.c5",), True),
            ("ml.c5.xlarge", ("ml.c5.xlarge",), True),
            ("ml.c5n.xlarge", ("ml.c5",), False),  # a family prefix is not a string prefix
            ("ml.c5.2xlarge", ("ml.c5.xlarge",), False),
        ],
    )
    def test_allowed_types_and_families(
        self, instance_type: str, allowed: tuple[str, ...], expected: bool
    ) -> None:
        assert is_allowed_type(instance_type, allowed) is expected


class TestChoice:
    def test_cheapest_at_peak_beats_cheapest_per_inference(self) -> None:
        # At low traffic the minimum count dominates: the big instance has the lower cost per
        # inference but two small ones are cheaper at this peak.
        small = candidate("ml.c5.large", cost="0.1", max_invocations=300)
        big = candidate("ml.c5.4xlarge", cost="0.8", max_invocations=4000)
        decision = decide([big, small], inputs(peak=250, min_instances=1))
        assert decision.chosen is not None
        assert decision.chosen.candidate is small
        assert decision.chosen.instance_count == 2

    def test_ties_break_on_latency_then_count_then_name(self) -> None:
        a = candidate("ml.m5.xlarge", cost="0.2", latency_ms="50")
        b = candidate("ml.c5.xlarge", cost="0.2", latency_ms="40")
        assert decide([a, b], inputs()).chosen.candidate is b  # type: ignore[union-attr]
        c = candidate("ml.m5.xlarge", cost="0.2", latency_ms="40")
        assert decide([c, b], inputs()).chosen.candidate is b  # type: ignore[union-attr]

    def test_losers_say_why(self) -> None:
        cheap = candidate("ml.c5.xlarge", cost="0.2")
        dear = candidate("ml.m5.xlarge", cost="0.3")
        decision = decide([dear, cheap], inputs())
        reasons = {e.candidate.instance_type: e.reason for e in decision.evaluations}
        assert reasons["ml.c5.xlarge"] == "chosen"
        assert reasons["ml.m5.xlarge"].startswith("eligible, but costs")

    def test_no_change_when_the_endpoint_already_runs_it(self) -> None:
        current = CurrentConfig(
            endpoint_config_name="cfg", instance_type="ml.c5.xlarge", instance_count=4
        )
        decision = decide([candidate()], inputs(peak=1000), current)
        assert decision.action == "no-change"
        other = CurrentConfig(
            endpoint_config_name="cfg", instance_type="ml.c5.xlarge", instance_count=5
        )
        assert decide([candidate()], inputs(peak=1000), other).action == "apply"


class TestJobResults:
    def test_not_completed_job_names_status_and_reason(self) -> None:
        with pytest.raises(InvalidJobResultError, match="FAILED, not COMPLETED: quota exceeded"):
            candidates_from_job(
                {"JobName": "j", "Status": "FAILED", "FailureReason": "quota exceeded"}
            )

    def test_completed_without_recommendations(self) -> None:
        with pytest.raises(InvalidJobResultError, match="no recommendations"):
            candidates_from_job({"JobName": "j", "Status": "COMPLETED"})

    def test_current_config_of_a_missing_variant(self) -> None:
        config = {"EndpointConfigName": "cfg", "ProductionVariants": [{"VariantName": "Blue"}]}
        with pytest.raises(VariantNotFoundError, match="no variant 'AllTraffic' \\(it has Blue\\)"):
            current_config_from(config, "AllTraffic")

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("peak_requests_per_minute", Fraction(-1), "peak_requests_per_minute"),
            ("target_utilization", Fraction(0), "target_utilization"),
            ("target_utilization", Fraction(3, 2), "target_utilization"),
        ],
    )
    def test_decision_input_rejects_out_of_range(
        self, field: str, value: Fraction, message: str
    ) -> None:
        arguments = {
            "peak_requests_per_minute": Fraction(1),
            "target_utilization": Fraction(1, 2),
            "slo": Slo(percentile="P99", max_latency_ms=Decimal(1)),
            "guardrails": Guardrails(),
            field: value,
        }
        with pytest.raises(ValueError, match=message):
            DecisionInput(**arguments)  # type: ignore[arg-type]


# -- Properties -------------------------------------------------------------------------------

# `make mutation` runs these once per mutant of the decision core and asks for fewer examples
# (tools/mutation.py); the suite itself always tries 300.
EXAMPLES = int(os.environ.get("RIGHTSIZING_PROPERTY_EXAMPLES", "300"))

TYPES = ["ml.c5.large", "ml.c5.xlarge", "ml.m5.xlarge", "ml.g5.xlarge", "ml.inf2.xlarge"]

candidates_strategy = st.lists(
    st.builds(
        lambda instance_type, cents, invocations, latency_us, serverless: Candidate(
            recommendation_id=None,
            instance_type=None if serverless else instance_type,
            serverless=serverless,
            cost_per_hour=Decimal(cents) / 100,
            cost_per_inference=None,
            max_invocations=invocations,
            model_latency_ms=model_latency_ms(latency_us),
        ),
        st.sampled_from(TYPES),
        st.integers(min_value=1, max_value=5000),
        st.integers(min_value=0, max_value=20000),
        st.integers(min_value=1000, max_value=2_000_000),
        st.booleans(),
    ),
    min_size=1,
    max_size=10,
)


@st.composite
def decision_inputs(draw: st.DrawFn) -> DecisionInput:
    low = draw(st.integers(min_value=1, max_value=5))
    high = draw(st.integers(min_value=low, max_value=40))
    cap = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=20000)))
    return DecisionInput(
        peak_requests_per_minute=Fraction(draw(st.integers(min_value=1, max_value=200_000)), 1),
        target_utilization=Fraction(draw(st.integers(min_value=1, max_value=100)), 100),
        slo=Slo(percentile="P99", max_latency_ms=Decimal(draw(st.integers(1, 2000)))),
        guardrails=Guardrails(
            min_instances=low,
            max_instances=high,
            allowed_instance_types=tuple(
                draw(st.lists(st.sampled_from(["ml.c5", "ml.m5.xlarge", "ml.g5"]), max_size=2))
            ),
            max_cost_per_hour=None if cap is None else Decimal(cap) / 100,
        ),
    )


@settings(max_examples=EXAMPLES, deadline=None)
@given(candidates_strategy, decision_inputs())
def test_property_choice_never_violates_slo_or_guardrails(
    candidates: list[Candidate], decision_input: DecisionInput
) -> None:
    decision = decide(candidates, decision_input)
    if decision.chosen is None:
        assert decision.action == "reject"
        return
    chosen = decision.chosen
    guardrails = decision_input.guardrails
    assert chosen.candidate.instance_type is not None and not chosen.candidate.serverless
    assert chosen.candidate.model_latency_ms is not None
    assert chosen.candidate.model_latency_ms <= decision_input.slo.max_latency_ms
    assert is_allowed_type(chosen.candidate.instance_type, guardrails.allowed_instance_types)
    assert chosen.instance_count is not None
    assert guardrails.min_instances <= chosen.instance_count <= guardrails.max_instances
    if guardrails.max_cost_per_hour is not None:
        assert chosen.cost_at_peak_per_hour is not None
        assert chosen.cost_at_peak_per_hour <= guardrails.max_cost_per_hour


@settings(max_examples=EXAMPLES, deadline=None)
@given(candidates_strategy, decision_inputs())
def test_property_chosen_cost_is_minimal_among_eligible(
    candidates: list[Candidate], decision_input: DecisionInput
) -> None:
    decision = decide(candidates, decision_input)
    eligible = [e for e in decision.evaluations if e.eligible]
    assert (decision.chosen is None) == (not eligible)
    if decision.chosen is not None:
        assert decision.chosen.cost_at_peak_per_hour == min(
            e.cost_at_peak_per_hour for e in eligible if e.cost_at_peak_per_hour is not None
        )


@settings(max_examples=EXAMPLES, deadline=None)
@given(candidates_strategy, decision_inputs())
def test_property_count_covers_peak_at_target_utilization(
    candidates: list[Candidate], decision_input: DecisionInput
) -> None:
    decision = decide(candidates, decision_input)
    if decision.chosen is None:
        return
    count = decision.chosen.instance_count
    capacity = decision.chosen.candidate.max_invocations
    assert count is not None and capacity is not None
    per_instance = capacity * decision_input.target_utilization
    # Enough instances for the peak at the target utilization...
    assert count * per_instance >= decision_input.peak_requests_per_minute
    # ...and not one more than needed, unless the guardrail minimum asks for it.
    if count > decision_input.guardrails.min_instances:
        assert (count - 1) * per_instance < decision_input.peak_requests_per_minute
