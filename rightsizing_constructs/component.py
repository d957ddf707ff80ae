"""``InferenceComponentRightsizing``: one inference component, rightsized by the stack's engine.

An endpoint that hosts its models as inference components (most large-language-model
endpoints) is sized per component: copies of the model, each with its compute requirements,
packed onto the endpoint's instances, scaled by copies. SageMaker's AI recommendation jobs
measure such models (``CreateAIRecommendationJob``); the engine's Recommend workflow runs one,
polls it like an IR job (same job slots, same bounded poll), decides with the same rules
(``component_decision.py``) and publishes the same recommendation event, extended with the
copies; the Apply workflow applies it with ``UpdateInferenceComponent`` and copy autoscaling.
README, "Inference components", says when to use this construct and when
``EndpointRightsizing``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from ._approval import DEFAULT_APPROVAL_TIMEOUT, MAX_APPROVAL_TIMEOUT, MIN_APPROVAL_TIMEOUT
from ._arns import sagemaker_arn
from ._poll_schedule import poll_schedule
from ._rules import sagemaker_name_problems, target_utilization_problems
from ._runtime import import_runtime
from .endpoint import SETTINGS_VERSION
from .engine import RightsizingEngine
from .recommend_workflow import MAX_JOB_TIMEOUT
from .settings import (
    ApplyMode,
    AuditFinding,
    Guardrails,
    ValidationProblems,
    is_number,
    is_token,
)
from .settings._validation import duration_range_problems
from .settings.component import (
    AIRecommendationJob,
    AIWorkload,
    TimeToFirstTokenSlo,
    copies_problems,
    hourly_price_problems,
    s3_uri_parts,
)

#: How long the workflow waits for an AI recommendation job by default before stopping it.
DEFAULT_AI_JOB_TIMEOUT = Duration.hours(4)
# A job slot outlives the poll budget by this much before a dead run's slot frees itself.
_SLOT_HOLD_MARGIN = Duration.hours(1)
#: The kind of target in settings documents, registry entries and recommendation events.
KIND: str = import_runtime("component_decision").KIND


class InferenceComponentRightsizing(Construct):
    """Rightsizes one inference component of a SageMaker endpoint with an AI recommendation job.

    A run starts an AI recommendation job for the component's model under ``workload``, polls
    it, picks the cheapest recommendation whose time to first token meets ``slo`` at
    ``peak_concurrent_requests`` (copies, instances, inside ``guardrails``), and puts a
    "Rightsizing Recommendation" event with ``kind: inference-component`` on the engine's bus;
    in ``ApplyMode.AUTO`` the Apply workflow sets the component's copies and compute
    requirements and its copy autoscaling. Runs start on a "Rightsizing Run Requested" event
    naming ``endpoint_name`` and ``inference_component_name`` (the ``run`` command prints it),
    on ``schedule`` and on ``audit_finding``.

    :param endpoint_name: the endpoint that hosts the component.
    :param inference_component_name: the component to rightsize. It must exist when a run
        starts.
    :param model_data_url: the S3 URI of the model's artifacts, which the job benchmarks
        (``ModelSource.S3.S3Uri``); the engine's job role may read under it.
    :param output_location: an S3 URI where the job writes its results
        (``OutputConfig.S3OutputLocation``); the engine's job role may write under it.
    :param slo: the objective: time to first token at a percentile
        (:class:`TimeToFirstTokenSlo`).
    :param peak_concurrent_requests: expected peak of requests in flight to the component;
        copies are sized for it.
    :param workload: what the job benchmarks with (:class:`AIWorkload`: token distributions, a
        dataset in S3, or an existing workload configuration) and at what concurrency.
    :param job: the AI recommendation job's objective, instance types and framework
        (:class:`AIRecommendationJob`). Default: time to first token, types SageMaker
        chooses.
    :param variant_name: the endpoint's production variant that hosts the component. Default:
        ``AllTraffic``.
    :param target_utilization: fraction of a copy's measured concurrency to plan for, in
        (0, 1]; also the autoscaling target's share. Default: 0.5 (as for endpoints).
    :param guardrails: bounds on instances (``min_instances``/``max_instances`` of the
        component's share of the endpoint), types, cost, and the minimum saving worth a change.
        Default: :class:`Guardrails` defaults.
    :param min_copies: fewest copies to run; also the autoscaling minimum. Default: 1.
    :param hourly_prices: dollars per hour of each instance type the job may recommend, for
        the decision's costs when the job reports none (``{"ml.g5.2xlarge": 1.515}``).
        Default: none (only recommendations whose job reports a cost per hour are eligible).
    :param timeout: how long to wait for the job before stopping it and failing; at most 24
        hours. Default: 4 hours.
    :param apply_mode: as for ``EndpointRightsizing``. Default: ``ApplyMode.AUTO``.
    :param approval_timeout: ``ApplyMode.APPROVAL`` only: how long a run waits for an answer.
        Default: 3 days.
    :param schedule: trigger: run on this schedule. Default: none.
    :param audit_finding: trigger: run on the utilization audit's findings for this component
        (:class:`AuditFinding`). Default: none.
    :param engine: the engine that runs this component's rightsizing. Default: the stack's
        engine (:meth:`RightsizingEngine.of`).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        inference_component_name: str,
        model_data_url: str,
        output_location: str,
        slo: TimeToFirstTokenSlo,
        peak_concurrent_requests: int,
        workload: AIWorkload,
        job: AIRecommendationJob | None = None,
        variant_name: str = "AllTraffic",
        target_utilization: float = 0.5,
        guardrails: Guardrails | None = None,
        min_copies: int = 1,
        hourly_prices: Mapping[str, float] | None = None,
        timeout: Duration | None = None,
        apply_mode: ApplyMode = ApplyMode.AUTO,
        approval_timeout: Duration | None = None,
        schedule: events.Schedule | None = None,
        audit_finding: AuditFinding | None = None,
        engine: RightsizingEngine | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        job = job if job is not None else AIRecommendationJob()
        guardrails = guardrails if guardrails is not None else Guardrails()
        timeout = timeout if timeout is not None else DEFAULT_AI_JOB_TIMEOUT
        prices = dict(hourly_prices) if hourly_prices is not None else None
        _validate(
            endpoint_name=endpoint_name,
            inference_component_name=inference_component_name,
            variant_name=variant_name,
            model_data_url=model_data_url,
            output_location=output_location,
            slo=slo,
            peak_concurrent_requests=peak_concurrent_requests,
            workload=workload,
            job=job,
            target_utilization=target_utilization,
            guardrails=guardrails,
            min_copies=min_copies,
            hourly_prices=prices,
            timeout=timeout,
            apply_mode=apply_mode,
            approval_timeout=approval_timeout,
            schedule=schedule,
            audit_finding=audit_finding,
            engine=engine,
        )
        engine = engine or RightsizingEngine.of(self)
        #: The engine that runs this component's rightsizing.
        self.engine = engine
        self.endpoint_name = endpoint_name
        self.inference_component_name = inference_component_name
        self.variant_name = variant_name
        #: The audit findings that start runs (None: findings do not).
        self.audit_finding = audit_finding
        #: The schedule that starts runs (None: no schedule).
        self.schedule = schedule
        #: Whether ``apply`` recommendations reach the Apply workflow.
        self.applies = apply_mode in (ApplyMode.AUTO, ApplyMode.APPROVAL)
        if apply_mode is ApplyMode.APPROVAL and approval_timeout is None:
            approval_timeout = DEFAULT_APPROVAL_TIMEOUT
        #: The workload configuration the library created (None: ``AIWorkload.existing``).
        self.workload_config: sagemaker.CfnAIWorkloadConfig | None = None
        workload_config_name = workload.workload_config_name
        if workload_config_name is None:
            self.workload_config = _workload_config(self, workload)
            workload_config_name = self.workload_config.ai_workload_config_name
        #: The component's settings document, in the engine's registry (README, "Settings
        #: document").
        self.settings_document: dict[str, Any] = {
            "settings_version": SETTINGS_VERSION,
            "kind": KIND,
            "endpoint_name": endpoint_name,
            "variant_name": variant_name,
            "inference_component_name": inference_component_name,
            "job_role_arn": engine.job_role.role_arn,
            "model": {"s3_uri": model_data_url},
            "job": {
                "job_type": "ai-recommendation",
                "workload_config_name": workload_config_name,
                "objective": job.objective.value,
                "instance_types": list(job.instance_types),
                "output_s3_uri": output_location,
                "framework": None if job.framework is None else job.framework.value,
                "optimize_model": job.optimize_model,
                "workload_concurrency": workload.concurrency,
            },
            "slo": slo.render(),
            "peak_concurrent_requests": peak_concurrent_requests,
            "target_utilization": target_utilization,
            "guardrails": {**guardrails.render(), "min_copies": min_copies},
            **({} if prices is None else {"hourly_prices": prices}),
            **_poll_budget(job.expected_duration, timeout, engine.poll_interval),
        }
        #: The apply settings (None in ``ApplyMode.RECOMMEND_ONLY``).
        self.apply_settings: dict[str, Any] | None = None
        if self.applies:
            self.apply_settings = engine.apply_workflow.settings(
                endpoint_name,
                variant_name,
                None,
                approval_timeout=approval_timeout,
                inference_component_name=inference_component_name,
            )
        _register(
            engine,
            self,
            {
                "schedule": None if schedule is None else schedule.expression_string,
                "audit_classifications": None
                if audit_finding is None
                else list(audit_finding.classifications),
            },
            read_locations=[
                uri for uri in (model_data_url, workload.dataset_s3_uri) if uri is not None
            ],
            write_location=output_location,
        )


def _register(
    engine: RightsizingEngine,
    component: InferenceComponentRightsizing,
    triggers: Mapping[str, Any],
    *,
    read_locations: list[str],
    write_location: str,
) -> None:
    """Add the component to the engine: its registry entry and triggers, and the roles' access.

    Keyed by endpoint and component (``registry.target_of``); one construct per component.
    The engine's own job role may read the model (and dataset) and write the results.
    """
    key = (component.endpoint_name, component.inference_component_name)
    if not any(is_token(k) for k in key) and key in engine._components:
        raise ValueError(
            f"{component.endpoint_name}/{component.inference_component_name} is already "
            f"rightsized by {engine._components[key].node.path}; one construct per "
            "inference component"
        )
    engine._components[key] = component
    engine.routing.register(
        settings=component.settings_document,
        apply_settings=component.apply_settings,
        triggers=triggers,
        schedule=component.schedule,
    )
    endpoint_arn = sagemaker_arn(engine, "endpoint", component.endpoint_name)
    engine._recommend_permissions.allow_endpoint(endpoint_arn)
    component_arn = sagemaker_arn(engine, "inference-component", component.inference_component_name)
    engine._recommend_permissions.allow_component(component_arn)
    if engine._model_reads is not None:
        engine._model_reads.allow_s3(read=read_locations, write=write_location)
    if component.applies:
        # The Apply steps read the endpoint's instance type and change this component only.
        engine.apply_workflow.grant_endpoint(endpoint_arn)
        engine.apply_workflow.grant_inference_component(component_arn)


def _workload_config(scope: Construct, workload: AIWorkload) -> sagemaker.CfnAIWorkloadConfig:
    """The component's ``AWS::SageMaker::AIWorkloadConfig``: its spec, and its dataset if any."""
    spec = workload.inline_spec()
    assert spec is not None  # AIWorkload.existing makes no configuration
    dataset = workload.dataset_s3_uri
    return sagemaker.CfnAIWorkloadConfig(
        scope,
        "WorkloadConfig",
        # The name, the spec and the dataset are create-only (the resource's schema): a new
        # workload replaces the configuration, which CloudFormation does only for a new name.
        ai_workload_config_name=_config_name(scope, f"{spec}|{dataset}"),
        ai_workload_configs=sagemaker.CfnAIWorkloadConfig.AIWorkloadConfigsProperty(
            workload_spec=sagemaker.CfnAIWorkloadConfig.WorkloadSpecProperty(inline=spec)
        ),
        dataset_config=None
        if dataset is None
        else sagemaker.CfnAIWorkloadConfig.AIDatasetConfigProperty(
            input_data_config=[
                sagemaker.CfnAIWorkloadConfig.AIWorkloadInputDataConfigProperty(
                    channel_name="dataset",
                    data_source=sagemaker.CfnAIWorkloadConfig.AIWorkloadDataSourceProperty(
                        s3_data_source=sagemaker.CfnAIWorkloadConfig.AIWorkloadS3DataSourceProperty(
                            s3_uri=dataset
                        )
                    ),
                )
            ]
        ),
    )


def _config_name(scope: Construct, content: str) -> str:
    """``rightsizing-<stack>-<construct>-<content>``: 8 hex each, at most 63 characters.

    Lower case: the resource's schema allows ``^[a-z0-9](-*[a-z0-9]){0,62}$`` only
    (AWS::SageMaker::AIWorkloadConfig, as CDK's template validation reports it). The content's
    hash makes a changed workload a new name, so CloudFormation can replace it.
    """
    stack = "".join(c if c.isalnum() else "-" for c in Stack.of(scope).stack_name.lower())
    stack = "-".join(part for part in stack.split("-") if part)[:36]
    digest = hashlib.sha256(content.encode()).hexdigest()[:8]
    return f"rightsizing-{stack}-{scope.node.addr[:8]}-{digest}".replace("--", "-")[:63]


def _poll_budget(expected: Duration, timeout: Duration, poll_interval: Duration) -> dict[str, int]:
    """The settings document's timeout, poll schedule and job-slot hold (as for endpoints)."""
    schedule = poll_schedule(
        expected_seconds=int(expected.to_seconds()),
        timeout_seconds=int(timeout.to_seconds()),
        poll_interval_seconds=int(poll_interval.to_seconds()),
    )
    return {
        "timeout_seconds": int(timeout.to_seconds()),
        "first_poll_seconds": schedule.first_wait_seconds,
        "max_polls": schedule.max_polls,
        "slot_hold_seconds": schedule.last_poll_seconds + int(_SLOT_HOLD_MARGIN.to_seconds()),
    }


def _validate(
    *,
    endpoint_name: Any,
    inference_component_name: Any,
    variant_name: Any,
    model_data_url: Any,
    output_location: Any,
    slo: Any,
    peak_concurrent_requests: Any,
    workload: Any,
    job: Any,
    target_utilization: Any,
    guardrails: Any,
    min_copies: Any,
    hourly_prices: Any,
    timeout: Any,
    apply_mode: Any,
    approval_timeout: Any,
    schedule: Any,
    audit_finding: Any,
    engine: Any,
) -> None:
    """Every check of the construct's settings, raised once (STYLE.md rule 5)."""
    problems = ValidationProblems("InferenceComponentRightsizing settings")
    for name, value in (
        ("endpoint_name", endpoint_name),
        ("inference_component_name", inference_component_name),
        ("variant_name", variant_name),
    ):
        problems.extend(sagemaker_name_problems(name, value))
    for name, uri in (("model_data_url", model_data_url), ("output_location", output_location)):
        if not is_token(uri):
            problems.check(
                isinstance(uri, str) and s3_uri_parts(uri) is not None,
                f"{name} must be an s3://bucket/prefix URI, got {uri!r}",
            )
    for name, value, kind in (
        ("slo", slo, TimeToFirstTokenSlo),
        ("workload", workload, AIWorkload),
        ("job", job, AIRecommendationJob),
        ("guardrails", guardrails, Guardrails),
    ):
        if isinstance(value, kind):
            problems.include(name, value)
        else:
            problems.check(False, f"{name} must be a {kind.__name__}, got {value!r}")
    if not is_token(peak_concurrent_requests):
        problems.check(
            is_number(peak_concurrent_requests) and peak_concurrent_requests > 0,
            "peak_concurrent_requests must be a number > 0 (expected peak of requests in flight "
            f"to the component), got {peak_concurrent_requests!r}",
        )
    problems.extend(target_utilization_problems(target_utilization))
    problems.extend(copies_problems(min_copies))
    problems.extend(hourly_price_problems(hourly_prices))
    problems.extend(
        duration_range_problems("timeout", timeout, Duration.minutes(1), MAX_JOB_TIMEOUT)
    )
    problems.extend(_trigger_problems(apply_mode, approval_timeout, schedule, audit_finding))
    problems.check(
        engine is None or isinstance(engine, RightsizingEngine),
        f"engine must be a RightsizingEngine, got {engine!r}",
    )
    problems.raise_if_any()


def _trigger_problems(
    apply_mode: Any, approval_timeout: Any, schedule: Any, audit_finding: Any
) -> list[str]:
    """What is wrong with how runs start and how their recommendations are applied."""
    problems = ValidationProblems("InferenceComponentRightsizing settings")
    problems.check(
        isinstance(apply_mode, ApplyMode),
        "apply_mode must be ApplyMode.AUTO, ApplyMode.APPROVAL or ApplyMode.RECOMMEND_ONLY, "
        f"got {apply_mode!r}",
    )
    if approval_timeout is not None:
        problems.check(
            apply_mode is ApplyMode.APPROVAL,
            "approval_timeout is for ApplyMode.APPROVAL only",
        )
        problems.extend(
            duration_range_problems(
                "approval_timeout", approval_timeout, MIN_APPROVAL_TIMEOUT, MAX_APPROVAL_TIMEOUT
            )
        )
    problems.check(
        schedule is None or isinstance(schedule, events.Schedule),
        f"schedule must be an events.Schedule, got {schedule!r}",
    )
    if audit_finding is not None:
        if isinstance(audit_finding, AuditFinding):
            problems.include("audit_finding", audit_finding)
        else:
            problems.check(False, f"audit_finding must be an AuditFinding, got {audit_finding!r}")
    return problems.problems
