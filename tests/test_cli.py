"""``python -m rightsizing_constructs plan``: the workflow's decision as a reviewer's tool."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rightsizing_constructs.cli import main
from tests.conftest import EVENTS, load_event

JOB = EVENTS / "ir_job_completed_docs_sample.json"


def two_candidate_job() -> dict[str, Any]:
    job = load_event("ir_job_completed_docs_sample.json")
    m5 = json.loads(json.dumps(job["InferenceRecommendations"][0]))
    m5["RecommendationId"] = "m5"
    m5["EndpointConfiguration"]["InstanceType"] = "ml.m5.xlarge"
    m5["Metrics"].update(CostPerHour=0.23, MaxInvocations=900, ModelLatency=120000)
    job["InferenceRecommendations"].append(m5)
    return job


def write(tmp_path: Path, name: str, document: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


def endpoint_config(instance_type: str, count: int) -> dict[str, Any]:
    """As ``aws sagemaker describe-endpoint-config`` prints it."""
    return {
        "EndpointConfigName": "fraud-scoring-config-1",
        "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/x",
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": "m",
                "InitialInstanceCount": count,
                "InstanceType": instance_type,
                "InitialVariantWeight": 1.0,
            }
        ],
        "CreationTime": "2026-10-01T10:00:00.000000+00:00",
    }


def run(
    capsys: pytest.CaptureFixture[str], *arguments: str | Path
) -> tuple[int, dict[str, Any] | None, str]:
    status = main(["plan", *map(str, arguments)])
    out, err = capsys.readouterr()
    return status, (json.loads(out) if out else None), err


REQUIRED = ("--peak-rpm", "3240", "--slo-percentile", "P99", "--slo-ms", "300")


def test_apply(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    job = write(tmp_path, "job.json", two_candidate_job())
    status, detail, err = run(capsys, "--job-description", job, *REQUIRED)
    assert (status, err) == (0, "")
    assert detail is not None
    # c5: 3240 / (648 * 0.5) = 10 x 0.204 = 2.04; m5: ceil(3240 / 450) = 8 x 0.23 = 1.84.
    assert detail["action"] == "apply"
    assert (detail["instance_type"], detail["instance_count"]) == ("ml.m5.xlarge", 8)
    assert detail["estimated_cost_per_hour"] == pytest.approx(1.84)
    assert detail["autoscaling"] == {
        "metric": "SageMakerVariantInvocationsPerInstance",
        "target_value": 450.0,
        "min_capacity": 1,
        "max_capacity": 10,
    }
    assert {c["instance_type"]: c["chosen"] for c in detail["candidates"]} == {
        "ml.c5.xlarge": False,
        "ml.m5.xlarge": True,
    }
    assert detail["job_name"] == "rightsizing-0123456789abcdef01234567"


def test_guardrails_change_the_choice(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    job = write(tmp_path, "job.json", two_candidate_job())
    status, detail, _ = run(
        capsys,
        "--job-description",
        job,
        *REQUIRED,
        "--allowed-instance-types",
        "ml.c5",
        "--min-instances",
        "2",
        "--max-instances",
        "12",
        "--target-utilization",
        "0.6",
    )
    assert status == 0 and detail is not None
    # ceil(3240 / (648 * 0.6)) = ceil(8.33) = 9
    assert (detail["instance_type"], detail["instance_count"]) == ("ml.c5.xlarge", 9)
    assert detail["autoscaling"]["min_capacity"] == 2
    assert detail["autoscaling"]["max_capacity"] == 12
    assert detail["inputs"]["guardrails"]["allowed_instance_types"] == ["ml.c5"]


def test_no_change(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    job = write(tmp_path, "job.json", two_candidate_job())
    config = write(tmp_path, "config.json", endpoint_config("ml.m5.xlarge", 8))
    status, detail, _ = run(
        capsys, "--job-description", job, "--current-endpoint-config", config, *REQUIRED
    )
    assert status == 0 and detail is not None
    assert detail["action"] == "no-change"
    assert detail["current"] == {
        "endpoint_config_name": "fraud-scoring-config-1",
        "instance_type": "ml.m5.xlarge",
        "instance_count": 8,
        "estimated_cost_per_hour": pytest.approx(1.84),
    }


def test_reject(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    job = write(tmp_path, "job.json", two_candidate_job())
    status, detail, _ = run(
        capsys,
        "--job-description",
        job,
        "--peak-rpm",
        "3240",
        "--slo-percentile",
        "P99",
        "--slo-ms",
        "300",
        "--max-cost-per-hour",
        "1.5",
    )
    assert status == 0 and detail is not None
    assert detail["action"] == "reject"
    assert detail["instance_type"] is None and detail["instance_count"] is None
    assert "more than the maximum of 1.5" in detail["reason"]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda tmp: tmp / "missing.json", "job description file not found"),
        (lambda tmp: write(tmp, "bad.json", "{not json"), "is not JSON"),
        (lambda tmp: write(tmp, "list.json", []), "must hold a JSON object"),
        (
            lambda tmp: write(tmp, "f.json", {"JobName": "j", "Status": "IN_PROGRESS"}),
            "j is IN_PROGRESS, not COMPLETED",
        ),
        (
            lambda tmp: write(tmp, "e.json", {"JobName": "j", "Status": "COMPLETED"}),
            "completed with no recommendations",
        ),
        (
            lambda tmp: write(
                tmp, "m.json", {"Status": "COMPLETED", "InferenceRecommendations": ["x"]}
            ),
            "malformed job description",
        ),
    ],
)
def test_invalid_input_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, setup: Any, message: str
) -> None:
    status, detail, err = run(capsys, "--job-description", setup(tmp_path), *REQUIRED)
    assert status == 2 and detail is None
    assert message in err
    assert err.count("\n") == 1 and err.startswith("error: ")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--peak-rpm", "0", "--slo-percentile", "P99", "--slo-ms", "300"), "--peak-rpm"),
        (("--peak-rpm", "10", "--slo-percentile", "P90", "--slo-ms", "300"), "invalid choice"),
        (("--peak-rpm", "ten", "--slo-percentile", "P99", "--slo-ms", "300"), "not a number"),
        (
            (*REQUIRED, "--target-utilization", "1.5"),
            "target_utilization must be in (0, 1]",
        ),
        ((*REQUIRED, "--min-instances", "5", "--max-instances", "2"), "min_instances"),
        (("--peak-rpm", "10"), "required"),
    ],
)
def test_invalid_arguments_exit_2(
    capsys: pytest.CaptureFixture[str], arguments: tuple[str, ...], message: str
) -> None:
    status, detail, err = run(capsys, "--job-description", JOB, *arguments)
    assert status == 2 and detail is None
    assert message in err
    assert err.count("\n") == 1


def test_module_entry_point_prints_no_traceback(tmp_path: Path) -> None:
    """As a reviewer runs it: a separate process, exit code and stderr as they see them."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rightsizing_constructs",
            "plan",
            "--job-description",
            str(tmp_path / "nope.json"),
            *REQUIRED,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: job description file not found")
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "rightsizing_constructs",
            "plan",
            "--job-description",
            str(JOB),
            *REQUIRED,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["instance_count"] == 10


def test_run_prints_the_manual_trigger_command() -> None:
    """The printed command's entry is a valid PutEvents entry that the endpoint's rule matches."""
    import shlex

    import botocore.session
    from botocore.validate import validate_parameters

    from rightsizing_constructs.cli import _parser, run_command

    command = run_command(_parser().parse_args(["run", "--endpoint-name", "fraud-scoring"]))
    words = shlex.split(command)
    assert words[:4] == ["aws", "events", "put-events", "--entries"]
    [entry] = json.loads(words[4])
    model = botocore.session.get_session().get_service_model("events")
    validate_parameters({"Entries": [entry]}, model.operation_model("PutEvents").input_shape)
    assert entry["Source"] == "rightsizing-constructs"
    assert entry["DetailType"] == "Rightsizing Run Requested"
    assert json.loads(entry["Detail"]) == {
        "endpoint_name": "fraud-scoring",
        "variant_name": "AllTraffic",
    }
