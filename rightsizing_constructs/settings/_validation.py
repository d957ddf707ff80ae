"""Checks every settings type makes the same way: problems collected, tokens, numbers.

A settings object checks its own fields when created and keeps what is wrong
(:func:`problems_of`); the construct it is given to reports those problems together with its
own, in one ``ValueError`` (README: "one message listing every problem"). Values that are
unresolved CDK tokens are not checked: they are only known at deploy time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Duration, Token

from .._rules import is_number, latency_ms_problems

__all__ = [
    "ValidationProblems",
    "is_number",
    "is_token",
    "millisecond_problems",
    "seconds_problems",
]


class ValidationProblems:
    """Collects what is wrong with a set of settings, to raise it once."""

    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.problems: list[str] = []

    def check(self, ok: bool, problem: str) -> None:
        """Record ``problem`` unless ``ok``."""
        if not ok:
            self.problems.append(problem)

    def extend(self, problems: Sequence[str]) -> None:
        """Record problems found elsewhere."""
        self.problems.extend(problems)

    def include(self, name: str, settings: object) -> None:
        """The problems a settings object found in itself, named after the field holding it."""
        self.problems.extend(f"{name}: {problem}" for problem in problems_of(settings))

    def keep_on(self, settings: object) -> None:
        """Keep the recorded problems on ``settings`` (a frozen dataclass), for its construct."""
        object.__setattr__(settings, "_problems", tuple(self.problems))

    def raise_if_any(self) -> None:
        """Raise one ``ValueError`` listing every recorded problem."""
        if self.problems:
            lines = "\n".join(f"  - {problem}" for problem in self.problems)
            raise ValueError(f"Invalid {self.subject}:\n{lines}")


def problems_of(settings: object) -> tuple[str, ...]:
    """What a settings object found wrong with itself when it was created (empty: nothing)."""
    return tuple(getattr(settings, "_problems", ()))


def human(duration: Duration) -> str:
    """A duration as people write it (``150.5 millis``), for messages."""
    try:
        return str(duration.to_human_string())
    except Exception:  # jsii raises a plain Error for some values
        return str(duration.to_string())


def is_token(value: Any) -> bool:
    """Whether ``value`` is only known at deploy time (a CDK token), so cannot be checked now."""
    if isinstance(value, str) and "Token[" not in value:
        # The CDK encodes a token in a string as ${Token[...]} (aws-cdk-lib core/lib/private/
        # encoding: BEGIN_STRING_TOKEN_MARKER; a list token "#{Token["): a string without it
        # is a literal, known without a call into the CDK's Node.js process (a fleet's
        # settings hold thousands of strings).
        return False
    return Token.is_unresolved(value)


def millisecond_problems(name: str, duration: Any) -> list[str]:
    if not isinstance(duration, Duration):
        return [f"{name} must be a Duration such as Duration.millis(200), got {duration!r}"]
    if is_token(duration.to_string()):
        return []
    # integral=False: a fractional amount is reported by the shared rule, in its words, not
    # as jsii's conversion error.
    return latency_ms_problems(name, duration.to_milliseconds(integral=False))


def seconds_problems(name: str, duration: Any) -> list[str]:
    seconds, found = _whole_seconds(name, duration, "Duration.minutes(2)")
    if seconds is None:
        return found
    return [] if seconds >= 1 else [f"{name} must be at least 1 second, got {seconds} s"]


def duration_range_problems(
    name: str, duration: Any, shortest: Duration, longest: Duration
) -> list[str]:
    """A whole number of seconds from ``shortest`` to ``longest`` (a token is not checked)."""
    seconds, found = _whole_seconds(name, duration, "Duration.days(1)")
    if seconds is None or shortest.to_seconds() <= seconds <= longest.to_seconds():
        return found
    return [f"{name} must be from {human(shortest)} to {human(longest)}, got {human(duration)}"]


def _whole_seconds(name: str, duration: Any, example: str) -> tuple[float | None, list[str]]:
    """The seconds of ``duration``, or None with what is wrong (nothing, for a token)."""
    if not isinstance(duration, Duration):
        return None, [f"{name} must be a Duration such as {example}, got {duration!r}"]
    if is_token(duration.to_string()):
        return None, []
    try:
        return duration.to_seconds(), []
    except Exception:  # jsii raises a plain Error for fractional values
        return None, [f"{name} must be a whole number of seconds, got {human(duration)}"]
