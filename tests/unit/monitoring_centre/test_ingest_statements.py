"""How many statements a batch costs, and that paging them changes nothing stored. The database drivers let
go of the interpreter's lock for every statement (and SQLite's for every row it steps), so a batch updates
its devices in one statement a page (`_write_devices`), and on SQLite inserts its rows a page per statement
(`_Prepared.run`) and reads its hubs and devices as one row each (`_rows`). SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import Connection, event, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from centre_app import schema
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.ingest import (
    _INBOUND_INSERT,
    _READING_INSERT,
    MAX_ROWS_PER_STATEMENT,
    Inbound,
    Ingest,
    IngestMetrics,
    _rows,
    pages,
)
from monitoring_centre.storage import Device, Hub, InboundMessage, Reading, make_engine
from telecare_protocol import DeviceStatus, Heartbeat, Power, encode
from telecare_protocol import Reading as ReadingMessage
from telecare_protocol.codes import Metric
from telecare_protocol.topics import topic_for

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HOMES = 130
"""Two devices each: 260 devices, more than one page of `_write_devices` on SQLite (249)."""


def _sessions(database_url: str) -> sessionmaker[Session]:
    engine = make_engine(database_url)
    schema.upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session, session.begin():
        for n in range(HOMES):
            enrol_home(session, name=f"Person {n}", address="", hub_id=f"hub-{n}", devices=[
                DeviceRecord("oximeter-1", "oximeter"), DeviceRecord("door-1", "door")])
    return sessions


def _reading(hub: str, at: datetime, value: float) -> Inbound:
    message = ReadingMessage(hub_id=hub, device_id="oximeter-1", source_ts=at, hub_ts=at, metric=Metric.SPO2,
                             value=value, unit="%")
    return Inbound(topic_for(hub, "reading"), encode(message))


def _heartbeat(hub: str, battery: int) -> Inbound:
    beat = Heartbeat(hub_id=hub, device_id=hub, source_ts=NOW, hub_ts=NOW, power=Power.MAINS, uptime_s=5,
                     interval_s=60, devices=(DeviceStatus(device_id="door-1", last_seen=NOW - timedelta(minutes=2),
                                                          battery_pct=battery),))
    return Inbound(topic_for(hub, "heartbeat"), encode(beat))


class Statements:
    """The statements an engine runs while counting: (SQL, whether an executemany)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []

    def __call__(self, _connection: Any, _cursor: Any, statement: str, _parameters: Any, _context: Any,
                 executemany: bool) -> None:
        self.seen.append((statement, executemany))


def _counted(sessions: sessionmaker[Session], ingest: Ingest, batch: list[Inbound]) -> Statements:
    counted = Statements()
    engine = sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", counted)
    outcome = ingest.process(batch)
    event.remove(engine, "before_cursor_execute", counted)
    assert outcome.stored == len(batch)
    return counted


def test_a_batch_of_homes_costs_the_same_statements_as_one_home_and_stores_every_row(database_url: str) -> None:
    sessions = _sessions(database_url)
    ingest = Ingest(sessions, IngestMetrics(CollectorRegistry()), clock=lambda: NOW)
    alone = _counted(sessions, ingest, [_reading("hub-0", NOW - timedelta(seconds=1000), 90.0)])
    many = _counted(sessions, ingest, [_reading(f"hub-{n}", NOW - timedelta(seconds=n), 90.0 + n % 10)
                                       for n in range(1, HOMES)])
    if database_url.startswith("sqlite"):  # PostgreSQL: a COPY per table (not a statement counted here)
        assert not any(executemany for _sql, executemany in many.seen)
    # 129 homes: a page of 64 or 128 rows, then one of 1, per table (inbound messages, readings, devices)
    assert len(many.seen) <= len(alone.seen) + 3 * 2
    beats = _counted(sessions, ingest, [_heartbeat(f"hub-{n}", 50 + n % 40) for n in range(HOMES)])
    hub_reads = [sql for sql, _many in beats.seen if "FROM hubs" in sql]
    assert len(hub_reads) == 2  # the batch's hubs, and the rows its heartbeats write to: not one per hub
    with sessions() as session:
        stored = {(r.device_id, r.value, r.source_ts) for r in session.scalars(select(Reading))}
        devices = {(d.hub_id, d.id): (d.last_seen, d.battery_pct) for d in session.scalars(select(Device))}
        hubs = {h.id: (h.last_heartbeat_at, h.heartbeat_interval_s) for h in session.scalars(select(Hub))}
    assert stored == {("oximeter-1", 90.0 + n % 10, NOW - timedelta(seconds=1000 if n == 0 else n))
                      for n in range(HOMES)}
    for n in range(HOMES):  # 260 devices: more than one page of the devices' UPDATE on SQLite (249)
        assert devices[(f"hub-{n}", "door-1")] == (NOW - timedelta(minutes=2), 50 + n % 40)
        assert devices[(f"hub-{n}", "oximeter-1")][0] == NOW - timedelta(seconds=1000 if n == 0 else n)
        assert hubs[f"hub-{n}"] == (NOW, 60)


def test_rows_read_as_one_json_row_come_back_as_the_columns_types_give_them(database_url: str) -> None:
    sessions = _sessions(database_url)
    seen = datetime(2026, 3, 2, 11, 59, 58, 123456, tzinfo=UTC)
    with sessions() as session, session.begin():
        door = session.get(Device, ("hub-7", "door-1"))
        assert door is not None
        door.last_seen, door.battery_pct = seen, 64
    columns = (Device.hub_id, Device.id, Device.last_seen, Device.battery_pct)
    with sessions() as session:
        read = sorted(_rows(session, columns, Device.hub_id.in_(["hub-7", "hub-8"])))
        expected = sorted(tuple(row) for row in session.execute(
            select(*columns).where(Device.hub_id.in_(["hub-7", "hub-8"]))))
        hubs = _rows(session, (Hub.id, Hub.person_id), Hub.id.in_(["hub-7"]))
        nothing = _rows(session, (Hub.id, Hub.person_id), Hub.id.in_(["no-such-hub"]))
    assert read == expected
    assert ("hub-7", "door-1", seen, 64) in read
    assert ("hub-8", "door-1", None, None) in read
    assert hubs == [("hub-7", 8)]  # enrolled eighth
    assert nothing == []


def test_a_page_boundary_stores_what_core_stores(database_url: str) -> None:
    """`_Prepared.run` with more rows than one statement holds on SQLite (250 rows: pages of 64 and fewer):
    the same rows as Core's executemany stores."""
    engine = make_engine(database_url)
    schema.upgrade(engine)
    rows = 250
    tables = (("inbound_messages", InboundMessage, _INBOUND_INSERT), ("readings", Reading, _READING_INSERT))

    def stored(connection: Connection) -> dict[str, list[tuple[Any, ...]]]:
        """Each table's rows as the database holds them, in message order, without the generated id."""
        found: dict[str, list[tuple[Any, ...]]] = {}
        for name, _model, _prepared in tables:
            result = connection.exec_driver_sql(f"SELECT * FROM {name} ORDER BY " +
                                                ("id" if name == "inbound_messages" else "message_id"))
            keys = list(result.keys())
            found[name] = [tuple(v for k, v in zip(keys, row, strict=True) if k != "id" or name != "readings")
                           for row in result]
        return found

    with engine.begin() as connection:
        connection.execute(text("INSERT INTO people (name, address, service, access_details) "
                                "VALUES ('Ada', '', 'monitored', '')"))
        person = connection.execute(text("SELECT max(id) FROM people")).scalar_one()
        ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(rows)]
        values: dict[str, list[tuple[Any, ...]]] = {
            "inbound_messages": [(ids[n], "reading", "hub-1", "oximeter-1", NOW - timedelta(seconds=n), NOW, NOW,
                                  '{"n": ' + str(n) + "}") for n in range(rows)],
            "readings": [(ids[n], person, "oximeter-1", "spo2", 80.0 + n / 10, "%",
                          ["questionable"] if n % 7 == 0 else [], NOW - timedelta(seconds=n), NOW, n % 2 == 0)
                         for n in range(rows)],
        }
        for name, _model, prepared in tables:
            prepared.run(connection, [tuple(prepared.processor(connection.dialect, column)(value)
                                            if column in prepared.given else value
                                            for column, value in zip(prepared.names, row, strict=True))
                                      for row in values[name]])
        paged = stored(connection)
        for name, _model, _prepared in reversed(tables):
            connection.execute(text(f"DELETE FROM {name}"))
        for name, model, prepared in tables:
            connection.execute(insert(model), [dict(zip(prepared.names, row, strict=True)) for row in values[name]])
        core = stored(connection)
    assert [len(paged[name]) for name, _model, _prepared in tables] == [rows, rows]
    assert paged == core
    engine.dispose()


def test_pages_cover_every_row_once_in_few_sizes() -> None:
    """Pages of a power of two rows, largest first, never over the database's bound: any batch of up to
    500 rows is at most 9 statements of at most 9 distinct texts per table."""
    for largest in (1, 99, 124, 249, 3276):
        for count in range(0, 501):
            found = list(pages(count, largest))
            assert [start for start, _size in found] == [sum(size for _start, size in found[:i])
                                                         for i in range(len(found))]
            assert sum(size for _start, size in found) == count
            sizes = [size for _start, size in found]
            assert all(size & (size - 1) == 0 and size <= min(largest, MAX_ROWS_PER_STATEMENT) for size in sizes)
            assert sizes == sorted(sizes, reverse=True)
            assert len(found) <= max(1, count // min(64, largest)) + 8
