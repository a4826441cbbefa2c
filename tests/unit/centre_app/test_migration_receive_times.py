"""Migration 0004: readings and events already stored get their message's receive time."""

from alembic import command
from sqlalchemy import text

from centre_app import schema
from monitoring_centre.storage import make_engine

RECEIVED = "2026-03-02 10:00:05"


def test_rows_stored_before_0004_get_their_messages_receive_time(database_url: str) -> None:
    engine = make_engine(database_url)
    config = schema.alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
        connection.execute(text("INSERT INTO people (name, address, service, access_details) "
                                "VALUES ('Ada', '', 'monitored', '')"))
        person_id = connection.execute(text("SELECT id FROM people")).scalar_one()
        for message_id, kind in (("m-reading", "reading"), ("m-event", "event")):
            connection.execute(text("INSERT INTO inbound_messages (id, type, hub_id, device_id, source_ts, hub_ts, "
                                    "received_at, payload) VALUES (:id, :kind, 'hub-1', 'd', '1970-01-01 00:00:00', "
                                    "'1970-01-01 00:00:00', :received, '{}')"),
                               {"id": message_id, "kind": kind, "received": RECEIVED})
        connection.execute(text("INSERT INTO readings (message_id, person_id, device_id, metric, value, unit, "
                                "quality, source_ts) VALUES ('m-reading', :p, 'd', 'spo2', 95, '%', '[]', "
                                "'1970-01-01 00:00:00')"), {"p": person_id})
        connection.execute(text("INSERT INTO events (message_id, person_id, hub_id, device_id, device_type, code, "
                                "priority, detail, source_ts) VALUES ('m-event', :p, 'hub-1', 'd', 'door_sensor', "
                                "'door_opened', 9, '{}', '1970-01-01 00:00:00')"), {"p": person_id})
    schema.upgrade(engine)
    with engine.connect() as connection:
        rows = [connection.execute(text(f"SELECT received_at, clock_suspect FROM {table}")).one()
                for table in ("readings", "events")]
    engine.dispose()
    assert [(str(received)[:19], bool(suspect)) for received, suspect in rows] == [(RECEIVED, False)] * 2
