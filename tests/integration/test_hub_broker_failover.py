"""A hub with two brokers fails over when its broker dies, and nothing is lost or doubled.

Two real Mosquitto brokers; a stand-in for the centre subscribes on both and acknowledges each
message end to end on the broker it came by (as the centre's receiver does on each broker). The
first broker is killed (SIGKILL: its unsent PUBACKs and queued acks die with it) while the hub
streams; the hub moves to the second, resends what has no ack, and every message is acknowledged.
"""

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from paho.mqtt.client import Client, MQTTMessage

from hub_agent.uplink import Uplink
from monitoring_centre.broker import BrokerAccount, Mosquitto, find_mosquitto
from telecare_protocol import Ack, DeviceEvent, DeviceType, EventCode, Metric, Reading, decode, encode
from telecare_protocol.topics import ack_topic
from tests.support.helpers import close, mqtt_client, subscribe
from tests.support.waiting import wait_for

HUB = "hub-1"
NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


class CentreStandIn:
    """Reads every hub topic on one broker and acknowledges each message on that broker."""

    def __init__(self, broker: Mosquitto, account: BrokerAccount, received: Counter[uuid.UUID],
                 lock: threading.Lock) -> None:
        self.received, self.lock = received, lock
        self.client: Client = mqtt_client(broker, account, on_message=self.on_message)
        subscribe(self.client, "telecare/v1/hubs/+/#")

    def on_message(self, client: Client, _userdata: object, message: MQTTMessage) -> None:
        if message.topic.endswith("/status"):
            return
        decoded = decode(bytes(message.payload))
        with self.lock:
            self.received[decoded.id] += 1
        client.publish(ack_topic(decoded.hub_id), encode(Ack(hub_id=decoded.hub_id, stored=(decoded.id,))), qos=1)


@pytest.fixture
def brokers(tmp_path: Path, broker_accounts: dict[str, BrokerAccount]) -> Iterator[tuple[Mosquitto, Mosquitto]]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto); CI installs it")
    with (Mosquitto(tmp_path / "a", broker_accounts.values()) as first,
          Mosquitto(tmp_path / "b", broker_accounts.values()) as second):
        yield first, second


def reading(n: int) -> Reading:
    return Reading(hub_id=HUB, device_id="oximeter-1", metric=Metric.SPO2, value=95.0 + n % 3, unit="%",
                   source_ts=NOW)


def press(n: int) -> DeviceEvent:
    return DeviceEvent.new(hub_id=HUB, device_id="pendant-1", device_type=DeviceType.PERSONAL_TRIGGER,
                           code=EventCode.MANUAL_ALARM, source_ts=NOW, detail={"n": n})


def test_the_hub_fails_over_to_the_next_broker_and_every_message_is_acknowledged(
        tmp_path: Path, brokers: tuple[Mosquitto, Mosquitto], broker_accounts: dict[str, BrokerAccount]) -> None:
    first, second = brokers
    received: Counter[uuid.UUID] = Counter()
    lock = threading.Lock()
    centres = [CentreStandIn(broker, broker_accounts["centre"], received, lock) for broker in brokers]
    uplink = Uplink(hub_id=HUB, password=broker_accounts[HUB].password, host=first.host, port=first.port,
                    fallbacks=[(second.host, second.port)], outbox_path=tmp_path / "outbox.db",
                    reconnect_max_delay_s=2)
    sent = []
    try:
        uplink.start()
        wait_for(uplink.connected.is_set, what="the hub to reach its first broker")
        for n in range(200):
            message = press(n) if n % 50 == 0 else reading(n)
            uplink.send(message)
            sent.append(message.id)
        first.kill()
        for n in range(200, 400):
            message = press(n) if n % 50 == 0 else reading(n)
            uplink.send(message)
            sent.append(message.id)
        wait_for(lambda: uplink.unacked == 0, timeout=60, what="every message to be acknowledged")
        assert (uplink.host, uplink.port) == (second.host, second.port)
        assert uplink.failovers >= 1
        with lock:
            assert set(received) == set(sent)  # nothing lost; a copy is possible, and acknowledged again
    finally:
        uplink.stop()
        for centre in centres:
            close(centre.client)


def test_a_hub_with_one_broker_keeps_trying_it(tmp_path: Path, brokers: tuple[Mosquitto, Mosquitto],
                                               broker_accounts: dict[str, BrokerAccount]) -> None:
    first, _second = brokers
    uplink = Uplink(hub_id=HUB, password=broker_accounts[HUB].password, host=first.host, port=first.port,
                    outbox_path=tmp_path / "outbox.db", reconnect_max_delay_s=1)
    try:
        uplink.start()
        wait_for(uplink.connected.is_set, what="the hub to connect")
        first.kill()
        wait_for(lambda: not uplink.connected.is_set(), what="the hub to notice")
        first.start()
        wait_for(uplink.connected.is_set, timeout=30, what="the hub to come back to its only broker")
        assert uplink.failovers == 0 and uplink.broker_index == 0
    finally:
        uplink.stop()
