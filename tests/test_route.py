"""Route and the registry it reads: what each event means for which endpoint (pure, no AWS)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rightsizing_runtime import registry, route
from rightsizing_runtime.triggers import InvalidTriggerError

from tests.test_handlers import settings_document

ACCOUNT = "123456789012"
GROUP = "fraud-models"
ALARM = "rightsizing-latency-c8a1b2c3d4-fraud-AllTraffic"


def entry(
    endpoint: str,
    *,
    variant: str = "AllTraffic",
    applies: bool = False,
    schedule: str | None = None,
    group: str | None = None,
    alarm: str | None = None,
    classifications: list[str] | None = None,
) -> dict[str, Any]:
    settings = settings_document(endpoint_name=endpoint, variant_name=variant)
    # A deploy-time value, as the constructs write it: the job role's ARN.
    settings["job_role_arn"] = "arn:${rs:0}:iam::${rs:1}:role/job"
    return {
        "settings": settings,
        "apply_settings": {"endpoint_name": endpoint, "variant_name": variant} if applies else None,
        "triggers": {
            "schedule": schedule,
            "model_package_group_name": group,
            "latency_alarm_name": alarm,
            "audit_classifications": classifications,
        },
    }


VALUES = {"0": "aws", "1": ACCOUNT}
FLEET = registry.load(
    {
        "registry_version": 1,
        "endpoints": [
            entry("fraud", applies=True, group=GROUP, alarm=ALARM, schedule="rate(7 days)"),
            entry(
                "search", schedule="rate(7 days)", group=GROUP, classifications=["Overprovisioned"]
            ),
            entry("chat", schedule="rate(1 day)"),
        ],
    },
    VALUES,
)


def wrapped(source: str, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """A rule's input: the event, as the engine's rules hand it on."""
    event = {"id": "e-1", "source": source, "detail-type": detail_type, "detail": detail}
    return {"trigger": {"source": source, "detail_type": detail_type, "event": event}}


def test_placeholders_are_filled_from_the_values() -> None:
    fraud = FLEET.endpoint("fraud", "AllTraffic")
    assert fraud is not None
    assert fraud.settings["job_role_arn"] == f"arn:aws:iam::{ACCOUNT}:role/job"


def test_a_run_request_reaches_its_endpoints_settings() -> None:
    decided = route.route(
        wrapped(
            "rightsizing-constructs",
            "Rightsizing Run Requested",
            {"endpoint_name": "search", "variant_name": "AllTraffic"},
        ),
        FLEET,
    )
    assert decided["route"] == {"action": "run"}
    assert decided["settings"]["endpoint_name"] == "search"
    assert decided["apply_settings"] is None  # search is recommend-only
    assert decided["trigger"]["detail_type"] == "Rightsizing Run Requested"


def test_a_run_request_for_an_unknown_endpoint_is_ignored_with_a_record() -> None:
    decided = route.route(
        wrapped(
            "rightsizing-constructs",
            "Rightsizing Run Requested",
            {"endpoint_name": "nobody", "variant_name": "AllTraffic"},
        ),
        FLEET,
    )
    assert decided["route"]["action"] == "ignore"
    assert decided["route"]["record"] is True
    assert (decided["route"]["endpoint_name"], decided["route"]["variant_name"]) == (
        "nobody",
        "AllTraffic",
    )
    assert "does not rightsize" in decided["route"]["reason"]


def test_a_direct_start_by_name_and_with_whole_settings() -> None:
    by_name = route.route({"endpoint_name": "fraud", "variant_name": "AllTraffic"}, FLEET)
    assert by_name["settings"]["endpoint_name"] == "fraud"
    assert by_name["apply_settings"] == {"endpoint_name": "fraud", "variant_name": "AllTraffic"}
    assert by_name["trigger"]["detail_type"] == "Rightsizing Run Requested"
    changed = dict(by_name["settings"], peak_requests_per_minute=5)
    whole = route.route({"settings": changed}, FLEET)
    assert whole["route"] == {"action": "run"}
    assert whole["settings"]["peak_requests_per_minute"] == 5


def test_a_schedule_fans_out_to_the_endpoints_on_it() -> None:
    decided = route.route({"scheduled": "rate(7 days)"}, FLEET)
    assert decided["route"]["action"] == "fan_out"
    assert decided["route"]["requests"] == [
        {"endpoint_name": "fraud", "variant_name": "AllTraffic", "requested_by": "schedule"},
        {"endpoint_name": "search", "variant_name": "AllTraffic", "requested_by": "schedule"},
    ]
    assert route.route({"scheduled": "rate(2 days)"}, FLEET)["route"]["action"] == "ignore"


def approval(group: str, status: str = "Approved") -> dict[str, Any]:
    return wrapped(
        "aws.sagemaker",
        "SageMaker Model Package State Change",
        {
            "ModelPackageGroupName": group,
            "ModelApprovalStatus": status,
            "ModelPackageArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/{group}/3",
        },
    )


def test_an_approval_in_a_group_two_endpoints_serve_fans_out_with_the_version() -> None:
    event = approval(GROUP.upper())  # group names are case-insensitive
    decided = route.route(event, FLEET)
    assert decided["route"]["action"] == "fan_out"
    versions = {r["model_package_version_arn"] for r in decided["route"]["requests"]}
    assert versions == {event["trigger"]["event"]["detail"]["ModelPackageArn"]}
    assert {r["endpoint_name"] for r in decided["route"]["requests"]} == {"fraud", "search"}
    assert {r["requested_by"] for r in decided["route"]["requests"]} == {"model-approval"}


def test_an_approval_one_endpoint_serves_runs_it_and_others_are_ignored() -> None:
    one = registry.load({"registry_version": 1, "endpoints": [entry("fraud", group=GROUP)]}, VALUES)
    assert route.route(approval(GROUP), one)["settings"]["endpoint_name"] == "fraud"
    assert route.route(approval("other-group"), one)["route"]["action"] == "ignore"
    assert route.route(approval(GROUP, "Rejected"), one)["route"]["action"] == "ignore"


def alarm(name: str) -> dict[str, Any]:
    return wrapped(
        "aws.cloudwatch",
        "CloudWatch Alarm State Change",
        {"alarmName": name, "state": {"value": "ALARM"}},
    )


def test_a_latency_alarm_runs_its_endpoint_only() -> None:
    assert route.route(alarm(ALARM), FLEET)["settings"]["endpoint_name"] == "fraud"
    ignored = route.route(alarm(ALARM + "-other"), FLEET)
    assert ignored["route"] == {
        "action": "ignore",
        "reason": f"alarm '{ALARM}-other' is no endpoint's latency alarm",
        "record": False,
    }


def finding(endpoint: str, classification: str) -> dict[str, Any]:
    return wrapped(
        "rightsizing-constructs",
        "Rightsizing Finding",
        {"endpoint_name": endpoint, "variant_name": "AllTraffic", "classification": classification},
    )


def test_a_finding_runs_only_an_endpoint_that_listens_to_its_class() -> None:
    assert route.route(finding("search", "Overprovisioned"), FLEET)["route"] == {"action": "run"}
    for endpoint, classification in [("search", "Underprovisioned"), ("fraud", "Overprovisioned")]:
        ignored = route.route(finding(endpoint, classification), FLEET)["route"]
        assert ignored["action"] == "ignore" and ignored["record"] is False


def recommendation(endpoint: str, action: str = "apply") -> dict[str, Any]:
    return wrapped(
        "rightsizing-constructs",
        "Rightsizing Recommendation",
        {"endpoint_name": endpoint, "variant_name": "AllTraffic", "action": action},
    )


def test_an_apply_recommendation_reaches_the_apply_workflow_of_an_auto_endpoint_only() -> None:
    applied = route.route(recommendation("fraud"), FLEET)
    assert applied["route"] == {"action": "apply"}
    assert applied["recommendation"]["endpoint_name"] == "fraud"
    assert applied["apply_settings"] == {"endpoint_name": "fraud", "variant_name": "AllTraffic"}
    for ignored in (recommendation("search"), recommendation("fraud", "no-change")):
        assert route.route(ignored, FLEET)["route"]["action"] == "ignore"


@pytest.mark.parametrize(
    "execution_input",
    [
        {"trigger": "not an object"},
        {"trigger": {"source": "aws.ec2", "detail_type": "EC2 Instance State-change Notification"}},
    ],
)
def test_inputs_no_rule_delivers_are_refused(execution_input: dict[str, Any]) -> None:
    with pytest.raises(InvalidTriggerError):
        route.route(execution_input, FLEET)


def test_a_registry_of_another_version_or_a_missing_value_is_refused() -> None:
    with pytest.raises(registry.InvalidRegistryError, match="registry_version 2"):
        registry.load({"registry_version": 2, "endpoints": []}, {})
    with pytest.raises(registry.InvalidRegistryError, match=r"no value for the placeholder"):
        registry.load({"registry_version": 1, "endpoints": [entry("fraud")]}, {"0": "aws"})
    with pytest.raises(registry.InvalidRegistryError, match="malformed"):
        registry.load({"registry_version": 1, "endpoints": [{"triggers": {}}]}, {})


def test_the_handler_reads_the_layer_file_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({"registry_version": 1, "endpoints": [entry("chat")]}))
    monkeypatch.setenv("REGISTRY_PATH", str(path))
    monkeypatch.setenv("REGISTRY_VALUES", json.dumps(VALUES))
    decided = route.handler({"input": {"endpoint_name": "chat", "variant_name": "AllTraffic"}})
    assert decided["settings"]["job_role_arn"] == f"arn:aws:iam::{ACCOUNT}:role/job"
