"""Run the synthesized state machines on this machine: moto's ASL interpreter, real handlers.

How it fits together (see README, "End-to-end tests"):

- the template comes from ``Template.from_stack`` of a real construct; its state machine
  definition is resolved to local ARNs (functions, topic, bus) and created in moto with
  ``stepfunctions.execute_state_machine`` on, so moto's interpreter (ported from LocalStack)
  executes it state by state, Wait states included;
- everything is served at the HTTP layer (where moto answers mocked requests), so botocore
  serializes, parses and retries exactly as in production;
- Lambda tasks: ``Invoke`` runs the function's handler (from the template's ``Handler``)
  in-process and reports an exception as Lambda does (``X-Amz-Function-Error``, a body with
  ``errorType``/``errorMessage``), so Retry/Catch see the handler's real error names;
- AWS calls go to moto where it implements them (SageMaker endpoints and configs, SNS, SQS,
  EventBridge); the IR job APIs, which moto lacks, go to :class:`InferenceRecommenderStandIn`,
  which validates every request against botocore's model and moves jobs through realistic states,
  and the AI recommendation job and workload config APIs to :class:`AiRecommendationStandIn`,
  alike;
- :meth:`LocalAws.fail_next` makes the next matching call(s) answer with an AWS error
  (throttling, say): the handlers' clients retry it as configured, a state's Retry sees it.
"""

from __future__ import annotations

import copy
import importlib
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from unittest.mock import patch
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import botocore.session
from botocore.awsrequest import AWSPreparedRequest
from botocore.validate import validate_parameters
from jsonpath_ng.ext import parse as jsonpath_parse
from moto import mock_aws
from moto.applicationautoscaling import models as autoscaling_models
from moto.applicationautoscaling import responses as autoscaling_responses
from moto.applicationautoscaling.models import applicationautoscaling_backends
from moto.cloudwatch.models import Statistics
from moto.core.models import botocore_stubber
from moto.events.utils import EventTemplateParser
from moto.sagemaker.models import sagemaker_backends
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk as aws_sdk_task,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_sfn as sfn_task,
)
from rightsizing_runtime.aws import CLIENT_CONFIG

from rightsizing_constructs.registry import REGISTRY_FILES
from tests.infra import ACCOUNT, REGION, registry

_SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")
# In-process Lambda invocations run one at a time, in this process, whichever test's stand-in
# runs them (as the stand-ins were written for; each has its own environment, below).
_INVOKING = threading.RLock()


class LambdaEnvironment(MutableMapping[str, str]):
    """``os.environ`` as each in-process Lambda sees it: its own variables over the process's.

    A function's configured environment is set for the invoking thread only (:meth:`of`), so
    nothing else in the process, a concurrent execution or whatever resets ``os.environ``,
    can take it away while the handler runs; writes go to the process environment.
    """

    def __init__(self, process: MutableMapping[str, str]) -> None:
        self.process = process
        self._local = threading.local()

    @contextmanager
    def of(self, variables: dict[str, str]) -> Iterator[None]:
        """The function's ``variables`` for this thread while the block runs."""
        outer = self._variables()
        self._local.variables = {**outer, **variables}
        try:
            yield
        finally:
            self._local.variables = outer

    def _variables(self) -> dict[str, str]:
        return getattr(self._local, "variables", {})

    def __getitem__(self, name: str) -> str:
        variables = self._variables()
        return variables[name] if name in variables else self.process[name]

    def __setitem__(self, name: str, value: str) -> None:
        self.process[name] = value

    def __delitem__(self, name: str) -> None:
        del self.process[name]

    def __iter__(self) -> Iterator[str]:
        return iter({**self.process, **self._variables()})

    def __len__(self) -> int:
        return len({**self.process, **self._variables()})

    def copy(self) -> dict[str, str]:
        """A plain copy, as ``os.environ.copy()`` gives."""
        return dict(self)


#: How long leaving the mock waits for executions still running (Apply runs that a Recommend
#: run started, say) before stopping them.
_DRAIN_SECONDS = 60.0
_HANDLER_MODULES = (
    "route",
    "start_job",
    "job_slots",
    "select_recommendation",
    "stop_job",
    "apply_steps",
)
_HANDLER_CLIENTS = {
    "sagemaker": "sagemaker",
    "autoscaling": "application-autoscaling",
    "dynamodb": "dynamodb",
    "ssm": "ssm",
    "cloudwatch": "cloudwatch",  # StartJob's, for a measured peak
    "ec2": "ec2",  # ApplyStep's, GPUs per instance of an inference component's type
}
#: The model package groups the tests' endpoints and approvals name, with versions 1 to
#: ``MODEL_PACKAGE_VERSIONS`` in moto (DescribeModelPackage: Prepare's model fingerprint).
MODEL_PACKAGE_GROUPS = ("fraud-scoring", "fleet-models", "models-auto", "models-notify")
MODEL_PACKAGE_VERSIONS = 5
# X-Amz-Target prefixes of JSON-protocol services -> botocore service names.
_JSON_PREFIXES = {
    "SageMaker": "sagemaker",
    "AWSEvents": "events",
    "AWSStepFunctions": "states",
    "AnyScaleFrontendService": "application-autoscaling",
    "DynamoDB_20120810": "dynamodb",
}


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


# What moto's request processor returns: status, headers, body.
HttpResponse = tuple[int, dict[str, str], bytes]


def _http(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    return status, headers or {}, body


def _reply(parsed: dict[str, Any]) -> HttpResponse:
    """A JSON-protocol (SageMaker) success response."""
    return _http(json.dumps(parsed, default=str).encode())


def _error(code: str, message: str) -> HttpResponse:
    """A JSON-protocol error response, as SageMaker sends it."""
    body = json.dumps({"__type": code, "message": message}).encode()
    return _http(body, 400, {"x-amzn-RequestId": "local-request"})


@dataclass
class Job:
    """One IR job of the stand-in."""

    request: dict[str, Any]
    status: str = "IN_PROGRESS"
    describes: int = 0
    #: When the job ended (epoch seconds): set when it ends, or by a test (an older job).
    completed_at: float | None = None


@dataclass
class InferenceRecommenderStandIn:
    """CreateInferenceRecommendationsJob, Describe..., Stop... as IR behaves, validated by botocore.

    A job stays IN_PROGRESS for ``polls_before_done`` describes, then ends as ``outcome``:
    ``COMPLETED`` with ``recommendations``, or ``FAILED`` with ``failure_reason``. With
    ``polls_before_done=None`` it never finishes (until stopped).
    """

    recommendations: list[dict[str, Any]] = field(default_factory=list)
    outcome: str = "COMPLETED"
    failure_reason: str = "ResourceLimitExceeded: the account quota for ml.c5.xlarge endpoints"
    polls_before_done: int | None = 2
    jobs: dict[str, Job] = field(default_factory=dict)
    #: The most jobs that were running (PENDING or IN_PROGRESS) at once.
    most_running: int = 0

    def handle(self, operation: str, params: dict[str, Any]) -> HttpResponse:
        validate_parameters(params, _SAGEMAKER.operation_model(operation).input_shape)
        if operation == "GetScalingConfigurationRecommendation":
            return self._scaling(params)
        name = params["JobName"]
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:inference-recommendations-job/{name}"
        job = self.jobs.get(name)
        if operation == "CreateInferenceRecommendationsJob":
            if job is not None:
                return _error("ResourceInUse", f"Job {name} already exists")
            self.jobs[name] = Job(request=params)
            running = [j for j in self.jobs.values() if j.status in ("PENDING", "IN_PROGRESS")]
            self.most_running = max(self.most_running, len(running))
            return _reply({"JobArn": arn})
        if job is None:
            return _error("ResourceNotFound", f"Job {name} does not exist")
        if operation == "StopInferenceRecommendationsJob":
            if job.status not in ("PENDING", "IN_PROGRESS"):
                return _error("ValidationException", f"Job {name} is {job.status}")
            job.status = "STOPPED"
            return _reply({})
        job.describes += 1
        done = self.polls_before_done is not None and job.describes > self.polls_before_done
        if job.status == "IN_PROGRESS" and done:
            job.status = self.outcome
            job.completed_at = round(time.time(), 3)
        return _reply(self._description(name, arn, job))

    def _scaling(self, params: dict[str, Any]) -> HttpResponse:
        """IR's target-tracking advice for a completed job's recommendation: half the measured
        MaxInvocations per instance (the shape of botocore's output; the value is IR's to pick)."""
        job = self.jobs.get(params["InferenceRecommendationsJobName"])
        if job is None or job.status != "COMPLETED":
            return _error("ResourceNotFound", "no completed job of that name")
        [recommendation] = [
            r for r in self.recommendations if r["RecommendationId"] == params["RecommendationId"]
        ]
        return _reply(
            {
                "InferenceRecommendationsJobName": params["InferenceRecommendationsJobName"],
                "RecommendationId": params["RecommendationId"],
                "DynamicScalingConfiguration": {
                    "MinCapacity": 1,
                    "MaxCapacity": 10,
                    "ScaleInCooldown": 300,
                    "ScaleOutCooldown": 300,
                    "ScalingPolicies": [
                        {
                            "TargetTracking": {
                                "MetricSpecification": {
                                    "Predefined": {
                                        "PredefinedMetricType": (
                                            "SageMakerVariantInvocationsPerInstance"
                                        )
                                    }
                                },
                                "TargetValue": recommendation["Metrics"]["MaxInvocations"] / 2,
                            }
                        }
                    ],
                },
            }
        )

    def _description(self, name: str, arn: str, job: Job) -> dict[str, Any]:
        now = round(time.time(), 3)
        description: dict[str, Any] = {
            "JobName": name,
            "JobType": job.request["JobType"],
            "JobArn": arn,
            "RoleArn": job.request["RoleArn"],
            "Status": job.status,
            "CreationTime": now,
            "LastModifiedTime": now,
            "InputConfig": job.request["InputConfig"],
        }
        if job.completed_at is not None:
            description["CompletionTime"] = job.completed_at
        if job.status == "COMPLETED":
            description["InferenceRecommendations"] = self.recommendations
        if job.status == "FAILED":
            description["FailureReason"] = self.failure_reason
        return description


@dataclass
class AiJob:
    """One AI recommendation job of :class:`AiRecommendationStandIn`."""

    request: dict[str, Any]
    created_at: float
    status: str = "InProgress"
    describes: int = 0
    ended_at: float | None = None


@dataclass
class AiRecommendationStandIn:
    """CreateAIRecommendationJob, Describe..., Stop... and the AI workload configs, as SageMaker
    behaves (issue #17: moto has none of them), every request validated by botocore's model.

    A job is ``InProgress`` for ``polls_before_done`` describes, then ends as ``outcome``:
    ``Completed`` with ``recommendations`` (``DescribeAIRecommendationJob``'s
    ``Recommendations``, set by the test), or ``Failed`` with ``failure_reason``; with
    ``polls_before_done=None`` it never ends until stopped. A stopped job is ``Stopping`` until
    its next describe, then ``Stopped`` (``AIRecommendationJobStatus``'s values in botocore).
    With ``require_workload_config``, a job naming a workload config this stand-in has not
    created is ResourceNotFound (a template's AWS::SageMaker::AIWorkloadConfig is not created
    here, so it is off by default).
    """

    recommendations: list[dict[str, Any]] = field(default_factory=list)
    outcome: str = "Completed"
    failure_reason: str = "Insufficient capacity for ml.g6.2xlarge in us-east-1"
    polls_before_done: int | None = 2
    require_workload_config: bool = False
    jobs: dict[str, AiJob] = field(default_factory=dict)
    workload_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The most jobs that were running (InProgress or Stopping) at once.
    most_running: int = 0

    def handle(self, operation: str, params: dict[str, Any]) -> HttpResponse:
        """Answer one operation; its request is validated against botocore's input shape."""
        validate_parameters(params, _SAGEMAKER.operation_model(operation).input_shape)
        if "AIWorkloadConfig" in operation:
            return self._workload_config(operation, params)
        name = params["AIRecommendationJobName"]
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:ai-recommendation-job/{name}"
        job = self.jobs.get(name)
        if operation == "CreateAIRecommendationJob":
            if job is not None:
                return _error("ResourceInUse", f"AI recommendation job {name} already exists")
            workload = params["AIWorkloadConfigIdentifier"].rsplit("/", 1)[-1]
            if self.require_workload_config and workload not in self.workload_configs:
                return _error("ResourceNotFound", f"AI workload config {workload} not found")
            self.jobs[name] = AiJob(request=params, created_at=round(time.time(), 3))
            running = [j for j in self.jobs.values() if j.status in ("InProgress", "Stopping")]
            self.most_running = max(self.most_running, len(running))
            return _reply({"AIRecommendationJobArn": arn})
        if job is None:
            return _error("ResourceNotFound", f"AI recommendation job {name} does not exist")
        if operation == "StopAIRecommendationJob":
            if job.status != "InProgress":
                return _error(
                    "ValidationException", f"AI recommendation job {name} is {job.status}"
                )
            job.status = "Stopping"
            return _reply({"AIRecommendationJobArn": arn})
        assert operation == "DescribeAIRecommendationJob", operation
        job.describes += 1
        if job.status == "Stopping":
            job.status, job.ended_at = "Stopped", round(time.time(), 3)
        done = self.polls_before_done is not None and job.describes > self.polls_before_done
        if job.status == "InProgress" and done:
            job.status, job.ended_at = self.outcome, round(time.time(), 3)
        return _reply(self._description(name, arn, job))

    def _workload_config(self, operation: str, params: dict[str, Any]) -> HttpResponse:
        name = params["AIWorkloadConfigName"]
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:ai-workload-config/{name}"
        if operation == "CreateAIWorkloadConfig":
            if name in self.workload_configs:
                return _error("ResourceInUse", f"AI workload config {name} already exists")
            self.workload_configs[name] = {**params, "CreationTime": round(time.time(), 3)}
            return _reply({"AIWorkloadConfigArn": arn})
        if operation == "DescribeAIWorkloadConfig":
            if name not in self.workload_configs:
                return _error("ResourceNotFound", f"AI workload config {name} not found")
            return _reply({**self.workload_configs[name], "AIWorkloadConfigArn": arn})
        return _error("ValidationException", f"the stand-in does not answer {operation}")

    def _description(self, name: str, arn: str, job: AiJob) -> dict[str, Any]:
        request = job.request
        output = {
            key: request["OutputConfig"][key]
            for key in ("S3OutputLocation", "ModelPackageGroupIdentifier", "MlflowConfig")
            if key in request["OutputConfig"]
        }
        description: dict[str, Any] = {
            "AIRecommendationJobName": name,
            "AIRecommendationJobArn": arn,
            "AIRecommendationJobStatus": job.status,
            "ModelSource": request["ModelSource"],
            "OutputConfig": output,
            "AIWorkloadConfigIdentifier": request["AIWorkloadConfigIdentifier"],
            "PerformanceTarget": request["PerformanceTarget"],
            "RoleArn": request["RoleArn"],
            "CreationTime": job.created_at,
            "StartTime": job.created_at,
        }
        for key in ("InferenceSpecification", "OptimizeModel", "ComputeSpec", "Tags"):
            if key in request:
                description[key] = request[key]
        if job.ended_at is not None:
            description["EndTime"] = job.ended_at
        if job.status == "Completed":
            description["Recommendations"] = self.recommendations
        if job.status == "Failed":
            description["FailureReason"] = self.failure_reason
        return description


@dataclass
class EndpointUpdateStandIn:
    """UpdateEndpoint, which moto lacks, on moto's own endpoints, as SageMaker behaves.

    The endpoint is Updating for ``polls_before_done`` DescribeEndpoint calls, then ends as
    ``outcome``: ``InService`` on the new config, ``RolledBack`` (InService on the previous config,
    with a FailureReason, as after a failed blue/green update) or ``Failed``. Like SageMaker, it
    rejects an update that changes the instance type of a variant registered with Application
    Auto Scaling (AWS_NOTES.md).
    """

    outcome: str = "InService"
    polls_before_done: int = 1
    failure_reason: str = "Auto-rollback alarm fraud-scoring-5xx went off during the update"
    updates: list[dict[str, Any]] = field(default_factory=list)
    describes: int = 0

    def update(self, params: dict[str, Any]) -> HttpResponse:
        validate_parameters(params, _SAGEMAKER.operation_model("UpdateEndpoint").input_shape)
        backend = sagemaker_backends[ACCOUNT][REGION]
        endpoint = backend.endpoints.get(params["EndpointName"])
        if endpoint is None:
            return _error(
                "ValidationException", f"Could not find endpoint {params['EndpointName']}"
            )
        if endpoint.endpoint_status != "InService":
            return _error("ValidationException", f"Endpoint is {endpoint.endpoint_status}")
        new = backend.endpoint_configs.get(params["EndpointConfigName"])
        if new is None:
            return _error("ValidationException", "Could not find endpoint configuration")
        old = backend.endpoint_configs[endpoint.endpoint_config_name]
        targets = applicationautoscaling_backends[ACCOUNT][REGION].targets
        registered = targets.get("sagemaker:variant:DesiredInstanceCount", {})
        for variant in new.production_variants:
            before = next(
                (v for v in old.production_variants if v["VariantName"] == variant["VariantName"]),
                None,
            )
            resource = f"endpoint/{endpoint.endpoint_name}/variant/{variant['VariantName']}"
            if (
                before is not None
                and before.get("InstanceType") != variant.get("InstanceType")
                and resource in registered
            ):
                return _error(
                    "ValidationException",
                    "The variant(s) are configured with autoscaling. Deregister the scalable "
                    "targets before changing their instance type.",
                )
        self.updates.append({"params": params, "previous": endpoint.endpoint_config_name})
        endpoint.endpoint_status = "Updating"
        self.describes = 0
        return _reply({"EndpointArn": endpoint.arn})

    def observe_describe(self, params: dict[str, Any]) -> None:
        """Move an updating endpoint on, before moto answers DescribeEndpoint."""
        endpoint = sagemaker_backends[ACCOUNT][REGION].endpoints.get(params.get("EndpointName"))
        if endpoint is None or endpoint.endpoint_status != "Updating" or not self.updates:
            return
        self.describes += 1
        if self.describes <= self.polls_before_done:
            return
        update = self.updates[-1]
        if self.outcome == "InService":
            endpoint.endpoint_config_name = update["params"]["EndpointConfigName"]
            endpoint.endpoint_status = "InService"
        elif self.outcome == "RolledBack":
            endpoint.endpoint_status = "InService"
            endpoint.failure_reason = self.failure_reason
        else:
            endpoint.endpoint_status = "Failed"
            endpoint.failure_reason = self.failure_reason


@dataclass
class Component:
    """One inference component of the stand-in, as SageMaker keeps it."""

    endpoint_name: str
    variant_name: str
    #: The specification as requested (``InferenceComponentSpecification``).
    specification: dict[str, Any]
    copy_count: int
    status: str = "InService"
    failure_reason: str | None = None
    #: The update under way (UpdateInferenceComponent's parameters).
    pending: dict[str, Any] | None = None
    created: float = field(default_factory=lambda: round(time.time(), 3))


@dataclass
class InferenceComponentStandIn:
    """The inference component APIs, which moto lacks, as SageMaker behaves; botocore-validated.

    CreateInferenceComponent (test set-up; on a moto endpoint), DescribeInferenceComponent,
    UpdateInferenceComponent and UpdateInferenceComponentRuntimeConfig. An update leaves the IC
    ``Updating`` for ``polls_before_done`` describes, then ends as ``outcome``: ``InService`` on
    the requested specification and copies, ``RolledBack`` (InService on the previous ones, with
    a FailureReason, as after a rolling update stopped by its alarms) or ``Failed`` (status
    Failed, the previous configuration kept). An update of an IC that is not InService is
    refused, as SageMaker refuses it.
    """

    OPERATIONS = (
        "CreateInferenceComponent",
        "DescribeInferenceComponent",
        "UpdateInferenceComponent",
        "UpdateInferenceComponentRuntimeConfig",
    )

    outcome: str = "InService"
    polls_before_done: int = 1
    failure_reason: str = "Rolling update stopped: alarm llm-ttft went off; rolled back"
    components: dict[str, Component] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    describes: int = 0

    def handle(self, operation: str, params: dict[str, Any]) -> HttpResponse:
        validate_parameters(params, _SAGEMAKER.operation_model(operation).input_shape)
        name = params["InferenceComponentName"]
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:inference-component/{name.lower()}"
        component = self.components.get(name)
        if operation == "CreateInferenceComponent":
            if component is not None:
                return _error("ValidationException", f"Inference component {name} exists")
            if params["EndpointName"] not in sagemaker_backends[ACCOUNT][REGION].endpoints:
                return _error("ValidationException", "Could not find endpoint")
            self.components[name] = Component(
                endpoint_name=params["EndpointName"],
                variant_name=params.get("VariantName", "AllTraffic"),
                specification=params["Specification"],
                copy_count=params["RuntimeConfig"]["CopyCount"],
            )
            return _reply({"InferenceComponentArn": arn})
        if component is None:
            return _error("ValidationException", f"Could not find inference component {name}")
        if operation == "DescribeInferenceComponent":
            self._advance(component)
            return _reply(self._description(name, arn, component))
        if component.status != "InService":
            return _error(
                "ValidationException",
                f"Inference component {name} is {component.status}; it cannot be updated",
            )
        if operation == "UpdateInferenceComponentRuntimeConfig":
            component.copy_count = params["DesiredRuntimeConfig"]["CopyCount"]
            return _reply({"InferenceComponentArn": arn})
        self.updates.append(params)
        component.pending = params
        component.status = "Updating"
        component.failure_reason = None
        self.describes = 0
        return _reply({"InferenceComponentArn": arn})

    def _advance(self, component: Component) -> None:
        """Move an updating IC on, as SageMaker's rolling update would."""
        if component.status != "Updating" or component.pending is None:
            return
        self.describes += 1
        if self.describes <= self.polls_before_done:
            return
        update, component.pending = component.pending, None
        if self.outcome == "InService":
            if "Specification" in update:
                component.specification = update["Specification"]
            component.copy_count = update["RuntimeConfig"]["CopyCount"]
            component.status = "InService"
        elif self.outcome == "RolledBack":
            component.status = "InService"
            component.failure_reason = self.failure_reason
        else:
            component.status = "Failed"
            component.failure_reason = self.failure_reason

    @staticmethod
    def _description(name: str, arn: str, component: Component) -> dict[str, Any]:
        specification = copy.deepcopy(component.specification)
        container = specification.pop("Container", None)
        if container is not None:
            image = container.pop("Image", None)
            if image is not None:
                container["DeployedImage"] = {
                    "SpecifiedImage": image,
                    "ResolvedImage": f"{image}@sha256:{'0' * 64}",
                    "ResolutionTime": component.created,
                }
            specification["Container"] = container
        description: dict[str, Any] = {
            "InferenceComponentName": name,
            "InferenceComponentArn": arn,
            "EndpointName": component.endpoint_name,
            "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/"
            + component.endpoint_name.lower(),
            "VariantName": component.variant_name,
            "Specification": specification,
            "RuntimeConfig": {
                "DesiredCopyCount": component.copy_count,
                "CurrentCopyCount": component.copy_count,
            },
            "CreationTime": component.created,
            "LastModifiedTime": round(time.time(), 3),
            "InferenceComponentStatus": component.status,
        }
        if component.failure_reason:
            description["FailureReason"] = component.failure_reason
        return description


@dataclass
class Injected:
    """An AWS error to return, ``times`` times, instead of calling ``service.operation``."""

    service: str
    operation: str
    code: str
    times: int = 1
    #: Calls to let through first (the third DescribeInferenceComponent of a run, say).
    skip: int = 0


class LocalAws:
    """The local stand-in for an AWS account: moto, the IR stand-in, in-process Lambdas."""

    def __init__(
        self,
        ir: InferenceRecommenderStandIn,
        updates: EndpointUpdateStandIn,
        ai: AiRecommendationStandIn | None = None,
        components: InferenceComponentStandIn | None = None,
    ) -> None:
        self.ir = ir
        self.updates = updates
        self.ai = ai or AiRecommendationStandIn()
        self.components = components or InferenceComponentStandIn()
        self.injected: list[Injected] = []
        self.calls: list[tuple[str, str]] = []
        #: Function ARN -> (handler, environment variables).
        self.functions: dict[str, tuple[Callable[[dict[str, Any], Any], Any], dict[str, str]]] = {}

    def fail_next(
        self, service: str, operation: str, code: str, times: int = 1, *, skip: int = 0
    ) -> None:
        """Make the next ``times`` calls of ``service.operation`` fail with ``code``, after
        letting ``skip`` calls through."""
        self.injected.append(Injected(service, operation, code, times, skip))

    def stop_failing(self) -> None:
        """Forget the failures not used up yet (before a test reads the outcome back)."""
        self.injected.clear()

    def serve(self, request: AWSPreparedRequest) -> HttpResponse | None:
        """Answer an HTTP request that moto would answer; None lets moto answer it."""
        service, operation = self._operation(request)
        self.calls.append((service, operation))
        for injected in self.injected:
            if (injected.service, injected.operation) == (service, operation) and injected.times:
                if injected.skip:
                    injected.skip -= 1
                    continue
                injected.times -= 1
                if target_json(request):
                    return _error(injected.code, f"injected {injected.code}")
                return _query_error(injected.code, f"injected {injected.code}")
        if service == "lambda" and operation == "Invoke":
            return self._invoke(request)
        params = json.loads(request.body or b"{}") if target_json(request) else {}
        if service == "sagemaker" and (
            "InferenceRecommendationsJob" in operation
            or operation == "GetScalingConfigurationRecommendation"
        ):
            return self.ir.handle(operation, params)
        if service == "sagemaker" and (
            "AIRecommendationJob" in operation or "AIWorkloadConfig" in operation
        ):
            return self.ai.handle(operation, params)
        if service == "sagemaker" and operation == "UpdateEndpoint":
            return self.updates.update(params)
        if service == "sagemaker" and operation in InferenceComponentStandIn.OPERATIONS:
            return self.components.handle(operation, params)
        if service == "sagemaker" and operation == "DescribeEndpoint":
            self.updates.observe_describe(params)
        if service == "application-autoscaling" and operation == "DeregisterScalableTarget":
            _delete_policies(params)
        return None  # moto serves it

    @staticmethod
    def _operation(request: AWSPreparedRequest) -> tuple[str, str]:
        target = request.headers.get("X-Amz-Target")
        if target:  # JSON protocol: "SageMaker.DescribeEndpoint"
            prefix, _, operation = _text(target).partition(".")
            return _JSON_PREFIXES.get(prefix, prefix.lower()), operation
        host = urlsplit(request.url).hostname or ""
        service = host.split(".")[0]
        if service == "lambda" and request.url.endswith("/invocations"):
            return "lambda", "Invoke"
        # Query protocol (SNS, SQS...): the operation is the form body's Action.
        body = _text(request.body or b"") if isinstance(request.body, bytes | str) else ""
        action = parse_qs(body).get("Action", [request.method or ""])[0]
        return service, action

    def _invoke(self, request: AWSPreparedRequest) -> HttpResponse:
        function_arn = unquote(urlsplit(request.url).path.split("/")[3])
        function, environment = self.functions[function_arn]
        event = json.loads(request.body or b"{}")
        headers = {"X-Amz-Executed-Version": "$LATEST"}
        assert isinstance(os.environ, LambdaEnvironment), "invoked outside local_aws()"
        # Concurrent executions invoke from several threads: one invocation at a time, each
        # with its function's configured environment.
        with _INVOKING, os.environ.of(environment):
            try:
                result = function(event, None)
            except Exception as error:  # reported as Lambda reports an unhandled error
                result = {"errorType": type(error).__name__, "errorMessage": str(error)}
                headers["X-Amz-Function-Error"] = "Unhandled"
        return _http(json.dumps(result).encode(), 200, headers)

    def calls_of(self, service: str, operation: str) -> int:
        """How many times ``service.operation`` was called (injected failures included)."""
        return self.calls.count((service, operation))


def _query_error(code: str, message: str) -> HttpResponse:
    """A query-protocol (SNS, SQS) error response: XML."""
    body = (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
        f"<Message>{message}</Message></Error><RequestId>local</RequestId></ErrorResponse>"
    )
    return _http(body.encode(), 400, {"x-amzn-RequestId": "local-request"})


def target_json(request: AWSPreparedRequest) -> bool:
    """Whether the request is a JSON-protocol call (its body is the API parameters)."""
    return bool(request.headers.get("X-Amz-Target"))


def _delete_policies(params: dict[str, Any]) -> None:
    """Deregistering a scalable target deletes its scaling policies in AWS; moto keeps them."""
    backend = applicationautoscaling_backends[ACCOUNT][REGION]
    for key, policy in list(backend.policies.items()):
        if (policy.resource_id, policy.scalable_dimension) == (
            params["ResourceId"],
            params["ScalableDimension"],
        ):
            del backend.policies[key]


def _compress_retries(definition: dict[str, Any]) -> dict[str, Any]:
    """Every Retry waits 1 second between attempts instead of its interval and backoff.

    moto's interpreter really sleeps; the retry logic (which errors, how many attempts) is
    unchanged, only the clock is compressed so a test of many retries takes seconds.
    """
    for state in definition["States"].values():
        for retrier in state.get("Retry", []):
            retrier["IntervalSeconds"] = 1
            retrier["BackoffRate"] = 1
    return definition


def _create_table(name: str, properties: dict[str, Any]) -> None:
    """A DynamoDB table in moto with the template's keys."""
    boto3.client("dynamodb").create_table(
        TableName=name,
        KeySchema=properties["KeySchema"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
    )


def _sfn_parameters(normalise: Callable[..., None]) -> Callable[..., None]:
    """moto's Step Functions integration calls StartExecution with the ASL's parameter names
    (``StateMachineArn``, ``Input``), which botocore's model spells ``stateMachineArn``,
    ``input``; AWS maps them. This maps them as AWS does, after moto's own normalisation."""

    def normalised(self: Any, parameters: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        normalise(self, parameters, *args, **kwargs)
        for key in list(parameters):
            parameters[key[0].lower() + key[1:]] = parameters.pop(key)

    return normalised


def _transform_input(
    input_template: str | None, input_paths_map: dict[str, Any], event: dict[str, Any]
) -> dict[str, Any]:
    """EventBridge's input transformer, as AWS applies it.

    moto inserts a string value bare wherever its placeholder is; AWS inserts it as a JSON
    string when the placeholder stands outside quotes (``{"source": <source>}``, as CDK renders
    ``EventField`` values), and its text when inside them. Only templates with paths get here.
    """
    if not input_template:
        return event
    values = {"aws.events.event.json": event}
    for name, path in input_paths_map.items():
        matches = jsonpath_parse(path).find(event)
        values[name] = matches[0].value if matches else None
    rendered = input_template
    for name, value in values.items():
        quoted = value if isinstance(value, str) else json.dumps(value)
        rendered = rendered.replace(f'"<{name}>"', json.dumps(quoted))
        rendered = rendered.replace(f"<{name}>", json.dumps(value))
    return dict(json.loads(rendered))


def _drain_executions(limit: float) -> None:
    """Wait up to ``limit`` seconds for every running execution to end; stop those that do not."""
    sfn = boto3.client("stepfunctions")
    deadline = time.monotonic() + limit
    while True:
        running = [
            execution["executionArn"]
            for machine in sfn.list_state_machines()["stateMachines"]
            for execution in sfn.list_executions(
                stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
            )["executions"]
        ]
        if not running:
            return
        if time.monotonic() > deadline:
            for arn in running:
                sfn.stop_execution(executionArn=arn, cause="the test ended")
            return
        time.sleep(0.2)


#: moto 5.2's Application Auto Scaling validates ScalableDimension against its own enum, which
#: lacks ``sagemaker:inference-component:DesiredCopyCount`` (botocore's has it): the same enum
#: with that one member added, for the tests' run only. Nothing else in moto's handling changes
#: (it derives the resource type ``inference-component`` from the ResourceId as AWS does).
_AUTOSCALING_DIMENSIONS = Enum(  # type: ignore[misc]
    "ScalableDimensionValueSet",
    {
        **{d.name: d.value for d in autoscaling_models.ScalableDimensionValueSet},
        "SAGEMAKER_INFERENCE_COMPONENT_DESIRED_COPY_COUNT": (
            "sagemaker:inference-component:DesiredCopyCount"
        ),
    },
)


@contextmanager
def local_aws(
    ir: InferenceRecommenderStandIn,
    updates: EndpointUpdateStandIn | None = None,
    ai: AiRecommendationStandIn | None = None,
    components: InferenceComponentStandIn | None = None,
) -> Iterator[LocalAws]:
    """moto with state machine execution on, and the stand-ins answering first."""
    aws = LocalAws(ir, updates or EndpointUpdateStandIn(), ai, components)
    # Assigning os.environ (not changing the process's variables): handlers read the module
    # attribute at call time, so each sees its own variables over the process's.
    with (
        patch.object(os, "environ", LambdaEnvironment(os.environ)),
        patch.object(autoscaling_models, "ScalableDimensionValueSet", _AUTOSCALING_DIMENSIONS),
        patch.object(autoscaling_responses, "ScalableDimensionValueSet", _AUTOSCALING_DIMENSIONS),
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
    ):
        boto3.setup_default_session(region_name=REGION)
        assert boto3.DEFAULT_SESSION is not None
        sfn_normalise = sfn_task.StateTaskServiceSfn._normalise_parameters
        sfn_task.StateTaskServiceSfn._normalise_parameters = _sfn_parameters(sfn_normalise)  # type: ignore[method-assign]
        moto_transform = EventTemplateParser.parse
        EventTemplateParser.parse = staticmethod(_transform_input)  # type: ignore[method-assign]
        # Step Functions' exception prefix for SageMaker SDK integrations ("AWS SDK service
        # integrations", its table): errors are SageMaker.<Shape>Exception when SageMaker models
        # them, SageMaker.SageMakerException otherwise (throttling, 5xx), as moto names them.
        aws_sdk_task._SERVICE_ERROR_NAMES.setdefault("sagemaker", "SageMaker")
        # moto answers every mocked HTTP request in one place; answer first, then defer to it.
        moto_answer = botocore_stubber.process_request
        botocore_stubber.process_request = lambda request: (  # type: ignore[method-assign]
            aws.serve(request) or moto_answer(request)
        )
        register_model_packages()
        moto_statistic = Statistics.get_statistics_for_type
        Statistics.get_statistics_for_type = _with_percentiles(moto_statistic)  # type: ignore[method-assign]
        runtime = [importlib.import_module(f"rightsizing_runtime.{m}") for m in _HANDLER_MODULES]
        saved: list[tuple[Any, str, Any]] = []
        # The handlers' module-level clients were made outside the mock: give them new ones,
        # configured as in production (retries included).
        for module in runtime:
            for attribute, service in _HANDLER_CLIENTS.items():
                if hasattr(module, attribute):
                    saved.append((module, attribute, getattr(module, attribute)))
                    setattr(module, attribute, boto3.client(service, config=CLIENT_CONFIG))
        try:
            yield aws
        finally:
            # An execution left running (an Apply run a Recommend run started) would go on
            # calling AWS after the mock is gone: let it end here, or stop it.
            _drain_executions(_DRAIN_SECONDS)
            del botocore_stubber.process_request  # back to the class's method
            EventTemplateParser.parse = moto_transform  # type: ignore[method-assign]
            Statistics.get_statistics_for_type = moto_statistic  # type: ignore[method-assign]
            sfn_task.StateTaskServiceSfn._normalise_parameters = sfn_normalise  # type: ignore[method-assign]
            for module, attribute, client in saved:
                setattr(module, attribute, client)
            boto3.DEFAULT_SESSION = None


_PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?)")


def _with_percentiles(
    statistic: Callable[[Statistics, str], Any],
) -> Callable[[Statistics, str], Any]:
    """moto's statistics, plus CloudWatch's percentile statistics (``p99``...), which it lacks:
    the nearest-rank percentile of the period's values (a test puts one value per minute)."""

    def with_percentiles(self: Statistics, stat: str) -> Any:
        match = _PERCENTILE.fullmatch(stat)
        if match is None:
            return statistic(self, stat)
        values = sorted(self.metric_single_values_list)
        if not values:
            return None
        rank = max(1, math.ceil(float(match.group(1)) / 100 * len(values)))
        return values[rank - 1]

    return with_percentiles


def register_model_packages() -> None:
    """The tests' model package versions, in moto's model registry.

    Each version's container names the version in its image tag, so versions differ.
    """
    sagemaker = boto3.client("sagemaker")
    for group in MODEL_PACKAGE_GROUPS:
        sagemaker.create_model_package_group(ModelPackageGroupName=group)
        for version in range(1, MODEL_PACKAGE_VERSIONS + 1):
            sagemaker.create_model_package(
                ModelPackageGroupName=group,
                InferenceSpecification={
                    "Containers": [
                        {"Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{group}:{version}"}
                    ],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
            )


def resolve(value: Any, refs: dict[str, str], arns: dict[str, str]) -> Any:
    """CloudFormation intrinsics to local values: ``Ref`` from ``refs``, ``GetAtt Arn`` from
    ``arns``, pseudo parameters to the test account and region."""
    pseudo = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
    if isinstance(value, dict):
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(str(resolve(p, refs, arns)) for p in parts)
        if "Ref" in value:
            return pseudo.get(value["Ref"]) or refs[value["Ref"]]
        if "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            assert attribute == "Arn", value
            return arns[logical_id]
        return {k: resolve(v, refs, arns) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, refs, arns) for v in value]
    return value


@dataclass
class Execution:
    """A finished execution: status, error, cause, output, and the history of states."""

    status: str
    error: str | None
    cause: str | None
    output: dict[str, Any] | None
    states: list[str]


class LocalStack:
    """The synthesized stack's workflow resources, deployed into moto."""

    def __init__(self, aws: LocalAws, template: dict[str, Any]) -> None:
        self.aws = aws
        self._delivered = 0
        self.resources = template["Resources"]
        self.sfn = boto3.client("stepfunctions")
        self.events = boto3.client("events")
        self.sqs = boto3.client("sqs")
        refs: dict[str, str] = {}
        arns: dict[str, str] = {}
        for logical_id, resource in self.resources.items():
            kind = resource["Type"]
            if kind == "AWS::SNS::Topic":
                refs[logical_id] = boto3.client("sns").create_topic(Name=logical_id)["TopicArn"]
            elif kind == "AWS::DynamoDB::Table":
                _create_table(logical_id, resource["Properties"])
                refs[logical_id] = logical_id
                arns[logical_id] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{logical_id}"
            elif kind == "AWS::Lambda::Function":
                arns[logical_id] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical_id}"
            elif kind == "AWS::IAM::Role":
                arns[logical_id] = f"arn:aws:iam::{ACCOUNT}:role/{logical_id}"
            elif kind == "AWS::CloudWatch::Alarm":
                arns[logical_id] = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{logical_id}"
            elif kind == "AWS::StepFunctions::StateMachine":
                refs[logical_id] = arns[logical_id] = (
                    f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{logical_id}"
                )
        self.refs, self.arns = refs, arns
        #: The engine's registry entries (``settings``, ``apply_settings``, ``triggers``).
        self.registry = registry(template, lambda value: resolve(value, refs, arns))
        for logical_id, resource in self.resources.items():
            if resource["Type"] == "AWS::Lambda::Function":
                properties = resource["Properties"]
                module, _, function = properties["Handler"].rpartition(".")
                variables = {
                    k: str(resolve(v, refs, arns))
                    for k, v in properties.get("Environment", {}).get("Variables", {}).items()
                }
                for layer in properties.get("Layers", []):
                    # The registry layer, unpacked here as Lambda unpacks it into /opt.
                    key = self.resources[layer["Ref"]]["Properties"]["Content"]["S3Key"]
                    variables["REGISTRY_PATH"] = str(REGISTRY_FILES[key.removesuffix(".zip")])
                aws.functions[arns[logical_id]] = (
                    getattr(importlib.import_module(module), function),
                    variables,
                )
        #: Logical ID -> ARN of each state machine, and its resolved definition.
        self.state_machines: dict[str, str] = {}
        self.definitions: dict[str, dict[str, Any]] = {}
        for logical_id, resource in self.resources.items():
            if resource["Type"] == "AWS::StepFunctions::StateMachine":
                definition = json.dumps(
                    _compress_retries(
                        json.loads(resolve(resource["Properties"]["DefinitionString"], refs, arns))
                    )
                )
                self.definitions[logical_id] = json.loads(definition)
                self.state_machines[logical_id] = self.sfn.create_state_machine(
                    name=logical_id,
                    definition=definition,
                    roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn",
                )["stateMachineArn"]
        #: Queue URL -> state machine ARN, for the rules that start state machines.
        self.starts: dict[str, str] = {}
        #: Rule logical ID -> the input template of its state machine target.
        self.rule_inputs: dict[str, str] = {}
        for logical_id, resource in self.resources.items():
            if resource["Type"] == "AWS::Events::Rule":
                self._deploy_starting_rule(logical_id, resource["Properties"])

    @property
    def state_machine_arn(self) -> str:
        """The Recommend workflow's state machine."""
        return self.machine("recommend")

    @property
    def apply_state_machine_arn(self) -> str:
        """The Apply workflow's state machine."""
        return self.machine("apply")

    def machine(self, workflow: str) -> str:
        """The ARN of the ``recommend`` or ``apply`` state machine of the stack."""
        [arn] = [
            a for k, a in self.state_machines.items() if ("Apply" in k) == (workflow == "apply")
        ]
        return arn

    def _deploy_starting_rule(self, logical_id: str, properties: dict[str, Any]) -> None:
        """A rule that starts a state machine: deployed with its real pattern and input
        transformer, delivering to a queue instead; :meth:`deliver` starts the executions.

        Schedule rules (no pattern) are not deployed: :meth:`scheduled_input` reads their input.
        """
        if "EventPattern" not in properties:
            return
        for target in properties["Targets"]:
            machine = resolve(target["Arn"], self.refs, self.arns)
            if ":states:" not in machine:
                continue
            url = self.sqs.create_queue(QueueName=logical_id)["QueueUrl"]
            queue_arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            pattern = resolve(properties["EventPattern"], self.refs, self.arns)
            self.events.put_rule(Name=logical_id, EventPattern=json.dumps(pattern))
            transformer = resolve(target["InputTransformer"], self.refs, self.arns)
            self.events.put_targets(
                Rule=logical_id,
                Targets=[{"Id": "queue", "Arn": queue_arn, "InputTransformer": transformer}],
            )
            self.starts[url] = machine
            self.rule_inputs[logical_id] = transformer["InputTemplate"]

    def endpoint_input(self, endpoint_name: str | None = None) -> dict[str, Any]:
        """The endpoint's registry entry, as the Route step hands it to a run:
        ``{"settings": ..., "apply_settings": ...}`` (the only endpoint's, by default)."""
        [found] = [
            {"settings": e["settings"], "apply_settings": e["apply_settings"]}
            for e in self.registry
            if endpoint_name in (None, e["settings"]["endpoint_name"])
        ]
        return found

    def scheduled_input(self) -> list[dict[str, Any]]:
        """The inputs of the schedule rules' targets (the endpoint lists they request runs of)."""
        return [
            json.loads(resolve(target["Input"], self.refs, self.arns))
            for resource in self.resources.values()
            if resource["Type"] == "AWS::Events::Rule"
            and "ScheduleExpression" in resource["Properties"]
            for target in resource["Properties"]["Targets"]
        ]

    def matched(self) -> list[dict[str, Any]]:
        """The inputs the starting rules matched so far, without starting anything."""
        found = []
        for url in self.starts:
            received = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            found.extend(json.loads(m["Body"]) for m in received.get("Messages", []))
        return found

    def routed(self, execution_input: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """What the deployed Route function decides for each input the rules matched so far
        (or for ``execution_input``), as the workflow's first step runs it; starts nothing."""
        inputs = self.matched() if execution_input is None else [execution_input]
        [route] = [
            self.arns[k]
            for k, r in self.resources.items()
            if r["Type"] == "AWS::Lambda::Function"
            and r["Properties"]["Handler"].endswith("route.handler")
        ]
        client = boto3.client("lambda")
        decisions = []
        for each in inputs:
            reply = client.invoke(FunctionName=route, Payload=json.dumps({"input": each}))
            assert "FunctionError" not in reply, reply["Payload"].read()
            decisions.append(json.loads(reply["Payload"].read()))
        return decisions

    def deliver(self, limit: float = 60) -> list[Execution]:
        """Start the executions that the starting rules matched, and wait for them to end."""
        started = []
        for url, machine in self.starts.items():
            received = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            for message in received.get("Messages", []):
                self._delivered += 1  # execution names are unique per state machine
                name = f"delivered-{self._delivered}"
                started.append(self._start(machine, name, message["Body"]))
        return [self._wait(arn, limit) for arn in started]

    def executions(self, machine: str = "apply", limit: float = 60) -> list[Execution]:
        """Every execution of the ``machine`` workflow so far (oldest first), once it ended:
        e.g. the Apply runs the Recommend workflow started."""
        listed = self.sfn.list_executions(stateMachineArn=self.machine(machine))["executions"]
        arns = [e["executionArn"] for e in reversed(listed)]
        return [self._wait(arn, limit) for arn in arns]

    @property
    def ledger_table(self) -> str:
        """The name of the (only) ledger table the stack created."""
        [table] = [k for k, r in self.resources.items() if r["Type"] == "AWS::DynamoDB::Table"]
        return table

    def ledger_items(self, sort_key_prefix: str = "") -> list[dict[str, Any]]:
        """The ledger's items whose sort key starts with ``sort_key_prefix``."""
        items = boto3.client("dynamodb").scan(TableName=self.ledger_table)["Items"]
        return [i for i in items if i["sk"]["S"].startswith(sort_key_prefix)]

    def topic_arn(self) -> str:
        """The (only) topic the stack created."""
        [arn] = [self.refs[k] for k, r in self.resources.items() if r["Type"] == "AWS::SNS::Topic"]
        return arn

    def subscribe_queue(self, name: str) -> str:
        """An SQS queue subscribed to the stack's topic, raw delivery; returns its URL."""
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        boto3.client("sns").subscribe(
            TopicArn=self.topic_arn(),
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        return url

    def route_events(self, name: str, pattern: dict[str, Any]) -> str:
        """A rule on the default bus with ``pattern`` that delivers to a new queue; its URL."""
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.events.put_rule(Name=name, EventPattern=json.dumps(pattern))
        self.events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": queue_arn}])
        return url

    def messages(self, url: str) -> list[dict[str, Any]]:
        """Every message waiting in the queue, parsed as JSON."""
        received = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in received.get("Messages", [])]

    def run(
        self,
        name: str,
        execution_input: dict[str, Any] | None = None,
        limit: float = 60,
        machine: str = "recommend",
    ) -> Execution:
        """Start an execution of the ``recommend`` or ``apply`` workflow; wait until it ends.

        Without ``execution_input``, a recommend run is a direct start of the only endpoint by
        name; an apply input gets the endpoint's apply settings added when it has none.
        """
        if machine == "recommend" and execution_input is None:
            settings = self.endpoint_input()["settings"]
            # A direct start by name: Route finds the endpoint in the registry.
            execution_input = {
                "endpoint_name": settings["endpoint_name"],
                "variant_name": settings["variant_name"],
            }
        if machine == "apply" and execution_input is not None:
            settings = self.endpoint_input()["apply_settings"]
            execution_input = {"settings": settings, **execution_input}
        arn = self._start(self.machine(machine), name, json.dumps(execution_input or {}))
        return self._wait(arn, limit)

    def _start(self, machine_arn: str, name: str, execution_input: str) -> str:
        return str(
            self.sfn.start_execution(stateMachineArn=machine_arn, name=name, input=execution_input)[
                "executionArn"
            ]
        )

    def _wait(self, arn: str, limit: float) -> Execution:
        """Wait (at most ``limit`` seconds) until the execution ends."""
        deadline = time.monotonic() + limit
        while True:
            # Only these fields: moto cannot serialize datetimes in a full describe_execution.
            description = self.sfn.describe_execution(executionArn=arn)
            if description["status"] != "RUNNING":
                break
            assert time.monotonic() < deadline, f"{arn} still running after {limit} s"
            time.sleep(0.2)
        history = self.sfn.get_execution_history(executionArn=arn)["events"]
        states = [
            e["stateEnteredEventDetails"]["name"]
            for e in history
            if "stateEnteredEventDetails" in e
        ]
        output = description.get("output")
        return Execution(
            status=description["status"],
            error=description.get("error"),
            cause=description.get("cause"),
            output=json.loads(output) if output else None,
            states=states,
        )
