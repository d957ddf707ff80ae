"""cdk-nag's AwsSolutions pack as a test: zero unacknowledged findings, acknowledgments narrow."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks

from rightsizing_constructs import (
    ContainerConfig,
    Guardrails,
    LatencyPercentile,
    LatencySlo,
    LatencyThreshold,
    Phase,
    RecommenderJob,
    StoppingConditions,
    TrafficPattern,
)
from tests.infra import rightsizing, stack


def findings(scope: cdk.Stack) -> list[str]:
    """The rule names of every unacknowledged AwsSolutions finding in the scope's app."""
    app = scope.node.root
    result = AwsSolutionsChecks().validate_scope(app)
    return [
        f"{violation.rule_name} at {[r.construct_path for r in violation.violating_resources]}"
        for violation in result.violations
    ]


def test_minimal_settings_have_no_findings() -> None:
    scope = stack()
    rightsizing(scope)
    assert findings(scope) == []


def test_every_option_has_no_findings() -> None:
    scope = stack()
    rightsizing(
        scope,
        construct_id="Advanced",
        endpoint_name="search-ranker",
        variant_name="Blue",
        model_package_version_arn=None,
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
        ),
        poll_interval=cdk.Duration.minutes(10),
        timeout=cdk.Duration.hours(5),
    )
    assert findings(scope) == []


def test_acknowledgments_are_per_resource_not_blanket() -> None:
    """A wildcard nobody reviewed still fails: the library acknowledges each one by name."""
    scope = stack()
    construct = rightsizing(scope)
    construct.engine.start_job_function.add_to_role_policy(
        iam.PolicyStatement(actions=["s3:GetObject"], resources=["arn:aws:s3:::payloads/*"])
    )
    [finding] = findings(scope)
    assert "AwsSolutions-IAM5[Resource::arn:aws:s3:::payloads/*]" in finding
    assert "StartJobRole" in finding
