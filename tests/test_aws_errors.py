"""Which AWS errors the handlers hand to Step Functions as retryable (TransientAwsError).

A Lambda error reaches a Retry under its class name: every unmodeled AWS error is ``ClientError``,
whether it is throttling or a bad request, so the handlers raise ``TransientAwsError`` for what
botocore's standard retry mode would retry, and let the rest through unchanged.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from rightsizing_runtime.aws import is_retryable, retryable_errors_typed
from rightsizing_runtime.errors import TransientAwsError


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "DescribeEndpoint",
    )


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (client_error("ThrottlingException", 400), True),
        (client_error("Throttling", 400), True),
        (client_error("ProvisionedThroughputExceededException", 400), True),
        (client_error("InternalFailure", 500), True),
        (client_error("ServiceUnavailable", 503), True),
        (client_error("SomethingNew", 429), True),
        (client_error("ValidationException", 400), False),
        (client_error("ResourceNotFound", 400), False),
        (client_error("AccessDeniedException", 403), False),
        (client_error("ConditionalCheckFailedException", 400), False),
        (EndpointConnectionError(endpoint_url="https://api.sagemaker"), True),
        (ReadTimeoutError(endpoint_url="https://api.sagemaker"), True),
        (ValueError("not an AWS error"), False),
    ],
)
def test_retryable_as_botocore_standard_mode_judges(error: Exception, retryable: bool) -> None:
    assert is_retryable(error) is retryable


def test_a_retryable_error_becomes_transient_aws_error_with_its_cause() -> None:
    throttled = client_error("ThrottlingException", 400)

    @retryable_errors_typed
    def handler(_event: dict[str, str]) -> None:
        raise throttled

    with pytest.raises(TransientAwsError, match="ThrottlingException") as raised:
        handler({})
    assert raised.value.__cause__ is throttled
    assert type(raised.value).__name__ == "TransientAwsError"  # the name Step Functions sees


def test_a_final_error_passes_through_unchanged() -> None:
    invalid = client_error("ValidationException", 400)

    @retryable_errors_typed
    def handler(_event: dict[str, str]) -> None:
        raise invalid

    with pytest.raises(ClientError) as raised:
        handler({})
    assert raised.value is invalid


def test_a_handler_result_is_returned_as_is() -> None:
    @retryable_errors_typed
    def handler(event: dict[str, str]) -> dict[str, str]:
        return {"echo": event["x"]}

    assert handler({"x": "y"}) == {"echo": "y"}
    assert handler.__name__ == "handler"


@pytest.mark.parametrize(
    "module", ["start_job", "select_recommendation", "stop_job", "job_slots", "apply_steps"]
)
def test_every_handler_the_workflows_invoke_types_its_retryable_errors(module: str) -> None:
    import importlib

    handler = importlib.import_module(f"rightsizing_runtime.{module}").handler
    assert handler.__wrapped__.__module__ == f"rightsizing_runtime.{module}"
