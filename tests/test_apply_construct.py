"""The Apply workflow in the template: rule, definition, IAM, ledger, modes and deployment."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import aws_cdk as cdk
import botocore.session
import pytest
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk.assertions import Match, Template
from botocore.retries.standard import ThrottledRetryableChecker
from botocore.stub import Stubber
from rightsizing_runtime import apply, apply_steps

from rightsizing_constructs import ApplyMode, Deployment
from tests import test_apply_steps as t
from tests.infra import (
    ACCOUNT,
    REGION,
    as_list,
    definition,
    endpoint_input,
    rightsizing,
    stack,
    statements_of,
)

ENDPOINT_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/fraud-scoring"
# Every config the library creates is named <endpoint>-rs-<hash>.
NEW_CONFIGS = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/*-rs-*"


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.from_stack(cdk.Stack.of(rightsizing()))


@pytest.fixture(scope="module")
def states(template: Template) -> dict[str, Any]:
    return dict(definition(template, "apply")["States"])


def _trigger_patterns(template: Template) -> list[dict[str, Any]]:
    """The branches of the engine's rule for the library's events (an EventBridge $or)."""
    [rule] = [
        r
        for k, r in template.find_resources("AWS::Events::Rule").items()
        if k.startswith("RightsizingEngineRequests")
    ]
    pattern = rule["Properties"]["EventPattern"]
    if "$or" in pattern:
        assert list(pattern) == ["$or"]  # nothing outside the branches narrows them all
    return list(pattern.get("$or", [pattern]))


def test_apply_recommendations_reach_the_apply_workflow(
    template: Template, states: dict[str, Any]
) -> None:
    # The engine's rule hears every apply recommendation; Route keeps its endpoints' own
    # (tests/test_route.py) and hands them on with the endpoint's apply settings.
    assert {
        "source": ["rightsizing-constructs"],
        "detail-type": ["Rightsizing Recommendation"],
        "detail": {"action": ["apply"]},
    } in _trigger_patterns(template)
    recommend = definition(template)["States"]
    [to_apply] = [
        c for c in recommend["RouteAction"]["Choices"] if c.get("StringEquals") == "apply"
    ]
    assert to_apply == {
        "Variable": "$.route.action",
        "StringEquals": "apply",
        "Next": "StartApply",
    }
    start = recommend["StartApply"]
    assert start["Resource"] == "arn:aws:states:::states:startExecution"
    assert start["Parameters"]["Input"] == {
        "recommendation.$": "$.recommendation",
        "settings.$": "$.apply_settings",
    }
    assert "RightsizingEngineApplyStateMachine" in start["Parameters"]["StateMachineArn"]
    # The lock outlives the machine's path from AcquireLock on by an hour (the approval wait
    # of ApplyMode.APPROVAL, up to 30 days, comes before it; tests/test_apply_interrupted.py).
    timeout = definition(template, "apply")["TimeoutSeconds"] - 30 * 86400
    assert endpoint_input(template)["apply_settings"] == {
        "endpoint_name": "fraud-scoring",
        "variant_name": "AllTraffic",
        "lock_seconds": timeout + 3600,
    }


def test_recommend_only_applies_nothing() -> None:
    construct = rightsizing(apply_mode=ApplyMode.RECOMMEND_ONLY)
    template = Template.from_stack(cdk.Stack.of(construct))
    assert construct.apply_settings is None
    assert endpoint_input(template).get("apply_settings") is None
    assert all(
        p["detail-type"] != ["Rightsizing Recommendation"] for p in _trigger_patterns(template)
    )
    # The shared Apply workflow exists, but its function may change no endpoint.
    granted = _granted(template)
    assert "sagemaker:UpdateEndpoint" not in granted or granted["sagemaker:UpdateEndpoint"] == [
        NEW_CONFIGS
    ]
    assert "sagemaker:DescribeEndpoint" not in granted


def test_order_of_the_apply_steps(states: dict[str, Any], template: Template) -> None:
    assert definition(template, "apply")["StartAt"] == "CheckApplyInput"
    assert states["CheckApplyInput"]["Choices"][0]["Next"] == "NeedsApproval"
    # ApplyMode.APPROVAL waits first (tests/test_approval_construct.py); AUTO goes on at once.
    assert states["NeedsApproval"]["Default"] == "AcquireLock"
    assert states["CheckApplyInput"]["Default"] == "InvalidApplyInput"
    # One machine for both kinds (issue 17): after the lock, an inference component's run takes
    # its own steps; everything else goes on to the endpoint's.
    assert states["AcquireLock"]["Next"] == "ApplyKind"
    [component] = states["ApplyKind"]["Choices"]
    assert component["And"] == [
        {"Variable": "$.recommendation.kind", "IsPresent": True},
        {"Variable": "$.recommendation.kind", "StringEquals": "inference-component"},
    ]
    assert component["Next"] == "ComponentSnapshot"
    assert states["ApplyKind"]["Default"] == "Snapshot"
    assert states["Snapshot"]["Next"] == "AlreadyApplied"
    # Already applied: only a dead run's missing autoscaling to restore (EnsureAutoscaling).
    assert [c["Next"] for c in states["AlreadyApplied"]["Choices"]] == [
        "EnsureAutoscaling",
        "Record",
    ]
    assert states["AlreadyApplied"]["Default"] == "CreateConfig"
    assert states["CreateConfig"]["Next"] == "DeregisterFirst"
    assert states["DeregisterFirst"]["Choices"] == [
        {"Variable": "$.snapshot.deregister_first", "BooleanEquals": True, "Next": "Deregister"}
    ]
    assert states["DeregisterFirst"]["Default"] == "UpdateEndpoint"
    assert states["Deregister"]["Next"] == "UpdateEndpoint"
    assert states["UpdateEndpoint"]["Next"] == "StartWatching"
    assert states["CheckUpdate"]["Next"] == "UpdateFinished"
    assert states["UpdateFinished"]["Default"] == "EnsureAutoscaling"
    assert states["EnsureAutoscaling"]["Next"] == "Record"
    assert states["Record"]["Next"] == "Notify"


def test_order_of_the_inference_component_steps(states: dict[str, Any]) -> None:
    """ComponentSnapshot -> ComponentAlreadyApplied? -> UpdateComponent -> watch -> Ensure ->
    Record: no Deregister (the scalable target stays registered through an IC update)."""
    assert states["ComponentSnapshot"]["Next"] == "ComponentAlreadyApplied"
    assert [c["Next"] for c in states["ComponentAlreadyApplied"]["Choices"]] == [
        "EnsureComponentAutoscaling",
        "Record",
    ]
    assert states["ComponentAlreadyApplied"]["Default"] == "UpdateComponent"
    assert states["UpdateComponent"]["Next"] == "StartWatchingComponent"
    assert states["CheckComponent"]["Next"] == "ComponentUpdateFinished"
    assert states["ComponentUpdateFinished"]["Default"] == "EnsureComponentAutoscaling"
    assert states["EnsureComponentAutoscaling"]["Next"] == "Record"
    # Before the update: record; after it: make autoscaling match what the IC runs.
    assert [c["Next"] for c in states["ComponentSnapshot"]["Catch"]] == ["Record"]
    for name in ("UpdateComponent", "CheckComponent"):
        assert [c["Next"] for c in states[name]["Catch"]] == ["EnsureComponentAutoscaling"]
    assert [c["Next"] for c in states["EnsureComponentAutoscaling"]["Catch"]] == ["Record"]
    assert [r["ErrorEquals"] for r in states["EnsureComponentAutoscaling"]["Retry"]][-2:] == [
        ["ComponentBusyError"],
        ["States.ALL"],
    ]
    # A cleanup of an interrupted IC run repairs the IC's autoscaling.
    assert states["Repair"]["Choices"][0]["Next"] == "EnsureComponentAutoscaling"
    assert states["Notify"]["Next"] == "PublishOutcome"
    assert states["PublishOutcome"]["Next"] == "ReleaseLock"
    assert states["ReleaseLock"]["Next"] == "Finished"


@pytest.mark.parametrize(
    ("state", "target"),
    [
        ("AcquireLock", "Record"),
        ("Snapshot", "Record"),
        ("CreateConfig", "Record"),
        ("Deregister", "EnsureAutoscaling"),
        ("UpdateEndpoint", "EnsureAutoscaling"),
        ("CheckUpdate", "EnsureAutoscaling"),
        ("EnsureAutoscaling", "Record"),
    ],
)
def test_failures_before_a_change_are_recorded_after_one_compensated(
    states: dict[str, Any], state: str, target: str
) -> None:
    assert states[state]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": target}
    ]


def test_the_lock_is_released_on_every_path(states: dict[str, Any]) -> None:
    assert states["Notify"]["Catch"][0]["Next"] == "PublishOutcome"
    assert states["PublishOutcome"]["Catch"][0]["Next"] == "ReleaseLock"
    assert states["Record"]["Catch"][0]["Next"] == "RecordFailed"
    assert states["RecordFailed"]["Next"] == "Notify"
    assert states["ReleaseLock"]["Catch"][0]["Next"] == "Finished"


def test_the_outcome_is_published_on_the_engines_bus(states: dict[str, Any]) -> None:
    """README, "The apply outcome event": what a hub account's fleet view hears of applies."""
    publish = states["PublishOutcome"]
    assert publish["Resource"].endswith(":states:::events:putEvents")
    [entry] = publish["Parameters"]["Entries"]
    assert entry["Source"] == "rightsizing-constructs"
    assert entry["DetailType"] == "Rightsizing Apply Outcome"
    assert entry["Detail"] == {
        "endpoint_name.$": "$.settings.endpoint_name",
        "variant_name.$": "$.settings.variant_name",
        "outcome.$": "$.outcome.result",
        "reason.$": "$.outcome.reason",
        "execution.$": "$$.Execution.Id",
    }
    assert publish["ResultPath"] is None  # the run's state goes on to ReleaseLock unchanged
    [retry] = publish["Retry"]
    assert retry["ErrorEquals"] == ["States.TaskFailed"]


def test_ensure_autoscaling_waits_out_an_update(states: dict[str, Any]) -> None:
    retries = {tuple(r["ErrorEquals"]): r for r in states["EnsureAutoscaling"]["Retry"]}
    assert retries[("EndpointBusyError",)]["MaxAttempts"] >= 60
    assert retries[("States.ALL",)]["MaxAttempts"] >= 3


def test_every_step_runs_in_the_apply_step_function(states: dict[str, Any]) -> None:
    steps = {
        name: s["Parameters"]["step"]
        for name, s in states.items()
        if s["Type"] == "Task" and "step" in s.get("Parameters", {})
    }
    assert steps == {
        "AcquireLock": "acquire_lock",
        "Snapshot": "snapshot",
        "CreateConfig": "create_config",
        "Deregister": "deregister",
        "UpdateEndpoint": "update",
        "CheckUpdate": "check_update",
        "EnsureAutoscaling": "ensure_autoscaling",
        "Record": "record",
        "ReleaseLock": "release_lock",
        "TakeOver": "take_over",
        "RequestApproval": "request_approval",
        "ComponentSnapshot": "component_snapshot",
        "UpdateComponent": "component_update",
        "CheckComponent": "component_check",
        "EnsureComponentAutoscaling": "component_ensure_autoscaling",
    }
    assert set(steps.values()) == set(apply_steps.STEPS)
    # WaitForApproval's payload (a .waitForTaskToken task) names its step too.
    assert states["WaitForApproval"]["Parameters"]["Payload"]["step"] == "await_approval"


def _granted(template: Template) -> dict[str, list[Any]]:
    granted: dict[str, list[Any]] = {}
    for statement in statements_of(template, "RightsizingEngineApplyStepRole"):
        for action in as_list(statement["Action"]):
            granted.setdefault(action, []).extend(as_list(statement["Resource"]))
    return granted


def test_apply_role_is_scoped(template: Template) -> None:
    granted = _granted(template)
    assert sorted(granted["sagemaker:UpdateEndpoint"]) == sorted([ENDPOINT_ARN, NEW_CONFIGS])
    assert granted["sagemaker:CreateEndpointConfig"] == [NEW_CONFIGS]
    assert granted["sagemaker:DescribeEndpoint"] == [ENDPOINT_ARN]
    assert granted["cloudwatch:PutMetricAlarm"] == [
        f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:TargetTracking-endpoint/*",
        f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:TargetTracking-inference-component/*",
    ]
    # No inference component registered: none may be read or changed.
    assert "sagemaker:UpdateInferenceComponent" not in granted
    assert granted["ec2:DescribeInstanceTypes"] == ["*"]  # no resource-level permissions
    [ledger] = granted["dynamodb:PutItem"]
    assert ledger.startswith("<RightsizingEngineLedger")
    assert "iam:PassRole" not in granted
    assert "sagemaker:DeleteEndpointConfig" not in granted  # invariant 2: never deleted


def test_ledger_table(template: Template) -> None:
    template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": Match.object_like(
                {
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    "BillingMode": "PAY_PER_REQUEST",
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    "SSESpecification": {"SSEEnabled": True},
                }
            ),
            "DeletionPolicy": "Retain",
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "rightsizing_runtime.apply_steps.handler",
            "Environment": {"Variables": {"LEDGER_TABLE_NAME": {"Ref": Match.any_value()}}},
        },
    )


def test_bring_your_own_ledger() -> None:
    scope = stack()
    table = dynamodb.Table.from_table_name(scope, "Mine", "rightsizing-ledger")
    construct = rightsizing(scope, ledger_table=table)
    assert construct.engine.ledger_table is table
    Template.from_stack(scope).resource_count_is("AWS::DynamoDB::Table", 0)


def test_deployment_is_passed_to_update_endpoint() -> None:
    construct = rightsizing(
        deployment=Deployment.canary(
            percent=10, wait=cdk.Duration.minutes(10), rollback_alarms=["fraud-5xx"]
        )
    )
    settings = endpoint_input(Template.from_stack(cdk.Stack.of(construct)))["apply_settings"]
    assert settings["deployment_config"] == {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 600,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
            }
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "fraud-5xx"}]},
    }


def test_default_deployment_is_sagemakers() -> None:
    assert Deployment.all_at_once().render() is None
    assert Deployment.linear(step_percent=20, wait=cdk.Duration.minutes(5)).render() == {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "LINEAR",
                "WaitIntervalInSeconds": 300,
                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 20},
            }
        }
    }


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Deployment.canary(percent=0, wait=cdk.Duration.minutes(1)), "percent must be"),
        # SageMaker's limits (TrafficRoutingConfig): a canary at most 50 %, a linear step 10-50 %.
        (
            lambda: Deployment.canary(percent=51, wait=cdk.Duration.minutes(1)),
            r"^Invalid EndpointRightsizing settings:\n  - deployment: percent must be a whole "
            r"number from 1 to 50 for a canary",
        ),
        (
            lambda: Deployment.linear(step_percent=9, wait=cdk.Duration.minutes(1)),
            "step_percent must be a whole number from 10 to 50 for a linear",
        ),
        (
            lambda: Deployment.linear(step_percent=51, wait=cdk.Duration.minutes(1)),
            "step_percent must be a whole number from 10 to 50",
        ),
        (lambda: Deployment.linear(step_percent=10, wait=cdk.Duration.hours(2)), "wait must be"),
        (
            lambda: Deployment.all_at_once(rollback_alarms=[f"a{i}" for i in range(11)]),
            "at most 10",
        ),
        (lambda: rightsizing(apply_mode="auto"), "apply_mode must be ApplyMode"),
        (lambda: rightsizing(deployment="canary"), "deployment must be a Deployment"),
    ],
)
def test_apply_settings_are_validated(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        built = build()
        if isinstance(built, Deployment):  # its problems are reported by the construct
            rightsizing(deployment=built)


def test_recommend_only_refuses_a_deployment_it_would_never_use() -> None:
    with pytest.raises(
        ValueError, match=r"deployment applies to ApplyMode\.AUTO and APPROVAL only"
    ):
        rightsizing(
            apply_mode=ApplyMode.RECOMMEND_ONLY,
            deployment=Deployment.linear(step_percent=20, wait=cdk.Duration.minutes(5)),
        )


def test_rollback_alarms_may_be_alarms_or_names() -> None:
    scope = stack()
    alarm = cloudwatch.Alarm(
        scope,
        "Errors",
        metric=cloudwatch.Metric(namespace="AWS/SageMaker", metric_name="Invocation5XXErrors"),
        threshold=1,
        evaluation_periods=1,
    )
    construct = rightsizing(
        scope, deployment=Deployment.all_at_once(rollback_alarms=[alarm, "team-alarm"])
    )
    assert construct.apply_settings is not None
    alarms = construct.apply_settings["deployment_config"]["AutoRollbackConfiguration"]["Alarms"]
    assert scope.resolve(alarms) == [
        {"AlarmName": {"Ref": scope.get_logical_id(alarm.node.default_child)}},
        {"AlarmName": "team-alarm"},
    ]
    Template.from_stack(scope)  # the alarm's name is a token in the rule input: synthesizes


@pytest.mark.parametrize(
    "build",
    [
        lambda: Deployment.canary(percent=1, wait=cdk.Duration.minutes(1)),
        lambda: Deployment.canary(percent=50, wait=cdk.Duration.minutes(1)),
        lambda: Deployment.linear(step_percent=10, wait=cdk.Duration.minutes(1)),
        lambda: Deployment.linear(step_percent=50, wait=cdk.Duration.minutes(1)),
    ],
)
def test_traffic_shifts_at_sagemakers_limits_are_accepted(build: Any) -> None:
    assert build().render() is not None


def test_failed_applies_alarm_notifies_the_topic(template: Template) -> None:
    # Failed, timed-out and aborted executions all count (tests/test_apply_interrupted.py).
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Metrics": Match.array_with(
                [
                    Match.object_like(
                        {
                            "MetricStat": Match.object_like(
                                {
                                    "Metric": {
                                        "MetricName": "ExecutionsFailed",
                                        "Namespace": "AWS/States",
                                        "Dimensions": [
                                            {
                                                "Name": "StateMachineArn",
                                                "Value": {"Ref": Match.string_like_regexp("Apply")},
                                            }
                                        ],
                                    }
                                }
                            )
                        }
                    )
                ]
            ),
            "AlarmActions": [{"Ref": Match.string_like_regexp("RightsizingEngineTopic")}],
        },
    )


# -- Every transient error of every step is retried (issue 19) -----------------------------------
#
# Lambda reports a handler's exception by its class name (errorType). The ApplyStep handler
# raises TransientAwsError for what is worth retrying (aws.retryable_errors_typed), and each
# step's Retry must match the name that really reaches Step Functions. So each step runs for
# real, its clients stubbed, up to each AWS call it makes; that call then fails with each
# transient error the operation can return, and the step's Retry must match what the handler
# raised. A step that swallows the error (or takes it for a final answer) fails here too.

#: Transient by AWS's own description, though botocore's retry lists do not name them (HTTP 400).
_TRANSIENT_MODELED = {
    # Application Auto Scaling API Reference: "Concurrent updates caused an exception, for
    # example, if you request an update to an Application Auto Scaling resource that already
    # has a pending update."
    "ConcurrentUpdateException",
    # DynamoDB API Reference: "Operation was rejected because there is an ongoing transaction
    # for the item."
    "TransactionConflictException",
    # DynamoDB: "being modified by a request in another Region"; botocore's model marks it
    # retryable (standard mode's ModeledRetryableChecker, which needs the operation's model).
    "ReplicatedWriteConflictException",
}
#: The services' internal errors, HTTP 500 (their API references; Smithy models' httpError).
_INTERNAL = {
    "InternalServerError",
    "InternalServiceException",
    "KMSInternalException",
    "DependencyTimeoutException",
}


def _transient_errors(service: str, operation: str) -> list[tuple[str, int]]:
    """Each transient error ``operation`` can fail with: (code, HTTP status)."""
    model = botocore.session.get_session().get_service_model(service)
    modeled = {shape.name for shape in model.operation_model(operation).error_shapes}
    errors = [("ThrottlingException", 400), ("InternalFailure", 500), ("ServiceUnavailable", 503)]
    errors += [
        (c, 400) for c in sorted(modeled & set(ThrottledRetryableChecker._THROTTLED_ERROR_CODES))
    ]
    errors += [(c, 500) for c in sorted(modeled & _INTERNAL)]
    errors += [(c, 400) for c in sorted(modeled & _TRANSIENT_MODELED)]
    return sorted(set(errors))


#: Step name -> (the state, or the state after ``parts``, and its calls in order: client,
#: method, expected params, and how the call gets past to the next one: a response, or an error
#: code the step handles).
def _step_calls() -> dict[str, tuple[dict[str, Any], list[tuple[str, str, dict[str, Any], Any]]]]:
    alias_config = {**t.CONFIG, "KmsKeyId": "alias/fraud-volumes"}
    key = "arn:aws:kms:us-east-1:123456789012:key/1234"
    snapshot_state = t.state(settings={**t.SETTINGS, "kms_key_arns": [key]})
    ensured = apply.recommended_autoscaling(t.SNAPSHOT_AUTOSCALING, t.RECOMMENDATION)
    lock_read = {"TableName": "ledger", "Key": t.LOCK_KEY, "ConsistentRead": True}
    return {
        "AcquireLock": (
            t.state(),
            [
                ("dynamodb", "update_item", t.lock_write(), "ConditionalCheckFailedException"),
                ("dynamodb", "get_item", lock_read, {"Item": {"holder": {"S": t.DEAD}}}),
            ],
        ),
        "Snapshot": (
            snapshot_state,
            [
                ("sagemaker", "describe_endpoint", {"EndpointName": "fraud-scoring"},
                 t.describe_endpoint()),
                ("sagemaker", "describe_endpoint_config",
                 {"EndpointConfigName": "fraud-scoring-config-1"}, alias_config),
                ("kms", "describe_key", {"KeyId": "alias/fraud-volumes"},
                 {"KeyMetadata": {"KeyId": "1234", "Arn": key}}),
                ("sagemaker", "list_tags", {"ResourceArn": t.CONFIG_ARN}, {"Tags": []}),
                ("autoscaling", "describe_scalable_targets",
                 {"ServiceNamespace": "sagemaker", "ResourceIds": [t.RESOURCE_ID],
                  "ScalableDimension": t.DIMENSION}, {"ScalableTargets": []}),
                ("autoscaling", "describe_scaling_policies",
                 {"ServiceNamespace": "sagemaker", "ResourceId": t.RESOURCE_ID,
                  "ScalableDimension": t.DIMENSION}, {"ScalingPolicies": []}),
                ("dynamodb", "update_item",
                 t.store_request({**t.STORED, "autoscaling": None, "deregister_first": False,
                                  "new_config_name": t.NEW_CONFIG}), {}),
            ],
        ),
        "CreateConfig": (
            t.state(),
            [("sagemaker", "create_endpoint_config", t.create_request(),
              {"EndpointConfigArn": t.CONFIG_ARN})],
        ),
        "Deregister": (
            t.state(),
            [("autoscaling", "deregister_scalable_target", t.DEREGISTER, {})],
        ),
        "UpdateEndpoint": (
            t.state(**t.AFTER_UPDATE),
            [("sagemaker", "update_endpoint",
              {"EndpointName": "fraud-scoring", "EndpointConfigName": t.NEW_CONFIG,
               "RetainAllVariantProperties": True,
               "ExcludeRetainedVariantProperties": [
                   {"VariantPropertyType": "DesiredInstanceCount"}]},
              {"EndpointArn": t.ENDPOINT_ARN})],
        ),
        "CheckUpdate": (
            t.state(**t.AFTER_UPDATE),
            [("sagemaker", "describe_endpoint", {"EndpointName": "fraud-scoring"},
              t.describe_endpoint())],
        ),
        "EnsureAutoscaling": (
            t.state(**t.AFTER_UPDATE),
            [
                ("sagemaker", "describe_endpoint", {"EndpointName": "fraud-scoring"},
                 t.describe_endpoint(config=t.NEW_CONFIG)),
                ("autoscaling", "register_scalable_target",
                 apply.register_request("fraud-scoring", "AllTraffic", ensured), {}),
                *[("autoscaling", "put_scaling_policy", request, {"PolicyARN": "arn:x"})
                  for request in apply.policy_requests("fraud-scoring", "AllTraffic", ensured)],
            ],
        ),
        "Record": (
            t.state(),
            [("dynamodb", "put_item", t.record_request("failed"), {})],
        ),
        "ReleaseLock": (
            t.state(),
            [("dynamodb", "delete_item", t.lock_release(), {})],
        ),
        "ReleaseLock (snapshot kept)": (
            t.state(**t.AFTER_UPDATE),
            [("dynamodb", "update_item", t.lock_expiry(), {})],
        ),
        "TakeOver": (
            t.interrupted(),
            [("dynamodb", "update_item", t.take_over_request(execution=t.EXECUTION), {})],
        ),
    }  # fmt: skip


_EXECUTION = t.EXECUTION
_SERVICES = {
    "sagemaker": "sagemaker",
    "autoscaling": "application-autoscaling",
    "dynamodb": "dynamodb",
    "kms": "kms",
}


def _raised_at(
    step: str,
    calls: list[tuple[str, str, dict[str, Any], Any]],
    state: dict[str, Any],
    failing: int,
    code: str,
    status: int,
) -> BaseException | None:
    """What the ApplyStep handler raises when call ``failing`` fails with ``code``."""
    stubbers = {name: Stubber(getattr(apply_steps, name)) for name in _SERVICES}
    for index, (client, method, params, passes) in enumerate(calls[: failing + 1]):
        if index == failing:
            stubbers[client].add_client_error(method, code, "m", status, expected_params=params)
        elif isinstance(passes, str):
            stubbers[client].add_client_error(method, passes, "m", expected_params=params)
        else:
            stubbers[client].add_response(method, passes, params)
    for stubber in stubbers.values():
        stubber.activate()
    try:
        apply_steps.handler({"step": step, "state": state, "execution_arn": _EXECUTION})
    except Exception as error:  # what reaches Step Functions is the result
        return error
    finally:
        for stubber in stubbers.values():
            stubber.deactivate()
    return None


@pytest.mark.parametrize("step", list(_step_calls()))
def test_transient_errors_of_each_step_are_retried(
    states: dict[str, Any], step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ReleaseLock above all: a release that is not retried leaves the lock for its whole
    # lifetime (the worst case plus an hour), and every other run is rejected meanwhile.
    monkeypatch.setenv("LEDGER_TABLE_NAME", "ledger")
    monkeypatch.setattr(apply_steps, "time", SimpleNamespace(time=lambda: t.NOW))
    monkeypatch.setattr(apply_steps, "datetime", t.FrozenDatetime)
    name = step.split(" ")[0]
    retried = {e for retrier in states[name]["Retry"] for e in retrier["ErrorEquals"]}
    state, calls = _step_calls()[step]
    handler_step = states[name]["Parameters"]["step"]
    not_retried = []
    for failing, (client, method, _params, _passes) in enumerate(calls):
        operation = getattr(apply_steps, client).meta.method_to_api_mapping[method]
        for code, status in _transient_errors(_SERVICES[client], operation):
            raised = _raised_at(handler_step, calls, state, failing, code, status)
            seen = "nothing" if raised is None else type(raised).__name__
            if not ({seen, "States.ALL"} & retried):
                not_retried.append(
                    f"{operation} {code} ({status}) reached Step Functions as {seen}"
                )
    assert not_retried == [], f"{step} does not retry: " + "; ".join(not_retried)
