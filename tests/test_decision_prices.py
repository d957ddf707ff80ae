"""The decision core on the numbers IR can return, and the costs people read (issue 12, #6).

botocore parses IR's answer by the service model, so a ``CostPerHour`` is a number, but the
model does not say it is a positive one, and IR reports NaN for what it did not measure. The
Select function and ``plan`` share this code, so both treat such a candidate alike: ineligible,
with the reason. Money in the reasons is rounded for people; the event's numbers stay IR's.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from rightsizing_runtime.decision import Candidate, CurrentConfig, decide
from rightsizing_runtime.recommendation import recommend

from tests.test_decision import candidate, inputs

# ml.c5.xlarge at 0.204 an hour sustains 648 rpm: 1000 rpm at u=0.5 needs 4 (0.816 an hour).
C5 = candidate("ml.c5.xlarge")
#: The docs sample's price as IR's float gives it.
IR_PRICE = "0.20399999618530273"


def current(instance_type: str, count: int) -> CurrentConfig:
    return CurrentConfig(
        endpoint_config_name="cfg", instance_type=instance_type, instance_count=count
    )


def priced(instance_type: str, cost_per_hour: Decimal | None, **others: Any) -> Candidate:
    values: dict[str, Any] = {
        "recommendation_id": f"rec-{instance_type}",
        "instance_type": instance_type,
        "serverless": False,
        "cost_per_hour": cost_per_hour,
        "cost_per_inference": None,
        "max_invocations": 648,
        "model_latency_ms": Decimal(100),
    }
    values.update(others)
    return Candidate(**values)


@pytest.mark.parametrize("price", ["-1", "-0.001", "NaN", "Infinity", "-Infinity"])
def test_a_price_that_is_not_one_is_never_chosen(price: str) -> None:
    odd = priced("ml.m5.large", Decimal(price))
    decision = decide([odd, C5], inputs())
    assert decision.chosen is not None and decision.chosen.candidate is C5
    [evaluation, _] = decision.evaluations
    assert (evaluation.eligible, evaluation.reason) == (
        False,
        f"IR reported a CostPerHour of {Decimal(price)}, not a price",
    )
    alone = decide([odd], inputs())
    assert alone.action == "reject"
    assert "not a price" in alone.reason


@pytest.mark.parametrize("latency", ["-1", "NaN", "Infinity"])
def test_a_latency_that_is_not_one_is_ineligible(latency: str) -> None:
    odd = priced("ml.m5.large", Decimal("0.1"), model_latency_ms=Decimal(latency))
    decision = decide([odd, C5], inputs())
    assert decision.chosen is not None and decision.chosen.candidate is C5
    assert decision.evaluations[0].reason == (
        f"IR reported a ModelLatency of {Decimal(latency)} ms, not a latency"
    )


def test_nan_metrics_are_null_in_the_event_which_stays_json() -> None:
    """EventBridge takes JSON only: a NaN from IR must not reach the detail."""
    odd = priced(
        "ml.m5.large", Decimal("NaN"), cost_per_inference=Decimal("NaN"), max_invocations=600
    )
    detail = recommend(
        candidates=[odd, C5],
        job_name="rightsizing-j",
        decision_input=inputs(),
        endpoint_name="fraud-scoring",
        variant_name="AllTraffic",
    )
    json.dumps(detail, allow_nan=False)  # raises on NaN or Infinity
    assert detail["candidates"][0]["cost_per_hour"] is None
    assert detail["candidates"][0]["cost_per_inference"] is None
    assert detail["instance_type"] == "ml.c5.xlarge"


# -- Money in the reasons -----------------------------------------------------------------------


def test_the_reasons_round_irs_binary_prices() -> None:
    ir = priced("ml.c5.xlarge", Decimal(IR_PRICE))
    dear = priced("ml.m5.xlarge", Decimal("0.23000000417232513"))
    decision = decide([ir, dear], inputs(peak=3240))
    assert decision.reason.endswith("(2.04 per hour at peak)")
    assert decision.evaluations[1].reason == (
        "eligible, but costs 2.3 per hour at peak against 2.04 for the chosen one"
    )
    capped = decide([ir], inputs(peak=3240, max_cost_per_hour=Decimal(2)))
    assert capped.evaluations[0].reason == "costs 2.04 per hour at peak, more than the maximum of 2"
    # The event keeps IR's number exactly.
    assert decision.chosen is not None
    assert decision.chosen.cost_at_peak_per_hour == Decimal(IR_PRICE) * 10


def test_rounding_never_shows_two_different_costs_as_one() -> None:
    # 4 x 0.20400001 = 0.81600004, just over a cap of 0.816: both shown in full.
    over = decide(
        [priced("ml.c5.xlarge", Decimal("0.20400001"))], inputs(max_cost_per_hour=Decimal("0.816"))
    )
    assert over.evaluations[0].reason == (
        "costs 0.81600004 per hour at peak, more than the maximum of 0.816"
    )


# -- An apply says what it does to the cost -----------------------------------------------------


def test_an_apply_that_raises_the_cost_says_so_and_why() -> None:
    # The current ml.c5.xlarge x2 (0.408 an hour) cannot serve 1000 rpm: it needs 4 (0.816).
    short = decide([C5], inputs(), current("ml.c5.xlarge", 2))
    assert short.action == "apply"
    assert short.reason.endswith(
        "(0.816 per hour at peak); it raises the cost from 0.408 to 0.816 per hour (297.84 more "
        "per month): the current ml.c5.xlarge x2 is too few for the peak (it needs 4)"
    )
    # The current ml.m5.large x8 is cheaper but misses the SLO.
    slow = priced("ml.m5.large", Decimal("0.05"), model_latency_ms=Decimal(250))
    missed = decide([C5, slow], inputs(), current("ml.m5.large", 8))
    assert missed.reason.endswith(
        "; it raises the cost from 0.4 to 0.816 per hour (303.68 more per month): the current "
        "ml.m5.large x8 is not eligible (latency 250 ms exceeds the P99 SLO of 200 ms)"
    )


def test_an_apply_that_saves_says_how_much() -> None:
    decision = decide([C5], inputs(), current("ml.c5.xlarge", 6))
    assert decision.reason.endswith(
        "; it saves 0.408 per hour (297.84 per month) against the current ml.c5.xlarge x6 "
        "(1.224 per hour)"
    )


def test_an_apply_from_an_unpriced_type_says_the_change_is_unknown() -> None:
    decision = decide([C5], inputs(), current("ml.g5.xlarge", 1))
    assert decision.reason.endswith(
        "; IR gave no price for the current ml.g5.xlarge x1, so the change in cost is unknown"
    )
    # Without a current configuration (a reviewer's plan without one), nothing is added.
    assert decide([C5], inputs()).reason.endswith("(0.816 per hour at peak)")


def test_an_apply_at_the_same_cost_says_so() -> None:
    # 1296 rpm at u=0.5: ml.c5.large (0.102, 324 rpm) needs 8, ml.c5.xlarge (0.204, 648 rpm) 4:
    # 0.816 an hour both; fewer instances win. The current ml.c5.large x8 costs the same.
    large = priced("ml.c5.large", Decimal("0.102"), max_invocations=324)
    decision = decide([large, C5], inputs(peak=1296), current("ml.c5.large", 8))
    assert decision.action == "apply"
    assert decision.chosen is not None and decision.chosen.candidate is C5
    assert decision.reason.endswith("; it costs the same as the current ml.c5.large x8")
