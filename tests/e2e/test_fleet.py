"""One engine, several endpoints: bounded IR concurrency and every trigger, on moto.

The triggers' patterns are the synthesized rules' own, deployed on moto's EventBridge, and the
events are AWS's documented samples (tests/events/README.md): each with a matching and a
non-matching case.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk import aws_events as events
from aws_cdk.assertions import Template
from rightsizing_runtime import audit

from rightsizing_constructs import (
    AuditFinding,
    LatencyAlarm,
    ModelApproval,
    RecommenderJob,
    RightsizingEngine,
)
from tests.conftest import EVENTS
from tests.e2e.harness import InferenceRecommenderStandIn, LocalAws, LocalStack, local_aws
from tests.e2e.test_recommend_workflow import recommendations
from tests.infra import ACCOUNT, REGION, rightsizing, stack

pytestmark = pytest.mark.e2e

ENDPOINTS = [f"fleet-{i}" for i in range(5)]
GROUP = "fleet-models"


def fleet_template() -> dict[str, Any]:
    """An engine with K=2 job slots and a 1-second poll, and five endpoints on one schedule;
    the first also triggered by model approvals and by its latency alarm, the second by the
    utilization audit's findings."""
    scope = stack()
    engine = RightsizingEngine(
        scope, "RightsizingEngine", poll_interval=cdk.Duration.seconds(1), max_concurrent_jobs=2
    )
    for i, name in enumerate(ENDPOINTS):
        extra: dict[str, Any] = {}
        if i == 0:
            extra = {
                # A version of the group whose approvals it hears (synth refuses another).
                "model_package_version_arn": (
                    f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/1"
                ),
                "model_approval": ModelApproval(model_package_group_name=GROUP),
                "latency_alarm": LatencyAlarm(breaching_for=cdk.Duration.minutes(3)),
            }
        if i == 1:
            extra = {"audit_finding": AuditFinding()}
        rightsizing(
            scope,
            construct_id=f"Endpoint{i}",
            endpoint_name=name,
            engine=engine,
            # The first poll after 1 second, as every later one (the stand-in's jobs end
            # after a few polls).
            job=RecommenderJob.default(expected_duration=cdk.Duration.seconds(2)),
            schedule=events.Schedule.rate(cdk.Duration.days(7)),
            **extra,
        )
    return Template.from_stack(scope).to_json()


TEMPLATE = fleet_template()


def create_endpoint(name: str, model_package: str | None = None) -> None:
    sagemaker = boto3.client("sagemaker")
    container: dict[str, Any] = {"Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/m:1"}
    if model_package:
        container = {"ModelPackageName": model_package}
    sagemaker.create_model(
        ModelName=f"{name}-model",
        ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/model",
        PrimaryContainer=container,
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": f"{name}-model",
                "InstanceType": "ml.c5.2xlarge",
                "InitialInstanceCount": 2,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")


def docs_sample(name: str) -> dict[str, Any]:
    """An AWS docs sample event; of a duplicated key (the model package sample's ``source``),
    the first is kept, as a real event has one."""
    text = (EVENTS / name).read_text()
    return dict(json.loads(text, object_pairs_hook=lambda pairs: dict(reversed(pairs))))


def put(stack: LocalStack, event: dict[str, Any]) -> None:
    entry = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
        "Resources": event.get("resources", []),
    }
    [result] = stack.events.put_events(Entries=[entry])["Entries"]
    assert "EventId" in result, result


def request_run(endpoint: str) -> dict[str, Any]:
    """The manual trigger, as the README's one-line command sends it."""
    return {
        "source": "rightsizing-constructs",
        "detail-type": "Rightsizing Run Requested",
        "detail": {"endpoint_name": endpoint, "variant_name": "AllTraffic"},
    }


@pytest.fixture
def ir() -> InferenceRecommenderStandIn:
    return InferenceRecommenderStandIn(recommendations=recommendations(), polls_before_done=2)


@pytest.fixture
def aws(ir: InferenceRecommenderStandIn) -> Iterator[LocalAws]:
    with local_aws(ir) as aws:
        yield aws


@pytest.fixture
def fleet(aws: LocalAws) -> LocalStack:
    return LocalStack(aws, TEMPLATE)


def test_at_most_k_jobs_run_at_once_and_every_run_finishes(
    fleet: LocalStack, ir: InferenceRecommenderStandIn
) -> None:
    for name in ENDPOINTS:
        create_endpoint(name)
        put(fleet, request_run(name))

    runs = fleet.deliver(limit=120)

    assert len(runs) == 5
    assert all(r.status == "SUCCEEDED" for r in runs), [r.cause for r in runs]
    assert len(ir.jobs) == 5
    assert ir.most_running == 2  # K=2: the slots were used, and never exceeded
    assert sum("AcquireJobSlot" in r.states for r in runs) == 5
    # Every slot was given back.
    slots = [i for i in fleet.ledger_items("slot#")]
    assert slots == []


def test_schedule_requests_one_run_per_endpoint(fleet: LocalStack) -> None:
    # One rule per schedule expression, whatever the number of endpoints on it.
    [scheduled] = fleet.scheduled_input()
    assert scheduled == {"scheduled": "rate(7 days)"}

    fanned = fleet.run("weekly", scheduled)

    assert fanned.status == "SUCCEEDED", fanned.cause
    assert fanned.states[-1] == "RunsRequested"
    routed = fleet.routed()  # the run requests, as the Requests rule delivered them
    assert sorted(r["settings"]["endpoint_name"] for r in routed) == ENDPOINTS
    assert all(r["route"]["action"] == "run" for r in routed)
    assert all(r["trigger"]["event"]["detail"]["requested_by"] == "schedule" for r in routed)


def test_run_request_reaches_only_its_endpoint(fleet: LocalStack) -> None:
    put(fleet, request_run("fleet-3"))
    put(fleet, request_run("not-in-the-fleet"))

    ours, unknown = fleet.routed()
    assert ours["route"]["action"] == "run"
    assert ours["settings"]["endpoint_name"] == "fleet-3"
    assert ours["trigger"]["detail_type"] == "Rightsizing Run Requested"
    # A request that names an endpoint this engine lacks is ignored, and recorded under it.
    assert unknown["route"]["action"] == "ignore"
    assert unknown["route"]["record"] is True
    assert unknown["route"]["endpoint_name"] == "not-in-the-fleet"


def test_model_approval_matches_the_docs_sample_for_its_group(fleet: LocalStack) -> None:
    sample = docs_sample("model_package_state_change_docs_sample.json")
    put(fleet, sample)  # as documented: another group, and Rejected
    assert fleet.matched() == []

    approved = json.loads(json.dumps(sample))
    approved["detail"]["ModelPackageGroupName"] = GROUP
    approved["detail"]["ModelApprovalStatus"] = "Approved"
    put(fleet, approved)
    [matched] = fleet.routed()
    assert matched["route"]["action"] == "run"
    assert matched["settings"]["endpoint_name"] == "fleet-0"
    assert (
        matched["trigger"]["event"]["detail"]["ModelPackageArn"]
        == (sample["detail"]["ModelPackageArn"])
    )


def test_approved_version_the_endpoint_serves_is_load_tested(
    fleet: LocalStack, ir: InferenceRecommenderStandIn
) -> None:
    version = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/2"
    create_endpoint("fleet-0", model_package=version)
    approved = docs_sample("model_package_state_change_docs_sample.json")
    approved["detail"].update(
        ModelPackageGroupName=GROUP, ModelApprovalStatus="Approved", ModelPackageArn=version
    )
    put(fleet, approved)

    [run] = fleet.deliver()

    assert run.status == "SUCCEEDED", run.cause
    [job] = ir.jobs.values()
    assert job.request["InputConfig"] == {"ModelPackageVersionArn": version}


def test_latency_alarm_matches_the_docs_sample_for_its_alarm(fleet: LocalStack) -> None:
    sample = docs_sample("cloudwatch_alarm_state_change_docs_sample.json")
    put(fleet, sample)  # as documented: another alarm
    assert fleet.matched() == []

    [alarm] = [k for k in fleet.resources if k.startswith("Endpoint0LatencyAlarm")]
    [name] = [
        e["triggers"]["latency_alarm_name"]
        for e in fleet.registry
        if "latency_alarm_name" in e["triggers"]  # the registry leaves out what is None
    ]
    assert fleet.resources[alarm]["Properties"]["AlarmName"] == name
    ours = json.loads(json.dumps(sample))
    ours["resources"] = [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"]
    ours["detail"]["alarmName"] = name
    put(fleet, ours)
    [matched] = fleet.routed()
    assert matched["route"]["action"] == "run"
    assert matched["settings"]["endpoint_name"] == "fleet-0"
    assert matched["trigger"]["detail_type"] == "CloudWatch Alarm State Change"

    ours["detail"]["state"]["value"] = "OK"  # back to OK starts nothing
    put(fleet, ours)
    assert fleet.matched() == []


def finding(endpoint: str, classification: str) -> dict[str, Any]:
    """A finding as the audit renders it (the fields the rule and the run read)."""
    return {
        "schema_version": 1,
        "source": "cloudwatch",
        "resource_type": "sagemaker-endpoint-variant",
        "endpoint_name": endpoint,
        "variant_name": "AllTraffic",
        "instance_type": "ml.c5.2xlarge",
        "instance_count": 2,
        "classification": classification,
        "reasons": ["cpu_per_core 12.0% below 60%"],
        "evidence": {},
        "cost_per_hour": None,
        "window": {"start": "2026-11-14T00:00:00+00:00", "end": "2026-11-28T00:00:00+00:00"},
    }


def test_an_audit_finding_starts_the_recommend_workflow_via_the_endpoint_rule(
    fleet: LocalStack, ir: InferenceRecommenderStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """audit -> load test: the audit's own publish() puts the events; the synthesized rule of
    the endpoint with AuditFinding() starts a run on its over- or under-provisioned finding."""
    monkeypatch.setattr(audit, "events", fleet.events)
    monkeypatch.setenv("EVENT_BUS_NAME", "default")
    create_endpoint("fleet-1")

    audit.publish(
        [
            finding("fleet-1", "Optimized"),  # not a class that starts a run
            finding("fleet-2", "Overprovisioned"),  # an endpoint without AuditFinding
            finding("fleet-1", "Overprovisioned"),
        ]
    )
    runs = fleet.deliver()

    # The rule hears every run-starting class; Route starts only the endpoint that listens.
    assert [r.status for r in runs] == ["SUCCEEDED", "SUCCEEDED"], [r.cause for r in runs]
    [run] = [r for r in runs if "StartJob" in r.states]
    [ignored] = [r for r in runs if r is not run]
    assert ignored.states[-1] == "NothingToDo"
    [job] = ir.jobs.values()
    assert job.request["InputConfig"]["ModelPackageVersionArn"]
    [record] = fleet.ledger_items("recommendation#")
    detail = json.loads(record["record"]["S"])
    assert detail["endpoint_name"] == "fleet-1"
    assert detail["trigger"]["kind"] == "audit-finding"
