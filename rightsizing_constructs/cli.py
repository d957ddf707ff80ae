"""The command line: ``python -m rightsizing_constructs plan|run|approve|reject ...``.

``approve`` and ``reject`` (:mod:`.approval_cli`) answer an Apply run that waits for approval;
they are the only commands that call AWS.

``run`` prints the one-line AWS CLI command that starts a rightsizing run of an endpoint (the
manual trigger: a "Rightsizing Run Requested" event, which the engine's rule and its Route step
turn into a run with the endpoint's settings). It prints; it never calls AWS.

``plan`` makes the workflow's decision from files: the JSON that
``aws sagemaker describe-inference-recommendations-job`` prints (and, optionally,
``describe-endpoint-config`` for what the endpoint runs now), with the settings the construct
takes, under the same names. It prints the recommendation event's ``detail`` on stdout, exactly
as the workflow publishes it, and a one-line summary with units on stderr, and exits 0 on any
decision. It runs the very decision code the Lambda functions run.

Both commands check their input with the constructs' own rules (:mod:`._rules`) and ``plan``
its files against botocore's model (:mod:`._aws_output`); anything invalid is one line on
stderr and exit status 2. Neither loads the CDK (no Node.js process).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any, NoReturn

from . import _plan_component, _rules, approval_cli
from ._aws_output import InvalidFile, read_output
from ._plan_summary import summary
from ._runtime import import_runtime

EXIT_INVALID_INPUT = 2
#: A reader that stops reading (``plan ... | head``) ends the command as SIGPIPE would.
EXIT_BROKEN_PIPE = 141
#: Flags whose setting has another name in the constructs.
_FLAG_OF = {"max_latency": "--slo-ms", "peak_requests_per_minute": "--peak-requests-per-minute"}


class InvalidInput(Exception):
    """Input the command cannot decide on; reported as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) and exit 2.

    Flags are taken whole (no abbreviations): a prefix that works today would change meaning,
    or stop working, when a flag is added.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(allow_abbrev=False, **options)

    def error(self, message: str) -> NoReturn:
        raise InvalidInput(message)


def _flag(setting: str) -> str:
    """The command-line flag of a construct setting: ``min_instances`` is ``--min-instances``."""
    return _FLAG_OF.get(setting, "--" + setting.replace("_", "-"))


def _number(text: str) -> Decimal:
    """A number exactly as written (``0.1`` is one tenth, not the nearest binary float)."""
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not number.is_finite():
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return number


def _as_setting(number: Decimal | None) -> int | float | None:
    """The value as a construct setting takes it: whole numbers as int, the rest as float."""
    if number is None:
        return None
    return int(number) if number == number.to_integral_value() else float(number)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m rightsizing_constructs", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_plan(commands)
    _add_report(commands)
    _add_metrics_request(commands)
    approval_cli.add_commands(commands)
    run = commands.add_parser(
        "run",
        help="print the command that starts a rightsizing run of an endpoint",
        description="Print the aws events put-events command of the manual trigger.",
    )
    run.add_argument("--endpoint-name", required=True, help="the endpoint (as in the construct)")
    run.add_argument("--variant-name", default="AllTraffic", help="default AllTraffic")
    run.add_argument(
        "--inference-component-name",
        help="an InferenceComponentRightsizing's component (its run, not the variant's)",
    )
    run.add_argument(
        "--event-bus", default="default", help="the engine's event bus (default: default)"
    )
    run.add_argument(
        "--load-test",
        action="store_true",
        help="load-test even if a stored job measured the same model (force_load_test)",
    )
    return parser


def _add_plan(commands: Any) -> None:
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
        help="output of aws sagemaker describe-inference-recommendations-job (an endpoint) or "
        "describe-ai-recommendation-job (an inference component)",
    )
    _add_settings(plan.add_argument, required=True)
    _plan_component.add_flags(plan, _number)


#: The settings flags' defaults (``report`` fills them in only when it decides: see _add_report).
_DEFAULTS = {
    "target_utilization": Decimal("0.5"),
    "min_instances": Decimal(1),
    "max_instances": Decimal(10),
    "min_saving_percent": Decimal(0),
    "min_saving_per_month": Decimal(0),
    "variant_name": "AllTraffic",
}


def _add_settings(option: Any, *, required: bool) -> None:
    """The decision's settings flags, shared by ``plan`` and ``report``: one parser, one rule."""

    def default(setting: str) -> Any:  # report: None, to tell a flag given from a default
        return _DEFAULTS[setting] if required else None

    option(
        "--peak-requests-per-minute",
        type=_number,
        metavar="N",
        help="expected peak requests per minute to the variant (required)",
    )
    option("--peak-rpm", type=_number, metavar="N", help="deprecated name of the flag above")
    option("--slo-percentile", choices=_rules.LATENCY_PERCENTILES)
    option(
        "--slo-ms",
        type=_number,
        metavar="N",
        help="latency objective in whole milliseconds at that percentile",
    )
    option(
        "--target-utilization",
        type=_number,
        default=default("target_utilization"),
        metavar="U",
        help="fraction of measured capacity to plan for, in (0, 1] (default 0.5)",
    )
    option(
        "--min-instances",
        type=_number,
        default=default("min_instances"),
        metavar="N",
        help="default 1",
    )
    option(
        "--max-instances",
        type=_number,
        default=default("max_instances"),
        metavar="N",
        help="default 10",
    )
    option("--allowed-instance-types", metavar="T1,T2", help="types or families, comma-separated")
    option(
        "--max-cost-per-hour",
        type=_number,
        metavar="X",
        help="most dollars per hour at peak (default: no cap)",
    )
    option(
        "--min-saving-percent",
        type=_number,
        default=default("min_saving_percent"),
        metavar="P",
        help="hysteresis: the least saving, in percent, worth a change (default 0)",
    )
    option(
        "--min-saving-per-month",
        type=_number,
        default=default("min_saving_per_month"),
        metavar="X",
        help="hysteresis: the least saving, in dollars a month, worth a change (default 0)",
    )
    option(
        "--current-endpoint-config",
        type=Path,
        metavar="FILE",
        help="output of aws sagemaker describe-endpoint-config (the current one)",
    )
    option("--variant-name", default=default("variant_name"), help="default AllTraffic")
    option("--endpoint-name", help="endpoint the detail names (default: none)")
    option(
        "--metrics",
        type=Path,
        metavar="FILE",
        help="output of aws cloudwatch get-metric-data for the job's benchmarks (the request: "
        "the metrics-request command); without it the decision rests on IR's scalars",
    )


#: The settings flags' destinations (``report --detail`` takes none: they are in the detail).
_SETTINGS = (*_DEFAULTS, "peak_requests_per_minute", "peak_rpm", "slo_percentile", "slo_ms")
_SETTINGS += ("allowed_instance_types", "max_cost_per_hour", "current_endpoint_config")
_SETTINGS += ("endpoint_name", "metrics")


def _add_report(commands: Any) -> None:
    report = commands.add_parser(
        "report",
        help="render a decision as a self-contained HTML page (needs the [report] extra)",
        description="Write the decision report (HTML, optionally a PNG of its chart) for a "
        "job decided as plan decides, or for a recommendation detail.",
    )
    source = report.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--job-description", type=Path, metavar="FILE", help="decide on it, as plan does"
    )
    source.add_argument(
        "--detail",
        type=Path,
        metavar="FILE",
        help="a recommendation detail, the whole event, or a ledger record holding one",
    )
    source.add_argument(
        "--ledger", type=Path, metavar="FILE", help="the fleet: aws dynamodb query/scan output"
    )
    report.add_argument(
        "--output", type=Path, metavar="FILE", help="the HTML page (default: stdout)"
    )
    report.add_argument("--png", type=Path, metavar="FILE", help="also the chart as a PNG")
    _add_settings(report.add_argument, required=False)


def report_command(arguments: argparse.Namespace, warnings: list[str]) -> str | None:
    """Render the report; return the HTML for stdout, or None when it went to ``--output``."""
    from . import _report_command  # here: only the command that draws loads matplotlib

    given = [_flag(s) for s in _SETTINGS if getattr(arguments, s) is not None]
    if arguments.job_description is not None:
        _require_slo(arguments)
        for setting, value in _DEFAULTS.items():
            if getattr(arguments, setting) is None:
                setattr(arguments, setting, value)
    try:
        return _report_command.run(arguments, given, lambda: plan(arguments, warnings))
    except _report_command.CannotReport as error:
        raise InvalidInput(str(error)) from None


def _add_metrics_request(commands: Any) -> None:
    request = commands.add_parser(
        "metrics-request",
        help="print the GetMetricData request of a job's benchmark curves (for plan --metrics)",
        description="Print the --cli-input-json of aws cloudwatch get-metric-data for a job.",
    )
    request.add_argument("--job-description", required=True, type=Path, metavar="FILE")
    request.add_argument("--slo-percentile", required=True, choices=_rules.LATENCY_PERCENTILES)


def run_command(arguments: argparse.Namespace) -> str:
    """The ``aws events put-events`` command that requests a run of the endpoint."""
    problems = _rules.sagemaker_name_problems("endpoint_name", arguments.endpoint_name, _flag)
    problems += _rules.sagemaker_name_problems("variant_name", arguments.variant_name, _flag)
    problems += _rules.event_bus_name_problems("event_bus", arguments.event_bus, _flag)
    component = arguments.inference_component_name
    if component is not None:
        # An inference component's name follows the endpoint name's rule (SageMaker's pattern).
        problems += _rules.sagemaker_name_problems("inference_component_name", component, _flag)
    if problems:
        raise InvalidInput("; ".join(problems))
    triggers = import_runtime("triggers")
    detail: dict[str, Any] = {
        "endpoint_name": arguments.endpoint_name,
        "variant_name": arguments.variant_name,
    }
    if component is not None:
        # Route keys a component's run by endpoint and component (registry.target_of).
        detail["inference_component_name"] = component
    if arguments.load_test:
        detail["force_load_test"] = True
    entry = {
        "Source": triggers.EVENT_SOURCE,
        "DetailType": triggers.RUN_REQUESTED,
        "Detail": json.dumps(detail, separators=(",", ":")),
        "EventBusName": arguments.event_bus,
    }
    return "aws events put-events --entries " + shlex.quote(
        json.dumps([entry], separators=(",", ":"))
    )


def metrics_request(arguments: argparse.Namespace) -> str:
    """The ``--cli-input-json`` of the GetMetricData request the Select function would send.

    IR returns at most 10 recommendations (20 queries): one request, far inside its limits.
    """
    evidence = import_runtime("evidence")
    job = read_output(
        arguments.job_description, "job description", "DescribeInferenceRecommendationsJob"
    )
    try:
        benchmarks = evidence.benchmarks_from_job(job)
        if not benchmarks:
            raise InvalidInput(
                f"{arguments.job_description} names no benchmark endpoint and window "
                "(InvocationStartTime, InvocationEndTime)"
            )
        [request, *more] = evidence.metric_requests(benchmarks, arguments.slo_percentile)
    except ValueError as error:
        raise InvalidInput(f"cannot read {arguments.job_description}: {error}") from None
    if more:
        raise InvalidInput("the job's benchmarks need more than one GetMetricData request")
    return json.dumps(request, indent=2, default=lambda stamp: stamp.isoformat())


def _peak(arguments: argparse.Namespace, warnings: list[str]) -> Decimal:
    """The peak, from its flag or its deprecated name."""
    if arguments.peak_rpm is None:
        if arguments.peak_requests_per_minute is None:
            raise InvalidInput("the following arguments are required: --peak-requests-per-minute")
        peak: Decimal = arguments.peak_requests_per_minute
        return peak
    if arguments.peak_requests_per_minute is not None:
        raise InvalidInput("give --peak-requests-per-minute only (--peak-rpm is its old name)")
    warnings.append("warning: --peak-rpm is deprecated; use --peak-requests-per-minute")
    old: Decimal = arguments.peak_rpm
    return old


def _require_slo(arguments: argparse.Namespace) -> None:
    """The endpoint decision's SLO flags, as argparse would require them."""
    flags = {"--slo-percentile": arguments.slo_percentile, "--slo-ms": arguments.slo_ms}
    missing = [flag for flag, value in flags.items() if value is None]
    if missing:
        raise InvalidInput(f"the following arguments are required: {', '.join(missing)}")


def _decision_input(arguments: argparse.Namespace, warnings: list[str]) -> Any:
    """The decision's input from the ``plan`` flags, checked with the constructs' rules."""
    decision = import_runtime("decision")
    peak = _peak(arguments, warnings)
    problems = _rules.peak_problems(_as_setting(peak), _flag)
    problems += _rules.latency_ms_problems("max_latency", _as_setting(arguments.slo_ms), _flag)
    guardrails, more = _guardrails(arguments)
    if problems + more:
        raise InvalidInput("; ".join(problems + more))
    return decision.DecisionInput(
        peak_requests_per_minute=Fraction(peak),
        target_utilization=Fraction(arguments.target_utilization),
        slo=decision.Slo(percentile=arguments.slo_percentile, max_latency_ms=arguments.slo_ms),
        guardrails=guardrails,
    )


def _guardrails(arguments: argparse.Namespace) -> tuple[Any, list[str]]:
    """The guardrails (and names) of both decisions, and what the constructs' rules say."""
    decision = import_runtime("decision")
    allowed = tuple(
        t.strip() for t in (arguments.allowed_instance_types or "").split(",") if t.strip()
    )
    problems = _rules.target_utilization_problems(_as_setting(arguments.target_utilization), _flag)
    problems += _rules.guardrails_problems(
        min_instances=_as_setting(arguments.min_instances),
        max_instances=_as_setting(arguments.max_instances),
        allowed_instance_types=allowed,
        max_cost_per_hour=_as_setting(arguments.max_cost_per_hour),
        min_saving_percent=_as_setting(arguments.min_saving_percent),
        min_saving_per_month=_as_setting(arguments.min_saving_per_month),
        label=_flag,
    )
    for setting in ("endpoint_name", "variant_name"):
        value = getattr(arguments, setting)
        if value is not None:
            problems += _rules.sagemaker_name_problems(setting, value, _flag)
    guardrails = decision.Guardrails(
        min_instances=int(arguments.min_instances),
        max_instances=int(arguments.max_instances),
        allowed_instance_types=allowed,
        max_cost_per_hour=arguments.max_cost_per_hour,
        min_saving_percent=arguments.min_saving_percent,
        min_saving_per_month=arguments.min_saving_per_month,
    )
    return guardrails, problems


def plan(arguments: argparse.Namespace, warnings: list[str] | None = None) -> dict[str, Any]:
    """The recommendation detail for the parsed ``plan`` arguments."""
    if _plan_component.is_ai_job(arguments.job_description):
        if not hasattr(arguments, "peak_concurrent_requests"):  # report: no component flags
            raise InvalidInput(
                f"{arguments.job_description} is an AI recommendation job: plan decides it; "
                "report renders endpoint decisions only"
            )
        guardrails, problems = _guardrails(arguments)
        try:
            return _plan_component.plan(arguments, guardrails, problems, _flag)
        except _plan_component.ComponentInputError as error:
            raise InvalidInput(str(error)) from None
    _require_slo(arguments)
    decision = import_runtime("decision")
    recommendation = import_runtime("recommendation")
    settings = _decision_input(arguments, [] if warnings is None else warnings)
    job_description = read_output(
        arguments.job_description, "job description", "DescribeInferenceRecommendationsJob"
    )
    endpoint_config = (
        None
        if arguments.current_endpoint_config is None
        else read_output(
            arguments.current_endpoint_config, "endpoint config", "DescribeEndpointConfig"
        )
    )
    metrics = (
        None
        if arguments.metrics is None
        else read_output(arguments.metrics, "metrics", "GetMetricData", "cloudwatch")
    )
    evidence = import_runtime("evidence")
    try:
        return dict(
            recommendation.recommend(
                candidates=decision.candidates_from_job(job_description),
                job_name=str(job_description.get("JobName", "")),
                decision_input=settings,
                endpoint_name=arguments.endpoint_name,
                variant_name=arguments.variant_name,
                endpoint_config=endpoint_config,
                evidence=evidence.evidence_offline(
                    job_description, settings.slo, None if metrics is None else [metrics]
                ),
            )
        )
    except evidence.UnusableData as error:
        raise InvalidInput(f"{arguments.metrics}: {error}") from None
    except (decision.InvalidJobResultError, decision.VariantNotFoundError) as error:
        raise InvalidInput(str(error)) from None
    except (KeyError, TypeError, AttributeError, ArithmeticError, ValueError) as error:
        # Past botocore's model (read_output), nothing should get here; if it does, it is still
        # one line and exit 2, naming what failed.
        raise InvalidInput(
            f"cannot decide on {arguments.job_description}: {type(error).__name__}: {error}"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    warnings: list[str] = []
    output: str | None
    try:
        arguments = _parser().parse_args(argv)
        if arguments.command == "run":
            output, note = run_command(arguments), None
        elif arguments.command == "metrics-request":
            output, note = metrics_request(arguments), None
        elif arguments.command == "report":
            output, note = report_command(arguments, warnings), None
        elif arguments.command in ("approve", "reject"):
            output, note = approval_cli.answer(arguments), None
        else:
            detail = plan(arguments, warnings)
            output, note = json.dumps(detail, indent=2), summary(detail)
    except (InvalidInput, InvalidFile, approval_cli.AnswerError) as error:
        print(f"error: {error}", file=sys.stderr)  # one line: warnings wait for a good run
        return EXIT_INVALID_INPUT
    for warning in warnings:
        print(warning, file=sys.stderr)
    try:
        if output is not None:
            sys.stdout.write(output + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader closed the pipe (``| head``): stop quietly, and keep Python's own flush at
        # exit from failing on it too (Python docs, "Note on SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    if note is not None:
        print(note, file=sys.stderr)
    return 0
