"""``RightsizingEngine``: the one shared engine of a stack, for one endpoint or hundreds.

The engine holds everything that does not depend on the endpoint: the Recommend and Apply state
machines, their Lambda functions, the IR job role, the ledger table, the topic, the rule that
stops orphaned IR jobs, the failure alarms, and the shared schedule rules. Each rightsized
endpoint (:class:`~rightsizing_constructs.EndpointRightsizing`) adds only its triggers: one rule
whose target input carries the endpoint's settings (plus a latency alarm when asked for), and
its ARNs in the engine's IAM statements.

The Recommend workflow (a Standard state machine, because IR jobs run for hours)::

    RouteTrigger -> a "Rightsizing Recommendation" event: StartApply (the Apply workflow)
                 -> anything else: Prepare -> AcquireJobSlot (wait while K jobs run)
                    -> StartJob -> StartPolling -> WaitForJob -> DescribeJob -> JobFinished?
        running  -> CountPoll -> PollBudgetSpent? -> no: WaitForJob (poll again)
                                                  -> yes: JobTimedOut -> StopJob -> ...
        finished -> ReleaseJobSlot -> SelectRecommendation -> PutRecommendationEvent
                    -> RecordRecommendation -> NotifyRecommendation -> Done
    model version not served -> RecordMismatch -> NotifySkipped -> Skipped
    any error  -> StopJob -> ReleaseSlotAfterFailure -> RecordFailure -> NotifyFailure -> Failed

There is no IR completion event, so the workflow polls ``DescribeInferenceRecommendationsJob``,
at most ``max_polls`` times (the endpoint's ``ceil(timeout / poll_interval)``). An execution
that is aborted or hits the state machine's own timeout runs no further state; the
``StopOrphanedJob`` rule catches its status-change event, stops the job and frees its slot
(DESIGN.md invariant 6).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import jsii
from aws_cdk import ArnFormat, Duration, IResolveContext, IStableAnyProducer, Lazy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from ._nag import (
    CDK_GRANT_POLICY,
    DEAD_LETTERS_SQS_KEY,
    ENVIRONMENT_AWS_KEY,
    IS_DEAD_LETTER_QUEUE,
    LOG_GROUP_SERVICE_KEY,
    OUTSIDE_VPC,
    SYNCHRONOUS_ONLY,
    UNRESERVED_CONCURRENCY,
    VPC_NETWORK_INTERFACES,
    acknowledge_wildcard,
)
from ._runtime import import_runtime, runtime_asset_dir
from ._workflow import (
    PollNames,
    alarm_on_first,
    bounded_poll,
    invoke,
    standard_state_machine,
)
from .apply import ApplyWorkflow, create_ledger
from .settings import ValidationProblems, is_token

if TYPE_CHECKING:
    from .recommend import EndpointRightsizing

#: ``source`` of the library's events on EventBridge (recommendations, run requests).
EVENT_SOURCE: str = import_runtime("triggers").EVENT_SOURCE
#: ``source`` of the recommendation event on EventBridge.
RECOMMENDATION_EVENT_SOURCE = EVENT_SOURCE
#: ``detail-type`` of the recommendation event on EventBridge.
RECOMMENDATION_DETAIL_TYPE = "Rightsizing Recommendation"
#: ``detail-type`` of the manual trigger (README, "Triggers").
RUN_REQUESTED_DETAIL_TYPE: str = import_runtime("triggers").RUN_REQUESTED
#: ``detail-type`` of the utilization audit's findings (README, "Utilization audit").
FINDING_DETAIL_TYPE: str = import_runtime("triggers").FINDING
# The runtime owns the job-name prefix (IAM policies are scoped to it).
JOB_NAME_PREFIX: str = import_runtime("job_request").JOB_NAME_PREFIX
#: The longest ``timeout`` an endpoint may set; the state machine's own timeout covers it.
MAX_JOB_TIMEOUT = Duration.hours(24)
#: EventBridge's limit on targets per rule.
TARGETS_PER_RULE = 5
#: Endpoints listed in one schedule target's input (worst case about 110 characters each,
#: within EventBridge's 8192-character limit on a target's input).
ENDPOINTS_PER_SCHEDULE_TARGET = 60

_DEFAULT_POLL_INTERVAL = Duration.minutes(5)
_DEFAULT_QUEUE_TIMEOUT = Duration.days(2)
# The state machine's own timeout is a backstop behind the workflow's poll budget.
_STATE_MACHINE_TIMEOUT_MARGIN = Duration.hours(1)
_ENGINE_ID = "RightsizingEngine"
_RUNTIME = lambda_.Runtime.PYTHON_3_14
_XRAY_REASON = (
    "X-Ray PutTraceSegments and PutTelemetryRecords (Lambda active tracing) have no "
    "resource-level permissions."
)
_VPC_REASON = (
    "Lambda attaches the function to the VPC through network interfaces it creates with "
    "generated IDs; ec2:DescribeNetworkInterfaces has no resource-level permissions."
)
# What AWS's managed AWSLambdaVPCAccessExecutionRole grants, which CDK adds only to roles it
# creates itself (the engine creates its own, one per function).
_VPC_ACCESS_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]
# How long undeliverable events and invocations are kept for inspection (SQS's maximum).
_DEAD_LETTER_RETENTION = Duration.days(14)
_JOB_NAMES_REASON = (
    "IR job names are generated per execution (rightsizing-<hash of the execution ARN>), so "
    "job ARNs are scoped to the library's job-name prefix."
)
#: Why a role reads any endpoint config (cdk-nag acknowledgment).
CONFIGS_REASON = (
    "The endpoint's current endpoint config name changes with every update and is only known "
    "at run time (DescribeEndpoint returns it)."
)
_SAGEMAKER_RETRYABLE = [
    "SageMaker.ThrottlingException",
    "SageMaker.InternalFailureException",
    "SageMaker.ServiceUnavailableException",
]


class RightsizingEngine(Construct):
    """The shared rightsizing engine of a stack: workflows, functions, ledger, topic.

    Create one explicitly to choose its settings, then add endpoints with :meth:`add_endpoint`
    (or pass ``engine=`` to :class:`~rightsizing_constructs.EndpointRightsizing`). An
    ``EndpointRightsizing`` without an engine uses :meth:`of`: the stack's engine, created with
    the defaults the first time.

    :param job_role: the role IR assumes to stand up test endpoints. Default: a role is created
        that can manage only the resources IR names after this library's jobs and read the
        endpoints' model packages; grant it read access to your model artifacts and sample
        payloads (``bucket.grant_read(engine.job_role)``).
    :param topic: where failures and recommendations are notified. Default: a topic encrypted
        with the AWS managed SNS key, TLS enforced.
    :param event_bus: where recommendation events go and run requests are read from. Default:
        the account's default bus. (AWS's own events, model approvals and alarms, are always
        read from the default bus.)
    :param ledger_table: the table of decision records, locks and IR job slots (keys ``pk``,
        ``sk``, both strings). Default: a table is created (on-demand, encrypted, point-in-time
        recovery, retained when the stack is deleted).
    :param poll_interval: wait between polls of an IR job, of an endpoint update, and for a free
        job slot. Default: 5 minutes.
    :param max_concurrent_jobs: the most IR jobs that run at once across the engine; further
        runs wait for a slot (IR's test endpoints count against the account's quotas).
        Default: 2.
    :param queue_timeout: how long a run waits for a job slot before it fails (and records
        why). Default: 2 days.
    :param encryption_key: a customer managed KMS key for what the engine creates: the ledger
        table, the topic, the log groups and the functions' environment. The workflows' and
        functions' roles are granted its use; a key created in the same app also gets the key
        policy statements CloudWatch Logs and CloudWatch alarms need (for an imported key, add
        them yourself: README, "Compliance"). Default: AWS managed keys (DynamoDB and SNS) and
        the services' own encryption at rest (CloudWatch Logs, Lambda environment).
    :param reserved_concurrency: concurrency reserved for each of the engine's functions.
        Default: none reserved (the functions use the account's unreserved pool).
    :param vpc: run the engine's functions in this VPC; they need a route to the SageMaker,
        DynamoDB and Application Auto Scaling APIs (NAT or VPC endpoints). Default: the
        functions run outside any VPC (they reach only AWS APIs).
    :param vpc_subnets: where in ``vpc`` the functions run. Default: the VPC's private subnets.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        job_role: iam.IRole | None = None,
        topic: sns.ITopic | None = None,
        event_bus: events.IEventBus | None = None,
        ledger_table: dynamodb.ITable | None = None,
        poll_interval: Duration | None = None,
        max_concurrent_jobs: int = 2,
        queue_timeout: Duration | None = None,
        encryption_key: kms.IKey | None = None,
        reserved_concurrency: int | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        poll_interval = poll_interval if poll_interval is not None else _DEFAULT_POLL_INTERVAL
        queue_timeout = queue_timeout if queue_timeout is not None else _DEFAULT_QUEUE_TIMEOUT
        _validate(poll_interval, max_concurrent_jobs, queue_timeout, reserved_concurrency)
        if vpc_subnets is not None and vpc is None:
            raise ValueError("vpc_subnets needs vpc: pass the VPC the subnets are in as well")
        #: The customer managed key of what the engine creates, if one was given.
        self.encryption_key = encryption_key
        self._reserved_concurrency = reserved_concurrency
        self._vpc = vpc
        self._vpc_subnets = vpc_subnets
        if isinstance(encryption_key, kms.Key):
            _allow_service_use(encryption_key)
        #: Wait between polls (IR jobs, endpoint updates, job slots).
        self.poll_interval = poll_interval
        #: The most IR jobs that run at once across the engine.
        self.max_concurrent_jobs = max_concurrent_jobs
        self._endpoints: dict[tuple[str, str], EndpointRightsizing] = {}
        # Schedule expression -> its rules, and the endpoint list of each of their targets
        # (target i is on rule i // TARGETS_PER_RULE).
        self._schedule_rules: dict[str, list[events.Rule]] = {}
        self._scheduled: dict[str, list[list[dict[str, str]]]] = {}

        # Grants that grow as endpoints register: the job role's reads of their models (one
        # statement per kind), and Prepare's check of which model an endpoint serves.
        self._job_role_reads: dict[str, iam.PolicyStatement] = {}
        self._served_model_check_granted = False
        self._own_job_role = job_role is None
        self.job_role: iam.IRole = job_role or self._create_job_role()
        self.topic: sns.ITopic = topic or sns.Topic(
            self,
            "Topic",
            display_name="SageMaker rightsizing",
            enforce_ssl=True,
            master_key=encryption_key
            or kms.Alias.from_alias_name(self, "SnsManagedKey", "alias/aws/sns"),
        )
        #: True when recommendations and run requests use the account's default bus.
        self.uses_default_bus = event_bus is None
        self.event_bus: events.IEventBus = event_bus or self.default_bus
        #: The decision record of every run (recommend and apply), the locks and the job slots.
        self.ledger_table: dynamodb.ITable = ledger_table or create_ledger(self, encryption_key)
        # The key the engine's own ledger is encrypted with (a table you bring has its own).
        self._ledger_key = encryption_key if ledger_table is None else None
        #: Where events that rules could not deliver, and asynchronous invocations that failed,
        #: are kept (14 days); its alarm notifies the topic.
        self.dead_letter_queue = self._dead_letters()

        self.start_job_function = self._runtime_function(
            "StartJob", "start_job", "Prepares a rightsizing run and starts its IR job"
        )
        self.job_slots_function = self._runtime_function(
            "JobSlots",
            "job_slots",
            "Takes and frees the IR job slots that bound concurrent rightsizing jobs",
            environment={"LEDGER_TABLE_NAME": self.ledger_table.table_name},
            asynchronous=True,
        )
        self.select_function = self._runtime_function(
            "SelectRecommendation",
            "select_recommendation",
            "Chooses the cheapest configuration that meets the SLO from an IR job",
        )
        self.stop_job_function = self._runtime_function(
            "StopJob",
            "stop_job",
            "Stops the Inference Recommender job of a failed or aborted run",
            asynchronous=True,
        )
        self._grant_runtime_permissions()

        #: The Apply workflow, shared by every endpoint in ``ApplyMode.AUTO``.
        self.apply_workflow = ApplyWorkflow(
            self,
            "Apply",
            ledger=self.ledger_table,
            topic=self.topic,
            step_function=self._runtime_function(
                "ApplyStep",
                "apply_steps",
                "Runs one step of applying a rightsizing recommendation to an endpoint",
                environment={"LEDGER_TABLE_NAME": self.ledger_table.table_name},
            ),
            poll_interval=poll_interval,
            endpoint_config_arn=lambda name: self.sagemaker_arn("endpoint-config", name),
            encryption_key=encryption_key,
        )
        self.state_machine: sfn.StateMachine = self._state_machine(queue_timeout)
        self.stop_orphaned_job_rule = self._stop_orphaned_jobs()
        self._grant_key_use(own_topic=topic is None, own_ledger=ledger_table is None)
        self.failed_runs_alarm = alarm_on_first(
            self,
            "FailedRuns",
            description="A rightsizing run failed, timed out or was aborted",
            metric=cloudwatch.MathExpression(
                expression="failed + timedout + aborted",
                using_metrics={
                    "failed": self.state_machine.metric_failed(),
                    "timedout": self.state_machine.metric_timed_out(),
                    "aborted": self.state_machine.metric_aborted(),
                },
                period=Duration.minutes(5),
            ),
            topic=self.topic,
        )

    @classmethod
    def of(cls, scope: Construct) -> RightsizingEngine:
        """The engine of ``scope``'s stack: the one already there, or a new one with defaults."""
        stack = Stack.of(scope)
        existing = stack.node.try_find_child(_ENGINE_ID)
        if existing is None:
            return cls(stack, _ENGINE_ID)
        if not isinstance(existing, RightsizingEngine):
            raise ValueError(
                f"{stack.node.path}/{_ENGINE_ID} is taken by a {type(existing).__name__}; "
                "pass engine= explicitly"
            )
        return existing

    def add_endpoint(self, construct_id: str, **settings: Any) -> EndpointRightsizing:
        """Rightsize one more endpoint with this engine.

        Takes the keyword arguments of :class:`~rightsizing_constructs.EndpointRightsizing`
        (except ``engine``); the construct is created under the engine.
        """
        from .recommend import EndpointRightsizing

        return EndpointRightsizing(self, construct_id, engine=self, **settings)

    @property
    def endpoints(self) -> list[EndpointRightsizing]:
        """The endpoints this engine rightsizes, in the order they were added."""
        return list(self._endpoints.values())

    @property
    def default_bus(self) -> events.IEventBus:
        """The account's default event bus (AWS services' events arrive only there)."""
        existing = self.node.try_find_child("DefaultBus")
        if existing is not None:
            return existing  # type: ignore[return-value]
        return events.EventBus.from_event_bus_name(self, "DefaultBus", "default")

    # -- Endpoints -----------------------------------------------------------------------------

    def register(self, endpoint: EndpointRightsizing) -> None:
        """Give the engine's roles access to ``endpoint`` (called by ``EndpointRightsizing``)."""
        key = (endpoint.endpoint_name, endpoint.variant_name)
        if not any(is_token(k) for k in key) and key in self._endpoints:
            raise ValueError(
                f"{endpoint.endpoint_name}/{endpoint.variant_name} is already rightsized by "
                f"{self._endpoints[key].node.path}; one construct per endpoint variant"
            )
        self._endpoints[key] = endpoint
        endpoint_arn = self.sagemaker_arn("endpoint", endpoint.endpoint_name)
        for function, statement in (
            (self.start_job_function, self._start_job_endpoints),
            (self.select_function, self._select_endpoints),
        ):
            if not statement.resources:
                # Attached with the first endpoint: IAM refuses a statement with no resource
                # (an engine with no endpoint yet, say for an audit alone).
                function.add_to_role_policy(statement)
            if endpoint_arn not in statement.resources:
                statement.add_resources(endpoint_arn)
        if self._own_job_role:
            if endpoint.model_package_version_arn is not None:
                self._add_job_role_read(
                    "ReadModelPackage",
                    "sagemaker:DescribeModelPackage",
                    endpoint.model_package_version_arn,
                )
            if endpoint.model_name is not None:
                self._add_job_role_read(
                    "ReadModel",
                    "sagemaker:DescribeModel",
                    self.sagemaker_arn("model", endpoint.model_name),
                )
            if endpoint.model_approval is not None:
                self._add_job_role_read(
                    "ReadModelPackage",
                    "sagemaker:DescribeModelPackage",
                    self.sagemaker_arn(
                        "model-package", f"{endpoint.model_approval.model_package_group_name}/*"
                    ),
                )
        if endpoint.model_approval is not None:
            self._grant_served_model_check()
        if endpoint.applies:
            self.apply_workflow.grant_endpoint(endpoint_arn)

    def add_schedule(
        self, schedule: events.Schedule, endpoint_name: str, variant_name: str
    ) -> None:
        """Request runs of ``endpoint_name``/``variant_name`` on ``schedule``.

        Endpoints on the same schedule share its rules: each target lists up to
        ``ENDPOINTS_PER_SCHEDULE_TARGET`` endpoints (within EventBridge's 8 KB target input) and a
        rule has up to ``TARGETS_PER_RULE`` targets. The Recommend workflow turns the list into
        one "Rightsizing Run Requested" event per endpoint (``RequestScheduledRuns``), which the
        endpoint's own rule starts with its settings: a schedule adds no resource per endpoint.
        """
        expression = schedule.expression_string
        rules = self._schedule_rules.setdefault(expression, [])
        lists = self._scheduled.setdefault(expression, [])
        if not lists or len(lists[-1]) >= ENDPOINTS_PER_SCHEDULE_TARGET:
            if len(lists) % TARGETS_PER_RULE == 0:
                rules.append(
                    events.Rule(
                        self,
                        f"Schedule{sum(len(r) for r in self._schedule_rules.values())}",
                        description=f"Requests scheduled rightsizing runs ({expression})",
                        schedule=schedule,
                    )
                )
            lists.append([])
            rules[-1].add_target(
                targets.SfnStateMachine(
                    self.state_machine,
                    input=events.RuleTargetInput.from_object(
                        {"scheduled": Lazy.any(_ListProducer(lists[-1]))}
                    ),
                    retry_attempts=8,
                    dead_letter_queue=self.rule_dead_letter_queue,
                )
            )
        lists[-1].append({"endpoint_name": endpoint_name, "variant_name": variant_name})

    def sagemaker_arn(self, resource: str, name: str) -> str:
        """A SageMaker ARN in this stack's account and region.

        SageMaker lowercases names in ARNs, so a literal name is lowercased (a token must
        already be lowercase).
        """
        return Stack.of(self).format_arn(
            service="sagemaker",
            resource=resource,
            resource_name=name if is_token(name) else name.lower(),
        )

    # -- IAM -----------------------------------------------------------------------------------

    @property
    def _job_arns(self) -> str:
        # Job names are generated per execution; every one starts with the library's prefix.
        return self.sagemaker_arn("inference-recommendations-job", JOB_NAME_PREFIX + "*")

    def _create_job_role(self) -> iam.Role:
        """The role IR assumes to run the load tests.

        IR creates a model, config and endpoint per load test, named after the job (so under
        the library's prefix), invokes them and deletes them. Reads of the endpoints' models
        are added as endpoints register.
        """
        role = iam.Role(
            self,
            "JobRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Inference Recommender load tests started by rightsizing-constructs",
        )
        CDK_GRANT_POLICY.apply(role)
        stack = Stack.of(self)
        test_resources = [
            self.sagemaker_arn(kind, JOB_NAME_PREFIX + "*")
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

    def _add_job_role_read(self, sid: str, action: str, resource: str) -> None:
        """Let the job role read one more model (package), in one statement per kind."""
        statement = self._job_role_reads.get(sid)
        if statement is None:
            statement = iam.PolicyStatement(sid=sid, actions=[action], resources=[resource])
            self._job_role_reads[sid] = statement
            self.job_role.add_to_principal_policy(statement)
        elif resource not in statement.resources:
            statement.add_resources(resource)
        if resource.endswith("/*"):
            acknowledge_wildcard(
                self.job_role,
                resource,
                "IR tests whichever version of the model package group is approved next.",
            )

    def _runtime_function(
        self,
        construct_id: str,
        module: str,
        description: str,
        environment: dict[str, str] | None = None,
        asynchronous: bool = False,
        *,
        scope: Construct | None = None,
        timeout: Duration | None = None,
        memory_size: int = 256,
    ) -> lambda_.Function:
        """A Lambda function running ``rightsizing_runtime.<module>.handler``.

        It gets its own role and log group: no AWS managed policy, logs are granted on its log
        group only. An ``asynchronous`` function (a rule's target) sends the invocations it
        could not process to the dead-letter queue; the others are invoked only by the
        workflows, synchronously. ``scope`` places it in another construct of the library
        (the audit's), with the engine's security settings all the same.
        """
        scope = scope or self
        log_group = logs.LogGroup(
            scope,
            f"{construct_id}Logs",
            retention=logs.RetentionDays.ONE_YEAR,
            encryption_key=self.encryption_key,
        )
        role = iam.Role(
            scope,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{description} (rightsizing-constructs)",
        )
        CDK_GRANT_POLICY.apply(role)
        function = lambda_.Function(
            scope,
            construct_id,
            description=description,
            runtime=_RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=f"rightsizing_runtime.{module}.handler",
            code=lambda_.Code.from_asset(
                str(runtime_asset_dir()), exclude=["**/__pycache__", "**/*.pyc"]
            ),
            timeout=timeout or Duration.seconds(60),
            memory_size=memory_size,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            role=role,
            environment=environment,
            environment_encryption=self.encryption_key if environment else None,
            dead_letter_queue=self.dead_letter_queue if asynchronous else None,
            reserved_concurrent_executions=self._reserved_concurrency,
            vpc=self._vpc,
            vpc_subnets=self._vpc_subnets,
        )
        log_group.grant_write(role)
        if self._vpc is not None:
            role.add_to_policy(iam.PolicyStatement(actions=_VPC_ACCESS_ACTIONS, resources=["*"]))
            VPC_NETWORK_INTERFACES.apply(role.node.find_child("DefaultPolicy"))
        acknowledge_wildcard(
            role, "*", _XRAY_REASON + (" " + _VPC_REASON if self._vpc is not None else "")
        )
        self._waive_defaults(function, log_group, has_environment=bool(environment))
        if not asynchronous:
            SYNCHRONOUS_ONLY.apply(function)
        return function

    def _waive_defaults(
        self, function: lambda_.Function, log_group: logs.LogGroup, *, has_environment: bool
    ) -> None:
        """The checks that the engine's optional settings meet, waived while they are unset."""
        if self.encryption_key is None:
            LOG_GROUP_SERVICE_KEY.apply(log_group)
            if has_environment:
                ENVIRONMENT_AWS_KEY.apply(function)
        if self._reserved_concurrency is None:
            UNRESERVED_CONCURRENCY.apply(function)
        if self._vpc is None:
            OUTSIDE_VPC.apply(function)

    def _dead_letters(self) -> sqs.Queue:
        """The dead-letter queue of every rule target and asynchronous invocation, alarmed."""
        queue = sqs.Queue(
            self,
            "DeadLetters",
            # SQS-managed keys, whatever encryption_key is: EventBridge and Lambda can write to
            # it without a key policy naming every rule.
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=_DEAD_LETTER_RETENTION,
        )
        IS_DEAD_LETTER_QUEUE.apply(queue)
        DEAD_LETTERS_SQS_KEY.apply(queue)
        stack = Stack.of(self)
        # One statement for every rule of this account, instead of CDK's one per rule: an SQS
        # policy holds at most 20 statements, and each rightsized endpoint adds a rule.
        queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeRulesOfThisAccount",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[queue.queue_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="events", resource="rule", resource_name="*"
                        )
                    },
                },
            )
        )
        alarm_on_first(
            self,
            "UndeliveredEvents",
            description="A rightsizing trigger or cleanup could not be delivered: see the "
            "dead-letter queue",
            metric=queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            topic=self.topic,
        )
        return queue

    @property
    def rule_dead_letter_queue(self) -> sqs.IQueue:
        """The dead-letter queue as rule targets take it.

        Its policy is set once, by the engine: a target given the queue itself would add one
        statement per rule.
        """
        existing = self.node.try_find_child("RuleDeadLetters")
        if existing is not None:
            return existing  # type: ignore[return-value]
        return sqs.Queue.from_queue_attributes(
            self,
            "RuleDeadLetters",
            queue_arn=self.dead_letter_queue.queue_arn,
            queue_url=self.dead_letter_queue.queue_url,
        )

    def grant_ledger(self, grantee: iam.IGrantable, *actions: str) -> None:
        """Grant ``actions`` on the ledger table, and the use of its key when the engine made it."""
        self.ledger_table.grant(grantee, *actions)
        if self._ledger_key is not None:
            self._ledger_key.grant(grantee, "kms:Decrypt", "kms:GenerateDataKey")

    def runtime_function(
        self,
        scope: Construct,
        construct_id: str,
        *,
        module: str,
        description: str,
        environment: dict[str, str],
        timeout: Duration,
        memory_size: int,
    ) -> lambda_.Function:
        """A function of the library's runtime, for a construct that works with this engine.

        It runs ``rightsizing_runtime.<module>.handler`` with the engine's settings (key,
        reserved concurrency, VPC, tracing, a year of logs) and, as a rule's target, sends the
        invocations it could not process to the engine's dead-letter queue.
        """
        return self._runtime_function(
            construct_id,
            module,
            description,
            environment,
            asynchronous=True,
            scope=scope,
            timeout=timeout,
            memory_size=memory_size,
        )

    def _grant_key_use(self, *, own_topic: bool, own_ledger: bool) -> None:
        """Let the roles that write the key's resources encrypt with it.

        KMS checks both the key policy and the caller's IAM policy.
        """
        if self.encryption_key is None:
            return
        users: list[iam.IGrantable] = []
        if own_ledger:
            # The Recommend workflow records runs; JobSlots and ApplyStep keep their items.
            users += [
                self.state_machine,
                self.job_slots_function,
                self.apply_workflow.step_function,
            ]
        if own_topic:
            users += [self.state_machine, self.apply_workflow.state_machine]
        for user in dict.fromkeys(users):
            self.encryption_key.grant(user, "kms:Decrypt", "kms:GenerateDataKey")

    def _grant_runtime_permissions(self) -> None:
        """Exactly what each handler calls, on the resources it calls it on.

        The endpoint statements start empty; they are attached and grow as endpoints register
        (:meth:`register`). CDK renders policies at synthesis, after every endpoint was added.
        """
        self.start_job_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateInferenceRecommendationsJob",
                    "sagemaker:DescribeInferenceRecommendationsJob",
                ],
                resources=[self._job_arns],
            )
        )
        self._start_job_endpoints = iam.PolicyStatement(actions=["sagemaker:DescribeEndpoint"])
        # CreateInferenceRecommendationsJob passes the job role to SageMaker.
        self.start_job_function.add_to_role_policy(_pass_to_sagemaker(self.job_role.role_arn))
        self.select_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeInferenceRecommendationsJob"],
                resources=[self._job_arns],
            )
        )
        self._select_endpoints = iam.PolicyStatement(actions=["sagemaker:DescribeEndpoint"])
        self.select_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeEndpointConfig"],
                resources=[self.sagemaker_arn("endpoint-config", "*")],
            )
        )
        self.stop_job_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:StopInferenceRecommendationsJob"], resources=[self._job_arns]
            )
        )
        # Slots are conditional writes and deletes of the slot items; nothing reads them.
        self.ledger_table.grant(self.job_slots_function, "dynamodb:PutItem", "dynamodb:DeleteItem")
        for function in (self.start_job_function, self.select_function, self.stop_job_function):
            acknowledge_wildcard(function.role, self._job_arns, _JOB_NAMES_REASON)  # type: ignore[arg-type]
        acknowledge_wildcard(
            self.select_function.role,  # type: ignore[arg-type]
            self.sagemaker_arn("endpoint-config", "*"),
            CONFIGS_REASON,
        )

    def _grant_served_model_check(self) -> None:
        """Prepare reads which model (package version) an endpoint serves, for model approvals."""
        if self._served_model_check_granted:
            return
        self._served_model_check_granted = True
        configs = self.sagemaker_arn("endpoint-config", "*")
        models = self.sagemaker_arn("model", "*")
        self.start_job_function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeEndpointConfig"], resources=[configs])
        )
        self.start_job_function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeModel"], resources=[models])
        )
        role = self.start_job_function.role
        acknowledge_wildcard(role, configs, CONFIGS_REASON)  # type: ignore[arg-type]
        acknowledge_wildcard(
            role,  # type: ignore[arg-type]
            models,
            "The model an endpoint serves is named in its current endpoint config, which is "
            "only known at run time.",
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
                "pk": tasks.DynamoAttributeValue.from_string(
                    sfn.JsonPath.format(
                        "endpoint#{}", sfn.JsonPath.string_at("$.settings.endpoint_name")
                    )
                ),
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

    def _notify(self, state_name: str, subject: str, message: dict[str, Any]) -> sfn.TaskStateBase:
        task = tasks.SnsPublish(
            self,
            state_name,
            topic=self.topic,
            subject=subject,
            message=sfn.TaskInput.from_object(message),
            result_path=sfn.JsonPath.DISCARD,
        )
        task.add_retry(errors=["States.TaskFailed"], interval=Duration.seconds(5), max_attempts=4)
        return task

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
        return self._invoke(state_name, self.job_slots_function, payload, result_path=result_path)

    def _state_machine(self, queue_timeout: Duration) -> sfn.StateMachine:
        settings_given = sfn.Condition.and_(
            sfn.Condition.is_present("$.settings.endpoint_name"),
            sfn.Condition.is_present("$.settings.variant_name"),
        )
        invalid_input = sfn.Fail(
            self,
            "InvalidInput",
            error="InvalidInput",
            cause="The input needs settings (an endpoint's settings document), as the "
            "endpoint's rules deliver it; start runs with a 'Rightsizing Run Requested' event.",
        )
        start_apply = tasks.StepFunctionsStartExecution(
            self,
            "StartApply",
            state_machine=self.apply_workflow.state_machine,
            input=sfn.TaskInput.from_object(
                {
                    "recommendation": sfn.JsonPath.object_at("$.trigger.event.detail"),
                    "settings": sfn.JsonPath.object_at("$.apply_settings"),
                }
            ),
            integration_pattern=sfn.IntegrationPattern.REQUEST_RESPONSE,
            result_path=sfn.JsonPath.DISCARD,
        )
        start_apply.add_retry(
            errors=["States.TaskFailed"], interval=Duration.seconds(5), max_attempts=4
        )
        prepare = self._invoke(
            "Prepare",
            self.start_job_function,
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
            max_attempts=math.ceil(queue_timeout.to_seconds() / self.poll_interval.to_seconds()),
            backoff_rate=1,
        )
        start_job = self._invoke(
            "StartJob",
            self.start_job_function,
            {
                "step": "start",
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
                    "The recommendation job {} did not finish within {} seconds; it is being "
                    "stopped.",
                    sfn.JsonPath.string_at("$.job.job_name"),
                    sfn.JsonPath.string_at("$.settings.timeout_seconds"),
                ),
            },
            result_path="$.error",
        )
        release_slot = self._slots("ReleaseJobSlot", "release", sfn.JsonPath.DISCARD)
        release_after_failure = self._slots(
            "ReleaseSlotAfterFailure", "release", sfn.JsonPath.DISCARD
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
        notify_recommendation = self._notify(
            "NotifyRecommendation",
            sfn.JsonPath.format(
                "Rightsizing {}: {}",
                sfn.JsonPath.string_at("$.recommendation.detail.action"),
                sfn.JsonPath.string_at("$.recommendation.detail.endpoint_name"),
            ),
            {
                "endpoint_name": sfn.JsonPath.string_at("$.recommendation.detail.endpoint_name"),
                "variant_name": sfn.JsonPath.string_at("$.recommendation.detail.variant_name"),
                "action": sfn.JsonPath.string_at("$.recommendation.detail.action"),
                "reason": sfn.JsonPath.string_at("$.recommendation.detail.reason"),
                "job_name": sfn.JsonPath.string_at("$.recommendation.detail.job_name"),
                "execution": sfn.JsonPath.execution_id,
            },
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
        endpoint_message = {
            "endpoint_name": sfn.JsonPath.string_at("$.settings.endpoint_name"),
            "variant_name": sfn.JsonPath.string_at("$.settings.variant_name"),
            "error": sfn.JsonPath.string_at("$.error.Error"),
            "cause": sfn.JsonPath.string_at("$.error.Cause"),
            "execution": sfn.JsonPath.execution_id,
        }
        notify_failure = self._notify(
            "NotifyFailure",
            sfn.JsonPath.format(
                "Rightsizing failed: {}", sfn.JsonPath.string_at("$.settings.endpoint_name")
            ),
            endpoint_message,
        )
        notify_skipped = self._notify(
            "NotifySkipped",
            sfn.JsonPath.format(
                "Rightsizing skipped: {}", sfn.JsonPath.string_at("$.settings.endpoint_name")
            ),
            endpoint_message,
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
        record_mismatch = self._record(
            "RecordMismatch",
            outcome="model-mismatch",
            reason=sfn.JsonPath.string_at("$.error.Cause"),
            record=sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.error")),
        )
        failed = sfn.Fail(self, "Failed", error_path="$.error.Error", cause_path="$.error.Cause")
        failure_path = (
            stop_job.next(release_after_failure)
            .next(record_failure)
            .next(notify_failure)
            .next(failed)
        )
        # Failing to stop, free or record must not hide the original error from the notification.
        stop_job.add_catch(release_after_failure, errors=["States.ALL"], result_path="$.stop_error")
        release_after_failure.add_catch(
            record_failure, errors=["States.ALL"], result_path="$.release_error"
        )
        record_failure.add_catch(
            notify_failure, errors=["States.ALL"], result_path="$.record_error"
        )
        record_recommendation.add_catch(
            notify_recommendation, errors=["States.ALL"], result_path="$.record_error"
        )
        record_mismatch.add_catch(
            notify_skipped, errors=["States.ALL"], result_path="$.record_error"
        )
        record_mismatch.next(notify_skipped).next(sfn.Succeed(self, "Skipped"))
        prepare.add_catch(record_mismatch, errors=["ModelMismatchError"], result_path="$.error")
        for state in (prepare, acquire_slot, start_job, describe, release_slot, select, put_event):
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
            poll_interval=self.poll_interval,
            max_polls="$.settings.max_polls",
            on_timeout=timed_out.next(failure_path),
            # COMPLETED, FAILED, STOPPED, DELETING, DELETED: the Select handler decides or
            # raises with IR's failure reason.
            on_done=release_slot.next(select)
            .next(put_event)
            .next(record_recommendation)
            .next(notify_recommendation)
            .next(sfn.Succeed(self, "Done")),
        )
        recommend = prepare.next(acquire_slot).next(start_job).next(poll)
        is_recommendation = (
            sfn.Choice(self, "IsRecommendation")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.string_equals(
                        "$.trigger.detail_type", RECOMMENDATION_DETAIL_TYPE
                    ),
                    sfn.Condition.is_present("$.apply_settings.endpoint_name"),
                ),
                start_apply.next(sfn.Succeed(self, "ApplyStarted")),
            )
            .when(settings_given, recommend)
            .otherwise(invalid_input)
        )
        request_run = tasks.EventBridgePutEvents(
            self,
            "RequestRun",
            entries=[
                tasks.EventBridgePutEventsEntry(
                    detail=sfn.TaskInput.from_object(
                        {
                            "endpoint_name": sfn.JsonPath.string_at("$.endpoint_name"),
                            "variant_name": sfn.JsonPath.string_at("$.variant_name"),
                            "requested_by": "schedule",
                        }
                    ),
                    detail_type=RUN_REQUESTED_DETAIL_TYPE,
                    source=EVENT_SOURCE,
                    event_bus=self.event_bus,
                )
            ],
            result_path=sfn.JsonPath.DISCARD,
        )
        request_run.add_retry(
            errors=["States.TaskFailed"], interval=Duration.seconds(5), max_attempts=4
        )
        fan_out = sfn.Map(
            self,
            "RequestScheduledRuns",
            comment="One 'Rightsizing Run Requested' event per scheduled endpoint",
            items_path="$.scheduled",
            max_concurrency=10,
            result_path=sfn.JsonPath.DISCARD,
        )
        fan_out.item_processor(request_run)
        # A start-execution without a trigger event is a manual run.
        direct_start = sfn.Pass(
            self,
            "DirectStart",
            result=sfn.Result.from_object(
                {"source": EVENT_SOURCE, "detail_type": RUN_REQUESTED_DETAIL_TYPE}
            ),
            result_path="$.trigger",
        )
        route = (
            sfn.Choice(self, "RouteTrigger")
            .when(
                sfn.Condition.is_present("$.scheduled"),
                fan_out.next(sfn.Succeed(self, "RunsRequested")),
            )
            .when(sfn.Condition.is_present("$.trigger.detail_type"), is_recommendation)
            .when(settings_given, direct_start.next(recommend))
            .otherwise(invalid_input)
        )
        state_machine = standard_state_machine(
            self,
            comment="Rightsizing of SageMaker endpoints: Inference Recommender, then a decision",
            definition=route,
            timeout=queue_timeout.plus(MAX_JOB_TIMEOUT).plus(_STATE_MACHINE_TIMEOUT_MARGIN),
            encryption_key=self.encryption_key,
            invoked=(
                self.start_job_function,
                self.job_slots_function,
                self.select_function,
                self.stop_job_function,
            ),
        )
        acknowledge_wildcard(state_machine.role, self._job_arns, _JOB_NAMES_REASON)
        return state_machine

    def _stop_orphaned_jobs(self) -> events.Rule:
        """Stop the job, and free the slot, of an execution that was aborted or timed out."""
        execution_arn = events.EventField.from_path("$.detail.executionArn")
        return events.Rule(
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
                            "execution_arn": execution_arn,
                            "reason": events.EventField.from_path("$.detail.status"),
                        }
                    ),
                    retry_attempts=8,
                    dead_letter_queue=self.rule_dead_letter_queue,
                ),
                targets.LambdaFunction(
                    self.job_slots_function,
                    event=events.RuleTargetInput.from_object(
                        {
                            "action": "release",
                            "execution_arn": execution_arn,
                            "max_concurrent_jobs": self.max_concurrent_jobs,
                        }
                    ),
                    retry_attempts=8,
                    dead_letter_queue=self.rule_dead_letter_queue,
                ),
            ],
        )


@jsii.implements(IStableAnyProducer)
class _ListProducer:
    """The endpoints of one schedule target, rendered once every endpoint was added."""

    def __init__(self, items: list[dict[str, str]]) -> None:
        self._items = items

    def produce(self, _context: IResolveContext | None = None) -> Any:
        return list(self._items)


def _pass_to_sagemaker(role_arn: str) -> iam.PolicyStatement:
    """``iam:PassRole`` on ``role_arn``, to SageMaker only."""
    return iam.PolicyStatement(
        actions=["iam:PassRole"],
        resources=[role_arn],
        conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    )


def _allow_service_use(key: kms.Key) -> None:
    """Key policy statements for the services that use ``key`` for the engine's resources.

    CloudWatch Logs encrypts the log groups; CloudWatch alarms publish to the topic.
    """
    stack = Stack.of(key)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchLogsOfThisAccount",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
            resources=["*"],  # in a key policy, "*" is this key
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                }
            },
        )
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchAlarmsOfThisAccount",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
        )
    )


def _validate(
    poll_interval: Duration,
    max_concurrent_jobs: int,
    queue_timeout: Duration,
    reserved_concurrency: int | None,
) -> None:
    problems = ValidationProblems("RightsizingEngine settings")
    # The poll interval and the slot retries are written into the definitions.
    known = not (is_token(poll_interval.to_string()) or is_token(queue_timeout.to_string()))
    problems.check(known, "poll_interval and queue_timeout must be known at synth time")
    if known:
        problems.check(
            poll_interval.to_milliseconds() >= 1000 and poll_interval.to_milliseconds() % 1000 == 0,
            "poll_interval must be a whole number of seconds, at least 1, got "
            f"{poll_interval.to_human_string()}",
        )
        problems.check(
            queue_timeout.to_milliseconds() >= poll_interval.to_milliseconds(),
            f"queue_timeout ({queue_timeout.to_human_string()}) must be at least poll_interval "
            f"({poll_interval.to_human_string()})",
        )
    problems.check(
        isinstance(max_concurrent_jobs, int)
        and not isinstance(max_concurrent_jobs, bool)
        and 1 <= max_concurrent_jobs <= 100,
        f"max_concurrent_jobs must be a whole number from 1 to 100, got {max_concurrent_jobs!r}",
    )
    problems.check(
        reserved_concurrency is None
        or (
            isinstance(reserved_concurrency, int)
            and not isinstance(reserved_concurrency, bool)
            and reserved_concurrency >= 1
        ),
        "reserved_concurrency must be a whole number, at least 1 (0 would stop the function), "
        f"got {reserved_concurrency!r}",
    )
    problems.raise_if_any()
