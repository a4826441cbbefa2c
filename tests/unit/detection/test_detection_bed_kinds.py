"""Two kinds of bed sensor (`BedSensorKind`): an occupancy mat says when the bed is left; a pulse-on-movement
mat only says when someone moves on it, so its silence is unknown, never "out of bed"."""

from datetime import datetime

import pytest

from detection.engine import Clear, Engine
from detection.people import BedSensorKind, PersonProfile, parse_people
from telecare_protocol import DeviceEvent, EventCode
from tests.support.detection_builders import at, event, profile, raised, run

OCCUPIED, VACATED = EventCode.BED_OCCUPIED, EventCode.BED_VACATED
OPENED, CLOSED = EventCode.DOOR_OPENED, EventCode.DOOR_CLOSED


def person(kind: BedSensorKind | None) -> PersonProfile:
    return profile() if kind is None else profile(bed_sensors={"bed-001": kind.value})


def pulse_on(when: datetime) -> list[DeviceEvent]:
    """One pulse as a pulse mat sends it (and an occupancy mat would, if someone sat on the bed for 30 s)."""
    return [event(when, "bed-001", OCCUPIED), event(when.replace(second=30), "bed-001", VACATED)]


def test_a_bed_sensor_is_an_occupancy_mat_unless_set_otherwise() -> None:
    assert profile().bed_sensor_kind("bed-001") is BedSensorKind.OCCUPANCY
    assert person(BedSensorKind.PULSE).bed_sensor_kind("bed-001") is BedSensorKind.PULSE
    people = parse_people('[[person]]\nid = "p"\nhubs = ["h"]\n[person.devices]\n"bed-9" = "bed"\n'
                          '[person.bed_sensors]\n"bed-9" = "pulse"\n')
    assert people[0].bed_sensors == {"bed-9": BedSensorKind.PULSE}


def test_an_unknown_bed_sensor_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="bed_sensors"):
        parse_people('[[person]]\nid = "p"\nhubs = ["h"]\n[person.bed_sensors]\n"bed-9" = "weight"\n')


def test_a_pulse_mats_silence_is_not_out_of_bed() -> None:
    """In bed at 22:30, one movement at 22:31, then a still sleeper until 06:00: nothing from a pulse mat.
    The very same events from an occupancy mat say the bed was left at 22:31:30."""
    messages = [event(at(0, 22, 30), "bed-001", OCCUPIED), *pulse_on(at(0, 22, 31))]
    quiet = raised(run(Engine([person(BedSensorKind.PULSE)]), messages, until=at(1, 6)))
    assert quiet == []
    left = raised(run(Engine([person(None)]), messages, until=at(1, 6)), "out_of_bed_at_night")
    assert [a.explanation["bed_vacated_at"] for a in left] == [at(0, 22, 31, 30).isoformat()]


@pytest.mark.parametrize("kind", [BedSensorKind.PULSE, BedSensorKind.OCCUPANCY])
def test_up_in_the_night_is_out_of_bed_for_both_kinds(kind: BedSensorKind) -> None:
    """A pulse mat's last pulse at 01:00, the kitchen at 01:10, nothing more: out of bed from 01:10 (the
    first sign of the person elsewhere). An occupancy mat says vacated at 01:00: out of bed from then.
    Either is cleared by the bed's next occupied event."""
    messages = [event(at(0, 22, 30), "bed-001", OCCUPIED), *pulse_on(at(1, 1)),
                event(at(1, 1, 10), "pir-001", EventCode.ACTIVITY)]
    engine = Engine([person(kind)])
    alarms = raised(run(engine, messages, until=at(1, 2, 30)), "out_of_bed_at_night")
    left = at(1, 1, 10) if kind is BedSensorKind.PULSE else at(1, 1, 0, 30)
    assert len(alarms) == 1
    assert alarms[0].explanation["bed_vacated_at"] == left.isoformat()
    assert alarms[0].at == (at(1, 1, 55) if kind is BedSensorKind.PULSE else at(1, 1, 46))  # the first tick 45 min on
    assert alarms[0].explanation["left_bed"]["device_id"] == ("pir-001" if kind is BedSensorKind.PULSE else "bed-001")
    back = engine.observe(event(at(1, 2, 40), "bed-001", OCCUPIED))
    assert [(type(d), d.rule) for d in back] == [(Clear, "out_of_bed_at_night")]


def test_a_pulse_mat_back_in_bed_within_45_minutes_is_quiet() -> None:
    messages = [event(at(0, 22, 30), "bed-001", OCCUPIED), event(at(1, 1), "flush-001", EventCode.ACTIVITY),
                *pulse_on(at(1, 1, 40))]
    assert raised(run(Engine([person(BedSensorKind.PULSE)]), messages, until=at(1, 6))) == []


def restless_nights(nights: int, pulse_minutes: int = 20) -> list[DeviceEvent]:
    """Kitchen at 20:00, in bed at 22:00, a movement every `pulse_minutes` until 06:30, kitchen at 07:00."""
    events: list[DeviceEvent] = []
    for day in range(nights):
        events.append(event(at(day, 20), "pir-001", EventCode.ACTIVITY))
        minute = 22 * 60
        while minute <= 30 * 60 + 30:
            events += pulse_on(at(day, minute / 60))
            minute += pulse_minutes
        events.append(event(at(day + 1, 7), "pir-001", EventCode.ACTIVITY))
    return events


def test_a_pulse_mats_bedtime_is_its_first_pulse_not_its_last() -> None:
    """A week of pulses every 20 min from 22:00: the bedtime learnt is 22:00, so a departure at 22:30 on the
    eighth evening is a night exit. Read as an occupancy mat, the same events are up-and-down all night,
    and the bedtime that settles is the last movement before the morning (05:40): the window is pushed to
    its ceiling (23:59) and the departure is missed."""
    departure = [event(at(7, 22, 20), "pir-001", EventCode.ACTIVITY), event(at(7, 22, 30), "door-001", OPENED),
                 event(at(7, 22, 31), "door-001", CLOSED)]
    messages = [*restless_nights(7), *departure]
    alarms = raised(run(Engine([person(BedSensorKind.PULSE)]), messages, until=at(7, 23, 30)), "night_exit")
    assert [(a.at, a.explanation["night"]["from"], a.explanation["night"]["median_bedtime"]) for a in alarms] == [
        (at(7, 22, 45), "learned bedtime", "22:00")]
    as_occupancy = raised(run(Engine([person(None)]), messages, until=at(7, 23, 30)), "night_exit")
    assert as_occupancy == []


def test_movement_on_a_pulse_mat_is_not_getting_up_in_the_morning() -> None:
    """Pulses until 09:30 and nothing else: no morning activity, whatever the kind (a bed event is never
    being up); the pulses do not hold the rule back either."""
    messages = [*restless_nights(1)[:-1], *pulse_on(at(1, 9, 30))]
    for kind in (BedSensorKind.PULSE, None):
        alarms = raised(run(Engine([person(kind)]), messages, until=at(1, 10, 30)), "no_morning_activity")
        assert [a.at for a in alarms] == [at(1, 10)], kind


def test_leaving_the_house_from_a_pulse_mats_bed_is_unoccupied_into_the_night() -> None:
    """In bed (a pulse) at 19:00, then out of the front door at 20:00: the door is the person up and gone,
    so the house is unoccupied an hour into the night, as with an occupancy mat that said vacated."""
    for kind, bed in ((BedSensorKind.PULSE, [event(at(0, 19), "bed-001", OCCUPIED)]),
                      (BedSensorKind.OCCUPANCY, pulse_on(at(0, 19)))):
        messages = [event(at(0, 18), "pir-001", EventCode.ACTIVITY), *bed, event(at(0, 20), "door-001", OPENED),
                    event(at(0, 20, 1), "door-001", CLOSED)]
        alarms = raised(run(Engine([person(kind)]), messages, until=at(1, 0)), "house_unoccupied")
        assert [a.at for a in alarms] == [at(0, 23)], kind
