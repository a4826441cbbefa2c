"""What the centre acknowledges to hubs: every message of a committed batch gets a receipt (stored
now, already stored, or refused with its reason) unless its hub or its id cannot be known; the
receipts become one `Ack` per hub, at most `MAX_ACK_ENTRIES` ids each. A hub's own events (device
id = hub id) are stored, not refused as an unknown device."""

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from centre_app import schema
from monitoring_centre.acks import acks_for
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.ingest import Inbound, Ingest, IngestMetrics, Receipt
from monitoring_centre.storage import Event, make_engine
from telecare_protocol import DeviceEvent, DeviceType, EventCode, Refusal, decode_ack, encode
from telecare_protocol import Reading as ReadingMessage
from telecare_protocol.ack import MAX_ACK_ENTRIES
from telecare_protocol.codes import Metric
from telecare_protocol.topics import ack_topic, status_topic, topic_for

NOW = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'centre.db'}")
    schema.upgrade(engine)
    made = sessionmaker(engine, expire_on_commit=False)
    with made() as session, session.begin():
        for hub in ("hub-1", "hub-2"):
            enrol_home(session, name=hub, address="", hub_id=hub, devices=[DeviceRecord(f"oximeter-{hub}", "oximeter")])
    return made


def reading(hub: str = "hub-1", device: str | None = None) -> ReadingMessage:
    return ReadingMessage(hub_id=hub, device_id=device or f"oximeter-{hub}", source_ts=datetime.now(UTC),
                          metric=Metric.SPO2, value=96.0, unit="%")


def inbound(message: ReadingMessage | DeviceEvent) -> Inbound:
    return Inbound(topic_for(message.hub_id, message.type), encode(message))


def test_every_message_gets_a_receipt_stored_duplicate_or_refused(sessions: sessionmaker[Session]) -> None:
    ingest = Ingest(sessions, IngestMetrics(CollectorRegistry()))
    earlier = reading()
    ingest.process([inbound(earlier)])
    fresh, stranger, other_hub = reading(), reading(device="oximeter-9"), reading("hub-2")
    batch = [inbound(fresh), inbound(fresh), inbound(earlier), inbound(stranger), inbound(other_hub),
             Inbound(topic_for("hub-1", "reading"), b"{not json"),
             Inbound(topic_for("hub-1", "reading"), b'{"id": "%s", "version": 9}' % str(uuid.uuid4()).encode()),
             Inbound("somewhere/else", encode(reading())),
             Inbound(status_topic("hub-1"), b"online")]
    outcome = ingest.process(batch)
    unreadable_id = str(uuid.UUID(batch[6].payload.decode().split('"')[3]))
    assert outcome.receipts == [
        Receipt("hub-1", str(fresh.id)), Receipt("hub-1", str(fresh.id)), Receipt("hub-1", str(earlier.id)),
        Receipt("hub-1", str(stranger.id), "unknown_device"), Receipt("hub-2", str(other_hub.id)),
        Receipt("hub-1", unreadable_id, "unknown_version")]


def test_a_hubs_own_fault_is_stored_and_acknowledged(sessions: sessionmaker[Session]) -> None:
    fault = DeviceEvent.new(hub_id="hub-1", device_id="hub-1", device_type=DeviceType.COMMUNICATION_LINK,
                            code=EventCode.DEVICE_FAULT, source_ts=NOW, detail={"fault": "alarm_unconfirmed"})
    outcome = Ingest(sessions, IngestMetrics(CollectorRegistry())).process([inbound(fault)])
    assert (outcome.stored, outcome.rejected) == (1, 0)
    assert outcome.receipts == [Receipt("hub-1", str(fault.id))]
    with sessions() as session:
        assert session.scalar(select(Event.device_id).where(Event.message_id == str(fault.id))) == "hub-1"


def test_a_reading_about_the_hub_itself_is_still_an_unknown_device(sessions: sessionmaker[Session]) -> None:
    odd = reading(device="hub-1")
    outcome = Ingest(sessions, IngestMetrics(CollectorRegistry())).process([inbound(odd)])
    assert outcome.receipts == [Receipt("hub-1", str(odd.id), "unknown_device")]


def test_receipts_become_one_ack_per_hub_on_its_own_topic() -> None:
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    acks = acks_for([Receipt("hub-1", a), Receipt("hub-2", b), Receipt("hub-1", c, "impossible_value")], NOW)
    assert [(ack.topic, ack.entries) for ack in acks] == [(ack_topic("hub-1"), 2), (ack_topic("hub-2"), 1)]
    first = decode_ack(acks[0].payload)
    assert (first.hub_id, [str(i) for i in first.stored], first.refused, first.centre_ts) == (
        "hub-1", [a], (Refusal(id=uuid.UUID(c), reason="impossible_value"),), NOW)


def test_a_big_batch_is_split_into_acks_that_each_fit() -> None:
    receipts = [Receipt("hub-1", str(uuid.uuid4())) for _ in range(2 * MAX_ACK_ENTRIES + 1)]
    acks = acks_for(receipts, NOW)
    assert [ack.entries for ack in acks] == [MAX_ACK_ENTRIES, MAX_ACK_ENTRIES, 1]
    assert [str(i) for ack in acks for i in decode_ack(ack.payload).stored] == [r.message_id for r in receipts]


def test_a_receipt_no_ack_can_carry_is_left_out_not_raised() -> None:
    good = Receipt("hub-1", str(uuid.uuid4()))
    acks = acks_for([Receipt("Hub One", str(uuid.uuid4())), good], NOW)
    assert [ack.topic for ack in acks] == [ack_topic("hub-1")]
