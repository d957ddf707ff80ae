"""Settings of an inference component's rightsizing: its workload, objective and AI job.

SageMaker sizes endpoints that host models as inference components (large language models)
with *AI recommendation jobs* (``CreateAIRecommendationJob``, botocore's SageMaker model): a job
benchmarks the model under a *workload configuration* (``AIWorkloadConfig``: token
distributions, or a dataset in S3) with one performance target, and recommends instance types,
instance counts and copies per instance ("Set up a workload configuration for generative AI
inference recommendations", SageMaker developer guide).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration

from ._validation import ValidationProblems, is_number, is_token, seconds_problems

#: When the workflow expects an AI recommendation job to end (``expected_duration``).
DEFAULT_AI_JOB_EXPECTED = Duration.hours(1)
#: A job compares at most 3 instance types (``AIRecommendationComputeSpec.InstanceTypes``,
#: "at most 3 instance types", SageMaker API reference, CreateAIRecommendationJob).
MAX_AI_JOB_INSTANCE_TYPES = 3
#: ``AIRecommendationInstanceType``'s enum in botocore's SageMaker model lists the GPU types an
#: AI recommendation job can measure; ``ml.`` and a family and size, as for endpoints.
_S3_URI = re.compile(r"^s3://([^/]+)/?(.*)$")


class AIObjective(enum.Enum):
    """What the AI recommendation job optimizes (``AIRecommendationMetric``).

    Whatever the objective, the library then picks the cheapest recommendation that meets the
    time-to-first-token SLO at the peak.
    """

    #: Time to first token, in milliseconds (``ttft-ms``).
    TIME_TO_FIRST_TOKEN = "ttft-ms"
    #: Throughput (``throughput``).
    THROUGHPUT = "throughput"
    #: Cost (``cost``).
    COST = "cost"


class InferenceFramework(enum.Enum):
    """The serving framework the job deploys the model with (``InferenceSpecification``)."""

    #: Large Model Inference container.
    LMI = "LMI"
    #: vLLM.
    VLLM = "VLLM"


class TokenLatencyPercentile(enum.Enum):
    """The percentile a time-to-first-token objective is read at (aiperf reports each)."""

    #: Median.
    P50 = "p50"
    #: 90th percentile.
    P90 = "p90"
    #: 95th percentile.
    P95 = "p95"
    #: 99th percentile.
    P99 = "p99"


@dataclass(frozen=True, kw_only=True)
class TimeToFirstTokenSlo:
    """A generative model's objective: ``percentile`` time to first token at most ``max_latency``.

    A recommendation is eligible only when the job measured its time to first token at that
    percentile (or a higher one) within ``max_latency``; one it did not measure there is not
    eligible (never guessed from another statistic).
    """

    percentile: TokenLatencyPercentile
    max_latency: Duration

    def __post_init__(self) -> None:
        problems = ValidationProblems("TimeToFirstTokenSlo")
        problems.check(
            isinstance(self.percentile, TokenLatencyPercentile),
            f"percentile must be a TokenLatencyPercentile, got {self.percentile!r}",
        )
        if not isinstance(self.max_latency, Duration):
            problems.check(
                False, f"max_latency must be a Duration, got {type(self.max_latency).__name__}"
            )
        elif not is_token(self.max_latency.to_milliseconds()):
            problems.check(
                self.max_latency.to_milliseconds() >= 1,
                f"max_latency must be at least 1 ms, got {self.max_latency.to_milliseconds()} ms",
            )
        problems.keep_on(self)

    @classmethod
    def p50(cls, max_latency: Duration) -> TimeToFirstTokenSlo:
        """Median time to first token at most ``max_latency``."""
        return cls(percentile=TokenLatencyPercentile.P50, max_latency=max_latency)

    @classmethod
    def p90(cls, max_latency: Duration) -> TimeToFirstTokenSlo:
        """90th percentile time to first token at most ``max_latency``."""
        return cls(percentile=TokenLatencyPercentile.P90, max_latency=max_latency)

    @classmethod
    def p95(cls, max_latency: Duration) -> TimeToFirstTokenSlo:
        """95th percentile time to first token at most ``max_latency``."""
        return cls(percentile=TokenLatencyPercentile.P95, max_latency=max_latency)

    @classmethod
    def p99(cls, max_latency: Duration) -> TimeToFirstTokenSlo:
        """99th percentile time to first token at most ``max_latency``."""
        return cls(percentile=TokenLatencyPercentile.P99, max_latency=max_latency)

    def render(self) -> dict[str, Any]:
        """The ``slo`` object of the settings document."""
        return {
            "metric": "ttft",
            "percentile": self.percentile.value,
            "max_latency_ms": int(self.max_latency.to_milliseconds()),
        }


@dataclass(frozen=True, kw_only=True)
class AIWorkload:
    """The traffic the AI recommendation job benchmarks with: tokens or a dataset, at a concurrency.

    Use :meth:`tokens` (token distributions, rendered as the documented inline ``aiperf`` spec)
    or :meth:`dataset` (a representative dataset in S3). The library creates the workload
    configuration (``AWS::SageMaker::AIWorkloadConfig``) unless :meth:`existing` names one.

    ``concurrency`` is the number of concurrent requests the benchmark drives: the library
    reads each recommendation's measurements as made at that many requests in flight over all
    of its copies, so a copy's capacity is ``concurrency`` divided by its copies.
    """

    #: Concurrent requests the benchmark keeps in flight.
    concurrency: int
    #: Mean and standard deviation of prompt (input) tokens (:meth:`tokens`).
    input_tokens_mean: int | None = None
    input_tokens_stddev: int = 0
    #: Mean and standard deviation of output tokens (:meth:`tokens`).
    output_tokens_mean: int | None = None
    output_tokens_stddev: int = 0
    #: A dataset of representative requests (:meth:`dataset`).
    dataset_s3_uri: str | None = None
    #: An existing workload configuration's name (:meth:`existing`).
    workload_config_name: str | None = None

    def __post_init__(self) -> None:
        problems = ValidationProblems("AIWorkload")
        problems.check(
            is_token(self.concurrency)
            or (isinstance(self.concurrency, int) and self.concurrency >= 1),
            f"concurrency must be a whole number of requests, at least 1, got {self.concurrency!r}",
        )
        given = [
            name
            for name, value in (
                ("tokens", self.input_tokens_mean),
                ("dataset_s3_uri", self.dataset_s3_uri),
                ("workload_config_name", self.workload_config_name),
            )
            if value is not None
        ]
        problems.check(
            len(given) == 1,
            "give exactly one of AIWorkload.tokens(...), AIWorkload.dataset(...) or "
            f"AIWorkload.existing(...); got {', '.join(given) or 'none'}",
        )
        for name in (
            "input_tokens_mean",
            "input_tokens_stddev",
            "output_tokens_mean",
            "output_tokens_stddev",
        ):
            value = getattr(self, name)
            if value is None or is_token(value):
                continue
            problems.check(
                isinstance(value, int) and value >= 0,
                f"{name} must be a whole number of tokens, at least 0, got {value!r}",
            )
        if self.input_tokens_mean is not None:
            problems.check(
                self.output_tokens_mean is not None,
                "output_tokens_mean is required with input_tokens_mean",
            )
        if self.dataset_s3_uri is not None and not is_token(self.dataset_s3_uri):
            problems.check(
                _S3_URI.match(self.dataset_s3_uri) is not None,
                f"dataset_s3_uri must be an s3:// URI, got {self.dataset_s3_uri!r}",
            )
        if self.workload_config_name is not None and not is_token(self.workload_config_name):
            problems.check(
                re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", self.workload_config_name)
                is not None,
                "workload_config_name must be 1-63 letters, digits and hyphens (SageMaker's "
                f"AIEntityName), got {self.workload_config_name!r}",
            )
        problems.keep_on(self)

    @classmethod
    def tokens(
        cls,
        *,
        concurrency: int,
        input_tokens_mean: int,
        output_tokens_mean: int,
        input_tokens_stddev: int = 0,
        output_tokens_stddev: int = 0,
    ) -> AIWorkload:
        """Synthetic prompts: token distributions at ``concurrency`` requests in flight."""
        return cls(
            concurrency=concurrency,
            input_tokens_mean=input_tokens_mean,
            input_tokens_stddev=input_tokens_stddev,
            output_tokens_mean=output_tokens_mean,
            output_tokens_stddev=output_tokens_stddev,
        )

    @classmethod
    def dataset(cls, *, s3_uri: str, concurrency: int) -> AIWorkload:
        """Representative requests from a dataset in S3 (``DatasetConfig.InputDataConfig``)."""
        return cls(concurrency=concurrency, dataset_s3_uri=s3_uri)

    @classmethod
    def existing(cls, *, workload_config_name: str, concurrency: int) -> AIWorkload:
        """A workload configuration made elsewhere; ``concurrency`` is the one it drives."""
        return cls(concurrency=concurrency, workload_config_name=workload_config_name)

    def inline_spec(self) -> str | None:
        """The inline ``WorkloadSpec`` (JSON), or None for an existing configuration.

        The ``aiperf`` benchmark and its token parameters as the developer guide's example
        writes them ("Create a workload configuration with inline parameters");
        ``concurrency`` is aiperf's own option for requests in flight (aiperf command line
        options, ``--concurrency``). A dataset's spec sets the concurrency only: the dataset
        gives the requests (a configuration may have both, botocore's model).
        """
        if self.workload_config_name is not None:
            return None
        parameters: dict[str, Any] = {"concurrency": self.concurrency}
        if self.input_tokens_mean is not None:
            parameters.update(
                prompt_input_tokens_mean=self.input_tokens_mean,
                prompt_input_tokens_stddev=self.input_tokens_stddev,
                output_tokens_mean=self.output_tokens_mean,
                output_tokens_stddev=self.output_tokens_stddev,
            )
        return json.dumps(
            {"benchmark": {"type": "aiperf"}, "parameters": parameters}, sort_keys=True
        )


@dataclass(frozen=True, kw_only=True)
class AIRecommendationJob:
    """The AI recommendation job: its objective, the types it compares and how it deploys.

    Default: optimize time to first token, let SageMaker choose the instance types, its default
    framework, no model optimization.
    """

    #: The job's performance target. Default: time to first token.
    objective: AIObjective = AIObjective.TIME_TO_FIRST_TOKEN
    #: At most 3 instance types to compare. Default: SageMaker chooses.
    instance_types: Sequence[str] = ()
    #: The serving framework. Default: SageMaker chooses.
    framework: InferenceFramework | None = None
    #: Whether the job may optimize the model (speculative decoding, kernel tuning); an
    #: optimized recommendation changes the container, which the Apply workflow then sets.
    #: Default: False.
    optimize_model: bool = False
    #: How long the job is expected to take: the workflow polls first at two thirds of it, then
    #: every poll interval (as for IR jobs). AWS does not document an AI job's duration.
    #: Default: 1 hour.
    expected_duration: Duration = DEFAULT_AI_JOB_EXPECTED

    def __post_init__(self) -> None:
        object.__setattr__(self, "instance_types", tuple(self.instance_types))
        problems = ValidationProblems("AIRecommendationJob")
        problems.extend(seconds_problems("expected_duration", self.expected_duration))
        problems.check(
            isinstance(self.objective, AIObjective),
            f"objective must be an AIObjective, got {self.objective!r}",
        )
        problems.check(
            len(self.instance_types) <= MAX_AI_JOB_INSTANCE_TYPES,
            f"instance_types: an AI recommendation job compares at most "
            f"{MAX_AI_JOB_INSTANCE_TYPES} instance types, got {len(self.instance_types)}",
        )
        allowed = _ai_instance_types()
        for name in self.instance_types:
            if is_token(name):
                continue
            problems.check(
                name in allowed,
                f"instance_types: {name!r} is not a type AI recommendation jobs measure "
                "(AIRecommendationInstanceType in botocore's SageMaker model)",
            )
        problems.check(
            self.framework is None or isinstance(self.framework, InferenceFramework),
            f"framework must be an InferenceFramework, got {self.framework!r}",
        )
        problems.keep_on(self)


def _ai_instance_types() -> frozenset[str]:
    from .._runtime import import_runtime

    model = import_runtime("aws").service_model("sagemaker")
    return frozenset(model.shape_for("AIRecommendationInstanceType").enum)


def s3_uri_parts(uri: str) -> tuple[str, str] | None:
    """``(bucket, key prefix)`` of an ``s3://`` URI, or None when it is not one."""
    match = _S3_URI.match(uri)
    return None if match is None else (match.group(1), match.group(2))


def hourly_price_problems(prices: Any) -> list[str]:
    """What is wrong with a ``{instance type: dollars per hour}`` table."""
    if prices is None:
        return []
    if not isinstance(prices, dict):
        return [f"hourly_prices must be a dict of instance type to dollars, got {prices!r}"]
    return [
        f"hourly_prices[{name!r}] must be a positive number of dollars per hour, got {price!r}"
        for name, price in prices.items()
        if not is_token(price) and not (is_number(price) and price > 0)
    ]


def copies_problems(min_copies: Any) -> list[str]:
    """What is wrong with the minimum copy count."""
    if is_token(min_copies):
        return []
    if not isinstance(min_copies, int) or isinstance(min_copies, bool) or min_copies < 1:
        return [f"min_copies must be a whole number, at least 1, got {min_copies!r}"]
    return []


__all__ = [
    "MAX_AI_JOB_INSTANCE_TYPES",
    "AIObjective",
    "AIRecommendationJob",
    "AIWorkload",
    "InferenceFramework",
    "TimeToFirstTokenSlo",
    "TokenLatencyPercentile",
    "copies_problems",
    "hourly_price_problems",
    "s3_uri_parts",
]
