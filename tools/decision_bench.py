"""Decision-quality benchmark (issue #15): IR's scalars vs measured curves vs an oracle.

``make decision-bench`` runs it. A seeded corpus of synthetic IR jobs whose true per-instance
latency curves are known, M/M/1-like: at ``r`` requests per minute per instance, a type of
capacity ``c`` has mean latency ``base / (1 - r/c)`` and p99 latency ``tail * base / (1 -
r/c)``, where ``base`` is the type's service time and ``tail`` the model's p99-to-mean ratio.
Each job yields what a real one would:

- IR's scalars per candidate: ``MaxInvocations`` where the load test stopped (90 % of ``c``)
  and one ``ModelLatency`` there: the *mean*, in microseconds (IR does not say which
  statistic it reports; a mean is the kindest reading for the scalar decision's comparison
  with a p99 SLO), with 5 % noise;
- per-minute CloudWatch series of the benchmark endpoint (one instance): a first ramp-up
  minute, then stairs of 3 minutes up to ``MaxInvocations`` (``STEPS`` steps), ``Invocations``
  with 2 % noise and p99 ``ModelLatency`` in microseconds with 5 % noise.

Three decisions per job, with the same planning rule (``n = ceil(R / (capacity * u))``) and
guardrails: **scalar** (IR's scalars, the decision before #15), **curve** (the measured
curves, through ``evidence.gather_evidence`` as the Select function reads them) and
**oracle** (each type's true capacity at the SLO, ``c * (1 - tail * base / SLO)``, capped by
``MaxInvocations`` like the others). A decision *violates* the SLO when the true p99 at the
planned peak per instance (``R / n``) exceeds it. Costs are compared with the oracle's on the
jobs where both chose a configuration.

Inference components (issue #17), in the same run: a seeded corpus of synthetic AI
recommendation jobs (``DescribeAIRecommendationJob`` outputs) whose truth is known. A copy of the
model on a type has a p90 time to first token of ``ttft0 / (1 - c / cmax)`` at ``c`` concurrent
requests per copy (saturating at ``cmax``); packing ``k`` copies on an instance divides the
type's ``cmax`` by ``k`` and slows each copy by ``sqrt(k)``. Each job recommends 2 or 3 types
(the API's limit is 3) with an instance count and copies per instance, measured under the
workload's ``W`` concurrent requests (``W / copies`` per copy): its ExpectedPerformance holds
that p90 TTFT with 5 % noise (in ms, or in seconds for one type in three, as the decision must
read both) and a ``cost`` per hour when the recommendation is one instance (else the settings'
``hourly_prices`` price it). The **component** decision (``component_decision``) plans copies
for a peak of ``R`` concurrent requests; the **oracle** plans with each candidate's true per-copy
capacity at the SLO, ``cmax * (1 - ttft0 / SLO)``, capped by the load the job measured (as the
endpoint oracle is capped by ``MaxInvocations``). A decision *violates* the SLO when the true
p90 TTFT at the planned load per copy (``R / copies``) exceeds it. Two component rows: on
exact measurements (the job's p90 is the truth at the load it measured: planning at ``u`` times
that load can never violate, which the exit status holds), and on measurements with 5 % noise
(reported: the contract trusts the job's one number, so an SLO within the noise of the true
latency can be missed). The job measures one load per candidate: a candidate measured above
the SLO at ``W`` is ineligible although it would meet it at a lower load, which the oracle
uses; that is where the component's cost over the oracle comes from.

Exit status non-zero unless the curve decision has no violation and costs at most 1.05x the
oracle on average (issue #15's target), and the component decision on exact measurements
has no violation.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from rightsizing_constructs._runtime import import_runtime

decision = import_runtime("decision")
evidence = import_runtime("evidence")
component_decision = import_runtime("component_decision")

#: (type, US$ per hour, capacity and service time relative to the model's reference).
TYPES = (
    ("ml.c5.large", 0.102, 1.0, 1.3),
    ("ml.c5.xlarge", 0.204, 2.1, 1.0),
    ("ml.c5.2xlarge", 0.408, 4.3, 0.9),
    ("ml.m5.large", 0.115, 0.9, 1.4),
    ("ml.m5.xlarge", 0.23, 1.9, 1.1),
    ("ml.m5.2xlarge", 0.461, 3.9, 1.0),
    ("ml.g4dn.xlarge", 0.736, 9.0, 0.5),
)
STEPS = 15
STEP_MINUTES = 3
#: IR's load test stops at this share of the true capacity (``MaxInvocations``).
STOP_SHARE = 0.9
MAX_INSTANCES = 40
START = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
TARGET_VIOLATIONS = 0
TARGET_COST_RATIO = 1.05


@dataclass(frozen=True, kw_only=True)
class TrueType:
    """A candidate's true curve and price."""

    instance_type: str
    cost_per_hour: float
    capacity: float
    base_ms: float
    tail: float

    def p99_ms(self, rate: float) -> float:
        """True p99 latency at ``rate`` requests per minute per instance (inf at saturation)."""
        return (
            math.inf
            if rate >= self.capacity
            else self.tail * self.base_ms / (1 - rate / self.capacity)
        )

    def max_invocations(self) -> int:
        """Where IR's load test stopped."""
        return math.floor(self.capacity * STOP_SHARE)


@dataclass(frozen=True, kw_only=True)
class Job:
    """One synthetic load test and the settings it is decided with."""

    name: str
    types: tuple[TrueType, ...]
    peak: int
    utilization: Fraction
    slo_ms: int
    #: Stairs of the load test (IR Advanced jobs: ``TrafficPattern.Stairs.NumberOfSteps``).
    steps: int = STEPS


def corpus(seed: int, jobs: int, steps: int = STEPS) -> list[Job]:
    """``jobs`` synthetic jobs, the same for the same seed."""
    rng = random.Random(seed)
    found = []
    for index in range(jobs):
        reference_capacity = rng.uniform(100, 600)
        reference_base = rng.uniform(5, 60)
        tail = rng.uniform(1.5, 6)
        picked = rng.sample(TYPES, rng.randint(3, 5))
        types = tuple(
            TrueType(
                instance_type=name,
                cost_per_hour=price,
                capacity=reference_capacity * capacity,
                base_ms=reference_base * service,
                tail=tail,
            )
            for name, price, capacity, service in picked
        )
        fastest = min(t.base_ms * t.tail for t in types)
        found.append(
            Job(
                name=f"bench-{index:04d}",
                types=types,
                peak=rng.randint(500, 20_000),
                utilization=rng.choice(
                    [Fraction(1, 2), Fraction(6, 10), Fraction(7, 10), Fraction(8, 10)]
                ),
                slo_ms=math.ceil(fastest * rng.uniform(1.5, 8)),
                steps=steps,
            )
        )
    return found


def description(job: Job, rng: random.Random) -> dict[str, Any]:
    """The job's ``DescribeInferenceRecommendationsJob`` response, as botocore returns it."""
    minutes = 1 + job.steps * STEP_MINUTES
    recommendations = []
    for index, true in enumerate(job.types):
        at_max = true.max_invocations()
        mean_ms = true.p99_ms(at_max) / true.tail
        recommendations.append(
            {
                "RecommendationId": f"{job.name}/{index}",
                "Metrics": {
                    "CostPerHour": true.cost_per_hour,
                    "CostPerInference": true.cost_per_hour / (at_max * 60),
                    "MaxInvocations": at_max,
                    "ModelLatency": round(mean_ms * 1000 * rng.gauss(1, 0.05)),
                },
                "EndpointConfiguration": {
                    "EndpointName": f"{job.name}-e{index}",
                    "VariantName": "AllTraffic",
                    "InstanceType": true.instance_type,
                    "InitialInstanceCount": 1,
                },
                "InvocationStartTime": START,
                "InvocationEndTime": START + timedelta(minutes=minutes),
            }
        )
    return {"JobName": job.name, "Status": "COMPLETED", "InferenceRecommendations": recommendations}


def metric_pages(job: Job, rng: random.Random) -> list[dict[str, Any]]:
    """What GetMetricData returns for the job's request: the stairs, minute by minute."""
    results = []
    for index, true in enumerate(job.types):
        top = true.max_invocations()
        rates = [top / job.steps] + [
            top * (1 + step // STEP_MINUTES) / job.steps for step in range(job.steps * STEP_MINUTES)
        ]
        stamps = [START + timedelta(minutes=minute) for minute in range(len(rates))]
        invocations = [max(0.0, round(r * rng.gauss(1, 0.02))) for r in rates]
        latency_us = [true.p99_ms(r) * 1000 * rng.gauss(1, 0.05) for r in rates]
        results += [
            {
                "Id": f"inv_{index}",
                "Timestamps": stamps,
                "Values": invocations,
                "StatusCode": "Complete",
            },
            {
                "Id": f"lat_{index}",
                "Timestamps": stamps,
                "Values": latency_us,
                "StatusCode": "Complete",
            },
        ]
    return [{"MetricDataResults": results}]


def decision_input(job: Job) -> Any:
    """The settings every decision of the job uses."""
    return decision.DecisionInput(
        peak_requests_per_minute=Fraction(job.peak),
        target_utilization=job.utilization,
        slo=decision.Slo(percentile="P99", max_latency_ms=Decimal(job.slo_ms)),
        guardrails=decision.Guardrails(max_instances=MAX_INSTANCES),
    )


@dataclass(frozen=True, kw_only=True)
class Choice:
    """A decision's configuration, or none."""

    instance_type: str | None
    count: int | None
    cost: float | None


def oracle(job: Job) -> Choice:
    """The cheapest type and count by the true capacity at the SLO, same planning rule."""
    best = Choice(instance_type=None, count=None, cost=None)
    for true in job.types:
        if true.tail * true.base_ms >= job.slo_ms:
            continue
        capacity = min(
            true.capacity * (1 - true.tail * true.base_ms / job.slo_ms), true.max_invocations()
        )
        count = max(1, math.ceil(Fraction(job.peak) / (Fraction(capacity) * job.utilization)))
        cost = count * true.cost_per_hour
        if count <= MAX_INSTANCES and (best.cost is None or cost < best.cost):
            best = Choice(instance_type=true.instance_type, count=count, cost=cost)
    return best


def decided(job: Job, found: Any, described: Mapping[str, Any]) -> Choice:
    """The library's decision on the job with ``found`` evidence."""
    made = decision.decide(
        found.apply(decision.candidates_from_job(described)), decision_input(job)
    )
    if made.chosen is None:
        return Choice(instance_type=None, count=None, cost=None)
    true = next(t for t in job.types if t.instance_type == made.chosen.candidate.instance_type)
    return Choice(
        instance_type=true.instance_type,
        count=made.chosen.instance_count,
        cost=made.chosen.instance_count * true.cost_per_hour,
    )


def violates(job: Any, choice: Any) -> bool:
    """The true p99 at the planned peak per instance exceeds the SLO.

    For an AI job: its true p90 TTFT at the planned load per copy.
    """
    if not isinstance(job, Job):
        return bool(job.violates(choice))
    if choice.instance_type is None or choice.count is None:
        return False
    true = next(t for t in job.types if t.instance_type == choice.instance_type)
    return true.p99_ms(job.peak / choice.count) > job.slo_ms


def run(seed: int, jobs: int, steps: int = STEPS) -> dict[str, list[tuple[Job, Choice, Choice]]]:
    """Per method, each job with the method's choice and the oracle's."""
    rng = random.Random(seed + 1)
    results: dict[str, list[tuple[Job, Choice, Choice]]] = {"scalar": [], "curve": [], "oracle": []}
    for job in corpus(seed, jobs, steps):
        described = description(job, rng)
        pages = metric_pages(job, rng)
        slo = decision.Slo(percentile="P99", max_latency_ms=Decimal(job.slo_ms))
        measured = evidence.gather_evidence(
            described, slo, read=lambda _request, pages=pages: pages, now=START + timedelta(hours=2)
        )
        assert measured.kind == evidence.MEASURED, measured.reason
        best = oracle(job)
        results["scalar"].append((job, decided(job, evidence.ir_summary("bench"), described), best))
        results["curve"].append((job, decided(job, measured, described), best))
        results["oracle"].append((job, best, best))
    return results


def table(
    results: Mapping[str, Sequence[tuple[Any, Any, Any]]],
) -> tuple[str, dict[str, tuple[int, float]]]:
    """The printed table, and per method (violations, mean cost / oracle cost)."""
    lines = [
        f"{'decision':<9} {'jobs':>5} {'chose':>6} {'rejected*':>10} {'violations':>11} "
        f"{'share':>7} {'cost/oracle':>12} {'max':>6}"
    ]
    figures = {}
    for method, rows in results.items():
        chose = [r for r in rows if r[1].instance_type is not None]
        missed = sum(1 for _, mine, best in rows if mine.cost is None and best.cost is not None)
        bad = sum(1 for job, mine, _ in rows if violates(job, mine))
        ratios = [mine.cost / best.cost for _, mine, best in rows if mine.cost and best.cost]
        mean = statistics.fmean(ratios) if ratios else math.nan
        figures[method] = (bad, mean)
        lines.append(
            f"{method:<9} {len(rows):>5} {len(chose):>6} {missed:>10} {bad:>11} "
            f"{bad / len(rows):>7.1%} {mean:>11.3f}x {max(ratios, default=math.nan):>5.2f}x"
        )
    lines.append("* rejected: no configuration chosen where the oracle found one")
    return "\n".join(lines), figures


# -- Inference components: AI recommendation jobs (issue #17) --------------------------------

#: (type, US$ per instance-hour, per-instance saturation in concurrent requests and TTFT
#: relative to the model's reference). Prices are illustrative, near on-demand us-east-1.
AI_TYPES = (
    ("ml.g5.xlarge", 1.408, 1.0, 1.2),
    ("ml.g5.2xlarge", 1.515, 1.1, 1.1),
    ("ml.g5.12xlarge", 7.09, 4.6, 0.8),
    ("ml.g6.xlarge", 1.167, 0.9, 1.3),
    ("ml.g6.2xlarge", 1.222, 1.0, 1.25),
    ("ml.g6e.xlarge", 2.6, 2.2, 0.7),
    ("ml.p4d.24xlarge", 37.69, 30.0, 0.4),
)
AI_SLO_PERCENTILE = "p90"
AI_MAX_INSTANCES = 40
#: Relative noise of the noisy corpus's measured p90 TTFT (the endpoint corpus's latency noise).
AI_NOISE = 0.05


@dataclass(frozen=True, kw_only=True)
class AiCandidate:
    """A recommended deployment and its true per-copy curve."""

    instance_type: str
    price: float
    instance_count: int
    copies_per_instance: int
    #: Saturation (concurrent requests) and unloaded p90 TTFT (ms) of one copy as packed.
    cmax: float
    ttft0_ms: float

    def copies(self) -> int:
        """The copies the job measured together."""
        return self.instance_count * self.copies_per_instance

    def p90_ttft_ms(self, per_copy: float) -> float:
        """True p90 TTFT at ``per_copy`` concurrent requests per copy (inf at saturation)."""
        return math.inf if per_copy >= self.cmax else self.ttft0_ms / (1 - per_copy / self.cmax)


@dataclass(frozen=True, kw_only=True)
class AiJob:
    """One synthetic AI recommendation job and the settings it is decided with."""

    name: str
    candidates: tuple[AiCandidate, ...]
    workload_concurrency: int
    peak: int
    utilization: Fraction
    slo_ms: int


def ai_corpus(seed: int, jobs: int) -> list[AiJob]:
    """``jobs`` synthetic AI recommendation jobs, the same for the same seed."""
    rng = random.Random(seed + 17)
    found = []
    for index in range(jobs):
        reference_cmax = rng.uniform(8, 64)
        reference_ttft = rng.uniform(60, 400)
        concurrency = rng.choice([4, 8, 16, 32, 64])
        candidates = []
        for name, price, capacity, slowness in rng.sample(AI_TYPES, rng.randint(2, 3)):
            packed = rng.choice([1, 1, 2, 4])
            candidates.append(
                AiCandidate(
                    instance_type=name,
                    price=price,
                    instance_count=rng.choice([1, 1, 2]),
                    copies_per_instance=packed,
                    cmax=reference_cmax * capacity / packed,
                    ttft0_ms=reference_ttft * slowness * math.sqrt(packed),
                )
            )
        fastest = min(c.p90_ttft_ms(concurrency / c.copies()) for c in candidates)
        found.append(
            AiJob(
                name=f"ai-bench-{index:04d}",
                candidates=tuple(candidates),
                workload_concurrency=concurrency,
                peak=rng.randint(4, 400),
                utilization=rng.choice(
                    [Fraction(1, 2), Fraction(7, 10), Fraction(9, 10), Fraction(1)]
                ),
                slo_ms=math.ceil(min(fastest, reference_ttft * 4) * rng.uniform(0.9, 3)),
            )
        )
    return found


def ai_description(job: AiJob, rng: random.Random, noise: float) -> dict[str, Any]:
    """The job's ``DescribeAIRecommendationJob`` response, as botocore returns it.

    Its p90 TTFT is the truth at the measured load times ``1 + N(0, noise)``.
    """
    recommendations = []
    for index, true in enumerate(job.candidates):
        ttft = true.p90_ttft_ms(job.workload_concurrency / true.copies()) * rng.gauss(1, noise)
        in_seconds = index % 3 == 2
        performance = [
            {
                "Metric": "time_to_first_token",
                "Stat": "p90",
                # A float's repr is exact: no rounding below the truth.
                "Value": str(ttft / 1000 if in_seconds else ttft),
                "Unit": "s" if in_seconds else "ms",
            }
        ]
        if true.instance_count == 1:
            performance.append({"Metric": "cost", "Value": str(true.price), "Unit": "USD/hour"})
        recommendations.append(
            {
                "DeploymentConfiguration": {
                    "InstanceType": true.instance_type,
                    "InstanceCount": true.instance_count,
                    "CopyCountPerInstance": true.copies_per_instance,
                },
                "ExpectedPerformance": performance,
            }
        )
    return {
        "AIRecommendationJobName": job.name,
        "AIRecommendationJobStatus": "Completed",
        "Recommendations": recommendations,
    }


def ai_input(job: AiJob) -> Any:
    """The settings the component decision of the job uses."""
    return component_decision.ComponentInput(
        peak_concurrent_requests=Fraction(job.peak),
        target_utilization=Fraction(job.utilization),
        workload_concurrency=job.workload_concurrency,
        slo=component_decision.ComponentSlo(
            metric="ttft", percentile=AI_SLO_PERCENTILE, max_latency_ms=Decimal(job.slo_ms)
        ),
        guardrails=decision.Guardrails(max_instances=AI_MAX_INSTANCES),
        hourly_prices={c.instance_type: Decimal(str(c.price)) for c in job.candidates},
    )


@dataclass(frozen=True, kw_only=True)
class AiChoice:
    """A component decision's configuration, or none (``Choice``'s fields, and copies)."""

    instance_type: str | None
    count: int | None
    cost: float | None
    copies: int | None = None


def ai_oracle(job: AiJob) -> AiChoice:
    """The cheapest candidate by its true capacity at the SLO, capped by the load measured."""
    best = AiChoice(instance_type=None, count=None, cost=None)
    for true in job.candidates:
        if true.ttft0_ms >= job.slo_ms:
            continue
        measured_load = job.workload_concurrency / (true.instance_count * true.copies_per_instance)
        capacity = min(true.cmax * (1 - true.ttft0_ms / job.slo_ms), measured_load)
        copies = max(1, math.ceil(Fraction(job.peak) / (Fraction(capacity) * job.utilization)))
        count = math.ceil(copies / true.copies_per_instance)
        cost = copies / true.copies_per_instance * true.price
        if count <= AI_MAX_INSTANCES and (best.cost is None or cost < best.cost):
            best = AiChoice(instance_type=true.instance_type, count=count, cost=cost, copies=copies)
    return best


def ai_decided(job: AiJob, described: Mapping[str, Any]) -> AiChoice:
    """The component decision on the job."""
    made = component_decision.decide_component(
        component_decision.candidates_from_ai_job(described), ai_input(job)
    )
    if made.chosen is None:
        return AiChoice(instance_type=None, count=None, cost=None)
    true = next(c for c in job.candidates if c.instance_type == made.chosen.candidate.instance_type)
    return AiChoice(
        instance_type=true.instance_type,
        count=made.chosen.instance_count,
        cost=made.chosen.copies / true.copies_per_instance * true.price,
        copies=made.chosen.copies,
    )


@dataclass(frozen=True, kw_only=True)
class _AiRow:
    """An AI job as ``table`` and ``violates`` read a job: its check of a choice."""

    job: AiJob

    def violates(self, choice: AiChoice) -> bool:
        if choice.instance_type is None or not choice.copies:
            return False
        true = next(c for c in self.job.candidates if c.instance_type == choice.instance_type)
        return true.p90_ttft_ms(self.job.peak / choice.copies) > self.job.slo_ms


def ai_run(seed: int, jobs: int) -> dict[str, list[tuple[Any, Any, Any]]]:
    """Per method, each AI job with the method's choice and the oracle's.

    ``component``: the decision on exact measurements (the job's p90 TTFT is the truth at the
    load it measured); ``noisy 5%``: on measurements with 5 % noise, as the endpoint corpus's.
    """
    exact_rng, noisy_rng = random.Random(seed + 18), random.Random(seed + 19)
    results: dict[str, list[tuple[Any, Any, Any]]] = {"component": [], "noisy 5%": [], "oracle": []}
    for job in ai_corpus(seed, jobs):
        best, row = ai_oracle(job), _AiRow(job=job)
        results["component"].append((row, ai_decided(job, ai_description(job, exact_rng, 0)), best))
        noisy = ai_decided(job, ai_description(job, noisy_rng, AI_NOISE))
        results["noisy 5%"].append((row, noisy, best))
        results["oracle"].append((row, best, best))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the tables; non-zero past the targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=STEPS, help="stairs of each load test")
    arguments = parser.parse_args(argv)
    printed, figures = table(run(arguments.seed, arguments.jobs, arguments.steps))
    print(
        f"decision-bench: {arguments.jobs} synthetic jobs, seed {arguments.seed}, "
        f"{arguments.steps} steps of {STEP_MINUTES} minutes"
    )
    print(printed)
    components, component_figures = table(ai_run(arguments.seed, arguments.jobs))
    print(
        f"inference components: {arguments.jobs} synthetic AI recommendation jobs, "
        f"seed {arguments.seed}, p90 TTFT SLO"
    )
    print(components)
    failed = False
    violations, ratio = figures["curve"]
    if violations > TARGET_VIOLATIONS or not ratio <= TARGET_COST_RATIO:
        print(
            f"FAIL: curve decision has {violations} violations and costs {ratio:.3f}x the "
            f"oracle (targets {TARGET_VIOLATIONS} and {TARGET_COST_RATIO}x)",
            file=sys.stderr,
        )
        failed = True
    if component_figures["component"][0] > TARGET_VIOLATIONS:
        print(
            f"FAIL: component decision has {component_figures['component'][0]} violations "
            f"(target {TARGET_VIOLATIONS})",
            file=sys.stderr,
        )
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
