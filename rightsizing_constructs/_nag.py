"""Acknowledge checker findings narrowly: one rule or wildcard, on one construct, with a reason.

cdk-nag 3 names an IAM5 finding after the resource string as it appears in the resolved
template (``Resource::arn:<AWS::Partition>:sagemaker:...:endpoint-config/*``), so a blanket
``AwsSolutions-IAM5`` acknowledgment is not needed: each wildcard is acknowledged by name, and a
new wildcard that nobody reviewed still fails synthesis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from constructs import IConstruct


def nag_resource_name(scope: IConstruct, resource: str) -> str:
    """The resource as cdk-nag prints it: ``{"Ref": "X"}`` becomes ``<X>``, ``GetAtt`` ``<L.A>``."""
    return _render(Stack.of(scope).resolve(resource))


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_render(part) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        return f"<{logical_id}.{attribute}>"
    raise ValueError(f"cannot render {value!r} as a cdk-nag resource name")


def acknowledge_wildcard(scope: IConstruct, resource: str, reason: str) -> None:
    """Acknowledge AwsSolutions-IAM5 for exactly ``resource`` on ``scope`` (a role, usually)."""
    Validations.of(scope).acknowledge(
        Acknowledgment(
            id=f"AwsSolutions-IAM5[Resource::{nag_resource_name(scope, resource)}]",
            reason=reason,
        )
    )


#: Why a role reads any endpoint config (cdk-nag acknowledgment).
CONFIGS_REASON = (
    "The endpoint's current endpoint config name changes with every update and is only known "
    "at run time (DescribeEndpoint returns it)."
)

# cdk-nag pack prefixes (the rule ids are "<prefix>-<rule>").
NIST_800_53_R5 = "NIST.800.53.R5"
HIPAA_SECURITY = "HIPAA.Security"
PCI_DSS_321 = "PCI.DSS.321"
SERVERLESS = "Serverless"


@dataclass(frozen=True, kw_only=True)
class Waiver:
    """A checker rule that does not fit one kind of resource, and why.

    One waiver is one decision, applied to each resource it covers in both checkers that carry
    the rule: cdk-nag (an acknowledgment per pack, on the resource's construct) and checkov (a
    ``skip`` in the resource's ``Metadata``). The README's "Compliance" section lists them all.
    """

    #: The cdk-nag rule name, without its pack prefix (``LambdaDLQ``).
    rule: str
    #: The cdk-nag packs that carry the rule.
    packs: tuple[str, ...]
    #: The checkov checks that ask for the same thing.
    checkov: tuple[str, ...] = ()
    #: Why it does not fit: the AWS limitation, or the setting that meets it instead.
    reason: str

    def apply(self, scope: IConstruct) -> None:
        """Waive the rule on ``scope`` (an L2 construct or a CfnResource) and its children."""
        for pack in self.packs:
            Validations.of(scope).acknowledge(
                Acknowledgment(id=f"{pack}-{self.rule}", reason=self.reason)
            )
        if self.checkov:
            resource = scope if isinstance(scope, CfnResource) else scope.node.default_child
            if not isinstance(resource, CfnResource):
                raise TypeError(f"{scope.node.path} has no CloudFormation resource to skip on")
            existing = resource.get_metadata("checkov") or {"skip": []}
            skips = existing["skip"] + [{"id": c, "comment": self.reason} for c in self.checkov]
            resource.add_metadata("checkov", {"skip": skips})


LOG_GROUP_SERVICE_KEY = Waiver(
    rule="CloudWatchLogGroupEncrypted",
    packs=(NIST_800_53_R5, HIPAA_SECURITY, PCI_DSS_321),
    checkov=("CKV_AWS_158",),
    reason="CloudWatch Logs always encrypts log data at rest (with a service key). A customer "
    "managed key is optional: pass encryption_key= to the engine.",
)
TABLE_AWS_KEY = Waiver(
    rule="DynamoDBCMK",
    packs=(),
    checkov=("CKV_AWS_119",),
    reason="The ledger is encrypted at rest with the AWS managed DynamoDB key. A customer "
    "managed key is optional: pass encryption_key= to the engine.",
)
ENVIRONMENT_AWS_KEY = Waiver(
    rule="LambdaEnvironmentCMK",
    packs=(),
    checkov=("CKV_AWS_173",),
    reason="The environment holds only names and ARNs (the ledger table's, the registry's "
    "deploy-time values), encrypted at rest by Lambda with an AWS managed key. A customer "
    "managed key is optional: pass encryption_key=.",
)
BACKUP_BY_PITR = Waiver(
    rule="DynamoDBInBackupPlan",
    packs=(NIST_800_53_R5, HIPAA_SECURITY),
    reason="The ledger has point-in-time recovery (35 days of continuous backups) and is "
    "retained when the stack is deleted. AWS Backup plans are set per account or "
    "organization (backup policies), not by a library.",
)
CDK_GRANT_POLICY = Waiver(
    rule="IAMNoInlinePolicy",
    packs=(NIST_800_53_R5, HIPAA_SECURITY, PCI_DSS_321),
    reason="CDK grants write each role's statements to a policy of that role alone, created "
    "and deleted with it; a managed policy would add a reusable attachment point, not "
    "remove a permission. The statements are scoped per resource (the least-privilege test).",
)
UNRESERVED_CONCURRENCY = Waiver(
    rule="LambdaConcurrency",
    packs=(NIST_800_53_R5, HIPAA_SECURITY),
    checkov=("CKV_AWS_115",),
    reason="Reserving concurrency takes it from the account's unreserved pool, and AWS rejects "
    "a reservation that leaves less than its minimum: a library cannot know what is free. "
    "Invocations come from the workflows (bounded by max_concurrent_jobs); pass "
    "reserved_concurrency= to the engine to reserve.",
)
SYNCHRONOUS_ONLY = Waiver(
    rule="LambdaDLQ",
    packs=(SERVERLESS, NIST_800_53_R5, HIPAA_SECURITY),
    checkov=("CKV_AWS_116",),
    reason="Only Step Functions invokes this function, synchronously: a Lambda DLQ applies to "
    "asynchronous invocations only. Failures reach the state's Retry and Catch, and a "
    "failed run is recorded, notified and alarmed.",
)
OUTSIDE_VPC = Waiver(
    rule="LambdaInsideVPC",
    packs=(NIST_800_53_R5, HIPAA_SECURITY, PCI_DSS_321),
    checkov=("CKV_AWS_117",),
    reason="The function calls only AWS APIs (SageMaker, DynamoDB, Application Auto Scaling) "
    "over TLS and reaches no resource in a VPC. Pass vpc= to the engine to run it in one "
    "(with NAT or VPC endpoints for those APIs).",
)
IS_DEAD_LETTER_QUEUE = Waiver(
    rule="SQSRedrivePolicy",
    packs=(SERVERLESS,),
    reason="This queue is the dead-letter queue of the engine's rules and asynchronous "
    "invocations: nothing consumes it, so no message is redriven from it. It keeps messages "
    "14 days (SQS's maximum) and alarms on the first one.",
)
ALARM_READ_BY_RULE = Waiver(
    rule="CloudWatchAlarmAction",
    packs=(NIST_800_53_R5, HIPAA_SECURITY),
    reason="The latency alarm's state change reaches the engine as an EventBridge event (the "
    "engine's rule for AWS's events, which routes it to the alarm's endpoint), which starts "
    "a run: CloudWatch alarm actions cannot start a Step Functions execution. Failed runs "
    "are notified on the topic.",
)
DEAD_LETTERS_SQS_KEY = Waiver(
    rule="SQSQueueKMS",
    packs=(),
    checkov=("CKV_AWS_27",),
    reason="The dead-letter queue is encrypted at rest with SQS-managed keys (SSE-SQS): "
    "EventBridge cannot deliver to a queue under the AWS managed SQS KMS key, and a "
    "customer managed key would need a key policy naming every rule's service.",
)
VPC_NETWORK_INTERFACES = Waiver(
    rule="VpcNetworkInterfaces",
    packs=(),
    checkov=("CKV_AWS_111",),
    reason="A function in a VPC needs the network-interface actions of AWS's "
    "AWSLambdaVPCAccessExecutionRole on every resource: Lambda creates the interfaces with "
    "generated IDs, and ec2:DescribeNetworkInterfaces has no resource-level permissions "
    "(Lambda developer guide, 'Giving Lambda functions access to a VPC').",
)
#: Every waiver the library applies (README, "Compliance").
WAIVERS = (
    LOG_GROUP_SERVICE_KEY,
    TABLE_AWS_KEY,
    ENVIRONMENT_AWS_KEY,
    BACKUP_BY_PITR,
    CDK_GRANT_POLICY,
    UNRESERVED_CONCURRENCY,
    SYNCHRONOUS_ONLY,
    OUTSIDE_VPC,
    IS_DEAD_LETTER_QUEUE,
    ALARM_READ_BY_RULE,
    DEAD_LETTERS_SQS_KEY,
    VPC_NETWORK_INTERFACES,
)
