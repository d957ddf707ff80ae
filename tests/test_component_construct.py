"""InferenceComponentRightsizing: its settings document, workload config, IAM and validation."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from rightsizing_runtime import route as route_runtime
from rightsizing_runtime.registry import load

from rightsizing_constructs import (
    AIObjective,
    AIRecommendationJob,
    AIWorkload,
    ApplyMode,
    Guardrails,
    InferenceComponentRightsizing,
    InferenceFramework,
    TimeToFirstTokenSlo,
)
from tests.infra import ACCOUNT, REGION, as_list, definition, registry, stack, statements_of

AI_JOBS = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:ai-recommendation-job/rightsizing-*"
COMPONENT_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:inference-component/llama-ic"


def component(scope: cdk.Stack | None = None, **overrides: Any) -> InferenceComponentRightsizing:
    """An InferenceComponentRightsizing with minimal valid settings, overridden as given."""
    scope = scope or stack()
    settings: dict[str, Any] = {
        "endpoint_name": "llm-endpoint",
        "inference_component_name": "llama-ic",
        "model_data_url": "s3://models/llama/",
        "output_location": "s3://results/rightsizing/",
        "slo": TimeToFirstTokenSlo.p95(cdk.Duration.millis(500)),
        "peak_concurrent_requests": 40,
        "workload": AIWorkload.tokens(concurrency=8, input_tokens_mean=550, output_tokens_mean=150),
    }
    settings.update(overrides)
    construct_id = settings.pop("construct_id", "Llm")
    return InferenceComponentRightsizing(scope, construct_id, **settings)


@pytest.fixture(scope="module")
def template() -> Template:
    construct = component(
        job=AIRecommendationJob(
            instance_types=["ml.g5.2xlarge", "ml.g6.2xlarge"], framework=InferenceFramework.VLLM
        ),
        hourly_prices={"ml.g5.2xlarge": 1.515, "ml.g6.2xlarge": 1.222},
        guardrails=Guardrails(max_instances=4),
        min_copies=2,
    )
    return Template.from_stack(cdk.Stack.of(construct))


def entry_of(template: Template) -> dict[str, Any]:
    [entry] = [
        e for e in registry(dict(template.to_json())) if e["settings"].get("kind") is not None
    ]
    return entry


def test_the_settings_document_is_the_contracts(template: Template) -> None:
    settings = entry_of(template)["settings"]
    assert settings["kind"] == "inference-component"
    assert settings["endpoint_name"] == "llm-endpoint"
    assert settings["variant_name"] == "AllTraffic"
    assert settings["inference_component_name"] == "llama-ic"
    assert settings["model"] == {"s3_uri": "s3://models/llama/"}
    assert settings["job"] == {
        "job_type": "ai-recommendation",
        "workload_config_name": settings["job"]["workload_config_name"],
        "objective": "ttft-ms",
        "instance_types": ["ml.g5.2xlarge", "ml.g6.2xlarge"],
        "output_s3_uri": "s3://results/rightsizing/",
        "framework": "VLLM",
        "optimize_model": False,
        "workload_concurrency": 8,
    }
    assert settings["slo"] == {"metric": "ttft", "percentile": "p95", "max_latency_ms": 500}
    assert settings["peak_concurrent_requests"] == 40
    assert settings["guardrails"]["min_copies"] == 2
    assert settings["guardrails"]["max_instances"] == 4
    assert settings["hourly_prices"] == {"ml.g5.2xlarge": 1.515, "ml.g6.2xlarge": 1.222}
    # The poll schedule of a job expected to take an hour (the default), with the default
    # 4-hour timeout: the first poll at two thirds of the hour.
    assert settings["timeout_seconds"] == 4 * 3600
    assert settings["first_poll_seconds"] == 2400
    assert settings["max_polls"] >= 1


def test_the_workload_config_is_created_with_the_inline_spec(template: Template) -> None:
    [config] = template.find_resources("AWS::SageMaker::AIWorkloadConfig").values()
    properties = config["Properties"]
    name = properties["AIWorkloadConfigName"]
    assert name == entry_of(template)["settings"]["job"]["workload_config_name"]
    # The resource's schema: lower-case letters, digits and hyphens, at most 63.
    assert name.islower() and len(name) <= 63
    spec = json.loads(properties["AIWorkloadConfigs"]["WorkloadSpec"]["Inline"])
    assert spec == {
        "benchmark": {"type": "aiperf"},
        "parameters": {
            "prompt_input_tokens_mean": 550,
            "prompt_input_tokens_stddev": 0,
            "output_tokens_mean": 150,
            "output_tokens_stddev": 0,
            "concurrency": 8,
        },
    }


def test_a_dataset_workload_reads_its_s3_channel_at_its_concurrency() -> None:
    template = Template.from_stack(
        cdk.Stack.of(
            component(workload=AIWorkload.dataset(s3_uri="s3://data/prompts/", concurrency=4))
        )
    )
    [config] = template.find_resources("AWS::SageMaker::AIWorkloadConfig").values()
    [channel] = config["Properties"]["DatasetConfig"]["InputDataConfig"]
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == "s3://data/prompts/"
    # The concurrency the decision divides by is the one the benchmark drives.
    spec = json.loads(config["Properties"]["AIWorkloadConfigs"]["WorkloadSpec"]["Inline"])
    assert spec == {"benchmark": {"type": "aiperf"}, "parameters": {"concurrency": 4}}


def test_a_changed_workload_is_a_new_configuration_name() -> None:
    """The name and the spec are create-only: CloudFormation replaces a custom-named resource
    only under a new name."""

    def name(workload: AIWorkload) -> str:
        template = Template.from_stack(cdk.Stack.of(component(workload=workload)))
        [config] = template.find_resources("AWS::SageMaker::AIWorkloadConfig").values()
        return str(config["Properties"]["AIWorkloadConfigName"])

    tokens = {"input_tokens_mean": 550, "output_tokens_mean": 150}
    first = name(AIWorkload.tokens(concurrency=8, **tokens))
    assert name(AIWorkload.tokens(concurrency=8, **tokens)) == first
    assert name(AIWorkload.tokens(concurrency=16, **tokens)) != first


def test_an_existing_workload_config_is_not_created() -> None:
    construct = component(
        workload=AIWorkload.existing(workload_config_name="team-chat-traffic", concurrency=16)
    )
    template = Template.from_stack(cdk.Stack.of(construct))
    template.resource_count_is("AWS::SageMaker::AIWorkloadConfig", 0)
    assert construct.workload_config is None
    assert entry_of(template)["settings"]["job"]["workload_config_name"] == "team-chat-traffic"


def test_start_job_may_run_and_describe_ai_jobs_under_the_prefix_only(template: Template) -> None:
    statements = statements_of(template, "RightsizingEngineStartJob")
    [create] = [
        s for s in statements if "sagemaker:CreateAIRecommendationJob" in as_list(s["Action"])
    ]
    assert AI_JOBS in as_list(create["Resource"])
    describes = [
        s for s in statements if "sagemaker:DescribeInferenceComponent" in as_list(s["Action"])
    ]
    assert [as_list(s["Resource"]) for s in describes] == [[COMPONENT_ARN]]


def test_stop_job_may_stop_ai_jobs(template: Template) -> None:
    statements = statements_of(template, "RightsizingEngineStopJob")
    [stop] = [s for s in statements if "sagemaker:StopAIRecommendationJob" in as_list(s["Action"])]
    assert as_list(stop["Resource"]) == [AI_JOBS]


def test_the_job_role_reads_the_model_and_writes_the_results_only(template: Template) -> None:
    statements = statements_of(template, "RightsizingEngineJobRole")
    reads = [s for s in statements if as_list(s["Action"]) == ["s3:GetObject"]]
    writes = [s for s in statements if "s3:PutObject" in as_list(s["Action"])]
    assert [as_list(s["Resource"]) for s in reads] == [["arn:aws:s3:::models/llama/*"]]
    assert [as_list(s["Resource"]) for s in writes] == [["arn:aws:s3:::results/rightsizing/*"]]


def test_the_recommend_workflow_polls_an_ai_job_for_a_component(template: Template) -> None:
    states = definition(template)["States"]
    [kind_rule] = states["JobKind?"]["Choices"]
    # IsPresent first: an endpoint's settings have no kind, and a rule on a missing path
    # fails the execution (States.Runtime).
    assert kind_rule == {
        "And": [
            {"Variable": "$.settings.kind", "IsPresent": True},
            {"Variable": "$.settings.kind", "StringEquals": "inference-component"},
        ],
        "Next": "StartPollingAIJob",
    }
    poll = states["DescribeAIJob"]
    assert poll["Parameters"]["step"] == "status"
    # Done: the same slot release and decision as an IR job's.
    assert states["AIJobFinished"]["Default"] == "ReleaseJobSlot"


def test_runs_are_routed_by_endpoint_and_component(template: Template) -> None:
    fleet = load({"registry_version": 1, "endpoints": registry(dict(template.to_json()))}, {})
    routed = route_runtime.route(
        {"endpoint_name": "llm-endpoint", "inference_component_name": "llama-ic"}, fleet
    )
    assert routed["route"]["action"] == "run"
    assert routed["settings"]["inference_component_name"] == "llama-ic"
    # The endpoint's variant is no target of its own here.
    ignored = route_runtime.route(
        {"endpoint_name": "llm-endpoint", "variant_name": "AllTraffic"}, fleet
    )
    assert ignored["route"]["action"] == "ignore"


def test_apply_settings_name_the_component(template: Template) -> None:
    apply_settings = entry_of(template)["apply_settings"]
    assert apply_settings["endpoint_name"] == "llm-endpoint"
    assert apply_settings["inference_component_name"] == "llama-ic"


def test_recommend_only_has_no_apply_settings() -> None:
    construct = component(apply_mode=ApplyMode.RECOMMEND_ONLY)
    assert construct.apply_settings is None


def test_two_components_in_one_stack() -> None:
    scope = stack()
    component(scope)
    component(scope, construct_id="Mistral", inference_component_name="mistral-ic")
    template = Template.from_stack(scope)
    template.resource_count_is("AWS::SageMaker::AIWorkloadConfig", 2)
    names = {
        r["Properties"]["AIWorkloadConfigName"]
        for r in template.find_resources("AWS::SageMaker::AIWorkloadConfig").values()
    }
    assert len(names) == 2


def test_one_construct_per_component() -> None:
    scope = stack()
    component(scope)
    with pytest.raises(ValueError, match="llm-endpoint/llama-ic is already rightsized"):
        component(scope, construct_id="Again")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model_data_url": "models/llama"}, "model_data_url must be an s3://"),
        ({"output_location": "https://x"}, "output_location must be an s3://"),
        ({"peak_concurrent_requests": 0}, "peak_concurrent_requests must be a number > 0"),
        ({"min_copies": 0}, "min_copies must be a whole number, at least 1"),
        ({"hourly_prices": {"ml.g5.2xlarge": -1}}, "hourly_prices"),
        ({"inference_component_name": "bad_name"}, "inference_component_name must be"),
        ({"timeout": cdk.Duration.hours(30)}, "timeout must be from"),
        ({"approval_timeout": cdk.Duration.days(1)}, "approval_timeout is for ApplyMode.APPROVAL"),
        (
            {"job": AIRecommendationJob(instance_types=["ml.g5.xlarge"] * 4)},
            "at most 3 instance types",
        ),
        (
            {"job": AIRecommendationJob(instance_types=["ml.c5.xlarge"])},
            "'ml.c5.xlarge' is not a type AI recommendation jobs measure",
        ),
        ({"slo": "500ms"}, "slo must be a TimeToFirstTokenSlo"),
        (
            {"job": AIRecommendationJob(expected_duration=cdk.Duration.millis(500))},
            "expected_duration",
        ),
    ],
)
def test_bad_settings_are_refused_with_what_to_fix(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        component(**overrides)


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(ValueError) as raised:
        component(peak_concurrent_requests=-1, min_copies=0, output_location="nowhere")
    assert str(raised.value).count("\n  - ") == 3


def test_a_workload_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="give exactly one of"):
        component(workload=AIWorkload(concurrency=4))
    with pytest.raises(ValueError, match="concurrency must be a whole number"):
        component(workload=AIWorkload.dataset(s3_uri="s3://d/p", concurrency=0))


@pytest.mark.parametrize(
    ("slo", "percentile"),
    [
        (TimeToFirstTokenSlo.p50(cdk.Duration.millis(200)), "p50"),
        (TimeToFirstTokenSlo.p90(cdk.Duration.millis(200)), "p90"),
        (TimeToFirstTokenSlo.p99(cdk.Duration.millis(200)), "p99"),
    ],
)
def test_the_slo_percentile_is_the_one_aiperf_reports(
    slo: TimeToFirstTokenSlo, percentile: str
) -> None:
    assert slo.render() == {"metric": "ttft", "percentile": percentile, "max_latency_ms": 200}


def test_the_objective_is_the_jobs_performance_target() -> None:
    construct = component(job=AIRecommendationJob(objective=AIObjective.COST))
    assert construct.settings_document["job"]["objective"] == "cost"
