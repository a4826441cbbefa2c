"""Replay of an hour's backlog from the hub's durable outbox, against plain paho from memory.

The scene: a hub for a small care home (default 10 residents) loses the centre for an hour.
Each resident has a pulse oximeter reporting SpO2 and pulse rate at 1 Hz (7,200 readings
an hour), and in that hour 30 room-activity events, 4 door and 2 bed events, one press of
the help button and its cancel; the hub beats every 60 s (coalesced to the newest). The
backlog is written to the outbox file while the broker is down, one second of data per
transaction; then the broker starts, a hub `Uplink` opens that file, and the clock runs
until a centre-side subscriber (QoS 1, persistent session) has every message, and on until
the hub's outbox is empty: the subscriber stands in for the centre's end-to-end acks, which
it publishes as the centre does, one `Ack` per batch (every 10 ms, at most 500 ids each),
and the hub deletes a row only when its ack arrives.

Baseline, in the same run and through the same broker and subscriber: plain paho publishing
the same payloads QoS 1 from memory, with the same in-flight window (a semaphore released on
each PUBACK), and no acks. Prints a final JSON line.

    .venv/bin/python bench/outbox_replay.py [--residents 10] [--window 256]
"""

import argparse
import json
import secrets
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub_agent.outbox import Lane, Outbox
from hub_agent.uplink import DEFAULT_WINDOW, Uplink
from monitoring_centre.broker import BrokerAccount, Mosquitto
from telecare_protocol import (
    Ack,
    DeviceEvent,
    DeviceType,
    EventCode,
    Heartbeat,
    Message,
    Metric,
    Power,
    Reading,
    encode,
)
from telecare_protocol.ack import MAX_ACK_ENTRIES
from telecare_protocol.topics import ROOT, ack_topic, topic_for

HUB = "bench-hub"
T0 = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)


def hour_of_messages(residents: int) -> list[list[Message]]:
    """One list per second of the hour: what the hub would have produced in it."""
    seconds: list[list[Message]] = [[] for _ in range(3600)]
    for r in range(residents):
        oximeter, pendant, door, bed, room = (f"oximeter-{r}", f"pendant-{r}", f"door-{r}", f"bed-{r}",
                                              f"motion-{r}")
        for s in range(3600):
            ts = T0 + timedelta(seconds=s)
            seconds[s] += [
                Reading(hub_id=HUB, device_id=oximeter, source_ts=ts, metric=Metric.SPO2,
                        value=float(94 + (s + r) % 4), unit="%"),
                Reading(hub_id=HUB, device_id=oximeter, source_ts=ts, metric=Metric.PULSE_RATE,
                        value=float(70 + (s * 7 + r) % 15), unit="/min"),
            ]
        events = ([(120 * k + 7 * r, room, DeviceType.MOTION_SENSOR, EventCode.ACTIVITY) for k in range(30)]
                  + [(900 * k + 11 * r, door, DeviceType.DOOR_SENSOR,
                      EventCode.DOOR_OPENED if k % 2 == 0 else EventCode.DOOR_CLOSED) for k in range(4)]
                  + [(1800 * k + 13 * r, bed, DeviceType.BED_MONITOR,
                      EventCode.BED_VACATED if k == 0 else EventCode.BED_OCCUPIED) for k in range(2)]
                  + [(1000 + 17 * r, pendant, DeviceType.PERSONAL_TRIGGER, EventCode.MANUAL_ALARM),
                     (1090 + 17 * r, pendant, DeviceType.PERSONAL_TRIGGER, EventCode.ALARM_CANCELLED)])
        for s, device, kind, code in events:
            seconds[s].append(DeviceEvent.new(hub_id=HUB, device_id=device, device_type=kind, code=code,
                                              source_ts=T0 + timedelta(seconds=s)))
    for s in range(0, 3600, 60):
        seconds[s].append(Heartbeat(hub_id=HUB, device_id=HUB, source_ts=T0 + timedelta(seconds=s),
                                    power=Power.MAINS, uptime_s=float(s), interval_s=60))
    return seconds


class Counter:
    """The centre side: counts distinct message ids as they arrive, and where the alarms came; with
    `acking`, acknowledges them end to end in batches, as the centre does after each commit."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.seen: set[str] = set()
        self.arrivals = 0
        self.alarm_positions: list[int] = []
        self.alarm_ids: set[str] = set()
        self.target = 0
        self.acking = False
        self.to_ack: list[str] = []
        self.acks_sent = 0

    def ack_batches(self, client: mqtt.Client, stop: threading.Event, period_s: float = 0.01) -> None:
        """Every `period_s`, one ack per `MAX_ACK_ENTRIES` ids received since the last (a centre commit)."""
        while not stop.wait(period_s):
            with self.cond:
                ids, self.to_ack = self.to_ack, []
            for start in range(0, len(ids), MAX_ACK_ENTRIES):
                ack = Ack(hub_id=HUB, stored=tuple(uuid.UUID(i) for i in ids[start:start + MAX_ACK_ENTRIES]))
                client.publish(ack_topic(HUB), encode(ack), qos=1)
                self.acks_sent += 1

    def reset(self, target: int, alarm_ids: set[str]) -> None:
        with self.cond:
            self.seen, self.arrivals, self.alarm_positions, self.alarm_ids = set(), 0, [], alarm_ids
            self.target = target

    def on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        if message.topic.endswith("/status"):
            return
        message_id = json.loads(message.payload)["id"]
        with self.cond:
            self.arrivals += 1
            if self.acking:
                self.to_ack.append(message_id)
            if message_id not in self.seen:
                self.seen.add(message_id)
                if message_id in self.alarm_ids:
                    self.alarm_positions.append(len(self.seen))
                if len(self.seen) >= self.target:
                    self.cond.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.seen) >= count, timeout)


def connect(broker: Mosquitto, account: BrokerAccount, client_id: str, *, clean_start: bool,
            window: int = 20) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(account.username, account.password)
    client.max_inflight_messages_set(window)
    client.max_queued_messages_set(0)
    client.reconnect_delay_set(min_delay=1, max_delay=1)  # back within a second of the broker's restart
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 3600
    connected = threading.Event()
    client.on_connect = lambda *_args: connected.set()
    client.connect(broker.host, broker.port, keepalive=30, clean_start=clean_start, properties=properties)
    client.loop_start()
    if not connected.wait(10):
        raise SystemExit(f"{client_id} could not connect")
    return client


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", type=int, default=10)
    parser.add_argument("--window", type=int, default=DEFAULT_WINDOW)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        hub = BrokerAccount(HUB, secrets.token_urlsafe(16), "hub")
        centre = BrokerAccount("centre", secrets.token_urlsafe(16), "centre")
        broker = Mosquitto(Path(tmp) / "broker", [hub, centre], max_queued_messages=10_000_000)
        counter = Counter()
        broker.start()
        try:
            subscriber = connect(broker, centre, "bench-centre", clean_start=False)
            subscriber.on_message = counter.on_message
            subscriber.subscribe(f"{ROOT}/{HUB}/+", qos=1)
            time.sleep(0.5)
            broker.stop()  # the centre is unreachable for the hour

            outbox_path = Path(tmp) / "hub" / "outbox.db"
            outbox = Outbox(outbox_path, hub_id=HUB)
            seconds = hour_of_messages(args.residents)
            started = time.perf_counter()
            for batch in seconds:
                outbox.put_many(batch)
            build_s = time.perf_counter() - started
            backlog = outbox.depth
            rows = outbox.next_batch(backlog)
            payloads = [(topic_for(HUB, row.kind), row.payload) for row in rows]
            alarm_ids = {row.message_id for row in rows if row.lane == Lane.ALARM}
            outbox.close()
            print(f"backlog: {backlog} messages ({len(alarm_ids)} alarms) written in {build_s:.1f} s, "
                  f"{outbox_path.stat().st_size / 1e6:.1f} MB", flush=True)

            broker.start()
            counter.reset(backlog, alarm_ids)
            counter.acking = True
            stop_acking = threading.Event()
            acker = threading.Thread(target=counter.ack_batches, args=(subscriber, stop_acking), daemon=True)
            acker.start()
            uplink = Uplink(hub_id=HUB, password=hub.password, host=broker.host, port=broker.port,
                            outbox_path=outbox_path, window=args.window)
            started = time.perf_counter()
            uplink.start()
            if not counter.wait_for(backlog, 600):
                raise SystemExit(f"replay stalled at {len(counter.seen)} of {backlog}")
            replay_s = time.perf_counter() - started
            emptied = uplink.wait_until_delivered(120)
            acked_s = time.perf_counter() - started
            replay_arrivals, alarm_positions = counter.arrivals, list(counter.alarm_positions)
            resent, acks_sent = uplink.resent, counter.acks_sent
            uplink.stop()
            stop_acking.set()
            acker.join(5)
            counter.acking = False

            counter.reset(backlog, set())
            publisher = connect(broker, hub, "bench-baseline", clean_start=True, window=args.window)
            # Flow control as in the uplink: at most `window` unacknowledged. Handing paho all of them at
            # once would lose some: its message ids are 16-bit, and a publish whose id is still queued
            # is refused (MQTT_ERR_QUEUE_SIZE), which is easy to miss.
            room = threading.Semaphore(args.window)
            publisher.on_publish = lambda *_args: room.release()
            started = time.perf_counter()
            for topic, payload in payloads:
                room.acquire()
                publisher.publish(topic, payload, qos=1)
            if not counter.wait_for(backlog, 600):
                raise SystemExit(f"baseline stalled at {len(counter.seen)} of {backlog}")
            baseline_s = time.perf_counter() - started
            publisher.disconnect()
            publisher.loop_stop()
            subscriber.disconnect()
            subscriber.loop_stop()
        finally:
            broker.stop()
    replay = backlog / replay_s
    acked = backlog / acked_s
    baseline = backlog / baseline_s
    print(f"replay   {replay_s:6.2f} s  {replay:8.0f} msgs/s  (all at the centre; {replay_arrivals - backlog} "
          f"duplicates, {resent} resent; alarms arrived at positions {alarm_positions[:3]}...{alarm_positions[-1:]})")
    print(f"acked    {acked_s:6.2f} s  {acked:8.0f} msgs/s  (outbox emptied by {acks_sent} end-to-end acks: {emptied})")
    print(f"baseline {baseline_s:6.2f} s  {baseline:8.0f} msgs/s  (plain paho, QoS 1, from memory, no acks)")
    print(json.dumps({"backlog": backlog, "replay_msgs_per_s": round(replay), "acked_msgs_per_s": round(acked),
                      "baseline_msgs_per_s": round(baseline), "ratio": round(replay / baseline, 2),
                      "acked_ratio": round(acked / baseline, 2), "outbox_emptied": emptied,
                      "duplicates": replay_arrivals - backlog, "resent": resent, "window": args.window,
                      "last_alarm_position": max(alarm_positions, default=0), "alarms": len(alarm_ids)}))


if __name__ == "__main__":
    main()
