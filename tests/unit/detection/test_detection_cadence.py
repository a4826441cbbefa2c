"""Oximeter streams at any steady cadence from 1 Hz to one a minute are continuous: persistence is
wall-clock time, inferred from the stream's own spacing; isolated spot checks stay spot checks."""

from datetime import timedelta

import pytest

from detection.engine import Engine
from telecare_protocol import Reading
from tests.support.detection_builders import at, profile, raised, run, spo2


def stream(period_s: int, normal_s: int, low_s: int, *, low: float = 90, skip: frozenset[int] = frozenset()) -> \
        list[Reading]:
    """Readings every `period_s` seconds from 22:00: 97 % for `normal_s` seconds, then `low` % for `low_s`
    seconds (both ends included); the readings whose index is in `skip` are lost."""
    count = (normal_s + low_s) // period_s + 1
    return [spo2(at(hours=22, seconds=k * period_s), 97 if k * period_s < normal_s else low)
            for k in range(count) if k not in skip]


@pytest.mark.parametrize("period_s", [1, 5, 15, 60])
def test_the_same_desaturation_raises_after_the_same_minute_at_every_cadence(period_s: int) -> None:
    alarms = raised(run(Engine([profile()]), stream(period_s, 600, 300)), "spo2_low")
    assert len(alarms) == 1
    assert alarms[0].at == at(hours=22, seconds=660)  # 60 s of wall-clock time after the first low reading
    persistence = alarms[0].explanation["persistence"]
    assert persistence["mode"] == "continuous"
    assert persistence["seconds"] == 60
    assert persistence["cadence_s"] == period_s


@pytest.mark.parametrize("period_s", [1, 5, 15, 60])
def test_a_desaturation_shorter_than_a_minute_is_quiet_at_every_cadence(period_s: int) -> None:
    low_s = 59 if period_s == 1 else 60 - period_s  # the last low reading is under a minute after the first
    messages = [*stream(period_s, 600, low_s), spo2(at(hours=22, seconds=600 + low_s + period_s), 97)]
    assert raised(run(Engine([profile()]), messages)) == []


def test_one_missed_reading_of_a_slow_stream_does_not_restart_the_count() -> None:
    # One a minute, the reading at 660 s lost: 600 and 720 s are two minutes apart, still one stream,
    # and 720 s is the first reading a minute or more after the first low one.
    messages = stream(60, 600, 300, skip=frozenset({11}))
    alarms = raised(run(Engine([profile()]), messages), "spo2_low")
    assert [a.at for a in alarms] == [at(hours=22, seconds=720)]
    assert alarms[0].explanation["persistence"]["mode"] == "continuous"


def test_two_missed_readings_of_a_slow_stream_restart_the_count() -> None:
    # Low at 600 s, then nothing until 780 s (3 periods): the run starts again at 780 and needs its own
    # minute (not a spot check's second reading: the stream is still one a minute).
    messages = stream(60, 600, 300, skip=frozenset({11, 12}))
    alarms = raised(run(Engine([profile()]), messages), "spo2_low")
    assert [a.at for a in alarms] == [at(hours=22, seconds=840)]


def test_a_long_gap_does_not_change_a_streams_cadence() -> None:
    # A 15 s stream with a 5 min probe-off gap before the desaturation: still continuous after the gap,
    # and the gap restarts the count (the minute is counted from the first low reading after it).
    before = stream(15, 300, 0)
    after = [spo2(at(hours=22, seconds=600 + 15 * k), 90) for k in range(10)]
    alarms = raised(run(Engine([profile()]), before + after), "spo2_low")
    assert [a.at for a in alarms] == [at(hours=22, seconds=660)]  # the run restarts at 600 s, a minute on
    assert alarms[0].explanation["persistence"]["mode"] == "continuous"


def test_isolated_spot_checks_hours_apart_are_still_spot_checks() -> None:
    engine = Engine([profile()])
    times = [at(hours=8), at(hours=13), at(hours=19), at(hours=8) + timedelta(days=1)]
    values = [97, 96, 91, 92]
    decisions = run(engine, [spo2(t, v) for t, v in zip(times, values, strict=True)])
    alarms = raised(decisions, "spo2_low")
    assert [a.at for a in alarms] == [times[3]]  # the second clean reading in the band confirms
    assert alarms[0].explanation["persistence"] == {
        "mode": "spot_check", "readings": 2, "needed": 2, "source": alarms[0].explanation["persistence"]["source"]}


def test_a_spot_check_re_measured_a_minute_later_confirms_at_once() -> None:
    # Two readings a minute apart, hours after the last: a spot check and its re-measure, not a stream.
    engine = Engine([profile()])
    run(engine, [spo2(at(hours=8), 97)])
    alarms = raised(run(engine, [spo2(at(hours=14), 91), spo2(at(hours=14, seconds=50), 91)]), "spo2_low")
    assert [a.at for a in alarms] == [at(hours=14, seconds=50)]
    assert alarms[0].explanation["persistence"]["mode"] == "spot_check"


def test_a_stream_slower_than_the_cadence_bound_is_spot_checks() -> None:
    # One reading every 3 min: each reading a spot check, two in the band confirm.
    alarms = raised(run(Engine([profile()]), stream(180, 1800, 900)), "spo2_low")
    assert [a.at for a in alarms] == [at(hours=22, seconds=1980)]
    assert alarms[0].explanation["persistence"]["mode"] == "spot_check"
