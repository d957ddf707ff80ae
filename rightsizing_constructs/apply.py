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
from typing import Any

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from ._nag import BACKUP_BY_PITR, TABLE_AWS_KEY, acknowledge_wildcard
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


def create_ledger(scope: Construct, encryption_key: kms.IKey | None = None) -> dynamodb.Table:
    """The ledger: one item per run (decision record) and one lock item per endpoint.

    Keys ``pk`` (``endpoint#<name>``) and ``sk`` (``lock`` or ``run#<time>#<execution>``);
    point-in-time recovery on, encrypted (with ``encryption_key`` if given, else the AWS managed
    key), kept when the stack is deleted (it is an audit trail).
    """
    table = dynamodb.Table(
        scope,
        "Ledger",
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED
        if encryption_key is not None
        else dynamodb.TableEncryption.AWS_MANAGED,
        encryption_key=encryption_key,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        removal_policy=RemovalPolicy.RETAIN,
    )
    BACKUP_BY_PITR.apply(table)
    if encryption_key is None:
        TABLE_AWS_KEY.apply(table)
    return table


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
        self._endpoints: iam.PolicyStatement | None = None
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
        role = function.role
        assert role is not None
        stack = Stack.of(self)
        ledger.grant(function, "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem")
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
        if self._endpoints is None:
            self._endpoints = iam.PolicyStatement(
                actions=[
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:UpdateEndpoint",
                    # Application Auto Scaling calls this as the caller of RegisterScalableTarget.
                    "sagemaker:UpdateEndpointWeightsAndCapacities",
                ]
            )
            self.step_function.add_to_role_policy(self._endpoints)
        if endpoint_arn not in self._endpoints.resources:
            self._endpoints.add_resources(endpoint_arn)

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
        acquire = self._step("AcquireLock", "acquire_lock", "$.lock")
        snapshot = self._step("Snapshot", "snapshot", "$.snapshot")
        create_config = self._step("CreateConfig", "create_config", "$.new_config")
        deregister = self._step("Deregister", "deregister", sfn.JsonPath.DISCARD)
        update = self._step("UpdateEndpoint", "update", "$.update")
        check = self._step("CheckUpdate", "check_update", "$.update")
        ensure = self._step("EnsureAutoscaling", "ensure_autoscaling", "$.autoscaling")
        record = self._step("Record", "record", "$.outcome")
        release = self._step("ReleaseLock", "release_lock", sfn.JsonPath.DISCARD)

        for step in (acquire, snapshot, create_config, deregister, update, check, record, release):
            step.add_retry(
                errors=["ThrottlingException", "ClientError", "Lambda.TooManyRequestsException"],
                interval=Duration.seconds(5),
                max_attempts=4,
                backoff_rate=2,
            )
        # The invariant keeper: wait out an update, then retry hard before giving up.
        ensure.add_retry(
            errors=["EndpointBusyError"],
            interval=poll_interval,
            max_attempts=_BUSY_RETRIES,
            backoff_rate=1,
        )
        ensure.add_retry(
            errors=["States.ALL"], interval=Duration.seconds(5), max_attempts=6, backoff_rate=2
        )

        notify = tasks.SnsPublish(
            self,
            "Notify",
            topic=topic,
            subject=sfn.JsonPath.format(
                "Rightsizing {}: {}",
                sfn.JsonPath.string_at("$.outcome.result"),
                sfn.JsonPath.string_at("$.settings.endpoint_name"),
            ),
            message=sfn.TaskInput.from_object(
                {
                    "endpoint_name": sfn.JsonPath.string_at("$.settings.endpoint_name"),
                    "outcome": sfn.JsonPath.string_at("$.outcome.result"),
                    "reason": sfn.JsonPath.string_at("$.outcome.reason"),
                    "execution": sfn.JsonPath.execution_id,
                }
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        notify.add_retry(errors=["States.TaskFailed"], interval=Duration.seconds(5), max_attempts=4)
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
        release.add_catch(finished, errors=["States.ALL"], result_path="$.release_error")
        notify.add_catch(release, errors=["States.ALL"], result_path="$.notify_error")
        record.add_catch(unrecorded, errors=["States.ALL"], result_path="$.record_error")
        unrecorded.next(notify)
        record.next(notify).next(release).next(finished)

        # Before anything changed: record the failure (or the rejection) and stop.
        for step in (acquire, snapshot, create_config):
            step.add_catch(record, errors=["States.ALL"], result_path="$.error")
        # After the scalable target may be gone: make autoscaling match what the endpoint serves.
        for step in (deregister, update, check):
            step.add_catch(ensure, errors=["States.ALL"], result_path="$.error")
        ensure.add_catch(record, errors=["States.ALL"], result_path="$.error")
        ensure.next(record)

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
        update.next(
            bounded_poll(
                self,
                names=PollNames(
                    start="StartWatching",
                    wait="WaitForUpdate",
                    count="CountUpdatePoll",
                    finished="UpdateFinished",
                    budget_spent="UpdateBudgetSpent",
                ),
                check=check,
                status_path="$.update.status",
                busy_statuses=BUSY_STATUSES,
                poll_interval=poll_interval,
                max_polls=max_polls(UPDATE_TIMEOUT, poll_interval),
                on_timeout=timed_out.next(ensure),
                on_done=ensure,
            )
        )
        deregister_first = (
            sfn.Choice(self, "DeregisterFirst")
            .when(
                sfn.Condition.boolean_equals("$.snapshot.deregister_first", True),
                deregister.next(update),
            )
            .otherwise(update)
        )
        already_applied = (
            sfn.Choice(self, "AlreadyApplied")
            .when(sfn.Condition.boolean_equals("$.snapshot.already_applied", True), record)
            .otherwise(create_config.next(deregister_first))
        )
        check_input = (
            sfn.Choice(self, "CheckApplyInput")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.is_present("$.settings.endpoint_name"),
                    sfn.Condition.is_present("$.settings.variant_name"),
                    sfn.Condition.is_present("$.recommendation"),
                ),
                acquire.next(snapshot).next(already_applied),
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
        return standard_state_machine(
            self,
            comment="Applies rightsizing recommendations to SageMaker endpoints",
            definition=check_input,
            timeout=self.lock,
            invoked=(self.step_function,),
            encryption_key=self._encryption_key,
        )
