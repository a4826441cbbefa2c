"""Threshold rules: NEWS2 / oximetry @home bands, persistence, quality, scales, overrides."""

from collections.abc import Sequence
from datetime import timedelta

import pytest

from detection.engine import Engine, Raise
from telecare_protocol import Reading
from telecare_protocol.codes import QualityFlag
from tests.support.detection_builders import at, profile, pulse, raised, run, spo2


def continuous(values: Sequence[float], start_s: float = 0, flags: tuple[QualityFlag, ...] = ()) -> list[Reading]:
    return [spo2(at(hours=22, seconds=start_s + i), v, *flags) for i, v in enumerate(values)]


def test_continuous_low_for_a_minute_alarms_urgent() -> None:
    decisions = run(Engine([profile()]), continuous([97] * 30 + [90] * 61))
    alarms = raised(decisions, "spo2_low")
    assert len(alarms) == 1
    assert alarms[0].priority == 2
    assert alarms[0].explanation["persistence"]["mode"] == "continuous"
    assert alarms[0].explanation["persistence"]["seconds"] >= 60
    assert alarms[0].at == at(hours=22, seconds=90)


def test_continuous_dips_shorter_than_a_minute_do_not_alarm() -> None:
    values = ([97] * 60 + [89] * 35) * 5 + [97] * 60
    assert raised(run(Engine([profile()]), continuous(values))) == []


def test_flagged_readings_never_count_toward_persistence() -> None:
    for flag in (QualityFlag.QUESTIONABLE, QualityFlag.LOW_PERFUSION, QualityFlag.EARLY_ESTIMATE):
        messages = continuous([97] * 10) + continuous([85] * 300, start_s=10, flags=(flag,))
        assert raised(run(Engine([profile()]), messages)) == [], flag


def test_probe_off_never_alarms_and_breaks_a_continuous_run() -> None:
    probe_off = [spo2(at(hours=22, seconds=40 + i), None, QualityFlag.SENSOR_OFF) for i in range(600)]
    messages = continuous([89] * 40) + probe_off + continuous([89] * 40, start_s=640)
    assert raised(run(Engine([profile()]), messages)) == []


def test_flagged_readings_are_listed_in_the_explanation() -> None:
    messages = continuous([90] * 20) + continuous([80] * 5, start_s=20, flags=(QualityFlag.QUESTIONABLE,)) \
        + continuous([90] * 60, start_s=25)
    alarm = raised(run(Engine([profile()]), messages), "spo2_low")[0]
    flagged = alarm.explanation["flagged_readings_not_counted"]
    assert flagged["count_in_run"] == 5
    assert {r["quality"][0] for r in flagged["listed"]} == {"questionable"}


def test_spot_checks_need_a_second_clean_reading() -> None:
    engine = Engine([profile()])
    first = run(engine, [spo2(at(hours=9), 91)])
    assert raised(first) == []
    second = run(engine, [spo2(at(hours=9, minutes=5), 92)])
    alarm = raised(second, "spo2_low")
    assert [a.priority for a in alarm] == [2]
    assert alarm[0].explanation["persistence"] == {
        "mode": "spot_check", "readings": 2, "needed": 2, "source": alarm[0].explanation["persistence"]["source"]}


def test_spot_check_near_miss_stays_quiet() -> None:
    readings = [spo2(at(hours=9), 93), spo2(at(hours=14), 96), spo2(at(hours=20), 94), spo2(at(days=1, hours=9), 95)]
    assert raised(run(Engine([profile()]), readings)) == []


def test_gp_today_band_is_priority_3() -> None:
    alarms = raised(run(Engine([profile()]), [spo2(at(hours=9), 94), spo2(at(hours=14), 93.4)]), "spo2_low")
    assert [a.priority for a in alarms] == [3]
    assert "GP" in alarms[0].explanation["band"]["action"]


def test_scale2_quiet_where_scale1_alarms() -> None:
    readings = [spo2(at(hours=9), 89), spo2(at(hours=9, minutes=10), 88)]
    assert [a.priority for a in raised(run(Engine([profile()]), readings))] == [2]
    assert raised(run(Engine([profile(spo2_scale=2)]), readings)) == []
    low = [spo2(at(hours=9), 83), spo2(at(hours=9, minutes=10), 82)]
    assert [a.priority for a in raised(run(Engine([profile(spo2_scale=2)]), low))] == [2]


def test_scale2_on_oxygen_alarms_on_high_saturation() -> None:
    high = [spo2(at(hours=9), 98), spo2(at(hours=9, minutes=10), 97)]
    assert raised(run(Engine([profile(spo2_scale=2)]), high)) == []
    alarms = raised(run(Engine([profile(spo2_scale=2, on_oxygen=True)]), high))
    assert [a.priority for a in alarms] == [2]


def test_override_persistence_readings() -> None:
    readings = [spo2(at(hours=9), 90), spo2(at(hours=10), 90)]
    strict = profile(rules={"spo2_low": {"persistence_readings": 3}})
    assert raised(run(Engine([strict]), readings)) == []
    assert raised(run(Engine([strict]), [*readings, spo2(at(hours=11), 91)]))[0].explanation["settings"][
        "overridden"] == {"persistence_readings": 3}


def test_override_scale_through_rule_settings() -> None:
    readings = [spo2(at(hours=9), 89), spo2(at(hours=9, minutes=10), 88)]
    assert raised(run(Engine([profile(rules={"spo2_low": {"scale": 2}})]), readings)) == []


def test_alarm_stays_open_while_low_and_relapse_is_a_new_episode() -> None:
    engine = Engine([profile()])
    low = [spo2(at(hours=h), 90) for h in (1, 2, 3, 4)]
    normal = [spo2(at(hours=h), 97) for h in (5, 6, 7)]
    decisions = run(engine, [*low, *normal, *[spo2(at(hours=h), 90) for h in (8, 9)]])
    assert len(raised(decisions, "spo2_low")) == 2
    assert not any(type(d).__name__ == "Clear" for d in decisions)  # a normal reading never clears


def test_pulse_bands() -> None:
    high = raised(run(Engine([profile()]), [pulse(at(hours=9), 135), pulse(at(hours=9, minutes=5), 133)]))
    assert [(a.rule, a.priority) for a in high] == [("pulse_high", 2)]
    review = raised(run(Engine([profile()]), [pulse(at(hours=9), 115), pulse(at(hours=9, minutes=5), 120)]))
    assert [(a.rule, a.priority) for a in review] == [("pulse_high", 3)]
    low = raised(run(Engine([profile()]), [pulse(at(hours=9), 38), pulse(at(hours=9, minutes=5), 40)]))
    assert [(a.rule, a.priority) for a in low] == [("pulse_low", 2)]
    near = raised(run(Engine([profile()]), [pulse(at(hours=9), 110), pulse(at(hours=9, minutes=5), 45)]))
    assert near == []


def test_escalation_from_review_to_urgent_is_sent() -> None:
    decisions = run(Engine([profile()]), [spo2(at(hours=h), v) for h, v in ((1, 94), (2, 94), (3, 91), (4, 90))])
    spo2_raises = [d for d in decisions if isinstance(d, Raise)]
    assert [(d.priority, d.explanation["episode"]) for d in spo2_raises] == [(3, "new"), (2, "escalated")]


@pytest.mark.parametrize("order", ["after", "interleaved"])
def test_late_readings_are_evaluated_on_their_own_stream(order: str) -> None:
    """A hub replaying its outbox: an hour-old desaturation still alarms, after its full minute."""
    live = [spo2(at(hours=10, seconds=i), 97) for i in range(0, 300, 5)]
    backlog = [spo2(at(hours=9, seconds=i), 88) for i in range(0, 120)]
    if order == "after":
        messages = [*live, *backlog]
    else:
        messages = [m for pair in zip(live, backlog, strict=False) for m in pair] + backlog[len(live):]
    alarms = raised(run(Engine([profile()]), messages))
    assert [a.rule for a in alarms] == ["spo2_low"]
    assert alarms[0].explanation["late"] is True
    assert alarms[0].at - at(hours=9) >= timedelta(seconds=60)
