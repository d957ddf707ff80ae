"""A fleet within every AWS limit: a 1,000-endpoint fleet, synthesized and checked.

``tests/apps/fleet.py`` at its worst case (every trigger, a custom bus, the longest names),
checked as deployed by ``tools/fidelity.py``'s ``check_limits`` (CloudFormation, EventBridge,
IAM, Lambda and Step Functions quotas, each cited there). ``make bench`` prints the figures;
this pins that they stay within the limits. Not a timed test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_events as events

from rightsizing_constructs import (
    EndpointAccess,
    EndpointRightsizing,
    LatencySlo,
    ModelApproval,
    RightsizingEngine,
)
from rightsizing_constructs.engine_validation import MAX_SCHEDULE_EXPRESSIONS, ScheduleRuleLimit
from rightsizing_constructs.routing import ALARMS_PER_NESTED_STACK, INLINE_ALARMS
from tests.apps.fleet import fleet_stack, name
from tests.infra import ACCOUNT, REGION, as_list, registry
from tools import fidelity

#: The fleet synthesized here: 1,000 endpoints fill the main stack's alarms and two nested
#: alarm stacks and reach every limit's per-endpoint growth. ``make bench`` synthesizes 3,000
#: and fails past any limit at every size it measures (about 4 minutes of one test worker
#: here: the unit suite keeps within its 10 minutes).
LARGEST = 1000


@pytest.fixture(scope="module")
def largest(tmp_path_factory: pytest.TempPathFactory) -> list[fidelity.Stack]:
    outdir = tmp_path_factory.mktemp("fleet")
    app = cdk.App(outdir=str(outdir))
    fleet_stack(app, LARGEST)
    app.synth()
    return fidelity.load(outdir)


def test_the_largest_fleet_is_within_every_limit(largest: list[fidelity.Stack]) -> None:
    findings = [f for stack in largest for f in fidelity.check_limits(stack, largest)]
    assert findings == []
    main = largest[0]
    # The engine's resources do not grow with the fleet: its rules are per engine (one for
    # the library's events on the custom bus, one for AWS's, one per schedule, the cleanup
    # pair), its policies per role.
    assert sum(1 for _ in main.of_type("AWS::Events::Rule")) == 5
    assert sum(1 for _ in main.of_type("AWS::IAM::ManagedPolicy")) == 0


def test_latency_alarms_fill_nested_stacks_and_keep_their_names_apart(
    largest: list[fidelity.Stack],
) -> None:
    alarms = [
        [stack.names.name(alarm) for alarm, _ in stack.of_type("AWS::CloudWatch::Alarm")]
        for stack in largest
    ]
    main, nested = alarms[0], alarms[1:]
    engine_alarms = [a for a in main if a.startswith("rightsizing-latency-")]
    assert len(engine_alarms) == INLINE_ALARMS
    full, rest = divmod(LARGEST - INLINE_ALARMS, ALARMS_PER_NESTED_STACK)
    assert [len(a) for a in nested] == [ALARMS_PER_NESTED_STACK] * full + ([rest] if rest else [])
    # A nested alarm's name carries its stack's number: one that moves gets a new name.
    prefix = engine_alarms[0][: len("rightsizing-latency-") + 11]
    for index, names in enumerate(nested):
        assert all(n.startswith(f"{prefix}{index}-") for n in names)
    # The registry knows every alarm by the name it has.
    registered = {e["triggers"]["latency_alarm_name"] for e in registry(largest[0].template)}
    assert registered == set(engine_alarms).union(*nested)


def listed_fleet(endpoints: int) -> cdk.App:
    app = cdk.App()
    stack = cdk.Stack(app, "Listed", env=cdk.Environment(account=ACCOUNT, region=REGION))
    engine = RightsizingEngine(stack, "Engine")
    for index in range(endpoints):
        group = name("group", index)
        EndpointRightsizing(
            stack,
            f"Endpoint{index}",
            engine=engine,
            endpoint_name=name("endpoint", index),
            variant_name=name("variant", index),
            model_package_version_arn=(
                f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group}/1"
            ),
            slo=LatencySlo.p99(cdk.Duration.millis(150)),
            peak_requests_per_minute=1000,
            model_approval=ModelApproval(model_package_group_name=group),
            schedule=events.Schedule.rate(cdk.Duration.days(7)),
        )
    return app


def test_listed_grants_past_iams_limits_fail_synth_with_the_way_out() -> None:
    with pytest.raises(RuntimeError) as raised:
        listed_fleet(300).synth()
    message = str(raised.value)
    assert "Listed/Engine/JobRole: Policy large: " in message
    assert "exceeds 10 managed policies attached to a Role" in message
    assert "for the grants of 300 endpoints" in message
    assert "endpoint_access=EndpointAccess.tagged(key, value)" in message


def test_more_distinct_schedules_than_the_default_bus_can_spare_fail_synth() -> None:
    """Each distinct schedule expression is a rule on the default bus (300 by default)."""
    app = cdk.App()
    stack = cdk.Stack(app, "Schedules", env=cdk.Environment(account=ACCOUNT, region=REGION))
    engine = RightsizingEngine(stack, "Engine", endpoint_access=EndpointAccess.tagged("a", "b"))
    for index in range(MAX_SCHEDULE_EXPRESSIONS + 1):
        EndpointRightsizing(
            stack,
            f"Endpoint{index}",
            engine=engine,
            endpoint_name=f"endpoint-{index}",
            model_package_version_arn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/g/1",
            slo=LatencySlo.p99(cdk.Duration.millis(150)),
            peak_requests_per_minute=1000,
            schedule=events.Schedule.cron(minute=str(index % 60), hour=str(index // 60)),
        )
    with pytest.raises(RuntimeError) as raised:
        app.synth()
    assert "the endpoints use 101 distinct schedule expressions" in str(raised.value)
    assert "use at most 100" in str(raised.value)


def test_the_schedule_limit_is_at_most_and_not_below() -> None:
    assert ScheduleRuleLimit(lambda: MAX_SCHEDULE_EXPRESSIONS).validate() == []
    [problem] = ScheduleRuleLimit(lambda: MAX_SCHEDULE_EXPRESSIONS + 1).validate()
    assert problem.startswith("the endpoints use 101 distinct schedule expressions")


def statements(template: dict[str, Any], role_prefix: str) -> list[dict[str, Any]]:
    found = []
    for resource in template["Resources"].values():
        if resource["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            continue
        roles = json.dumps(resource["Properties"].get("Roles", []))
        if role_prefix in roles:
            found += resource["Properties"]["PolicyDocument"]["Statement"]
    return found


def test_tagged_access_grants_the_tagged_endpoints_and_reads_every_model(
    tmp_path: Path,
) -> None:
    app = cdk.App(outdir=str(tmp_path))
    stack = fleet_stack(app, 3)
    template = app.synth().get_stack_by_name(stack.stack_name).template
    tag = {"StringEquals": {f"aws:ResourceTag/{name('key', 0, 128)}": name("value", 0, 256)}}
    endpoints = {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, f":sagemaker:{REGION}:{ACCOUNT}:endpoint/*"],
        ]
    }
    for role in ("EngineStartJobRole", "EngineSelectRecommendationRole", "EngineApplyStepRole"):
        granted = [
            s
            for s in statements(template, role)
            if "sagemaker:DescribeEndpoint" in as_list(s["Action"])
        ]
        assert [(s["Resource"], s.get("Condition")) for s in granted] == [(endpoints, tag)], role
    [reads] = [
        s
        for s in statements(template, "EngineJobRole")
        if s["Action"] == "sagemaker:DescribeModelPackage"
    ]
    assert reads["Resource"] == {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, f":sagemaker:{REGION}:{ACCOUNT}:model-package/*"],
        ]
    }
    # No endpoint's own ARN is listed in any policy.
    policies = [
        r
        for r in template["Resources"].values()
        if r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
    ]
    assert name("endpoint", 0) not in json.dumps(policies)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("", "v", "key must be a tag key"),
        ("aws:team", "v", "key must not start with aws:"),
        ("team", "x" * 257, "value must be a tag value"),
    ],
)
def test_tagged_access_checks_the_tag(key: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EndpointAccess.tagged(key, value)
