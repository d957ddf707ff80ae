"""EventBridge's size limits, met at synth time (botocore's model: Input and InputTemplate
8,192 characters, EventPattern 4,096), with the longest names SageMaker allows."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

from rightsizing_constructs import EndpointRightsizing, LatencySlo, RightsizingEngine
from rightsizing_constructs.triggers import (
    EVENT_PATTERN_LIMIT,
    MAX_NAME_LENGTH,
    TARGET_INPUT_LIMIT,
    limit_sizes,
    worst_case_length,
)
from tests.infra import ACCOUNT, REGION, stack

LONGEST = "e" * MAX_NAME_LENGTH


def rule_inputs(endpoints: int) -> list[str]:
    """Every rule target's Input or InputTemplate, for ``endpoints`` endpoints of the longest
    names on one schedule."""
    scope = stack()
    engine = RightsizingEngine(scope, "Engine")
    for i in range(endpoints):
        EndpointRightsizing(
            scope,
            f"Endpoint{i}",
            engine=engine,
            endpoint_name=f"{LONGEST[:-3]}{i:03d}",
            variant_name="v" * MAX_NAME_LENGTH,
            model_package_version_arn=(
                f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/m-{i}/1"
            ),
            slo=LatencySlo.p99(cdk.Duration.millis(200)),
            peak_requests_per_minute=100,
            schedule=events.Schedule.rate(cdk.Duration.days(7)),
        )
    found = Template.from_stack(scope).find_resources("AWS::Events::Rule")
    return sorted(
        json.dumps(t.get("Input") or t.get("InputTransformer"), sort_keys=True)
        for rule in found.values()
        for t in rule["Properties"]["Targets"]
    )


def test_rule_inputs_do_not_grow_with_the_fleet() -> None:
    """The endpoints' settings and names are in the registry: a schedule's target names only
    its expression, whatever the number of endpoints on it (it once listed them, and 60 of
    the longest names crossed EventBridge's 8,192 characters)."""
    assert (TARGET_INPUT_LIMIT, EVENT_PATTERN_LIMIT) == (8192, 4096)  # botocore's model
    one, sixty = rule_inputs(1), rule_inputs(60)
    assert one == sixty
    inputs = [json.loads(i) for i in one]
    assert json.dumps({"scheduled": "rate(7 days)"}, separators=(",", ":")) in inputs


def rule_with(scope: cdk.Stack, text: str, pattern_values: int = 1) -> events.Rule:
    queue = sqs.Queue(scope, "Queue")
    pattern = {"source": ["x"], "detail": {"v": [f"{i:04d}" for i in range(pattern_values)]}}
    rule = events.Rule(
        scope,
        "Rule",
        event_pattern=events.EventPattern(source=["x"], detail=pattern["detail"]),
        targets=[
            targets.SqsQueue(
                queue,
                message=events.RuleTargetInput.from_object(
                    {"text": text, "arn": queue.queue_arn, "source": events.EventField.source}
                ),
            )
        ],
    )
    limit_sizes(rule, pattern)
    return rule


def test_an_input_that_could_exceed_the_limit_fails_synth_with_advice() -> None:
    scope = stack()
    # The queue's ARN is a token: counted at its worst-case length, 256.
    rule_with(scope, "x" * (TARGET_INPUT_LIMIT - 250))
    with pytest.raises(
        Exception, match=r"InputTemplate can reach \d+ characters, over EventBridge's 8192"
    ):
        Template.from_stack(scope)


def test_an_input_within_the_limit_synthesizes() -> None:
    scope = stack()
    rule_with(scope, "x" * 1000)
    assembly = scope.node.root.synth()  # runs the construct validations, as cdk synth does
    assert assembly.get_stack_by_name("Test").template["Resources"]


def test_a_pattern_over_the_limit_fails_synth() -> None:
    scope = stack()
    rule_with(scope, "short", pattern_values=700)
    with pytest.raises(Exception, match=r"the event pattern can reach .* over EventBridge's 4096"):
        scope.node.root.synth()


def test_worst_case_length_counts_deploy_time_values_at_their_longest() -> None:
    joined = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":x:", {"Ref": "Role"}]]}
    assert worst_case_length(joined) == 4 + 10 + 3 + 256
    assert worst_case_length({"Fn::GetAtt": ["Role", "Arn"]}) == 256
    assert worst_case_length({"Fn::Join": [",", ["a", "b", "c"]]}) == 5
    assert worst_case_length(None) == 0
