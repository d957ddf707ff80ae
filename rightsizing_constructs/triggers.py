"""The rules that start runs, a few per engine whatever the fleet, and the cleanup rules.

Endpoints' settings are in the engine's registry (``registry.py``), so the rules route by name
and carry no endpoint's settings (docs/fleet.md). Per engine:

- ``Requests``, on the engine's bus: the library's own events, "Rightsizing Run Requested" for
  any endpoint, "Rightsizing Finding" of the classifications some endpoint listens to, and
  ``apply`` recommendations when some endpoint applies them;
- ``AwsEvents``, on the default bus (AWS's own events arrive only there), when some endpoint
  needs them: model package approvals and endpoints coming into service (a pending
  recommendation waits for the approved version to be served), and the state changes of the
  alarms named under the engine's prefix (``latency_alarm``);
- one ``Schedule<n>`` rule per schedule expression some endpoint runs on, naming only the
  expression.

The Recommend workflow's ``Route`` step decides what each event means for which endpoint. The
``StopOrphanedJob`` rule stops the IR job of an execution that was aborted or timed out
(DESIGN.md invariant 6); the ``FinishInterruptedApply`` rule finishes an Apply run that was
(invariants 1 and 5).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import jsii
from aws_cdk import Duration, Stack
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
    ENDPOINT_STATE_CHANGE,
    EVENT_SOURCE,
    FINDING_DETAIL_TYPE,
    MODEL_PACKAGE_STATE_CHANGE,
    RECOMMENDATION_DETAIL_TYPE,
    RUN_REQUESTED_DETAIL_TYPE,
)
from .settings import LatencyAlarm, LatencySlo

_EVENTS_MODEL = import_runtime("aws").service_model("events")
#: EventBridge's limit on a target's ``Input`` and ``InputTemplate`` (botocore's model of
#: PutTargets; "Amazon EventBridge quotas").
TARGET_INPUT_LIMIT: int = _EVENTS_MODEL.shape_for("Target").members["Input"].metadata["max"]
#: EventBridge's limit on a rule's event pattern (botocore's model of PutRule).
EVENT_PATTERN_LIMIT: int = (
    _EVENTS_MODEL.operation_model("PutRule").input_shape.members["EventPattern"].metadata["max"]
)
#: The longest endpoint and variant names SageMaker allows (``EndpointName``, ``VariantName``).
MAX_NAME_LENGTH = 63
#: How often a rule target retries delivery before the event goes to the dead-letter queue.
RULE_RETRY_ATTEMPTS = 8
# What an unresolved value can become at deploy time, at most: a partition, an account, a Region,
# and anything else (an ARN of a role or queue the stack creates; 256 is generous for those).
_PSEUDO_LENGTHS = {"AWS::Partition": 10, "AWS::AccountId": 12, "AWS::Region": 16}
_OTHER_TOKEN_LENGTH = 256
_MICROSECONDS_PER_MILLISECOND = 1000


# -- What the engine's endpoints listen to -------------------------------------------------------


class Listening:
    """The union of the endpoints' triggers: which branches the engine's rules need."""

    def __init__(self) -> None:
        self.schedules: dict[str, events.Schedule] = {}
        self.audit_classifications: set[str] = set()
        self.applies = False
        self.model_approvals = False
        self.latency_alarms = False

    def add(
        self,
        *,
        schedule: events.Schedule | None,
        audit_classifications: Sequence[str],
        applies: bool,
        model_approval: bool,
        latency_alarm: bool,
    ) -> None:
        """Count one endpoint's triggers."""
        if schedule is not None:
            self.schedules.setdefault(schedule.expression_string, schedule)
        self.audit_classifications.update(audit_classifications)
        self.applies = self.applies or applies
        self.model_approvals = self.model_approvals or model_approval
        self.latency_alarms = self.latency_alarms or latency_alarm


def library_patterns(listening: Listening) -> list[dict[str, Any]]:
    """The library's own events that concern some endpoint of the engine, on its bus."""
    patterns: list[dict[str, Any]] = [
        {"source": [EVENT_SOURCE], "detail-type": [RUN_REQUESTED_DETAIL_TYPE]}
    ]
    if listening.audit_classifications:
        patterns.append(
            {
                "source": [EVENT_SOURCE],
                "detail-type": [FINDING_DETAIL_TYPE],
                "detail": {"classification": sorted(listening.audit_classifications)},
            }
        )
    if listening.applies:
        patterns.append(
            {
                "source": [EVENT_SOURCE],
                "detail-type": [RECOMMENDATION_DETAIL_TYPE],
                "detail": {"action": ["apply"]},
            }
        )
    return patterns


def aws_patterns(listening: Listening, alarm_prefix: str) -> list[dict[str, Any]]:
    """AWS's own events that concern some endpoint of the engine (they come on the default bus)."""
    patterns: list[dict[str, Any]] = []
    if listening.model_approvals:
        patterns.append(
            {
                "source": ["aws.sagemaker"],
                "detail-type": [MODEL_PACKAGE_STATE_CHANGE],
                "detail": {"ModelApprovalStatus": ["Approved"]},
            }
        )
        # An approved version is sized before it ships; its recommendation is applied when the
        # endpoint serves it (SageMaker's endpoint events, EndpointStatus in upper snake case).
        patterns.append(
            {
                "source": ["aws.sagemaker"],
                "detail-type": [ENDPOINT_STATE_CHANGE],
                "detail": {"EndpointStatus": ["IN_SERVICE"]},
            }
        )
    if listening.latency_alarms:
        patterns.append(
            {
                "source": ["aws.cloudwatch"],
                "detail-type": [ALARM_STATE_CHANGE],
                "detail": {
                    "alarmName": [{"prefix": alarm_prefix}],
                    "state": {"value": ["ALARM"]},
                },
            }
        )
    return patterns


def event_rule(
    scope: Construct,
    construct_id: str,
    *,
    description: str,
    bus: events.IEventBus,
    patterns: Sequence[dict[str, Any]],
    state_machine: sfn.IStateMachine,
    dead_letter_queue: sqs.IQueue,
) -> events.Rule:
    """One rule matching any of ``patterns`` (EventBridge ``$or``), starting the workflow."""
    rule = events.Rule(
        scope,
        construct_id,
        description=description,
        event_bus=bus,
        # Replaced below: CDK's EventPattern has no $or.
        event_pattern=events.EventPattern(source=[EVENT_SOURCE]),
        targets=[
            targets.SfnStateMachine(
                state_machine,
                input=events.RuleTargetInput.from_object(
                    {
                        "trigger": {
                            "source": events.EventField.source,
                            "detail_type": events.EventField.detail_type,
                            "event": events.EventField.from_path("$"),
                        }
                    }
                ),
                retry_attempts=RULE_RETRY_ATTEMPTS,
                dead_letter_queue=dead_letter_queue,
            )
        ],
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


def schedule_rules(
    scope: Construct,
    schedules: dict[str, events.Schedule],
    *,
    state_machine: sfn.IStateMachine,
    dead_letter_queue: sqs.IQueue,
) -> list[events.Rule]:
    """One rule per schedule expression; its input names the expression, Route the endpoints."""
    rules = []
    for number, (expression, schedule) in enumerate(sorted(schedules.items())):
        rule = events.Rule(
            scope,
            f"Schedule{number}",
            description=f"Requests scheduled rightsizing runs ({expression})",
            schedule=schedule,
            targets=[
                targets.SfnStateMachine(
                    state_machine,
                    input=events.RuleTargetInput.from_object({"scheduled": expression}),
                    retry_attempts=RULE_RETRY_ATTEMPTS,
                    dead_letter_queue=dead_letter_queue,
                )
            ],
        )
        limit_sizes(rule)
        rules.append(rule)
    return rules


def latency_alarm(
    scope: Construct,
    construct_id: str,
    *,
    alarm_name: str,
    endpoint_name: str,
    variant_name: str,
    slo: LatencySlo,
    trigger: LatencyAlarm,
) -> cloudwatch.Alarm:
    """``ModelLatency`` (microseconds) at the SLO's percentile above the SLO for N minutes."""
    alarm = cloudwatch.Alarm(
        scope,
        construct_id,
        # Named under the engine's prefix: one rule of the engine hears every endpoint's alarm.
        alarm_name=alarm_name,
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


# -- EventBridge's size limits ----------------------------------------------------------------


def limit_sizes(rule: events.Rule, pattern: dict[str, Any] | None = None) -> None:
    """Fail ``cdk synth`` before a rule would cross EventBridge's size limits at deploy time.

    Checked when the app synthesizes: each target's ``Input``/``InputTemplate`` against
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
                        f"EventBridge's {TARGET_INPUT_LIMIT}"
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


def interrupted_executions(state_machine: sfn.IStateMachine) -> events.EventPattern:
    """Step Functions' status-change events of ``state_machine``'s aborted or timed-out runs."""
    return events.EventPattern(
        source=["aws.states"],
        detail_type=["Step Functions Execution Status Change"],
        detail={
            "status": ["ABORTED", "TIMED_OUT"],
            "stateMachineArn": [state_machine.state_machine_arn],
        },
    )


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
        event_pattern=interrupted_executions(state_machine),
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
        event_pattern=interrupted_executions(state_machine),
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
