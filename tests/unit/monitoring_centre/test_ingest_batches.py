"""Batches: stored in bulk in one transaction; when the bulk insert fails on a constraint (a copy
another writer stored after our duplicate check), stored again message by message with
savepoints, so the good ones survive and the copy counts as a duplicate. SQLite and PostgreSQL."""

from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from centre_app import schema
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.ingest import COPY_FROM_ROWS, Inbound, Ingest, IngestMetrics
from monitoring_centre.storage import DeadLetter, InboundMessage, Reading, make_engine
from telecare_protocol import Reading as ReadingMessage
from telecare_protocol import encode
from telecare_protocol.codes import Metric
from telecare_protocol.topics import topic_for


def _sessions(database_url: str) -> sessionmaker[Session]:
    engine = make_engine(database_url)
    schema.upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session, session.begin():
        enrol_home(session, name="Ada", address="", hub_id="hub-1", devices=[DeviceRecord("oximeter-1", "oximeter")])
    return sessions


def _reading(value: float) -> ReadingMessage:
    return ReadingMessage(hub_id="hub-1", device_id="oximeter-1", source_ts=datetime.now(UTC), metric=Metric.SPO2,
                          value=value, unit="%")


def _inbound(message: ReadingMessage) -> Inbound:
    return Inbound(topic_for("hub-1", "reading"), encode(message))


class BlindIngest(Ingest):
    """Its duplicate check sees nothing, as if the copy were committed just after the check."""

    def _against_books(self, item: Any, hubs: Any, devices: Any, stored: set[str]) -> None:
        super()._against_books(item, hubs, devices, set())


def test_a_batch_is_stored_in_bulk(database_url: str) -> None:
    sessions = _sessions(database_url)
    registry = CollectorRegistry()
    readings = [_reading(90 + n % 10) for n in range(300)]
    batch = [_inbound(r) for r in readings] + [_inbound(readings[0]), Inbound(topic_for("hub-1", "reading"), b"{")]
    outcome = Ingest(sessions, IngestMetrics(registry)).process(batch)
    assert (outcome.stored, outcome.duplicates, outcome.rejected, outcome.bulk) == (300, 1, 1, True)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Reading)) == 300
        assert session.scalar(select(func.count()).select_from(DeadLetter)) == 1
    assert registry.get_sample_value("telecare_ingest_accepted_total", {"type": "reading"}) == 300
    assert registry.get_sample_value("telecare_ingest_batches_total", {"mode": "bulk"}) == 1


@pytest.mark.parametrize("fresh_count", [2, COPY_FROM_ROWS], ids=["few rows", "rows enough to copy"])
def test_a_constraint_failure_falls_back_to_one_by_one(database_url: str, fresh_count: int) -> None:
    sessions = _sessions(database_url)
    already = _reading(95)
    Ingest(sessions, IngestMetrics(CollectorRegistry())).process([_inbound(already)])
    registry = CollectorRegistry()
    fresh = [_reading(96 + n % 3) for n in range(fresh_count)]
    outcome = BlindIngest(sessions, IngestMetrics(registry)).process(
        [_inbound(fresh[0]), _inbound(already)] + [_inbound(message) for message in fresh[1:]])
    assert (outcome.stored, outcome.duplicates, outcome.bulk) == (fresh_count, 1, False)
    with sessions() as session:
        stored = set(session.scalars(select(InboundMessage.id)))
    assert stored == {str(already.id)} | {str(message.id) for message in fresh}
    assert registry.get_sample_value("telecare_ingest_duplicates_total") == 1
    assert registry.get_sample_value("telecare_ingest_batches_total", {"mode": "per_message"}) == 1


def test_a_batch_from_many_homes_finds_its_hubs_devices_and_stored_copies(database_url: str) -> None:
    """The batch's hubs, devices and already stored ids are read in one query each (`ingest.among`: an
    array on PostgreSQL), whatever their count: every home's reading is stored, each copy of an earlier
    batch's message is a duplicate, and an unknown hub's and an unpaired device's are refused."""
    sessions = _sessions(database_url)
    homes = [f"hub-{n:03d}" for n in range(2, 42)]
    with sessions() as session, session.begin():
        for hub in homes:
            enrol_home(session, name=hub, address="", hub_id=hub, devices=[DeviceRecord("oximeter-1", "oximeter")])

    def reading(hub: str, device: str = "oximeter-1") -> ReadingMessage:
        return ReadingMessage(hub_id=hub, device_id=device, source_ts=datetime.now(UTC), metric=Metric.SPO2,
                              value=97, unit="%")

    def inbound(message: ReadingMessage) -> Inbound:
        return Inbound(topic_for(message.hub_id, "reading"), encode(message))

    earlier = [reading(hub) for hub in homes[:10]]
    Ingest(sessions, IngestMetrics(CollectorRegistry())).process([inbound(message) for message in earlier])
    fresh = [reading(hub) for hub in homes]
    registry = CollectorRegistry()
    outcome = Ingest(sessions, IngestMetrics(registry)).process(
        [inbound(message) for message in fresh + earlier] + [inbound(reading("hub-999")),
                                                             inbound(reading(homes[0], "oximeter-9"))])
    assert (outcome.stored, outcome.duplicates, outcome.rejected, outcome.bulk) == (len(homes), 10, 2, True)
    assert dict(outcome.rejected_by_reason) == {"unknown_hub": 1, "unknown_device": 1}
    with sessions() as session:
        stored = set(session.scalars(select(InboundMessage.id)))
    assert stored == {str(message.id) for message in fresh + earlier}
