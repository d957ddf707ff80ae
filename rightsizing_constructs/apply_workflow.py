"""The Apply workflow: a recommendation event -> the endpoint, rollback-safe.

A Standard state machine (an endpoint update takes minutes to tens of minutes; no Lambda waits)::

    CheckApplyInput -> AcquireLock -> Snapshot -> AlreadyApplied? -> CreateConfig
      -> DeregisterFirst? (only when the instance type changes and the variant autoscales)
      -> UpdateEndpoint -> WaitForUpdate -> CheckUpdate -> UpdateFinished? (poll)
      -> EnsureAutoscaling (the recommended autoscaling on the new config, or the snapshot's on
         the previous one) -> Record -> Notify -> ReleaseLock -> Done | Failed
    any error after the snapshot -> EnsureAutoscaling ... (the compensation is the same step)
    lock held by another run -> Record ("rejected") -> Notify -> ReleaseLock -> Done

Every step is one invocation of the ApplyStep function (``rightsizing_runtime.apply_steps``).
The previous endpoint config is never modified or deleted: it is the rollback target
(DESIGN.md invariant 2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from . import _workflow
from ._grants import GrowingGrant
from ._nag import acknowledge_wildcard
from ._runtime import import_runtime
from ._workflow import (
    PollNames,
    alarm_on_first,
    bounded_poll,
    invoke,
    max_polls,
    standard_state_machine,
)

#: Endpoint statuses of an update still under way: the runtime's, so poll and step agree.
BUSY_STATUSES: tuple[str, ...] = tuple(sorted(import_runtime("apply").BUSY_STATUSES))
#: How long the workflow waits for an endpoint update before giving up on it.
UPDATE_TIMEOUT = Duration.hours(2)
# The lock outlives any run: a run that died leaves a lock that expires after this.
_LOCK_MARGIN = Duration.hours(1)
# EnsureAutoscaling waits this long at most for an endpoint that is still updating.
_BUSY_RETRIES = 120


class ApplyWorkflow(Construct):
    """The Apply state machine and its step function, shared by an engine's endpoints.

    Created by :class:`~rightsizing_constructs.RightsizingEngine`. Its input is
    ``{"recommendation": <the event's detail>, "settings": <the endpoint's apply settings>}``;
    the Recommend state machine starts it when an endpoint's rule delivers an ``apply``
    recommendation. Each endpoint in ``ApplyMode.AUTO`` adds its ARNs to the step function's
    policy (:meth:`grant_endpoint`); in a stack without one, the function can change nothing.
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
    ) -> None:
        super().__init__(scope, construct_id)
        self.step_function = step_function
        #: How long a run may hold an endpoint's lock (a dead run's lock expires after it).
        self.lock = UPDATE_TIMEOUT.plus(_LOCK_MARGIN)
        self._endpoint_config_arn = endpoint_config_arn
        self._endpoints = GrowingGrant(
            step_function.add_to_role_policy,
            [
                "sagemaker:DescribeEndpoint",
                "sagemaker:UpdateEndpoint",
                # Application Auto Scaling calls this as the caller of RegisterScalableTarget.
                "sagemaker:UpdateEndpointWeightsAndCapacities",
            ],
        )
        self._encryption_key = encryption_key
        self._grant_common(ledger)
        self.state_machine = self._state_machine(topic, poll_interval)
        #: Goes off when an apply run fails or rolls back (rejections and no-change succeed).
        self.failed_applies_alarm = alarm_on_first(
            self,
            "FailedApplies",
            description="A rightsizing apply failed or was rolled back",
            metric=self.state_machine.metric_failed(period=Duration.minutes(5)),
            topic=topic,
        )

    def settings(
        self, endpoint_name: str, variant_name: str, deployment_config: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The apply settings of one endpoint, carried in its rule's target input."""
        settings: dict[str, Any] = {
            "endpoint_name": endpoint_name,
            "variant_name": variant_name,
            "lock_seconds": int(self.lock.to_seconds()),
        }
        if deployment_config is not None:
            settings["deployment_config"] = deployment_config
        return settings

    def _grant_common(self, ledger: dynamodb.ITable) -> None:
        """What the steps call whatever the endpoint (``rightsizing_runtime.apply_steps``)."""
        function = self.step_function
        ledger.grant(function, "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem")
        self._grant_configs()
        self._grant_autoscaling()

    def _grant_configs(self) -> None:
        """Read any endpoint config; create (and tag) the library's new configs."""
        function = self.step_function
        role = function.role
        assert role is not None
        stack = Stack.of(self)
        any_config = self._endpoint_config_arn("*")
        # Every config the library creates is named <endpoint>-rs-<hash> (apply.new_config_name).
        new_configs = self._endpoint_config_arn("*-rs-*")
        target_tracking_alarms = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name="TargetTracking-endpoint/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                # UpdateEndpoint is authorized on the config it moves to as well.
                actions=[
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:AddTags",
                    "sagemaker:UpdateEndpoint",
                ],
                resources=[new_configs],
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                # Target tracking manages its alarms as the caller of PutScalingPolicy.
                actions=[
                    "cloudwatch:PutMetricAlarm",
                    "cloudwatch:DescribeAlarms",
                    "cloudwatch:DeleteAlarms",
                ],
                resources=[target_tracking_alarms],
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeEndpointConfig", "sagemaker:ListTags"],
                resources=[any_config],
            )
        )
        acknowledge_wildcard(
            role, any_config, "The endpoint's current config name is only known at run time."
        )
        acknowledge_wildcard(
            role,
            new_configs,
            "New endpoint config names are generated per run (<endpoint>-rs-<hash>); creating "
            "a config changes nothing until UpdateEndpoint, which is granted per endpoint.",
        )
        acknowledge_wildcard(
            role,
            target_tracking_alarms,
            "Target tracking names its alarms after the endpoint and policy at run time "
            "(TargetTracking-endpoint/<endpoint>/...).",
        )

    def _grant_autoscaling(self) -> None:
        """Application Auto Scaling on SageMaker variants, and its service-linked role."""
        function = self.step_function
        role = function.role
        assert role is not None
        stack = Stack.of(self)
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "application-autoscaling:DescribeScalableTargets",
                    "application-autoscaling:DescribeScalingPolicies",
                ],
                resources=["*"],
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "application-autoscaling:RegisterScalableTarget",
                    "application-autoscaling:DeregisterScalableTarget",
                    "application-autoscaling:PutScalingPolicy",
                ],
                # Scalable-target ARNs are opaque: scope by namespace and dimension instead.
                resources=["*"],
                conditions={
                    "StringEquals": {
                        "application-autoscaling:service-namespace": "sagemaker",
                        "application-autoscaling:scalable-dimension": (
                            "sagemaker:variant:DesiredInstanceCount"
                        ),
                    }
                },
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:CreateServiceLinkedRole"],
                resources=[
                    stack.format_arn(
                        service="iam",
                        region="",
                        resource="role",
                        resource_name=(
                            "aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                            "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
                        ),
                    )
                ],
                conditions={
                    "StringLike": {
                        "iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"
                    }
                },
            )
        )
        acknowledge_wildcard(
            role,
            "*",
            "Application Auto Scaling's Describe calls have no resource-level permissions; its "
            "writes have no resource ARNs and are scoped with the service-namespace and "
            "scalable-dimension condition keys; X-Ray has no resource-level permissions.",
        )

    def grant_endpoint(self, endpoint_arn: str) -> None:
        """Let the steps update one more endpoint.

        ``UpdateEndpoint`` is the one write that changes what serves traffic, so its endpoints
        are listed one by one.
        """
        self._endpoints.add(endpoint_arn)

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
        for step in (steps.acquire, steps.snapshot, steps.create_config):
            step.add_catch(steps.record, errors=["States.ALL"], result_path="$.error")
        # After the scalable target may be gone: make autoscaling match what the endpoint serves.
        for step in (steps.deregister, steps.update, steps.check):
            step.add_catch(steps.ensure, errors=["States.ALL"], result_path="$.error")
        steps.ensure.add_catch(steps.record, errors=["States.ALL"], result_path="$.error")
        steps.ensure.next(steps.record)
        steps.update.next(self._watch_update(steps, poll_interval))
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
            .when(sfn.Condition.boolean_equals("$.snapshot.already_applied", True), steps.record)
            .otherwise(steps.create_config.next(deregister_first))
        )
        return standard_state_machine(
            self,
            comment="Applies rightsizing recommendations to SageMaker endpoints",
            definition=self._check_input(steps.acquire.next(steps.snapshot).next(already_applied)),
            timeout=self.lock,
            invoked=(self.step_function,),
            encryption_key=self._encryption_key,
        )

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
        return steps

    def _finish(self, steps: _Steps, topic: sns.ITopic) -> None:
        """Record -> Notify -> ReleaseLock -> Done | Failed, each failure still reaching the end."""
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
        notify.add_catch(steps.release, errors=["States.ALL"], result_path="$.notify_error")
        steps.record.add_catch(unrecorded, errors=["States.ALL"], result_path="$.record_error")
        unrecorded.next(notify)
        steps.record.next(notify).next(steps.release).next(finished)

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

    def _check_input(self, run: sfn.IChainable) -> sfn.Choice:
        """Start ``run`` only on the input an endpoint's rule delivers."""
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
            .otherwise(
                sfn.Fail(
                    self,
                    "InvalidApplyInput",
                    error="InvalidInput",
                    cause="The input needs recommendation (the event's detail) and settings "
                    "(the endpoint's apply settings), as the endpoint's rule delivers them.",
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
