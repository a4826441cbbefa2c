"""The centre never trusts a hub's wall clock: the hub's clock is measured against receive times
(`hub_clock_wrong`), and every rule that compares times sees the hub's messages on the centre's
clock while the hub's is wrong. Receive times (`received_at`) are the centre's; `hub` times are
what a hub with a wrong clock stamps."""

from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerting.inhibit import MUTES
from alerting.policy import SUPERVISION, policy_for
from detection.clock import MAX_CLOCK_OFFSET, WINDOW, HubClock, Verdict, describe
from detection.decisions import Decision
from detection.engine import Clear, Engine, Raise
from detection.rules import CATALOGUE, RuleId, RuleKind
from telecare_protocol import DeviceEvent, DeviceStatus, EventCode, Heartbeat, Power, Reading
from tests.support.detection_builders import HUB, at, event, profile, raised, spo2

AHEAD = timedelta(hours=1)
BEHIND = -timedelta(days=14)


def heartbeat(hub_time: datetime, uptime_s: float, *, interval_s: int = 60, outbox_depth: int = 0,
              devices: tuple[DeviceStatus, ...] = ()) -> Heartbeat:
    return Heartbeat(hub_id=HUB, device_id=HUB, source_ts=hub_time, hub_ts=hub_time, power=Power.MAINS,
                     uptime_s=uptime_s, interval_s=interval_s, outbox_depth=outbox_depth, devices=devices)


def stamped(message: DeviceEvent | Reading, hub_time: datetime) -> Any:
    """The message as a hub whose clock reads `hub_time` stamps it."""
    return message.model_copy(update={"source_ts": hub_time, "hub_ts": hub_time})


def beating(engine: Engine, offset: timedelta, start: datetime, minutes: int, *, uptime0: float = 100.0,
            devices: tuple[DeviceStatus, ...] = ()) -> list[Decision]:
    """A live hub whose clock is `offset` off, beating every minute from `start` (centre time) for `minutes`."""
    out: list[Decision] = []
    for i in range(minutes + 1):
        received = start + timedelta(minutes=i)
        out += engine.observe(heartbeat(received + offset - timedelta(milliseconds=200), uptime0 + 60 * i,
                                        devices=devices), received)
    return out


def clock_alerts(decisions: list[Decision]) -> list[Raise]:
    return [d for d in decisions if isinstance(d, Raise) and d.rule == "hub_clock_wrong"]


# The estimate --------------------------------------------------------------------------------------------------


def test_the_offset_is_the_highest_sample_so_a_delay_never_looks_like_a_clock() -> None:
    clock = HubClock()
    received = at(hours=10)
    clock.observe(heartbeat(received - timedelta(seconds=1), 100), received)  # live: 1 s in transit
    late = stamped(event(at(), "door-001", EventCode.DOOR_OPENED), received - timedelta(hours=3))
    clock.observe(late, received + timedelta(seconds=5))  # from the outbox, 3 h late
    assert clock.estimate == -timedelta(seconds=1)
    assert clock.verdict is Verdict.RIGHT
    clock.expire(received + WINDOW + timedelta(seconds=6))
    assert clock.estimate is None and clock.verdict is Verdict.UNKNOWN


@pytest.mark.parametrize(("offset", "words"), [(AHEAD, "1 h 0 min ahead"), (BEHIND, "14 days behind"),
                                               (timedelta(minutes=3, seconds=5), "3 min 5 s ahead")])
def test_offsets_are_described_as_an_operator_reads_them(offset: timedelta, words: str) -> None:
    assert describe(offset) == words


# hub_clock_wrong -----------------------------------------------------------------------------------------------


def test_a_hub_clock_ahead_is_raised_at_once_and_once() -> None:
    engine = Engine([profile()])
    decisions = beating(engine, AHEAD, at(hours=10), minutes=5)
    [alert] = clock_alerts(decisions)
    assert (alert.subject, alert.priority, alert.title) == (HUB, 4, f"Hub {HUB} clock wrong: 1 h 0 min ahead")
    assert alert.at == at(hours=10)  # on the first heartbeat: no delay makes a stamp later than its receipt
    assert alert.explanation["direction"] == "ahead"
    assert alert.explanation["offset_s"] == pytest.approx(3600, abs=1)
    assert alert.explanation["limit_s"] == MAX_CLOCK_OFFSET.total_seconds() == 120


def test_a_hub_clock_behind_is_raised_once_a_second_heartbeat_comes_at_the_hubs_pace() -> None:
    engine = Engine([profile()])
    first = beating(engine, BEHIND, at(hours=10), minutes=0)
    assert clock_alerts(first) == []  # late messages look the same: one heartbeat cannot tell
    [alert] = clock_alerts(beating(engine, BEHIND, at(hours=10, minutes=1), minutes=3, uptime0=160))
    assert alert.title == f"Hub {HUB} clock wrong: 14 days behind"
    assert alert.at == at(hours=10, minutes=1)
    assert alert.explanation["offset_s"] == pytest.approx(BEHIND.total_seconds(), abs=1)


def test_a_backlog_delivered_in_a_burst_is_late_not_a_clock_behind() -> None:
    """A restarted centre (or a reconnected hub) gets an hour of heartbeats in a second: right clock, late."""
    engine = Engine([profile()])
    start = at(hours=10)
    burst = [heartbeat(start - timedelta(minutes=60 - i), 100 + 60 * i) for i in range(60)]
    decisions = [d for i, beat in enumerate(burst) for d in engine.observe(beat, start + timedelta(milliseconds=i))]
    decisions += engine.observe(heartbeat(start + timedelta(seconds=30), 100 + 60 * 60 + 30),
                                start + timedelta(seconds=31))
    assert clock_alerts(decisions) == []
    assert engine.tick(start + timedelta(minutes=1)) == []


def test_a_heartbeat_sent_behind_a_backlog_in_the_outbox_does_not_confirm_a_clock_behind() -> None:
    engine = Engine([profile()])
    start = at(hours=10)
    decisions: list[Decision] = []
    for i in range(5):  # each heartbeat 5 min late, at the hub's pace, with thousands still to send
        decisions += engine.observe(heartbeat(start + timedelta(minutes=i - 5), 100 + 60 * i, outbox_depth=5000),
                                    start + timedelta(minutes=i))
    assert clock_alerts(decisions) == []


def test_a_clock_set_right_clears_the_alert_at_its_next_heartbeat() -> None:
    engine = Engine([profile()])
    beating(engine, AHEAD, at(hours=10), minutes=2)
    # NTP steps the clock back an hour: the heartbeat's hub_ts moved 1 h less than its uptime did.
    cleared = engine.observe(heartbeat(at(hours=10, minutes=3), 100 + 180), at(hours=10, minutes=3))
    assert [(type(d), d.rule, d.subject) for d in cleared] == [(Clear, "hub_clock_wrong", HUB)]

    behind = Engine([profile()])
    beating(behind, BEHIND, at(hours=10), minutes=2)
    cleared = behind.observe(heartbeat(at(hours=10, minutes=3), 100 + 180), at(hours=10, minutes=3))
    assert [(type(d), d.rule) for d in cleared] == [(Clear, "hub_clock_wrong")]


def test_the_clock_alert_goes_to_the_operators_once_and_is_muted_while_its_hub_is_offline() -> None:
    rule = CATALOGUE[RuleId.HUB_CLOCK_WRONG]
    assert (rule.kind, rule.priority, rule.per_device) == (RuleKind.SUPERVISION, 4, True)
    assert policy_for(rule.priority, "monitored", rule.rule) is SUPERVISION
    assert policy_for(rule.priority, "keyholder_only", rule.rule) is SUPERVISION
    assert RuleId.HUB_CLOCK_WRONG in MUTES[RuleId.HUB_OFFLINE]


def test_a_restarted_centre_does_not_raise_the_clock_alert_again() -> None:
    history: list[tuple[Heartbeat, datetime]] = []
    for i in range(3):
        received = at(hours=10, minutes=i)
        history.append((heartbeat(received + AHEAD, 100 + 60 * i), received))
    first = Engine([profile()])
    assert len(clock_alerts([d for beat, when in history for d in first.observe(beat, when)])) == 1
    restarted = Engine([profile()])
    restarted.warm_up(history)
    assert clock_alerts(restarted.observe(heartbeat(at(hours=10, minutes=3) + AHEAD, 280),
                                          at(hours=10, minutes=3))) == []


def test_a_recording_replayed_without_receive_times_trusts_its_hub_clocks() -> None:
    engine = Engine([profile()])
    decisions = [d for i in range(3) for d in engine.observe(heartbeat(at(days=400, minutes=i), 100 + 60 * i))]
    assert clock_alerts(decisions) == []


# Alarms --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [AHEAD, BEHIND, -timedelta(days=365 * 56)])  # 56 years: a Pi booted at 1970
def test_a_press_is_raised_at_once_at_its_receive_time_whatever_the_hubs_clock(offset: timedelta) -> None:
    engine = Engine([profile()])
    received = at(hours=10)
    press = stamped(event(at(), "pendant-001", EventCode.MANUAL_ALARM), received + offset)
    [alarm] = raised(engine.observe(press, received), "pendant_alarm")
    assert (alarm.priority, alarm.at) == (1, received)
    assert alarm.explanation["received_at"] == received.isoformat()
    fall = stamped(event(at(), "pendant-001", EventCode.FALL_DETECTED), received + offset + timedelta(minutes=1))
    assert [a.at for a in raised(engine.observe(fall, received + timedelta(minutes=1)), "fall")] == [
        received + timedelta(minutes=1)]


def test_presses_from_a_clock_ahead_are_compared_on_the_centres_clock() -> None:
    """A press from a clock an hour ahead, then one after NTP set it right: an hour apart by the hub's
    clock (the second one "late"), 30 s apart by the centre's: the same call (a double press), a repeat."""
    engine = Engine([profile()])
    beating(engine, AHEAD, at(hours=10), minutes=1)
    first = engine.observe(stamped(event(at(), "pendant-001", EventCode.MANUAL_ALARM), at(hours=11, minutes=1)),
                           at(hours=10, minutes=1))
    assert first[-1].explanation["clock"]["hub_source_ts"] == at(hours=11, minutes=1).isoformat()
    set_right = at(hours=10, minutes=1, seconds=15)
    assert [d.rule for d in engine.observe(heartbeat(set_right, 100 + 75), set_right)] == ["hub_clock_wrong"]  # clear
    second = engine.observe(stamped(event(at(), "pendant-001", EventCode.MANUAL_ALARM), at(hours=10, minutes=1,
                                                                                        seconds=29)),
                            at(hours=10, minutes=1, seconds=30))
    assert [d.explanation["episode"] for d in first + second if isinstance(d, Raise) and d.rule == "pendant_alarm"
            ] == ["new", "repeat"]


# Liveness ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [AHEAD, BEHIND])
def test_a_hub_beating_on_time_with_a_wrong_clock_is_never_offline_nor_its_devices_unseen(offset: timedelta) -> None:
    engine = Engine([profile()])
    start = at(hours=10)
    decisions: list[Decision] = []
    for i in range(30):
        received = start + timedelta(minutes=i)
        seen = DeviceStatus(device_id="door-001", last_seen=received + offset - timedelta(minutes=2), battery_pct=90)
        decisions += engine.observe(heartbeat(received + offset, 100 + 60 * i, devices=(seen,)), received)
        decisions += engine.tick(received + timedelta(seconds=30))
    assert {d.rule for d in decisions if isinstance(d, Raise)} == {"hub_clock_wrong"}


def test_a_hub_whose_clock_is_ahead_is_offline_when_its_heartbeats_stop() -> None:
    """Judged on its own clock, its last heartbeat would stay "in the future" for an hour."""
    engine = Engine([profile()])
    beating(engine, AHEAD, at(hours=10), minutes=2)  # last received 10:02, interval 60 s: offline after 10:05
    assert raised(engine.tick(at(hours=10, minutes=4)), "hub_offline") == []
    assert [a.rule for a in raised(engine.tick(at(hours=10, minutes=6)), "hub_offline")] == ["hub_offline"]


# Readings and the other rules that compare times ---------------------------------------------------------------


def test_a_reading_stamped_ahead_never_drives_a_threshold_on_its_own_time_axis() -> None:
    """The hub's clock is right, but one spot check comes stamped an hour ahead. On its own axis it would
    be the newest reading and the confirming re-measurement "late", on a stream of its own: no alarm."""
    engine = Engine([profile()])
    beating(engine, timedelta(0), at(hours=10), minutes=1)
    ahead = spo2(at(hours=11, minutes=2), 90.0).model_copy(update={"hub_ts": at(hours=10, minutes=2)})
    assert raised(engine.observe(ahead, at(hours=10, minutes=2))) == []
    [alarm] = raised(engine.observe(spo2(at(hours=10, minutes=6), 90.0), at(hours=10, minutes=6)), "spo2_low")
    readings = alarm.explanation["readings"]
    assert (readings["count"], readings["first"]["source_ts"]) == (2, at(hours=10, minutes=2).isoformat())
    assert alarm.explanation["late"] is False


def test_a_door_opened_by_a_clock_behind_is_not_open_for_an_hour() -> None:
    engine = Engine([profile()])
    behind = -timedelta(hours=1)
    beating(engine, behind, at(hours=10), minutes=2)
    engine.observe(stamped(event(at(), "door-001", EventCode.DOOR_OPENED), at(hours=9, minutes=3)),
                   at(hours=10, minutes=3))
    assert raised(engine.tick(at(hours=10, minutes=5)), "door_left_open") == []
    beating(engine, behind, at(hours=10, minutes=4), minutes=15, uptime0=100 + 240)
    assert [a.rule for a in raised(engine.tick(at(hours=10, minutes=19)), "door_left_open")] == ["door_left_open"]


def test_a_measurement_made_on_time_by_a_clock_behind_is_not_missed() -> None:
    engine = Engine([profile(measurement_schedule={"times": ["09:00"], "window_minutes": 60})])
    behind = -timedelta(hours=3)
    engine.observe(spo2(at(hours=7), 97.0), at(hours=7))  # the engine has heard of the person
    beating(engine, behind, at(hours=8, minutes=50), minutes=10)
    engine.observe(spo2(at(hours=6, minutes=5), 96.0).model_copy(update={"hub_ts": at(hours=6, minutes=5)}),
                   at(hours=9, minutes=5))
    beating(engine, behind, at(hours=9, minutes=6), minutes=60, uptime0=100 + 16 * 60)
    assert raised(engine.tick(at(hours=10, minutes=30)), "missed_measurement") == []


def test_no_device_is_unseen_and_no_activity_timer_fires_while_a_hubs_clock_is_in_doubt() -> None:
    """Messages far behind the receipt, not yet told from a clock behind: wait before judging by them."""
    engine = Engine([profile()])
    received = at(hours=10)
    seen = DeviceStatus(device_id="door-001", last_seen=received - timedelta(days=3), battery_pct=90)
    engine.observe(heartbeat(received - timedelta(days=3), 100, devices=(seen,)), received)
    engine.observe(stamped(event(at(), "door-001", EventCode.DOOR_OPENED), received - timedelta(days=3)), received)
    assert engine.tick(received + timedelta(minutes=1)) == []


# One call per reading: `place_reading` is `place`, in fewer steps ----------------------------------------------


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(["reading", "reading", "reading", "beat"]),
                                st.sampled_from([0, 0, 3, -1, -90, 150, 3600, -14 * 86400]),  # hub clock - centre's, s
                                st.sampled_from([0, 1, 60, 60, 300, 900]),  # seconds since the previous receipt
                                st.integers(-600, 200)), min_size=1, max_size=30))  # the reading's time vs its hub_ts
def test_placing_a_reading_in_one_call_changes_and_decides_what_place_does(
        steps: list[tuple[str, int, int, int]]) -> None:
    fast, full = Engine([profile()]), Engine([profile()])
    one, other = fast._people["home-001"].supervision, full._people["home-001"].supervision
    received = at(hours=8)
    uptime = 100.0
    for kind, offset_s, after_s, skew_s in steps:
        received += timedelta(seconds=after_s)
        uptime += after_s
        hub_time = received + timedelta(seconds=offset_s)
        if kind == "beat":
            beat = heartbeat(hub_time, uptime)
            assert one.place(beat, received) == other.place(beat, received)
        else:
            reading = spo2(hub_time, 96.0).model_copy(
                update={"source_ts": hub_time + timedelta(seconds=skew_s), "hub_ts": hub_time})
            quick = one.place_reading(reading, received)
            decisions, placed = other.place(reading, received)
            if quick is None:
                assert (decisions, placed) == ([], reading)
            else:
                assert quick == (decisions, placed)
        assert one.ctx.open == other.ctx.open  # what was raised or cleared, alike
        assert one.clocks[HUB].estimate == other.clocks[HUB].estimate
        assert one.clocks[HUB].verdict is other.clocks[HUB].verdict
