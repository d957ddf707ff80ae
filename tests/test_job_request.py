"""The IR job request built from the longest names SageMaker allows (issue 19).

botocore's parameter validation (and so the Stubber) checks a string's minimum length, not its
maximum: a JobDescription over IR's 128 characters would pass every Stubber test and fail in AWS.
The limits are read from botocore's model here.
"""

from __future__ import annotations

import botocore.session
from botocore.stub import Stubber
from rightsizing_runtime import start_job
from rightsizing_runtime.job_request import create_job_request, job_name
from rightsizing_runtime.settings import parse_settings

from tests.test_handlers import EXECUTION_ARN, PACKAGE_ARN, ROLE_ARN, settings_document

SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")


def max_length(shape: str) -> int:
    return int(SAGEMAKER.shape_for(shape).metadata["max"])


def test_the_longest_names_give_a_description_within_irs_limit() -> None:
    endpoint = "e" * max_length("EndpointName")  # 63
    variant = "v" * max_length("VariantName")  # 63
    settings = parse_settings(settings_document(endpoint_name=endpoint, variant_name=variant))
    description = create_job_request(settings, job_name(EXECUTION_ARN))["JobDescription"]
    # "rightsizing of " (15) + 63 + "/" (1) leaves 49 of the variant's 63 characters.
    assert description == "rightsizing of " + endpoint + "/" + "v" * 49
    assert len(description) == max_length("RecommendationJobDescription") == 128


def test_the_handler_sends_the_cut_description() -> None:
    endpoint = "e" * 63
    variant = "v" * 63
    with Stubber(start_job.sagemaker) as stubber:
        stubber.add_response(
            "create_inference_recommendations_job",
            {"JobArn": "arn:aws:sagemaker:us-east-1:123456789012:inference-recommendations-job/j"},
            {
                "JobName": job_name(EXECUTION_ARN),
                "JobType": "Default",
                "RoleArn": ROLE_ARN,
                "InputConfig": {"ModelPackageVersionArn": PACKAGE_ARN},
                "JobDescription": f"rightsizing of {endpoint}/{'v' * 49}",
            },
        )
        start_job.handler(
            {
                "settings": settings_document(endpoint_name=endpoint, variant_name=variant),
                "execution_arn": EXECUTION_ARN,
            }
        )
        stubber.assert_no_pending_responses()


def test_a_short_description_is_not_cut() -> None:
    settings = parse_settings(settings_document(endpoint_name="fraud-scoring", variant_name="Blue"))
    request = create_job_request(settings, "rightsizing-j")
    assert request["JobDescription"] == "rightsizing of fraud-scoring/Blue"
