"""``UtilizationAudit``: the passive side, which endpoints need rightsizing, from their history.

A scheduled Lambda function (``rightsizing_runtime.audit``) reads the watched endpoints'
CloudWatch history over the lookback window, classifies each instance variant
(Overprovisioned, Underprovisioned, Optimized, Idle, InsufficientData) with its evidence,
records the findings in the engine's ledger and publishes each as a "Rightsizing Finding" event
on the engine's bus. An endpoint whose ``EndpointRightsizing`` has ``audit_finding=`` starts a
recommend run on its findings: audit -> load test -> apply. It can also watch inference
components by name (a finding per component, from its per-copy metrics), and relay AWS Compute
Optimizer's EC2 instance findings (the training side) and its idle findings for the watched
SageMaker endpoints in the same event.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from ._arns import sagemaker_arn
from ._nag import CONFIGS_REASON, acknowledge_wildcard
from .engine import RightsizingEngine
from .settings import (
    LatencySlo,
    LookbackPeriod,
    UtilizationBand,
    UtilizationPercentile,
    ValidationProblems,
    is_token,
)

_DEFAULT_SCHEDULE_DAYS = 1
# 500 endpoints take about 1,000 SageMaker describes and a dozen GetMetricData calls.
_TIMEOUT = Duration.minutes(15)
_MEMORY_MB = 512
# compute-optimizer:GetIdleRecommendations: "AWS Compute Optimizer does not support specifying a
# resource ARN in the Resource element of an IAM policy statement", and the action has no
# dependent actions (Service Authorization Reference, "Actions, resources, and condition keys
# for AWS Compute Optimizer",
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscomputeoptimizer.html).
_NO_RESOURCE_LEVEL = (
    "sagemaker:ListEndpoints, tag:GetResources, cloudwatch:GetMetricData, "
    "ec2:DescribeInstanceTypes, compute-optimizer:GetEC2InstanceRecommendations, "
    "compute-optimizer:GetIdleRecommendations and ec2:DescribeInstances have no resource-level "
    "permissions; X-Ray neither."
)
#: An inference component's name (botocore's sagemaker model, ``InferenceComponentName``).
_COMPONENT_NAME = re.compile(r"[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?")
_COMPONENT_NAME_MAX = 63


class UtilizationAudit(Construct):
    """Audit endpoints' utilization on a schedule and publish a finding per variant.

    Watch ``endpoint_names``, or the endpoints carrying every tag in ``tags``, or (neither)
    every endpoint in service in the account and region.

    :param endpoint_names: the endpoints to watch. Default: see ``tags``.
    :param tags: watch the endpoints that carry every one of these tags. Default: every
        endpoint in service, if no ``endpoint_names`` either.
    :param lookback: the history read: 14, 32 or 93 days. Default: 14 days.
    :param percentile: the statistic of the utilization metrics. Default: p99.
    :param band: the utilization band of a right-sized variant. Default: 60-80 %.
    :param slo: the latency SLO of endpoints with no recommendation in the ledger (those with
        one are held to its SLO). Default: latency is judged only against a recorded SLO.
    :param schedule: when the audit runs. Default: once a day.
    :param inference_components: inference components to watch, by name: each is judged from
        its per-copy metrics and gets a finding with ``inference_component_name``. They add
        to the endpoints watched. Default: none.
    :param compute_optimizer: also publish AWS Compute Optimizer's EC2 instance findings.
        Default: False.
    :param compute_optimizer_idle: also publish AWS Compute Optimizer's idle findings for the
        watched endpoints (``GetIdleRecommendations``, resource type ``SageMakerEndpoint``),
        with their estimated monthly saving. Default: False.
    :param engine: the engine whose ledger and bus receive the findings. Default: the stack's
        engine (:meth:`RightsizingEngine.of`).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_names: Sequence[str] = (),
        tags: Mapping[str, str] | None = None,
        lookback: LookbackPeriod = LookbackPeriod.DAYS_14,
        percentile: UtilizationPercentile = UtilizationPercentile.P99,
        band: UtilizationBand | None = None,
        slo: LatencySlo | None = None,
        schedule: events.Schedule | None = None,
        compute_optimizer: bool = False,
        inference_components: Sequence[str] = (),
        compute_optimizer_idle: bool = False,
        engine: RightsizingEngine | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        band = band or UtilizationBand()
        _validate(
            endpoint_names,
            tags,
            lookback,
            percentile,
            band,
            slo,
            compute_optimizer,
            inference_components,
            compute_optimizer_idle,
        )
        self.engine = engine or RightsizingEngine.of(scope)
        #: What the audit function is asked to do (its rule's input).
        self.settings: dict[str, Any] = {
            "endpoint_names": list(endpoint_names),
            "tags": dict(tags or {}),
            "lookback_days": lookback.value,
            "percentile": percentile.value.lower(),  # CloudWatch's statistic: p99
            "band": {"low": band.low, "high": band.high},
            "slo": None
            if slo is None
            else {"percentile": slo.percentile.value, "max_latency_ms": slo.max_latency_ms},
            "compute_optimizer": compute_optimizer,
            "inference_components": list(inference_components),
            "compute_optimizer_idle": compute_optimizer_idle,
        }
        #: The audit function (``rightsizing_runtime.audit``).
        self.function = self.engine._runtime_function(
            self,
            "Function",
            module="audit",
            description="Audits SageMaker endpoints' utilization; publishes rightsizing findings",
            environment={
                "LEDGER_TABLE_NAME": self.engine.ledger_table.table_name,
                "EVENT_BUS_NAME": self.engine.event_bus.event_bus_name,
            },
            timeout=_TIMEOUT,
            memory_size=_MEMORY_MB,
        )
        self._grant(
            endpoint_names,
            bool(tags),
            compute_optimizer,
            inference_components,
            compute_optimizer_idle,
        )
        #: The rule that runs the audit on its schedule.
        self.rule = events.Rule(
            self,
            "Schedule",
            description="Runs the rightsizing utilization audit",
            schedule=schedule or events.Schedule.rate(Duration.days(_DEFAULT_SCHEDULE_DAYS)),
            targets=[
                targets.LambdaFunction(
                    self.function,
                    event=events.RuleTargetInput.from_object({"settings": self.settings}),
                    retry_attempts=2,
                    dead_letter_queue=self.engine._rule_dead_letter_queue,
                )
            ],
        )

    def _grant(
        self,
        endpoint_names: Sequence[str],
        by_tags: bool,
        compute_optimizer: bool,
        inference_components: Sequence[str],
        compute_optimizer_idle: bool,
    ) -> None:
        """Exactly what the audit calls for the way it finds its endpoints and components."""
        function: lambda_.Function = self.function
        engine = self.engine
        endpoints = [sagemaker_arn(engine, "endpoint", name) for name in endpoint_names or ["*"]]
        configs = sagemaker_arn(engine, "endpoint-config", "*")
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeEndpoint"], resources=endpoints)
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeEndpointConfig"], resources=[configs])
        )
        unscoped = ["cloudwatch:GetMetricData", "ec2:DescribeInstanceTypes"]
        if not endpoint_names:
            unscoped.append("tag:GetResources" if by_tags else "sagemaker:ListEndpoints")
        if compute_optimizer:
            # Compute Optimizer reads the instances it reports on as the caller.
            unscoped += ["compute-optimizer:GetEC2InstanceRecommendations", "ec2:DescribeInstances"]
        if compute_optimizer_idle:
            # No resource-level permissions and no dependent action (_NO_RESOURCE_LEVEL's source).
            unscoped.append("compute-optimizer:GetIdleRecommendations")
        function.add_to_role_policy(iam.PolicyStatement(actions=unscoped, resources=["*"]))
        if inference_components:
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["sagemaker:DescribeInferenceComponent"],
                    resources=[
                        sagemaker_arn(engine, "inference-component", name)
                        for name in inference_components
                    ],
                )
            )
        engine._grant_ledger(function, "dynamodb:Query", "dynamodb:BatchWriteItem")
        engine.event_bus.grant_put_events_to(function)
        role = function.role
        acknowledge_wildcard(role, configs, CONFIGS_REASON)  # type: ignore[arg-type]
        if not endpoint_names:
            acknowledge_wildcard(
                role,  # type: ignore[arg-type]
                endpoints[0],
                "The audit watches endpoints found at run time (by tags, or every endpoint in "
                "service); it only describes them.",
            )
        acknowledge_wildcard(role, "*", _NO_RESOURCE_LEVEL)  # type: ignore[arg-type]


def _validate(
    endpoint_names: Sequence[str],
    tags: Mapping[str, str] | None,
    lookback: Any,
    percentile: Any,
    band: Any,
    slo: Any,
    compute_optimizer: Any,
    inference_components: Any,
    compute_optimizer_idle: Any,
) -> None:
    problems = ValidationProblems("UtilizationAudit settings")
    problems.check(
        not (endpoint_names and tags),
        "give endpoint_names or tags, not both (neither watches every endpoint in service)",
    )
    problems.check(
        isinstance(endpoint_names, Sequence) and not isinstance(endpoint_names, str),
        f"endpoint_names must be a list of names, got {endpoint_names!r}",
    )
    problems.check(
        all(isinstance(n, str) and n for n in endpoint_names)
        and not any(is_token(n) for n in endpoint_names if isinstance(n, str)),
        "endpoint_names must be names known at synth time (they are written into the "
        f"audit's input and policy), got {list(endpoint_names)!r}",
    )
    problems.check(
        tags is None
        or (
            isinstance(tags, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items())
        ),
        f"tags must map tag keys to values (strings), got {tags!r}",
    )
    problems.check(
        isinstance(lookback, LookbackPeriod),
        f"lookback must be a LookbackPeriod (DAYS_14, DAYS_32, DAYS_93), got {lookback!r}",
    )
    problems.check(
        isinstance(percentile, UtilizationPercentile),
        f"percentile must be a UtilizationPercentile, got {percentile!r}",
    )
    problems.check(
        isinstance(band, UtilizationBand), f"band must be a UtilizationBand, got {band!r}"
    )
    problems.check(
        slo is None or isinstance(slo, LatencySlo), f"slo must be a LatencySlo, got {slo!r}"
    )
    problems.check(
        isinstance(compute_optimizer, bool),
        f"compute_optimizer must be True or False, got {compute_optimizer!r}",
    )
    _check_components(problems, inference_components)
    problems.check(
        isinstance(compute_optimizer_idle, bool),
        f"compute_optimizer_idle must be True or False, got {compute_optimizer_idle!r}",
    )
    problems.include("band", band)
    problems.include("slo", slo)
    problems.raise_if_any()


def _check_components(problems: ValidationProblems, inference_components: Any) -> None:
    is_list = isinstance(inference_components, Sequence) and not isinstance(
        inference_components, str
    )
    problems.check(
        is_list, f"inference_components must be a list of names, got {inference_components!r}"
    )
    names = list(inference_components) if is_list else []
    bad = [
        n
        for n in names
        if not isinstance(n, str)
        or is_token(n)
        or len(n) > _COMPONENT_NAME_MAX
        or not _COMPONENT_NAME.fullmatch(n)
    ]
    problems.check(
        not bad,
        "inference_components must be inference component names known at synth time (1-63 "
        "letters, digits and hyphens, starting and ending with a letter or digit; they are "
        f"written into the audit's input and policy), got {bad!r}",
    )
    duplicates = sorted({n for n in names if isinstance(n, str) and names.count(n) > 1})
    problems.check(
        not duplicates, f"inference_components must not repeat a name, got {duplicates!r} twice"
    )
