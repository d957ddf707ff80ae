"""What the ApplyStep function may do: the calls of ``rightsizing_runtime.apply_steps``.

Each statement is scoped to the resources the steps touch (DESIGN.md invariant 8): the
endpoints in ``ApplyMode.AUTO`` one by one, the configs the library creates by their name
pattern, Application Auto Scaling by namespace and dimension, the ledger; and, per endpoint,
the execution role and KMS keys its configs pass to SageMaker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from ._grants import GrowingGrant, endpoint_grant
from ._nag import acknowledge_wildcard
from .settings import ApplyMode, EndpointAccess, ValidationProblems


class ApplyPermissions:
    """The ApplyStep function's role policy, grown as endpoints are added."""

    def __init__(
        self,
        scope: Construct,
        function: lambda_.Function,
        endpoint_config_arn: Callable[[str], str],
        access: EndpointAccess,
    ) -> None:
        self._scope = scope
        self._function = function
        self._config_arn = endpoint_config_arn
        attach = function.add_to_role_policy
        self._endpoints = endpoint_grant(
            function.role,  # type: ignore[arg-type]
            attach,
            [
                "sagemaker:DescribeEndpoint",
                "sagemaker:UpdateEndpoint",
                # Application Auto Scaling calls this as the caller of RegisterScalableTarget.
                "sagemaker:UpdateEndpointWeightsAndCapacities",
            ],
            access,
        )
        # Each endpoint's execution role and keys (EndpointRightsizing execution_role=,
        # kms_keys=), attached with the first one.
        self._passed_roles = GrowingGrant(
            attach,
            ["iam:PassRole"],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )
        self._key_grants = GrowingGrant(
            attach,
            ["kms:CreateGrant"],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
        )
        self._key_reads = GrowingGrant(attach, ["kms:DescribeKey"])
        # Inference components (issue 17), one ARN each, as their constructs register them:
        # the steps read and update them; Application Auto Scaling calls
        # UpdateInferenceComponentRuntimeConfig as the caller of RegisterScalableTarget on an
        # IC's copies (as it calls UpdateEndpointWeightsAndCapacities for a variant's instances).
        self._components = GrowingGrant(
            attach,
            [
                "sagemaker:DescribeInferenceComponent",
                "sagemaker:UpdateInferenceComponent",
                "sagemaker:UpdateInferenceComponentRuntimeConfig",
            ],
        )

    def allow_endpoint_config_use(
        self, *, execution_role: iam.IRole | None, kms_keys: Sequence[kms.IKey]
    ) -> None:
        """Let the steps pass ``execution_role`` and use ``kms_keys`` in the configs they copy.

        ``iam:PassRole`` on the role, only to SageMaker (``iam:PassedToService``): the
        Service Authorization Reference lists it as a dependent action of CreateEndpointConfig.
        ``kms:CreateGrant`` on the keys, only for grants to AWS resources
        (``kms:GrantIsForAWSResource``): the SageMaker Developer Guide, "API Permissions:
        Actions, Permissions, and Resources Reference", requires it of CreateEndpoint and
        UpdateEndpoint when the config has a ``KmsKeyId``; ``kms:DescribeKey`` on them, with
        which the service validates the key and the Snapshot step resolves a key alias.
        """
        if execution_role is not None:
            self._passed_roles.add(execution_role.role_arn)
        for key in kms_keys:
            self._key_grants.add(key.key_arn)
            self._key_reads.add(key.key_arn)

    def grant_common(self, ledger: dynamodb.ITable) -> None:
        """What the steps call whatever the endpoint (``rightsizing_runtime.apply_steps``)."""
        function = self._function
        ledger.grant(
            function,
            "dynamodb:PutItem",
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        )
        self._grant_configs()
        self._grant_autoscaling()

    def _grant_configs(self) -> None:
        """Read any endpoint config; create (and tag) the library's new configs."""
        function = self._function
        role = function.role
        assert role is not None
        stack = Stack.of(self._scope)
        any_config = self._config_arn("*")
        # Every config the library creates is named <endpoint>-rs-<hash> (apply.new_config_name).
        new_configs = self._config_arn("*-rs-*")
        target_tracking_alarms = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name="TargetTracking-endpoint/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        # An inference component's target tracking names its alarms after its resource ID
        # (TargetTracking-inference-component/<name>-AlarmHigh-...).
        component_alarms = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name="TargetTracking-inference-component/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                # UpdateEndpoint is authorized on the config it moves to as well.
                actions=[
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:AddTags",
                    "sagemaker:UpdateEndpoint",
                ],
                resources=[new_configs],
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                # Target tracking manages its alarms as the caller of PutScalingPolicy.
                actions=[
                    "cloudwatch:PutMetricAlarm",
                    "cloudwatch:DescribeAlarms",
                    "cloudwatch:DeleteAlarms",
                ],
                resources=[target_tracking_alarms, component_alarms],
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeEndpointConfig", "sagemaker:ListTags"],
                resources=[any_config],
            )
        )
        acknowledge_wildcard(
            role, any_config, "The endpoint's current config name is only known at run time."
        )
        acknowledge_wildcard(
            role,
            new_configs,
            "New endpoint config names are generated per run (<endpoint>-rs-<hash>); creating "
            "a config changes nothing until UpdateEndpoint, which is granted per endpoint.",
        )
        acknowledge_wildcard(
            role,
            target_tracking_alarms,
            "Target tracking names its alarms after the endpoint and policy at run time "
            "(TargetTracking-endpoint/<endpoint>/...).",
        )
        acknowledge_wildcard(
            role,
            component_alarms,
            "Target tracking names an inference component's alarms at run time "
            "(TargetTracking-inference-component/<name>-...).",
        )

    def _grant_autoscaling(self) -> None:
        """Application Auto Scaling on SageMaker variants, and its service-linked role."""
        function = self._function
        role = function.role
        assert role is not None
        stack = Stack.of(self._scope)
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "application-autoscaling:DescribeScalableTargets",
                    "application-autoscaling:DescribeScalingPolicies",
                ],
                resources=["*"],
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "application-autoscaling:RegisterScalableTarget",
                    "application-autoscaling:DeregisterScalableTarget",
                    "application-autoscaling:PutScalingPolicy",
                ],
                # Scalable-target ARNs are opaque: scope by namespace and dimension instead.
                resources=["*"],
                conditions={
                    "StringEquals": {
                        "application-autoscaling:service-namespace": "sagemaker",
                        # A variant's instances, and an inference component's copies.
                        "application-autoscaling:scalable-dimension": [
                            "sagemaker:variant:DesiredInstanceCount",
                            "sagemaker:inference-component:DesiredCopyCount",
                        ],
                    }
                },
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:CreateServiceLinkedRole"],
                resources=[
                    stack.format_arn(
                        service="iam",
                        region="",
                        resource="role",
                        resource_name=(
                            "aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                            "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
                        ),
                    )
                ],
                conditions={
                    "StringLike": {
                        "iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"
                    }
                },
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                # GPUs per instance of an inference component's instance type (accelerators
                # per copy). EC2's Describe* actions have no resource-level permissions
                # (Service Authorization Reference, Amazon EC2: DescribeInstanceTypes lists no
                # resource type), so "*" is the only resource IAM accepts.
                actions=["ec2:DescribeInstanceTypes"],
                resources=["*"],
            )
        )
        acknowledge_wildcard(
            role,
            "*",
            "Application Auto Scaling's Describe calls and EC2 DescribeInstanceTypes have no "
            "resource-level permissions; Application Auto Scaling's writes have no resource "
            "ARNs and are scoped with the service-namespace and scalable-dimension condition "
            "keys; X-Ray has no resource-level permissions.",
        )

    def grant_endpoint(self, endpoint_arn: str) -> None:
        """Let the steps update one more endpoint.

        ``UpdateEndpoint`` is the one write that changes what serves traffic, so its endpoints
        are listed one by one.
        """
        self._endpoints.add(endpoint_arn)

    def grant_inference_component(self, inference_component_arn: str) -> None:
        """Let the steps read and update one more inference component.

        ``arn:${Partition}:sagemaker:${Region}:${Account}:inference-component/${Name}`` (Service
        Authorization Reference, Amazon SageMaker AI, resource type ``inference-component``;
        SageMaker lowercases names in ARNs).
        """
        self._components.add(inference_component_arn)


def check_endpoint_config_use(
    apply_mode: ApplyMode, execution_role: Any, kms_keys: Sequence[Any] | None
) -> None:
    """``execution_role`` an IRole, ``kms_keys`` IKeys, and only where something is applied.

    ``EndpointRightsizing``'s check of those two settings (raises ``ValueError``).
    """
    problems = ValidationProblems("EndpointRightsizing settings")
    problems.check(
        # jsii interfaces cannot be checked with isinstance: what the grants use.
        execution_role is None or hasattr(execution_role, "role_arn"),
        "execution_role must be an iam.IRole (iam.Role.from_role_arn(...)), got "
        f"{execution_role!r}",
    )
    keys = list(kms_keys or [])
    problems.check(
        kms_keys is None
        or (not isinstance(kms_keys, str) and all(hasattr(key, "key_arn") for key in keys)),
        f"kms_keys must be a list of kms.IKey (kms.Key.from_key_arn(...)), got {kms_keys!r}",
    )
    problems.check(
        apply_mode is not ApplyMode.RECOMMEND_ONLY or (execution_role is None and not keys),
        "execution_role and kms_keys are what the Apply workflow passes to SageMaker; with "
        "apply_mode=ApplyMode.RECOMMEND_ONLY nothing is applied: remove them",
    )
    problems.raise_if_any()
