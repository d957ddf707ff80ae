"""The rules that start runs: an endpoint's triggers, the shared schedules, the orphaned-job rule.

Each rightsized endpoint has one rule whose ``$or`` pattern matches every event that starts a
run for it (or applies a recommendation to it) and whose target input carries its settings
document (README, "Triggers"); with a custom bus, AWS's own events (model approvals, alarms)
need a second rule on the default bus. Endpoints on the same schedule share the engine's
schedule rules. The ``StopOrphanedJob`` rule stops the IR job of an execution that was aborted
or timed out (DESIGN.md invariant 6); the ``FinishInterruptedApply`` rule finishes an Apply run
that was (invariants 1 and 5).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import jsii
from aws_cdk import Duration, IResolveContext, IStableAnyProducer, Lazy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IValidation

from ._nag import ALARM_READ_BY_RULE
from ._runtime import import_runtime
from .event_types import (
    ALARM_STATE_CHANGE,
    EVENT_SOURCE,
    FINDING_DETAIL_TYPE,
    MODEL_PACKAGE_STATE_CHANGE,
    RECOMMENDATION_DETAIL_TYPE,
    RUN_REQUESTED_DETAIL_TYPE,
)
from .settings import AuditFinding, LatencyAlarm, LatencySlo, ModelApproval

_EVENTS_MODEL = import_runtime("aws").service_model("events")
#: EventBridge's limit on a target's ``Input`` and ``InputTemplate`` (botocore's model of
#: PutTargets; "Amazon EventBridge quotas").
TARGET_INPUT_LIMIT: int = _EVENTS_MODEL.shape_for("Target").members["Input"].metadata["max"]
#: EventBridge's limit on a rule's event pattern (botocore's model of PutRule).
EVENT_PATTERN_LIMIT: int = (
    _EVENTS_MODEL.operation_model("PutRule").input_shape.members["EventPattern"].metadata["max"]
)
#: EventBridge's limit on targets per rule.
TARGETS_PER_RULE = 5
#: The longest endpoint and variant names SageMaker allows (``EndpointName``, ``VariantName``).
MAX_NAME_LENGTH = 63
_WORST_ENTRY = json.dumps(
    {"endpoint_name": "e" * MAX_NAME_LENGTH, "variant_name": "v" * MAX_NAME_LENGTH},
    separators=(",", ":"),
)
_LIST_WRAPPER = len(json.dumps({"scheduled": []}, separators=(",", ":")))
#: Endpoints listed in one schedule target's input: as many entries of the longest names as fit
#: in a target's input (49: 16 characters of wrapper, 164 per entry and a comma between).
ENDPOINTS_PER_SCHEDULE_TARGET = (TARGET_INPUT_LIMIT - _LIST_WRAPPER + 1) // (len(_WORST_ENTRY) + 1)
# What an unresolved value can become at deploy time, at most: a partition, an account, a Region,
# and anything else (an ARN of a role or queue the stack creates; 256 is generous for those).
_PSEUDO_LENGTHS = {"AWS::Partition": 10, "AWS::AccountId": 12, "AWS::Region": 16}
_OTHER_TOKEN_LENGTH = 256
#: How often a rule target retries delivery before the event goes to the dead-letter queue.
RULE_RETRY_ATTEMPTS = 8
_MICROSECONDS_PER_MILLISECOND = 1000


# -- An endpoint's triggers ----------------------------------------------------------------------


def endpoint_patterns(
    *,
    endpoint_name: str,
    variant_name: str,
    applies: bool,
    model_approval: ModelApproval | None,
    audit_finding: AuditFinding | None,
    latency_alarm: cloudwatch.IAlarm | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The event patterns that concern one endpoint variant.

    Returns the library's own events (on the engine's bus) and AWS's events (on the default
    bus only): a run request, an audit finding, an ``apply`` recommendation; a model approval
    in its group, its latency alarm going into ALARM.
    """
    endpoint = {"endpoint_name": [endpoint_name], "variant_name": [variant_name]}
    library_events: list[dict[str, Any]] = [
        {
            "source": [EVENT_SOURCE],
            "detail-type": [RUN_REQUESTED_DETAIL_TYPE],
            "detail": endpoint,
        }
    ]
    if audit_finding is not None:
        library_events.append(
            {
                "source": [EVENT_SOURCE],
                "detail-type": [FINDING_DETAIL_TYPE],
                "detail": {**endpoint, "classification": list(audit_finding.classifications)},
            }
        )
    if applies:
        library_events.append(
            {
                "source": [EVENT_SOURCE],
                "detail-type": [RECOMMENDATION_DETAIL_TYPE],
                "detail": {**endpoint, "action": ["apply"]},
            }
        )
    aws_events: list[dict[str, Any]] = []
    if model_approval is not None:
        aws_events.append(
            {
                "source": ["aws.sagemaker"],
                "detail-type": [MODEL_PACKAGE_STATE_CHANGE],
                "detail": {
                    "ModelPackageGroupName": [model_approval.model_package_group_name],
                    "ModelApprovalStatus": ["Approved"],
                },
            }
        )
    if latency_alarm is not None:
        aws_events.append(
            {
                "source": ["aws.cloudwatch"],
                "detail-type": [ALARM_STATE_CHANGE],
                "resources": [latency_alarm.alarm_arn],
                "detail": {"state": {"value": ["ALARM"]}},
            }
        )
    return library_events, aws_events


def trigger_rule(
    scope: Construct,
    construct_id: str,
    *,
    description: str,
    bus: events.IEventBus,
    patterns: Sequence[dict[str, Any]],
    target: events.IRuleTarget,
) -> events.Rule:
    """One rule matching any of ``patterns`` (EventBridge ``$or``), delivering to ``target``."""
    rule = events.Rule(
        scope,
        construct_id,
        description=description,
        event_bus=bus,
        # Replaced below: CDK's EventPattern has no $or.
        event_pattern=events.EventPattern(source=[EVENT_SOURCE]),
        targets=[target],
    )
    cfn_rule = rule.node.default_child
    assert isinstance(cfn_rule, events.CfnRule)
    # Overrides merge into the placeholder: drop its source, or it would AND every branch.
    pattern = patterns[0] if len(patterns) == 1 else {"$or": list(patterns)}
    cfn_rule.add_property_override("EventPattern", pattern)
    if len(patterns) > 1:
        cfn_rule.add_property_deletion_override("EventPattern.source")
    limit_sizes(rule, pattern)
    return rule


def run_target(
    state_machine: sfn.IStateMachine,
    *,
    settings: dict[str, Any],
    apply_settings: dict[str, Any] | None,
    dead_letter_queue: sqs.IQueue,
) -> targets.SfnStateMachine:
    """The Recommend workflow, started with an endpoint's settings and the event that matched."""
    return targets.SfnStateMachine(
        state_machine,
        input=events.RuleTargetInput.from_object(
            {
                "settings": settings,
                "apply_settings": apply_settings,
                "trigger": {
                    "source": events.EventField.source,
                    "detail_type": events.EventField.detail_type,
                    "event": events.EventField.from_path("$"),
                },
            }
        ),
        retry_attempts=RULE_RETRY_ATTEMPTS,
        dead_letter_queue=dead_letter_queue,
    )


def latency_alarm(
    scope: Construct,
    *,
    endpoint_name: str,
    variant_name: str,
    slo: LatencySlo,
    trigger: LatencyAlarm,
) -> cloudwatch.Alarm:
    """``ModelLatency`` (microseconds) at the SLO's percentile above the SLO for N minutes."""
    alarm = cloudwatch.Alarm(
        scope,
        "LatencyAlarm",
        alarm_description=(
            f"{slo.percentile.value} ModelLatency of {endpoint_name}/{variant_name} "
            f"above {slo.max_latency_ms} ms for {trigger.minutes} minutes: starts a "
            "rightsizing run"
        ),
        metric=cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name="ModelLatency",
            dimensions_map={"EndpointName": endpoint_name, "VariantName": variant_name},
            statistic=slo.percentile.value.lower(),
            period=Duration.minutes(1),
        ),
        threshold=slo.max_latency_ms * _MICROSECONDS_PER_MILLISECOND,
        evaluation_periods=trigger.minutes,
        datapoints_to_alarm=trigger.minutes,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    ALARM_READ_BY_RULE.apply(alarm)
    return alarm


# -- Shared schedules ----------------------------------------------------------------------------


class ScheduleRules:
    """The engine's schedule rules: endpoints on the same schedule share them.

    Each target lists up to ``ENDPOINTS_PER_SCHEDULE_TARGET`` endpoints (within EventBridge's
    8 KB target input) and a rule has up to ``TARGETS_PER_RULE`` targets. The Recommend
    workflow turns the list into one "Rightsizing Run Requested" event per endpoint
    (``RequestScheduledRuns``), which the endpoint's own rule starts with its settings: a
    schedule adds no resource per endpoint.
    """

    def __init__(
        self, scope: Construct, state_machine: sfn.IStateMachine, dead_letter_queue: sqs.IQueue
    ) -> None:
        self._scope = scope
        self._state_machine = state_machine
        self._dead_letter_queue = dead_letter_queue
        # Schedule expression -> its rules, and the endpoint list of each of their targets
        # (target i is on rule i // TARGETS_PER_RULE).
        self._rules: dict[str, list[events.Rule]] = {}
        self._lists: dict[str, list[list[dict[str, str]]]] = {}

    def add(self, schedule: events.Schedule, endpoint_name: str, variant_name: str) -> None:
        """Request runs of ``endpoint_name``/``variant_name`` on ``schedule``."""
        expression = schedule.expression_string
        rules = self._rules.setdefault(expression, [])
        lists = self._lists.setdefault(expression, [])
        if not lists or len(lists[-1]) >= ENDPOINTS_PER_SCHEDULE_TARGET:
            if len(lists) % TARGETS_PER_RULE == 0:
                rules.append(
                    events.Rule(
                        self._scope,
                        f"Schedule{sum(len(r) for r in self._rules.values())}",
                        description=f"Requests scheduled rightsizing runs ({expression})",
                        schedule=schedule,
                    )
                )
            lists.append([])
            limit_sizes(rules[-1])
            rules[-1].add_target(
                targets.SfnStateMachine(
                    self._state_machine,
                    input=events.RuleTargetInput.from_object(
                        {"scheduled": Lazy.any(_ListProducer(lists[-1]))}
                    ),
                    retry_attempts=RULE_RETRY_ATTEMPTS,
                    dead_letter_queue=self._dead_letter_queue,
                )
            )
        lists[-1].append({"endpoint_name": endpoint_name, "variant_name": variant_name})


def limit_sizes(rule: events.Rule, pattern: dict[str, Any] | None = None) -> None:
    """Fail ``cdk synth`` before a rule would cross EventBridge's size limits at deploy time.

    Checked once every endpoint was added: each target's ``Input``/``InputTemplate`` against
    ``TARGET_INPUT_LIMIT`` and ``pattern`` (the rule's, as overridden) against
    ``EVENT_PATTERN_LIMIT``, counting what a deploy-time value may become at most
    (``_PSEUDO_LENGTHS``, ``_OTHER_TOKEN_LENGTH``). ``cdk synth`` runs the check
    (``aws_cdk.assertions`` skips construct validations).
    """
    rule.node.add_validation(_RuleSizes(rule, pattern))


@jsii.implements(IValidation)
class _RuleSizes:
    def __init__(self, rule: events.Rule, pattern: dict[str, Any] | None) -> None:
        self._rule = rule
        self._pattern = pattern

    def validate(self) -> list[str]:
        cfn_rule = self._rule.node.default_child
        assert isinstance(cfn_rule, events.CfnRule)
        stack = Stack.of(self._rule)
        problems = []
        for target in stack.resolve(cfn_rule.targets) or []:
            transformer = target.get("inputTransformer") or {}
            for name, value in (
                ("Input", target.get("input")),
                ("InputTemplate", transformer.get("inputTemplate")),
            ):
                size = worst_case_length(value)
                if size > TARGET_INPUT_LIMIT:
                    problems.append(
                        f"target {target['id']}'s {name} can reach {size} characters, over "
                        f"EventBridge's {TARGET_INPUT_LIMIT}: shorten the endpoint's settings "
                        "(container config, names) or split the endpoints over more constructs"
                    )
        pattern = stack.resolve(self._pattern)
        size = worst_case_length(None if pattern is None else json.dumps(pattern))
        if size > EVENT_PATTERN_LIMIT:
            problems.append(
                f"the event pattern can reach {size} characters, over EventBridge's "
                f"{EVENT_PATTERN_LIMIT}"
            )
        return problems


def worst_case_length(value: Any) -> int:
    """The most characters a resolved template value can have once deployed."""
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return len(separator) * max(len(parts) - 1, 0) + sum(worst_case_length(p) for p in parts)
    if isinstance(value, dict) and "Ref" in value:
        return _PSEUDO_LENGTHS.get(value["Ref"], _OTHER_TOKEN_LENGTH)
    if isinstance(value, dict):
        return _OTHER_TOKEN_LENGTH
    return len(json.dumps(value))


@jsii.implements(IStableAnyProducer)
class _ListProducer:
    """The endpoints of one schedule target, rendered once every endpoint was added."""

    def __init__(self, items: list[dict[str, str]]) -> None:
        self._items = items

    def produce(self, _context: IResolveContext | None = None) -> Any:
        return list(self._items)


# -- Cleanup -------------------------------------------------------------------------------------


def stop_orphaned_job_rule(
    scope: Construct,
    *,
    state_machine: sfn.IStateMachine,
    stop_job: lambda_.IFunction,
    job_slots: lambda_.IFunction,
    max_concurrent_jobs: int,
    dead_letter_queue: sqs.IQueue,
) -> events.Rule:
    """Stop the job, and free the slot, of an execution that was aborted or timed out."""
    execution_arn = events.EventField.from_path("$.detail.executionArn")
    return events.Rule(
        scope,
        "StopOrphanedJob",
        description="Stops the IR job of a rightsizing run that was aborted or timed out",
        event_pattern=events.EventPattern(
            source=["aws.states"],
            detail_type=["Step Functions Execution Status Change"],
            detail={
                "status": ["ABORTED", "TIMED_OUT"],
                "stateMachineArn": [state_machine.state_machine_arn],
            },
        ),
        targets=[
            targets.LambdaFunction(
                stop_job,
                event=events.RuleTargetInput.from_object(
                    {
                        "execution_arn": execution_arn,
                        "reason": events.EventField.from_path("$.detail.status"),
                    }
                ),
                retry_attempts=RULE_RETRY_ATTEMPTS,
                dead_letter_queue=dead_letter_queue,
            ),
            targets.LambdaFunction(
                job_slots,
                event=events.RuleTargetInput.from_object(
                    {
                        "action": "release",
                        "execution_arn": execution_arn,
                        "max_concurrent_jobs": max_concurrent_jobs,
                    }
                ),
                retry_attempts=RULE_RETRY_ATTEMPTS,
                dead_letter_queue=dead_letter_queue,
            ),
        ],
    )


def finish_interrupted_apply_rule(
    scope: Construct,
    *,
    state_machine: sfn.IStateMachine,
    dead_letter_queue: sqs.IQueue | None,
) -> events.Rule:
    """Start the Apply workflow to finish a run of it that was aborted or timed out.

    The new execution gets ``{"interrupted": {"execution_arn", "status", "input"}}``: it takes
    over the run's lock, makes autoscaling match what the endpoint serves, records ``failed``
    with the reason and releases the lock (``rightsizing_runtime.apply_steps.take_over``).
    Status-change events are best effort: without one, the lock expires and the next run that
    takes it restores the autoscaling stored with it (README, "Applying a recommendation").
    """
    return events.Rule(
        scope,
        "FinishInterruptedApply",
        description="Finishes a rightsizing apply run that was aborted or timed out",
        event_pattern=events.EventPattern(
            source=["aws.states"],
            detail_type=["Step Functions Execution Status Change"],
            detail={
                "status": ["ABORTED", "TIMED_OUT"],
                "stateMachineArn": [state_machine.state_machine_arn],
            },
        ),
        targets=[
            targets.SfnStateMachine(
                state_machine,
                input=events.RuleTargetInput.from_object(
                    {
                        "interrupted": {
                            "execution_arn": events.EventField.from_path("$.detail.executionArn"),
                            "status": events.EventField.from_path("$.detail.status"),
                            "input": events.EventField.from_path("$.detail.input"),
                        }
                    }
                ),
                retry_attempts=RULE_RETRY_ATTEMPTS,
                dead_letter_queue=dead_letter_queue,
            )
        ],
    )
