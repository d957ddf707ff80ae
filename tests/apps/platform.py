#!/usr/bin/env python3
"""A platform engineer's app (issue #12): three stacks, composed the way the README teaches.

- ``PlatformNetwork``: the VPC (private subnets with egress, flow logs);
- ``PlatformRightsizing``: the platform team's engine, on a custom bus, with a customer managed
  key, the network stack's VPC and the platform's own alerts topic (under that key); an audit
  of every endpoint tagged ``team=search`` whose findings start runs;
- ``PlatformTeamSearch``: a team's endpoints, on the platform's engine (``engine=`` across
  stacks), with every trigger.

What users rely on is asserted in ``tests/test_composition.py`` (one engine per stack, the
brought topic's grants, a rule that hears the audit's findings), and ``make compliance``
synthesizes it with every cdk-nag pack and runs cfn-lint, checkov and the fidelity checks::

    cdk synth --app "python -m tests.apps.platform" --output cdk.out.platform
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns

from rightsizing_constructs import (
    AuditFinding,
    EndpointAccess,
    EndpointRightsizing,
    Guardrails,
    LatencyAlarm,
    LatencySlo,
    ModelApproval,
    RightsizingEngine,
    UtilizationAudit,
)
from tests.apps.every_option import ACCOUNT, NAG_PACKS, REGION

STACKS = ("PlatformNetwork", "PlatformRightsizing", "PlatformTeamSearch")
ENV = cdk.Environment(account=ACCOUNT, region=REGION)


def network_stack(app: cdk.App) -> tuple[cdk.Stack, ec2.Vpc]:
    """The network team's VPC: the engine's functions run in its private subnets."""
    stack = cdk.Stack(app, STACKS[0], env=ENV)
    vpc = ec2.Vpc(
        stack,
        "Vpc",
        max_azs=2,
        nat_gateways=1,
        subnet_configuration=[
            ec2.SubnetConfiguration(
                name="public", subnet_type=ec2.SubnetType.PUBLIC, map_public_ip_on_launch=False
            ),
            ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        ],
    )
    flow_log_key = kms.Key(
        stack, "FlowLogKey", description="network: VPC flow logs", enable_key_rotation=True
    )
    flow_log_key.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal(f"logs.{REGION}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
            resources=["*"],
        )
    )
    vpc.add_flow_log(
        "FlowLog",
        destination=ec2.FlowLogDestination.to_cloud_watch_logs(
            logs.LogGroup(
                stack,
                "FlowLogs",
                retention=logs.RetentionDays.ONE_YEAR,
                encryption_key=flow_log_key,
            )
        ),
    )
    # The network team's own decisions, not the library's: the NAT gateway needs a route to the
    # internet gateway, and CDK's flow log role keeps its statements inline.
    for pack in ("NIST.800.53.R5", "HIPAA.Security", "PCI.DSS.321"):
        cdk.Validations.of(stack).acknowledge(
            cdk.Acknowledgment(
                id=f"{pack}::{pack}-VPCNoUnrestrictedRouteToIGW",
                reason="The public subnets hold only the NAT gateway the private subnets reach "
                "AWS's APIs through; nothing runs in them.",
            ),
            cdk.Acknowledgment(
                id=f"{pack}::{pack}-IAMNoInlinePolicy",
                reason="CDK's flow log role keeps its one statement in a policy of its own.",
            ),
        )
    return stack, vpc


def platform_stack(app: cdk.App, vpc: ec2.IVpc) -> tuple[cdk.Stack, RightsizingEngine]:
    """The platform team's engine: its bus, key, VPC and alerts topic."""
    stack = cdk.Stack(app, STACKS[1], env=ENV)
    key = kms.Key(
        stack, "Key", description="platform: rightsizing ledger, logs", enable_key_rotation=True
    )
    alerts = sns.Topic(stack, "Alerts", topic_name="platform-alerts", master_key=key)
    engine = RightsizingEngine(
        stack,
        "Rightsizing",
        event_bus=events.EventBus(stack, "Bus", event_bus_name="platform-rightsizing"),
        topic=alerts,
        encryption_key=key,
        vpc=vpc,
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        max_concurrent_jobs=3,
        endpoint_access=EndpointAccess.tagged("team", "search"),
    )
    UtilizationAudit(stack, "SearchAudit", engine=engine, tags={"team": "search"})
    return stack, engine


def team_stack(app: cdk.App, engine: RightsizingEngine) -> cdk.Stack:
    """A team's endpoints, rightsized by the platform's engine."""
    stack = cdk.Stack(app, STACKS[2], env=ENV)
    for name, group in [("search-ranker", "search-ranker"), ("query-embedder", "embedder")]:
        EndpointRightsizing(
            stack,
            name,
            engine=engine,
            endpoint_name=name,
            model_package_version_arn=stack.format_arn(
                service="sagemaker", resource="model-package", resource_name=f"{group}/4"
            ),
            slo=LatencySlo.p99(cdk.Duration.millis(120)),
            peak_requests_per_minute=9000,
            guardrails=Guardrails(min_instances=2, max_instances=12),
            schedule=events.Schedule.cron(minute="0", hour="4", week_day="MON"),
            model_approval=ModelApproval(model_package_group_name=group),
            latency_alarm=LatencyAlarm(breaching_for=cdk.Duration.minutes(10)),
            audit_finding=AuditFinding(),
        )
    return stack


def build(app: cdk.App) -> list[cdk.Stack]:
    """The three stacks, in ``app``."""
    # What `cdk synth` would look up and keep in cdk.context.json: the Region's zones (given
    # here, so synth needs no AWS credentials).
    app.node.set_context(
        f"availability-zones:account={ACCOUNT}:region={REGION}", [f"{REGION}a", f"{REGION}b"]
    )
    network, vpc = network_stack(app)
    platform, engine = platform_stack(app, vpc)
    return [network, platform, team_stack(app, engine)]


if __name__ == "__main__":
    cdk_app = cdk.App()
    cdk.Validations.of(cdk_app).add_plugins(*(pack(cdk_app) for pack in NAG_PACKS))
    build(cdk_app)
    cdk_app.synth()
