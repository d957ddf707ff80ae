"""``RightsizingDashboard``: CloudWatch dashboards of an engine's fleet and of each endpoint.

A fleet row (savings, runs by outcome, failed Recommend and Apply runs, load-test spend, audit
findings, applied changes), then one row per rightsized endpoint variant: latency at the SLO's
percentile against the SLO, invocations per instance, instance count, utilization.

CloudWatch's dashboard limits (CloudWatch User Guide, "CloudWatch service quotas",
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_limits.html: up to 500
widgets per dashboard, 500 metrics per widget, 2,500 metrics per dashboard; "Dashboard Body
Structure and Syntax": 0 to 500 widgets) bound a dashboard to about 120 endpoints, so a fleet gets
several dashboards of ``endpoints_per_dashboard`` endpoints each, each with the fleet row. The
bodies are in the stack's template: CloudFormation's 1 MB template (via S3) is what a large
fleet meets first (README, "Dashboards"; ``tests/test_dashboard.py`` measures the bodies).
Neither botocore's model of ``PutDashboard`` nor the quotas page states a size for
``DashboardBody``; the largest dashboard allowed here (123 rows of 63-character names) is
about 300 KB.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import jsii
from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct, IValidation

from ._metric_names import CLASSIFICATIONS, OUTCOMES

if TYPE_CHECKING:
    from aws_cdk import aws_stepfunctions as sfn

    from .endpoint import EndpointRightsizing
    from .engine import RightsizingEngine

#: CloudWatch's quotas (module docstring).
MAX_WIDGETS_PER_DASHBOARD = 500
MAX_METRICS_PER_DASHBOARD = 2500
MAX_METRICS_PER_WIDGET = 500
#: What one endpoint row and the fleet row hold (tests count them on the synthesized bodies).
#: Every entry of a widget's ``metrics`` counts, a math expression's inputs and itself.
WIDGETS_PER_ENDPOINT = 4
METRICS_PER_ENDPOINT = 7
FLEET_WIDGETS = 6
FLEET_METRICS = 2 + len(OUTCOMES) + 4 + 4 + 1 + len(CLASSIFICATIONS) + 1
#: The most endpoints one dashboard can show within both quotas.
MAX_ENDPOINTS_PER_DASHBOARD = min(
    (MAX_WIDGETS_PER_DASHBOARD - FLEET_WIDGETS) // WIDGETS_PER_ENDPOINT,
    (MAX_METRICS_PER_DASHBOARD - FLEET_METRICS) // METRICS_PER_ENDPOINT,
)
_DEFAULT_ENDPOINTS_PER_DASHBOARD = 50
_FLEET_PERIOD = Duration.days(1)
_ENDPOINT_PERIOD = Duration.minutes(1)
_WIDTH, _HEIGHT = 24, 6
_MICROSECONDS_PER_MILLISECOND = 1000


class RightsizingDashboard(Construct):
    """CloudWatch dashboards of a :class:`~rightsizing_constructs.RightsizingEngine`.

    Create it after the endpoints (``engine.add_dashboard()`` does): it shows the endpoints the
    engine rightsizes when it is created, and ``cdk synth`` fails if more are added later.

    :param engine: whose fleet and endpoints to show.
    :param endpoints_per_dashboard: endpoint rows per dashboard; a fleet of more gets further
        dashboards (each with the fleet row). 1 to ``MAX_ENDPOINTS_PER_DASHBOARD`` (CloudWatch's
        500 widgets and 2,500 metrics per dashboard). Default: 50.
    :param dashboard_name_prefix: the dashboards are named ``<prefix>-1``, ``<prefix>-2``...
        (names are unique in the account, all regions). Default: CloudFormation names them.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        engine: RightsizingEngine,
        endpoints_per_dashboard: int = _DEFAULT_ENDPOINTS_PER_DASHBOARD,
        dashboard_name_prefix: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if not 1 <= endpoints_per_dashboard <= MAX_ENDPOINTS_PER_DASHBOARD:
            raise ValueError(
                f"endpoints_per_dashboard must be 1 to {MAX_ENDPOINTS_PER_DASHBOARD} (CloudWatch: "
                f"500 widgets and 2,500 metrics a dashboard); received {endpoints_per_dashboard}"
            )
        self._engine = engine
        endpoints = engine.endpoints
        pages = max(1, math.ceil(len(endpoints) / endpoints_per_dashboard))
        #: The dashboards, in order: each has the fleet row, then its endpoints' rows.
        self.dashboards: list[cloudwatch.Dashboard] = []
        for page in range(pages):
            shown = endpoints[page * endpoints_per_dashboard : (page + 1) * endpoints_per_dashboard]
            dashboard = cloudwatch.Dashboard(
                self,
                f"Dashboard{page + 1}",
                dashboard_name=None
                if dashboard_name_prefix is None
                else f"{dashboard_name_prefix}-{page + 1}",
                default_interval=Duration.days(7),
            )
            dashboard.add_widgets(*self._fleet_row())
            for endpoint in shown:
                dashboard.add_widgets(*endpoint_row(endpoint))
            self.dashboards.append(dashboard)
        shown_count = len(endpoints)
        self.node.add_validation(_AllEndpointsShown(engine, shown_count, self.node.path))

    def _fleet_row(self) -> list[cloudwatch.IWidget]:
        engine, width = self._engine, _WIDTH // FLEET_WIDGETS
        day = _FLEET_PERIOD

        def graph(
            title: str, metrics: Sequence[cloudwatch.IMetric], *, stacked: bool = False
        ) -> cloudwatch.IWidget:
            return cloudwatch.GraphWidget(
                title=title, left=list(metrics), width=width, height=_HEIGHT, stacked=stacked
            )

        return [
            graph(
                "Estimated monthly saving (per day)",
                [
                    engine.metric_monthly_saving(period=day).with_(label="recommended"),
                    engine.metric_applied_monthly_saving(period=day).with_(label="applied"),
                ],
            ),
            graph(
                "Runs by outcome (per day)",
                [engine.metric_runs(outcome=o, period=day).with_(label=o) for o in OUTCOMES],
                stacked=True,
            ),
            graph(
                "Failed runs (per day)",
                [
                    engine.metric_failed_runs(period=day).with_(label="Recommend"),
                    _unsuccessful(engine.apply_workflow.state_machine, "Apply", day),
                ],
            ),
            graph(
                "Load-test spend, estimated (per day)",
                [engine.metric_load_test_cost(period=day).with_(label="load tests")],
            ),
            graph(
                "Audit findings by class (per day)",
                [
                    engine.metric_audit_findings(c, period=day).with_(label=c)
                    for c in CLASSIFICATIONS
                ],
                stacked=True,
            ),
            graph(
                "Applied changes (per day)",
                [engine.metric_applied_changes(period=day).with_(label="applied")],
            ),
        ]


def _unsuccessful(
    state_machine: sfn.IStateMachine, label: str, period: Duration
) -> cloudwatch.MathExpression:
    """Failed, timed-out and aborted executions of ``state_machine``, with ids of their own.

    A graph's ids are one namespace, and ``metric_failed_runs`` uses ``failed``, ``timedout``
    and ``aborted``.
    """
    return cloudwatch.MathExpression(
        expression="applyFailed + applyTimedOut + applyAborted",
        using_metrics={
            "applyFailed": state_machine.metric_failed(),
            "applyTimedOut": state_machine.metric_timed_out(),
            "applyAborted": state_machine.metric_aborted(),
        },
        label=label,
        period=period,
    )


def endpoint_row(endpoint: EndpointRightsizing) -> list[cloudwatch.IWidget]:
    """One endpoint variant's row: latency vs the SLO, load per instance, instances, utilization.

    ``AWS/SageMaker`` (dimensions ``EndpointName``, ``VariantName``): ``ModelLatency`` in
    microseconds, ``InvocationsPerInstance`` and ``Invocations`` with ``Sum`` per minute
    (SageMaker Developer Guide, "Amazon SageMaker AI metrics in Amazon CloudWatch");
    ``/aws/sagemaker/Endpoints``: ``CPUUtilization`` (summed over the cores: 0-400 % on 4 vCPUs)
    and ``MemoryUtilization``. SageMaker publishes no instance-count metric, so the count is
    derived: each request adds ``1/instances`` to ``InvocationsPerInstance`` (AWS_NOTES), so
    ``Invocations / InvocationsPerInstance`` is the count while there is traffic.
    """
    name, variant = endpoint.endpoint_name, endpoint.variant_name
    dimensions = {"EndpointName": name, "VariantName": variant}
    slo = endpoint.settings_document["slo"]
    percentile = str(slo["percentile"]).lower()
    width = _WIDTH // WIDGETS_PER_ENDPOINT

    def sagemaker(metric: str, statistic: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name=metric,
            dimensions_map=dimensions,
            statistic=statistic,
            period=_ENDPOINT_PERIOD,
        )

    def utilization(metric: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="/aws/sagemaker/Endpoints",
            metric_name=metric,
            dimensions_map=dimensions,
            statistic=cloudwatch.Stats.AVERAGE,
            period=_ENDPOINT_PERIOD,
            label=metric,
        )

    slo_us = float(slo["max_latency_ms"]) * _MICROSECONDS_PER_MILLISECOND
    return [
        cloudwatch.GraphWidget(
            title=f"{name}/{variant}: ModelLatency {percentile} (microseconds)",
            left=[sagemaker("ModelLatency", percentile).with_(label=f"ModelLatency {percentile}")],
            left_annotations=[
                cloudwatch.HorizontalAnnotation(
                    value=slo_us, label=f"SLO {slo['max_latency_ms']} ms", color="#d62728"
                )
            ],
            width=width,
            height=_HEIGHT,
        ),
        cloudwatch.GraphWidget(
            title=f"{name}/{variant}: invocations per instance (per minute)",
            left=[sagemaker("InvocationsPerInstance", "Sum").with_(label="per instance")],
            width=width,
            height=_HEIGHT,
        ),
        cloudwatch.GraphWidget(
            title=f"{name}/{variant}: instances (while serving)",
            left=[
                cloudwatch.MathExpression(
                    expression="invocations / perInstance",
                    using_metrics={
                        "invocations": sagemaker("Invocations", "Sum"),
                        "perInstance": sagemaker("InvocationsPerInstance", "Sum"),
                    },
                    label="instances",
                    period=_ENDPOINT_PERIOD,
                )
            ],
            width=width,
            height=_HEIGHT,
        ),
        cloudwatch.GraphWidget(
            title=f"{name}/{variant}: utilization (%)",
            left=[utilization("CPUUtilization"), utilization("MemoryUtilization")],
            width=width,
            height=_HEIGHT,
        ),
    ]


@jsii.implements(IValidation)
class _AllEndpointsShown:
    """Fails ``cdk synth`` when the engine got endpoints after the dashboard was made."""

    def __init__(self, engine: RightsizingEngine, shown: int, path: str) -> None:
        self._engine, self._shown, self._path = engine, shown, path

    def validate(self) -> list[str]:
        added = len(self._engine.endpoints) - self._shown
        if added <= 0:
            return []
        return [
            f"{self._path} shows {self._shown} endpoints but the engine rightsizes "
            f"{self._shown + added}: create the dashboard after the last EndpointRightsizing"
        ]
