"""Typed errors the handlers raise. Step Functions matches them by class name (``errorType``)."""

from __future__ import annotations


class EndpointNotFoundError(ValueError):
    """The configured endpoint does not exist in this account and region."""


class UnsupportedEndpointError(ValueError):
    """The endpoint exists but cannot be rightsized (no such variant, serverless variant...)."""


class NoJobSlotError(RuntimeError):
    """All of the engine's IR job slots are taken; the run waits and asks again."""


class TransientAwsError(RuntimeError):
    """An AWS call still failed with a retryable error after botocore's own retries.

    Throttling, 5xx and connection errors (what botocore's standard retry mode retries), and
    the modeled errors AWS describes as transient (``aws.MODELED_TRANSIENT_ERRORS``). A
    ``ClientError`` reaches Step Functions under its class name, ``ClientError`` for every
    unmodeled code and the shape's name for a modeled one, so no Retry could tell a throttled
    call from a final error: the handlers raise this instead, and the workflows retry it.
    """
