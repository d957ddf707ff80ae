"""UtilizationAudit: find over- and under-provisioned endpoints from their CloudWatch history.

Invoked by the audit's schedule rule with ``{"settings": {...}}`` (the construct renders it:
``endpoint_names``, ``tags``, ``lookback_days``, ``percentile``, ``band``, ``slo``,
``compute_optimizer``). For each watched endpoint's instance variants it reads the history over
the lookback window with batched ``GetMetricData`` calls, judges each variant
(``utilization.classify``), records the findings in the ledger (``LEDGER_TABLE_NAME``) and
publishes each as a "Rightsizing Finding" event on ``EVENT_BUS_NAME`` (README, "Utilization
audit"), which the engine routes to a recommend run of an endpoint with ``AuditFinding``.

With ``inference_components`` it also judges those inference components, each from its
per-copy metrics (``audit_queries`` says which statistic of which metric) by the same rules
(``utilization.classify_component``), one finding each with ``inference_component_name``.

With ``compute_optimizer`` it also publishes Compute Optimizer's EC2 instance findings (the
training side: GPU families included) in the same event; with ``compute_optimizer_idle``,
Compute Optimizer's idle recommendations for the watched endpoints (``GetIdleRecommendations``,
resource type ``SageMakerEndpoint``), one finding per instance variant with the estimated
monthly saving. An account that has not opted in gets one ``OptInRequired`` finding, not an
error.

The AWS calls are here; the queries (which statistic of which metric, and why), their packing
into calls and the findings' shape are in ``audit_queries``, the judgement in ``utilization``.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import ClientError

from .audit_queries import (
    IDLE_PAGE_SIZE,
    IDLE_RESOURCE_TYPE,
    PEAK_DAYS,
    Component,
    Readings,
    Settings,
    Variant,
    batches,
    component_capacity,
    component_finding,
    component_peak_query,
    component_queries,
    compute_optimizer_finding,
    endpoint_finding,
    endpoint_name_of,
    from_recommendation,
    idle_finding,
    ledger_key,
    ledger_sort_key,
    opt_in_required_finding,
    parse_settings,
    peak_datapoints,
    peak_query,
    variant_queries,
    window_datapoints,
)
from .aws import CLIENT_CONFIG, endpoint_not_found, error_code, sagemaker_client
from .metrics import AUDIT_FINDINGS, CLASSIFICATION, emit
from .triggers import EVENT_SOURCE, FINDING
from .utilization import (
    CLASSIFICATIONS,
    ComponentHistory,
    History,
    Shape,
    Slo,
    classify,
    classify_component,
)

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

sagemaker = sagemaker_client()
cloudwatch = boto3.client("cloudwatch", config=CLIENT_CONFIG)
ec2 = boto3.client("ec2", config=CLIENT_CONFIG)
tagging = boto3.client("resourcegroupstaggingapi", config=CLIENT_CONFIG)
dynamodb = boto3.client("dynamodb", config=CLIENT_CONFIG)
events = boto3.client("events", config=CLIENT_CONFIG)
compute_optimizer = boto3.client("compute-optimizer", config=CLIENT_CONFIG)

#: PutEvents takes at most 10 entries, DescribeInstanceTypes 100 types, BatchWriteItem 25 items.
_EVENTS_PER_CALL = 10
_TYPES_PER_CALL = 100
_ITEMS_PER_WRITE = 25


def handler(event: dict[str, Any], _context: object = None) -> dict[str, Any]:
    """Audit every watched variant and component; return how many findings of each class."""
    settings = parse_settings(event["settings"])
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=settings.lookback_days)
    variants = watched_variants(settings)
    findings = audit(variants, settings, start, end)
    components = watched_components(settings.inference_components)
    findings += audit_components(components, settings, start, end)
    if settings.compute_optimizer:
        findings += compute_optimizer_findings(end)
    if settings.compute_optimizer_idle:
        findings = _one_opt_in(findings, idle_findings(variants, end), end)
    record(findings)
    publish(findings)
    counts = Counter(f["classification"] for f in findings)
    logger.info(
        "audited %d variants and %d inference components: %s",
        len(variants),
        len(components),
        dict(counts),
    )
    # README, "Metrics": one EMF line per classification, 0 for the audit's own ones not found
    # (a graph shows "none" rather than a gap), plus Compute Optimizer's found ones.
    for classification in sorted({*CLASSIFICATIONS, *counts}):
        emit({AUDIT_FINDINGS: counts[classification]}, {CLASSIFICATION: str(classification)})
    return {
        "variants": len(variants),
        "inference_components": len(components),
        "findings": len(findings),
        "by_classification": counts,
    }


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


def watched_components(names: Sequence[str]) -> list[Component]:
    """The named inference components as they run now (a missing one is logged and skipped)."""
    components = []
    for name in names:
        try:
            described = sagemaker.describe_inference_component(InferenceComponentName=name)
        except ClientError as error:
            if endpoint_not_found(error):  # ValidationException "Could not find ..."
                logger.warning("inference component %s does not exist: not audited", name)
                continue
            raise
        runtime = described.get("RuntimeConfig") or {}
        placed = runtime.get("PlacementStatus") or []
        instance_type = (
            placed[0]["InstanceType"]
            if placed
            else (described.get("Specification") or {}).get("InstanceType")
        )
        components.append(
            Component(
                endpoint_name=described["EndpointName"],
                variant_name=described.get("VariantName") or "",
                inference_component_name=described["InferenceComponentName"],
                instance_type=instance_type,
                copy_count=int(runtime.get("CurrentCopyCount") or 0),
            )
        )
    return components


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
        slo, capacity = from_recommendation(last[variant.endpoint_name], variant, settings.slo)
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
        findings.append(endpoint_finding(variant, verdict, settings, start, end))
    return findings


def audit_components(
    components: Sequence[Component], settings: Settings, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """One finding per inference component, from its per-copy history and last recommendation."""
    capacities = [
        component_capacity(last_recommendation(c.endpoint_name, c.inference_component_name), c)
        for c in components
    ]
    histories = component_histories(components, settings.percentile, start, end)
    return [
        component_finding(
            component,
            classify_component(
                history,
                copy_count=component.copy_count,
                band=settings.band,
                capacity_per_copy=capacity,
            ),
            settings,
            start,
            end,
        )
        for component, history, capacity in zip(components, histories, capacities, strict=True)
    ]


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


def last_recommendation(
    endpoint_name: str, inference_component_name: str | None = None
) -> dict[str, Any] | None:
    """The newest recommendation record of the endpoint in the ledger (failed runs skipped).

    With ``inference_component_name``, that component's newest; without, the newest of the
    endpoint's variants (records of its inference components carry their name: skipped).
    """
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
        if (
            isinstance(record, dict)
            and record.get("candidates")
            and record.get("inference_component_name") == inference_component_name
        ):
            return record
    return None


# -- CloudWatch, batched -------------------------------------------------------------------------


def metric_histories(
    variants: Sequence[tuple[Variant, Shape | None, Slo | None]],
    percentile: str,
    start: datetime,
    end: datetime,
) -> list[History]:
    """Each variant's history, fetched with as few GetMetricData calls as the limits allow.

    Two sets of calls: the window's statistics (one datapoint each, and the hourly counts), and
    the per-minute invocation peak over the last ``PEAK_DAYS`` days (one-minute data is kept
    15 days), each reduced as its pages arrive (``Readings``).
    """
    readings = Readings()
    read_window(variants, percentile, start, end, readings)
    read_peaks([variant for variant, _, _ in variants], start, end, readings)
    return [readings.history(i) for i in range(len(variants))]


def read_window(
    variants: Sequence[tuple[Variant, Shape | None, Slo | None]],
    percentile: str,
    start: datetime,
    end: datetime,
    readings: Readings,
) -> None:
    """The window's statistics of every variant (``v<index>_<what>``) into ``readings``."""
    window_seconds = int((end - start).total_seconds())
    queries = [
        variant_queries(i, variant, shape, slo, percentile, window_seconds)
        for i, (variant, shape, slo) in enumerate(variants)
    ]
    _read(queries, window_datapoints(window_seconds), start, end, readings)


def read_peaks(
    variants: Sequence[Variant], start: datetime, end: datetime, readings: Readings
) -> None:
    """Every variant's per-minute invocations per instance, over the last ``PEAK_DAYS`` days."""
    peak_start = max(start, end - timedelta(days=PEAK_DAYS))
    queries = [[peak_query(i, variant)] for i, variant in enumerate(variants)]
    peak_seconds = int((end - peak_start).total_seconds())
    _read(queries, peak_datapoints(peak_seconds), peak_start, end, readings)


def component_histories(
    components: Sequence[Component], percentile: str, start: datetime, end: datetime
) -> list[ComponentHistory]:
    """Each component's per-copy history, batched like the variants' (``metric_histories``)."""
    readings = Readings()
    window_seconds = int((end - start).total_seconds())
    window = [
        component_queries(i, component, percentile, window_seconds)
        for i, component in enumerate(components)
    ]
    _read(window, window_datapoints(window_seconds), start, end, readings)
    peak_start = max(start, end - timedelta(days=PEAK_DAYS))
    peaks = [[component_peak_query(i, component)] for i, component in enumerate(components)]
    peak_seconds = int((end - peak_start).total_seconds())
    _read(peaks, peak_datapoints(peak_seconds), peak_start, end, readings)
    return [readings.component_history(i) for i in range(len(components))]


def _read(
    per_variant: Sequence[list[dict[str, Any]]],
    datapoints_per_variant: int,
    start: datetime,
    end: datetime,
    readings: Readings,
) -> None:
    paginator = cloudwatch.get_paginator("get_metric_data")
    for batch in batches(per_variant, datapoints_per_variant):
        pages = paginator.paginate(
            MetricDataQueries=batch, StartTime=start, EndTime=end, ScanBy="TimestampDescending"
        )
        for page in pages:
            for result in page["MetricDataResults"]:
                readings.add(result["Id"], result["Values"])


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
        return [opt_in_required_finding(now)]
    return [compute_optimizer_finding(r, now) for r in recommendations]


# -- Compute Optimizer (idle SageMaker endpoints) ------------------------------------------------


def idle_findings(variants: Sequence[Variant], now: datetime) -> list[dict[str, Any]]:
    """Compute Optimizer's idle findings of the watched endpoints, or one ``OptInRequired``.

    GetIdleRecommendations (botocore's compute-optimizer model: ``filters`` ``[{name:
    ResourceType, values: [SageMakerEndpoint]}]``, ``maxResults`` at most 100, ``nextToken``;
    no paginator in botocore) lists the account's idle endpoints; those the audit watches become
    findings, one per instance variant. Per-resource ``errors`` in a page are logged.
    """
    watched: dict[str, list[Variant]] = defaultdict(list)
    for variant in variants:
        watched[variant.endpoint_name.lower()].append(variant)
    recommendations = []
    kwargs: dict[str, Any] = {
        "filters": [{"name": "ResourceType", "values": [IDLE_RESOURCE_TYPE]}],
        "maxResults": IDLE_PAGE_SIZE,
    }
    try:
        while True:
            page = compute_optimizer.get_idle_recommendations(**kwargs)
            recommendations += page.get("idleRecommendations", [])
            for error in page.get("errors") or []:
                logger.warning("Compute Optimizer has no idle recommendation: %s", error)
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
    except ClientError as error:
        if error_code(error) != "OptInRequiredException":
            raise
        return [opt_in_required_finding(now, "idle SageMaker endpoint findings")]
    return [
        idle_finding(recommendation, variant, now)
        for recommendation in recommendations
        if recommendation.get("resourceType", IDLE_RESOURCE_TYPE) == IDLE_RESOURCE_TYPE
        for variant in watched.get(endpoint_name_of(recommendation.get("resourceArn", "")), [])
    ]


def _one_opt_in(
    findings: list[dict[str, Any]], more: list[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """``findings + more`` with at most one ``OptInRequired`` (one ledger item, one event)."""
    opt_in = [f for f in [*findings, *more] if f["classification"] == "OptInRequired"]
    if len(opt_in) < 2:
        return findings + more
    others = [f for f in [*findings, *more] if f["classification"] != "OptInRequired"]
    return [*others, opt_in_required_finding(now, "EC2 or idle SageMaker endpoint findings")]


# -- Recording and publishing --------------------------------------------------------------------


def record(findings: Sequence[Mapping[str, Any]]) -> None:
    """Write every finding to the ledger (``sk``: ``audit_queries.ledger_sort_key``)."""
    items = [
        {
            "PutRequest": {
                "Item": {
                    "pk": {"S": ledger_key(f)},
                    "sk": {"S": ledger_sort_key(f)},
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
