"""The engine's ``metric_*`` helpers: the library's own metrics as CDK ``cloudwatch.Metric`` s.

The handlers write them as EMF log lines (``rightsizing_runtime.metrics``, README "Metrics"):
namespace ``Rightsizing``, one dimension set per endpoint variant and one with no dimension (the
fleet). The names and dimensions here come from that module's ``METRICS``, so a helper cannot
name a metric the runtime does not emit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

from ._metric_names import METRIC_NAMES, NAMESPACE, OUTCOMES
from ._workflow import unsuccessful_executions
from .settings import is_token

if TYPE_CHECKING:
    from aws_cdk import aws_stepfunctions as sfn

    from .dashboard import RightsizingDashboard
    from .endpoint import EndpointRightsizing


class EngineMetrics:
    """``metric_*`` methods of :class:`~rightsizing_constructs.RightsizingEngine`.

    Each returns a ``cloudwatch.Metric`` (``Sum`` over ``period``, default 5 minutes, as CDK's
    own helpers) for an alarm or a graph; without ``endpoint_name`` the fleet's total.
    """

    state_machine: sfn.StateMachine
    _endpoints: dict[tuple[str, str], EndpointRightsizing]

    def metric_runs(
        self,
        *,
        outcome: str,
        endpoint_name: str | None = None,
        variant_name: str | None = None,
        period: Duration | None = None,
    ) -> cloudwatch.Metric:
        """Decided runs with ``outcome`` (``apply``, ``no-change``, ``reject``, ``pending``).

        :param endpoint_name: count one endpoint's runs. Default: the fleet's.
        :param variant_name: the variant of ``endpoint_name``. Default: its one rightsized
            variant (raises when the engine rightsizes several, or none, of that endpoint).
        """
        if outcome not in OUTCOMES:
            raise ValueError(
                f"outcome must be one of {', '.join(OUTCOMES)} (a recommendation's action); "
                f"received {outcome!r}"
            )
        dimensions = {"Outcome": outcome}
        if endpoint_name is not None:
            dimensions |= self._variant_dimensions(endpoint_name, variant_name)
        return self._library_metric("Runs", dimensions, period)

    def metric_monthly_saving(
        self,
        endpoint_name: str | None = None,
        *,
        variant_name: str | None = None,
        period: Duration | None = None,
    ) -> cloudwatch.Metric:
        """Estimated monthly saving of the recommendations to apply (``EstimatedMonthlySaving``).

        Summed over ``period``: every run that recommends applying adds its saving, so a
        recommendation decided twice counts twice (``metric_applied_monthly_saving`` counts
        what was applied).
        """
        return self._per_variant("EstimatedMonthlySaving", endpoint_name, variant_name, period)

    def metric_applied_monthly_saving(
        self,
        endpoint_name: str | None = None,
        *,
        variant_name: str | None = None,
        period: Duration | None = None,
    ) -> cloudwatch.Metric:
        """The estimated monthly saving of the changes applied (``AppliedMonthlySaving``)."""
        return self._per_variant("AppliedMonthlySaving", endpoint_name, variant_name, period)

    def metric_applied_changes(
        self,
        endpoint_name: str | None = None,
        *,
        variant_name: str | None = None,
        period: Duration | None = None,
    ) -> cloudwatch.Metric:
        """Apply runs whose new configuration the endpoint serves (``AppliedChanges``)."""
        return self._per_variant("AppliedChanges", endpoint_name, variant_name, period)

    def metric_load_test_cost(
        self,
        endpoint_name: str | None = None,
        *,
        variant_name: str | None = None,
        period: Duration | None = None,
    ) -> cloudwatch.Metric:
        """The estimated cost of the runs' new load tests (``LoadTestCost``; a lower bound)."""
        return self._per_variant("LoadTestCost", endpoint_name, variant_name, period)

    def metric_audit_findings(
        self, classification: str, *, period: Duration | None = None
    ) -> cloudwatch.Metric:
        """Findings of the utilization audit of one ``classification`` (``AuditFindings``).

        ``Underprovisioned``, ``Overprovisioned``, ``Idle``, ``Optimized``,
        ``InsufficientData``, or a Compute Optimizer finding's name.
        """
        if not classification:
            raise ValueError("classification must be a finding's classification, e.g. 'Idle'")
        return self._library_metric(
            "AuditFindings", {"Classification": classification}, period or Duration.days(1)
        )

    def metric_failed_runs(self, *, period: Duration | None = None) -> cloudwatch.MathExpression:
        """Recommend runs that failed, timed out or were aborted: Step Functions' own metrics.

        ``AWS/States`` ``ExecutionsFailed + ExecutionsTimedOut + ExecutionsAborted`` of the
        Recommend state machine (a math expression), the metric the ``FailedRuns`` alarm
        watches. Default period: 5 minutes.
        """
        metric = unsuccessful_executions(self.state_machine)
        return metric if period is None else metric.with_(period=period)

    def add_dashboard(
        self,
        construct_id: str = "Dashboard",
        *,
        endpoints_per_dashboard: int | None = None,
        dashboard_name_prefix: str | None = None,
    ) -> RightsizingDashboard:
        """CloudWatch dashboards of this engine's fleet and endpoints (``RightsizingDashboard``).

        Call it after the last ``EndpointRightsizing``: the dashboards show the endpoints the
        engine rightsizes now (``cdk synth`` fails if more are added later).
        """
        from .dashboard import RightsizingDashboard

        extra: dict[str, Any] = {}
        if endpoints_per_dashboard is not None:
            extra["endpoints_per_dashboard"] = endpoints_per_dashboard
        return RightsizingDashboard(
            self,  # type: ignore[arg-type]
            construct_id,
            engine=self,  # type: ignore[arg-type]
            dashboard_name_prefix=dashboard_name_prefix,
            **extra,
        )

    # -- Helpers ---------------------------------------------------------------------------

    def _per_variant(
        self,
        name: str,
        endpoint_name: str | None,
        variant_name: str | None,
        period: Duration | None,
    ) -> cloudwatch.Metric:
        dimensions = (
            {} if endpoint_name is None else self._variant_dimensions(endpoint_name, variant_name)
        )
        return self._library_metric(name, dimensions, period)

    def _variant_dimensions(self, endpoint_name: str, variant_name: str | None) -> dict[str, str]:
        if variant_name is None:
            variants = [v for (e, v) in self._endpoints if e == endpoint_name]
            if len(variants) != 1 or is_token(endpoint_name):
                raise ValueError(
                    f"pass variant_name: this engine rightsizes {len(variants)} variants of "
                    f"endpoint {endpoint_name!r}; the metrics are per endpoint variant"
                )
            variant_name = variants[0]
        return {"EndpointName": endpoint_name, "VariantName": variant_name}

    @staticmethod
    def _library_metric(
        name: str, dimensions: dict[str, str], period: Duration | None
    ) -> cloudwatch.Metric:
        """``name`` of the namespace, with exactly ``dimensions`` (a set the runtime writes).

        No unit: CloudWatch matches an alarm's unit against the datapoints' (CloudWatch API
        Reference, PutMetricAlarm ``Unit``), and the costs' ``None`` is easy to get wrong.
        """
        if name not in METRIC_NAMES:
            raise ValueError(f"{name} is not a metric of the library's (README, 'Metrics')")
        kwargs: dict[str, Any] = {"period": period} if period is not None else {}
        return cloudwatch.Metric(
            namespace=NAMESPACE,
            metric_name=name,
            dimensions_map=dimensions or None,
            statistic=cloudwatch.Stats.SUM,
            **kwargs,
        )
