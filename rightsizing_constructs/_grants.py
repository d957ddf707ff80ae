"""Policy statements that grow with the fleet, in pieces CDK can place within IAM's limits.

IAM limits a role's inline policies to 10,240 characters and a managed policy to 6,144 (IAM
quotas). CDK merges statements that differ only in resources and moves what does not fit into
overflow managed policies, but a single statement is never split: one statement listing the ARNs
of hundreds of endpoints would make a policy IAM rejects at deploy time. So a growing list of
resources is granted in statements of ``CHUNK`` resources each, which CDK merges as far as the
limits allow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aws_cdk import aws_iam as iam

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
