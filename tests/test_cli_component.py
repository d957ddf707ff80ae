"""``plan`` on an AI recommendation job (issue #17): the inference-component decision.

Held out like the endpoint's plan tests: the command and the runtime's
``component_decision.recommend_component`` (what the workflow publishes) on the same files and
settings give the same detail.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rightsizing_runtime import component_decision

from rightsizing_constructs.cli import main
from tests.conftest import EVENTS, load_event
from tests.test_component_decision import endpoint_config, inference_component

JOB = EVENTS / "ai_recommendation_job_completed.json"
REQUIRED = ("--peak-concurrent-requests", "40", "--workload-concurrency", "8", "--slo-ms", "500")


def write(tmp_path: Path, name: str, document: Any) -> Path:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def run(
    capsys: pytest.CaptureFixture[str], *arguments: str | Path
) -> tuple[int, dict[str, Any] | None, str]:
    status = main(["plan", *map(str, arguments)])
    out, err = capsys.readouterr()
    return status, (json.loads(out) if out else None), err


def one_error_line(result: tuple[int, Any, str], *fragments: str) -> None:
    status, detail, err = result
    assert (status, detail) == (2, None), err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err


def test_an_ai_job_is_decided_as_an_inference_component(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, detail, err = run(capsys, "--job-description", JOB, *REQUIRED, "--max-instances", "12")
    assert status == 0 and detail is not None
    assert detail["kind"] == "inference-component" and detail["evidence"] == "ai-recommendation"
    # g6: 8 requests on 1 copy; 40 / (8 * 0.5) = 10 copies on 10 instances at 0.9776.
    assert (detail["action"], detail["instance_type"], detail["instance_count"]) == (
        "apply",
        "ml.g6.2xlarge",
        10,
    )
    assert detail["inference_component"]["copy_count"] == 10
    assert err == (
        "plan: apply ml.g6.2xlarge x10, 10 copies (1 per instance), 9.776 USD per hour at peak "
        "(7136.48 USD per month); peak 40 concurrent requests, configured "
        "(--peak-concurrent-requests)\n"
    )


def test_the_slo_flags_choose_the_metric_and_percentile(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, detail, _ = run(
        capsys, "--job-description", JOB, *REQUIRED[:4], "--slo-ms", "400", "--max-instances", "12"
    )
    assert status == 0 and detail is not None and detail["instance_type"] == "ml.g5.2xlarge"
    status, detail, _ = run(
        capsys,
        *("--job-description", JOB, *REQUIRED[:4], "--slo-ms", "30", "--slo-metric", "itl"),
        "--max-instances",
        "12",
    )
    assert status == 0 and detail is not None
    assert (detail["instance_type"], detail["inputs"]["slo"]["metric"]) == ("ml.g5.2xlarge", "itl")
    status, detail, _ = run(capsys, "--job-description", JOB, *REQUIRED, "--slo-stat", "p99")
    assert status == 0 and detail is not None and detail["action"] == "reject"
    assert "no TTFT at p99 or above" in detail["reason"]


def test_plan_prints_what_the_workflow_publishes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    settings = {
        "settings_version": 1,
        "kind": "inference-component",
        "endpoint_name": "llm-endpoint",
        "variant_name": "AllTraffic",
        "inference_component_name": "llama-ic",
        "job": {"job_type": "ai-recommendation", "workload_concurrency": 8},
        "slo": {"metric": "ttft", "percentile": "p90", "max_latency_ms": 500},
        "peak_concurrent_requests": 40,
        "target_utilization": 0.6,
        "guardrails": {
            "min_instances": 2,
            "max_instances": 12,
            "allowed_instance_types": ["ml.g5", "ml.g6"],
            "max_cost_per_hour": 20,
            "min_saving_percent": 1.5,
            "min_saving_per_month": 20,
            "min_copies": 2,
        },
        "hourly_prices": {"ml.g5.2xlarge": 1.6},
    }
    component, config = (
        inference_component(copies=12, memory=16384),
        endpoint_config("ml.g6.2xlarge", 12),
    )
    published = component_decision.recommend_component(
        description=load_event("ai_recommendation_job_completed.json"),
        settings=component_decision.settings_from(settings),
        inference_component=component,
        endpoint_config=config,
    )
    status, printed, err = run(
        capsys,
        *("--job-description", JOB, "--peak-concurrent-requests", "40"),
        *("--workload-concurrency", "8", "--slo-ms", "500", "--slo-stat", "p90"),
        *("--target-utilization", "0.6", "--min-instances", "2", "--max-instances", "12"),
        *("--allowed-instance-types", "ml.g5,ml.g6", "--max-cost-per-hour", "20"),
        *("--min-saving-percent", "1.5", "--min-saving-per-month", "20", "--min-copies", "2"),
        *("--hourly-prices", '{"ml.g5.2xlarge": 1.6}'),
        *("--endpoint-name", "llm-endpoint", "--inference-component-name", "llama-ic"),
        *("--current-inference-component", write(tmp_path, "ic.json", component)),
        *("--current-endpoint-config", write(tmp_path, "config.json", config)),
    )
    assert status == 0, err
    assert printed == published
    assert printed["action"] == "apply"
    assert err.endswith("; now 12 copies on ml.g6.2xlarge, 11.7312 USD per hour\n")


def test_another_instance_type_is_no_change_with_what_to_do(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, detail, err = run(
        capsys,
        *("--job-description", JOB, *REQUIRED, "--max-instances", "12"),
        *("--current-inference-component", write(tmp_path, "ic.json", inference_component())),
        *("--current-endpoint-config", write(tmp_path, "c.json", endpoint_config("ml.g5.2xlarge"))),
        *("--current-endpoint", write(tmp_path, "e.json", _endpoint(10))),
    )
    assert status == 0 and detail is not None
    assert detail["action"] == "no-change" and detail["instance_type"] == "ml.g6.2xlarge"
    assert "change the instance type by hand (a new endpoint config)" in detail["reason"]
    assert err.startswith("plan: no-change ml.g6.2xlarge x10")


def _endpoint(instances: int) -> dict[str, Any]:
    return {
        "EndpointName": "llm-endpoint",
        "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/llm-endpoint",
        "EndpointConfigName": "llm-endpoint-config-1",
        "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": instances}],
        "EndpointStatus": "InService",
        "CreationTime": "2026-11-01T10:00:00+00:00",
        "LastModifiedTime": "2026-11-01T10:00:00+00:00",
    }


def test_every_missing_or_bad_component_flag_is_on_the_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    one_error_line(
        run(capsys, "--job-description", JOB, "--min-copies", "0", "--max-instances", "0"),
        "required: --peak-concurrent-requests",
        "required: --workload-concurrency",
        "required: --slo-ms",
        "--min-copies must be a whole number >= 1",
        "--max-instances must be a whole number",
    )
    one_error_line(
        run(capsys, "--job-description", JOB, *REQUIRED, "--workload-concurrency", "2.5"),
        "--workload-concurrency must be a whole number > 0, got 2.5",
    )
    one_error_line(
        run(capsys, "--job-description", JOB, *REQUIRED, "--slo-stat", "median"),
        "--slo-stat must be a percentile like p90",
    )


@pytest.mark.parametrize(
    ("prices", "fragment"),
    [("{", "--hourly-prices is not JSON"), ('{"ml.g5.2xlarge": -1}', "prices >= 0")],
)
def test_bad_hourly_prices_exit_2(
    capsys: pytest.CaptureFixture[str], prices: str, fragment: str
) -> None:
    one_error_line(
        run(capsys, "--job-description", JOB, *REQUIRED, "--hourly-prices", prices), fragment
    )


def test_a_failed_job_exits_2_with_sagemakers_reason(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    failed = load_event("ai_recommendation_job_completed.json")
    failed.update(AIRecommendationJobStatus="Failed", FailureReason="No capacity for ml.g6")
    del failed["Recommendations"]
    one_error_line(
        run(capsys, "--job-description", write(tmp_path, "j.json", failed), *REQUIRED),
        "is Failed, not Completed: No capacity for ml.g6",
    )


def test_a_job_unlike_the_apis_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    job = load_event("ai_recommendation_job_completed.json")
    job["Recommendations"][0]["DeploymentConfiguration"]["InstanceCount"] = "one"
    one_error_line(
        run(capsys, "--job-description", write(tmp_path, "j.json", job), *REQUIRED),
        "InstanceCount",
    )


def test_an_ir_job_still_needs_its_slo_flags(capsys: pytest.CaptureFixture[str]) -> None:
    one_error_line(
        run(
            capsys,
            *("--job-description", EVENTS / "ir_job_completed_docs_sample.json"),
            *("--peak-requests-per-minute", "100"),
        ),
        "the following arguments are required: --slo-percentile, --slo-ms",
    )


def test_report_refuses_an_ai_job_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(
        ["report", "--job-description", str(JOB), "--slo-percentile", "P99", "--slo-ms", "500"]
    )
    _, err = capsys.readouterr()
    one_error_line((status, None, err), "is an AI recommendation job: plan decides it")
