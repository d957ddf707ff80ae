#!/usr/bin/env python3
"""Deployable integration test: one real rightsizing run in RECOMMEND_ONLY and one in AUTO.

An integ-runner test app (``integ_*.py``, one ``IntegTest``) for an AWS account; ``make integ``
deploys it, runs its assertions and destroys it, ``make integ-synth`` only synthesizes it
(docs/integ.md says what it deploys, costs and proves). Nothing here is library code: the app
uses the public API of ``rightsizing_constructs`` with its defaults, so it tests what users get.

The test stack holds a tiny real model (a linear regression served by SageMaker's scikit-learn
container; model artifact and IR sample payload are S3 file assets built from plain text in
``fixture/``), two endpoints on one ``ml.m5.large`` each, and the stack's default
``RightsizingEngine`` rightsizing both: ``integ-rs-auto`` in ``ApplyMode.AUTO`` (with target
tracking autoscaling registered, so the apply must deregister it to change the instance type)
and ``integ-rs-recommend-only`` in ``ApplyMode.RECOMMEND_ONLY``. The guardrails allow only
``ml.c5.large``, so a completed run always recommends a change. Probes the test owns: a queue
per endpoint fed by a rule on the engine's bus (the recommendation events) and a queue per
failure alarm subscribed to the engine's topic (the alarm notifications).

The assertion stack (integ-tests' ``DeployAssert``) starts both runs with the library's manual
trigger, a "Rightsizing Run Requested" event, and waits, step by step, for the IR job, its end,
the ledger record, the recommendation event, the applied run and the endpoint's new config and
autoscaling. Every wait is at most 50 minutes: each step is a CloudFormation custom resource,
which times out after an hour. It also sets each failure alarm to ALARM and, once both jobs have
started, reads its notification from the topic's subscriber.
"""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
from pathlib import Path

import aws_cdk as cdk
import fixture
import nag_acknowledgments
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk.integ_tests_alpha import ExpectedResult, IApiCall, IDeployAssert, IntegTest
from cdk_nag import (
    AwsSolutionsChecks,
    HIPAASecurityChecks,
    NIST80053R5Checks,
    PCIDSS321Checks,
    ServerlessChecks,
)
from constructs import Construct

from rightsizing_constructs import (
    RECOMMENDATION_DETAIL_TYPE,
    RECOMMENDATION_EVENT_SOURCE,
    RUN_REQUESTED_DETAIL_TYPE,
    ApplyMode,
    ContainerConfig,
    EndpointRightsizing,
    Guardrails,
    LatencySlo,
    RightsizingEngine,
)

VARIANT = "AllTraffic"
#: What both endpoints start on; IR measures it too, so the recommendation knows its cost.
INITIAL_INSTANCE_TYPE = "ml.m5.large"
#: The only type the guardrails allow: every completed run recommends moving to it.
RECOMMENDED_INSTANCE_TYPE = "ml.c5.large"
#: The types IR's Default job may test (ContainerConfig.SupportedInstanceTypes): two small ones.
TESTED_INSTANCE_TYPES = (RECOMMENDED_INSTANCE_TYPE, INITIAL_INSTANCE_TYPE)
MIN_INSTANCES, MAX_INSTANCES = 1, 2
#: The name of the AUTO endpoint's own scaling policy; the apply keeps it (README, "Applying").
SCALING_POLICY_NAME = "integ-invocations"
#: The endpoint of each apply mode.
ENDPOINTS = {
    ApplyMode.AUTO: fixture.ENDPOINT_AUTO,
    ApplyMode.RECOMMEND_ONLY: fixture.ENDPOINT_RECOMMEND_ONLY,
}
#: Longest wait of one assertion step: a custom resource times out after an hour
#: (CloudFormation's ServiceTimeout is at most 3600 s); IR's Default job takes about 45 minutes.
LONG_WAIT = cdk.Duration.minutes(50)


def model_name(scope: Construct, endpoint_name: str) -> str:
    """One model per endpoint and deployment, so each IR job can be found by its model's name.

    IR jobs outlive the test; the first group of the stack's id (a UUID, lowercase hex) keeps
    this deployment's jobs apart from the last one's.
    """
    stack_uuid = cdk.Fn.select(2, cdk.Fn.split("/", cdk.Stack.of(scope).stack_id))
    return cdk.Fn.join(
        "-", [endpoint_name, "model", cdk.Fn.select(0, cdk.Fn.split("-", stack_uuid))]
    )


class Endpoint(Construct):
    """A real-time endpoint serving the fixture's model on one ``INITIAL_INSTANCE_TYPE``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        image: str,
        model_data_url: str,
        role: iam.IRole,
        hosting_policy: iam.ManagedPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.endpoint_name = endpoint_name
        model = sagemaker.CfnModel(
            self,
            "Model",
            model_name=model_name(self, endpoint_name),
            execution_role_arn=role.role_arn,
            enable_network_isolation=True,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image,
                model_data_url=model_data_url,
                environment={**fixture.ENVIRONMENT, "SAGEMAKER_REGION": cdk.Aws.REGION},
            ),
        )
        #: The model's name (a token: it ends with part of the stack's id).
        self.model_name = model.attr_model_name
        self.config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT,
                    model_name=self.model_name,
                    initial_instance_count=1,
                    instance_type=INITIAL_INSTANCE_TYPE,
                    initial_variant_weight=1,
                )
            ],
        )
        nag_acknowledgments.acknowledge_test_endpoint_config(self.config)
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.config.attr_endpoint_config_name,
        )
        # The instances pull the image and the artifact with the role: its policy comes first.
        self.endpoint.node.add_dependency(hosting_policy)

    def autoscale(self) -> appscaling.CfnScalableTarget:
        """Target tracking on invocations per instance, as a user's endpoint would have it."""
        target = appscaling.CfnScalableTarget(
            self,
            "ScalableTarget",
            service_namespace="sagemaker",
            resource_id=f"endpoint/{self.endpoint_name}/variant/{VARIANT}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=MIN_INSTANCES,
            max_capacity=MAX_INSTANCES,
        )
        target.node.add_dependency(self.endpoint)
        appscaling.CfnScalingPolicy(
            self,
            "ScalingPolicy",
            policy_name=SCALING_POLICY_NAME,
            policy_type="TargetTrackingScaling",
            scaling_target_id=target.ref,
            target_tracking_scaling_policy_configuration=appscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
                target_value=1000,
                predefined_metric_specification=appscaling.CfnScalingPolicy.PredefinedMetricSpecificationProperty(
                    predefined_metric_type="SageMakerVariantInvocationsPerInstance"
                ),
            ),
        )
        return target


class RightsizingIntegStack(cdk.Stack):
    """The stack under test: model, endpoints, the library's default engine, and probes."""

    def __init__(self, scope: Construct, construct_id: str, *, archive_dir: Path) -> None:
        super().__init__(
            scope,
            construct_id,
            description="rightsizing-constructs integration test (make integ; deleted after)",
        )
        model_archive, payload_archive = fixture.build_archives(archive_dir)
        self.model_artifact = s3_assets.Asset(self, "ModelArtifact", path=str(model_archive))
        self.sample_payload = s3_assets.Asset(self, "SamplePayload", path=str(payload_archive))
        #: SageMaker's scikit-learn image account per region (a mapping: no lookups at synth).
        self.image_accounts = cdk.CfnMapping(
            self,
            "SklearnImageAccounts",
            mapping={
                region: {"account": account}
                for region, account in fixture.SKLEARN_IMAGE_ACCOUNTS.items()
            },
        )
        image_account = self.image_accounts.find_in_map(cdk.Aws.REGION, "account")
        image = cdk.Fn.sub(
            "${Account}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/"
            f"{fixture.SKLEARN_REPOSITORY}:{fixture.SKLEARN_TAG}",
            {"Account": image_account},
        )
        hosting_role, hosting_policy = self._hosting_role(image_account)

        self.endpoints: dict[ApplyMode, Endpoint] = {}
        self.rightsizing: dict[ApplyMode, EndpointRightsizing] = {}
        for mode, endpoint_name in ENDPOINTS.items():
            construct_id = "Auto" if mode is ApplyMode.AUTO else "RecommendOnly"
            endpoint = Endpoint(
                self,
                f"{construct_id}Endpoint",
                endpoint_name=endpoint_name,
                image=image,
                model_data_url=self.model_artifact.s3_object_url,
                role=hosting_role,
                hosting_policy=hosting_policy,
            )
            self.endpoints[mode] = endpoint
            # Public API, defaults everywhere else: the stack's default engine, a Default job.
            self.rightsizing[mode] = EndpointRightsizing(
                self,
                construct_id,
                endpoint_name=endpoint_name,
                model_name=endpoint.model_name,
                container_config=ContainerConfig(
                    domain=fixture.DOMAIN,
                    task=fixture.TASK,
                    framework=fixture.FRAMEWORK,
                    nearest_model_name=fixture.NEAREST_MODEL_NAME,
                    sample_payload_url=self.sample_payload.s3_object_url,
                    supported_content_types=[fixture.CONTENT_TYPE],
                    supported_response_mime_types=[fixture.CONTENT_TYPE],
                    supported_instance_types=list(TESTED_INSTANCE_TYPES),
                ),
                slo=LatencySlo.p99(cdk.Duration.millis(500)),
                peak_requests_per_minute=60,
                guardrails=Guardrails(
                    min_instances=MIN_INSTANCES,
                    max_instances=MAX_INSTANCES,
                    allowed_instance_types=[RECOMMENDED_INSTANCE_TYPE],
                ),
                apply_mode=mode,
            )
        self.endpoints[ApplyMode.AUTO].autoscale()
        self.engine: RightsizingEngine = self.rightsizing[ApplyMode.AUTO].engine
        # README, "Settings": grant the job role read access to the model and the payload.
        self._grant_read(
            "JobRoleReadsModelAndPayload",
            self.engine.job_role,
            self.model_artifact,
            self.sample_payload,
        )

        self.event_queues = {
            mode: self._recommendation_queue(mode, endpoint_name)
            for mode, endpoint_name in ENDPOINTS.items()
        }
        self.failure_alarms = {
            "FailedRuns": self.engine.failed_runs_alarm,
            "FailedApplies": self.engine.apply_workflow.failed_applies_alarm,
        }
        self.alarm_queues = {
            name: self._notification_queue(name, alarm)
            for name, alarm in self.failure_alarms.items()
        }
        # What tools/integ.py reads for its post-deploy checks and diagnostics.
        cdk.CfnOutput(self, "LedgerTableName", value=self.engine.ledger_table.table_name)
        for mode, endpoint in self.endpoints.items():
            cdk.CfnOutput(
                self,
                f"ModelName{'Auto' if mode is ApplyMode.AUTO else 'RecommendOnly'}",
                value=endpoint.model_name,
                description=endpoint.endpoint_name,
            )
        for name, queue in self.alarm_queues.items():
            cdk.CfnOutput(self, f"{name}NotificationQueue", value=queue.queue_url, description=name)
        # Nothing of the test may outlive it: the ledger and log groups are kept by default.
        cdk.RemovalPolicies.of(self).destroy()

    def _hosting_role(self, image_account: str) -> tuple[iam.Role, iam.ManagedPolicy]:
        """The models' execution role: read the artifact, pull the image, write endpoint logs."""
        role = iam.Role(
            self,
            "HostingRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Serves the rightsizing-constructs integration test's endpoints",
        )
        policy = self._grant_read("HostingPolicy", role, self.model_artifact)
        log_groups = [
            self.format_arn(
                service="logs",
                resource="log-group",
                resource_name=f"/aws/sagemaker/Endpoints/{name}:*",
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            )
            for name in ENDPOINTS.values()
        ]
        policy.add_statements(
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                resources=[
                    self.format_arn(
                        service="ecr",
                        account=image_account,
                        resource="repository",
                        resource_name=fixture.SKLEARN_REPOSITORY,
                    )
                ],
            ),
            # GetAuthorizationToken has no resource-level permissions.
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=log_groups,
            ),
        )
        nag_acknowledgments.acknowledge_hosting_policy(policy, log_groups)
        return role, policy

    def _grant_read(
        self, construct_id: str, role: iam.IRole, *assets: s3_assets.Asset
    ) -> iam.ManagedPolicy:
        """s3:GetObject on exactly these objects (Asset.grant_read would grant the bucket)."""
        return iam.ManagedPolicy(
            self,
            construct_id,
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    actions=["s3:GetObject"],
                    resources=[
                        asset.bucket.arn_for_objects(asset.s3_object_key) for asset in assets
                    ],
                )
            ],
        )

    def _recommendation_queue(self, mode: ApplyMode, endpoint_name: str) -> sqs.Queue:
        """A queue receiving this endpoint's recommendation events from the engine's bus."""
        name = "Auto" if mode is ApplyMode.AUTO else "RecommendOnly"
        queue = _probe_queue(self, f"{name}RecommendationEvents")
        rule = events.Rule(
            self,
            f"{name}RecommendationEventsRule",
            description=f"Integration test: recommendation events of {endpoint_name}",
            event_bus=self.engine.event_bus,
            event_pattern=events.EventPattern(
                source=[RECOMMENDATION_EVENT_SOURCE],
                detail_type=[RECOMMENDATION_DETAIL_TYPE],
                detail={"endpoint_name": [endpoint_name]},
            ),
            targets=[targets.SqsQueue(queue)],
        )
        nag_acknowledgments.acknowledge_probe_rule(rule)
        return queue

    def _notification_queue(self, name: str, alarm: cloudwatch.Alarm) -> sqs.Queue:
        """A queue subscribed to the engine's topic, receiving this alarm's notifications."""
        queue = _probe_queue(self, f"{name}Notifications")
        subscription = self.engine.topic.add_subscription(
            subscriptions.SqsSubscription(
                queue,
                filter_policy_with_message_body={
                    "AlarmName": sns.FilterOrPolicy.filter(
                        sns.SubscriptionFilter.string_filter(allowlist=[alarm.alarm_name])
                    )
                },
            )
        )
        nag_acknowledgments.acknowledge_probe_subscription(subscription)
        return queue


def _probe_queue(scope: Construct, construct_id: str) -> sqs.Queue:
    """A queue the assertions read: SSE-SQS (EventBridge and SNS can deliver to it), TLS only."""
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=cdk.Duration.days(1),
    )
    nag_acknowledgments.acknowledge_probe_queue(queue)
    return queue


# -- Assertions ------------------------------------------------------------------------------


def wait(call: IApiCall, path: str, expected: ExpectedResult, within: cdk.Duration) -> IApiCall:
    """Retry ``call`` until the value at ``path`` matches; fail the deployment after ``within``.

    A direct assertion only reports its result as a stack output; a waiter also fails the
    assertion stack when it does not hold, so every step here waits (briefly when the value
    should already be there).
    """
    interval = cdk.Duration.seconds(60 if within.to_minutes() >= 10 else 15)
    call.assert_at_path(path, expected)
    call.wait_for_assertions(total_timeout=within, interval=interval)
    return call


def now(call: IApiCall, path: str, expected: ExpectedResult) -> IApiCall:
    """A value that must hold already (one minute of retries for eventual consistency)."""
    return wait(call, path, expected, cdk.Duration.minutes(1))


def chain(*calls: IApiCall) -> IApiCall:
    """Run ``calls`` one after the other; returns the last."""
    for first, second in itertools.pairwise(calls):
        first.next(second)
    return calls[-1]


def ledger_query(
    assertions: IDeployAssert, table_name: str, endpoint_name: str, prefix: str
) -> IApiCall:
    """The newest ledger items of ``endpoint_name`` whose sort key starts with ``prefix``."""
    return assertions.aws_api_call(
        "DynamoDB",
        "query",
        {
            "TableName": table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"endpoint#{endpoint_name}"},
                ":prefix": {"S": prefix},
            },
            "ScanIndexForward": False,
        },
    )


def recommend_run(
    assertions: IDeployAssert, stack: RightsizingIntegStack, mode: ApplyMode, start: IApiCall
) -> tuple[IApiCall, IApiCall]:
    """After ``start``: the IR job, its end, the ledger record and the event of one endpoint.

    Returns the step that sees the job started, and the last step.
    """
    endpoint = stack.endpoints[mode]
    table = stack.engine.ledger_table.table_name

    def jobs() -> IApiCall:
        return assertions.aws_api_call(
            "SageMaker",
            "listInferenceRecommendationsJobs",
            {
                "ModelNameEquals": endpoint.model_name,
                "SortBy": "CreationTime",
                "SortOrder": "Descending",
            },
        )

    def recommendation() -> IApiCall:
        return ledger_query(assertions, table, endpoint.endpoint_name, "recommendation#")

    newest_job = "InferenceRecommendationsJobs.0"
    newest = "Items.0"
    # The manual trigger reached the rule, the workflow took a slot and started a job.
    started = wait(
        jobs(),
        f"{newest_job}.JobName",
        ExpectedResult.string_like_regexp("^rightsizing-"),
        cdk.Duration.minutes(20),
    )
    return started, chain(
        start,
        started,
        wait(
            jobs(),
            f"{newest_job}.Status",
            ExpectedResult.string_like_regexp("^(COMPLETED|FAILED|STOPPED)$"),
            LONG_WAIT,
        ),
        now(jobs(), f"{newest_job}.Status", ExpectedResult.exact("COMPLETED")),
        # The workflow notices within one poll interval (5 minutes), decides and records.
        wait(
            recommendation(),
            f"{newest}.sk.S",
            ExpectedResult.string_like_regexp("^recommendation#"),
            cdk.Duration.minutes(20),
        ),
        now(recommendation(), f"{newest}.outcome.S", ExpectedResult.exact("apply")),
        now(
            recommendation(),
            f"{newest}.record.S.instance_type",
            ExpectedResult.exact(RECOMMENDED_INSTANCE_TYPE),
        ),
        # ...and put the event on the engine's bus (the test's rule forwarded it).
        now(
            assertions.aws_api_call(
                "SQS",
                "receiveMessage",
                {
                    "QueueUrl": stack.event_queues[mode].queue_url,
                    "MaxNumberOfMessages": 1,
                    "VisibilityTimeout": 0,
                    "WaitTimeSeconds": 5,
                },
            ),
            "Messages.0.Body.detail.action",
            ExpectedResult.exact("apply"),
        ),
    )


def applied(assertions: IDeployAssert, stack: RightsizingIntegStack, after: IApiCall) -> IApiCall:
    """After ``after``: the AUTO endpoint's Apply run, its new config and its autoscaling."""
    endpoint = stack.endpoints[ApplyMode.AUTO]
    name = endpoint.endpoint_name
    table = stack.engine.ledger_table.table_name
    target = {
        "ServiceNamespace": "sagemaker",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }
    resource_id = f"endpoint/{name}/variant/{VARIANT}"

    def run() -> IApiCall:
        return ledger_query(assertions, table, name, "run#")

    def scalable_target() -> IApiCall:
        return assertions.aws_api_call(
            "ApplicationAutoScaling",
            "describeScalableTargets",
            {**target, "ResourceIds": [resource_id]},
        )

    return chain(
        after,
        # Lock, snapshot, new config, deregister, UpdateEndpoint (blue/green), re-register.
        wait(run(), "Items.0.sk.S", ExpectedResult.string_like_regexp("^run#"), LONG_WAIT),
        now(run(), "Items.0.outcome.S", ExpectedResult.exact("applied")),
        now(
            run(),
            "Items.0.record.S.after.instance_type",
            ExpectedResult.exact(RECOMMENDED_INSTANCE_TYPE),
        ),
        now(
            assertions.aws_api_call("SageMaker", "describeEndpoint", {"EndpointName": name}),
            "EndpointConfigName",
            ExpectedResult.string_like_regexp(f"^{name}-rs-"),
        ),
        now(scalable_target(), "ScalableTargets.0.MinCapacity", ExpectedResult.exact(1)),
        now(scalable_target(), "ScalableTargets.0.MaxCapacity", ExpectedResult.exact(2)),
        now(
            assertions.aws_api_call(
                "ApplicationAutoScaling",
                "describeScalingPolicies",
                {**target, "ResourceId": resource_id},
            ),
            "ScalingPolicies.0.PolicyName",
            ExpectedResult.exact(SCALING_POLICY_NAME),
        ),
    )


def not_applied(
    assertions: IDeployAssert, stack: RightsizingIntegStack, *after: IApiCall
) -> IApiCall:
    """After all of ``after`` (both recommendations are out, the AUTO apply is done):
    RECOMMEND_ONLY changed nothing."""
    endpoint = stack.endpoints[ApplyMode.RECOMMEND_ONLY]
    table = stack.engine.ledger_table.table_name
    first = now(
        ledger_query(assertions, table, endpoint.endpoint_name, "run#"),
        "Count",
        ExpectedResult.exact(0),
    )
    for step in after:
        step.next(first)
    return chain(
        first,
        now(
            assertions.aws_api_call(
                "SageMaker", "describeEndpoint", {"EndpointName": endpoint.endpoint_name}
            ),
            "EndpointConfigName",
            ExpectedResult.exact(endpoint.config.attr_endpoint_config_name),
        ),
    )


def alarm_notifies(
    assertions: IDeployAssert, stack: RightsizingIntegStack, name: str, *after: IApiCall
) -> IApiCall:
    """Set a failure alarm to ALARM; its notification must have reached the topic's subscriber
    by the time every step of ``after`` is done.

    Not a waiter, on purpose: when one step fails, CloudFormation cancels every step still in
    progress, so a missing notification (found within minutes) would also stop the runs. Its
    result is a stack output, read at the end as integ-runner reads it (tools/integ.py).
    """
    alarm = stack.failure_alarms[name]
    set_state = assertions.aws_api_call(
        "CloudWatch",
        "setAlarmState",
        {
            "AlarmName": alarm.alarm_name,
            "StateValue": "ALARM",
            "StateReason": "rightsizing-constructs integration test: notification check",
        },
    )
    received = assertions.aws_api_call(
        "SQS",
        "receiveMessage",
        {
            "QueueUrl": stack.alarm_queues[name].queue_url,
            "MaxNumberOfMessages": 1,
            "VisibilityTimeout": 0,
            "WaitTimeSeconds": 20,
        },
    )
    # The SNS envelope's Message is CloudWatch's JSON, a string here.
    received.assert_at_path(
        "Messages.0.Body.Message",
        ExpectedResult.string_like_regexp(f'"AlarmName":\\s*"{alarm.alarm_name}"'),
    )
    for step in (set_state, *after):
        step.next(received)
    return received


def add_assertions(integ: IntegTest, stack: RightsizingIntegStack) -> None:
    """The test's steps: a chain per run, in parallel, and the alarm notifications."""
    assertions = integ.assertions

    def start_run(mode: ApplyMode) -> IApiCall:
        # The library's manual trigger (README, "Triggers"), on the engine's bus.
        request = {
            "Source": RECOMMENDATION_EVENT_SOURCE,
            "DetailType": RUN_REQUESTED_DETAIL_TYPE,
            "Detail": json.dumps({"endpoint_name": ENDPOINTS[mode], "variant_name": VARIANT}),
            "EventBusName": stack.engine.event_bus.event_bus_name,
        }
        call = assertions.aws_api_call("EventBridge", "putEvents", {"Entries": [request]})
        # Not a waiter: a retry would put a second event (a second paid load test).
        call.assert_at_path("FailedEntryCount", ExpectedResult.exact(0))
        return call

    auto_started, auto = recommend_run(assertions, stack, ApplyMode.AUTO, start_run(ApplyMode.AUTO))
    recommend_only_started, recommend_only = recommend_run(
        assertions, stack, ApplyMode.RECOMMEND_ONLY, start_run(ApplyMode.RECOMMEND_ONLY)
    )
    not_applied(assertions, stack, applied(assertions, stack, auto), recommend_only)
    # Alarms are set at once; their notifications are read once both jobs have started (a
    # minute or more later: CloudWatch notifies within seconds).
    for name in stack.failure_alarms:
        alarm_notifies(assertions, stack, name, auto_started, recommend_only_started)


def main() -> None:
    """Synthesize the test app (integ-runner runs this file as ``python integ_rightsizing.py``)."""
    # Cross-stack references (assertions -> test stack) as CloudFormation exports, explicitly.
    app = cdk.App(context={"@aws-cdk/core:defaultCrossStackReferences": "strong"})
    # The five cdk-nag packs, as in app.py: a finding fails the synth.
    cdk.Validations.of(app).add_plugins(
        AwsSolutionsChecks(app),
        ServerlessChecks(app),
        NIST80053R5Checks(app),
        HIPAASecurityChecks(app),
        PCIDSS321Checks(app),
    )
    archive_dir = Path(tempfile.mkdtemp(prefix="rightsizing-integ-"))
    try:
        stack = RightsizingIntegStack(app, fixture.TEST_STACK, archive_dir=archive_dir)
        integ = IntegTest(
            app,
            "RightsizingIntegTest",
            test_cases=[stack],
            # No snapshot is committed: there is no previous version to update from.
            stack_update_workflow=False,
            regions=sorted(fixture.SKLEARN_IMAGE_ACCOUNTS),
        )
        add_assertions(integ, stack)
        app.synth()
    finally:
        shutil.rmtree(archive_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
