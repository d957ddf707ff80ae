"""What makes an endpoint's settings valid: every cross-setting check, raised once.

``EndpointRightsizing`` calls :func:`validate` before it renders anything (STYLE.md rule 5):
each settings object's own problems (kept when it was created), the construct's arguments, and
the checks that need several settings together (the model and its approvals, the job and the
guardrails, the timeout and the poll interval).
"""

from __future__ import annotations

import re
from typing import Any

from aws_cdk import Annotations, Duration, Stack
from aws_cdk import aws_events as events
from constructs import Construct

from ._approval import MAX_APPROVAL_TIMEOUT, MIN_APPROVAL_TIMEOUT
from ._rules import (
    is_sagemaker_name,
    peak_problems,
    sagemaker_name_problems,
    target_utilization_problems,
)
from ._runtime import import_runtime
from .recommend_workflow import MAX_JOB_TIMEOUT
from .settings import (
    ApplyMode,
    AuditFinding,
    ContainerConfig,
    Deployment,
    Guardrails,
    LatencyAlarm,
    LatencySlo,
    ModelApproval,
    PeakTraffic,
    RecommenderJob,
    ValidationProblems,
    is_token,
)
from .settings._validation import duration_range_problems

_VERSIONED_PACKAGE_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"model-package/(?P<group>[^/]+)/\d+$"
)


def validate(
    scope: Construct,
    *,
    endpoint_name: str,
    variant_name: str,
    slo: LatencySlo,
    peak_requests_per_minute: float,
    peak_traffic: PeakTraffic | None,
    model_package_version_arn: str | None,
    model_name: str | None,
    container_config: ContainerConfig | None,
    job: RecommenderJob,
    target_utilization: float,
    guardrails: Guardrails,
    poll_interval: Duration,
    timeout: Duration,
    reuse_load_test_for: Duration,
    apply_mode: ApplyMode,
    approval_timeout: Duration | None,
    deployment: Deployment | None,
    schedule: events.Schedule | None,
    model_approval: ModelApproval | None,
    latency_alarm: LatencyAlarm | None,
    audit_finding: AuditFinding | None,
) -> None:
    """Every cross-setting check of the construct, raised once (STYLE.md rule 5)."""
    problems = ValidationProblems("EndpointRightsizing settings")
    problems.check(
        isinstance(apply_mode, ApplyMode),
        "apply_mode must be ApplyMode.AUTO, ApplyMode.APPROVAL or ApplyMode.RECOMMEND_ONLY, "
        f"got {apply_mode!r}",
    )
    problems.extend(approval_timeout_problems(apply_mode, approval_timeout))
    problems.check(
        deployment is None or apply_mode is not ApplyMode.RECOMMEND_ONLY,
        "deployment applies to ApplyMode.AUTO and APPROVAL only: in RECOMMEND_ONLY nothing is "
        "deployed; drop deployment= or use ApplyMode.AUTO",
    )
    optional: tuple[tuple[str, object, type], ...] = (
        ("deployment", deployment, Deployment),
        ("peak_traffic", peak_traffic, PeakTraffic),
        ("schedule", schedule, events.Schedule),
        ("model_approval", model_approval, ModelApproval),
        ("latency_alarm", latency_alarm, LatencyAlarm),
        ("audit_finding", audit_finding, AuditFinding),
    )
    for option, given, kind in optional:
        problems.check(
            given is None or isinstance(given, kind),
            f"{option} must be a {kind.__name__} or None, got {given!r}",
        )
    # The rules of _rules are shared with the command line: the same values pass, in the same words.
    for name, value in (("endpoint_name", endpoint_name), ("variant_name", variant_name)):
        problems.extend([] if is_token(value) else sagemaker_name_problems(name, value))
    problems.check(
        isinstance(slo, LatencySlo),
        f"slo must be a LatencySlo such as LatencySlo.p99(Duration.millis(200)), got {slo!r}",
    )
    problems.extend(peak_problems(peak_requests_per_minute))
    problems.extend(target_utilization_problems(target_utilization))
    # What each settings object found wrong with itself, reported here with the rest.
    for name, settings in (
        ("slo", slo),
        ("job", job),
        ("guardrails", guardrails),
        ("container_config", container_config),
        ("deployment", deployment),
        ("peak_traffic", peak_traffic),
        ("model_approval", model_approval),
        ("latency_alarm", latency_alarm),
        ("audit_finding", audit_finding),
    ):
        problems.include(name, settings)
    _check_model(problems, model_package_version_arn, model_name, container_config)
    _check_package_matches(scope, problems, model_package_version_arn, model_approval)
    _check_job(problems, job, guardrails)
    _check_timeout(problems, timeout, poll_interval, job)
    problems.extend(reuse_window_problems(reuse_load_test_for))
    problems.raise_if_any()


def approval_timeout_problems(apply_mode: ApplyMode, timeout: Duration | None) -> list[str]:
    """``approval_timeout``: only with ``ApplyMode.APPROVAL``, 1 minute to 30 days."""
    if timeout is None:
        return []
    if apply_mode is not ApplyMode.APPROVAL:
        return [
            "approval_timeout applies to ApplyMode.APPROVAL only (nothing waits for an approval "
            f"in {getattr(apply_mode, 'name', apply_mode)}); drop approval_timeout= or use "
            "ApplyMode.APPROVAL"
        ]
    return duration_range_problems(
        "approval_timeout", timeout, MIN_APPROVAL_TIMEOUT, MAX_APPROVAL_TIMEOUT
    )


#: The longest ``reuse_load_test_for``: past it, prices and the service have moved on.
MAX_REUSE_WINDOW = Duration.days(90)


def reuse_window_problems(window: Any) -> list[str]:
    """``reuse_load_test_for``: a whole number of seconds from 0 (never reuse) to 90 days."""
    return duration_range_problems(
        "reuse_load_test_for", window, Duration.seconds(0), MAX_REUSE_WINDOW
    )


def _check_model(
    problems: ValidationProblems,
    model_package_version_arn: str | None,
    model_name: str | None,
    container_config: ContainerConfig | None,
) -> None:
    """Exactly one model: a versioned package, or a model with its container config."""
    given = [
        n
        for n, v in (
            ("model_package_version_arn", model_package_version_arn),
            ("model_name", model_name),
        )
        if v is not None
    ]
    problems.check(
        len(given) == 1,
        "give exactly one of model_package_version_arn or model_name (with container_config), "
        f"got {', '.join(given) or 'neither'}",
    )
    if model_package_version_arn is not None:
        problems.check(
            is_token(model_package_version_arn)
            or bool(_VERSIONED_PACKAGE_ARN.match(model_package_version_arn)),
            "model_package_version_arn must be the ARN of a versioned model package "
            "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>), "
            f"got {model_package_version_arn!r}",
        )
        problems.check(
            container_config is None,
            "container_config goes with model_name only; IR reads it from the model package",
        )
    if model_name is not None:
        problems.check(
            is_token(model_name) or is_sagemaker_name(model_name, "ModelName"),
            f"model_name must be a SageMaker model name, got {model_name!r}",
        )
        problems.check(
            isinstance(container_config, ContainerConfig),
            "model_name needs container_config=ContainerConfig(...) (IR's ContainerConfig: "
            "sample payload, framework, domain, task)",
        )


def _check_package_matches(
    scope: Construct,
    problems: ValidationProblems,
    model_package_version_arn: str | None,
    model_approval: ModelApproval | None,
) -> None:
    """The package is where the stack is, and in the group whose approvals start runs.

    Its Region must be the stack's (SageMaker resources are regional); another account's
    package group needs a resource policy, so that is a warning.
    """
    if model_package_version_arn is None or is_token(model_package_version_arn):
        return
    match = _VERSIONED_PACKAGE_ARN.match(model_package_version_arn)
    if match is None:
        return  # reported by _check_model
    region, account, group = match.group("region", "account", "group")
    stack = Stack.of(scope)
    if not is_token(stack.region):
        problems.check(
            region == stack.region,
            f"model_package_version_arn is in {region}, the stack in {stack.region}: IR tests "
            "a model package of its own Region; deploy this stack there or copy the package",
        )
    if not is_token(stack.account) and account != stack.account:
        Annotations.of(scope).add_warning_v2(
            "rightsizing-constructs:modelPackageOfAnotherAccount",
            f"model_package_version_arn is in account {account}, the stack in {stack.account}: "
            "its model package group needs a resource policy that lets this account's IR job "
            "role describe it (SageMaker: cross-account model registry)",
        )
    if isinstance(model_approval, ModelApproval) and not is_token(
        model_approval.model_package_group_name
    ):
        problems.check(
            model_approval.model_package_group_name.lower() == group.lower(),
            f"model_approval watches the group {model_approval.model_package_group_name!r}, but "
            f"model_package_version_arn is a version of {group!r}: approvals would load-test a "
            "model this endpoint is not set up with; use the same group",
        )


def _check_job(problems: ValidationProblems, job: RecommenderJob, guardrails: Guardrails) -> None:
    """The job and the guardrails, and a job whose every type the guardrails would reject."""
    problems.check(isinstance(job, RecommenderJob), f"job must be a RecommenderJob, got {job!r}")
    problems.check(
        isinstance(guardrails, Guardrails), f"guardrails must be Guardrails, got {guardrails!r}"
    )
    if isinstance(job, RecommenderJob) and isinstance(guardrails, Guardrails):
        tested = [t for t in job.instance_types if not is_token(t)]
        # The runtime's own rule, so synth-time and run-time agree on what "allowed" means.
        allowed = import_runtime("decision").is_allowed_type
        problems.check(
            not tested or any(allowed(t, guardrails.allowed_instance_types) for t in tested),
            f"none of the job's instance_types ({', '.join(tested)}) is in the guardrails' "
            f"allowed_instance_types ({', '.join(guardrails.allowed_instance_types)}); every run "
            "would be rejected",
        )


def _check_timeout(
    problems: ValidationProblems, timeout: Duration, poll_interval: Duration, job: RecommenderJob
) -> None:
    """A timeout known at synth time, within bounds, and long enough for the job."""
    # The poll schedule (first wait, budget of polls) is computed from it at synth and written
    # into the settings (_poll_schedule.py).
    durations_known = not is_token(timeout.to_string())
    problems.check(durations_known, "timeout must be known at synth time, not a token")
    if durations_known:
        problems.check(
            timeout.to_seconds() <= MAX_JOB_TIMEOUT.to_seconds(),
            f"timeout ({timeout.to_human_string()}) must be at most "
            f"{MAX_JOB_TIMEOUT.to_human_string()}",
        )
        problems.check(
            timeout.to_seconds() > poll_interval.to_seconds(),
            f"timeout ({timeout.to_human_string()}) must be longer than poll_interval "
            f"(the engine's poll_interval, {poll_interval.to_human_string()})",
        )
        if isinstance(job, RecommenderJob) and job.job_duration is not None:
            problems.check(
                timeout.to_seconds() >= job.job_duration.to_seconds(),
                f"timeout ({timeout.to_human_string()}) is shorter than the job's job_duration "
                f"({job.job_duration.to_human_string()}): the job would be stopped before it "
                "could finish; raise timeout",
            )
