"""The library's own CloudWatch metrics, written as Embedded Metric Format (EMF) log lines.

A handler prints one JSON line per fact; CloudWatch Logs extracts the metrics from the
function's log group. No API call, no client, no dependency, no ``cloudwatch:PutMetricData``
permission; and a metric never fails a run: a line the specification would reject is logged as
a warning instead (:func:`emit`).

Format ("Specification: Embedded metric format", CloudWatch User Guide,
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
the root object holds ``_aws`` (``Timestamp`` in milliseconds since the epoch and a
``CloudWatchMetrics`` array of directives, each a ``Namespace``, ``Dimensions``: an array of
dimension sets, and ``Metrics``: names and units) and, as its own members, every dimension
value and metric value the directives refer to. Limits the renderer checks: at most 100
metrics per directive, at most 30 dimension keys per dimension set ("A DimensionSet MAY be
empty": the fleet totals below; older revisions of the page said 9 keys, and no set here has
more than 3), dimension values are strings of at most 1,024 characters; the whole line is one
log event (a few hundred bytes here, far under CloudWatch Logs' event size). In Lambda, printing
the line to stdout is all it takes ("Using the embedded metric format with Lambda", CloudWatch
User Guide: CloudWatch Logs extracts metrics from any log event that follows the
specification). Units are CloudWatch's ``StandardUnit`` names; CloudWatch has no
currency unit, so costs are ``None`` (in IR's ``CostPerHour`` currency, US dollars).

Every metric name, unit, dimension sets and meaning is in :data:`METRICS`: the one source the
handlers emit from, the README's "Metrics" table is checked against, and the construct's
``metric_*`` helpers name (``rightsizing_constructs.observability``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from .apply import monthly_savings
from .decision import HOURS_PER_MONTH

logger = logging.getLogger(__name__)

#: The CloudWatch namespace of every metric the library emits.
NAMESPACE = "Rightsizing"

#: Dimension names (CloudWatch's own words for the SageMaker ones: ``AWS/SageMaker`` uses them).
ENDPOINT_NAME = "EndpointName"
VARIANT_NAME = "VariantName"
OUTCOME = "Outcome"
CLASSIFICATION = "Classification"

#: EMF limits ("Specification: Embedded metric format", MetricDirective object).
MAX_METRICS_PER_DIRECTIVE = 100
MAX_DIMENSIONS_PER_SET = 30
MAX_DIMENSION_VALUE_LENGTH = 1024

#: The dimension sets of a per-run metric: one per endpoint variant, and one with no dimension
#: at all, so the fleet's total is a single metric (no SEARCH, no sum over hundreds of series).
PER_ENDPOINT: tuple[tuple[str, ...], ...] = ((), (ENDPOINT_NAME, VARIANT_NAME))
#: Runs are counted per outcome: for the fleet, and for each endpoint variant.
PER_OUTCOME: tuple[tuple[str, ...], ...] = ((OUTCOME,), (ENDPOINT_NAME, VARIANT_NAME, OUTCOME))
#: Audit findings are counted per classification, for the fleet.
PER_CLASSIFICATION: tuple[tuple[str, ...], ...] = ((CLASSIFICATION,),)


@dataclass(frozen=True, kw_only=True)
class MetricDefinition:
    """One metric the library emits: its name, unit, dimension sets and meaning."""

    name: str
    #: A CloudWatch ``StandardUnit`` name.
    unit: str
    dimension_sets: tuple[tuple[str, ...], ...]
    #: Which handler emits it, and when.
    emitted_by: str
    meaning: str


RUNS = MetricDefinition(
    name="Runs",
    unit="Count",
    dimension_sets=PER_OUTCOME,
    emitted_by="Select",
    meaning="1 per decided run; `Outcome` is the recommendation's action: `apply`, "
    "`no-change`, `reject` or `pending`",
)
JOB_REUSED = MetricDefinition(
    name="JobReused",
    unit="Count",
    dimension_sets=PER_ENDPOINT,
    emitted_by="Select",
    meaning="1 per decided run that reused a stored load test instead of running one, else 0",
)
MONTHLY_COST_BEFORE = MetricDefinition(
    name="EstimatedMonthlyCostBefore",
    unit="None",
    dimension_sets=PER_ENDPOINT,
    emitted_by="Select",
    meaning="the current configuration's cost per hour x 730, when IR measured its instance type",
)
MONTHLY_COST_AFTER = MetricDefinition(
    name="EstimatedMonthlyCostAfter",
    unit="None",
    dimension_sets=PER_ENDPOINT,
    emitted_by="Select",
    meaning="the chosen configuration's cost at peak per hour x 730 (actions `apply`, "
    "`no-change`, `pending`)",
)
MONTHLY_SAVING = MetricDefinition(
    name="EstimatedMonthlySaving",
    unit="None",
    dimension_sets=PER_ENDPOINT,
    emitted_by="Select",
    meaning="before minus after, per month, of a recommendation with action `apply` whose "
    "both costs are known (negative: the change costs more, to meet the SLO)",
)
LOAD_TEST_COST = MetricDefinition(
    name="LoadTestCost",
    unit="None",
    dimension_sets=PER_ENDPOINT,
    emitted_by="Select",
    meaning="estimated cost of the run's new load test: each benchmarked candidate's "
    "`CostPerHour` x its benchmark's duration (`InvocationStartTime` to `InvocationEndTime`); "
    "left out when the job was reused or IR did not report a candidate's cost or window",
)
APPLIED_CHANGES = MetricDefinition(
    name="AppliedChanges",
    unit="Count",
    dimension_sets=PER_ENDPOINT,
    emitted_by="Apply (Record)",
    meaning="1 per apply run whose new configuration the endpoint serves (outcome `applied`)",
)
APPLIED_MONTHLY_SAVING = MetricDefinition(
    name="AppliedMonthlySaving",
    unit="None",
    dimension_sets=PER_ENDPOINT,
    emitted_by="Apply (Record)",
    meaning="the estimated monthly saving of an applied change, when both costs are known",
)
AUDIT_FINDINGS = MetricDefinition(
    name="AuditFindings",
    unit="Count",
    dimension_sets=PER_CLASSIFICATION,
    emitted_by="UtilizationAudit",
    meaning="findings of one audit by `Classification` (`Underprovisioned`, "
    "`Overprovisioned`, `Idle`, `Optimized`, `InsufficientData`, and Compute Optimizer's)",
)

#: Every metric the runtime emits, in the README's order.
METRICS: tuple[MetricDefinition, ...] = (
    RUNS,
    JOB_REUSED,
    MONTHLY_COST_BEFORE,
    MONTHLY_COST_AFTER,
    MONTHLY_SAVING,
    LOAD_TEST_COST,
    APPLIED_CHANGES,
    APPLIED_MONTHLY_SAVING,
    AUDIT_FINDINGS,
)


class InvalidMetricError(ValueError):
    """A line the EMF specification would reject (too many metrics or dimensions, a bad value)."""


def render(
    values: Mapping[MetricDefinition, float | int],
    dimensions: Mapping[str, str],
    *,
    timestamp_ms: int | None = None,
) -> str:
    """One EMF line: ``values`` of metrics, with ``dimensions`` as the root's members.

    Metrics of the same dimension sets share a directive. Every dimension a set names must be
    in ``dimensions`` (EMF: "the values ... MUST also be members on the root-node").
    """
    directives: dict[tuple[tuple[str, ...], ...], list[MetricDefinition]] = {}
    for definition in values:
        directives.setdefault(definition.dimension_sets, []).append(definition)
    for sets, definitions in directives.items():
        if len(definitions) > MAX_METRICS_PER_DIRECTIVE:
            raise InvalidMetricError(f"{len(definitions)} metrics in one directive (at most 100)")
        for dimension_set in sets:
            if len(dimension_set) > MAX_DIMENSIONS_PER_SET:
                raise InvalidMetricError(f"{len(dimension_set)} dimensions in a set (at most 30)")
            missing = [d for d in dimension_set if not dimensions.get(d)]
            if missing:
                raise InvalidMetricError(f"dimension values missing or empty: {missing}")
    too_long = [k for k, v in dimensions.items() if len(v) > MAX_DIMENSION_VALUE_LENGTH]
    if too_long:
        raise InvalidMetricError(f"dimension values over 1,024 characters: {too_long}")
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [list(s) for s in sets],
                    "Metrics": [{"Name": d.name, "Unit": d.unit} for d in definitions],
                }
                for sets, definitions in directives.items()
            ],
        },
        **{key: str(value) for key, value in dimensions.items()},
    }
    for definition, value in values.items():
        document[definition.name] = _number(value)
    return json.dumps(document, separators=(",", ":"))


def emit(
    values: Mapping[MetricDefinition, float | int | None], dimensions: Mapping[str, str]
) -> None:
    """Print the EMF line of the known ``values`` (None: not known, left out) to stdout.

    Lambda sends stdout to the function's log group, where CloudWatch extracts the metrics.
    """
    known = {definition: value for definition, value in values.items() if value is not None}
    if not known:
        return
    try:
        line = render(known, dimensions)
    except InvalidMetricError as error:
        # The run's outcome matters more than its metric: say so, and carry on.
        logger.warning("metrics not written (%s): %s", ", ".join(d.name for d in known), error)
        return
    print(line, flush=True)


def _number(value: float | int) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidMetricError(f"metric values are numbers, not {value!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidMetricError("metric values are finite numbers")
    return value


# -- What Select measures -------------------------------------------------------------------------


def per_month(cost_per_hour: float | int | None) -> float | None:
    """An hourly cost x 730 hours (AWS pricing's month), rounded to the cent; None stays None."""
    if cost_per_hour is None:
        return None
    return float((Decimal(str(cost_per_hour)) * HOURS_PER_MONTH).quantize(Decimal("0.01")))


def run_values(detail: Mapping[str, Any], job: Mapping[str, Any]) -> dict[MetricDefinition, Any]:
    """The values a decided run emits, from the recommendation ``detail`` and the job description.

    A pending recommendation's saving is not counted: nothing is applied before the endpoint
    serves its version (it is counted when its own run decides ``apply``).
    """
    current = detail.get("current") or {}
    before_per_hour = current.get("estimated_cost_per_hour")
    after_per_hour = detail.get("estimated_cost_per_hour")
    before, after = per_month(before_per_hour), per_month(after_per_hour)
    # The same saving the Apply workflow records and emits once applied (apply.py).
    saving = (
        monthly_savings(before_per_hour, after_per_hour) if detail["action"] == "apply" else None
    )
    reused = bool(detail.get("job_reused"))
    return {
        RUNS: 1,
        JOB_REUSED: 1 if reused else 0,
        MONTHLY_COST_BEFORE: before,
        MONTHLY_COST_AFTER: after,
        MONTHLY_SAVING: saving,
        LOAD_TEST_COST: None if reused else load_test_cost(job),
    }


def load_test_cost(job: Mapping[str, Any]) -> float | None:
    """Estimated cost of a job's benchmarks: ``CostPerHour`` x benchmark hours, summed.

    From ``DescribeInferenceRecommendationsJob``: each recommendation's ``Metrics.CostPerHour``
    ("the expected cost per hour for the endpoint") and its benchmark's ``InvocationStartTime``
    and ``InvocationEndTime`` (botocore's model of ``InferenceRecommendation``). The job's
    ``JobDurationInSeconds`` is a maximum, not what ran, so it is not used. The estimate leaves
    out the test endpoints' setup and teardown, which are billed too: a lower bound. None when
    any recommendation lacks its cost or its window (no number beats a wrong one).
    """
    total = Decimal(0)
    recommendations: Sequence[Mapping[str, Any]] = job.get("InferenceRecommendations") or []
    if not recommendations:
        return None
    for recommendation in recommendations:
        cost = (recommendation.get("Metrics") or {}).get("CostPerHour")
        start = recommendation.get("InvocationStartTime")
        end = recommendation.get("InvocationEndTime")
        if cost is None or not isinstance(start, datetime) or not isinstance(end, datetime):
            return None
        if not Decimal(str(cost)).is_finite():
            return None
        hours = Decimal(str(max((end - start).total_seconds(), 0))) / Decimal(3600)
        total += Decimal(str(cost)) * hours
    return float(total.quantize(Decimal("0.0001")))
