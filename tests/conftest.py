"""Shared test set-up.

Fake credentials and a region are set before any boto3 client exists (the handler modules create
theirs at import), so nothing can reach a real AWS account; every AWS call in the handler tests
goes through ``botocore.stub.Stubber``, which validates requests and responses against botocore's
service model.
"""

from __future__ import annotations

import json
import os
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

EVENTS = Path(__file__).parent / "events"


def load_event(name: str) -> dict[str, Any]:
    """A JSON fixture from tests/events."""
    return json.loads((EVENTS / name).read_text())
