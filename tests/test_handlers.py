"""Handlers against botocore's Stubber: every request checked against the SageMaker model.

``Stubber`` validates each request's parameters against botocore's service model before the
``expected_params`` comparison, and each canned response against the output shape, so a field
name from a doc sample that the API does not have fails here.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from rightsizing_runtime import select_recommendation, start_job, stop_job
from rightsizing_runtime.decision import InvalidJobResultError
from rightsizing_runtime.errors import (
    EndpointNotFoundError,
    TransientAwsError,
    UnsupportedEndpointError,
)
from rightsizing_runtime.job_request import job_name
from rightsizing_runtime.settings import InvalidSettingsError

from tests.conftest import load_event
from tests.infra import ACCOUNT, REGION

EXECUTION_ARN = (
    "arn:aws:states:us-east-1:123456789012:execution:RightsizingStateMachine:3f2a9c1e-run"
)
JOB_NAME = job_name(EXECUTION_ARN)
JOB_ARN = f"arn:aws:sagemaker:us-east-1:123456789012:inference-recommendations-job/{JOB_NAME}"
ROLE_ARN = "arn:aws:iam::123456789012:role/rightsizing-job-role"
PACKAGE_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/fraud-scoring/3"
NOW = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def settings_document(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "settings_version": 1,
        "endpoint_name": "fraud-scoring",
        "variant_name": "AllTraffic",
        "job_role_arn": ROLE_ARN,
        "model": {"model_package_version_arn": PACKAGE_ARN},
        "job": {"job_type": "Default"},
        "slo": {"percentile": "P99", "max_latency_ms": 300},
        "peak_requests_per_minute": 3240,
        "target_utilization": 0.5,
        "guardrails": {"min_instances": 1, "max_instances": 10, "allowed_instance_types": []},
    }
    document.update(overrides)
    return document


def describe_endpoint_response(
    variants: list[dict[str, Any]] | None = None, config_name: str = "fraud-scoring-config-1"
) -> dict[str, Any]:
    return {
        "EndpointName": "fraud-scoring",
        "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/fraud-scoring",
        "EndpointConfigName": config_name,
        "ProductionVariants": variants
        if variants is not None
        else [{"VariantName": "AllTraffic", "CurrentInstanceCount": 4}],
        "EndpointStatus": "InService",
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
    }


def describe_endpoint_config_response(instance_type: str, count: int) -> dict[str, Any]:
    return {
        "EndpointConfigName": "fraud-scoring-config-1",
        "EndpointConfigArn": (
            "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/fraud-scoring-config-1"
        ),
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": "fraud-scoring-model",
                "InstanceType": instance_type,
                "InitialInstanceCount": count,
            }
        ],
        "CreationTime": NOW,
    }


def docs_sample_job() -> dict[str, Any]:
    """The genuine docs sample (values as published; field names as botocore's model has them:
    the sample's ``MaximumInvocations`` is ``MaxInvocations`` in the API)."""
    job = load_event("ir_job_completed_docs_sample.json")
    for key in ("CreationTime", "CompletionTime", "LastModifiedTime"):
        job[key] = datetime.fromisoformat(job[key])
    job["JobName"] = JOB_NAME
    return job


@pytest.fixture
def sagemaker_stub(request: pytest.FixtureRequest) -> Iterator[Stubber]:
    """A Stubber on the handler module's own client; fails if a stubbed call was not made."""
    module = request.param
    with Stubber(module.sagemaker) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def stub_endpoint(stubber: Stubber) -> None:
    """DescribeEndpoint of an in-service endpoint with the default variant."""
    stubber.add_response(
        "describe_endpoint", describe_endpoint_response(), {"EndpointName": "fraud-scoring"}
    )


def client_error(stubber: Stubber, method: str, code: str, message: str, **params: Any) -> None:
    stubber.add_client_error(
        method, service_error_code=code, service_message=message, expected_params=params
    )


# -- StartJob ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sagemaker_stub", [start_job], indirect=True)
class TestStartJob:
    def test_default_job_request(self, sagemaker_stub: Stubber) -> None:
        sagemaker_stub.add_response(
            "create_inference_recommendations_job",
            {"JobArn": JOB_ARN},
            {
                "JobName": JOB_NAME,
                "JobType": "Default",
                "RoleArn": ROLE_ARN,
                "InputConfig": {"ModelPackageVersionArn": PACKAGE_ARN},
                "JobDescription": "rightsizing of fraud-scoring/AllTraffic",
            },
        )
        result = start_job.handler(
            {"settings": settings_document(), "execution_arn": EXECUTION_ARN}
        )
        assert result == {"job_name": JOB_NAME, "job_arn": JOB_ARN}

    def test_advanced_job_request(self, sagemaker_stub: Stubber) -> None:
        job = {
            "job_type": "Advanced",
            "instance_types": ["ml.c5.xlarge", "ml.m5.xlarge"],
            "job_duration_seconds": 7200,
            "traffic_pattern": {
                "phases": [{"initial_number_of_users": 1, "spawn_rate": 2, "duration_seconds": 120}]
            },
            "stopping_conditions": {
                "max_invocations": 3000,
                "model_latency_threshold": {"percentile": "P95", "value_ms": 150},
            },
            "max_number_of_tests": 2,
            "max_parallel_of_tests": 1,
        }
        sagemaker_stub.add_response(
            "create_inference_recommendations_job",
            {"JobArn": JOB_ARN},
            {
                "JobName": JOB_NAME,
                "JobType": "Advanced",
                "RoleArn": ROLE_ARN,
                "JobDescription": "rightsizing of fraud-scoring/AllTraffic",
                "InputConfig": {
                    "ModelPackageVersionArn": PACKAGE_ARN,
                    "JobDurationInSeconds": 7200,
                    "EndpointConfigurations": [
                        {"InstanceType": "ml.c5.xlarge"},
                        {"InstanceType": "ml.m5.xlarge"},
                    ],
                    "TrafficPattern": {
                        "TrafficType": "PHASES",
                        "Phases": [
                            {"InitialNumberOfUsers": 1, "SpawnRate": 2, "DurationInSeconds": 120}
                        ],
                    },
                    "ResourceLimit": {"MaxNumberOfTests": 2, "MaxParallelOfTests": 1},
                },
                "StoppingConditions": {
                    "MaxInvocations": 3000,
                    "ModelLatencyThresholds": [{"Percentile": "P95", "ValueInMilliseconds": 150}],
                },
            },
        )
        start_job.handler({"settings": settings_document(job=job), "execution_arn": EXECUTION_ARN})

    def test_model_name_with_container_config_and_stairs(self, sagemaker_stub: Stubber) -> None:
        model = {
            "model_name": "fraud-scoring-model",
            "container_config": {
                "domain": "MACHINE_LEARNING",
                "task": "CLASSIFICATION",
                "framework": "XGBOOST",
                "framework_version": "1.7",
                "sample_payload_url": "s3://payloads/fraud.tar.gz",
                "supported_content_types": ["text/csv"],
            },
        }
        job = {
            "job_type": "Advanced",
            "instance_types": ["ml.c5.xlarge"],
            "job_duration_seconds": 3600,
            "traffic_pattern": {
                "stairs": {"duration_seconds": 600, "number_of_steps": 5, "users_per_step": 2}
            },
            "stopping_conditions": {},
        }
        sagemaker_stub.add_response(
            "create_inference_recommendations_job",
            {"JobArn": JOB_ARN},
            {
                "JobName": JOB_NAME,
                "JobType": "Advanced",
                "RoleArn": ROLE_ARN,
                "JobDescription": "rightsizing of fraud-scoring/AllTraffic",
                "InputConfig": {
                    "ModelName": "fraud-scoring-model",
                    "ContainerConfig": {
                        "Domain": "MACHINE_LEARNING",
                        "Task": "CLASSIFICATION",
                        "Framework": "XGBOOST",
                        "FrameworkVersion": "1.7",
                        "PayloadConfig": {
                            "SamplePayloadUrl": "s3://payloads/fraud.tar.gz",
                            "SupportedContentTypes": ["text/csv"],
                        },
                    },
                    "JobDurationInSeconds": 3600,
                    "EndpointConfigurations": [{"InstanceType": "ml.c5.xlarge"}],
                    "TrafficPattern": {
                        "TrafficType": "STAIRS",
                        "Stairs": {"DurationInSeconds": 600, "NumberOfSteps": 5, "UsersPerStep": 2},
                    },
                },
            },
        )
        start_job.handler(
            {"settings": settings_document(model=model, job=job), "execution_arn": EXECUTION_ARN}
        )

    def test_retried_invocation_reuses_the_job(self, sagemaker_stub: Stubber) -> None:
        sagemaker_stub.add_client_error(
            "create_inference_recommendations_job",
            service_error_code="ResourceInUse",
            service_message=f"Job {JOB_NAME} already exists",
        )
        sagemaker_stub.add_response(
            "describe_inference_recommendations_job", docs_sample_job(), {"JobName": JOB_NAME}
        )
        result = start_job.handler(
            {"settings": settings_document(), "execution_arn": EXECUTION_ARN}
        )
        assert result["job_arn"].endswith("rightsizing-0123456789abcdef01234567")

    def test_unknown_endpoint_starts_nothing(self, sagemaker_stub: Stubber) -> None:
        client_error(
            sagemaker_stub,
            "describe_endpoint",
            "ValidationException",
            'Could not find endpoint "fraud-scoring".',
            EndpointName="fraud-scoring",
        )
        with pytest.raises(EndpointNotFoundError, match="'fraud-scoring' does not exist"):
            start_job.handler({"step": "prepare", "settings": settings_document()})

    def test_unknown_variant_starts_nothing(self, sagemaker_stub: Stubber) -> None:
        sagemaker_stub.add_response(
            "describe_endpoint",
            describe_endpoint_response([{"VariantName": "Blue"}]),
            {"EndpointName": "fraud-scoring"},
        )
        with pytest.raises(UnsupportedEndpointError, match="no variant 'AllTraffic'"):
            start_job.handler({"step": "prepare", "settings": settings_document()})

    def test_serverless_variant_starts_nothing(self, sagemaker_stub: Stubber) -> None:
        sagemaker_stub.add_response(
            "describe_endpoint",
            describe_endpoint_response(
                [
                    {
                        "VariantName": "AllTraffic",
                        "CurrentServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
                    }
                ]
            ),
            {"EndpointName": "fraud-scoring"},
        )
        with pytest.raises(UnsupportedEndpointError, match="serverless"):
            start_job.handler({"step": "prepare", "settings": settings_document()})

    def test_other_errors_propagate_for_the_state_machine(self, sagemaker_stub: Stubber) -> None:
        sagemaker_stub.add_client_error(
            "create_inference_recommendations_job",
            service_error_code="ResourceLimitExceeded",
            service_message="account quota for ml.c5.xlarge endpoints reached",
        )
        with pytest.raises(Exception, match="ResourceLimitExceeded"):
            start_job.handler({"settings": settings_document(), "execution_arn": EXECUTION_ARN})

    @pytest.mark.parametrize(
        ("document", "message"),
        [
            ({"settings_version": 2}, "settings_version 2 is not supported"),
            (settings_document(endpoint_name=""), "'endpoint_name' must be a non-empty string"),
            (
                {k: v for k, v in settings_document().items() if k != "slo"},
                "missing the key 'slo'",
            ),
            (settings_document(target_utilization=2), "target_utilization must be in"),
            (settings_document(peak_requests_per_minute="lots"), "wrong kind"),
            (settings_document(peak_traffic={"source": "guess"}), "source must be 'observed'"),
        ],
    )
    def test_malformed_settings_change_nothing(
        self, sagemaker_stub: Stubber, document: dict[str, Any], message: str
    ) -> None:
        # No stubbed call: the Stubber fails the test if the handler calls AWS at all.
        with pytest.raises(InvalidSettingsError, match=message):
            start_job.handler({"settings": document, "execution_arn": EXECUTION_ARN})


# -- Prepare: the measured peak (#14) ---------------------------------------------------------

PEAK_TRAFFIC = {
    "source": "observed",
    "lookback_seconds": 14 * 86_400,
    "percentile": 100,
    "growth": 1.2,
    "at_least": None,
    "min_history_seconds": 86_400,
}


@pytest.fixture
def cloudwatch_stub() -> Iterator[Stubber]:
    """A Stubber on StartJob's CloudWatch client."""
    with Stubber(start_job.cloudwatch) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def invocations_page(values: list[float]) -> dict[str, Any]:
    start = datetime(2026, 10, 30, tzinfo=UTC)
    return {
        "MetricDataResults": [
            {
                "Id": "invocations",
                "Timestamps": [start + timedelta(minutes=i) for i in range(len(values))],
                "Values": values,
                "StatusCode": "Complete",
            }
        ]
    }


def stub_model_package(stubber: Stubber) -> None:
    """DescribeModelPackage of the settings' version: Prepare's fingerprint of the model."""
    stubber.add_response(
        "describe_model_package",
        {
            "ModelPackageName": "fraud-scoring",
            "ModelPackageArn": PACKAGE_ARN,
            "CreationTime": NOW,
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": []},
            "InferenceSpecification": {
                "Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/f:3"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        },
        {"ModelPackageName": PACKAGE_ARN},
    )


# No stored load test is looked for (reuse_load_test_for=Duration.days(0)): these pin the peak.
NO_REUSE = {"reuse_max_age_seconds": 0}


@pytest.mark.parametrize("sagemaker_stub", [start_job], indirect=True)
class TestPreparePeak:
    def test_the_run_sizes_for_the_observed_peak(
        self, sagemaker_stub: Stubber, cloudwatch_stub: Stubber
    ) -> None:
        stub_endpoint(sagemaker_stub)
        stub_model_package(sagemaker_stub)
        values = [400.0] * 2880
        values[1000] = 850.0
        cloudwatch_stub.add_response(
            "get_metric_data",
            invocations_page(values),
            {
                "MetricDataQueries": [
                    {
                        "Id": "invocations",
                        "MetricStat": {
                            "Metric": {
                                "Namespace": "AWS/SageMaker",
                                "MetricName": "Invocations",
                                "Dimensions": [
                                    {"Name": "EndpointName", "Value": "fraud-scoring"},
                                    {"Name": "VariantName", "Value": "AllTraffic"},
                                ],
                            },
                            "Period": 60,
                            "Stat": "Sum",
                        },
                        "ReturnData": True,
                    }
                ],
                "StartTime": ANY,
                "EndTime": ANY,
                "ScanBy": "TimestampAscending",
            },
        )
        run = start_job.handler(
            {
                "step": "prepare",
                "settings": settings_document(peak_traffic=PEAK_TRAFFIC, **NO_REUSE),
            }
        )
        assert run["peak_requests_per_minute"] == 1020  # 850 x 1.2, not the configured 3240
        assert run["peak_source"]["kind"] == "observed"
        assert run["peak_source"]["observed_per_minute"] == 850
        assert run["peak_source"]["datapoints"] == 2880
        assert run["peak_traffic"] == PEAK_TRAFFIC  # the settings ride along unchanged

    def test_an_unreadable_metric_keeps_the_configured_peak(
        self, sagemaker_stub: Stubber, cloudwatch_stub: Stubber
    ) -> None:
        stub_endpoint(sagemaker_stub)
        stub_model_package(sagemaker_stub)
        cloudwatch_stub.add_client_error(
            "get_metric_data",
            service_error_code="AccessDenied",
            service_message="not authorized to perform: cloudwatch:GetMetricData",
            http_status_code=403,
        )
        run = start_job.handler(
            {
                "step": "prepare",
                "settings": settings_document(peak_traffic=PEAK_TRAFFIC, **NO_REUSE),
            }
        )
        assert run["peak_requests_per_minute"] == 3240
        assert run["peak_source"]["kind"] == "fallback"
        assert run["peak_source"]["reason"].startswith("could not read CloudWatch (AccessDenied")

    def test_without_peak_traffic_nothing_is_read(
        self, sagemaker_stub: Stubber, cloudwatch_stub: Stubber
    ) -> None:
        stub_endpoint(sagemaker_stub)
        stub_model_package(sagemaker_stub)
        run = start_job.handler({"step": "prepare", "settings": settings_document(**NO_REUSE)})
        assert run["peak_requests_per_minute"] == 3240
        assert run["peak_source"] == {"kind": "configured"}
        assert "peak_traffic" not in run


def test_job_names_are_valid_unique_and_short() -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    pattern = model.shape_for("RecommendationJobName").metadata["pattern"]
    names = {job_name(f"{EXECUTION_ARN}-{i}") for i in range(1000)}
    assert len(names) == 1000
    for name in names:
        assert re.fullmatch(pattern, name)
        # IR truncates the names of the resources it derives from the job at 40 characters.
        assert len(name) <= 40
    assert job_name(EXECUTION_ARN) == job_name(EXECUTION_ARN)


# -- SelectRecommendation ---------------------------------------------------------------------


@pytest.mark.parametrize("sagemaker_stub", [select_recommendation], indirect=True)
class TestSelectRecommendation:
    def _stub_reads(
        self, stub: Stubber, job: dict[str, Any], instance_type: str, count: int
    ) -> None:
        stub.add_response("describe_inference_recommendations_job", job, {"JobName": JOB_NAME})
        stub_endpoint(stub)
        stub.add_response(
            "describe_endpoint_config",
            describe_endpoint_config_response(instance_type, count),
            {"EndpointConfigName": "fraud-scoring-config-1"},
        )

    def test_docs_sample_recommends_ten_c5_xlarge(self, sagemaker_stub: Stubber) -> None:
        self._stub_reads(sagemaker_stub, docs_sample_job(), "ml.m5.2xlarge", 6)
        detail = select_recommendation.handler(
            {"settings": settings_document(), "job": {"job_name": JOB_NAME}}
        )
        assert detail["schema_version"] == "1"
        assert detail["action"] == "apply"
        assert (detail["instance_type"], detail["instance_count"]) == ("ml.c5.xlarge", 10)
        assert detail["autoscaling"] == {
            "metric": "SageMakerVariantInvocationsPerInstance",
            "target_value": 324.0,
            "min_capacity": 1,
            "max_capacity": 10,
        }
        assert detail["estimated_cost_per_hour"] == pytest.approx(2.04)
        assert detail["current"]["instance_type"] == "ml.m5.2xlarge"
        assert detail["current"]["estimated_cost_per_hour"] is None  # IR did not measure m5
        [candidate] = detail["candidates"]
        assert candidate["model_latency_ms"] == pytest.approx(263.596)
        assert candidate["chosen"] is True

    def test_inputs_say_where_the_peak_came_from(self, sagemaker_stub: Stubber) -> None:
        source = {
            "kind": "observed",
            "lookback_days": 14,
            "percentile": 100,
            "growth": 1.2,
            "at_least": None,
            "period_seconds": 60,
            "datapoints": 20160,
            "observed_per_minute": 2700,
            "reason": "p100 of 20160 60-second periods over the last 14 days: ...",
        }
        for settings, expected in (
            (settings_document(), {"kind": "configured"}),
            (settings_document(peak_source={"kind": "configured"}), {"kind": "configured"}),
            (settings_document(peak_source=source), source),
        ):
            self._stub_reads(sagemaker_stub, docs_sample_job(), "ml.m5.2xlarge", 6)
            detail = select_recommendation.handler(
                {"settings": settings, "job": {"job_name": JOB_NAME}}
            )
            assert detail["inputs"]["peak_source"] == expected
            assert detail["inputs"]["peak_requests_per_minute"] == 3240

    def test_no_change_when_already_running_it(self, sagemaker_stub: Stubber) -> None:
        self._stub_reads(sagemaker_stub, docs_sample_job(), "ml.c5.xlarge", 10)
        detail = select_recommendation.handler(
            {"settings": settings_document(), "job": {"job_name": JOB_NAME}}
        )
        assert detail["action"] == "no-change"
        assert detail["current"]["estimated_cost_per_hour"] == pytest.approx(2.04)

    def test_reject_keeps_type_and_count_null(self, sagemaker_stub: Stubber) -> None:
        self._stub_reads(sagemaker_stub, docs_sample_job(), "ml.c5.xlarge", 2)
        detail = select_recommendation.handler(
            {
                "settings": settings_document(slo={"percentile": "P99", "max_latency_ms": 100}),
                "job": {"job_name": JOB_NAME},
            }
        )
        assert detail["action"] == "reject"
        assert detail["instance_type"] is None and detail["instance_count"] is None
        assert detail["autoscaling"] is None
        assert "exceeds the P99 SLO of 100 ms" in detail["reason"]

    def test_a_decided_run_emits_its_metrics_as_one_emf_line(
        self, sagemaker_stub: Stubber, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """README, "Metrics": Runs per outcome (fleet and variant), costs per month, load test."""
        job = docs_sample_job()
        [recommendation] = job["InferenceRecommendations"]
        recommendation["InvocationStartTime"] = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
        recommendation["InvocationEndTime"] = datetime(2026, 11, 1, 10, 40, tzinfo=UTC)
        self._stub_reads(sagemaker_stub, job, "ml.c5.xlarge", 12)
        detail = select_recommendation.handler(
            {"settings": settings_document(), "job": {"job_name": JOB_NAME}}
        )
        assert detail["action"] == "apply"
        [line] = capsys.readouterr().out.splitlines()
        document = json.loads(line)
        assert isinstance(document["_aws"]["Timestamp"], int)
        assert document["_aws"]["CloudWatchMetrics"] == [
            {
                "Namespace": "Rightsizing",
                "Dimensions": [["Outcome"], ["EndpointName", "VariantName", "Outcome"]],
                "Metrics": [{"Name": "Runs", "Unit": "Count"}],
            },
            {
                "Namespace": "Rightsizing",
                "Dimensions": [[], ["EndpointName", "VariantName"]],
                "Metrics": [
                    {"Name": "JobReused", "Unit": "Count"},
                    {"Name": "EstimatedMonthlyCostBefore", "Unit": "None"},
                    {"Name": "EstimatedMonthlyCostAfter", "Unit": "None"},
                    {"Name": "EstimatedMonthlySaving", "Unit": "None"},
                    {"Name": "LoadTestCost", "Unit": "None"},
                ],
            },
        ]
        values = {k: v for k, v in document.items() if k != "_aws"}
        assert values == {
            "EndpointName": "fraud-scoring",
            "VariantName": "AllTraffic",
            "Outcome": "apply",
            "Runs": 1,
            "JobReused": 0,
            # 12 and 10 ml.c5.xlarge at IR's 0.204 per hour, 730 hours a month.
            "EstimatedMonthlyCostBefore": 1787.04,
            "EstimatedMonthlyCostAfter": 1489.2,
            "EstimatedMonthlySaving": 297.84,
            # One candidate benchmarked for 40 minutes at 0.204 per hour.
            "LoadTestCost": 0.136,
        }

    def test_unknown_costs_and_a_reused_job_leave_their_metrics_out(
        self, sagemaker_stub: Stubber, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # The docs sample has no benchmark window; IR did not measure the current ml.m5.
        self._stub_reads(sagemaker_stub, docs_sample_job(), "ml.m5.2xlarge", 6)
        select_recommendation.handler(
            {"settings": settings_document(), "job": {"job_name": JOB_NAME}}
        )
        [line] = capsys.readouterr().out.splitlines()
        document = json.loads(line)
        assert "LoadTestCost" not in document and "EstimatedMonthlySaving" not in document
        assert "EstimatedMonthlyCostBefore" not in document
        assert (document["Outcome"], document["EstimatedMonthlyCostAfter"]) == ("apply", 1489.2)

    def test_failed_job_raises_with_irs_reason(self, sagemaker_stub: Stubber) -> None:
        job = docs_sample_job()
        job.update(Status="FAILED", FailureReason="ResourceLimitExceeded for ml.c5.xlarge")
        del job["InferenceRecommendations"]
        sagemaker_stub.add_response(
            "describe_inference_recommendations_job", job, {"JobName": JOB_NAME}
        )
        with pytest.raises(InvalidJobResultError, match=r"FAILED.*ResourceLimitExceeded"):
            select_recommendation.handler(
                {"settings": settings_document(), "job": {"job_name": JOB_NAME}}
            )

    def test_serverless_only_results_are_rejected(self, sagemaker_stub: Stubber) -> None:
        job = docs_sample_job()
        recommendation = copy.deepcopy(job["InferenceRecommendations"][0])
        recommendation["EndpointConfiguration"] = {
            "EndpointName": "e",
            "VariantName": "AllTraffic",
            "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
        }
        job["InferenceRecommendations"] = [recommendation]
        self._stub_reads(sagemaker_stub, job, "ml.c5.xlarge", 2)
        detail = select_recommendation.handler(
            {"settings": settings_document(), "job": {"job_name": JOB_NAME}}
        )
        assert detail["action"] == "reject"
        assert "serverless" in detail["reason"]

    def test_endpoint_deleted_meanwhile(self, sagemaker_stub: Stubber) -> None:
        sagemaker_stub.add_response(
            "describe_inference_recommendations_job", docs_sample_job(), {"JobName": JOB_NAME}
        )
        client_error(
            sagemaker_stub,
            "describe_endpoint",
            "ValidationException",
            'Could not find endpoint "fraud-scoring".',
            EndpointName="fraud-scoring",
        )
        with pytest.raises(EndpointNotFoundError):
            select_recommendation.handler(
                {"settings": settings_document(), "job": {"job_name": JOB_NAME}}
            )


# -- StopJob ----------------------------------------------------------------------------------


AI_JOBS = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:ai-recommendation-job/"


@pytest.mark.parametrize("sagemaker_stub", [stop_job], indirect=True)
class TestStopJob:
    def test_stops_the_job_of_the_execution(self, sagemaker_stub: Stubber) -> None:
        sagemaker_stub.add_response("stop_inference_recommendations_job", {}, {"JobName": JOB_NAME})
        result = stop_job.handler({"execution_arn": EXECUTION_ARN, "reason": "ABORTED"})
        assert result == {"job_name": JOB_NAME, "stopped": True, "reason": "ABORTED"}

    @pytest.mark.parametrize("code", ["ResourceNotFound", "ValidationException"])
    def test_nothing_to_stop_is_not_an_error(self, sagemaker_stub: Stubber, code: str) -> None:
        client_error(
            sagemaker_stub,
            "stop_inference_recommendations_job",
            code,
            "no running job",
            JobName=JOB_NAME,
        )
        # Nor is an inference component's AI recommendation job of that name there.
        client_error(
            sagemaker_stub,
            "stop_ai_recommendation_job",
            "ResourceNotFound",
            "no such job",
            AIRecommendationJobName=JOB_NAME,
        )
        result = stop_job.handler({"execution_arn": EXECUTION_ARN, "reason": "JobTimedOut"})
        assert result["stopped"] is False

    def test_stops_an_inference_components_ai_job(self, sagemaker_stub: Stubber) -> None:
        # An inference component's run started an AI recommendation job of the same name.
        client_error(
            sagemaker_stub,
            "stop_inference_recommendations_job",
            "ResourceNotFound",
            "no such job",
            JobName=JOB_NAME,
        )
        sagemaker_stub.add_response(
            "stop_ai_recommendation_job",
            {"AIRecommendationJobArn": f"{AI_JOBS}{JOB_NAME}"},
            {"AIRecommendationJobName": JOB_NAME},
        )
        result = stop_job.handler({"execution_arn": EXECUTION_ARN, "reason": "ABORTED"})
        assert result == {"job_name": JOB_NAME, "stopped": True, "reason": "ABORTED"}

    def test_throttling_is_raised_for_the_workflow_to_retry(self, sagemaker_stub: Stubber) -> None:
        client_error(
            sagemaker_stub,
            "stop_inference_recommendations_job",
            "ThrottlingException",
            "Rate exceeded",
            JobName=JOB_NAME,
        )
        with pytest.raises(TransientAwsError, match="ThrottlingException"):
            stop_job.handler({"execution_arn": EXECUTION_ARN, "reason": "TIMED_OUT"})

    def test_other_errors_propagate(self, sagemaker_stub: Stubber) -> None:
        client_error(
            sagemaker_stub,
            "stop_inference_recommendations_job",
            "AccessDeniedException",
            "not authorized",
            JobName=JOB_NAME,
        )
        with pytest.raises(ClientError, match="AccessDeniedException"):
            stop_job.handler({"execution_arn": EXECUTION_ARN, "reason": "TIMED_OUT"})
