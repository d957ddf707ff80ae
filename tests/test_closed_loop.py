"""The closed loop's runtime: a stored load test reused, an approved version sized before it ships.

Every request goes through botocore's Stubber (``expected_params``, validated against the
service models): Prepare's reads of the model and of the ledger, the pending recommendation's
put, take and supersede, and its SSM parameter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from botocore.stub import ANY, Stubber
from rightsizing_runtime import measurements, route, start_job
from rightsizing_runtime.pending import NothingPendingError, parameter_value
from rightsizing_runtime.recommendation import Measured, pending_parameter_name, recommend
from rightsizing_runtime.registry import REGISTRY_VERSION, load
from rightsizing_runtime.triggers import InvalidTriggerError, trigger_from

from rightsizing_constructs import ModelApproval
from tests.infra import rightsizing, stack
from tests.test_decision import candidate, inputs
from tests.test_handlers import (
    describe_endpoint_config_response,
    describe_endpoint_response,
    settings_document,
)

TABLE = "rightsizing-ledger"
ARN_PREFIX = "arn:aws:sagemaker:us-east-1:123456789012"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
GROUP_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/fraud-scoring"
V2, V3, V4 = (f"{GROUP_ARN}/{n}" for n in (2, 3, 4))
JOB = "rightsizing-0123456789abcdef01234567"
CONTAINER = {"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/fraud:3", "Environment": {}}
PARAMETER = "/rightsizing/pending/fraud-scoring/AllTraffic/fraud-scoring/3"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Stubber]]:
    """Stubbers on Prepare's three clients, at a fixed time, with the ledger's name set."""
    monkeypatch.setenv("LEDGER_TABLE_NAME", TABLE)
    monkeypatch.setattr(start_job, "_now", lambda: NOW)
    with (
        Stubber(start_job.sagemaker) as sagemaker,
        Stubber(start_job.dynamodb) as dynamodb,
        Stubber(start_job.ssm) as ssm,
    ):
        yield {"sagemaker": sagemaker, "dynamodb": dynamodb, "ssm": ssm}
        for stubber in (sagemaker, dynamodb, ssm):
            stubber.assert_no_pending_responses()


def _serving(stubber: Stubber, version: str) -> None:
    """DescribeEndpoint, then the served model: its config and its model's package version."""
    stubber.add_response(
        "describe_endpoint", describe_endpoint_response(), {"EndpointName": "fraud-scoring"}
    )
    _served(stubber, version)


def _served(stubber: Stubber, version: str) -> None:
    stubber.add_response(
        "describe_endpoint_config",
        describe_endpoint_config_response("ml.c5.xlarge", 2),
        {"EndpointConfigName": "fraud-scoring-config-1"},
    )
    stubber.add_response(
        "describe_model",
        {
            "ModelName": "fraud-scoring-model",
            "ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/fraud-scoring-model",
            "PrimaryContainer": {"ModelPackageName": version},
            "CreationTime": NOW,
        },
        {"ModelName": "fraud-scoring-model"},
    )


def _package(stubber: Stubber, version: str, image: str = CONTAINER["Image"]) -> None:
    """DescribeModelPackage: the containers the version's fingerprint is made of."""
    stubber.add_response(
        "describe_model_package",
        {
            "ModelPackageName": "fraud-scoring",
            "ModelPackageArn": version,
            "CreationTime": NOW,
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": []},
            "InferenceSpecification": {
                "Containers": [{"Image": image, "Environment": {}}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        },
        {"ModelPackageName": version},
    )


def _fingerprint(version: str, image: str = CONTAINER["Image"]) -> str:
    return measurements.fingerprint(
        {
            "model_package_version_arn": version,
            "containers": [{"Image": image, "Environment": {}}],
        },
        {"job_type": "Default"},
    )


def _record(
    *, fingerprint: str, recorded: datetime, outcome: str = "apply", job: str = JOB
) -> dict[str, Any]:
    """A decision record as RecordRecommendation writes it (ledger.py)."""
    at = recorded.isoformat().replace("+00:00", "Z")
    detail = {"variant_name": "AllTraffic", "job_name": job, "model_fingerprint": fingerprint}
    return {
        "pk": {"S": "endpoint#fraud-scoring"},
        "sk": {"S": f"recommendation#{at}#run"},
        "recorded_at": {"S": at},
        "outcome": {"S": outcome},
        "record": {"S": json.dumps(detail)},
        "execution_arn": {"S": "arn:aws:states:us-east-1:123456789012:execution:sm:run"},
    }


def _ledger(stubber: Stubber, items: list[dict[str, Any]]) -> None:
    stubber.add_response(
        "query",
        {"Items": items, "Count": len(items), "ScannedCount": len(items)},
        {"TableName": TABLE, **measurements.ledger_query("fraud-scoring")},
    )


def _job(stubber: Stubber, completed: datetime, status: str = "COMPLETED") -> None:
    stubber.add_response(
        "describe_inference_recommendations_job",
        {
            "JobName": JOB,
            "JobType": "Default",
            "JobArn": f"{ARN_PREFIX}:inference-recommendations-job/{JOB}",
            "RoleArn": "arn:aws:iam::123456789012:role/job",
            "Status": status,
            "CreationTime": completed - timedelta(hours=1),
            "CompletionTime": completed,
            "LastModifiedTime": completed,
            "InputConfig": {"ModelPackageVersionArn": V3},
        },
        {"JobName": JOB},
    )


def _prepare(trigger: dict[str, Any] | None = None, **settings: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"step": "prepare", "settings": settings_document(**settings)}
    if trigger is not None:
        event["trigger"] = trigger
    return start_job.handler(event)


def _approval(version: str) -> dict[str, Any]:
    return {
        "source": "aws.sagemaker",
        "detail_type": "SageMaker Model Package State Change",
        "event": {
            "id": "evt",
            "detail": {"ModelApprovalStatus": "Approved", "ModelPackageArn": version},
        },
    }


def _in_service() -> dict[str, Any]:
    return {
        "source": "aws.sagemaker",
        "detail_type": "SageMaker Endpoint State Change",
        "event": {
            "id": "evt-in-service",
            "detail": {"EndpointName": "fraud-scoring", "EndpointStatus": "IN_SERVICE"},
        },
    }


def _request(**detail: Any) -> dict[str, Any]:
    return {
        "source": "rightsizing-constructs",
        "detail_type": "Rightsizing Run Requested",
        "event": {
            "id": "evt-request",
            "detail": {"endpoint_name": "fraud-scoring", "variant_name": "AllTraffic", **detail},
        },
    }


# -- Re-decide without re-testing ---------------------------------------------------------------


def test_a_job_of_the_same_model_three_days_old_is_reused(aws: dict[str, Stubber]) -> None:
    aws["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint_response(), {"EndpointName": "fraud-scoring"}
    )
    _package(aws["sagemaker"], V3)
    _ledger(aws["dynamodb"], [_record(fingerprint=_fingerprint(V3), recorded=NOW - timedelta(3))])
    _job(aws["sagemaker"], completed=NOW - timedelta(days=3, hours=1))

    run = _prepare(model={"model_package_version_arn": V3})

    assert run["model_fingerprint"] == _fingerprint(V3)
    assert run["reuse"]["job_name"] == JOB
    assert run["reuse"]["completed_at"] == (NOW - timedelta(days=3, hours=1)).isoformat()


def test_a_changed_model_is_load_tested(aws: dict[str, Stubber]) -> None:
    # The same version ARN whose inference specification was replaced: a new image.
    aws["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint_response(), {"EndpointName": "fraud-scoring"}
    )
    _package(aws["sagemaker"], V3, image="123456789012.dkr.ecr.us-east-1.amazonaws.com/fraud:4")
    _ledger(aws["dynamodb"], [_record(fingerprint=_fingerprint(V3), recorded=NOW - timedelta(3))])

    run = _prepare(model={"model_package_version_arn": V3})

    assert "reuse" not in run


@pytest.mark.parametrize(
    ("age", "window_days", "status"),
    [
        (timedelta(days=31), 30, "COMPLETED"),  # older than the window
        (timedelta(days=3), 2, "COMPLETED"),  # the endpoint's own, shorter window
        (timedelta(days=1), 30, "FAILED"),  # never reuse a job that did not complete
    ],
)
def test_too_old_or_unfinished_jobs_are_not_reused(
    aws: dict[str, Stubber], age: timedelta, window_days: int, status: str
) -> None:
    aws["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint_response(), {"EndpointName": "fraud-scoring"}
    )
    _package(aws["sagemaker"], V3)
    record = _record(fingerprint=_fingerprint(V3), recorded=NOW - timedelta(hours=1))
    _ledger(aws["dynamodb"], [record])
    _job(aws["sagemaker"], completed=NOW - age, status=status)

    run = _prepare(
        model={"model_package_version_arn": V3}, reuse_max_age_seconds=window_days * 86400
    )

    assert "reuse" not in run


def test_a_job_ir_no_longer_holds_is_skipped_for_an_older_one(aws: dict[str, Stubber]) -> None:
    aws["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint_response(), {"EndpointName": "fraud-scoring"}
    )
    _package(aws["sagemaker"], V3)
    gone = "rightsizing-ffffffffffffffffffffffff"
    records = [
        _record(fingerprint=_fingerprint(V3), recorded=NOW - timedelta(1), job=gone),
        _record(fingerprint=_fingerprint(V3), recorded=NOW - timedelta(2)),
    ]
    _ledger(aws["dynamodb"], records)
    aws["sagemaker"].add_client_error(
        "describe_inference_recommendations_job",
        service_error_code="ResourceNotFound",
        expected_params={"JobName": gone},
    )
    _job(aws["sagemaker"], completed=NOW - timedelta(2))

    assert _prepare(model={"model_package_version_arn": V3})["reuse"]["job_name"] == JOB


@pytest.mark.parametrize(
    ("trigger", "settings"),
    [
        (_request(force_load_test=True), {}),  # `run --load-test`
        (None, {"reuse_max_age_seconds": 0}),  # reuse_load_test_for=Duration.days(0)
    ],
)
def test_a_load_test_asked_for_reads_no_ledger(
    aws: dict[str, Stubber], trigger: dict[str, Any] | None, settings: dict[str, Any]
) -> None:
    aws["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint_response(), {"EndpointName": "fraud-scoring"}
    )
    _package(aws["sagemaker"], V3)

    run = _prepare(trigger, model={"model_package_version_arn": V3}, **settings)

    assert "reuse" not in run  # and no Query was sent: the Stubber would have refused it


def test_a_model_name_is_identified_by_its_containers() -> None:
    described = {"PrimaryContainer": {**CONTAINER, "ModelDataUrl": "s3://b/model.tar.gz"}}
    identity = measurements.model_identity(
        {"model_name": "fraud", "container_config": {"domain": "MACHINE_LEARNING"}},
        describe_model=lambda name: described,
        describe_model_package=lambda arn: pytest.fail("not a package"),
    )
    assert identity["containers"] == [described["PrimaryContainer"]]
    other = {"PrimaryContainer": {**CONTAINER, "ModelDataUrl": "s3://b/model-v2.tar.gz"}}
    changed = measurements.model_identity(
        {"model_name": "fraud", "container_config": {"domain": "MACHINE_LEARNING"}},
        describe_model=lambda name: other,
        describe_model_package=lambda arn: pytest.fail("not a package"),
    )
    job = {"job_type": "Default"}
    assert measurements.fingerprint(identity, job) != measurements.fingerprint(changed, job)
    # A different job definition measures something else too.
    assert measurements.fingerprint(identity, job) != measurements.fingerprint(
        identity, {"job_type": "Advanced", "instance_types": ["ml.c5.xlarge"]}
    )


# -- Size before shipping: the approval ---------------------------------------------------------


def test_an_approved_version_not_served_yet_is_sized_as_pending(aws: dict[str, Stubber]) -> None:
    _serving(aws["sagemaker"], V2)
    _package(aws["sagemaker"], V3)
    _ledger(aws["dynamodb"], [])

    run = _prepare(_approval(V3), pending_expiry_seconds=7 * 86400)

    assert run["model"] == {"model_package_version_arn": V3}
    assert run["pending"] == {
        "model_package_version_arn": V3,
        "expires_at": (NOW + timedelta(days=7)).isoformat(),
        "served": [V2],
    }
    assert run["trigger"]["kind"] == "model-approval"


def test_an_approved_version_already_served_is_an_ordinary_run(aws: dict[str, Stubber]) -> None:
    _serving(aws["sagemaker"], V3)
    _package(aws["sagemaker"], V3)
    _ledger(aws["dynamodb"], [])

    run = _prepare(_approval(V3))

    assert run["model"] == {"model_package_version_arn": V3}
    assert "pending" not in run


def test_other_triggers_of_an_endpoint_sized_on_approvals_test_the_served_version(
    aws: dict[str, Stubber],
) -> None:
    # Configured with v2 at synth; v3 shipped since: a latency alarm's run tests v3.
    _serving(aws["sagemaker"], V3)
    _package(aws["sagemaker"], V3)
    _ledger(aws["dynamodb"], [])

    run = _prepare(model={"model_package_version_arn": V2}, model_from_served=True)

    assert run["model"] == {"model_package_version_arn": V3}
    assert run["model_fingerprint"] == _fingerprint(V3)
    assert "pending" not in run


def test_a_pending_recommendation_names_its_parameter_and_keeps_its_decision() -> None:
    pending = {"model_package_version_arn": V3, "expires_at": "2026-12-13T12:00:00+00:00"}
    detail = recommend(
        candidates=[candidate("ml.c5.xlarge", latency_ms="40")],
        job_name=JOB,
        decision_input=inputs(),
        endpoint_name="fraud-scoring",
        variant_name="AllTraffic",
        measured=Measured(model_fingerprint=_fingerprint(V3), pending=pending),
    )
    assert detail["action"] == "pending"
    assert detail["pending"] == {
        **pending,
        "decision": "apply",
        "parameter_name": PARAMETER,
    }
    assert detail["reason"].startswith(f"pending until fraud-scoring/AllTraffic serves {V3}: ")
    assert detail["job_reused"] is False
    assert detail["model_fingerprint"] == _fingerprint(V3)
    value = parameter_value(detail)
    assert len(value.encode()) <= 4096  # a Standard parameter's limit
    assert json.loads(value)["instance_type"] == "ml.c5.xlarge"


def test_parameter_names_follow_the_version() -> None:
    name = pending_parameter_name(
        "a" * 63, "b" * 63, f"{GROUP_ARN.replace('fraud-scoring', 'c' * 63)}/12"
    )
    assert name == f"/rightsizing/pending/{'a' * 63}/{'b' * 63}/{'c' * 63}/12"
    assert len(name) <= 1011 and name.count("/") <= 15


def _pending_detail(version: str) -> dict[str, Any]:
    return recommend(
        candidates=[candidate("ml.c5.xlarge", latency_ms="40")],
        job_name=JOB,
        decision_input=inputs(),
        endpoint_name="fraud-scoring",
        variant_name="AllTraffic",
        measured=Measured(
            pending={"model_package_version_arn": version, "expires_at": "2026-12-13T12:00:00Z"}
        ),
    )


def _put_pending(
    aws: dict[str, Stubber], detail: dict[str, Any], old: dict[str, Any] | None
) -> None:
    name = detail["pending"]["parameter_name"]
    aws["ssm"].add_response(
        "put_parameter",
        {"Version": 1, "Tier": "Standard"},
        {
            "Name": name,
            "Description": ANY,
            "Value": parameter_value(detail),
            "Type": "String",
            "Overwrite": True,
        },
    )
    aws["dynamodb"].add_response(
        "put_item",
        {"Attributes": old} if old else {},
        {
            "TableName": TABLE,
            "Item": {
                "pk": {"S": "endpoint#fraud-scoring"},
                "sk": {"S": "pending#AllTraffic"},
                "model_package_version_arn": {"S": detail["pending"]["model_package_version_arn"]},
                "job_name": {"S": JOB},
                "parameter_name": {"S": name},
                "expires_at": {"N": str(int(datetime(2026, 12, 13, 12, tzinfo=UTC).timestamp()))},
                "recorded_at": {"S": NOW.isoformat()},
                "record": {"S": json.dumps(detail, separators=(",", ":"))},
            },
            "ReturnValues": "ALL_OLD",
        },
    )


def test_publish_keeps_the_pending_recommendation(aws: dict[str, Stubber]) -> None:
    detail = _pending_detail(V3)
    _put_pending(aws, detail, old=None)

    published = start_job.handler({"step": "publish_pending", "recommendation": detail})

    assert published == {"parameter_name": PARAMETER, "superseded": None}


def test_a_newer_approval_supersedes_the_pending_one(aws: dict[str, Stubber]) -> None:
    old = {
        "model_package_version_arn": {"S": V3},
        "parameter_name": {"S": PARAMETER},
        "record": {"S": "{}"},
    }
    detail = _pending_detail(V4)
    _put_pending(aws, detail, old=old)
    aws["ssm"].add_response("delete_parameter", {}, {"Name": PARAMETER})
    aws["dynamodb"].add_response(
        "put_item",
        {},
        {
            "TableName": TABLE,
            "Item": {
                "pk": {"S": "endpoint#fraud-scoring"},
                "sk": {"S": f"recommendation#{NOW.isoformat()}#superseded#AllTraffic"},
                "recorded_at": {"S": NOW.isoformat()},
                "outcome": {"S": "superseded"},
                "reason": {"S": ANY},
                "record": {"S": "{}"},
            },
        },
    )

    published = start_job.handler({"step": "publish_pending", "recommendation": detail})

    assert published["superseded"] == V3
    assert published["parameter_name"].endswith("/fraud-scoring/4")


# -- Size before shipping: the endpoint serves the version --------------------------------------


def _pending_item(version: str, expires: datetime) -> dict[str, Any]:
    return {
        "pk": {"S": "endpoint#fraud-scoring"},
        "sk": {"S": "pending#AllTraffic"},
        "model_package_version_arn": {"S": version},
        "job_name": {"S": JOB},
        "parameter_name": {"S": PARAMETER},
        "expires_at": {"N": str(int(expires.timestamp()))},
    }


KEY = {"pk": {"S": "endpoint#fraud-scoring"}, "sk": {"S": "pending#AllTraffic"}}


def _get_pending(stubber: Stubber, item: dict[str, Any] | None) -> None:
    stubber.add_response(
        "get_item",
        {"Item": item} if item else {},
        {"TableName": TABLE, "Key": KEY, "ConsistentRead": True},
    )


def _take(aws: dict[str, Stubber], version: str, *, taken_by_another: bool = False) -> None:
    params = {
        "TableName": TABLE,
        "Key": KEY,
        "ConditionExpression": "model_package_version_arn = :version",
        "ExpressionAttributeValues": {":version": {"S": version}},
    }
    if taken_by_another:
        aws["dynamodb"].add_client_error(
            "delete_item",
            service_error_code="ConditionalCheckFailedException",
            expected_params=params,
        )
        return
    aws["dynamodb"].add_response("delete_item", {}, params)
    aws["ssm"].add_response("delete_parameter", {}, {"Name": PARAMETER})


def test_serving_the_pending_version_takes_it_and_reuses_its_job(
    aws: dict[str, Stubber],
) -> None:
    _serving(aws["sagemaker"], V3)
    _get_pending(aws["dynamodb"], _pending_item(V3, NOW + timedelta(days=1)))
    _take(aws, V3)
    _package(aws["sagemaker"], V3)

    run = _prepare(_in_service())

    assert run["trigger"]["kind"] == "endpoint-in-service"
    assert run["model"] == {"model_package_version_arn": V3}
    assert run["reuse"] == {"job_name": JOB, "pending_for": {"model_package_version_arn": V3}}


def test_serving_another_version_leaves_the_pending_one_waiting(aws: dict[str, Stubber]) -> None:
    aws["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint_response(), {"EndpointName": "fraud-scoring"}
    )
    _get_pending(aws["dynamodb"], _pending_item(V3, NOW + timedelta(days=1)))
    _served(aws["sagemaker"], V2)

    with pytest.raises(NothingPendingError, match=r"serves .*/2; the pending .*/3 waits"):
        _prepare(_in_service())


def test_nothing_pending_is_said(aws: dict[str, Stubber]) -> None:
    aws["sagemaker"].add_response(
        "describe_endpoint", describe_endpoint_response(), {"EndpointName": "fraud-scoring"}
    )
    _served(aws["sagemaker"], V3)
    _get_pending(aws["dynamodb"], None)

    with pytest.raises(NothingPendingError, match="no pending recommendation"):
        _prepare(_in_service())


def test_an_expired_pending_recommendation_is_removed_not_applied(
    aws: dict[str, Stubber],
) -> None:
    _serving(aws["sagemaker"], V3)
    _get_pending(aws["dynamodb"], _pending_item(V3, NOW - timedelta(seconds=1)))
    _take(aws, V3)

    with pytest.raises(NothingPendingError, match="expired"):
        _prepare(_in_service())


def test_of_two_runs_one_takes_the_pending_recommendation(aws: dict[str, Stubber]) -> None:
    _serving(aws["sagemaker"], V3)
    _get_pending(aws["dynamodb"], _pending_item(V3, NOW + timedelta(days=1)))
    _take(aws, V3, taken_by_another=True)

    with pytest.raises(NothingPendingError, match="taken by another run"):
        _prepare(_in_service())


# -- Triggers and routing -----------------------------------------------------------------------


def test_trigger_kinds_of_the_closed_loop() -> None:
    assert trigger_from(_in_service()).kind == "endpoint-in-service"
    forced = trigger_from(_request(force_load_test=True))
    assert (forced.kind, forced.force_load_test) == ("manual", True)
    assert forced.render()["force_load_test"] is True
    assert "force_load_test" not in trigger_from(_request()).render()
    updating = _in_service()
    updating["event"]["detail"]["EndpointStatus"] = "UPDATING"
    with pytest.raises(InvalidTriggerError, match="only IN_SERVICE"):
        trigger_from(updating)


def _entry(endpoint: str, variant: str, group: str | None) -> dict[str, Any]:
    return {
        "settings": {"endpoint_name": endpoint, "variant_name": variant},
        "apply_settings": None,
        "triggers": {"model_package_group_name": group},
    }


def test_in_service_events_reach_only_variants_sized_on_approval() -> None:
    fleet = load(
        {
            "registry_version": REGISTRY_VERSION,
            "endpoints": [
                _entry("fraud-scoring", "AllTraffic", "fraud-scoring"),
                _entry("churn", "A", "churn"),
                _entry("churn", "B", "churn"),
                _entry("plain", "AllTraffic", None),
            ],
        },
        {},
    )

    def in_service(name: str, status: str = "IN_SERVICE") -> dict[str, Any]:
        trigger = _in_service()
        trigger["event"]["detail"] = {"EndpointName": name, "EndpointStatus": status}
        return route.route({"trigger": trigger}, fleet)

    assert in_service("fraud-scoring")["route"]["action"] == "run"
    fanned = in_service("churn")["route"]
    assert fanned["action"] == "fan_out"
    assert [(r["variant_name"], r["requested_by"]) for r in fanned["requests"]] == [
        ("A", "endpoint-in-service"),
        ("B", "endpoint-in-service"),
    ]
    assert in_service("plain")["route"]["action"] == "ignore"
    assert in_service("unknown")["route"]["record"] is False
    # A fanned-out request is a run of that kind.
    request = _request(requested_by="endpoint-in-service")
    assert trigger_from(request).kind == "endpoint-in-service"


# -- The constructs: settings, validation, the rule ---------------------------------------------


def test_the_settings_document_carries_the_reuse_window_and_the_pending_expiry() -> None:
    endpoint = rightsizing(
        model_approval=ModelApproval(
            model_package_group_name="fraud-scoring",
            pending_expires_after=cdk.Duration.days(3),
        ),
        reuse_load_test_for=cdk.Duration.days(7),
    )
    assert endpoint.settings_document["reuse_max_age_seconds"] == 7 * 86400
    assert endpoint.settings_document["pending_expiry_seconds"] == 3 * 86400
    plain = rightsizing()
    assert endpoint.settings_document["model_from_served"] is True
    assert plain.settings_document["reuse_max_age_seconds"] == 30 * 86400  # the default
    assert "pending_expiry_seconds" not in plain.settings_document
    assert "model_from_served" not in plain.settings_document


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"reuse_load_test_for": cdk.Duration.days(91)},
            "reuse_load_test_for must be from 0 seconds to 90 days, got 91 days",
        ),
        ({"reuse_load_test_for": 30}, "reuse_load_test_for must be a Duration"),
        (
            {
                "model_approval": ModelApproval(
                    model_package_group_name="fraud-scoring",
                    pending_expires_after=cdk.Duration.minutes(5),
                )
            },
            "pending_expires_after must be from 1 hour to 90 days, got 5 minutes",
        ),
    ],
)
def test_bad_closed_loop_settings_fail_synth(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rightsizing(**settings)


def test_endpoints_sized_on_approval_hear_their_endpoint_come_into_service() -> None:
    scope = stack()
    rightsizing(
        scope,
        model_approval=ModelApproval(model_package_group_name="fraud-scoring"),
    )
    rules = Template.from_stack(scope).find_resources("AWS::Events::Rule")
    patterns = [
        json.loads(rule["Properties"]["EventPattern"])
        if isinstance(rule["Properties"]["EventPattern"], str)
        else rule["Properties"]["EventPattern"]
        for rule in rules.values()
        if "EventPattern" in rule["Properties"]
    ]
    branches = [b for p in patterns for b in p.get("$or", [p])]
    assert {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Endpoint State Change"],
        "detail": {"EndpointStatus": ["IN_SERVICE"]},
    } in branches
    # Without an approval trigger no endpoint's state changes are heard.
    plain = stack()
    rightsizing(plain)
    plain_rules = Template.from_stack(plain).to_json()["Resources"]
    assert "SageMaker Endpoint State Change" not in json.dumps(plain_rules)
