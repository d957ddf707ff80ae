"""The Recommend workflow: a trigger -> an IR load test -> a decision -> a recommendation event.

A Standard state machine (IR jobs run for hours), read top to bottom as the run goes::

    Route (the registry) -> RouteAction?
                 -> fan_out (a schedule, an approval for several endpoints): RequestRuns
                 -> apply (an ``apply`` recommendation): StartApply (the Apply workflow)
                 -> ignore: RecordIgnored? (an event naming an unknown endpoint is recorded)
                 -> run: Prepare -> LoadTest?
        a stored job measured this model -> ReuseJob -> SelectRecommendation (no load test)
        else -> AcquireJobSlot (wait while K jobs run)
                    -> StartJob -> StartPolling -> WaitForJob -> DescribeJob -> JobFinished?
        running, polls left -> CountPoll -> WaitBetweenPolls -> DescribeJob (poll again)
        running, budget spent -> JobTimedOut -> StopJob -> ...
        finished -> ReleaseJobSlot -> SelectRecommendation -> Pending?
                    -> (an approved version not served yet: PublishPending)
                    -> PutRecommendationEvent -> RecordRecommendation -> NotifyRecommendation
                    -> Done
    in service, nothing pending -> RecordNothingPending -> NothingPending
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
from ._recommend_routing import RouteStates
from ._runtime import import_runtime
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
# AIRecommendationJobStatus: InProgress, Completed, Failed, Stopping, Stopped (botocore's model).
_RUNNING_AI_JOB_STATUSES = ("InProgress", "Stopping")
# An inference component's run (component_job.KIND). Endpoints' settings have no kind, and a
# Choice rule on a missing path fails the run (States.Runtime): IsPresent first.
_IS_COMPONENT = sfn.Condition.and_(
    sfn.Condition.is_present("$.settings.kind"),
    sfn.Condition.string_equals("$.settings.kind", import_runtime("component_decision").KIND),
)


@dataclass(frozen=True, kw_only=True)
class RecommendFunctions:
    """The functions the Recommend workflow invokes."""

    #: Route: what an event means for which endpoints (reads the registry).
    route: lambda_.IFunction
    #: Prepare (checks the endpoint and the trigger, finds a job to reuse), StartJob (starts
    #: the IR job) and PublishPending (keeps a pending recommendation).
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
            definition=RouteStates(
                scope=self.scope,
                route_function=functions.route,
                ledger=self.ledger,
                event_bus=self.event_bus,
                apply_state_machine=self.apply_state_machine,
                invalid_input=self._invalid_input,
            ).chain(self._recommend()),
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

    # -- A run: prepare, take a slot, start the job, poll, decide ------------------------------

    def _recommend(self) -> sfn.Chain:
        """Prepare -> a stored job (ReuseJob) or a load test -> the decision.

        Every error goes to the failure path; an endpoint in service that nothing waits for,
        to RecordNothingPending.
        """
        prepare = self._invoke(
            "Prepare",
            self.functions.start_job,
            {
                "step": "prepare",
                "settings": sfn.JsonPath.object_at("$.settings"),
                "trigger": sfn.JsonPath.object_at("$.trigger"),
            },
            result_path="$.settings",
        )
        failure_path = self._failure_path()
        prepare.add_catch(
            self._nothing_pending_path(), errors=["NothingPendingError"], result_path="$.error"
        )
        prepare.add_catch(failure_path, errors=["States.ALL"], result_path="$.error")
        select, decide = self._decide(failure_path)
        # Prepare found a completed job that measured this very model under this very job
        # definition (measurements.py): decide from it, without a slot or a new load test.
        reuse = sfn.Pass(
            self.scope,
            "ReuseJob",
            parameters={"job_name": sfn.JsonPath.string_at("$.settings.reuse.job_name")},
            result_path="$.job",
        )
        reuse.next(select)
        return prepare.next(
            sfn.Choice(self.scope, "LoadTest?")
            .when(sfn.Condition.is_present("$.settings.reuse"), reuse)
            .otherwise(self._load_test(failure_path, decide))
        )

    def _load_test(self, failure_path: sfn.IChainable, decide: sfn.IChainable) -> sfn.Chain:
        """AcquireJobSlot -> StartJob -> the poll loop -> ReleaseJobSlot -> ``decide``."""
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
            self.functions.start_job,
            {
                "step": "start",
                "settings": sfn.JsonPath.object_at("$.settings"),
                "execution_arn": sfn.JsonPath.execution_id,
            },
            result_path="$.job",
        )
        describe = self._describe_job()
        describe_ai_job = self._describe_ai_job()
        release_slot = self._slots("ReleaseJobSlot", "release", sfn.JsonPath.DISCARD)
        for state in (acquire_slot, start_job, describe, describe_ai_job, release_slot):
            state.add_catch(failure_path, errors=["States.ALL"], result_path="$.error")
        ai_poll = self._ai_poll(describe_ai_job, failure_path, release_slot)
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
            on_done=release_slot.next(decide),
        )
        kind = sfn.Choice(self.scope, "JobKind?").when(_IS_COMPONENT, ai_poll).otherwise(poll)
        return acquire_slot.next(start_job).next(kind)

    def _ai_poll(
        self, describe: sfn.IChainable, failure_path: sfn.IChainable, done: sfn.IChainable
    ) -> sfn.Chain:
        """An inference component's poll of its AI job: the same schedule, another Describe."""
        return scheduled_poll(
            self.scope,
            names=ScheduledPollNames(
                start="StartPollingAIJob",
                first_wait="WaitForAIJob",
                wait="WaitBetweenAIJobPolls",
                count="CountAIJobPoll",
                finished="AIJobFinished",
            ),
            check=describe,  # type: ignore[arg-type]
            status_path="$.job_status.status",
            busy_statuses=_RUNNING_AI_JOB_STATUSES,
            first_wait_path="$.settings.first_poll_seconds",
            interval=Duration.seconds(poll_gap_seconds(int(self.poll_interval.to_seconds()))),
            max_polls_path="$.settings.max_polls",
            on_timeout=self._job_timed_out("AIJobTimedOut").next(failure_path),
            on_done=done,  # Completed, Failed, Stopped: Select decides or raises the reason
        )

    def _decide(self, failure_path: sfn.IChainable) -> tuple[sfn.TaskStateBase, sfn.Chain]:
        """The decision and its publication; returns Select and the chain from it.

        SelectRecommendation -> Pending? -> (PublishPending) -> PutRecommendationEvent ->
        RecordRecommendation -> NotifyRecommendation -> Done.
        """
        select = self._invoke(
            "SelectRecommendation",
            self.functions.select,
            {
                "settings": sfn.JsonPath.object_at("$.settings"),
                "job": sfn.JsonPath.object_at("$.job"),
            },
            result_path="$.recommendation.detail",
        )
        publish_pending = self._invoke(
            "PublishPending",
            self.functions.start_job,
            {
                "step": "publish_pending",
                "recommendation": sfn.JsonPath.object_at("$.recommendation.detail"),
            },
            result_path="$.published",
        )
        put_event = self._put_recommendation_event()
        for state in (select, publish_pending, put_event):
            state.add_catch(failure_path, errors=["States.ALL"], result_path="$.error")
        put_event.next(self._record_and_notify())
        # An approved version the endpoint does not serve yet: its recommendation is kept for
        # when it does (and for the pipeline that deploys it) before it is announced.
        chain = select.next(
            sfn.Choice(self.scope, "Pending?")
            .when(
                sfn.Condition.string_equals("$.recommendation.detail.action", "pending"),
                publish_pending.next(put_event),
            )
            .otherwise(put_event)
        )
        return select, chain

    def _job_timed_out(self, state_name: str = "JobTimedOut") -> sfn.Pass:
        """The poll budget is spent: an error for the failure path, which stops the job."""
        return sfn.Pass(
            self.scope,
            state_name,
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

    def _describe_ai_job(self) -> tasks.LambdaInvoke:
        """One poll of a component's AI job: StartJob's ``status`` step, not an SDK task.

        Step Functions spells SDK parameters as the AWS SDK for Java v2 names members, which
        for the ``AI...`` members nothing here can check; the handler's boto3 call is checked
        against botocore's model (tests/test_component_job.py).
        """
        return self._invoke(
            "DescribeAIJob",
            self.functions.start_job,
            {
                "step": "status",
                "settings": sfn.JsonPath.object_at("$.settings"),
                "job": sfn.JsonPath.object_at("$.job"),
            },
            result_path="$.job_status",
        )

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

    def _nothing_pending_path(self) -> sfn.Chain:
        """An endpoint in service that no pending recommendation waits for: recorded, done."""
        record = self._record(
            "RecordNothingPending",
            outcome="nothing-pending",
            reason=sfn.JsonPath.string_at("$.error.Cause"),
            record=sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.error")),
        )
        done = sfn.Succeed(self.scope, "NothingPending")
        record.add_catch(done, errors=["States.ALL"], result_path="$.record_error")
        return record.next(done)

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
