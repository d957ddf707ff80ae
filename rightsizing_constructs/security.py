"""The engine's shared security settings: keys, the topic's publishers, dead letters, VPC.

Every function the library runs gets the same treatment (:class:`RuntimeFunctions`): its own
role and log group, the engine's key for its environment and logs, reserved concurrency and a
VPC when asked for, X-Ray, a year of logs, and the dead-letter queue when a rule invokes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import Annotations, ArnFormat, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
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
from ._runtime import runtime_asset_dir
from ._workflow import alarm_on_first

_RUNTIME = lambda_.Runtime.PYTHON_3_14
_XRAY_REASON = (
    "X-Ray PutTraceSegments and PutTelemetryRecords (Lambda active tracing) have no "
    "resource-level permissions."
)
VPC_REASON = (
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


@dataclass(frozen=True)
class RuntimeFunctions:
    """Makes the library's Lambda functions, each with the engine's security settings."""

    #: The customer managed key of the functions' environment and log groups, if any.
    encryption_key: kms.IKey | None
    reserved_concurrency: int | None
    vpc: ec2.IVpc | None
    vpc_subnets: ec2.SubnetSelection | None
    #: Where a rule-invoked function sends the invocations it could not process.
    dead_letter_queue: sqs.IQueue

    def create(
        self,
        scope: Construct,
        construct_id: str,
        module: str,
        description: str,
        environment: dict[str, str] | None = None,
        asynchronous: bool = False,
        *,
        timeout: Duration | None = None,
        memory_size: int = 256,
    ) -> lambda_.Function:
        """A Lambda function running ``rightsizing_runtime.<module>.handler``, in ``scope``.

        It gets its own role and log group: no AWS managed policy, logs are granted on its log
        group only. An ``asynchronous`` function (a rule's target) sends the invocations it
        could not process to the dead-letter queue; the others are invoked only by the
        workflows, synchronously.
        """
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
            reserved_concurrent_executions=self.reserved_concurrency,
            vpc=self.vpc,
            vpc_subnets=self.vpc_subnets,
        )
        log_group.grant_write(role)
        if self.vpc is not None:
            role.add_to_policy(iam.PolicyStatement(actions=_VPC_ACCESS_ACTIONS, resources=["*"]))
            VPC_NETWORK_INTERFACES.apply(role.node.find_child("DefaultPolicy"))
        acknowledge_wildcard(
            role, "*", _XRAY_REASON + (" " + VPC_REASON if self.vpc is not None else "")
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
        if self.reserved_concurrency is None:
            UNRESERVED_CONCURRENCY.apply(function)
        if self.vpc is None:
            OUTSIDE_VPC.apply(function)


def create_dead_letter_queue(scope: Construct, topic: sns.ITopic) -> sqs.Queue:
    """The dead-letter queue of every rule target and asynchronous invocation, alarmed."""
    queue = sqs.Queue(
        scope,
        "DeadLetters",
        # SQS-managed keys, whatever encryption_key is: EventBridge and Lambda can write to
        # it without a key policy naming every rule.
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=_DEAD_LETTER_RETENTION,
    )
    IS_DEAD_LETTER_QUEUE.apply(queue)
    DEAD_LETTERS_SQS_KEY.apply(queue)
    stack = Stack.of(scope)
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
        scope,
        "UndeliveredEvents",
        description="A rightsizing trigger or cleanup could not be delivered: see the "
        "dead-letter queue",
        metric=queue.metric_approximate_number_of_messages_visible(
            period=Duration.minutes(5), statistic="Maximum"
        ),
        topic=topic,
    )
    return queue


def allow_service_use(key: kms.Key) -> None:
    """Key policy statement for CloudWatch Logs, which encrypts the log groups with ``key``.

    (CloudWatch alarms' statement comes with the topic: :func:`allow_alarms_to_publish`.)
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


# -- The notification topic ----------------------------------------------------------------------

#: The principal that publishes a CloudWatch alarm's notification to an SNS topic.
ALARMS_PRINCIPAL = "cloudwatch.amazonaws.com"
#: Warning ids users can acknowledge (``Annotations.of(engine).acknowledge_warning(id)``) once
#: they added the statement the warning shows to a topic or key the app cannot see.
TOPIC_POLICY_WARNING = "rightsizing-constructs:topicPolicyNotVisible"
TOPIC_KEY_WARNING = "rightsizing-constructs:topicKeyPolicyNotVisible"
_AWS_MANAGED_SNS_KEY = "alias/aws/sns"


def create_topic_key(scope: Construct) -> kms.Key:
    """A customer managed key for the engine's topic (``TopicKey`` in ``scope``).

    CloudWatch alarms cannot publish to a topic under the AWS managed key ``alias/aws/sns``:
    its key policy cannot be changed to let them (Knowledge Center
    "cloudwatch-configure-alarm-sns"). The key only encrypts notifications, so it is deleted
    with the stack (after KMS's waiting period).
    """
    return kms.Key(
        scope,
        "TopicKey",
        description="rightsizing-constructs: the notification topic (CloudWatch alarms publish)",
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.DESTROY,
    )


def allow_alarms_to_publish(scope: Construct, topic: sns.ITopic) -> None:
    """Let the engine's CloudWatch alarms publish to ``topic``, through its policy and its key.

    A topic policy (``AWS::SNS::TopicPolicy``, which CDK writes for ``enforce_ssl``) replaces
    SNS's default policy, so CloudWatch needs its own statement (Knowledge Center
    "cloudwatch-receive-sns-for-alarm-trigger", scoped to this account's alarms with
    ``aws:SourceArn``); an encrypted topic's key must let CloudWatch use it ("...-configure-
    alarm-sns"). A topic or key that this app does not create cannot be changed from here: a
    warning says which statement to add.
    """
    stack = Stack.of(scope)
    publish = iam.PolicyStatement(
        sid="CloudWatchAlarmsPublish",
        principals=[iam.ServicePrincipal(ALARMS_PRINCIPAL)],
        actions=["sns:Publish"],
        resources=[topic.topic_arn],
        conditions={
            "ArnLike": {
                "aws:SourceArn": stack.format_arn(
                    service="cloudwatch",
                    resource="alarm",
                    resource_name="*",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            }
        },
    )
    if not topic.add_to_resource_policy(publish).statement_added:
        Annotations.of(scope).add_warning_v2(
            TOPIC_POLICY_WARNING,
            "The topic is not created in this app, so its access policy cannot be checked: if "
            "it has one, CloudWatch alarms (FailedRuns, FailedApplies, UndeliveredEvents) can "
            f"publish only with this statement in it: {_rendered(stack, publish)}",
        )
    key = topic.master_key
    if key is None:
        return
    if _is_aws_managed_sns_key(key):
        raise ValueError(
            "Invalid RightsizingEngine settings:\n  - the topic is encrypted with the AWS "
            f"managed key {_AWS_MANAGED_SNS_KEY}, whose policy cannot let CloudWatch alarms "
            "publish: encrypt it with a customer managed key (or let the engine create the "
            "topic)"
        )
    use_key = alarms_key_statement()
    if not key.add_to_resource_policy(use_key).statement_added:
        Annotations.of(scope).add_warning_v2(
            TOPIC_KEY_WARNING,
            "The topic's key is not created in this app, so its key policy cannot be checked: "
            "CloudWatch alarms can publish to the topic only with this statement in it: "
            f"{_rendered(stack, use_key)}",
        )


def alarms_key_statement() -> iam.PolicyStatement:
    """The key policy statement CloudWatch alarms need to publish to a topic under the key."""
    return iam.PolicyStatement(
        sid="CloudWatchAlarmsUseForTopic",
        principals=[iam.ServicePrincipal(ALARMS_PRINCIPAL)],
        actions=["kms:Decrypt", "kms:GenerateDataKey*"],
        resources=["*"],  # in a key policy, "*" is this key
    )


def _is_aws_managed_sns_key(key: kms.IKey) -> bool:
    arn = key.key_arn
    if not Token.is_unresolved(arn):
        return arn.endswith(_AWS_MANAGED_SNS_KEY)
    alias = getattr(key, "alias_name", None)
    return isinstance(alias, str) and alias == _AWS_MANAGED_SNS_KEY


def _rendered(stack: Stack, statement: iam.PolicyStatement) -> str:
    return json.dumps(stack.resolve(statement.to_statement_json()), sort_keys=True)
