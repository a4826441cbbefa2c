"""Trend rules: SPC against the person's own week, slope over days, widening scatter; determinism."""

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detection.engine import Engine
from detection.trends import BUCKET_S, KEEP_S, Samples
from telecare_protocol import Reading
from telecare_protocol.codes import QualityFlag
from tests.support.detection_builders import at, profile, raised, run, spo2

HOURS = (9, 14, 20)


def week(mean: float = 97.0, days: int = 7) -> list[Reading]:
    wiggle = (-1.0, 0.0, 1.0)
    return [spo2(at(d, h), mean + wiggle[i]) for d in range(days) for i, h in enumerate(HOURS)]


def test_spc_fires_on_two_of_three_days_below_the_weekly_band() -> None:
    engine = Engine([profile()])
    first_day = [spo2(at(7, 9), 95), spo2(at(7, 14), 95)]
    assert raised(run(engine, [*week(), *first_day])) == []  # one day below happens to the well: 1 in 20
    alarms = raised(run(engine, [spo2(at(8, 9), 95), spo2(at(8, 14), 95)]))
    assert [(a.rule, a.priority) for a in alarms] == [("spo2_trend_spc", 3)]
    explanation = alarms[0].explanation
    assert explanation["baseline"]["days"] == 7 and explanation["baseline"]["sd"] == 1.0  # the SD floor
    assert explanation["today"] == {"date": "2026-03-10", "mean": 95.0, "readings": 2}
    assert [d["beyond"] for d in explanation["days"]] == [True, True, False]


def test_spc_near_miss_and_learning_period() -> None:
    near = [spo2(at(d, h), 95.5) for d in (7, 8) for h in (9, 14)]
    assert raised(run(Engine([profile()]), [*week(), *near])) == []
    short = [r for r in week() if r.source_ts < at(4)]  # 4 days: still learning
    assert raised(run(Engine([profile()]), [*short, spo2(at(4, 9), 95), spo2(at(4, 14), 95)])) == []


def test_flagged_readings_never_enter_a_trend() -> None:
    flagged = [spo2(at(7, h), 80, QualityFlag.QUESTIONABLE) for h in HOURS]
    alerts = raised(run(Engine([profile()]), [*week(), *flagged]))
    # nothing clinical; and a morning of only flagged readings is no sign of the person (activity.py, "Readings")
    assert [a.rule for a in alerts] == ["no_morning_activity"]


def declining(rate_per_day: float) -> list[Reading]:
    wiggle = (0.3, -0.3, 0.0)
    return [spo2(at(d, h), round(99.5 - rate_per_day * (d + h / 24) + wiggle[i], 2))
            for d in range(4) for i, h in enumerate(HOURS)]


def test_slope_fires_on_a_steady_decline() -> None:
    alarms = raised(run(Engine([profile(rules={"spo2_trend_spc": {"enabled": False}})]), declining(1.2)))
    slope = [a for a in alarms if a.rule == "spo2_trend_slope"]
    assert len(slope) == 1
    assert slope[0].explanation["slope_per_day"] < -1.0
    assert slope[0].explanation["readings_behind"]["readings"] >= 6


def test_slope_near_miss() -> None:
    assert raised(run(Engine([profile()]), declining(0.6)), "spo2_trend_slope") == []


def test_variability_fires_when_scatter_widens() -> None:
    scatter = [spo2(at(7 + d, h), (99.0 if (d * 3 + i) % 2 else 89.0)) for d in range(3) for i, h in enumerate(HOURS)]
    alarms = raised(run(Engine([profile()]), [*week(), *scatter]))
    assert "spo2_variability" in {a.rule for a in alarms}
    assert "spo2_low" not in {a.rule for a in alarms}  # single low readings never persisted
    variability = next(a for a in alarms if a.rule == "spo2_variability")
    assert variability.explanation["residual_sd"] >= 4.0
    assert variability.explanation["baseline_residual_sd"] is not None


def test_variability_near_miss() -> None:
    steady = [spo2(at(7 + d, h), (98.0 if i % 2 else 96.0)) for d in range(3) for i, h in enumerate(HOURS)]
    assert raised(run(Engine([profile()]), [*week(), *steady]), "spo2_variability") == []


def test_override_spc_z_and_run_rule() -> None:
    today = [spo2(at(7, 9), 95), spo2(at(7, 14), 95)]
    one_day = profile(rules={"spo2_trend_spc": {"days_needed": 1}})
    assert [a.rule for a in raised(run(Engine([one_day]), [*week(), *today]))] == ["spo2_trend_spc"]
    wide = profile(rules={"spo2_trend_spc": {"days_needed": 1, "z": 3.0}})
    assert raised(run(Engine([wide]), [*week(), *today])) == []


def test_same_messages_same_decisions() -> None:
    messages = [*week(), *[spo2(at(d, h), 95) for d in (7, 8) for h in (9, 14)], *declining(1.5)]
    first = run(Engine([profile()]), messages, until=at(8))
    second = run(Engine([profile()]), messages, until=at(8))
    assert first == second and first


def test_a_reading_from_before_the_week_kept_leaves_the_hours_kept_alone() -> None:
    """A hub back after more than a week away replays its outbox, oldest first: its hours older than the
    week kept are not kept, and they do not leak into the newest hour's mean (they once did: the old hour
    became the "current" one, whose sums were then written over the newest hour's)."""
    samples = Samples()
    newest = at(days=10, hours=9)
    samples.add(spo2(newest, 96.0), 96.0, newest.date())
    for minute in range(3):  # the same old hour, three readings: the first of them once made it current
        old = at(days=1, hours=9, minutes=minute)
        samples.add(spo2(old, 80.0), 80.0, old.date())
    later = newest + timedelta(hours=1)
    samples.add(spo2(later, 94.0), 94.0, later.date())
    _, means, counts = samples.window(0.0, later.timestamp())
    assert list(means) == [96.0, 94.0]
    assert list(counts) == [1.0, 1.0]
    assert samples.daily[at(days=1).date()] == [3.0, 240.0]  # the day's sums still have them


@settings(max_examples=200, deadline=None)
@given(offsets_h=st.lists(st.floats(0, 10 * 24, allow_nan=False), min_size=1, max_size=60))
def test_hourly_means_are_those_of_the_readings_within_the_week_before_the_newest_hour(offsets_h: list[float]) -> None:
    """Whatever the arrival order (late readings, hours never seen, hours more than a week old), each hour kept
    has the sum and count of its readings, and the hours kept are those within `KEEP_S` of the newest
    (the hours present when it arrived, as readings come)."""
    samples = Samples()
    sums: dict[float, list[float]] = {}
    newest = float("-inf")
    for n, hours in enumerate(offsets_h):
        when = at(hours=hours)
        value = 90.0 + n % 7
        samples.add(spo2(when, value), value, when.date())
        ts = when.timestamp()
        bucket = ts - ts % BUCKET_S
        if bucket in sums or bucket >= newest - KEEP_S:
            sums.setdefault(bucket, [0.0, 0.0])
            sums[bucket][0] += value
            sums[bucket][1] += 1
            newest = max(newest, bucket)
        sums = {b: v for b, v in sums.items() if b >= newest - KEEP_S}
    t, means, counts = samples.window(float("-inf"), float("inf"))
    assert sorted(t) == sorted(sums)
    for bucket, mean, count in zip(t, means, counts, strict=True):
        assert count == sums[bucket][1]
        assert mean == pytest.approx(sums[bucket][0] / sums[bucket][1])
