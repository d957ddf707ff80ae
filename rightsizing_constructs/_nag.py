"""Acknowledge cdk-nag findings narrowly: one wildcard resource, on one construct, with a reason.

cdk-nag 3 names an IAM5 finding after the resource string as it appears in the resolved
template (``Resource::arn:<AWS::Partition>:sagemaker:...:endpoint-config/*``), so a blanket
``AwsSolutions-IAM5`` acknowledgment is not needed: each wildcard is acknowledged by name, and a
new wildcard that nobody reviewed still fails synthesis.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct


def nag_resource_name(scope: IConstruct, resource: str) -> str:
    """The resource as cdk-nag prints it: ``{"Ref": "X"}`` becomes ``<X>``, ``GetAtt`` ``<L.A>``."""
    return _render(Stack.of(scope).resolve(resource))


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_render(part) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        return f"<{logical_id}.{attribute}>"
    raise ValueError(f"cannot render {value!r} as a cdk-nag resource name")


def acknowledge_wildcard(scope: IConstruct, resource: str, reason: str) -> None:
    """Acknowledge AwsSolutions-IAM5 for exactly ``resource`` on ``scope`` (a role, usually)."""
    Validations.of(scope).acknowledge(
        Acknowledgment(
            id=f"AwsSolutions-IAM5[Resource::{nag_resource_name(scope, resource)}]",
            reason=reason,
        )
    )
