"""Pieces both workflows are built from: a bounded poll loop and a Standard state machine."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from ._nag import CDK_GRANT_POLICY, LOG_GROUP_SERVICE_KEY, acknowledge_wildcard
from ._runtime import import_runtime
from .event_types import EVENT_SOURCE

#: The error a handler raises when an AWS call failed with a retryable error (throttling, 5xx)
#: after botocore's own retries; the runtime owns the name (``rightsizing_runtime.errors``).
TRANSIENT_AWS_ERROR: str = import_runtime("errors").TransientAwsError.__name__
#: Step Functions' name for a throttled Invoke (the function's or the account's concurrency):
#: "Handle Lambda service exceptions", Step Functions developer guide.
LAMBDA_THROTTLED = "Lambda.TooManyRequestsException"


def invoke(
    scope: Construct,
    construct_id: str,
    *,
    state_name: str,
    function: lambda_.IFunction,
    payload: Mapping[str, Any],
    result_path: str,
    calls_aws: bool = True,
) -> tasks.LambdaInvoke:
    """A task that invokes ``function`` with ``payload`` and keeps only its return value.

    Besides CDK's retries of Lambda service errors (``Lambda.ServiceException``...), two
    errors are retried with backoff: a throttled invocation (the function's reserved concurrency
    or the account's limit, when a schedule starts a fleet at once), and, when the handler
    ``calls_aws``, an AWS call it could not make for throttling or a 5xx
    (``TransientAwsError``: every step is idempotent). Any other error reaches the state's
    Catch at once.
    """
    task = tasks.LambdaInvoke(
        scope,
        construct_id,
        state_name=state_name,
        lambda_function=function,
        payload=sfn.TaskInput.from_object(dict(payload)),
        payload_response_only=True,
        result_path=result_path,
    )
    task.add_retry(
        errors=[TRANSIENT_AWS_ERROR, LAMBDA_THROTTLED] if calls_aws else [LAMBDA_THROTTLED],
        interval=Duration.seconds(2),
        backoff_rate=2,
        max_attempts=8,
        jitter_strategy=sfn.JitterType.FULL,
    )
    return task


def notify(
    scope: Construct,
    state_name: str,
    *,
    topic: sns.ITopic,
    subject: str,
    message: Mapping[str, Any],
) -> tasks.SnsPublish:
    """A task that publishes ``message`` (JSON) to ``topic``, retried on a failed publish."""
    task = tasks.SnsPublish(
        scope,
        state_name,
        topic=topic,
        subject=subject,
        message=sfn.TaskInput.from_object(dict(message)),
        result_path=sfn.JsonPath.DISCARD,
    )
    task.add_retry(errors=["States.TaskFailed"], interval=Duration.seconds(5), max_attempts=4)
    return task


def put_event(
    scope: Construct,
    state_name: str,
    *,
    detail: sfn.TaskInput,
    detail_type: str,
    event_bus: events.IEventBus,
) -> tasks.EventBridgePutEvents:
    """A task that puts one of the library's events on ``event_bus``, retried on a failure.

    ``States.TaskFailed`` matches every task error but ``States.Timeout`` (Step Functions
    Developer Guide, "Error names"): throttling and ``EventBridge.FailedEntry`` alike.
    """
    task = tasks.EventBridgePutEvents(
        scope,
        state_name,
        entries=[
            tasks.EventBridgePutEventsEntry(
                detail=detail, detail_type=detail_type, source=EVENT_SOURCE, event_bus=event_bus
            )
        ],
        result_path=sfn.JsonPath.DISCARD,
    )
    task.add_retry(
        errors=["States.TaskFailed"], interval=Duration.seconds(5), max_attempts=4, backoff_rate=2
    )
    return task


def unsuccessful_executions(state_machine: sfn.IStateMachine) -> cloudwatch.MathExpression:
    """The machine's failed, timed-out and aborted executions, per 5 minutes."""
    return cloudwatch.MathExpression(
        expression="failed + timedout + aborted",
        using_metrics={
            "failed": state_machine.metric_failed(),
            "timedout": state_machine.metric_timed_out(),
            "aborted": state_machine.metric_aborted(),
        },
        period=Duration.minutes(5),
    )


def alarm_on_first(
    scope: Construct,
    construct_id: str,
    *,
    description: str,
    metric: cloudwatch.IMetric,
    topic: sns.ITopic,
) -> cloudwatch.Alarm:
    """An alarm that goes off on the first occurrence of ``metric`` and notifies ``topic``.

    Missing data is not breaching: no failure, no message, no alarm.
    """
    alarm = cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_description=description,
        metric=metric,
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))
    return alarm


def max_polls(timeout: Duration, poll_interval: Duration) -> int:
    """How many polls ``poll_interval`` apart fit in ``timeout``: ``ceil(timeout / interval)``."""
    return math.ceil(timeout.to_seconds() / poll_interval.to_seconds())


def status_is_any(path: str, statuses: Sequence[str]) -> sfn.Condition:
    """The string at ``path`` is one of ``statuses``."""
    return sfn.Condition.or_(*(sfn.Condition.string_equals(path, s) for s in statuses))


@dataclass(frozen=True)
class PollNames:
    """State names of one poll loop (they are public: tests, consoles and alarms show them)."""

    start: str
    wait: str
    count: str
    finished: str
    budget_spent: str


def bounded_poll(
    scope: Construct,
    *,
    names: PollNames,
    check: sfn.TaskStateBase,
    status_path: str,
    busy_statuses: Sequence[str],
    poll_interval: Duration,
    max_polls: int,
    on_timeout: sfn.IChainable,
    on_done: sfn.IChainable,
) -> sfn.Chain:
    """Wait, ``check``, and again while ``status_path`` is busy; at most ``max_polls`` times.

    The loop counts its polls rather than comparing clock times: Choice timestamp comparisons
    are strict about formats (moto's interpreter, for one, cannot compare
    ``$$.State.EnteredTime``), while a counter behaves the same everywhere.
    """
    spent = sfn.Condition.number_greater_than_equals("$.polls.count", max_polls)
    start = sfn.Pass(
        scope, names.start, result=sfn.Result.from_object({"count": 0}), result_path="$.polls"
    )
    wait = sfn.Wait(scope, names.wait, time=sfn.WaitTime.duration(poll_interval))
    count = _count_poll(scope, names.count)
    budget = sfn.Choice(scope, names.budget_spent).when(spent, on_timeout).otherwise(wait)
    finished = (
        sfn.Choice(scope, names.finished)
        .when(status_is_any(status_path, busy_statuses), count.next(budget))
        .otherwise(on_done)
    )
    return start.next(wait).next(check).next(finished)


@dataclass(frozen=True)
class ScheduledPollNames:
    """State names of a scheduled poll loop (public: tests, consoles and alarms show them)."""

    start: str
    first_wait: str
    wait: str
    count: str
    finished: str


def scheduled_poll(
    scope: Construct,
    *,
    names: ScheduledPollNames,
    check: sfn.TaskStateBase,
    status_path: str,
    busy_statuses: Sequence[str],
    first_wait_path: str,
    interval: Duration,
    max_polls_path: str,
    on_timeout: sfn.IChainable,
    on_done: sfn.IChainable,
) -> sfn.Chain:
    """Wait ``first_wait_path`` seconds, ``check``; while busy, wait ``interval`` and again.

    At most ``max_polls_path`` checks (numbers in the state: each endpoint's own schedule,
    :mod:`._poll_schedule`). Four states per poll (wait, check, finished, count), each a billed
    transition ("Standard Workflows pricing details", AWS Step Functions pricing): the budget
    check is a rule of ``finished`` rather than a state of its own. The loop counts its polls
    rather than comparing clock times: Choice timestamp comparisons are strict about formats
    (moto's interpreter, for one, cannot compare ``$$.State.EnteredTime``), while a counter
    behaves the same everywhere. ``$.polls.count`` is the number of the check just made.
    """
    busy = status_is_any(status_path, busy_statuses)
    start = sfn.Pass(
        scope, names.start, result=sfn.Result.from_object({"count": 1}), result_path="$.polls"
    )
    # SecondsPath: "an integer value" from the state's input ("Wait", Step Functions developer
    # guide); the settings document's first_poll_seconds is one.
    first_wait = sfn.Wait(scope, names.first_wait, time=sfn.WaitTime.seconds_path(first_wait_path))
    wait = sfn.Wait(scope, names.wait, time=sfn.WaitTime.duration(interval))
    count = _count_poll(scope, names.count)
    spent = sfn.Condition.number_greater_than_equals_json_path("$.polls.count", max_polls_path)
    finished = (
        sfn.Choice(scope, names.finished)
        .when(sfn.Condition.and_(busy, spent), on_timeout)
        .when(busy, count.next(wait).next(check))
        .otherwise(on_done)
    )
    return start.next(first_wait).next(check).next(finished)


def _count_poll(scope: Construct, state_name: str) -> sfn.Pass:
    """``$.polls.count`` plus one (States.MathAdd)."""
    return sfn.Pass(
        scope,
        state_name,
        parameters={"count": sfn.JsonPath.math_add(sfn.JsonPath.number_at("$.polls.count"), 1)},
        result_path="$.polls",
    )


def standard_state_machine(
    scope: Construct,
    *,
    comment: str,
    definition: sfn.IChainable,
    timeout: Duration,
    invoked: Sequence[lambda_.IFunction],
    encryption_key: kms.IKey | None = None,
) -> sfn.StateMachine:
    """A Standard state machine with logging ALL (a year), X-Ray, and its nag findings reviewed.

    ``invoked`` are the functions its LambdaInvoke tasks call; the log group is encrypted with
    ``encryption_key`` if given (else by CloudWatch Logs' own key, a waiver).
    """
    log_group = logs.LogGroup(
        scope, "Logs", retention=logs.RetentionDays.ONE_YEAR, encryption_key=encryption_key
    )
    if encryption_key is None:
        LOG_GROUP_SERVICE_KEY.apply(log_group)
    state_machine = sfn.StateMachine(
        scope,
        "StateMachine",
        comment=comment,
        definition_body=sfn.DefinitionBody.from_chainable(definition),
        state_machine_type=sfn.StateMachineType.STANDARD,
        timeout=timeout,
        tracing_enabled=True,
        logs=sfn.LogOptions(
            destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True
        ),
    )
    # Covers its execution role and the role rules use to start it (EventsRole).
    CDK_GRANT_POLICY.apply(state_machine)
    role = state_machine.role
    acknowledge_wildcard(
        role,
        "*",
        "CloudWatch Logs log delivery and X-Ray actions have no resource-level permissions.",
    )
    for function in invoked:
        acknowledge_wildcard(
            role,
            f"{function.function_arn}:*",
            "CDK's LambdaInvoke grants invoking the function's versions and aliases too.",
        )
    return state_machine
