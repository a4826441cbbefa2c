"""Bed sensor kinds (issue 14): enrolled with `telecare admin enrol --device ID:bed:bed:pulse`, stored on the
device (migration 0009: existing rows are occupancy mats), and given to the detection engine's profile."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from centre_app import admin, schema
from detection.people import BedSensorKind
from monitoring_centre.profiles import load_profiles
from monitoring_centre.storage import Device, make_engine


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'centre.db'}")
    schema.upgrade(engine)
    with sessionmaker(engine)() as session:
        yield session
    engine.dispose()


def test_a_bed_sensor_is_enrolled_with_its_kind_and_reaches_the_engine(session: Session) -> None:
    devices = [admin.parse_device("mat-1:bed:bed:pulse"), admin.parse_device("mat-2:bed:bed"),
               admin.parse_device("mat-3:bed:bed:occupancy"), admin.parse_device("pir-1:motion:kitchen")]
    assert [d.bed_sensor_kind for d in devices] == [BedSensorKind.PULSE, BedSensorKind.OCCUPANCY,
                                                    BedSensorKind.OCCUPANCY, BedSensorKind.OCCUPANCY]
    admin.enrol(session, name="Ada", address="", hub_id="hub-1", devices=devices, centre_username="centre")
    session.flush()
    stored = {d.id: d.bed_sensor_kind for d in session.scalars(select(Device))}
    assert stored == {"mat-1": "pulse", "mat-2": "occupancy", "mat-3": "occupancy", "pir-1": "occupancy"}
    [profile] = load_profiles(session)
    assert profile.bed_sensors == {"mat-1": BedSensorKind.PULSE}
    assert profile.bed_sensor_kind("mat-2") is BedSensorKind.OCCUPANCY


def test_an_unknown_stored_kind_is_read_as_occupancy_and_the_person_still_watched(session: Session) -> None:
    admin.enrol(session, name="Ada", address="", hub_id="hub-1", devices=[admin.parse_device("mat-1:bed:bed")],
                centre_username="centre")
    session.flush()
    session.execute(text("UPDATE devices SET bed_sensor_kind = 'weight'"))
    [profile] = load_profiles(session)
    assert profile.devices == {"mat-1": "bed"}
    assert profile.bed_sensor_kind("mat-1") is BedSensorKind.OCCUPANCY


@pytest.mark.parametrize(("text_", "says"), [
    ("mat-1:bed:bed:weight", "Write one of occupancy, pulse last, for example mat-1:bed:bed:pulse"),
    ("pir-1:motion:kitchen:pulse", "only a device in the bed can say what sort of bed sensor it is"),
])
def test_a_wrong_bed_sensor_kind_is_refused(text_: str, says: str) -> None:
    with pytest.raises(admin.AdminError, match=says):
        admin.parse_device(text_)


def test_beds_enrolled_before_0009_are_occupancy_mats(database_url: str) -> None:
    engine = make_engine(database_url)
    config = schema.alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0008")
        connection.execute(text("INSERT INTO people (name, address, service, access_details) "
                                "VALUES ('Ada', '', 'monitored', '')"))
        person_id = connection.execute(text("SELECT id FROM people")).scalar_one()
        connection.execute(text("INSERT INTO hubs (id, person_id) VALUES ('hub-1', :p)"), {"p": person_id})
        connection.execute(text("INSERT INTO devices (hub_id, id, kind, location) VALUES ('hub-1', 'mat-1', 'bed', "
                                "'bed')"))
    schema.upgrade(engine)
    with engine.connect() as connection:
        kinds = connection.execute(text("SELECT id, bed_sensor_kind FROM devices")).all()
    engine.dispose()
    assert [tuple(row) for row in kinds] == [("mat-1", "occupancy")]
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0008")
        columns = [column[0] for column in connection.execute(text("SELECT * FROM devices LIMIT 0")).cursor.description]
    engine.dispose()
    assert "bed_sensor_kind" not in columns
