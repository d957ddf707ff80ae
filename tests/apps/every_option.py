#!/usr/bin/env python3
"""A test app that uses every option of every public construct (``app.py`` is the short one).

Two stacks, because some options exclude each other ("bring your own or let us create it"):

- ``RightsizingEveryOption``: the engine creates everything, with a customer managed key,
  reserved concurrency, a VPC and a custom bus; four endpoints between them set every
  ``EndpointRightsizing`` option (every trigger, an Advanced job with phases, another with
  stairs, every deployment kind, rollback alarms by name and as alarms, every guardrail, a
  measured peak), an ``InferenceComponentRightsizing`` sets every option of its own, and
  three ``UtilizationAudit``s watch endpoints by name (with every audit option), by tags and
  all of them;
- ``RightsizingBringYourOwn``: the engine uses the team's own job role, topic, bus and ledger.

The security tests (``tests/test_compliance.py``) run every cdk-nag pack on both stacks, and
``make compliance`` runs cfn-lint and checkov on what the real ``cdk synth`` writes::

    cdk synth --app "python -m tests.apps.every_option" --output cdk.out.every-option
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from cdk_nag import (
    AwsSolutionsChecks,
    HIPAASecurityChecks,
    NIST80053R5Checks,
    PCIDSS321Checks,
    ServerlessChecks,
)

from rightsizing_constructs import (
    AIObjective,
    AIRecommendationJob,
    AIWorkload,
    ApplyMode,
    AuditFinding,
    ContainerConfig,
    Deployment,
    EndpointRightsizing,
    Guardrails,
    InferenceComponentRightsizing,
    InferenceFramework,
    LatencyAlarm,
    LatencyPercentile,
    LatencySlo,
    LatencyThreshold,
    LookbackPeriod,
    ModelApproval,
    PeakTraffic,
    Phase,
    RecommenderJob,
    RightsizingEngine,
    Stairs,
    StoppingConditions,
    TimeToFirstTokenSlo,
    TokenLatencyPercentile,
    TrafficPattern,
    UtilizationAudit,
    UtilizationBand,
    UtilizationPercentile,
)

ACCOUNT = "123456789012"
REGION = "us-east-1"
STACKS = ("RightsizingEveryOption", "RightsizingBringYourOwn")
#: The cdk-nag packs both apps must pass (each is a policy-validation plugin).
NAG_PACKS = (
    AwsSolutionsChecks,
    ServerlessChecks,
    NIST80053R5Checks,
    HIPAASecurityChecks,
    PCIDSS321Checks,
)


def every_option_stack(app: cdk.App) -> cdk.Stack:
    """The engine creates everything, with every optional setting; two endpoints."""
    stack = cdk.Stack(app, STACKS[0], env=cdk.Environment(account=ACCOUNT, region=REGION))
    vpc = ec2.Vpc.from_vpc_attributes(
        stack,
        "Vpc",
        vpc_id="vpc-0a1b2c3d4e5f67890",
        availability_zones=["us-east-1a", "us-east-1b"],
        private_subnet_ids=["subnet-0a1b2c3d4e5f67890", "subnet-0f9e8d7c6b5a43210"],
        private_subnet_route_table_ids=["rtb-0a1b2c3d4e5f67890", "rtb-0f9e8d7c6b5a43210"],
    )
    engine = RightsizingEngine(
        stack,
        "Engine",
        event_bus=events.EventBus(stack, "Bus", event_bus_name="rightsizing"),
        poll_interval=cdk.Duration.minutes(10),
        max_concurrent_jobs=3,
        queue_timeout=cdk.Duration.days(1),
        encryption_key=kms.Key(
            stack,
            "Key",
            description="rightsizing-constructs: ledger, topic, logs",
            enable_key_rotation=True,
        ),
        reserved_concurrency=5,
        vpc=vpc,
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
    )
    EndpointRightsizing(
        engine,
        "SearchRanker",
        engine=engine,
        endpoint_name="search-ranker",
        variant_name="Blue",
        model_name="search-ranker-model",
        container_config=ContainerConfig(
            domain="NATURAL_LANGUAGE_PROCESSING",
            task="FILL_MASK",
            framework="PYTORCH",
            framework_version="2.1",
            sample_payload_url="s3://payloads/search.tar.gz",
            supported_content_types=["application/json"],
        ),
        job=RecommenderJob.advanced(
            instance_types=["ml.c5.2xlarge", "ml.g5.xlarge"],
            traffic_pattern=TrafficPattern(
                phases=[
                    Phase(initial_number_of_users=1, spawn_rate=1, duration=cdk.Duration.minutes(2))
                ]
            ),
            stopping_conditions=StoppingConditions(
                max_invocations=6000,
                model_latency_threshold=LatencyThreshold(
                    percentile=LatencyPercentile.P95, value=cdk.Duration.millis(80)
                ),
            ),
            job_duration=cdk.Duration.hours(3),
            max_number_of_tests=2,
            max_parallel_of_tests=1,
        ),
        slo=LatencySlo.p95(cdk.Duration.millis(80)),
        peak_requests_per_minute=12000,
        target_utilization=0.6,
        guardrails=Guardrails(
            min_instances=2,
            max_instances=20,
            allowed_instance_types=["ml.c5", "ml.g5.xlarge"],
            max_cost_per_hour=25,
            min_saving_percent=10,
            min_saving_per_month=100,
        ),
        timeout=cdk.Duration.hours(5),
        apply_mode=ApplyMode.AUTO,
        deployment=Deployment.canary(
            percent=10, wait=cdk.Duration.minutes(10), rollback_alarms=["search-ranker-5xx"]
        ),
        schedule=events.Schedule.rate(cdk.Duration.days(7)),
        model_approval=ModelApproval(model_package_group_name="search-ranker"),
        latency_alarm=LatencyAlarm(breaching_for=cdk.Duration.minutes(3)),
        audit_finding=AuditFinding(classifications=["Underprovisioned", "Idle"]),
    )
    EndpointRightsizing(
        engine,
        "FraudScoring",
        engine=engine,
        endpoint_name="fraud-scoring",
        model_package_version_arn=stack.format_arn(
            service="sagemaker", resource="model-package", resource_name="fraud-scoring/3"
        ),
        job=RecommenderJob.advanced(
            instance_types=["ml.c5.xlarge", "ml.m5.xlarge"],
            traffic_pattern=TrafficPattern(
                stairs=Stairs(
                    duration=cdk.Duration.minutes(10), number_of_steps=5, users_per_step=2
                )
            ),
        ),
        slo=LatencySlo.p99(cdk.Duration.millis(150)),
        peak_requests_per_minute=3000,
        deployment=Deployment.linear(step_percent=25, wait=cdk.Duration.minutes(5)),
        # Its endpoint config has an execution role and an encrypted volume.
        execution_role=iam.Role.from_role_arn(
            stack, "FraudExecutionRole", f"arn:aws:iam::{ACCOUNT}:role/fraud-scoring-endpoint"
        ),
        kms_keys=[
            kms.Key.from_key_arn(
                stack,
                "FraudVolumeKey",
                f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0a1b2c3d-4e5f-6789-0abc-def012345678",
            )
        ],
        schedule=events.Schedule.cron(minute="0", hour="3", week_day="SUN"),
    )
    EndpointRightsizing(
        engine,
        "Recommendations",
        engine=engine,
        endpoint_name="recommendations",
        model_name="recommendations-model",
        container_config=ContainerConfig(
            domain="MACHINE_LEARNING",
            task="OTHER",
            framework="XGBOOST",
            sample_payload_url="s3://payloads/recommendations.tar.gz",
            supported_content_types=["text/csv"],
        ),
        slo=LatencySlo.p95(cdk.Duration.millis(200)),
        peak_requests_per_minute=600,
        # Measured: the 99.9th percentile minute of 30 days (5-minute data), plus half.
        peak_traffic=PeakTraffic.observed(
            lookback=cdk.Duration.days(30),
            percentile=99.9,
            growth=1.5,
            at_least=100,
            min_history=cdk.Duration.days(3),
        ),
        apply_mode=ApplyMode.RECOMMEND_ONLY,
        audit_finding=AuditFinding(),
    )
    # Rollback alarms as the team's own alarm objects (or names, as the canary above has).
    errors = cloudwatch.Alarm(
        stack,
        "ChurnErrors",
        metric=cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name="Invocation5XXErrors",
            dimensions_map={"EndpointName": "churn", "VariantName": "AllTraffic"},
            statistic="Sum",
            period=cdk.Duration.minutes(1),
        ),
        threshold=5,
        evaluation_periods=3,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    errors.add_alarm_action(cloudwatch_actions.SnsAction(engine.topic))
    EndpointRightsizing(
        stack,
        "Churn",
        engine=engine,
        endpoint_name="churn",
        model_package_version_arn=stack.format_arn(
            service="sagemaker", resource="model-package", resource_name="churn/12"
        ),
        slo=LatencySlo.p99(cdk.Duration.millis(100)),
        peak_requests_per_minute=900,
        deployment=Deployment.all_at_once(
            termination_wait=cdk.Duration.minutes(5), rollback_alarms=[errors]
        ),
    )
    # An LLM endpoint's inference component, with every option (README, "Inference
    # components"); its audit findings start runs.
    InferenceComponentRightsizing(
        stack,
        "Llama",
        engine=engine,
        endpoint_name="llm-endpoint",
        inference_component_name="llama-ic",
        variant_name="AllTraffic",
        model_data_url="s3://team-models/llama-3-8b/",
        output_location="s3://team-rightsizing/ai-jobs/",
        slo=TimeToFirstTokenSlo(
            percentile=TokenLatencyPercentile.P90, max_latency=cdk.Duration.millis(500)
        ),
        peak_concurrent_requests=40,
        workload=AIWorkload.tokens(
            concurrency=8,
            input_tokens_mean=550,
            input_tokens_stddev=150,
            output_tokens_mean=150,
            output_tokens_stddev=50,
        ),
        job=AIRecommendationJob(
            objective=AIObjective.TIME_TO_FIRST_TOKEN,
            instance_types=["ml.g5.2xlarge", "ml.g6.2xlarge", "ml.g6e.xlarge"],
            framework=InferenceFramework.VLLM,
            optimize_model=True,
        ),
        target_utilization=0.6,
        guardrails=Guardrails(max_instances=4, min_saving_percent=5),
        min_copies=2,
        hourly_prices={"ml.g5.2xlarge": 1.515, "ml.g6.2xlarge": 1.222, "ml.g6e.xlarge": 1.861},
        timeout=cdk.Duration.hours(6),
        apply_mode=ApplyMode.APPROVAL,
        approval_timeout=cdk.Duration.days(1),
        schedule=events.Schedule.rate(cdk.Duration.days(14)),
        audit_finding=AuditFinding(classifications=["Overprovisioned", "Idle"]),
    )
    # The three ways an audit finds its endpoints: by name, by tags, every one in service.
    UtilizationAudit(
        stack,
        "NamedAudit",
        endpoint_names=["search-ranker", "fraud-scoring", "recommendations"],
        lookback=LookbackPeriod.DAYS_32,
        percentile=UtilizationPercentile.P95,
        band=UtilizationBand(low=50, high=75),
        slo=LatencySlo.p99(cdk.Duration.millis(250)),
        schedule=events.Schedule.cron(minute="0", hour="6"),
        compute_optimizer=True,
        inference_components=["llama-ic"],
        compute_optimizer_idle=True,
        engine=engine,
    )
    UtilizationAudit(
        stack,
        "TaggedAudit",
        tags={"team": "search"},
        lookback=LookbackPeriod.DAYS_93,
        engine=engine,
    )
    UtilizationAudit(stack, "AccountAudit", engine=engine)
    # The fleet's dashboards, after the last endpoint (README, "Dashboards").
    engine.add_dashboard()
    return stack


def bring_your_own_stack(app: cdk.App) -> cdk.Stack:
    """The engine uses the team's own job role, topic, bus and ledger table."""
    stack = cdk.Stack(app, STACKS[1], env=cdk.Environment(account=ACCOUNT, region=REGION))
    engine = RightsizingEngine(
        stack,
        "Engine",
        job_role=iam.Role.from_role_name(stack, "JobRole", "team-inference-recommender"),
        topic=sns.Topic.from_topic_arn(
            stack, "Topic", f"arn:aws:sns:{REGION}:{ACCOUNT}:platform-alerts"
        ),
        event_bus=events.EventBus.from_event_bus_name(stack, "Bus", "platform"),
        ledger_table=dynamodb.Table.from_table_name(stack, "Ledger", "platform-rightsizing"),
    )
    # The platform team's topic is not in this app: the engine cannot add the alarms' statement
    # to its policy and warns; acknowledged once the statement is there.
    cdk.Annotations.of(engine).acknowledge_warning(
        "rightsizing-constructs:topicPolicyNotVisible",
        "platform-alerts' access policy allows this account's CloudWatch alarms to publish",
    )
    EndpointRightsizing(
        engine,
        "FraudScoring",
        engine=engine,
        endpoint_name="fraud-scoring",
        model_package_version_arn=stack.format_arn(
            service="sagemaker", resource="model-package", resource_name="fraud-scoring/3"
        ),
        slo=LatencySlo.p99(cdk.Duration.millis(150)),
        peak_requests_per_minute=3000,
    )
    return stack


def build(app: cdk.App) -> list[cdk.Stack]:
    """Both stacks, in ``app``."""
    return [every_option_stack(app), bring_your_own_stack(app)]


if __name__ == "__main__":
    cdk_app = cdk.App()
    cdk.Validations.of(cdk_app).add_plugins(*(pack(cdk_app) for pack in NAG_PACKS))
    build(cdk_app)
    cdk_app.synth()
