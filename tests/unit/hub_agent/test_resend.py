"""The resend timer for messages the centre has not acknowledged: exponential backoff, capped."""

import pytest

from hub_agent.resend import ACK_TIMEOUT_S, RESEND_MAX_S, ResendSchedule


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def resend_times(schedule: ResendSchedule, clock: Clock, message_id: str, until_s: float) -> list[float]:
    """Publish, then whenever the timer runs out count a resend and publish again (PUBACK at once)."""
    start = clock.now
    times = []
    schedule.published(message_id)
    while clock.now - start < until_s:
        clock.now += 0.5
        if schedule.due() == [message_id]:
            times.append(clock.now - start)
            schedule.published(message_id)
    return times


def test_the_wait_doubles_from_the_first_timeout_up_to_the_cap() -> None:
    clock = Clock()
    schedule = ResendSchedule(first_s=5.0, max_s=60.0, clock=clock)
    assert resend_times(schedule, clock, "m", 300) == [5.0, 15.0, 35.0, 75.0, 135.0, 195.0, 255.0]


def test_the_defaults_give_up_to_a_minute_between_tries() -> None:
    assert (ACK_TIMEOUT_S, RESEND_MAX_S) == (5.0, 60.0)
    clock = Clock()
    schedule = ResendSchedule(clock=clock)
    assert resend_times(schedule, clock, "m", 200) == [5.0, 15.0, 35.0, 75.0, 135.0, 195.0]


def test_an_ack_stops_the_timer() -> None:
    clock = Clock()
    schedule = ResendSchedule(first_s=1.0, max_s=8.0, clock=clock)
    schedule.published("a")
    schedule.published("b")
    schedule.acknowledged(["a", "never-published"])
    clock.now += 1.0
    assert schedule.due() == ["b"]
    assert len(schedule) == 1
    schedule.acknowledged(["b"])
    assert len(schedule) == 0 and schedule.next_due_in() is None


def test_nothing_is_due_before_its_time_and_the_next_deadline_is_known() -> None:
    clock = Clock()
    schedule = ResendSchedule(first_s=2.0, max_s=8.0, clock=clock)
    schedule.published("a")
    clock.now += 0.5
    schedule.published("b")
    assert schedule.next_due_in() == pytest.approx(1.5)
    clock.now += 1.4
    assert schedule.due() == []
    clock.now += 0.1
    assert schedule.due() == ["a"]
    assert schedule.next_due_in() == pytest.approx(0.5)
    clock.now += 10
    assert schedule.due() == ["b"]
    assert schedule.due() == []  # each resend counted once


def test_a_second_puback_restarts_the_timer_with_the_current_timeout() -> None:
    clock = Clock()
    schedule = ResendSchedule(first_s=2.0, max_s=8.0, clock=clock)
    schedule.published("a")
    clock.now += 1.5
    schedule.published("a")  # a duplicate PUBACK (paho resent it after a reconnect)
    clock.now += 1.0
    assert schedule.due() == []
    clock.now += 1.0
    assert schedule.due() == ["a"]


def test_a_dropped_link_stops_the_timers_but_keeps_the_backoff() -> None:
    clock = Clock()
    schedule = ResendSchedule(first_s=2.0, max_s=16.0, clock=clock)
    schedule.published("a")
    clock.now += 2
    assert schedule.due() == ["a"]
    schedule.published("a")
    schedule.stop_timers()
    clock.now += 100
    assert schedule.due() == [] and schedule.next_due_in() is None
    schedule.published("a")  # sent again after the reconnect
    assert schedule.timeout_s("a") == 4.0


def test_timeouts_must_make_sense() -> None:
    with pytest.raises(ValueError):
        ResendSchedule(first_s=0)
    with pytest.raises(ValueError):
        ResendSchedule(first_s=10, max_s=5)
