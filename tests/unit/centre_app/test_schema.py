"""The Alembic migrations build exactly the schema the models describe."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from centre_app import schema
from monitoring_centre.storage import make_engine


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    schema.upgrade(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), schema.METADATA)
    engine.dispose()
    assert differences == []


def test_upgrade_is_idempotent(database_url: str) -> None:
    engine = make_engine(database_url)
    schema.upgrade(engine)
    schema.upgrade(engine)
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    engine.dispose()
    assert current == ScriptDirectory.from_config(schema.alembic_config()).get_current_head()
    assert current != "0001"


def test_upgrade_keeps_the_rows_of_an_earlier_schema(database_url: str) -> None:
    """A centre enrolled under revision 0001 keeps its homes and devices through later ones."""
    engine = make_engine(database_url)
    config = schema.alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(text("INSERT INTO people (name, address, service, access_details) "
                                "VALUES ('Ada', '', 'monitored', '')"))
        person_id = connection.execute(text("SELECT id FROM people")).scalar_one()
        connection.execute(text("INSERT INTO hubs (id, person_id) VALUES ('hub-1', :p)"), {"p": person_id})
        connection.execute(text("INSERT INTO devices (hub_id, id, kind) VALUES ('hub-1', 'door-1', 'door')"))
    schema.upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, location, expected_interval_s FROM devices")).all()
    engine.dispose()
    assert [tuple(row) for row in rows] == [("door-1", "", None)]
