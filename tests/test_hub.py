"""Many accounts: the hub bus admits the members; members forward what a fleet view needs."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from rightsizing_constructs import (
    APPLY_OUTCOME_DETAIL_TYPE,
    FINDING_DETAIL_TYPE,
    RECOMMENDATION_DETAIL_TYPE,
    RightsizingHub,
)
from tests.apps import hub as hub_app
from tests.infra import stack


def hub_template(**settings: Any) -> Template:
    scope = stack()
    RightsizingHub(scope, "Hub", **settings)
    return Template.from_stack(scope)


def bus_policy(template: Template) -> dict[str, Any]:
    """The hub bus's resource policy statements (one EventBusPolicy each), by statement id."""
    [bus_id] = template.find_resources("AWS::Events::EventBus")
    statements = {}
    for policy in template.find_resources("AWS::Events::EventBusPolicy").values():
        properties = policy["Properties"]
        assert properties["EventBusName"] == {"Ref": bus_id}
        statement = properties["Statement"]
        # every statement admits PutEvents on this bus only
        assert statement["Effect"] == "Allow"
        assert statement["Action"] == "events:PutEvents"
        assert statement["Resource"] == {"Fn::GetAtt": [bus_id, "Arn"]}
        statements[statement["Sid"]] = statement
    return statements


def test_an_organization_is_admitted_by_its_id_so_new_accounts_need_no_change() -> None:
    policy = bus_policy(hub_template(organization_id="o-a1b2c3d4e5"))
    assert set(policy) == {"cdk-OrganizationAccountsForward"}
    statement = policy["cdk-OrganizationAccountsForward"]
    assert statement["Principal"] == {"AWS": "*"}
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}


def test_listed_accounts_are_admitted_by_account_and_nobody_else() -> None:
    policy = bus_policy(hub_template(account_ids=["222222222222", "333333333333"]))
    assert set(policy) == {"cdk-MemberAccountsForward"}
    assert policy["cdk-MemberAccountsForward"]["Principal"]["AWS"] == [
        {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":iam::{account}:root"]]}
        for account in ("222222222222", "333333333333")
    ]
    assert "Condition" not in policy["cdk-MemberAccountsForward"]


def test_the_archive_keeps_the_librarys_events_a_year_and_outlives_the_stack() -> None:
    template = hub_template(organization_id="o-a1b2c3d4e5")
    [archive] = template.find_resources("AWS::Events::Archive").values()
    assert archive["Properties"]["RetentionDays"] == 365
    assert archive["Properties"]["EventPattern"] == {"source": ["rightsizing-constructs"]}
    assert archive["DeletionPolicy"] == "Retain"
    custom = hub_template(organization_id="o-a1b2c3d4e5", archive_retention=cdk.Duration.days(30))
    [archive] = custom.find_resources("AWS::Events::Archive").values()
    assert archive["Properties"]["RetentionDays"] == 30


@pytest.mark.parametrize(
    ("settings", "problems"),
    [
        ({}, ["give organization_id, account_ids or both"]),
        (
            {"organization_id": "a1b2c3d4e5", "account_ids": ["2222", "333333333333"]},
            [
                "organization_id must be an AWS Organizations ID (o-...), got 'a1b2c3d4e5'",
                "account_ids must be 12-digit account IDs, got '2222'",
            ],
        ),
    ],
)
def test_bad_settings_fail_with_every_problem_and_nothing_is_created(
    settings: dict[str, Any], problems: list[str]
) -> None:
    scope = stack()
    with pytest.raises(ValueError, match="Invalid RightsizingHub settings") as raised:
        RightsizingHub(scope, "Hub", **settings)
    for problem in problems:
        assert problem in str(raised.value)
    assert Template.from_stack(scope).find_resources("AWS::Events::EventBus") == {}


def member_template() -> Template:
    app = cdk.App()
    hub_app.build(app)
    return Template.from_stack(app.node.find_child(hub_app.STACKS[1]))  # type: ignore[arg-type]


def test_a_member_forwards_findings_recommendations_and_apply_outcomes_to_the_hub_bus() -> None:
    template = member_template()
    hub_bus_arn = (
        f"arn:aws:events:{hub_app.REGION}:{hub_app.HUB_ACCOUNT}:event-bus/{hub_app.HUB_BUS_NAME}"
    )
    [(rule_id, rule)] = [
        (k, r)
        for k, r in template.find_resources("AWS::Events::Rule").items()
        if "ForwardToHub" in k
    ]
    properties = rule["Properties"]
    assert properties["EventPattern"] == {
        "source": ["rightsizing-constructs"],
        "detail-type": [FINDING_DETAIL_TYPE, RECOMMENDATION_DETAIL_TYPE, APPLY_OUTCOME_DETAIL_TYPE],
    }
    # on the engine's bus (here the default bus): where the audit's findings, the
    # recommendations and the apply outcomes are published
    assert properties["EventBusName"] == "default"
    [target] = properties["Targets"]
    assert target["Arn"] == hub_bus_arn
    assert "DeadLetterConfig" in target
    # the role EventBridge assumes to deliver to another account may put events on that bus only
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    [policy] = [
        p
        for p in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {"Action": "events:PutEvents", "Effect": "Allow", "Resource": hub_bus_arn}
    ]
    assert rule_id.startswith("Engine")
