"""Routing in a fleet of 1,000 registered endpoints, on moto: only a few runs are executed.

The engine's rules (their real patterns, on moto's EventBridge) deliver every run request;
the deployed Route function finds the endpoint in the registry (the layer the stack ships).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from rightsizing_constructs import EndpointAccess, RecommenderJob, RightsizingEngine
from tests.e2e.harness import InferenceRecommenderStandIn, LocalAws, LocalStack, local_aws
from tests.e2e.test_fleet import create_endpoint, put, request_run
from tests.e2e.test_recommend_workflow import recommendations
from tests.infra import rightsizing, stack

pytestmark = pytest.mark.e2e

FLEET_SIZE = 1000


def fleet_name(index: int) -> str:
    return f"fleet-{index:04d}"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    """One engine, 1,000 endpoints, each with its own peak traffic (so settings differ).

    Synthesized once, by the worker that runs this module (not at collection)."""
    scope = stack()
    engine = RightsizingEngine(
        scope,
        "RightsizingEngine",
        poll_interval=cdk.Duration.seconds(1),
        # Listed ARN by ARN, 1,000 endpoints' grants would cross IAM's limits (synth refuses).
        endpoint_access=EndpointAccess.tagged("rightsizing", "fleet"),
    )
    for index in range(FLEET_SIZE):
        rightsizing(
            scope,
            construct_id=f"Endpoint{index}",
            endpoint_name=fleet_name(index),
            engine=engine,
            # The first poll after 1 second, as every later one (the stand-in's jobs end
            # after a few polls).
            job=RecommenderJob.default(expected_duration=cdk.Duration.seconds(2)),
            peak_requests_per_minute=1000 + index,
        )
    return Template.from_stack(scope).to_json()


@pytest.fixture
def ir() -> InferenceRecommenderStandIn:
    return InferenceRecommenderStandIn(recommendations=recommendations(), polls_before_done=1)


@pytest.fixture
def aws(ir: InferenceRecommenderStandIn) -> Iterator[LocalAws]:
    with local_aws(ir) as aws:
        yield aws


@pytest.fixture
def fleet(aws: LocalAws, template: dict[str, Any]) -> LocalStack:
    return LocalStack(aws, template)


def test_the_registry_holds_the_whole_fleet_and_no_rule_grows_with_it(fleet: LocalStack) -> None:
    assert len(fleet.registry) == FLEET_SIZE
    rules = [r for r in fleet.resources.values() if r["Type"] == "AWS::Events::Rule"]
    assert len(rules) == 3  # Requests, and the orphaned-job and interrupted-apply cleanups


def test_a_request_for_endpoint_999_runs_with_its_own_settings(
    fleet: LocalStack, ir: InferenceRecommenderStandIn
) -> None:
    create_endpoint(fleet_name(999))
    put(fleet, request_run(fleet_name(999)))

    [run] = fleet.deliver(limit=120)

    assert run.status == "SUCCEEDED", run.cause
    assert run.states[:3] == ["Route", "RouteAction", "Prepare"]
    [job] = ir.jobs.values()
    assert job.request["JobType"] == "Default"
    [record] = fleet.ledger_items("recommendation#")
    assert record["pk"]["S"] == f"endpoint#{fleet_name(999)}"
    detail = json.loads(record["record"]["S"])
    assert detail["endpoint_name"] == fleet_name(999)
    assert detail["inputs"]["peak_requests_per_minute"] == 1999  # its own settings


def test_a_request_for_an_unknown_endpoint_is_ignored_with_a_record(
    fleet: LocalStack, ir: InferenceRecommenderStandIn
) -> None:
    put(fleet, request_run("not-in-the-fleet"))

    [run] = fleet.deliver()

    assert run.status == "SUCCEEDED", run.cause
    assert run.states == ["Route", "RouteAction", "RecordIgnored?", "RecordIgnored", "Ignored"]
    assert ir.jobs == {}
    [record] = fleet.ledger_items("ignored#")
    assert record["pk"]["S"] == "endpoint#not-in-the-fleet"
    assert record["outcome"]["S"] == "ignored"
    assert "which this engine does not rightsize" in record["reason"]["S"]
