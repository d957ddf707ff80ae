"""``plan`` on an AI recommendation job: the inference-component decision (issue #17).

When the ``--job-description`` file is what ``aws sagemaker describe-ai-recommendation-job``
prints (it has ``AIRecommendationJobName``), ``plan`` decides with
``rightsizing_runtime.component_decision`` instead of the endpoint decision, with the flags
below (and the guardrails flags of the endpoint decision where they apply: instances, allowed
types, cost cap, hysteresis). The files are checked against botocore's model, as for IR's.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from . import _rules
from ._aws_output import InvalidFile, read_json, read_output
from ._runtime import import_runtime

#: The component's SLO: its metric (the job's documented latency metrics, see
#: component_decision.LATENCY_NAMES) at a percentile of the job's ``Stat``.
SLO_METRICS = ("ttft", "itl")


class ComponentInputError(ValueError):
    """A flag or file ``plan`` cannot decide a component on; one line, exit 2."""


def is_ai_job(path: Path) -> bool:
    """Whether ``path`` holds a DescribeAIRecommendationJob output (not IR's)."""
    try:
        return "AIRecommendationJobName" in read_json(path, "job description")
    except InvalidFile:
        return False  # the IR path reports it, as before


def add_flags(plan: argparse.ArgumentParser, number: Callable[[str], Decimal]) -> None:
    """The flags of an inference component's decision."""
    group = plan.add_argument_group(
        "inference components (a describe-ai-recommendation-job output)"
    )
    group.add_argument(
        "--peak-concurrent-requests",
        type=number,
        metavar="N",
        help="expected peak concurrent requests to the component (required)",
    )
    group.add_argument(
        "--workload-concurrency",
        type=number,
        metavar="N",
        help="concurrent requests the job's workload drove (its aiperf concurrency; required)",
    )
    group.add_argument("--slo-metric", choices=SLO_METRICS, default="ttft", help="default ttft")
    group.add_argument(
        "--slo-stat",
        default="p90",
        metavar="pN",
        help="percentile of the component's SLO, as the job's Stat (default p90); --slo-ms "
        "is its objective",
    )
    group.add_argument("--min-copies", type=number, default=Decimal(1), metavar="N")
    group.add_argument(
        "--hourly-prices",
        metavar="JSON",
        help='US$ per instance-hour by type, {"ml.g5.2xlarge": 1.515}, for types the job '
        "does not price",
    )
    group.add_argument("--inference-component-name", help="the component the detail names")
    group.add_argument(
        "--current-inference-component",
        type=Path,
        metavar="FILE",
        help="output of aws sagemaker describe-inference-component (with "
        "--current-endpoint-config: what runs now)",
    )
    group.add_argument(
        "--current-endpoint",
        type=Path,
        metavar="FILE",
        help="output of aws sagemaker describe-endpoint (its running instance count)",
    )


def plan(
    arguments: argparse.Namespace,
    guardrails: Any,
    problems: list[str],
    flag: Callable[[str], str],
) -> dict[str, Any]:
    """The component's recommendation detail for the parsed ``plan`` arguments.

    ``guardrails`` and their ``problems``: the endpoint decision's flags where they apply.
    """
    decision = import_runtime("decision")
    component = import_runtime("component_decision")
    settings = component.ComponentSettings(
        endpoint_name=arguments.endpoint_name or "",
        variant_name=arguments.variant_name,
        inference_component_name=arguments.inference_component_name or "",
        decision_input=_input(arguments, guardrails, problems, flag),
    )
    description = read_output(
        arguments.job_description, "job description", "DescribeAIRecommendationJob"
    )
    files = {
        "inference_component": (
            arguments.current_inference_component,
            "DescribeInferenceComponent",
        ),
        "endpoint": (arguments.current_endpoint, "DescribeEndpoint"),
        "endpoint_config": (arguments.current_endpoint_config, "DescribeEndpointConfig"),
    }
    current = {
        key: None if path is None else read_output(path, key.replace("_", " "), operation)
        for key, (path, operation) in files.items()
    }
    try:
        return dict(
            component.recommend_component(description=description, settings=settings, **current)
        )
    except (decision.InvalidJobResultError, decision.VariantNotFoundError) as error:
        raise ComponentInputError(str(error)) from None
    except (KeyError, TypeError, AttributeError, ArithmeticError, ValueError) as error:
        raise ComponentInputError(
            f"cannot decide on {arguments.job_description}: {type(error).__name__}: {error}"
        ) from None


def _input(
    arguments: argparse.Namespace, guardrails: Any, problems: list[str], flag: Callable[[str], str]
) -> Any:
    """The component decision's input, checked with the constructs' rules where they apply."""
    component = import_runtime("component_decision")
    problems = list(problems)
    for setting in ("peak_concurrent_requests", "workload_concurrency"):
        value = getattr(arguments, setting)
        if value is None:
            problems.append(f"the following arguments are required: {flag(setting)}")
        elif not value > 0 or (setting == "workload_concurrency" and value != int(value)):
            problems.append(f"{flag(setting)} must be a whole number > 0, got {value}")
    if arguments.slo_ms is None:
        problems.append("the following arguments are required: --slo-ms")
    else:
        problems += _rules.latency_ms_problems("max_latency", _plain(arguments.slo_ms), flag)
    if arguments.min_copies < 1 or arguments.min_copies != int(arguments.min_copies):
        problems.append(f"--min-copies must be a whole number >= 1, got {arguments.min_copies}")
    prices = _prices(arguments.hourly_prices, problems)
    try:
        slo = component.ComponentSlo(
            metric=arguments.slo_metric,
            percentile=arguments.slo_stat,
            max_latency_ms=arguments.slo_ms or Decimal(1),
        )
    except ValueError:
        problems.append(f"--slo-stat must be a percentile like p90, got {arguments.slo_stat!r}")
    if problems:
        raise ComponentInputError("; ".join(problems))
    return component.ComponentInput(
        peak_concurrent_requests=Fraction(arguments.peak_concurrent_requests),
        target_utilization=Fraction(arguments.target_utilization),
        workload_concurrency=int(arguments.workload_concurrency),
        slo=slo,
        guardrails=guardrails,
        min_copies=int(arguments.min_copies),
        hourly_prices=prices,
    )


def _plain(number: Decimal) -> int | float:
    return int(number) if number == number.to_integral_value() else float(number)


def _prices(text: str | None, problems: list[str]) -> dict[str, Decimal]:
    if text is None:
        return {}
    try:
        prices = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except json.JSONDecodeError as error:
        problems.append(f"--hourly-prices is not JSON: {error}")
        return {}
    if not isinstance(prices, dict) or not all(
        isinstance(p, Decimal) and p.is_finite() and p >= 0 for p in prices.values()
    ):
        problems.append("--hourly-prices must be a JSON object of prices >= 0 by instance type")
        return {}
    return {str(t): p for t, p in prices.items()}
