"""How events reach an engine's endpoints, whatever the fleet's size (docs/fleet.md).

- the registry: every endpoint's settings and triggers, in the Route function's layer
  (:mod:`.registry`);
- the engine's few rules, built once every endpoint was added (:mod:`.triggers`);
- where each latency alarm lives and what it is named: the first ``INLINE_ALARMS`` in the
  endpoint's own construct, further ones in nested stacks of ``ALARMS_PER_NESTED_STACK``, so
  that a fleet's alarms never push the engine's stack past CloudFormation's 500 resources.

An alarm's name carries its place (the nested stack's number), so an alarm that moves (an
endpoint before it was removed) is a new alarm under a new name, created before the old one is
deleted; never one name in two stacks at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsii
from aws_cdk import Aspects, IAspect, NestedStack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IConstruct

from .registry import Registry
from .settings import LatencyAlarm, LatencySlo
from .triggers import (
    Listening,
    aws_patterns,
    event_rule,
    latency_alarm,
    library_patterns,
    schedule_rules,
)

#: Latency alarms created in their endpoint's construct, in the engine's stack.
INLINE_ALARMS = 100
#: Latency alarms per nested stack beyond those (CloudFormation allows 500 resources a stack).
ALARMS_PER_NESTED_STACK = 400


class Routing:
    """The registry, the rules and the latency alarms' places of one engine."""

    def __init__(self, engine: Construct, route_function: lambda_.Function) -> None:
        self._engine = engine
        self._registry = Registry(engine, route_function)
        self._listening = Listening()
        self._alarms = 0
        self._alarm_stacks: list[NestedStack] = []
        #: The rules that start runs, once the app synthesizes: ``Requests`` (and
        #: ``AwsEvents``) and one per schedule expression.
        self.rules: list[events.Rule] = []
        self._wiring: dict[str, Any] | None = None
        Aspects.of(engine).add(_BuildRouting(self))

    @property
    def schedule_expressions(self) -> int:
        """How many distinct schedule expressions the endpoints use (a rule each)."""
        return len(self._listening.schedules)

    @property
    def alarm_prefix(self) -> str:
        """The start of every latency alarm's name: unique per engine (its path's hash)."""
        return f"rightsizing-latency-{self._engine.node.addr[:10]}-"

    def latency_alarm(
        self,
        endpoint: Construct,
        *,
        endpoint_name: str,
        variant_name: str,
        slo: LatencySlo,
        trigger: LatencyAlarm,
    ) -> tuple[cloudwatch.Alarm, str]:
        """An endpoint's latency alarm, in its place, and its name."""
        number = self._alarms
        self._alarms += 1
        scope: Construct = endpoint
        construct_id = "LatencyAlarm"
        name = f"{self.alarm_prefix}{endpoint_name}-{variant_name}"
        if number >= INLINE_ALARMS:
            index = (number - INLINE_ALARMS) // ALARMS_PER_NESTED_STACK
            if index == len(self._alarm_stacks):
                self._alarm_stacks.append(
                    NestedStack(
                        self._engine,
                        f"LatencyAlarms{index}",
                        description="Latency alarms that start rightsizing runs",
                    )
                )
            scope = self._alarm_stacks[index]
            # The endpoint's path hash: a stable construct ID, unique in the nested stack.
            construct_id = f"LatencyAlarm{endpoint.node.addr}"
            name = f"{self.alarm_prefix}{index}-{endpoint_name}-{variant_name}"
        alarm = latency_alarm(
            scope,
            construct_id,
            alarm_name=name,
            endpoint_name=endpoint_name,
            variant_name=variant_name,
            slo=slo,
            trigger=trigger,
        )
        return alarm, name

    def register(
        self,
        *,
        settings: Mapping[str, Any],
        apply_settings: Mapping[str, Any] | None,
        triggers: Mapping[str, Any],
        schedule: events.Schedule | None,
    ) -> None:
        """Add one endpoint variant to the registry, and its triggers to the rules."""
        self._registry.add(
            {
                "settings": dict(settings),
                "apply_settings": None if apply_settings is None else dict(apply_settings),
                "triggers": dict(triggers),
            }
        )
        self._listening.add(
            schedule=schedule,
            audit_classifications=triggers.get("audit_classifications") or (),
            applies=apply_settings is not None,
            model_approval=triggers.get("model_package_group_name") is not None,
            latency_alarm=triggers.get("latency_alarm_name") is not None,
        )

    def wire(
        self,
        *,
        state_machine: sfn.IStateMachine,
        dead_letter_queue: sqs.IQueue,
        event_bus: events.IEventBus,
        default_bus: events.IEventBus | None,
    ) -> None:
        """What the rules start and where they listen.

        ``default_bus`` is None when the engine's bus is the default one: then one rule hears
        both the library's events and AWS's.
        """
        self._wiring = {
            "state_machine": state_machine,
            "dead_letter_queue": dead_letter_queue,
            "event_bus": event_bus,
            "default_bus": default_bus,
        }

    def build(self) -> None:
        """The registry's layer and the rules, once every endpoint was added."""
        assert self._wiring is not None, "Routing.wire() was not called"
        self._registry.build()
        engine = self._engine
        common = {
            "state_machine": self._wiring["state_machine"],
            "dead_letter_queue": self._wiring["dead_letter_queue"],
        }
        default_bus = self._wiring["default_bus"]
        library = library_patterns(self._listening)
        aws = aws_patterns(self._listening, self.alarm_prefix)
        self.rules.append(
            event_rule(
                engine,
                "Requests",
                description="Starts rightsizing runs and applies for the engine's endpoints",
                bus=self._wiring["event_bus"],
                patterns=library + (aws if default_bus is None else []),
                **common,
            )
        )
        if aws and default_bus is not None:
            self.rules.append(
                event_rule(
                    engine,
                    "AwsEvents",
                    description=(
                        "Starts rightsizing runs on model approvals, endpoints in service and "
                        "latency alarms"
                    ),
                    bus=default_bus,
                    patterns=aws,
                    **common,
                )
            )
        self.rules += schedule_rules(engine, self._listening.schedules, **common)


@jsii.implements(IAspect)
class _BuildRouting:
    """Builds the engine's registry and rules when the app synthesizes."""

    def __init__(self, routing: Routing) -> None:
        self._routing = routing
        self._done = False

    def visit(self, node: IConstruct) -> None:
        if not self._done:
            self._done = True
            self._routing.build()
