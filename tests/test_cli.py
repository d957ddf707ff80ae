"""``python -m rightsizing_constructs plan`` and ``run``: an interface of the product.

``plan`` is the workflow's decision as a reviewer's tool: the same settings under the
constructs' names, the same validation, the same event ``detail``. Every bad input is exit
status 2 and one line on stderr.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber
from botocore.validate import validate_parameters
from rightsizing_runtime.registry import target_of

from rightsizing_constructs.cli import InvalidInput, _parser, main, run_command
from tests.conftest import EVENTS, load_event

JOB = EVENTS / "ir_job_completed_docs_sample.json"
REQUIRED = ("--peak-requests-per-minute", "3240", "--slo-percentile", "P99", "--slo-ms", "300")


def two_candidate_job() -> dict[str, Any]:
    """The docs sample (ml.c5.xlarge, 648 rpm, 0.204 an hour) and an ml.m5.xlarge."""
    job = load_event("ir_job_completed_docs_sample.json")
    m5 = copy.deepcopy(job["InferenceRecommendations"][0])
    m5["RecommendationId"] = "m5"
    m5["EndpointConfiguration"]["InstanceType"] = "ml.m5.xlarge"
    m5["Metrics"].update(CostPerHour=0.23, MaxInvocations=900, ModelLatency=120000)
    job["InferenceRecommendations"].append(m5)
    return job


def with_c5(**changes: Any) -> dict[str, Any]:
    """The two-candidate job with the docs sample's c5 changed (``Metrics``/``InstanceType``)."""
    job = two_candidate_job()
    c5 = job["InferenceRecommendations"][0]
    for key, value in changes.items():
        if key == "InstanceType":
            c5["EndpointConfiguration"]["InstanceType"] = value
        else:
            c5["Metrics"][key] = value
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


def plan_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, job: Any, *arguments: str | Path
) -> tuple[int, dict[str, Any] | None, str]:
    return run(capsys, "--job-description", write(tmp_path, "job.json", job), *arguments)


def assert_one_error_line(status: int, detail: Any, err: str, *fragments: str) -> None:
    """Exit 2, nothing on stdout, exactly one line on stderr holding every fragment."""
    assert (status, detail) == (2, None), err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err


# -- Decisions ----------------------------------------------------------------------------------


def test_apply(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, detail, err = plan_file(capsys, tmp_path, two_candidate_job(), *REQUIRED)
    assert status == 0
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
    assert err == (
        "plan: apply ml.m5.xlarge x8, 1.84 USD per hour at peak (1343.20 USD per month); peak "
        "3240 requests per minute, configured (--peak-requests-per-minute)\n"
    )
    # plan reads no metrics: its peak is the flag's, as a run's without peak_traffic.
    assert detail["inputs"]["peak_source"] == {"kind": "configured"}


def test_guardrails_change_the_choice(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, detail, _ = plan_file(
        capsys,
        tmp_path,
        two_candidate_job(),
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
    config = write(tmp_path, "config.json", endpoint_config("ml.m5.xlarge", 8))
    status, detail, err = plan_file(
        capsys, tmp_path, two_candidate_job(), "--current-endpoint-config", config, *REQUIRED
    )
    assert status == 0 and detail is not None
    assert detail["action"] == "no-change"
    assert detail["current"] == {
        "endpoint_config_name": "fraud-scoring-config-1",
        "instance_type": "ml.m5.xlarge",
        "instance_count": 8,
        "estimated_cost_per_hour": pytest.approx(1.84),
    }
    assert err.endswith("; now ml.m5.xlarge x8, 1.84 USD per hour\n")


def test_reject(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, detail, err = plan_file(
        capsys, tmp_path, two_candidate_job(), *REQUIRED, "--max-cost-per-hour", "1.5"
    )
    assert status == 0 and detail is not None
    assert detail["action"] == "reject"
    assert detail["instance_type"] is None and detail["instance_count"] is None
    assert "more than the maximum of 1.5" in detail["reason"]
    assert err == (
        "plan: reject: no candidate is eligible; the reasons are in the detail; peak 3240 "
        "requests per minute, configured (--peak-requests-per-minute)\n"
    )


# -- The workflow's settings, under the constructs' names -----------------------------------


@pytest.mark.parametrize(
    ("hysteresis", "action"),
    [
        # From ml.c5.xlarge x10 (10 x 0.20399999618530273 an hour) to ml.m5.xlarge x8 (1.84):
        # 0.19999996 an hour saved, 9.8 %, 145.99997 a month.
        ((), "apply"),
        (("--min-saving-percent", "9.8"), "apply"),
        (("--min-saving-percent", "9.9"), "no-change"),
        (("--min-saving-per-month", "145.99"), "apply"),
        (("--min-saving-per-month", "146"), "no-change"),
    ],
)
def test_hysteresis_flags_are_the_guardrails(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, hysteresis: tuple[str, ...], action: str
) -> None:
    config = write(tmp_path, "config.json", endpoint_config("ml.c5.xlarge", 10))
    status, detail, err = plan_file(
        capsys,
        tmp_path,
        two_candidate_job(),
        *REQUIRED,
        "--current-endpoint-config",
        config,
        *hysteresis,
    )
    assert status == 0, err
    assert detail is not None and detail["action"] == action
    if action == "no-change":
        assert "below the minimum of" in detail["reason"]
        assert detail["inputs"]["guardrails"][hysteresis[0][2:].replace("-", "_")] == float(
            hysteresis[1]
        )


def test_the_peak_flag_has_the_constructs_name_and_the_old_one_still_works(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    job = write(tmp_path, "job.json", two_candidate_job())
    slo = ("--slo-percentile", "P99", "--slo-ms", "300")
    new = run(capsys, "--job-description", job, "--peak-requests-per-minute", "3240", *slo)
    old = run(capsys, "--job-description", job, "--peak-rpm", "3240", *slo)
    assert new[0] == old[0] == 0
    assert new[1] == old[1]
    assert "warning" not in new[2]
    assert old[2].splitlines()[0] == (
        "warning: --peak-rpm is deprecated; use --peak-requests-per-minute"
    )
    both = run(
        capsys,
        "--job-description",
        job,
        *("--peak-rpm", "1", "--peak-requests-per-minute", "1", *slo),
    )
    assert_one_error_line(*both, "give --peak-requests-per-minute only")
    neither = run(capsys, "--job-description", job, *slo)
    assert_one_error_line(*neither, "required: --peak-requests-per-minute")


def test_the_slo_percentiles_are_the_constructs() -> None:
    from rightsizing_constructs import LatencyPercentile
    from rightsizing_constructs._rules import LATENCY_PERCENTILES

    assert tuple(p.value for p in LatencyPercentile) == LATENCY_PERCENTILES


# -- Bad settings: the constructs' rules, exit 2 ------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "fragments"),
    [
        (
            ("--allowed-instance-types", "ml.zz9,foo"),
            ("--allowed-instance-types has 'ml.zz9', 'foo', which are neither a SageMaker",),
        ),
        (
            ("--endpoint-name", "fraud scoring!"),
            ("--endpoint-name must be 1-63 letters", "got 'fraud scoring!'"),
        ),
        (("--variant-name", "All_Traffic"), ("--variant-name must be 1-63 letters",)),
        (("--slo-ms", "150.5"), ("--slo-ms must be a whole number of milliseconds", "150.5 ms")),
        (("--slo-ms", "0"), ("--slo-ms must be more than 0 ms",)),
        (("--peak-requests-per-minute", "0"), ("--peak-requests-per-minute must be a number > 0",)),
        (("--target-utilization", "1.5"), ("--target-utilization must be in (0, 1]",)),
        (("--min-instances", "1.5"), ("--min-instances must be a whole number >= 1, got 1.5",)),
        (
            ("--min-instances", "5", "--max-instances", "2"),
            ("--min-instances (5) must not exceed --max-instances (2)",),
        ),
        (("--max-cost-per-hour", "-1"), ("--max-cost-per-hour must be a positive number",)),
        (("--min-saving-percent", "100"), ("--min-saving-percent must be a number in [0, 100)",)),
        (("--min-saving-per-month", "-5"), ("--min-saving-per-month must be a number of dollars",)),
        (("--slo-percentile", "P90"), ("invalid choice: 'P90'",)),
        (("--slo-ms", "ten"), ("not a number: 'ten'",)),
        (("--slo-ms", "NaN"), ("not a finite number",)),
        (("--min-saving-per-mont", "5"), ("unrecognized arguments",)),
    ],
)
def test_bad_settings_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], arguments: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    given = dict(zip(REQUIRED[::2], REQUIRED[1::2], strict=True))
    given.update(zip(arguments[::2], arguments[1::2], strict=True))
    flags = [word for pair in given.items() for word in pair]
    assert_one_error_line(*run(capsys, "--job-description", JOB, *flags), *fragments)


def test_every_bad_setting_is_on_the_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    status, detail, err = run(
        capsys,
        "--job-description",
        JOB,
        *REQUIRED[:4],
        "--slo-ms",
        "150.5",
        "--endpoint-name",
        "fraud scoring!",
        "--max-cost-per-hour",
        "0",
    )
    assert_one_error_line(status, detail, err, "--slo-ms", "--endpoint-name", "--max-cost")


def test_the_command_line_and_the_constructs_share_each_rule(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same bad value, the same words: the construct names the setting, plan its flag."""
    import aws_cdk as cdk

    from rightsizing_constructs import Guardrails, LatencySlo
    from rightsizing_constructs.settings import problems_of

    cases = [
        (lambda: Guardrails(allowed_instance_types=["foo"]), ("--allowed-instance-types", "foo")),
        (lambda: Guardrails(min_saving_percent=100), ("--min-saving-percent", "100")),
        (lambda: LatencySlo.p99(cdk.Duration.millis(150.5)), ("--slo-ms", "150.5")),
    ]
    for build, (flag, value) in cases:
        [construct_problem] = problems_of(build())  # what the construct would report
        setting = construct_problem.split(" ", 1)[0]
        given = dict(zip(REQUIRED[::2], REQUIRED[1::2], strict=True)) | {flag: value}
        _, _, err = run(capsys, "--job-description", JOB, *[w for p in given.items() for w in p])
        assert err == f"error: {construct_problem.replace(setting, flag, 1)}\n"


# -- Bad files: botocore's model, exit 2 --------------------------------------------------------


@pytest.mark.parametrize(
    ("job", "fragments"),
    [
        (
            with_c5(InstanceType="ml.zz9.mega"),
            (
                "InferenceRecommendations[0].EndpointConfiguration.InstanceType 'ml.zz9.mega' "
                "is not a SageMaker real-time instance type",
            ),
        ),
        (with_c5(InstanceType="m5.xlarge"), ("'m5.xlarge' is not a SageMaker real-time",)),
        (
            with_c5(ModelLatency="263 ms"),
            ("InferenceRecommendations[0].Metrics.ModelLatency must be an integer, got '263 ms'",),
        ),
        (with_c5(MaxInvocations=648.5), ("MaxInvocations must be an integer, got 648.5",)),
        (with_c5(CostPerHour="0.204"), ("CostPerHour must be a number, got '0.204'",)),
        (
            {"Status": "COMPLETED", "InferenceRecommendations": ["x"]},
            ("malformed job description", "InferenceRecommendations[0] must be an object"),
        ),
    ],
)
def test_a_job_description_unlike_the_apis_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, job: Any, fragments: tuple[str, ...]
) -> None:
    status, detail, err = plan_file(capsys, tmp_path, job, *REQUIRED)
    assert_one_error_line(status, detail, err, *fragments)
    assert "InvalidOperation" not in err and "Traceback" not in err


def test_the_docs_sample_field_name_is_named_not_rejected(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The SageMaker docs' sample says ``MaximumInvocations``; the API, ``MaxInvocations``."""
    job = load_event("ir_job_completed_docs_sample.json")
    metrics = job["InferenceRecommendations"][0]["Metrics"]
    metrics["MaximumInvocations"] = metrics.pop("MaxInvocations")
    status, detail, err = plan_file(capsys, tmp_path, job, *REQUIRED)
    assert_one_error_line(
        status,
        detail,
        err,
        "InferenceRecommendations[0].Metrics has no MaxInvocations but has MaximumInvocations, "
        "which the API does not have",
    )


def test_fields_newer_than_this_botocore_are_ignored(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A newer AWS CLI prints members this botocore does not know: no reason to refuse."""
    job = two_candidate_job()
    job["InferenceRecommendations"][0]["Metrics"]["GpuUtilization"] = 12.5
    job["SomethingNew"] = {"x": 1}
    status, detail, _ = plan_file(capsys, tmp_path, job, *REQUIRED)
    assert status == 0 and detail is not None and detail["action"] == "apply"


def test_an_endpoint_config_unlike_the_apis_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = endpoint_config("ml.c5.xlarge", 2)
    config["ProductionVariants"][0]["InitialInstanceCount"] = "2"
    status, detail, err = plan_file(
        capsys,
        tmp_path,
        two_candidate_job(),
        *REQUIRED,
        "--current-endpoint-config",
        write(tmp_path, "config.json", config),
    )
    assert_one_error_line(
        status,
        detail,
        err,
        "malformed endpoint config",
        "ProductionVariants[0].InitialInstanceCount must be an integer, got '2'",
    )


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
    ],
)
def test_invalid_input_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, setup: Any, message: str
) -> None:
    status, detail, err = run(capsys, "--job-description", setup(tmp_path), *REQUIRED)
    assert_one_error_line(status, detail, err, message)


# -- What IR can return: the decision's to handle, in AWS and in plan alike ------------------


def test_a_negative_price_is_never_chosen(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, detail, _ = plan_file(capsys, tmp_path, with_c5(CostPerHour=-1), *REQUIRED)
    assert status == 0 and detail is not None
    assert (detail["action"], detail["instance_type"]) == ("apply", "ml.m5.xlarge")
    c5 = detail["candidates"][0]
    assert (c5["eligible"], c5["reason"]) == (False, "IR reported a CostPerHour of -1, not a price")


# -- Costs: exact numbers for machines, rounded sentences and units for people ----------------


def test_costs_read_as_people_write_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, detail, err = plan_file(
        capsys, tmp_path, load_event("ir_job_completed_docs_sample.json"), *REQUIRED
    )
    assert status == 0 and detail is not None
    # The event's numbers are IR's, exactly: 10 x 0.20399999618530273 (a binary float).
    assert detail["estimated_cost_per_hour"] == 2.0399999618530273
    assert detail["candidates"][0]["cost_per_hour"] == 0.20399999618530273
    # Its sentence and the summary round them; the summary names the unit.
    assert detail["reason"].endswith("(2.04 per hour at peak)")
    assert err == (
        "plan: apply ml.c5.xlarge x10, 2.04 USD per hour at peak (1489.20 USD per month); "
        "peak 3240 requests per minute, configured (--peak-requests-per-minute)\n"
    )


def test_an_apply_that_raises_the_cost_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = write(tmp_path, "config.json", endpoint_config("ml.c5.xlarge", 2))
    status, detail, err = plan_file(
        capsys,
        tmp_path,
        load_event("ir_job_completed_docs_sample.json"),
        *REQUIRED,
        "--current-endpoint-config",
        config,
    )
    assert status == 0 and detail is not None and detail["action"] == "apply"
    assert detail["reason"].endswith(
        "; it raises the cost from 0.408 to 2.04 per hour (1191.36 more per month): the "
        "current ml.c5.xlarge x2 is too few for the peak (it needs 10)"
    )
    assert err.endswith("; now ml.c5.xlarge x2, 0.408 USD per hour\n")


def test_plan_prints_what_the_workflow_publishes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The Select function (botocore Stubber) and plan, on the same job, config and settings."""
    from rightsizing_runtime import select_recommendation

    job = with_c5(CostPerHour=-1)
    config = endpoint_config("ml.c5.xlarge", 10)
    settings = {
        "settings_version": 1,
        "endpoint_name": "fraud-scoring",
        "variant_name": "AllTraffic",
        "job_role_arn": "arn:aws:iam::123456789012:role/rightsizing-job-role",
        "model": {"model_package_version_arn": job["InputConfig"]["ModelPackageVersionArn"]},
        "job": {"job_type": "Default"},
        "slo": {"percentile": "P99", "max_latency_ms": 300},
        "peak_requests_per_minute": 3240,
        "target_utilization": 0.6,
        "guardrails": {
            "min_instances": 2,
            "max_instances": 12,
            "allowed_instance_types": ["ml.c5", "ml.m5"],
            "max_cost_per_hour": 5,
            "min_saving_percent": 1.5,
            "min_saving_per_month": 20,
        },
    }
    with Stubber(select_recommendation.sagemaker) as stub:
        stub.add_response(
            "describe_inference_recommendations_job", _as_botocore(job), {"JobName": "j"}
        )
        stub.add_response(
            "describe_endpoint",
            {
                "EndpointName": "fraud-scoring",
                "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/fraud-scoring",
                "EndpointConfigName": config["EndpointConfigName"],
                "EndpointStatus": "InService",
                "CreationTime": datetime(2026, 11, 1),
                "LastModifiedTime": datetime(2026, 11, 1),
            },
            {"EndpointName": "fraud-scoring"},
        )
        stub.add_response(
            "describe_endpoint_config",
            _as_botocore(config),
            {"EndpointConfigName": config["EndpointConfigName"]},
        )
        published = select_recommendation.handler({"settings": settings, "job": {"job_name": "j"}})
        stub.assert_no_pending_responses()
    capsys.readouterr()  # Select's own output: its metrics line (EMF, README "Metrics")
    status, printed, _ = plan_file(
        capsys,
        tmp_path,
        job,
        *("--peak-requests-per-minute", "3240", "--slo-percentile", "P99", "--slo-ms", "300"),
        *("--target-utilization", "0.6", "--min-instances", "2", "--max-instances", "12"),
        *("--allowed-instance-types", "ml.c5,ml.m5", "--max-cost-per-hour", "5"),
        *("--min-saving-percent", "1.5", "--min-saving-per-month", "20"),
        *("--endpoint-name", "fraud-scoring", "--current-endpoint-config"),
        write(tmp_path, "config.json", config),
    )
    assert status == 0
    assert printed == {**published, "job_name": printed["job_name"]}
    assert published["candidates"][0]["reason"] == "IR reported a CostPerHour of -1, not a price"


def _as_botocore(document: dict[str, Any]) -> dict[str, Any]:
    """The AWS CLI's JSON as botocore returns it: timestamps as datetimes."""
    parsed = copy.deepcopy(document)
    for key in ("CreationTime", "CompletionTime", "LastModifiedTime"):
        if key in parsed:
            parsed[key] = datetime.fromisoformat(parsed[key])
    return parsed


# -- As a shell runs it -------------------------------------------------------------------------


def _module(*arguments: str | Path, **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rightsizing_constructs", *map(str, arguments)],
        capture_output=True,
        text=True,
        check=False,
        **options,
    )


def test_module_entry_point_prints_no_traceback(tmp_path: Path) -> None:
    """As a reviewer runs it: a separate process, exit code and stderr as they see them."""
    result = _module("plan", "--job-description", tmp_path / "nope.json", *REQUIRED)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: job description file not found")
    ok = _module("plan", "--job-description", JOB, *REQUIRED)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["instance_count"] == 10


def test_a_reader_that_stops_reading_gets_no_traceback() -> None:
    """``plan ... | head``: the pipe is closed before plan writes (deterministic EPIPE)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "rightsizing_constructs",
                "plan",
                "--job-description",
                JOB,
                *REQUIRED,
            ],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (141, "")


def test_plan_starts_without_the_cdk() -> None:
    """The constructs' rules, without the CDK: no Node.js process, no Node.js banner."""
    probe = (
        "import sys; from rightsizing_constructs.cli import main; "
        f"status = main(['plan', '--job-description', {str(JOB)!r}, *{list(REQUIRED)!r}]); "
        "print([m for m in sys.modules if m.startswith(('aws_cdk', 'jsii'))], file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == "[]"


# -- run -------------------------------------------------------------------------------------


def test_run_prints_the_manual_trigger_command() -> None:
    """The printed command's entry is a valid PutEvents entry that the endpoint's rule matches."""
    command = run_command(_parser().parse_args(["run", "--endpoint-name", "fraud-scoring"]))
    words = shlex.split(command)
    assert words[:4] == ["aws", "events", "put-events", "--entries"]
    [entry] = json.loads(words[4])
    model = botocore.session.get_session().get_service_model("events")
    validate_parameters({"Entries": [entry]}, model.operation_model("PutEvents").input_shape)
    assert entry["Source"] == "rightsizing-constructs"
    assert entry["DetailType"] == "Rightsizing Run Requested"
    assert entry["EventBusName"] == "default"
    assert json.loads(entry["Detail"]) == {
        "endpoint_name": "fraud-scoring",
        "variant_name": "AllTraffic",
    }


def test_run_of_an_inference_component_names_it_for_route() -> None:
    """Route keys a component's entry by endpoint and component (registry.target_of)."""
    arguments = ["run", "--endpoint-name", "llm-endpoint", "--inference-component-name", "llama-ic"]
    [entry] = json.loads(shlex.split(run_command(_parser().parse_args(arguments)))[4])
    detail = json.loads(entry["Detail"])
    assert detail["inference_component_name"] == "llama-ic"
    assert target_of(detail) == "llama-ic"
    with pytest.raises(InvalidInput, match="inference-component-name"):
        run_command(_parser().parse_args([*arguments[:-1], "llama_ic"]))


@pytest.mark.parametrize(
    "bus", ["rightsizing", "arn:aws:events:eu-west-1:111122223333:event-bus/rightsizing"]
)
def test_run_takes_a_bus_name_or_arn(capsys: pytest.CaptureFixture[str], bus: str) -> None:
    assert main(["run", "--endpoint-name", "fraud-scoring", "--event-bus", bus]) == 0
    [entry] = json.loads(shlex.split(capsys.readouterr().out)[4])
    assert entry["EventBusName"] == bus


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (("--endpoint-name", "fraud scoring!"), "--endpoint-name must be 1-63 letters"),
        (("--endpoint-name", "x" * 64), "--endpoint-name must be 1-63 letters"),
        (("--endpoint-name", "ok", "--variant-name", "All Traffic"), "--variant-name must be"),
        (("--endpoint-name", "ok", "--event-bus", "my bus/"), "--event-bus must be an event bus"),
        ((), "required: --endpoint-name"),
    ],
)
def test_run_refuses_what_the_rule_would_never_match(
    capsys: pytest.CaptureFixture[str], arguments: tuple[str, ...], fragment: str
) -> None:
    status = main(["run", *arguments])
    out, err = capsys.readouterr()
    assert_one_error_line(status, out or None, err, fragment)
