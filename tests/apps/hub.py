#!/usr/bin/env python3
"""Many accounts: a hub stack and a member stack, as README "Many accounts" sets them up.

- ``RightsizingHub`` (account 111111111111): the hub's bus, admitting every account of the
  organization, with an archive of every forwarded event;
- ``RightsizingMember`` (account 222222222222; deploy it to every member account, with a CDK
  Pipelines stage per account or as a StackSet): an engine with its endpoints, forwarding
  findings, recommendations and apply outcomes to the hub's bus by ARN.

Each stack passes every cdk-nag pack (``make compliance``, a finding fails the synth)::

    cdk synth --app "python -m tests.apps.hub" --output cdk.out.hub
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events

from rightsizing_constructs import (
    EndpointRightsizing,
    LatencySlo,
    RightsizingEngine,
    RightsizingHub,
)
from tests.apps.every_option import NAG_PACKS

REGION = "us-east-1"
HUB_ACCOUNT, MEMBER_ACCOUNT = "111111111111", "222222222222"
ORGANIZATION_ID = "o-a1b2c3d4e5"
HUB_BUS_NAME = "rightsizing-hub"
STACKS = ("RightsizingHub", "RightsizingMember")


def hub_stack(app: cdk.App) -> cdk.Stack:
    """The hub account's bus."""
    stack = cdk.Stack(app, STACKS[0], env=cdk.Environment(account=HUB_ACCOUNT, region=REGION))
    RightsizingHub(stack, "Hub", organization_id=ORGANIZATION_ID, event_bus_name=HUB_BUS_NAME)
    return stack


def member_stack(app: cdk.App) -> cdk.Stack:
    """A member account's engine, forwarding to the hub's bus."""
    stack = cdk.Stack(app, STACKS[1], env=cdk.Environment(account=MEMBER_ACCOUNT, region=REGION))
    engine = RightsizingEngine(stack, "Engine")
    EndpointRightsizing(
        stack,
        "FraudScoring",
        engine=engine,
        endpoint_name="fraud-scoring",
        model_package_version_arn=stack.format_arn(
            service="sagemaker", resource="model-package", resource_name="fraud-scoring/3"
        ),
        slo=LatencySlo.p99(cdk.Duration.millis(150)),
        peak_requests_per_minute=3000,
    )
    hub_bus_arn = f"arn:aws:events:{REGION}:{HUB_ACCOUNT}:event-bus/{HUB_BUS_NAME}"
    engine.forward_events_to(events.EventBus.from_event_bus_arn(stack, "HubBus", hub_bus_arn))
    return stack


def build(app: cdk.App) -> list[cdk.Stack]:
    """Both stacks, in ``app``."""
    return [hub_stack(app), member_stack(app)]


if __name__ == "__main__":
    cdk_app = cdk.App()
    cdk.Validations.of(cdk_app).add_plugins(*(pack(cdk_app) for pack in NAG_PACKS))
    build(cdk_app)
    cdk_app.synth()
