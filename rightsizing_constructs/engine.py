"""``RightsizingEngine``: the one shared engine of a stack, for one endpoint or hundreds.

The engine holds everything that does not depend on the endpoint, and this module only puts
it together; each part has its own module:

- the IR job role (:mod:`.job_role`), the topic, the bus and the ledger (:mod:`.ledger`);
- the shared security settings: key, dead-letter queue, VPC, the functions (:mod:`.security`);
- the Recommend workflow (:mod:`.recommend_workflow`) and its functions' permissions
  (:mod:`.recommend_permissions`);
- the Apply workflow (:mod:`.apply_workflow`);
- the registry, the rules that start runs and the latency alarms' places (:mod:`.routing`),
  the orphaned-job cleanup (:mod:`.triggers`);
- the failure alarms, the `metric_*` helpers (:mod:`.observability`) and the dashboards
  (:mod:`.dashboard`).

Each rightsized endpoint (:class:`~rightsizing_constructs.EndpointRightsizing`) adds only its
entry in the registry (its settings and triggers), a latency alarm when asked for, and its
ARNs in the engine's IAM statements (:meth:`RightsizingEngine.register`): no rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from ._arns import sagemaker_arn
from ._runtime import import_runtime
from ._workflow import alarm_on_first, unsuccessful_executions
from .apply_workflow import ApplyWorkflow
from .engine_validation import RolePolicyLimits, ScheduleRuleLimit, validate_settings
from .hub import forward_rule
from .job_role import ModelReads, create_job_role
from .ledger import create_ledger
from .observability import EngineMetrics
from .recommend_permissions import RecommendPermissions
from .recommend_workflow import RecommendFunctions, RecommendWorkflow
from .routing import Routing
from .security import (
    RuntimeFunctions,
    allow_alarms_to_publish,
    allow_service_use,
    create_dead_letter_queue,
    create_topic_key,
)
from .settings import EndpointAccess, is_token
from .stack_engines import StackEngines
from .triggers import stop_orphaned_job_rule

if TYPE_CHECKING:
    # For annotations only: the endpoint module imports this one, not the other way round.
    from .component import InferenceComponentRightsizing
    from .endpoint import EndpointRightsizing

_DEFAULT_POLL_INTERVAL = Duration.minutes(5)
_DEFAULT_QUEUE_TIMEOUT = Duration.days(2)
_ENGINE_ID = "RightsizingEngine"


#: Where the registry's layer puts it in the Route function's file system.
_REGISTRY_PATH: str = import_runtime("registry").DEFAULT_PATH


class RightsizingEngine(Construct, EngineMetrics):
    """The shared rightsizing engine of a stack: workflows, functions, ledger, topic.

    Create one explicitly to choose its settings, then pass it to each endpoint
    (``EndpointRightsizing(scope, id, engine=engine, ...)``). An ``EndpointRightsizing`` without
    an engine uses :meth:`of`: the stack's engine, created with the defaults the first time.

    :param job_role: the role IR assumes to stand up test endpoints. Default: a role is created
        that can manage only the resources IR names after this library's jobs and read the
        endpoints' model packages; grant it read access to your model artifacts and sample
        payloads (``bucket.grant_read(engine.job_role)``).
    :param topic: where failures and recommendations are notified; the engine's alarms publish
        to it too, so its policy and its key's policy get the statements CloudWatch alarms need
        (a topic or key not created in this app cannot be changed: ``cdk synth`` warns with the
        statement to add), and the workflows' roles the use of its key. Default: a topic
        encrypted with a customer managed key of its own (CloudWatch alarms cannot publish to a
        topic under the AWS managed ``alias/aws/sns``), TLS enforced.
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
        them yourself: README, "Compliance"). Default: the AWS managed DynamoDB key, a key of the
        topic's own, and the services' own encryption at rest (CloudWatch Logs, Lambda
        environment).
    :param reserved_concurrency: concurrency reserved for each of the engine's functions.
        Default: none reserved (the functions use the account's unreserved pool).
    :param vpc: run the engine's functions in this VPC; they need a route to the SageMaker,
        DynamoDB and Application Auto Scaling APIs (NAT or VPC endpoints). Default: the
        functions run outside any VPC (they reach only AWS APIs).
    :param vpc_subnets: where in ``vpc`` the functions run. Default: the VPC's private subnets.
    :param endpoint_access: how the roles are granted the endpoints and their models:
        ``EndpointAccess.listed()``, each one's ARN (``cdk synth`` fails with advice before a
        role would need more than IAM's 10 managed policies, at about 200 to 400 endpoints), or
        ``EndpointAccess.tagged(key, value)``, every endpoint carrying that tag, policies of the
        same size for any fleet (README, "Fleets"). Default: listed.
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
        endpoint_access: EndpointAccess | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        StackEngines.of(Stack.of(self)).add(self)
        poll_interval = poll_interval if poll_interval is not None else _DEFAULT_POLL_INTERVAL
        queue_timeout = queue_timeout if queue_timeout is not None else _DEFAULT_QUEUE_TIMEOUT
        validate_settings(
            poll_interval,
            max_concurrent_jobs,
            queue_timeout,
            reserved_concurrency,
            vpc,
            vpc_subnets,
            endpoint_access,
        )
        #: How the roles are granted the endpoints and their models.
        self.endpoint_access = endpoint_access or EndpointAccess.listed()
        #: The customer managed key of what the engine creates, if one was given.
        self.encryption_key = encryption_key
        if isinstance(encryption_key, kms.Key):
            allow_service_use(encryption_key)
        #: Wait between polls (IR jobs, endpoint updates, job slots).
        self.poll_interval = poll_interval
        #: The most IR jobs that run at once across the engine.
        self.max_concurrent_jobs = max_concurrent_jobs
        self._endpoints: dict[tuple[str, str], EndpointRightsizing] = {}
        self._components: dict[tuple[str, str], InferenceComponentRightsizing] = {}
        #: The role IR assumes to run the load tests.
        self.job_role: iam.IRole = job_role or create_job_role(self)
        # Reads of the endpoints' models are added only to a role the engine created.
        self._model_reads = (
            ModelReads(self.job_role, self.endpoint_access) if job_role is None else None
        )
        #: Where failures and recommendations are notified; the engine's alarms publish to it.
        self.topic: sns.ITopic = topic or self._create_topic()
        allow_alarms_to_publish(self, self.topic)
        #: True when recommendations and run requests use the account's default bus.
        self.uses_default_bus = event_bus is None
        self.event_bus: events.IEventBus = event_bus or self._default_bus
        #: The decision record of every run (recommend and apply), the locks and the job slots.
        self.ledger_table: dynamodb.ITable = ledger_table or create_ledger(self, encryption_key)
        # The key of the engine's own ledger (a table you bring has its own).
        self._ledger_key = encryption_key if ledger_table is None else None
        #: Where undeliverable events and failed asynchronous invocations are kept (14 days).
        self.dead_letter_queue = create_dead_letter_queue(self, self.topic)
        self._functions = RuntimeFunctions(
            encryption_key, reserved_concurrency, vpc, vpc_subnets, self.dead_letter_queue
        )
        recommend_functions = self._recommend_functions()
        #: The Apply workflow, shared by every endpoint in ``ApplyMode.AUTO``.
        self.apply_workflow = self._create_apply_workflow()
        #: The Recommend workflow's state machine, shared by every endpoint.
        self.state_machine: sfn.StateMachine = self._create_recommend_workflow(
            recommend_functions, queue_timeout
        )
        self._grant_key_use(own_ledger=ledger_table is None)
        #: Goes off when a Recommend run fails, times out or is aborted; notifies the topic.
        self.failed_runs_alarm = self._alarm_failed_runs()
        self.node.add_validation(
            RolePolicyLimits(self, lambda: len(self._endpoints) + len(self._components))
        )
        self.node.add_validation(ScheduleRuleLimit(lambda: self.routing.schedule_expressions))

    def _create_topic(self) -> sns.Topic:
        return sns.Topic(
            self,
            "Topic",
            display_name="SageMaker rightsizing",
            enforce_ssl=True,
            master_key=self.encryption_key or create_topic_key(self),
        )

    def _create_apply_workflow(self) -> ApplyWorkflow:
        return ApplyWorkflow(
            self,
            "Apply",
            ledger=self.ledger_table,
            topic=self.topic,
            step_function=self._functions.create(
                self,
                "ApplyStep",
                "apply_steps",
                "Runs one step of applying a rightsizing recommendation to an endpoint",
                environment={"LEDGER_TABLE_NAME": self.ledger_table.table_name},
            ),
            poll_interval=self.poll_interval,
            endpoint_config_arn=lambda name: sagemaker_arn(self, "endpoint-config", name),
            encryption_key=self.encryption_key,
            dead_letter_queue=self._rule_dead_letter_queue,
            endpoint_access=self.endpoint_access,
            event_bus=self.event_bus,
        )

    def _create_recommend_workflow(
        self, functions: RecommendFunctions, queue_timeout: Duration
    ) -> sfn.StateMachine:
        state_machine = RecommendWorkflow(
            scope=self,
            functions=functions,
            ledger=self.ledger_table,
            topic=self.topic,
            event_bus=self.event_bus,
            apply_state_machine=self.apply_workflow.state_machine,
            poll_interval=self.poll_interval,
            max_concurrent_jobs=self.max_concurrent_jobs,
            queue_timeout=queue_timeout,
            encryption_key=self.encryption_key,
        ).state_machine()
        #: Stops the IR job, and frees the slot, of an execution aborted or timed out.
        self.stop_orphaned_job_rule = stop_orphaned_job_rule(
            self,
            state_machine=state_machine,
            stop_job=self.stop_job_function,
            job_slots=self.job_slots_function,
            max_concurrent_jobs=self.max_concurrent_jobs,
            dead_letter_queue=self._rule_dead_letter_queue,
        )
        # The rules that start runs start this workflow.
        self.routing.wire(
            state_machine=state_machine,
            dead_letter_queue=self._rule_dead_letter_queue,
            event_bus=self.event_bus,
            default_bus=None if self.uses_default_bus else self._default_bus,
        )
        return state_machine

    def _alarm_failed_runs(self) -> cloudwatch.Alarm:
        return alarm_on_first(
            self,
            "FailedRuns",
            description="A rightsizing run failed, timed out or was aborted",
            metric=unsuccessful_executions(self.state_machine),
            topic=self.topic,
        )

    def _recommend_functions(self) -> RecommendFunctions:
        """The Recommend workflow's functions (``StartJob``, ``JobSlots``...), with their grants."""
        create = self._functions.create
        #: Prepares a run (checks the endpoint and the trigger, finds a job to reuse), starts its
        #: IR job, and keeps pending recommendations.
        self.start_job_function = create(
            self,
            "StartJob",
            "start_job",
            "Prepares a rightsizing run and starts its IR job",
            environment={"LEDGER_TABLE_NAME": self.ledger_table.table_name},
        )
        #: Takes and frees the IR job slots.
        self.job_slots_function = create(
            self,
            "JobSlots",
            "job_slots",
            "Takes and frees the IR job slots that bound concurrent rightsizing jobs",
            environment={"LEDGER_TABLE_NAME": self.ledger_table.table_name},
            asynchronous=True,
        )
        #: The decision: the cheapest configuration that meets the SLO.
        self.select_function = create(
            self,
            "SelectRecommendation",
            "select_recommendation",
            "Chooses the cheapest configuration that meets the SLO from an IR job",
        )
        #: Stops the IR job of a failed or aborted run.
        self.stop_job_function = create(
            self,
            "StopJob",
            "stop_job",
            "Stops the Inference Recommender job of a failed or aborted run",
            asynchronous=True,
        )
        #: Routes each event to the endpoints it concerns (the registry is its layer).
        self.route_function = create(
            self,
            "Route",
            "route",
            "Routes an event to the rightsized endpoints it concerns",
            environment={"REGISTRY_PATH": _REGISTRY_PATH},
        )
        functions = RecommendFunctions(
            route=self.route_function,
            start_job=self.start_job_function,
            job_slots=self.job_slots_function,
            select=self.select_function,
            stop_job=self.stop_job_function,
        )
        self._recommend_permissions = RecommendPermissions(
            functions, self.job_role, self.endpoint_access
        )
        self._recommend_permissions.grant_job_slots(self.ledger_table)
        self._recommend_permissions.grant_prepare_ledger(self.ledger_table)
        #: The registry, the rules that start runs (``routing.rules``, once the app
        #: synthesizes) and the latency alarms' places.
        self.routing = Routing(self, self.route_function)
        return functions

    @classmethod
    def of(cls, scope: Construct) -> RightsizingEngine:
        """The engine of ``scope``'s stack: its one engine, or a new one with the defaults.

        A stack has one engine unless you create more yourself; with more than one, a construct
        must be told which (``engine=``): this raises rather than guess.
        """
        stack = Stack.of(scope)
        engines = StackEngines.of(stack).engines
        if len(engines) == 1:
            return engines[0]
        if engines:
            paths = ", ".join(engine.node.path for engine in engines)
            raise ValueError(
                f"stack {stack.node.path} has {len(engines)} rightsizing engines ({paths}): pass "
                "engine= to say which one this construct uses"
            )
        existing = stack.node.try_find_child(_ENGINE_ID)
        if existing is not None:
            raise ValueError(
                f"{stack.node.path}/{_ENGINE_ID} is taken by a {type(existing).__name__}; "
                "pass engine= explicitly"
            )
        engine = cls(stack, _ENGINE_ID)
        StackEngines.of(stack).default = engine
        return engine

    @property
    def endpoints(self) -> list[EndpointRightsizing]:
        """The endpoints this engine rightsizes, in the order they were added."""
        return list(self._endpoints.values())

    @property
    def _default_bus(self) -> events.IEventBus:
        """The account's default event bus (AWS services' events arrive only there)."""
        existing = self.node.try_find_child("DefaultBus")
        if existing is not None:
            return existing  # type: ignore[return-value]
        return events.EventBus.from_event_bus_name(self, "DefaultBus", "default")

    # -- Endpoints -----------------------------------------------------------------------------

    def _register(self, endpoint: EndpointRightsizing, triggers: Mapping[str, Any]) -> None:
        """Rightsize ``endpoint`` (called by ``EndpointRightsizing``).

        Its registry entry, its triggers in the engine's rules, and the roles' access to it.
        """
        key = (endpoint.endpoint_name, endpoint.variant_name)
        if not any(is_token(k) for k in key) and key in self._endpoints:
            raise ValueError(
                f"{endpoint.endpoint_name}/{endpoint.variant_name} is already rightsized by "
                f"{self._endpoints[key].node.path}; one construct per endpoint variant"
            )
        self._endpoints[key] = endpoint
        self.routing.register(
            settings=endpoint.settings_document,
            apply_settings=endpoint.apply_settings,
            triggers=triggers,
            schedule=endpoint.schedule,
        )
        endpoint_arn = sagemaker_arn(self, "endpoint", endpoint.endpoint_name)
        self._recommend_permissions.allow_endpoint(endpoint_arn)
        models = {
            "model_package_version_arn": endpoint.model_package_version_arn,
            "model_name": endpoint.model_name,
            "model_package_group_name": None
            if endpoint.model_approval is None
            else endpoint.model_approval.model_package_group_name,
        }
        if self._model_reads is not None:
            self._model_reads.allow(**models)
        # With an approval, also which version the endpoint serves (a pending recommendation).
        self._recommend_permissions.allow_model_reads(**models)
        if endpoint.peak_traffic is not None:
            self._recommend_permissions.allow_traffic_reads()
        if endpoint.applies:
            self.apply_workflow.grant_endpoint(endpoint_arn)

    def forward_events_to(self, hub_bus: events.IEventBus) -> events.Rule:
        """Forward the findings, recommendations and apply outcomes to a hub's bus.

        A :class:`~rightsizing_constructs.RightsizingHub`'s bus, usually in another account
        (``events.EventBus.from_event_bus_arn``); only events leave this account.
        """
        return forward_rule(self, self.event_bus, hub_bus, self._rule_dead_letter_queue)

    # -- Shared resources ----------------------------------------------------------------------

    @property
    def _rule_dead_letter_queue(self) -> sqs.IQueue:
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

    def _grant_ledger(self, grantee: iam.IGrantable, *actions: str) -> None:
        """Grant ``actions`` on the ledger table, and the use of its key when the engine made it."""
        self.ledger_table.grant(grantee, *actions)
        if self._ledger_key is not None:
            self._ledger_key.grant(grantee, "kms:Decrypt", "kms:GenerateDataKey")

    def _runtime_function(
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
        return self._functions.create(
            scope,
            construct_id,
            module,
            description,
            environment,
            asynchronous=True,
            timeout=timeout,
            memory_size=memory_size,
        )

    def _grant_key_use(self, *, own_ledger: bool) -> None:
        """Let the roles that write encrypted resources encrypt with their keys.

        KMS checks both the key policy and the caller's IAM policy. The topic's key is granted
        whoever created the topic (the workflows publish to it); the engine's key only for the
        ledger it created.
        """
        uses: list[tuple[kms.IKey, iam.IGrantable]] = []
        if self.encryption_key is not None and own_ledger:
            # The Recommend workflow records runs; JobSlots, StartJob (pending recommendations)
            # and ApplyStep keep their items.
            uses += [
                (self.encryption_key, user)
                for user in (
                    self.state_machine,
                    self.job_slots_function,
                    self.start_job_function,
                    self.apply_workflow.step_function,
                )
            ]
        topic_key = self.topic.master_key
        if topic_key is not None:
            uses += [
                (topic_key, self.state_machine),
                (topic_key, self.apply_workflow.state_machine),
            ]
        for key, user in dict.fromkeys(uses):
            key.grant(user, "kms:Decrypt", "kms:GenerateDataKey")
