#!/usr/bin/env python3
"""A fleet of N endpoints in one stack, at the worst case for every size limit.

Read by ``make bench`` (``tools/bench.py``: 1, 200, 1,000 and 3,000 endpoints) and by
``tests/test_fleet_limits.py`` (every AWS limit on the largest fleet):

- the stack name has CloudFormation's maximum of 128 characters, the engine's custom event bus
  EventBridge's 256;
- each endpoint has a 63-character endpoint and variant name (SageMaker's maximum), is a
  version of its own 63-character model package group, and has every trigger: a schedule (the
  same for all, as fleets run them), its group's approvals, a latency alarm and audit findings;
- each is applied automatically (``ApplyMode.AUTO``), a canary with ten rollback alarms of
  CloudWatch's longest name (255 characters), so its registry entry is as long as it gets;
- ``access="tagged"``: the endpoints are granted by a tag of IAM's longest key (128) and
  value (256); ``access="listed"``: ARN by ARN (``cdk synth`` refuses past IAM's limits).

Synthesize it yourself with ``FLEET_ENDPOINTS=1000 cdk synth --app "python -m tests.apps.fleet"``.
"""

from __future__ import annotations

import os

import aws_cdk as cdk
from aws_cdk import aws_events as events

from rightsizing_constructs import (
    ApplyMode,
    AuditFinding,
    Deployment,
    EndpointAccess,
    EndpointRightsizing,
    LatencyAlarm,
    LatencySlo,
    ModelApproval,
    RightsizingEngine,
)

ACCOUNT = "123456789012"
REGION = "us-east-1"
#: CloudFormation's maximum stack name length.
STACK_NAME = ("RightsizingFleet" + "X" * 128)[:128]
#: SageMaker's maximum EndpointName, VariantName and ModelPackageGroupName.
SAGEMAKER_NAME = 63


def name(prefix: str, index: int, length: int = SAGEMAKER_NAME) -> str:
    """A unique name of exactly ``length`` characters (letters, digits and hyphens)."""
    head = f"{prefix}{index:04d}-"
    return head + "x" * (length - len(head))


def fleet_stack(app: cdk.App, endpoints: int, access: str = "tagged") -> cdk.Stack:
    """One engine and ``endpoints`` endpoints of the longest names, every trigger each."""
    stack = cdk.Stack(app, STACK_NAME, env=cdk.Environment(account=ACCOUNT, region=REGION))
    engine = RightsizingEngine(
        stack,
        "Engine",
        event_bus=events.EventBus(stack, "Bus", event_bus_name=name("bus", 0, 256)),
        endpoint_access=(
            EndpointAccess.tagged(name("key", 0, 128), name("value", 0, 256))
            if access == "tagged"
            else EndpointAccess.listed()
        ),
    )
    schedule = events.Schedule.rate(cdk.Duration.days(7))
    for index in range(endpoints):
        group = name("group", index)
        EndpointRightsizing(
            stack,
            f"Endpoint{index:04d}",
            engine=engine,
            endpoint_name=name("endpoint", index),
            variant_name=name("variant", index),
            model_package_version_arn=stack.format_arn(
                service="sagemaker", resource="model-package", resource_name=f"{group}/1"
            ),
            slo=LatencySlo.p99(cdk.Duration.millis(150)),
            peak_requests_per_minute=120000,
            apply_mode=ApplyMode.AUTO,
            deployment=Deployment.canary(
                percent=10,
                wait=cdk.Duration.minutes(10),
                rollback_alarms=[name(f"alarm{index:04d}-", a, 255) for a in range(10)],
            ),
            schedule=schedule,
            model_approval=ModelApproval(model_package_group_name=group),
            latency_alarm=LatencyAlarm(breaching_for=cdk.Duration.minutes(3)),
            audit_finding=AuditFinding(),
        )
    return stack


if __name__ == "__main__":
    cdk_app = cdk.App()
    fleet_stack(
        cdk_app,
        int(os.environ.get("FLEET_ENDPOINTS", "1000")),
        os.environ.get("FLEET_ACCESS", "tagged"),
    )
    cdk_app.synth()
