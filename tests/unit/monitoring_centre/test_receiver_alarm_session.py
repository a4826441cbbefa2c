"""The centre's receiver keeps three persistent sessions, one of them for the alarms topic only, and
ingest takes a call for help on `alarms` or (from a hub of the earlier layout) on `events`, and
refuses anything else on `alarms` as `wrong_topic`. No broker: paho's callbacks are called directly."""

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from centre_app import schema
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.ingest import Inbound, Ingest, IngestMetrics, Receipt
from monitoring_centre.receiver import ALARM_TOPIC, DATA, EVENTS, Receiver
from monitoring_centre.storage import DeadLetter, Event, make_engine
from telecare_protocol import DeviceEvent, DeviceType, EventCode, encode
from telecare_protocol.topics import alarm_topic, topic_for

NOW = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'centre.db'}")
    schema.upgrade(engine)
    made = sessionmaker(engine, expire_on_commit=False)
    with made() as session, session.begin():
        enrol_home(session, name="home", address="", hub_id="hub-1",
                   devices=[DeviceRecord("pendant-1", "pendant"), DeviceRecord("door-1", "door")])
    return made


def event(code: EventCode, device: str = "pendant-1") -> DeviceEvent:
    kind = DeviceType.DOOR_SENSOR if device.startswith("door") else DeviceType.PERSONAL_TRIGGER
    return DeviceEvent.new(hub_id="hub-1", device_id=device, device_type=kind, code=code, source_ts=NOW)


@dataclass
class Message:
    topic: str
    payload: bytes
    mid: int = 1
    qos: int = 1


class Acks:
    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, mid: int, qos: int) -> None:
        self.acked.append(mid)


def receiver(sessions: sessionmaker[Session]) -> Receiver:
    return Receiver(Ingest(sessions, IngestMetrics(CollectorRegistry())), host="127.0.0.1", port=1,
                    username="centre", password="not-used-here", client_id="centre")


def test_with_several_workers_every_worker_takes_every_call_for_help(sessions: sessionmaker[Session]) -> None:
    """Bulk and events are shared between the workers (the broker gives each message to one); the alarms
    topic is not, so a call for help never waits in the session of a worker that has just died."""
    worker = Receiver(Ingest(sessions, IngestMetrics(CollectorRegistry())), host="127.0.0.1", port=1,
                      username="centre", password="not-used-here", client_id="centre-w1", shared_subscriptions=True)
    assert {name: link.subscriptions for name, link in worker._links.items()} == {
        (0, DATA): ("$share/telecare-centre-data/telecare/v1/hubs/+/+",),
        (0, EVENTS): ("$share/telecare-centre-alarms/telecare/v1/hubs/+/events",
                      "$share/telecare-centre-alarms/telecare/v1/hubs/+/status"),
        (0, ALARM_TOPIC): ("telecare/v1/hubs/+/alarms",),
    }


def test_three_persistent_sessions_one_for_the_alarms_topic_only(sessions: sessionmaker[Session]) -> None:
    centre = receiver(sessions)
    links = centre._links
    assert {name: (link.client._client_id, link.subscriptions) for name, link in links.items()} == {
        (0, DATA): (b"centre", ("telecare/v1/hubs/+/+",)),
        (0, EVENTS): (b"centre-alarms", ("telecare/v1/hubs/+/events", "telecare/v1/hubs/+/status")),
        (0, ALARM_TOPIC): (b"centre-alarm-topic", ("telecare/v1/hubs/+/alarms",)),
    }
    subscribed: list[Any] = []
    link = links[0, ALARM_TOPIC]
    client: Any = link.client
    client.subscribe = lambda topics, *args, **kwargs: subscribed.append(topics)
    centre._on_connect(link)(link.client, None, None, None, None)
    assert subscribed == [[("telecare/v1/hubs/+/alarms", 1)]]


def test_the_alarm_session_feeds_the_alarm_lane_and_the_data_session_leaves_its_copy(
        sessions: sessionmaker[Session]) -> None:
    centre = receiver(sessions)
    press, door = event(EventCode.MANUAL_ALARM), event(EventCode.DOOR_OPENED, "door-1")
    data, alarm_acks = Acks(), Acks()

    def deliver(session: str, client: Acks, message: Message) -> None:
        on_message: Any = centre._on_message(centre._links[0, session])  # paho's callback, given stand-ins
        on_message(client, None, message)

    deliver(DATA, data, Message(alarm_topic("hub-1"), encode(press), mid=7))
    assert data.acked == [7] and centre.queue_depth == 0  # acknowledged unstored: the alarm session stores it
    deliver(EVENTS, alarm_acks, Message(topic_for("hub-1", "event"), encode(door)))
    deliver(ALARM_TOPIC, alarm_acks, Message(alarm_topic("hub-1"), encode(press)))
    assert centre._alarms.get_nowait().lane == ALARM_TOPIC and centre._events.get_nowait().lane == EVENTS
    assert alarm_acks.acked == []  # acknowledged only after the commit


def test_a_press_on_either_topic_is_stored_anything_else_on_alarms_is_wrong_topic(
        sessions: sessionmaker[Session]) -> None:
    ingest = Ingest(sessions, IngestMetrics(CollectorRegistry()))
    new, old, door = event(EventCode.MANUAL_ALARM), event(EventCode.FALL_DETECTED), event(EventCode.DOOR_OPENED,
                                                                                          "door-1")
    outcome = ingest.process([Inbound(alarm_topic("hub-1"), encode(new)),
                              Inbound(topic_for("hub-1", "event"), encode(old)),
                              Inbound(alarm_topic("hub-1"), encode(door))])
    assert outcome.receipts == [Receipt("hub-1", str(new.id)), Receipt("hub-1", str(old.id)),
                                Receipt("hub-1", str(door.id), "wrong_topic")]
    assert outcome.rejected_by_reason == {"wrong_topic": 1}
    with sessions() as session:
        assert set(session.scalars(select(Event.code))) == {"manual_alarm", "fall_detected"}
        assert session.scalar(select(func.count()).select_from(DeadLetter).where(
            DeadLetter.reason == "wrong_topic")) == 1
