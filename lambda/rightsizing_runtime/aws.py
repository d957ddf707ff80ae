"""What every handler shares about talking to AWS: one client configuration, error codes."""

from __future__ import annotations

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

# Standard retry mode backs off on throttling and transient errors inside the Lambda; what still
# fails after that surfaces as an error that the state machine's Retry/Catch handles.
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8})


def sagemaker_client() -> BaseClient:
    """A SageMaker client for the Lambda's region, created once per module at cold start."""
    return boto3.client("sagemaker", config=CLIENT_CONFIG)


def error_code(error: ClientError) -> str:
    """The AWS error code of a ClientError (``ValidationException``, ``ResourceInUse``...)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def endpoint_not_found(error: ClientError) -> bool:
    """SageMaker answers DescribeEndpoint(Config) for a missing name with a ValidationException."""
    message = str(error.response.get("Error", {}).get("Message", ""))
    return error_code(error) == "ValidationException" and "Could not find" in message
