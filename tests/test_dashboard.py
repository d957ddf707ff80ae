"""The engine's metric helpers and its dashboards (issue #16).

GIVEN an engine with endpoints, WHEN an alarm uses a ``metric_*`` helper or the dashboards are
added, THEN the template names the runtime's namespace, dimensions and statistics, and each
dashboard stays within CloudWatch's quotas (``dashboard.py``'s docstring cites them).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk.assertions import Match, Template
from cdk_nag import NagPack

from rightsizing_constructs import RightsizingDashboard, RightsizingEngine
from rightsizing_constructs.dashboard import (
    FLEET_METRICS,
    FLEET_WIDGETS,
    MAX_ENDPOINTS_PER_DASHBOARD,
    MAX_METRICS_PER_DASHBOARD,
    MAX_METRICS_PER_WIDGET,
    MAX_WIDGETS_PER_DASHBOARD,
    METRICS_PER_ENDPOINT,
    WIDGETS_PER_ENDPOINT,
)
from tests.apps.every_option import NAG_PACKS
from tests.infra import rightsizing, stack
from tests.test_nag import findings

#: CloudFormation's template size through S3 ("CloudFormation quotas").
TEMPLATE_LIMIT_BYTES = 1_000_000
#: A budget for one body: neither botocore's model of PutDashboard nor CloudWatch's quotas page
#: states a DashboardBody size, so the test holds the largest allowed dashboard to 1 MB.
BODY_BUDGET_BYTES = 1_000_000
#: SageMaker's longest endpoint name (63 characters) appears this many times in a row: four
#: titles and seven metrics.
NAME_USES_PER_ROW = 11


def fleet(count: int) -> tuple[cdk.Stack, RightsizingEngine]:
    scope = stack()
    for i in range(count):
        rightsizing(scope, endpoint_name=f"fraud-scoring-{i}", construct_id=f"Rightsizing{i}")
    return scope, RightsizingEngine.of(scope)


def synthesized_alarm(scope: cdk.Stack, metric: cloudwatch.IMetric) -> dict[str, Any]:
    cloudwatch.Alarm(scope, "TeamAlarm", metric=metric, threshold=1, evaluation_periods=1)
    [alarm] = (
        Template.from_stack(scope)
        .find_resources(
            "AWS::CloudWatch::Alarm",
            {"Properties": {"Threshold": 1, "AlarmDescription": Match.absent()}},
        )
        .values()
    )
    return alarm["Properties"]


# -- metric_* -----------------------------------------------------------------------------------


def test_metric_runs_is_the_fleets_count_of_an_outcome() -> None:
    scope, engine = fleet(1)
    alarm = synthesized_alarm(scope, engine.metric_runs(outcome="reject"))
    assert alarm["Namespace"] == "Rightsizing"
    assert alarm["MetricName"] == "Runs"
    assert alarm["Dimensions"] == [{"Name": "Outcome", "Value": "reject"}]
    assert alarm["Statistic"] == "Sum"
    assert alarm["Period"] == 300


def test_metric_runs_of_an_endpoint_names_its_one_variant() -> None:
    scope, engine = fleet(1)
    metric = engine.metric_runs(outcome="apply", endpoint_name="fraud-scoring-0")
    alarm = synthesized_alarm(scope, metric)
    assert alarm["Dimensions"] == [
        {"Name": "EndpointName", "Value": "fraud-scoring-0"},
        {"Name": "Outcome", "Value": "apply"},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]


def test_metric_monthly_saving_fleet_has_no_dimension_and_endpoint_has_the_variant() -> None:
    scope, engine = fleet(1)
    alarm = synthesized_alarm(scope, engine.metric_monthly_saving(period=cdk.Duration.days(1)))
    assert (alarm["MetricName"], alarm["Statistic"], alarm["Period"]) == (
        "EstimatedMonthlySaving",
        "Sum",
        86400,
    )
    assert "Dimensions" not in alarm
    per_endpoint = engine.metric_monthly_saving("fraud-scoring-0")
    assert per_endpoint.dimensions == {
        "EndpointName": "fraud-scoring-0",
        "VariantName": "AllTraffic",
    }


def test_metric_failed_runs_is_step_functions_own_metric() -> None:
    scope, engine = fleet(1)
    alarm = synthesized_alarm(scope, engine.metric_failed_runs())
    names = {
        m["MetricStat"]["Metric"]["MetricName"]: m["MetricStat"]
        for m in alarm["Metrics"]
        if "MetricStat" in m
    }
    assert set(names) == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
    for stat in names.values():
        assert stat["Metric"]["Namespace"] == "AWS/States"
        assert stat["Stat"] == "Sum"
        assert stat["Metric"]["Dimensions"][0]["Name"] == "StateMachineArn"


def test_helpers_refuse_what_the_runtime_never_writes() -> None:
    _, engine = fleet(1)
    with pytest.raises(ValueError, match="outcome must be one of apply, no-change"):
        engine.metric_runs(outcome="applied")
    with pytest.raises(ValueError, match="pass variant_name: this engine rightsizes 0 variants"):
        engine.metric_monthly_saving("not-rightsized")
    # A variant named explicitly needs no lookup (an endpoint of another engine, say).
    assert engine.metric_applied_changes("other", variant_name="Blue").dimensions == {
        "EndpointName": "other",
        "VariantName": "Blue",
    }


# -- Dashboards ---------------------------------------------------------------------------------


def bodies(scope: cdk.Stack) -> list[str]:
    """Each dashboard's body as deployed, with references as placeholders (same length order)."""
    dashboards = Template.from_stack(scope).find_resources("AWS::CloudWatch::Dashboard")
    found = []
    for resource in dashboards.values():
        body = resource["Properties"]["DashboardBody"]
        parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
        found.append("".join(p if isinstance(p, str) else "REF" for p in parts))
    return found


def counts(body: str) -> tuple[int, int, int]:
    """Widgets, metrics on the dashboard, and the most metrics on one widget."""
    widgets = json.loads(body)["widgets"]
    per_widget = [len(w["properties"].get("metrics", [])) for w in widgets]
    return len(widgets), sum(per_widget), max(per_widget)


@cache
def sizes_for(endpoints: int) -> tuple[list[str], int]:
    scope, engine = fleet(endpoints)
    engine.add_dashboard()
    template = json.dumps(Template.from_stack(scope).to_json())
    return bodies(scope), len(template.encode())


def test_one_endpoint_has_the_fleet_row_and_its_row() -> None:
    [body], _ = sizes_for(1)
    widgets, metrics, _ = counts(body)
    assert (widgets, metrics) == (
        FLEET_WIDGETS + WIDGETS_PER_ENDPOINT,
        FLEET_METRICS + METRICS_PER_ENDPOINT,
    )
    titles = [w["properties"]["title"] for w in json.loads(body)["widgets"]]
    assert titles[:FLEET_WIDGETS] == [
        "Estimated monthly saving (per day)",
        "Runs by outcome (per day)",
        "Failed runs (per day)",
        "Load-test spend, estimated (per day)",
        "Audit findings by class (per day)",
        "Applied changes (per day)",
    ]


def test_an_endpoint_row_shows_latency_at_the_slo_percentile_against_the_slo() -> None:
    [body], _ = sizes_for(1)
    latency = json.loads(body)["widgets"][FLEET_WIDGETS]["properties"]
    [metric] = latency["metrics"]
    assert metric[:6] == [
        "AWS/SageMaker",
        "ModelLatency",
        "EndpointName",
        "fraud-scoring-0",
        "VariantName",
        "AllTraffic",
    ]
    assert metric[6]["stat"] == "p99"
    # LatencySlo.p99(300 ms); ModelLatency is in microseconds.
    assert latency["annotations"]["horizontal"][0]["value"] == 300_000
    instances = json.loads(body)["widgets"][FLEET_WIDGETS + 2]["properties"]["metrics"]
    assert instances[0][0]["expression"] == "invocations / perInstance"


def test_200_endpoints_are_split_within_cloudwatchs_quotas_and_the_template_limit() -> None:
    found, template_bytes = sizes_for(200)
    assert len(found) == 4  # 50 endpoints a dashboard by default
    for body in found:
        widgets, metrics, widest = counts(body)
        assert widgets <= MAX_WIDGETS_PER_DASHBOARD
        assert metrics <= MAX_METRICS_PER_DASHBOARD
        assert widest <= MAX_METRICS_PER_WIDGET
    assert template_bytes < TEMPLATE_LIMIT_BYTES
    # The largest dashboard allowed (123 rows), extrapolated from the measured rows, with
    # 63-character endpoint names instead of these 16-character ones.
    [one], _ = sizes_for(1)
    per_row = (len(found[0]) - len(one)) / 49 + NAME_USES_PER_ROW * (63 - 16)
    largest = len(one) + per_row * (MAX_ENDPOINTS_PER_DASHBOARD - 1)
    assert largest < BODY_BUDGET_BYTES / 3
    print(
        f"\n200 endpoints: {len(found)} dashboards of {[len(b) for b in found]} bytes, "
        f"template {template_bytes} bytes; 123 rows of the longest names: {largest:.0f} bytes"
    )


def test_the_most_endpoints_a_dashboard_holds_fit_its_quotas() -> None:
    assert FLEET_WIDGETS + MAX_ENDPOINTS_PER_DASHBOARD * WIDGETS_PER_ENDPOINT <= 500
    assert FLEET_METRICS + MAX_ENDPOINTS_PER_DASHBOARD * METRICS_PER_ENDPOINT <= 2500
    _, engine = fleet(0)
    with pytest.raises(ValueError, match=r"endpoints_per_dashboard must be 1 to 123"):
        RightsizingDashboard(engine, "Too", engine=engine, endpoints_per_dashboard=124)


def test_endpoints_added_after_the_dashboard_fail_synth() -> None:
    scope, engine = fleet(1)
    engine.add_dashboard()
    rightsizing(scope, endpoint_name="late", construct_id="Late")
    with pytest.raises(RuntimeError, match="shows 1 endpoints but the engine rightsizes 2"):
        Template.from_stack(scope)


@pytest.mark.parametrize("pack", NAG_PACKS, ids=lambda p: p.__name__)
def test_nag_packs_have_no_findings_on_the_dashboards(pack: type[NagPack]) -> None:
    scope, engine = fleet(2)
    engine.add_dashboard(dashboard_name_prefix="rightsizing")
    assert findings(scope, pack) == []


def test_a_dashboard_in_a_stack_of_its_own_references_the_engines_state_machine() -> None:
    """README's advice past about 300 endpoints: the dashboards in their own stack."""
    scope, engine = fleet(2)
    env = cdk.Environment(account=scope.account, region=scope.region)
    monitoring = cdk.Stack(scope.node.root, "Monitoring", env=env)
    RightsizingDashboard(monitoring, "Dashboard", engine=engine)
    assert Template.from_stack(monitoring).find_resources("AWS::CloudWatch::Dashboard")
    assert Template.from_stack(scope).find_resources("AWS::CloudWatch::Dashboard") == {}
