"""A batch's bookkeeping of its devices, written once at the batch's end: `last_seen` only moves
forward and never past the receipt, a heartbeat's battery levels are kept, a device the batch did
not hear from is left alone. SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from centre_app import schema
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.ingest import Inbound, Ingest, IngestMetrics
from monitoring_centre.storage import Device, make_engine
from telecare_protocol import DeviceStatus, Heartbeat, Power, encode
from telecare_protocol import Reading as ReadingMessage
from telecare_protocol.codes import Metric
from telecare_protocol.topics import topic_for

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _sessions(database_url: str) -> sessionmaker[Session]:
    engine = make_engine(database_url)
    schema.upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session, session.begin():
        enrol_home(session, name="Ada", address="", hub_id="hub-1", devices=[
            DeviceRecord("oximeter-1", "oximeter"), DeviceRecord("door-1", "door"), DeviceRecord("bed-1", "bed")])
    return sessions


def _reading(at: datetime) -> Inbound:
    message = ReadingMessage(hub_id="hub-1", device_id="oximeter-1", source_ts=at, hub_ts=at, metric=Metric.SPO2,
                             value=96, unit="%")
    return Inbound(topic_for("hub-1", "reading"), encode(message))


def _heartbeat(*devices: DeviceStatus) -> Inbound:
    beat = Heartbeat(hub_id="hub-1", device_id="hub-1", source_ts=NOW, hub_ts=NOW, power=Power.MAINS, uptime_s=5,
                     interval_s=60, devices=devices)
    return Inbound(topic_for("hub-1", "heartbeat"), encode(beat))


def _devices(sessions: sessionmaker[Session]) -> dict[str, tuple[datetime | None, int | None]]:
    with sessions() as session:
        return {d.id: (d.last_seen, d.battery_pct) for d in session.scalars(select(Device))}


def test_last_seen_is_the_newest_of_the_batch_and_the_heartbeat_keeps_battery(database_url: str) -> None:
    sessions = _sessions(database_url)
    ingest = Ingest(sessions, IngestMetrics(CollectorRegistry()), clock=lambda: NOW)
    newest = NOW - timedelta(seconds=10)
    outcome = ingest.process([
        _reading(NOW - timedelta(minutes=5)), _reading(newest), _reading(NOW - timedelta(minutes=1)),
        _heartbeat(DeviceStatus(device_id="oximeter-1", last_seen=NOW - timedelta(hours=1), battery_pct=40),
                   DeviceStatus(device_id="door-1", last_seen=NOW - timedelta(minutes=3), battery_pct=80)),
    ])
    assert outcome.stored == 4
    devices = _devices(sessions)
    assert devices["oximeter-1"] == (newest, 40)  # the heartbeat's older time does not move it back
    assert devices["door-1"] == (NOW - timedelta(minutes=3), 80)
    assert devices["bed-1"] == (None, None)  # not heard from: untouched


def test_a_clock_ahead_never_makes_a_device_newer_than_its_receipt(database_url: str) -> None:
    sessions = _sessions(database_url)
    ingest = Ingest(sessions, IngestMetrics(CollectorRegistry()), clock=lambda: NOW)
    ingest.process([_reading(NOW + timedelta(days=2))])
    assert _devices(sessions)["oximeter-1"] == (NOW, None)
    earlier = Ingest(sessions, IngestMetrics(CollectorRegistry()), clock=lambda: NOW - timedelta(hours=1))
    earlier.process([_reading(NOW - timedelta(hours=2))])  # older than what is stored: last_seen stays
    assert _devices(sessions)["oximeter-1"] == (NOW, None)
