"""A press on the alarms topic overtakes a burst of events queued at the broker for the centre.

Real Mosquitto (its in-flight limit of 20 per session is what holds the burst back), a real
receiver and ingest on SQLite. The centre's sessions exist, the centre is down, a hub publishes
many door events and then one press; the centre comes back. The press must be committed before
the burst is drained: the order of commits is asserted, never a time."""

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker

from centre_app import schema
from monitoring_centre.broker import BrokerAccount
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.ingest import Inbound, Ingest, IngestMetrics, Outcome
from monitoring_centre.receiver import Receiver
from monitoring_centre.storage import make_engine
from telecare_protocol import DeviceEvent, DeviceType, EventCode, encode
from telecare_protocol.topics import topic_for
from tests.support.helpers import mqtt_client
from tests.support.waiting import wait_for

BURST = 400


class Recording(Ingest):
    """Ingest that notes the message ids of each committed batch, in commit order, and holds its first
    batch until every session of the receiver is connected (so the test does not race the connects)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        super().__init__(sessions, IngestMetrics(CollectorRegistry()))
        self.committed: list[str] = []
        self.all_connected: threading.Event | None = None
        self._lock = threading.Lock()

    def process(self, batch: Sequence[Inbound]) -> Outcome:
        if self.all_connected is not None:
            self.all_connected.wait(30)
        outcome = super().process(batch)
        with self._lock:
            self.committed += [receipt.message_id for receipt in outcome.receipts if receipt.refused is None]
        return outcome


def centre(ingest: Recording, mosquitto: Any, account: BrokerAccount) -> Receiver:
    receiver = Receiver(ingest, host=mosquitto.host, port=mosquitto.port, username=account.username,
                        password=account.password, client_id="centre-alarm-topic-test", queue_size=50, max_batch=20)
    ingest.all_connected = receiver.connected
    return receiver


def test_a_press_on_the_alarms_topic_is_stored_before_a_queued_burst_is_drained(
        tmp_path: Path, mosquitto: Any, broker_accounts: dict[str, BrokerAccount]) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'centre.db'}")
    schema.upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session, session.begin():
        enrol_home(session, name="home", address="", hub_id="hub-1",
                   devices=[DeviceRecord("pendant-1", "pendant"), DeviceRecord("door-1", "door")])
    ingest = Recording(sessions)
    first = centre(ingest, mosquitto, broker_accounts["centre"])
    first.start()  # creates the three persistent sessions at the broker
    wait_for(first.connected.is_set, what="the centre's sessions")
    first.stop()

    now = datetime.now(UTC)
    doors = [DeviceEvent.new(hub_id="hub-1", device_id="door-1", device_type=DeviceType.DOOR_SENSOR,
                             code=EventCode.DOOR_OPENED if n % 2 == 0 else EventCode.DOOR_CLOSED, source_ts=now)
             for n in range(BURST)]
    press = DeviceEvent.new(hub_id="hub-1", device_id="pendant-1", device_type=DeviceType.PERSONAL_TRIGGER,
                            code=EventCode.MANUAL_ALARM, source_ts=now)
    hub = mqtt_client(mosquitto, broker_accounts["hub-1"])
    try:
        for door in doors:
            hub.publish(topic_for("hub-1", "event", door.code), encode(door), qos=1)
        hub.publish(topic_for("hub-1", "event", press.code), encode(press), qos=1).wait_for_publish(30)
    finally:
        hub.disconnect()
        hub.loop_stop()
    assert topic_for("hub-1", "event", press.code).endswith("/alarms")

    second = centre(ingest, mosquitto, broker_accounts["centre"])
    second.start()
    try:
        wait_for(lambda: len(ingest.committed) >= BURST + 1, timeout=60, what="the burst and the press stored")
    finally:
        second.stop()
    door_ids = {str(door.id) for door in doors}
    assert set(ingest.committed) == door_ids | {str(press.id)}
    doors_before = ingest.committed.index(str(press.id))
    assert doors_before < BURST // 2, f"the press waited behind {doors_before} of {BURST} door events"
