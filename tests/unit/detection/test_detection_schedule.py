"""Missed scheduled measurements; the engine's restart (warm-up) and profile changes; a real 1 Hz record."""

from pathlib import Path

import pytest

from detection.engine import Clear, Engine
from detection.people import Absence
from telecare_protocol import EventCode, Message, Reading
from telecare_protocol.codes import QualityFlag
from tests.support.detection_builders import at, event, profile, raised, run, spo2

SCHEDULE = {"times": ["09:00", "20:00"], "window_minutes": 120}
SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def test_missed_measurement_after_the_window_and_cleared_by_the_next_reading() -> None:
    engine = Engine([profile(measurement_schedule=SCHEDULE)])
    decisions = run(engine, [spo2(at(0, 8), 97)], until=at(0, 11, 5))
    alarms = raised(decisions, "missed_measurement")
    assert [(a.priority, a.at) for a in alarms] == [(3, at(0, 11))]
    assert alarms[0].explanation["scheduled"] == at(0, 9).isoformat()
    back = engine.observe(spo2(at(0, 12), 96))
    assert [(type(d), d.rule) for d in back] == [(Clear, "missed_measurement")]


def test_a_reading_in_the_window_meets_the_slot() -> None:
    engine = Engine([profile(measurement_schedule=SCHEDULE)])
    assert raised(run(engine, [spo2(at(0, 8), 97), spo2(at(0, 10, 50), 96)], until=at(0, 12))) == []
    early = Engine([profile(measurement_schedule=SCHEDULE)])  # 30 min early still counts
    assert raised(run(early, [spo2(at(0, 8, 35), 97)], until=at(0, 12))) == []


def test_only_flagged_readings_do_not_meet_the_slot() -> None:
    engine = Engine([profile(measurement_schedule=SCHEDULE)])
    messages = [spo2(at(0, 8), 97), spo2(at(0, 9, 5), 80, QualityFlag.QUESTIONABLE)]
    assert [a.rule for a in raised(run(engine, messages, until=at(0, 11, 5)))] == ["missed_measurement"]


def test_no_missed_measurement_during_an_absence() -> None:
    away = profile(measurement_schedule=SCHEDULE, absences=[Absence(start=at(0, 8, 30), end=at(1), reason="holiday")])
    assert raised(run(Engine([away]), [spo2(at(0, 8), 97)], until=at(0, 23))) == []


def test_warm_up_rebuilds_state_without_raising_again() -> None:
    history: list[Message] = [event(at(0, 14), "pir-001", EventCode.ACTIVITY),
                              event(at(0, 14, 1), "door-001", EventCode.DOOR_OPENED),
                              spo2(at(0, 15), 90), spo2(at(0, 15, 5), 90)]
    engine = Engine([profile()])
    engine.warm_up(history)
    assert raised(engine.observe(spo2(at(0, 15, 10), 90))) == []  # spo2_low is already on the queue
    # the door had been open an hour in the history (raised then): closing it now is its all-clear
    closed = engine.observe(event(at(0, 15, 20), "door-001", EventCode.DOOR_CLOSED))
    assert [(type(d), d.rule) for d in closed] == [(Clear, "door_left_open")]
    fresh = Engine([profile()])
    assert [a.rule for a in raised(run(fresh, history))] == ["door_left_open", "spo2_low"]


def test_set_profile_changes_rules_and_keeps_what_was_learnt() -> None:
    engine = Engine([profile()])
    run(engine, [spo2(at(0, 9), 89)])
    engine.set_profile(profile(spo2_scale=2))
    assert raised(engine.observe(spo2(at(0, 9, 5), 89))) == []  # Scale 2: 89% is on target
    engine.set_profile(profile(hubs=["hub-002"]))
    assert engine.person_for_hub("hub-001") is None and engine.person_for_hub("hub-002") == "home-001"
    assert engine.counts.unknown_hub == 0
    engine.observe(spo2(at(0, 9, 10), 89))
    assert engine.counts.unknown_hub == 1


@pytest.mark.skipif(not (SHARED / "spo2_1hz_normal").exists(), reason="shared data absent")
def test_real_1hz_record_does_not_alarm_but_the_same_trace_6_points_lower_does() -> None:
    lines = (SHARED / "spo2_1hz_normal" / "example_spo2.txt").read_text().splitlines()
    marks = [i for i, line in enumerate(lines) if line.strip() == "---"]
    values = [float(line) for line in lines[marks[1] + 1:] if line.strip()]

    def readings(shift: float) -> list[Reading]:
        return [spo2(at(0, 22, seconds=i), max(0.0, v - shift)) for i, v in enumerate(values)]

    assert sum(1 for v in values if v < 92) > 0  # the record does dip below 92%
    assert raised(run(Engine([profile()]), readings(0))) == []
    assert [a.rule for a in raised(run(Engine([profile()]), readings(6)))] == ["spo2_low"]
