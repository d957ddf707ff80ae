#!/usr/bin/env python3
"""Example app: rightsize one endpoint, with every trigger. Needs no AWS account to synthesize.

``make synth`` runs it through the real ``cdk synth``, with cdk-nag's AwsSolutions, Serverless,
NIST 800-53 rev 5, HIPAA Security and PCI DSS 3.2.1 packs as policy-validation plugins:
synthesis fails if any finding is not acknowledged (README, "Compliance").
"""

import aws_cdk as cdk
from aws_cdk import aws_events as events
from cdk_nag import (
    AwsSolutionsChecks,
    HIPAASecurityChecks,
    NIST80053R5Checks,
    PCIDSS321Checks,
    ServerlessChecks,
)

from rightsizing_constructs import (
    EndpointRightsizing,
    Guardrails,
    LatencyAlarm,
    LatencySlo,
    ModelApproval,
)

app = cdk.App()
# Validations.of(app) runs the packs on every stack at synth time (cdk-nag 3 plugin API).
cdk.Validations.of(app).add_plugins(
    AwsSolutionsChecks(app),
    ServerlessChecks(app),
    NIST80053R5Checks(app),
    HIPAASecurityChecks(app),
    PCIDSS321Checks(app),
)

stack = cdk.Stack(app, "RightsizingExample")
EndpointRightsizing(
    stack,
    "FraudScoring",
    endpoint_name="fraud-scoring",
    model_package_version_arn=stack.format_arn(
        service="sagemaker", resource="model-package", resource_name="fraud-scoring/3"
    ),
    slo=LatencySlo.p99(cdk.Duration.millis(150)),
    peak_requests_per_minute=3000,
    guardrails=Guardrails(
        min_instances=2,
        max_instances=8,
        allowed_instance_types=["ml.c5", "ml.m5"],
        min_saving_percent=10,
    ),
    schedule=events.Schedule.rate(cdk.Duration.days(7)),
    model_approval=ModelApproval(model_package_group_name="fraud-scoring"),
    latency_alarm=LatencyAlarm(breaching_for=cdk.Duration.minutes(5)),
)
app.synth()
