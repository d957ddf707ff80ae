"""The Recommend workflow: a trigger -> an IR load test -> a decision -> a recommendation event.

A Standard state machine (IR jobs run for hours), read top to bottom as the run goes::

    Route (the registry) -> RouteAction?
                 -> fan_out (a schedule, an approval for several endpoints): RequestRuns
                 -> apply (an ``apply`` recommendation): StartApply (the Apply workflow)
                 -> ignore: RecordIgnored? (an event naming an unknown endpoint is recorded)
                 -> run: Prepare -> AcquireJobSlot (wait while K jobs run)
                    -> StartJob -> StartPolling -> WaitForJob -> DescribeJob -> JobFinished?
        running, polls left -> CountPoll -> WaitBetweenPolls -> DescribeJob (poll again)
        running, budget spent -> JobTimedOut -> StopJob -> ...
        finished -> ReleaseJobSlot -> SelectRecommendation -> PutRecommendationEvent
                    -> RecordRecommendation -> NotifyRecommendation -> Done
    model version not served -> RecordMismatch -> NotifySkipped -> Skipped
    any error  -> StopJob -> ReleaseSlotAfterFailure -> RecordFailure -> NotifyFailure -> Failed

There is no IR completion event, so the workflow polls ``DescribeInferenceRecommendationsJob``
on each endpoint's schedule (:mod:`._poll_schedule`): a first wait of two thirds of the job's
expected duration (``$.settings.first_poll_seconds``), then every ``poll_interval``, at most
60 s, ``max_polls`` times at most (up to the endpoint's ``timeout``). An execution
that is aborted or hits the state machine's own timeout runs no further state; the engine's
``StopOrphanedJob`` rule catches its status-change event, stops the job and frees its slot
(DESIGN.md invariant 6).

The states are built in the engine's scope (their construct IDs are the engine's children).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from ._nag import acknowledge_wildcard
from ._poll_schedule import poll_gap_seconds
from ._workflow import (
    ScheduledPollNames,
    invoke,
    notify,
    put_event,
    scheduled_poll,
    standard_state_machine,
)
from .event_types import (
    RECOMMENDATION_DETAIL_TYPE,
    RUN_REQUESTED_DETAIL_TYPE,
)
from .job_role import JOB_NAMES_REASON, job_arns
from .ledger import record_recommendation_run

#: The longest ``timeout`` an endpoint may set; the state machine's own timeout covers it.
MAX_JOB_TIMEOUT = Duration.hours(24)
# The state machine's own timeout is a backstop behind the workflow's poll budget.
_STATE_MACHINE_TIMEOUT_MARGIN = Duration.hours(1)
# Step Functions names an SDK integration's error <Service>.<error shape>, with an "Exception"
# suffix when the shape has none ("AWS SDK service integrations", Step Functions developer
# guide): DescribeInferenceRecommendationsJob's one modeled error is ResourceNotFound.
_JOB_NOT_FOUND = "SageMaker.ResourceNotFoundException"
_RUNNING_JOB_STATUSES = ("PENDING", "IN_PROGRESS", "STOPPING")


@dataclass(frozen=True, kw_only=True)
class RecommendFunctions:
    """The functions the Recommend workflow invokes."""

    #: Route: what an event means for which endpoints (reads the registry).
    route: lambda_.IFunction
    #: Prepare (checks the endpoint and the trigger) and StartJob (starts the IR job).
    start_job: lambda_.IFunction
    #: Takes and frees the IR job slots.
    job_slots: lambda_.IFunction
    #: The decision (``SelectRecommendation``).
    select: lambda_.IFunction
    #: Stops the IR job of a failed run.
    stop_job: lambda_.IFunction


@dataclass(kw_only=True)
class RecommendWorkflow:
    """Builds the Recommend state machine in ``scope`` (the engine)."""

    scope: Construct
    functions: RecommendFunctions
    ledger: dynamodb.ITable
    topic: sns.ITopic
    event_bus: events.IEventBus
    apply_state_machine: sfn.IStateMachine
    poll_interval: Duration
    max_concurrent_jobs: int
    queue_timeout: Duration
    encryption_key: kms.IKey | None

    def __post_init__(self) -> None:
        self._job_arns = job_arns(self.scope)
        self._invalid_input = sfn.Fail(
            self.scope,
            "InvalidInput",
            error="InvalidInput",
            cause="The input is no event a rightsizing run starts on: start runs with a "
            '\'Rightsizing Run Requested\' event, or with {"endpoint_name", "variant_name"}.',
        )

    def state_machine(self) -> sfn.StateMachine:
        """The state machine, logged and traced (``StateMachine`` in the engine)."""
        functions = self.functions
        state_machine = standard_state_machine(
            self.scope,
            comment="Rightsizing of SageMaker endpoints: Inference Recommender, then a decision",
            definition=self._route(self._recommend()),
            timeout=self.queue_timeout.plus(MAX_JOB_TIMEOUT).plus(_STATE_MACHINE_TIMEOUT_MARGIN),
            encryption_key=self.encryption_key,
            invoked=(
                functions.route,
                functions.start_job,
                functions.job_slots,
                functions.select,
                functions.stop_job,
            ),
        )
        acknowledge_wildcard(state_machine.role, self._job_arns, JOB_NAMES_REASON)
        return state_machine

    # -- Routing: what the event means for which endpoints --------------------------------------

    def _route(self, recommend: sfn.IChainable) -> sfn.Chain:
        """Route (the registry) -> a run, an apply, runs of several endpoints, or nothing."""
        scope = self.scope
        route = invoke(
            scope,
            "RouteTask",
            state_name="Route",
            function=self.functions.route,
            payload={"input": sfn.JsonPath.entire_payload},
            result_path="$",
            calls_aws=False,  # the registry is a file in its layer
        )
        route.add_catch(self._invalid_input, errors=["InvalidTriggerError"], result_path="$.error")
        action = "$.route.action"
        recorded = sfn.Choice(scope, "RecordIgnored?").when(
            sfn.Condition.boolean_equals("$.route.record", True),
            self._record_ignored().next(sfn.Succeed(scope, "Ignored")),
        )
        recorded.otherwise(sfn.Succeed(scope, "NothingToDo"))
        return route.next(
            sfn.Choice(scope, "RouteAction")
            .when(sfn.Condition.string_equals(action, "run"), recommend)
            .when(sfn.Condition.string_equals(action, "apply"), self._start_apply())
            .when(
                sfn.Condition.string_equals(action, "fan_out"),
                self._request_runs().next(sfn.Succeed(scope, "RunsRequested")),
            )
            .otherwise(recorded)
        )

    def _request_runs(self) -> sfn.Map:
        """One "Rightsizing Run Requested" event per endpoint Route names.

        The endpoints of a schedule, or of an approval in a group several endpoints serve.
        """
        request_run = put_event(
            self.scope,
            "RequestRun",
            detail=sfn.TaskInput.from_json_path_at("$"),
            detail_type=RUN_REQUESTED_DETAIL_TYPE,
            event_bus=self.event_bus,
        )
        fan_out = sfn.Map(
            self.scope,
            "RequestRuns",
            comment="One 'Rightsizing Run Requested' event per endpoint to run",
            items_path="$.route.requests",
            max_concurrency=10,
            result_path=sfn.JsonPath.DISCARD,
        )
        fan_out.item_processor(request_run)
        return fan_out

    def _start_apply(self) -> sfn.Chain:
        """An ``apply`` recommendation for an endpoint in AUTO mode starts the Apply workflow."""
        start_apply = tasks.StepFunctionsStartExecution(
            self.scope,
            "StartApply",
            state_machine=self.apply_state_machine,
            input=sfn.TaskInput.from_object(
                {
                    "recommendation": sfn.JsonPath.object_at("$.recommendation"),
                    "settings": sfn.JsonPath.object_at("$.apply_settings"),
                }
            ),
            integration_pattern=sfn.IntegrationPattern.REQUEST_RESPONSE,
            result_path=sfn.JsonPath.DISCARD,
        )
        start_apply.add_retry(
            errors=["States.TaskFailed"], interval=Duration.seconds(5), max_attempts=4
        )
        return start_apply.next(sfn.Succeed(self.scope, "ApplyStarted"))

    def _record_ignored(self) -> sfn.TaskStateBase:
        """An event that names an endpoint the engine does not rightsize, in the ledger."""
        return record_recommendation_run(
            self.scope,
            "RecordIgnored",
            ledger=self.ledger,
            outcome="ignored",
            reason=sfn.JsonPath.string_at("$.route.reason"),
            record=sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.route")),
            endpoint_name_path="$.route.endpoint_name",
            sort_key_prefix="ignored",
        )

    # -- A run: prepare, take a slot, start the job, poll, decide ------------------------------

    def _recommend(self) -> sfn.Chain:
        """Prepare -> AcquireJobSlot -> StartJob -> the poll loop; errors to the failure path."""
        functions = self.functions
        prepare = self._invoke(
            "Prepare",
            functions.start_job,
            {
                "step": "prepare",
                "settings": sfn.JsonPath.object_at("$.settings"),
                "trigger": sfn.JsonPath.object_at("$.trigger"),
            },
            result_path="$.settings",
        )
        acquire_slot = self._slots("AcquireJobSlot", "acquire", "$.slot")
        acquire_slot.add_retry(
            errors=["NoJobSlotError"],
            interval=self.poll_interval,
            max_attempts=math.ceil(
                self.queue_timeout.to_seconds() / self.poll_interval.to_seconds()
            ),
            backoff_rate=1,
        )
        start_job = self._invoke(
            "StartJob",
            functions.start_job,
            {
                "step": "start",
                "settings": sfn.JsonPath.object_at("$.settings"),
                "execution_arn": sfn.JsonPath.execution_id,
            },
            result_path="$.job",
        )
        describe = self._describe_job()
        release_slot = self._slots("ReleaseJobSlot", "release", sfn.JsonPath.DISCARD)
        select = self._invoke(
            "SelectRecommendation",
            functions.select,
            {
                "settings": sfn.JsonPath.object_at("$.settings"),
                "job": sfn.JsonPath.object_at("$.job"),
            },
            result_path="$.recommendation.detail",
        )
        put_event = self._put_recommendation_event()
        failure_path = self._failure_path()
        prepare.add_catch(
            self._mismatch_path(), errors=["ModelMismatchError"], result_path="$.error"
        )
        for state in (prepare, acquire_slot, start_job, describe, release_slot, select, put_event):
            state.add_catch(failure_path, errors=["States.ALL"], result_path="$.error")
        poll = scheduled_poll(
            self.scope,
            names=ScheduledPollNames(
                start="StartPolling",
                first_wait="WaitForJob",
                wait="WaitBetweenPolls",
                count="CountPoll",
                finished="JobFinished",
            ),
            check=describe,
            status_path="$.job_status.status",
            busy_statuses=_RUNNING_JOB_STATUSES,
            # Each endpoint's own first wait (two thirds of its job's expected duration), then
            # the engine's poll_interval, at most 60 s (_poll_schedule.py).
            first_wait_path="$.settings.first_poll_seconds",
            interval=Duration.seconds(poll_gap_seconds(int(self.poll_interval.to_seconds()))),
            max_polls_path="$.settings.max_polls",
            on_timeout=self._job_timed_out().next(failure_path),
            # COMPLETED, FAILED, STOPPED, DELETING, DELETED: the Select handler decides or
            # raises with IR's failure reason.
            on_done=release_slot.next(select).next(put_event).next(self._record_and_notify()),
        )
        return prepare.next(acquire_slot).next(start_job).next(poll)

    def _job_timed_out(self) -> sfn.Pass:
        """The poll budget is spent: an error for the failure path, which stops the job."""
        return sfn.Pass(
            self.scope,
            "JobTimedOut",
            parameters={
                "Error": "JobTimedOut",
                "Cause": sfn.JsonPath.format(
                    "The recommendation job {} did not finish within {} seconds; it is being "
                    "stopped.",
                    sfn.JsonPath.string_at("$.job.job_name"),
                    sfn.JsonPath.string_at("$.settings.timeout_seconds"),
                ),
            },
            result_path="$.error",
        )

    def _describe_job(self) -> tasks.CallAwsService:
        """One poll of the IR job (an SDK integration: no Lambda for a read)."""
        describe = tasks.CallAwsService(
            self.scope,
            "DescribeJob",
            service="sagemaker",
            action="describeInferenceRecommendationsJob",
            parameters={"JobName": sfn.JsonPath.string_at("$.job.job_name")},
            iam_resources=[self._job_arns],
            iam_action="sagemaker:DescribeInferenceRecommendationsJob",
            # Status is always present; FailureReason is not, and selecting a missing field fails
            # the state, so the Select handler reads the reason itself.
            result_selector={"status": sfn.JsonPath.string_at("$.Status")},
            result_path="$.job_status",
        )
        # A job that does not exist will not appear: fail at once (SageMaker models this error,
        # so Step Functions names it SageMaker.ResourceNotFoundException).
        describe.add_retry(errors=[_JOB_NOT_FOUND], max_attempts=0)
        # Anything else is retried: the poll is an idempotent read, and throttling and 5xx are
        # unmodeled in SageMaker's model, so Step Functions names them generically
        # (SageMaker.SageMakerException). States.TaskFailed matches every error but a timeout
        # ("Error names", Step Functions developer guide); retriers apply in order.
        describe.add_retry(
            errors=["States.TaskFailed"],
            interval=Duration.seconds(10),
            max_attempts=6,
            backoff_rate=2,
            jitter_strategy=sfn.JitterType.FULL,
        )
        return describe

    def _put_recommendation_event(self) -> tasks.EventBridgePutEvents:
        """The recommendation event on the engine's bus: the seam to Apply and to anyone else."""
        return put_event(
            self.scope,
            "PutRecommendationEvent",
            detail=sfn.TaskInput.from_json_path_at("$.recommendation.detail"),
            detail_type=RECOMMENDATION_DETAIL_TYPE,
            event_bus=self.event_bus,
        )

    def _record_and_notify(self) -> sfn.Chain:
        """RecordRecommendation -> NotifyRecommendation -> Done (a failed record still notifies)."""
        detail = "$.recommendation.detail"
        notify = self._notify(
            "NotifyRecommendation",
            sfn.JsonPath.format(
                "Rightsizing {}: {}",
                sfn.JsonPath.string_at(f"{detail}.action"),
                sfn.JsonPath.string_at(f"{detail}.endpoint_name"),
            ),
            {
                "endpoint_name": sfn.JsonPath.string_at(f"{detail}.endpoint_name"),
                "variant_name": sfn.JsonPath.string_at(f"{detail}.variant_name"),
                "action": sfn.JsonPath.string_at(f"{detail}.action"),
                "reason": sfn.JsonPath.string_at(f"{detail}.reason"),
                "job_name": sfn.JsonPath.string_at(f"{detail}.job_name"),
                "execution": sfn.JsonPath.execution_id,
            },
        )
        # The decision record of every run (DESIGN.md invariant 5), in the ledger.
        record = self._record(
            "RecordRecommendation",
            outcome=sfn.JsonPath.string_at(f"{detail}.action"),
            reason=sfn.JsonPath.string_at(f"{detail}.reason"),
            record=sfn.JsonPath.json_to_string(sfn.JsonPath.object_at(detail)),
        )
        record.add_catch(notify, errors=["States.ALL"], result_path="$.record_error")
        return record.next(notify).next(sfn.Succeed(self.scope, "Done"))

    # -- When a run cannot go on ---------------------------------------------------------------

    def _failure_path(self) -> sfn.Chain:
        """StopJob -> ReleaseSlotAfterFailure -> RecordFailure -> NotifyFailure -> Failed.

        Failing to stop, free or record must not hide the original error from the notification.
        """
        scope = self.scope
        stop_job = self._invoke(
            "StopJob",
            self.functions.stop_job,
            {
                "execution_arn": sfn.JsonPath.execution_id,
                "reason": sfn.JsonPath.string_at("$.error.Error"),
            },
            result_path=sfn.JsonPath.DISCARD,
        )
        release = self._slots("ReleaseSlotAfterFailure", "release", sfn.JsonPath.DISCARD)
        notify = self._notify_endpoint("NotifyFailure", "Rightsizing failed: {}")
        record = self._record(
            "RecordFailure",
            outcome="failed",
            reason=sfn.JsonPath.string_at("$.error.Error"),
            record=sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.error")),
        )
        failed = sfn.Fail(scope, "Failed", error_path="$.error.Error", cause_path="$.error.Cause")
        path = stop_job.next(release).next(record).next(notify).next(failed)
        stop_job.add_catch(release, errors=["States.ALL"], result_path="$.stop_error")
        release.add_catch(record, errors=["States.ALL"], result_path="$.release_error")
        record.add_catch(notify, errors=["States.ALL"], result_path="$.record_error")
        return path

    def _mismatch_path(self) -> sfn.Chain:
        """The approved version is not the one served: RecordMismatch -> NotifySkipped."""
        notify = self._notify_endpoint("NotifySkipped", "Rightsizing skipped: {}")
        record = self._record(
            "RecordMismatch",
            outcome="model-mismatch",
            reason=sfn.JsonPath.string_at("$.error.Cause"),
            record=sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.error")),
        )
        record.add_catch(notify, errors=["States.ALL"], result_path="$.record_error")
        return record.next(notify).next(sfn.Succeed(self.scope, "Skipped"))

    # -- Task builders -------------------------------------------------------------------------

    def _invoke(
        self,
        state_name: str,
        function: lambda_.IFunction,
        payload: dict[str, Any],
        *,
        result_path: str,
    ) -> tasks.LambdaInvoke:
        # The construct ID keeps a ``Task`` suffix: the function itself holds the plain name.
        return invoke(
            self.scope,
            f"{state_name}Task",
            state_name=state_name,
            function=function,
            payload=payload,
            result_path=result_path,
        )

    def _slots(self, state_name: str, action: str, result_path: str) -> tasks.LambdaInvoke:
        payload: dict[str, Any] = {
            "action": action,
            "execution_arn": sfn.JsonPath.execution_id,
            "max_concurrent_jobs": self.max_concurrent_jobs,
        }
        if action == "acquire":
            # Held until the job ended: the poll budget plus a margin; then a dead run's slot
            # frees itself.
            payload["hold_seconds"] = sfn.JsonPath.number_at("$.settings.slot_hold_seconds")
        return self._invoke(state_name, self.functions.job_slots, payload, result_path=result_path)

    def _record(
        self, state_name: str, *, outcome: str, reason: str, record: str
    ) -> sfn.TaskStateBase:
        return record_recommendation_run(
            self.scope,
            state_name,
            ledger=self.ledger,
            outcome=outcome,
            reason=reason,
            record=record,
        )

    def _notify(self, state_name: str, subject: str, message: dict[str, Any]) -> sfn.TaskStateBase:
        return notify(self.scope, state_name, topic=self.topic, subject=subject, message=message)

    def _notify_endpoint(self, state_name: str, subject: str) -> sfn.TaskStateBase:
        """A notification about the run's endpoint and its error (``subject`` formats its name)."""
        return self._notify(
            state_name,
            sfn.JsonPath.format(subject, sfn.JsonPath.string_at("$.settings.endpoint_name")),
            {
                "endpoint_name": sfn.JsonPath.string_at("$.settings.endpoint_name"),
                "variant_name": sfn.JsonPath.string_at("$.settings.variant_name"),
                "error": sfn.JsonPath.string_at("$.error.Error"),
                "cause": sfn.JsonPath.string_at("$.error.Cause"),
                "execution": sfn.JsonPath.execution_id,
            },
        )
