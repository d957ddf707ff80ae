"""What every handler shares about talking to AWS: one client configuration, error codes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from functools import cache
from types import SimpleNamespace
from typing import Any, TypeVar

import boto3
import botocore.loaders
import botocore.model
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from botocore.retries import standard

from .errors import TransientAwsError

_Handler = TypeVar("_Handler", bound=Callable[..., Any])

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


# What botocore's standard retry mode retries (botocore.retries.standard): transient error codes,
# 5xx and connection errors; throttling error codes; 429 responses of unmodeled errors.
_RETRYABLE = standard.OrRetryChecker(
    [
        standard.TransientRetryableChecker(),
        standard.ThrottledRetryableChecker(),
        standard.ThrottlingStatusCodeChecker(),
    ]
)


#: Modeled errors of the services the workflow handlers call that AWS describes as transient but
#: botocore's retry lists above do not name (they come with HTTP 400, not 5xx). Each says so in
#: the service's API reference (and in botocore's model, the shape's documentation):
MODELED_TRANSIENT_ERRORS = frozenset(
    {
        # Application Auto Scaling: "Concurrent updates caused an exception, for example, if you
        # request an update to an Application Auto Scaling resource that already has a pending
        # update." Every call the Apply steps make may return it (Describe*, Register,
        # Deregister, PutScalingPolicy); the pending update ends by itself.
        "ConcurrentUpdateException",
        # DynamoDB: "Operation was rejected because there is an ongoing transaction for the
        # item." (PutItem, UpdateItem, DeleteItem); it ends with that transaction.
        "TransactionConflictException",
        # DynamoDB: "The request was rejected because one or more items in the request are being
        # modified by a request in another Region." botocore's model marks it retryable, which
        # standard mode reads from the operation's model; a ClientError does not carry that.
        "ReplicatedWriteConflictException",
        # Systems Manager (PutParameter, a pending recommendation's parameter): "There are
        # concurrent updates for a resource that supports one update at a time."
        "TooManyUpdates",
    }
)
# Left out, though modeled on those calls: errors that last until someone acts (SageMaker's
# ResourceLimitExceeded, DynamoDB's ItemCollectionSizeLimitExceededException, Application Auto
# Scaling's FailedResourceAccessException, Systems Manager's ParameterLimitExceeded), and the
# services' internal errors, which come with HTTP 500 and are retried as 5xx (DynamoDB's
# InternalServerError, Application Auto Scaling's InternalServiceException, KMS's
# KMSInternalException and DependencyTimeoutException, Systems Manager's InternalServerError).
# CloudWatch's GetMetricData models only InvalidNextToken (a bug, not a passing state).


def is_retryable(error: Exception) -> bool:
    """Whether ``error`` is worth retrying (throttling, 5xx, a conflict that passes...).

    What botocore's standard retry mode retries (throttling, 5xx, connection errors), and the
    :data:`MODELED_TRANSIENT_ERRORS`.
    """
    if isinstance(error, ClientError):
        if error_code(error) in MODELED_TRANSIENT_ERRORS:
            return True
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        context = standard.RetryContext(
            attempt_number=1,
            parsed_response=error.response,
            http_response=SimpleNamespace(status_code=status) if status else None,
        )
    elif isinstance(error, BotocoreConnectionError | HTTPClientError):
        context = standard.RetryContext(attempt_number=1, caught_exception=error)
    else:
        return False
    return bool(_RETRYABLE.is_retryable(context))


def retryable_errors_typed(handler: _Handler) -> _Handler:
    """Raise :class:`TransientAwsError` for what is worth retrying, so a Retry can match it.

    Step Functions names a Lambda error after the exception's class: every unmodeled AWS error
    is ``ClientError``, throttling and validation alike. The workflows retry
    ``TransientAwsError`` and let every other error reach their Catch.
    """

    @functools.wraps(handler)
    def typed(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except (ClientError, BotocoreConnectionError, HTTPClientError) as error:
            if is_retryable(error):
                raise TransientAwsError(str(error)) from error
            raise

    return typed  # type: ignore[return-value]
