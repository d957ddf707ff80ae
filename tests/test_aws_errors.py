"""Which AWS errors the handlers hand to Step Functions as retryable (TransientAwsError).

A Lambda error reaches a Retry under its class name: every unmodeled AWS error is ``ClientError``,
whether it is throttling or a bad request, so the handlers raise ``TransientAwsError`` for what
botocore's standard retry mode would retry, and let the rest through unchanged.
"""

from __future__ import annotations

import importlib

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from rightsizing_runtime.aws import MODELED_TRANSIENT_ERRORS, is_retryable, retryable_errors_typed
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
        # Transient by the services' own description, though HTTP 400 and in no botocore list.
        (client_error("ConcurrentUpdateException", 400), True),
        (client_error("TransactionConflictException", 400), True),
        (client_error("ReplicatedWriteConflictException", 400), True),
        # Modeled on the same calls, and final until someone acts.
        (client_error("FailedResourceAccessException", 400), False),
        (client_error("ItemCollectionSizeLimitExceededException", 400), False),
        (client_error("ResourceLimitExceeded", 400), False),
        (client_error("ObjectNotFoundException", 400), False),
        (client_error("NotFoundException", 400), False),
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


_HANDLERS = ("start_job", "select_recommendation", "stop_job", "job_slots", "apply_steps")


def _handler_clients() -> dict[str, BaseClient]:
    """Every AWS client of the modules whose handlers the workflows invoke, by service."""
    clients = {}
    for module in _HANDLERS:
        for value in vars(importlib.import_module(f"rightsizing_runtime.{module}")).values():
            if isinstance(value, BaseClient):
                clients[value.meta.service_model.service_name] = value
    return clients


def test_the_handlers_call_these_services() -> None:
    # A new service's modeled errors must be looked at for MODELED_TRANSIENT_ERRORS.
    assert sorted(_handler_clients()) == [
        "application-autoscaling",
        "cloudwatch",
        "dynamodb",
        # DescribeInstanceTypes (an inference component's GPUs); EC2 models no errors.
        "ec2",
        "kms",
        "sagemaker",
        "ssm",
    ]


def test_every_error_botocore_models_as_retryable_is_retried() -> None:
    """botocore marks some modeled errors retryable (standard mode reads it from the operation's
    model, which a ClientError does not carry): each of those services' is retried here too."""
    modeled = {
        (service, shape.name)
        for service, client in _handler_clients().items()
        for operation in client.meta.service_model.operation_names
        for shape in client.meta.service_model.operation_model(operation).error_shapes
        if shape.metadata.get("retryable") is not None
    }
    assert modeled == {("dynamodb", "ReplicatedWriteConflictException")}
    assert all(is_retryable(client_error(code, 400)) for _, code in modeled)


def test_each_modeled_transient_error_is_one_those_services_model() -> None:
    """No typo can hide in the list: each is an error shape a handler's service defines."""
    defined = {
        shape
        for client in _handler_clients().values()
        for operation in client.meta.service_model.operation_names
        for shape in (
            s.name for s in client.meta.service_model.operation_model(operation).error_shapes
        )
    }
    assert set(MODELED_TRANSIENT_ERRORS) <= defined
    assert {
        "ConcurrentUpdateException",
        "TransactionConflictException",
        "ReplicatedWriteConflictException",
        "TooManyUpdates",
    } == MODELED_TRANSIENT_ERRORS


def test_concurrent_parameter_updates_are_retried() -> None:
    """PublishPending's PutParameter: SSM's TooManyUpdates (HTTP 400) passes by itself."""
    assert is_retryable(client_error("TooManyUpdates", 400))
    assert not is_retryable(client_error("ParameterLimitExceeded", 400))


def test_a_concurrent_update_is_raised_for_the_workflow_to_retry() -> None:
    concurrent = client_error("ConcurrentUpdateException", 400)

    @retryable_errors_typed
    def handler(_event: dict[str, str]) -> None:
        raise concurrent

    with pytest.raises(TransientAwsError, match="ConcurrentUpdateException") as raised:
        handler({})
    assert raised.value.__cause__ is concurrent
