"""How long a state machine can run at worst, read from its own definition (ASL).

A state machine's ``TimeoutSeconds`` must outlive its longest path, or Step Functions ends the
run in the middle of it and skips what should come last (the record, the lock's release). The
bound is computed from the states' own numbers, so a retry added later is counted:

- a Task runs at most ``1 + sum(MaxAttempts)`` times (each Retry entry counts its own attempts,
  so errors that alternate between entries get all of them), each attempt at most its
  ``TimeoutSeconds`` (``task_seconds`` when it has none: a Lambda invocation lasts at most its
  function's timeout; a ``TimeoutSecondsPath`` counts its bound in ``path_seconds``: the
  longest value the input may carry there), plus every entry's waits
  ``IntervalSeconds * BackoffRate^i`` (capped by ``MaxDelaySeconds``; Step Functions'
  defaults: 3 attempts, 1 s, rate 2);
- a Wait state waits its ``Seconds``; Pass, Choice, Succeed and Fail take no time;
- a cycle (a poll loop) runs at most ``loop_bounds`` times: each of its states is counted that
  many times, an upper bound for a loop that counts its polls;
- the longest path follows ``Next``, every Choice branch and ``Default``, and every ``Catch``.

Step Functions developer guide, "Handling errors in Step Functions workflows" (Retry fields and
their defaults) and "Wait workflow state".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: Step Functions' defaults for a Retry entry's fields.
_DEFAULT_ATTEMPTS = 3
_DEFAULT_INTERVAL = 1
_DEFAULT_BACKOFF = 2.0


def retry_seconds(retriers: list[Mapping[str, Any]]) -> tuple[int, float]:
    """Attempts at most (the first included) and the longest total wait of a Task's ``Retry``."""
    attempts, waits = 1, 0.0
    for retrier in retriers:
        count = int(retrier.get("MaxAttempts", _DEFAULT_ATTEMPTS))
        interval = float(retrier.get("IntervalSeconds", _DEFAULT_INTERVAL))
        rate = float(retrier.get("BackoffRate", _DEFAULT_BACKOFF))
        cap = float(retrier.get("MaxDelaySeconds", math.inf))
        attempts += count
        waits += sum(min(interval * rate**i, cap) for i in range(count))
    return attempts, waits


def state_seconds(
    state: Mapping[str, Any], task_seconds: float, path_seconds: Mapping[str, float] | None = None
) -> float:
    """The longest one pass through ``state`` can take."""
    kind = state["Type"]
    if kind == "Wait":
        if "Seconds" not in state:
            raise ValueError(f"a Wait state without fixed Seconds has no bound: {state}")
        return float(state["Seconds"])
    if kind == "Task":
        attempts, waits = retry_seconds(list(state.get("Retry", [])))
        timeout = float(state.get("TimeoutSeconds", task_seconds))
        if "TimeoutSecondsPath" in state:
            path = state["TimeoutSecondsPath"]
            if path not in (path_seconds or {}):
                raise ValueError(f"a TimeoutSecondsPath without a bound in path_seconds: {path}")
            timeout = float((path_seconds or {})[path])
        return attempts * timeout + waits
    if kind in ("Pass", "Choice", "Succeed", "Fail"):
        return 0.0
    raise ValueError(f"no bound for a {kind} state")


def successors(state: Mapping[str, Any]) -> list[str]:
    """Every state ``state`` can go to next."""
    found = [state["Next"]] if "Next" in state else []
    found += [choice["Next"] for choice in state.get("Choices", [])]
    found += [state["Default"]] if "Default" in state else []
    found += [catch["Next"] for catch in state.get("Catch", [])]
    return list(dict.fromkeys(found))


def worst_case_seconds(
    states: Mapping[str, Mapping[str, Any]],
    start: str,
    *,
    task_seconds: float,
    loop_bounds: Mapping[str, int],
    path_seconds: Mapping[str, float] | None = None,
) -> float:
    """The longest a run from ``start`` through ``states`` (ASL ``States``) can take.

    ``loop_bounds`` maps a state of each cycle to how many times the cycle may run (the poll
    budget); a cycle without one raises ``ValueError``: it has no bound. ``path_seconds`` maps
    each ``TimeoutSecondsPath`` to the longest time-out it may give.
    """
    components = _cycles(states)
    component_of = {name: index for index, members in enumerate(components) for name in members}
    cost: list[float] = []
    for members in components:
        own = sum(state_seconds(states[name], task_seconds, path_seconds) for name in members)
        looping = len(members) > 1 or members[0] in successors(states[members[0]])
        if looping:
            bounds = {loop_bounds[name] for name in members if name in loop_bounds}
            if len(bounds) != 1:
                raise ValueError(f"the cycle {sorted(members)} needs one bound in loop_bounds")
            own *= bounds.pop()
        cost.append(own)
    longest: dict[int, float] = {}

    def through(component: int) -> float:
        if component not in longest:
            after = {
                component_of[following]
                for name in components[component]
                for following in successors(states[name])
            } - {component}
            longest[component] = cost[component] + max((through(c) for c in after), default=0.0)
        return longest[component]

    return through(component_of[start])


def _cycles(states: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """The strongly connected components of the state graph (Tarjan), each a list of names."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        for following in successors(states[name]):
            if following not in index:
                visit(following)
                low[name] = min(low[name], low[following])
            elif following in on_stack:
                low[name] = min(low[name], index[following])
        if low[name] == index[name]:
            members = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                members.append(member)
                if member == name:
                    break
            components.append(members)

    for name in states:
        if name not in index:
            visit(name)
    return components
