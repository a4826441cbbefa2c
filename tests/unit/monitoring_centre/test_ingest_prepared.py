"""Ingest's hot-path statements (`_Prepared`: compiled once, run as multi-row INSERTs of tuples) store
exactly what SQLAlchemy's own Core executemany stores for the same rows: the same text for times and
JSON on SQLite, the same typed values on PostgreSQL (by INSERT, and by COPY for many rows). SQLite and
PostgreSQL."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Connection, insert, text
from sqlalchemy.exc import IntegrityError

from centre_app import schema
from monitoring_centre.ingest import _EVENT_INSERT, _INBOUND_INSERT, _READING_INSERT, COPY_FROM_ROWS, _Prepared
from monitoring_centre.storage import Event, InboundMessage, Reading, make_engine

SENT = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=1)))  # stored as 08:30:15 UTC
NOW = datetime(2026, 3, 1, 8, 31, tzinfo=UTC)


def _person(connection: Connection) -> int:
    connection.execute(text("INSERT INTO people (name, address, service, access_details) "
                            "VALUES ('Ada', '', 'monitored', '')"))
    person_id = connection.execute(text("SELECT max(id) FROM people")).scalar_one()
    assert isinstance(person_id, int)
    return person_id


def _inbound(message_id: str, kind: str) -> tuple[Any, ...]:
    return (message_id, kind, "hub-1", "oximeter-1", SENT, SENT, NOW, '{"id": "' + message_id + '"}')


def _stored(connection: Connection, table: str) -> list[tuple[Any, ...]]:
    """Every column as the database holds it (no result processing), in message order, without the id."""
    order = "id" if table == "inbound_messages" else "message_id"
    rows = connection.exec_driver_sql(f"SELECT * FROM {table} ORDER BY {order}")
    keys = list(rows.keys())
    return [tuple(value for key, value in zip(keys, row, strict=True) if key != "id") for row in rows]


def _given(connection: Connection, prepared: _Prepared, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows with the columns `prepared` is given processed by the caller processed, as ingest does."""
    process = [prepared.processor(connection.dialect, name) if name in prepared.given else None
               for name in prepared.names]
    return [tuple(value if step is None else step(value) for step, value in zip(process, row, strict=True))
            for row in rows]


def _as_core(prepared: _Prepared, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [dict(zip(prepared.names, row, strict=True)) for row in rows]


@pytest.mark.parametrize("homes", [1, COPY_FROM_ROWS], ids=["few rows", "rows enough to copy"])
def test_prepared_rows_are_stored_as_core_stores_them(database_url: str, homes: int) -> None:
    """A few rows go as INSERTs; on PostgreSQL, `COPY_FROM_ROWS` or more by COPY: the same values either way."""
    engine = make_engine(database_url)
    schema.upgrade(engine)
    tables = (("readings", Reading, _READING_INSERT), ("events", Event, _EVENT_INSERT),
              ("inbound_messages", InboundMessage, _INBOUND_INSERT))
    with engine.begin() as connection:
        person = _person(connection)
        rows: dict[str, list[tuple[Any, ...]]] = {"inbound_messages": [], "readings": [], "events": []}
        for home in range(homes):
            ids = [f"00000000-0000-4000-8000-{home:08d}000{n}" for n in range(4)]
            rows["inbound_messages"] += [_inbound(ids[0], "reading"), _inbound(ids[1], "reading"),
                                         _inbound(ids[2], "event"), _inbound(ids[3], "event")]
            rows["readings"] += [(ids[0], person, "oximeter-1", "spo2", 97.0, "%", [], SENT, NOW, False),
                                 (ids[1], person, "oximeter-1", "pulse_rate", None, "bpm", ["no_signal"], SENT, NOW,
                                  True)]
            rows["events"] += [(ids[2], person, "hub-1", "door-1", "door_sensor", "door_opened", 5, {}, SENT, NOW,
                                False),
                               (ids[3], person, "hub-1", "pendant-1", "personal_trigger", "manual_alarm", 1,
                                {"note": "ünïcode \\ tab\t new line\n"}, SENT, NOW, True)]
        for name, _model, prepared in reversed(tables):
            prepared.run(connection, _given(connection, prepared, rows[name]))
        prepared_rows = {name: _stored(connection, name) for name, _model, _prepared in tables}
        for name, _model, _prepared in tables:
            connection.execute(text(f"DELETE FROM {name}"))
        for name, model, prepared in reversed(tables):
            connection.execute(insert(model), _as_core(prepared, rows[name]))
        core_rows = {name: _stored(connection, name) for name, _model, _prepared in tables}
    assert {name: len(stored) for name, stored in prepared_rows.items()} == {
        "readings": 2 * homes, "events": 2 * homes, "inbound_messages": 4 * homes}
    assert prepared_rows == core_rows
    engine.dispose()


@pytest.mark.parametrize("copies", [2, COPY_FROM_ROWS], ids=["few rows", "rows enough to copy"])
def test_a_constraint_failure_is_sqlalchemys_integrity_error(database_url: str, copies: int) -> None:
    engine = make_engine(database_url)
    schema.upgrade(engine)
    row = _inbound("00000000-0000-4000-8000-000000000001", "reading")
    with pytest.raises(IntegrityError), engine.begin() as connection:
        _INBOUND_INSERT.run(connection, [row] * copies)
    with engine.begin() as connection:  # the failed transaction was rolled back: nothing of it stored
        assert connection.exec_driver_sql("SELECT count(*) FROM inbound_messages").scalar_one() == 0
    engine.dispose()


def test_a_statement_binding_other_columns_is_refused(database_url: str) -> None:
    """A column with a default that the rows do not give would be left out of the INSERT: refused."""
    engine = make_engine(database_url)
    schema.upgrade(engine)
    without_clock_suspect = _READING_INSERT.names[:-1]
    partial = _Prepared(insert(Reading), without_clock_suspect)
    with pytest.raises(ValueError, match="clock_suspect"), engine.begin() as connection:
        partial.run(connection, [("00000000-0000-4000-8000-000000000001", 1, "oximeter-1", "spo2", 97.0, "%", [],
                                  SENT, NOW)])
    engine.dispose()
