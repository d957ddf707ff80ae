"""Read synthesized CloudFormation: the templates of a cloud assembly, and their tokens resolved.

One place for both, shared by ``tools/compliance.py``, ``tools/fidelity.py`` and the tests
(``tests/infra.py`` re-exports :func:`resolve_tokens`). Nothing here imports the CDK, so the
checkers start fast.

Tokens resolve in one of two ways:

- placeholders (the default, what the infrastructure tests compare with): ``Ref`` of a pseudo
  parameter becomes its test value, other ``Ref``s ``<LogicalId>``; ``GetAtt Arn`` of a role or
  function becomes an ARN of the right form named after the logical ID, other ``GetAtt``s
  ``<LogicalId.Attribute>``;
- as deployed (``names=PhysicalNames(...)``): every ``Ref`` and ``GetAtt`` becomes the value
  CloudFormation would give it (an ARN, URL, name or ID of the resource type's documented form,
  "Ref" and "Fn::GetAtt" return values in the CloudFormation resource reference), with names
  CloudFormation generates as ``<stack>-<LogicalId>-<suffix>`` cut to the type's maximum
  length, so a template from an app with long names is sized at its worst case.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"

_PLACEHOLDER_ARNS = {
    "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{{}}",
    "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{{}}",
}

#: The longest name CloudFormation may generate for a resource type (each service's own name
#: limit: IAM 64 for roles and 128 for policies; Lambda 64; SNS 256; SQS 80; DynamoDB 255;
#: Step Functions 80; CloudWatch Logs 512; CloudWatch alarms 255; EventBridge rules 64).
#: CloudFormation generates "<stack name>-<logical ID>-<random suffix>" and truncates it to fit
#: ("Name type", CloudFormation user guide).
_MAX_GENERATED_NAME = {
    "AWS::IAM::Role": 64,
    "AWS::IAM::ManagedPolicy": 128,
    "AWS::IAM::Policy": 128,
    "AWS::Lambda::Function": 64,
    "AWS::Lambda::LayerVersion": 140,
    "AWS::SNS::Topic": 256,
    "AWS::SQS::Queue": 80,
    "AWS::DynamoDB::Table": 255,
    "AWS::StepFunctions::StateMachine": 80,
    "AWS::Logs::LogGroup": 512,
    "AWS::CloudWatch::Alarm": 255,
    "AWS::Events::Rule": 64,
    "AWS::Events::EventBus": 256,
}
#: The property that names a resource when the template sets it.
_NAME_PROPERTY = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::Policy": "PolicyName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::Events::Rule": "Name",
    "AWS::Events::EventBus": "Name",
}
_SUFFIX = "1A2B3C4D5E6F7"  # CloudFormation's random suffix is 12-13 upper-case letters/digits


def templates(assembly: Path) -> list[Path]:
    """The stack templates of a cloud assembly, in manifest order."""
    return [stack.path for stack in stacks(assembly)]


@dataclass(frozen=True)
class SynthesizedStack:
    """One stack of a cloud assembly: its name, template, and where it deploys."""

    name: str
    path: Path
    #: The account and Region the stack is bound to (``env=``), else the test values.
    account: str = ACCOUNT
    region: str = REGION


def stacks(assembly: Path) -> list[SynthesizedStack]:
    """Each stack of a cloud assembly, nested ones included.

    In manifest order, each stack followed by its nested stacks. A nested stack's template is
    one of its parent's file assets (``*.nested.template.json``); CloudFormation names it
    ``<parent>-<logical ID>-<suffix>``, cut to 128 characters, and deploys it where its parent
    is. A stack's environment is its manifest's ``aws://<account>/<region>``; an
    environment-agnostic stack (``unknown-account``) gets the test account and Region.
    """
    manifest = json.loads((assembly / "manifest.json").read_text())
    artifacts = manifest["artifacts"]
    found = []
    for artifact_id, artifact in artifacts.items():
        if artifact["type"] != "aws:cloudformation:stack":
            continue
        name = artifact["properties"].get("stackName", artifact_id)
        account, region = artifact.get("environment", "aws://unknown/unknown")[6:].split("/")
        where = {
            "account": account if account.isdigit() else ACCOUNT,
            "region": region if not region.startswith("unknown") else REGION,
        }
        found.append(
            SynthesizedStack(name, assembly / artifact["properties"]["templateFile"], **where)
        )
        assets = artifacts.get(f"{artifact_id}.assets", {}).get("properties", {}).get("file")
        if assets is None:
            continue
        for asset in json.loads((assembly / assets).read_text()).get("files", {}).values():
            path = asset["source"]["path"]
            if path.endswith(".nested.template.json"):
                nested = path.removesuffix(".nested.template.json")
                found.append(
                    SynthesizedStack(f"{name}-{nested}-{_SUFFIX}"[:128], assembly / path, **where)
                )
    return found


@dataclass(frozen=True)
class PhysicalNames:
    """What a stack's resources are called once deployed (account, region, generated names)."""

    stack_name: str
    resources: Mapping[str, Any]
    account: str = ACCOUNT
    region: str = REGION

    def name(self, logical_id: str) -> str:
        """The resource's name: the one its template sets, else the one CloudFormation makes."""
        resource = self.resources[logical_id]
        kind = resource["Type"]
        given = resource.get("Properties", {}).get(_NAME_PROPERTY.get(kind, ""))
        if given is not None:
            return str(resolve_tokens(given, self.resources, names=self))
        # Cut the stack name first, then the logical ID; the suffix keeps names unique.
        room = _MAX_GENERATED_NAME.get(kind, 255) - len(_SUFFIX) - 2
        logical = logical_id[:room]
        stack = self.stack_name[: max(room - len(logical), 0)]
        return f"{stack}-{logical}-{_SUFFIX}" if stack else f"{logical}-{_SUFFIX}"

    def ref(self, logical_id: str) -> str:
        """What ``Ref`` returns for the resource."""
        kind = self.resources[logical_id]["Type"]
        if kind in _REF_IS_ARN:
            return self.attribute(logical_id, "Arn")
        if kind == "AWS::SQS::Queue":
            return self.attribute(logical_id, "QueueUrl")
        if kind == "AWS::KMS::Key":
            return self.attribute(logical_id, "KeyId")
        if kind == "AWS::EC2::SecurityGroup":
            return self.attribute(logical_id, "GroupId")
        return self.name(logical_id)

    def attribute(self, logical_id: str, attribute: str) -> str:
        """What ``Fn::GetAtt`` returns for the resource's attribute."""
        kind = self.resources[logical_id]["Type"]
        if kind == "AWS::KMS::Key" and attribute in ("KeyId", "Arn"):
            key_id = _key_id(logical_id)
            return key_id if attribute == "KeyId" else self._arn("kms", f"key/{key_id}")
        if kind == "AWS::EC2::SecurityGroup" and attribute == "GroupId":
            return f"sg-{_digest(logical_id)[:17]}"
        name = self.name(logical_id)
        if attribute in ("Name", "TopicName", "QueueName", "StateMachineName"):
            return name
        if kind == "AWS::SQS::Queue" and attribute == "QueueUrl":
            return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{name}"
        if attribute in ("Arn", "TopicArn"):
            return self._arn_of(logical_id, kind, name)
        if kind == "AWS::IAM::Role" and attribute == "RoleId":
            return "AROA" + _SUFFIX + "EXAMPLE"
        raise ValueError(f"resolve_tokens: no deployed value known for {kind} {attribute}")

    def _arn_of(self, logical_id: str, kind: str, name: str) -> str:
        forms: dict[str, Callable[[], str]] = {
            "AWS::IAM::Role": lambda: f"arn:{PARTITION}:iam::{self.account}:role/{name}",
            "AWS::IAM::ManagedPolicy": lambda: f"arn:{PARTITION}:iam::{self.account}:policy/{name}",
            "AWS::Lambda::Function": lambda: self._arn("lambda", f"function:{name}"),
            # Ref of a layer version is its ARN, with the version number.
            "AWS::Lambda::LayerVersion": lambda: self._arn("lambda", f"layer:{name}:1"),
            "AWS::SNS::Topic": lambda: self._arn("sns", name),
            "AWS::SQS::Queue": lambda: self._arn("sqs", name),
            "AWS::DynamoDB::Table": lambda: self._arn("dynamodb", f"table/{name}"),
            "AWS::StepFunctions::StateMachine": lambda: self._arn("states", f"stateMachine:{name}"),
            "AWS::Logs::LogGroup": lambda: self._arn("logs", f"log-group:{name}:*"),
            "AWS::CloudWatch::Alarm": lambda: self._arn("cloudwatch", f"alarm:{name}"),
            "AWS::Events::EventBus": lambda: self._arn("events", f"event-bus/{name}"),
            "AWS::Events::Rule": lambda: self._arn("events", f"rule/{self._rule_path(logical_id)}"),
        }
        if kind not in forms:
            raise ValueError(f"resolve_tokens: no ARN form known for {kind}")
        return forms[kind]()

    def _rule_path(self, logical_id: str) -> str:
        """A rule's ARN names its bus unless it is on the default bus."""
        bus = self.resources[logical_id].get("Properties", {}).get("EventBusName", "default")
        bus_name = str(resolve_tokens(bus, self.resources, names=self))
        rule = self.name(logical_id)
        return rule if bus_name == "default" else f"{bus_name}/{rule}"

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:{PARTITION}:{service}:{self.region}:{self.account}:{resource}"


_REF_IS_ARN = {
    "AWS::Lambda::LayerVersion",
    "AWS::SNS::Topic",
    "AWS::StepFunctions::StateMachine",
    "AWS::IAM::ManagedPolicy",
}


def _digest(text: str) -> str:
    """Stable hex digits derived from ``text`` (IDs AWS would generate)."""
    return hashlib.sha256(text.encode()).hexdigest()


def _key_id(logical_id: str) -> str:
    digits = _digest(logical_id)[:32]
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:32]}"


def resolve_tokens(
    value: Any, resources: Mapping[str, Any] | None = None, *, names: PhysicalNames | None = None
) -> Any:
    """Replace CloudFormation intrinsics with plain strings, as deployment would.

    Without ``names``, tokens become placeholders (module docstring); with ``names``, the
    values a deployment of that stack would give them.
    """
    resources = names.resources if names else resources
    if isinstance(value, list):
        return [resolve_tokens(v, resources, names=names) for v in value]
    if not isinstance(value, dict):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve_tokens(p, resources, names=names)) for p in parts)
    if "Ref" in value:
        pseudo = {"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
        if value["Ref"] in pseudo:
            if names and value["Ref"] != "AWS::Partition":
                return names.region if value["Ref"] == "AWS::Region" else names.account
            return pseudo[value["Ref"]]
        if value["Ref"] == "AWS::URLSuffix":
            return "amazonaws.com"
        if names and value["Ref"] == "AWS::StackName":
            return names.stack_name
        return names.ref(value["Ref"]) if names else f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        if names:
            return names.attribute(logical_id, attribute)
        kind = (resources or {}).get(logical_id, {}).get("Type")
        if attribute == "Arn" and kind in _PLACEHOLDER_ARNS:
            return _PLACEHOLDER_ARNS[kind].format(logical_id)
        return f"<{logical_id}.{attribute}>"
    if names and "Fn::Select" in value:
        index, items = value["Fn::Select"]
        return resolve_tokens(items, resources, names=names)[int(index)]
    if names and "Fn::Split" in value:
        separator, text = value["Fn::Split"]
        return str(resolve_tokens(text, resources, names=names)).split(separator)
    if names and "Fn::Sub" in value:
        physical = names
        text, variables = (
            value["Fn::Sub"] if isinstance(value["Fn::Sub"], list) else (value["Fn::Sub"], {})
        )

        def substitute(match: re.Match[str]) -> str:
            token = match.group(1)
            if token in variables:
                return str(resolve_tokens(variables[token], resources, names=names))
            if "." in token:
                return physical.attribute(*token.split(".", 1))
            return str(resolve_tokens({"Ref": token}, resources, names=physical))

        return re.sub(r"\$\{([^}!]+)\}", substitute, text)
    if names and any(key.startswith("Fn::") for key in value):
        raise ValueError(f"resolve_tokens: intrinsic not supported: {sorted(value)}")
    return {k: resolve_tokens(v, resources, names=names) for k, v in value.items()}


def deployed(
    template: Mapping[str, Any], stack_name: str, account: str = ACCOUNT, region: str = REGION
) -> dict[str, Any]:
    """The template's resources with every token resolved as deployment would."""
    names = PhysicalNames(stack_name, template["Resources"], account, region)
    return {
        logical_id: {
            **resource,
            "Properties": resolve_tokens(resource.get("Properties", {}), names=names),
        }
        for logical_id, resource in template["Resources"].items()
    }
