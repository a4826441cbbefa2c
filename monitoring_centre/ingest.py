"""From an MQTT message to stored rows and alert decisions, in one transaction.

`Ingest.process` takes a batch, gives each message its own savepoint so that a bad one
never takes good ones down with it, and commits once. Only then does the receiver
acknowledge the batch to the broker. Every refusal is written to the dead-letter table
with its reason and counted in /metrics.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from monitoring_centre import alerts
from monitoring_centre.detection.events import HUB_OFFLINE, Clear, Raise, assess
from monitoring_centre.storage import DeadLetter, Device, Event, Hub, InboundMessage, Reading, utc_now
from telecare_protocol import DeviceEvent, Heartbeat, ProtocolError, decode
from telecare_protocol import Reading as ReadingMessage
from telecare_protocol.topics import KINDS, STATUS, parse_topic

log = logging.getLogger(__name__)

MAX_DEAD_LETTER_BYTES = 4096


@dataclass(frozen=True)
class Inbound:
    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 1
    link: int = 0
    """Which connection to the broker it came on: it is acknowledged only on that one."""


@dataclass
class Outcome:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    changed_alerts: set[int] = field(default_factory=set)


class Rejected(Exception):
    def __init__(self, reason: str, field: str, detail: str) -> None:
        super().__init__(f"{reason}: {field}: {detail}")
        self.reason, self.field, self.detail = reason, field, detail


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.accepted = Counter("telecare_ingest_accepted", "Messages stored, by type", ["type"],
                                registry=registry)
        self.duplicates = Counter("telecare_ingest_duplicates", "Messages already stored (redelivery)",
                                  registry=registry)
        self.rejected = Counter("telecare_ingest_rejected", "Messages refused, by reason", ["reason"],
                                registry=registry)


class Ingest:
    def __init__(self, sessions: sessionmaker[Session], metrics: IngestMetrics,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.sessions = sessions
        self.metrics = metrics
        self.clock = clock

    def process(self, batch: list[Inbound]) -> Outcome:
        """Store a batch durably. Raises only if the database itself fails (then nothing is acknowledged)."""
        outcome = Outcome()
        with self.sessions() as session, session.begin():
            for inbound in batch:
                savepoint = session.begin_nested()
                try:
                    changed = self._accept(session, inbound)
                except Rejected as refusal:
                    savepoint.rollback()
                    self._dead_letter(session, inbound, refusal)
                    outcome.rejected += 1
                    continue
                except _Duplicate:
                    savepoint.rollback()
                    outcome.duplicates += 1
                    self.metrics.duplicates.inc()
                    continue
                except SQLAlchemyError:
                    raise  # the database is failing: nothing in this batch is acknowledged, it is retried
                except Exception as bug:  # a bug must not turn one message into a poison pill for all
                    log.exception("ingest failed on a message from %s", inbound.topic)
                    savepoint.rollback()
                    self._dead_letter(session, inbound, Rejected("internal_error", "$", repr(bug)))
                    outcome.rejected += 1
                    continue
                savepoint.commit()
                outcome.stored += 1
                outcome.changed_alerts.update(changed)
        return outcome

    def _accept(self, session: Session, inbound: Inbound) -> set[int]:
        topic = parse_topic(inbound.topic)
        if topic is None:
            raise Rejected("bad_topic", "topic", f"{inbound.topic!r} is not a protocol topic")
        hub = session.get(Hub, topic.hub_id)
        if hub is None:
            raise Rejected("unknown_hub", "hub_id", f"hub {topic.hub_id!r} is not registered")
        now = self.clock()
        if topic.kind == STATUS:
            return self._hub_status(session, hub, inbound.payload, now)
        try:
            text = inbound.payload.decode("utf-8")
        except UnicodeDecodeError:
            raise Rejected("malformed", "$", "a message is UTF-8 JSON") from None
        try:
            message = decode(text, now=now)
        except ProtocolError as error:
            raise Rejected(error.reason, error.field, error.detail) from None
        if message.hub_id != topic.hub_id:
            raise Rejected("hub_mismatch", "hub_id",
                           f"payload says {message.hub_id!r} but it was published as {topic.hub_id!r}")
        if KINDS[message.type] != topic.kind:
            raise Rejected("wrong_topic", "type", f"a {message.type} does not belong on {topic.kind}")
        if session.get(InboundMessage, str(message.id)) is not None:
            raise _Duplicate
        device = None
        if isinstance(message, Heartbeat):
            if message.device_id != hub.id:
                raise Rejected("unknown_device", "device_id", "a heartbeat's device_id is its hub's id")
        else:
            device = session.get(Device, (hub.id, message.device_id))
            if device is None:
                raise Rejected("unknown_device", "device_id", f"{message.device_id!r} is not paired with {hub.id!r}")
        session.add(InboundMessage(
            id=str(message.id), type=message.type, hub_id=message.hub_id, device_id=message.device_id,
            source_ts=message.source_ts, hub_ts=message.hub_ts, received_at=now, payload=text,
        ))
        session.flush()  # a racing duplicate fails here, inside the savepoint
        self.metrics.accepted.labels(message.type).inc()
        if isinstance(message, Heartbeat):
            self._heartbeat(session, hub, message)
            return set()
        assert device is not None
        device.last_seen = max(device.last_seen or message.source_ts, message.source_ts)
        if isinstance(message, ReadingMessage):
            session.add(Reading(
                message_id=str(message.id), person_id=hub.person_id, device_id=message.device_id,
                metric=message.metric.value, value=message.value, unit=message.unit,
                quality=[flag.value for flag in message.quality], source_ts=message.source_ts,
            ))
            return set()
        return self._event(session, hub, message)

    def _event(self, session: Session, hub: Hub, event: DeviceEvent) -> set[int]:
        session.add(Event(
            message_id=str(event.id), person_id=hub.person_id, hub_id=hub.id, device_id=event.device_id,
            device_type=event.device_type.value, code=event.code.value, priority=event.priority,
            detail=dict(event.detail), source_ts=event.source_ts,
        ))
        evidence = {"message_id": str(event.id), "device_id": event.device_id, "code": event.code.value,
                    "source_ts": event.source_ts.isoformat(), "detail": dict(event.detail)}
        decision = assess(event)
        if isinstance(decision, Raise):
            alert = alerts.raise_alert(
                session, person_id=hub.person_id, hub_id=hub.id, rule=decision.rule, subject=decision.subject,
                at=event.source_ts, evidence=evidence,
                why=f"{event.device_type.value} {event.device_id} reported {event.code.value}",
            )
            return {alert.id}
        if isinstance(decision, Clear):
            cleared = alerts.clear_alert(session, person_id=hub.person_id, rule=decision.rule,
                                         subject=decision.subject, evidence=evidence)
            return {cleared.id} if cleared else set()
        return set()

    def _heartbeat(self, session: Session, hub: Hub, beat: Heartbeat) -> None:
        if hub.last_heartbeat_at is None or beat.source_ts >= hub.last_heartbeat_at:
            hub.last_heartbeat_at = beat.source_ts
            hub.heartbeat_interval_s = beat.interval_s
            hub.power = beat.power.value
        for status in beat.devices:
            device = session.get(Device, (hub.id, status.device_id))
            if device is None:
                log.warning("hub %s reports a device the centre has not paired: %s", hub.id, status.device_id)
                continue
            if status.last_seen and (device.last_seen is None or status.last_seen > device.last_seen):
                device.last_seen = status.last_seen
            if status.battery_pct is not None:
                device.battery_pct = status.battery_pct

    def _hub_status(self, session: Session, hub: Hub, payload: bytes, now: datetime) -> set[int]:
        """The hub's retained online/offline state; "offline" is its last will, an alert of its own."""
        state = payload.decode(errors="replace").strip()
        if state not in ("online", "offline"):
            raise Rejected("malformed", "status", f"{state[:40]!r} is neither online nor offline")
        hub.link = state
        evidence = {"topic": f"hub {hub.id}", "state": state, "received_at": now.isoformat()}
        if state == "offline":
            alert = alerts.raise_alert(session, person_id=hub.person_id, hub_id=hub.id, rule=HUB_OFFLINE, subject="",
                                       at=now, evidence=evidence, why=f"hub {hub.id} lost its connection to the centre")
            return {alert.id}
        cleared = alerts.clear_alert(session, person_id=hub.person_id, rule=HUB_OFFLINE, subject="", evidence=evidence)
        return {cleared.id} if cleared else set()

    def _dead_letter(self, session: Session, inbound: Inbound, refusal: Rejected) -> None:
        log.warning("rejected message on %s: %s", inbound.topic, refusal)
        self.metrics.rejected.labels(refusal.reason).inc()
        session.add(DeadLetter(
            received_at=self.clock(), topic=inbound.topic[:256], reason=refusal.reason, field=refusal.field[:128],
            detail=refusal.detail[:2000], payload=inbound.payload[:MAX_DEAD_LETTER_BYTES],
        ))


class _Duplicate(Exception):
    pass
