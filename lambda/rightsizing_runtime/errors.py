"""Typed errors the handlers raise. Step Functions matches them by class name (``errorType``)."""

from __future__ import annotations


class EndpointNotFoundError(ValueError):
    """The configured endpoint does not exist in this account and region."""


class UnsupportedEndpointError(ValueError):
    """The endpoint exists but cannot be rightsized (no such variant, serverless variant...)."""


class ModelMismatchError(ValueError):
    """A newly approved model version is not the one the endpoint serves: nothing is changed."""


class NoJobSlotError(RuntimeError):
    """All of the engine's IR job slots are taken; the run waits and asks again."""
