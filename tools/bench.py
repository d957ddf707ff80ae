"""Fleet benchmark: resources per endpoint and synth time, 1 endpoint vs a fleet, side by side.

``make bench`` runs it. For each fleet shape it synthesizes a stack with 1 endpoint and one with
``--fleet`` endpoints (default 200), alternating the two ``--repeat`` times in one process so
both see the same machine load, and prints resources, resources added per extra endpoint, and
the median synth times with their ratio. It exits non-zero when a shape adds more than 2
resources per extra endpoint on average or its fleet stack reaches CloudFormation's limit of
500 resources (the budgets of issue #5).

Shapes (every endpoint in ``ApplyMode.AUTO``, each with its own model package version):

- ``default``: no trigger but the manual one (a run request);
- ``approval+schedule``: model approval and a weekly schedule;
- ``every-trigger``: model approval, a weekly schedule and a latency alarm. A latency alarm is
  one CloudWatch alarm per endpoint by nature, so this shape adds 2 resources per endpoint plus
  the IAM policies that overflow as endpoint ARNs accumulate; it is held to the 500-resource
  limit only, and its per-endpoint figure is printed for the record.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events

from rightsizing_constructs import EndpointRightsizing, LatencyAlarm, LatencySlo, ModelApproval

RESOURCE_LIMIT = 500
MAX_PER_ENDPOINT = 2.0
ACCOUNT, REGION = "123456789012", "us-east-1"


def _shape(name: str) -> Callable[[int], dict[str, Any]]:
    def settings(i: int) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if name in ("approval+schedule", "every-trigger"):
            extra["model_approval"] = ModelApproval(model_package_group_name=f"model-{i}")
            extra["schedule"] = events.Schedule.rate(cdk.Duration.days(7))
        if name == "every-trigger":
            extra["latency_alarm"] = LatencyAlarm(breaching_for=cdk.Duration.minutes(5))
        return extra

    return settings


SHAPES = ("default", "approval+schedule", "every-trigger")
# The shapes held to MAX_PER_ENDPOINT (all are held to RESOURCE_LIMIT).
BUDGETED = ("default", "approval+schedule")


def synthesize(endpoints: int, shape: str) -> tuple[float, dict[str, int]]:
    """Synthesize a stack of ``endpoints`` endpoints; its time in seconds and resource counts."""
    extra = _shape(shape)
    started = time.perf_counter()
    app = cdk.App()
    stack = cdk.Stack(app, "Fleet", env=cdk.Environment(account=ACCOUNT, region=REGION))
    for i in range(endpoints):
        EndpointRightsizing(
            stack,
            f"Endpoint{i}",
            endpoint_name=f"fleet-endpoint-{i}",
            model_package_version_arn=(
                f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/model-{i}/1"
            ),
            slo=LatencySlo.p99(cdk.Duration.millis(200)),
            peak_requests_per_minute=1000 + i,
            **extra(i),
        )
    template = app.synth().get_stack_by_name("Fleet").template
    elapsed = time.perf_counter() - started
    return elapsed, dict(Counter(r["Type"] for r in template["Resources"].values()))


def main() -> int:
    """Run every shape; 0 when all are within budget."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleet", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ok = True
    print(f"fleet benchmark: 1 vs {args.fleet} endpoints, {args.repeat} alternating runs each")
    synthesize(1, "default")  # warm-up: the first synth also starts the jsii runtime
    for shape in SHAPES:
        times: dict[int, list[float]] = {1: [], args.fleet: []}
        counts: dict[int, dict[str, int]] = {}
        for _ in range(args.repeat):
            for size in (1, args.fleet):
                elapsed, counts[size] = synthesize(size, shape)
                times[size].append(elapsed)
        one, fleet = sum(counts[1].values()), sum(counts[args.fleet].values())
        per_endpoint = (fleet - one) / (args.fleet - 1)
        t_one, t_fleet = statistics.median(times[1]), statistics.median(times[args.fleet])
        within = fleet < RESOURCE_LIMIT and (
            shape not in BUDGETED or per_endpoint <= MAX_PER_ENDPOINT
        )
        ok = ok and within
        added = Counter(counts[args.fleet])
        added.subtract(counts[1])
        print(
            f"\n[{shape}] resources: 1 endpoint {one}, {args.fleet} endpoints {fleet} "
            f"(limit {RESOURCE_LIMIT}); per extra endpoint {per_endpoint:.2f} "
            f"(budget {MAX_PER_ENDPOINT if shape in BUDGETED else 'none'}) "
            f"{'OK' if within else 'OVER BUDGET'}"
        )
        print("  added by the fleet: " + ", ".join(f"{k} +{v}" for k, v in added.items() if v))
        print(
            f"  synth time (median): 1 endpoint {t_one:.2f} s, {args.fleet} endpoints "
            f"{t_fleet:.2f} s, ratio {t_fleet / t_one:.1f}x"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
