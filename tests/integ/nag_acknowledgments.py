"""cdk-nag acknowledgments of the integration test's own resources, each narrow, with a reason.

The library's resources carry their own acknowledgments (README, "Compliance"); these cover
only what the test adds: the hosting role's policy, the probe queues, rules and subscriptions
the assertions read, and the test endpoints. A finding nobody reviewed still fails the synth.

integ-tests' assertion stack has no finding to acknowledge, and that is not a compliance
result: its provider function, waiter state machines and roles are written as untyped
``CfnResource`` objects, which cdk-nag's rules (they test for ``CfnFunction``,
``CfnStateMachine``, ...) do not inspect. :func:`assertion_stack_unchecked` lists them.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import IConstruct

# Reasons, one per decision.
_PROBE_QUEUE = (
    "A probe of the integration test: only the test's assertions read it, and it is deleted "
    "with the test. A message that never arrives fails an assertion, which is the signal; a "
    "dead-letter queue would hold nothing the test reads."
)
_PROBE_DELIVERY = (
    "Delivery to a probe queue of the integration test: an undelivered message fails the "
    "assertion waiting for it, which is the signal; a dead-letter queue would add nothing."
)
_TEST_ENDPOINT_KEY = (
    "The test endpoint serves the test's public toy model and keeps no data, for about two "
    "hours. A customer managed key would also need the Apply step's KMS permissions, which "
    "this test leaves at the library's defaults to test what users get."
)
_ECR_LOGIN = "ecr:GetAuthorizationToken has no resource-level permissions."
_ENDPOINT_LOG_STREAMS = (
    "SageMaker names the log streams of an endpoint's instances at run time, under the "
    "endpoint's own log group."
)


def _acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def acknowledge_hosting_policy(policy: iam.ManagedPolicy, endpoint_log_groups: list[str]) -> None:
    """The models' execution role: ECR login and the endpoints' log streams."""
    _acknowledge(policy, "AwsSolutions-IAM5[Resource::*]", _ECR_LOGIN)
    stack = Stack.of(policy)
    for log_group in endpoint_log_groups:
        resolved = stack.resolve(log_group)
        # cdk-nag prints {"Ref": "X"} as <X> inside the joined ARN.
        parts = resolved["Fn::Join"][1] if isinstance(resolved, dict) else [resolved]
        name = "".join(p if isinstance(p, str) else f"<{p['Ref']}>" for p in parts)
        _acknowledge(policy, f"AwsSolutions-IAM5[Resource::{name}]", _ENDPOINT_LOG_STREAMS)


def acknowledge_probe_queue(queue: sqs.Queue) -> None:
    """A queue only the assertions read."""
    _acknowledge(queue, "AwsSolutions-SQS3", _PROBE_QUEUE)
    _acknowledge(queue, "Serverless-SQSRedrivePolicy", _PROBE_QUEUE)


def acknowledge_probe_rule(rule: IConstruct) -> None:
    """A rule forwarding events to a probe queue."""
    _acknowledge(rule, "Serverless-EventBusDLQ", _PROBE_DELIVERY)


def acknowledge_probe_subscription(subscription: IConstruct) -> None:
    """A topic subscription delivering to a probe queue."""
    _acknowledge(subscription, "Serverless-SNSRedrivePolicy", _PROBE_DELIVERY)


def acknowledge_test_endpoint_config(config: IConstruct) -> None:
    """A test endpoint's config, without a customer managed key."""
    for pack in ("NIST.800.53.R5", "HIPAA.Security", "PCI.DSS.321"):
        _acknowledge(
            config, f"{pack}-SageMakerEndpointConfigurationKMSKeyConfigured", _TEST_ENDPOINT_KEY
        )


def assertion_stack_unchecked(stack: Stack) -> list[str]:
    """The assertion stack's resources cdk-nag does not inspect (untyped ``CfnResource``)."""
    return sorted(
        f"{child.node.path} ({child.cfn_resource_type})"
        for child in stack.node.find_all()
        if isinstance(child, CfnResource) and type(child) is CfnResource
    )
