"""Re-decide without re-testing: what a load test measured, and the stored one a run may reuse.

An IR job measures one model under one job definition (type, instance types, traffic pattern,
stopping conditions); the decision then weighs those measurements against the traffic, the SLO's
objective and the guardrails. So when only the latter changed (a latency alarm, a finding, a new
peak), a completed job that measured the same model under the same job definition answers as
well as a new one, in seconds instead of 45 minutes to 2 hours of real instances.

- :func:`fingerprint` names what a job measures: the model (a package version's ARN, or the
  images, artifacts and environment of a ``ModelName``'s containers) and the job definition.
- :func:`reusable_job` finds, in the ledger's decision records of the endpoint, the newest job of
  that fingerprint that IR reports ``COMPLETED`` no longer ago than the endpoint allows.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError

from .aws import error_code

logger = logging.getLogger(__name__)

#: Ledger outcomes of runs that decided on a completed job (schema: ``ledger.py``).
DECIDED_OUTCOMES = frozenset({"apply", "no-change", "reject", "pending"})
# The decision records read at most: a record older than the allowed age ends the search sooner.
_MAX_RECORDS = 200
_PAGE = 50


def fingerprint(model_identity: Mapping[str, Any], job: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of what a job measures: ``model_identity`` under the job definition."""
    canonical = json.dumps(
        {"model": model_identity, "job": job}, sort_keys=True, separators=(",", ":"), default=str
    )
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def model_identity(
    model: Mapping[str, Any],
    *,
    describe_model: Callable[[str], Mapping[str, Any]],
    describe_model_package: Callable[[str], Mapping[str, Any]],
) -> dict[str, Any]:
    """What identifies the model a job tests: its containers, as SageMaker describes them now.

    Neither name is enough alone. A model package version's inference specification can be
    replaced (``UpdateModelPackage`` takes an ``InferenceSpecification``, SageMaker API
    reference), and a ``ModelName`` can be deleted and created again with other contents. So the
    identity is the name with its containers' images, artifacts and environment
    (``DescribeModelPackage``'s ``InferenceSpecification.Containers``, ``DescribeModel``'s
    ``PrimaryContainer``/``Containers``), and for a ``ModelName`` the ``container_config`` IR is
    given.
    """
    if "model_package_version_arn" in model:
        arn = str(model["model_package_version_arn"])
        specification = describe_model_package(arn).get("InferenceSpecification") or {}
        return {
            "model_package_version_arn": arn,
            "containers": _containers(specification.get("Containers") or []),
        }
    described = describe_model(str(model["model_name"]))
    return {
        "model_name": model["model_name"],
        "containers": _containers(
            [described.get("PrimaryContainer"), *(described.get("Containers") or [])]
        ),
        "container_config": model.get("container_config"),
    }


# What a container runs: its code, its weights and its configuration.
_CONTAINER_KEYS = (
    "Image",
    "ImageDigest",
    "ModelDataUrl",
    "ModelDataSource",
    "Environment",
    "ModelPackageName",
    "InferenceSpecificationName",
)


def _containers(containers: list[Any]) -> list[dict[str, Any]]:
    return [
        {key: container[key] for key in _CONTAINER_KEYS if key in container}
        for container in containers
        if container
    ]


def reusable_job(
    *,
    ledger_pages: Iterator[Mapping[str, Any]],
    variant_name: str,
    measured: str,
    max_age: datetime.timedelta,
    now: datetime.datetime,
    describe_job: Callable[[str], Mapping[str, Any]],
) -> dict[str, Any] | None:
    """The newest completed job of fingerprint ``measured`` at most ``max_age`` old, or None.

    ``ledger_pages`` are the pages of a Query of the endpoint's ``recommendation#`` records,
    newest first (``ScanIndexForward=False``). Each candidate job is described: only a job IR
    still holds, ``COMPLETED``, with a ``CompletionTime`` inside the age is reused.
    """
    oldest = now - max_age
    seen = 0
    for page in ledger_pages:
        for item in page.get("Items", []):
            seen += 1
            if seen > _MAX_RECORDS:
                return None
            recorded_at = _time(item.get("recorded_at", {}).get("S"))
            if recorded_at is not None and recorded_at < oldest:
                return None  # newest first: every later record is older still
            if item.get("outcome", {}).get("S") not in DECIDED_OUTCOMES:
                continue
            record = _record(item)
            if (
                record.get("variant_name") != variant_name
                or record.get("model_fingerprint") != measured
                or not record.get("job_name")
            ):
                continue
            job = _completed_job(str(record["job_name"]), describe_job)
            if job is None:
                continue
            completed_at = job.get("CompletionTime") or job.get("LastModifiedTime")
            if not isinstance(completed_at, datetime.datetime) or completed_at < oldest:
                continue
            return {
                "job_name": record["job_name"],
                "completed_at": completed_at.isoformat(),
                "recorded_at": item.get("recorded_at", {}).get("S"),
                "execution_arn": item.get("execution_arn", {}).get("S"),
            }
    return None


def ledger_query(endpoint_name: str) -> dict[str, Any]:
    """The Query (without ``TableName``) of an endpoint's decision records, newest first."""
    return {
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {
            ":pk": {"S": f"endpoint#{endpoint_name}"},
            ":prefix": {"S": "recommendation#"},
        },
        "ScanIndexForward": False,
        "Limit": _PAGE,
    }


def _completed_job(
    name: str, describe_job: Callable[[str], Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    try:
        job = describe_job(name)
    except ClientError as error:
        if error_code(error) == "ResourceNotFound":
            logger.info("job %s is no longer held by IR; not reused", name)
            return None
        raise
    return job if job.get("Status") == "COMPLETED" else None


def _record(item: Mapping[str, Any]) -> Mapping[str, Any]:
    try:
        record = json.loads(item.get("record", {}).get("S", "{}"))
    except ValueError:
        return {}
    return record if isinstance(record, Mapping) else {}


def _time(value: Any) -> datetime.datetime | None:
    """A ledger time (Step Functions' ``$$.State.EnteredTime``, ISO 8601 with ``Z``)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)
