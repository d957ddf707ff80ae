"""The engine's own checks: its settings when created, its roles' policies when synthesized."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsii
from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct, IValidation

from .settings import EndpointAccess, ValidationProblems, is_token

# CDK's own warnings when it splits a role's policies (aws-iam Role.splitLargePolicy): more
# than 10 managed policies needs a quota increase, more than 20 is refused by IAM ("IAM and
# AWS STS quotas": managed policies per role, default 10, at most 20).
_CDK_POLICY_WARNINGS = ("@aws-cdk/aws-iam:rolePolicyLarge", "@aws-cdk/aws-iam:rolePolicyTooLarge")


@jsii.implements(IValidation)
class RolePolicyLimits:
    """Fails ``cdk synth`` before a role would need more managed policies than IAM attaches.

    CDK splits a role's statements into overflow managed policies as they grow (10,240
    characters inline, 6,144 a managed policy) and warns past 10 of them; the engine's grants
    grow with its endpoints under ``EndpointAccess.listed()``. The error says the way out, at
    synth rather than at deploy time.
    """

    def __init__(self, engine: Construct, endpoints: Callable[[], int]) -> None:
        self._engine = engine
        self._endpoints = endpoints

    def validate(self) -> list[str]:
        """The roles whose policies CDK warned about, with the advice (empty: none)."""
        problems = []
        for construct in self._engine.node.find_all():
            if not isinstance(construct, iam.Role):
                continue
            warned = [
                str(entry.data)
                for entry in construct.node.metadata
                if any(name in str(entry.data) for name in _CDK_POLICY_WARNINGS)
            ]
            for warning in warned:
                problems.append(
                    f"{construct.node.path}: {warning.split(' [ack:')[0]}, for the grants of "
                    f"{self._endpoints()} endpoints: pass "
                    "endpoint_access=EndpointAccess.tagged(key, value) to the RightsizingEngine "
                    "(and tag the endpoints) so that the policies stay the same size, or split "
                    'the endpoints over engines in several stacks (README, "Fleets")'
                )
        return problems


#: Distinct schedule expressions one engine may use. Each is a rule on the account's default
#: bus (schedules run there), which holds 300 rules by default ("Amazon EventBridge quotas":
#: rules per event bus), shared with every other rule of the account and Region; the engine
#: also keeps a few of its own there.
MAX_SCHEDULE_EXPRESSIONS = 100


@jsii.implements(IValidation)
class ScheduleRuleLimit:
    """Fails ``cdk synth`` before the engine's schedule rules would fill the default bus."""

    def __init__(self, expressions: Callable[[], int]) -> None:
        self._expressions = expressions

    def validate(self) -> list[str]:
        """The problem, if the endpoints use too many distinct schedules (empty: none)."""
        count = self._expressions()
        if count <= MAX_SCHEDULE_EXPRESSIONS:
            return []
        return [
            f"the endpoints use {count} distinct schedule expressions: each is an EventBridge "
            "rule on the account's default bus, which holds 300 rules by default (shared with "
            f"the account's other rules); use at most {MAX_SCHEDULE_EXPRESSIONS}, for example "
            "one cron for the endpoints that can share it (endpoints on one expression share "
            'its rule, README "Triggers")'
        ]


def validate_settings(
    poll_interval: Duration,
    max_concurrent_jobs: int,
    queue_timeout: Duration,
    reserved_concurrency: int | None,
    vpc: ec2.IVpc | None,
    vpc_subnets: ec2.SubnetSelection | None,
    endpoint_access: Any,
) -> None:
    """Raise one ``ValueError`` listing every problem of the engine's settings."""
    problems = ValidationProblems("RightsizingEngine settings")
    problems.check(
        endpoint_access is None or isinstance(endpoint_access, EndpointAccess),
        "endpoint_access must be EndpointAccess.listed() or EndpointAccess.tagged(key, value), "
        f"got {endpoint_access!r}",
    )
    problems.check(
        vpc_subnets is None or vpc is not None,
        "vpc_subnets needs vpc: pass the VPC the subnets are in as well",
    )
    # The poll interval and the slot retries are written into the definitions.
    known = not (is_token(poll_interval.to_string()) or is_token(queue_timeout.to_string()))
    problems.check(known, "poll_interval and queue_timeout must be known at synth time")
    if known:
        problems.check(
            poll_interval.to_milliseconds() >= 1000 and poll_interval.to_milliseconds() % 1000 == 0,
            "poll_interval must be a whole number of seconds, at least 1, got "
            f"{poll_interval.to_human_string()}",
        )
        problems.check(
            queue_timeout.to_milliseconds() >= poll_interval.to_milliseconds(),
            f"queue_timeout ({queue_timeout.to_human_string()}) must be at least poll_interval "
            f"({poll_interval.to_human_string()})",
        )
    problems.check(
        isinstance(max_concurrent_jobs, int)
        and not isinstance(max_concurrent_jobs, bool)
        and 1 <= max_concurrent_jobs <= 100,
        f"max_concurrent_jobs must be a whole number from 1 to 100, got {max_concurrent_jobs!r}",
    )
    problems.check(
        reserved_concurrency is None
        or (
            isinstance(reserved_concurrency, int)
            and not isinstance(reserved_concurrency, bool)
            and reserved_concurrency >= 1
        ),
        "reserved_concurrency must be a whole number, at least 1 (0 would stop the function), "
        f"got {reserved_concurrency!r}",
    )
    problems.raise_if_any()
