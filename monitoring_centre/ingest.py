"""From an MQTT message to stored rows and alert decisions, in one transaction per batch.

`Ingest.process` takes a batch and commits it once; only then does the receiver
acknowledge the batch to the broker. Every refusal is written to the dead-letter table
with its reason and counted in /metrics (after the commit, so a retried batch is not
counted twice).

A batch goes in three steps:
1. Checks that need no database (topic, size, UTF-8, the protocol's own validation, hub id
   against topic, message type against topic kind), message by message.
2. One query each for the batch's hubs, their devices and the message ids already stored
   (on SQLite each read as one JSON row: `_rows`); then every accepted message, reading and
   event, and every dead letter, is inserted in bulk (plain tuples, each value through its
   column type's own bind processor: `_Prepared`; no ORM unit of work; on SQLite multi-row
   INSERTs a page of rows at a time, on PostgreSQL one COPY per table, an executemany for a few
   rows) and flushed. If that flush fails on a constraint (a duplicate racing in from another
   writer), the transaction is rolled back and the batch is stored again message by message, each in its own
   savepoint, so one bad row never takes the good ones down with it.
3. In arrival order: device and hub bookkeeping, then detection (`Detector.observe`),
   whose alerts go into the same transaction. The detector sees each message once the
   rows are flushed, so a constraint failure in step 2 never makes it see a message twice.
   The devices' `last_seen` and `battery_pct` are kept in memory through the batch and
   written at its end, one `UPDATE ... FROM (VALUES ...)` a page of devices at a time.

Why so few statements: the database drivers let go of Python's global interpreter lock for
every statement (SQLite's for every row it steps), and each time the ingest thread may wait up
to the switch interval (5 ms) to take it back while another thread is busy (the MQTT client's
network thread, an escalation pass). `bench/ingest_contention.py` measures it: beside a busy
thread, a batch of 400 readings from 100 homes took 28 ms a message on SQLite with an
executemany per table and a row per step, and 0.6-0.7 ms with these.

Reasons a message is dead-lettered (the `reason` column and the `reason` label of
`telecare_ingest_rejected_total`):
- `bad_topic`: not a protocol topic (`telecare/v1/hubs/<hub>/<kind>`); the broker's ACL
  already stops a hub publishing under another hub's id, so a spoofed hub topic never arrives.
- `too_large`: more than `MAX_PAYLOAD_BYTES`.
- `malformed`: not UTF-8 (RFC 8259 JSON is UTF-8), not JSON, not an object, a field of the
  wrong type, an unknown (extra) field, or a status that is neither online nor offline.
- `unknown_version`, `missing_field`, `impossible_value`: from the protocol. No message is
  refused for its times (a hub's clock can be days off; its alarms must still be raised):
  `future_timestamp`, in dead letters from before, is no longer given.
- `hub_mismatch`: the payload's hub id is not the hub that published it (the topic).
- `wrong_topic`: a message type on another type's topic (a reading on `events`), or anything but
  a call for help (`telecare_protocol.codes.ALARM_CODES`) on `alarms`. A call for help on `events`
  is stored and raised: that is where a hub of the earlier topic layout sends it.
- `unknown_hub`: a hub with a broker account that is not enrolled.
- `unknown_device`: a device the hub has not been paired with at the centre (the hub's own id
  is always known: the hub reports its power, its links and its faults as its own events). Its readings
  are **not** stored as readings: they belong to no known device, location or person's
  record, and a stranger's oximeter in the house would otherwise write into the person's
  chart. The dead letter keeps the whole payload, so nothing is lost if it was a pairing
  mistake.
- `internal_error`: a bug met this message; it is kept so it can be replayed once fixed.

Times: every message is stored with the centre's receive time (`received_at`: the batch's
time, taken when ingest takes the batch from the receiver's bounded queue) beside the hub's
`source_ts` and `hub_ts`, which are kept as sent. A reading or event stamped later than its
receipt by more than the protocol's `CLOCK_TOLERANCE` is stored with `clock_suspect`. Liveness
bookkeeping uses the receive time (`Hub.last_heartbeat_at`), and a device's `last_seen` is
never later than the receipt. Detection gets the receive time with each message and judges
the hub's clock itself (`detection/clock.py`).

A reading whose value lies outside what an oximeter measures (SpO2 0 %, pulse 0 sent by a
device with no signal; `telecare_protocol.codes.MEASURABLE`) is stored with its value, flagged
`no_signal` if its hub did not flag it: the nurses' chart counts it as flagged, never charts it.

A replay of a message id already stored is not an error: it is the broker redelivering
after a lost PUBACK, or the hub resending for want of an ack, dropped and counted in
`telecare_ingest_duplicates_total`.

Each batch's `Outcome.receipts` says, per hub message, what became of it (stored now,
already stored, or refused with its reason): the receiver publishes them to the hubs as
end-to-end acks after the commit (`monitoring_centre.acks`).
"""

import json
import logging
import sqlite3
import time
import uuid
from collections import Counter as Tally
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import Connection, Dialect, Insert, String, Table, Update, any_, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement

from detection.rules import CATALOGUE, RuleId, hub_title
from monitoring_centre import alerts
from monitoring_centre.storage import DeadLetter, Device, Event, Hub, HubKey, InboundMessage, Reading, utc_now
from telecare_protocol import DeviceEvent, Heartbeat, ProtocolError, decode
from telecare_protocol import Reading as ReadingMessage
from telecare_protocol.codec import CLOCK_TOLERANCE, MAX_PAYLOAD_BYTES
from telecare_protocol.codes import signal_quality
from telecare_protocol.topics import STATUS, belongs_on, parse_topic

log = logging.getLogger(__name__)

MAX_DEAD_LETTER_BYTES = 4096
Message = ReadingMessage | DeviceEvent | Heartbeat


@dataclass(frozen=True)
class Inbound:
    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 1
    link: int = 0
    """Which connection to the broker it came on: it is acknowledged only on that one."""
    lane: str = "data"
    """Which of the receiver's sessions it came on (`data`, `alarms`: events and status, or `alarm_topic`)."""
    broker: int = 0
    """Which of the receiver's brokers it came by (`Receiver.brokers`): acknowledged on that one."""


@dataclass(frozen=True)
class Receipt:
    """What became of one hub message in a committed batch, for the hub's end-to-end ack."""

    hub_id: str
    """The hub that published it: the hub id in its topic (the broker authenticated it)."""
    message_id: str
    refused: str | None = None
    """None: stored, now or earlier. Else the dead-letter reason it was refused for."""


@dataclass
class Outcome:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    changed_alerts: set[int] = field(default_factory=set)
    accepted_by_type: Tally[str] = field(default_factory=Tally)
    rejected_by_reason: Tally[str] = field(default_factory=Tally)
    bulk: bool = True
    """False when the batch had to be stored message by message (see the module docstring)."""
    receipts: list[Receipt] = field(default_factory=list)
    """One per message of a hub whose id could be read, in arrival order (statuses have none)."""


class Rejected(Exception):
    def __init__(self, reason: str, field: str, detail: str) -> None:
        super().__init__(f"{reason}: {field}: {detail}")
        self.reason, self.field, self.detail = reason, field, detail


class Detector(Protocol):
    """What ingest asks about each stored message: which alerts did it open, repeat or clear?

    Called inside the batch's transaction, in arrival order, after the message's rows are
    flushed, with the centre's receive time. Returns the ids of alerts it changed."""

    def observe(self, session: Session, hub: HubKey, message: Message, received_at: datetime) -> set[int]: ...


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.accepted = Counter("telecare_ingest_accepted", "Messages stored, by type", ["type"],
                                registry=registry)
        self.duplicates = Counter("telecare_ingest_duplicates", "Messages already stored (redelivery)",
                                  registry=registry)
        self.rejected = Counter("telecare_ingest_rejected", "Messages refused, by reason", ["reason"],
                                registry=registry)
        self.batches = Counter("telecare_ingest_batches", "Batches committed, by how they were stored", ["mode"],
                               registry=registry)
        self.last_commit = Gauge("telecare_ingest_last_commit_timestamp_seconds",
                                 "Unix time of the last committed batch (a stalled ingest stops moving it)",
                                 registry=registry)
        self.commit_seconds = Gauge("telecare_ingest_last_batch_seconds",
                                    "How long the last batch took to store and commit", registry=registry)

    def count(self, outcome: Outcome, seconds: float) -> None:
        for kind, n in outcome.accepted_by_type.items():
            self.accepted.labels(kind).inc(n)
        for reason, n in outcome.rejected_by_reason.items():
            self.rejected.labels(reason).inc(n)
        if outcome.duplicates:
            self.duplicates.inc(outcome.duplicates)
        self.batches.labels("bulk" if outcome.bulk else "per_message").inc()
        self.last_commit.set(time.time())
        self.commit_seconds.set(seconds)


@dataclass
class _Item:
    """One inbound message on its way through a batch."""

    inbound: Inbound
    hub_id: str | None = None
    kind: str | None = None
    message: Message | None = None
    message_id: str = ""
    """`str(message.id)`, once (a UUID's str costs a microsecond, and a message needs it five times)."""
    text: str = ""
    status: str | None = None
    refusal: Rejected | None = None
    duplicate: bool = False


@dataclass
class _DeviceBook:
    """A paired device's liveness columns, as loaded for one batch and changed by it (written at its end)."""

    last_seen: datetime | None
    battery_pct: int | None
    changed: bool = False

    def seen(self, at: datetime) -> None:
        """Heard from at `at` (UTC): `last_seen` only ever moves forward."""
        if self.last_seen is None or at > self.last_seen:
            self.last_seen = at
            self.changed = True


Devices = dict[tuple[str, str], _DeviceBook]
"""(hub id, device id) → its book, for the hubs of one batch."""


@dataclass
class _HubBook:
    """A registered hub of the batch, as checks and detection need it (`HubKey`). Its row (`Hub`) is read
    only for a heartbeat or a status, which write to it (`row`)."""

    id: str
    person_id: int
    row: Hub | None = None


Hubs = dict[str, _HubBook]
"""hub id → its book, for the hubs of one batch."""


PARAMETERS_PER_STATEMENT = {"sqlite": 999, "postgresql": 32767}
"""Bound parameters per multi-row statement, by dialect; its rows are paged to stay within it (`pages`).
SQLite's SQLITE_MAX_VARIABLE_NUMBER was 999 before SQLite 3.32 and is 32766 since
(https://www.sqlite.org/limits.html, "Maximum Number Of Host Parameters"): 999 holds on any build.
PostgreSQL's protocol counts a statement's parameters in 16 bits (the Bind message,
https://www.postgresql.org/docs/current/protocol-message-formats.html)."""


@dataclass(frozen=True)
class _Plan:
    """A `_Prepared` statement on one dialect: its SQL, and each bind name's processor (None: none).
    `values`: for an INSERT on SQLite, the SQL up to and including `VALUES ` and one row's placeholder
    group, to run a page of rows as one multi-row INSERT."""

    sql: str
    convert: Callable[[tuple[Any, ...]], Any]
    processors: Mapping[str, Callable[[Any], Any] | None]
    values: tuple[str, str] | None = None
    rows_per_statement: int = 1
    copy: tuple[str, Callable[[tuple[Any, ...]], list[Any]]] | None = None
    """For an INSERT on PostgreSQL: `COPY table (columns) FROM STDIN`, its columns in `names` order, and each
    row's values processed, in that order."""


class _Prepared:
    """One statement of ingest's hot path, run for many rows of plain tuples (`run`: multi-row INSERTs on
    SQLite, COPY for an INSERT of many rows on PostgreSQL, else one DBAPI executemany).

    `statement`'s bind parameters are named in `names`, the order each row's tuple gives its values in.
    Per dialect, the statement is compiled once (as for an executemany: no RETURNING) and each value goes
    through its column type's own bind processor, as SQLAlchemy's Core executemany would send it (the same
    stored text for times and JSON), but without building and processing a parameter dict per row, which
    was half of the insert's CPU. The columns in `given` the caller passes already processed, with
    `processor(dialect, name)`: a value shared by many rows (the batch's receive time) is then processed once.

    `run` raises what `Connection.exec_driver_sql` raises (an `IntegrityError` on a constraint); `ValueError`
    at the first use on a dialect if the statement binds other names than `names` (a column added with a
    default would otherwise be left out silently)."""

    def __init__(self, statement: Insert | Update, names: tuple[str, ...], given: tuple[str, ...] = ()) -> None:
        self.statement = statement
        self.names = names
        self.given = frozenset(given)
        self._plans: dict[str, _Plan] = {}

    def run(self, connection: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Execute the statement for every row, in the connection's transaction: on SQLite an INSERT's rows as
        multi-row INSERTs (`INSERT ... VALUES (...), (...)`, pages of `pages`); on PostgreSQL an INSERT of
        `COPY_FROM_ROWS` rows or more by COPY (`_copy`); anything else as one executemany.

        Why SQLite: its driver lets go of Python's global interpreter lock for every statement it steps, and
        an executemany steps once per row. With another thread busy (the MQTT client's network thread parsing
        the next messages, an escalation pass), each may wait up to the interpreter's switch interval (5 ms)
        to take the lock back: a batch of 400 readings then spent far longer waiting than storing (the
        module docstring gives the figures). One statement per page of rows waits once. On PostgreSQL,
        psycopg's executemany (pipelined) did better in the live bench than multi-row INSERTs
        (`bench/ingest.py`, four paired runs: 0.45-0.53 of the ceiling against 0.38-0.41), and COPY better
        again (`_copy`)."""
        if not rows:
            return
        plan = self._plan(connection.dialect)
        if plan.copy is not None and len(rows) >= COPY_FROM_ROWS:
            _copy(connection, plan.copy[0], [plan.copy[1](row) for row in rows])
            return
        converted = [plan.convert(row) for row in rows]
        if plan.values is None:
            connection.exec_driver_sql(plan.sql, converted)
            return
        head, group = plan.values  # qmark: `convert` gives a row's values in its placeholders' order
        for start, size in pages(len(converted), plan.rows_per_statement):
            connection.exec_driver_sql(head + ", ".join([group] * size),
                                       tuple([value for row in converted[start:start + size] for value in row]))

    def processor(self, dialect: Dialect, name: str) -> Callable[[Any], Any]:
        """What the column bound as `name` does to a value before the driver gets it (for `given` columns)."""
        process = self._plan(dialect).processors[name]
        return process if process is not None else _unchanged

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = self._compile(dialect)
        return plan

    def _compile(self, dialect: Dialect) -> _Plan:
        compiled = self.statement.compile(dialect=dialect, column_keys=list(self.names), for_executemany=True)
        assert isinstance(compiled, SQLCompiler)
        bound = list(compiled.positiontup or ()) if dialect.positional else list(compiled.binds)
        if sorted(bound) != sorted(self.names):
            raise ValueError(f"{self.statement} binds {sorted(bound)}, not {sorted(self.names)}")
        processors = {name: compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                      for name in self.names}
        steps = [(self.names.index(name), process) for name, process in processors.items()
                 if process is not None and name not in self.given]
        order = [self.names.index(name) for name in bound]

        def processed(row: tuple[Any, ...]) -> list[Any]:
            values = list(row)
            for index, process in steps:
                values[index] = process(values[index])
            return values

        convert: Callable[[tuple[Any, ...]], Any]
        if dialect.positional:
            def convert(row: tuple[Any, ...]) -> Any:
                values = processed(row)
                return tuple([values[i] for i in order])
        else:
            names = self.names

            def convert(row: tuple[Any, ...]) -> Any:
                return dict(zip(names, processed(row), strict=True))
        sql = str(compiled)
        values, per_statement = None, 1
        head, found, group = sql.rpartition("VALUES ")
        if (found and isinstance(self.statement, Insert) and dialect.name == "sqlite"
                and group == "(" + ", ".join(["?"] * len(bound)) + ")"):
            values = (head + found, group)
            per_statement = max(1, PARAMETERS_PER_STATEMENT[dialect.name] // len(bound))
        copy = None
        if isinstance(self.statement, Insert) and dialect.name == "postgresql":
            table = self.statement.table
            assert isinstance(table, Table)
            quote = dialect.identifier_preparer
            columns = ", ".join(quote.format_column(table.c[name]) for name in self.names)
            copy = (f"COPY {quote.format_table(table)} ({columns}) FROM STDIN", processed)
        return _Plan(sql, convert, processors, values, per_statement, copy)


COPY_FROM_ROWS = 16
"""On PostgreSQL, an INSERT of this many rows or more goes by COPY (`_copy`); fewer (an alarm's batch) by
executemany, one round trip where COPY takes two (the server's go-ahead, then the rows)."""


def _copy(connection: Connection, sql: str, rows: list[list[Any]]) -> None:
    """`rows` into PostgreSQL by `COPY ... FROM STDIN` (psycopg's `Cursor.copy`), in the connection's transaction.

    Why COPY: an executemany, even pipelined, has the server parse, bind and run one INSERT per row and
    psycopg send a Bind and an Execute for each; COPY streams the rows into the table as one command
    (https://www.postgresql.org/docs/current/populate.html, "Use COPY"). Each value is adapted as psycopg
    adapts a query parameter, so the stored values are those of the INSERT (`tests/unit/monitoring_centre/
    test_ingest_prepared.py`). A failure is raised as SQLAlchemy's error for it (`IntegrityError` on a
    constraint: ingest then stores the batch one by one), and the transaction is then aborted, as after a
    failed INSERT. `bench/ingest_contention.py --postgresql` (100 homes, 400 readings a batch): alone,
    0.26-0.28 ms of CPU a message with the executemany, 0.20 with COPY; beside a busy thread, 2.3-5.3 ms
    of wall time a message, 0.94-0.99 with COPY."""
    driver = connection.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    try:
        with driver.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.Error as error:
        raise DBAPIError.instance(sql, None, error, psycopg.Error, dialect=connection.dialect) from error


MAX_ROWS_PER_STATEMENT = 256
"""The largest page (`pages`), whatever the database would take."""



def pages(count: int, largest: int) -> Iterator[tuple[int, int]]:
    """(start, size) of the pages that cover `count` rows, largest first, each a power of two rows and at
    most `largest`: a batch of any size is a few statements of a few distinct texts, which the drivers'
    statement caches keep (psycopg parses a statement's text for its placeholders, and prepares one on the
    server after 5 uses; SQLite's module compiles each text anew unless it is cached). With a page per
    batch size instead, a batch of 377 readings was a new 3,770-placeholder text to parse each time."""
    size = 1 << (max(1, min(largest, MAX_ROWS_PER_STATEMENT)).bit_length() - 1)
    start = 0
    while start < count:
        while size > count - start:
            size //= 2
        yield start, size
        start += size


def _unchanged(value: Any) -> Any:
    return value


_STAMPS = ("source_ts", "received_at")
"""Given processed to the inserts below: the receive time is the batch's, and a message's `source_ts`
goes into two tables (both columns are `UTCDateTime`, processed alike)."""
_INBOUND_INSERT = _Prepared(insert(InboundMessage), (
    "id", "type", "hub_id", "device_id", "source_ts", "hub_ts", "received_at", "payload"), given=_STAMPS)
_READING_INSERT = _Prepared(insert(Reading), (
    "message_id", "person_id", "device_id", "metric", "value", "unit", "quality", "source_ts", "received_at",
    "clock_suspect"), given=(*_STAMPS, "quality"))
_EVENT_INSERT = _Prepared(insert(Event), (
    "message_id", "person_id", "hub_id", "device_id", "device_type", "code", "priority", "detail", "source_ts",
    "received_at", "clock_suspect"), given=_STAMPS)
_DEAD_LETTER_INSERT = _Prepared(insert(DeadLetter), ("received_at", "topic", "reason", "field", "detail", "payload"))
_DEVICE_UPDATE = _Prepared(
    update(Device).where(Device.hub_id == bindparam("b_hub"), Device.id == bindparam("b_id"))
    .values(last_seen=bindparam("b_last_seen"), battery_pct=bindparam("b_battery_pct")),
    ("b_hub", "b_id", "b_last_seen", "b_battery_pct"))


class _NoDetection:
    def observe(self, session: Session, hub: HubKey, message: Message, received_at: datetime) -> set[int]:
        return set()


class Ingest:
    """Checks and stores a batch of inbound MQTT messages durably, with detection in the same transaction.

    `sessions`: the centre's database sessions. `metrics`: counters by type and by refusal reason.
    `clock`: the centre's UTC now, stamped on every message as its receive time. `detector`: the
    detection engine's runner (`EngineRunner`), called per stored message inside the transaction.
    Called only from the receiver's ingest thread (`process`): topic and payload checks, dedup by
    message id, dead letters with a reason, storage; it raises only if the database itself fails, and
    then nothing of the batch is acknowledged.
    """

    def __init__(self, sessions: sessionmaker[Session], metrics: IngestMetrics,
                 clock: Callable[[], datetime] = utc_now, detector: Detector | None = None) -> None:
        self.sessions = sessions
        self.metrics = metrics
        self.clock = clock
        self.detector: Detector = detector or _NoDetection()

    def process(self, batch: Sequence[Inbound]) -> Outcome:
        """Store a batch durably. Raises only if the database itself fails (then nothing is acknowledged)."""
        started = time.perf_counter()
        now = self.clock()
        items = [self._check(inbound) for inbound in batch]
        try:
            with self.sessions() as session, session.begin():
                outcome = self._store(session, items, now)
        except IntegrityError:
            log.warning("bulk insert of %d messages failed on a constraint; storing them one by one", len(batch))
            for item in items:
                item.duplicate = False
                if item.refusal is not None and item.refusal.reason in _STORE_REASONS:
                    item.refusal = None
            with self.sessions() as session, session.begin():
                outcome = self._store_one_by_one(session, items, now)
        self.metrics.count(outcome, time.perf_counter() - started)
        return outcome

    # --- step 1: checks without the database ------------------------------------------

    def _check(self, inbound: Inbound) -> _Item:
        item = _Item(inbound)
        try:
            self._parse(item)
        except Rejected as refusal:
            item.refusal = refusal
        return item

    def _parse(self, item: _Item) -> None:
        inbound = item.inbound
        topic = parse_topic(inbound.topic)
        if topic is None:
            raise Rejected("bad_topic", "topic", f"{inbound.topic!r} is not a protocol topic")
        item.hub_id, item.kind = topic.hub_id, topic.kind
        if len(inbound.payload) > MAX_PAYLOAD_BYTES:
            raise Rejected("too_large", "$", f"payload of {len(inbound.payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
        if topic.kind == STATUS:
            state = inbound.payload.decode(errors="replace").strip()
            if state not in ("online", "offline"):
                raise Rejected("malformed", "status", f"{state[:40]!r} is neither online nor offline")
            item.status = state
            return
        try:
            item.text = inbound.payload.decode("utf-8")
        except UnicodeDecodeError:
            raise Rejected("malformed", "$", "not UTF-8: a message is UTF-8 JSON") from None
        try:
            message = decode(item.text)
        except ProtocolError as error:
            raise Rejected(error.reason, error.field, error.detail) from None
        if message.hub_id != topic.hub_id:
            raise Rejected("hub_mismatch", "hub_id",
                           f"payload says {message.hub_id!r} but it was published as {topic.hub_id!r}")
        code = message.code.value if isinstance(message, DeviceEvent) else None
        if not belongs_on(topic.kind, message.type, code):
            what = f"a {message.type}" if code is None else f"a {message.type} {code!r}"
            raise Rejected("wrong_topic", "type", f"{what} does not belong on {topic.kind}")
        if isinstance(message, Heartbeat) and message.device_id != message.hub_id:
            raise Rejected("unknown_device", "device_id", "a heartbeat's device_id is its hub's id")
        item.message = message
        item.message_id = str(message.id)

    # --- step 2: bulk insert ------------------------------------------------------------

    def _store(self, session: Session, items: list[_Item], now: datetime) -> Outcome:
        outcome = Outcome()
        hubs, devices = self._load(session, items)
        stored = set(session.scalars(select(InboundMessage.id).where(
            among(session, InboundMessage.id, [i.message_id for i in items if i.message is not None]))))
        for item in items:
            self._against_books(item, hubs, devices, stored)
        self._insert([i for i in items if i.refusal is None and not i.duplicate and i.message], hubs, now, session)
        self._dead_letters(session, [i for i in items if i.refusal is not None], now)
        session.flush()
        for item in items:
            self._after_insert(session, item, hubs, devices, now, outcome)
        _write_devices(session, devices)
        return outcome

    def _store_one_by_one(self, session: Session, items: list[_Item], now: datetime) -> Outcome:
        outcome = Outcome(bulk=False)
        for item in items:
            savepoint = session.begin_nested()
            try:
                hubs, devices = self._load(session, [item])
                stored = set(session.scalars(select(InboundMessage.id).where(
                    InboundMessage.id == item.message_id))) if item.message else set()
                self._against_books(item, hubs, devices, stored)
                if item.refusal is None and not item.duplicate and item.message:
                    self._insert([item], hubs, now, session)
                    session.flush()
            except IntegrityError:
                savepoint.rollback()
                item.duplicate = True  # a racing copy was stored first
                outcome.duplicates += 1
                _add_receipt(outcome, item)
                continue
            if item.refusal is not None:
                self._dead_letters(session, [item], now)
            self._after_insert(session, item, hubs, devices, now, outcome)
            _write_devices(session, devices)
            savepoint.commit()
        return outcome

    def _load(self, session: Session, items: list[_Item]) -> tuple[Hubs, Devices]:
        hub_ids = {i.hub_id for i in items if i.hub_id is not None and i.refusal is None}
        if not hub_ids:
            return {}, {}
        wanted = sorted(hub_ids)
        hubs = {hub_id: _HubBook(hub_id, person_id) for hub_id, person_id in _rows(
            session, (Hub.id, Hub.person_id), among(session, Hub.id, wanted))}
        written = sorted({i.hub_id for i in items if i.refusal is None and i.hub_id is not None and i.hub_id in hubs
                          and (i.status is not None or isinstance(i.message, Heartbeat))})
        if written:  # the rows a heartbeat or a status writes to, in one query
            for row in session.scalars(select(Hub).where(among(session, Hub.id, written))):
                hubs[row.id].row = row
        devices = {(hub_id, device_id): _DeviceBook(last_seen, battery) for hub_id, device_id, last_seen, battery in
                   _rows(session, (Device.hub_id, Device.id, Device.last_seen, Device.battery_pct),
                         among(session, Device.hub_id, wanted))}
        return hubs, devices

    def _against_books(self, item: _Item, hubs: Hubs, devices: Devices,
                       stored: set[str]) -> None:
        if item.refusal is not None:
            return
        assert item.hub_id is not None
        if item.hub_id not in hubs:
            item.refusal = Rejected("unknown_hub", "hub_id", f"hub {item.hub_id!r} is not registered")
            return
        message = item.message
        if message is None:
            return  # a status
        message_id = item.message_id
        if message_id in stored:
            item.duplicate = True
            return
        about_the_hub = isinstance(message, Heartbeat | DeviceEvent) and message.device_id == item.hub_id
        if not about_the_hub and (item.hub_id, message.device_id) not in devices:
            item.refusal = Rejected("unknown_device", "device_id",
                                    f"{message.device_id!r} is not paired with {item.hub_id!r}")
            return
        stored.add(message_id)  # a second copy later in the same batch is a duplicate

    def _insert(self, items: list[_Item], hubs: Hubs, now: datetime, session: Session) -> None:
        inbound_rows: list[tuple[Any, ...]] = []
        reading_rows: list[tuple[Any, ...]] = []
        event_rows: list[tuple[Any, ...]] = []
        person_of = {hub_id: hub.person_id for hub_id, hub in hubs.items()}
        ahead_of = now + CLOCK_TOLERANCE  # `stamped_ahead`, once per batch
        connection = session.connection()
        stamp = _INBOUND_INSERT.processor(connection.dialect, "received_at")  # `_STAMPS`, processed once each
        received = stamp(now)
        as_json = _READING_INSERT.processor(connection.dialect, "quality")
        flags_json: dict[tuple[str, ...], Any] = {}  # a handful of distinct quality lists per batch
        for item in items:
            message = item.message
            assert message is not None
            message_id = item.message_id
            source_ts, hub_ts = message.source_ts, message.hub_ts
            source = stamp(source_ts)
            inbound_rows.append((message_id, message.type, message.hub_id, message.device_id, source, hub_ts,
                                 received, item.text))
            if isinstance(message, ReadingMessage):
                flags = tuple(flag.value for flag in  # SpO2 0 %: stored flagged no_signal
                              signal_quality(message.metric, message.value, message.quality))
                quality = flags_json.get(flags)
                if quality is None:
                    quality = flags_json[flags] = as_json(list(flags))
                reading_rows.append((message_id, person_of[message.hub_id], message.device_id, message.metric.value,
                                     message.value, message.unit, quality, source, received,
                                     source_ts > ahead_of or hub_ts > ahead_of))
            elif isinstance(message, DeviceEvent):
                event_rows.append((message_id, person_of[message.hub_id], message.hub_id, message.device_id,
                                   message.device_type.value, message.code.value, message.priority,
                                   dict(message.detail), source, received, source_ts > ahead_of or hub_ts > ahead_of))
        _INBOUND_INSERT.run(connection, inbound_rows)  # a few statements per table: no per-row ORM bookkeeping
        _READING_INSERT.run(connection, reading_rows)
        _EVENT_INSERT.run(connection, event_rows)

    def _dead_letters(self, session: Session, items: list[_Item], now: datetime) -> None:
        rows = []
        for item in items:
            refusal = item.refusal
            assert refusal is not None
            log.warning("rejected message on %s: %s", item.inbound.topic, refusal)
            rows.append((now, item.inbound.topic[:256], refusal.reason, refusal.field[:128], refusal.detail[:2000],
                         item.inbound.payload[:MAX_DEAD_LETTER_BYTES]))
        _DEAD_LETTER_INSERT.run(session.connection(), rows)

    # --- step 3: bookkeeping and detection, in arrival order ------------------------------

    def _after_insert(self, session: Session, item: _Item, hubs: Hubs, devices: Devices, now: datetime,
                      outcome: Outcome) -> None:
        _add_receipt(outcome, item)
        if item.refusal is not None:
            outcome.rejected += 1
            outcome.rejected_by_reason[item.refusal.reason] += 1
            return
        if item.duplicate:
            outcome.duplicates += 1
            return
        assert item.hub_id is not None
        hub = hubs[item.hub_id]
        if item.status is not None:
            outcome.changed_alerts.update(self._hub_status(session, _row(session, hub), item.status, now))
            outcome.stored += 1
            return
        message = item.message
        assert message is not None
        outcome.stored += 1
        outcome.accepted_by_type[message.type] += 1
        if isinstance(message, Heartbeat):
            self._heartbeat(_row(session, hub), message, devices, now)
        elif message.device_id != hub.id:  # an event about the hub itself has no device row
            # a hub clock that is ahead never makes a device look newer
            devices[(hub.id, message.device_id)].seen(min(message.source_ts, now))
        try:
            outcome.changed_alerts.update(self.detector.observe(session, hub, message, now))
        except SQLAlchemyError:
            raise  # the database is failing: the batch is retried, nothing acknowledged
        except Exception:  # a bug in a rule must not stop the message being stored, nor the batch
            log.exception("detection failed on message %s from %s; it is stored", message.id, hub.id)

    def _heartbeat(self, hub: Hub, beat: Heartbeat, devices: Devices, now: datetime) -> None:
        """The hub's state from its newest heartbeat; `last_heartbeat_at` is when the centre received it."""
        if hub.last_heartbeat_at is None or now >= hub.last_heartbeat_at:
            hub.last_heartbeat_at = now
            hub.heartbeat_interval_s = beat.interval_s
            hub.power = beat.power.value
        for status in beat.devices:
            device = devices.get((hub.id, status.device_id))
            if device is None:
                log.warning("hub %s reports a device the centre has not paired: %s", hub.id, status.device_id)
                continue
            if status.last_seen:
                device.seen(min(status.last_seen, now))
            if status.battery_pct is not None and status.battery_pct != device.battery_pct:
                device.battery_pct = status.battery_pct
                device.changed = True

    def _hub_status(self, session: Session, hub: Hub, state: str, now: datetime) -> set[int]:
        """The hub's online/offline state; "offline" is its last will, an alert of its own (never retained:
        a will published while the centre was down waits in the centre's persistent sessions).

        The fast path for a lost hub: the broker publishes the will as soon as the hub's
        keepalive lapses. The detection engine's heartbeat rule raises the same `hub_offline`
        condition when heartbeats stop, so whichever comes first opens the one alert."""
        hub.link = state
        hub_offline = CATALOGUE[RuleId.HUB_OFFLINE]
        hub_offline = replace(hub_offline, title=hub_title(hub_offline, hub.id))  # names the hub, as the tick's
        evidence = {"topic": f"hub {hub.id}", "state": state, "received_at": now.isoformat()}
        if state == "offline":
            alert = alerts.raise_alert(session, person_id=hub.person_id, hub_id=hub.id, rule=hub_offline, subject="",
                                       at=now, evidence=evidence, why=f"hub {hub.id} lost its connection to the centre")
            return {alert.id}
        cleared = alerts.clear_alert(session, person_id=hub.person_id, rule=hub_offline, subject="", evidence=evidence)
        return {cleared.id} if cleared else set()


def _row(session: Session, hub: _HubBook) -> Hub:
    """The hub's row, to write to: read with the batch's others (`Ingest._load`), or now."""
    if hub.row is None:
        hub.row = session.get(Hub, hub.id)
        if hub.row is None:  # read in this transaction a moment ago; a hub is never deleted while it sends
            raise LookupError(f"hub {hub.id!r} is no longer registered")
    return hub.row


def among(session: Session, column: InstrumentedAttribute[str], values: Sequence[str]) -> ColumnElement[bool]:
    """`column IN (values)` with one parameter however many the values: on PostgreSQL `column = ANY(array)`,
    on SQLite `column IN (SELECT value FROM json_each(json array))`.

    Why: a plain IN list is one placeholder per value, so its SQL differs with every count. SQLAlchemy then
    renders the list at each run, and the driver parses or prepares the statement again (psycopg's cache of
    parsed statements and Python's sqlite3 cache of prepared ones are keyed by the text); with a few hundred
    hubs or message ids a batch, psycopg's parsing alone was about 8 % of the ingest thread on PostgreSQL
    (py-spy on `bench/ingest.py`). With one parameter the text is the same each time: every layer caches it, and
    psycopg prepares it on the server after a few runs
    (https://www.psycopg.org/psycopg3/docs/advanced/prepare.html). The column's index still serves it:
    a varchar's for `= ANY (text[])`, and on SQLite each value is looked up in it ("SEARCH ... USING
    INDEX", `EXPLAIN QUERY PLAN`; `json_each`: https://www.sqlite.org/json1.html#jeach)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))
    if dialect == "sqlite":
        each = func.json_each(bindparam(None, json.dumps(list(values)), type_=String)).table_valued("value")
        return column.in_(select(each.c.value))
    return column.in_(values)


def _rows(session: Session, columns: Sequence[Any], where: Any) -> list[tuple[Any, ...]]:
    """`SELECT columns WHERE where`, each value as its column type gives it (times through `UTCDateTime`).

    On SQLite the database aggregates the rows into one JSON array (`json_group_array`), read as one
    row: its driver lets go of the interpreter's lock for every row it steps, and with another thread
    busy each row could wait the switch interval to get it back (`_Prepared.run`). A batch reads a
    hub and its devices for each of up to a few hundred homes."""
    dialect = session.get_bind().dialect
    if dialect.name != "sqlite":
        return [tuple(row) for row in session.execute(select(*columns).where(where))]
    packed = session.scalar(select(func.json_group_array(func.json_array(*columns))).where(where))
    processors = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]
    return [tuple(value if process is None else process(value) for process, value in zip(processors, row, strict=True))
            for row in json.loads(packed or "[]")]


def _write_devices(session: Session, devices: Devices) -> None:
    """The batch's changes to its devices' `last_seen` and `battery_pct`: one executemany UPDATE, in the
    order of the devices' keys, so that two workers updating the same devices lock them in the same
    order (in any other order their transactions can deadlock, and one batch must be stored again).
    On SQLite and PostgreSQL, one `UPDATE ... FROM (VALUES ...)` per page of devices instead (`_Prepared.run`
    says why), on PostgreSQL after locking them in that order."""
    rows = [(hub_id, device_id, book.last_seen, book.battery_pct)
            for (hub_id, device_id), book in sorted(devices.items(), key=lambda item: item[0]) if book.changed]
    connection = session.connection()
    dialect = connection.dialect.name
    too_old = dialect == "sqlite" and sqlite3.sqlite_version_info < (3, 33)
    if not rows or dialect not in _DEVICES_FROM_VALUES or too_old:
        _DEVICE_UPDATE.run(connection, rows)
    else:
        stamp = _DEVICE_UPDATE.processor(connection.dialect, "b_last_seen")
        lock, update_from, group = _DEVICES_FROM_VALUES[dialect]
        for start, size in pages(len(rows), PARAMETERS_PER_STATEMENT[dialect] // 4):
            page = rows[start:start + size]
            if lock:  # the rows locked in key order first, as the executemany would (see above)
                connection.exec_driver_sql(lock.format(keys=", ".join(["(%s, %s)"] * len(page))),
                                           tuple([key for hub_id, device_id, _seen, _battery in page
                                                  for key in (hub_id, device_id)]))
            connection.exec_driver_sql(update_from.format(values=", ".join([group] * len(page))),
                                       tuple([value for hub_id, device_id, seen, battery in page
                                              for value in (hub_id, device_id, stamp(seen), battery)]))
    for book in devices.values():
        book.changed = False


_DEVICES_FROM_VALUES = {
    "sqlite": ("", "UPDATE devices SET last_seen = v.column3, battery_pct = v.column4 FROM (VALUES {values}) AS v "
                   "WHERE devices.hub_id = v.column1 AND devices.id = v.column2", "(?, ?, ?, ?)"),
    "postgresql": (
        "SELECT 1 FROM devices WHERE (hub_id, id) IN (VALUES {keys}) ORDER BY hub_id, id FOR UPDATE",
        "UPDATE devices SET last_seen = v.last_seen, battery_pct = v.battery_pct FROM (VALUES {values}) "
        "AS v (hub_id, id, last_seen, battery_pct) WHERE devices.hub_id = v.hub_id AND devices.id = v.id",
        "(%s, %s, %s::timestamptz, %s::integer)"),
}
"""`_DEVICE_UPDATE` for a page of devices in one statement, by dialect: (the statement that locks the rows
in key order first, or "" where the database has one writer; the UPDATE; one row's placeholders).
SQLite 3.33 and later has `UPDATE ... FROM`, a VALUES list's columns are `column1`, `column2`...
(https://www.sqlite.org/lang_update.html); PostgreSQL locks the rows of `SELECT ... ORDER BY ... FOR
UPDATE` in the order it returns them (https://www.postgresql.org/docs/current/sql-select.html,
"The Locking Clause")."""


def stamped_ahead(message: Message, received_at: datetime) -> bool:
    """Stamped later than its receipt by more than `CLOCK_TOLERANCE`: impossible with a right clock,
    so the hub's clock is ahead (the message is kept, flagged `clock_suspect`)."""
    limit = received_at + CLOCK_TOLERANCE
    return message.source_ts > limit or message.hub_ts > limit


def _add_receipt(outcome: Outcome, item: _Item) -> None:
    """The item's receipt, when it came from a hub's topic and its message id can be read."""
    if item.hub_id is None or item.status is not None:
        return
    message_id = item.message_id if item.message is not None else _readable_id(item.inbound.payload)
    if message_id is not None:
        outcome.receipts.append(Receipt(item.hub_id, message_id,
                                        item.refusal.reason if item.refusal is not None else None))


def _readable_id(payload: bytes) -> str | None:
    """The `id` of a refused payload, if it has one that is a UUID: so the hub can stop resending it."""
    try:
        data = json.loads(payload)
        return str(uuid.UUID(data["id"])) if isinstance(data, dict) and isinstance(data.get("id"), str) else None
    except (ValueError, KeyError, RecursionError):
        return None


_STORE_REASONS = frozenset({"unknown_hub", "unknown_device"})
"""Refusals decided against the database (step 2); re-decided when a batch is stored again."""
