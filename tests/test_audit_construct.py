"""UtilizationAudit: its schedule and input, its grants, validation; the AuditFinding trigger."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_events as events
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from rightsizing_constructs import (
    AuditFinding,
    LatencySlo,
    LookbackPeriod,
    UtilizationAudit,
    UtilizationBand,
    UtilizationPercentile,
)
from tests.infra import as_list, registry, rightsizing, stack


def audit_template(**settings: Any) -> Template:
    scope = stack()
    UtilizationAudit(scope, "Audit", **settings)
    return Template.from_stack(scope)


def audit_input(template: Template) -> dict[str, Any]:
    [rule] = [
        r
        for k, r in template.find_resources("AWS::Events::Rule").items()
        if k.startswith("AuditSchedule")
    ]
    [target] = rule["Properties"]["Targets"]
    return json.loads(target["Input"])


def audit_actions(template: Template) -> set[str]:
    actions: set[str] = set()
    for key, policy in template.find_resources("AWS::IAM::Policy").items():
        if key.startswith("AuditFunctionRole"):
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions |= set(as_list(statement["Action"]))
    return actions


def test_by_default_it_audits_every_endpoint_daily_over_14_days_at_p99() -> None:
    template = audit_template()
    [rule] = [
        r
        for k, r in template.find_resources("AWS::Events::Rule").items()
        if k.startswith("AuditSchedule")
    ]
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 day)"
    assert audit_input(template) == {
        "settings": {
            "endpoint_names": [],
            "tags": {},
            "lookback_days": 14,
            "percentile": "p99",
            "band": {"low": 60, "high": 80},
            "compute_optimizer": False,  # no slo: CDK leaves out a None
            "inference_components": [],
            "compute_optimizer_idle": False,
        }
    }
    [target] = rule["Properties"]["Targets"]
    assert "DeadLetterConfig" in target
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": "rightsizing_runtime.audit.handler", "Timeout": 900, "MemorySize": 512},
    )


def test_every_setting_reaches_the_audit_input() -> None:
    template = audit_template(
        endpoint_names=["fraud-scoring"],
        lookback=LookbackPeriod.DAYS_93,
        percentile=UtilizationPercentile.P95,
        band=UtilizationBand(low=50, high=70),
        slo=LatencySlo.p99(cdk.Duration.millis(250)),
        schedule=events.Schedule.rate(cdk.Duration.hours(6)),
        compute_optimizer=True,
        inference_components=["llama-ic", "Mistral-7b"],
        compute_optimizer_idle=True,
    )
    assert audit_input(template)["settings"] == {
        "endpoint_names": ["fraud-scoring"],
        "tags": {},
        "lookback_days": 93,
        "percentile": "p95",
        "band": {"low": 50, "high": 70},
        "slo": {"percentile": "P99", "max_latency_ms": 250},
        "compute_optimizer": True,
        "inference_components": ["llama-ic", "Mistral-7b"],
        "compute_optimizer_idle": True,
    }


def test_named_endpoints_are_described_by_name_and_nothing_is_listed() -> None:
    template = audit_template(endpoint_names=["fraud-scoring"])
    actions = audit_actions(template)
    assert "sagemaker:ListEndpoints" not in actions
    assert "tag:GetResources" not in actions
    assert "compute-optimizer:GetEC2InstanceRecommendations" not in actions
    assert "compute-optimizer:GetIdleRecommendations" not in actions
    assert "sagemaker:DescribeInferenceComponent" not in actions
    described = [
        statement["Resource"]
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Action"] == "sagemaker:DescribeEndpoint"
    ]
    assert "endpoint/fraud-scoring" in json.dumps(described)
    assert "endpoint/*" not in json.dumps(described)


def test_tags_use_the_tagging_api_and_all_endpoints_list_them() -> None:
    assert "tag:GetResources" in audit_actions(audit_template(tags={"team": "search"}))
    assert "sagemaker:ListEndpoints" in audit_actions(audit_template())


def test_compute_optimizer_is_granted_only_when_asked() -> None:
    actions = audit_actions(audit_template(compute_optimizer=True))
    assert {"compute-optimizer:GetEC2InstanceRecommendations", "ec2:DescribeInstances"} <= (actions)


def test_compute_optimizer_idle_is_granted_alone_on_every_resource() -> None:
    """GetIdleRecommendations has no resource-level permissions and no dependent action
    (Service Authorization Reference, AWS Compute Optimizer): ``*``, acknowledged for cdk-nag
    with the reason, and nothing else comes with it."""
    scope = stack()
    audit = UtilizationAudit(
        scope, "Audit", compute_optimizer_idle=True, inference_components=["llama-ic"]
    )
    template = Template.from_stack(scope)
    actions = audit_actions(template)
    assert "compute-optimizer:GetIdleRecommendations" in actions
    assert "compute-optimizer:GetEC2InstanceRecommendations" not in actions
    assert "ec2:DescribeInstances" not in actions
    [resource] = [
        statement["Resource"]
        for key, policy in template.find_resources("AWS::IAM::Policy").items()
        if key.startswith("AuditFunctionRole")
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "compute-optimizer:GetIdleRecommendations" in as_list(statement["Action"])
    ]
    assert resource == "*"
    reasons = [
        reason
        for construct in audit.node.find_all()
        for entry in construct.node.metadata
        if entry.type == "aws:cdk:acknowledged-rules"
        for rule, reason in entry.data.items()
        if rule == "Annotation::AwsSolutions-IAM5[Resource::*]"
    ]
    assert any("compute-optimizer:GetIdleRecommendations" in reason for reason in reasons)
    violations = AwsSolutionsChecks().validate_scope(scope.node.root).violations
    assert [v.rule_name for v in violations] == []


def test_inference_components_are_described_by_name_only() -> None:
    template = audit_template(
        endpoint_names=["llm-endpoint"], inference_components=["llama-ic", "Mistral-7b"]
    )
    [resources] = [
        statement["Resource"]
        for key, policy in template.find_resources("AWS::IAM::Policy").items()
        if key.startswith("AuditFunctionRole")
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Action"] == "sagemaker:DescribeInferenceComponent"
    ]
    text = json.dumps(resources)
    # SageMaker lowercases names in its ARNs.
    assert ":inference-component/llama-ic" in text
    assert ":inference-component/mistral-7b" in text
    assert "inference-component/*" not in text
    # Their metrics need nothing more than the endpoints' GetMetricData.
    assert "cloudwatch:GetMetricData" in audit_actions(template)


def test_findings_go_to_the_engine_ledger_and_bus() -> None:
    template = audit_template()
    [function] = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "rightsizing_runtime.audit.handler"}}
    ).values()
    environment = function["Properties"]["Environment"]["Variables"]
    assert environment["EVENT_BUS_NAME"] == "default"
    assert environment["LEDGER_TABLE_NAME"]["Ref"].startswith("RightsizingEngineLedger")
    actions = audit_actions(template)
    assert {"dynamodb:Query", "dynamodb:BatchWriteItem", "events:PutEvents"} <= actions


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"endpoint_names": ["a"], "tags": {"t": "v"}}, "give endpoint_names or tags, not both"),
        ({"endpoint_names": "a"}, "endpoint_names must be a list of names"),
        ({"tags": {"t": 1}}, "tags must map tag keys to values"),
        ({"lookback": 14}, "lookback must be a LookbackPeriod"),
        ({"percentile": "p99"}, "percentile must be a UtilizationPercentile"),
        ({"compute_optimizer": "yes"}, "compute_optimizer must be True or False"),
        ({"compute_optimizer_idle": 1}, "compute_optimizer_idle must be True or False"),
        ({"inference_components": "llama-ic"}, "inference_components must be a list of names"),
        (
            {"inference_components": ["llama_ic"]},
            r"inference_components must be inference component names known at synth time "
            r"\(1-63 letters, digits and hyphens.*got \['llama_ic'\]",
        ),
        ({"inference_components": ["-ic"]}, "inference_components must be inference component"),
        ({"inference_components": ["a" * 64]}, "inference_components must be inference component"),
        ({"inference_components": [""]}, "inference_components must be inference component"),
        (
            {"inference_components": ["a", "b", "a"]},
            r"inference_components must not repeat a name, got \['a'\] twice",
        ),
    ],
)
def test_bad_settings_are_rejected_with_what_was_received(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        UtilizationAudit(stack(), "Audit", **settings)


def test_a_token_is_not_an_inference_component_name() -> None:
    scope = stack()
    token = cdk.CfnParameter(scope, "Component").value_as_string
    with pytest.raises(ValueError, match="known at synth time"):
        UtilizationAudit(scope, "Audit", inference_components=[token])


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(ValueError) as raised:
        UtilizationAudit(stack(), "Audit", compute_optimizer="no", inference_components=["x_y"])
    message = str(raised.value)
    assert "compute_optimizer must be True or False" in message
    assert "inference_components must be inference component names" in message


@pytest.mark.parametrize(("low", "high"), [(80, 60), (0, 50), (50, 101)])
def test_the_band_must_be_ordered_percentages(low: float, high: float) -> None:
    with pytest.raises(ValueError, match="  - band: need 0 < low < high <= 100"):
        UtilizationAudit(stack(), "Audit", band=UtilizationBand(low=low, high=high))


def test_audit_finding_adds_a_branch_to_the_engine_rule() -> None:
    scope = stack()
    rightsizing(scope, audit_finding=AuditFinding())
    template = Template.from_stack(scope)
    [rule] = [
        r
        for k, r in template.find_resources("AWS::Events::Rule").items()
        if k.startswith("RightsizingEngineRequests")
    ]
    branches = rule["Properties"]["EventPattern"]["$or"]
    # The classes some endpoint listens to; Route keeps the endpoints that listen.
    assert {
        "source": ["rightsizing-constructs"],
        "detail-type": ["Rightsizing Finding"],
        "detail": {"classification": ["Overprovisioned", "Underprovisioned"]},
    } in branches
    [entry] = registry(template.to_json())
    assert entry["triggers"]["audit_classifications"] == ["Overprovisioned", "Underprovisioned"]


def test_audit_finding_classifications_are_checked() -> None:
    with pytest.raises(ValueError, match="  - audit_finding: classifications must be among"):
        rightsizing(audit_finding=AuditFinding(classifications=["Overprovisoned"]))
    with pytest.raises(ValueError, match="  - audit_finding: classifications must not be empty"):
        rightsizing(audit_finding=AuditFinding(classifications=[]))
