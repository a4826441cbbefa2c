"""Alarms (button, cord, fall) and supervision (hub, devices, battery, power, tamper, data dropped)."""

from detection.engine import Clear, Engine, Raise
from telecare_protocol import DeviceStatus, EventCode, Power
from tests.support.detection_builders import HUB, at, beat, event, profile, raised, run


def test_pendant_press_and_pull_cord_are_priority_1_alarms() -> None:
    decisions = run(Engine([profile()]), [event(at(hours=3), "pendant-001", EventCode.MANUAL_ALARM),
                                          event(at(hours=9), "cord-001", EventCode.MANUAL_ALARM)])
    alarms = raised(decisions)
    assert [(a.rule, a.priority, a.title) for a in alarms] == [
        ("pendant_alarm", 1, "Help button pressed"), ("pendant_alarm", 1, "Pull cord pulled")]


def test_double_press_is_a_repeat_not_a_new_alarm() -> None:
    decisions = run(Engine([profile()]), [event(at(hours=3), "pendant-001", EventCode.MANUAL_ALARM),
                                          event(at(hours=3, seconds=20), "pendant-001", EventCode.MANUAL_ALARM)])
    assert [d.explanation["episode"] for d in decisions if isinstance(d, Raise)] == ["new", "repeat"]


def test_fall_alarms_and_cancelled_fall_is_only_remembered() -> None:
    engine = Engine([profile()])
    assert run(engine, [event(at(hours=1), "pendant-001", EventCode.FALL_CANCELLED)]) == []
    alarms = raised(run(engine, [event(at(hours=2), "pendant-001", EventCode.FALL_DETECTED)]))
    assert [(a.rule, a.priority) for a in alarms] == [("fall", 1)]
    assert alarms[0].explanation["cancelled_falls_24h"] == 1


def test_hub_offline_after_two_missed_heartbeats_and_cleared_by_the_next() -> None:
    engine = Engine([profile()])
    beats = [beat(at(minutes=5 * i)) for i in range(4)]  # last at 00:15, interval 300 s: offline after 00:26
    early = run(engine, beats, until=at(minutes=26))
    assert raised(early, "hub_offline") == []
    late = run(engine, [], until=at(minutes=27))
    late += engine.tick(at(minutes=27))
    offline = raised(late, "hub_offline")
    assert [(a.priority, a.subject) for a in offline] == [(2, "")]
    assert engine.tick(at(minutes=40)) == []  # raised once
    back = engine.observe(beat(at(minutes=41)))
    assert [(type(d), d.rule) for d in back] == [(Clear, "hub_offline")]


def test_device_not_seen_from_heartbeat_last_seen_and_cleared_when_seen() -> None:
    engine = Engine([profile(expected_intervals={"door-001": 3600})])
    status = DeviceStatus(device_id="door-001", last_seen=at(), battery_pct=80)
    decisions = engine.observe(beat(at(minutes=60), devices=[status]))
    assert raised(decisions) == []  # within 3600 s + 300 s grace
    decisions = engine.observe(beat(at(minutes=66), devices=[status]))
    assert [(a.rule, a.subject, a.priority) for a in raised(decisions)] == [("device_not_seen", "door-001", 4)]
    fresh = DeviceStatus(device_id="door-001", last_seen=at(minutes=70), battery_pct=80)
    cleared = engine.observe(beat(at(minutes=71), devices=[fresh]))
    assert [(type(d), d.rule, d.subject) for d in cleared] == [(Clear, "device_not_seen", "door-001")]


def test_no_device_not_seen_while_the_hub_is_offline() -> None:
    engine = Engine([profile()])
    engine.observe(beat(at()))  # interval 300 s: offline once 2 x 300 + 60 s have passed
    assert [a.rule for a in raised(engine.tick(at(minutes=12)))] == ["hub_offline"]
    decisions = engine.observe(event(at(minutes=13), "door-001", EventCode.DEVICE_NOT_SEEN))
    assert raised(decisions, "device_not_seen") == []
    online = Engine([profile()])
    online.observe(beat(at()))
    assert len(raised(online.observe(event(at(minutes=1), "door-001", EventCode.DEVICE_NOT_SEEN)))) == 1


def test_supervision_events_raise_and_clear() -> None:
    pairs = [(EventCode.BATTERY_LOW, EventCode.BATTERY_OK, "battery_low", "door-001"),
             (EventCode.TAMPER, EventCode.TAMPER_CLEARED, "tamper", "door-001"),
             (EventCode.DEVICE_NOT_SEEN, EventCode.DEVICE_SEEN_AGAIN, "device_not_seen", "door-001"),
             (EventCode.POWER_FAILURE, EventCode.POWER_RESTORED, "power_failure", HUB)]
    for raise_code, clear_code, rule, device in pairs:
        engine = Engine([profile()])
        up = engine.observe(event(at(hours=1), device, raise_code))
        assert [(d.rule, d.priority) for d in raised(up)] == [(rule, 4)]
        down = engine.observe(event(at(hours=2), device, clear_code))
        assert [(type(d), d.rule) for d in down if d.rule == rule] == [(Clear, rule)], rule


def test_power_failure_from_heartbeat_power_state() -> None:
    engine = Engine([profile()])
    assert [d.rule for d in raised(engine.observe(beat(at(), power=Power.BATTERY)))] == ["power_failure"]
    assert [type(d) for d in engine.observe(beat(at(minutes=5)))] == [Clear]


def test_device_fault_and_data_dropped() -> None:
    engine = Engine([profile()])
    fault = raised(engine.observe(event(at(hours=1), "door-001", EventCode.DEVICE_FAULT)))
    assert [(a.rule, a.subject, a.priority) for a in fault] == [("device_fault", "door-001", 4)]
    dropped = [raised(engine.observe(event(at(hours=h), HUB, EventCode.DATA_DROPPED, readings=50))) for h in (2, 3)]
    assert [[(a.rule, a.priority) for a in d] for d in dropped] == [[("data_dropped", 5)]] * 2


def test_disabled_rule_for_one_person() -> None:
    engine = Engine([profile(rules={"battery_low": {"enabled": False}})])
    assert engine.observe(event(at(hours=1), "door-001", EventCode.BATTERY_LOW)) == []
