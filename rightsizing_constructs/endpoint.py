"""``EndpointRightsizing``: one endpoint variant, rightsized by the stack's shared engine.

Each endpoint adds only its entry to the engine's registry (its settings document and its
triggers, :mod:`rightsizing_constructs.registry`), which the engine's few rules and its Route
step read (:mod:`rightsizing_constructs.triggers`), and a latency alarm when asked for; the
only resource it may add. README, "Triggers", lists each trigger's event; docs/fleet.md why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from ._approval import DEFAULT_APPROVAL_TIMEOUT
from ._poll_schedule import poll_schedule
from ._runtime import import_runtime
from .apply_permissions import check_endpoint_config_use
from .endpoint_validation import validate
from .engine import RightsizingEngine
from .settings import (
    ApplyMode,
    AuditFinding,
    ContainerConfig,
    Deployment,
    Guardrails,
    JobType,
    LatencyAlarm,
    LatencySlo,
    LatencyThreshold,
    ModelApproval,
    PeakTraffic,
    RecommenderJob,
    StoppingConditions,
    ValidationProblems,
)

# The runtime owns the settings document's version; the construct reads it from there so the
# two cannot drift.
SETTINGS_VERSION: int = import_runtime("settings").SETTINGS_VERSION

_DEFAULT_JOB_TIMEOUT = Duration.hours(2)
#: How long a completed load test is reused by default (``reuse_load_test_for``).
DEFAULT_REUSE_WINDOW = Duration.days(30)
# An Advanced job may run for its whole job_duration; the workflow waits that long plus this.
_ADVANCED_TIMEOUT_MARGIN = Duration.hours(1)
# A job slot outlives the poll budget by this much before a dead run's slot frees itself.
_SLOT_HOLD_MARGIN = Duration.hours(1)


class EndpointRightsizing(Construct):
    """Rightsizes one SageMaker real-time endpoint variant with Inference Recommender.

    A run starts an IR job for the model, polls it, picks the cheapest configuration that
    meets ``slo`` at ``peak_requests_per_minute`` inside ``guardrails``, and puts a "Rightsizing
    Recommendation" event on the engine's bus; in ``ApplyMode.AUTO`` the Apply workflow applies
    it. Runs start on a "Rightsizing Run Requested" event for this endpoint (README: the
    ``run`` command prints it) and on the triggers given here.

    :param endpoint_name: the endpoint to rightsize. It must exist when a run starts.
    :param slo: the latency objective (:class:`LatencySlo`).
    :param peak_requests_per_minute: expected peak traffic to the variant, in requests per
        minute; the instance count is sized for it. With ``peak_traffic``, the fallback used
        when the peak cannot be measured.
    :param peak_traffic: measure the peak at the start of each run instead
        (:meth:`PeakTraffic.observed`: a percentile of the variant's per-minute
        ``Invocations`` over a lookback, times a growth factor, optionally at least a floor);
        the StartJob function may then call ``cloudwatch:GetMetricData``. With too little
        history, no requests or an error reading CloudWatch, the run uses
        ``peak_requests_per_minute`` and says why (``inputs.peak_source`` of the
        recommendation). Default: none (``peak_requests_per_minute`` is the peak).
    :param variant_name: the production variant. Default: ``AllTraffic``.
    :param model_package_version_arn: the versioned model package IR tests. Give this or
        ``model_name``.
    :param model_name: the SageMaker model IR tests; needs ``container_config``.
    :param container_config: what IR needs for ``model_name`` (sample payload, framework...).
    :param job: the IR job. Default: :meth:`RecommenderJob.default` (instance recommendation).
    :param target_utilization: fraction of IR's measured per-instance capacity to plan for, in
        (0, 1]. Default: 0.5, AWS's suggested starting safety factor for SageMaker autoscaling
        targets ("Load testing your auto scaling configuration"): bursts up to twice the target
        are absorbed while autoscaling adds instances.
    :param guardrails: bounds on count, types and cost, and the minimum saving worth a change
        (hysteresis). Default: :class:`Guardrails` defaults (1 to 10 instances, any type, no
        cost cap, any saving).
    :param reuse_load_test_for: how long a completed load test stays good for deciding again.
        A run whose model (the package version, or the model's images, artifacts and
        environment) and job definition are those a completed job measured no longer ago than
        this decides from that job in seconds, without a new load test: only traffic, the SLO's
        objective or guardrails changed. A run request with ``force_load_test`` (the ``run
        --load-test`` command) always load-tests. From 0 (always load-test) to 90 days. Default:
        30 days.
    :param timeout: how long to wait for the job before stopping it and failing; the workflow
        polls first at two thirds of the job's ``expected_duration``, then every
        ``poll_interval`` (at most 60 s) until the first poll at or past the timeout. At most 24
        hours. Default: 2 hours for Default jobs; the job duration plus 1 hour for Advanced
        jobs.
    :param apply_mode: ``ApplyMode.AUTO``: ``apply`` recommendations are applied to the endpoint
        by the Apply workflow. ``ApplyMode.APPROVAL``: the Apply workflow notifies what would
        change and waits for ``approve`` or ``reject`` (README, "Approval") before it changes
        anything. ``ApplyMode.RECOMMEND_ONLY``: they are published and notified only.
        Default: ``AUTO``.
    :param approval_timeout: ``ApplyMode.APPROVAL`` only: how long a run waits for an answer;
        then the change is rejected and recorded. From 1 minute to 30 days. Default: 3 days.
    :param deployment: how the endpoint update rolls out (:class:`Deployment`). Default:
        blue/green, all traffic at once, no rollback alarms (SageMaker's default).
    :param execution_role: the ``ExecutionRoleArn`` of the endpoint's config, which the Apply
        workflow passes to SageMaker in the config it copies (``iam:PassRole`` on this role
        only, to ``sagemaker.amazonaws.com`` only). An apply whose config names a role that is
        not this one fails before anything changes, saying to add it. Default: none (configs
        with an execution role are not applied).
    :param kms_keys: every KMS key the endpoint's config names (``KmsKeyId`` of the volume,
        and of ``DataCaptureConfig``, ``AsyncInferenceConfig.OutputConfig``, a variant's
        ``CoreDumpConfig``...), which SageMaker uses as the Apply workflow's caller
        (``kms:CreateGrant`` for AWS resources and ``kms:DescribeKey``, on these keys only). An
        apply whose config names another key fails before anything changes, saying to add it.
        The key policy must allow this account's IAM policies (the default key policy does).
        Default: none (configs with a KMS key are not applied).
    :param schedule: trigger: run on this schedule (``events.Schedule.rate(Duration.days(7))``
        or a cron). Endpoints on the same schedule share the engine's rules. Default: none.
    :param model_approval: trigger: run IR on each version approved in a Model Package Group
        (:class:`ModelApproval`). Default: none.
    :param latency_alarm: trigger: run when ``ModelLatency`` exceeds the SLO for N minutes
        (:class:`LatencyAlarm`). Default: none.
    :param audit_finding: trigger: run on the utilization audit's findings for this variant
        (:class:`AuditFinding`; the audit is a :class:`UtilizationAudit` that watches the
        endpoint). Default: none.
    :param engine: the engine that runs this endpoint's rightsizing. Default: the stack's
        engine (:meth:`RightsizingEngine.of`), created with defaults the first time.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        slo: LatencySlo,
        peak_requests_per_minute: float,
        peak_traffic: PeakTraffic | None = None,
        variant_name: str = "AllTraffic",
        model_package_version_arn: str | None = None,
        model_name: str | None = None,
        container_config: ContainerConfig | None = None,
        job: RecommenderJob | None = None,
        target_utilization: float = 0.5,
        guardrails: Guardrails | None = None,
        timeout: Duration | None = None,
        reuse_load_test_for: Duration | None = None,
        apply_mode: ApplyMode = ApplyMode.AUTO,
        approval_timeout: Duration | None = None,
        deployment: Deployment | None = None,
        execution_role: iam.IRole | None = None,
        kms_keys: Sequence[kms.IKey] | None = None,
        schedule: events.Schedule | None = None,
        model_approval: ModelApproval | None = None,
        latency_alarm: LatencyAlarm | None = None,
        audit_finding: AuditFinding | None = None,
        engine: RightsizingEngine | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        engine = _engine_of(self, engine)
        job = job if job is not None else RecommenderJob.default()
        guardrails = guardrails if guardrails is not None else Guardrails()
        timeout = timeout if timeout is not None else _default_timeout(job)
        reuse_load_test_for = (
            reuse_load_test_for if reuse_load_test_for is not None else DEFAULT_REUSE_WINDOW
        )
        validate(
            self,
            endpoint_name=endpoint_name,
            variant_name=variant_name,
            slo=slo,
            peak_requests_per_minute=peak_requests_per_minute,
            peak_traffic=peak_traffic,
            model_package_version_arn=model_package_version_arn,
            model_name=model_name,
            container_config=container_config,
            job=job,
            target_utilization=target_utilization,
            guardrails=guardrails,
            poll_interval=engine.poll_interval,
            timeout=timeout,
            reuse_load_test_for=reuse_load_test_for,
            apply_mode=apply_mode,
            approval_timeout=approval_timeout,
            deployment=deployment,
            schedule=schedule,
            model_approval=model_approval,
            latency_alarm=latency_alarm,
            audit_finding=audit_finding,
        )
        check_endpoint_config_use(apply_mode, execution_role, kms_keys)
        #: The config's execution role and KMS keys the Apply workflow may pass and use.
        self.execution_role, self.kms_keys = execution_role, list(kms_keys or [])
        #: The engine that runs this endpoint's rightsizing.
        self.engine = engine
        self.endpoint_name = endpoint_name
        self.variant_name = variant_name
        self.model_package_version_arn = model_package_version_arn
        self.model_name = model_name
        self.model_approval = model_approval
        #: How the peak is measured (None: ``peak_requests_per_minute`` is the peak).
        self.peak_traffic = peak_traffic
        #: The audit findings that start runs (None: findings do not).
        self.audit_finding = audit_finding
        #: Whether ``apply`` recommendations reach the Apply workflow (``ApplyMode.AUTO``, or
        #: ``APPROVAL``, where the workflow waits for an approval first).
        self.applies = apply_mode in (ApplyMode.AUTO, ApplyMode.APPROVAL)
        if apply_mode is ApplyMode.APPROVAL and approval_timeout is None:
            approval_timeout = DEFAULT_APPROVAL_TIMEOUT
        #: The endpoint's settings document, in the engine's registry (README, "Settings
        #: document").
        self.settings_document: dict[str, Any] = {
            "settings_version": SETTINGS_VERSION,
            "endpoint_name": endpoint_name,
            "variant_name": variant_name,
            "job_role_arn": engine.job_role.role_arn,
            "model": _render_model(model_package_version_arn, model_name, container_config),
            "job": _render_job(job, slo),
            "slo": {"percentile": slo.percentile.value, "max_latency_ms": slo.max_latency_ms},
            "peak_requests_per_minute": peak_requests_per_minute,
            # Only when given: the documents of endpoints without it stay as they were.
            **({} if peak_traffic is None else {"peak_traffic": peak_traffic.render()}),
            "target_utilization": target_utilization,
            "guardrails": guardrails.render(),
            **_poll_budget(job, timeout, engine.poll_interval),
            "reuse_max_age_seconds": int(reuse_load_test_for.to_seconds()),
        }
        if model_approval is not None:
            self.settings_document["pending_expiry_seconds"] = int(
                model_approval.pending_expires_after.to_seconds()
            )
            # Other triggers test the version the endpoint serves by then (a later approval's).
            self.settings_document["model_from_served"] = True
        #: The apply settings (None in ``ApplyMode.RECOMMEND_ONLY``).
        self.apply_settings: dict[str, Any] | None = (
            engine.apply_workflow.settings(
                endpoint_name,
                variant_name,
                deployment.render() if deployment else None,
                execution_role=execution_role,
                kms_keys=self.kms_keys,
                approval_timeout=approval_timeout,
            )
            if self.applies
            else None
        )
        #: The schedule that starts runs (None: no schedule).
        self.schedule = schedule
        #: The latency alarm that starts runs (None without ``latency_alarm``).
        self.latency_alarm: cloudwatch.Alarm | None = None
        alarm_name = None
        if latency_alarm is not None:
            self.latency_alarm, alarm_name = engine.routing.latency_alarm(
                self,
                endpoint_name=endpoint_name,
                variant_name=variant_name,
                slo=slo,
                trigger=latency_alarm,
            )
        engine._register(
            self,
            {
                "schedule": None if schedule is None else schedule.expression_string,
                "model_package_group_name": None
                if model_approval is None
                else model_approval.model_package_group_name,
                "latency_alarm_name": alarm_name,
                "audit_classifications": None
                if audit_finding is None
                else list(audit_finding.classifications),
            },
        )
        if self.applies:
            engine.apply_workflow.allow_endpoint_config_use(
                execution_role=execution_role, kms_keys=self.kms_keys
            )


def _engine_of(scope: Construct, engine: Any) -> RightsizingEngine:
    """The engine given, or the stack's (created with defaults the first time)."""
    problems = ValidationProblems("EndpointRightsizing settings")
    problems.check(
        engine is None or isinstance(engine, RightsizingEngine),
        f"engine must be a RightsizingEngine, got {engine!r}",
    )
    problems.raise_if_any()
    return engine or RightsizingEngine.of(scope)


def _default_timeout(job: RecommenderJob) -> Duration:
    """2 hours for a Default job; an Advanced job's duration plus an hour."""
    if job.job_type is JobType.DEFAULT or job.job_duration is None:
        return _DEFAULT_JOB_TIMEOUT
    return job.job_duration.plus(_ADVANCED_TIMEOUT_MARGIN)


def _poll_budget(job: RecommenderJob, timeout: Duration, poll_interval: Duration) -> dict[str, int]:
    """The settings document's timeout, its poll schedule and how long the job slot is held.

    The Recommend workflow waits ``first_poll_seconds`` (its WaitForJob state's
    ``SecondsPath``), then polls every ``min(poll_interval, 60 s)``, ``max_polls`` times at
    most (:mod:`._poll_schedule`).
    """
    schedule = poll_schedule(
        expected_seconds=int(job.expected.to_seconds()),
        timeout_seconds=int(timeout.to_seconds()),
        poll_interval_seconds=int(poll_interval.to_seconds()),
    )
    return {
        "timeout_seconds": int(timeout.to_seconds()),
        "first_poll_seconds": schedule.first_wait_seconds,
        "max_polls": schedule.max_polls,
        "slot_hold_seconds": schedule.last_poll_seconds + int(_SLOT_HOLD_MARGIN.to_seconds()),
    }


def _render_model(
    model_package_version_arn: str | None,
    model_name: str | None,
    container_config: ContainerConfig | None,
) -> dict[str, Any]:
    if model_package_version_arn is not None:
        return {"model_package_version_arn": model_package_version_arn}
    assert model_name is not None and container_config is not None
    return {"model_name": model_name, "container_config": container_config.render()}


def _render_job(job: RecommenderJob, slo: LatencySlo) -> dict[str, Any]:
    if job.job_type is JobType.DEFAULT:
        return {"job_type": JobType.DEFAULT.value}
    assert job.job_duration is not None
    conditions = job.stopping_conditions or StoppingConditions()
    # Stop the load at the SLO unless told otherwise: IR's MaxInvocations is then the
    # throughput at which the SLO still holds.
    threshold = conditions.model_latency_threshold or LatencyThreshold(
        percentile=slo.percentile, value=slo.max_latency
    )
    return {
        "job_type": JobType.ADVANCED.value,
        "instance_types": list(job.instance_types),
        "job_duration_seconds": int(job.job_duration.to_seconds()),
        "traffic_pattern": None if job.traffic_pattern is None else job.traffic_pattern.render(),
        "stopping_conditions": {
            "max_invocations": conditions.max_invocations,
            "model_latency_threshold": {
                "percentile": threshold.percentile.value,
                "value_ms": int(threshold.value.to_milliseconds()),
            },
        },
        "max_number_of_tests": job.max_number_of_tests,
        "max_parallel_of_tests": job.max_parallel_of_tests,
    }
