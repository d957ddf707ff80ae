"""When the Recommend workflow polls an IR job: one long first wait, then a poll a minute.

IR publishes no completion event (AWS_NOTES.md), so the workflow polls
``DescribeInferenceRecommendationsJob``; every state a Standard workflow enters is a billed
state transition, retries included (AWS Step Functions pricing, "Standard Workflows pricing
details"), and one poll enters four states (WaitBetweenPolls, DescribeJob, JobFinished,
CountPoll). Polling every minute from the start would cost about 180 transitions for a
45-minute job; polling every 5 minutes sees completion up to 5 minutes late. So the schedule
is derived from how long the job is expected to take ("Recommendation jobs with Amazon
SageMaker Inference Recommender": Default jobs complete within 45 minutes, Advanced ones take
about 2 hours depending on the job duration set):

- the first poll comes at two thirds of the expected duration (``first_wait_seconds``): a job
  that ends sooner, a fast failure included, is seen at that poll, up to that much late;
- from then on, a poll every ``min(poll_interval, 60 s)``, so a job that ends after the first
  poll is seen within a minute of its end;
- up to the endpoint's ``timeout``: the last poll is the first one at or past it
  (``max_polls`` of them in all); a timeout shorter than the first wait moves the first (and
  only) poll to the timeout.

Pure arithmetic on whole seconds: the construct writes the result into each endpoint's
settings document (``first_poll_seconds``, ``max_polls``) and ``tools/poll_bench.py`` checks
it against the synthesized state machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: After the first poll, polls are at most this far apart: completion is seen within a minute.
MAX_POLL_GAP_SECONDS = 60
#: The first poll comes at this fraction of the job's expected duration (numerator, denominator).
FIRST_POLL_FRACTION = (2, 3)


@dataclass(frozen=True)
class PollSchedule:
    """When one IR job is polled, in seconds after StartJob (Describe calls take no time here)."""

    #: The wait before the first poll.
    first_wait_seconds: int
    #: The wait between later polls.
    interval_seconds: int
    #: How many polls at most; the last one that finds the job running times the run out.
    max_polls: int

    @property
    def last_poll_seconds(self) -> int:
        """When the last poll comes: at or just past the timeout."""
        return self.first_wait_seconds + (self.max_polls - 1) * self.interval_seconds

    def poll_at(self, number: int) -> int:
        """When poll ``number`` (1-based) comes."""
        return self.first_wait_seconds + (number - 1) * self.interval_seconds

    def first_poll_after(self, seconds: float) -> int | None:
        """The number of the first poll at or after ``seconds``; None past the last poll."""
        if seconds <= self.first_wait_seconds:
            return 1
        number = 1 + math.ceil((seconds - self.first_wait_seconds) / self.interval_seconds)
        return number if number <= self.max_polls else None


def poll_gap_seconds(poll_interval_seconds: int) -> int:
    """The wait between polls after the first: the engine's ``poll_interval``, at most 60 s."""
    return min(poll_interval_seconds, MAX_POLL_GAP_SECONDS)


def first_wait_seconds(expected_seconds: int) -> int:
    """Two thirds of the expected duration, in whole seconds (rounded down)."""
    numerator, denominator = FIRST_POLL_FRACTION
    return expected_seconds * numerator // denominator


def poll_schedule(
    *, expected_seconds: int, timeout_seconds: int, poll_interval_seconds: int
) -> PollSchedule:
    """The schedule of a job expected to take ``expected_seconds``, stopped at ``timeout_seconds``.

    All three are whole seconds, at least 1 (the settings' validation says so first).
    """
    for name, value in (
        ("expected_seconds", expected_seconds),
        ("timeout_seconds", timeout_seconds),
        ("poll_interval_seconds", poll_interval_seconds),
    ):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number of seconds, at least 1, got {value!r}")
    interval = poll_gap_seconds(poll_interval_seconds)
    first = min(first_wait_seconds(expected_seconds), timeout_seconds)
    return PollSchedule(
        first_wait_seconds=first,
        interval_seconds=interval,
        max_polls=1 + math.ceil((timeout_seconds - first) / interval),
    )
