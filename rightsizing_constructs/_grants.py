"""Policy statements that grow with the fleet, in pieces CDK can place within IAM's limits.

IAM limits a role's inline policies to 10,240 characters and a managed policy to 6,144 (IAM
quotas). CDK merges statements that differ only in resources and moves what does not fit into
overflow managed policies, but a single statement is never split: one statement listing the ARNs
of hundreds of endpoints would make a policy IAM rejects at deploy time. So a growing list of
resources is granted in statements of ``CHUNK`` resources each, which CDK merges as far as the
limits allow.

With ``EndpointAccess.tagged`` the endpoints are granted by tag instead, and the models by
pattern: one statement each, whatever the fleet (:func:`endpoint_grant`, :func:`model_grant`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aws_cdk import aws_iam as iam
from constructs import IConstruct

from ._arns import sagemaker_arn
from ._nag import acknowledge_wildcard
from .settings import EndpointAccess

#: Resources per statement: an endpoint ARN is about 100 characters, so 20 are about 2 KB.
CHUNK = 20


class GrowingGrant:
    """``actions`` on a list of resources that grows as endpoints register.

    Every statement carries ``conditions``, if given. Attached with its first resource (IAM
    refuses a statement with none), then one more statement every ``CHUNK`` resources.
    """

    def __init__(
        self,
        attach: Callable[[iam.PolicyStatement], object],
        actions: Sequence[str],
        *,
        sid: str | None = None,
        conditions: Mapping[str, Any] | None = None,
    ) -> None:
        self._attach = attach
        self._actions = list(actions)
        self._sid = sid
        self._conditions = dict(conditions) if conditions else None
        self._statements: list[iam.PolicyStatement] = []
        self._resources: set[str] = set()

    def add(self, resource: str) -> None:
        """Grant the actions on one more resource (a resource already granted is not repeated)."""
        if resource in self._resources:
            return
        self._resources.add(resource)
        if not self._statements or len(self._statements[-1].resources) >= CHUNK:
            statement = iam.PolicyStatement(
                sid=None if self._sid is None else f"{self._sid}{len(self._statements) or ''}",
                actions=self._actions,
                conditions=self._conditions,
            )
            self._statements.append(statement)
            statement.add_resources(resource)
            self._attach(statement)
            return
        self._statements[-1].add_resources(resource)


class PatternGrant:
    """``actions`` on one resource pattern, whatever resources are added.

    The statement (``conditions`` included) is attached with the first resource added, so a
    grant no endpoint needs is not made.
    """

    def __init__(
        self,
        attach: Callable[[iam.PolicyStatement], object],
        actions: Sequence[str],
        pattern: str,
        *,
        sid: str | None = None,
        conditions: Mapping[str, Any] | None = None,
    ) -> None:
        self._statement = iam.PolicyStatement(
            sid=sid, actions=list(actions), resources=[pattern], conditions=conditions
        )
        self._attach = attach
        self._attached = False

    def add(self, resource: str) -> None:
        """Count one more resource: covered by the pattern."""
        del resource
        if not self._attached:
            self._attached = True
            self._attach(self._statement)


#: Why a role may act on every endpoint that carries the engine's tag (cdk-nag).
TAGGED_REASON = (
    "EndpointAccess.tagged: the endpoints are granted by their tag (aws:ResourceTag "
    "condition), so that the policy does not grow with the fleet."
)
#: Why IR's role reads every model of the account and Region (cdk-nag).
MODELS_REASON = (
    "EndpointAccess.tagged: IR reads (Describe only) the models and model packages of the "
    "account and Region, so that the policy does not grow with the fleet."
)


def endpoint_grant(
    role: IConstruct,
    attach: Callable[[iam.PolicyStatement], object],
    actions: Sequence[str],
    access: EndpointAccess,
) -> GrowingGrant | PatternGrant:
    """``actions`` on the endpoints added: listed, or every endpoint carrying the tag."""
    if not access.is_tagged:
        return GrowingGrant(attach, actions)
    endpoints = sagemaker_arn(role, "endpoint", "*")
    acknowledge_wildcard(role, endpoints, TAGGED_REASON)
    condition = {"StringEquals": {f"aws:ResourceTag/{access.tag_key}": access.tag_value}}
    return PatternGrant(attach, actions, endpoints, conditions=condition)


def model_grant(
    role: IConstruct,
    attach: Callable[[iam.PolicyStatement], object],
    action: str,
    resource_type: str,
    access: EndpointAccess,
    *,
    sid: str,
) -> GrowingGrant | PatternGrant:
    """``action`` on the models added: listed, or every one of the account and Region.

    ``resource_type`` is ``model`` or ``model-package``.
    """
    if not access.is_tagged:
        return GrowingGrant(attach, [action], sid=sid)
    models = sagemaker_arn(role, resource_type, "*")
    acknowledge_wildcard(role, models, MODELS_REASON)
    return PatternGrant(attach, [action], models, sid=sid)
