"""Checks ``make integ`` runs against the deployed test after its assertions, and diagnostics.

The assertions prove the loop ran; these read what it produced next to an independent source:

* IR's ``ModelLatency`` unit. The docs say milliseconds on one page and microseconds on
  another; the library reads microseconds (README, "How it decides"). Each recommendation names
  the benchmark endpoint and the window it was measured in, and that endpoint's
  ``AWS/SageMaker`` ``ModelLatency`` metric (documented in microseconds) stays in CloudWatch
  after IR deletes the endpoint. The recorded ``model_latency_ms`` times 1000 must be of the
  metric's order of magnitude; a factor of 1000 either way is a unit error.
* ``CostPerInference`` = ``CostPerHour`` / (``MaxInvocations`` * 60), which the library's
  README assumes of IR's output: printed, with the numbers, when it does not hold.

Only ``tools/integ.py`` runs this (it needs the deployed stack and credentials).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

#: A unit error is a factor of 1000; anything within 30 either way is the same unit.
_SAME_UNIT = 30.0


class CheckFailed(Exception):
    """A post-deploy check found what the assertions could not."""


def stop_running_jobs(session: Any, model_names: Iterable[str]) -> list[str]:
    """Stop this deployment's IR jobs that are still running (a failed test leaves them).

    The library stops the job of an aborted run, but deleting the stack deletes that machinery
    too; a job still running would keep its test endpoints, and their bill, until it ends.
    """
    sagemaker, stopped = session.client("sagemaker"), []
    for model_name in model_names:
        for status in ("PENDING", "IN_PROGRESS"):
            jobs = sagemaker.list_inference_recommendations_jobs(
                ModelNameEquals=model_name, StatusEquals=status
            )["InferenceRecommendationsJobs"]
            for job in jobs:
                sagemaker.stop_inference_recommendations_job(JobName=job["JobName"])
                stopped.append(job["JobName"])
    return stopped


def newest_recommendation(session: Any, table_name: str, endpoint_name: str) -> dict[str, Any]:
    """The newest recommendation record of ``endpoint_name`` in the ledger (its ``detail``)."""
    items = session.client("dynamodb").query(
        TableName=table_name,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={
            ":pk": {"S": f"endpoint#{endpoint_name}"},
            ":prefix": {"S": "recommendation#"},
        },
        ScanIndexForward=False,
        Limit=1,
    )["Items"]
    if not items:
        raise CheckFailed(f"{endpoint_name}: no recommendation record in {table_name}")
    return dict(json.loads(items[0]["record"]["S"]))


def latency_unit(session: Any, record: Mapping[str, Any]) -> list[str]:
    """Compare each measured candidate's recorded latency with its endpoint's CloudWatch metric.

    Returns one line per candidate; raises :class:`CheckFailed` on a unit mismatch.
    """
    job = session.client("sagemaker").describe_inference_recommendations_job(
        JobName=record["job_name"]
    )
    recorded = {c["recommendation_id"]: c for c in record.get("candidates", [])}
    cloudwatch = session.client("cloudwatch")
    lines, mismatches = [], []
    for recommendation in job.get("InferenceRecommendations", []):
        endpoint = recommendation["EndpointConfiguration"]
        kind = endpoint.get("InstanceType", "serverless")
        candidate = recorded.get(recommendation["RecommendationId"])
        start, end = (
            recommendation.get("InvocationStartTime"),
            recommendation.get("InvocationEndTime"),
        )
        if candidate is None or candidate.get("model_latency_ms") is None or not (start and end):
            lines.append(f"  {kind}: not measured, skipped")
            continue
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName="ModelLatency",
            Dimensions=[
                {"Name": "EndpointName", "Value": endpoint["EndpointName"]},
                {"Name": "VariantName", "Value": endpoint["VariantName"]},
            ],
            StartTime=start - timedelta(minutes=1),
            EndTime=end + timedelta(minutes=1),
            Period=60,
            Statistics=["Average", "Maximum"],
        )["Datapoints"]
        if not points:
            lines.append(f"  {kind}: no ModelLatency datapoints, inconclusive")
            continue
        average = sum(p["Average"] for p in points) / len(points)
        maximum = max(p["Maximum"] for p in points)
        reference_us = math.sqrt(max(average, 1e-9) * max(maximum, 1e-9))
        recorded_us = float(candidate["model_latency_ms"]) * 1000
        ratio = recorded_us / reference_us
        raw = recommendation["Metrics"].get("ModelLatency")
        lines.append(
            f"  {kind}: IR ModelLatency {raw}, recorded "
            f"{candidate['model_latency_ms']} ms; CloudWatch ModelLatency (us) average "
            f"{average:.0f}, maximum {maximum:.0f}; ratio {ratio:.3g}"
        )
        if not 1 / _SAME_UNIT <= ratio <= _SAME_UNIT:
            mismatches.append(kind)
    if mismatches:
        raise CheckFailed(
            "recorded model latency is off CloudWatch's by about a factor of 1000 for "
            f"{', '.join(mismatches)}: IR's ModelLatency unit is not what the library assumes\n"
            + "\n".join(lines)
        )
    return lines


def cost_per_inference(record: Mapping[str, Any]) -> list[str]:
    """Candidates whose CostPerInference is not CostPerHour / (MaxInvocations * 60)."""
    odd = []
    for candidate in record.get("candidates", []):
        per_hour = candidate.get("cost_per_hour")
        per_inference = candidate.get("cost_per_inference")
        per_minute = candidate.get("max_invocations_per_instance_per_minute")
        if None in (per_hour, per_inference, per_minute) or not per_minute:
            continue
        expected = float(per_hour) / (float(per_minute) * 60)
        if not math.isclose(float(per_inference), expected, rel_tol=0.05):
            odd.append(
                f"  {candidate['instance_type']}: CostPerInference {per_inference}, "
                f"CostPerHour / (MaxInvocations * 60) = {expected:.3g}"
            )
    return odd


def run_checks(session: Any, table_name: str, endpoint_names: Iterable[str]) -> list[str]:
    """Every check for every endpoint; returns the report, raises on the first failure."""
    report = []
    for name in endpoint_names:
        record = newest_recommendation(session, table_name, name)
        report.append(
            f"{name}: {record.get('action')} {record.get('instance_type')} ({record.get('reason')})"
        )
        report.extend(latency_unit(session, record))
        odd = cost_per_inference(record)
        if odd:
            report.append("  CostPerInference differs from CostPerHour / (MaxInvocations * 60):")
            report.extend(odd)
    return report


def diagnose(
    session: Any,
    table_name: str | None,
    models: Mapping[str, str],
    notification_queues: Mapping[str, str],
) -> list[str]:
    """What to look at after a failure: alarm notifications, IR jobs, the ledger's records."""
    lines = []
    sqs = session.client("sqs")
    for alarm, queue_url in notification_queues.items():
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=1, VisibilityTimeout=0, WaitTimeSeconds=1
        ).get("Messages", [])
        lines.append(f"{alarm} notification: {'received' if messages else 'NOT received'}")
    sagemaker = session.client("sagemaker")
    for endpoint_name, model_name in models.items():
        jobs = sagemaker.list_inference_recommendations_jobs(
            ModelNameEquals=model_name, SortBy="CreationTime", SortOrder="Descending"
        )["InferenceRecommendationsJobs"]
        if not jobs:
            lines.append(f"{endpoint_name}: no IR job for {model_name} (the run never started one)")
        for job in jobs[:1]:
            lines.append(
                f"{endpoint_name}: IR job {job['JobName']} {job['Status']}"
                + (f": {job['FailureReason']}" if job.get("FailureReason") else "")
            )
        if table_name:
            items = session.client("dynamodb").query(
                TableName=table_name,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"endpoint#{endpoint_name}"}},
            )["Items"]
            for item in items:
                lines.append(
                    f"  ledger {item['sk']['S']}: {item.get('outcome', {}).get('S')} "
                    f"{item.get('reason', {}).get('S', '')}"
                )
    return lines
