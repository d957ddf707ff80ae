"""The IR poll schedule (``_poll_schedule``) and the job's ``expected_duration``."""

from __future__ import annotations

import aws_cdk as cdk
import pytest

from rightsizing_constructs import RecommenderJob
from rightsizing_constructs._poll_schedule import PollSchedule, poll_gap_seconds, poll_schedule
from rightsizing_constructs.settings import problems_of
from tests.infra import rightsizing

MINUTE = 60


def test_a_default_job_is_first_polled_at_two_thirds_of_45_minutes() -> None:
    schedule = poll_schedule(
        expected_seconds=45 * MINUTE, timeout_seconds=120 * MINUTE, poll_interval_seconds=300
    )
    assert schedule == PollSchedule(
        first_wait_seconds=30 * MINUTE, interval_seconds=60, max_polls=91
    )
    # The last poll is the first one at or past the timeout.
    assert schedule.last_poll_seconds == 120 * MINUTE
    # A job ending at 45 minutes is seen by poll 16, at 45 minutes: 16 polls in all.
    assert schedule.first_poll_after(45 * MINUTE) == 16
    assert schedule.poll_at(16) == 45 * MINUTE


def test_a_job_ending_before_the_first_poll_is_seen_at_it() -> None:
    schedule = poll_schedule(
        expected_seconds=45 * MINUTE, timeout_seconds=120 * MINUTE, poll_interval_seconds=300
    )
    assert schedule.first_poll_after(5 * MINUTE) == 1
    assert schedule.poll_at(1) == 30 * MINUTE  # 25 minutes late: the documented overshoot


def test_a_job_still_running_after_the_last_poll_times_out() -> None:
    schedule = poll_schedule(
        expected_seconds=45 * MINUTE, timeout_seconds=120 * MINUTE, poll_interval_seconds=300
    )
    assert schedule.first_poll_after(120 * MINUTE + 1) is None


def test_a_timeout_shorter_than_the_first_wait_moves_the_one_poll_to_it() -> None:
    schedule = poll_schedule(
        expected_seconds=45 * MINUTE, timeout_seconds=20 * MINUTE, poll_interval_seconds=300
    )
    assert schedule == PollSchedule(
        first_wait_seconds=20 * MINUTE, interval_seconds=60, max_polls=1
    )
    assert schedule.last_poll_seconds == 20 * MINUTE


def test_a_timeout_not_a_whole_number_of_intervals_past_the_first_wait_rounds_up() -> None:
    schedule = poll_schedule(expected_seconds=90, timeout_seconds=200, poll_interval_seconds=60)
    # First poll at 60 s, then 120, 180, 240: the first at or past 200 s is the last.
    assert schedule == PollSchedule(first_wait_seconds=60, interval_seconds=60, max_polls=4)
    assert schedule.last_poll_seconds == 240


@pytest.mark.parametrize(
    ("poll_interval", "gap"), [(1, 1), (20, 20), (60, 60), (61, 60), (300, 60), (3600, 60)]
)
def test_polls_after_the_first_are_poll_interval_apart_at_most_a_minute(
    poll_interval: int, gap: int
) -> None:
    assert poll_gap_seconds(poll_interval) == gap
    schedule = poll_schedule(
        expected_seconds=45 * MINUTE,
        timeout_seconds=120 * MINUTE,
        poll_interval_seconds=poll_interval,
    )
    assert schedule.interval_seconds == gap


def test_a_job_expected_to_take_a_second_is_polled_at_once() -> None:
    schedule = poll_schedule(expected_seconds=1, timeout_seconds=3, poll_interval_seconds=1)
    assert schedule == PollSchedule(first_wait_seconds=0, interval_seconds=1, max_polls=4)


@pytest.mark.parametrize("value", [0, -1, 1.5, None])
def test_the_schedule_wants_whole_positive_seconds(value: object) -> None:
    with pytest.raises(ValueError, match="expected_seconds must be a whole number of seconds"):
        poll_schedule(expected_seconds=value, timeout_seconds=60, poll_interval_seconds=60)  # type: ignore[arg-type]


# -- expected_duration -------------------------------------------------------------------------


def test_expected_duration_defaults_to_45_minutes_or_the_job_duration() -> None:
    assert RecommenderJob.default().expected.to_minutes() == 45
    advanced = RecommenderJob.advanced(
        instance_types=["ml.c5.xlarge"], job_duration=cdk.Duration.hours(3)
    )
    assert advanced.expected.to_hours() == 3
    assert (
        RecommenderJob.default(expected_duration=cdk.Duration.minutes(20)).expected.to_minutes()
        == 20
    )


def test_expected_duration_longer_than_the_job_duration_is_refused() -> None:
    job = RecommenderJob.advanced(
        instance_types=["ml.c5.xlarge"],
        job_duration=cdk.Duration.hours(2),
        expected_duration=cdk.Duration.hours(3),
    )
    assert problems_of(job) == (
        "expected_duration (3 hours) is longer than job_duration (2 hours), when IR ends the "
        "job; lower it",
    )


@pytest.mark.parametrize(
    ("expected_duration", "message"),
    [
        (cdk.Duration.millis(1500), "expected_duration must be a whole number of seconds"),
        (cdk.Duration.millis(500), "expected_duration must be a whole number of seconds"),
        ("45 minutes", "expected_duration must be a Duration"),
    ],
)
def test_expected_duration_must_be_whole_known_seconds(
    expected_duration: object, message: str
) -> None:
    job = RecommenderJob.default(expected_duration=expected_duration)  # type: ignore[arg-type]
    assert any(message in problem for problem in problems_of(job)), problems_of(job)


def test_the_construct_refuses_a_bad_expected_duration() -> None:
    with pytest.raises(ValueError, match="expected_duration must be a whole number of seconds"):
        rightsizing(job=RecommenderJob.default(expected_duration=cdk.Duration.millis(1500)))
