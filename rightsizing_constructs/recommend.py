"""``EndpointRightsizing``: IR job -> Step Functions poll -> recommendation event.

The workflow (a Standard state machine, because IR jobs run for hours)::

    LoadSettings -> StartJob -> StartPolling -> WaitForJob -> DescribeJob -> JobFinished?
        running  -> CountPoll -> PollBudgetSpent? -> no: WaitForJob (poll again)
                                                  -> yes: JobTimedOut -> StopJob -> ...
        finished -> SelectRecommendation -> PutRecommendationEvent -> RecordRecommendation
                    -> NotifyRecommendation -> Done
    any error  -> StopJob -> RecordFailure -> NotifyFailure -> Failed

There is no IR completion event, so the workflow polls ``DescribeInferenceRecommendationsJob``,
at most ``ceil(timeout / poll_interval)`` times. It counts polls rather than comparing clock
times: Choice timestamp comparisons are strict about formats (moto's interpreter, for one, cannot
compare ``$$.State.EnteredTime``), while a counter behaves the same everywhere.
An execution that is aborted or hits the state machine's own timeout runs no further state; the
``StopOrphanedJob`` rule catches its status-change event and stops the job (DESIGN.md invariant 6).
"""

from __future__ import annotations

import re
from typing import Any

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from ._nag import acknowledge_wildcard
from ._runtime import import_runtime, runtime_asset_dir
from ._workflow import PollNames, bounded_poll, invoke, standard_state_machine
from .apply import ApplyWorkflow, create_ledger
from .settings import (
    ApplyMode,
    ContainerConfig,
    Deployment,
    Guardrails,
    JobType,
    LatencySlo,
    LatencyThreshold,
    RecommenderJob,
    StoppingConditions,
    ValidationProblems,
    is_number,
    is_token,
)

#: ``source`` of the recommendation event on EventBridge.
RECOMMENDATION_EVENT_SOURCE = "rightsizing-constructs"
#: ``detail-type`` of the recommendation event on EventBridge.
RECOMMENDATION_DETAIL_TYPE = "Rightsizing Recommendation"
# The runtime owns the settings document's version and the job-name prefix (IAM policies are
# scoped to it); the construct reads both from there so the two cannot drift.
SETTINGS_VERSION: int = import_runtime("settings").SETTINGS_VERSION
JOB_NAME_PREFIX: str = import_runtime("job_request").JOB_NAME_PREFIX

_DEFAULT_POLL_INTERVAL = Duration.minutes(5)
_DEFAULT_JOB_TIMEOUT = Duration.hours(2)
# An Advanced job may run for its whole job_duration; the workflow waits that long plus this.
_ADVANCED_TIMEOUT_MARGIN = Duration.hours(1)
# The state machine's own timeout is a backstop behind the workflow's poll budget.
_STATE_MACHINE_TIMEOUT_MARGIN = Duration.hours(1)
_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_VERSIONED_PACKAGE_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[^/]+/\d+$"
)
_RUNTIME = lambda_.Runtime.PYTHON_3_14
_XRAY_REASON = (
    "X-Ray PutTraceSegments and PutTelemetryRecords (Lambda active tracing) have no "
    "resource-level permissions."
)
_JOB_NAMES_REASON = (
    "IR job names are generated per execution (rightsizing-<hash of the execution ARN>), so "
    "job ARNs are scoped to the library's job-name prefix."
)
_SAGEMAKER_RETRYABLE = [
    "SageMaker.ThrottlingException",
    "SageMaker.InternalFailureException",
    "SageMaker.ServiceUnavailableException",
]


class EndpointRightsizing(Construct):
    """Rightsizes one SageMaker real-time endpoint variant with Inference Recommender.

    Creates a Standard state machine that starts an IR job for the model, polls it, picks the
    cheapest configuration that meets ``slo`` at ``peak_requests_per_minute`` inside
    ``guardrails``, and puts a "Rightsizing Recommendation" event on ``event_bus``. Start it with
    ``aws stepfunctions start-execution --state-machine-arn <state_machine_arn>`` (any input).

    :param endpoint_name: the endpoint to rightsize. It must exist when the workflow runs.
    :param slo: the latency objective (:class:`LatencySlo`).
    :param peak_requests_per_minute: expected peak traffic to the variant, in requests per
        minute; the instance count is sized for it.
    :param variant_name: the production variant. Default: ``AllTraffic``.
    :param model_package_version_arn: the versioned model package IR tests. Give this or
        ``model_name``.
    :param model_name: the SageMaker model IR tests; needs ``container_config``.
    :param container_config: what IR needs for ``model_name`` (sample payload, framework...).
    :param job: the IR job. Default: :meth:`RecommenderJob.default` (instance recommendation).
    :param target_utilization: fraction of IR's measured per-instance capacity to plan for, in
        (0, 1]. Default: 0.5, AWS's suggested starting safety factor for SageMaker autoscaling
        targets ("Load testing your auto scaling configuration"): bursts up to twice the target
        are absorbed while autoscaling adds instances.
    :param guardrails: bounds on count, types and cost. Default: :class:`Guardrails` defaults
        (1 to 10 instances, any type, no cost cap).
    :param job_role: role IR assumes to stand up test endpoints. Default: a role is created
        that can manage only the resources IR names after this library's jobs; grant it read
        access to your model artifacts and sample payload (``bucket.grant_read(x.job_role)``).
    :param topic: where failures and recommendations are notified. Default: a topic encrypted
        with the AWS managed SNS key, TLS enforced.
    :param event_bus: where the recommendation event goes. Default: the account's default bus.
    :param poll_interval: wait between ``DescribeInferenceRecommendationsJob`` calls.
        Default: 5 minutes.
    :param apply_mode: ``ApplyMode.AUTO``: ``apply`` recommendations are applied to the endpoint
        by the Apply workflow. ``ApplyMode.RECOMMEND_ONLY``: they are published and notified
        only. Default: ``AUTO``.
    :param deployment: how the endpoint update rolls out (:class:`Deployment`). Default:
        blue/green, all traffic at once, no rollback alarms (SageMaker's default).
    :param ledger_table: the table of decision records and locks (keys ``pk``, ``sk``, both
        strings). Default: a table is created (on-demand, encrypted, point-in-time recovery,
        retained when the stack is deleted).
    :param timeout: how long to wait for the job before stopping it and failing; the workflow
        polls at most ``ceil(timeout / poll_interval)`` times. Default:
        2 hours for Default jobs; the job duration plus 1 hour for Advanced jobs.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        slo: LatencySlo,
        peak_requests_per_minute: float,
        variant_name: str = "AllTraffic",
        model_package_version_arn: str | None = None,
        model_name: str | None = None,
        container_config: ContainerConfig | None = None,
        job: RecommenderJob | None = None,
        target_utilization: float = 0.5,
        guardrails: Guardrails | None = None,
        job_role: iam.IRole | None = None,
        topic: sns.ITopic | None = None,
        event_bus: events.IEventBus | None = None,
        poll_interval: Duration | None = None,
        timeout: Duration | None = None,
        apply_mode: ApplyMode = ApplyMode.AUTO,
        deployment: Deployment | None = None,
        ledger_table: dynamodb.ITable | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        job = job if job is not None else RecommenderJob.default()
        guardrails = guardrails if guardrails is not None else Guardrails()
        poll_interval = poll_interval if poll_interval is not None else _DEFAULT_POLL_INTERVAL
        if timeout is None:
            timeout = (
                _DEFAULT_JOB_TIMEOUT
                if job.job_type is JobType.DEFAULT or job.job_duration is None
                else job.job_duration.plus(_ADVANCED_TIMEOUT_MARGIN)
            )
        _validate(
            endpoint_name=endpoint_name,
            variant_name=variant_name,
            slo=slo,
            peak_requests_per_minute=peak_requests_per_minute,
            model_package_version_arn=model_package_version_arn,
            model_name=model_name,
            container_config=container_config,
            job=job,
            target_utilization=target_utilization,
            guardrails=guardrails,
            poll_interval=poll_interval,
            timeout=timeout,
        )
        problems = ValidationProblems("EndpointRightsizing settings")
        problems.check(
            isinstance(apply_mode, ApplyMode),
            f"apply_mode must be ApplyMode.AUTO or ApplyMode.RECOMMEND_ONLY, got {apply_mode!r}",
        )
        problems.check(
            deployment is None or isinstance(deployment, Deployment),
            f"deployment must be a Deployment, got {deployment!r}",
        )
        problems.raise_if_any()
        self.endpoint_name = endpoint_name
        self.variant_name = variant_name

        self.job_role: iam.IRole = job_role or self._create_job_role(
            model_package_version_arn=model_package_version_arn, model_name=model_name
        )
        self.topic: sns.ITopic = topic or sns.Topic(
            self,
            "Topic",
            display_name="SageMaker rightsizing",
            enforce_ssl=True,
            master_key=kms.Alias.from_alias_name(self, "SnsManagedKey", "alias/aws/sns"),
        )
        self.event_bus: events.IEventBus = event_bus or events.EventBus.from_event_bus_name(
            self, "DefaultBus", "default"
        )
        settings = {
            "settings_version": SETTINGS_VERSION,
            "endpoint_name": endpoint_name,
            "variant_name": variant_name,
            "job_role_arn": self.job_role.role_arn,
            "model": _render_model(model_package_version_arn, model_name, container_config),
            "job": _render_job(job, slo),
            "slo": {"percentile": slo.percentile.value, "max_latency_ms": slo.max_latency_ms},
            "peak_requests_per_minute": peak_requests_per_minute,
            "target_utilization": target_utilization,
            "guardrails": {
                "min_instances": guardrails.min_instances,
                "max_instances": guardrails.max_instances,
                "allowed_instance_types": list(guardrails.allowed_instance_types),
                "max_cost_per_hour": guardrails.max_cost_per_hour,
            },
        }
        #: The settings document baked into the workflow (README, "Settings document").
        self.settings_document: dict[str, Any] = settings

        self.start_job_function = self._runtime_function(
            "StartJob", "start_job", "Starts the Inference Recommender job of a rightsizing run"
        )
        self.select_function = self._runtime_function(
            "SelectRecommendation",
            "select_recommendation",
            "Chooses the cheapest configuration that meets the SLO from an IR job",
        )
        self.stop_job_function = self._runtime_function(
            "StopJob", "stop_job", "Stops the Inference Recommender job of a failed or aborted run"
        )
        self._grant_runtime_permissions()
        #: The decision record of every run (recommend and apply), and the per-endpoint lock.
        self.ledger_table: dynamodb.ITable = ledger_table or create_ledger(self)

        self.state_machine: sfn.StateMachine = self._state_machine(settings, poll_interval, timeout)
        self.stop_orphaned_job_rule = events.Rule(
            self,
            "StopOrphanedJob",
            description="Stops the IR job of a rightsizing run that was aborted or timed out",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={
                    "status": ["ABORTED", "TIMED_OUT"],
                    "stateMachineArn": [self.state_machine.state_machine_arn],
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.stop_job_function,
                    event=events.RuleTargetInput.from_object(
                        {
                            "execution_arn": events.EventField.from_path("$.detail.executionArn"),
                            "reason": events.EventField.from_path("$.detail.status"),
                        }
                    ),
                    retry_attempts=8,
                )
            ],
        )
        self.failed_runs_alarm = cloudwatch.Alarm(
            self,
            "FailedRuns",
            alarm_description=(
                f"A rightsizing run of {endpoint_name} failed, timed out or was aborted"
            ),
            metric=cloudwatch.MathExpression(
                expression="failed + timedout + aborted",
                using_metrics={
                    "failed": self.state_machine.metric_failed(),
                    "timedout": self.state_machine.metric_timed_out(),
                    "aborted": self.state_machine.metric_aborted(),
                },
                period=Duration.minutes(5),
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.failed_runs_alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.topic))

        #: The Apply workflow (None in ``ApplyMode.RECOMMEND_ONLY``).
        self.apply_workflow: ApplyWorkflow | None = None
        if apply_mode is ApplyMode.AUTO:
            self.apply_workflow = ApplyWorkflow(
                self,
                "Apply",
                endpoint_name=endpoint_name,
                variant_name=variant_name,
                endpoint_arn=self._endpoint_arn,
                endpoint_config_arn=lambda name: self._arn("endpoint-config", name),
                ledger=self.ledger_table,
                topic=self.topic,
                event_bus=self.event_bus,
                step_function=self._runtime_function(
                    "ApplyStep",
                    "apply_steps",
                    "Runs one step of applying a rightsizing recommendation to an endpoint",
                    environment={"LEDGER_TABLE_NAME": self.ledger_table.table_name},
                ),
                deployment_config=deployment.render() if deployment else None,
                poll_interval=poll_interval,
                recommendation_source=RECOMMENDATION_EVENT_SOURCE,
                recommendation_detail_type=RECOMMENDATION_DETAIL_TYPE,
            )

    # -- IAM -----------------------------------------------------------------------------------

    def _arn(self, resource: str, name: str) -> str:
        """A SageMaker ARN in this stack's account and region.

        SageMaker lowercases names in ARNs, so a literal name is lowercased (a token must
        already be lowercase).
        """
        return Stack.of(self).format_arn(
            service="sagemaker",
            resource=resource,
            resource_name=name if is_token(name) else name.lower(),
        )

    @property
    def _job_arns(self) -> str:
        # Job names are generated per execution; every one starts with the library's prefix.
        return self._arn("inference-recommendations-job", JOB_NAME_PREFIX + "*")

    @property
    def _endpoint_arn(self) -> str:
        return self._arn("endpoint", self.endpoint_name)

    def _create_job_role(
        self, *, model_package_version_arn: str | None, model_name: str | None
    ) -> iam.Role:
        """The role IR assumes to run the load tests.

        IR creates a model, config and endpoint per load test, named after the job (so under
        the library's prefix), invokes them and deletes them.
        """
        role = iam.Role(
            self,
            "JobRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Inference Recommender load tests started by rightsizing-constructs",
        )
        stack = Stack.of(self)
        test_resources = [
            self._arn(kind, JOB_NAME_PREFIX + "*")
            for kind in ("model", "endpoint-config", "endpoint")
        ]
        ecr_repositories = stack.format_arn(service="ecr", resource="repository", resource_name="*")
        sagemaker_log_groups = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name="/aws/sagemaker/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ManageLoadTestEndpoints",
                actions=[
                    "sagemaker:CreateModel",
                    "sagemaker:DescribeModel",
                    "sagemaker:DeleteModel",
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:DeleteEndpointConfig",
                    "sagemaker:CreateEndpoint",
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:DeleteEndpoint",
                    "sagemaker:InvokeEndpoint",
                ],
                resources=test_resources,
            )
        )
        if model_package_version_arn is not None:
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="ReadModelPackage",
                    actions=["sagemaker:DescribeModelPackage"],
                    resources=[model_package_version_arn],
                )
            )
        if model_name is not None:
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="ReadModel",
                    actions=["sagemaker:DescribeModel"],
                    resources=[self._arn("model", model_name)],
                )
            )
        # IR passes this role on to the models it creates for the load tests.
        role.add_to_policy(_pass_to_sagemaker(role.role_arn))
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PullModelImages",
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                resources=[ecr_repositories],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EcrLogin",
                actions=["ecr:GetAuthorizationToken"],
                # GetAuthorizationToken has no resource-level permissions.
                resources=["*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="TestEndpointLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[sagemaker_log_groups],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="TestEndpointMetrics",
                actions=["cloudwatch:PutMetricData"],
                # No resource-level permissions: scoped to SageMaker's namespaces instead.
                resources=["*"],
                conditions={
                    "StringLike": {"cloudwatch:namespace": ["AWS/SageMaker", "/aws/sagemaker/*"]}
                },
            )
        )
        for resource in test_resources:
            acknowledge_wildcard(
                role,
                resource,
                "IR names the model, endpoint config and endpoint of each load test after the "
                "job; job names are generated per run under the library's prefix.",
            )
        acknowledge_wildcard(
            role,
            ecr_repositories,
            "The model's container image repository is not known at synth time (it is named in "
            "the model package or model); pulls are limited to this account and region.",
        )
        acknowledge_wildcard(
            role,
            sagemaker_log_groups,
            "SageMaker names the log groups of the test endpoints at run time, under "
            "/aws/sagemaker/.",
        )
        acknowledge_wildcard(
            role,
            "*",
            "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level "
            "permissions; PutMetricData is limited to SageMaker's namespaces by condition.",
        )
        return role

    def _runtime_function(
        self,
        construct_id: str,
        module: str,
        description: str,
        environment: dict[str, str] | None = None,
    ) -> lambda_.Function:
        """A Lambda function running ``rightsizing_runtime.<module>.handler``.

        It gets its own role and log group: no AWS managed policy, logs are granted on its log
        group only.
        """
        log_group = logs.LogGroup(
            self, f"{construct_id}Logs", retention=logs.RetentionDays.ONE_YEAR
        )
        role = iam.Role(
            self,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{description} (rightsizing-constructs)",
        )
        function = lambda_.Function(
            self,
            construct_id,
            description=description,
            runtime=_RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=f"rightsizing_runtime.{module}.handler",
            code=lambda_.Code.from_asset(
                str(runtime_asset_dir()), exclude=["**/__pycache__", "**/*.pyc"]
            ),
            timeout=Duration.seconds(60),
            memory_size=256,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            role=role,
            environment=environment,
        )
        log_group.grant_write(role)
        acknowledge_wildcard(role, "*", _XRAY_REASON)
        return function

    def _grant_runtime_permissions(self) -> None:
        """Exactly what each handler calls, on the resources it calls it on."""
        self.start_job_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateInferenceRecommendationsJob",
                    "sagemaker:DescribeInferenceRecommendationsJob",
                ],
                resources=[self._job_arns],
            )
        )
        self.start_job_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeEndpoint"], resources=[self._endpoint_arn]
            )
        )
        # CreateInferenceRecommendationsJob passes the job role to SageMaker.
        self.start_job_function.add_to_role_policy(_pass_to_sagemaker(self.job_role.role_arn))
        self.select_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeInferenceRecommendationsJob"],
                resources=[self._job_arns],
            )
        )
        self.select_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeEndpoint"], resources=[self._endpoint_arn]
            )
        )
        self.select_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeEndpointConfig"],
                # The endpoint's current config name is only known at run time.
                resources=[self._arn("endpoint-config", "*")],
            )
        )
        self.stop_job_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:StopInferenceRecommendationsJob"], resources=[self._job_arns]
            )
        )
        for function in (self.start_job_function, self.select_function, self.stop_job_function):
            acknowledge_wildcard(function.role, self._job_arns, _JOB_NAMES_REASON)  # type: ignore[arg-type]
        acknowledge_wildcard(
            self.select_function.role,  # type: ignore[arg-type]
            self._arn("endpoint-config", "*"),
            "The endpoint's current endpoint config name changes with every update and is only "
            "known at run time (DescribeEndpoint returns it).",
        )

    # -- Workflow ------------------------------------------------------------------------------

    def _record(
        self, state_name: str, *, outcome: str, reason: str, record: str
    ) -> sfn.TaskStateBase:
        """A task that writes this run's record to the ledger.

        Keys: ``pk`` ``endpoint#<name>``, ``sk`` ``recommendation#<time>#<execution>``.
        """
        task = tasks.DynamoPutItem(
            self,
            state_name,
            table=self.ledger_table,
            item={
                "pk": tasks.DynamoAttributeValue.from_string(f"endpoint#{self.endpoint_name}"),
                "sk": tasks.DynamoAttributeValue.from_string(
                    sfn.JsonPath.format(
                        "recommendation#{}#{}",
                        # The record's own time (moto's interpreter cannot format
                        # $$.Execution.StartTime, a datetime there).
                        sfn.JsonPath.string_at("$$.State.EnteredTime"),
                        sfn.JsonPath.string_at("$$.Execution.Name"),
                    )
                ),
                "recorded_at": tasks.DynamoAttributeValue.from_string(
                    sfn.JsonPath.string_at("$$.State.EnteredTime")
                ),
                "outcome": tasks.DynamoAttributeValue.from_string(outcome),
                "reason": tasks.DynamoAttributeValue.from_string(reason),
                "record": tasks.DynamoAttributeValue.from_string(record),
                "execution_arn": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.execution_id),
            },
            result_path=sfn.JsonPath.DISCARD,
        )
        task.add_retry(errors=["States.TaskFailed"], interval=Duration.seconds(5), max_attempts=4)
        return task

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
            self,
            f"{state_name}Task",
            state_name=state_name,
            function=function,
            payload=payload,
            result_path=result_path,
        )

    def _state_machine(
        self, settings: dict[str, Any], poll_interval: Duration, timeout: Duration
    ) -> sfn.StateMachine:
        load_settings = sfn.Pass(
            self,
            "LoadSettings",
            comment="The endpoint's settings, validated at synth time",
            result=sfn.Result.from_object(settings),
            result_path="$.settings",
        )
        start_job = self._invoke(
            "StartJob",
            self.start_job_function,
            {
                "settings": sfn.JsonPath.object_at("$.settings"),
                "execution_arn": sfn.JsonPath.execution_id,
            },
            result_path="$.job",
        )
        describe = tasks.CallAwsService(
            self,
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
        describe.add_retry(
            errors=_SAGEMAKER_RETRYABLE,
            interval=Duration.seconds(10),
            max_attempts=6,
            backoff_rate=2,
        )
        timed_out = sfn.Pass(
            self,
            "JobTimedOut",
            parameters={
                "Error": "JobTimedOut",
                "Cause": sfn.JsonPath.format(
                    f"The recommendation job {{}} did not finish within "
                    f"{timeout.to_human_string()}; it is being stopped.",
                    sfn.JsonPath.string_at("$.job.job_name"),
                ),
            },
            result_path="$.error",
        )
        select = self._invoke(
            "SelectRecommendation",
            self.select_function,
            {
                "settings": sfn.JsonPath.object_at("$.settings"),
                "job": sfn.JsonPath.object_at("$.job"),
            },
            result_path="$.recommendation.detail",
        )
        put_event = tasks.EventBridgePutEvents(
            self,
            "PutRecommendationEvent",
            entries=[
                tasks.EventBridgePutEventsEntry(
                    detail=sfn.TaskInput.from_json_path_at("$.recommendation.detail"),
                    detail_type=RECOMMENDATION_DETAIL_TYPE,
                    source=RECOMMENDATION_EVENT_SOURCE,
                    event_bus=self.event_bus,
                )
            ],
            result_path=sfn.JsonPath.DISCARD,
        )
        put_event.add_retry(
            errors=["States.TaskFailed"],
            interval=Duration.seconds(5),
            max_attempts=4,
            backoff_rate=2,
        )
        notify_recommendation = tasks.SnsPublish(
            self,
            "NotifyRecommendation",
            topic=self.topic,
            subject=sfn.JsonPath.format(
                "Rightsizing {}: {}",
                sfn.JsonPath.string_at("$.recommendation.detail.action"),
                sfn.JsonPath.string_at("$.recommendation.detail.endpoint_name"),
            ),
            message=sfn.TaskInput.from_object(
                {
                    "endpoint_name": sfn.JsonPath.string_at(
                        "$.recommendation.detail.endpoint_name"
                    ),
                    "variant_name": sfn.JsonPath.string_at("$.recommendation.detail.variant_name"),
                    "action": sfn.JsonPath.string_at("$.recommendation.detail.action"),
                    "reason": sfn.JsonPath.string_at("$.recommendation.detail.reason"),
                    "job_name": sfn.JsonPath.string_at("$.recommendation.detail.job_name"),
                    "execution": sfn.JsonPath.execution_id,
                }
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        stop_job = self._invoke(
            "StopJob",
            self.stop_job_function,
            {
                "execution_arn": sfn.JsonPath.execution_id,
                "reason": sfn.JsonPath.string_at("$.error.Error"),
            },
            result_path=sfn.JsonPath.DISCARD,
        )
        notify_failure = tasks.SnsPublish(
            self,
            "NotifyFailure",
            topic=self.topic,
            subject=sfn.JsonPath.format(
                "Rightsizing failed: {}", sfn.JsonPath.string_at("$.settings.endpoint_name")
            ),
            message=sfn.TaskInput.from_object(
                {
                    "endpoint_name": sfn.JsonPath.string_at("$.settings.endpoint_name"),
                    "variant_name": sfn.JsonPath.string_at("$.settings.variant_name"),
                    "error": sfn.JsonPath.string_at("$.error.Error"),
                    "cause": sfn.JsonPath.string_at("$.error.Cause"),
                    "execution": sfn.JsonPath.execution_id,
                }
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        for notify in (notify_recommendation, notify_failure):
            notify.add_retry(
                errors=["States.TaskFailed"], interval=Duration.seconds(5), max_attempts=4
            )
        # The decision record of every run (DESIGN.md invariant 5), in the ledger.
        record_recommendation = self._record(
            "RecordRecommendation",
            outcome=sfn.JsonPath.string_at("$.recommendation.detail.action"),
            reason=sfn.JsonPath.string_at("$.recommendation.detail.reason"),
            record=sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.recommendation.detail")),
        )
        record_failure = self._record(
            "RecordFailure",
            outcome="failed",
            reason=sfn.JsonPath.string_at("$.error.Error"),
            record=sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.error")),
        )
        failed = sfn.Fail(self, "Failed", error_path="$.error.Error", cause_path="$.error.Cause")
        failure_path = stop_job.next(record_failure).next(notify_failure).next(failed)
        # Failing to stop or to record must not hide the original error from the notification.
        stop_job.add_catch(record_failure, errors=["States.ALL"], result_path="$.stop_error")
        record_failure.add_catch(
            notify_failure, errors=["States.ALL"], result_path="$.record_error"
        )
        record_recommendation.add_catch(
            notify_recommendation, errors=["States.ALL"], result_path="$.record_error"
        )
        for state in (start_job, describe, select, put_event):
            state.add_catch(failure_path, errors=["States.ALL"], result_path="$.error")

        poll = bounded_poll(
            self,
            names=PollNames(
                start="StartPolling",
                wait="WaitForJob",
                count="CountPoll",
                finished="JobFinished",
                budget_spent="PollBudgetSpent",
            ),
            check=describe,
            status_path="$.job_status.status",
            busy_statuses=("PENDING", "IN_PROGRESS", "STOPPING"),
            poll_interval=poll_interval,
            timeout=timeout,
            on_timeout=timed_out.next(failure_path),
            # COMPLETED, FAILED, STOPPED, DELETING, DELETED: the Select handler decides or
            # raises with IR's failure reason.
            on_done=select.next(put_event)
            .next(record_recommendation)
            .next(notify_recommendation)
            .next(sfn.Succeed(self, "Done")),
        )
        state_machine = standard_state_machine(
            self,
            comment=f"Rightsizing of SageMaker endpoint {self.endpoint_name}",
            definition=load_settings.next(start_job).next(poll),
            timeout=timeout.plus(_STATE_MACHINE_TIMEOUT_MARGIN),
            invoked=(self.start_job_function, self.select_function, self.stop_job_function),
        )
        acknowledge_wildcard(state_machine.role, self._job_arns, _JOB_NAMES_REASON)
        return state_machine


def _pass_to_sagemaker(role_arn: str) -> iam.PolicyStatement:
    """``iam:PassRole`` on ``role_arn``, to SageMaker only."""
    return iam.PolicyStatement(
        actions=["iam:PassRole"],
        resources=[role_arn],
        conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    )


def _render_model(
    model_package_version_arn: str | None,
    model_name: str | None,
    container_config: ContainerConfig | None,
) -> dict[str, Any]:
    if model_package_version_arn is not None:
        return {"model_package_version_arn": model_package_version_arn}
    assert model_name is not None and container_config is not None
    return {"model_name": model_name, "container_config": container_config.render()}


def _render_job(job: RecommenderJob, slo: LatencySlo) -> dict[str, Any]:
    if job.job_type is JobType.DEFAULT:
        return {"job_type": JobType.DEFAULT.value}
    assert job.job_duration is not None
    conditions = job.stopping_conditions or StoppingConditions()
    # Stop the load at the SLO unless told otherwise: IR's MaxInvocations is then the
    # throughput at which the SLO still holds.
    threshold = conditions.model_latency_threshold or LatencyThreshold(
        percentile=slo.percentile, value=slo.max_latency
    )
    return {
        "job_type": JobType.ADVANCED.value,
        "instance_types": list(job.instance_types),
        "job_duration_seconds": int(job.job_duration.to_seconds()),
        "traffic_pattern": None if job.traffic_pattern is None else job.traffic_pattern.render(),
        "stopping_conditions": {
            "max_invocations": conditions.max_invocations,
            "model_latency_threshold": {
                "percentile": threshold.percentile.value,
                "value_ms": int(threshold.value.to_milliseconds()),
            },
        },
        "max_number_of_tests": job.max_number_of_tests,
        "max_parallel_of_tests": job.max_parallel_of_tests,
    }


def _validate(
    *,
    endpoint_name: str,
    variant_name: str,
    slo: LatencySlo,
    peak_requests_per_minute: float,
    model_package_version_arn: str | None,
    model_name: str | None,
    container_config: ContainerConfig | None,
    job: RecommenderJob,
    target_utilization: float,
    guardrails: Guardrails,
    poll_interval: Duration,
    timeout: Duration,
) -> None:
    """Every cross-setting check of the construct, raised once (STYLE.md rule 5)."""
    problems = ValidationProblems("EndpointRightsizing settings")
    for name, value in (("endpoint_name", endpoint_name), ("variant_name", variant_name)):
        problems.check(
            is_token(value) or (isinstance(value, str) and bool(_NAME_PATTERN.match(value))),
            f"{name} must be 1-63 letters, digits and hyphens, starting and ending with a letter "
            f"or digit (SageMaker's rule), got {value!r}",
        )
    problems.check(
        isinstance(slo, LatencySlo),
        f"slo must be a LatencySlo such as LatencySlo.p99(Duration.millis(200)), got {slo!r}",
    )
    problems.check(
        _is_positive_number(peak_requests_per_minute),
        f"peak_requests_per_minute must be a number > 0 (expected peak requests per minute to "
        f"the variant), got {peak_requests_per_minute!r}",
    )
    problems.check(
        is_number(target_utilization) and 0 < target_utilization <= 1,
        f"target_utilization must be in (0, 1] (0.5 plans for bursts of twice the target), "
        f"got {target_utilization!r}",
    )
    given = [
        n
        for n, v in (
            ("model_package_version_arn", model_package_version_arn),
            ("model_name", model_name),
        )
        if v is not None
    ]
    problems.check(
        len(given) == 1,
        "give exactly one of model_package_version_arn or model_name (with container_config), "
        f"got {', '.join(given) or 'neither'}",
    )
    if model_package_version_arn is not None:
        problems.check(
            is_token(model_package_version_arn)
            or bool(_VERSIONED_PACKAGE_ARN.match(model_package_version_arn)),
            "model_package_version_arn must be the ARN of a versioned model package "
            "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>), "
            f"got {model_package_version_arn!r}",
        )
        problems.check(
            container_config is None,
            "container_config goes with model_name only; IR reads it from the model package",
        )
    if model_name is not None:
        problems.check(
            is_token(model_name) or bool(_NAME_PATTERN.match(model_name)),
            f"model_name must be a SageMaker model name, got {model_name!r}",
        )
        problems.check(
            isinstance(container_config, ContainerConfig),
            "model_name needs container_config=ContainerConfig(...) (IR's ContainerConfig: "
            "sample payload, framework, domain, task)",
        )
    problems.check(isinstance(job, RecommenderJob), f"job must be a RecommenderJob, got {job!r}")
    problems.check(
        isinstance(guardrails, Guardrails), f"guardrails must be Guardrails, got {guardrails!r}"
    )
    if isinstance(job, RecommenderJob) and isinstance(guardrails, Guardrails):
        tested = [t for t in job.instance_types if not is_token(t)]
        # The runtime's own rule, so synth-time and run-time agree on what "allowed" means.
        allowed = import_runtime("decision").is_allowed_type
        problems.check(
            not tested or any(allowed(t, guardrails.allowed_instance_types) for t in tested),
            f"none of the job's instance_types ({', '.join(tested)}) is in the guardrails' "
            f"allowed_instance_types ({', '.join(guardrails.allowed_instance_types)}); every run "
            "would be rejected",
        )
    # The poll budget, ceil(timeout / poll_interval), is written into the definition.
    durations_known = not (is_token(poll_interval.to_string()) or is_token(timeout.to_string()))
    problems.check(
        durations_known, "poll_interval and timeout must be known at synth time, not tokens"
    )
    if durations_known:
        problems.check(
            poll_interval.to_seconds() >= 1,
            f"poll_interval must be at least 1 second, got {poll_interval.to_human_string()}",
        )
        problems.check(
            timeout.to_seconds() > poll_interval.to_seconds(),
            f"timeout ({timeout.to_human_string()}) must be longer than poll_interval "
            f"({poll_interval.to_human_string()})",
        )
        if isinstance(job, RecommenderJob) and job.job_duration is not None:
            problems.check(
                timeout.to_seconds() >= job.job_duration.to_seconds(),
                f"timeout ({timeout.to_human_string()}) is shorter than the job's job_duration "
                f"({job.job_duration.to_human_string()}): the job would be stopped before it "
                "could finish; raise timeout",
            )
    problems.raise_if_any()


def _is_positive_number(value: Any) -> bool:
    return is_number(value) and value > 0
