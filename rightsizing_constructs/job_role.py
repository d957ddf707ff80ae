"""The role Inference Recommender assumes to run the load tests, and the IR job ARNs.

IR creates a model, an endpoint config and an endpoint per load test, named after the job (so
under the library's job-name prefix), invokes them and deletes them. The role the engine
creates may do exactly that, pull images from this account's ECR, write SageMaker's logs and
metrics, and read the models (packages) of the endpoints that register (:class:`ModelReads`).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

from ._arns import sagemaker_arn
from ._grants import GrowingGrant, PatternGrant, model_grant
from ._nag import CDK_GRANT_POLICY, acknowledge_wildcard
from ._runtime import import_runtime
from .settings import EndpointAccess

# The runtime owns the job-name prefix (IAM policies are scoped to it).
JOB_NAME_PREFIX: str = import_runtime("job_request").JOB_NAME_PREFIX
#: Why a role acts on every job under the prefix (cdk-nag acknowledgment).
JOB_NAMES_REASON = (
    "IR job names are generated per execution (rightsizing-<hash of the execution ARN>), so "
    "job ARNs are scoped to the library's job-name prefix."
)


def job_arns(scope: IConstruct) -> str:
    """Every IR job the library starts: names are generated per execution, under the prefix."""
    return sagemaker_arn(scope, "inference-recommendations-job", JOB_NAME_PREFIX + "*")


def ai_job_arns(scope: IConstruct) -> str:
    """Every AI recommendation job the library starts (inference components), under the prefix.

    ``arn:...:ai-recommendation-job/<name>``: the ``AIRecommendationJobArn`` pattern of
    botocore's SageMaker model. Named like IR jobs (``job_request.job_name``).
    """
    return sagemaker_arn(scope, "ai-recommendation-job", JOB_NAME_PREFIX + "*")


def pass_to_sagemaker(role_arn: str) -> iam.PolicyStatement:
    """``iam:PassRole`` on ``role_arn``, to SageMaker only."""
    return iam.PolicyStatement(
        actions=["iam:PassRole"],
        resources=[role_arn],
        conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    )


def create_job_role(scope: Construct) -> iam.Role:
    """The role IR assumes to run the load tests (``JobRole`` in ``scope``)."""
    role = iam.Role(
        scope,
        "JobRole",
        assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
        description="Inference Recommender load tests started by rightsizing-constructs",
    )
    CDK_GRANT_POLICY.apply(role)
    stack = Stack.of(scope)
    test_resources = [
        sagemaker_arn(scope, kind, JOB_NAME_PREFIX + "*")
        for kind in ("model", "endpoint-config", "endpoint")
    ]
    ecr_repositories = stack.format_arn(service="ecr", resource="repository", resource_name="*")
    sagemaker_log_groups = stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name="/aws/sagemaker/*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="ManageLoadTestEndpoints",
            actions=[
                "sagemaker:CreateModel",
                "sagemaker:DescribeModel",
                "sagemaker:DeleteModel",
                "sagemaker:CreateEndpointConfig",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:DeleteEndpointConfig",
                "sagemaker:CreateEndpoint",
                "sagemaker:DescribeEndpoint",
                "sagemaker:DeleteEndpoint",
                "sagemaker:InvokeEndpoint",
            ],
            resources=test_resources,
        )
    )
    # IR passes this role on to the models it creates for the load tests.
    role.add_to_policy(pass_to_sagemaker(role.role_arn))
    role.add_to_policy(
        iam.PolicyStatement(
            sid="PullModelImages",
            actions=[
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchCheckLayerAvailability",
            ],
            resources=[ecr_repositories],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="EcrLogin",
            actions=["ecr:GetAuthorizationToken"],
            # GetAuthorizationToken has no resource-level permissions.
            resources=["*"],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="TestEndpointLogs",
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[sagemaker_log_groups],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="TestEndpointMetrics",
            actions=["cloudwatch:PutMetricData"],
            # No resource-level permissions: scoped to SageMaker's namespaces instead.
            resources=["*"],
            conditions={
                "StringLike": {"cloudwatch:namespace": ["AWS/SageMaker", "/aws/sagemaker/*"]}
            },
        )
    )
    _acknowledge_job_role_wildcards(role, test_resources, ecr_repositories, sagemaker_log_groups)
    return role


def _acknowledge_job_role_wildcards(
    role: iam.Role, test_resources: list[str], ecr_repositories: str, log_groups: str
) -> None:
    for resource in test_resources:
        acknowledge_wildcard(
            role,
            resource,
            "IR names the model, endpoint config and endpoint of each load test after the "
            "job; job names are generated per run under the library's prefix.",
        )
    acknowledge_wildcard(
        role,
        ecr_repositories,
        "The model's container image repository is not known at synth time (it is named in "
        "the model package or model); pulls are limited to this account and region.",
    )
    acknowledge_wildcard(
        role,
        log_groups,
        "SageMaker names the log groups of the test endpoints at run time, under /aws/sagemaker/.",
    )
    acknowledge_wildcard(
        role,
        "*",
        "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level "
        "permissions; PutMetricData is limited to SageMaker's namespaces by condition.",
    )


class ModelReads:
    """The job role's reads of the registered endpoints' models, statements per kind.

    Added only to a role the engine created: a role you bring is yours to grant.
    """

    def __init__(self, role: iam.IRole, access: EndpointAccess) -> None:
        self._role = role
        self._access = access
        self._grants: dict[str, GrowingGrant | PatternGrant] = {}

    def allow(
        self,
        *,
        model_package_version_arn: str | None,
        model_name: str | None,
        model_package_group_name: str | None,
    ) -> None:
        """Let IR read the model an endpoint is load-tested with (and its group's versions)."""
        if model_package_version_arn is not None:
            self._add(
                "ReadModelPackage", "sagemaker:DescribeModelPackage", model_package_version_arn
            )
        if model_name is not None:
            self._add(
                "ReadModel",
                "sagemaker:DescribeModel",
                sagemaker_arn(self._role, "model", model_name),
            )
        if model_package_group_name is not None:
            self._add(
                "ReadModelPackage",
                "sagemaker:DescribeModelPackage",
                sagemaker_arn(self._role, "model-package", f"{model_package_group_name}/*"),
            )

    def _add(self, sid: str, action: str, resource: str) -> None:
        grant = self._grants.get(sid)
        if grant is None:
            resource_type = "model" if action == "sagemaker:DescribeModel" else "model-package"
            grant = model_grant(
                self._role,
                self._role.add_to_principal_policy,
                action,
                resource_type,
                self._access,
                sid=sid,
            )
            self._grants[sid] = grant
        grant.add(resource)
        if resource.endswith("/*") and not self._access.is_tagged:
            acknowledge_wildcard(
                self._role,
                resource,
                "IR tests whichever version of the model package group is approved next.",
            )

    def allow_s3(self, *, read: list[str], write: str) -> None:
        """Let an AI recommendation job read its model (and dataset) and write its results.

        ``read`` and ``write`` are ``s3://bucket/prefix`` URIs (a token is granted as the
        bucket's whole name space, being unknown at synth). The job reads the model from
        ``ModelSource.S3`` and writes to ``OutputConfig.S3OutputLocation`` as this role
        (SageMaker API reference, CreateAIRecommendationJob: ``RoleArn``).
        """
        objects = [_object_arn(self._role, uri) for uri in read]
        if objects:
            self._role.add_to_principal_policy(
                iam.PolicyStatement(actions=["s3:GetObject"], resources=objects)
            )
            self._role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=sorted({_bucket_arn(self._role, uri) for uri in read}),
                )
            )
        self._role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[_object_arn(self._role, write)],
            )
        )
        for resource in [*objects, _object_arn(self._role, write)]:
            acknowledge_wildcard(
                self._role,
                resource,
                "An AI recommendation job reads the model's (and the dataset's) objects and "
                "writes its results under the prefixes given to InferenceComponentRightsizing; "
                "the object names under them are the job's.",
            )


def _split(uri: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket/prefix`` (validated by the construct)."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix


def _object_arn(scope: IConstruct, uri: str) -> str:
    bucket, prefix = _split(uri)
    partition = Stack.of(scope).partition
    return f"arn:{partition}:s3:::{bucket}/{prefix}*"


def _bucket_arn(scope: IConstruct, uri: str) -> str:
    bucket, _ = _split(uri)
    return f"arn:{Stack.of(scope).partition}:s3:::{bucket}"
