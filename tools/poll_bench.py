"""Polling benchmark: how late a run sees its IR job end, and how many state transitions it pays.

``make poll-bench`` runs it. It synthesizes, in this process, a stack with three endpoints on
the default engine (``poll_interval`` 5 minutes): a Default job (expected to take 45 minutes,
timeout 2 hours), an Advanced job with ``job_duration`` 2 hours (timeout 3 hours) and one with
4 hours (timeout 5 hours). Then it *executes* the synthesized Recommend definition with each
endpoint's settings document, as Step Functions would on the happy path (Route says run, every
Lambda succeeds at once, ``DescribeJob`` says ``IN_PROGRESS`` until the simulated
``CompletionTime`` and ``COMPLETED`` from then on), for completion times every 10 seconds over
a spread (Default 20 to 120 minutes, Advanced 1 hour to the timeout), and prints per endpoint:

- **lag**: when the run's DescribeJob first saw ``COMPLETED``, minus the completion time;
- **transitions**: every state the execution entered, start to ``Done``: what Step Functions
  bills for a Standard workflow ("Step Functions counts a state transition each time a step of
  your workflow is executed ... including retries", AWS Step Functions pricing);

against the same figures for the definition and settings synthesized before this change
(``tools/poll_bench_baseline.json``, from commit 4343d54: a fixed 5-minute interval), with the
same interpreter. Tasks take no time here (a real Describe takes a fraction of a second, the
Lambda steps a few seconds before the job starts, which moves nothing measured here).

The exit status is non-zero unless, for jobs ending within a minute of their expected duration
(issue #14), lag is at most 60 s and transitions at most 100 (45-minute Default job) and 200
(2-hour Advanced job).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template

from rightsizing_constructs import RecommenderJob
from tests.infra import definition, endpoint_input, rightsizing, stack

BASELINE = Path(__file__).with_name("poll_bench_baseline.json")
MINUTE = 60
STEP_SECONDS = 10


@dataclass(frozen=True)
class Scenario:
    """One endpoint of the benchmark stack and the completion times it is measured at."""

    endpoint_name: str
    label: str
    #: When a job of this kind is expected to end: the issue's bounds apply around it.
    expected_seconds: int
    #: The spread of completion times, from and to (seconds after StartJob).
    spread: tuple[int, int]
    #: The issue's bound on transitions for a job ending at its expected time (None: none).
    max_transitions: int | None


SCENARIOS = (
    Scenario(
        "default-job", "Default (45 min expected)", 45 * MINUTE, (20 * MINUTE, 120 * MINUTE), 100
    ),
    Scenario(
        "advanced-2h", "Advanced, job_duration 2 h", 120 * MINUTE, (60 * MINUTE, 180 * MINUTE), 200
    ),
    Scenario(
        "advanced-4h", "Advanced, job_duration 4 h", 240 * MINUTE, (60 * MINUTE, 300 * MINUTE), None
    ),
)
#: The issue's bound on lag around the expected duration.
MAX_LAG_SECONDS = 60


def synthesized() -> dict[str, Any]:
    """The current code's Recommend definition and the three endpoints' settings documents."""
    scope = stack()
    rightsizing(scope, construct_id="Default", endpoint_name="default-job")
    for hours in (2, 4):
        rightsizing(
            scope,
            construct_id=f"Advanced{hours}h",
            endpoint_name=f"advanced-{hours}h",
            job=RecommenderJob.advanced(
                instance_types=["ml.c5.xlarge"], job_duration=cdk.Duration.hours(hours)
            ),
        )
    template = Template.from_stack(scope)
    return {
        "definition": definition(template),
        "settings": {
            s.endpoint_name: endpoint_input(template, s.endpoint_name)["settings"]
            for s in SCENARIOS
        },
    }


# -- A small interpreter for the states the happy path enters -------------------------------


def _get(document: Any, path: str) -> Any:
    if path == "$":
        return document
    value = document
    for key in path.removeprefix("$.").split("."):
        value = value[key]
    return value


def _set(document: dict[str, Any], path: str | None, value: Any) -> dict[str, Any]:
    if path is None:  # ResultPath null: the result is discarded
        return document
    if path == "$":
        return value  # type: ignore[no-any-return]
    keys = path.removeprefix("$.").split(".")
    target = document
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = value
    return document


_MATH_ADD = re.compile(r"States\.MathAdd\((\$[\w.]*), (-?\d+)\)")


def _parameters(template: Mapping[str, Any], document: Any) -> dict[str, Any]:
    """A Pass state's Parameters: plain values, paths and the one intrinsic the loop uses."""
    result: dict[str, Any] = {}
    for key, value in template.items():
        if not key.endswith(".$"):
            result[key] = value
            continue
        add = _MATH_ADD.fullmatch(value)
        if add:
            result[key[:-2]] = _get(document, add.group(1)) + int(add.group(2))
        elif value.startswith("$"):
            result[key[:-2]] = _get(document, value)
        else:
            raise ValueError(f"the benchmark cannot evaluate {value!r}")
    return result


def _holds(rule: Mapping[str, Any], document: Any) -> bool:
    if "And" in rule:
        return all(_holds(r, document) for r in rule["And"])
    if "Or" in rule:
        return any(_holds(r, document) for r in rule["Or"])
    if "Not" in rule:
        return not _holds(rule["Not"], document)
    if "IsPresent" in rule:
        try:
            _get(document, rule["Variable"])
        except (KeyError, TypeError):
            return rule["IsPresent"] is False
        return rule["IsPresent"] is True
    value = _get(document, rule["Variable"])
    for operator, compare in (
        ("StringEquals", lambda a, b: a == b),
        ("BooleanEquals", lambda a, b: a is b),
        ("NumericGreaterThanEquals", lambda a, b: a >= b),
    ):
        if operator in rule:
            return bool(compare(value, rule[operator]))
        if f"{operator}Path" in rule:
            return bool(compare(value, _get(document, rule[f"{operator}Path"])))
    raise ValueError(f"the benchmark cannot evaluate the Choice rule {rule}")


@dataclass(frozen=True)
class Run:
    """What one simulated execution did."""

    #: When a DescribeJob first saw the job ended (None: the run timed the job out).
    seen_at: int | None
    transitions: int
    polls: int
    end_state: str


def execute(definition: Mapping[str, Any], settings: Mapping[str, Any], completion: int) -> Run:
    """Run ``definition`` for one endpoint whose IR job ends ``completion`` s after StartJob."""
    states = definition["States"]
    results: dict[str, Callable[[Any], Any]] = {
        "Route": lambda _: {
            "route": {"action": "run"},
            "settings": json.loads(json.dumps(settings)),
            "trigger": {"kind": "manual"},
        },
        "Prepare": lambda document: document["settings"],
        "StartJob": lambda _: {"job_name": "rightsizing-bench", "job_arn": "arn"},
        "SelectRecommendation": lambda _: {"action": "apply", "endpoint_name": "e"},
    }
    clock, transitions, polls, seen_at = 0, 0, 0, None
    document: Any = {}
    name = definition["StartAt"]
    while True:
        state = states[name]
        transitions += 1
        kind = state["Type"]
        if kind in ("Succeed", "Fail"):
            return Run(seen_at, transitions, polls, name)
        if kind == "Task":
            if name == "DescribeJob":
                polls += 1
                ended = clock >= completion
                if ended and seen_at is None:
                    seen_at = clock
                result: Any = {"status": "COMPLETED" if ended else "IN_PROGRESS"}
            else:
                result = results[name](document) if name in results else {}
            document = _set(document, state.get("ResultPath", "$"), result)
        elif kind == "Pass":
            if "Parameters" in state:
                result = _parameters(state["Parameters"], document)
            else:
                result = state.get("Result", document)
            document = _set(document, state.get("ResultPath", "$"), result)
        elif kind == "Wait":
            seconds = (
                state["Seconds"] if "Seconds" in state else _get(document, state["SecondsPath"])
            )
            if not isinstance(seconds, int) or seconds < 0:
                raise ValueError(f"{name} waits {seconds!r}: Step Functions wants an integer >= 0")
            clock += seconds
        elif kind == "Choice":
            name = next(
                (r["Next"] for r in state["Choices"] if _holds(r, document)), state.get("Default")
            )
            continue
        else:
            raise ValueError(f"the benchmark does not run {kind} states ({name})")
        if state.get("End"):
            return Run(seen_at, transitions, polls, name)
        name = state["Next"]


# -- The figures ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """Lag and transitions of one definition over completion times."""

    lags: list[int]
    transitions: list[int]
    timed_out: int

    @classmethod
    def of(cls, runs: Iterable[tuple[int, Run]]) -> Figures:
        """The figures of ``(completion time, run)`` pairs."""
        lags, transitions, timed_out = [], [], 0
        for completion, run in runs:
            if run.seen_at is None:
                timed_out += 1
                continue
            lags.append(run.seen_at - completion)
            transitions.append(run.transitions)
        return cls(lags, transitions, timed_out)

    def row(self) -> str:
        """Worst and median lag and transitions, as a table row."""
        if not self.lags:
            return f"{'-':>9} {'-':>9} {'-':>7} {'-':>7}  {self.timed_out} timed out"
        note = f"  ({self.timed_out} timed out)" if self.timed_out else ""
        return (
            f"{_clock(max(self.lags)):>9} {_clock(int(statistics.median(self.lags))):>9} "
            f"{max(self.transitions):>7} {int(statistics.median(self.transitions)):>7}{note}"
        )


def _clock(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


def measure(
    definition: Mapping[str, Any], settings: Mapping[str, Any], completions: Iterable[int]
) -> Figures:
    """Lag and transitions of ``definition`` for jobs ending at each of ``completions``."""
    return Figures.of((t, execute(definition, settings, t)) for t in completions)


def _check(scenario: Scenario, figures: Figures) -> list[str]:
    """The issue's bounds for a job that ends within a minute of its expected duration."""
    failures = []
    if figures.timed_out or max(figures.lags) > MAX_LAG_SECONDS:
        failures.append(f"{scenario.label}: lag over {MAX_LAG_SECONDS} s")
    bound = scenario.max_transitions
    if bound is not None and max(figures.transitions) > bound:
        failures.append(f"{scenario.label}: more than {bound} transitions")
    return failures


def main(argv: list[str] | None = None) -> int:
    """Print the figures before and after; non-zero when a bound of issue #14 is crossed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    old = json.loads(BASELINE.read_text())
    new = synthesized()
    failures: list[str] = []
    print(
        "lag: first DescribeJob that sees COMPLETED minus CompletionTime (m:ss); transitions: "
        "states entered per execution, Route to Done\n"
    )
    header = f"  {'':36} {'lag max':>9} {'median':>9} {'trans max':>7} {'median':>7}"
    for scenario in SCENARIOS:
        start, end = scenario.spread
        spread = range(start, end + 1, STEP_SECONDS)
        expected = scenario.expected_seconds
        # Every second within a minute of the expected end: the worst case of the bounds.
        around = range(expected - MINUTE, expected + MINUTE + 1)
        settings = new["settings"][scenario.endpoint_name]
        print(
            f"{scenario.label}: first poll after {_clock(settings['first_poll_seconds'])}, then "
            f"every {new['definition']['States']['WaitBetweenPolls']['Seconds']} s, "
            f"{settings['max_polls']} polls at most (before: every 5 min, "
            f"{old['settings'][scenario.endpoint_name]['max_polls']} at most)"
        )
        print(header)
        for completions, where in (
            (spread, f"{start // 60}-{end // 60} min"),
            (around, f"{expected // 60} min +- 1 min"),
        ):
            for label, version in (("before", old), ("after", new)):
                figures = measure(
                    version["definition"], version["settings"][scenario.endpoint_name], completions
                )
                print(f"  {label + ', ended at ' + where:36} {figures.row()}")
                if version is new and completions is around:
                    failures.extend(_check(scenario, figures))
        print()
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
