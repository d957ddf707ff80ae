"""UtilizationAudit: find over- and under-provisioned endpoints from their CloudWatch history.

Invoked by the audit's schedule rule with ``{"settings": {...}}`` (the construct renders it:
``endpoint_names``, ``tags``, ``lookback_days``, ``percentile``, ``band``, ``slo``,
``compute_optimizer``). For each watched endpoint's instance variants it reads the history over
the lookback window with batched ``GetMetricData`` calls, judges each variant
(``utilization.classify``), records the findings in the ledger (``LEDGER_TABLE_NAME``) and
publishes each as a "Rightsizing Finding" event on ``EVENT_BUS_NAME`` (README, "Utilization
audit"), which an endpoint's rule can turn into a recommend run (``AuditFinding``).

With ``compute_optimizer`` it also publishes Compute Optimizer's EC2 instance findings (the
training side: GPU families included) in the same event; an account that has not opted in gets
one ``OptInRequired`` finding, not an error.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import ClientError

from .aws import CLIENT_CONFIG, endpoint_not_found, error_code, sagemaker_client
from .triggers import EVENT_SOURCE, FINDING
from .utilization import Band, Capacity, History, Shape, Slo, classify

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

sagemaker = sagemaker_client()
cloudwatch = boto3.client("cloudwatch", config=CLIENT_CONFIG)
ec2 = boto3.client("ec2", config=CLIENT_CONFIG)
tagging = boto3.client("resourcegroupstaggingapi", config=CLIENT_CONFIG)
dynamodb = boto3.client("dynamodb", config=CLIENT_CONFIG)
events = boto3.client("events", config=CLIENT_CONFIG)
compute_optimizer = boto3.client("compute-optimizer", config=CLIENT_CONFIG)

SCHEMA_VERSION = 1
#: GetMetricData's limits per call (CloudWatch API reference): queries and returned datapoints.
MAX_QUERIES_PER_CALL = 500
MAX_DATAPOINTS_PER_CALL = 100_800
#: PutEvents takes at most 10 entries, DescribeInstanceTypes 100 types, BatchWriteItem 25 items.
_EVENTS_PER_CALL = 10
_TYPES_PER_CALL = 100
_ITEMS_PER_WRITE = 25
_HOUR = 3600
_INVOCATION_NAMESPACE = "AWS/SageMaker"
_INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What the construct asks the audit to do (its rule's input)."""

    endpoint_names: tuple[str, ...]
    tags: Mapping[str, str]
    lookback_days: int
    percentile: str
    band: Band
    slo: Slo | None
    compute_optimizer: bool


@dataclass(frozen=True, kw_only=True)
class Variant:
    """An instance variant being audited, as it runs now."""

    endpoint_name: str
    variant_name: str
    instance_type: str
    instance_count: int


def handler(event: dict[str, Any], _context: object = None) -> dict[str, Any]:
    """Audit every watched variant; return how many findings of each classification."""
    settings = parse_settings(event["settings"])
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=settings.lookback_days)
    variants = watched_variants(settings)
    findings = audit(variants, settings, start, end)
    if settings.compute_optimizer:
        findings += compute_optimizer_findings(end)
    record(findings)
    publish(findings)
    counts = Counter(f["classification"] for f in findings)
    logger.info("audited %d variants: %s", len(variants), dict(counts))
    return {"variants": len(variants), "findings": len(findings), "by_classification": counts}


def parse_settings(raw: Mapping[str, Any]) -> Settings:
    """The rule input's ``settings`` object."""
    slo = raw.get("slo")
    return Settings(
        endpoint_names=tuple(raw.get("endpoint_names") or ()),
        tags=dict(raw.get("tags") or {}),
        lookback_days=int(raw["lookback_days"]),
        percentile=str(raw["percentile"]),
        band=Band(low=float(raw["band"]["low"]), high=float(raw["band"]["high"])),
        slo=None
        if not slo
        else Slo(percentile=str(slo["percentile"]).lower(), max_latency_ms=slo["max_latency_ms"]),
        compute_optimizer=bool(raw.get("compute_optimizer")),
    )


# -- Which variants ------------------------------------------------------------------------------


def watched_variants(settings: Settings) -> list[Variant]:
    """The instance variants of the watched endpoints: named, tagged, or every one in service."""
    if settings.endpoint_names:
        names: Sequence[str] = settings.endpoint_names
    elif settings.tags:
        names = tagged_endpoints(settings.tags)
    else:
        names = endpoints_in_service()
    variants: list[Variant] = []
    for name in names:
        variants += endpoint_variants(name)
    return variants


def tagged_endpoints(tags: Mapping[str, str]) -> list[str]:
    """Endpoints carrying every tag (Resource Groups Tagging API: one paginated listing)."""
    pages = tagging.get_paginator("get_resources").paginate(
        ResourceTypeFilters=["sagemaker:endpoint"],
        TagFilters=[{"Key": key, "Values": [value]} for key, value in sorted(tags.items())],
    )
    # arn:aws:sagemaker:<region>:<account>:endpoint/<name>
    return [
        mapping["ResourceARN"].split("/", 1)[1]
        for page in pages
        for mapping in page["ResourceTagMappingList"]
    ]


def endpoints_in_service() -> list[str]:
    """Every endpoint of the account and region that is in service."""
    pages = sagemaker.get_paginator("list_endpoints").paginate(
        StatusEquals="InService", PaginationConfig={"PageSize": 100}
    )
    return [endpoint["EndpointName"] for page in pages for endpoint in page["Endpoints"]]


def endpoint_variants(name: str) -> list[Variant]:
    """The endpoint's instance variants (serverless ones have no instances to size)."""
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=name)
        config = sagemaker.describe_endpoint_config(
            EndpointConfigName=endpoint["EndpointConfigName"]
        )
    except ClientError as error:
        if endpoint_not_found(error):
            logger.warning("endpoint %s does not exist: not audited", name)
            return []
        raise
    types = {
        v["VariantName"]: v["InstanceType"]
        for v in config["ProductionVariants"]
        if "InstanceType" in v
    }
    return [
        Variant(
            endpoint_name=endpoint["EndpointName"],
            variant_name=v["VariantName"],
            instance_type=types[v["VariantName"]],
            instance_count=int(v.get("CurrentInstanceCount") or 0),
        )
        for v in endpoint.get("ProductionVariants", [])
        if v["VariantName"] in types
    ]


# -- Judging them --------------------------------------------------------------------------------


def audit(
    variants: Sequence[Variant], settings: Settings, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """One finding per variant, from its history, its instance shape and its last recommendation."""
    shapes = instance_shapes({v.instance_type for v in variants})
    # One ledger query per endpoint, in the order the endpoints were found.
    last = {
        name: last_recommendation(name) for name in dict.fromkeys(v.endpoint_name for v in variants)
    }
    judged = []
    for variant in variants:
        slo, capacity = _from_recommendation(last[variant.endpoint_name], variant, settings.slo)
        judged.append((variant, shapes.get(variant.instance_type), slo, capacity))
    histories = metric_histories(
        [(v, shape, slo) for v, shape, slo, _ in judged], settings.percentile, start, end
    )
    findings = []
    for (variant, shape, slo, capacity), history in zip(judged, histories, strict=True):
        verdict = classify(
            history,
            shape=shape,
            instance_count=variant.instance_count,
            band=settings.band,
            slo=slo,
            capacity=capacity,
        )
        findings.append(
            {
                "schema_version": SCHEMA_VERSION,
                "source": "cloudwatch",
                "resource_type": "sagemaker-endpoint-variant",
                "endpoint_name": variant.endpoint_name,
                "variant_name": variant.variant_name,
                "instance_type": variant.instance_type,
                "instance_count": variant.instance_count,
                "classification": verdict.classification,
                "reasons": list(verdict.reasons),
                "evidence": dict(verdict.evidence),
                "cost_per_hour": verdict.cost_per_hour,
                "lookback_days": settings.lookback_days,
                "percentile": settings.percentile,
                "band": {"low": settings.band.low, "high": settings.band.high},
                "window": {"start": start.isoformat(), "end": end.isoformat()},
            }
        )
    return findings


def instance_shapes(instance_types: set[str]) -> dict[str, Shape]:
    """VCPUs and GPUs of each ``ml.`` type, from EC2's description of the same hardware.

    ``ml.g5.12xlarge`` runs on a ``g5.12xlarge``. A type EC2 does not know is left out (its
    utilizations cannot be normalized, so the audit will not judge them).
    """
    by_ec2_name = {t.removeprefix("ml."): t for t in sorted(instance_types)}
    shapes: dict[str, Shape] = {}
    names = list(by_ec2_name)
    for i in range(0, len(names), _TYPES_PER_CALL):
        for description in _describe_types(names[i : i + _TYPES_PER_CALL]):
            gpus = sum(g["Count"] for g in description.get("GpuInfo", {}).get("Gpus", []))
            shapes[by_ec2_name[description["InstanceType"]]] = Shape(
                vcpus=description["VCpuInfo"]["DefaultVCpus"], gpus=gpus
            )
    return shapes


def _describe_types(names: list[str]) -> list[dict[str, Any]]:
    """DescribeInstanceTypes for ``names``; one unknown name fails the call, so then one by one."""
    pages = ec2.get_paginator("describe_instance_types").paginate(InstanceTypes=names)
    try:
        return [description for page in pages for description in page["InstanceTypes"]]
    except ClientError as error:
        if error_code(error) != "InvalidInstanceType":
            raise
        if len(names) == 1:
            logger.warning("EC2 does not describe %s: not normalized", names[0])
            return []
    return [d for name in names for d in _describe_types([name])]


def last_recommendation(endpoint_name: str) -> dict[str, Any] | None:
    """The newest recommendation record of the endpoint in the ledger (failed runs skipped)."""
    page = dynamodb.query(
        TableName=os.environ["LEDGER_TABLE_NAME"],
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={
            ":pk": {"S": f"endpoint#{endpoint_name}"},
            ":prefix": {"S": "recommendation#"},
        },
        ScanIndexForward=False,
        Limit=10,
    )
    for item in page["Items"]:
        try:
            record = json.loads(item.get("record", {}).get("S", ""))
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("candidates"):
            return record
    return None


def _from_recommendation(
    record: Mapping[str, Any] | None, variant: Variant, default_slo: Slo | None
) -> tuple[Slo | None, Capacity]:
    """The SLO the endpoint is held to and what IR measured for the type it runs on."""
    if record is None or record.get("variant_name") != variant.variant_name:
        return default_slo, Capacity()
    slo_input = record.get("inputs", {}).get("slo") or {}
    slo = (
        Slo(
            percentile=str(slo_input["percentile"]).lower(),
            max_latency_ms=slo_input["max_latency_ms"],
        )
        if slo_input.get("percentile") and slo_input.get("max_latency_ms")
        else default_slo
    )
    measured: Mapping[str, Any] = next(
        (c for c in record["candidates"] if c.get("instance_type") == variant.instance_type), {}
    )
    return slo, Capacity(
        max_invocations_per_instance_per_minute=measured.get(
            "max_invocations_per_instance_per_minute"
        ),
        cost_per_hour=measured.get("cost_per_hour"),
    )


# -- CloudWatch, batched -------------------------------------------------------------------------


def variant_queries(
    index: int,
    variant: Variant,
    shape: Shape | None,
    slo: Slo | None,
    percentile: str,
    window_seconds: int,
) -> list[dict[str, Any]]:
    """The MetricDataQueries of one variant (ids ``v<index>_<what>``).

    Each asks for one statistic over the whole window (one datapoint), except ``hours``: the
    sample count per hour of ``CPUUtilization``, which SageMaker publishes every minute while
    the instances run, counts the hours with data.
    """
    dimensions = [
        {"Name": "EndpointName", "Value": variant.endpoint_name},
        {"Name": "VariantName", "Value": variant.variant_name},
    ]

    def query(key: str, namespace: str, metric: str, stat: str, period: int) -> dict[str, Any]:
        return {
            "Id": f"v{index}_{key}",
            "MetricStat": {
                "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dimensions},
                "Period": period,
                "Stat": stat,
            },
            "ReturnData": True,
        }

    queries = [
        query("hours", _INSTANCE_NAMESPACE, "CPUUtilization", "SampleCount", _HOUR),
        query("invocations", _INVOCATION_NAMESPACE, "Invocations", "Sum", window_seconds),
        # The largest per-minute value in the window: the datapoints are per-minute sums.
        query("peak", _INVOCATION_NAMESPACE, "InvocationsPerInstance", "Maximum", window_seconds),
        query("cpu", _INSTANCE_NAMESPACE, "CPUUtilization", percentile, window_seconds),
        query("memory", _INSTANCE_NAMESPACE, "MemoryUtilization", percentile, window_seconds),
    ]
    if slo is not None:
        queries.append(
            query("latency", _INVOCATION_NAMESPACE, "ModelLatency", slo.percentile, window_seconds)
        )
    if shape is not None and shape.gpus:
        queries.append(
            query("gpu", _INSTANCE_NAMESPACE, "GPUUtilization", percentile, window_seconds)
        )
        queries.append(
            query(
                "gpumemory", _INSTANCE_NAMESPACE, "GPUMemoryUtilization", percentile, window_seconds
            )
        )
    return queries


def batches(
    per_variant: Sequence[list[dict[str, Any]]], datapoints_per_variant: int
) -> Iterator[list[dict[str, Any]]]:
    """Whole variants' queries packed into calls within GetMetricData's limits."""
    batch: list[dict[str, Any]] = []
    points = 0
    for queries in per_variant:
        if batch and (
            len(batch) + len(queries) > MAX_QUERIES_PER_CALL
            or points + datapoints_per_variant > MAX_DATAPOINTS_PER_CALL
        ):
            yield batch
            batch, points = [], 0
        batch += queries
        points += datapoints_per_variant
    if batch:
        yield batch


def metric_histories(
    variants: Sequence[tuple[Variant, Shape | None, Slo | None]],
    percentile: str,
    start: datetime,
    end: datetime,
) -> list[History]:
    """Each variant's history, fetched with as few GetMetricData calls as the limits allow."""
    window_seconds = int((end - start).total_seconds())
    per_variant = [
        variant_queries(i, variant, shape, slo, percentile, window_seconds)
        for i, (variant, shape, slo) in enumerate(variants)
    ]
    # The hourly sample counts, plus one datapoint for each other query (at most 7).
    datapoints_per_variant = window_seconds // _HOUR + 7
    values: dict[str, list[float]] = {}
    paginator = cloudwatch.get_paginator("get_metric_data")
    for batch in batches(per_variant, datapoints_per_variant):
        pages = paginator.paginate(
            MetricDataQueries=batch, StartTime=start, EndTime=end, ScanBy="TimestampDescending"
        )
        for page in pages:
            for result in page["MetricDataResults"]:
                values.setdefault(result["Id"], []).extend(result["Values"])

    def first(index: int, key: str) -> float | None:
        found = values.get(f"v{index}_{key}")
        return float(found[0]) if found else None

    return [
        History(
            hours_with_data=sum(1 for v in values.get(f"v{i}_hours", []) if v > 0),
            invocations=first(i, "invocations"),
            invocations_per_instance_peak=first(i, "peak"),
            model_latency_us=first(i, "latency"),
            cpu=first(i, "cpu"),
            memory=first(i, "memory"),
            gpu=first(i, "gpu"),
            gpu_memory=first(i, "gpumemory"),
        )
        for i in range(len(variants))
    ]


# -- Compute Optimizer (EC2) ---------------------------------------------------------------------


def compute_optimizer_findings(now: datetime) -> list[dict[str, Any]]:
    """Compute Optimizer's EC2 instance findings, or one ``OptInRequired`` finding."""
    recommendations = []
    kwargs: dict[str, Any] = {}
    try:
        while True:
            page = compute_optimizer.get_ec2_instance_recommendations(**kwargs)
            recommendations += page["instanceRecommendations"]
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
    except ClientError as error:
        if error_code(error) != "OptInRequiredException":
            raise
        return [
            {
                "schema_version": SCHEMA_VERSION,
                "source": "compute-optimizer",
                "resource_type": "account",
                "classification": "OptInRequired",
                "reasons": [
                    "this account has not opted in to AWS Compute Optimizer, so it has no EC2 "
                    "findings: opt in (aws compute-optimizer update-enrollment-status --status "
                    "Active) and allow 30 hours of metrics"
                ],
                "window": {"end": now.isoformat()},
            }
        ]
    return [_compute_optimizer_finding(r, now) for r in recommendations]


def _compute_optimizer_finding(recommendation: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    options = sorted(recommendation.get("recommendationOptions", []), key=lambda o: o["rank"])
    top = options[0] if options else None
    savings = (top or {}).get("savingsOpportunity") or {}
    return {
        "schema_version": SCHEMA_VERSION,
        "source": "compute-optimizer",
        "resource_type": "ec2-instance",
        "instance_arn": recommendation["instanceArn"],
        "instance_name": recommendation.get("instanceName"),
        "instance_type": recommendation.get("currentInstanceType"),
        "classification": recommendation["finding"],
        "reasons": list(recommendation.get("findingReasonCodes", [])),
        "finding_reason_codes": list(recommendation.get("findingReasonCodes", [])),
        "idle": recommendation.get("idle"),
        "top_option": None
        if top is None
        else {
            "instance_type": top["instanceType"],
            "performance_risk": top.get("performanceRisk"),
            "savings_opportunity_percentage": savings.get("savingsOpportunityPercentage"),
        },
        "estimated_monthly_savings": savings.get("estimatedMonthlySavings"),
        "lookback_days": recommendation.get("lookBackPeriodInDays"),
        "window": {"end": now.isoformat()},
    }


# -- Recording and publishing --------------------------------------------------------------------


def ledger_key(finding: Mapping[str, Any]) -> str:
    """The ledger partition of a finding: the endpoint's, the instance's or the account's."""
    if finding["resource_type"] == "sagemaker-endpoint-variant":
        return f"endpoint#{finding['endpoint_name']}"
    if finding["resource_type"] == "ec2-instance":
        return f"instance#{finding['instance_arn']}"
    return "account#compute-optimizer"


def record(findings: Sequence[Mapping[str, Any]]) -> None:
    """Write every finding to the ledger (``sk`` ``finding#<window end>#<variant>``)."""
    items = [
        {
            "PutRequest": {
                "Item": {
                    "pk": {"S": ledger_key(f)},
                    "sk": {"S": f"finding#{f['window']['end']}#{f.get('variant_name', '')}"},
                    "classification": {"S": f["classification"]},
                    "record": {"S": json.dumps(f, sort_keys=True)},
                }
            }
        }
        for f in findings
    ]
    table = os.environ["LEDGER_TABLE_NAME"]
    for i in range(0, len(items), _ITEMS_PER_WRITE):
        pending = {table: items[i : i + _ITEMS_PER_WRITE]}
        for _ in range(5):
            unprocessed = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems")
            if not unprocessed:
                break
            pending = unprocessed
        else:
            raise RuntimeError(f"{len(pending[table])} findings not recorded after 5 attempts")


def publish(findings: Sequence[Mapping[str, Any]]) -> None:
    """One "Rightsizing Finding" event per finding, ten per PutEvents call."""
    bus = os.environ["EVENT_BUS_NAME"]
    for i in range(0, len(findings), _EVENTS_PER_CALL):
        entries = [
            {
                "Source": EVENT_SOURCE,
                "DetailType": FINDING,
                "Detail": json.dumps(f, sort_keys=True),
                "EventBusName": bus,
            }
            for f in findings[i : i + _EVENTS_PER_CALL]
        ]
        response = events.put_events(Entries=entries)
        if response.get("FailedEntryCount"):
            failed = [e for e in response["Entries"] if e.get("ErrorCode")]
            raise RuntimeError(f"{len(failed)} finding events not published: {failed[:3]}")
