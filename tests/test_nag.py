"""cdk-nag's packs as tests: zero unacknowledged findings on both apps, acknowledgments narrow."""

from __future__ import annotations

import re
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks, NagPack

from rightsizing_constructs._nag import WAIVERS
from tests.apps.every_option import NAG_PACKS, build
from tests.infra import rightsizing, stack

README = Path(__file__).resolve().parents[1] / "README.md"


def findings(scope: cdk.Stack | cdk.App, pack: type[NagPack] = AwsSolutionsChecks) -> list[str]:
    """The rule names of every unacknowledged finding of ``pack`` in the scope's app."""
    app = scope.node.root
    result = pack().validate_scope(app)
    return [
        f"{violation.rule_name} at {[r.construct_path for r in violation.violating_resources]}"
        for violation in result.violations
    ]


@pytest.mark.parametrize("pack", NAG_PACKS, ids=lambda p: p.__name__)
def test_minimal_settings_have_no_findings(pack: type[NagPack]) -> None:
    scope = stack()
    rightsizing(scope)
    assert findings(scope, pack) == []


@pytest.mark.parametrize("pack", NAG_PACKS, ids=lambda p: p.__name__)
def test_every_option_app_has_no_findings(pack: type[NagPack]) -> None:
    app = cdk.App()
    build(app)
    assert findings(app, pack) == []


def test_acknowledgments_are_per_resource_not_blanket() -> None:
    """A wildcard nobody reviewed still fails: the library acknowledges each one by name."""
    scope = stack()
    construct = rightsizing(scope)
    construct.engine.start_job_function.add_to_role_policy(
        iam.PolicyStatement(actions=["s3:GetObject"], resources=["arn:aws:s3:::payloads/*"])
    )
    [finding] = findings(scope)
    assert "AwsSolutions-IAM5[Resource::arn:aws:s3:::payloads/*]" in finding
    assert "StartJobRole" in finding


def test_waivers_cover_only_the_library_resources() -> None:
    """A function the team adds beside the engine is judged in full: no waiver reaches it."""
    from aws_cdk import aws_lambda as lambda_
    from cdk_nag import NIST80053R5Checks

    scope = stack()
    rightsizing(scope)
    lambda_.Function(
        scope,
        "TeamFunction",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context): return None"),
    )
    found = findings(scope, NIST80053R5Checks)
    assert found
    assert all("TeamFunction" in f for f in found)


def test_every_waiver_is_documented_with_its_reason() -> None:
    """README's "Compliance" table lists each waiver's rule, checks and reason."""
    readme = re.sub(r"\s+", " ", README.read_text())
    for waiver in WAIVERS:
        assert waiver.reason in readme, f"README lacks the reason for {waiver.rule}"
        for check in waiver.checkov:
            assert check in readme, f"README lacks {check}"
        if waiver.packs:
            assert f"`{waiver.rule}`" in readme, f"README lacks {waiver.rule}"


def test_every_acknowledgment_reason_is_documented() -> None:
    """Every acknowledgment in both apps (and a minimal stack) gives a reason the README lists."""
    readme = re.sub(r"\s+", " ", README.read_text())
    app = cdk.App()
    build(app)
    minimal = stack()
    rightsizing(minimal)
    reasons = {
        reason
        for root in (app, minimal.node.root)
        for construct in root.node.find_all()
        for entry in construct.node.metadata
        if entry.type == "aws:cdk:acknowledged-rules"
        for reason in entry.data.values()
    }
    assert len(reasons) > 10
    assert [r for r in sorted(reasons) if re.sub(r"\s+", " ", r) not in readme] == []
