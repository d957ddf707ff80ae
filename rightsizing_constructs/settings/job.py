"""The Inference Recommender job a run starts: Default or Advanced, its load and stopping rules."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration

from ..instance_types import is_instance_type
from ._validation import ValidationProblems, is_token, seconds_problems
from .slo import LatencyPercentile, latency_problems

#: IR accepts at most this many endpoint configurations (instance types) per Advanced job.
MAX_INSTANCE_TYPES_PER_JOB = 10
#: IR's limit on ``JobDurationInSeconds``.
MAX_JOB_DURATION_SECONDS = 18000
#: How long a Default job is expected to take: "Inference recommendation jobs complete within
#: 45 minutes" ("Recommendation jobs with Amazon SageMaker Inference Recommender").
DEFAULT_JOB_EXPECTED_MINUTES = 45


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
        problems.extend(seconds_problems("duration", self.duration))
        problems.keep_on(self)


@dataclass(frozen=True, kw_only=True)
class Stairs:
    """A STAIRS traffic pattern: ``number_of_steps`` steps over ``duration``."""

    duration: Duration
    number_of_steps: int
    #: Users added at each step: 1, 2 or 3 (IR's limit).
    users_per_step: int

    def __post_init__(self) -> None:
        problems = ValidationProblems("Stairs")
        problems.extend(seconds_problems("duration", self.duration))
        problems.check(
            isinstance(self.number_of_steps, int) and self.number_of_steps >= 1,
            f"number_of_steps must be >= 1, got {self.number_of_steps!r}",
        )
        problems.check(
            isinstance(self.users_per_step, int) and 1 <= self.users_per_step <= 3,
            f"users_per_step must be 1, 2 or 3 (IR's limit), got {self.users_per_step!r}",
        )
        problems.keep_on(self)


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
        for i, phase in enumerate(self.phases):
            problems.include(f"phases[{i}]", phase)
        problems.include("stairs", self.stairs)
        problems.keep_on(self)

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
        problems = ValidationProblems("LatencyThreshold")
        problems.extend(latency_problems(self.percentile, "value", self.value))
        problems.keep_on(self)

    @classmethod
    def p95(cls, value: Duration) -> LatencyThreshold:
        """Stop raising the load once the 95th percentile latency passes ``value``."""
        return cls(percentile=LatencyPercentile.P95, value=value)

    @classmethod
    def p99(cls, value: Duration) -> LatencyThreshold:
        """Stop raising the load once the 99th percentile latency passes ``value``."""
        return cls(percentile=LatencyPercentile.P99, value=value)


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
        problems.include("model_latency_threshold", self.model_latency_threshold)
        problems.keep_on(self)


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
    #: How long the job is expected to take; the first poll comes at two thirds of it.
    #: Default (None): 45 minutes for a Default job, ``job_duration`` for an Advanced one.
    expected_duration: Duration | None = None

    @classmethod
    def default(cls, *, expected_duration: Duration | None = None) -> RecommenderJob:
        """An instance recommendation job: IR chooses the candidate types and load.

        :param expected_duration: how long the job is expected to take. The workflow polls
            it first at two thirds of this, then at most a minute apart (README,
            "Architecture"): a
            shorter value sees fast jobs sooner for a few more polls. Default: 45 minutes (IR's
            "complete within 45 minutes").
        """
        return cls(job_type=JobType.DEFAULT, expected_duration=expected_duration)

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
        expected_duration: Duration | None = None,
    ) -> RecommenderJob:
        """A load test of up to 10 ``instance_types``.

        :param traffic_pattern: the load to drive. Default: IR's default pattern.
        :param stopping_conditions: when to stop. Default: at the SLO's latency (see
            :class:`StoppingConditions`).
        :param job_duration: the longest the job may run, at most 5 hours. Default: 2 hours.
        :param max_number_of_tests: most load tests to run (1-10). Default: one per type.
        :param max_parallel_of_tests: most load tests at once (1-10), each a real endpoint
            that counts against the account's quotas. Default: IR's default.
        :param expected_duration: how long the job is expected to take, at most
            ``job_duration``. The workflow polls it first at two thirds of this, then at
            most a minute apart. Default: ``job_duration`` (the job ends by then).
        """
        return cls(
            job_type=JobType.ADVANCED,
            instance_types=tuple(instance_types),
            traffic_pattern=traffic_pattern,
            stopping_conditions=stopping_conditions,
            job_duration=job_duration if job_duration is not None else Duration.hours(2),
            max_number_of_tests=max_number_of_tests,
            max_parallel_of_tests=max_parallel_of_tests,
            expected_duration=expected_duration,
        )

    @property
    def expected(self) -> Duration:
        """How long the job is expected to take (``expected_duration`` or its default)."""
        if self.expected_duration is not None:
            return self.expected_duration
        if self.job_type is JobType.ADVANCED and self.job_duration is not None:
            return self.job_duration
        return Duration.minutes(DEFAULT_JOB_EXPECTED_MINUTES)

    def __post_init__(self) -> None:
        object.__setattr__(self, "instance_types", tuple(self.instance_types))
        problems = ValidationProblems("RecommenderJob")
        problems.check(
            isinstance(self.job_type, JobType),
            f"job_type must be JobType.DEFAULT or JobType.ADVANCED, got {self.job_type!r}",
        )
        if self.job_type is JobType.ADVANCED:
            self._check_advanced(problems)
        if self.expected_duration is not None:
            self._check_expected_duration(problems)
        problems.keep_on(self)

    def _check_expected_duration(self, problems: ValidationProblems) -> None:
        """Known at synth (the poll schedule is computed then), whole seconds, within the job."""
        expected = self.expected_duration
        duration_problems = seconds_problems("expected_duration", expected)
        problems.extend(duration_problems)
        if duration_problems or expected is None:
            return
        known = not is_token(expected.to_string())
        problems.check(
            known, "expected_duration must be known at synth time (it sets the poll schedule)"
        )
        limit = self.job_duration if self.job_type is JobType.ADVANCED else None
        if known and limit is not None and not is_token(limit.to_string()):
            problems.check(
                expected.to_seconds() <= limit.to_seconds(),
                f"expected_duration ({expected.to_human_string()}) is longer than job_duration "
                f"({limit.to_human_string()}), when IR ends the job; lower it",
            )

    def _check_advanced(self, problems: ValidationProblems) -> None:
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
        duration_problems = seconds_problems("job_duration", self.job_duration)
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
        problems.include("traffic_pattern", self.traffic_pattern)
        problems.include("stopping_conditions", self.stopping_conditions)


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
        problems.keep_on(self)

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
