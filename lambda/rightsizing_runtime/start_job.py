"""StartJob: prepare a run (endpoint, trigger, model), then start its Inference Recommender job.

Two steps of the Recommend workflow run here (``event["step"]``):

- ``prepare``: ``{"settings", "trigger"}`` -> the run's settings document: the endpoint's
  settings, checked against the endpoint, with ``trigger`` resolved (``triggers.py``) and:

  - ``model``: for a model approval, the approved version, which IR tests. A version the
    endpoint does not serve yet is sized before it ships: ``pending`` says so
    (``pending.py``); the library never swaps a model itself. For other triggers of an
    endpoint sized on approvals (``model_from_served``), the version it serves now.
  - ``model_fingerprint``: what the load test measures (``measurements.py``).
  - ``reuse``: the completed job the run decides from instead of a new load test, when one
    measured the same fingerprint recently enough (``reuse_max_age_seconds``) and the trigger
    did not ask for a load test; for an endpoint that starts serving a pending version, that
    pending run's job (:class:`NothingPendingError` when there is none).
  - ``peak_requests_per_minute`` measured (``traffic.py``) when the settings have
    ``peak_traffic``, and ``peak_source``: where the run's peak came from.
- ``start`` (the default): ``{"settings", "execution_arn"}`` -> ``{"job_name", "job_arn"}``.
- ``publish_pending``: ``{"recommendation"}`` (a ``pending`` recommendation's detail) ->
  where it was kept, and the version it superseded.

An inference component's settings (``"kind": "inference-component"``) run ``prepare``,
``start`` and ``status`` (one poll of its AI recommendation job) in ``component_job.py``.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.exceptions import ClientError

from . import component_job, measurements, pending
from .aws import (
    CLIENT_CONFIG,
    endpoint_not_found,
    error_code,
    retryable_errors_typed,
    sagemaker_client,
)
from .errors import EndpointNotFoundError, UnsupportedEndpointError
from .job_request import create_job_request, job_name
from .settings import EndpointSettings, parse_settings
from .traffic import CONFIGURED, resolve_peak
from .triggers import IN_SERVICE_KIND, Trigger, trigger_from

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

sagemaker = sagemaker_client()
dynamodb = boto3.client("dynamodb", config=CLIENT_CONFIG)
ssm = boto3.client("ssm", config=CLIENT_CONFIG)
cloudwatch = boto3.client("cloudwatch", config=CLIENT_CONFIG)
# Older settings documents lack the reuse and expiry settings: the construct's defaults.
_DEFAULT_REUSE_MAX_AGE_SECONDS = 30 * 24 * 3600
_DEFAULT_PENDING_EXPIRY_SECONDS = 14 * 24 * 3600
# What an inference component's prepare, start and poll read (component_job.py).
COMPONENT_READS = component_job.Reads(
    endpoint=lambda name: sagemaker.describe_endpoint(EndpointName=name),
    component=lambda name: sagemaker.describe_inference_component(InferenceComponentName=name),
    endpoint_config=lambda name: sagemaker.describe_endpoint_config(EndpointConfigName=name),
    job=lambda name: sagemaker.describe_ai_recommendation_job(AIRecommendationJobName=name),
)


@retryable_errors_typed
def handler(event: dict[str, Any], _context: object = None) -> dict[str, Any]:
    """Run the ``prepare``, ``start`` or ``publish_pending`` step."""
    step = event.get("step")
    if component_job.is_component(event.get("settings") or {}):
        # An inference component's run (InferenceComponentRightsizing): its AI job.
        if step == "prepare":
            return component_job.prepare(event, COMPONENT_READS)
        if step == "status":
            return component_job.status(event["job"]["job_name"], COMPONENT_READS)
        return component_job.start(
            event["settings"],
            job_name(event["execution_arn"]),
            lambda **request: sagemaker.create_ai_recommendation_job(**request),
            COMPONENT_READS,
        )
    if step == "prepare":
        return prepare(event)
    if step == "publish_pending":
        return publish_pending(event["recommendation"])
    return start(event)


def prepare(event: Mapping[str, Any]) -> dict[str, Any]:
    """The run's settings document (see the module docstring)."""
    document = event["settings"]
    settings = parse_settings(document)
    trigger = trigger_from(event.get("trigger"))
    endpoint = check_endpoint(settings)
    run = dict(document)
    run["trigger"] = trigger.render()
    now = _now()
    if trigger.kind == IN_SERVICE_KIND:
        # Raises NothingPendingError when no pending recommendation waits for this endpoint.
        taken = take_pending(settings, served_model_packages(endpoint, settings.variant_name), now)
        run["model"] = {"model_package_version_arn": taken["model_package_version_arn"]}
        run["reuse"] = {"job_name": taken["job_name"], "pending_for": run["model"]}
    else:
        version = trigger.model_package_version_arn
        if version is None and document.get("model_from_served"):
            # Sized on approvals: the version deployed since synth is the one to test, not the
            # one the construct was given.
            version_served = _one_served_version(endpoint, settings)
            if version_served is not None:
                run["model"] = {"model_package_version_arn": version_served}
        if version is not None:
            run["model"] = {"model_package_version_arn": version}
            served = served_model_packages(endpoint, settings.variant_name)
            if version not in served:
                expiry = int(
                    document.get("pending_expiry_seconds", _DEFAULT_PENDING_EXPIRY_SECONDS)
                )
                run["pending"] = {
                    "model_package_version_arn": version,
                    "expires_at": (now + datetime.timedelta(seconds=expiry)).isoformat(),
                    "served": sorted(served),
                }
    run["model_fingerprint"] = measurements.fingerprint(
        measurements.model_identity(
            run["model"],
            describe_model=lambda name: sagemaker.describe_model(ModelName=name),
            describe_model_package=lambda arn: sagemaker.describe_model_package(
                ModelPackageName=arn
            ),
        ),
        settings.job,
    )
    if "reuse" not in run:
        reused = _reusable_job(settings, trigger, run["model_fingerprint"], document, now)
        if reused is not None:
            run["reuse"] = reused
    # Peak traffic: measured when the settings ask for it (traffic.py).
    run.update(peak_of(settings, now))
    logger.info(
        "prepared a %s run of %s (%s)",
        trigger.kind,
        settings.endpoint_name,
        f"reusing {run['reuse']['job_name']}" if "reuse" in run else "load test",
    )
    return run


def _one_served_version(endpoint: Mapping[str, Any], settings: EndpointSettings) -> str | None:
    """The one model package version the variant serves, or None (none, or several)."""
    served = served_model_packages(endpoint, settings.variant_name)
    if len(served) != 1:
        logger.info(
            "%s/%s serves %d model package versions: IR tests the configured model",
            settings.endpoint_name,
            settings.variant_name,
            len(served),
        )
        return None
    return served.pop()


def _reusable_job(
    settings: EndpointSettings,
    trigger: Trigger,
    measured: str,
    document: Mapping[str, Any],
    now: datetime.datetime,
) -> dict[str, Any] | None:
    """A completed job of the same fingerprint, unless a load test was asked for."""
    max_age = int(document.get("reuse_max_age_seconds", _DEFAULT_REUSE_MAX_AGE_SECONDS))
    if trigger.force_load_test or max_age <= 0:
        return None
    pages = dynamodb.get_paginator("query").paginate(
        TableName=_ledger_table(), **measurements.ledger_query(settings.endpoint_name)
    )
    return measurements.reusable_job(
        ledger_pages=iter(pages),
        variant_name=settings.variant_name,
        measured=measured,
        max_age=datetime.timedelta(seconds=max_age),
        now=now,
        describe_job=lambda name: sagemaker.describe_inference_recommendations_job(JobName=name),
    )


def publish_pending(detail: Mapping[str, Any]) -> dict[str, Any]:
    """Keep a pending recommendation: its SSM parameter, then its ledger item.

    The item replaces the variant's older pending recommendation, if any: that one is superseded
    (its parameter deleted, a ``superseded`` record written). The parameter goes first: the
    item is what an endpoint's state change takes, and it must not name a missing parameter.
    """
    recorded_at = _now().isoformat()
    item = pending.pending_item(detail, recorded_at)
    name = item["parameter_name"]["S"]
    version = item["model_package_version_arn"]["S"]
    ssm.put_parameter(
        Name=name,
        Description=f"Pending rightsizing of {detail['endpoint_name']} for {version}"[:1024],
        Value=pending.parameter_value(detail),
        Type="String",
        Overwrite=True,
    )
    old = dynamodb.put_item(TableName=_ledger_table(), Item=item, ReturnValues="ALL_OLD").get(
        "Attributes"
    )
    superseded = None
    if old and old["model_package_version_arn"]["S"] != version:
        superseded = old["model_package_version_arn"]["S"]
        _delete_parameter(old.get("parameter_name", {}).get("S"))
        dynamodb.put_item(
            TableName=_ledger_table(), Item=pending.superseded_record(old, detail, recorded_at)
        )
        logger.info("the pending recommendation for %s is superseded by %s", superseded, version)
    return {"parameter_name": name, "superseded": superseded}


def take_pending(
    settings: EndpointSettings, served: set[str], now: datetime.datetime
) -> dict[str, Any]:
    """The pending recommendation of the version the endpoint now serves, taken (deleted).

    A conditional delete: of two runs on the same state change, one takes it. Raises
    :class:`pending.NothingPendingError` when nothing waits for this version, another run took
    it, or it expired (then it is removed).
    """
    where = f"{settings.endpoint_name}/{settings.variant_name}"
    key = pending.ledger_key(settings.endpoint_name, settings.variant_name)
    item = dynamodb.get_item(TableName=_ledger_table(), Key=key, ConsistentRead=True).get("Item")
    version, expired = pending.check_pending(item, where=where, served=served, now=now)
    assert item is not None  # check_pending raised otherwise
    try:
        dynamodb.delete_item(
            TableName=_ledger_table(),
            Key=key,
            ConditionExpression="model_package_version_arn = :version",
            ExpressionAttributeValues={":version": {"S": version}},
        )
    except ClientError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise
        raise pending.NothingPendingError(
            f"the pending recommendation of {where} was taken by another run"
        ) from error
    _delete_parameter(item.get("parameter_name", {}).get("S"))
    if expired:
        raise pending.expired_error(item, where)
    return {"model_package_version_arn": version, "job_name": item["job_name"]["S"]}


def _delete_parameter(name: str | None) -> None:
    """Delete a pending recommendation's parameter; one already gone is no error."""
    if not name:
        return
    try:
        ssm.delete_parameter(Name=name)
    except ClientError as error:
        if error_code(error) != "ParameterNotFound":
            raise


def _ledger_table() -> str:
    return os.environ["LEDGER_TABLE_NAME"]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def start(event: Mapping[str, Any]) -> dict[str, Any]:
    """Start (or, on a retried invocation, find) the recommendation job of this execution."""
    settings = parse_settings(event["settings"])
    execution_arn = event["execution_arn"]
    name = job_name(execution_arn)
    try:
        job_arn = sagemaker.create_inference_recommendations_job(
            **create_job_request(settings, name)
        )["JobArn"]
    except ClientError as error:
        if error_code(error) != "ResourceInUse":
            raise
        # A retry of this very invocation: the first attempt created the job. Starting a second
        # load test would bill twice, so reuse it.
        job_arn = sagemaker.describe_inference_recommendations_job(JobName=name)["JobArn"]
        logger.info("job %s already exists for %s; reusing it", name, execution_arn)
    logger.info("started %s for %s/%s", name, settings.endpoint_name, settings.variant_name)
    return {"job_name": name, "job_arn": job_arn}


def peak_of(settings: EndpointSettings, now: datetime.datetime) -> dict[str, Any]:
    """``peak_source``, and the measured ``peak_requests_per_minute`` (``traffic.py``)."""
    if settings.peak_traffic is None:
        return {"peak_source": dict(CONFIGURED)}
    return resolve_peak(
        settings.peak_traffic,
        configured=settings.decision_input.peak_requests_per_minute,
        endpoint_name=settings.endpoint_name,
        variant_name=settings.variant_name,
        read=lambda request: cloudwatch.get_paginator("get_metric_data").paginate(**request),
        now=now,
    )


def check_endpoint(settings: EndpointSettings) -> dict[str, Any]:
    """The endpoint's description, read before any load test is paid for.

    Raises when the endpoint or variant is not there, or cannot be rightsized.
    """
    try:
        endpoint = dict(sagemaker.describe_endpoint(EndpointName=settings.endpoint_name))
    except ClientError as error:
        if endpoint_not_found(error):
            raise EndpointNotFoundError(
                f"endpoint {settings.endpoint_name!r} does not exist in this account and region"
            ) from error
        raise
    variants = {v["VariantName"]: v for v in endpoint.get("ProductionVariants", [])}
    variant = variants.get(settings.variant_name)
    if variant is None:
        raise UnsupportedEndpointError(
            f"endpoint {settings.endpoint_name!r} has no variant {settings.variant_name!r} "
            f"(it has {', '.join(sorted(variants)) or 'none'})"
        )
    if "CurrentServerlessConfig" in variant:
        raise UnsupportedEndpointError(
            f"variant {settings.variant_name!r} of {settings.endpoint_name!r} is serverless; "
            "only instance-based variants are rightsized"
        )
    return endpoint


def served_model_packages(endpoint: Mapping[str, Any], variant_name: str) -> set[str]:
    """The model package versions the variant's model is made from (its containers')."""
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model_name = next(
        (
            v.get("ModelName")
            for v in config.get("ProductionVariants", [])
            if v.get("VariantName") == variant_name
        ),
        None,
    )
    if not model_name:
        return set()
    model = sagemaker.describe_model(ModelName=model_name)
    containers = [model.get("PrimaryContainer") or {}, *(model.get("Containers") or [])]
    return {c["ModelPackageName"] for c in containers if c.get("ModelPackageName")}
