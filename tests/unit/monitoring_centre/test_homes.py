"""The books after enrolment (`monitoring_centre/homes.py`): a device's problems from its open
supervision alerts and from silence; retiring a home stops the running engine watching it (no
`hub_offline` for a hub that was collected); a change of service audited with before and after."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from centre_app import schema
from detection.engine import Engine
from detection.events import BATTERY_LOW
from monitoring_centre import homes
from monitoring_centre.alerts import raise_alert
from monitoring_centre.detection_runner import EngineRunner
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.storage import AuditEntry, Device, Person, make_engine, utc_now


@pytest.fixture
def sessions(database_url: str) -> sessionmaker[Session]:
    engine = make_engine(database_url)
    schema.upgrade(engine)
    made = sessionmaker(engine, expire_on_commit=False)
    with made() as session, session.begin():
        enrol_home(session, name="Ada", address="1 Test Street", hub_id="hub-1",
                   devices=[DeviceRecord("pendant-1", "pendant"), DeviceRecord("door-1", "door", "front_door",
                                                                               expected_interval_s=3600)])
    return made


def test_a_devices_problems_are_its_open_supervision_alerts_and_a_silence_longer_than_expected(
        sessions: sessionmaker[Session]) -> None:
    now = utc_now()
    with sessions() as session, session.begin():
        pendant = session.get_one(Device, ("hub-1", "pendant-1"))
        door = session.get_one(Device, ("hub-1", "door-1"))
        pendant.battery_pct, pendant.last_seen = 12, now - timedelta(minutes=3)
        door.last_seen = now - timedelta(hours=2)  # heard from hourly: quiet
        person_id = session.scalars(select(Person.id)).one()
        raise_alert(session, person_id=person_id, hub_id="hub-1", rule=BATTERY_LOW, subject="pendant-1",
                    at=now, evidence={}, why="test")
    with sessions() as session:
        rows = {row.device_id: row for row in homes.devices(session, now)}
    assert rows["pendant-1"].problems == ("battery_low",) and rows["pendant-1"].battery_pct == 12
    assert rows["door-1"].problems == ("quiet",) and rows["door-1"].location == "front_door"


def test_retiring_a_home_stops_the_running_engine_watching_it(sessions: sessionmaker[Session]) -> None:
    runner = EngineRunner(Engine([]), sessions, tick_s=10)
    runner.load()
    with sessions() as session:
        person_id = session.scalars(select(Person.id)).one()
    assert runner.engine.person_for_hub("hub-1") == str(person_id)
    with sessions() as session, session.begin():
        assert homes.retire_home(session, session.get_one(Person, person_id), by="admin",
                                 reason="moved away") == ["hub-1"]
    runner.refresh(person_id)
    assert runner.engine.person_for_hub("hub-1") is None and str(person_id) not in runner.people
    assert runner.engine.tick(utc_now() + timedelta(days=2)) == []  # no hub_offline for a collected hub


def test_a_change_of_service_records_before_and_after_and_refuses_an_unknown_one(
        sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        person = session.scalars(select(Person)).one()
        assert homes.set_service(session, person, "keyholder_only", by="admin") is True
        assert homes.set_service(session, person, "keyholder_only", by="admin") is False  # nothing changed
        with pytest.raises(homes.BooksRefused):
            homes.set_service(session, person, "platinum", by="admin")
    with sessions() as session:
        [row] = session.scalars(select(AuditEntry).where(AuditEntry.action == "change_service")).all()
    assert json.loads(row.detail) == {"before": {"service": "monitored"}, "after": {"service": "keyholder_only"}}
