"""Pendant press to operator API: latency of the whole alarm path.

Starts a real Mosquitto, a centre (SQLite, WAL, synchronous=FULL) and a hub agent, then
presses the pendant 100 times: each press enters the hub as the BTHome bytes the pendant
sends, and the clock stops when `GET /api/v1/alerts` shows it (the open alert's repeat
count goes up). Baseline, in the same run: a bare MQTT round trip from the hub's account
to a plain paho subscriber. Prints a final JSON line.

    .venv/bin/python bench/alarm_latency.py [--presses 100]
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

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import free_port, percentiles

from centre_app.auth import create_user
from centre_app.centre import Centre, CentreThread
from centre_app.settings import CentreSettings
from firmware_stubs import pendant
from firmware_stubs.bthome import BTHOME_SERVICE_UUID, Transmitter, mac_bytes
from hub_agent.agent import HubAgent
from hub_agent.devices import DeviceKind, PairedDevice
from hub_agent.radio import Advertisement
from hub_agent.uplink import Uplink
from monitoring_centre.broker import BrokerAccount, Mosquitto
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from telecare_protocol import Heartbeat, Power, encode
from telecare_protocol.topics import topic_for

HUB = "bench-hub"
PENDANT = PairedDevice("pendant-1", "B0:00:00:00:00:01", DeviceKind.PENDANT)






def mqtt_baseline(broker: Mosquitto, hub: BrokerAccount, reader: BrokerAccount, n: int) -> list[float]:
    """Publish→deliver latency through the same broker, with nothing behind the subscriber."""
    received: dict[str, float] = {}
    arrived = threading.Condition()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-baseline", protocol=mqtt.MQTTv5)
    sub.username_pw_set(reader.username, reader.password)

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with arrived:
            received[json.loads(message.payload)["id"]] = time.perf_counter()
            arrived.notify_all()

    sub.on_message = on_message
    sub.connect(broker.host, broker.port)
    sub.subscribe(topic_for(HUB, "heartbeat"), qos=1)
    sub.loop_start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-baseline-pub", protocol=mqtt.MQTTv5)
    pub.username_pw_set(hub.username, hub.password)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    time.sleep(0.5)
    samples = []
    for _ in range(n):
        beat = Heartbeat(hub_id=HUB, device_id=HUB, source_ts=datetime.now(UTC), power=Power.MAINS, uptime_s=1,
                         interval_s=60)
        start = time.perf_counter()
        pub.publish(topic_for(HUB, "heartbeat"), encode(beat), qos=1)
        beat_id = str(beat.id)
        with arrived:
            arrived.wait_for(lambda: beat_id in received, timeout=5)  # noqa: B023 (waited on before the next loop)
        samples.append((received[beat_id] - start) * 1000)
    for client in (pub, sub):
        client.disconnect()
        client.loop_stop()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presses", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        accounts = [BrokerAccount(HUB, secrets.token_urlsafe(16), "hub"),
                    BrokerAccount("centre", secrets.token_urlsafe(16), "centre")]
        with Mosquitto(Path(tmp) / "broker", accounts) as broker:
            settings = CentreSettings(
                database_url=f"sqlite:///{tmp}/centre.db", jwt_secret=secrets.token_urlsafe(48),
                mqtt_host=broker.host, mqtt_port=broker.port, mqtt_password=accounts[1].password,
                http_port=free_port())
            centre = Centre(settings)
            password = secrets.token_urlsafe(16)
            with centre.sessions() as session, session.begin():
                enrol_home(session, name="Bench Person", address="", hub_id=HUB,
                           devices=[DeviceRecord(PENDANT.device_id, "pendant")])
                create_user(session, "bench", password, "operator")
            with CentreThread(centre):
                baseline = mqtt_baseline(broker, accounts[0], accounts[1], args.presses)
                uplink = Uplink(hub_id=HUB, password=accounts[0].password, host=broker.host, port=broker.port)
                agent = HubAgent(HUB, [PENDANT], uplink)
                uplink.start()
                uplink.connected.wait(10)
                api = httpx.Client(base_url=centre.url)
                bearer = api.post("/api/v1/auth/token", data={"username": "bench", "password": password})
                api.headers["Authorization"] = f"Bearer {bearer.json()['access_token']}"
                device = pendant.Pendant(Transmitter(mac_bytes(PENDANT.address)))
                samples = []
                for press in range(args.presses):
                    device, frame = pendant.help_press(device, now=1000.0 * press)
                    advert = Advertisement(address=PENDANT.address, service_data={BTHOME_SERVICE_UUID: frame},
                                           rssi=-60, received_at=datetime.now(UTC), monotonic=time.monotonic())
                    start = time.perf_counter()
                    for message in agent.handle(advert):
                        agent.uplink.send(message)
                    while True:
                        alerts = api.get("/api/v1/alerts", params={"status": "active"}).json()
                        if alerts and alerts[0]["repeat_count"] == press:
                            break
                        if time.perf_counter() - start > 10:
                            raise SystemExit(f"press {press} never reached the API")
                        time.sleep(0.001)
                    samples.append((time.perf_counter() - start) * 1000)
                agent.uplink.stop()
    path = percentiles(samples)
    base = percentiles(baseline)
    print(f"press→API   ms: {path}")
    print(f"MQTT only   ms: {base}")
    print(json.dumps({"presses": len(samples), "press_to_api_ms_p50": path["p50"],
                      "press_to_api_ms_p99": path["p99"], "press_to_api_ms_max": path["max"],
                      "mqtt_baseline_ms_p50": base["p50"], "mqtt_baseline_ms_p99": base["p99"],
                      "ratio_p50_vs_mqtt": round(path["p50"] / base["p50"], 2)}))


if __name__ == "__main__":
    main()
