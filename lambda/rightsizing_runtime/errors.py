"""Typed errors the handlers raise. Step Functions matches them by class name (``errorType``)."""

from __future__ import annotations


class EndpointNotFoundError(ValueError):
    """The configured endpoint does not exist in this account and region."""


class UnsupportedEndpointError(ValueError):
    """The endpoint exists but cannot be rightsized (no such variant, serverless variant...)."""
