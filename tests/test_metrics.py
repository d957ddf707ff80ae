"""The runtime's EMF metrics: the renderer keeps the specification's limits, the README lists them.

The EMF lines each handler prints are asserted in the handler tests (Select in
``test_handlers.py``, Record in ``test_apply_steps.py``, the audit in ``test_audit.py``).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rightsizing_runtime import metrics
from rightsizing_runtime.metrics import (
    JOB_REUSED,
    LOAD_TEST_COST,
    METRICS,
    MONTHLY_SAVING,
    RUNS,
    InvalidMetricError,
    MetricDefinition,
    load_test_cost,
    render,
    run_values,
)

README = Path(__file__).resolve().parents[1] / "README.md"
#: CloudWatch's StandardUnit values the library uses (botocore's model of PutMetricData).
STANDARD_UNITS = {"Count", "None"}


def readme_metrics_table() -> dict[str, list[str]]:
    """README's "Metrics" table: name -> its cells (unit, dimensions, emitted by, meaning)."""
    text = README.read_text()
    section = text[text.index("\n## Metrics\n") :]
    # The table ends where the section or its first subsection does.
    section = re.split(r"\n##+ ", section[1:], maxsplit=1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 4:
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_the_readme_lists_every_metric_the_runtime_emits_and_no_other() -> None:
    table = readme_metrics_table()
    assert list(table) == [m.name for m in METRICS]
    for definition in METRICS:
        unit, dimensions, *_ = table[definition.name]
        assert unit == f"`{definition.unit}`", definition.name
        for dimension_set in definition.dimension_sets:
            names = ", ".join(f"`{d}`" for d in dimension_set) or "none (fleet)"
            assert names in dimensions, (definition.name, names)


def test_names_and_units_are_cloudwatchs() -> None:
    assert len({m.name for m in METRICS}) == len(METRICS)
    assert {m.unit for m in METRICS} <= STANDARD_UNITS
    # CloudWatch metric names: 1 to 255 characters (botocore: MetricDatum.MetricName).
    assert all(0 < len(m.name) <= 255 and m.name.isascii() for m in METRICS)


def test_a_line_is_one_emf_document() -> None:
    line = render(
        {RUNS: 1, JOB_REUSED: 0},
        {"EndpointName": "fraud-scoring", "VariantName": "AllTraffic", "Outcome": "apply"},
        timestamp_ms=1_700_000_000_000,
    )
    assert "\n" not in line
    document = json.loads(line)
    assert document == {
        "_aws": {
            "Timestamp": 1_700_000_000_000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "Rightsizing",
                    "Dimensions": [["Outcome"], ["EndpointName", "VariantName", "Outcome"]],
                    "Metrics": [{"Name": "Runs", "Unit": "Count"}],
                },
                {
                    "Namespace": "Rightsizing",
                    "Dimensions": [[], ["EndpointName", "VariantName"]],
                    "Metrics": [{"Name": "JobReused", "Unit": "Count"}],
                },
            ],
        },
        "EndpointName": "fraud-scoring",
        "VariantName": "AllTraffic",
        "Outcome": "apply",
        "Runs": 1,
        "JobReused": 0,
    }


def _definition(name: str, dimension_sets: tuple[tuple[str, ...], ...]) -> MetricDefinition:
    return MetricDefinition(
        name=name, unit="Count", dimension_sets=dimension_sets, emitted_by="t", meaning="t"
    )


def test_the_specifications_limits_are_kept() -> None:
    many = {_definition(f"M{i}", ((),)): 1 for i in range(101)}
    with pytest.raises(InvalidMetricError, match="101 metrics in one directive"):
        render(many, {})
    render(dict(list(many.items())[:100]), {})
    wide = tuple(f"D{i}" for i in range(31))
    with pytest.raises(InvalidMetricError, match="31 dimensions"):
        render({_definition("Wide", (wide,)): 1}, {d: "x" for d in wide})
    with pytest.raises(InvalidMetricError, match="over 1,024 characters"):
        render({JOB_REUSED: 1}, {"EndpointName": "e" * 1025, "VariantName": "v"})
    with pytest.raises(InvalidMetricError, match="missing or empty"):
        render({RUNS: 1}, {"EndpointName": "e", "VariantName": "v", "Outcome": ""})
    for bad in (float("nan"), float("inf"), True):
        with pytest.raises(InvalidMetricError):
            render({JOB_REUSED: bad}, {"EndpointName": "e", "VariantName": "v"})


def test_unknown_values_print_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    metrics.emit({MONTHLY_SAVING: None}, {"EndpointName": "e", "VariantName": "v"})
    assert capsys.readouterr().out == ""


def test_a_bad_metric_is_a_warning_never_a_failed_run(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    metrics.emit({MONTHLY_SAVING: float("nan")}, {"EndpointName": "e", "VariantName": "v"})
    assert capsys.readouterr().out == ""
    assert "metrics not written (EstimatedMonthlySaving)" in caplog.text


def _detail(**overrides: Any) -> dict[str, Any]:
    detail = {
        "action": "apply",
        "job_reused": False,
        "estimated_cost_per_hour": 1.0,
        "current": {"estimated_cost_per_hour": 2.5},
    }
    return {**detail, **overrides}


def _job(*windows: tuple[float | None, int]) -> dict[str, Any]:
    start = datetime(2026, 11, 1, 10, tzinfo=UTC)
    return {
        "InferenceRecommendations": [
            {
                "Metrics": {} if cost is None else {"CostPerHour": cost},
                "InvocationStartTime": start,
                "InvocationEndTime": start.replace(minute=minutes),
            }
            for cost, minutes in windows
        ]
    }


def test_saving_is_counted_only_for_a_run_that_recommends_applying() -> None:
    job = _job((0.204, 30), (0.5, 45))
    assert run_values(_detail(), job)[MONTHLY_SAVING] == 1095.0  # (2.5 - 1.0) x 730
    assert run_values(_detail(action="pending"), job)[MONTHLY_SAVING] is None
    assert run_values(_detail(action="no-change"), job)[MONTHLY_SAVING] is None
    assert run_values(_detail(current=None), job)[MONTHLY_SAVING] is None


def test_load_test_cost_sums_each_benchmark_and_is_absent_when_unknown() -> None:
    # 0.204 for 30 minutes plus 0.5 for 45 minutes.
    assert load_test_cost(_job((0.204, 30), (0.5, 45))) == pytest.approx(0.477)
    assert load_test_cost(_job((0.204, 30), (None, 45))) is None
    assert load_test_cost(_job((float("nan"), 30))) is None
    assert load_test_cost({"InferenceRecommendations": [{"Metrics": {"CostPerHour": 1}}]}) is None
    assert load_test_cost({}) is None
    # A reused job ran no new load test this run.
    assert run_values(_detail(job_reused=True), _job((0.204, 30)))[LOAD_TEST_COST] is None
    assert run_values(_detail(job_reused=True), _job((0.204, 30)))[JOB_REUSED] == 1


def test_the_readme_says_what_each_metric_means() -> None:
    table = readme_metrics_table()
    for definition in METRICS:
        *_, meaning = table[definition.name]
        assert re.sub(r"\s+", " ", definition.meaning) in meaning, definition.name
