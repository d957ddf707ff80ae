"""Helpers for the infrastructure tests: build stacks, read the synthesized definition."""

from __future__ import annotations

import json
import re
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template

from rightsizing_constructs import EndpointRightsizing, LatencySlo, RightsizingEngine
from tools.cfn import ACCOUNT, REGION, resolve_tokens

PACKAGE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/fraud-scoring/3"


def stack() -> cdk.Stack:
    """A stack in a fixed account and region, so ARNs resolve to comparable strings."""
    return cdk.Stack(cdk.App(), "Test", env=cdk.Environment(account=ACCOUNT, region=REGION))


#: Settings that belong to the engine: ``rightsizing()`` creates one with them when given.
ENGINE_SETTINGS = (
    "job_role",
    "topic",
    "event_bus",
    "ledger_table",
    "poll_interval",
    "max_concurrent_jobs",
    "queue_timeout",
)


def rightsizing(scope: cdk.Stack | None = None, **overrides: Any) -> EndpointRightsizing:
    """An EndpointRightsizing with minimal valid settings, overridden as given.

    Engine settings among the overrides go to a ``RightsizingEngine`` made for it; otherwise
    the stack's default engine is used.
    """
    scope = scope or stack()
    engine_settings = {k: overrides.pop(k) for k in ENGINE_SETTINGS if k in overrides}
    if engine_settings:
        overrides["engine"] = RightsizingEngine(scope, "RightsizingEngine", **engine_settings)
    settings: dict[str, Any] = {
        "endpoint_name": "fraud-scoring",
        "model_package_version_arn": PACKAGE_ARN,
        "slo": LatencySlo.p99(cdk.Duration.millis(300)),
        "peak_requests_per_minute": 3240,
    }
    settings.update(overrides)
    construct_id = settings.pop("construct_id", "Rightsizing")
    return EndpointRightsizing(scope, construct_id, **settings)


def definition(template: Template, workflow: str = "recommend") -> dict[str, Any]:
    """The ``recommend`` or ``apply`` state machine's definition, tokens resolved."""
    [machine] = [
        m
        for logical_id, m in template.find_resources("AWS::StepFunctions::StateMachine").items()
        if ("Apply" in logical_id) == (workflow == "apply")
    ]
    resources = template.to_json()["Resources"]
    return json.loads(resolve_tokens(machine["Properties"]["DefinitionString"], resources))


def statements_of(template: Template, role_logical_id_prefix: str) -> list[dict[str, Any]]:
    """Every policy statement attached to roles whose logical ID starts with the prefix."""
    statements = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        roles = [r["Ref"] for r in policy["Properties"]["Roles"]]
        if any(r.startswith(role_logical_id_prefix) for r in roles):
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    resources = template.to_json()["Resources"]
    return [resolve_tokens(s, resources) for s in statements]


def as_list(value: Any) -> list[Any]:
    """IAM fields hold one value or a list of them."""
    return value if isinstance(value, list) else [value]


def endpoint_input(template: Template, endpoint_name: str = "fraud-scoring") -> dict[str, Any]:
    """What the endpoint's trigger rule gives the Recommend workflow, tokens resolved and the
    event's fields (placeholders) as null: ``{"settings", "apply_settings", "trigger"}``."""
    resources = template.to_json()["Resources"]
    for rule in template.find_resources("AWS::Events::Rule").values():
        for target in rule["Properties"].get("Targets", []):
            if "InputTransformer" not in target:
                continue
            text = resolve_tokens(target["InputTransformer"]["InputTemplate"], resources)
            document = read_input_template(text)
            if document.get("settings", {}).get("endpoint_name") == endpoint_name:
                return document
    raise AssertionError(f"no rule carries the settings of {endpoint_name}")


def read_input_template(template: str) -> dict[str, Any]:
    """A rule target's ``InputTemplate`` as JSON, its placeholders (the event's fields, which
    stand outside quotes) read as null."""
    return dict(json.loads(re.sub(r"<[a-zA-Z0-9.\-]+>", "null", template)))
