"""The decision core at its boundaries, and the texts and numbers people read (issue 19).

Each threshold is tested on both sides: exactly at it (the comparison's ``=``) and just past it.
The reasons are compared whole: they are what a reviewer reads in the event and the ledger.
"""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from rightsizing_runtime.decision import (
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
    evaluate,
    exact,
    instances_needed,
    model_latency_ms,
)
from rightsizing_runtime.recommendation import recommend

from tests.test_decision import candidate, inputs

# ml.c5.xlarge at 0.204 per hour sustains 648 rpm: 1000 rpm at u=0.5 needs ceil(1000/324) = 4.
C5 = candidate("ml.c5.xlarge", cost="0.204", max_invocations=648, latency_ms="100")


def current(instance_type: str, count: int) -> CurrentConfig:
    return CurrentConfig(
        endpoint_config_name="fraud-scoring-config-1",
        instance_type=instance_type,
        instance_count=count,
    )


# -- Eligibility at each limit ----------------------------------------------------------------


def test_a_candidate_exactly_at_the_slo_meets_it() -> None:
    at = decide([candidate(latency_ms="200")], inputs(slo_ms="200"))
    assert (at.action, at.evaluations[0].eligible, at.evaluations[0].reason) == (
        "apply",
        True,
        "chosen",
    )
    over = decide([candidate(latency_ms="200.001")], inputs(slo_ms="200"))
    assert over.evaluations[0].reason == "latency 200.001 ms exceeds the P99 SLO of 200 ms"


def test_cost_at_peak_exactly_at_the_maximum_is_allowed() -> None:
    at = decide([C5], inputs(max_cost_per_hour=Decimal("0.816")))
    assert at.action == "apply"
    assert at.chosen is not None and at.chosen.cost_at_peak_per_hour == Decimal("0.816")
    over = decide([C5], inputs(max_cost_per_hour=Decimal("0.815")))
    assert over.evaluations[0].reason == (
        "costs 0.816 per hour at peak, more than the maximum of 0.815"
    )


def test_needing_exactly_the_maximum_instances_is_allowed() -> None:
    assert decide([C5], inputs(max_instances=4)).action == "apply"
    over = decide([C5], inputs(max_instances=3))
    assert over.evaluations[0].reason == "needs 4 instances at peak, more than the maximum of 3"


def test_an_eligible_candidate_on_its_own_is_eligible() -> None:
    evaluation = evaluate(C5, inputs())
    assert (evaluation.eligible, evaluation.reason) == (True, "eligible")
    assert (evaluation.instance_count, evaluation.cost_at_peak_per_hour) == (4, Decimal("0.816"))


def test_a_type_outside_the_allowed_ones_says_which_are() -> None:
    decision = decide([C5], inputs(allowed_instance_types=("ml.m5", "ml.g5.xlarge")))
    assert decision.evaluations[0].reason == (
        "ml.c5.xlarge is not in the allowed instance types (ml.m5, ml.g5.xlarge)"
    )


def test_every_problem_of_a_candidate_in_order() -> None:
    decision = decide(
        [candidate("ml.g5.xlarge", latency_ms="900", max_invocations=10, cost="2")],
        inputs(allowed_instance_types=("ml.c5",), max_instances=2, max_cost_per_hour=Decimal(1)),
    )
    assert decision.evaluations[0].reason == (
        "latency 900 ms exceeds the P99 SLO of 200 ms; "
        "ml.g5.xlarge is not in the allowed instance types (ml.c5); "
        "needs 200 instances at peak, more than the maximum of 2; "
        "costs 400 per hour at peak, more than the maximum of 1"
    )


# -- Missing or extreme measurements ------------------------------------------------------------


def test_a_candidate_without_model_latency_is_ineligible_but_sized() -> None:
    [evaluation] = decide([candidate(latency_ms=None)], inputs()).evaluations
    assert evaluation.eligible is False
    assert evaluation.reason == "IR reported no ModelLatency"
    assert (evaluation.instance_count, evaluation.cost_at_peak_per_hour) == (4, Decimal("0.816"))


def test_a_candidate_without_cost_per_hour_is_ineligible() -> None:
    no_cost = Candidate(
        recommendation_id="r",
        instance_type="ml.c5.xlarge",
        serverless=False,
        cost_per_hour=None,
        cost_per_inference=None,
        max_invocations=648,
        model_latency_ms=Decimal(100),
    )
    decision = decide([no_cost], inputs())
    [evaluation] = decision.evaluations
    assert (evaluation.eligible, evaluation.reason) == (False, "IR reported no CostPerHour")
    assert (evaluation.instance_count, evaluation.cost_at_peak_per_hour) == (None, None)
    assert decision.reason == (
        "no candidate meets the SLO inside the guardrails: ml.c5.xlarge: IR reported no CostPerHour"
    )


@pytest.mark.parametrize("latency", ["0", "0.5"])
def test_a_latency_under_a_millisecond_is_a_latency(latency: str) -> None:
    # IR measures ModelLatency in microseconds: below 1 ms, even 0 after rounding, is fast,
    # not missing and not negative.
    [evaluation] = decide([candidate(latency_ms=latency)], inputs()).evaluations
    assert (evaluation.eligible, evaluation.reason) == (True, "chosen")


def test_missing_metrics_read_from_a_job_are_missing_not_zero() -> None:
    job = {
        "JobName": "j",
        "Status": "COMPLETED",
        "InferenceRecommendations": [
            {
                "RecommendationId": "r1",
                "Metrics": {"CostPerHour": 0.204, "MaxInvocations": 648},
                "EndpointConfiguration": {"InstanceType": "ml.c5.xlarge"},
            },
            {
                "RecommendationId": "r2",
                "Metrics": {"ModelLatency": 120000, "MaxInvocations": 300},
                "EndpointConfiguration": {"InstanceType": "ml.m5.large"},
            },
        ],
    }
    decision = decide(candidates_from_job(job), inputs())
    assert [e.reason for e in decision.evaluations] == [
        "IR reported no ModelLatency",
        "IR reported no CostPerHour",
    ]
    assert decision.action == "reject"


@pytest.mark.parametrize("max_invocations", [None, 0, -5])
def test_no_measured_throughput_is_ineligible(max_invocations: int | None) -> None:
    [evaluation] = decide([candidate(max_invocations=max_invocations)], inputs()).evaluations
    assert evaluation.reason == "IR measured no sustainable throughput (MaxInvocations)"
    assert evaluation.instance_count is None


def test_one_invocation_per_minute_is_a_throughput() -> None:
    # 3 requests per minute at u=0.5 on an instance that sustains 1: ceil(3 / 0.5) = 6.
    decision = decide([candidate(max_invocations=1)], inputs(peak=3))
    assert decision.action == "apply"
    assert decision.chosen is not None and decision.chosen.instance_count == 6
    assert decision.autoscaling is not None and decision.autoscaling.target_value == 0.5


def test_a_peak_below_one_request_per_minute() -> None:
    decision = decide([C5], inputs(peak="1/2"))
    assert decision.chosen is not None and decision.chosen.instance_count == 1
    assert decision.reason == (
        "ml.c5.xlarge x1 is the cheapest configuration that meets the P99 SLO of 200 ms at "
        "0.5 requests per minute (0.204 per hour at peak)"
    )
    assert instances_needed(Fraction(1, 1000), 648, Fraction(1, 2), 1) == 1
    assert instances_needed(Fraction(0), 648, Fraction(1, 2), 2) == 2
    assert instances_needed(Fraction(0), 648, Fraction(1, 2), 1) == 1


def test_serverless_candidates_are_named_as_such_in_a_rejection() -> None:
    serverless = candidate(None, serverless=True)
    slow = candidate("ml.c5.xlarge", latency_ms="300")
    decision = decide([serverless, slow], inputs())
    assert decision.reason == (
        "no candidate meets the SLO inside the guardrails: "
        "serverless: serverless configuration: only real-time instances are sized | "
        "ml.c5.xlarge: latency 300 ms exceeds the P99 SLO of 200 ms"
    )
    assert (decision.chosen, decision.autoscaling) == (None, None)
    # A serverless recommendation that also names an instance type is still serverless.
    both = candidate("ml.c5.xlarge", serverless=True)
    assert decide([both], inputs()).evaluations[0].reason == (
        "serverless configuration: only real-time instances are sized"
    )


# -- The choice and its reasons -----------------------------------------------------------------


def test_the_reasons_of_the_chosen_and_of_the_losers() -> None:
    dear = candidate("ml.m5.xlarge", cost="0.3")  # 4 x 0.3 = 1.2
    same = candidate("ml.c5.2xlarge", cost="0.204", latency_ms="150")  # same cost, slower
    slow = candidate("ml.g5.xlarge", latency_ms="250")
    decision = decide([dear, C5, same, slow], inputs())
    assert decision.action == "apply"
    assert decision.reason == (
        "ml.c5.xlarge x4 is the cheapest configuration that meets the P99 SLO of 200 ms at "
        "1000 requests per minute (0.816 per hour at peak)"
    )
    assert [e.reason for e in decision.evaluations] == [
        "eligible, but costs 1.2 per hour at peak against 0.816 for the chosen one",
        "chosen",
        "eligible, same cost at peak, ranked lower on latency, instance count, then name",
        "latency 250 ms exceeds the P99 SLO of 200 ms",
    ]
    assert decision.chosen is decision.evaluations[1]


def test_equal_cost_and_latency_go_to_fewer_instances() -> None:
    # 1296 rpm at u=0.5: 8 x 0.1 = 0.8 per hour, or 4 x 0.2 = 0.8 per hour.
    small = candidate("ml.c5.large", cost="0.1", max_invocations=324)
    large = candidate("ml.c5.xlarge", cost="0.2", max_invocations=648)
    for order in ([small, large], [large, small]):
        decision = decide(order, inputs(peak=1296))
        assert decision.chosen is not None
        assert decision.chosen.candidate is large


def test_a_full_tie_goes_to_the_first_type_name() -> None:
    a = candidate("ml.c5.xlarge")
    b = candidate("ml.c6i.xlarge")
    for order in ([a, b], [b, a]):
        decision = decide(order, inputs())
        assert decision.chosen is not None
        assert decision.chosen.candidate is a


def test_autoscaling_targets_max_invocations_at_the_target_utilization() -> None:
    decision = decide([C5], inputs(utilization="0.7", min_instances=2, max_instances=9))
    assert decision.autoscaling is not None
    assert decision.autoscaling.target_value == 453.6
    assert type(decision.autoscaling.target_value) is float
    assert (decision.autoscaling.min_capacity, decision.autoscaling.max_capacity) == (2, 9)


def test_already_running_it_is_no_change_with_the_reason() -> None:
    decision = decide([C5], inputs(), current("ml.c5.xlarge", 4))
    assert decision.action == "no-change"
    assert decision.reason == (
        "the endpoint already runs it: ml.c5.xlarge x4 is the cheapest configuration that meets "
        "the P99 SLO of 200 ms at 1000 requests per minute (0.816 per hour at peak)"
    )
    # The choice stays in the decision (the event names it on no-change too).
    assert decision.chosen is decision.evaluations[0]
    assert (decision.chosen.instance_count, decision.chosen.reason) == (4, "chosen")
    assert decision.autoscaling is not None and decision.autoscaling.target_value == 324.0
    # The same type on another count, or the same count on another type, is a change.
    assert decide([C5], inputs(), current("ml.c5.xlarge", 5)).action == "apply"
    assert decide([C5], inputs(), current("ml.m5.xlarge", 4)).action == "apply"


# -- Hysteresis at its limits ---------------------------------------------------------------------

# ml.m5.large at 0.1 per hour sustains 400 rpm: 1000 rpm needs 5 (0.5 per hour at peak).
M5_LARGE = candidate("ml.m5.large", cost="0.1", max_invocations=400, latency_ms="120")


def test_a_current_config_at_exactly_the_needed_count_meets_the_slo() -> None:
    # ml.c5.xlarge x4 is exactly what the peak needs: it meets the SLO, so the small saving of
    # going to ml.m5.large x5 (0.316 per hour, 230.68 per month) is not worth a change.
    decision = decide(
        [C5, M5_LARGE], inputs(min_saving_per_month=Decimal(231)), current("ml.c5.xlarge", 4)
    )
    assert decision.action == "no-change"
    assert decision.reason == (
        "the current ml.c5.xlarge x4 meets the SLO and the change would save 230.68 per month "
        "(38.7%), below the minimum of 231 per month and 0%; ml.m5.large x5 is the cheapest "
        "configuration that meets the P99 SLO of 200 ms at 1000 requests per minute "
        "(0.5 per hour at peak)"
    )
    assert decision.chosen is not None and decision.chosen.candidate is M5_LARGE
    assert decision.autoscaling is not None and decision.autoscaling.target_value == 200.0
    assert [e.reason for e in decision.evaluations] == [
        "eligible, but costs 0.816 per hour at peak against 0.5 for the chosen one",
        "chosen",
    ]
    # One instance short of the need, it misses the SLO: always fixed.
    short = decide(
        [C5, M5_LARGE], inputs(min_saving_per_month=Decimal(231)), current("ml.c5.xlarge", 3)
    )
    assert short.action == "apply"


def test_a_current_config_at_exactly_the_maximum_count_is_kept() -> None:
    # ml.m5.large sustaining 600 rpm needs 4 (0.4 per hour); the current ml.c5.xlarge x4 runs
    # at the guardrails' maximum of 4, which is allowed: it is kept for a small saving.
    cheaper = candidate("ml.m5.large", cost="0.1", max_invocations=600)
    kept = decide(
        [C5, cheaper],
        inputs(max_instances=4, min_saving_per_month=Decimal(304)),
        current("ml.c5.xlarge", 4),
    )
    assert kept.action == "no-change"
    assert kept.reason.startswith(
        "the current ml.c5.xlarge x4 meets the SLO and the change would save 303.68 per month "
        "(51%), below the minimum of 304 per month and 0%; "
    )
    # Above the maximum, the current config is outside the guardrails: it is changed.
    over = decide(
        [C5, cheaper],
        inputs(max_instances=4, min_saving_per_month=Decimal(304)),
        current("ml.c5.xlarge", 5),
    )
    assert over.action == "apply"


@pytest.mark.parametrize(
    ("guardrails", "action"),
    [
        # ml.c5.xlarge x5 (1.0 per hour at 0.2) to x4 (0.8): saves 20 %, 146 per month.
        ({"min_saving_percent": Decimal(20)}, "apply"),
        ({"min_saving_percent": Decimal("20.01")}, "no-change"),
        ({"min_saving_per_month": Decimal(146)}, "apply"),
        ({"min_saving_per_month": Decimal("146.01")}, "no-change"),
        ({"min_saving_percent": Decimal(20), "min_saving_per_month": Decimal(146)}, "apply"),
        ({"min_saving_percent": Decimal(20), "min_saving_per_month": Decimal(147)}, "no-change"),
        ({"min_saving_percent": Decimal(21), "min_saving_per_month": Decimal(146)}, "no-change"),
    ],
)
def test_a_saving_exactly_at_the_minimum_is_enough(guardrails: dict[str, Any], action: str) -> None:
    decision = decide([candidate(cost="0.2")], inputs(**guardrails), current("ml.c5.xlarge", 5))
    assert decision.action == action


def test_the_hysteresis_reason_rounds_for_people() -> None:
    decision = decide(
        [candidate(cost="0.2")],
        inputs(min_saving_percent=Decimal("20.5"), min_saving_per_month=Decimal("10.25")),
        current("ml.c5.xlarge", 5),
    )
    assert decision.reason.startswith(
        "the current ml.c5.xlarge x5 meets the SLO and the change would save 146 per month "
        "(20%), below the minimum of 10.25 per month and 20.5%; "
    )


def test_the_monthly_saving_is_rounded_to_cents() -> None:
    # ml.c5.xlarge x5 to x4 at 0.2001 per hour: 0.2001 * 730 = 146.073 per month.
    decision = decide(
        [candidate(cost="0.2001")],
        inputs(min_saving_per_month=Decimal(200)),
        current("ml.c5.xlarge", 5),
    )
    assert decision.reason.startswith(
        "the current ml.c5.xlarge x5 meets the SLO and the change would save 146.07 per month "
        "(20%), below the minimum of 200 per month and 0%; "
    )


def test_a_current_config_that_costs_nothing_saves_nothing() -> None:
    # IR priced both types at 0 (no division by a zero cost): the saving is 0, and 0 %.
    free = candidate("ml.c5.xlarge", cost="0", latency_ms="100")
    other = candidate("ml.m5.xlarge", cost="0", latency_ms="90")
    decision = decide(
        [free, other], inputs(min_saving_percent=Decimal(1)), current("ml.c5.xlarge", 4)
    )
    assert decision.action == "no-change"
    assert decision.reason.startswith(
        "the current ml.c5.xlarge x4 meets the SLO and the change would save 0 per month (0%), "
        "below the minimum of 0 per month and 1%; ml.m5.xlarge x4 is the cheapest"
    )


def test_a_current_config_that_is_not_eligible_is_always_changed() -> None:
    # The current type misses the SLO (IR measured it): any saving, however small, is taken.
    slow_current = candidate("ml.m5.xlarge", cost="0.21", latency_ms="250")
    decision = decide(
        [C5, slow_current], inputs(min_saving_percent=Decimal(99)), current("ml.m5.xlarge", 4)
    )
    assert decision.action == "apply"


def test_a_current_config_of_unknown_type_or_count_is_changed() -> None:
    for unknown in (
        CurrentConfig(endpoint_config_name="c", instance_type=None, instance_count=5),
        CurrentConfig(endpoint_config_name="c", instance_type="ml.c5.xlarge", instance_count=None),
    ):
        decision = decide([C5], inputs(min_saving_percent=Decimal(99)), unknown)
        assert decision.action == "apply"


# -- Inputs and job results ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"peak_requests_per_minute": Fraction(-1)},
         "peak_requests_per_minute must be >= 0, got -1"),
        ({"target_utilization": Fraction(0)}, "target_utilization must be in (0, 1], got 0.0"),
        ({"target_utilization": Fraction(101, 100)},
         "target_utilization must be in (0, 1], got 1.01"),
        ({"guardrails": Guardrails(min_instances=0)},
         "guardrails need 1 <= min_instances <= max_instances, got min 0, max 10"),
        ({"guardrails": Guardrails(min_instances=3, max_instances=2)},
         "guardrails need 1 <= min_instances <= max_instances, got min 3, max 2"),
    ],
)  # fmt: skip
def test_decision_inputs_out_of_range(changes: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {
        "peak_requests_per_minute": Fraction(1),
        "target_utilization": Fraction(1, 2),
        "slo": Slo(percentile="P99", max_latency_ms=Decimal(1)),
        "guardrails": Guardrails(),
        **changes,
    }
    with pytest.raises(ValueError) as raised:
        DecisionInput(**arguments)
    assert str(raised.value) == message


def test_decision_inputs_at_their_limits_are_valid() -> None:
    DecisionInput(
        peak_requests_per_minute=Fraction(0),
        target_utilization=Fraction(1),
        slo=Slo(percentile="P95", max_latency_ms=Decimal(1)),
        guardrails=Guardrails(min_instances=1, max_instances=1),
    )


@pytest.mark.parametrize(
    ("description", "message"),
    [
        ({}, "recommendation job <unnamed> is missing a Status, not COMPLETED"),
        ({"JobName": "j", "Status": "STOPPED"}, "recommendation job j is STOPPED, not COMPLETED"),
        (
            {"JobName": "j", "Status": "FAILED", "FailureReason": "quota"},
            "recommendation job j is FAILED, not COMPLETED: quota",
        ),
        (
            {"JobName": "j", "Status": "COMPLETED", "InferenceRecommendations": []},
            "recommendation job j completed with no recommendations",
        ),
    ],
)
def test_job_results_that_cannot_be_decided_on(description: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidJobResultError) as raised:
        candidates_from_job(description)
    assert str(raised.value) == message


def test_a_recommendation_read_exactly() -> None:
    job = {
        "Status": "COMPLETED",
        "InferenceRecommendations": [
            {
                "RecommendationId": "r1",
                "Metrics": {
                    "CostPerHour": 0.204,
                    "CostPerInference": 5.2e-06,
                    "MaxInvocations": 648,
                    "ModelLatency": 263596,
                },
                "EndpointConfiguration": {"InstanceType": "ml.c5.xlarge"},
            },
            {"EndpointConfiguration": {"ServerlessConfig": {"MemorySizeInMB": 2048}}},
            {},
        ],
    }
    assert candidates_from_job(job) == [
        Candidate(
            recommendation_id="r1",
            instance_type="ml.c5.xlarge",
            serverless=False,
            cost_per_hour=Decimal("0.204"),
            cost_per_inference=Decimal("0.0000052"),
            max_invocations=648,
            model_latency_ms=Decimal("263.596"),
        ),
        Candidate(
            recommendation_id=None,
            instance_type=None,
            serverless=True,
            cost_per_hour=None,
            cost_per_inference=None,
            max_invocations=None,
            model_latency_ms=None,
        ),
        Candidate(
            recommendation_id=None,
            instance_type=None,
            serverless=False,
            cost_per_hour=None,
            cost_per_inference=None,
            max_invocations=None,
            model_latency_ms=None,
        ),
    ]


def test_numbers_are_read_as_written() -> None:
    assert exact(0.204) == Decimal("0.204") and str(exact(0.204)) == "0.204"
    kept = Decimal("1.10")
    assert exact(kept) is kept
    assert exact(7) == Decimal(7)
    assert model_latency_ms(263596.5) == Decimal("263.5965")


def test_the_current_config_of_a_variant() -> None:
    config = {
        "EndpointConfigName": "cfg",
        "ProductionVariants": [
            {"VariantName": "Blue", "InstanceType": "ml.m5.large", "InitialInstanceCount": 2},
            {
                "VariantName": "AllTraffic",
                "InstanceType": "ml.c5.xlarge",
                "InitialInstanceCount": 4,
            },
        ],
    }
    assert current_config_from(config, "AllTraffic") == CurrentConfig(
        endpoint_config_name="cfg", instance_type="ml.c5.xlarge", instance_count=4
    )
    assert current_config_from(
        {"ProductionVariants": [{"VariantName": "AllTraffic"}]}, "AllTraffic"
    ) == CurrentConfig(endpoint_config_name="", instance_type=None, instance_count=None)
    with pytest.raises(VariantNotFoundError) as raised:
        current_config_from({"EndpointConfigName": "cfg"}, "AllTraffic")
    assert str(raised.value) == "endpoint config cfg has no variant 'AllTraffic' (it has none)"
    with pytest.raises(VariantNotFoundError) as raised:
        current_config_from(config, "Green")
    assert (
        str(raised.value) == "endpoint config cfg has no variant 'Green' (it has Blue, AllTraffic)"
    )


# -- Numbers in the event ---------------------------------------------------------------------


def test_whole_numbers_in_the_event_stay_whole() -> None:
    # 1296 rpm at u=0.5 on 648 rpm: 4 instances at 0.25, exactly 1.00 per hour.
    detail = recommend(
        candidates=[candidate("ml.c5.xlarge", cost="0.25", latency_ms="100.0")],
        job_name="rightsizing-j",
        decision_input=inputs(peak=1296, slo_ms="150.0", min_saving_percent=Decimal("5.0")),
        endpoint_name="fraud-scoring",
        variant_name="AllTraffic",
        endpoint_config={
            "EndpointConfigName": "cfg",
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "InstanceType": "ml.c5.xlarge",
                    "InitialInstanceCount": 6,
                }
            ],
        },
    )
    assert json.dumps(
        {
            k: detail[k]
            for k in (
                "estimated_cost_per_hour",
                "instance_count",
                "current",
                "inputs",
                "candidates",
            )
        },
        sort_keys=True,
    ) == json.dumps(
        {
            "estimated_cost_per_hour": 1,
            "instance_count": 4,
            "current": {
                "endpoint_config_name": "cfg",
                "instance_type": "ml.c5.xlarge",
                "instance_count": 6,
                "estimated_cost_per_hour": 1.5,
            },
            "inputs": {
                "peak_requests_per_minute": 1296,
                "peak_source": {"kind": "configured"},
                "target_utilization": 0.5,
                "slo": {"percentile": "P99", "max_latency_ms": 150},
                "guardrails": {
                    "min_instances": 1,
                    "max_instances": 10,
                    "allowed_instance_types": [],
                    "max_cost_per_hour": None,
                    "min_saving_percent": 5,
                    "min_saving_per_month": 0,
                },
            },
            "candidates": [
                {
                    "recommendation_id": "rec-ml.c5.xlarge",
                    "instance_type": "ml.c5.xlarge",
                    "serverless": False,
                    "cost_per_hour": 0.25,
                    "cost_per_inference": None,
                    "max_invocations_per_instance_per_minute": 648,
                    "model_latency_ms": 100,
                    "instance_count": 4,
                    "cost_at_peak_per_hour": 1,
                    "eligible": True,
                    "chosen": True,
                    "reason": "chosen",
                    # No measured curve here (evidence ir-summary, #15).
                    "capacity_at_slo": None,
                    "latency_at_peak_ms": None,
                    "unit_check": None,
                }
            ],
        },
        sort_keys=True,
    )
    assert type(detail["estimated_cost_per_hour"]) is int
    assert type(detail["inputs"]["target_utilization"]) is float


# -- What an apply does to the cost, when the current type's price is missing or odd -------------


@pytest.mark.parametrize("price", [None, "-0.05"])
def test_a_current_type_ir_priced_oddly_leaves_the_change_unknown(price: str | None) -> None:
    # IR measured the current type but gave it no price, or a negative one: it is ineligible,
    # and the change in cost against it cannot be told.
    measured = Candidate(
        recommendation_id="rec-ml.m5.large",
        instance_type="ml.m5.large",
        serverless=False,
        cost_per_hour=None if price is None else Decimal(price),
        cost_per_inference=None,
        max_invocations=648,
        model_latency_ms=Decimal(100),
    )
    decision = decide([measured, C5], inputs(), current("ml.m5.large", 8))
    assert decision.action == "apply"
    assert decision.reason.endswith(
        "; IR gave no price for the current ml.m5.large x8, so the change in cost is unknown"
    )


def test_the_cost_change_rounds_dollars_to_4_decimals_and_months_to_cents() -> None:
    # The current ml.m5.large x8 at 0.050106 (0.400848 per hour) misses the SLO; ml.c5.xlarge
    # x4 costs 0.816: 0.415152 more per hour, 303.06096 per month.
    slow = candidate("ml.m5.large", cost="0.050106", latency_ms="250")
    decision = decide([C5, slow], inputs(), current("ml.m5.large", 8))
    assert decision.reason.endswith(
        "; it raises the cost from 0.4008 to 0.816 per hour (303.06 more per month): the current "
        "ml.m5.large x8 is not eligible (latency 250 ms exceeds the P99 SLO of 200 ms)"
    )
