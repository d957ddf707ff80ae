"""What the Recommend workflow's functions may call, on the resources they call it on.

Derived from the handlers (``rightsizing_runtime.start_job``, ``select_recommendation``,
``stop_job``, ``job_slots``); ``tests/test_least_privilege.py`` holds them to exactly that.
"""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam

from ._arns import sagemaker_arn
from ._grants import endpoint_grant
from ._nag import CONFIGS_REASON, acknowledge_wildcard
from .job_role import JOB_NAMES_REASON, job_arns, pass_to_sagemaker
from .recommend_workflow import RecommendFunctions
from .security import VPC_REASON
from .settings import EndpointAccess

#: Why StartJob holds "*" once an endpoint measures its peak (cdk-nag acknowledgment; it
#: replaces the function's X-Ray (and VPC) reason on the same resource, so it names them too).
TRAFFIC_READS_REASON = (
    "cloudwatch:GetMetricData has no resource-level permissions (it reads the variant's "
    "Invocations when an endpoint measures its peak); X-Ray neither."
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
        functions.select.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeInferenceRecommendationsJob"], resources=[jobs]
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
        functions.stop_job.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:StopInferenceRecommendationsJob"], resources=[jobs]
            )
        )
        for function in (functions.start_job, functions.select, functions.stop_job):
            acknowledge_wildcard(function.role, jobs, JOB_NAMES_REASON)  # type: ignore[arg-type]
        acknowledge_wildcard(functions.select.role, configs, CONFIGS_REASON)  # type: ignore[arg-type]
        self._served_model_check_granted = False
        self._traffic_reads_granted = False

    def grant_job_slots(self, ledger: dynamodb.ITable) -> None:
        """Slots are conditional writes and deletes of the slot items; nothing reads them."""
        ledger.grant(self._functions.job_slots, "dynamodb:PutItem", "dynamodb:DeleteItem")

    def allow_endpoint(self, endpoint_arn: str) -> None:
        """Prepare and Select describe this endpoint."""
        self._start_job_endpoints.add(endpoint_arn)
        self._select_endpoints.add(endpoint_arn)

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
