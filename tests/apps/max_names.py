#!/usr/bin/env python3
"""A test app where every name is as long as AWS allows: the worst case for size limits.

``tools/fidelity.py`` computes AWS's documented limits (EventBridge inputs and patterns,
alarm names and dimensions, policy and template sizes) on what this app synthesizes, because
sizes measured on short, typical names say nothing about what a user's names produce.

- each stack name has CloudFormation's maximum of 128 characters, so every name CloudFormation
  generates (roles, functions, alarms, ...) reaches its resource type's maximum;
- ``EveryTrigger``: 10 endpoints, each with a 63-character endpoint and variant name
  (SageMaker's ``EndpointName`` and ``VariantName`` maximum), every trigger (a schedule, a
  model package group of 63 characters, a latency alarm, audit findings), an Advanced job over
  10 of the longest instance type names, 10 rollback alarms of 255 characters (CloudWatch's
  ``AlarmName`` maximum) and a 63-character model name; a custom event bus whose name has
  EventBridge's maximum of 256 characters, and audits by name (every endpoint), by a tag of
  maximum key and value length, and of the whole account;
- ``FullSchedule``: 50 endpoints on one schedule, each a version of its own 63-character
  model package group with its approvals as a trigger: the growing grants (endpoints, model
  packages, listed ARN by ARN) pass CDK's policy splitting.

(Fleets of hundreds and thousands of endpoints are ``tests/apps/fleet.py``'s, measured by
``make bench`` and ``tests/test_fleet_limits.py``.)

Synthesized by ``make compliance`` without cdk-nag (the other two apps carry the packs)::

    cdk synth --app "python -m tests.apps.max_names" --output cdk.out.max-names
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events

from rightsizing_constructs import (
    ApplyMode,
    AuditFinding,
    ContainerConfig,
    Deployment,
    EndpointRightsizing,
    Guardrails,
    LatencyAlarm,
    LatencySlo,
    ModelApproval,
    RecommenderJob,
    RightsizingEngine,
    UtilizationAudit,
)

ACCOUNT = "123456789012"
REGION = "us-east-1"
#: CloudFormation's maximum stack name length ("CloudFormation quotas").
STACK_NAMES = tuple(
    (f"RightsizingMaxNames{kind}" + "X" * 128)[:128] for kind in ("EveryTrigger", "FullSchedule")
)
#: Endpoints with every trigger.
EVERY_TRIGGER_ENDPOINTS = 10
#: Endpoints on one schedule, their grants listed.
FULL_SCHEDULE_ENDPOINTS = 50
#: SageMaker's maximum for EndpointName, VariantName, ModelName and ModelPackageGroupName
#: (botocore's ``EndpointName``, ``VariantName``, ``ModelName``, ``EntityName`` shapes).
SAGEMAKER_NAME = 63
#: CloudWatch's maximum ``AlarmName`` (botocore's ``AlarmName`` shape).
ALARM_NAME = 255
#: EventBridge's maximum ``EventBusName`` (botocore's ``EventBusName`` shape).
BUS_NAME = 256
#: Resource Groups Tagging API's maximum tag key and value lengths.
TAG_KEY, TAG_VALUE = 128, 256
#: The longest real-time instance type names in botocore's ``ProductionVariantInstanceType``.
LONG_INSTANCE_TYPES = [
    "ml.p6e-gb200.36xlarge",
    "ml.p6-b300.48xlarge",
    "ml.p6-b200.48xlarge",
    "ml.trn1n.32xlarge",
    "ml.c6in.32xlarge",
    "ml.c6in.24xlarge",
    "ml.c6in.16xlarge",
    "ml.c6in.12xlarge",
    "ml.r7gd.16xlarge",
    "ml.r7gd.12xlarge",
]


def name(prefix: str, index: int, length: int = SAGEMAKER_NAME) -> str:
    """A unique name of exactly ``length`` characters (letters, digits and hyphens)."""
    head = f"{prefix}{index:02d}-"
    return head + "x" * (length - len(head))


def every_trigger_stack(app: cdk.App) -> cdk.Stack:
    """One engine with a custom bus and endpoints whose every name and option is at its maximum."""
    stack = cdk.Stack(app, STACK_NAMES[0], env=cdk.Environment(account=ACCOUNT, region=REGION))
    engine = RightsizingEngine(
        stack,
        "Engine",
        event_bus=events.EventBus(stack, "Bus", event_bus_name=name("bus", 0, BUS_NAME)),
    )
    schedule = events.Schedule.rate(cdk.Duration.days(7))
    endpoint_names = []
    for index in range(EVERY_TRIGGER_ENDPOINTS):
        endpoint_name = name("endpoint", index)
        endpoint_names.append(endpoint_name)
        EndpointRightsizing(
            engine,
            f"Endpoint{index:02d}",
            engine=engine,
            endpoint_name=endpoint_name,
            variant_name=name("variant", index),
            model_name=name("model", index),
            container_config=ContainerConfig(
                domain="NATURAL_LANGUAGE_PROCESSING",
                task="FILL_MASK",
                framework="PYTORCH",
                framework_version="2.1",
                sample_payload_url=f"s3://{name('bucket', index)}/payloads/sample.tar.gz",
                supported_content_types=["application/json"],
            ),
            job=RecommenderJob.advanced(instance_types=LONG_INSTANCE_TYPES),
            slo=LatencySlo.p99(cdk.Duration.millis(150)),
            peak_requests_per_minute=120000,
            guardrails=Guardrails(
                min_instances=1,
                max_instances=100,
                allowed_instance_types=LONG_INSTANCE_TYPES,
                max_cost_per_hour=1000,
                min_saving_percent=10,
                min_saving_per_month=100,
            ),
            apply_mode=ApplyMode.AUTO,
            deployment=Deployment.canary(
                percent=10,
                wait=cdk.Duration.minutes(10),
                rollback_alarms=[name(f"alarm{index:02d}-", a, ALARM_NAME) for a in range(10)],
            ),
            schedule=schedule,
            model_approval=ModelApproval(model_package_group_name=name("group", index)),
            latency_alarm=LatencyAlarm(breaching_for=cdk.Duration.minutes(3)),
            audit_finding=AuditFinding(classifications=["Underprovisioned", "Overprovisioned"]),
        )
    UtilizationAudit(stack, "NamedAudit", endpoint_names=endpoint_names, engine=engine)
    UtilizationAudit(
        stack,
        "TaggedAudit",
        tags={name("key", 0, TAG_KEY): name("value", 0, TAG_VALUE)},
        engine=engine,
    )
    UtilizationAudit(stack, "AccountAudit", engine=engine)
    return stack


def full_schedule_stack(app: cdk.App) -> cdk.Stack:
    """Endpoints of the longest names on one schedule, their grants listed ARN by ARN."""
    stack = cdk.Stack(app, STACK_NAMES[1], env=cdk.Environment(account=ACCOUNT, region=REGION))
    schedule = events.Schedule.rate(cdk.Duration.days(1))
    for index in range(FULL_SCHEDULE_ENDPOINTS):
        group = name("group", index)
        EndpointRightsizing(
            stack,
            f"Endpoint{index:02d}",
            endpoint_name=name("endpoint", index),
            variant_name=name("variant", index),
            model_package_version_arn=stack.format_arn(
                service="sagemaker", resource="model-package", resource_name=f"{group}/1"
            ),
            slo=LatencySlo.p99(cdk.Duration.millis(150)),
            peak_requests_per_minute=120000,
            schedule=schedule,
            model_approval=ModelApproval(model_package_group_name=group),
        )
    return stack


def build(app: cdk.App) -> list[cdk.Stack]:
    """Both stacks, in ``app``."""
    return [every_trigger_stack(app), full_schedule_stack(app)]


if __name__ == "__main__":
    cdk_app = cdk.App()
    build(cdk_app)
    cdk_app.synth()
