"""Many accounts: each runs its own engine; their events meet on one bus in a hub account.

Nothing crosses accounts but events (docs/fleet.md): each member account keeps its ledger,
locks and IR job slots, and forwards the library's findings, recommendations and apply
outcomes (``RightsizingEngine.forward_events_to``) to the hub's bus, where a fleet view reads
them. Cross-account delivery is EventBridge's "Sending and receiving events between AWS
accounts": the rule in the member account targets the hub bus's ARN with a role that may
``events:PutEvents`` on it, and the hub bus's resource policy admits the member accounts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from ._nag import CDK_GRANT_POLICY
from .event_types import (
    APPLY_OUTCOME_DETAIL_TYPE,
    EVENT_SOURCE,
    FINDING_DETAIL_TYPE,
    RECOMMENDATION_DETAIL_TYPE,
)
from .settings import ValidationProblems, is_token
from .triggers import limit_sizes

#: What a member account forwards to the hub: what a fleet view shows.
FORWARDED_DETAIL_TYPES = (
    FINDING_DETAIL_TYPE,
    RECOMMENDATION_DETAIL_TYPE,
    APPLY_OUTCOME_DETAIL_TYPE,
)
_ORGANIZATION_ID = re.compile(r"^o-[a-z0-9]{10,32}$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")


class RightsizingHub(Construct):
    """The hub account's event bus, where the member accounts' engines forward their events.

    :param organization_id: admit every account of this AWS Organization (``o-...``; the
        ``aws:PrincipalOrgID`` condition), so accounts added later need no change here.
    :param account_ids: admit these accounts (12 digits each). Give this, ``organization_id``,
        or both.
    :param event_bus_name: the hub bus's name. Default: ``rightsizing-hub``.
    :param archive_retention: how long the hub keeps every forwarded event in an EventBridge
        archive (replayable). Default: one year.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        organization_id: str | None = None,
        account_ids: Sequence[str] = (),
        event_bus_name: str = "rightsizing-hub",
        archive_retention: Duration | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        account_ids = list(account_ids)
        problems = ValidationProblems("RightsizingHub settings")
        problems.check(
            organization_id is not None or bool(account_ids),
            "give organization_id, account_ids or both: the accounts that may forward events",
        )
        problems.check(
            organization_id is None
            or is_token(organization_id)
            or bool(_ORGANIZATION_ID.match(organization_id)),
            f"organization_id must be an AWS Organizations ID (o-...), got {organization_id!r}",
        )
        for account in account_ids:
            problems.check(
                is_token(account) or bool(_ACCOUNT_ID.match(account)),
                f"account_ids must be 12-digit account IDs, got {account!r}",
            )
        problems.raise_if_any()
        #: The bus the member accounts forward to (its ARN is what they need).
        self.event_bus = events.EventBus(self, "Bus", event_bus_name=event_bus_name)
        put_events = {"actions": ["events:PutEvents"], "resources": [self.event_bus.event_bus_arn]}
        if organization_id is not None:
            self.event_bus.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="OrganizationAccountsForward",
                    principals=[iam.AnyPrincipal()],
                    conditions={"StringEquals": {"aws:PrincipalOrgID": organization_id}},
                    **put_events,  # type: ignore[arg-type]
                )
            )
        if account_ids:
            self.event_bus.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="MemberAccountsForward",
                    principals=[iam.AccountPrincipal(a) for a in account_ids],
                    **put_events,  # type: ignore[arg-type]
                )
            )
        #: Every forwarded event, replayable (EventBridge archive).
        self.archive = self.event_bus.archive(
            "Archive",
            description="Rightsizing events forwarded by the member accounts",
            event_pattern=events.EventPattern(source=[EVENT_SOURCE]),
            retention=archive_retention or Duration.days(365),
        )
        self.archive.apply_removal_policy(RemovalPolicy.RETAIN)


def forward_rule(
    scope: Construct,
    source_bus: events.IEventBus,
    hub_bus: events.IEventBus,
    dead_letter_queue: sqs.IQueue,
) -> events.Rule:
    """The rule that forwards findings, recommendations and apply outcomes to the hub's bus.

    From ``source_bus`` to ``hub_bus``, another account's: EventBridge needs a role for that,
    which CDK's ``EventBus`` target creates with ``events:PutEvents`` on that bus only.
    """
    rule = events.Rule(
        scope,
        "ForwardToHub",
        description="Forwards rightsizing findings, recommendations and apply outcomes to the hub",
        event_bus=source_bus,
        event_pattern=events.EventPattern(
            source=[EVENT_SOURCE], detail_type=list(FORWARDED_DETAIL_TYPES)
        ),
        targets=[targets.EventBus(hub_bus, dead_letter_queue=dead_letter_queue)],
    )
    limit_sizes(rule)
    # CDK's EventBus target creates the role the delivery to another account needs.
    CDK_GRANT_POLICY.apply(rule.node.find_child("EventsRole"))
    return rule
