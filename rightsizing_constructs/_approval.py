"""``ApplyMode.APPROVAL``: the Apply workflow waits for a person's answer before changing anything.

Step Functions' callback pattern (Step Functions Developer Guide, "Wait for a Callback with
Task Token"): ``WaitForApproval`` invokes the ApplyStep function with ``.waitForTaskToken``;
the function stores the task token in the ledger (``approval#<variant>`` under the endpoint's
``pk``), and the execution waits until ``SendTaskSuccess`` (approve) or ``SendTaskFailure``
(reject) names that token, or until the state's time-out, when Step Functions raises
``States.Timeout`` ("Error handling in Step Functions": a Task's ``TimeoutSeconds``). Its
``TimeoutSecondsPath`` reads the endpoint's ``approval_timeout_seconds`` from the apply
settings, so endpoints of one engine each keep their own ``approval_timeout``.

    CheckApplyInput -> NeedsApproval? (apply settings with approval_timeout_seconds)
      -> RequestApproval (what would change and what it saves) -> AskForApproval (SNS)
      -> WaitForApproval (token in the ledger) -> AcquireLock -> Snapshot -> ...
    rejected, timed out, or any error while asking -> Record ("rejected"/"failed") -> ...

The lock is not held while the run waits (a wait of days must not block another run, a
rollback or the cleanup of a dead run): it is taken after the approval, and the snapshot is
read then, so an endpoint changed meanwhile is judged as it is when the change starts (an
endpoint that already runs the recommendation records ``no-change``).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from . import _workflow

#: ``approval_timeout`` when none is given: a long weekend.
DEFAULT_APPROVAL_TIMEOUT = Duration.days(3)
#: The shortest ``approval_timeout`` the construct takes (a person must be able to answer).
MIN_APPROVAL_TIMEOUT = Duration.minutes(1)
#: The longest: the Apply machine's ``TimeoutSeconds`` must outlive it (:mod:`._duration`),
#: and a Standard execution runs at most a year (Step Functions quotas).
MAX_APPROVAL_TIMEOUT = Duration.days(30)
#: The apply settings' field with the approval time-out, in seconds (APPROVAL endpoints only).
TIMEOUT_FIELD = "approval_timeout_seconds"
TIMEOUT_PATH = f"$.settings.{TIMEOUT_FIELD}"
#: Where the approval's answer (or the error that stood for one) is kept in the state.
RESULT_PATH = "$.approval"


def approval_states(
    scope: Construct,
    *,
    function: lambda_.IFunction,
    topic: sns.ITopic,
    then: sfn.IChainable,
    not_approved: sfn.IChainable,
) -> sfn.Choice:
    """NeedsApproval? -> RequestApproval -> AskForApproval -> WaitForApproval -> ``then``.

    Endpoints without ``approval_timeout_seconds`` in their apply settings go to ``then`` at
    once (``ApplyMode.AUTO``). A rejection, a time-out or an error while asking goes to
    ``not_approved`` with the error at ``$.approval`` (the Record step reads it).
    """
    request = _workflow.invoke(
        scope,
        "RequestApproval",
        state_name="RequestApproval",
        function=function,
        payload={
            "step": "request_approval",
            "state": sfn.JsonPath.entire_payload,
            "execution_arn": sfn.JsonPath.execution_id,
        },
        result_path="$.approval_request",
    )
    ask = _workflow.notify(
        scope,
        "AskForApproval",
        topic=topic,
        subject=sfn.JsonPath.format(
            "Rightsizing approval needed: {}", sfn.JsonPath.string_at("$.settings.endpoint_name")
        ),
        message={
            "endpoint_name": sfn.JsonPath.string_at("$.settings.endpoint_name"),
            "variant_name": sfn.JsonPath.string_at("$.settings.variant_name"),
            "summary": sfn.JsonPath.string_at("$.approval_request.summary"),
            "change": sfn.JsonPath.object_at("$.approval_request.change"),
            "approve": sfn.JsonPath.string_at("$.approval_request.approve_command"),
            "reject": sfn.JsonPath.string_at("$.approval_request.reject_command"),
            "expires_at": sfn.JsonPath.string_at("$.approval_request.expires_at"),
            "execution": sfn.JsonPath.execution_id,
        },
    )
    wait = tasks.LambdaInvoke(
        scope,
        "WaitForApproval",
        state_name="WaitForApproval",
        lambda_function=function,
        integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
        payload=sfn.TaskInput.from_object(
            {
                "step": "await_approval",
                "state": sfn.JsonPath.entire_payload,
                "execution_arn": sfn.JsonPath.execution_id,
                "task_token": sfn.JsonPath.task_token,
            }
        ),
        # No heartbeat: a person answers once. No Retry (not even CDK's default one of Lambda
        # service errors): each attempt could wait the whole time-out again.
        retry_on_service_exceptions=False,
        task_timeout=sfn.Timeout.at(TIMEOUT_PATH),
        result_path=RESULT_PATH,
    )
    for state in (request, ask, wait):
        state.add_catch(not_approved, errors=["States.ALL"], result_path=RESULT_PATH)
    return (
        sfn.Choice(scope, "NeedsApproval")
        .when(sfn.Condition.is_present(TIMEOUT_PATH), request.next(ask).next(wait).next(then))
        .otherwise(then)
    )
