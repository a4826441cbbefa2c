"""The centre's database: tables, engine and sessions (SQLAlchemy 2, typed mappings).

SQLite (WAL) is the embedded default; PostgreSQL works through the same models.
The schema is owned by Alembic migrations (`centre_app/migrations`), never by
`create_all`, so a deployed database can always be upgraded in place.
"""

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol
from weakref import WeakKeyDictionary

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from detection.people import BedSensorKind
from monitoring_centre.write_turn import Turn, connection_class


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: every stored time is timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Person(Base):
    """Someone living at home with a telecare kit."""

    __tablename__ = "people"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    nhs_number: Mapped[str | None] = mapped_column(String(10), unique=True)
    address: Mapped[str] = mapped_column(String(500), default="")
    service: Mapped[str] = mapped_column(String(16), default="monitored")
    """`monitored` (the centre's operators answer first) or `keyholder_only` (the platform calls
    the person's nominated contacts itself, then the emergency services)."""
    access_details: Mapped[str] = mapped_column(Text, default="")
    """How a responder gets in (key safe code and where it is). Shown only to a responder who has
    explicitly accepted an alarm, and every showing is audited."""
    # The caller record an operator reads when answering a call (`caller_record.py`); every change
    # is audited with its values before and after (`PATCH /api/v1/patients/{id}`).
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    phones: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")
    """The person's own numbers: `[{"label": "home", "number": "01632 960123"}, ...]`, first to call first."""
    conditions: Mapped[str] = mapped_column(Text, default="", server_default="")
    """Health conditions an operator should know of (e.g. "COPD; type 2 diabetes")."""
    medication_summary: Mapped[str] = mapped_column(Text, default="", server_default="")
    allergies: Mapped[str] = mapped_column(Text, default="", server_default="")
    communication_needs: Mapped[str] = mapped_column(Text, default="", server_default="")
    """Hearing, sight, speech, language, memory: how to speak with them."""
    property_risks: Mapped[str] = mapped_column(Text, default="", server_default="")
    """Risks to a responder at the property (oxygen in use, a steep path, a dog that bites)."""
    pets: Mapped[str] = mapped_column(Text, default="", server_default="")
    gp_practice: Mapped[str] = mapped_column(String(300), default="", server_default="")
    operator_notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    """Access notes an operator may see (which door, lights, parking). Never the key-safe code,
    which is kept in `access_details` for a responder who has accepted."""


class HubKey(Protocol):
    """A hub as detection needs it: its id and its person's (a `Hub` row, or ingest's lighter record)."""

    @property
    def id(self) -> str: ...

    @property
    def person_id(self) -> int: ...


class Hub(Base):
    """A home hub. Its id is also its broker username and its topic segment."""

    __tablename__ = "hubs"
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    last_heartbeat_at: Mapped[datetime | None]
    heartbeat_interval_s: Mapped[int | None]
    power: Mapped[str | None] = mapped_column(String(16))
    link: Mapped[str | None] = mapped_column(String(16))
    """`online` or `offline`, from the hub's status topic (its last will says `offline`)."""
    broker_password_hash: Mapped[str | None] = mapped_column(String(200))
    """The hub's broker password, hashed as Mosquitto's password file wants it; never the password."""


class Device(Base):
    __tablename__ = "devices"
    hub_id: Mapped[str] = mapped_column(ForeignKey("hubs.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    last_seen: Mapped[datetime | None]
    battery_pct: Mapped[int | None]
    location: Mapped[str] = mapped_column(String(32), default="", server_default="")
    """Where in the home it is, for the activity rules: front_door, bedroom, bed, toilet, kitchen, …"""
    expected_interval_s: Mapped[int | None]
    """How often the device is heard from when all is well (a sleepy sensor's cadence)."""
    bed_sensor_kind: Mapped[str] = mapped_column(String(16), default=BedSensorKind.OCCUPANCY.value,
                                                 server_default=BedSensorKind.OCCUPANCY.value)
    """For a bed sensor, what its events mean (`detection.people.BedSensorKind`): `occupancy` (a mat that
    says occupied and vacated; every row enrolled before the setting) or `pulse` (pulse on movement: its
    silence is unknown). Read only for a device whose location is `bed`."""


class RuleSetting(Base):
    """A person's own value for a detection rule's parameters (e.g. NEWS2 Scale 2 for SpO2).

    Rules fall back to their cited defaults (`detection/`) for anything not
    set here. Every change is also written to the audit log with who made it and why.
    """

    __tablename__ = "rule_settings"
    __table_args__ = (UniqueConstraint("person_id", "rule"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    rule: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]]
    changed_at: Mapped[datetime]
    changed_by: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text, default="")


class PlannedAbsence(Base):
    """A hospital stay or a holiday: the activity rules pause while it lasts."""

    __tablename__ = "planned_absences"
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]


class InboundMessage(Base):
    """Every accepted protocol message, keyed by its source-minted id (the dedup key)."""

    __tablename__ = "inbound_messages"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    hub_id: Mapped[str] = mapped_column(String(63), index=True)
    device_id: Mapped[str] = mapped_column(String(63))
    source_ts: Mapped[datetime]
    hub_ts: Mapped[datetime]
    """Both by the hub's clock, as sent (a Raspberry Pi has no real-time clock: they can be days off)."""
    received_at: Mapped[datetime]
    """When the centre received it, by the centre's clock: what liveness and retention count from."""
    payload: Mapped[str] = mapped_column(Text)


class Reading(Base):
    __tablename__ = "readings"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("inbound_messages.id"), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    device_id: Mapped[str] = mapped_column(String(63))
    metric: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(16))
    quality: Mapped[list[Any]]
    """The device's quality flags (`telecare_protocol.QualityFlag`), as sent, with `no_signal` added when the
    sender did not flag a value outside what an oximeter measures (SpO2 0 %, pulse 0: `ingest.py`)."""
    source_ts: Mapped[datetime] = mapped_column(index=True)
    """When the device measured it, by the hub's clock: as sent, never corrected."""
    received_at: Mapped[datetime] = mapped_column(index=True)
    """When the centre received it, by the centre's clock (retention counts from it)."""
    clock_suspect: Mapped[bool] = mapped_column(default=False, server_default=false())
    """Its `source_ts` or `hub_ts` was later than its receipt by more than the protocol's clock
    tolerance: the hub's clock was ahead. Kept, never charted at that time (`trends.py`)."""


class Event(Base):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("inbound_messages.id"), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    hub_id: Mapped[str] = mapped_column(String(63))
    device_id: Mapped[str] = mapped_column(String(63))
    device_type: Mapped[str] = mapped_column(String(32))
    code: Mapped[str] = mapped_column(String(32))
    priority: Mapped[int]
    detail: Mapped[dict[str, Any]]
    source_ts: Mapped[datetime] = mapped_column(index=True)
    """When the device saw it, by the hub's clock: as sent, never corrected."""
    received_at: Mapped[datetime] = mapped_column(index=True)
    """When the centre received it, by the centre's clock (retention counts from it)."""
    clock_suspect: Mapped[bool] = mapped_column(default=False, server_default=false())
    """As `Reading.clock_suspect`: stamped later than its receipt, so the hub's clock was ahead."""


class Alert(Base):
    """Something a human must look at. One open alert per person and rule; repeats are counted."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    hub_id: Mapped[str] = mapped_column(String(63))
    rule: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(63), default="")
    """What the condition is about within the person's home: a device id, or "" for the person."""
    title: Mapped[str] = mapped_column(String(200))
    priority: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), index=True)
    opened_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    repeat_count: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str | None] = mapped_column(String(32))
    explanation: Mapped[dict[str, Any]]
    """The rule, its thresholds, and the events or readings that fired it (and each repeat)."""
    taken_by: Mapped[str | None] = mapped_column(String(100))
    """The operator (username) who has taken the call this alert belongs to (`calls.py`), or None.
    A call is every active alert of one person: taking it marks them all."""
    taken_at: Mapped[datetime | None]


class AlertTransition(Base):
    """The alert's full history: every change of state, by whom and when."""

    __tablename__ = "alert_transitions"
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    at: Mapped[datetime]
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    by: Mapped[str] = mapped_column(String(100))
    """A username, or `system:<rule>` for the detection engine."""
    note: Mapped[str] = mapped_column(Text, default="")


class DeadLetter(Base):
    """Input the centre refused, with the reason, kept for inspection."""

    __tablename__ = "dead_letters"
    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime]
    topic: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(String(32), index=True)
    field: Mapped[str] = mapped_column(String(128))
    detail: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), unique=True)
    """For the `person` role: whose own account this is."""
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Raised by one at each sign-out: a token carries the epoch it was issued in, and one from
    an earlier epoch is refused (`centre_app/auth.py`). Signing out ends every session of the
    account, on every device."""


class CareRelationship(Base):
    """Who may see whom, and on what basis: direct care, or the person's explicit consent."""

    __tablename__ = "care_relationships"
    __table_args__ = (UniqueConstraint("user_id", "person_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    basis: Mapped[str] = mapped_column(String(16))
    granted_at: Mapped[datetime]


class Team(Base):
    """A team of nurses (`team_members`) sharing a caseload (`team_caseloads`): each member sees
    the people on it. Administrators make teams and choose their members (`teams.py`)."""

    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime]


class TeamMember(Base):
    """A nurse or team lead (`roles.CLINICIANS`) on a team."""

    __tablename__ = "team_members"
    __table_args__ = (UniqueConstraint("team_id", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    added_at: Mapped[datetime]


class TeamCaseload(Base):
    """A person on a team's caseload: direct care by every member of the team."""

    __tablename__ = "team_caseloads"
    __table_args__ = (UniqueConstraint("team_id", "person_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    assigned_at: Mapped[datetime]
    assigned_by: Mapped[str] = mapped_column(String(100))


class FrailtyAssessment(Base):
    """A person's electronic Frailty Index category as entered or read from the GP record
    (`frailty.py`); the latest is the current one, the earlier ones its trajectory."""

    __tablename__ = "frailty_assessments"
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    category: Mapped[str] = mapped_column(String(16))
    """`fit`, `mild`, `moderate` or `severe` (eFI categories, Clegg et al., Age and Ageing 2016)."""
    source: Mapped[str] = mapped_column(String(16))
    """`entered` (by a clinician or an administrator) or `gp_record` (read from the GP record)."""
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(Text, default="")


class AuditEntry(Base):
    """Who saw or changed a person's data, when, and why."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")


SQLITE_BUSY_TIMEOUT_S = 30
"""How long a SQLite writer waits for the write lock (`busy_timeout`), and for its process's write turn
(`write_turn`), before its transaction fails with "database is locked"."""
READ_ONLY = "telecare_read_only"
"""The execution option `begin_read` sets on a session's connection."""


@contextmanager
def one_worker_at_a_time(session: Session, job: str) -> Iterator[bool]:
    """Whether this worker may run `job` (a periodic pass that several workers must not run at once,
    such as starting escalations) now: on PostgreSQL, a session-level advisory lock keyed by the job's
    name, tried without waiting and released when the block ends; False when another worker holds it
    (skip this pass: the holder does the work). SQLite (one writer): always True.

    The lock is held on a connection of its own, taken from `session`'s engine for the block, not on
    `session`'s: a session hands its connection back to the pool at every commit or rollback, so a lock
    taken there would stay with whichever pooled connection had it and be unlocked (or not) on another,
    and every later pass of every worker would be skipped (found by the keyholder-mail test, which
    waited seconds for a pass that was skipped). If the unlock fails, that connection is closed, which
    ends the lock at the server."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":  # no connection taken: on SQLite it would begin a write
        yield True
        return
    key = zlib.crc32(f"telecare:{job}".encode())
    with bind.engine.connect() as holder:
        mine = bool(holder.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar())
        holder.commit()  # the lock is the session's, not the transaction's: nothing stays open
        try:
            yield mine
        finally:
            if mine:
                try:
                    holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    holder.commit()
                except Exception:
                    holder.invalidate()  # closed, not pooled: the server ends the lock with it
                    raise


def begin_read(session: Session) -> None:
    """Begin `session`'s next transaction as a read only. On SQLite it is then a plain (deferred)
    BEGIN, which takes no write lock: in WAL mode it reads a snapshot while writers go on, where
    every other transaction begins IMMEDIATE and holds the write lock the alarm path needs. For a
    long read done for an HTTP request (a month of readings, a whole record). The transaction
    must not write (on SQLite, a write in it may fail at once with "database is locked"): commit
    or roll back to end it, and the next one is ordinary again. PostgreSQL: no difference.
    Raises `RuntimeError` if the session has a transaction open."""
    if session.in_transaction():
        raise RuntimeError("begin_read: end the session's transaction first (commit or roll back)")
    session.connection(execution_options={READ_ONLY: True})


WRITE_TURNS: "WeakKeyDictionary[Engine, Turn]" = WeakKeyDictionary()
"""A SQLite engine → its process's write turn (`write_turn`), for `/metrics`."""


def make_engine(url: str, *, write_turn: bool = True) -> Engine:
    """An engine; for SQLite, WAL journalling and foreign keys on every connection, and its writers
    queued for the write lock in this process (`write_turn`; `write_turn=False` only for the bench that
    measures it against SQLite's own waiting, `bench/write_turn.py`)."""
    if url.startswith("sqlite"):
        turn, busy_ms = Turn(timeout_s=SQLITE_BUSY_TIMEOUT_S), round(SQLITE_BUSY_TIMEOUT_S * 1000)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S,
                                                  "factory": connection_class(turn)})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # The driver's own transaction handling is switched off so that we can
            # begin every transaction ourselves, below.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(connection: Any) -> None:
            # A deferred transaction that reads, then writes after another connection
            # has committed, fails at once with "database is locked" (SQLite cannot
            # upgrade a stale snapshot, and does not wait). Taking the write lock at
            # BEGIN makes every transaction queue on busy_timeout instead. Reads take
            # the lock too, so sessions stay short (routes end theirs before responding),
            # and a long read begins as a read (`begin_read`). A write first queues for its
            # process's write turn (`write_turn`), given back when the transaction ends.
            read = connection.get_execution_options().get(READ_ONLY, False)
            if read:
                connection.exec_driver_sql("BEGIN")
                return
            driver = connection.connection.dbapi_connection
            if write_turn:
                driver.begin_write()
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                driver.end_write()
                raise

        WRITE_TURNS[engine] = turn
        return engine
    return create_engine(url, pool_pre_ping=True)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"




class Responder(Base):
    """Someone the centre can call on: an operator team, a keyholder, a nurse, the emergency services."""

    __tablename__ = "responders"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)


class ContactPoint(Base):
    """How to reach a responder, in their own order of preference (kept apart from the chains)."""

    __tablename__ = "contact_points"
    id: Mapped[int] = mapped_column(primary_key=True)
    responder_id: Mapped[int] = mapped_column(ForeignKey("responders.id"), index=True)
    address: Mapped[str] = mapped_column(String(500))
    """`mailto:…`, or an Apprise URL (a webhook, ntfy, an SMS gateway)."""
    position: Mapped[int]


class PersonContact(Base):
    """A keyholder or next of kin the person has nominated, in the order they want them called."""

    __tablename__ = "person_contacts"
    __table_args__ = (UniqueConstraint("person_id", "responder_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    responder_id: Mapped[int] = mapped_column(ForeignKey("responders.id"))
    position: Mapped[int]
    nominated_at: Mapped[datetime]
    relationship: Mapped[str] = mapped_column(String(100), default="", server_default="")
    """What the contact is to the person ("daughter", "neighbour"), as the operator reads it."""


class CallNote(Base):
    """What an operator did or said on a call, against one alert (`call_notes.py`): a note, a
    call back, a keyholder or responder team sent, 999 called, or no further action (with its reason)."""

    __tablename__ = "call_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(100))
    """The operator's username."""
    action: Mapped[str] = mapped_column(String(32))
    """A `call_notes.NoteAction` value."""
    text: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    """Why no further action was taken (required for `no_further_action`, empty otherwise)."""


class HandoverNote(Base):
    """A note from one shift of operators to the next (`handover.py`)."""

    __tablename__ = "handover_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    by: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)


class CallScript(Base):
    """What an operator says and does for one kind of alarm, step by step, kept as data that
    administrators edit (`call_scripts.py`); seeded with a default for every rule."""

    __tablename__ = "call_scripts"
    rule: Mapped[str] = mapped_column(String(64), primary_key=True)
    """A `detection.rules.RuleId` value."""
    title: Mapped[str] = mapped_column(String(200))
    steps: Mapped[list[Any]]
    """The steps, in order, each a plain sentence."""
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(100))
    """A username, or "seed" for the default written by the migration."""


class ReviewNote(Base):
    """A nurse's review of a trend alert or a missed measurement ("Reviewed, plan: ..."): it closes
    the review task (`monitoring_centre/review_tasks.py`). One per alert. The note as a FHIR R4
    ClinicalImpression Bundle (`alerting/review_record.py`) is kept with it for the person's record."""

    __tablename__ = "review_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    plan: Mapped[str] = mapped_column(Text)
    written_by: Mapped[str] = mapped_column(String(100))
    written_at: Mapped[datetime]
    record_bundle: Mapped[str] = mapped_column(Text, default="")
    """The note as a FHIR R4 transaction Bundle (Patient, ClinicalImpression); empty if it could not be built."""
    record_status: Mapped[str] = mapped_column(String(16), default="kept")
    """kept (built and stored with the note) or refused (not built: `record_detail` says why)."""
    record_detail: Mapped[str] = mapped_column(Text, default="")


class ResponderAccount(Base):
    """A family member's account that is also a responder (a keyholder): the open requests to that
    responder are shown on the family member's page, to accept or decline there. One responder per
    account; set by an administrator (or the demo)."""

    __tablename__ = "responder_accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    responder_id: Mapped[int] = mapped_column(ForeignKey("responders.id"), index=True)
    linked_at: Mapped[datetime]
    linked_by: Mapped[str] = mapped_column(String(100))


# --- several centre workers (docs/operating.md, "Several workers") ----------------------------


ACTIVE_ALERT_STATES = ("open", "acknowledged", "in_progress")
"""`monitoring_centre.alerts.ACTIVE` as stored values: the partial unique index below repeats them."""

Index("uq_alerts_one_active", Alert.person_id, Alert.rule, Alert.subject, unique=True,
      postgresql_where=Alert.status.in_(ACTIVE_ALERT_STATES), sqlite_where=Alert.status.in_(ACTIVE_ALERT_STATES))
"""At most one active alert per person, rule and subject, enforced by the database too: two workers
raising the same condition at once (a hub's last will on one, the missed heartbeats on the holder of the
person's lease) cannot both open one; the second transaction fails, is retried, and counts a repeat."""


class CentreWorker(Base):
    """A centre worker that is alive: it writes `heartbeat_at` every couple of seconds
    (`monitoring_centre/workers.py`). Removed on a clean stop; a crashed worker's row goes stale."""

    __tablename__ = "centre_workers"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    """The worker's stable name (`TELECARE_WORKER`), the same at every start."""
    run: Mapped[str] = mapped_column(String(16))
    """This start of it: a random id, so its leases from an earlier (crashed) run are known as dead."""
    heartbeat_at: Mapped[datetime]


class DetectionLease(Base):
    """Which worker holds a person's detection state (`detection.engine.Engine`) until when.
    One holder at a time: per-person order and learned baselines live in one engine."""

    __tablename__ = "detection_leases"
    person_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    worker: Mapped[str] = mapped_column(String(100), index=True)
    run: Mapped[str] = mapped_column(String(16))
    until: Mapped[datetime]
    """The lease lapses at this time (UTC) unless renewed; another worker may claim it after."""


class DetectionQueueEntry(Base):
    """A stored message of a person whose lease another worker holds (or nobody, during a
    takeover): written in the storing transaction, observed and deleted by the holder, in id
    order (`monitoring_centre/detection_queue.py`)."""

    __tablename__ = "detection_queue"
    __table_args__ = (Index("ix_detection_queue_person_id_id", "person_id", "id"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    person_id: Mapped[int] = mapped_column(Integer)
    inbound_message_id: Mapped[str] = mapped_column(String(36))
    """`InboundMessage.id` (no foreign key: retention may purge a message before a late holder reads it,
    and then the entry is dropped)."""
