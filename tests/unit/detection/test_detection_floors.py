"""Every rule parameter's floor and ceiling (`detection/defaults.py`), and the alarm rules'
safety floor: a help press, a pull cord and a fall are always priority 1 alarms, whatever a
person's settings, people file or planned absence say (hazard log H20)."""

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detection.defaults import DEFAULTS, OverrideError, Param, Settings, bounds_table, check_value
from detection.engine import Engine
from detection.people import PeopleFileError, PersonProfile, parse_people
from detection.rules import ALARM_FLOOR, ALARMS, CATALOGUE, PRIORITY_RANGES, RuleId, RuleKind
from telecare_protocol import EventCode, Priority
from tests.support.detection_builders import HUB, at, event, profile, raised, run

EVERY_PARAMETER = [(rule, name) for rule, table in DEFAULTS.items() for name in table]
NUMERIC = [(rule, name) for rule, name in EVERY_PARAMETER
           if not isinstance(DEFAULTS[rule][name].default, bool | str)]


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _between(param: Param) -> bool:
    if param.choices:
        return param.default in param.choices
    floor, default, ceiling = param.floor.value, param.default, param.ceiling.value
    if isinstance(default, str):
        assert isinstance(floor, str) and isinstance(ceiling, str)
        return _minutes(floor) <= _minutes(default) <= _minutes(ceiling)
    assert type(floor) is type(default) is type(ceiling), "a bound has the default's kind"
    return bool(floor <= default <= ceiling)


@pytest.mark.parametrize(("rule", "name"), EVERY_PARAMETER)
def test_every_parameter_has_a_floor_and_a_ceiling_with_sources_and_the_default_between(rule: str,
                                                                                        name: str) -> None:
    param = DEFAULTS[rule][name]
    assert param.source.strip() and param.floor.source.strip() and param.ceiling.source.strip()
    assert _between(param), f"{rule}.{name}: default {param.default!r} outside its bounds"
    for value in (param.default, param.floor.value, param.ceiling.value):
        assert check_value(rule, name, value) == value  # both ends are allowed


@given(st.data())
def test_a_value_inside_the_bounds_is_taken_and_one_outside_is_refused_naming_the_bound(data: st.DataObject) -> None:
    rule, name = data.draw(st.sampled_from(NUMERIC))
    param = DEFAULTS[rule][name]
    floor, ceiling = param.floor.value, param.ceiling.value
    assert isinstance(floor, int | float) and isinstance(ceiling, int | float)
    whole = isinstance(param.default, int)
    inside = data.draw(st.integers(int(floor), int(ceiling)) if whole else
                       st.floats(float(floor), float(ceiling), allow_nan=False))
    assert check_value(rule, name, inside) == inside
    if param.fixed:
        return
    below = data.draw(st.integers(max(int(floor) - 1000, 0) - 1, int(floor) - 1) if whole else
                      st.floats(float(floor) - 1000, float(floor), exclude_max=True, allow_nan=False))
    with pytest.raises(OverrideError) as low:
        check_value(rule, name, below)
    assert f"below its floor {floor:g}" in str(low.value) and param.floor.source in str(low.value)
    above = data.draw(st.integers(int(ceiling) + 1, int(ceiling) + 1000) if whole else
                      st.floats(float(ceiling), float(ceiling) + 1000, exclude_min=True, allow_nan=False))
    with pytest.raises(OverrideError) as high:
        check_value(rule, name, above)
    assert f"above its ceiling {ceiling:g}" in str(high.value) and param.ceiling.source in str(high.value)


@pytest.mark.parametrize(("rule", "name", "value", "words"), [
    ("spo2_low", "urgent_at_or_below", 85, ["below its floor 88", "BTS", "88-92%"]),
    ("spo2_low", "review_at_or_below", 97, ["above its ceiling 95", "NEWS2", "96%"]),
    ("spo2_low", "scale2_urgent_at_or_below", 80, ["below its floor 83", "Scale 2"]),
    ("spo2_low", "scale2_review_at_or_below", 90, ["above its ceiling 87", "88-92%"]),
    ("spo2_low", "scale2_oxygen_urgent_at_or_above", 99, ["above its ceiling 97", "on oxygen"]),
    ("pulse_high", "urgent_at_or_above", 140, ["above its ceiling 131", "NEWS2"]),
    ("pulse_low", "urgent_at_or_below", 35, ["below its floor 40", "NEWS2"]),
    ("spo2_low", "persistence_readings", 10, ["above its ceiling 3", "engineering limit"]),
    ("spo2_low", "continuous_persistence_s", 3600, ["above its ceiling 300", "engineering limit"]),
    ("out_of_bed_at_night", "night_start", "12:00", ['below its floor "18:00"', "engineering limit"]),
    ("spo2_trend_spc", "metric", "weight", ["must be one of spo2, pulse_rate"]),
    ("battery_low", "priority", 5, ["above its ceiling 4", "tell nobody", "H3"]),
    ("missed_measurement", "priority", 5, ["above its ceiling 4", "logged only"]),
    ("night_exit", "priority", 1, ["below its floor 2", "priority 1 is kept"]),
    ("hub_offline", "priority", 4, ["safety floor 2", "every link must be supervised"]),
])
def test_out_of_range_values_are_refused_naming_the_bound_and_its_source(rule: str, name: str, value: object,
                                                                         words: list[str]) -> None:
    with pytest.raises(OverrideError) as refused:
        check_value(rule, name, value)
    for word in words:
        assert word in str(refused.value)


@pytest.mark.parametrize("rule", sorted(ALARMS))
@pytest.mark.parametrize(("name", "value"), [("enabled", False), ("priority", 2), ("priority", 5)])
def test_an_alarm_can_be_neither_switched_off_nor_demoted(rule: str, name: str, value: object) -> None:
    with pytest.raises(OverrideError) as refused:
        check_value(rule, name, value)
    assert "safety floor" in str(refused.value) and ALARM_FLOOR in str(refused.value)
    assert check_value(rule, name, DEFAULTS[rule][name].default) == DEFAULTS[rule][name].default


def test_the_alarm_rules_are_the_help_button_and_the_fall_and_priorities_keep_their_familys_range() -> None:
    assert {RuleId.PENDANT_ALARM, RuleId.FALL} == ALARMS
    for rule, table in DEFAULTS.items():
        if "priority" not in table:
            continue
        allowed = PRIORITY_RANGES[CATALOGUE[RuleId(rule)].kind]
        priority = table["priority"]
        assert priority.floor.value == allowed.most_urgent
        assert allowed.most_urgent <= int(priority.ceiling.value) <= allowed.least_urgent
    for kind, allowed in PRIORITY_RANGES.items():
        if kind is not RuleKind.ALARM:
            assert allowed.most_urgent > Priority.EMERGENCY, f"{kind}: priority 1 is kept for alarms"


PEOPLE = """
[[person]]
id = "home-001"
hubs = ["hub-001"]

[person.rules.RULE]
NAME = VALUE
"""


@pytest.mark.parametrize("rule", sorted(ALARMS))
@pytest.mark.parametrize(("name", "value"), [("enabled", "false"), ("priority", "5")])
def test_a_people_file_cannot_switch_an_alarm_off(rule: str, name: str, value: str) -> None:
    """`telecare replay --people`: the file is refused, naming the person, the line and the floor."""
    text = PEOPLE.replace("RULE", rule).replace("NAME", name).replace("VALUE", value)
    with pytest.raises(PeopleFileError) as refused:
        parse_people(text, "people.toml")
    assert "line 2" in str(refused.value) and "home-001" in str(refused.value)
    assert "safety floor" in str(refused.value)


def test_the_engine_refuses_an_alarm_setting_that_skipped_validation() -> None:
    """Even a profile built without validation cannot switch the help button off in the engine."""
    unchecked = PersonProfile.model_construct(**{**profile().model_dump(),
                                                 "rules": {"pendant_alarm": {"enabled": False}}})
    with pytest.raises(OverrideError, match="safety floor"):
        Engine([unchecked])
    with pytest.raises(OverrideError, match="safety floor"):
        Settings(RuleId.FALL, {"priority": 5})


def test_a_planned_absence_never_mutes_an_alarm() -> None:
    away = profile(absences=[{"start": at(hours=1), "end": at(days=7), "reason": "holiday"}])
    assert away.absent(at(hours=3)) is not None
    decisions = run(Engine([away]), [event(at(hours=3), "pendant-001", EventCode.MANUAL_ALARM),
                                     event(at(hours=3) + timedelta(seconds=20), "pendant-001",
                                           EventCode.MANUAL_ALARM),
                                     event(at(hours=5), "cord-001", EventCode.MANUAL_ALARM),
                                     event(at(hours=9), "pendant-001", EventCode.FALL_DETECTED)])
    assert [(a.rule, a.priority, a.title) for a in raised(decisions)] == [
        ("pendant_alarm", 1, "Help button pressed"), ("pendant_alarm", 1, "Pull cord pulled"),
        ("fall", 1, "Fall detected (not cancelled by the wearer)")]
    assert [d.explanation["episode"] for d in decisions if d.rule == "pendant_alarm"][:2] == ["new", "repeat"]
    assert HUB in away.hubs


def test_the_bounds_table_in_the_docs_is_the_one_in_the_code() -> None:
    """docs/detection.md renders every parameter's default, floor, ceiling and sources."""
    docs = (Path(__file__).parents[3] / "docs" / "detection.md").read_text(encoding="utf-8")
    start = docs.index("<!-- bounds table: generated by detection.defaults.bounds_table() -->\n")
    end = docs.index("\n<!-- end of bounds table -->")
    assert docs[docs.index("\n", start) + 1:end] == bounds_table()
    assert len([line for line in bounds_table().splitlines() if line.startswith("| `")]) == len(EVERY_PARAMETER)
