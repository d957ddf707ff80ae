"""Settings types of the rightsizing constructs.

They behave like jsii structs: immutable, keyword-only, equal by value. Each checks its own
fields when created and raises one ``ValueError`` that lists every problem; checks that need
several settings together (an SLO and a job's latency threshold, say) live in the construct.
Values that are unresolved CDK tokens are not checked: they are only known at deploy time.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, Token

from ._runtime import import_runtime
from .instance_types import is_instance_type, is_instance_type_or_family

#: IR accepts at most this many endpoint configurations (instance types) per Advanced job.
MAX_INSTANCE_TYPES_PER_JOB = 10
#: IR's limit on ``JobDurationInSeconds``.
MAX_JOB_DURATION_SECONDS = 18000


class ValidationProblems:
    """Collects what is wrong with a set of settings, to raise it once."""

    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.problems: list[str] = []

    def check(self, ok: bool, problem: str) -> None:
        """Record ``problem`` unless ``ok``."""
        if not ok:
            self.problems.append(problem)

    def extend(self, problems: Sequence[str]) -> None:
        """Record problems found elsewhere."""
        self.problems.extend(problems)

    def raise_if_any(self) -> None:
        """Raise one ``ValueError`` listing every recorded problem."""
        if self.problems:
            lines = "\n".join(f"  - {problem}" for problem in self.problems)
            raise ValueError(f"Invalid {self.subject}:\n{lines}")


_GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def is_token(value: Any) -> bool:
    """Whether ``value`` is only known at deploy time (a CDK token), so cannot be checked now."""
    return Token.is_unresolved(value)


def is_number(value: Any) -> bool:
    """Whether ``value`` is an int or float (a bool is not a number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


class LatencyPercentile(enum.Enum):
    """The latency percentile an SLO or an IR latency threshold is expressed at."""

    #: 95th percentile.
    P95 = "P95"
    #: 99th percentile.
    P99 = "P99"


@dataclass(frozen=True, kw_only=True)
class LatencySlo:
    """The latency service-level objective: ``percentile`` latency at most ``max_latency``.

    A candidate is eligible only when the model latency IR measured at its sustainable peak is
    within ``max_latency``. ``max_latency`` must be a whole number of milliseconds (IR's
    thresholds are integers of milliseconds).
    """

    percentile: LatencyPercentile
    max_latency: Duration

    def __post_init__(self) -> None:
        _raise_latency_problems("LatencySlo", self.percentile, "max_latency", self.max_latency)

    @classmethod
    def p95(cls, max_latency: Duration) -> LatencySlo:
        """95th percentile latency at most ``max_latency``."""
        return cls(percentile=LatencyPercentile.P95, max_latency=max_latency)

    @classmethod
    def p99(cls, max_latency: Duration) -> LatencySlo:
        """99th percentile latency at most ``max_latency``."""
        return cls(percentile=LatencyPercentile.P99, max_latency=max_latency)

    @property
    def max_latency_ms(self) -> int:
        """The objective in whole milliseconds."""
        return int(self.max_latency.to_milliseconds())


def _raise_latency_problems(subject: str, percentile: Any, name: str, duration: Any) -> None:
    """Check a percentile and a latency in whole milliseconds; raise once if either is wrong."""
    problems = ValidationProblems(subject)
    problems.check(
        isinstance(percentile, LatencyPercentile),
        f"percentile must be LatencyPercentile.P95 or .P99, got {percentile!r}",
    )
    problems.extend(_millisecond_problems(name, duration))
    problems.raise_if_any()


def _millisecond_problems(name: str, duration: Any) -> list[str]:
    if not isinstance(duration, Duration):
        return [f"{name} must be a Duration such as Duration.millis(200), got {duration!r}"]
    if is_token(duration.to_string()):
        return []
    try:
        millis = duration.to_milliseconds()
    except Exception as error:  # jsii raises a plain Error for fractional values
        return [f"{name} must be a whole number of milliseconds: {error}"]
    return [] if millis > 0 else [f"{name} must be more than 0 ms, got {millis} ms"]


@dataclass(frozen=True, kw_only=True)
class Guardrails:
    """Bounds that no recommendation may cross (DESIGN.md invariant 4).

    A candidate that needs more than ``max_instances`` at peak, is not an allowed type, or costs
    more than ``max_cost_per_hour`` at peak is never chosen; when none is left the recommendation
    is ``reject`` and nothing changes.
    """

    #: Fewest instances to run; also the autoscaling minimum. Default: 1.
    min_instances: int = 1
    #: Most instances to run at peak; also the autoscaling maximum. Default: 10.
    max_instances: int = 10
    #: Exact types (``ml.c5.xlarge``) or families (``ml.c5``). Default: every instance type.
    allowed_instance_types: Sequence[str] = ()
    #: Most dollars per hour at peak (instance count times IR's ``CostPerHour``). Default: no cap.
    max_cost_per_hour: float | None = None
    #: Hysteresis: when the endpoint's current configuration already meets the SLO at peak, a
    #: change must save at least this percentage of its hourly cost, or the result is
    #: ``no-change``. An endpoint that misses its SLO is always changed. Default: 0.
    min_saving_percent: float = 0
    #: Hysteresis, in dollars per month (730 hours): the same rule as ``min_saving_percent``;
    #: both must be met. Default: 0.
    min_saving_per_month: float = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_instance_types", tuple(self.allowed_instance_types))
        problems = ValidationProblems("Guardrails")
        problems.check(
            isinstance(self.min_instances, int) and self.min_instances >= 1,
            f"min_instances must be a whole number >= 1, got {self.min_instances!r}",
        )
        problems.check(
            isinstance(self.max_instances, int) and self.max_instances >= 1,
            f"max_instances must be a whole number >= 1, got {self.max_instances!r}",
        )
        if isinstance(self.min_instances, int) and isinstance(self.max_instances, int):
            problems.check(
                self.min_instances <= self.max_instances,
                f"min_instances ({self.min_instances}) must not exceed max_instances "
                f"({self.max_instances}); raise max_instances or lower min_instances",
            )
        for name in self.allowed_instance_types:
            problems.check(
                is_token(name) or is_instance_type_or_family(name),
                f"allowed_instance_types has {name!r}, which is neither a SageMaker real-time "
                "instance type (ml.c5.xlarge) nor a family of them (ml.c5)",
            )
        if self.max_cost_per_hour is not None:
            problems.check(
                is_number(self.max_cost_per_hour) and self.max_cost_per_hour > 0,
                f"max_cost_per_hour must be a positive number of dollars, "
                f"got {self.max_cost_per_hour!r}",
            )
        problems.check(
            is_number(self.min_saving_percent) and 0 <= self.min_saving_percent < 100,
            f"min_saving_percent must be a number in [0, 100), got {self.min_saving_percent!r}",
        )
        problems.check(
            is_number(self.min_saving_per_month) and self.min_saving_per_month >= 0,
            f"min_saving_per_month must be a number of dollars >= 0, "
            f"got {self.min_saving_per_month!r}",
        )
        problems.raise_if_any()

    def render(self) -> dict[str, Any]:
        """The ``guardrails`` object of the settings document."""
        return {
            "min_instances": self.min_instances,
            "max_instances": self.max_instances,
            "allowed_instance_types": list(self.allowed_instance_types),
            "max_cost_per_hour": self.max_cost_per_hour,
            "min_saving_percent": self.min_saving_percent,
            "min_saving_per_month": self.min_saving_per_month,
        }


@dataclass(frozen=True, kw_only=True)
class ModelApproval:
    """Trigger: a new version approved in a Model Package Group runs IR on that version.

    Fires on ``SageMaker Model Package State Change`` events of ``model_package_group_name``
    with ``ModelApprovalStatus`` ``Approved``. The library never swaps the model: when the
    endpoint does not serve the approved version, the run records ``model-mismatch`` and
    changes nothing (deploy the version with your pipeline; a later run rightsizes it).
    """

    #: The Model Package Group whose approved versions start a run.
    model_package_group_name: str

    def __post_init__(self) -> None:
        problems = ValidationProblems("ModelApproval")
        problems.check(
            is_token(self.model_package_group_name)
            or (
                isinstance(self.model_package_group_name, str)
                and bool(_GROUP_NAME.match(self.model_package_group_name))
            ),
            "model_package_group_name must be a Model Package Group name (1-63 letters, digits "
            f"and hyphens), got {self.model_package_group_name!r}",
        )
        problems.raise_if_any()


@dataclass(frozen=True, kw_only=True)
class LatencyAlarm:
    """Trigger: ``ModelLatency`` above the SLO for ``minutes`` consecutive minutes re-runs the loop.

    A CloudWatch alarm on the variant's ``AWS/SageMaker`` ``ModelLatency`` (microseconds) at
    the SLO's percentile, one-minute periods, threshold the SLO; the run starts when it goes
    into ALARM (missing data is not breaching: an idle endpoint does not alarm).
    """

    #: Consecutive breaching minutes before the run starts. Default: 5.
    minutes: int = 5

    def __post_init__(self) -> None:
        problems = ValidationProblems("LatencyAlarm")
        problems.check(
            isinstance(self.minutes, int) and 1 <= self.minutes <= 1440,
            f"minutes must be a whole number of minutes from 1 to 1440, got {self.minutes!r}",
        )
        problems.raise_if_any()


#: What the utilization audit can find about a variant (README, "Utilization audit"); the
#: runtime owns the names.
AUDIT_CLASSIFICATIONS: tuple[str, ...] = import_runtime("utilization").CLASSIFICATIONS


@dataclass(frozen=True, kw_only=True)
class AuditFinding:
    """Trigger: a "Rightsizing Finding" of the utilization audit for this variant starts a run.

    Closes the loop audit -> load test -> apply: a :class:`UtilizationAudit` that watches the
    endpoint publishes a finding per variant; those with one of ``classifications`` start a
    recommend run, like any other trigger.
    """

    #: The findings that start a run. Default: over- and under-provisioned.
    classifications: Sequence[str] = ("Overprovisioned", "Underprovisioned")

    def __post_init__(self) -> None:
        object.__setattr__(self, "classifications", tuple(self.classifications))
        problems = ValidationProblems("AuditFinding")
        unknown = [c for c in self.classifications if c not in AUDIT_CLASSIFICATIONS]
        problems.check(bool(self.classifications), "classifications must not be empty")
        problems.check(
            not unknown,
            f"classifications must be among {', '.join(AUDIT_CLASSIFICATIONS)}, got {unknown}",
        )
        problems.raise_if_any()


class LookbackPeriod(enum.Enum):
    """How much history the audit reads (Compute Optimizer's choices)."""

    DAYS_14 = 14
    DAYS_32 = 32
    DAYS_93 = 93


class UtilizationPercentile(enum.Enum):
    """The statistic of the utilization metrics the audit compares with the band."""

    P90 = "p90"
    P95 = "p95"
    P99 = "p99"


@dataclass(frozen=True, kw_only=True)
class UtilizationBand:
    """Where a right-sized variant's utilization runs, in percent.

    Below ``low`` on every measure is overprovisioned, above ``high`` on any is
    underprovisioned.
    """

    low: float = 60
    high: float = 80

    def __post_init__(self) -> None:
        problems = ValidationProblems("UtilizationBand")
        problems.check(
            isinstance(self.low, int | float)
            and isinstance(self.high, int | float)
            and 0 < self.low < self.high <= 100,
            f"need 0 < low < high <= 100 (percent), got low={self.low!r}, high={self.high!r}",
        )
        problems.raise_if_any()


@dataclass(frozen=True, kw_only=True)
class Phase:
    """One phase of a PHASES traffic pattern: users to start with, users added per minute."""

    initial_number_of_users: int
    spawn_rate: int
    duration: Duration

    def __post_init__(self) -> None:
        problems = ValidationProblems("Phase")
        problems.check(
            isinstance(self.initial_number_of_users, int) and self.initial_number_of_users >= 1,
            f"initial_number_of_users must be >= 1, got {self.initial_number_of_users!r}",
        )
        problems.check(
            isinstance(self.spawn_rate, int) and self.spawn_rate >= 0,
            f"spawn_rate must be >= 0, got {self.spawn_rate!r}",
        )
        problems.extend(_seconds_problems("duration", self.duration))
        problems.raise_if_any()


def _seconds_problems(name: str, duration: Any) -> list[str]:
    if not isinstance(duration, Duration):
        return [f"{name} must be a Duration such as Duration.minutes(2), got {duration!r}"]
    if is_token(duration.to_string()):
        return []
    try:
        seconds = duration.to_seconds()
    except Exception as error:  # jsii raises a plain Error for fractional values
        return [f"{name} must be a whole number of seconds: {error}"]
    return [] if seconds >= 1 else [f"{name} must be at least 1 second, got {seconds} s"]


@dataclass(frozen=True, kw_only=True)
class Stairs:
    """A STAIRS traffic pattern: ``number_of_steps`` steps over ``duration``."""

    duration: Duration
    number_of_steps: int
    #: Users added at each step: 1, 2 or 3 (IR's limit).
    users_per_step: int

    def __post_init__(self) -> None:
        problems = ValidationProblems("Stairs")
        problems.extend(_seconds_problems("duration", self.duration))
        problems.check(
            isinstance(self.number_of_steps, int) and self.number_of_steps >= 1,
            f"number_of_steps must be >= 1, got {self.number_of_steps!r}",
        )
        problems.check(
            isinstance(self.users_per_step, int) and 1 <= self.users_per_step <= 3,
            f"users_per_step must be 1, 2 or 3 (IR's limit), got {self.users_per_step!r}",
        )
        problems.raise_if_any()


@dataclass(frozen=True, kw_only=True)
class TrafficPattern:
    """The load IR drives in an Advanced job: give exactly one of ``phases`` or ``stairs``."""

    #: PHASES: users start at each phase's initial number and grow by its spawn rate.
    phases: Sequence[Phase] = ()
    #: STAIRS: users grow step by step.
    stairs: Stairs | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "phases", tuple(self.phases))
        problems = ValidationProblems("TrafficPattern")
        problems.check(
            bool(self.phases) != (self.stairs is not None),
            "give exactly one of phases=[Phase(...), ...] or stairs=Stairs(...)",
        )
        problems.check(
            all(isinstance(p, Phase) for p in self.phases), "every phase must be a Phase"
        )
        problems.check(
            self.stairs is None or isinstance(self.stairs, Stairs), "stairs must be a Stairs"
        )
        problems.raise_if_any()

    def render(self) -> dict[str, Any]:
        """The settings-document form (snake_case) read by the StartJob handler."""
        if self.stairs is not None:
            return {
                "stairs": {
                    "duration_seconds": self.stairs.duration.to_seconds(),
                    "number_of_steps": self.stairs.number_of_steps,
                    "users_per_step": self.stairs.users_per_step,
                }
            }
        return {
            "phases": [
                {
                    "initial_number_of_users": p.initial_number_of_users,
                    "spawn_rate": p.spawn_rate,
                    "duration_seconds": p.duration.to_seconds(),
                }
                for p in self.phases
            ]
        }


@dataclass(frozen=True, kw_only=True)
class LatencyThreshold:
    """IR stops raising the load once ``percentile`` latency passes ``value``."""

    percentile: LatencyPercentile
    value: Duration

    def __post_init__(self) -> None:
        _raise_latency_problems("LatencyThreshold", self.percentile, "value", self.value)


@dataclass(frozen=True, kw_only=True)
class StoppingConditions:
    """When an Advanced job's load test stops.

    Default (when an Advanced job gives none): stop at the SLO's percentile and latency, so the
    ``MaxInvocations`` IR reports is the throughput at which the SLO still holds.
    """

    #: Requests per minute at which to stop. Default: no limit.
    max_invocations: int | None = None
    #: Latency at which to stop. Default: the construct's SLO.
    model_latency_threshold: LatencyThreshold | None = None

    def __post_init__(self) -> None:
        problems = ValidationProblems("StoppingConditions")
        if self.max_invocations is not None:
            problems.check(
                isinstance(self.max_invocations, int) and self.max_invocations >= 1,
                f"max_invocations must be a whole number >= 1, got {self.max_invocations!r}",
            )
        problems.check(
            self.model_latency_threshold is None
            or isinstance(self.model_latency_threshold, LatencyThreshold),
            "model_latency_threshold must be a LatencyThreshold",
        )
        problems.raise_if_any()


class JobType(enum.Enum):
    """The kind of Inference Recommender job (botocore's ``RecommendationJobType``)."""

    #: Instance recommendation: IR picks the types; finishes in about 45 minutes.
    DEFAULT = "Default"
    #: Load test of chosen types with a custom traffic pattern; about 2 hours on average.
    ADVANCED = "Advanced"


@dataclass(frozen=True, kw_only=True)
class RecommenderJob:
    """Which Inference Recommender job the workflow runs: :meth:`default` or :meth:`advanced`."""

    job_type: JobType
    instance_types: tuple[str, ...] = ()
    traffic_pattern: TrafficPattern | None = None
    stopping_conditions: StoppingConditions | None = None
    job_duration: Duration | None = None
    max_number_of_tests: int | None = None
    max_parallel_of_tests: int | None = None

    @classmethod
    def default(cls) -> RecommenderJob:
        """An instance recommendation job: IR chooses the candidate types and load."""
        return cls(job_type=JobType.DEFAULT)

    @classmethod
    def advanced(
        cls,
        *,
        instance_types: Sequence[str],
        traffic_pattern: TrafficPattern | None = None,
        stopping_conditions: StoppingConditions | None = None,
        job_duration: Duration | None = None,
        max_number_of_tests: int | None = None,
        max_parallel_of_tests: int | None = None,
    ) -> RecommenderJob:
        """A load test of up to 10 ``instance_types``.

        :param traffic_pattern: the load to drive. Default: IR's default pattern.
        :param stopping_conditions: when to stop. Default: at the SLO's latency (see
            :class:`StoppingConditions`).
        :param job_duration: the longest the job may run, at most 5 hours. Default: 2 hours.
        :param max_number_of_tests: most load tests to run (1-10). Default: one per type.
        :param max_parallel_of_tests: most load tests at once (1-10), each a real endpoint
            that counts against the account's quotas. Default: IR's default.
        """
        job = cls(
            job_type=JobType.ADVANCED,
            instance_types=tuple(instance_types),
            traffic_pattern=traffic_pattern,
            stopping_conditions=stopping_conditions,
            job_duration=job_duration if job_duration is not None else Duration.hours(2),
            max_number_of_tests=max_number_of_tests,
            max_parallel_of_tests=max_parallel_of_tests,
        )
        job._validate_advanced()
        return job

    def _validate_advanced(self) -> None:
        problems = ValidationProblems("RecommenderJob.advanced")
        count = len(self.instance_types)
        problems.check(
            1 <= count <= MAX_INSTANCE_TYPES_PER_JOB,
            f"instance_types must list 1 to {MAX_INSTANCE_TYPES_PER_JOB} types (IR's limit per "
            f"job), got {count}; split the types over several jobs or drop some",
        )
        unknown = [t for t in self.instance_types if not (is_token(t) or is_instance_type(t))]
        problems.check(
            not unknown,
            f"instance_types has {', '.join(map(repr, unknown))}, not in botocore's "
            "ProductionVariantInstanceType enum; use a real-time type such as ml.c5.xlarge",
        )
        problems.check(
            len(set(self.instance_types)) == count,
            f"instance_types lists a type twice: {list(self.instance_types)}",
        )
        problems.check(
            self.traffic_pattern is None or isinstance(self.traffic_pattern, TrafficPattern),
            "traffic_pattern must be a TrafficPattern",
        )
        problems.check(
            self.stopping_conditions is None
            or isinstance(self.stopping_conditions, StoppingConditions),
            "stopping_conditions must be StoppingConditions",
        )
        duration_problems = _seconds_problems("job_duration", self.job_duration)
        problems.extend(duration_problems)
        if not duration_problems and self.job_duration is not None:
            seconds = self.job_duration.to_seconds()
            problems.check(
                is_token(self.job_duration.to_string()) or seconds <= MAX_JOB_DURATION_SECONDS,
                f"job_duration must be at most {MAX_JOB_DURATION_SECONDS} s (5 hours, IR's "
                f"limit), got {seconds} s",
            )
        for name, value in (
            ("max_number_of_tests", self.max_number_of_tests),
            ("max_parallel_of_tests", self.max_parallel_of_tests),
        ):
            if value is not None:
                problems.check(
                    isinstance(value, int) and 1 <= value <= 10,
                    f"{name} must be a whole number from 1 to 10, got {value!r}",
                )
        problems.raise_if_any()


@dataclass(frozen=True, kw_only=True)
class ContainerConfig:
    """What IR needs to know about a model given by name (``model_name``).

    Field meanings follow botocore's ``RecommendationJobContainerConfig``. A sample payload
    (``sample_payload_url``, an S3 URI of a tar.gz of requests, and its content types) is what
    IR replays during the load test.
    """

    #: Machine learning domain, e.g. ``COMPUTER_VISION``. Default: IR infers it.
    domain: str | None = None
    #: Task, e.g. ``IMAGE_CLASSIFICATION``. Default: IR infers it.
    task: str | None = None
    #: Framework, e.g. ``PYTORCH``. Default: IR infers it.
    framework: str | None = None
    #: Framework version, e.g. ``1.13``. Default: IR infers it.
    framework_version: str | None = None
    #: S3 URI of the sample payload archive. Default: none (IR needs one for most models).
    sample_payload_url: str | None = None
    #: MIME types of the sample payload, e.g. ``["application/json"]``. Default: none.
    supported_content_types: Sequence[str] = ()
    #: A well-known model name to compare with (``resnet50``). Default: none.
    nearest_model_name: str | None = None
    #: Instance types the model supports. Default: IR chooses.
    supported_instance_types: Sequence[str] = ()
    #: Input shape for some frameworks (JSON text). Default: none.
    data_input_config: str | None = None
    #: MIME types of the responses. Default: none.
    supported_response_mime_types: Sequence[str] = ()

    def __post_init__(self) -> None:
        for name in (
            "supported_content_types",
            "supported_instance_types",
            "supported_response_mime_types",
        ):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        problems = ValidationProblems("ContainerConfig")
        url = self.sample_payload_url
        problems.check(
            url is None or is_token(url) or url.startswith(("s3://", "https://")),
            f"sample_payload_url must be an s3:// or https:// URI, got {url!r}",
        )
        unknown = [
            t for t in self.supported_instance_types if not (is_token(t) or is_instance_type(t))
        ]
        problems.check(
            not unknown,
            f"supported_instance_types has {', '.join(map(repr, unknown))}, not a SageMaker "
            "real-time instance type",
        )
        problems.raise_if_any()

    def render(self) -> dict[str, Any]:
        """The settings-document form (snake_case) read by the StartJob handler."""
        rendered: dict[str, Any] = {
            "domain": self.domain,
            "task": self.task,
            "framework": self.framework,
            "framework_version": self.framework_version,
            "sample_payload_url": self.sample_payload_url,
            "supported_content_types": list(self.supported_content_types) or None,
            "nearest_model_name": self.nearest_model_name,
            "supported_instance_types": list(self.supported_instance_types) or None,
            "data_input_config": self.data_input_config,
            "supported_response_mime_types": list(self.supported_response_mime_types) or None,
        }
        return {key: value for key, value in rendered.items() if value is not None}


class ApplyMode(enum.Enum):
    """Whether recommendations are applied to the endpoint."""

    #: The apply rule exists: every ``apply`` recommendation is applied by the Apply workflow.
    AUTO = "auto"
    #: No apply rule: recommendations are published and notified only.
    RECOMMEND_ONLY = "recommend-only"


class TrafficShift(enum.Enum):
    """How a blue/green update moves traffic to the new fleet (``TrafficRoutingConfig.Type``)."""

    ALL_AT_ONCE = "ALL_AT_ONCE"
    CANARY = "CANARY"
    LINEAR = "LINEAR"


@dataclass(frozen=True, kw_only=True)
class Deployment:
    """How ``UpdateEndpoint`` rolls out the new config: blue/green with a traffic shift.

    Use :meth:`all_at_once`, :meth:`canary` or :meth:`linear`. ``rollback_alarms`` (CloudWatch
    alarm names, up to 10) make SageMaker roll the update back when one goes off while it runs.
    """

    traffic: TrafficShift = TrafficShift.ALL_AT_ONCE
    #: Percent of capacity shifted first (canary) or per step (linear).
    step_percent: int | None = None
    #: Wait between traffic shifts (0 to 1 hour).
    wait: Duration | None = None
    #: How long the old fleet is kept after the shift (0 to 1 hour). Default: SageMaker's.
    termination_wait: Duration | None = None
    rollback_alarms: Sequence[str] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "rollback_alarms", tuple(self.rollback_alarms))
        problems = ValidationProblems("Deployment")
        shifted = self.traffic is not TrafficShift.ALL_AT_ONCE
        problems.check(
            not shifted or (isinstance(self.step_percent, int) and 1 <= self.step_percent <= 100),
            f"step_percent must be 1 to 100 for {self.traffic.value}, got {self.step_percent!r}",
        )
        for name, value in (("wait", self.wait), ("termination_wait", self.termination_wait)):
            if value is not None and not is_token(value.to_string()):
                problems.check(
                    0 <= value.to_seconds() <= 3600,
                    f"{name} must be 0 to 1 hour, got {value.to_human_string()}",
                )
        problems.check(
            len(self.rollback_alarms) <= 10,
            f"at most 10 rollback_alarms (SageMaker's limit), got {len(self.rollback_alarms)}",
        )
        problems.raise_if_any()

    @classmethod
    def all_at_once(
        cls, *, rollback_alarms: Sequence[str] = (), termination_wait: Duration | None = None
    ) -> Deployment:
        """Shift all traffic at once (SageMaker's default)."""
        return cls(rollback_alarms=rollback_alarms, termination_wait=termination_wait)

    @classmethod
    def canary(
        cls, *, percent: int, wait: Duration, rollback_alarms: Sequence[str] = ()
    ) -> Deployment:
        """Shift ``percent`` of capacity, wait ``wait`` (watching the alarms), then the rest."""
        return cls(
            traffic=TrafficShift.CANARY,
            step_percent=percent,
            wait=wait,
            rollback_alarms=rollback_alarms,
        )

    @classmethod
    def linear(
        cls, *, step_percent: int, wait: Duration, rollback_alarms: Sequence[str] = ()
    ) -> Deployment:
        """Shift ``step_percent`` of capacity every ``wait`` until all traffic has moved."""
        return cls(
            traffic=TrafficShift.LINEAR,
            step_percent=step_percent,
            wait=wait,
            rollback_alarms=rollback_alarms,
        )

    def render(self) -> dict[str, Any] | None:
        """``UpdateEndpoint``'s ``DeploymentConfig``; None for SageMaker's default."""
        if (
            self.traffic is TrafficShift.ALL_AT_ONCE
            and not self.rollback_alarms
            and self.termination_wait is None
        ):
            return None
        routing: dict[str, Any] = {
            "Type": self.traffic.value,
            "WaitIntervalInSeconds": int(self.wait.to_seconds()) if self.wait else 0,
        }
        size = {"Type": "CAPACITY_PERCENT", "Value": self.step_percent}
        if self.traffic is TrafficShift.CANARY:
            routing["CanarySize"] = size
        if self.traffic is TrafficShift.LINEAR:
            routing["LinearStepSize"] = size
        policy: dict[str, Any] = {"TrafficRoutingConfiguration": routing}
        if self.termination_wait is not None:
            policy["TerminationWaitInSeconds"] = int(self.termination_wait.to_seconds())
        config: dict[str, Any] = {"BlueGreenUpdatePolicy": policy}
        if self.rollback_alarms:
            config["AutoRollbackConfiguration"] = {
                "Alarms": [{"AlarmName": name} for name in self.rollback_alarms]
            }
        return config
