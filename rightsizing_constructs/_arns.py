"""ARNs of the SageMaker resources the library's roles are scoped to."""

from __future__ import annotations

from aws_cdk import Stack
from constructs import IConstruct

from .settings import is_token


def sagemaker_arn(scope: IConstruct, resource: str, name: str) -> str:
    """A SageMaker ARN in ``scope``'s stack's account and region.

    SageMaker lowercases names in ARNs, so a literal name is lowercased (a token must already
    be lowercase).
    """
    return Stack.of(scope).format_arn(
        service="sagemaker",
        resource=resource,
        resource_name=name if is_token(name) else name.lower(),
    )
