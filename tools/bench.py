"""Fleet benchmark: what 1, 200, 1,000 and 3,000 endpoints cost in every AWS limit, and synth time.

``make bench`` runs it. Each fleet is ``tests/apps/fleet.py``'s worst case (every trigger, a
custom bus, the longest names AWS allows, endpoints granted by tag), synthesized in this
process. For each stack (nested stacks included) it prints the figures each limit is about,
as deployed (``tools/fidelity.py`` resolves the tokens at their longest):

- resources (CloudFormation: 500) and template bytes (1,000,000 via S3);
- rules per event bus, over the whole app (EventBridge: 300 per bus and Region);
- the largest rule target input (8,192) and event pattern (2,048);
- the largest policies: a role's inline policies together (10,240), one managed policy
  (6,144), managed policies on one role (10);
- the largest Lambda environment (4,096 bytes) and state machine definition (1,048,576);
- the registry's size (the Route function's layer: 250 MB unzipped with the function).

Then the synth time of each fleet against one endpoint's, medians of ``--repeat`` runs
alternated in one process so that all see the same machine load. Every limit is checked by
``tools/fidelity.py``'s ``check_limits``; the exit status is non-zero when any fleet measured
crosses one (the unit suite checks 1,000 endpoints, ``tests/test_fleet_limits.py``; this is
where 3,000 are held to the limits).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk

from tests.apps.fleet import fleet_stack
from tools import fidelity

SIZES = (1, 200, 1000, 3000)
#: Fleets up to this size must be within every limit (issue #13): the largest measured.
MUST_FIT = 3000
LAYER_UNZIPPED_MAX = 262_144_000  # Lambda quotas: function and layers, unzipped


@dataclass
class Figures:
    """One stack's figures."""

    stack: str
    resources: int
    template_bytes: int
    rule_input: int
    event_pattern: int
    role_inline: int
    managed_policy: int
    managed_per_role: int
    environment: int
    definition: int
    alarms: int


def synthesize(endpoints: int, access: str, outdir: Path) -> float:
    """Synthesize the fleet into ``outdir``; the seconds it took (construct and synth)."""
    started = time.perf_counter()
    app = cdk.App(outdir=str(outdir))
    fleet_stack(app, endpoints, access)
    app.synth()
    return time.perf_counter() - started


def figures(stack: fidelity.Stack) -> Figures:
    """The stack's figures, as deployed."""
    inputs, patterns = [0], [0]
    for _, rule in stack.of_type("AWS::Events::Rule"):
        if "EventPattern" in rule:
            patterns.append(len(json.dumps(rule["EventPattern"], separators=(",", ":"))))
        for target in rule.get("Targets", []):
            template = target.get("InputTransformer", {}).get("InputTemplate", "")
            inputs.append(max(len(target.get("Input", "")), len(template)))
    inline: Counter[str] = Counter()
    attached: Counter[str] = Counter()
    managed = [0]
    for _, policy in stack.of_type("AWS::IAM::Policy"):
        for role in policy.get("Roles", []):
            inline[role] += fidelity.non_whitespace(policy["PolicyDocument"])
    for _, policy in stack.of_type("AWS::IAM::ManagedPolicy"):
        managed.append(fidelity.non_whitespace(policy["PolicyDocument"]))
        for role in policy.get("Roles", []):
            attached[role] += 1
    for logical_id, role in stack.of_type("AWS::IAM::Role"):
        attached[stack.names.name(logical_id)] += len(role.get("ManagedPolicyArns", []))
    environments = [
        sum(len(k.encode()) + len(str(v).encode()) for k, v in variables.items())
        for _, function in stack.of_type("AWS::Lambda::Function")
        for variables in [function.get("Environment", {}).get("Variables", {})]
    ]
    definitions = [
        len(machine.get("DefinitionString", ""))
        for _, machine in stack.of_type("AWS::StepFunctions::StateMachine")
    ]
    return Figures(
        stack=stack.name,
        resources=len(stack.template["Resources"]),
        template_bytes=stack.template_bytes,
        rule_input=max(inputs),
        event_pattern=max(patterns),
        role_inline=max(inline.values(), default=0),
        managed_policy=max(managed),
        managed_per_role=max(attached.values(), default=0),
        environment=max(environments, default=0),
        definition=max(definitions, default=0),
        alarms=sum(1 for _ in stack.of_type("AWS::CloudWatch::Alarm")),
    )


def rules_per_bus(stacks: list[fidelity.Stack]) -> Counter[str]:
    """Rules on each bus, over the app."""
    counts: Counter[str] = Counter()
    for stack in stacks:
        for _, rule in stack.of_type("AWS::Events::Rule"):
            counts[str(rule.get("EventBusName", "default")).split("/")[-1][:12]] += 1
    return counts


def registry_bytes(outdir: Path) -> int:
    """The registry file's size, as the layer unpacks it."""
    return sum(path.stat().st_size for path in outdir.glob("asset.*/rightsizing/registry.json"))


LIMITS = Figures(
    stack="limit",
    resources=fidelity.RESOURCES_MAX,
    template_bytes=fidelity.TEMPLATE_BYTES_MAX,
    rule_input=fidelity.TARGET_INPUT_MAX,
    event_pattern=fidelity.EVENT_PATTERN_MAX,
    role_inline=fidelity.ROLE_INLINE_MAX,
    managed_policy=fidelity.MANAGED_POLICY_MAX,
    managed_per_role=fidelity.MANAGED_POLICIES_PER_ROLE,
    environment=fidelity.LAMBDA_ENVIRONMENT_MAX,
    definition=fidelity.DEFINITION_MAX,
    alarms=0,
)
COLUMNS = (
    ("resources", "resources"),
    ("template_bytes", "template B"),
    ("rule_input", "rule input"),
    ("event_pattern", "pattern"),
    ("role_inline", "role inline"),
    ("managed_policy", "managed pol"),
    ("managed_per_role", "managed/role"),
    ("environment", "lambda env"),
    ("definition", "definition"),
    ("alarms", "alarms"),
)


def row(label: str, values: Figures) -> str:
    """One line of the table."""
    return " ".join([f"{label:<34}"] + [f"{getattr(values, f):>12,}" for f, _ in COLUMNS])


def main() -> int:
    """Synthesize every size, print the table and the time ratios; 0 when all fit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--repeat", type=int, default=1, help="synths per size, for the times")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    synthesize(1, "tagged", Path(tempfile.mkdtemp()))  # warm-up: starts the jsii runtime
    times: dict[int, list[float]] = {size: [] for size in sizes}
    ok = True
    print("fleet benchmark: tests/apps/fleet.py (every trigger, custom bus, longest names,")
    print("endpoints granted by tag); figures per stack, as deployed\n")
    print(" ".join([f"{'endpoints / stack':<34}"] + [f"{title:>12}" for _, title in COLUMNS]))
    print(row("AWS limit", LIMITS))
    for repeat in range(args.repeat):
        for size in sizes:
            outdir = Path(tempfile.mkdtemp(prefix=f"bench-{size}-"))
            times[size].append(synthesize(size, "tagged", outdir))
            if repeat:
                continue
            stacks = fidelity.load(outdir)
            findings = [f for s in stacks for f in fidelity.check_limits(s, stacks)]
            for number, stack in enumerate(stacks):
                print(
                    row(f"{size} / {'nested ' + str(number) if number else 'main'}", figures(stack))
                )
            buses = ", ".join(f"{bus}: {count}" for bus, count in rules_per_bus(stacks).items())
            print(
                f"{'':<34} rules per bus {buses} (limit {fidelity.RULES_PER_BUS}); registry "
                f"{registry_bytes(outdir):,} B (layer limit {LAYER_UNZIPPED_MAX:,} B); "
                f"{'within every limit' if not findings else f'{len(findings)} OVER A LIMIT'}"
            )
            for finding in findings:
                print(f"{'':<34} {finding.where}: {finding.message}")
            ok = ok and (not findings or size > MUST_FIT)
    one = statistics.median(times[1]) if 1 in times else None
    print("\nsynth time (median of", args.repeat, "runs, construct + synth):")
    for size in sizes:
        median = statistics.median(times[size])
        ratio = f", {median / one:.1f}x one endpoint's" if one else ""
        print(f"  {size:>5} endpoints: {median:6.1f} s{ratio}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
