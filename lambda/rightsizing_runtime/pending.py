"""Pending recommendations: an approved model sized before it ships, applied once it serves.

In the usual pipeline, a model version's approval is what starts its deployment, so when the
approval's run starts the endpoint still serves the previous version. The run load-tests the
approved version anyway (IR tests a model package version without any endpoint) and its
recommendation is *pending* until the endpoint serves that version:

- PublishPending (``start_job.publish_pending``) keeps it where the workflow and a deployment
  pipeline find it: a ledger item per endpoint variant (``pk`` ``endpoint#<name>``, ``sk``
  ``pending#<variant>``), and an SSM parameter per endpoint variant and version (the event's
  ``pending.parameter_name``; its JSON value is documented in the README, "The closed loop").
  A newer approval's publish supersedes the older one: its item is replaced, its parameter
  deleted, and a ``superseded`` record written.
- Prepare (``start_job.take_pending``), on SageMaker's "Endpoint State Change" to
  ``IN_SERVICE``: if the endpoint now serves the pending version and it has not expired, the
  item and the parameter are deleted (a conditional delete: of two runs, one takes it) and the
  run decides again from the pending run's job, against the endpoint's new config, without a
  new load test.

Expired recommendations are deleted when an endpoint's state change finds them; their parameter
says when they expire, for a pipeline that reads one first.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from typing import Any

#: The schema of a parameter's value; a change that is not backwards compatible bumps it.
PARAMETER_SCHEMA_VERSION = "1"
# Standard-tier parameters hold at most 4 KB (Systems Manager quotas, "Parameter value size");
# the value's reason is shortened to stay well inside.
_MAX_REASON = 1000


class NothingPendingError(ValueError):
    """An endpoint started serving a config, and no pending recommendation waits for it."""


def ledger_key(endpoint_name: str, variant_name: str) -> dict[str, Any]:
    """The ledger key of the variant's pending recommendation."""
    return {"pk": {"S": f"endpoint#{endpoint_name}"}, "sk": {"S": f"pending#{variant_name}"}}


def parameter_value(detail: Mapping[str, Any]) -> str:
    """The parameter's JSON: what a pipeline needs to deploy the version at its recommended size."""
    pending = detail["pending"]
    value = {
        "schema_version": PARAMETER_SCHEMA_VERSION,
        "endpoint_name": detail["endpoint_name"],
        "variant_name": detail["variant_name"],
        "model_package_version_arn": pending["model_package_version_arn"],
        "decision": pending["decision"],
        "instance_type": detail["instance_type"],
        "instance_count": detail["instance_count"],
        "autoscaling": detail["autoscaling"],
        "estimated_cost_per_hour": detail["estimated_cost_per_hour"],
        "expires_at": pending["expires_at"],
        "job_name": detail["job_name"],
        "reason": str(detail["reason"])[:_MAX_REASON],
    }
    return json.dumps(value, separators=(",", ":"))


def pending_item(detail: Mapping[str, Any], recorded_at: str) -> dict[str, Any]:
    """The ledger item of a pending recommendation (``detail["pending"]`` set)."""
    pending = detail["pending"]
    expires = datetime.datetime.fromisoformat(str(pending["expires_at"]).replace("Z", "+00:00"))
    return {
        **ledger_key(str(detail["endpoint_name"]), str(detail["variant_name"])),
        "model_package_version_arn": {"S": str(pending["model_package_version_arn"])},
        "job_name": {"S": str(detail["job_name"])},
        "parameter_name": {"S": str(pending["parameter_name"])},
        "expires_at": {"N": str(int(expires.timestamp()))},
        "recorded_at": {"S": recorded_at},
        "record": {"S": json.dumps(detail, separators=(",", ":"))},
    }


def superseded_record(
    old: Mapping[str, Any], detail: Mapping[str, Any], recorded_at: str
) -> dict[str, Any]:
    """The decision record that says a pending recommendation was superseded (``ledger.py``)."""
    endpoint, variant = detail["endpoint_name"], detail["variant_name"]
    return {
        "pk": {"S": f"endpoint#{endpoint}"},
        "sk": {"S": f"recommendation#{recorded_at}#superseded#{variant}"},
        "recorded_at": {"S": recorded_at},
        "outcome": {"S": "superseded"},
        "reason": {
            "S": f"the pending recommendation for {old['model_package_version_arn']['S']} was "
            f"superseded by the approval of {detail['pending']['model_package_version_arn']} "
            f"before {endpoint}/{variant} served it"
        },
        "record": old.get("record", {"S": "{}"}),
    }


def check_pending(
    item: Mapping[str, Any] | None, *, where: str, served: set[str], now: datetime.datetime
) -> tuple[str, bool]:
    """``(version, expired)`` of a pending item the endpoint may take.

    Raises :class:`NothingPendingError` when there is none, or it waits for a version the
    endpoint does not serve yet (an expired one is taken to be removed, whatever is served).
    """
    if not item:
        raise NothingPendingError(f"no pending recommendation for {where}")
    version = str(item["model_package_version_arn"]["S"])
    expired = now.timestamp() > int(item["expires_at"]["N"])
    if not expired and version not in served:
        raise NothingPendingError(
            f"{where} serves {', '.join(sorted(served)) or 'no model package version'}; the "
            f"pending recommendation for {version} waits for it"
        )
    return version, expired


def expired_error(item: Mapping[str, Any], where: str) -> NothingPendingError:
    """The end of a run that found (and removed) an expired pending recommendation."""
    at = datetime.datetime.fromtimestamp(int(item["expires_at"]["N"]), datetime.UTC)
    return NothingPendingError(
        f"the pending recommendation of {where} for {item['model_package_version_arn']['S']} "
        f"expired at {at.isoformat()}; it was removed (the next trigger load-tests again)"
    )
