"""What raised an alert, in plain words (`monitoring_centre/why.py`), for each family of rules:
built from the explanations the real detection engine writes, stored on an alert the way the
centre stores them (`detection_runner.py`), and never showing JSON, message ids or raw keys."""

import re
from datetime import datetime, timedelta
from typing import Any

import pytest

from detection.engine import Engine, Raise
from detection.rules import RuleId
from monitoring_centre.storage import Alert
from monitoring_centre.why import Why, clock, device_words, explain, minutes, when
from telecare_protocol import EventCode, Power
from tests.support.detection_builders import at, beat, event, profile, raised, run, spo2
from tests.unit.detection.test_detection_activity import days
from tests.unit.detection.test_detection_trends import declining, week

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")
RAW = re.compile(r"[{}\[\]\"]|_id\b|source_ts|message_id|\bNone\b|\bTrue\b|\bFalse\b")


def stored(raised_: Raise, repeats: int = 0) -> Alert:
    """The alert the centre stores for the engine's decision (as `detection_runner.py` does)."""
    evidence: dict[str, Any] = {"message_id": "0b5c3e0a-1111-4222-8333-944455556666",
                                "explanation": raised_.explanation}
    return Alert(id=1, person_id=1, hub_id="hub-001", rule=raised_.rule.value, subject=raised_.subject,
                 title=raised_.title, priority=raised_.priority, status="open", opened_at=raised_.at,
                 last_seen_at=raised_.at + timedelta(minutes=repeats), repeat_count=repeats,
                 explanation={"rule": raised_.rule.value, "why": raised_.title, "evidence": [evidence] * (repeats + 1),
                              "detail": raised_.explanation})


def first(messages: list[Any], rule: str, until: datetime | None = None, **changes: Any) -> Raise:
    alarms = raised(run(Engine([profile(**changes)]), messages, until=until), rule)
    assert alarms, f"the engine raised no {rule}"
    return alarms[0]


def plain(why: Why) -> str:
    """Everything the operator reads, checked for anything that is not plain words."""
    text = " | ".join([why.rule_title, why.summary, *(f"{f.label}: {f.value}" for f in why.facts)])
    assert not UUID.search(text), text
    assert not RAW.search(text), text
    assert all(fact.value.strip() for fact in why.facts)
    return text


def facts(why: Why) -> dict[str, str]:
    return {fact.label: fact.value for fact in why.facts}


def test_a_help_press_says_when_and_on_what() -> None:
    alert = stored(first([event(at(0, 3, 12), "pendant-001", EventCode.MANUAL_ALARM)], "pendant_alarm"), repeats=2)
    why = explain(alert, {"pendant-001": "pendant"})
    plain(why)
    assert why.summary == "The help button on the pendant was pressed at 03:12."
    assert why.rule_title == "Help button pressed"
    assert facts(why)["Happened at"] == "03:12, 2 Mar"
    assert facts(why)["Came again"] == "2 more times, the last at 03:14, 2 Mar"
    assert why.repeats == 2


def test_a_pull_cord_and_an_uncancelled_fall() -> None:
    cord = explain(stored(first([event(at(0, 4), "cord-001", EventCode.MANUAL_ALARM)], "pendant_alarm")))
    assert cord.summary == "The pull cord was pulled at 04:00."
    fall = explain(stored(first([event(at(0, 4), "pendant-001", EventCode.FALL_DETECTED)], "fall")))
    plain(fall)
    assert fall.summary == "The pendant detected a fall at 04:00 and the wearer did not cancel it."
    assert facts(fall)["Falls the wearer cancelled in the last 24 h"] == "0"


def test_an_spo2_band_gives_the_reading_the_band_and_the_advice() -> None:
    alert = stored(first([spo2(at(0, 3, i), 90) for i in range(3)], "spo2_low"))
    why = explain(alert)
    text = plain(why)
    assert why.summary == "SpO2 was 90 % at 03:01, in the urgent band (NEWS2 Scale 1 ≤ 92 %): 999/A&E now."
    assert facts(why)["Latest reading"] == "90 % at 03:01, 2 Mar"
    assert facts(why)["Readings in the band"] == "2 in a row (2 needed to confirm)"
    assert "review" not in text


def test_the_review_band_says_gp_or_111_today() -> None:
    why = explain(stored(first([spo2(at(0, 9, i), 93) for i in range(3)], "spo2_low")))
    plain(why)
    assert "93 %" in why.summary and "review today" in why.summary and "GP or 111" in why.summary


def test_a_trend_gives_the_persons_own_baseline() -> None:
    readings = [*week(), spo2(at(7, 9), 95), spo2(at(7, 14), 95), spo2(at(8, 9), 95), spo2(at(8, 14), 95)]
    why = explain(stored(first(readings, "spo2_trend_spc")))
    plain(why)
    assert why.summary == "Their average SpO2 (95 %) has been below their own usual range on 2 of the last 3 days."
    assert facts(why)["Their usual average"] == "96.7 % over 7 days"
    assert facts(why)["Limit from their own week"] == "95.1 %"
    slope = explain(stored(first(declining(1.2), "spo2_trend_slope", rules={"spo2_trend_spc": {"enabled": False}})))
    plain(slope)
    assert slope.summary.startswith("Their SpO2 has been falling by about 1.1 % a day over the last 72 hours")


def test_activity_rules_say_what_was_seen_and_the_learned_baseline() -> None:
    night = explain(stored(first([*days(2), event(at(2, 2), "bed-001", EventCode.BED_VACATED),
                                  event(at(2, 2, 5), "pir-001", EventCode.ACTIVITY),
                                  event(at(2, 2, 10), "door-001", EventCode.DOOR_OPENED),
                                  event(at(2, 2, 11), "door-001", EventCode.DOOR_CLOSED)], "night_exit",
                                 until=at(2, 3))))
    plain(night)
    assert night.summary == ("The front door opened at 02:10 in the night and nobody has been seen indoors "
                             "for 15 minutes since.")
    assert facts(night)["Last movement indoors"] == "02:05, 4 Mar"
    morning = explain(stored(first(days(8), "no_morning_activity", until=at(8, 12))))
    plain(morning)
    assert morning.summary == "No movement in the home by 08:30, when they are usually up."
    assert facts(morning)["Usually up by"] == "08:30 (learned over 8 days)"


def test_supervision_rules_name_the_equipment_in_words() -> None:
    offline = explain(stored(first([beat(at(0, 0)), beat(at(0, 0, 5))], "hub_offline", until=at(0, 1))))
    plain(offline)
    assert offline.summary == ("The home hub has not been heard from since 00:05: alarms from the home cannot "
                               "reach the centre.")
    assert facts(offline)["Expected every"] == "5 min"
    battery = explain(stored(first([event(at(0, 1), "pendant-001", EventCode.BATTERY_LOW, level=10)],
                                   "battery_low")), {"pendant-001": "pendant"})
    plain(battery)
    assert battery.summary == "The pendant's battery is low (10 %)."
    power = explain(stored(first([beat(at(0, 0)), beat(at(0, 0, 5), power=Power.BATTERY)], "power_failure")))
    plain(power)
    assert power.summary.startswith("The mains power at the home is off")
    fault = explain(stored(first([event(at(0, 1), "hub-001", EventCode.DEVICE_FAULT, fault="bluetooth_adapter")],
                                 "device_fault")))
    plain(fault)
    assert "Bluetooth adapter unavailable" in fault.summary


def test_the_hubs_last_will_from_ingest_is_explained_too() -> None:
    """`ingest.py` raises hub_offline itself, with evidence and no engine detail."""
    alert = Alert(id=2, person_id=1, hub_id="hub-1", rule="hub_offline", subject="", title="Hub hub-1 offline",
                  priority=2, status="open", opened_at=at(0, 1), last_seen_at=at(0, 1), repeat_count=0,
                  explanation={"rule": "hub_offline", "why": "hub hub-1 lost its connection to the centre",
                               "evidence": [{"topic": "hub hub-1", "state": "offline",
                                             "received_at": at(0, 1).isoformat()}]})
    why = explain(alert)
    plain(why)
    assert why.summary == "The home hub lost its connection to the centre: alarms from the home cannot reach us."
    assert facts(why)["Connection lost"] == "01:00, 2 Mar"


@pytest.mark.parametrize("explanation", [{}, {"detail": "not a dict"}, {"detail": {"band": [1, 2]}},
                                         {"evidence": "x", "detail": {"readings": {"last": 5}}}])
def test_an_explanation_of_an_unexpected_shape_gives_the_title_and_no_json(explanation: dict[str, Any]) -> None:
    for rule in RuleId:
        alert = Alert(id=3, person_id=1, hub_id="hub-1", rule=rule.value, subject="", title="Something happened",
                      priority=3, status="open", opened_at=at(0, 5), last_seen_at=at(0, 5), repeat_count=0,
                      explanation=explanation)
        why = explain(alert)
        assert "{" not in why.summary and "[" not in why.summary
        assert why.summary


def test_times_and_durations_in_words() -> None:
    assert when("2026-07-01T02:30:00+00:00") == "03:30, 1 Jul"  # British Summer Time
    assert clock(at(0, 23, 59)) == "23:59"
    assert when("not a time") == "" and when(None) == ""
    assert [minutes(s) for s in (45, 660, 7800)] == ["45 s", "11 min", "2 h 10 min"]
    assert device_words("door_sensor", "front_door") == "front door sensor"
    assert device_words("personal_trigger", "pendant") == "pendant"
