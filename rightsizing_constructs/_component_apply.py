"""The Apply workflow's inference component branch (issue #17), after the shared lock.

``ApplyKind`` sends a recommendation whose detail has ``"kind": "inference-component"`` here:
ComponentSnapshot -> ComponentAlreadyApplied? -> UpdateComponent -> the bounded watch ->
EnsureComponentAutoscaling -> the shared Record. The approval wait, the lock, Record, Notify,
PublishOutcome and ReleaseLock stay the endpoint path's (``apply_workflow.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from ._runtime import import_runtime
from ._workflow import PollNames, bounded_poll, max_polls

if TYPE_CHECKING:
    from .apply_workflow import _Steps

#: Inference component statuses of an update still under way (the runtime's, so poll and step
#: agree).
COMPONENT_BUSY_STATUSES: tuple[str, ...] = tuple(
    sorted(import_runtime("component_apply").BUSY_STATUSES)
)
#: The recommendation kind that takes the inference component path.
COMPONENT_KIND: str = import_runtime("component_decision").KIND
#: The state the component's update watch loops through (its poll budget bounds the loop).
COMPONENT_LOOP = "WaitForComponent"
#: The run's recommendation is for an inference component; IsPresent first, as a rule on a
#: missing path fails the execution (States.Runtime).
IS_COMPONENT = sfn.Condition.and_(
    sfn.Condition.is_present("$.recommendation.kind"),
    sfn.Condition.string_equals("$.recommendation.kind", COMPONENT_KIND),
)


def retry_component_ensure(
    ensure: tasks.LambdaInvoke, poll_interval: Duration, busy_retries: int
) -> None:
    """The invariant keeper's retries: wait out an update, then retry hard before giving up."""
    ensure.add_retry(
        errors=["ComponentBusyError"],
        interval=poll_interval,
        max_attempts=busy_retries,
        backoff_rate=1,
    )
    ensure.add_retry(
        errors=["States.ALL"], interval=Duration.seconds(5), max_attempts=6, backoff_rate=2
    )


def component_path(
    scope: Construct, steps: _Steps, poll_interval: Duration, update_timeout: Duration
) -> sfn.IChainable:
    """ComponentSnapshot -> ComponentAlreadyApplied? -> UpdateComponent -> watch -> Ensure.

    The scalable target is never deregistered on this path (``component_apply``: AWS refuses
    no inference component update on an autoscaled target), so an error before the update is
    recorded as it is, and one after it restores the snapshot's autoscaling (or puts the
    recommended one, if the update went through).
    """
    steps.component_snapshot.add_catch(steps.record, errors=["States.ALL"], result_path="$.error")
    for step in (steps.component_update, steps.component_check):
        step.add_catch(steps.component_ensure, errors=["States.ALL"], result_path="$.error")
    steps.component_ensure.add_catch(steps.record, errors=["States.ALL"], result_path="$.error")
    steps.component_ensure.next(steps.record)
    timed_out = sfn.Pass(
        scope,
        "ComponentUpdateTimedOut",
        parameters={
            "Error": "UpdateTimedOut",
            "Cause": "the inference component update did not finish within "
            + update_timeout.to_human_string(),
        },
        result_path="$.error",
    )
    watch = bounded_poll(
        scope,
        names=PollNames(
            start="StartWatchingComponent",
            wait=COMPONENT_LOOP,
            count="CountComponentPoll",
            finished="ComponentUpdateFinished",
            budget_spent="ComponentBudgetSpent",
        ),
        check=steps.component_check,
        status_path="$.update.status",
        busy_statuses=COMPONENT_BUSY_STATUSES,
        poll_interval=poll_interval,
        max_polls=max_polls(update_timeout, poll_interval),
        on_timeout=timed_out.next(steps.component_ensure),
        on_done=steps.component_ensure,
    )
    steps.component_update.next(watch)
    already = (
        sfn.Choice(scope, "ComponentAlreadyApplied")
        .when(
            sfn.Condition.and_(
                sfn.Condition.boolean_equals("$.snapshot.already_applied", True),
                sfn.Condition.boolean_equals("$.snapshot.repair_autoscaling", True),
            ),
            steps.component_ensure,
        )
        .when(sfn.Condition.boolean_equals("$.snapshot.already_applied", True), steps.record)
        .otherwise(steps.component_update)
    )
    return steps.component_snapshot.next(already)
