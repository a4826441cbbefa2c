"""Activity rules in local time: night exit, out of bed, morning, unoccupied, door open, toilet; absences."""

from datetime import datetime

from detection.engine import Clear, Engine
from detection.people import Absence
from telecare_protocol import DeviceEvent, EventCode
from tests.support.detection_builders import at, event, profile, raised, run

OPENED, CLOSED = EventCode.DOOR_OPENED, EventCode.DOOR_CLOSED


def normal_day(day: int, toilet_visits: int = 1, bed_at: float = 22.5) -> list[DeviceEvent]:
    """Up at 07:00, kitchen, out 10:00-11:00, bed at 22:30 (`bed_at`, hours); toilet visits at night from 01:00."""
    events = [
        event(at(day, 7), "bed-001", EventCode.BED_VACATED),
        event(at(day, 7, 30), "pir-001", EventCode.ACTIVITY),
        event(at(day, 10), "door-001", OPENED), event(at(day, 10, 1), "door-001", CLOSED),
        event(at(day, 11), "door-001", OPENED), event(at(day, 11, 1), "door-001", CLOSED),
        event(at(day, 11, 5), "pir-001", EventCode.ACTIVITY),
        event(at(day, bed_at), "bed-001", EventCode.BED_OCCUPIED),
    ]
    for visit in range(toilet_visits):
        hour = 25 + visit
        events += [event(at(day, hour), "bed-001", EventCode.BED_VACATED),
                   event(at(day, hour, 3), "flush-001", EventCode.ACTIVITY),
                   event(at(day, hour, 8), "bed-001", EventCode.BED_OCCUPIED)]
    return events


def days(n: int, toilet_visits: int = 1, bed_at: float = 22.5) -> list[DeviceEvent]:
    return [e for d in range(n) for e in normal_day(d, toilet_visits, bed_at)]


def test_a_normal_fortnight_raises_nothing() -> None:
    assert raised(run(Engine([profile()]), days(14), until=at(14))) == []


def test_night_exit_after_going_to_bed() -> None:
    """Out of bed at 02:00, out by the front door at 02:10, nobody indoors since: raised 15 min after the door."""
    messages = [*days(2), event(at(2, 2), "bed-001", EventCode.BED_VACATED),
                event(at(2, 2, 5), "pir-001", EventCode.ACTIVITY), event(at(2, 2, 10), "door-001", OPENED),
                event(at(2, 2, 11), "door-001", CLOSED)]
    alarms = raised(run(Engine([profile()]), messages, until=at(2, 3)), "night_exit")
    assert [(a.priority, a.at) for a in alarms] == [(2, at(2, 2, 25))]
    assert alarms[0].explanation["event"]["source_ts"] == at(2, 2, 10).isoformat()


RETURN_MINUTES = 15
"""`night_exit.return_minutes`' default (N)."""


def departure(day: int, hours: float, back_after: float | None = None) -> list[DeviceEvent]:
    """Kitchen activity 10 min before, the front door out at `hours`; someone indoors `back_after` minutes later."""
    leave = at(day, hours)
    out = [event(at(day, hours, -10), "pir-001", EventCode.ACTIVITY), event(leave, "door-001", OPENED),
           event(at(day, hours, 0.5), "door-001", CLOSED)]
    if back_after is not None:
        out += [event(at(day, hours, back_after - 0.5), "door-001", OPENED),
                event(at(day, hours, back_after - 0.25), "door-001", CLOSED),
                event(at(day, hours, back_after), "pir-001", EventCode.ACTIVITY)]
    return out


def test_a_departure_at_2230_before_bed_with_no_return_is_a_night_exit() -> None:
    """The field fault: departures between 22:00 and 23:00, before going to bed, were not alerted. A
    week of going to bed at 22:00 makes the learned window start at 22:00; the person leaves at 22:30
    on the eighth evening, before going to bed, and nobody is seen indoors for N minutes."""
    messages = [*days(7, bed_at=22.0), *departure(7, 22.5)]
    alarms = raised(run(Engine([profile()]), messages, until=at(7, 23, 30)), "night_exit")
    assert [(a.priority, a.at) for a in alarms] == [(2, at(7, 22, 30 + RETURN_MINUTES))]
    window = alarms[0].explanation["night"]
    assert (window["start"], window["from"], window["median_bedtime"]) == ("22:00", "learned bedtime", "22:00")
    assert alarms[0].explanation["went_to_bed"] is None
    assert "front door at 22:30" in alarms[0].title


def test_a_return_within_n_minus_one_minutes_is_no_night_exit() -> None:
    messages = [*days(7, bed_at=22.0), *departure(7, 22.5, back_after=RETURN_MINUTES - 1)]
    assert raised(run(Engine([profile()]), messages, until=at(8, 1)), "night_exit") == []


def test_a_departure_at_1400_is_no_night_exit() -> None:
    messages = [*days(7, bed_at=22.0), *departure(7, 14)]
    assert raised(run(Engine([profile()]), messages, until=at(7, 15)), "night_exit") == []


def test_the_window_follows_the_learned_bedtime() -> None:
    """Bed at 23:30 every night: 22:30 is the evening, not the night; 23:45 is the night."""
    history = days(7, bed_at=23.5)
    assert raised(run(Engine([profile()]), [*history, *departure(7, 22.5)], until=at(7, 23, 15)), "night_exit") == []
    alarms = raised(run(Engine([profile()]), [*history, *departure(7, 23.75)], until=at(8, 0, 30)), "night_exit")
    assert [a.explanation["night"]["start"] for a in alarms] == ["23:30"]


def test_while_learning_the_window_starts_at_2200() -> None:
    alarms = raised(run(Engine([profile()]), departure(0, 22.5), until=at(0, 23, 30)), "night_exit")
    assert [a.explanation["night"]["from"] for a in alarms] == ["default while learning"]


def test_a_persons_own_night_start_replaces_the_learned_one() -> None:
    early = profile(rules={"night_exit": {"night_start": "21:00"}})
    messages = [*days(7, bed_at=23.5), *departure(7, 21.5)]
    alarms = raised(run(Engine([early]), messages, until=at(7, 22, 30)), "night_exit")
    assert [a.explanation["night"]["from"] for a in alarms] == ["the person's own night_start"]


def test_a_persons_own_return_minutes() -> None:
    patient = profile(rules={"night_exit": {"return_minutes": 30}})
    messages = [*days(7, bed_at=22.0), *departure(7, 22.5, back_after=20)]
    assert raised(run(Engine([patient]), messages, until=at(8, 1)), "night_exit") == []
    alarms = raised(run(Engine([patient]), [*days(7, bed_at=22.0), *departure(7, 22.5)], until=at(8, 1)))
    assert [(a.rule, a.at) for a in alarms if a.rule == "night_exit"] == [("night_exit", at(7, 23))]


def test_a_second_departure_the_same_night_is_a_repeat() -> None:
    messages = [*days(7, bed_at=22.0), *departure(7, 22.5, back_after=40), *departure(7, 23.5)]
    decisions = run(Engine([profile()]), messages, until=at(8, 1))
    exits = [d for d in decisions if getattr(d, "rule", None) == "night_exit"]
    assert [d.explanation["episode"] for d in exits] == ["new", "repeat"]


def test_returning_home_at_night_is_not_an_exit() -> None:
    messages = [event(at(0, 20), "pir-001", EventCode.ACTIVITY), event(at(0, 20, 5), "door-001", OPENED),
                event(at(0, 20, 6), "door-001", CLOSED), event(at(0, 23, 30), "door-001", OPENED),
                event(at(0, 23, 31), "door-001", CLOSED), event(at(0, 23, 35), "pir-001", EventCode.ACTIVITY)]
    assert raised(run(Engine([profile()]), messages), "night_exit") == []


def test_out_of_bed_at_night_after_45_minutes_and_cleared_back_in_bed() -> None:
    messages = [event(at(0, 22, 30), "bed-001", EventCode.BED_OCCUPIED),
                event(at(1, 1), "bed-001", EventCode.BED_VACATED)]
    engine = Engine([profile()])
    assert raised(run(engine, messages, until=at(1, 1, 44))) == []
    decisions = run(engine, [event(at(1, 1, 50), "pir-001", EventCode.ACTIVITY)])
    assert [(a.rule, a.priority) for a in raised(decisions)] == [("out_of_bed_at_night", 2)]
    back = engine.observe(event(at(1, 2), "bed-001", EventCode.BED_OCCUPIED))
    assert [(type(d), d.rule) for d in back] == [(Clear, "out_of_bed_at_night")]


def test_back_in_bed_within_45_minutes_is_quiet() -> None:
    messages = [event(at(0, 22, 30), "bed-001", EventCode.BED_OCCUPIED),
                event(at(1, 1), "bed-001", EventCode.BED_VACATED),
                event(at(1, 1, 40), "bed-001", EventCode.BED_OCCUPIED)]
    assert raised(run(Engine([profile()]), messages, until=at(1, 3))) == []


def test_door_left_open_and_cleared_when_closed() -> None:
    engine = Engine([profile()])
    decisions = run(engine, [event(at(0, 14), "pir-001", EventCode.ACTIVITY), event(at(0, 14, 1), "door-001", OPENED)],
                    until=at(0, 14, 17))
    assert [(a.rule, a.priority) for a in raised(decisions)] == [("door_left_open", 3)]
    assert [(type(d), d.rule) for d in engine.observe(event(at(0, 14, 20), "door-001", CLOSED))] == [
        (Clear, "door_left_open")]
    short = [event(at(0, 14), "door-001", OPENED), event(at(0, 14, 10), "door-001", CLOSED),
             event(at(0, 14, 11), "pir-001", EventCode.ACTIVITY)]
    assert raised(run(Engine([profile()]), short, until=at(0, 15))) == []


def test_no_morning_activity_by_the_learned_time() -> None:
    engine = Engine([profile()])
    history = days(8)
    decisions = run(engine, history, until=at(8, 12))
    alarms = raised(decisions, "no_morning_activity")
    assert len(alarms) == 1
    # learned: up at 07:00, first activity (kitchen) 07:30 every day → deadline 08:30 (p90 + 60 min),
    # earlier than the 10:00 default. Leaving the bed is not yet being up.
    assert alarms[0].at == at(8, 8, 30)
    assert alarms[0].explanation["baseline"]["learning"] is False
    late_riser = Engine([profile()])
    assert raised(run(late_riser, [*history, event(at(8, 7, 50), "pir-001", EventCode.ACTIVITY)],
                      until=at(8, 12)), "no_morning_activity") == []


def test_no_morning_activity_uses_the_default_while_learning() -> None:
    alarms = raised(run(Engine([profile()]), days(2), until=at(2, 12)), "no_morning_activity")
    assert [a.at for a in alarms] == [at(2, 10)]


def test_house_unoccupied_into_the_night() -> None:
    messages = [event(at(0, 19), "pir-001", EventCode.ACTIVITY), event(at(0, 20), "door-001", OPENED),
                event(at(0, 20, 1), "door-001", CLOSED)]
    alarms = raised(run(Engine([profile()]), messages, until=at(0, 23, 30)), "house_unoccupied")
    assert [a.at for a in alarms] == [at(0, 23)]


def test_house_unoccupied_longer_than_learned_outings() -> None:
    engine = Engine([profile()])
    decisions = run(engine, days(6), until=at(6, 9))  # six 1 h outings learnt: limit max(3 h, 1.5 x 1 h) = 3 h
    assert raised(decisions, "house_unoccupied") == []
    gone = [event(at(6, 7), "bed-001", EventCode.BED_VACATED), event(at(6, 9, 30), "door-001", OPENED),
            event(at(6, 9, 31), "door-001", CLOSED)]
    alarms = raised(run(engine, gone, until=at(6, 13)), "house_unoccupied")
    assert [a.at for a in alarms] == [at(6, 12, 31)]
    back = engine.observe(event(at(6, 13, 5), "door-001", OPENED))
    assert [(type(d), d.rule) for d in back] == [(Clear, "house_unoccupied")]


def test_frequent_night_toilet_against_the_persons_baseline() -> None:
    engine = Engine([profile()])
    history = days(10)
    assert raised(run(engine, history, until=at(10, 0, 30))) == []
    night = normal_day(10, toilet_visits=4)
    alarms = raised(run(engine, night, until=at(11, 6)), "night_toilet_frequency")
    assert len(alarms) == 1
    assert alarms[0].explanation["baseline"]["mean"] == 1.0
    assert len(alarms[0].explanation["visits"]) == 4


def test_night_toilet_near_misses() -> None:
    engine = Engine([profile()])
    assert raised(run(engine, days(12, toilet_visits=2), until=at(12)), "night_toilet_frequency") == []
    three = Engine([profile()])  # above mean + 2 SD of one a night, but 3 is common: at least 4
    assert raised(run(three, [*days(10), *normal_day(10, toilet_visits=3)], until=at(11, 6)),
                  "night_toilet_frequency") == []


def test_override_changes_the_night_window() -> None:
    messages = [event(at(0, 20), "bed-001", EventCode.BED_OCCUPIED), event(at(0, 21), "bed-001", EventCode.BED_VACATED)]
    assert raised(run(Engine([profile()]), messages, until=at(0, 22, 30))) == []
    early = profile(rules={"out_of_bed_at_night": {"night_start": "20:30"}})
    assert [a.rule for a in raised(run(Engine([early]), messages, until=at(0, 22, 30)))] == ["out_of_bed_at_night"]


def absent(start: datetime, end: datetime) -> Absence:
    return Absence(start=start, end=end, reason="hospital")


def test_absence_pauses_activity_rules() -> None:
    away = profile(absences=[absent(at(0, 9), at(3, 12))])
    messages = [event(at(0, 8), "pir-001", EventCode.ACTIVITY), event(at(0, 9, 30), "door-001", OPENED)]
    assert raised(run(Engine([away]), messages, until=at(3, 11))) == []
    assert {a.rule for a in raised(run(Engine([profile()]), messages, until=at(3, 11)))} >= {
        "door_left_open", "house_unoccupied"}


def test_absence_nights_do_not_pollute_the_toilet_baseline() -> None:
    """Ten nights of one visit, then an absence whose nights would lower the mean (0 visits)."""
    history = days(10)
    back = [e for d in range(14, 16) for e in normal_day(d)]
    third = normal_day(16, toilet_visits=4)
    away = profile(absences=[absent(at(10, 9), at(14, 6))])
    engine = Engine([away])
    run(engine, [*history, *back], until=at(16, 0, 30))
    assert engine._people["home-001"].activity.learned_nights(datetime(2026, 3, 18).date()).count(0) == 0
    alarms = raised(run(engine, third, until=at(17, 6)), "night_toilet_frequency")
    assert len(alarms) == 1
