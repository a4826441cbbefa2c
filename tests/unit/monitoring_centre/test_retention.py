"""Retention: old readings, events, inbound messages and dead letters go, in chunks; alerts,
their transitions and the audit log stay. On SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from centre_app import schema
from detection.events import PENDANT_ALARM
from monitoring_centre import alerts, audit
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.retention import RetentionSettings, purge
from monitoring_centre.storage import (
    Alert,
    AlertTransition,
    AuditEntry,
    DeadLetter,
    Event,
    InboundMessage,
    Reading,
    make_engine,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _message(session: Session, n: int, at: datetime, kind: str) -> str:
    message_id = f"00000000-0000-4000-8000-{n:012d}"
    session.add(InboundMessage(id=message_id, type=kind, hub_id="hub-1", device_id="oximeter-1", source_ts=at,
                               hub_ts=at, received_at=at, payload="{}"))
    session.flush()  # before the row that refers to it (no ORM relationship orders them)
    return message_id


def _fill(sessions: sessionmaker[Session]) -> int:
    """Per age in days: a reading, an event, a heartbeat and a dead letter. Returns the person id."""
    with sessions() as session, session.begin():
        person = enrol_home(session, name="Ada", address="", hub_id="hub-1",
                            devices=[DeviceRecord("oximeter-1", "oximeter"), DeviceRecord("pendant-1", "pendant")])
        n = 0
        for age in (1, 30, 89, 91, 200, 399, 401, 800):
            at = NOW - timedelta(days=age)
            n += 1
            session.add(Reading(message_id=_message(session, n, at, "reading"), person_id=person.id,
                                device_id="oximeter-1", metric="spo2", value=95.0, unit="%", quality=[], source_ts=at,
                                received_at=at))
            n += 1
            session.add(Event(message_id=_message(session, n, at, "event"), person_id=person.id, hub_id="hub-1",
                              device_id="pendant-1", device_type="personal_trigger", code="manual_alarm", priority=1,
                              detail={}, source_ts=at, received_at=at))
            n += 1
            _message(session, n, at, "heartbeat")
            session.add(DeadLetter(received_at=at, topic="t", reason="malformed", field="$", detail="", payload=b"x"))
            alerts.raise_alert(session, person_id=person.id, hub_id="hub-1", rule=PENDANT_ALARM, subject=f"{age}",
                               at=at, evidence={}, why="old alarm")
            audit.record(session, "op", "view", [person.id], f"{age} days ago")
        return person.id


def _count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_purge_deletes_old_raw_data_in_chunks_and_keeps_the_record(database_url: str) -> None:
    engine = make_engine(database_url)
    schema.upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    _fill(sessions)
    kept = {model: _count(sessions, model) for model in (Alert, AlertTransition, AuditEntry)}

    settings = RetentionSettings(readings_days=400, inbound_days=90, dead_letters_days=90, chunk=2)
    done = purge(sessions, settings, NOW)

    assert (done.readings, done.events, done.dead_letters) == (2, 2, 5)
    # Inbound: every heartbeat older than 90 days (5), and the readings' and events' own messages
    # once those are gone (2 + 2); a message a kept reading still refers to stays.
    assert done.inbound == 5 + 4
    assert done.chunks >= (2 + 2 + 9 + 5) // 2
    with sessions() as session:
        oldest_reading = session.scalar(select(func.min(Reading.source_ts)))
        assert oldest_reading is not None and oldest_reading >= NOW - timedelta(days=400)
        assert session.scalar(select(func.count()).select_from(Reading)) == 6
        assert session.scalar(select(func.count()).select_from(InboundMessage).where(
            InboundMessage.type == "heartbeat")) == 3
        assert session.scalar(select(func.count()).select_from(InboundMessage)) == 6 + 6 + 3
        assert session.scalar(select(func.count()).select_from(DeadLetter)) == 3
    assert {model: _count(sessions, model) for model in (Alert, AlertTransition, AuditEntry)} == kept

    assert purge(sessions, settings, NOW).by_table == {"readings": 0, "events": 0, "inbound_messages": 0,
                                                        "dead_letters": 0}
    engine.dispose()


def test_retention_counts_from_the_centres_receive_time_not_the_hubs_clock(database_url: str) -> None:
    """A hub without a real-time clock can stamp 1970 or a year ahead: neither decides how long a reading stays."""
    engine = make_engine(database_url)
    schema.upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session, session.begin():
        person = enrol_home(session, name="Ada", address="", hub_id="hub-1",
                            devices=[DeviceRecord("oximeter-1", "oximeter")])
        for n, (stamped, received) in enumerate([(datetime(1970, 1, 1, tzinfo=UTC), NOW - timedelta(days=1)),
                                                 (NOW + timedelta(days=365), NOW - timedelta(days=401))], start=1):
            session.add(Reading(message_id=_message(session, n, received, "reading"), person_id=person.id,
                                device_id="oximeter-1", metric="spo2", value=95.0, unit="%", quality=[],
                                source_ts=stamped, received_at=received, clock_suspect=stamped > received))

    done = purge(sessions, RetentionSettings(readings_days=400), NOW)

    assert done.readings == 1
    with sessions() as session:
        assert [r.source_ts.year for r in session.scalars(select(Reading))] == [1970]  # received yesterday: kept
    engine.dispose()
