"""Mosquitto refuses a packet larger than the protocol's largest message plus MQTT headers
(`max_packet_size`), before holding it; a payload just over the protocol's limit still gets
through to ingest, which dead-letters it as `too_large` with its evidence."""

from pathlib import Path

from monitoring_centre.broker import MAX_PACKET_BYTES, BrokerAccount, Mosquitto
from telecare_protocol.codec import MAX_PAYLOAD_BYTES
from telecare_protocol.topics import ROOT, topic_for
from tests.support.helpers import Inbox, close, mqtt_client, publish, state, subscribe

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "centre" / "mosquitto.conf"


def test_a_packet_over_the_limit_is_refused_and_one_under_it_delivered(
        mosquitto: Mosquitto, broker_accounts: dict[str, BrokerAccount]) -> None:
    inbox = Inbox()
    centre = mqtt_client(mosquitto, broker_accounts["centre"], on_message=inbox.on_message)
    subscribe(centre, f"{ROOT}/#")
    topic = topic_for("hub-1", "reading")
    hub = mqtt_client(mosquitto, broker_accounts["hub-1"])
    just_over_the_protocol = b" " * (MAX_PAYLOAD_BYTES + 1)
    publish(hub, topic, just_over_the_protocol)
    assert inbox.wait_for_payload(just_over_the_protocol)  # ingest's to refuse, with the evidence kept

    flood = b" " * MAX_PACKET_BYTES
    hub.publish(topic, flood, qos=1)
    assert state(hub).disconnected.wait(10), "the broker took a packet over max_packet_size"
    hub.loop_stop()
    other = mqtt_client(mosquitto, broker_accounts["hub-2"])
    publish(other, topic_for("hub-2", "reading"), b"after the flood")
    assert inbox.wait_for_payload(b"after the flood")
    assert flood not in inbox.payloads()
    close(other)
    close(centre)


def test_the_shipped_configuration_sets_the_same_limit() -> None:
    lines = SHIPPED.read_text().splitlines()
    assert f"max_packet_size {MAX_PACKET_BYTES}" in lines
