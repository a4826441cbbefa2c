"""Pendant press to the hub's "alarm received" signal: how soon the person can be told help is coming.

Starts a real Mosquitto, a centre (SQLite, WAL, synchronous=FULL) and a hub agent whose uplink
keeps its outbox on disk (synchronous=FULL, as on a Pi), then presses the pendant `--presses`
times, one at a time, unloaded: each press enters the hub as the BTHome bytes the pendant
sends, and the clock stops when the agent's `on_alarm` callback gets `AlarmSignal.RECEIVED`
(the centre has committed the press and its end-to-end ack is back at the hub).

Baseline, in the same run and through the same broker: a plain MQTT round trip of the same
shape, QoS 1 both ways: a client with the hub's account publishes, a client with the centre's
account answers on the hub's ack topic at once, and the clock stops when the answer arrives.
Prints a final JSON line with the ratio of the two.

    .venv/bin/python bench/alarm_received.py [--presses 200]
"""

import argparse
import json
import secrets
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import free_port, percentiles

from centre_app.centre import Centre, CentreThread
from centre_app.settings import CentreSettings
from firmware_stubs import pendant
from firmware_stubs.bthome import BTHOME_SERVICE_UUID, Transmitter, mac_bytes
from hub_agent.agent import HubAgent
from hub_agent.confirmation import AlarmNotice, AlarmSignal
from hub_agent.devices import DeviceKind, PairedDevice
from hub_agent.radio import Advertisement
from hub_agent.uplink import Uplink
from monitoring_centre.broker import BrokerAccount, Mosquitto
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from telecare_protocol.topics import ack_topic, topic_for

HUB = "bench-hub"
PENDANT = PairedDevice("pendant-1", "B0:00:00:00:00:01", DeviceKind.PENDANT)






def _client(broker: Mosquitto, account: BrokerAccount, client_id: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(account.username, account.password)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def mqtt_round_trip(broker: Mosquitto, hub: BrokerAccount, centre: BrokerAccount, n: int) -> list[float]:
    """Hub publishes (QoS 1), centre answers on the hub's ack topic (QoS 1): milliseconds per round trip."""
    answered: dict[bytes, float] = {}
    arrived = threading.Condition()
    responder = _client(broker, centre, "bench-rt-centre")

    def answer(client: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        client.publish(ack_topic(HUB), message.payload, qos=1)

    responder.on_message = answer
    responder.subscribe(topic_for(HUB, "event"), qos=1)
    asker = _client(broker, hub, "bench-rt-hub")

    def on_answer(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with arrived:
            answered[bytes(message.payload)] = time.perf_counter()
            arrived.notify_all()

    asker.on_message = on_answer
    asker.subscribe(ack_topic(HUB), qos=1)
    time.sleep(0.5)
    samples = []
    for k in range(n):
        token = f"round-trip-{k}-{secrets.token_hex(4)}".encode()
        start = time.perf_counter()
        asker.publish(topic_for(HUB, "event"), token, qos=1)
        with arrived:
            if not arrived.wait_for(lambda: token in answered, timeout=5):  # noqa: B023 (waited on here)
                raise SystemExit(f"round trip {k} never came back")
        samples.append((answered[token] - start) * 1000)
    for client in (asker, responder):
        client.disconnect()
        client.loop_stop()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presses", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        hub_account = BrokerAccount(HUB, secrets.token_urlsafe(16), "hub")
        centre_account = BrokerAccount("centre", secrets.token_urlsafe(16), "centre")
        with Mosquitto(Path(tmp) / "broker", [hub_account, centre_account]) as broker:
            centre = Centre(CentreSettings(
                database_url=f"sqlite:///{tmp}/centre.db", jwt_secret=secrets.token_urlsafe(48),
                mqtt_host=broker.host, mqtt_port=broker.port, mqtt_password=centre_account.password,
                http_port=free_port()))
            with centre.sessions() as session, session.begin():
                enrol_home(session, name="Bench Person", address="", hub_id=HUB,
                           devices=[DeviceRecord(PENDANT.device_id, "pendant")])
            with CentreThread(centre):
                baseline = mqtt_round_trip(broker, hub_account, centre_account, args.presses)
                received: dict[str, float] = {}
                signalled = threading.Condition()

                def on_alarm(notice: AlarmNotice) -> None:
                    if notice.signal is AlarmSignal.RECEIVED:
                        with signalled:
                            received[str(notice.alarm.id)] = time.perf_counter()
                            signalled.notify_all()

                uplink = Uplink(hub_id=HUB, password=hub_account.password, host=broker.host, port=broker.port,
                                outbox_path=Path(tmp) / "hub" / "outbox.db")
                agent = HubAgent(HUB, [PENDANT], uplink, on_alarm=on_alarm)
                uplink.start()
                uplink.connected.wait(10)
                device = pendant.Pendant(Transmitter(mac_bytes(PENDANT.address)))
                samples = []
                for press in range(args.presses):
                    device, frame = pendant.help_press(device, now=1000.0 * press)
                    advert = Advertisement(address=PENDANT.address, service_data={BTHOME_SERVICE_UUID: frame},
                                           rssi=-60, received_at=datetime.now(UTC), monotonic=time.monotonic())
                    start = time.perf_counter()
                    messages = agent.handle(advert)  # the press, and on the first frame the battery state
                    for message in messages:
                        agent.send(message)
                    [alarm_id] = [str(m.id) for m in messages if m.type == "event" and m.code == "manual_alarm"]
                    with signalled:
                        if not signalled.wait_for(lambda: alarm_id in received, timeout=10):  # noqa: B023
                            raise SystemExit(f"press {press} was never confirmed")
                    samples.append((received[alarm_id] - start) * 1000)
                uplink.stop()
    path = percentiles(samples)
    base = percentiles(baseline)
    print(f"press→alarm received ms: {path}")
    print(f"MQTT round trip      ms: {base}")
    print(json.dumps({"presses": len(samples), "press_to_received_ms_p50": path["p50"],
                      "press_to_received_ms_p99": path["p99"], "press_to_received_ms_max": path["max"],
                      "mqtt_round_trip_ms_p50": base["p50"], "mqtt_round_trip_ms_p99": base["p99"],
                      "ratio_p50": round(path["p50"] / base["p50"], 2),
                      "ratio_p99": round(path["p99"] / base["p99"], 2)}))


if __name__ == "__main__":
    main()
