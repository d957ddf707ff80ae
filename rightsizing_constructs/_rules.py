"""The rules a setting must meet, each in one place, with no CDK.

The constructs' settings types (``settings/``, ``endpoint.py``) and the command line
(``cli.py``) check values with these functions, so ``cdk synth`` and ``python -m
rightsizing_constructs plan`` accept and refuse the same values with the same words. Nothing
here imports the CDK: ``plan`` must start without Node.js. Values that are unresolved CDK
tokens are the caller's to skip (only the constructs see them).

Each function returns the problems it finds (an empty list when the value is good), naming the
setting through ``label``: the constructs pass the setting's own name (``min_instances``), the
command line its flag (``--min-instances``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import cache
from typing import Any

from ._runtime import import_runtime
from .instance_types import is_instance_type_or_family

#: How a caller names a setting in a problem: the setting itself, or a command-line flag.
Label = Callable[[str], str]

#: The percentiles an SLO can be expressed at (``LatencyPercentile``'s values; IR's
#: ``ModelLatencyThreshold.Percentile``).
LATENCY_PERCENTILES = ("P95", "P99")


def as_is(setting: str) -> str:
    """The default label: the setting's own name."""
    return setting


def is_number(value: Any) -> bool:
    """Whether ``value`` is an int or float (a bool is not a number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


@cache
def _name_rule(service: str, shape: str) -> tuple[re.Pattern[str], int]:
    """The pattern and maximum length botocore's model gives a name shape."""
    metadata = import_runtime("aws").service_model(service).shape_for(shape).metadata
    return re.compile(metadata["pattern"]), int(metadata["max"])


def is_sagemaker_name(value: Any, shape: str = "EndpointName") -> bool:
    """Whether ``value`` is a valid SageMaker name of that shape (botocore's pattern and length).

    ``EndpointName`` and ``VariantName``: 1-63 letters, digits and hyphens, starting and ending
    with a letter or digit.
    """
    pattern, longest = _name_rule("sagemaker", shape)
    return isinstance(value, str) and 0 < len(value) <= longest and bool(pattern.fullmatch(value))


def sagemaker_name_problems(setting: str, value: Any, label: Label = as_is) -> list[str]:
    """An endpoint or variant name as SageMaker accepts it."""
    if is_sagemaker_name(value, "VariantName" if setting == "variant_name" else "EndpointName"):
        return []
    return [
        f"{label(setting)} must be 1-63 letters, digits and hyphens, starting and ending with a "
        f"letter or digit (SageMaker's rule), got {value!r}"
    ]


def event_bus_name_problems(setting: str, value: Any, label: Label = as_is) -> list[str]:
    """An event bus name or ARN that ``PutEvents`` accepts (botocore's ``EventBusName``)."""
    shape = (
        import_runtime("aws")
        .service_model("events")
        .shape_for("PutEventsRequestEntry")
        .members["EventBusName"]
    )
    pattern, longest = re.compile(shape.metadata["pattern"]), int(shape.metadata["max"])
    if isinstance(value, str) and 0 < len(value) <= longest and pattern.fullmatch(value):
        return []
    return [
        f"{label(setting)} must be an event bus name (letters, digits, '.', '-', '_') or its "
        f"ARN, at most {longest} characters (PutEvents' rule), got {value!r}"
    ]


def peak_problems(value: Any, label: Label = as_is) -> list[str]:
    """Expected peak traffic: a number of requests per minute above 0."""
    if is_number(value) and value > 0:
        return []
    return [
        f"{label('peak_requests_per_minute')} must be a number > 0 (expected peak requests per "
        f"minute to the variant), got {value!r}"
    ]


def target_utilization_problems(value: Any, label: Label = as_is) -> list[str]:
    """The fraction of measured capacity to plan for, in (0, 1]."""
    if is_number(value) and 0 < value <= 1:
        return []
    return [
        f"{label('target_utilization')} must be in (0, 1] (0.5 plans for bursts of twice the "
        f"target), got {value!r}"
    ]


def latency_ms_problems(setting: str, millis: Any, label: Label = as_is) -> list[str]:
    """A latency in whole milliseconds above 0 (IR's thresholds are integers of milliseconds)."""
    if not is_number(millis) or millis <= 0:
        return [f"{label(setting)} must be more than 0 ms, got {millis!r} ms"]
    if millis != int(millis):
        return [
            f"{label(setting)} must be a whole number of milliseconds (IR takes latency "
            f"thresholds in whole ms), got {_plain(millis)} ms"
        ]
    return []


def guardrails_problems(
    *,
    min_instances: Any,
    max_instances: Any,
    allowed_instance_types: Sequence[Any],
    max_cost_per_hour: Any,
    min_saving_percent: Any,
    min_saving_per_month: Any,
    label: Label = as_is,
) -> list[str]:
    """Instance bounds, allowed types (botocore's instance types), cost cap and hysteresis."""
    problems = []
    for setting, value in (("min_instances", min_instances), ("max_instances", max_instances)):
        if not (isinstance(value, int) and value >= 1):
            problems.append(f"{label(setting)} must be a whole number >= 1, got {value!r}")
    both_whole = isinstance(min_instances, int) and isinstance(max_instances, int)
    if both_whole and min_instances > max_instances:
        problems.append(
            f"{label('min_instances')} ({min_instances}) must not exceed "
            f"{label('max_instances')} ({max_instances}); raise {label('max_instances')} "
            f"or lower {label('min_instances')}"
        )
    unknown = [
        name
        for name in allowed_instance_types
        if not (isinstance(name, str) and is_instance_type_or_family(name))
    ]
    if unknown:
        problems.append(
            f"{label('allowed_instance_types')} has {', '.join(map(repr, unknown))}, which "
            f"{'is' if len(unknown) == 1 else 'are'} neither a SageMaker real-time instance type "
            "(ml.c5.xlarge) nor a family of them (ml.c5)"
        )
    if max_cost_per_hour is not None and not (
        is_number(max_cost_per_hour) and max_cost_per_hour > 0
    ):
        problems.append(
            f"{label('max_cost_per_hour')} must be a positive number of dollars, "
            f"got {max_cost_per_hour!r}"
        )
    if not (is_number(min_saving_percent) and 0 <= min_saving_percent < 100):
        problems.append(
            f"{label('min_saving_percent')} must be a number in [0, 100), "
            f"got {min_saving_percent!r}"
        )
    if not (is_number(min_saving_per_month) and min_saving_per_month >= 0):
        problems.append(
            f"{label('min_saving_per_month')} must be a number of dollars >= 0, "
            f"got {min_saving_per_month!r}"
        )
    return problems


def _plain(number: int | float) -> str:
    """``150.5``, not ``150.5000000001`` or ``1.505E+2``."""
    return format(Decimal(str(number)).normalize(), "f")
