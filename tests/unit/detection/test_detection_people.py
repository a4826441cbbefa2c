"""The people file: a good file loads; a bad one is refused with the field and line."""

from pathlib import Path

import pytest

from detection.engine import Engine
from detection.people import PeopleFileError, load_people, parse_people

GOOD = '''
[[person]]
id = "home-001"
name = "Ada"
hubs = ["hub-001"]
timezone = "Europe/London"
spo2_scale = 2
on_oxygen = true

[person.devices]
"door-001" = "front_door"
"oxi-001" = "oximeter"

[person.expected_intervals]
"door-001" = 3600

[person.rules.spo2_low]
persistence_readings = 3

[person.measurement_schedule]
times = ["20:00", "09:00"]
window_minutes = 90

[[person.absences]]
start = 2026-03-01T10:00:00Z
end = 2026-03-05T12:00:00Z
reason = "hospital"

[[person]]
id = "home-002"
hubs = ["hub-002", "hub-003"]
'''


def test_the_documented_format_loads(tmp_path: Path) -> None:
    path = tmp_path / "people.toml"
    path.write_text(GOOD)
    ada, bob = load_people(path)
    assert (ada.id, ada.spo2_scale, ada.on_oxygen, ada.devices["door-001"]) == ("home-001", 2, True, "front_door")
    assert ada.rules == {"spo2_low": {"persistence_readings": 3}}
    assert ada.measurement_schedule is not None and ada.measurement_schedule.times == ("09:00", "20:00")
    assert ada.absences[0].reason == "hospital"
    assert (bob.timezone, bob.spo2_scale, bob.hubs) == ("UTC", 1, ("hub-002", "hub-003"))
    engine = Engine([ada, bob])
    assert engine.person_for_hub("hub-003") == "home-002" and engine.person_for_hub("hub-9") is None


@pytest.mark.parametrize(("change", "words"), [
    (('persistence_readings = 3', 'persistence_reading = 3'), ["line 2", "home-001", "no parameter",
                                                              "persistence_reading"]),
    (('[person.rules.spo2_low]', '[person.rules.spo2_lo]'), ["unknown rule", "spo2_lo"]),
    (('persistence_readings = 3', 'persistence_readings = "three"'), ["whole number"]),
    (('timezone = "Europe/London"', 'timezone = "Mars/Olympus"'), ["timezone", "IANA"]),
    (('"oxi-001" = "oximeter"', '"oxi-001" = "garage"'), ["devices.oxi-001"]),
    (('spo2_scale = 2', 'spo2_scale = 3'), ["spo2_scale"]),
    (('spo2_scale = 2\n', ''), ["on_oxygen only applies"]),
    (('"20:00"', '"25:00"'), ["measurement_schedule.times", "HH:MM"]),
    (('end = 2026-03-05T12:00:00Z', 'end = 2026-02-05T12:00:00Z'), ["absences.0", "ends after"]),
    (('hubs = ["hub-002", "hub-003"]', 'hubs = ["hub-001"]'), ["line 29", "hub 'hub-001' already belongs"]),
    (('id = "home-002"', 'id = "home-001"'), ["already used"]),
    (('[[person]]\nid = "home-002"', '[[person]]\nid = "home-002"\nhub = "x"'), ["hub", "Extra inputs"]),
    (('window_minutes = 90', 'window_minutes = '), ["not valid TOML", "line"]),
])
def test_bad_files_name_the_field_and_line(change: tuple[str, str], words: list[str]) -> None:
    text = GOOD.replace(*change, 1)
    assert text != GOOD
    with pytest.raises(PeopleFileError) as raised:
        parse_people(text, "people.toml")
    for word in words:
        assert word in str(raised.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PeopleFileError, match="cannot read"):
        load_people(tmp_path / "absent.toml")
