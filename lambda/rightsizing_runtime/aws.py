"""What every handler shares about talking to AWS: one client configuration, error codes."""

from __future__ import annotations

from functools import cache

import boto3
import botocore.loaders
import botocore.model
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

# Standard retry mode backs off on throttling and transient errors inside the Lambda; what still
# fails after that surfaces as an error that the state machine's Retry/Catch handles.
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8})


def sagemaker_client() -> BaseClient:
    """A SageMaker client for the Lambda's region, created once per module at cold start."""
    return boto3.client("sagemaker", config=CLIENT_CONFIG)


@cache
def service_model(service: str) -> botocore.model.ServiceModel:
    """Botocore's model of ``service``, read from the installed botocore's data files.

    No session: a session reads the AWS configuration (``AWS_PROFILE`` naming a profile that
    does not exist raises ``ProfileNotFound``), and ``cdk synth`` must need no AWS configuration
    at all. The model is the same one botocore's clients are built from.
    """
    loader = botocore.loaders.Loader()
    return botocore.model.ServiceModel(
        loader.load_service_model(service, "service-2"), service_name=service
    )


def error_code(error: ClientError) -> str:
    """The AWS error code of a ClientError (``ValidationException``, ``ResourceInUse``...)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def endpoint_not_found(error: ClientError) -> bool:
    """SageMaker answers DescribeEndpoint(Config) for a missing name with a ValidationException."""
    message = str(error.response.get("Error", {}).get("Message", ""))
    return error_code(error) == "ValidationException" and "Could not find" in message
