"""What the Recommend workflow's functions may call, on the resources they call it on.

Derived from the handlers (``rightsizing_runtime.start_job``, ``select_recommendation``,
``stop_job``, ``job_slots``); ``tests/test_least_privilege.py`` holds them to exactly that.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam

from ._arns import sagemaker_arn
from ._grants import GrowingGrant, endpoint_grant
from ._nag import CONFIGS_REASON, acknowledge_wildcard
from ._runtime import import_runtime
from .job_role import JOB_NAMES_REASON, ai_job_arns, job_arns, pass_to_sagemaker
from .recommend_workflow import RecommendFunctions
from .security import VPC_REASON
from .settings import EndpointAccess

#: Why StartJob holds "*" once an endpoint measures its peak (cdk-nag acknowledgment; it
#: replaces the function's X-Ray (and VPC) reason on the same resource, so it names them too).
TRAFFIC_READS_REASON = (
    "cloudwatch:GetMetricData has no resource-level permissions (it reads the variant's "
    "Invocations when an endpoint measures its peak); X-Ray neither."
)

#: Why SelectRecommendation holds "*": it reads the benchmark endpoints' metrics (issue #15;
#: it replaces the function's X-Ray (and VPC) reason on the same resource, so it names them).
BENCHMARK_READS_REASON = (
    "cloudwatch:GetMetricData has no resource-level permissions (it reads the per-minute "
    "Invocations and ModelLatency of IR's benchmark endpoints, the measured load-latency "
    "curves); X-Ray neither."
)


#: The same, once the engine rightsizes an inference component: Select also reads the GPUs of
#: the component's instance type (its packing).
COMPONENT_SELECT_READS_REASON = (
    "cloudwatch:GetMetricData has no resource-level permissions (it reads the per-minute "
    "Invocations and ModelLatency of IR's benchmark endpoints, the measured load-latency "
    "curves); ec2:DescribeInstanceTypes neither (it reads an inference component's instance "
    "type's GPUs); X-Ray neither."
)


class RecommendPermissions:
    """Exactly what the Recommend workflow's handlers call, on the resources they call it on.

    The endpoint statements start empty; they are attached and grow as endpoints register
    (:meth:`allow_endpoint`). CDK renders policies at synthesis, after every endpoint was added.
    """

    def __init__(
        self, functions: RecommendFunctions, job_role: iam.IRole, access: EndpointAccess
    ) -> None:
        self._functions = functions
        scope = functions.start_job
        jobs = job_arns(scope)
        configs = sagemaker_arn(scope, "endpoint-config", "*")
        functions.start_job.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateInferenceRecommendationsJob",
                    "sagemaker:DescribeInferenceRecommendationsJob",
                ],
                resources=[jobs],
            )
        )
        self._start_job_endpoints = endpoint_grant(
            functions.start_job.role,  # type: ignore[arg-type]
            functions.start_job.add_to_role_policy,
            ["sagemaker:DescribeEndpoint"],
            access,
        )
        # CreateInferenceRecommendationsJob passes the job role to SageMaker.
        functions.start_job.add_to_role_policy(pass_to_sagemaker(job_role.role_arn))
        # GetScalingConfigurationRecommendation's resource type is inference-recommendations-job
        # (Service Authorization Reference, Amazon SageMaker): the job's ARN.
        functions.select.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:DescribeInferenceRecommendationsJob",
                    "sagemaker:GetScalingConfigurationRecommendation",
                ],
                resources=[jobs],
            )
        )
        self._select_endpoints = endpoint_grant(
            functions.select.role,  # type: ignore[arg-type]
            functions.select.add_to_role_policy,
            ["sagemaker:DescribeEndpoint"],
            access,
        )
        functions.select.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeEndpointConfig"], resources=[configs])
        )
        self._allow_benchmark_reads()
        functions.stop_job.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:StopInferenceRecommendationsJob"], resources=[jobs]
            )
        )
        # StopJob cannot tell from an execution's event whether it ran an IR job or an
        # inference component's AI job (stop_job.py): it may stop either, whatever the fleet.
        ai_jobs = ai_job_arns(scope)
        functions.stop_job.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:StopAIRecommendationJob"], resources=[ai_jobs])
        )
        acknowledge_wildcard(functions.stop_job.role, ai_jobs, JOB_NAMES_REASON)  # type: ignore[arg-type]
        for function in (functions.start_job, functions.select, functions.stop_job):
            acknowledge_wildcard(function.role, jobs, JOB_NAMES_REASON)  # type: ignore[arg-type]
        acknowledge_wildcard(functions.select.role, configs, CONFIGS_REASON)  # type: ignore[arg-type]
        self._served_model_check_granted = False
        # Prepare identifies the model a run tests (its containers) to find a job to reuse.
        self._model_reads_granted: set[str] = set()
        self._traffic_reads_granted = False
        self._component_grants: tuple[GrowingGrant, GrowingGrant] | None = None

    def _allow_benchmark_reads(self) -> None:
        """Select reads the benchmark endpoints' per-minute metrics (``evidence.py``)."""
        select = self._functions.select
        # GetMetricData has no resource types and no condition keys (Service Authorization
        # Reference, "Actions, resources, and condition keys for Amazon CloudWatch"): "*" only.
        # The benchmark endpoints are IR's, named after the job at run time.
        select.add_to_role_policy(
            iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"])
        )
        reason = BENCHMARK_READS_REASON + (" " + VPC_REASON if select.is_bound_to_vpc else "")
        acknowledge_wildcard(select.role, "*", reason)  # type: ignore[arg-type]

    def grant_job_slots(self, ledger: dynamodb.ITable) -> None:
        """Slots are conditional writes and deletes of the slot items; nothing reads them."""
        ledger.grant(self._functions.job_slots, "dynamodb:PutItem", "dynamodb:DeleteItem")

    def grant_prepare_ledger(self, ledger: dynamodb.ITable) -> None:
        """The ledger and parameters Prepare and PublishPending use.

        Prepare reads the decision records (a job to reuse) and takes a pending recommendation
        (get, conditional delete); PublishPending keeps one (put) and its SSM parameter, under
        the library's path only.
        """
        start_job = self._functions.start_job
        ledger.grant(
            start_job,
            "dynamodb:Query",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
        )
        prefix = import_runtime("recommendation").PENDING_PARAMETER_PREFIX
        parameters = Stack.of(start_job).format_arn(
            service="ssm", resource="parameter", resource_name=prefix.strip("/") + "/*"
        )
        start_job.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ssm:PutParameter", "ssm:DeleteParameter"], resources=[parameters]
            )
        )
        acknowledge_wildcard(
            start_job.role,  # type: ignore[arg-type]
            parameters,
            "A pending recommendation's parameter is named after the endpoint, variant and "
            "approved version (known at run time), under the library's path only.",
        )

    def allow_model_reads(
        self,
        *,
        model_package_version_arn: str | None,
        model_name: str | None,
        model_package_group_name: str | None,
    ) -> None:
        """Prepare describes the model an endpoint is tested with (its fingerprint).

        With model approvals, also the model the endpoint serves (a pending recommendation).
        """
        if model_package_group_name is not None:
            self.allow_served_model_check()
        if model_package_version_arn is not None or model_package_group_name is not None:
            self._read_every("sagemaker:DescribeModelPackage", "model-package")
        if model_name is not None:
            self._read_every("sagemaker:DescribeModel", "model")

    def _read_every(self, action: str, resource_type: str) -> None:
        """``action`` (a Describe) on every resource of the type in the account and Region.

        Listing each endpoint's model would make StartJob's policy grow with the fleet, a second
        list beside its endpoints' ARNs (IAM's limits, ``_grants.py``), for a read of metadata.
        """
        if action in self._model_reads_granted:
            return
        self._model_reads_granted.add(action)
        start_job = self._functions.start_job
        every = sagemaker_arn(start_job, resource_type, "*")
        start_job.add_to_role_policy(iam.PolicyStatement(actions=[action], resources=[every]))
        acknowledge_wildcard(
            start_job.role,  # type: ignore[arg-type]
            every,
            "Prepare describes (reads only) the model or model package a run tests, to know "
            "whether a stored load test measured it; one grant for the whole fleet keeps the "
            "role's policy from growing with it.",
        )

    def allow_endpoint(self, endpoint_arn: str) -> None:
        """Prepare and Select describe this endpoint."""
        self._start_job_endpoints.add(endpoint_arn)
        self._select_endpoints.add(endpoint_arn)

    def allow_component(self, component_arn: str) -> None:
        """Prepare, StartJob, Select and StopJob for an inference component's AI job.

        The first component adds the AI recommendation job statements (job ARNs under the
        library's prefix, ``job_role.ai_job_arns``); every component adds its ARN to the
        ``DescribeInferenceComponent`` statements of Prepare and Select.
        """
        if self._component_grants is None:
            self._component_grants = self._allow_ai_jobs()
        for grant in self._component_grants:
            grant.add(component_arn)

    def _allow_ai_jobs(self) -> tuple[GrowingGrant, GrowingGrant]:
        functions = self._functions
        jobs = ai_job_arns(functions.start_job)
        # The job reads the workload configuration it names (AIWorkloadConfigIdentifier); the
        # library names its configurations rightsizing-<stack>-<hash> (component.py).
        workload_configs = sagemaker_arn(functions.start_job, "ai-workload-config", "*")
        functions.start_job.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateAIRecommendationJob",
                    "sagemaker:DescribeAIRecommendationJob",
                ],
                resources=[jobs, workload_configs],
            )
        )
        functions.select.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeAIRecommendationJob"], resources=[jobs])
        )
        for function in (functions.start_job, functions.select):
            acknowledge_wildcard(function.role, jobs, JOB_NAMES_REASON)  # type: ignore[arg-type]
        # DescribeInstanceTypes has no resource types (Service Authorization Reference, "Actions,
        # resources, and condition keys for Amazon EC2"): "*" only.
        select = functions.select
        select.add_to_role_policy(
            iam.PolicyStatement(actions=["ec2:DescribeInstanceTypes"], resources=["*"])
        )
        reason = COMPONENT_SELECT_READS_REASON + (
            " " + VPC_REASON if select.is_bound_to_vpc else ""
        )
        acknowledge_wildcard(select.role, "*", reason)  # type: ignore[arg-type]
        acknowledge_wildcard(
            functions.start_job.role,  # type: ignore[arg-type]
            workload_configs,
            "A component's workload configuration may be one made elsewhere "
            "(AIWorkload.existing), named at synth by the user; the job only reads it.",
        )
        return (
            GrowingGrant(
                functions.start_job.add_to_role_policy, ["sagemaker:DescribeInferenceComponent"]
            ),
            GrowingGrant(
                functions.select.add_to_role_policy, ["sagemaker:DescribeInferenceComponent"]
            ),
        )

    def allow_served_model_check(self) -> None:
        """Prepare reads which model (package version) an endpoint serves, for model approvals."""
        if self._served_model_check_granted:
            return
        self._served_model_check_granted = True
        start_job = self._functions.start_job
        configs = sagemaker_arn(start_job, "endpoint-config", "*")
        models = sagemaker_arn(start_job, "model", "*")
        start_job.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeEndpointConfig"], resources=[configs])
        )
        start_job.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeModel"], resources=[models])
        )
        role = start_job.role
        acknowledge_wildcard(role, configs, CONFIGS_REASON)  # type: ignore[arg-type]
        acknowledge_wildcard(
            role,  # type: ignore[arg-type]
            models,
            "The model an endpoint serves is named in its current endpoint config, which is "
            "only known at run time.",
        )

    def allow_traffic_reads(self) -> None:
        """Prepare reads the variant's ``Invocations`` when an endpoint measures its peak.

        Granted only once an endpoint has ``peak_traffic``: an engine whose endpoints all give
        their peak by hand cannot read metrics.
        """
        if self._traffic_reads_granted:
            return
        self._traffic_reads_granted = True
        start_job = self._functions.start_job
        # GetMetricData has no resource types and no condition keys (Service Authorization
        # Reference, "Actions, resources, and condition keys for Amazon CloudWatch"): "*" only.
        start_job.add_to_role_policy(
            iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"])
        )
        reason = TRAFFIC_READS_REASON + (" " + VPC_REASON if start_job.is_bound_to_vpc else "")
        acknowledge_wildcard(start_job.role, "*", reason)  # type: ignore[arg-type]
