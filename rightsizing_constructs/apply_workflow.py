"""The Apply workflow: a recommendation event -> the endpoint, rollback-safe.

A Standard state machine (an endpoint update takes minutes to tens of minutes; no Lambda waits)::

    CheckApplyInput -> NeedsApproval? (ApplyMode.APPROVAL: RequestApproval -> AskForApproval
      -> WaitForApproval, :mod:`._approval`) -> AcquireLock -> ApplyKind?
      (an inference component, "kind": "inference-component": ComponentSnapshot
       -> ComponentAlreadyApplied? -> UpdateComponent -> WaitForComponent -> CheckComponent
       -> ComponentUpdateFinished? (poll) -> EnsureComponentAutoscaling -> Record ...; issue 17)
      -> Snapshot -> AlreadyApplied?
      -> CreateConfig
      -> DeregisterFirst? (only when the instance type changes and the variant autoscales)
      -> UpdateEndpoint -> WaitForUpdate -> CheckUpdate -> UpdateFinished? (poll)
      -> EnsureAutoscaling (the recommended autoscaling on the new config, or the snapshot's on
         the previous one) -> Record -> Notify -> PublishOutcome -> ReleaseLock -> Done | Failed
    any error after the snapshot -> EnsureAutoscaling ... (the compensation is the same step)
    lock held by another run -> Record ("rejected") -> Notify -> PublishOutcome -> ... -> Done
    a run ABORTED or TIMED_OUT -> (the FinishInterruptedApply rule starts this machine with
      {"interrupted": ...}) TakeOver -> Repair? -> EnsureAutoscaling -> Record ("failed") ...

The machine's ``TimeoutSeconds`` outlives its own longest path (:mod:`._duration`, from the
definition's waits, poll budget and retries), and the lock outlives the machine.

Every step is one invocation of the ApplyStep function (``rightsizing_runtime.apply_steps``).
The previous endpoint config is never modified or deleted: it is the rollback target
(DESIGN.md invariant 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from . import _approval, _workflow
from ._component_apply import COMPONENT_LOOP, IS_COMPONENT, component_path, retry_component_ensure
from ._duration import worst_case_seconds
from ._runtime import import_runtime
from ._workflow import (
    PollNames,
    alarm_on_first,
    bounded_poll,
    invoke,
    max_polls,
    standard_state_machine,
    unsuccessful_executions,
)
from .apply_permissions import ApplyPermissions
from .event_types import APPLY_OUTCOME_DETAIL_TYPE
from .settings import EndpointAccess
from .triggers import finish_interrupted_apply_rule

#: Endpoint statuses of an update still under way: the runtime's, so poll and step agree.
BUSY_STATUSES: tuple[str, ...] = tuple(sorted(import_runtime("apply").BUSY_STATUSES))
#: How long the workflow waits for an endpoint update before giving up on it.
UPDATE_TIMEOUT = Duration.hours(2)
# The machine's time-out is its longest path (computed from the definition) plus this.
_TIMEOUT_MARGIN = Duration.hours(1)
# The lock outlives the machine by this much: a run that died without a cleanup leaves a lock
# that expires after the machine's time-out and this.
_LOCK_MARGIN = Duration.hours(1)
# EnsureAutoscaling waits this many poll intervals at most for an endpoint still updating.
_BUSY_RETRIES = 120
# A Standard workflow runs for at most a year (Step Functions quotas).
_MAX_EXECUTION = Duration.days(365)
# The state the update watch loops through (its poll budget bounds the loop).
_UPDATE_LOOP = "WaitForUpdate"


class ApplyWorkflow(Construct):
    """The Apply state machine and its step function, shared by an engine's endpoints.

    Created by :class:`~rightsizing_constructs.RightsizingEngine`. Its input is
    ``{"recommendation": <the event's detail>, "settings": <the endpoint's apply settings>}``;
    the Recommend state machine starts it when Route hands it an ``apply`` recommendation.
    Each endpoint in ``ApplyMode.AUTO`` adds its ARNs to the step function's policy
    (:meth:`grant_endpoint`), or, with ``EndpointAccess.tagged``, the first one grants the
    endpoints that carry the tag; in a stack without one, the function can change nothing.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        ledger: dynamodb.ITable,
        topic: sns.ITopic,
        step_function: lambda_.Function,
        poll_interval: Duration,
        endpoint_config_arn: Callable[[str], str],
        encryption_key: kms.IKey | None = None,
        event_bus: events.IEventBus,
        dead_letter_queue: sqs.IQueue | None = None,
        endpoint_access: EndpointAccess | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.step_function = step_function
        self._encryption_key = encryption_key
        self._event_bus = event_bus
        self._permissions = ApplyPermissions(
            self, step_function, endpoint_config_arn, endpoint_access or EndpointAccess.listed()
        )
        self._permissions.grant_common(ledger)
        self.state_machine = self._state_machine(topic, poll_interval)
        #: Goes off when an apply run fails, rolls back, times out or is aborted (rejections
        #: and no-change succeed).
        self.failed_applies_alarm = alarm_on_first(
            self,
            "FailedApplies",
            description="A rightsizing apply failed, was rolled back, timed out or was aborted",
            metric=unsuccessful_executions(self.state_machine),
            topic=topic,
        )
        #: Starts this machine to finish a run that was aborted or timed out: its record, the
        #: autoscaling that matches what the endpoint serves, the lock's release.
        self.finish_interrupted_rule: events.Rule = finish_interrupted_apply_rule(
            self, state_machine=self.state_machine, dead_letter_queue=dead_letter_queue
        )

    def settings(
        self,
        endpoint_name: str,
        variant_name: str,
        deployment_config: dict[str, Any] | None,
        *,
        execution_role: iam.IRole | None = None,
        kms_keys: Sequence[kms.IKey] = (),
        approval_timeout: Duration | None = None,
        inference_component_name: str | None = None,
    ) -> dict[str, Any]:
        """The apply settings of one endpoint, carried in the registry (Route hands them over).

        With ``inference_component_name``, the settings of that inference component on the
        endpoint (issue 17): its recommendations (``"kind": "inference-component"``) take the
        inference component path, under the same per-endpoint lock.

        ``execution_role`` and ``kms_keys`` are what its endpoint configs may pass to SageMaker
        (:meth:`allow_endpoint_config_use` grants them); the Snapshot step checks the config
        against them before anything changes. With ``approval_timeout`` (``ApplyMode.APPROVAL``)
        the run waits that long at most for an approval before it changes anything.
        """
        settings: dict[str, Any] = {
            "endpoint_name": endpoint_name,
            "variant_name": variant_name,
            "lock_seconds": int(self.lock.to_seconds()),
        }
        if deployment_config is not None:
            settings["deployment_config"] = deployment_config
        if execution_role is not None:
            settings["execution_role_arn"] = execution_role.role_arn
        if kms_keys:
            settings["kms_key_arns"] = [key.key_arn for key in kms_keys]
        if approval_timeout is not None:
            settings[_approval.TIMEOUT_FIELD] = int(approval_timeout.to_seconds())
        if inference_component_name is not None:
            settings["inference_component_name"] = inference_component_name
        return settings

    def allow_endpoint_config_use(
        self, *, execution_role: iam.IRole | None, kms_keys: Sequence[kms.IKey]
    ) -> None:
        """Let the steps pass ``execution_role`` and use ``kms_keys`` in the configs they copy.

        See :meth:`.apply_permissions.ApplyPermissions.allow_endpoint_config_use`.
        """
        self._permissions.allow_endpoint_config_use(
            execution_role=execution_role, kms_keys=kms_keys
        )

    def grant_endpoint(self, endpoint_arn: str) -> None:
        """Let the steps update one more endpoint (its ARN listed on ``UpdateEndpoint``)."""
        self._permissions.grant_endpoint(endpoint_arn)

    def grant_inference_component(self, inference_component_arn: str) -> None:
        """Let the steps update one more inference component (its ARN listed).

        The endpoint that hosts it needs :meth:`grant_endpoint` too (the steps read its
        instance type).
        """
        self._permissions.grant_inference_component(inference_component_arn)

    def _step(self, state_name: str, step: str, result_path: str) -> tasks.LambdaInvoke:
        """A state that runs one ``apply_steps`` step on the whole workflow state."""
        return invoke(
            self,
            state_name,
            state_name=state_name,
            function=self.step_function,
            payload={
                "step": step,
                "state": sfn.JsonPath.entire_payload,
                "execution_arn": sfn.JsonPath.execution_id,
            },
            result_path=result_path,
        )

    def _state_machine(self, topic: sns.ITopic, poll_interval: Duration) -> sfn.StateMachine:
        """The definition, top to bottom: check input, lock, snapshot, change, finish."""
        steps = self._steps(poll_interval)
        self._finish(steps, topic)
        # Before anything changed: record the failure (or the rejection) and stop.
        for step in (steps.acquire, steps.snapshot, steps.create_config, steps.take_over):
            step.add_catch(steps.record, errors=["States.ALL"], result_path="$.error")
        # After the scalable target may be gone: make autoscaling match what the endpoint serves.
        for step in (steps.deregister, steps.update, steps.check):
            step.add_catch(steps.ensure, errors=["States.ALL"], result_path="$.error")
        steps.ensure.add_catch(steps.record, errors=["States.ALL"], result_path="$.error")
        steps.ensure.next(steps.record)
        steps.update.next(self._watch_update(steps, poll_interval))
        component = component_path(self, steps, poll_interval, UPDATE_TIMEOUT)
        deregister_first = (
            sfn.Choice(self, "DeregisterFirst")
            .when(
                sfn.Condition.boolean_equals("$.snapshot.deregister_first", True),
                steps.deregister.next(steps.update),
            )
            .otherwise(steps.update)
        )
        already_applied = (
            sfn.Choice(self, "AlreadyApplied")
            .when(
                # A dead run left the endpoint without its autoscaling: restore it first.
                sfn.Condition.and_(
                    sfn.Condition.boolean_equals("$.snapshot.already_applied", True),
                    sfn.Condition.boolean_equals("$.snapshot.repair_autoscaling", True),
                ),
                steps.ensure,
            )
            .when(sfn.Condition.boolean_equals("$.snapshot.already_applied", True), steps.record)
            .otherwise(steps.create_config.next(deregister_first))
        )
        repair = (
            sfn.Choice(self, "Repair")
            .when(
                sfn.Condition.and_(sfn.Condition.boolean_equals("$.repair", True), IS_COMPONENT),
                steps.component_ensure,
            )
            .when(sfn.Condition.boolean_equals("$.repair", True), steps.ensure)
            .otherwise(steps.record)
        )
        steps.snapshot.next(already_applied)
        # One machine for both kinds: lock, approval, record, notify and unlock stay in one
        # place (and one lock per endpoint covers its variant and its inference components).
        steps.acquire.next(
            sfn.Choice(self, "ApplyKind").when(IS_COMPONENT, component).otherwise(steps.snapshot)
        )
        approval = _approval.approval_states(
            self,
            function=self.step_function,
            topic=topic,
            then=steps.acquire,
            not_approved=steps.record,
        )
        definition = self._check_input(approval, steps.take_over.next(repair))
        timeout = self._timeout(definition, poll_interval)
        #: How long a run may hold an endpoint's lock: longer than the machine may run once it
        #: has the lock (a run whose cleanup never came leaves a lock that expires after it).
        #: The approval wait comes before the lock is taken, so it does not count.
        self.lock = self._timeout(definition, poll_interval, approval_seconds=0, record=False).plus(
            _LOCK_MARGIN
        )
        return standard_state_machine(
            self,
            comment="Applies rightsizing recommendations to SageMaker endpoints",
            definition=definition,
            timeout=timeout,
            invoked=(self.step_function,),
            encryption_key=self._encryption_key,
        )

    def _timeout(
        self,
        definition: sfn.IChainable,
        poll_interval: Duration,
        *,
        approval_seconds: float = _approval.MAX_APPROVAL_TIMEOUT.to_seconds(),
        record: bool = True,
    ) -> Duration:
        """The longest path through ``definition`` (:mod:`._duration`) plus a margin.

        The approval wait lasts at most ``approval_seconds`` (the longest ``approval_timeout``
        an endpoint may have: each gives its own through the apply settings).
        """
        reachable = sfn.State.find_reachable_states(
            definition.start_state, include_error_handlers=True
        )
        states = {state.state_id: state.to_state_json() for state in reachable}
        function_timeout = self.step_function.timeout or Duration.seconds(3)
        worst_case = Duration.seconds(
            math.ceil(
                worst_case_seconds(
                    states,
                    definition.start_state.state_id,
                    task_seconds=function_timeout.to_seconds(),
                    loop_bounds={
                        _UPDATE_LOOP: max_polls(UPDATE_TIMEOUT, poll_interval),
                        COMPONENT_LOOP: max_polls(UPDATE_TIMEOUT, poll_interval),
                    },
                    path_seconds={_approval.TIMEOUT_PATH: approval_seconds},
                )
            )
        )
        if record:
            #: The longest an apply execution can take, from its definition's own numbers.
            self.worst_case = worst_case
        minutes = math.ceil(worst_case.to_seconds() / 60)
        timeout = Duration.minutes(minutes).plus(_TIMEOUT_MARGIN)
        if timeout.to_seconds() > _MAX_EXECUTION.to_seconds():
            raise ValueError(
                f"an apply run could take up to {worst_case.to_human_string()} with "
                f"poll_interval {poll_interval.to_human_string()}, over Step Functions' "
                f"{_MAX_EXECUTION.to_human_string()} limit: raise the engine's poll_interval"
            )
        return timeout

    def _steps(self, poll_interval: Duration) -> _Steps:
        """One state per ``apply_steps`` step, with their retries."""
        steps = _Steps(
            acquire=self._step("AcquireLock", "acquire_lock", "$.lock"),
            snapshot=self._step("Snapshot", "snapshot", "$.snapshot"),
            create_config=self._step("CreateConfig", "create_config", "$.new_config"),
            deregister=self._step("Deregister", "deregister", sfn.JsonPath.DISCARD),
            update=self._step("UpdateEndpoint", "update", "$.update"),
            check=self._step("CheckUpdate", "check_update", "$.update"),
            ensure=self._step("EnsureAutoscaling", "ensure_autoscaling", "$.autoscaling"),
            record=self._step("Record", "record", "$.outcome"),
            release=self._step("ReleaseLock", "release_lock", sfn.JsonPath.DISCARD),
            # The run it finishes becomes the state: settings, recommendation, snapshot...
            take_over=self._step("TakeOver", "take_over", "$"),
            component_snapshot=self._step("ComponentSnapshot", "component_snapshot", "$.snapshot"),
            component_update=self._step(
                "UpdateComponent", "component_update", "$.component_update"
            ),
            component_check=self._step("CheckComponent", "component_check", "$.update"),
            component_ensure=self._step(
                "EnsureComponentAutoscaling", "component_ensure_autoscaling", "$.autoscaling"
            ),
        )
        # Every step retries throttling and 5xx (``_workflow.invoke``: the steps are idempotent).
        # The invariant keeper: wait out an update, then retry hard before giving up.
        steps.ensure.add_retry(
            errors=["EndpointBusyError"],
            interval=poll_interval,
            max_attempts=_BUSY_RETRIES,
            backoff_rate=1,
        )
        steps.ensure.add_retry(
            errors=["States.ALL"], interval=Duration.seconds(5), max_attempts=6, backoff_rate=2
        )
        retry_component_ensure(steps.component_ensure, poll_interval, _BUSY_RETRIES)
        return steps

    def _finish(self, steps: _Steps, topic: sns.ITopic) -> None:
        """Record -> Notify -> PublishOutcome -> ReleaseLock -> Done | Failed; errors still end."""
        notify = _workflow.notify(
            self,
            "Notify",
            topic=topic,
            subject=sfn.JsonPath.format(
                "Rightsizing {}: {}",
                sfn.JsonPath.string_at("$.outcome.result"),
                sfn.JsonPath.string_at("$.settings.endpoint_name"),
            ),
            message={
                "endpoint_name": sfn.JsonPath.string_at("$.settings.endpoint_name"),
                "outcome": sfn.JsonPath.string_at("$.outcome.result"),
                "reason": sfn.JsonPath.string_at("$.outcome.reason"),
                "execution": sfn.JsonPath.execution_id,
            },
        )
        unrecorded = sfn.Pass(
            self,
            "RecordFailed",
            result=sfn.Result.from_object(
                {
                    "result": "failed",
                    "reason": "the run's outcome could not be written to the ledger",
                }
            ),
            result_path="$.outcome",
        )
        failed = sfn.Fail(
            self, "Failed", error="RightsizingNotApplied", cause_path="$.outcome.reason"
        )
        finished = (
            sfn.Choice(self, "Finished")
            .when(
                sfn.Condition.or_(
                    *(
                        sfn.Condition.string_equals("$.outcome.result", r)
                        for r in ("applied", "no-change", "rejected")
                    )
                ),
                sfn.Succeed(self, "Done"),
            )
            .otherwise(failed)
        )
        steps.release.add_catch(finished, errors=["States.ALL"], result_path="$.release_error")
        published = self._publish_outcome(steps.release)
        notify.add_catch(published, errors=["States.ALL"], result_path="$.notify_error")
        steps.record.add_catch(unrecorded, errors=["States.ALL"], result_path="$.record_error")
        unrecorded.next(notify)
        steps.record.next(notify).next(published)
        steps.release.next(finished)

    def _publish_outcome(self, then: sfn.IChainable) -> sfn.IChainable:
        """PublishOutcome: the run's outcome as an event on the engine's bus, then ``then``.

        "Rightsizing Apply Outcome" (README, "The apply outcome event"): what a hub account's
        fleet view, or your own automation, hears of applies. A failed publish does not stop
        the cleanup.
        """
        publish = _workflow.put_event(
            self,
            "PublishOutcome",
            detail=sfn.TaskInput.from_object(
                {
                    "endpoint_name": sfn.JsonPath.string_at("$.settings.endpoint_name"),
                    "variant_name": sfn.JsonPath.string_at("$.settings.variant_name"),
                    "outcome": sfn.JsonPath.string_at("$.outcome.result"),
                    "reason": sfn.JsonPath.string_at("$.outcome.reason"),
                    "execution": sfn.JsonPath.execution_id,
                }
            ),
            detail_type=APPLY_OUTCOME_DETAIL_TYPE,
            event_bus=self._event_bus,
        )
        publish.add_catch(then, errors=["States.ALL"], result_path="$.publish_error")
        return publish.next(then)

    def _watch_update(self, steps: _Steps, poll_interval: Duration) -> sfn.Chain:
        """Poll CheckUpdate until the endpoint is no longer updating, then EnsureAutoscaling."""
        timed_out = sfn.Pass(
            self,
            "UpdateTimedOut",
            parameters={
                "Error": "UpdateTimedOut",
                "Cause": "the endpoint update did not finish within "
                + UPDATE_TIMEOUT.to_human_string(),
            },
            result_path="$.error",
        )
        return bounded_poll(
            self,
            names=PollNames(
                start="StartWatching",
                wait="WaitForUpdate",
                count="CountUpdatePoll",
                finished="UpdateFinished",
                budget_spent="UpdateBudgetSpent",
            ),
            check=steps.check,
            status_path="$.update.status",
            busy_statuses=BUSY_STATUSES,
            poll_interval=poll_interval,
            max_polls=max_polls(UPDATE_TIMEOUT, poll_interval),
            on_timeout=timed_out.next(steps.ensure),
            on_done=steps.ensure,
        )

    def _check_input(self, run: sfn.IChainable, finish: sfn.IChainable) -> sfn.Choice:
        """Start ``run`` on an endpoint rule's input, ``finish`` on the cleanup rule's.

        The cleanup rule's input is ``{"interrupted": ...}``: a run that was aborted or timed out.
        """
        return (
            sfn.Choice(self, "CheckApplyInput")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.is_present("$.settings.endpoint_name"),
                    sfn.Condition.is_present("$.settings.variant_name"),
                    sfn.Condition.is_present("$.recommendation"),
                ),
                run,
            )
            .when(sfn.Condition.is_present("$.interrupted.execution_arn"), finish)
            .otherwise(
                sfn.Fail(
                    self,
                    "InvalidApplyInput",
                    error="InvalidInput",
                    cause="The input needs recommendation (the event's detail) and settings "
                    "(the endpoint's apply settings), as the Recommend workflow's StartApply "
                    "gives them.",
                )
            )
        )


@dataclass(frozen=True, kw_only=True)
class _Steps:
    """The workflow's ApplyStep states."""

    acquire: tasks.LambdaInvoke
    snapshot: tasks.LambdaInvoke
    create_config: tasks.LambdaInvoke
    deregister: tasks.LambdaInvoke
    update: tasks.LambdaInvoke
    check: tasks.LambdaInvoke
    ensure: tasks.LambdaInvoke
    record: tasks.LambdaInvoke
    release: tasks.LambdaInvoke
    take_over: tasks.LambdaInvoke
    component_snapshot: tasks.LambdaInvoke
    component_update: tasks.LambdaInvoke
    component_check: tasks.LambdaInvoke
    component_ensure: tasks.LambdaInvoke
