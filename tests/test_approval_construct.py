"""ApplyMode.APPROVAL in the synthesized stack: the wait, its time-out, its settings, validation.

The runs themselves (wait, approve, reject, time-out) are in tests/e2e/test_apply_approval.py.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from rightsizing_runtime import registry as runtime_registry
from rightsizing_runtime import route

from rightsizing_constructs import ApplyMode
from tests.infra import definition, endpoint_input, registry, rightsizing


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.from_stack(cdk.Stack.of(rightsizing(apply_mode=ApplyMode.APPROVAL)))


@pytest.fixture(scope="module")
def states(template: Template) -> dict[str, Any]:
    return dict(definition(template, "apply")["States"])


def test_approval_endpoints_carry_their_timeout_in_the_apply_settings(template: Template) -> None:
    # GIVEN ApplyMode.APPROVAL without approval_timeout THEN the default, 3 days, in seconds.
    settings = endpoint_input(template)["apply_settings"]
    assert settings["approval_timeout_seconds"] == 3 * 86400


def test_route_hands_approval_endpoints_apply_recommendations_to_the_apply_workflow(
    template: Template,
) -> None:
    fleet = runtime_registry.load(
        {"registry_version": 1, "endpoints": registry(dict(template.to_json()))}, {}
    )
    detail = {"endpoint_name": "fraud-scoring", "variant_name": "AllTraffic", "action": "apply"}
    event = {
        "trigger": {
            "source": "rightsizing-constructs",
            "detail_type": "Rightsizing Recommendation",
            "event": {"detail": detail},
        }
    }
    routed = route.route(event, fleet)
    assert routed["route"] == {"action": "apply"}
    assert routed["apply_settings"]["approval_timeout_seconds"] == 3 * 86400


def test_a_given_approval_timeout_is_rendered() -> None:
    construct = rightsizing(apply_mode=ApplyMode.APPROVAL, approval_timeout=cdk.Duration.hours(12))
    assert construct.applies
    assert construct.apply_settings is not None
    assert construct.apply_settings["approval_timeout_seconds"] == 12 * 3600


def test_the_wait_uses_the_settings_timeout_and_a_task_token(states: dict[str, Any]) -> None:
    wait = states["WaitForApproval"]
    assert wait["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    # Each endpoint's own approval_timeout: the engine's machine is shared.
    assert wait["TimeoutSecondsPath"] == "$.settings.approval_timeout_seconds"
    assert "HeartbeatSeconds" not in wait
    assert "Retry" not in wait  # a retry would wait the whole time-out again
    assert wait["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    assert wait["Parameters"]["Payload"]["step"] == "await_approval"
    # Approved: the lock is taken only now. Rejected or timed out: recorded, never applied.
    assert wait["Next"] == "AcquireLock"
    assert wait["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.approval", "Next": "Record"}
    ]


def test_the_approval_path_comes_before_the_lock(states: dict[str, Any]) -> None:
    [to_approval] = states["NeedsApproval"]["Choices"]
    assert to_approval == {
        "Variable": "$.settings.approval_timeout_seconds",
        "IsPresent": True,
        "Next": "RequestApproval",
    }
    assert states["NeedsApproval"]["Default"] == "AcquireLock"
    assert states["RequestApproval"]["Next"] == "AskForApproval"
    assert states["AskForApproval"]["Resource"] == "arn:aws:states:::sns:publish"
    assert states["AskForApproval"]["Next"] == "WaitForApproval"
    for name in ("RequestApproval", "AskForApproval"):
        assert {c["Next"] for c in states[name]["Catch"]} == {"Record"}
    [check_input] = [
        c for c in states["CheckApplyInput"]["Choices"] if c.get("Next") == "NeedsApproval"
    ]
    assert check_input


def test_the_machine_outlives_the_longest_approval_wait(template: Template) -> None:
    timeout = definition(template, "apply")["TimeoutSeconds"]
    lock = endpoint_input(template)["apply_settings"]["lock_seconds"]
    assert timeout > 30 * 86400
    # The lock is taken after the wait: it does not last the wait.
    assert lock < 2 * 86400


def test_auto_endpoints_do_not_wait() -> None:
    construct = rightsizing()
    assert construct.apply_settings is not None
    assert "approval_timeout_seconds" not in construct.apply_settings


def test_recommend_only_endpoints_have_no_apply_settings() -> None:
    construct = rightsizing(apply_mode=ApplyMode.RECOMMEND_ONLY)
    assert not construct.applies
    assert construct.apply_settings is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"approval_timeout": cdk.Duration.days(1)},
            "approval_timeout applies to ApplyMode.APPROVAL only",
        ),
        (
            {"apply_mode": ApplyMode.APPROVAL, "approval_timeout": cdk.Duration.seconds(30)},
            "approval_timeout must be from 1 minute to 30 days, got 30 seconds",
        ),
        (
            {"apply_mode": ApplyMode.APPROVAL, "approval_timeout": cdk.Duration.days(31)},
            "approval_timeout must be from 1 minute to 30 days, got 31 days",
        ),
        (
            {"apply_mode": ApplyMode.APPROVAL, "approval_timeout": 3600},
            "approval_timeout must be a Duration",
        ),
    ],
)
def test_approval_timeout_is_validated(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rightsizing(**overrides)
