"""Shared test set-up.

Fake credentials and a region are set before any boto3 client exists (the handler modules create
theirs at import), so nothing can reach a real AWS account; every AWS call in the handler tests
goes through ``botocore.stub.Stubber``, which validates requests and responses against botocore's
service model. No test may even look up a host other than this one (``_local_only``).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}.items():
    os.environ[_name] = _value
os.environ.pop("AWS_PROFILE", None)
# Never let a stray endpoint URL or config file point a client somewhere real.
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull


# An unstubbed call would otherwise go out to AWS with the fake credentials (and fail only at
# DNS, silently slowed by botocore's retries): no test process may look up or connect to any
# host but this one. Tools the tests start (cdk, Chromium, pip) run in their own processes.
_LOCAL = {"localhost", "127.0.0.1", "::1", None}
_getaddrinfo = socket.getaddrinfo


def _local_only(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host not in _LOCAL:
        raise OSError(f"tests may not reach {host!r}: stub the call (Stubber, moto, stand-ins)")
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _local_only  # type: ignore[assignment]

EVENTS = Path(__file__).parent / "events"


def load_event(name: str) -> dict[str, Any]:
    """A JSON fixture from tests/events."""
    return json.loads((EVENTS / name).read_text())
