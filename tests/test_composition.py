"""Composing the constructs the way users do (issue #12): one engine per stack unless asked,
settings that say what is wrong with them, and the cross-checks between settings."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match, Template

from rightsizing_constructs import (
    FINDING_DETAIL_TYPE,
    LatencyAlarm,
    LatencyPercentile,
    LatencyThreshold,
    ModelApproval,
    RightsizingEngine,
    UtilizationAudit,
    UtilizationPercentile,
)
from rightsizing_constructs.settings import problems_of
from tests.apps import platform as platform_app
from tests.infra import ACCOUNT, REGION, rightsizing, stack


def state_machines(scope: cdk.Stack) -> int:
    return len(Template.from_stack(scope).find_resources("AWS::StepFunctions::StateMachine"))


def test_an_endpoint_without_engine_uses_the_engine_the_stack_already_has() -> None:
    """The README's fleet snippet then its endpoint snippet: one engine, not a hidden second."""
    scope = stack()
    engine = RightsizingEngine(scope, "Engine", max_concurrent_jobs=3)
    construct = rightsizing(scope)
    audit = UtilizationAudit(scope, "Audit")
    assert construct.engine is engine
    assert audit.engine is engine
    assert state_machines(scope) == 2  # Recommend and Apply, once


def test_with_two_engines_a_construct_must_say_which() -> None:
    scope = stack()
    RightsizingEngine(scope, "Blue")
    RightsizingEngine(scope, "Green")
    with pytest.raises(ValueError, match=r"has 2 rightsizing engines \(Test/Blue, Test/Green\)"):
        rightsizing(scope)


def test_an_engine_created_after_the_default_one_is_refused() -> None:
    scope = stack()
    rightsizing(scope)  # creates the stack's default engine
    with pytest.raises(ValueError, match="already has the default rightsizing engine"):
        RightsizingEngine(scope, "Mine")


def test_each_stack_gets_its_own_default_engine() -> None:
    app = cdk.App()
    env = cdk.Environment(account=ACCOUNT, region=REGION)
    first, second = cdk.Stack(app, "A", env=env), cdk.Stack(app, "B", env=env)
    assert rightsizing(first).engine is not rightsizing(second).engine


def test_a_model_package_of_another_region_is_refused() -> None:
    with pytest.raises(ValueError, match="is in eu-west-1, the stack in us-east-1"):
        rightsizing(
            model_package_version_arn=f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-package/f/3"
        )


def test_a_model_package_of_another_account_is_a_warning() -> None:
    scope = stack()
    rightsizing(
        scope,
        model_package_version_arn=f"arn:aws:sagemaker:{REGION}:444455556666:model-package/f/3",
    )
    warnings = Annotations.from_stack(scope).find_warning("*", Match.string_like_regexp("444455"))
    [warning] = warnings
    assert "needs a resource policy" in str(warning.entry.data)


def test_model_approvals_of_another_group_than_the_package_are_refused() -> None:
    with pytest.raises(ValueError, match=r"watches the group 'fraud', but .* of 'fraud-scoring'"):
        rightsizing(model_approval=ModelApproval(model_package_group_name="fraud"))


def test_model_approvals_of_the_packages_group_are_accepted() -> None:
    construct = rightsizing(model_approval=ModelApproval(model_package_group_name="fraud-scoring"))
    assert construct.model_approval is not None


@pytest.mark.parametrize(
    ("breaching_for", "message"),
    [
        (cdk.Duration.seconds(90), "got 1 minute 30 seconds"),
        (cdk.Duration.days(2), "from 1 minute to 1 day"),
        (5, "got 5"),
    ],
)
def test_latency_alarm_takes_a_duration_of_whole_minutes(breaching_for: Any, message: str) -> None:
    problems = problems_of(LatencyAlarm(breaching_for=breaching_for))
    assert len(problems) == 1 and "breaching_for must be a whole number of minutes" in problems[0]
    with pytest.raises(ValueError, match=rf"latency_alarm: breaching_for .*({message})"):
        rightsizing(latency_alarm=LatencyAlarm(breaching_for=breaching_for))


def test_latency_alarm_evaluates_every_minute_of_breaching_for() -> None:
    scope = stack()
    rightsizing(scope, latency_alarm=LatencyAlarm(breaching_for=cdk.Duration.minutes(7)))
    Template.from_stack(scope).has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"EvaluationPeriods": 7, "DatapointsToAlarm": 7, "Period": 60, "ExtendedStatistic": "p99"},
    )
    assert LatencyAlarm().minutes == 5


def test_latency_thresholds_have_factories_like_the_slo() -> None:
    p95 = LatencyThreshold.p95(cdk.Duration.millis(80))
    assert p95.percentile is LatencyPercentile.P95
    assert p95.value.to_milliseconds() == 80
    assert LatencyThreshold.p99(cdk.Duration.millis(80)).percentile is LatencyPercentile.P99
    assert problems_of(p95) == ()


def test_percentile_enums_are_named_and_valued_alike() -> None:
    assert [p.value for p in UtilizationPercentile] == ["P90", "P95", "P99"]
    assert [p.value for p in LatencyPercentile] == ["P95", "P99"]
    scope = stack()
    audit = UtilizationAudit(scope, "Audit", percentile=UtilizationPercentile.P95)
    assert audit.settings["percentile"] == "p95"  # CloudWatch's statistic


# -- The platform engineer's app (tests/apps/platform.py), as the README composes it ---------------


@pytest.fixture(scope="module")
def platform() -> dict[str, Template]:
    """Its three stacks, synthesized once: stack name -> template."""
    return {s.stack_name: Template.from_stack(s) for s in platform_app.build(cdk.App())}


def test_the_platform_app_has_one_engine_in_the_platform_stack(
    platform: dict[str, Template],
) -> None:
    network, rightsizing_stack, team = (platform[name] for name in platform_app.STACKS)
    count = "AWS::StepFunctions::StateMachine"
    assert len(rightsizing_stack.find_resources(count)) == 2  # Recommend and Apply, once
    assert network.find_resources(count) == {} and team.find_resources(count) == {}
    # The team's endpoints add no rule: their latency alarms, in the team's stack, are all.
    assert team.find_resources("AWS::Events::Rule") == {}
    assert len(team.find_resources("AWS::CloudWatch::Alarm")) == 2


def test_the_platforms_own_topic_and_key_get_the_grants_a_created_topic_gets(
    platform: dict[str, Template],
) -> None:
    template = platform[platform_app.STACKS[1]]
    [topic_id] = template.find_resources("AWS::SNS::Topic")
    [key_id] = template.find_resources("AWS::KMS::Key")
    assert template.find_resources("AWS::SNS::Topic")[topic_id]["Properties"]["KmsMasterKeyId"] == {
        "Fn::GetAtt": [key_id, "Arn"]
    }
    [policy] = template.find_resources("AWS::SNS::TopicPolicy").values()
    statements = {s.get("Sid"): s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert statements["CloudWatchAlarmsPublish"]["Principal"] == {
        "Service": "cloudwatch.amazonaws.com"
    }
    key_policy = template.find_resources("AWS::KMS::Key")[key_id]["Properties"]["KeyPolicy"]
    [alarms] = [s for s in key_policy["Statement"] if s.get("Sid") == "CloudWatchAlarmsUseForTopic"]
    assert alarms["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]


def test_the_audits_findings_reach_a_rule_of_the_engine_on_the_custom_bus(
    platform: dict[str, Template],
) -> None:
    template = platform[platform_app.STACKS[1]]
    [bus_id] = template.find_resources("AWS::Events::EventBus")
    hearing = [
        rule["Properties"]
        for rule in template.find_resources("AWS::Events::Rule").values()
        if rule["Properties"].get("EventBusName") == {"Ref": bus_id}
        and FINDING_DETAIL_TYPE in str(rule["Properties"].get("EventPattern"))
    ]
    assert len(hearing) == 1
    [audit] = [
        f["Properties"]
        for k, f in template.find_resources("AWS::Lambda::Function").items()
        if k.startswith("SearchAudit")
    ]
    assert audit["Environment"]["Variables"]["EVENT_BUS_NAME"] == {"Ref": bus_id}
