#!/usr/bin/env python3
"""A test app where every name is as long as AWS allows: the worst case for size limits.

``tools/fidelity.py`` computes AWS's documented limits (EventBridge inputs and patterns,
alarm names and dimensions, policy and template sizes) on what this app synthesizes, because
sizes measured on short, typical names say nothing about what a user's names produce.

- the stack name has CloudFormation's maximum of 128 characters, so every name CloudFormation
  generates (roles, functions, alarms, ...) reaches its resource type's maximum;
- 60 endpoints (one schedule target's full list, ``ENDPOINTS_PER_SCHEDULE_TARGET``), each with
  a 63-character endpoint and variant name (SageMaker's ``EndpointName`` and ``VariantName``
  maximum), every trigger (a schedule shared by all, a model package group of 63 characters,
  a latency alarm, audit findings), an Advanced job over 10 of the longest instance type
  names, 10 rollback alarms of 255 characters (CloudWatch's ``AlarmName`` maximum) and a
  63-character model name;
- a custom event bus whose name has EventBridge's maximum of 256 characters, and audits by
  name (every endpoint), by a tag of maximum key and value length, and of the whole account.

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
    Guardrails,
    LatencyAlarm,
    LatencySlo,
    ModelApproval,
    RecommenderJob,
    RightsizingEngine,
    UtilizationAudit,
)
from rightsizing_constructs.engine import ENDPOINTS_PER_SCHEDULE_TARGET

ACCOUNT = "123456789012"
REGION = "us-east-1"
#: CloudFormation's maximum stack name length ("CloudFormation quotas").
STACK_NAME = ("RightsizingMaxNames" + "X" * 128)[:128]
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


def max_names_stack(app: cdk.App) -> cdk.Stack:
    """One engine with a custom bus and 60 endpoints whose every name is at AWS's maximum."""
    stack = cdk.Stack(app, STACK_NAME, env=cdk.Environment(account=ACCOUNT, region=REGION))
    engine = RightsizingEngine(
        stack,
        "Engine",
        event_bus=events.EventBus(stack, "Bus", event_bus_name=name("bus", 0, BUS_NAME)),
    )
    schedule = events.Schedule.rate(cdk.Duration.days(7))
    endpoint_names = []
    for index in range(ENDPOINTS_PER_SCHEDULE_TARGET):
        endpoint_name = name("endpoint", index)
        endpoint_names.append(endpoint_name)
        engine.add_endpoint(
            f"Endpoint{index:02d}",
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
            latency_alarm=LatencyAlarm(minutes=3),
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


if __name__ == "__main__":
    cdk_app = cdk.App()
    max_names_stack(cdk_app)
    cdk_app.synth()
