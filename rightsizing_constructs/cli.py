"""The command line: ``python -m rightsizing_constructs plan ...`` and ``... run ...``.

``run`` prints the one-line AWS CLI command that starts a rightsizing run of an endpoint (the
manual trigger: a "Rightsizing Run Requested" event, which the endpoint's rule turns into a run
with its settings). It prints; it never calls AWS.

``plan`` makes the workflow's decision from files: the JSON that
``aws sagemaker describe-inference-recommendations-job`` prints (and, optionally,
``describe-endpoint-config`` for what the endpoint runs now). It prints the recommendation event's
``detail`` on stdout and exits 0 on any decision; on invalid input it prints one line to stderr
and exits 2. It runs the very decision code the Lambda functions run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any, NoReturn

from ._runtime import import_runtime

EXIT_INVALID_INPUT = 2


class InvalidInput(Exception):
    """Input the command cannot decide on; reported as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise InvalidInput(message)


def _number(text: str) -> Decimal:
    """A number exactly as written (``0.1`` is one tenth, not the nearest binary float)."""
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not number.is_finite():
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m rightsizing_constructs", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    plan = commands.add_parser(
        "plan",
        help="decide on a recommendation job's results, as the workflow would",
        description="Print the recommendation event's detail for a completed IR job.",
    )
    plan.add_argument(
        "--job-description",
        required=True,
        type=Path,
        metavar="FILE",
        help="output of aws sagemaker describe-inference-recommendations-job",
    )
    plan.add_argument(
        "--peak-rpm",
        required=True,
        type=_number,
        metavar="N",
        help="expected peak requests per minute to the variant",
    )
    plan.add_argument("--slo-percentile", required=True, choices=["P95", "P99"])
    plan.add_argument(
        "--slo-ms",
        required=True,
        type=_number,
        metavar="N",
        help="latency objective in milliseconds at that percentile",
    )
    plan.add_argument(
        "--target-utilization",
        type=_number,
        default=Fraction(1, 2),
        metavar="U",
        help="fraction of measured capacity to plan for, in (0, 1] (default 0.5)",
    )
    plan.add_argument("--min-instances", type=int, default=1, metavar="N", help="default 1")
    plan.add_argument("--max-instances", type=int, default=10, metavar="N", help="default 10")
    plan.add_argument(
        "--max-cost-per-hour",
        type=_number,
        metavar="X",
        help="most dollars per hour at peak (default: no cap)",
    )
    plan.add_argument(
        "--allowed-instance-types",
        metavar="T1,T2",
        help="exact types or families, comma-separated (default: all)",
    )
    plan.add_argument(
        "--current-endpoint-config",
        type=Path,
        metavar="FILE",
        help="output of aws sagemaker describe-endpoint-config (the current one)",
    )
    plan.add_argument("--variant-name", default="AllTraffic", help="default AllTraffic")
    plan.add_argument("--endpoint-name", help="endpoint the detail names (default: none)")
    run = commands.add_parser(
        "run",
        help="print the command that starts a rightsizing run of an endpoint",
        description="Print the aws events put-events command of the manual trigger.",
    )
    run.add_argument("--endpoint-name", required=True)
    run.add_argument("--variant-name", default="AllTraffic", help="default AllTraffic")
    run.add_argument(
        "--event-bus", default="default", help="the engine's event bus (default: default)"
    )
    return parser


def run_command(arguments: argparse.Namespace) -> str:
    """The ``aws events put-events`` command that requests a run of the endpoint."""
    triggers = import_runtime("triggers")
    detail = {"endpoint_name": arguments.endpoint_name, "variant_name": arguments.variant_name}
    entry = {
        "Source": triggers.EVENT_SOURCE,
        "DetailType": triggers.RUN_REQUESTED,
        "Detail": json.dumps(detail, separators=(",", ":")),
        "EventBusName": arguments.event_bus,
    }
    return "aws events put-events --entries " + shlex.quote(
        json.dumps([entry], separators=(",", ":"))
    )


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidInput(f"{what} file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"cannot read {what} file {path}: {error}") from None
    except json.JSONDecodeError as error:
        raise InvalidInput(f"{what} file {path} is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise InvalidInput(f"{what} file {path} must hold a JSON object")
    return document


def plan(arguments: argparse.Namespace) -> dict[str, Any]:
    """The recommendation detail for the parsed ``plan`` arguments."""
    decision = import_runtime("decision")
    recommendation = import_runtime("recommendation")
    allowed = tuple(
        t.strip() for t in (arguments.allowed_instance_types or "").split(",") if t.strip()
    )
    for flag, value in (("--peak-rpm", arguments.peak_rpm), ("--slo-ms", arguments.slo_ms)):
        if value <= 0:
            raise InvalidInput(f"{flag} must be > 0, got {value}")
    if arguments.max_cost_per_hour is not None and arguments.max_cost_per_hour <= 0:
        raise InvalidInput(f"--max-cost-per-hour must be > 0, got {arguments.max_cost_per_hour}")
    try:
        decision_input = decision.DecisionInput(
            peak_requests_per_minute=Fraction(arguments.peak_rpm),
            target_utilization=Fraction(arguments.target_utilization),
            slo=decision.Slo(percentile=arguments.slo_percentile, max_latency_ms=arguments.slo_ms),
            guardrails=decision.Guardrails(
                min_instances=arguments.min_instances,
                max_instances=arguments.max_instances,
                allowed_instance_types=allowed,
                max_cost_per_hour=arguments.max_cost_per_hour,
            ),
        )
    except ValueError as error:
        raise InvalidInput(str(error)) from None
    job_description = _read_json(arguments.job_description, "job description")
    endpoint_config = (
        None
        if arguments.current_endpoint_config is None
        else _read_json(arguments.current_endpoint_config, "endpoint config")
    )
    try:
        return dict(
            recommendation.recommend(
                candidates=decision.candidates_from_job(job_description),
                job_name=str(job_description.get("JobName", "")),
                decision_input=decision_input,
                endpoint_name=arguments.endpoint_name,
                variant_name=arguments.variant_name,
                endpoint_config=endpoint_config,
            )
        )
    except (decision.InvalidJobResultError, decision.VariantNotFoundError) as error:
        raise InvalidInput(str(error)) from None
    except (KeyError, TypeError, AttributeError, ArithmeticError) as error:
        raise InvalidInput(f"malformed job description: {error!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    try:
        arguments = _parser().parse_args(argv)
        if arguments.command == "run":
            print(run_command(arguments))
            return 0
        detail = plan(arguments)
    except InvalidInput as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    json.dump(detail, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
