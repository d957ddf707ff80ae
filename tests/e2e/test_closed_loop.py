"""The closed loop on moto, with the synthesized machines and rules (issue #14's Done-when).

- An approval while the endpoint serves v2 sizes v3 before it ships: a pending recommendation in
  the ledger, as an event and in an SSM parameter; once the endpoint serves v3 (SageMaker's
  "Endpoint State Change" to IN_SERVICE) it is applied (AUTO) or notified (RECOMMEND_ONLY),
  without a second load test. An approval of v4 before v3 ships supersedes v3's.
- A latency alarm for an endpoint whose model a completed job measured 3 days ago is decided
  from that job, without CreateInferenceRecommendationsJob, and applied; with a changed model it
  load-tests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk.assertions import Template
from moto.sagemaker.models import sagemaker_backends
from rightsizing_runtime import measurements

from rightsizing_constructs import (
    ApplyMode,
    LatencyAlarm,
    ModelApproval,
    RecommenderJob,
    RightsizingEngine,
)
from tests.e2e.harness import InferenceRecommenderStandIn, Job, LocalAws, LocalStack, local_aws
from tests.e2e.test_fleet import docs_sample, put
from tests.e2e.test_recommend_workflow import RECOMMENDATIONS_PATTERN, recommendations
from tests.infra import ACCOUNT, REGION, rightsizing, stack

pytestmark = pytest.mark.e2e

AUTO, NOTIFY = "auto-ep", "notify-ep"
GROUPS = {AUTO: "models-auto", NOTIFY: "models-notify"}


def version(endpoint: str, number: int) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUPS[endpoint]}/{number}"


def closed_loop_template() -> dict[str, Any]:
    """Two endpoints sized on approvals of their groups: one applies (with a latency alarm),
    one only recommends. 1-second polls; jobs end after a few."""
    scope = stack()
    engine = RightsizingEngine(scope, "RightsizingEngine", poll_interval=cdk.Duration.seconds(1))
    for construct_id, name, extra in (
        ("Auto", AUTO, {"latency_alarm": LatencyAlarm(breaching_for=cdk.Duration.minutes(3))}),
        ("Notify", NOTIFY, {"apply_mode": ApplyMode.RECOMMEND_ONLY}),
    ):
        rightsizing(
            scope,
            construct_id=construct_id,
            endpoint_name=name,
            engine=engine,
            model_package_version_arn=version(name, 2),
            model_approval=ModelApproval(model_package_group_name=GROUPS[name]),
            job=RecommenderJob.default(expected_duration=cdk.Duration.seconds(2)),
            **extra,
        )
    return Template.from_stack(scope).to_json()


TEMPLATE = closed_loop_template()


@pytest.fixture
def ir() -> InferenceRecommenderStandIn:
    return InferenceRecommenderStandIn(recommendations=recommendations(), polls_before_done=2)


@pytest.fixture
def aws(ir: InferenceRecommenderStandIn) -> Iterator[LocalAws]:
    with local_aws(ir) as aws:
        yield aws


@pytest.fixture
def loop(aws: LocalAws) -> LocalStack:
    return LocalStack(aws, TEMPLATE)


def serve(endpoint: str, number: int, *, create: bool = False) -> None:
    """The endpoint serves version ``number`` of its group, on 2 ml.c5.2xlarge: created, or
    updated to it as a deployment pipeline does (a new model and config; the endpoint moved
    onto them, as UpdateEndpoint ends)."""
    sagemaker = boto3.client("sagemaker")
    name = f"{endpoint}-v{number}"
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/model",
        PrimaryContainer={"ModelPackageName": version(endpoint, number)},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InstanceType": "ml.c5.2xlarge",
                "InitialInstanceCount": 2,
            }
        ],
    )
    if create:
        sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=name)
    else:
        sagemaker_backends[ACCOUNT][REGION].endpoints[endpoint].endpoint_config_name = name


def approve(loop: LocalStack, endpoint: str, number: int) -> None:
    """The docs' model package event, for a version of the endpoint's group, Approved."""
    event = docs_sample("model_package_state_change_docs_sample.json")
    event["detail"].update(
        ModelPackageGroupName=GROUPS[endpoint],
        ModelApprovalStatus="Approved",
        ModelPackageArn=version(endpoint, number),
    )
    put(loop, event)


def in_service(loop: LocalStack, endpoint: str) -> None:
    """SageMaker's "Endpoint State Change" to IN_SERVICE (AWS_NOTES.md: upper snake case)."""
    put(
        loop,
        {
            "source": "aws.sagemaker",
            "detail-type": "SageMaker Endpoint State Change",
            "detail": {
                "EndpointName": endpoint,
                "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{endpoint}",
                "EndpointConfigName": f"{endpoint}-v3",
                "EndpointStatus": "IN_SERVICE",
            },
        },
    )


def parameters() -> dict[str, dict[str, Any]]:
    """Every pending recommendation's SSM parameter: name -> its JSON value."""
    found = boto3.client("ssm").get_parameters_by_path(Path="/rightsizing/", Recursive=True)
    return {p["Name"]: json.loads(p["Value"]) for p in found["Parameters"]}


def pending_items(loop: LocalStack) -> list[dict[str, Any]]:
    return loop.ledger_items("pending#")


def test_approval_before_deployment_is_pending_then_applied_when_served(
    loop: LocalStack, ir: InferenceRecommenderStandIn
) -> None:
    serve(AUTO, 2, create=True)
    events = loop.route_events("recommendations", RECOMMENDATIONS_PATTERN)
    approve(loop, AUTO, 3)

    [sized] = loop.deliver()

    assert sized.status == "SUCCEEDED", sized.cause
    assert "PublishPending" in sized.states
    [job] = ir.jobs.values()
    assert job.request["InputConfig"] == {"ModelPackageVersionArn": version(AUTO, 3)}
    [event] = loop.messages(events)
    detail = event["detail"]
    assert detail["action"] == "pending"
    assert detail["pending"]["model_package_version_arn"] == version(AUTO, 3)
    assert detail["pending"]["decision"] == "apply"
    name = f"/rightsizing/pending/{AUTO}/AllTraffic/models-auto/3"
    assert detail["pending"]["parameter_name"] == name
    # A pipeline reads the size to deploy v3 at before it deploys it.
    assert parameters()[name]["instance_type"] == detail["instance_type"] == "ml.m5.xlarge"
    assert parameters()[name]["instance_count"] == detail["instance_count"]
    [item] = pending_items(loop)
    assert item["model_package_version_arn"]["S"] == version(AUTO, 3)
    [record] = loop.ledger_items("recommendation#")
    assert record["outcome"]["S"] == "pending"
    assert loop.matched() == []  # nothing applies a pending recommendation

    # The pipeline deploys v3; SageMaker says the endpoint is in service.
    serve(AUTO, 3)
    in_service(loop, AUTO)
    [served] = loop.deliver()

    assert served.status == "SUCCEEDED", served.cause
    assert "ReuseJob" in served.states and "AcquireJobSlot" not in served.states
    assert len(ir.jobs) == 1  # no second load test
    assert pending_items(loop) == [] and parameters() == {}
    [applying] = loop.deliver()  # the apply recommendation, as the Requests rule delivers it
    assert applying.states[-1] == "ApplyStarted"
    [applied] = loop.executions("apply")
    assert applied.status == "SUCCEEDED", applied.cause
    [update] = loop.aws.updates.updates
    assert update["previous"] == f"{AUTO}-v3"


def test_recommend_only_notifies_when_the_pending_version_is_served(
    loop: LocalStack, ir: InferenceRecommenderStandIn
) -> None:
    serve(NOTIFY, 2, create=True)
    approve(loop, NOTIFY, 3)
    [sized] = loop.deliver()
    assert sized.status == "SUCCEEDED", sized.cause
    notes = loop.subscribe_queue("notes")

    serve(NOTIFY, 3)
    in_service(loop, NOTIFY)
    [served] = loop.deliver()

    assert served.status == "SUCCEEDED", served.cause
    assert "ReuseJob" in served.states
    assert len(ir.jobs) == 1
    [note] = loop.messages(notes)
    assert (note["endpoint_name"], note["action"]) == (NOTIFY, "apply")
    [ignored] = loop.deliver()  # the apply recommendation reaches Route, which ignores it
    assert ignored.states[-1] == "NothingToDo"
    assert loop.executions("apply") == []


def test_a_newer_approval_supersedes_the_pending_recommendation(
    loop: LocalStack, ir: InferenceRecommenderStandIn
) -> None:
    serve(AUTO, 2, create=True)
    approve(loop, AUTO, 3)
    assert [r.status for r in loop.deliver()] == ["SUCCEEDED"]
    approve(loop, AUTO, 4)
    assert [r.status for r in loop.deliver()] == ["SUCCEEDED"]

    assert len(ir.jobs) == 2  # v4 is another model: load-tested
    [item] = pending_items(loop)
    assert item["model_package_version_arn"]["S"] == version(AUTO, 4)
    assert list(parameters()) == [f"/rightsizing/pending/{AUTO}/AllTraffic/models-auto/4"]
    outcomes = sorted(r["outcome"]["S"] for r in loop.ledger_items("recommendation#"))
    assert outcomes == ["pending", "pending", "superseded"]
    [superseded] = [
        r for r in loop.ledger_items("recommendation#") if r["outcome"]["S"] == "superseded"
    ]
    assert version(AUTO, 3) in superseded["reason"]["S"]

    # v3 ships after all: nothing waits for it; the run records so and changes nothing.
    serve(AUTO, 3)
    in_service(loop, AUTO)
    [served] = loop.deliver()
    assert served.states[-2:] == ["RecordNothingPending", "NothingPending"]
    assert len(pending_items(loop)) == 1


def alarm(loop: LocalStack) -> dict[str, Any]:
    """The docs' alarm event, for the AUTO endpoint's latency alarm, in ALARM."""
    [name] = [
        e["triggers"]["latency_alarm_name"]
        for e in loop.registry
        if "latency_alarm_name" in e["triggers"]
    ]
    event = docs_sample("cloudwatch_alarm_state_change_docs_sample.json")
    event["resources"] = [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"]
    event["detail"]["alarmName"] = name
    event["detail"]["state"]["value"] = "ALARM"
    return event


def measured_three_days_ago(loop: LocalStack, ir: InferenceRecommenderStandIn) -> str:
    """A job that measured the AUTO endpoint's model 3 days ago, in IR and in the ledger (the
    record RecordRecommendation wrote then, with the fingerprint Prepare gave it)."""
    settings = loop.endpoint_input(AUTO)["settings"]
    sagemaker = boto3.client("sagemaker")
    measured = measurements.fingerprint(
        measurements.model_identity(
            settings["model"],
            describe_model=lambda name: sagemaker.describe_model(ModelName=name),
            describe_model_package=lambda arn: sagemaker.describe_model_package(
                ModelPackageName=arn
            ),
        ),
        settings["job"],
    )
    name = "rightsizing-000000000000000000000003"
    ir.jobs[name] = Job(
        request={
            "JobName": name,
            "JobType": "Default",
            "RoleArn": settings["job_role_arn"],
            "InputConfig": {"ModelPackageVersionArn": version(AUTO, 2)},
        },
        status="COMPLETED",
        completed_at=time.time() - 3 * 86400,
    )
    recorded = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3 * 86400 + 60))
    boto3.client("dynamodb").put_item(
        TableName=loop.ledger_table,
        Item={
            "pk": {"S": f"endpoint#{AUTO}"},
            "sk": {"S": f"recommendation#{recorded}#earlier-run"},
            "recorded_at": {"S": recorded},
            "outcome": {"S": "no-change"},
            "reason": {"S": "the endpoint already runs it"},
            "record": {
                "S": json.dumps(
                    {"variant_name": "AllTraffic", "job_name": name, "model_fingerprint": measured}
                )
            },
        },
    )
    return name


def test_a_latency_alarm_on_a_model_measured_3_days_ago_applies_without_a_load_test(
    loop: LocalStack, ir: InferenceRecommenderStandIn, aws: LocalAws
) -> None:
    serve(AUTO, 2, create=True)
    job = measured_three_days_ago(loop, ir)
    put(loop, alarm(loop))

    [run] = loop.deliver()

    assert run.status == "SUCCEEDED", run.cause
    assert "ReuseJob" in run.states and "StartJob" not in run.states
    assert aws.calls_of("sagemaker", "CreateInferenceRecommendationsJob") == 0
    [record] = [
        json.loads(r["record"]["S"])
        for r in loop.ledger_items("recommendation#")
        if r["outcome"]["S"] == "apply"
    ]
    assert (record["job_name"], record["job_reused"]) == (job, True)
    assert record["trigger"]["kind"] == "latency-alarm"
    [applying] = loop.deliver()
    assert applying.states[-1] == "ApplyStarted"
    [applied] = loop.executions("apply")
    assert applied.status == "SUCCEEDED", applied.cause


def test_a_latency_alarm_on_a_changed_model_load_tests(
    loop: LocalStack, ir: InferenceRecommenderStandIn, aws: LocalAws
) -> None:
    serve(AUTO, 2, create=True)
    measured_three_days_ago(loop, ir)
    # The version's inference specification was replaced since (UpdateModelPackage takes an
    # InferenceSpecification; moto does not implement that part, so it is set on its backend).
    package = sagemaker_backends[ACCOUNT][REGION].model_packages[version(AUTO, 2)]
    package.inference_specification["Containers"][0]["Image"] += "-retrained"
    put(loop, alarm(loop))

    [run] = loop.deliver()

    assert run.status == "SUCCEEDED", run.cause
    assert "StartJob" in run.states and "ReuseJob" not in run.states
    assert aws.calls_of("sagemaker", "CreateInferenceRecommendationsJob") == 1
    assert len(ir.jobs) == 2
