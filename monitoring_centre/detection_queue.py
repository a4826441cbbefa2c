"""With several workers: messages stored by one worker, observed by the holder of their person's lease.

The broker hands a message to any worker (MQTT v5 shared subscriptions), and that worker stores,
commits, PUBACKs and acknowledges it to its hub exactly as a single centre does. Detection of a
person runs on the one worker holding their lease (`monitoring_centre/workers.py`), so:

- the storing worker, if it holds the person (and its lease row says so inside the storing
  transaction: `workers.holds`), observes the message itself (`EngineRunner.observe_held`);
- otherwise it writes a `DetectionQueueEntry` in the same transaction (durable: stored means
  queued) and, on PostgreSQL, a NOTIFY on `CHANNEL` that is delivered at its commit;
- the holder takes its people's entries in id order (LISTEN on PostgreSQL, and a poll every
  `poll_s`, 0.1 s, on either database), observes each message, applies the decisions and deletes
  the entries, all in one transaction (`drain`).

On a takeover (`take`: a lease claimed) the worker warms the engine up from the person's stored
history without its queued messages (one statement: a message and its entry are committed
together, so both are seen or neither), then holds the person and drains their entries, decisions
and all: a queued message was never observed by anyone (an entry goes in the transaction that
observes it), so no message is observed twice, none is skipped, and none is absorbed silently by a
warm-up. A message purged by retention before its entry was read is dropped with the entry (logged).

An entry is deleted in the transaction that applies its decisions; if that transaction fails, the
entry stays and is read again (the engine has then seen the message twice: the same as a single
centre's retried batch).
"""

import logging
import threading
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy import Engine, delete, select, text
from sqlalchemy.orm import Session, sessionmaker

from monitoring_centre import workers
from monitoring_centre.detection_runner import EngineRunner, Message
from monitoring_centre.storage import DetectionLease, DetectionQueueEntry, Hub, HubKey, InboundMessage, utc_now
from monitoring_centre.workers import WorkerIdentity
from telecare_protocol.messages import MESSAGE_TYPES

log = logging.getLogger(__name__)

CHANNEL = "telecare_detection_queue"
"""PostgreSQL NOTIFY channel: something was queued (no payload: the holder reads the table)."""
POLL_S = 0.1
DRAIN_BATCH = 200
QUEUED = Counter("telecare_detection_queued", "Messages this worker stored for another worker's detection (the "
                 "holder of the person's lease), by message type", ["type"], registry=None)
FROM_QUEUE = Counter("telecare_detection_from_queue", "Queued messages this worker observed as the holder of their "
                     "person's lease, by message type", ["type"], registry=None)
"""Not in any registry until the centre registers them (`Centre.registry`, several workers only)."""
_HELD = "detection_queue.held"
_NOTIFIED = "detection_queue.notified"


def enqueue(session: Session, person_id: int, message_id: str) -> None:
    """Queue a stored message for the holder of `person_id`'s lease, in the storing transaction
    (PostgreSQL: NOTIFY `CHANNEL` once per transaction, delivered at commit)."""
    session.add(DetectionQueueEntry(person_id=person_id, inbound_message_id=message_id))
    if session.get_bind().dialect.name == "postgresql" and not session.info.get(_NOTIFIED):
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
        session.info[_NOTIFIED] = True


class SharedDetection:
    """Detection shared among workers: ingest's `Detector` slot, the queue's reader, and what
    `workers.LeaseKeeper` calls as leases come and go (`take`, `drop`, `held_people`).

    `runner`: this worker's engine (already `share()`d). `sessions`: the database. `worker`: this
    run's identity. `warm_up_days`: history replayed per person taken. `on_alerts`: told the alerts
    each drain changed. Threads: ingest's (`observe`), the lease keeper's (`take`, `drop`) and its
    own reader ("centre-detection-queue", `start`/`stop`), which wakes on NOTIFY or every `poll_s`.
    """

    def __init__(self, runner: EngineRunner, sessions: sessionmaker[Session], worker: WorkerIdentity, *,
                 warm_up_days: float, on_alerts: Callable[[set[int]], None] = lambda ids: None,
                 clock: Callable[[], datetime] = utc_now, poll_s: float = POLL_S) -> None:
        self.runner = runner
        self.sessions = sessions
        self.worker = worker
        self.warm_up_days = warm_up_days
        self.on_alerts = on_alerts
        self.clock = clock
        self.poll_s = poll_s
        self.observed_queued = 0
        """Messages observed from the queue by this worker (the takeovers' and the reader's)."""
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._drain_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="centre-detection-queue", daemon=True)

    # --- ingest's Detector slot --------------------------------------------------------------

    def observe(self, session: Session, hub: HubKey, message: Message, received_at: datetime) -> set[int]:
        """Observe the message here if this worker holds its person, else queue it for the holder."""
        held: dict[int, bool] = session.info.setdefault(_HELD, {})
        person = hub.person_id
        if person not in held:
            held[person] = (self.runner.holds(person)
                            and workers.holds(session, person, self.worker, self.clock()))
        if held[person]:
            changed = self.runner.observe_held(session, hub, message, received_at)
            if changed is not None:
                return changed
        enqueue(session, person, str(message.id))
        QUEUED.labels(message.type).inc()  # counted before the commit: a retried batch may count twice
        return set()

    # --- leases coming and going (workers.LeaseKeeper) ---------------------------------------

    def held_people(self) -> set[int]:
        return self.runner.held_people()

    def take(self, person_ids: Collection[int]) -> None:
        """Leases claimed: warm up from history (the queue left out), hold, then observe what is queued."""
        replayed = self.runner.take(person_ids, self.warm_up_days)
        self.runner.hold(person_ids)
        queued = 0
        while taken := self.drain(person_ids):
            queued += taken
        log.info("worker %s took %d people: %d stored messages replayed, %d queued ones observed",
                 self.worker.name, len(person_ids), replayed, queued)

    def drop(self, person_ids: Collection[int]) -> None:
        self.runner.drop(person_ids)

    # --- the queue's reader ----------------------------------------------------------------

    def drain(self, person_ids: Collection[int] | None = None) -> int:
        """Observe up to `DRAIN_BATCH` queued messages of the people this worker holds (of `person_ids`,
        if given), in id order, apply their decisions and delete their entries in one transaction.
        Returns how many entries it took."""
        with self._drain_lock, self.sessions() as session, session.begin():
            now = self.clock()
            query = (select(DetectionQueueEntry.id, DetectionQueueEntry.person_id, InboundMessage.hub_id,
                            InboundMessage.type, InboundMessage.payload, InboundMessage.received_at)
                     .join(DetectionLease, DetectionLease.person_id == DetectionQueueEntry.person_id)
                     .outerjoin(InboundMessage, InboundMessage.id == DetectionQueueEntry.inbound_message_id)
                     .where(DetectionLease.worker == self.worker.name, DetectionLease.run == self.worker.run,
                            DetectionLease.until > now)
                     .order_by(DetectionQueueEntry.id).limit(DRAIN_BATCH)
                     .with_for_update(read=True, key_share=True, of=DetectionLease))
            if person_ids is not None:
                query = query.where(DetectionQueueEntry.person_id.in_(sorted(person_ids)))
            rows = session.execute(query).all()
            done: list[int] = []
            changed: set[int] = set()
            hubs: dict[str, Hub | None] = {}
            for entry_id, person_id, hub_id, kind, payload, received_at in rows:
                message = _parse(kind, payload)
                if hub_id is not None and hub_id not in hubs:
                    hubs[hub_id] = session.get(Hub, hub_id)
                hub = hubs.get(hub_id) if hub_id is not None else None
                if message is None or hub is None:
                    log.warning("queued message for person %s is gone or unreadable; dropped", person_id)
                    done.append(entry_id)
                    continue
                result = self.runner.observe_held(session, hub, message, received_at)
                if result is None:
                    continue  # being taken, not held yet: `take` drains it
                changed |= result
                done.append(entry_id)
                FROM_QUEUE.labels(message.type).inc()
            if done:
                session.execute(delete(DetectionQueueEntry).where(DetectionQueueEntry.id.in_(done)))
        self.observed_queued += len(done)
        if changed:
            self.on_alerts(changed)
        return len(done)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the reader (what is left queued waits for the next holder)."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        listener = _Listener(self.sessions)
        try:
            while not self._stopping.is_set():
                try:
                    while self.drain() and not self._stopping.is_set():
                        pass
                except Exception:  # the database is away: the poll tries again
                    log.exception("could not read the detection queue; trying again")
                    self._stopping.wait(1.0)
                listener.wait(self.poll_s, self._wake)
                self._wake.clear()
        finally:
            listener.close()


def _parse(kind: str | None, payload: str | None) -> Message | None:
    model = MESSAGE_TYPES.get(kind or "")
    if model is None or payload is None:
        return None
    try:
        return model.model_validate_json(payload)
    except ValueError:
        return None


class _Listener:
    """PostgreSQL LISTEN on `CHANNEL` on a connection of its own: `wait` returns at a NOTIFY or after
    `timeout_s`. On SQLite, or while the connection is broken, it only sleeps (the poll)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        bind = sessions.kw.get("bind")
        self.engine: Engine | None = bind if isinstance(bind, Engine) and bind.dialect.name == "postgresql" else None
        self.connection: Any = None

    def _connect(self) -> None:
        assert self.engine is not None
        raw: Any = self.engine.raw_connection()
        driver: Any = raw.driver_connection
        driver.autocommit = True
        driver.execute(f"LISTEN {CHANNEL}")
        self.connection = raw

    def wait(self, timeout_s: float, wake: threading.Event) -> None:
        if self.engine is None:
            wake.wait(timeout_s)
            return
        try:
            if self.connection is None:
                self._connect()
            for _ in self.connection.driver_connection.notifies(timeout=timeout_s, stop_after=1):
                break
        except Exception:  # a dead connection: poll, and connect again next time
            log.warning("detection queue: LISTEN connection lost; polling", exc_info=True)
            self.close()
            wake.wait(timeout_s)

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.invalidate()
            except Exception:  # already broken
                log.debug("closing the LISTEN connection failed", exc_info=True)
            self.connection = None
