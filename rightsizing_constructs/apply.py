"""The Apply workflow: a recommendation event -> the endpoint, rollback-safe.

A Standard state machine (an endpoint update takes minutes to tens of minutes; no Lambda waits)::

    LoadApplySettings -> AcquireLock -> Snapshot -> AlreadyApplied? -> CreateConfig
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
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from ._nag import acknowledge_wildcard
from ._runtime import import_runtime
from ._workflow import PollNames, bounded_poll, invoke, standard_state_machine

#: Endpoint statuses of an update still under way: the runtime's, so poll and step agree.
BUSY_STATUSES: tuple[str, ...] = tuple(sorted(import_runtime("apply").BUSY_STATUSES))
#: How long the workflow waits for an endpoint update before giving up on it.
UPDATE_TIMEOUT = Duration.hours(2)
# The lock outlives any run: a run that died leaves a lock that expires after this.
_LOCK_MARGIN = Duration.hours(1)
# EnsureAutoscaling waits this long at most for an endpoint that is still updating.
_BUSY_RETRIES = 120


def create_ledger(scope: Construct) -> dynamodb.Table:
    """The ledger: one item per run (decision record) and one lock item per endpoint.

    Keys ``pk`` (``endpoint#<name>``) and ``sk`` (``lock`` or ``run#<time>#<execution>``);
    point-in-time recovery on, encrypted, kept when the stack is deleted (it is an audit trail).
    """
    return dynamodb.Table(
        scope,
        "Ledger",
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        removal_policy=RemovalPolicy.RETAIN,
    )


class ApplyWorkflow(Construct):
    """The Apply state machine, its step function and the rule that starts it.

    Created by :class:`~rightsizing_constructs.EndpointRightsizing` in ``ApplyMode.AUTO``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        variant_name: str,
        endpoint_arn: str,
        endpoint_config_arn: Callable[[str], str],
        ledger: dynamodb.ITable,
        topic: sns.ITopic,
        event_bus: events.IEventBus,
        step_function: lambda_.Function,
        deployment_config: dict[str, Any] | None,
        poll_interval: Duration,
        recommendation_source: str,
        recommendation_detail_type: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.step_function = step_function
        lock = UPDATE_TIMEOUT.plus(_LOCK_MARGIN)
        settings = {
            "endpoint_name": endpoint_name,
            "variant_name": variant_name,
            "lock_seconds": int(lock.to_seconds()),
        }
        if deployment_config is not None:
            settings["deployment_config"] = deployment_config
        self._grant(endpoint_name, endpoint_arn, endpoint_config_arn, ledger)
        self.state_machine = self._state_machine(settings, topic, poll_interval, lock)
        #: Goes off when an apply run fails or rolls back (rejections and no-change succeed).
        self.failed_applies_alarm = cloudwatch.Alarm(
            self,
            "FailedApplies",
            alarm_description=f"A rightsizing apply of {endpoint_name} failed or was rolled back",
            metric=self.state_machine.metric_failed(period=Duration.minutes(5)),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.failed_applies_alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))
        #: The rule that starts the workflow for this endpoint's ``apply`` recommendations.
        self.rule = events.Rule(
            self,
            "Rule",
            description=f"Applies rightsizing recommendations to {endpoint_name}",
            event_bus=event_bus,
            event_pattern=events.EventPattern(
                source=[recommendation_source],
                detail_type=[recommendation_detail_type],
                detail={
                    "endpoint_name": [endpoint_name],
                    "variant_name": [variant_name],
                    "action": ["apply"],
                },
            ),
            targets=[
                targets.SfnStateMachine(
                    self.state_machine,
                    input=events.RuleTargetInput.from_object(
                        {"recommendation": events.EventField.from_path("$.detail")}
                    ),
                    retry_attempts=8,
                )
            ],
        )

    def _grant(
        self,
        endpoint_name: str,
        endpoint_arn: str,
        endpoint_config_arn: Callable[[str], str],
        ledger: dynamodb.ITable,
    ) -> None:
        """Exactly what the steps call (``rightsizing_runtime.apply_steps``)."""
        function = self.step_function
        role = function.role
        assert role is not None
        stack = Stack.of(self)
        ledger.grant(function, "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem")
        new_configs = endpoint_config_arn(f"{endpoint_name[:40].rstrip('-')}-rs-*")
        any_config = endpoint_config_arn("*")
        target_tracking_alarms = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"TargetTracking-endpoint/{endpoint_name}/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:UpdateEndpoint",
                    # Application Auto Scaling calls these as the caller of RegisterScalableTarget.
                    "sagemaker:UpdateEndpointWeightsAndCapacities",
                ],
                resources=[endpoint_arn],
            )
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
        for resource, reason in (
            (
                new_configs,
                "The new endpoint config's name is generated per run, under the endpoint's "
                "-rs- prefix.",
            ),
            (any_config, "The endpoint's current config name is only known at run time."),
            (
                "*",
                "Application Auto Scaling's Describe calls have no resource-level permissions; its "
                "writes have no resource ARNs and are scoped with the service-namespace and "
                "scalable-dimension condition keys; X-Ray has no resource-level permissions.",
            ),
            (
                target_tracking_alarms,
                "Target tracking names its alarms after the policy at run time.",
            ),
        ):
            acknowledge_wildcard(role, resource, reason)

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

    def _state_machine(
        self, settings: dict[str, Any], topic: sns.ITopic, poll_interval: Duration, lock: Duration
    ) -> sfn.StateMachine:
        load = sfn.Pass(
            self,
            "LoadApplySettings",
            result=sfn.Result.from_object(settings),
            result_path="$.settings",
        )
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
                timeout=UPDATE_TIMEOUT,
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
        definition = load.next(acquire).next(snapshot).next(already_applied)
        return standard_state_machine(
            self,
            comment=f"Applies rightsizing recommendations to {settings['endpoint_name']}",
            definition=definition,
            timeout=lock,
            invoked=(self.step_function,),
        )
