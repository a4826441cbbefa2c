"""Ingest under load: many hubs at full speed through a real Mosquitto into a real centre.

    .venv/bin/python bench/ingest.py [--hubs 200] [--per-hub 250] [--publishers 4] [--presses 100]

Starts Mosquitto with an account per hub (as `tests/conftest.py` and `monitoring_centre/broker.py`
do), a centre in this process (SQLite WAL, synchronous=FULL, the detection engine running),
and `--publishers` processes that each own a share of the hubs, one MQTT connection per hub,
and publish their readings (9 in 10) and door events (1 in 10) with QoS 1 as fast as the
broker acknowledges them. Payloads are encoded before the clock starts.

In the same run and on the same stream, a bare paho subscriber (QoS 1, automatic PUBACK,
nothing behind it) receives every message too: the ceiling. Both are timed from the moment
the publishers start to the moment each has the last message (the centre: stored and
committed), so `ratio` = centre rate / ceiling rate. They run concurrently, so when the
publishers are the bottleneck both rates approach the publish rate (ratio near 1: the
centre keeps up); when the centre is the bottleneck its backlog waits at the broker.

During the load, `--presses` help-button presses are published from other hubs' accounts
(one press per hub, at even intervals) on the alarms topic (`--press-topic events`: where a hub
of the earlier layout sends them), and each press's latency runs from its publish to the commit
of the alert it opened (the centre's "alerts changed" notice, after commit and PUBACK). The bare
subscriber times the same presses, publish to arrival: `alarm_ceiling_ms_p50`/`_p99`, and
`alarm_p99_ratio` = centre p99 / bare p99. Prints a final JSON line.
"""

import argparse
import json
import multiprocessing
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from centre_app.centre import Centre, CentreThread
from centre_app.settings import CentreSettings
from monitoring_centre.broker import BrokerAccount, Mosquitto
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.ingest import Inbound, Outcome
from monitoring_centre.storage import Alert
from telecare_protocol import DeviceEvent, DeviceType, EventCode, encode
from telecare_protocol import Reading as ReadingMessage
from telecare_protocol.codes import Metric
from telecare_protocol.topics import SUBSCRIPTION, topic_for


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hub_name(i: int) -> str:
    return f"bench-{i:04d}"


def publisher(host: str, port: int, hubs: list[tuple[str, str]], per_hub: int, start: Any, done: Any) -> None:
    """One publishing process: a connection per hub, payloads ready before `start`, QoS 1 at full speed."""
    clients = []
    acked = [0]
    lock = threading.Lock()

    def on_publish(_c: mqtt.Client, _u: object, _mid: int, _rc: object, _p: object) -> None:
        with lock:
            acked[0] += 1

    work: list[tuple[mqtt.Client, str, bytes]] = []
    for hub, password in hubs:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{hub}", protocol=mqtt.MQTTv5)
        client.username_pw_set(hub, password)
        client.max_inflight_messages_set(200)
        client.max_queued_messages_set(0)
        client.on_publish = on_publish
        client.connect(host, port)
        client.loop_start()
        clients.append(client)
    for n in range(per_hub):
        for client, (hub, _password) in zip(clients, hubs, strict=True):
            now = datetime.now(UTC)
            message: ReadingMessage | DeviceEvent
            if n % 10 == 9:
                message = DeviceEvent.new(hub_id=hub, device_id="door-1", device_type=DeviceType.DOOR_SENSOR,
                                          code=EventCode.DOOR_OPENED if n % 20 == 9 else EventCode.DOOR_CLOSED,
                                          source_ts=now)
            else:
                message = ReadingMessage(hub_id=hub, device_id="oximeter-1", source_ts=now, metric=Metric.SPO2,
                                         value=float(94 + n % 5), unit="%")
            work.append((client, topic_for(hub, message.type), encode(message)))
    start.wait()
    for client, topic, payload in work:
        client.publish(topic, payload, qos=1)
    while True:
        with lock:
            if acked[0] >= len(work):
                break
        time.sleep(0.01)
    for client in clients:
        client.disconnect()
        client.loop_stop()
    done.set()


class Ceiling:
    """A bare subscriber on the centre's subscription: what a consumer with nothing behind it gets."""

    def __init__(self, broker: Mosquitto, account: BrokerAccount) -> None:
        self.count = 0
        self.last = 0.0
        self.presses: dict[str, float] = {}
        """When each press arrived, by its hub (`alarm-…`), first copy only."""
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-ceiling", protocol=mqtt.MQTTv5)
        self.client.username_pw_set(account.username, account.password)
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(SUBSCRIPTION, qos=1)
        self.client.loop_start()
        self.subscribed.wait(10)

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        self.count += 1
        self.last = time.perf_counter()
        hub = message.topic.split("/")[3]
        if hub.startswith("alarm-"):
            self.presses.setdefault(hub, self.last)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hubs", type=int, default=200)
    parser.add_argument("--per-hub", type=int, default=250)
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--presses", type=int, default=100)
    parser.add_argument("--max-batch", type=int, default=500)
    parser.add_argument("--press-topic", choices=("alarms", "events"), default="alarms",
                        help="where presses are published: the alarms topic, or events (a hub of the earlier layout)")
    args = parser.parse_args()
    load_hubs = [hub_name(i) for i in range(args.hubs)]
    alarm_hubs = [f"alarm-{i:04d}" for i in range(args.presses)]
    accounts = {a.username: a for a in [BrokerAccount.generate("centre", "centre"),
                                        BrokerAccount.generate("ceiling", "centre"),
                                        *(BrokerAccount.generate(h, "hub") for h in load_hubs + alarm_hubs)]}
    total = args.hubs * args.per_hub
    with tempfile.TemporaryDirectory() as tmp, Mosquitto(Path(tmp) / "broker", accounts.values()) as broker:
        settings = CentreSettings(
            database_url=f"sqlite:///{tmp}/centre.db", jwt_secret=secrets.token_urlsafe(48),
            mqtt_host=broker.host, mqtt_port=broker.port, mqtt_password=accounts["centre"].password,
            http_port=free_port(), ingest_max_batch=args.max_batch, data_dir=Path(tmp))
        centre = Centre(settings)
        people: dict[int, str] = {}
        with centre.sessions() as session, session.begin():
            for hub in load_hubs + alarm_hubs:
                person = enrol_home(session, name=hub, address="", hub_id=hub, devices=[
                    DeviceRecord("oximeter-1", "oximeter"), DeviceRecord("door-1", "door"),
                    DeviceRecord("pendant-1", "pendant")])
                people[person.id] = hub

        stored = [0]
        last_stored = [0.0]
        changes: list[tuple[float, set[int]]] = []
        process = centre.ingest.process

        alarm_batches: list[tuple[float, float, int]] = []

        def timed_process(batch: Sequence[Inbound]) -> Outcome:
            began_batch = time.perf_counter()
            outcome = process(batch)
            if any(inbound.topic.split("/")[3].startswith("alarm-") for inbound in batch):
                alarm_batches.append((began_batch, time.perf_counter(), len(batch)))
            stored[0] += outcome.stored + outcome.duplicates + outcome.rejected
            last_stored[0] = time.perf_counter()
            return outcome

        centre.ingest.process = timed_process  # type: ignore[method-assign]
        notify = centre.receiver.on_alerts

        def on_alerts(ids: set[int]) -> None:
            changes.append((time.perf_counter(), set(ids)))
            notify(ids)

        centre.receiver.on_alerts = on_alerts
        with CentreThread(centre):
            ceiling = Ceiling(broker, accounts["ceiling"])
            context = multiprocessing.get_context("spawn")
            start, finished = context.Event(), []
            shares = [load_hubs[i::args.publishers] for i in range(args.publishers)]
            workers = []
            for share in shares:
                done = context.Event()
                finished.append(done)
                worker = context.Process(target=publisher, args=(
                    broker.host, broker.port, [(h, accounts[h].password) for h in share], args.per_hub, start, done))
                worker.start()
                workers.append(worker)
            alarm_clients = {}
            for hub in alarm_hubs:
                client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"press-{hub}", protocol=mqtt.MQTTv5)
                client.username_pw_set(hub, accounts[hub].password)
                client.connect(broker.host, broker.port)
                client.loop_start()
                alarm_clients[hub] = client
            time.sleep(3.0)  # publishers connected and their payloads encoded
            pressed: dict[str, float] = {}
            began = time.perf_counter()
            start.set()
            interval = 0.05
            for hub in alarm_hubs:
                press = DeviceEvent.new(hub_id=hub, device_id="pendant-1", device_type=DeviceType.PERSONAL_TRIGGER,
                                        code=EventCode.MANUAL_ALARM, source_ts=datetime.now(UTC))
                payload = encode(press)
                pressed[hub] = time.perf_counter()
                code = press.code if args.press_topic == "alarms" else None
                alarm_clients[hub].publish(topic_for(hub, "event", code), payload, qos=1)
                time.sleep(interval)
            deadline = time.monotonic() + 600
            while stored[0] < total + args.presses and time.monotonic() < deadline:
                time.sleep(0.05)
            while ceiling.count < total + args.presses and time.monotonic() < deadline:
                time.sleep(0.05)
            for worker in workers:
                worker.join(60)
            for client in alarm_clients.values():
                client.disconnect()
                client.loop_stop()
            ceiling.close()
            with centre.sessions() as session:
                person_of_alert = {a.id: people[a.person_id] for a in session.query(Alert).filter(
                    Alert.rule == "pendant_alarm")}
    latencies = []
    for hub, at in pressed.items():
        seen = next((t for t, ids in changes if any(person_of_alert.get(i) == hub for i in ids)), None)
        if seen is not None:
            latencies.append((seen - at) * 1000)
    bare = [(ceiling.presses[hub] - at) * 1000 for hub, at in pressed.items() if hub in ceiling.presses]
    centre_rate = (total + args.presses) / (last_stored[0] - began)
    ceiling_rate = (total + args.presses) / (ceiling.last - began)
    if alarm_batches:
        print(f"batches holding a press: {len(alarm_batches)}, sizes {sorted(n for *_, n in alarm_batches)[-5:]} "
              f"(largest 5), commit ms p50 {statistics.median((e - b) * 1000 for b, e, _ in alarm_batches):.1f}, "
              f"max {max((e - b) * 1000 for b, e, _ in alarm_batches):.1f}", file=sys.stderr)
    print(f"centre stored {stored[0]} messages, ceiling subscriber received {ceiling.count}; "
          f"{len(latencies)}/{len(pressed)} presses alerted", file=sys.stderr)
    print(json.dumps({
        "msgs_per_s": round(centre_rate), "ceiling_msgs_per_s": round(ceiling_rate),
        "ratio": round(centre_rate / ceiling_rate, 2),
        "alarm_latency_ms_p50": round(statistics.median(latencies), 1) if latencies else None,
        "alarm_latency_ms_p99": percentile(latencies, 0.99) if latencies else None,
        "alarm_ceiling_ms_p50": round(statistics.median(bare), 1) if bare else None,
        "alarm_ceiling_ms_p99": percentile(bare, 0.99) if bare else None,
        "alarm_p99_ratio": round(percentile(latencies, 0.99) / max(percentile(bare, 0.99), 0.1), 1)
        if latencies and bare else None,
        "alarms_alerted": len(latencies), "alarms_pressed": len(pressed), "press_topic": args.press_topic,
        "messages": stored[0], "hubs": args.hubs + len(alarm_hubs), "max_batch": args.max_batch,
    }))


if __name__ == "__main__":
    main()
