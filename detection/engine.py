"""The detection engine: every rule, over every person, from messages to decisions.

Pure and deterministic: no clock reads, no I/O, no randomness. Time comes only from the
messages (`source_ts`, and the centre's receive time when it has one) and from `tick(now)`.
The same messages in the same order always give the same decisions, which is what lets
`telecare replay` reproduce the centre.

Two clocks: a hub's and the centre's. The centre passes each message's receive time; the
hub's clock is judged against it (`clock.py`, the rule `hub_clock_wrong`), and while it is
wrong every message of that hub is placed on the centre's clock before any rule sees it, so
no rule compares a wrong hub time with the centre's `tick(now)`. Liveness (`hub_offline`) is
judged on receive times; an alarm opens at its receive time. A replay of a recording has no
receive times: the hubs' clocks are trusted, as they were when it was recorded.

Messages are observed in arrival order. A message older than one already seen from the
same device (a hub replaying its outbox after an outage, interleaved with live traffic) is
"late": alarms in it are still raised (marked `late`), late readings are checked for
persistence on a stream of their own and feed the trends, late activity events feed the
learned baselines but not the night-time state machines (which follow the live stream).

A reading whose value no oximeter measures on a living person (SpO2 0 %, pulse 0: a device
with no signal) is flagged `no_signal` before any rule sees it, whoever sent it, and counted
(`EngineCounts.no_signal`): a flagged reading, never an alarm (`signal.py`).

Memory per person is bounded (see docs/detection.md): trend samples are one per clean
reading but at most one a minute, kept 7 days (at most ~10,100 samples x 16 bytes); daily
and nightly summaries are kept 35 days; the rest is a few dozen scalars per device.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any

from detection.activity import ActivityRules
from detection.alarms import AlarmRules
from detection.decisions import Clear, Decision, PersonContext, Raise
from detection.people import PersonProfile
from detection.rules import RuleId
from detection.schedule import ScheduleRule
from detection.signal import SignalRule, with_signal_flag
from detection.supervision import SupervisionRules
from detection.thresholds import ThresholdRules
from detection.trends import TrendRules
from telecare_protocol import DeviceEvent, Heartbeat, Message, Metric, QualityFlag, Reading
from telecare_protocol.codes import MEASURABLE

__all__ = ["Clear", "Decision", "Engine", "PersonProfile", "Raise"]

log = logging.getLogger(__name__)


@dataclass
class _Person:
    ctx: PersonContext
    supervision: SupervisionRules
    alarms: AlarmRules
    thresholds: ThresholdRules
    schedule: ScheduleRule
    trends: TrendRules
    activity: ActivityRules
    signal: SignalRule

    lane: tuple[tuple[str, Callable[[Reading], bool], Callable[[Reading], list[Decision]]], ...] = ()
    """The reading families after supervision, in order: (family, its fast path, its full path); made at
    the person's first clean reading (`reading_lane`), so a home with no oximeter does not keep it."""

    @classmethod
    def build(cls, profile: PersonProfile) -> "_Person":
        ctx = PersonContext(profile)
        return cls(ctx, SupervisionRules(ctx), AlarmRules(ctx), ThresholdRules(ctx), ScheduleRule(ctx),
                   TrendRules(ctx), ActivityRules(ctx), SignalRule(ctx))

    def reading_lane(self) -> tuple[tuple[str, Callable[[Reading], bool], Callable[[Reading], list[Decision]]], ...]:
        if not self.lane:
            self.lane = tuple((family, part.fast_reading, part.reading) for family, part in (
                ("thresholds", self.thresholds), ("schedule", self.schedule), ("trends", self.trends),
                ("activity", self.activity), ("signal", self.signal)))
        return self.lane


_SPO2, _PULSE = Metric.SPO2, Metric.PULSE_RATE
_SPO2_LOW, _SPO2_HIGH = MEASURABLE[_SPO2].low, MEASURABLE[_SPO2].high
_PULSE_LOW, _PULSE_HIGH = MEASURABLE[_PULSE].low, MEASURABLE[_PULSE].high


def _clean(reading: Reading) -> bool:
    """A reading the fast paths take: SpO2 or pulse, a measurable value (no `no_signal` to add), no flag."""
    if reading.quality:
        return False
    value, metric = reading.value, reading.metric
    if value is None:
        return False
    if metric is _SPO2:
        return _SPO2_LOW <= value <= _SPO2_HIGH
    return metric is _PULSE and _PULSE_LOW <= value <= _PULSE_HIGH


@dataclass
class EngineCounts:
    """What the engine could not attribute (messages from hubs no person owns), and the readings with no
    signal it saw (`signal.py`), by metric, flagged by their hub or by the engine. Counts only go up,
    warm-up included (`monitoring_centre/detection_runner.py` exports what `observe` adds)."""

    unknown_hub: int = 0
    by_hub: dict[str, int] = field(default_factory=dict)
    no_signal: dict[str, int] = field(default_factory=dict)
    """Metric (`spo2`, `pulse_rate`) → readings flagged `no_signal` (SpO2 0 %, pulse 0)."""
    fast_path_failures: dict[str, int] = field(default_factory=dict)
    """Rule family → times its fast path for a reading raised an exception; its full path ran instead (no
    decision lost: a fast path changes nothing before it can raise)."""
    rule_failures: dict[str, int] = field(default_factory=dict)
    """Rule family (`alarms`, `thresholds`, ...) → times it raised an exception. Each family runs apart,
    so one family's bug costs only its own decisions for that message, never another's (an alarm)."""


class Engine:
    """Every detection rule over every person: messages and ticks in, raise / clear decisions out.

    `profiles`: the people to watch (`PersonProfile`: hubs, devices, rule settings, absences).
    Not thread-safe: the centre holds one lock around it (`EngineRunner`); a replay calls it from
    one thread. `observe(message, received_at)` is called in arrival order (UTC datetimes; no
    receive time in a replay), `tick(now)` about once a minute for timer rules, `warm_up` at start
    with history. Each rule family runs apart (`_isolated`): a failure costs only its own decisions.
    """

    def _isolated(self, family: str, rule: Callable[..., list[Decision]], *args: Any) -> list[Decision]:
        """One rule family's decisions (`rule(*args)`) for one message or tick; an exception in it is logged
        and counted (`counts.rule_failures`), and costs only that family's decisions."""
        try:
            return rule(*args)
        except Exception:  # a bug in one rule must not swallow the alarm of another
            self.counts.rule_failures[family] = self.counts.rule_failures.get(family, 0) + 1
            log.exception("detection rule family %s failed; the other families' decisions stand", family)
            return []

    def __init__(self, profiles: Iterable[PersonProfile], *, fast: bool = True) -> None:
        """`fast`: take each rule family's fast path for clean readings (`fast_reading`: the same state and
        decisions as its full path, at a fraction of the cost); False runs every reading through the full
        paths (the reference the fast paths are tested against)."""
        self._fast = fast
        self._people: dict[str, _Person] = {}
        self._hubs: dict[str, str] = {}
        self.counts = EngineCounts()
        for profile in profiles:
            self.set_profile(profile)

    def set_profile(self, profile: PersonProfile) -> None:
        """Add or replace a person. Replacing keeps what was learnt (baselines, open conditions)."""
        old = self._people.get(profile.id)
        for hub, owner in list(self._hubs.items()):
            if owner == profile.id:
                del self._hubs[hub]
        for hub in profile.hubs:
            self._hubs[hub] = profile.id
        if old is None:
            self._people[profile.id] = _Person.build(profile)
            return
        ctx = PersonContext(profile)
        ctx.open = old.ctx.open
        for part in (old.supervision, old.alarms, old.thresholds, old.schedule, old.trends, old.activity, old.signal):
            part.ctx = ctx
        old.ctx = ctx

    def remove_profile(self, person: str) -> bool:
        """Stop watching a person (their home was retired: no hub is left): their hubs, open
        conditions and what was learnt go. False if the engine did not know them."""
        if self._people.pop(person, None) is None:
            return False
        for hub, owner in list(self._hubs.items()):
            if owner == person:
                del self._hubs[hub]
        return True

    def person_for_hub(self, hub_id: str) -> str | None:
        return self._hubs.get(hub_id)

    def profile(self, person: str) -> PersonProfile | None:
        state = self._people.get(person)
        return state.ctx.profile if state else None

    def observe(self, original: Message, received_at: datetime | None = None) -> list[Decision]:
        """One message, in arrival order, with the centre's receive time (None in a replay of a
        recording): the decisions it causes."""
        person_id = self._hubs.get(original.hub_id)
        if person_id is None:
            self.counts.unknown_hub += 1
            self.counts.by_hub[original.hub_id] = self.counts.by_hub.get(original.hub_id, 0) + 1
            return []
        person = self._people[person_id]
        if isinstance(original, Reading):
            if self._fast and _clean(original):  # most readings: each family's fast path (`_fast_lane`)
                if received_at is None:  # a replay: nothing to place
                    return self._fast_lane(person, original, None)
                placed = person.supervision.place_reading(original, received_at)
                if placed is None:  # the hub's clock is right: the reading as stamped
                    return self._fast_lane(person, original, received_at)
                clock, message = placed
                decisions = (self._fast_lane(person, original, received_at) if message is original
                             else self._full(person, original, message, received_at))
                return clock + decisions if clock else decisions
            original = with_signal_flag(original)  # SpO2 0 %, pulse 0: no signal, before any rule (signal.py)
            if QualityFlag.NO_SIGNAL in original.quality:
                metric = original.metric.value
                self.counts.no_signal[metric] = self.counts.no_signal.get(metric, 0) + 1
        clock, message = person.supervision.place(original, received_at)
        return clock + self._full(person, original, message, received_at)

    def _full(self, person: _Person, original: Message, message: Message,
              received_at: datetime | None) -> list[Decision]:
        """Every family's full path for one message, `placed` on the engine's clock (`original` as sent)."""
        isolated = self._isolated  # bound methods and their arguments: no closure built per message
        decisions: list[Decision] = []
        if isinstance(message, DeviceEvent):  # alarms first, and apart: nothing below can cost one
            decisions += isolated("alarms", person.alarms.event, message, received_at)
        decisions += isolated("supervision", person.supervision.message, message, received_at)
        if isinstance(message, Reading):
            decisions += isolated("thresholds", person.thresholds.reading, message)
            decisions += isolated("schedule", person.schedule.reading, message)
            decisions += isolated("trends", person.trends.reading, message)
            decisions += isolated("activity", person.activity.reading, message)
            decisions += isolated("signal", person.signal.reading, message)
        elif isinstance(message, DeviceEvent):
            decisions += isolated("activity", person.activity.event, message)
        elif isinstance(message, Heartbeat):
            pass
        if message is not original:
            decisions = [_placed(d, original, message, received_at) for d in decisions]
        return decisions

    def _fast_lane(self, person: _Person, reading: Reading, received_at: datetime | None) -> list[Decision]:
        """A clean reading (`_clean`), on its hub's clock: each family's fast path, or its full path when the
        fast one declines (or raises: counted in `counts.fast_path_failures`), each family apart as ever."""
        decisions: list[Decision] = []
        supervision = person.supervision
        try:
            done = supervision.fast_reading(reading)
        except Exception:
            done = self._fast_failed("supervision")
        if not done:
            decisions += self._isolated("supervision", supervision.message, reading, received_at)
        for family, fast, full in person.lane or person.reading_lane():
            try:
                if fast(reading):
                    continue
            except Exception:
                self._fast_failed(family)
            decisions += self._isolated(family, full, reading)
        return decisions

    def _fast_failed(self, family: str) -> bool:
        self.counts.fast_path_failures[family] = self.counts.fast_path_failures.get(family, 0) + 1
        log.exception("detection fast path of %s failed; its full path runs instead", family)
        return False

    def tick(self, now: datetime) -> list[Decision]:
        """Timer rules: heartbeats missed, devices not seen, no morning activity, missed measurements..."""
        decisions: list[Decision] = []
        for person_id in sorted(self._people):
            person = self._people[person_id]
            decisions += self._isolated("supervision", partial(person.supervision.tick, now))
            in_doubt = person.supervision.clock_in_doubt()  # its times may be a slow clock's: wait
            if not in_doubt:
                decisions += self._isolated("schedule", partial(person.schedule.tick, now))
            link_down = bool(person.supervision.offline) or in_doubt
            decisions += self._isolated("activity", partial(person.activity.tick, now, link_down=link_down))
        return decisions

    def warm_up(self, messages: Iterable[Message | tuple[Message, datetime | None]]) -> None:
        """Rebuild state from history without producing decisions (centre restart): messages, or
        (message, receive time) pairs, in arrival order.

        Conditions still open at the end of the history stay open, so they are not raised
        again for alerts already on the queue."""
        for item in messages:
            if isinstance(item, tuple):
                self.observe(*item)
            else:
                self.observe(item)


def _placed(decision: Decision, original: Message, placed: Message, received_at: datetime | None) -> Decision:
    """A decision caused by a message the engine placed on the centre's clock says so, with the hub's own times."""
    if not isinstance(decision, Raise) or decision.rule == RuleId.HUB_CLOCK_WRONG:
        return decision
    note = {"why": "the hub's clock is wrong: the rules used the centre's times for this message",
            "hub_source_ts": original.source_ts.isoformat(), "hub_ts": original.hub_ts.isoformat(),
            "placed_at": placed.source_ts.isoformat(),
            "received_at": received_at.isoformat() if received_at is not None else None}
    return replace(decision, explanation={**decision.explanation, "clock": note})
