"""The ledger: the decision record of every run, the endpoints' locks and the IR job slots.

One DynamoDB table, keys ``pk`` and ``sk`` (both strings): ``pk`` ``endpoint#<name>`` holds
the endpoint's recommendation records (``recommendation#<time>#<execution>``), apply records
(``run#<time>#<execution>``), findings (``finding#<window end>#<variant>``) and its ``lock``;
the job slots have their own partition (``rightsizing_runtime.job_slots``).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from ._nag import BACKUP_BY_PITR, TABLE_AWS_KEY


def create_ledger(scope: Construct, encryption_key: kms.IKey | None = None) -> dynamodb.Table:
    """The ledger table (``Ledger`` in ``scope``).

    Point-in-time recovery on, encrypted (with ``encryption_key`` if given, else the AWS
    managed key), kept when the stack is deleted (it is an audit trail).
    """
    table = dynamodb.Table(
        scope,
        "Ledger",
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED
        if encryption_key is not None
        else dynamodb.TableEncryption.AWS_MANAGED,
        encryption_key=encryption_key,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        removal_policy=RemovalPolicy.RETAIN,
    )
    BACKUP_BY_PITR.apply(table)
    if encryption_key is None:
        TABLE_AWS_KEY.apply(table)
    return table


def record_recommendation_run(
    scope: Construct,
    state_name: str,
    *,
    ledger: dynamodb.ITable,
    outcome: str,
    reason: str,
    record: str,
    endpoint_name_path: str = "$.settings.endpoint_name",
    sort_key_prefix: str = "recommendation",
) -> tasks.DynamoPutItem:
    """A task that writes a Recommend run's record to the ledger (DESIGN.md invariant 5).

    Keys: ``pk`` ``endpoint#<name>`` (the name at ``endpoint_name_path``), ``sk``
    ``<sort_key_prefix>#<time>#<execution>`` (``recommendation``; ``ignored`` for an event that
    names an endpoint the engine does not rightsize); ``outcome``, ``reason`` and ``record`` are
    JSONPath expressions or literals.
    """
    task = tasks.DynamoPutItem(
        scope,
        state_name,
        table=ledger,
        item={
            "pk": tasks.DynamoAttributeValue.from_string(
                sfn.JsonPath.format("endpoint#{}", sfn.JsonPath.string_at(endpoint_name_path))
            ),
            "sk": tasks.DynamoAttributeValue.from_string(
                sfn.JsonPath.format(
                    sort_key_prefix + "#{}#{}",
                    # The record's own time (moto's interpreter cannot format
                    # $$.Execution.StartTime, a datetime there).
                    sfn.JsonPath.string_at("$$.State.EnteredTime"),
                    sfn.JsonPath.string_at("$$.Execution.Name"),
                )
            ),
            "recorded_at": tasks.DynamoAttributeValue.from_string(
                sfn.JsonPath.string_at("$$.State.EnteredTime")
            ),
            "outcome": tasks.DynamoAttributeValue.from_string(outcome),
            "reason": tasks.DynamoAttributeValue.from_string(reason),
            "record": tasks.DynamoAttributeValue.from_string(record),
            "execution_arn": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.execution_id),
        },
        result_path=sfn.JsonPath.DISCARD,
    )
    task.add_retry(errors=["States.TaskFailed"], interval=Duration.seconds(5), max_attempts=4)
    return task
