"""Running detection inside the centre: which alerts each stored message opens or clears.

`EngineRunner` fills ingest's `Detector` slot with the detection engine (`detection/engine.py`),
which holds per-person state (baselines, open conditions, last heard from). The engine is a
hard dependency of the centre: there is no second set of rules to fall back on. It is not
thread-safe, so one lock is shared by ingest (`observe`, inside the batch's transaction) and
the tick thread (`tick(now)`, its decisions applied in a transaction of their own). At start
it is warmed up from the last `warm_up_days` of stored messages, in arrival order, so a
restart neither forgets baselines nor raises again what is already on the queue. Each message
reaches the engine with the centre's receive time (stored with it), by which the engine
judges the hub's clock and liveness (`detection/clock.py`).

Applying decisions (`apply`): one active alert per person + rule + subject.
- A `Raise` that comes with a new message, while the alert is active, is a repeat: the
  count goes up and the message is added as evidence.
- A `Raise` from a tick while the alert is active is the engine re-asserting a condition
  it already reported (e.g. after a restart); there is no new evidence, so nothing is counted.
- A `Clear` resolves the active alert with the outcome `all_clear`.
Engine person ids are `str(Person.id)` (see `profiles.py`).

Readings with no signal (SpO2 0 %, pulse 0: `detection/signal.py`) are counted by the engine
(`EngineCounts.no_signal`); what each `observe` adds, not the warm-up's history, goes to
`NO_SIGNAL_READINGS` (`telecare_detection_no_signal_readings_total{metric}` on /metrics).
"""

import logging
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, Protocol

from prometheus_client import Counter
from sqlalchemy import exists, select
from sqlalchemy.orm import Session, sessionmaker

from detection.decisions import Decision, Raise
from detection.engine import EngineCounts
from detection.people import PersonProfile
from monitoring_centre import alerts
from monitoring_centre.periodic import PeriodicWorker
from monitoring_centre.profiles import load_profiles
from monitoring_centre.storage import DetectionQueueEntry, Device, Hub, HubKey, InboundMessage, utc_now
from telecare_protocol import DeviceEvent, Heartbeat
from telecare_protocol import Reading as ReadingMessage
from telecare_protocol.messages import MESSAGE_TYPES

log = logging.getLogger(__name__)

Message = ReadingMessage | DeviceEvent | Heartbeat
WARM_UP_CHUNK = 2000
NO_SIGNAL_READINGS = Counter(
    "telecare_detection_no_signal_readings", "Readings with no signal (a value outside what an oximeter measures, "
    "e.g. SpO2 0 %, pulse 0), flagged no_signal by the hub or the engine: stored flagged, never an alarm",
    ["metric"], registry=None)
"""Counted as messages are observed (not in the warm-up). Not in any registry until the centre
registers it (`Centre.registry`)."""


def message_evidence(message: Message, received_at: datetime | None = None) -> dict[str, Any]:
    """What an alert keeps of the message that raised or repeated it: its times as the hub stamped
    them, and when the centre received it."""
    evidence: dict[str, Any] = {"message_id": str(message.id), "type": message.type, "device_id": message.device_id,
                                "source_ts": message.source_ts.isoformat()}
    if received_at is not None:
        evidence["received_at"] = received_at.isoformat()
    if isinstance(message, DeviceEvent):
        evidence |= {"code": message.code.value, "detail": dict(message.detail)}
    elif isinstance(message, ReadingMessage):
        evidence |= {"metric": message.metric.value, "value": message.value, "unit": message.unit,
                     "quality": [flag.value for flag in message.quality]}
    return evidence


# --- the engine ---------------------------------------------------------------------------


class EngineLike(Protocol):
    """`detection.engine.Engine`, as the centre uses it."""

    def observe(self, message: Message, received_at: datetime | None = None) -> list[Decision]: ...
    def tick(self, now: datetime) -> list[Decision]: ...
    def warm_up(self, messages: Iterable[tuple[Message, datetime | None]]) -> None: ...
    def set_profile(self, profile: PersonProfile) -> None: ...
    def remove_profile(self, person: str) -> bool: ...
    def person_for_hub(self, hub_id: str) -> str | None: ...
    @property
    def counts(self) -> EngineCounts: ...


def apply(session: Session, decisions: Iterable[Decision], *, hub: HubKey | None = None,
          message: Message | None = None, received_at: datetime | None = None) -> set[int]:
    """Turn the engine's decisions into alert changes; returns the ids of changed alerts."""
    changed: set[int] = set()
    for decision in decisions:
        try:
            person_id = int(decision.person)
        except ValueError:
            log.error("the engine named a person the centre does not know: %r", decision.person)
            continue
        if isinstance(decision, Raise):
            raised = decision
            if message is None:  # a tick's decision: read the open alert only then (a message is always evidence)
                active = alerts.active_alert(session, person_id, raised.rule, raised.subject)
                if active is not None and raised.priority >= active.priority:
                    continue  # re-asserted by a tick, no new evidence: not a repeat (module docstring)
            evidence = _evidence(message, received_at, raised.at, raised.explanation)
            hub_id = hub.id if hub is not None else _hub_of(session, person_id, raised.subject)
            alert = alerts.raise_alert(session, person_id=person_id, hub_id=hub_id, rule=raised, subject=raised.subject,
                                       at=raised.at, evidence=evidence, why=raised.title, detail=raised.explanation)
            changed.add(alert.id)
        else:
            cleared_by = decision
            evidence = _evidence(message, received_at, cleared_by.at, cleared_by.explanation)
            cleared = alerts.clear_alert(session, person_id=person_id, rule=cleared_by.rule,
                                         subject=cleared_by.subject, evidence=evidence)
            if cleared is not None:
                changed.add(cleared.id)
    return changed


def _evidence(message: Message | None, received_at: datetime | None, at: datetime,
              explanation: dict[str, Any]) -> dict[str, Any]:
    evidence: dict[str, Any] = (message_evidence(message, received_at) if message is not None
                                else {"at": at.isoformat()})
    return evidence | {"explanation": explanation}


def _hub_of(session: Session, person_id: int, device_id: str) -> str:
    """The hub an alert belongs to: the device's hub for a per-device condition (the hub itself when the
    subject is one of the person's hubs), else the person's first hub."""
    if device_id:
        if session.scalar(select(Hub.id).where(Hub.person_id == person_id, Hub.id == device_id)) is not None:
            return device_id
        found = session.scalar(select(Device.hub_id).join(Hub, Hub.id == Device.hub_id)
                               .where(Hub.person_id == person_id, Device.id == device_id))
        if found is not None:
            return found
    return session.scalar(select(Hub.id).where(Hub.person_id == person_id).order_by(Hub.id)) or ""


def stored_messages(sessions: sessionmaker[Session], since: datetime,
                    hubs: Collection[str] | None = None) -> Iterator[tuple[Message, datetime]]:
    """Accepted messages received since `since`, with their receive times, in arrival order, for the
    engine's warm-up. With `hubs` (a takeover by one of several workers): only theirs, and none still
    waiting in the detection queue (never observed by any worker: the new holder observes them after,
    decisions and all). One statement, so a message and its queue entry, committed together, are
    either both seen or neither."""
    query = (select(InboundMessage.type, InboundMessage.payload, InboundMessage.received_at)
             .where(InboundMessage.received_at >= since))
    if hubs is not None:
        query = query.where(InboundMessage.hub_id.in_(sorted(hubs)), ~exists().where(
            DetectionQueueEntry.inbound_message_id == InboundMessage.id))
    with sessions() as session:
        rows = session.execute(
            query.order_by(InboundMessage.received_at).execution_options(yield_per=WARM_UP_CHUNK)
        )
        for kind, payload, received_at in rows:
            model = MESSAGE_TYPES.get(kind)
            if model is None:
                continue
            try:
                yield model.model_validate_json(payload), received_at
            except ValueError:
                log.warning("a stored %s no longer parses; left out of the warm-up", kind)


class EngineRunner:
    """The engine inside the centre: ingest's detector, and its tick thread.

    Profiles come from the database (`profiles.py`): all of them at `load`, one person again
    when their settings change (`refresh`), and a person enrolled while the centre runs when
    their hub is first heard from.

    Ticks use the wall clock, so they must not run ahead of messages still waiting to be
    stored: a tick is skipped while the receiver has a backlog (`backlog()` true), else a
    hub's heartbeats queued behind a burst would look missed. The engine's own grace
    periods (minutes) cover the ordinary few-batch lag.

    With several workers (`share()`), the engine holds only the people whose detection lease
    this worker holds (`monitoring_centre/workers.py`): `take` loads and warms up people as
    their leases are claimed, `hold` lets their messages in (`observe_held`), `drop` forgets
    them when the lease goes. The tick covers the people in the engine. One worker (no
    `share()`) holds everyone, as ever.
    """

    def __init__(self, engine: EngineLike, sessions: sessionmaker[Session], *, tick_s: float,
                 timezone: str = "UTC", on_alerts: Callable[[set[int]], None] = lambda ids: None,
                 backlog: Callable[[], bool] = lambda: False, clock: Callable[[], datetime] = utc_now) -> None:
        self.engine = engine
        self.sessions = sessions
        self.tick_s = tick_s
        self.timezone = timezone
        self.on_alerts = on_alerts
        self.backlog = backlog
        self.clock = clock
        self.lock = threading.Lock()
        self.people: set[str] = set()
        self.held: set[str] | None = None
        """With several workers (`share()`): the people whose messages this worker observes; None: everyone."""
        self.skipped_ticks = 0
        self._worker = PeriodicWorker("centre-detection-tick", self.tick, tick_s, logger=log)

    def load(self) -> int:
        """Give the engine every person on the books (with several workers: read again the profiles of the
        people this worker holds); returns how many."""
        with self.lock:
            held = None if self.held is None else sorted(int(person) for person in self.held)
        if held == []:
            return 0
        with self.sessions() as session:
            profiles = load_profiles(session, timezone=self.timezone, person_ids=held)
        with self.lock:
            for profile in profiles:
                if self.held is None or profile.id in self.held:  # not dropped meanwhile
                    self.engine.set_profile(profile)
                    self.people.add(profile.id)
        return len(profiles)

    def refresh(self, person_id: int) -> None:
        """A person's settings or absences changed: the engine gets their new profile (keeping what it learnt).
        A person left with no hub (their home retired, `homes.retire_home`) is no longer watched.
        With several workers, only the holder of the person's lease keeps them (others ignore this)."""
        with self.lock:
            if self.held is not None and str(person_id) not in self.held:
                return
        with self.sessions() as session:
            profiles = load_profiles(session, timezone=self.timezone, person_ids=[person_id])
        with self.lock:
            for profile in profiles:
                self.engine.set_profile(profile)
                self.people.add(profile.id)
            if not profiles and self.engine.remove_profile(str(person_id)):
                self.people.discard(str(person_id))

    def warm_up(self, days: float) -> int:
        """Feed the engine the last `days` of stored messages; returns how many."""
        count = 0

        def counted() -> Iterator[tuple[Message, datetime]]:
            nonlocal count
            for message in stored_messages(self.sessions, self.clock() - timedelta(days=days)):
                count += 1
                yield message

        with self.lock:
            self.engine.warm_up(counted())
        log.info("detection warmed up from %d stored messages (%g days)", count, days)
        return count

    # --- several workers: the people this worker holds -------------------------------------

    def share(self) -> None:
        """Several workers: from now on the engine holds only the people given to `take` and `hold`."""
        with self.lock:
            self.held = set()

    def held_people(self) -> set[int]:
        """The people this worker observes (`hold`); with one worker, everyone the engine knows."""
        with self.lock:
            return {int(person) for person in (self.people if self.held is None else self.held)}

    def holds(self, person_id: int) -> bool:
        """Whether this worker observes `person_id`'s messages (always, with one worker)."""
        held = self.held
        return held is None or str(person_id) in held

    def take(self, person_ids: Collection[int], days: float) -> int:
        """Load these people's profiles and warm the engine up from their stored messages of the last
        `days` (arrival order) that are not in the detection queue, as the worker claims their leases.
        Returns how many messages it replayed. Their live messages still wait (`observe_held` says no)
        until `hold`; then the queue's are observed."""
        if not person_ids:
            return 0
        with self.sessions() as session:
            profiles = load_profiles(session, timezone=self.timezone, person_ids=sorted(person_ids))
        hubs = {hub for profile in profiles for hub in profile.hubs}
        count = 0

        def counted() -> Iterator[tuple[Message, datetime]]:
            nonlocal count
            for message, received_at in stored_messages(self.sessions, self.clock() - timedelta(days=days), hubs):
                count += 1
                yield message, received_at

        with self.lock:
            for profile in profiles:
                self.engine.remove_profile(profile.id)  # what an earlier holding learnt may be stale
                self.engine.set_profile(profile)
                self.people.add(profile.id)
            self.engine.warm_up(counted())
        log.info("detection took %d people, warmed up from %d stored messages", len(profiles), count)
        return count

    def hold(self, person_ids: Collection[int]) -> None:
        """Observe these people's messages from now on (after `take`)."""
        with self.lock:
            if self.held is not None:
                self.held.update(str(person) for person in person_ids)

    def drop(self, person_ids: Collection[int]) -> None:
        """Forget these people (their lease went to another worker): no message of theirs is observed here."""
        with self.lock:
            for person in map(str, person_ids):
                if self.held is not None:
                    self.held.discard(person)
                self.engine.remove_profile(person)
                self.people.discard(person)

    def observe_held(self, session: Session, hub: HubKey, message: Message,
                     received_at: datetime | None = None) -> set[int] | None:
        """`observe`, if this worker holds the hub's person (`hold`); None if it does not (the message
        goes to the detection queue instead)."""
        person = str(hub.person_id)
        with self.lock:
            if self.held is not None and person not in self.held:
                return None
            known = self.engine.person_for_hub(hub.id) is not None
            decisions = self._observe(message, received_at) if known else None
        if decisions is None:  # a hub added to a held person since they were taken
            profiles = load_profiles(session, timezone=self.timezone, person_ids=[hub.person_id])
            with self.lock:
                if self.held is not None and person not in self.held:
                    return None
                for profile in profiles:
                    self.engine.set_profile(profile)
                decisions = self._observe(message, received_at)
        if not decisions:
            return set()
        return apply(session, decisions, hub=hub, message=message, received_at=received_at)

    def observe(self, session: Session, hub: HubKey, message: Message, received_at: datetime | None = None) -> set[int]:
        with self.lock:  # one lock for a hub the engine knows (every message but a new hub's first)
            decisions = self._observe(message, received_at) if self.engine.person_for_hub(hub.id) else None
        if decisions is None:  # enrolled since the centre started
            for profile in load_profiles(session, timezone=self.timezone, person_ids=[hub.person_id]):
                with self.lock:
                    self.engine.set_profile(profile)
                    self.people.add(profile.id)
            with self.lock:
                decisions = self._observe(message, received_at)
        if not decisions:
            return set()
        return apply(session, decisions, hub=hub, message=message, received_at=received_at)

    def _observe(self, message: Message, received_at: datetime | None) -> list[Decision]:
        """The engine's decisions on one message, its no-signal readings counted (`NO_SIGNAL_READINGS`).
        Called holding `lock`."""
        if not isinstance(message, ReadingMessage):
            return self.engine.observe(message, received_at)
        counts, metric = self.engine.counts.no_signal, message.metric.value  # a reading adds only to its metric
        before = counts.get(metric, 0)
        decisions = self.engine.observe(message, received_at)
        added = counts.get(metric, 0) - before
        if added > 0:
            NO_SIGNAL_READINGS.labels(metric).inc(added)
        return decisions

    def tick(self, now: datetime | None = None) -> set[int]:
        """One pass of the engine's timer rules, applied and committed; returns the changed alerts."""
        if now is None and self.backlog():
            self.skipped_ticks += 1
            return set()
        with self.lock:
            decisions = self.engine.tick(now or self.clock())
        if not decisions:
            return set()
        with self.sessions() as session, session.begin():
            changed = apply(session, decisions)
        if changed:
            self.on_alerts(changed)
        return changed

    def start(self) -> None:
        """Run `tick()` every `tick_s` seconds on a thread of its own ("centre-detection-tick"); a failed
        tick (e.g. the database is down) is logged and the next one tries again."""
        self._worker.start()

    def stop(self) -> None:
        """Stop the tick thread, waiting up to 10 s for a tick in progress."""
        self._worker.stop(timeout=10)
