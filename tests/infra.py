"""Helpers for the infrastructure tests: build stacks, read the synthesized definition."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template
from rightsizing_runtime.registry import substitute

from rightsizing_constructs import EndpointRightsizing, LatencySlo, RightsizingEngine
from rightsizing_constructs.registry import REGISTRY_FILES
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
    parsed: dict[str, Any] = json.loads(
        resolve_tokens(machine["Properties"]["DefinitionString"], resources)
    )
    return parsed


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


def registry(template: dict[str, Any], resolve: Any = None) -> list[dict[str, Any]]:
    """Every registry entry the stack's engine deploys (``settings``, ``apply_settings``,
    ``triggers``), its placeholders filled with the Route function's ``REGISTRY_VALUES``,
    resolved by ``resolve`` (default: :func:`resolve_tokens` on the template)."""
    resources = template["Resources"]
    resolve = resolve or (lambda value: resolve_tokens(value, resources))
    [(layer_id, layer)] = [
        (k, r) for k, r in resources.items() if r["Type"] == "AWS::Lambda::LayerVersion"
    ]
    path = REGISTRY_FILES[layer["Properties"]["Content"]["S3Key"].removesuffix(".zip")]
    [route] = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
        and {"Ref": layer_id} in r["Properties"].get("Layers", [])
    ]
    values = resolve(route["Environment"]["Variables"]["REGISTRY_VALUES"])
    document = substitute(json.loads(path.read_text()), json.loads(values))
    return list(document["endpoints"])


def endpoint_input(template: Template, endpoint_name: str = "fraud-scoring") -> dict[str, Any]:
    """The endpoint's registry entry as the Route step hands it to a run: ``{"settings",
    "apply_settings", "triggers"}``, deploy-time values resolved."""
    for entry in registry(dict(template.to_json())):
        if entry["settings"]["endpoint_name"] == endpoint_name:
            return entry
    raise AssertionError(f"the registry holds no settings of {endpoint_name}")
