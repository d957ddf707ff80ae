"""EndpointRightsizing: the synthesized template, the workflow definition, IAM and validation."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template
from botocore.stub import Stubber
from rightsizing_runtime import start_job

import rightsizing_constructs
from rightsizing_constructs import (
    RECOMMENDATION_DETAIL_TYPE,
    RECOMMENDATION_EVENT_SOURCE,
    ContainerConfig,
    Deployment,
    Guardrails,
    LatencyPercentile,
    LatencySlo,
    LatencyThreshold,
    Phase,
    RecommenderJob,
    Stairs,
    StoppingConditions,
    TrafficPattern,
)
from rightsizing_constructs.settings import problems_of
from tests.infra import (
    ACCOUNT,
    PACKAGE_ARN,
    REGION,
    as_list,
    definition,
    endpoint_input,
    rightsizing,
    stack,
    statements_of,
)
from tools import poll_bench

JOB_ARNS = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:inference-recommendations-job/rightsizing-*"
ENDPOINT_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/fraud-scoring"


@pytest.fixture(scope="module")
def template() -> Template:
    construct = rightsizing()
    return Template.from_stack(cdk.Stack.of(construct))


@pytest.fixture(scope="module")
def states(template: Template) -> dict[str, Any]:
    return dict(definition(template)["States"])


def advanced_job(**overrides: Any) -> RecommenderJob:
    settings: dict[str, Any] = {"instance_types": ["ml.c5.xlarge", "ml.m5.xlarge"]}
    settings.update(overrides)
    return RecommenderJob.advanced(**settings)


# -- The workflow -----------------------------------------------------------------------------


def test_standard_state_machine_logs_all_with_tracing(template: Template) -> None:
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineType": "STANDARD",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": Match.object_like(
                {"Level": "ALL", "IncludeExecutionData": True}
            ),
        },
    )


def test_the_registry_carries_the_settings(template: Template) -> None:
    assert definition(template)["StartAt"] == "Route"
    settings = endpoint_input(template)["settings"]
    assert settings["endpoint_name"] == "fraud-scoring"
    assert settings["job"] == {"job_type": "Default"}
    assert settings["slo"] == {"percentile": "P99", "max_latency_ms": 300}
    assert settings["target_utilization"] == 0.5


def test_poll_loop(states: dict[str, Any]) -> None:
    # StartJob -> JobKind? -> StartPolling -> WaitForJob (the endpoint's first wait) ->
    # DescribeJob -> JobFinished -(running, polls left)-> CountPoll -> WaitBetweenPolls (60 s)
    # -> DescribeJob. An endpoint's settings have no kind: JobKind? goes to StartPolling.
    assert states["StartJob"]["Next"] == "JobKind?"
    assert states["JobKind?"]["Default"] == "StartPolling"
    assert states["StartPolling"]["Result"] == {"count": 1}
    assert states["StartPolling"]["Next"] == "WaitForJob"
    assert states["WaitForJob"] == {
        "Type": "Wait",
        "SecondsPath": "$.settings.first_poll_seconds",
        "Next": "DescribeJob",
    }
    describe = states["DescribeJob"]
    assert describe["Resource"] == (
        "arn:aws:states:::aws-sdk:sagemaker:describeInferenceRecommendationsJob"
    )
    assert describe["Parameters"] == {"JobName.$": "$.job.job_name"}
    # Only Status is selected: FailureReason is absent on most responses and selecting a
    # missing field fails the state.
    assert describe["ResultSelector"] == {"status.$": "$.Status"}
    assert describe["Next"] == "JobFinished"
    running = {
        "Or": [
            {"Variable": "$.job_status.status", "StringEquals": status}
            for status in ("PENDING", "IN_PROGRESS", "STOPPING")
        ]
    }
    assert states["JobFinished"]["Choices"] == [
        {
            "And": [
                running,
                {
                    "Variable": "$.polls.count",
                    "NumericGreaterThanEqualsPath": "$.settings.max_polls",
                },
            ],
            "Next": "JobTimedOut",
        },
        {**running, "Next": "CountPoll"},
    ]
    assert states["JobFinished"]["Default"] == "ReleaseJobSlot"
    assert states["ReleaseJobSlot"]["Next"] == "SelectRecommendation"
    assert states["CountPoll"]["Parameters"] == {"count.$": "States.MathAdd($.polls.count, 1)"}
    assert states["CountPoll"]["ResultPath"] == "$.polls"
    assert states["CountPoll"]["Next"] == "WaitBetweenPolls"
    # The engine's poll_interval (5 minutes by default), at most 60 s.
    assert states["WaitBetweenPolls"] == {"Type": "Wait", "Seconds": 60, "Next": "DescribeJob"}
    assert "PollBudgetSpent" not in states  # folded into JobFinished: 4 transitions a poll


def test_poll_schedule_of_a_default_job(template: Template) -> None:
    """45 minutes expected: the first poll at 30 minutes, then every minute up to the 2-hour
    timeout (1 + 90 polls), the job slot held an hour past the last poll."""
    settings = endpoint_input(template)["settings"]
    assert settings["timeout_seconds"] == 7200
    assert settings["first_poll_seconds"] == 1800
    assert settings["max_polls"] == 91
    assert settings["slot_hold_seconds"] == 7200 + 3600


@pytest.mark.parametrize(
    ("settings", "first_poll", "max_polls", "interval"),
    [
        # job_duration 2 h: first poll at 80 min, then every minute to the 3-hour timeout.
        ({"job": RecommenderJob.advanced(instance_types=["ml.c5.xlarge"])}, 4800, 101, 60),
        # A job expected to take 30 minutes: first poll at 20 minutes.
        (
            {"job": RecommenderJob.default(expected_duration=cdk.Duration.minutes(30))},
            1200,
            101,
            60,
        ),
        # A timeout shorter than the first wait: one poll, at the timeout.
        ({"timeout": cdk.Duration.minutes(20)}, 1200, 1, 60),
        # A poll_interval under a minute is the gap between polls (e2e tests use 1 second).
        ({"poll_interval": cdk.Duration.seconds(20)}, 1800, 1 + 270, 20),
        # One over a minute still polls every minute once the first wait is over.
        ({"poll_interval": cdk.Duration.minutes(10)}, 1800, 91, 60),
    ],
)
def test_poll_schedule_follows_the_job_timeout_and_poll_interval(
    settings: dict[str, Any], first_poll: int, max_polls: int, interval: int
) -> None:
    template = Template.from_stack(cdk.Stack.of(rightsizing(**settings)))
    document = endpoint_input(template)["settings"]
    assert document["first_poll_seconds"] == first_poll
    assert document["max_polls"] == max_polls
    assert definition(template)["States"]["WaitBetweenPolls"]["Seconds"] == interval


def test_a_45_minute_default_job_is_seen_within_a_minute_for_at_most_100_transitions(
    template: Template,
) -> None:
    """Issue #14's bounds, on the synthesized definition run by the polling benchmark's
    interpreter for jobs ending every second within a minute of 45 minutes."""
    states = definition(template)
    settings = endpoint_input(template)["settings"]
    completions = range(44 * 60, 46 * 60 + 1)
    runs = [poll_bench.execute(states, settings, t) for t in completions]
    assert all(run.end_state == "Done" and run.seen_at is not None for run in runs)
    assert max(run.seen_at - t for t, run in zip(completions, runs, strict=True)) <= 60
    assert max(run.transitions for run in runs) <= 100


def test_the_poll_retries_every_error_but_a_missing_job(states: dict[str, Any]) -> None:
    """SageMaker models no throttling or 5xx error: Step Functions names those generically
    (SageMaker.SageMakerException), so only a wildcard can retry them; the one modeled error
    of DescribeInferenceRecommendationsJob, ResourceNotFound, fails at once."""
    not_found, everything_else = states["DescribeJob"]["Retry"]
    assert not_found == {"ErrorEquals": ["SageMaker.ResourceNotFoundException"], "MaxAttempts": 0}
    assert everything_else["ErrorEquals"] == ["States.TaskFailed"]
    assert everything_else["MaxAttempts"] == 6
    assert everything_else["JitterStrategy"] == "FULL"


@pytest.mark.parametrize(
    ("workflow", "expected"),
    [
        (
            "recommend",
            {
                "Route",
                "Prepare",
                "AcquireJobSlot",
                "StartJob",
                "DescribeAIJob",
                "ReleaseJobSlot",
                "SelectRecommendation",
                "PublishPending",
                "StopJob",
                "ReleaseSlotAfterFailure",
            },
        ),
        (
            "apply",
            {
                "AcquireLock",
                "Snapshot",
                "CreateConfig",
                "Deregister",
                "UpdateEndpoint",
                "CheckUpdate",
                "EnsureAutoscaling",
                "Record",
                "ReleaseLock",
                "TakeOver",
                "RequestApproval",
                "ComponentSnapshot",
                "UpdateComponent",
                "CheckComponent",
                "EnsureComponentAutoscaling",
            },
        ),
    ],
)
def test_every_lambda_task_retries_transient_aws_errors_and_throttled_invokes(
    template: Template, workflow: str, expected: set[str]
) -> None:
    """Handlers raise TransientAwsError for throttling and 5xx (a plain ClientError otherwise):
    the one name a Retry can match for them. Route calls no AWS API (its registry is a file),
    so only its throttled invokes are retried."""
    states = definition(template, workflow)["States"]
    lambda_states = {
        name: state
        for name, state in states.items()
        if state.get("Resource", "").startswith("arn:aws:lambda:")
    }
    assert set(lambda_states) == expected
    for name, state in lambda_states.items():
        names = [r["ErrorEquals"] for r in state["Retry"]]
        retried = ["Lambda.TooManyRequestsException"]
        if name != "Route":
            retried.insert(0, "TransientAwsError")
        assert retried in names, name


def test_timeout_stops_the_job_then_fails(states: dict[str, Any], template: Template) -> None:
    # Default: a first poll at 30 minutes, then one a minute up to the 2-hour timeout.
    assert endpoint_input(template)["settings"]["max_polls"] == 91
    assert states["JobFinished"]["Choices"][0]["Next"] == "JobTimedOut"
    assert states["JobTimedOut"]["Parameters"]["Error"] == "JobTimedOut"
    assert states["JobTimedOut"]["Next"] == "StopJob"
    stop = states["StopJob"]
    assert re.fullmatch(r"arn:aws:lambda:.*:function:RightsizingEngineStopJob\w+", stop["Resource"])
    assert stop["Parameters"]["execution_arn.$"] == "$$.Execution.Id"
    assert stop["Next"] == "ReleaseSlotAfterFailure"
    assert states["ReleaseSlotAfterFailure"]["Next"] == "RecordFailure"
    assert states["RecordFailure"]["Next"] == "NotifyFailure"
    assert states["NotifyFailure"]["Next"] == "Failed"
    assert states["Failed"] == {
        "Type": "Fail",
        "ErrorPath": "$.error.Error",
        "CausePath": "$.error.Cause",
    }


@pytest.mark.parametrize(
    "state",
    [
        "Prepare",
        "AcquireJobSlot",
        "StartJob",
        "DescribeJob",
        "ReleaseJobSlot",
        "SelectRecommendation",
        "PutRecommendationEvent",
    ],
)
def test_every_failure_stops_the_job_and_notifies(states: dict[str, Any], state: str) -> None:
    assert states[state]["Catch"][-1] == {
        "ErrorEquals": ["States.ALL"],
        "ResultPath": "$.error",
        "Next": "StopJob",
    }


def test_failing_to_stop_still_notifies(states: dict[str, Any]) -> None:
    assert states["StopJob"]["Catch"] == [
        {
            "ErrorEquals": ["States.ALL"],
            "ResultPath": "$.stop_error",
            "Next": "ReleaseSlotAfterFailure",
        }
    ]
    assert states["ReleaseSlotAfterFailure"]["Catch"][0]["Next"] == "RecordFailure"
    assert states["RecordFailure"]["Catch"][0]["Next"] == "NotifyFailure"


def test_recommendation_event(states: dict[str, Any]) -> None:
    assert states["SelectRecommendation"]["ResultPath"] == "$.recommendation.detail"
    assert states["SelectRecommendation"]["Next"] == "Pending?"
    # A pending recommendation (an approved version not served yet) is kept before it is put.
    [pending] = states["Pending?"]["Choices"]
    assert pending == {
        "Variable": "$.recommendation.detail.action",
        "StringEquals": "pending",
        "Next": "PublishPending",
    }
    assert states["Pending?"]["Default"] == "PutRecommendationEvent"
    assert states["PublishPending"]["Next"] == "PutRecommendationEvent"
    put = states["PutRecommendationEvent"]
    assert put["Resource"] == "arn:aws:states:::events:putEvents"
    assert put["Parameters"]["Entries"] == [
        {
            "Detail.$": "$.recommendation.detail",
            "DetailType": RECOMMENDATION_DETAIL_TYPE,
            "Source": RECOMMENDATION_EVENT_SOURCE,
            "EventBusName": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default",
        }
    ]
    assert put["Next"] == "RecordRecommendation"
    record = states["RecordRecommendation"]
    assert record["Resource"] == "arn:aws:states:::dynamodb:putItem"
    assert record["Parameters"]["Item"]["pk"] == {
        "S.$": "States.Format('endpoint#{}', $.settings.endpoint_name)"
    }
    assert record["Parameters"]["Item"]["record"] == {
        "S.$": "States.JsonToString($.recommendation.detail)"
    }
    assert record["Next"] == "NotifyRecommendation"
    assert states["NotifyRecommendation"]["Next"] == "Done"


def test_state_machine_timeout_backs_up_the_poll_budget(template: Template) -> None:
    # Queue (2 days) + the longest job timeout (24 h) + 1 h: the workflow's own paths run first.
    assert definition(template)["TimeoutSeconds"] == (48 + 24 + 1) * 3600


def test_abort_or_timeout_of_the_execution_stops_the_job(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.states"],
                "detail-type": ["Step Functions Execution Status Change"],
                "detail": {
                    "status": ["ABORTED", "TIMED_OUT"],
                    "stateMachineArn": [Match.any_value()],
                },
            },
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [Match.string_like_regexp("StopJob"), "Arn"]},
                        "InputTransformer": {
                            "InputPathsMap": {
                                "detail-executionArn": "$.detail.executionArn",
                                "detail-status": "$.detail.status",
                            },
                            "InputTemplate": (
                                '{"execution_arn":<detail-executionArn>,"reason":<detail-status>}'
                            ),
                        },
                    }
                ),
                # ...and frees its IR job slot.
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [Match.string_like_regexp("JobSlots"), "Arn"]},
                        "InputTransformer": Match.object_like(
                            {
                                "InputTemplate": '{"action":"release","execution_arn":'
                                '<detail-executionArn>,"max_concurrent_jobs":2}'
                            }
                        ),
                    }
                ),
            ],
        },
    )


def test_failed_runs_alarm_notifies_the_topic(template: Template) -> None:
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Threshold": 1,
            "AlarmActions": [{"Ref": Match.string_like_regexp("RightsizingEngineTopic")}],
            "Metrics": Match.array_with(
                [Match.object_like({"Expression": "failed + timedout + aborted"})]
            ),
        },
    )


def test_advanced_job_defaults(template: Template) -> None:
    construct = rightsizing(
        job=advanced_job(
            traffic_pattern=TrafficPattern(
                stairs=Stairs(
                    duration=cdk.Duration.minutes(10), number_of_steps=5, users_per_step=2
                )
            )
        ),
        slo=LatencySlo.p95(cdk.Duration.millis(120)),
    )
    settings = endpoint_input(Template.from_stack(cdk.Stack.of(construct)))["settings"]
    job = settings["job"]
    assert job["job_duration_seconds"] == 7200
    # The load test stops at the SLO unless told otherwise.
    assert job["stopping_conditions"] == {
        "model_latency_threshold": {"percentile": "P95", "value_ms": 120}
    }
    assert job["traffic_pattern"] == {
        "stairs": {"duration_seconds": 600, "number_of_steps": 5, "users_per_step": 2}
    }
    # Timeout: job duration + 1 h; the first poll at 80 minutes, then one a minute.
    assert settings["first_poll_seconds"] == 4800
    assert settings["max_polls"] == 101
    assert settings["timeout_seconds"] == 3 * 3600


# -- IAM --------------------------------------------------------------------------------------


def _actions(statements: list[dict[str, Any]]) -> dict[str, list[Any]]:
    granted: dict[str, list[Any]] = {}
    for statement in statements:
        for action in as_list(statement["Action"]):
            granted.setdefault(action, []).extend(as_list(statement["Resource"]))
    return granted


def test_start_job_role_is_scoped(template: Template) -> None:
    statements = statements_of(template, "RightsizingEngineStartJobRole")
    granted = _actions(statements)
    assert granted["sagemaker:CreateInferenceRecommendationsJob"] == [JOB_ARNS]
    assert granted["sagemaker:DescribeEndpoint"] == [ENDPOINT_ARN]
    [pass_role] = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert as_list(pass_role["Resource"]) == [
        f"arn:aws:iam::{ACCOUNT}:role/{_logical_id(template, 'RightsizingEngineJobRole')}"
    ]


def test_select_and_stop_roles_are_scoped(template: Template) -> None:
    select = _actions(statements_of(template, "RightsizingEngineSelectRecommendationRole"))
    assert select["sagemaker:DescribeInferenceRecommendationsJob"] == [JOB_ARNS]
    assert select["sagemaker:DescribeEndpoint"] == [ENDPOINT_ARN]
    stop = _actions(statements_of(template, "RightsizingEngineStopJobRole"))
    assert stop["sagemaker:StopInferenceRecommendationsJob"] == [JOB_ARNS]
    assert "sagemaker:CreateInferenceRecommendationsJob" not in stop


def test_state_machine_role_is_scoped(template: Template) -> None:
    granted = _actions(statements_of(template, "RightsizingEngineStateMachineRole"))
    assert granted["sagemaker:DescribeInferenceRecommendationsJob"] == [JOB_ARNS]
    assert granted["events:PutEvents"] == [f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"]
    assert "sagemaker:CreateInferenceRecommendationsJob" not in granted


# Actions AWS offers no resource-level permission for: the only ones allowed on "*".
NO_RESOURCE_LEVEL = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",
    # Select reads the benchmark endpoints' metrics, StartJob a measured peak's (the Service
    # Authorization Reference lists no resource types for GetMetricData).
    "cloudwatch:GetMetricData",
    # An inference component's instance type's GPUs (ApplyStep, Select): the Service
    # Authorization Reference lists no resource types for DescribeInstanceTypes.
    "ec2:DescribeInstanceTypes",
    "application-autoscaling:DescribeScalableTargets",
    "application-autoscaling:DescribeScalingPolicies",
    # No resource ARNs: scoped by the service-namespace and scalable-dimension condition keys.
    "application-autoscaling:RegisterScalableTarget",
    "application-autoscaling:DeregisterScalableTarget",
    "application-autoscaling:PutScalingPolicy",
}


def test_no_wildcard_beyond_what_aws_forces(template: Template) -> None:
    for statement in statements_of(template, ""):
        actions = as_list(statement["Action"])
        assert not any(a == "*" or a.endswith(":*") for a in actions), statement
        if "*" in as_list(statement["Resource"]):
            assert set(actions) <= NO_RESOURCE_LEVEL, statement
            if "cloudwatch:PutMetricData" in actions:
                assert "cloudwatch:namespace" in str(statement["Condition"])
            if "application-autoscaling:RegisterScalableTarget" in actions:
                assert statement["Condition"] == {
                    "StringEquals": {
                        "application-autoscaling:service-namespace": "sagemaker",
                        # A variant's instances, or an inference component's copies.
                        "application-autoscaling:scalable-dimension": [
                            "sagemaker:variant:DesiredInstanceCount",
                            "sagemaker:inference-component:DesiredCopyCount",
                        ],
                    }
                }


def test_job_role_manages_only_load_test_resources(template: Template) -> None:
    granted = _actions(statements_of(template, "RightsizingEngineJobRole"))
    for action in ("sagemaker:CreateEndpoint", "sagemaker:DeleteEndpoint"):
        assert granted[action] == [
            f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/rightsizing-*"
            for kind in ("model", "endpoint-config", "endpoint")
        ]
    assert granted["sagemaker:DescribeModelPackage"] == [PACKAGE_ARN]
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": Match.object_like(
                {
                    "Statement": [
                        Match.object_like({"Principal": {"Service": "sagemaker.amazonaws.com"}})
                    ]
                }
            )
        },
    )


def _logical_id(template: Template, prefix: str) -> str:
    [logical_id] = [k for k in template.find_resources("AWS::IAM::Role") if k.startswith(prefix)]
    return logical_id


# -- Resources and options --------------------------------------------------------------------


def test_functions_run_the_runtime_handlers(template: Template) -> None:
    functions = template.find_resources("AWS::Lambda::Function")
    handlers = sorted(f["Properties"]["Handler"] for f in functions.values())
    assert handlers == [
        "rightsizing_runtime.apply_steps.handler",
        "rightsizing_runtime.job_slots.handler",
        "rightsizing_runtime.route.handler",
        "rightsizing_runtime.select_recommendation.handler",
        "rightsizing_runtime.start_job.handler",
        "rightsizing_runtime.stop_job.handler",
    ]
    for function in functions.values():
        assert function["Properties"]["Runtime"] == "python3.14"
        assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}
    # Each handler named in the template exists in the asset.
    import importlib

    for handler in handlers:
        module, _, attribute = handler.rpartition(".")
        assert callable(getattr(importlib.import_module(module), attribute))


def test_logs_are_retained_for_a_year(template: Template) -> None:
    groups = template.find_resources("AWS::Logs::LogGroup")
    assert len(groups) == 8  # six functions and two state machines
    assert {g["Properties"]["RetentionInDays"] for g in groups.values()} == {365}


def test_created_topic_is_encrypted_and_tls_only(template: Template) -> None:
    [topic] = template.find_resources("AWS::SNS::Topic").values()
    [key_id] = template.find_resources("AWS::KMS::Key")
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": Match.object_like(
                {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                }
            )
        },
    )


def test_bring_your_own_role_and_topic() -> None:
    scope = stack()
    role = iam.Role.from_role_arn(scope, "Mine", f"arn:aws:iam::{ACCOUNT}:role/my-ir-role")
    topic = sns.Topic.from_topic_arn(scope, "MyTopic", f"arn:aws:sns:{REGION}:{ACCOUNT}:mine")
    construct = rightsizing(scope, job_role=role, topic=topic)
    assert construct.engine.job_role is role and construct.engine.topic is topic
    template = Template.from_stack(scope)
    template.resource_count_is("AWS::SNS::Topic", 0)
    roles = template.find_resources("AWS::IAM::Role")
    assert not [k for k in roles if k.startswith("RightsizingEngineJobRole")]
    assert construct.settings_document["job_role_arn"] == f"arn:aws:iam::{ACCOUNT}:role/my-ir-role"


def test_two_endpoints_in_one_stack_share_one_engine() -> None:
    scope = stack()
    fraud = rightsizing(scope, construct_id="Fraud")
    search = rightsizing(scope, construct_id="Search", endpoint_name="search-ranker")
    assert fraud.engine is search.engine
    template = Template.from_stack(scope)
    template.resource_count_is("AWS::StepFunctions::StateMachine", 2)
    template.resource_count_is("AWS::Lambda::Function", 6)
    # Each endpoint adds its registry entry; both endpoints are in the engine's policies.
    assert endpoint_input(template, "search-ranker")["settings"]["endpoint_name"] == (
        "search-ranker"
    )
    granted = _actions(statements_of(template, "RightsizingEngineStartJobRole"))
    assert sorted(granted["sagemaker:DescribeEndpoint"]) == [
        ENDPOINT_ARN,
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/search-ranker",
    ]


def test_model_name_with_container_config() -> None:
    construct = rightsizing(
        model_package_version_arn=None,
        model_name="fraud-model",
        container_config=ContainerConfig(
            framework="XGBOOST",
            sample_payload_url="s3://payloads/fraud.tar.gz",
            supported_content_types=["text/csv"],
        ),
    )
    assert construct.settings_document["model"] == {
        "model_name": "fraud-model",
        "container_config": {
            "framework": "XGBOOST",
            "sample_payload_url": "s3://payloads/fraud.tar.gz",
            "supported_content_types": ["text/csv"],
        },
    }


def test_unresolved_tokens_are_not_validated() -> None:
    scope = stack()
    endpoint = cdk.CfnParameter(scope, "EndpointName").value_as_string
    construct = rightsizing(scope, endpoint_name=endpoint)
    assert cdk.Token.is_unresolved(construct.endpoint_name)
    Template.from_stack(scope)  # synthesizes


def test_synthesized_settings_drive_a_valid_create_job_request() -> None:
    """The settings the construct writes are what the StartJob handler reads: the request it
    builds from the synthesized document passes botocore's model."""
    construct = rightsizing(
        job=advanced_job(
            traffic_pattern=TrafficPattern(
                phases=[
                    Phase(initial_number_of_users=2, spawn_rate=1, duration=cdk.Duration.minutes(5))
                ]
            ),
            stopping_conditions=StoppingConditions(max_invocations=5000),
            max_parallel_of_tests=2,
        ),
        guardrails=Guardrails(max_cost_per_hour=12.5, allowed_instance_types=["ml.c5"]),
    )
    settings = endpoint_input(Template.from_stack(cdk.Stack.of(construct)))["settings"]
    execution = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:sm:run-1"
    with Stubber(start_job.sagemaker) as stubber:
        stubber.add_response(
            "create_inference_recommendations_job",
            {"JobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:inference-recommendations-job/x"},
        )
        start_job.handler({"settings": settings, "execution_arn": execution})
        stubber.assert_no_pending_responses()


# -- Validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"target_utilization": 0}, r"target_utilization must be in \(0, 1\].*got 0"),
        ({"target_utilization": 1.2}, r"target_utilization must be in \(0, 1\].*got 1.2"),
        ({"peak_requests_per_minute": -5}, "peak_requests_per_minute must be a number > 0"),
        ({"endpoint_name": "bad_name!"}, "endpoint_name must be 1-63 letters.*'bad_name!'"),
        ({"model_name": "m"}, "exactly one of model_package_version_arn or model_name"),
        (
            {"model_package_version_arn": None},
            "exactly one of model_package_version_arn or model_name.*got neither",
        ),
        (
            {"model_package_version_arn": PACKAGE_ARN.rsplit("/", 1)[0]},
            "ARN of a versioned model package",
        ),
        (
            {"model_package_version_arn": None, "model_name": "m"},
            "model_name needs container_config",
        ),
        (
            {
                "job": RecommenderJob.advanced(instance_types=["ml.g5.xlarge"]),
                "guardrails": Guardrails(allowed_instance_types=["ml.c5"]),
            },
            "none of the job's instance_types",
        ),
        (
            {
                "job": RecommenderJob.advanced(
                    instance_types=["ml.c5.xlarge"], job_duration=cdk.Duration.hours(4)
                ),
                "timeout": cdk.Duration.hours(3),
            },
            "shorter than the job's job_duration",
        ),
        ({"poll_interval": cdk.Duration.hours(3)}, "must be longer than poll_interval"),
    ],
)
def test_invalid_settings_fail_synth(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rightsizing(**overrides)


def test_related_problems_are_raised_together() -> None:
    with pytest.raises(ValueError) as error:
        rightsizing(target_utilization=3, peak_requests_per_minute=0, endpoint_name="-x")
    message = str(error.value)
    assert message.startswith("Invalid EndpointRightsizing settings:")
    assert message.count("\n  - ") == 3


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Guardrails(min_instances=5, max_instances=2), r"min_instances \(5\) must not"),
        (lambda: Guardrails(min_instances=0), "min_instances must be a whole number >= 1"),
        (
            lambda: Guardrails(allowed_instance_types=["ml.c5.xlarg"]),
            "'ml.c5.xlarg', which is neither",
        ),
        (lambda: Guardrails(max_cost_per_hour=-1), "max_cost_per_hour must be a positive"),
        (
            lambda: RecommenderJob.advanced(
                instance_types=[
                    f"ml.c5.{s}"
                    for s in ["large", "xlarge", "2xlarge", "4xlarge", "9xlarge", "18xlarge"]
                ]
                + [f"ml.m5.{s}" for s in ["large", "xlarge", "2xlarge", "4xlarge", "12xlarge"]]
            ),
            "instance_types must list 1 to 10 types.*got 11",
        ),
        (
            lambda: RecommenderJob.advanced(instance_types=["ml.c5.huge"]),
            "'ml.c5.huge', not in botocore's ProductionVariantInstanceType enum",
        ),
        (
            lambda: RecommenderJob.advanced(
                instance_types=["ml.c5.xlarge"], job_duration=cdk.Duration.hours(6)
            ),
            "job_duration must be at most 18000 s",
        ),
        (
            lambda: RecommenderJob.advanced(
                instance_types=["ml.c5.xlarge"], max_parallel_of_tests=11
            ),
            "max_parallel_of_tests must be a whole number from 1 to 10",
        ),
        (
            lambda: Stairs(duration=cdk.Duration.minutes(5), number_of_steps=3, users_per_step=4),
            "users_per_step must be 1, 2 or 3",
        ),
        (lambda: TrafficPattern(), "exactly one of phases"),
        (
            lambda: Phase(
                initial_number_of_users=0, spawn_rate=1, duration=cdk.Duration.minutes(1)
            ),
            "initial_number_of_users must be >= 1",
        ),
        (lambda: LatencySlo.p99(cdk.Duration.millis(0)), "max_latency must be more than 0 ms"),
        (
            lambda: LatencySlo(percentile="P99", max_latency=cdk.Duration.millis(5)),  # type: ignore[arg-type]
            "percentile must be LatencyPercentile",
        ),
        (
            lambda: LatencyThreshold(percentile=LatencyPercentile.P95, value=300),  # type: ignore[arg-type]
            "value must be a Duration",
        ),
        (lambda: ContainerConfig(sample_payload_url="ftp://x"), "s3:// or https://"),
    ],
)
def test_settings_types_find_their_own_problems_and_the_construct_reports_them(
    build: Any, message: str
) -> None:
    """A settings object keeps what is wrong with it (as a jsii struct would not throw); the
    construct it is given to reports it, named after the field, with every other problem."""
    settings = build()
    assert any(re.search(message, problem) for problem in problems_of(settings)), problems_of(
        settings
    )
    field = {
        Guardrails: "guardrails",
        RecommenderJob: "job",
        LatencySlo: "slo",
        ContainerConfig: "container_config",
    }.get(type(settings))
    if field is None:  # a part of a job: reported inside the job's problems
        return
    overrides: dict[str, Any] = {field: settings}
    if field == "container_config":
        overrides.update(model_package_version_arn=None, model_name="m")
    with pytest.raises(ValueError, match=rf"  - {field}: .*{message}"):
        rightsizing(**overrides)


def test_every_problem_of_every_setting_is_in_one_message() -> None:
    """README: invalid settings fail synth with one message listing every problem."""
    with pytest.raises(ValueError) as error:
        rightsizing(
            endpoint_name="-bad",
            slo=LatencySlo.p99(cdk.Duration.millis(150.5)),
            guardrails=Guardrails(min_instances=0),
            deployment=Deployment.canary(percent=150, wait=cdk.Duration.minutes(1)),
            job=RecommenderJob.advanced(
                instance_types=["ml.c5.xlarge"],
                traffic_pattern=TrafficPattern(
                    phases=[
                        Phase(
                            initial_number_of_users=0,
                            spawn_rate=1,
                            duration=cdk.Duration.minutes(1),
                        )
                    ]
                ),
            ),
        )
    message = str(error.value)
    assert message.startswith("Invalid EndpointRightsizing settings:\n")
    lines = message.splitlines()[1:]
    assert len(lines) == 5, lines
    assert "  - endpoint_name must be 1-63 letters" in lines[0]
    assert (
        "  - slo: max_latency must be a whole number of milliseconds (IR takes latency thresholds "
        "in whole ms), got 150.5 ms" in lines
    )
    assert "  - guardrails: min_instances must be a whole number >= 1, got 0" in lines
    assert any(line.startswith("  - deployment: percent must be a whole number") for line in lines)
    assert (
        "  - job: traffic_pattern: phases[0]: initial_number_of_users must be >= 1, got 0" in lines
    )
    # No jsii error code leaks into the message (it used to say CannotConvertedIntoWhole).
    assert "Cannot" not in message and "MustBeWholeNumber" not in message


def test_settings_are_value_equal_and_immutable() -> None:
    a = Guardrails(min_instances=2, allowed_instance_types=["ml.c5"])
    assert a == Guardrails(min_instances=2, allowed_instance_types=("ml.c5",))
    with pytest.raises(AttributeError):
        a.min_instances = 3  # type: ignore[misc]


def test_every_public_name_is_exported_and_documented() -> None:
    for name in rightsizing_constructs.__all__:
        value = getattr(rightsizing_constructs, name)
        if isinstance(value, type):
            assert value.__doc__ and value.__doc__.strip(), name
    assert re.fullmatch(r"\d+\.\d+\.\d+", rightsizing_constructs.__version__)


def test_the_public_surface_is_what_the_readme_documents() -> None:
    """Every exported name is in the README (#12 finding 4): nothing public is undocumented."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [
        name
        for name in rightsizing_constructs.__all__
        if name != "__version__" and not re.search(rf"\b{name}\b", readme)
    ]
    assert missing == []
