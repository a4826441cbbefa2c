"""Readings with no signal (SpO2 0 %, pulse 0 with no flag): never an alarm, counted, kept out of
persistence, trends and schedules, visible when they go on (`no_signal`); and an oximeter stream
as a sign of life for `no_morning_activity`, at every cadence, while a stream of no signal is none."""

from datetime import datetime, timedelta

import pytest

from detection.engine import Clear, Engine
from detection.people import MeasurementSchedule
from telecare_protocol import DeviceEvent, EventCode, Reading
from telecare_protocol.codes import QualityFlag
from tests.support.detection_builders import at, event, profile, pulse, raised, run, spo2

CLINICAL = ("spo2_low", "pulse_low", "pulse_high", "spo2_trend_spc", "spo2_trend_slope", "spo2_variability")


def minutes(start: datetime, end: datetime, spo2_value: float | None, pulse_value: float | None,
            *quality: QualityFlag, every_s: float = 60.0) -> list[Reading]:
    """SpO2 and pulse readings from the oximeter every `every_s` seconds in [start, end)."""
    out: list[Reading] = []
    when = start
    while when < end:
        out += [spo2(when, spo2_value, *quality), pulse(when, pulse_value, *quality)]
        when += timedelta(seconds=every_s)
    return out


def field_day() -> list[Reading]:
    """A day of a continuous monitor as in the field: a clean 96 % / 70 /min every minute, with 24
    stretches of 5 min where it had no signal and sent 0 % and 0 /min with no status bit."""
    stream: list[Reading] = []
    for hour in range(24):
        start = at(0, hour)
        stream += minutes(start, start + timedelta(minutes=20), 96, 70)
        stream += minutes(start + timedelta(minutes=20), start + timedelta(minutes=25), 0, 0)
        stream += minutes(start + timedelta(minutes=25), start + timedelta(minutes=60), 96, 70)
    return stream


# --- zeros are no signal ------------------------------------------------------------------------------


def test_a_day_of_zeros_raises_no_clinical_alarm_and_every_zero_is_counted() -> None:
    engine = Engine([profile()])
    alerts = raised(run(engine, field_day(), until=at(1)))
    assert [a.rule for a in alerts if a.rule in CLINICAL] == []
    assert engine.counts.no_signal == {"spo2": 24 * 5, "pulse_rate": 24 * 5}


def test_the_same_stretches_at_real_low_values_do_alarm() -> None:
    """The positive control: 5 min at 85 % and 38 /min is a desaturation and a bradycardia."""
    stream = [r for r in field_day() if r.value != 0]
    low = minutes(at(0, 3, 20), at(0, 3, 25), 85, 38)
    alerts = raised(run(Engine([profile()]), sorted([*stream, *low], key=lambda r: r.source_ts), until=at(1)))
    assert {a.rule for a in alerts} >= {"spo2_low", "pulse_low"}


@pytest.mark.parametrize(("spo2_value", "pulse_value", "alarms"), [
    (50, 20, {"spo2_low", "pulse_low"}),  # the measurable range's ends: real, and alarming
    (49, 19, set()),
    (97, 255, set()),  # a byte's 255: a placeholder, not a tachycardia
    (97, 250, {"pulse_high"}),
])
def test_the_measurable_range_decides(spo2_value: float, pulse_value: float, alarms: set[str]) -> None:
    stream = minutes(at(0, 9), at(0, 9, 5), spo2_value, pulse_value, every_s=2)
    assert {a.rule for a in raised(run(Engine([profile()]), stream))} == alarms


def test_zeros_neither_count_toward_nor_break_persistence() -> None:
    """1 Hz: 40 s at 88 %, 20 s of zeros, 30 s at 88 %: the run of real readings spans 89 s, the zeros
    are listed as flagged readings not counted."""
    stream = [*minutes(at(0, 9), at(0, 9, 0, 40), 88, 70, every_s=1),
              *minutes(at(0, 9, 0, 40), at(0, 9, 1), 0, 0, every_s=1),
              *minutes(at(0, 9, 1), at(0, 9, 1, 30), 88, 70, every_s=1)]
    [alarm] = raised(run(Engine([profile()]), stream), "spo2_low")
    assert alarm.at == at(0, 9, 1)  # 60 s after the first clean 88 %
    flagged = alarm.explanation["flagged_readings_not_counted"]
    assert flagged["count_in_run"] == 10 and {r["value"] for r in flagged["listed"]} == {0.0}
    assert all(r["quality"] == ["no_signal"] for r in flagged["listed"])
    assert alarm.explanation["readings"]["lowest"] == 88.0


def test_zeros_never_enter_a_trend() -> None:
    """A week of spot checks at 97 %, then two days whose spot checks are half zeros: taken as readings,
    the daily mean would fall below the SPC limit on both days."""
    week = [spo2(at(d, h), 97.0 + (-1, 0, 1)[i]) for d in range(7) for i, h in enumerate((9, 14, 20))]
    zeros = [r for d in (7, 8) for r in (spo2(at(d, 9), 97), spo2(at(d, 9, 1), 0), spo2(at(d, 14), 97),
                                          spo2(at(d, 14, 1), 0))]
    alerts = raised(run(Engine([profile()]), [*week, *zeros]))
    assert [a.rule for a in alerts if a.rule in CLINICAL] == []


def test_a_scheduled_measurement_of_only_zeros_is_missed() -> None:
    """The existing schedule rule already makes a no-signal measurement visible: a slot met only by
    zeros is missed; the next real reading clears it."""
    engine = Engine([profile(measurement_schedule=MeasurementSchedule(times=("09:00",), window_minutes=60))])
    decisions = run(engine, [spo2(at(0, 8), 97), spo2(at(0, 9), 0), spo2(at(0, 9, 5), 0)], until=at(0, 10, 5))
    [missed] = raised(decisions, "missed_measurement")
    assert missed.explanation["last_clean_reading"] == at(0, 8).isoformat()
    assert [type(d) for d in engine.observe(spo2(at(0, 10, 30), 96))] == [Clear]


# --- no signal for long: visible -----------------------------------------------------------------------


def test_an_hour_of_no_signal_is_a_supervision_alert_cleared_by_a_reading() -> None:
    engine = Engine([profile()])
    before = minutes(at(0, 1), at(0, 2), 0, 0)  # 01:00-01:59, a reading a minute: 59 min of zeros
    assert raised(run(engine, before)) == []
    [alert] = raised(engine.observe(spo2(at(0, 2), 0)))
    assert (alert.rule, alert.subject, alert.priority, alert.at) == ("no_signal", "oxi-001", 4, at(0, 2))
    assert alert.explanation["since"] == at(0, 1).isoformat() and alert.explanation["flags"] == ["no_signal"]
    assert alert.title == "Oximeter gives no signal for 60 min (oxi-001)"
    assert raised(engine.observe(spo2(at(0, 2, 1), 0))) == []  # once
    cleared = engine.observe(spo2(at(0, 2, 2), 95))
    assert [(type(d), d.rule, d.subject) for d in cleared] == [(Clear, "no_signal", "oxi-001")]


def test_a_probe_off_stream_is_no_signal_too_but_a_half_hour_gap_is_not_an_alert() -> None:
    probe_off = minutes(at(0, 1), at(0, 2, 1), None, None, QualityFlag.SENSOR_OFF)
    assert [a.rule for a in raised(run(Engine([profile()]), probe_off))] == ["no_signal"]
    gap = [*minutes(at(0, 1), at(0, 1, 30), None, None, QualityFlag.SENSOR_OFF),
           *minutes(at(0, 1, 30), at(0, 2), 96, 70), *minutes(at(0, 2), at(0, 2, 30), 0, 0)]
    assert raised(run(Engine([profile()]), gap)) == []


def test_a_questionable_reading_is_a_signal_and_late_readings_are_left_out() -> None:
    engine = Engine([profile()])
    stream = [*minutes(at(0, 1), at(0, 1, 40), 0, 0), spo2(at(0, 1, 40), 90, QualityFlag.QUESTIONABLE),
              *minutes(at(0, 1, 41), at(0, 2, 30), 0, 0)]
    assert raised(run(engine, stream)) == []  # 40 min, a finger in the clip, then 49 min
    late = [spo2(at(0, 0, m), 0) for m in range(61)]  # an hour old: an outbox replay, not the device now
    assert raised(run(engine, late)) == []


# --- an oximeter as a sign of life in the morning -----------------------------------------------------


def overnight(start: datetime, end: datetime, every_s: float, *quality: QualityFlag,
              value: float = 95) -> list[Reading]:
    """SpO2 only (the activity rules read any metric alike), to keep 1 Hz cheap."""
    out, when = [], start
    while when < end:
        out.append(spo2(when, value, *quality))
        when += timedelta(seconds=every_s)
    return out


@pytest.mark.parametrize("every_s", [1, 4, 60, 300])
def test_an_oximeter_streaming_through_the_morning_prevents_no_morning_activity(every_s: float) -> None:
    """The field fault: a pulse every minute and "no morning activity" at 10:00. A worn oximeter measuring
    shows the person alive (in bed), at any cadence from 1 Hz to one reading every 5 min. Once it stops and
    nothing else is heard, the rule fires when the last reading is an hour old (`reading_alive_minutes`)."""
    start = at(0, 4) if every_s < 60 else at(-1, 22)  # put on before the morning began (05:00), then nothing else
    stream = overnight(start, at(0, 12), every_s)
    engine = Engine([profile()])
    assert raised(run(engine, stream, until=at(0, 12)), "no_morning_activity") == []
    last = stream[-1].source_ts
    after = [engine.tick(at(0, 12) + timedelta(minutes=m)) for m in range(1, 62)]
    [morning] = raised([d for decisions in after for d in decisions], "no_morning_activity")
    assert last + timedelta(minutes=60) < morning.at <= last + timedelta(minutes=61)


def test_a_stream_of_no_signal_through_the_morning_is_no_sign_of_life() -> None:
    stream = [*overnight(at(-1, 22), at(0, 5), 60), *overnight(at(0, 5), at(0, 11), 60, value=0)]
    alerts = raised(run(Engine([profile()]), stream, until=at(0, 12)))
    [morning] = [a for a in alerts if a.rule == "no_morning_activity"]
    assert morning.at == at(0, 10)  # the default deadline while learning
    assert morning.explanation["last_clean_reading"] == at(0, 4, 59).isoformat()
    assert "no_signal" in [a.rule for a in alerts]  # and the probe itself is an alert of its own


def test_a_stream_that_stopped_early_holds_nothing_at_the_deadline() -> None:
    """The probe came off at 05:30 and nothing moved: at 10:00 the person has not been seen for hours."""
    stream = overnight(at(-1, 22), at(0, 5, 30), 60)
    [morning] = raised(run(Engine([profile()]), stream, until=at(0, 12)), "no_morning_activity")
    assert morning.at == at(0, 10)


def test_overnight_readings_are_not_getting_up_for_the_learned_deadline() -> None:
    """A week of overnight oximetry (22:00-07:00) and the kitchen at 08:00: the person's first activity is
    08:00, so the learned deadline is 09:00; the readings after 05:00 were in bed, not up (they would
    have made it 07:00)."""
    stream: list[Reading | DeviceEvent] = []
    for day in range(-1, 8):
        if day >= 0:
            stream += overnight(at(day - 1, 22), at(day, 7), 60)
        if day < 7:
            stream.append(event(at(day, 8), "pir-001", EventCode.ACTIVITY))
    [morning] = raised(run(Engine([profile()]), stream, until=at(7, 12)), "no_morning_activity")
    assert morning.explanation["baseline"]["learning"] is False
    assert morning.explanation["baseline"]["deadline"] == "09:00"
    assert morning.at == at(7, 9)
