"""A hub cannot make the broker keep anything: retained messages are refused (Mosquitto with
`retain_available false`) or never kept (the embedded demo broker), the hub's status and last
will included, and the last will still reaches a centre whose persistent session was away.

Absence is checked without waiting: a broker sends a new subscriber what it has retained right
after the SUBACK, so once a message published after the subscription has arrived, anything
retained would have arrived before it."""

import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from monitoring_centre.broker import RETAIN_AVAILABLE, Broker, BrokerAccount, EmbeddedBroker, Mosquitto
from telecare_protocol.topics import ROOT, status_topic, topic_for
from tests.support.helpers import TIMEOUT, Inbox, MQTTv311, close, mqtt_client, publish, state, subscribe
from tests.support.waiting import wait_for

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "centre" / "mosquitto.conf"


def nothing_retained(broker: Broker, accounts: dict[str, BrokerAccount], *retained: bytes) -> None:
    """A new subscriber to every hub topic gets none of `retained`: it gets hub-2's message published
    after its subscription, and nothing before it."""
    inbox = Inbox()
    protocol = mqtt.MQTTv5 if broker.mqtt5 else MQTTv311
    observer = mqtt_client(broker, accounts["centre"], protocol=protocol, on_message=inbox.on_message)
    subscribe(observer, f"{ROOT}/#")
    other = mqtt_client(broker, accounts["hub-2"], protocol=protocol)
    marker = f"after the subscription {time.monotonic_ns()}".encode()
    publish(other, topic_for("hub-2", "reading"), marker)
    assert inbox.wait_for_payload(marker)
    assert not set(retained) & set(inbox.payloads()), inbox.messages
    close(other)
    close(observer)


def connect_with_will(broker: Broker, account: BrokerAccount, *, retain: bool, client_id: str) -> mqtt.Client:
    """A hub-like client whose last will is its status "offline" (as `hub_agent.uplink` sets it)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5 if broker.mqtt5 else mqtt.MQTTv311)
    client.username_pw_set(account.username, account.password)
    client.will_set(status_topic(account.username), "offline", qos=1, retain=retain)
    answered: list[object] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: answered.append(reason)
    client.connect(broker.host, broker.port, keepalive=30)
    client.loop_start()
    client.user_data_set(wait_for(lambda: answered, TIMEOUT, "the CONNACK")[0])
    return client


def die(client: mqtt.Client) -> None:
    """The connection drops without a DISCONNECT (a crash, a cut cable): the broker publishes the will."""
    client.loop_stop()
    sock = client.socket()
    assert sock is not None
    sock.close()


def test_mosquitto_disconnects_a_hub_that_publishes_retained_and_keeps_nothing(
        mosquitto: Mosquitto, broker_accounts: dict[str, BrokerAccount]) -> None:
    for topic, payload in ((f"{ROOT}/hub-1/junk/1", b"x" * 60_000), (status_topic("hub-1"), b"online")):
        hub = mqtt_client(mosquitto, broker_accounts["hub-1"])
        hub.publish(topic, payload, qos=1, retain=True)
        assert state(hub).disconnected.wait(TIMEOUT), f"a retained publish on {topic} was taken"
        hub.loop_stop()
    nothing_retained(mosquitto, broker_accounts, b"x" * 60_000, b"online")


def test_mosquitto_refuses_a_hub_whose_last_will_is_retained(
        mosquitto: Mosquitto, broker_accounts: dict[str, BrokerAccount]) -> None:
    hub = connect_with_will(mosquitto, broker_accounts["hub-1"], retain=True, client_id="hub-agent-hub-1")
    try:
        reason = hub.user_data_get()
        assert getattr(reason, "is_failure", False) and "Retain not supported" in str(reason), reason
    finally:
        hub.loop_stop()


@pytest.mark.parametrize("which", ["mosquitto", "embedded_broker"])
def test_the_last_will_is_not_retained_yet_reaches_a_centre_that_was_away(
        which: str, request: pytest.FixtureRequest, broker_accounts: dict[str, BrokerAccount]) -> None:
    broker: Broker = request.getfixturevalue(which)
    protocol = mqtt.MQTTv5 if broker.mqtt5 else MQTTv311
    # The centre's persistent session subscribes, then goes away (its session stays at the broker).
    centre = mqtt_client(broker, broker_accounts["centre"], "centre-alarms", protocol, clean_start=False,
                         session_expiry=3600)
    subscribe(centre, f"{ROOT}/+/status")
    close(centre)
    hub = connect_with_will(broker, broker_accounts["hub-1"], retain=False, client_id="hub-agent-hub-1")
    assert not getattr(hub.user_data_get(), "is_failure", True)
    die(hub)
    inbox = Inbox()
    back = mqtt_client(broker, broker_accounts["centre"], "centre-alarms", protocol, clean_start=False,
                       session_expiry=3600, on_message=inbox.on_message)
    try:
        assert inbox.wait_for(lambda got: (status_topic("hub-1"), b"offline") in got), "the will did not wait"
    finally:
        close(back)
    nothing_retained(broker, broker_accounts, b"offline")


def test_the_embedded_broker_keeps_no_retained_message(
        embedded_broker: EmbeddedBroker, broker_accounts: dict[str, BrokerAccount]) -> None:
    hub = mqtt_client(embedded_broker, broker_accounts["hub-1"], protocol=MQTTv311)
    hub.publish(f"{ROOT}/hub-1/junk/2", b"retained junk", qos=1, retain=True).wait_for_publish(TIMEOUT)
    close(hub)
    nothing_retained(embedded_broker, broker_accounts, b"retained junk")


def test_the_generated_and_the_shipped_configuration_refuse_retained_messages(tmp_path: Path) -> None:
    assert RETAIN_AVAILABLE == "retain_available false"
    assert RETAIN_AVAILABLE in SHIPPED.read_text().splitlines()
    generated = Mosquitto(tmp_path, [BrokerAccount.generate("centre", "centre")], executable="mosquitto")
    assert RETAIN_AVAILABLE in generated.config_text().splitlines()
