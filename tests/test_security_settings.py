"""The engine's security settings: customer managed key, reserved concurrency, VPC, dead letters."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Annotations, Match, Template

from rightsizing_constructs import EndpointRightsizing, LatencySlo, RightsizingEngine
from tests.infra import resolve_tokens, rightsizing, stack


def engine_template(**settings: Any) -> Template:
    scope = stack()
    rightsizing(scope, engine=RightsizingEngine(scope, "RightsizingEngine", **settings))
    return Template.from_stack(scope)


def key_and_template() -> tuple[str, Template]:
    scope = stack()
    key = kms.Key(scope, "Key", enable_key_rotation=True)
    rightsizing(scope, engine=RightsizingEngine(scope, "RightsizingEngine", encryption_key=key))
    template = Template.from_stack(scope)
    [key_id] = template.find_resources("AWS::KMS::Key")
    return key_id, template


def test_by_default_the_table_uses_an_aws_managed_key_and_the_topic_its_own_key() -> None:
    """CloudWatch alarms cannot publish to a topic under alias/aws/sns (its key policy cannot
    let them): the engine gives its topic a customer managed key they may use."""
    template = engine_template()
    template.has_resource_properties(
        "AWS::DynamoDB::Table", {"SSESpecification": {"SSEEnabled": True}}
    )
    [(key_id, key)] = template.find_resources("AWS::KMS::Key").items()
    assert key_id.startswith("RightsizingEngineTopicKey")
    assert key["Properties"]["EnableKeyRotation"] is True
    template.has_resource_properties(
        "AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]}}
    )
    assert "alias/aws/sns" not in json.dumps(template.to_json())
    template.resource_properties_count_is("AWS::Logs::LogGroup", {"KmsKeyId": Match.any_value()}, 0)


def alarms_may_publish(template: Template, topic_ref: dict[str, Any]) -> None:
    """The topic's policy lets this account's CloudWatch alarms publish (the TLS Deny stays)."""
    [policy] = [
        p
        for p in template.find_resources("AWS::SNS::TopicPolicy").values()
        if topic_ref in p["Properties"]["Topics"]
    ]
    by_sid = {s.get("Sid"): s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    publish = by_sid["CloudWatchAlarmsPublish"]
    assert publish["Effect"] == "Allow"
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publish["Action"] == "sns:Publish"
    assert publish["Resource"] == topic_ref
    assert resolve_tokens(publish["Condition"]) == {
        "ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:*"}
    }


def key_lets_alarms_publish(template: Template, key_id: str) -> None:
    statements = template.find_resources("AWS::KMS::Key")[key_id]["Properties"]["KeyPolicy"][
        "Statement"
    ]
    [alarms] = [s for s in statements if s.get("Sid") == "CloudWatchAlarmsUseForTopic"]
    assert alarms == {
        "Sid": "CloudWatchAlarmsUseForTopic",
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
    }


def test_the_engines_alarms_can_reach_the_topic_it_creates() -> None:
    template = engine_template()
    [topic_id] = template.find_resources("AWS::SNS::Topic")
    [key_id] = template.find_resources("AWS::KMS::Key")
    alarms_may_publish(template, {"Ref": topic_id})
    key_lets_alarms_publish(template, key_id)


def test_a_topic_the_app_creates_gets_the_same_statements_and_grants() -> None:
    scope = stack()
    key = kms.Key(scope, "TeamKey", enable_key_rotation=True)
    topic = sns.Topic(scope, "TeamTopic", master_key=key, enforce_ssl=True)
    rightsizing(scope, engine=RightsizingEngine(scope, "RightsizingEngine", topic=topic))
    template = Template.from_stack(scope)
    [topic_id] = template.find_resources("AWS::SNS::Topic")
    [key_id] = template.find_resources("AWS::KMS::Key")
    alarms_may_publish(template, {"Ref": topic_id})
    key_lets_alarms_publish(template, key_id)
    # Both workflows publish to it: each role may use its key (KMS checks IAM and key policy).
    assert kms_users(template, key_id) == {
        "RightsizingEngineStateMachineRole",
        "RightsizingEngineApplyStateMachineRole",
    }


def test_an_imported_topic_and_key_get_the_grants_and_a_warning_naming_the_statements() -> None:
    scope = stack()
    topic = sns.Topic.from_topic_attributes(
        scope,
        "Alerts",
        topic_arn="arn:aws:sns:us-east-1:123456789012:platform-alerts",
        key_arn="arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    )
    rightsizing(scope, engine=RightsizingEngine(scope, "RightsizingEngine", topic=topic))
    warnings = Annotations.from_stack(scope).find_warning("*", Match.any_value())
    texts = [str(w.entry.data) for w in warnings]
    [policy_warning] = [t for t in texts if "rightsizing-constructs:topicPolicyNotVisible" in t]
    assert '"Principal": {"Service": "cloudwatch.amazonaws.com"}' in policy_warning
    assert "arn:aws:sns:us-east-1:123456789012:platform-alerts" in policy_warning
    [key_warning] = [t for t in texts if "rightsizing-constructs:topicKeyPolicyNotVisible" in t]
    assert '"Action": ["kms:Decrypt", "kms:GenerateDataKey*"]' in key_warning
    template = Template.from_stack(scope)
    granted = {
        (r["Ref"].rstrip("0123456789ABCDEF"), json.dumps(s["Resource"]))
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
        for r in policy["Properties"]["Roles"]
    }
    key_arn = json.dumps(
        "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    )
    assert granted == {
        ("RightsizingEngineStateMachineRole", key_arn),
        ("RightsizingEngineApplyStateMachineRole", key_arn),
    }


def test_a_topic_under_the_aws_managed_sns_key_is_refused() -> None:
    scope = stack()
    topic = sns.Topic.from_topic_attributes(
        scope,
        "Alerts",
        topic_arn="arn:aws:sns:us-east-1:123456789012:platform-alerts",
        key_arn="arn:aws:kms:us-east-1:123456789012:alias/aws/sns",
    )
    with pytest.raises(ValueError, match="AWS managed key alias/aws/sns"):
        RightsizingEngine(scope, "RightsizingEngine", topic=topic)


def kms_users(template: Template, key_id: str) -> set[str]:
    users = set()
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]}:
                assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
                users |= {
                    r["Ref"].rstrip("0123456789ABCDEF") for r in policy["Properties"]["Roles"]
                }
    return users


def test_a_customer_managed_key_encrypts_everything_the_engine_creates() -> None:
    key_id, template = key_and_template()
    key_arn = {"Fn::GetAtt": [key_id, "Arn"]}
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {"SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_arn}},
    )
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": key_arn})
    log_groups = template.find_resources("AWS::Logs::LogGroup")
    assert log_groups and all(g["Properties"]["KmsKeyId"] == key_arn for g in log_groups.values())
    # The functions with an environment (the ledger's name: JobSlots, StartJob, ApplyStep; the
    # registry's values: Route) encrypt it with the key.
    template.resource_properties_count_is("AWS::Lambda::Function", {"KmsKeyArn": key_arn}, 4)


def test_the_key_policy_lets_logs_of_this_account_and_alarms_use_the_key() -> None:
    key_id, template = key_and_template()
    statements = template.find_resources("AWS::KMS::Key")[key_id]["Properties"]["KeyPolicy"][
        "Statement"
    ]
    by_sid = {s.get("Sid"): s for s in statements}
    logs = by_sid["CloudWatchLogsOfThisAccount"]
    assert "kms:EncryptionContext:aws:logs:arn" in json.dumps(logs["Condition"])
    # The key encrypts the topic too: the alarms' statement, as the Knowledge Center gives it.
    key_lets_alarms_publish(template, key_id)


def test_the_roles_that_write_encrypted_resources_may_use_the_key() -> None:
    key_id, template = key_and_template()
    assert kms_users(template, key_id) == {
        "RightsizingEngineStateMachineRole",
        "RightsizingEngineApplyStateMachineRole",
        "RightsizingEngineJobSlotsRole",
        "RightsizingEngineStartJobRole",  # pending recommendations
        "RightsizingEngineApplyStepRole",
    }


def test_reserved_concurrency_is_set_on_every_function() -> None:
    template = engine_template(reserved_concurrency=4)
    functions = template.find_resources("AWS::Lambda::Function")
    assert len(functions) == 6
    assert all(f["Properties"]["ReservedConcurrentExecutions"] == 4 for f in functions.values())


@pytest.mark.parametrize("value", [0, -1, 2.5, True])
def test_reserved_concurrency_must_be_a_positive_whole_number(value: Any) -> None:
    scope = stack()
    with pytest.raises(ValueError, match="reserved_concurrency must be a whole number"):
        RightsizingEngine(scope, "RightsizingEngine", reserved_concurrency=value)


def test_functions_run_in_the_vpc_with_network_interface_permissions() -> None:
    scope = stack()
    vpc = ec2.Vpc.from_vpc_attributes(
        scope,
        "Vpc",
        vpc_id="vpc-1",
        availability_zones=["us-east-1a"],
        private_subnet_ids=["subnet-1"],
        private_subnet_route_table_ids=["rtb-1"],
    )
    rightsizing(scope, engine=RightsizingEngine(scope, "RightsizingEngine", vpc=vpc))
    template = Template.from_stack(scope)
    functions = template.find_resources("AWS::Lambda::Function")
    assert all(
        f["Properties"]["VpcConfig"]["SubnetIds"] == ["subnet-1"] for f in functions.values()
    )
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Action": Match.array_with(["ec2:CreateNetworkInterface"])}
                        )
                    ]
                )
            }
        },
    )


def test_subnets_without_a_vpc_are_rejected() -> None:
    scope = stack()
    with pytest.raises(ValueError, match="vpc_subnets needs vpc"):
        RightsizingEngine(
            scope,
            "RightsizingEngine",
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        )


def test_every_rule_target_and_asynchronous_function_has_the_dead_letter_queue() -> None:
    scope = stack()
    rightsizing(scope, schedule=cdk.aws_events.Schedule.rate(cdk.Duration.days(1)))
    template = Template.from_stack(scope)
    [queue_id] = template.find_resources("AWS::SQS::Queue")
    queue_arn = {"Fn::GetAtt": [queue_id, "Arn"]}
    targets = [
        t
        for r in template.find_resources("AWS::Events::Rule").values()
        for t in r["Properties"]["Targets"]
    ]
    # The endpoint's trigger, the schedule, the orphaned-job pair, the interrupted-apply one.
    assert len(targets) == 5
    assert all(t["DeadLetterConfig"] == {"Arn": queue_arn} for t in targets)
    assert all(t["RetryPolicy"]["MaximumRetryAttempts"] == 8 for t in targets)
    with_dead_letters = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"DeadLetterConfig": {"TargetArn": queue_arn}}}
    )
    assert sorted(k.rstrip("0123456789ABCDEF") for k in with_dead_letters) == [
        "RightsizingEngineJobSlots",
        "RightsizingEngineStopJob",
    ]


def test_the_dead_letter_queue_policy_stays_one_statement_for_a_fleet() -> None:
    """SQS allows 20 statements per policy: rules share one, however many endpoints there are."""
    scope = stack()
    engine = RightsizingEngine(scope, "RightsizingEngine")
    for i in range(30):
        EndpointRightsizing(
            scope,
            f"Endpoint{i}",
            engine=engine,
            endpoint_name=f"endpoint-{i}",
            model_package_version_arn=f"arn:aws:sagemaker:us-east-1:123456789012:model-package/m/{i}",
            slo=LatencySlo.p99(cdk.Duration.millis(100)),
            peak_requests_per_minute=100,
        )
    template = Template.from_stack(scope)
    [policy] = template.find_resources("AWS::SQS::QueuePolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert [s.get("Sid") for s in statements if s["Effect"] == "Allow"] == [
        "EventBridgeRulesOfThisAccount"
    ]
    assert len(statements) == 2  # and the TLS-only deny


def test_the_dead_letter_queue_alarms_on_its_first_message() -> None:
    template = engine_template()
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Threshold": 1,
            "AlarmActions": [Match.any_value()],
        },
    )
