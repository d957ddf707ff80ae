"""EventBridge's size limits, met at synth time (botocore's model: Input and InputTemplate
8,192 characters, EventPattern 4,096), with the longest names SageMaker allows."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.assertions import Template

from rightsizing_constructs.triggers import (
    ENDPOINTS_PER_SCHEDULE_TARGET,
    EVENT_PATTERN_LIMIT,
    MAX_NAME_LENGTH,
    TARGET_INPUT_LIMIT,
    ScheduleRules,
    trigger_rule,
    worst_case_length,
)
from tests.infra import stack

LONGEST = "e" * MAX_NAME_LENGTH


def schedule_inputs(endpoints: int) -> list[list[str]]:
    """The Input of every target of the schedule rules, for ``endpoints`` longest names."""
    scope = stack()
    machine = sfn.StateMachine(
        scope, "Machine", definition_body=sfn.DefinitionBody.from_chainable(sfn.Pass(scope, "P"))
    )
    rules = ScheduleRules(scope, machine, sqs.Queue(scope, "DeadLetters"))
    schedule = events.Schedule.rate(cdk.Duration.days(7))
    for i in range(endpoints):
        rules.add(schedule, f"{LONGEST[:-3]}{i:03d}", "v" * MAX_NAME_LENGTH)
    found = Template.from_stack(scope).find_resources("AWS::Events::Rule")
    return [[t["Input"] for t in rule["Properties"]["Targets"]] for rule in found.values()]


def test_a_full_schedule_target_of_the_longest_names_fits_eventbridges_input_limit() -> None:
    assert (TARGET_INPUT_LIMIT, EVENT_PATTERN_LIMIT) == (8192, 4096)  # botocore's model
    assert ENDPOINTS_PER_SCHEDULE_TARGET == 49
    [[first, second]] = schedule_inputs(ENDPOINTS_PER_SCHEDULE_TARGET + 1)
    assert len(json.loads(first)["scheduled"]) == 49
    assert TARGET_INPUT_LIMIT - 165 < len(first) <= TARGET_INPUT_LIMIT  # full, and within
    assert len(json.loads(second)["scheduled"]) == 1


def test_the_old_sixty_entries_of_the_longest_names_would_not_fit() -> None:
    """The defect this pins: 60 entries a target were about 9,900 characters."""
    entry = {"endpoint_name": LONGEST, "variant_name": "v" * MAX_NAME_LENGTH}
    assert len(json.dumps({"scheduled": [entry] * 60}, separators=(",", ":"))) > 9_800


def rule_with(scope: cdk.Stack, text: str, pattern_values: int = 1) -> events.Rule:
    queue = sqs.Queue(scope, "Queue")
    return trigger_rule(
        scope,
        "Rule",
        description="test",
        bus=events.EventBus.from_event_bus_name(scope, "Bus", "default"),
        patterns=[{"source": ["x"], "detail": {"v": [f"{i:04d}" for i in range(pattern_values)]}}],
        target=targets.SqsQueue(
            queue,
            message=events.RuleTargetInput.from_object(
                {"text": text, "arn": queue.queue_arn, "source": events.EventField.source}
            ),
        ),
    )


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
