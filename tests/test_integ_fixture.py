"""The deployable integration test's offline parts: fixture, model code, driver, checks.

The test itself needs an AWS account (``make integ``); ``make integ-synth`` synthesizes it.
These tests cover what can be shown without either: the archives are reproducible, the model
serves the payload, the driver refuses to run without credentials and reads assertion results
as integ-runner does, and the post-deploy check tells the two latency units apart.
"""

from __future__ import annotations

import importlib.util
import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from tests.integ import fixture, post_deploy

ROOT = Path(__file__).resolve().parent.parent


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def driver() -> ModuleType:
    return _load(ROOT / "tools" / "integ.py", "integ_driver")


@pytest.fixture(scope="module")
def inference() -> ModuleType:
    return _load(fixture.MODEL_DIR / "code" / "inference.py", "integ_inference")


# -- Fixture -------------------------------------------------------------------------------------


def test_archives_are_byte_for_byte_reproducible(tmp_path: Path) -> None:
    first = fixture.build_archives(tmp_path / "a")
    second = fixture.build_archives(tmp_path / "b")

    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_model_archive_holds_the_weights_and_the_serving_code(tmp_path: Path) -> None:
    model, payload = fixture.build_archives(tmp_path)

    with tarfile.open(model) as archive:
        assert archive.getnames() == ["code", "code/inference.py", "model.json"]
        assert {m.mtime for m in archive.getmembers()} == {0}
    with tarfile.open(payload) as archive:
        assert archive.getnames() == ["requests.csv"]
    # SAGEMAKER_SUBMIT_DIRECTORY points where the container unpacks code/.
    assert fixture.ENVIRONMENT["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"


def test_image_accounts_are_commercial_regions_only() -> None:
    # The image URI uses AWS::URLSuffix, but China and GovCloud hold other accounts and
    # partitions; the mapping lists the aws partition only.
    assert all(
        not r.startswith(("cn-", "us-gov-", "us-iso")) for r in fixture.SKLEARN_IMAGE_ACCOUNTS
    )
    assert all(len(a) == 12 and a.isdigit() for a in fixture.SKLEARN_IMAGE_ACCOUNTS.values())


# -- The model's serving code ------------------------------------------------------------------


def test_model_serves_the_sample_payload(inference: ModuleType) -> None:
    model = inference.model_fn(str(fixture.MODEL_DIR))
    body = (fixture.PAYLOAD_DIR / "requests.csv").read_bytes()

    rows = inference.input_fn(body, "text/csv")
    predictions = inference.predict_fn(rows, model)
    response, content_type = inference.output_fn(predictions, "text/csv")

    # 0.5 + 0.25*1 - 0.125*2 + 0.0625*3 + 1.0*4
    assert predictions[0] == pytest.approx(4.6875)
    assert len(predictions) == 3
    assert content_type == "text/csv"
    assert [float(line) for line in response.splitlines()] == pytest.approx(predictions)


def test_model_rejects_other_content_and_shapes(inference: ModuleType) -> None:
    model = inference.model_fn(str(fixture.MODEL_DIR))

    with pytest.raises(ValueError, match="text/csv"):
        inference.input_fn(b"{}", "application/json")
    with pytest.raises(ValueError, match="4 features"):
        inference.predict_fn([[1.0, 2.0]], model)


# -- Driver ----------------------------------------------------------------------------------


def test_driver_refuses_without_credentials(
    driver: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_REGION", "us-east-1")

    with pytest.raises(driver.Refused, match="no AWS credentials"):
        driver.aws_session()


def test_driver_refuses_a_region_without_the_image(
    driver: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    monkeypatch.setenv("AWS_REGION", "cn-north-1")

    # Refused before any call to AWS (STS comes after the region check).
    with pytest.raises(driver.Refused, match="cn-north-1"):
        driver.aws_session()


def test_driver_reads_assertion_results_as_integ_runner_does(
    driver: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    results = tmp_path / "assertion-results.json"
    results.write_text(
        json.dumps(
            {
                "DeployAssertStack": {
                    "AssertionResultsAwsApiCallA": json.dumps({"status": "success"}),
                    "AssertionResultsAwsApiCallB": json.dumps(
                        {"status": "fail", "message": "Expected applied\nGot failed"}
                    ),
                    "SomethingElse": "not an assertion",
                }
            }
        )
    )
    monkeypatch.setattr(driver, "RESULTS_FILE", results)

    assert driver.assertion_failures() == [
        "AssertionResultsAwsApiCallB: Expected applied\nGot failed"
    ]


def test_driver_counts_missing_results_as_failure(
    driver: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(driver, "RESULTS_FILE", tmp_path / "absent.json")

    assert driver.assertion_failures() == [
        "no assertion results were written (the assertion stack did not deploy)"
    ]


# -- Post-deploy checks ------------------------------------------------------------------------


class _FakeClients:
    """Canned answers for the three reads of the latency check (no AWS)."""

    def __init__(self, ir_model_latency: float, cloudwatch_us: float) -> None:
        start = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        self.job = {
            "InferenceRecommendations": [
                {
                    "RecommendationId": "r1",
                    "Metrics": {"ModelLatency": ir_model_latency},
                    "EndpointConfiguration": {
                        "EndpointName": "rightsizing-abc-1",
                        "VariantName": "AllTraffic",
                        "InstanceType": "ml.c5.large",
                    },
                    "InvocationStartTime": start,
                    "InvocationEndTime": start.replace(minute=10),
                }
            ]
        }
        self.points = [{"Average": cloudwatch_us, "Maximum": cloudwatch_us * 3}]

    def client(self, name: str) -> Any:
        if name == "sagemaker":
            return SimpleNamespace(describe_inference_recommendations_job=lambda **_: self.job)
        assert name == "cloudwatch"
        return SimpleNamespace(get_metric_statistics=lambda **_: {"Datapoints": self.points})


def _record(model_latency_ms: float) -> dict[str, Any]:
    return {
        "job_name": "rightsizing-abc",
        "candidates": [
            {
                "recommendation_id": "r1",
                "instance_type": "ml.c5.large",
                "model_latency_ms": model_latency_ms,
            }
        ],
    }


def test_latency_check_passes_when_the_record_matches_cloudwatch_in_microseconds() -> None:
    # IR says 2000 (microseconds), the library records 2 ms, CloudWatch saw ~2000 us.
    lines = post_deploy.latency_unit(_FakeClients(2000, 1500), _record(2.0))

    assert "ratio" in lines[0]


def test_latency_check_fails_on_a_factor_of_1000() -> None:
    # IR said 2 (milliseconds), the library read microseconds and recorded 0.002 ms.
    with pytest.raises(post_deploy.CheckFailed, match="factor of 1000"):
        post_deploy.latency_unit(_FakeClients(2, 1500), _record(0.002))


def test_latency_check_is_inconclusive_without_datapoints() -> None:
    clients = _FakeClients(2000, 1500)
    clients.points = []

    assert "inconclusive" in post_deploy.latency_unit(clients, _record(2.0))[0]


def test_cost_per_inference_relation() -> None:
    record = {
        "candidates": [
            # The genuine sample of AWS_NOTES.md: 0.204 $/h at 648 requests per minute.
            {
                "instance_type": "ml.c5.xlarge",
                "cost_per_hour": 0.204,
                "max_invocations_per_instance_per_minute": 648,
                "cost_per_inference": 5.25e-6,
            },
            {
                "instance_type": "ml.m5.large",
                "cost_per_hour": 0.115,
                "max_invocations_per_instance_per_minute": 100,
                "cost_per_inference": 1e-3,
            },
        ]
    }

    [odd] = post_deploy.cost_per_inference(record)
    assert "ml.m5.large" in odd


def test_archive_bytes_do_not_depend_on_file_times(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("x")
    before = fixture.tar_gz(source)
    (source / "a.txt").touch()

    assert fixture.tar_gz(source) == before
    with tarfile.open(fileobj=io.BytesIO(before)) as archive:
        assert archive.getmember("a.txt").uname == ""


def test_running_jobs_of_this_deployment_are_stopped() -> None:
    listed: dict[str, list[dict[str, str]]] = {
        "IN_PROGRESS": [{"JobName": "rightsizing-abc"}],
        "PENDING": [],
    }
    stopped: list[str] = []
    sagemaker = SimpleNamespace(
        list_inference_recommendations_jobs=lambda ModelNameEquals, StatusEquals: {
            "InferenceRecommendationsJobs": listed[StatusEquals]
        },
        stop_inference_recommendations_job=lambda JobName: stopped.append(JobName),
    )
    session = SimpleNamespace(client=lambda name: sagemaker)

    assert post_deploy.stop_running_jobs(session, ["integ-rs-auto-model-1a2b3c4d"]) == [
        "rightsizing-abc"
    ]
    assert stopped == ["rightsizing-abc"]


def test_latency_check_names_serverless_candidates() -> None:
    clients = _FakeClients(2000, 1500)
    del clients.job["InferenceRecommendations"][0]["EndpointConfiguration"]["InstanceType"]

    assert post_deploy.latency_unit(clients, _record(2.0))[0].startswith("  serverless:")
