"""The head of the Recommend workflow: Route, and what an event means for which endpoints.

``Route`` reads the registry (``rightsizing_runtime.route``) and the workflow branches on its
``route.action``: a run (the rest of the Recommend workflow), an apply (the Apply workflow),
runs of several endpoints (one "Rightsizing Run Requested" event each), or nothing (recorded
when the event names an endpoint the engine does not rightsize).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from ._workflow import invoke, put_event
from .event_types import RUN_REQUESTED_DETAIL_TYPE
from .ledger import record_recommendation_run


@dataclass(kw_only=True)
class RouteStates:
    """Builds the Route step and its branches in ``scope`` (the engine)."""

    scope: Construct
    route_function: lambda_.IFunction
    ledger: dynamodb.ITable
    event_bus: events.IEventBus
    apply_state_machine: sfn.IStateMachine
    #: Where an input that is no event a run starts on ends.
    invalid_input: sfn.Fail

    def chain(self, recommend: sfn.IChainable) -> sfn.Chain:
        """Route (the registry) -> a run, an apply, runs of several endpoints, or nothing."""
        scope = self.scope
        route = invoke(
            scope,
            "RouteTask",
            state_name="Route",
            function=self.route_function,
            payload={"input": sfn.JsonPath.entire_payload},
            result_path="$",
            calls_aws=False,  # the registry is a file in its layer
        )
        route.add_catch(self.invalid_input, errors=["InvalidTriggerError"], result_path="$.error")
        action = "$.route.action"
        recorded = sfn.Choice(scope, "RecordIgnored?").when(
            sfn.Condition.boolean_equals("$.route.record", True),
            self._record_ignored().next(sfn.Succeed(scope, "Ignored")),
        )
        recorded.otherwise(sfn.Succeed(scope, "NothingToDo"))
        return route.next(
            sfn.Choice(scope, "RouteAction")
            .when(sfn.Condition.string_equals(action, "run"), recommend)
            .when(sfn.Condition.string_equals(action, "apply"), self._start_apply())
            .when(
                sfn.Condition.string_equals(action, "fan_out"),
                self._request_runs().next(sfn.Succeed(scope, "RunsRequested")),
            )
            .otherwise(recorded)
        )

    def _request_runs(self) -> sfn.Map:
        """One "Rightsizing Run Requested" event per endpoint Route names.

        The endpoints of a schedule, or of an approval in a group several endpoints serve.
        """
        request_run = put_event(
            self.scope,
            "RequestRun",
            detail=sfn.TaskInput.from_json_path_at("$"),
            detail_type=RUN_REQUESTED_DETAIL_TYPE,
            event_bus=self.event_bus,
        )
        fan_out = sfn.Map(
            self.scope,
            "RequestRuns",
            comment="One 'Rightsizing Run Requested' event per endpoint to run",
            items_path="$.route.requests",
            max_concurrency=10,
            result_path=sfn.JsonPath.DISCARD,
        )
        fan_out.item_processor(request_run)
        return fan_out

    def _start_apply(self) -> sfn.Chain:
        """An ``apply`` recommendation for an endpoint in AUTO mode starts the Apply workflow."""
        start_apply = tasks.StepFunctionsStartExecution(
            self.scope,
            "StartApply",
            state_machine=self.apply_state_machine,
            input=sfn.TaskInput.from_object(
                {
                    "recommendation": sfn.JsonPath.object_at("$.recommendation"),
                    "settings": sfn.JsonPath.object_at("$.apply_settings"),
                }
            ),
            integration_pattern=sfn.IntegrationPattern.REQUEST_RESPONSE,
            result_path=sfn.JsonPath.DISCARD,
        )
        start_apply.add_retry(
            errors=["States.TaskFailed"], interval=Duration.seconds(5), max_attempts=4
        )
        return start_apply.next(sfn.Succeed(self.scope, "ApplyStarted"))

    def _record_ignored(self) -> sfn.TaskStateBase:
        """An event that names an endpoint the engine does not rightsize, in the ledger."""
        return record_recommendation_run(
            self.scope,
            "RecordIgnored",
            ledger=self.ledger,
            outcome="ignored",
            reason=sfn.JsonPath.string_at("$.route.reason"),
            record=sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.route")),
            endpoint_name_path="$.route.endpoint_name",
            sort_key_prefix="ignored",
        )
