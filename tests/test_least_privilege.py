"""Least privilege, proven from the code: every role holds exactly what its code can call.

The actions are derived, not listed by hand:

- a Lambda function's role: the calls its handler module makes on its module-level boto3
  clients (read from the handler's source, named as IAM names them through botocore's service
  model), plus what the function's own configuration makes Lambda do with the role (logs,
  tracing, dead-letter queue, VPC) and the KMS use of an encrypted resource it writes;
- a state machine's role: the ``Resource`` of every Task state in its definition (optimized
  and AWS SDK integrations), plus logging and tracing as configured;
- a rule's role: ``states:StartExecution`` on each state machine its targets start.

Then each role must hold exactly that set: a call nobody granted fails, and so does a grant
nothing calls. (The IR job role is assumed by SageMaker, not by the library's code: its
permissions are IR's documented needs, reviewed in ``test_construct``.)
"""

from __future__ import annotations

import ast
import json
from collections import defaultdict
from typing import Any

import aws_cdk as cdk
import boto3
import botocore.session
import pytest
from aws_cdk.assertions import Template

from tests.apps.every_option import build
from tests.infra import as_list, resolve_tokens, rightsizing, stack
from tools.runtime_source import module_clients, module_tree

_SESSION = botocore.session.get_session()

# Optimized Step Functions integrations: the IAM action each one needs (Step Functions
# developer guide, "IAM policies for integrated services"), and the parameter naming its
# resource, when the grant can be checked against it.
_OPTIMIZED = {
    "arn:aws:states:::lambda:invoke": ("lambda:InvokeFunction", "FunctionName"),
    # ApplyMode.APPROVAL's WaitForApproval: the same permission (Step Functions Developer
    # Guide, "IAM policies for integrated services", Lambda).
    "arn:aws:states:::lambda:invoke.waitForTaskToken": ("lambda:InvokeFunction", "FunctionName"),
    "arn:aws:states:::sns:publish": ("sns:Publish", "TopicArn"),
    "arn:aws:states:::dynamodb:putItem": ("dynamodb:PutItem", None),
    "arn:aws:states:::events:putEvents": ("events:PutEvents", None),
    "arn:aws:states:::states:startExecution": ("states:StartExecution", "StateMachineArn"),
}
# A state machine with LoggingConfiguration delivers logs through these (Step Functions
# developer guide, "Logging using CloudWatch Logs": none has resource-level permissions).
_STATE_MACHINE_LOGGING = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
_STATE_MACHINE_TRACING = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
}
_FUNCTION_TRACING = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
_FUNCTION_LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
_FUNCTION_VPC = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}
# Requests that make AWS check more permissions of the caller (the service authorization
# reference's "dependent actions", and the services' guides where they say so).
_DEPENDENT = {
    # It passes RoleArn (the job role) to SageMaker.
    "sagemaker:CreateInferenceRecommendationsJob": {"iam:PassRole"},
    # With Tags, SageMaker authorizes AddTags on the new config too; with ExecutionRoleArn it
    # checks that the caller may pass the role (the Service Authorization Reference lists both
    # as CreateEndpointConfig's dependent actions).
    "sagemaker:CreateEndpointConfig": {"sagemaker:AddTags", "iam:PassRole"},
    # A config with a KmsKeyId: SageMaker creates a grant on the key as the caller (SageMaker
    # Developer Guide, "API Permissions: Actions, Permissions, and Resources Reference":
    # kms:CreateGrant for CreateEndpoint and UpdateEndpoint when the config has a KmsKeyId).
    "sagemaker:UpdateEndpoint": {"kms:CreateGrant"},
    # Application Auto Scaling creates its SageMaker service-linked role on first use, and
    # checks that the caller may change the variant's capacity itself.
    "application-autoscaling:RegisterScalableTarget": {
        "iam:CreateServiceLinkedRole",
        "sagemaker:UpdateEndpointWeightsAndCapacities",
        # The same check on an inference component's copies (issue 17).
        "sagemaker:UpdateInferenceComponentRuntimeConfig",
    },
    # Target tracking creates, reads and deletes its alarms as the caller.
    "application-autoscaling:PutScalingPolicy": {
        "cloudwatch:PutMetricAlarm",
        "cloudwatch:DescribeAlarms",
        "cloudwatch:DeleteAlarms",
    },
    "application-autoscaling:DeregisterScalableTarget": {"cloudwatch:DeleteAlarms"},
    # Compute Optimizer reads the instances it reports on as the caller.
    "compute-optimizer:GetEC2InstanceRecommendations": {"ec2:DescribeInstances"},
}
# IAM's service prefix, where it differs from the signing name in botocore's model.
_IAM_PREFIXES = {"monitoring": "cloudwatch", "tagging": "tag"}
# Calls a handler makes only with some settings: a role may lack them (never hold them unused).
# The audit finds its endpoints by name, by tags or by listing; Compute Optimizer (EC2 and idle
# endpoints) and inference components are optional.
# The Apply steps pass an execution role and use KMS keys only for endpoints that allow them.
_BY_SETTINGS = {
    "audit": {
        "sagemaker:ListEndpoints",
        "tag:GetResources",
        "compute-optimizer:GetEC2InstanceRecommendations",
        "ec2:DescribeInstances",
        "compute-optimizer:GetIdleRecommendations",
        "sagemaker:DescribeInferenceComponent",
    },
}
# Calls made only for endpoints with a setting, by the key it has in their rule's apply
# settings: required as soon as one endpoint of the stack has it, absent otherwise. The config's
# execution role is passed, and its keys used (DescribeKey resolves a key alias), only when the
# endpoint allows them (EndpointRightsizing execution_role=, kms_keys=).
_BY_ENDPOINT_SETTING = {
    "apply_steps": {
        "iam:PassRole": "execution_role_arn",
        "kms:CreateGrant": "kms_key_arns",
        "kms:DescribeKey": "kms_key_arns",
        # Granted per inference component (ApplyWorkflow.grant_inference_component): a stack
        # without one holds none of them (issue 17).
        "sagemaker:DescribeInferenceComponent": "inference_component_name",
        "sagemaker:UpdateInferenceComponent": "inference_component_name",
        "sagemaker:UpdateInferenceComponentRuntimeConfig": "inference_component_name",
    }
}
_KMS_USE = {"kms:Decrypt", "kms:GenerateDataKey"}


# -- What the code calls ---------------------------------------------------------------------


def handler_calls(module: str) -> set[str]:
    """The IAM actions of the AWS calls ``rightsizing_runtime.<module>`` makes.

    Module-level clients (STYLE.md 8: handlers create their clients at module level) are
    found by their assignment; every ``client.method(...)`` call in the module (and every
    ``client.get_paginator("method")``) is named with botocore's operation name and the
    service's IAM prefix.
    """
    clients = module_clients(module)
    actions: set[str] = set()
    for node in ast.walk(module_tree(module)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in clients
        ):
            service = clients[node.func.value.id]
            client = boto3.client(service, region_name="us-east-1")
            method = node.func.attr
            if method == "get_paginator":  # client.get_paginator("list_endpoints"): its calls
                [argument] = node.args
                assert isinstance(argument, ast.Constant), ast.dump(node)
                method = str(argument.value)
            operation = client.meta.method_to_api_mapping[method]
            signing_name = _SESSION.get_service_model(service).signing_name
            prefix = _IAM_PREFIXES.get(signing_name, signing_name)
            action = f"{prefix}:{operation}"
            actions |= {action} | _DEPENDENT.get(action, set())
    return actions


def task_resources(states: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(Resource, Parameters)`` of every Task state, Map iterations included."""
    found = []
    for state in states.values():
        if state["Type"] == "Task":
            found.append((state["Resource"], state.get("Parameters", {})))
        for nested in ("ItemProcessor", "Iterator"):
            if nested in state:
                found += task_resources(state[nested]["States"])
        for branch in state.get("Branches", []):
            found += task_resources(branch["States"])
    return found


def task_actions(resource: str, parameters: dict[str, Any]) -> tuple[str, str | None]:
    """The IAM action a Task's ``Resource`` needs, and the resource it acts on if known."""
    if resource in _OPTIMIZED:
        action, parameter = _OPTIMIZED[resource]
        return action, parameters.get(parameter) if parameter else None
    if resource.startswith("arn:aws:lambda:"):  # a function ARN as the Resource itself
        return "lambda:InvokeFunction", resource
    prefix = "arn:aws:states:::aws-sdk:"
    assert resource.startswith(prefix), f"unknown integration {resource}: add it to _OPTIMIZED"
    service, api = resource.removeprefix(prefix).split(":")
    return f"{service}:{api[0].upper()}{api[1:]}", None


# -- What the roles hold ---------------------------------------------------------------------


def granted(template: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Role logical ID -> every (action, resource) its policies allow, tokens resolved."""
    resources = template["Resources"]
    grants: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for resource in resources.values():
        if resource["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            continue
        for role in resource["Properties"].get("Roles", []):
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Allow"
                for action in as_list(statement["Action"]):
                    for arn in as_list(statement["Resource"]):
                        grants[role["Ref"]].append((action, resolve_tokens(arn, resources)))
    return grants


def expected(template: dict[str, Any]) -> dict[str, dict[str, set[str]]]:
    """Role logical ID -> action -> the resources it must cover (empty: not checkable)."""
    resources = template["Resources"]
    ledger_key = _ledger_key(resources)
    needs: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for properties in _properties(resources, "AWS::Lambda::Function"):
        role = properties["Role"]["Fn::GetAtt"][0]
        module = properties["Handler"].removeprefix("rightsizing_runtime.").split(".")[0]
        actions = handler_calls(module) | _FUNCTION_LOGS
        if properties.get("TracingConfig", {}).get("Mode") == "Active":
            actions |= _FUNCTION_TRACING
        if "DeadLetterConfig" in properties:
            actions.add("sqs:SendMessage")
        if "VpcConfig" in properties:
            actions |= _FUNCTION_VPC
        if ledger_key and any(a.startswith("dynamodb:") for a in actions):
            actions |= _KMS_USE
        for action in actions:
            needs[role].setdefault(action, set())
    for properties in _properties(resources, "AWS::StepFunctions::StateMachine"):
        role = properties["RoleArn"]["Fn::GetAtt"][0]
        definition = json.loads(resolve_tokens(properties["DefinitionString"], resources))
        for resource, parameters in task_resources(definition["States"]):
            action, arn = task_actions(resource, parameters)
            needs[role][action].update({arn} if isinstance(arn, str) else set())
            encrypted = (action == "sns:Publish" and _topic_key(resources)) or (
                action == "dynamodb:PutItem" and ledger_key
            )
            for kms_action in _KMS_USE if encrypted else ():
                needs[role].setdefault(kms_action, set())
        if "LoggingConfiguration" in properties:
            for action in _STATE_MACHINE_LOGGING:
                needs[role].setdefault(action, set())
        if properties.get("TracingConfiguration", {}).get("Enabled"):
            for action in _STATE_MACHINE_TRACING:
                needs[role].setdefault(action, set())
    for properties in _properties(resources, "AWS::Events::Rule"):
        for target in properties.get("Targets", []):
            if "RoleArn" in target:
                role = target["RoleArn"]["Fn::GetAtt"][0]
                needs[role]["states:StartExecution"].add(resolve_tokens(target["Arn"], resources))
    return needs


def _properties(resources: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in resources.values() if r["Type"] == kind]


def _ledger_key(resources: dict[str, Any]) -> bool:
    """The stack's ledger is under a customer managed key."""
    tables = _properties(resources, "AWS::DynamoDB::Table")
    return any("KMSMasterKeyId" in t.get("SSESpecification", {}) for t in tables)


def _topic_key(resources: dict[str, Any]) -> bool:
    """The stack's topic is under a customer managed key (the AWS managed one needs no grant)."""
    topics = _properties(resources, "AWS::SNS::Topic")
    return any(
        "KmsMasterKeyId" in t and "alias/aws/sns" not in json.dumps(t["KmsMasterKeyId"])
        for t in topics
    )


def _by_settings(template: dict[str, Any]) -> dict[str, set[str]]:
    """Role -> the calls its function makes only with some settings (``_BY_SETTINGS``)."""
    optional: dict[str, set[str]] = defaultdict(set)
    for properties in _properties(template["Resources"], "AWS::Lambda::Function"):
        module = properties["Handler"].removeprefix("rightsizing_runtime.").split(".")[0]
        optional[properties["Role"]["Fn::GetAtt"][0]] |= _BY_SETTINGS.get(module, set())
        rule_inputs = json.dumps(_properties(template["Resources"], "AWS::Events::Rule"))
        optional[properties["Role"]["Fn::GetAtt"][0]] |= {
            action
            for action, setting in _BY_ENDPOINT_SETTING.get(module, {}).items()
            if f'\\"{setting}\\"' not in rule_inputs
        }
    return optional


def problems(template: dict[str, Any], *, every_path_used: bool) -> list[str]:
    """How the roles differ from what the code calls (empty when they match exactly).

    ``every_path_used``: the app uses every feature, so every call the code can make must be
    granted; otherwise a feature-dependent grant may be absent (never one nothing calls).
    """
    grants = granted(template)
    needs = expected(template)
    by_settings = _by_settings(template)
    found = []
    for role, actions in needs.items():
        held = {action for action, _ in grants.get(role, [])}
        for action, arns in actions.items():
            if action not in held:
                if every_path_used and action not in by_settings[role]:
                    found.append(f"{role}: calls {action}, not granted")
                continue
            covered = {arn for a, arn in grants[role] if a == action}
            for arn in arns - covered:
                found.append(f"{role}: {action} on {arn} not granted (has {sorted(covered)})")
        for action in sorted(held - set(actions)):
            found.append(f"{role}: granted {action}, which nothing it runs calls")
    job_role = [r for r in grants if r.startswith(("RightsizingEngineJobRole", "EngineJobRole"))]
    for role in set(grants) - set(needs) - set(job_role):
        found.append(f"{role}: holds {sorted({a for a, _ in grants[role]})}, runs nothing")
    return found


# -- Tests -----------------------------------------------------------------------------------


def every_option_templates() -> list[dict[str, Any]]:
    app = cdk.App()
    return [Template.from_stack(s).to_json() for s in build(app)]


@pytest.mark.parametrize("index", [0, 1], ids=["every-option", "bring-your-own"])
def test_every_role_holds_exactly_what_its_code_calls(index: int) -> None:
    template = every_option_templates()[index]
    assert problems(template, every_path_used=index == 0) == []


def test_minimal_stack_grants_nothing_its_code_does_not_call() -> None:
    scope = stack()
    rightsizing(scope)
    assert problems(Template.from_stack(scope).to_json(), every_path_used=False) == []


def test_derivation_finds_each_handler_call() -> None:
    """The source reading sees what the handlers call (spot checks against the code)."""
    assert "sagemaker:StopInferenceRecommendationsJob" in handler_calls("stop_job")
    assert {"sagemaker:CreateInferenceRecommendationsJob", "iam:PassRole"} <= handler_calls(
        "start_job"
    )
    assert "application-autoscaling:RegisterScalableTarget" in handler_calls("apply_steps")
    assert handler_calls("job_slots") == {"dynamodb:PutItem", "dynamodb:DeleteItem"}
    # Calls made through paginators count, named with the IAM prefix (tag:, cloudwatch:).
    assert {
        "sagemaker:ListEndpoints",
        "tag:GetResources",
        "cloudwatch:GetMetricData",
        "ec2:DescribeInstanceTypes",
    } <= handler_calls("audit")


def test_a_missing_grant_is_found() -> None:
    template = every_option_templates()[0]
    policies = [
        r for k, r in template["Resources"].items() if k.startswith("EngineStopJobRoleDefault")
    ]
    [statement] = [
        s
        for s in policies[0]["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "sagemaker:StopInferenceRecommendationsJob"
    ]
    policies[0]["Properties"]["PolicyDocument"]["Statement"].remove(statement)
    [problem] = problems(template, every_path_used=True)
    assert "calls sagemaker:StopInferenceRecommendationsJob, not granted" in problem


def test_an_extra_grant_is_found() -> None:
    template = every_option_templates()[0]
    [policy] = [
        r
        for k, r in template["Resources"].items()
        if k.startswith("EngineSelectRecommendation") and r["Type"] == "AWS::IAM::Policy"
    ]
    policy["Properties"]["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Action": "sagemaker:UpdateEndpoint", "Resource": "*"}
    )
    [problem] = problems(template, every_path_used=True)
    assert "granted sagemaker:UpdateEndpoint, which nothing it runs calls" in problem


def test_a_grant_on_another_resource_is_found() -> None:
    """Task resources are checked too: the workflow may invoke only the functions it names."""
    template = every_option_templates()[0]
    [policy] = [
        r
        for k, r in template["Resources"].items()
        if k.startswith("EngineStateMachineRoleDefaultPolicy")
    ]
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        if statement["Action"] == "lambda:InvokeFunction":
            statement["Resource"] = [
                arn for arn in statement["Resource"] if "EngineStopJob" not in json.dumps(arn)
            ]
    found = problems(template, every_path_used=True)
    assert found
    assert all("lambda:InvokeFunction on arn:aws:lambda" in p and "StopJob" in p for p in found)
