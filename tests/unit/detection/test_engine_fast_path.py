"""The fast paths for clean readings (`Engine(fast=True)`, the default) decide exactly what the full
paths decide (`Engine(fast=False)`): the same decisions, in the same order, and the same counts, for
any stream: several people, SpO2 and pulse at 1 Hz to one a minute with dips below the thresholds,
gaps, late readings, flagged and no-signal readings, door events and presses, heartbeats, ticks,
profile changes mid-stream, with and without the centre's receive times (and a hub clock that is wrong)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detection.engine import Decision, Engine
from detection.people import PersonProfile
from detection.thresholds import ThresholdRules
from detection.trends import TrendRules
from telecare_protocol import DeviceEvent, DeviceType, EventCode, Heartbeat, Message, Metric, Power, Reading
from telecare_protocol.codes import QualityFlag
from tests.support.detection_builders import DEVICES, T0, raised

HUBS = ("hub-001", "hub-002", "hub-003")
VARIANTS: tuple[dict[str, Any], ...] = (
    {},
    {"spo2_scale": 2, "on_oxygen": True},
    {"spo2_scale": 2},
    {"rules": {"spo2_low": {"persistence_readings": 3, "continuous_persistence_s": 30},
               "pulse_low": {"review_at_or_below": 50}, "spo2_trend_slope": {"eval_interval_s": 300},
               "spo2_trend_spc": {"metric": "pulse_rate", "direction": "high"}}},
    {"rules": {"spo2_low": {"enabled": False}, "pulse_high": {"review_at_or_above": 100}}},
    {"measurement_schedule": {"times": ["09:00", "21:00"], "window_minutes": 60}, "timezone": "Europe/London"},
)
"""Profiles a person may change to mid-stream: other scales and bands, persistence, trend settings, a schedule."""


def person(index: int, variant: int = 0) -> PersonProfile:
    return PersonProfile.model_validate({"id": f"home-{index}", "hubs": [HUBS[index]], "devices": dict(DEVICES),
                                         **VARIANTS[variant]})


@dataclass(frozen=True)
class Burst:
    """`count` readings of one person's oximeter every `cadence_s`, SpO2 and pulse, around `level`, with a
    dip of `dip_depth` from reading `dip_at` for `dip_len`, and some flagged or no-signal readings."""

    who: int
    cadence_s: float
    count: int
    level: float
    pulse: float
    dip_at: int
    dip_len: int
    dip_depth: float
    seed: int
    flagged: float
    no_signal: float
    pulse_too: bool


@dataclass(frozen=True)
class Late:
    """Readings `back_s` before now (an outbox replayed after an outage), interleaved with live ones."""

    who: int
    back_s: float
    count: int
    value: float


@dataclass(frozen=True)
class Event:
    who: int
    device: str
    code: EventCode


@dataclass(frozen=True)
class Beat:
    who: int


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Tick:
    pass


@dataclass(frozen=True)
class Change:
    who: int
    variant: int


Step = Burst | Late | Event | Beat | Pause | Tick | Change

WHO = st.integers(0, len(HUBS) - 1)
bursts = st.builds(
    Burst, who=WHO, cadence_s=st.sampled_from([1.0, 1.0, 2.0, 4.0, 5.0, 12.0, 30.0, 60.0, 90.0, 600.0]),
    count=st.integers(1, 150), level=st.sampled_from([90.0, 93.0, 95.0, 96.5, 98.0]),
    pulse=st.sampled_from([38.0, 60.0, 75.0, 115.0, 135.0]), dip_at=st.integers(0, 100),
    dip_len=st.integers(0, 120), dip_depth=st.sampled_from([0.0, 3.0, 5.0, 8.0, 12.0]), seed=st.integers(0, 2**16),
    flagged=st.sampled_from([0.0, 0.0, 0.05, 0.3]), no_signal=st.sampled_from([0.0, 0.0, 0.02, 0.5]),
    pulse_too=st.booleans())
steps = st.one_of(
    bursts, bursts, bursts,
    st.builds(Late, who=WHO, back_s=st.sampled_from([5.0, 30.0, 600.0, 7200.0]), count=st.integers(1, 40),
              value=st.sampled_from([91.0, 96.0])),
    st.builds(Event, who=WHO, device=st.sampled_from(["door-001", "pendant-001", "pir-001", "bed-001"]),
              code=st.sampled_from([EventCode.DOOR_OPENED, EventCode.DOOR_CLOSED, EventCode.MANUAL_ALARM,
                                    EventCode.ACTIVITY, EventCode.BED_OCCUPIED, EventCode.BED_VACATED])),
    st.builds(Beat, who=WHO),
    st.builds(Pause, seconds=st.sampled_from([3.0, 20.0, 45.0, 300.0, 3600.0, 6 * 3600.0, 20 * 3600.0])),
    st.just(Tick()),
    st.builds(Change, who=WHO, variant=st.integers(0, len(VARIANTS) - 1)),
)


class Feed:
    """Plays steps into both engines alike and keeps what each decided."""

    def __init__(self, receive: str | None, variants: tuple[int, ...]) -> None:
        profiles = [person(i, v) for i, v in enumerate(variants)]
        self.fast, self.full = Engine(profiles), Engine(profiles, fast=False)
        self.receive = receive
        """None: a replay (no receive times); "live": received just after; "ahead": hub clocks 10 min ahead."""
        self.now = T0 + timedelta(hours=21)
        self.decisions: tuple[list[Decision], list[Decision]] = ([], [])

    def send(self, message: Message, received: datetime | None = None) -> None:
        if self.receive is None:
            pair = (self.fast.observe(message), self.full.observe(message))
        else:
            at = received or self.now
            pair = (self.fast.observe(message, at), self.full.observe(message, at))
        assert pair[0] == pair[1], message
        self.decisions[0].extend(pair[0])
        self.decisions[1].extend(pair[1])

    def stamp(self, when: datetime) -> datetime:
        return when + timedelta(minutes=10) if self.receive == "ahead" else when

    def reading(self, who: int, metric: Metric, value: float | None, when: datetime,
                *quality: QualityFlag) -> Reading:
        return Reading(hub_id=HUBS[who], device_id="oxi-001", metric=metric, value=value,
                       unit="%" if metric == Metric.SPO2 else "/min", quality=quality,
                       source_ts=self.stamp(when), hub_ts=self.stamp(when))

    def play(self, step: Step) -> None:
        if isinstance(step, Burst):
            self._burst(step)
        elif isinstance(step, Late):
            for i in range(step.count):
                self.now += timedelta(seconds=1)
                self.send(self.reading(step.who, Metric.SPO2, step.value,
                                       self.now - timedelta(seconds=step.back_s - i)))
        elif isinstance(step, Event):
            self.now += timedelta(seconds=1)
            kind = DeviceType.DOOR_SENSOR if step.device == "door-001" else DeviceType.MOTION_SENSOR
            self.send(DeviceEvent.new(hub_id=HUBS[step.who], device_id=step.device, device_type=kind,
                                      code=step.code, source_ts=self.stamp(self.now)))
        elif isinstance(step, Beat):
            self.now += timedelta(seconds=1)
            hub = HUBS[step.who]
            self.send(Heartbeat(hub_id=hub, device_id=hub, source_ts=self.stamp(self.now),
                                hub_ts=self.stamp(self.now), power=Power.MAINS, uptime_s=1.0, interval_s=300))
        elif isinstance(step, Pause):
            self.now += timedelta(seconds=step.seconds)
        elif isinstance(step, Tick):
            pair = (self.fast.tick(self.now), self.full.tick(self.now))
            assert pair[0] == pair[1]
            self.decisions[0].extend(pair[0])
            self.decisions[1].extend(pair[1])
        else:
            self.fast.set_profile(person(step.who, step.variant))
            self.full.set_profile(person(step.who, step.variant))

    def _burst(self, step: Burst) -> None:
        rng = np.random.default_rng(step.seed)
        for i in range(step.count):
            self.now += timedelta(seconds=step.cadence_s)
            dip = step.dip_depth if step.dip_at <= i < step.dip_at + step.dip_len else 0.0
            value = round(float(np.clip(step.level - dip + rng.normal(0, 0.8), 50, 100)), 1)
            draw = rng.random()
            if draw < step.no_signal:
                self.send(self.reading(step.who, Metric.SPO2, 0.0, self.now))
            elif draw < step.no_signal + step.flagged:
                self.send(self.reading(step.who, Metric.SPO2, value, self.now, QualityFlag.QUESTIONABLE))
            elif draw < step.no_signal + step.flagged / 4:
                self.send(self.reading(step.who, Metric.SPO2, None, self.now, QualityFlag.SENSOR_OFF))
            else:
                self.send(self.reading(step.who, Metric.SPO2, value, self.now))
            if step.pulse_too:
                pulse = 0.0 if draw < step.no_signal else round(step.pulse + rng.normal(0, 3))
                self.send(self.reading(step.who, Metric.PULSE_RATE, pulse, self.now))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(receive=st.sampled_from([None, None, "live", "ahead"]),
       variants=st.tuples(*(st.integers(0, len(VARIANTS) - 1) for _ in HUBS)),
       plan=st.lists(steps, min_size=1, max_size=40))
def test_fast_paths_decide_exactly_what_the_full_paths_decide(
        receive: str | None, variants: tuple[int, ...], plan: list[Step]) -> None:
    feed = Feed(receive, variants)
    for step in plan:
        feed.play(step)
    assert feed.decisions[0] == feed.decisions[1]
    assert feed.fast.counts == feed.full.counts


def _population(days: int) -> list[Reading]:
    """Spot checks three times a day for 40 people (some declining) and 1 Hz overnight oximetry for one,
    as `bench/detect.py` plays them, in time order: enough for threshold and trend alerts."""
    rng = np.random.default_rng(11)
    messages: list[tuple[datetime, Reading]] = []
    for i in range(40):
        base, decline = rng.uniform(95.5, 98.0), (1.5 if i % 8 == 0 else 0.0)
        for day in range(days):
            for hour in (9, 14, 20):
                when = T0 + timedelta(days=day, hours=hour, minutes=float(rng.integers(0, 30)))
                value = float(np.clip(round(base - decline * max(0, day - days / 2) + rng.normal(0, 1.2), 1), 70, 100))
                messages.append((when, Reading(hub_id=f"spot-{i}", device_id="oxi", metric=Metric.SPO2, value=value,
                                               unit="%", source_ts=when, hub_ts=when)))
    for night in range(2):
        start = T0 + timedelta(days=night, hours=22)
        for s in range(3 * 3600):
            when = start + timedelta(seconds=s)
            value = round(95.5 + rng.normal(0, 0.8) - (6.0 if 3000 <= s < 3100 else 0.0), 1)
            messages.append((when, Reading(hub_id="night", device_id="oxi", metric=Metric.SPO2, value=value,
                                           unit="%", source_ts=when, hub_ts=when)))
            messages.append((when, Reading(hub_id="night", device_id="oxi", metric=Metric.PULSE_RATE,
                                           value=float(round(62 + rng.normal(0, 2))), unit="/min",
                                           source_ts=when, hub_ts=when)))
    return [message for _, message in sorted(messages, key=lambda pair: pair[0])]


def _decide(engine: Engine, messages: list[Reading]) -> list[Decision]:
    return [decision for message in messages for decision in engine.observe(message)]


def _people() -> list[PersonProfile]:
    return [PersonProfile(id=f"s{i}", hubs=(f"spot-{i}",), devices={"oxi": "oximeter"}) for i in range(40)] + [
        PersonProfile(id="n", hubs=("night",), devices={"oxi": "oximeter"})]


def _counting(monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> list[int]:
    calls = [0]
    original: Callable[..., list[Decision]] = getattr(cls, name)

    def counted(self: object, *args: object) -> list[Decision]:
        calls[0] += 1
        return original(self, *args)

    monkeypatch.setattr(cls, name, counted)
    return calls


def test_a_population_gets_the_same_alerts_and_most_readings_take_the_fast_paths(
        monkeypatch: pytest.MonkeyPatch) -> None:
    messages = _population(days=8)
    full = _decide(Engine(_people(), fast=False), messages)
    thresholds = _counting(monkeypatch, ThresholdRules, "reading")
    trends = _counting(monkeypatch, TrendRules, "reading")
    fast = _decide(Engine(_people()), messages)
    assert fast == full
    rules = {d.rule for d in raised(fast)}
    assert {"spo2_low", "spo2_trend_slope"} <= rules, rules  # the comparison covers real alerts
    assert thresholds[0] < len(messages) / 5  # the full paths ran for the exceptions: runs in a band, ...
    assert trends[0] < len(messages) / 20


def test_a_failing_fast_path_falls_back_to_the_full_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: object, reading: Reading) -> bool:
        raise RuntimeError("a bug in a fast path")

    messages = _population(days=2)
    full = _decide(Engine(_people(), fast=False), messages)
    monkeypatch.setattr(ThresholdRules, "fast_reading", broken)
    engine = Engine(_people())
    assert _decide(engine, messages) == full
    assert engine.counts.fast_path_failures["thresholds"] > 1000
    assert engine.counts.rule_failures == {}
