"""A home's pendant press while the operator's account is flooded with wrong sign-ins.

Seen in the field: 8 parallel wrong sign-ins (about 10 a second) against a SQLite centre made
another home's press take up to 7.8 s to store instead of 12 ms, because each failed sign-in held
the database's write lock through its password hash.

Starts a real Mosquitto and a centre on SQLite (WAL, synchronous=FULL) serving real HTTP, with
`TELECARE_TRUSTED_NETWORKS` = 127.0.0.1/32. A hub presses its pendant (MQTT QoS 1) again and
again, each press once the last one is shown; the clock runs from the publish to the console's
event stream (`GET /api/v1/alerts/stream`) announcing the changed alert, confirmed by the alert's
repeat count. Measured in the same run, the phases taking turns (`--rounds`, so that the load of
a shared machine falls on each alike; a flood is stopped, and its last answer in, before the
next quiet turn):
- `quiet`: presses alone (the baseline);
- `flood`: presses while a separate process runs 8 parallel clients from 127.0.0.2 (outside the
  trusted network), each sending a wrong password for the operator's account as soon as its last
  answer came back, whatever the answer (a script does not honour Retry-After);
- with `--trusted-flood`, also `trusted_flood`: the same 8 clients from 127.0.0.1, where nothing
  is throttled and every attempt costs a real Argon2 check: the lock and the CPU, without the throttle.
During each flood turn the operator signs in from 127.0.0.1 with the right password, and must get in.

Target: press-to-alert p99 during the flood within 2× of p99 without. Prints a final JSON line.

    .venv/bin/python bench/signin_flood.py [--presses 300] [--rounds 3] [--attackers 8] [--trusted-flood]
"""

import argparse
import json
import multiprocessing
import queue
import random
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import free_port, percentiles

from centre_app.auth import create_user
from centre_app.centre import Centre, CentreThread
from centre_app.settings import CentreSettings
from monitoring_centre.broker import BrokerAccount, Mosquitto
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from telecare_protocol import DeviceEvent, DeviceType, EventCode, encode
from telecare_protocol.topics import topic_for

HUB = "bench-hub"
PENDANT = "pendant-1"
OPERATOR = "op-night"
CONSOLE_ADDRESS = "127.0.0.1"
"""The centre's own network in this bench (`trusted_networks`): the operator's console."""
ATTACKER_ADDRESS = "127.0.0.2"
"""Outside it: Linux answers the whole of 127.0.0.0/8 on the loopback interface."""
GAP_S = (0.02, 0.06)
"""A random pause between presses, so that presses do not fall in step with anything periodic."""






def attack(base_url: str, source: str, clients: int, go: ProcessEvent, stop: ProcessEvent,
           in_flight: Any, results: "multiprocessing.Queue[Any]") -> None:
    """In its own process: `clients` threads, each posting a wrong password for `OPERATOR` from
    `source` while `go` is set, the next as soon as the last is answered, until `stop`.
    `in_flight` counts requests not yet answered. Puts {status: count} on `results` at the end."""
    counts: Counter[int] = Counter()
    lock = threading.Lock()

    def one_client() -> None:
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(base_url=base_url, transport=transport, timeout=120) as client:
            while not stop.is_set():
                if not go.wait(0.1):
                    continue
                with in_flight.get_lock():
                    in_flight.value += 1
                try:
                    answer = client.post("/api/v1/auth/token", data={"username": OPERATOR, "password": "wrong-guess"})
                finally:
                    with in_flight.get_lock():
                        in_flight.value -= 1
                with lock:
                    counts[answer.status_code] += 1

    threads = [threading.Thread(target=one_client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(dict(counts))


class Flood:
    """A process of attacking clients from one source address, started idle: `on()`, `off()`."""

    def __init__(self, base_url: str, source: str, clients: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._go, self._stop = context.Event(), context.Event()
        self._in_flight = context.Value("i", 0)
        self._results: multiprocessing.Queue[Any] = context.Queue()
        self._process = context.Process(target=attack, args=(base_url, source, clients, self._go, self._stop,
                                                             self._in_flight, self._results))
        self._process.start()

    def on(self) -> None:
        self._go.set()
        time.sleep(1.0)  # under way, and past the throttle's free tries

    def off(self) -> None:
        """Stop sending, and wait for every answer: nothing of the flood reaches into the quiet presses."""
        self._go.clear()
        while self._in_flight.value:
            time.sleep(0.05)
        time.sleep(0.5)

    def close(self) -> dict[int, int]:
        """The attackers' answers, by HTTP status."""
        self._stop.set()
        answers: dict[int, int] = self._results.get(timeout=120)
        self._process.join(60)
        return answers


class Console:
    """The operator's event stream, on a thread: the time each notice arrived."""

    def __init__(self, base_url: str, bearer: str) -> None:
        self.notices: queue.Queue[float] = queue.Queue()
        self._client = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {bearer}"},
                                    timeout=httpx.Timeout(10, read=None))
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with self._client.stream("GET", "/api/v1/alerts/stream") as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    self.notices.put(time.perf_counter())

    def close(self) -> None:
        self._client.close()


def presses(centre: Centre, broker: Mosquitto, hub: BrokerAccount, api: httpx.Client, console: Console,
            count: int, first: int) -> list[float]:
    """Press-to-alert in ms for `count` presses, the open alert's repeat count starting at `first`."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-hub-press", protocol=mqtt.MQTTv5)
    client.username_pw_set(hub.username, hub.password)
    client.connect(broker.host, broker.port)
    client.loop_start()
    samples = []
    try:
        for n in range(first, first + count):
            time.sleep(random.uniform(*GAP_S))
            while not console.notices.empty():
                console.notices.get_nowait()
            press = DeviceEvent.new(hub_id=HUB, device_id=PENDANT, device_type=DeviceType.PERSONAL_TRIGGER,
                                    code=EventCode.MANUAL_ALARM, source_ts=datetime.now(UTC))
            start = time.perf_counter()
            client.publish(topic_for(HUB, "event"), encode(press), qos=1)
            while True:
                shown = console.notices.get(timeout=60)
                alerts = api.get("/api/v1/alerts", params={"status": "active"}).json()
                if alerts and alerts[0]["repeat_count"] >= n:
                    break
            samples.append((shown - start) * 1000)
    finally:
        client.disconnect()
        client.loop_stop()
    return samples


PASSWORD = "night-shift-" + secrets.token_urlsafe(12)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presses", type=int, default=300, help="per phase, over all rounds")
    parser.add_argument("--rounds", type=int, default=3, help="the phases take turns this many times")
    parser.add_argument("--attackers", type=int, default=8)
    parser.add_argument("--trusted-flood", action="store_true",
                        help="also flood from the trusted network (nothing throttled: every attempt hashed)")
    args = parser.parse_args()
    per_segment = max(1, args.presses // args.rounds)
    samples: dict[str, list[float]] = {"quiet": []}
    sign_ins: dict[str, list[int]] = {}
    answers: dict[str, dict[int, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        accounts = [BrokerAccount(HUB, secrets.token_urlsafe(16), "hub"),
                    BrokerAccount("centre", secrets.token_urlsafe(16), "centre")]
        with Mosquitto(Path(tmp) / "broker", accounts) as broker:
            settings = CentreSettings(
                database_url=f"sqlite:///{tmp}/centre.db", jwt_secret=secrets.token_urlsafe(48),
                mqtt_host=broker.host, mqtt_port=broker.port, mqtt_password=accounts[1].password,
                http_host=CONSOLE_ADDRESS, http_port=free_port(), trusted_networks=[f"{CONSOLE_ADDRESS}/32"])
            centre = Centre(settings)
            with centre.sessions() as session, session.begin():
                enrol_home(session, name="Bench Person", address="", hub_id=HUB,
                           devices=[DeviceRecord(PENDANT, "pendant")])
                create_user(session, OPERATOR, PASSWORD, "operator")
            with CentreThread(centre):
                api = httpx.Client(base_url=centre.url, timeout=60)
                bearer = api.post("/api/v1/auth/token", data={"username": OPERATOR, "password": PASSWORD})
                api.headers["Authorization"] = f"Bearer {bearer.json()['access_token']}"
                console = Console(centre.url, bearer.json()["access_token"])
                floods = {"flood": Flood(centre.url, ATTACKER_ADDRESS, args.attackers)}
                if args.trusted_flood:
                    floods["trusted_flood"] = Flood(centre.url, CONSOLE_ADDRESS, args.attackers)
                done = 0

                def run(count: int) -> list[float]:
                    nonlocal done
                    taken = presses(centre, broker, accounts[0], api, console, count, done)
                    done += count
                    return taken

                try:
                    run(5)  # warm-up: the alert opens, connections are made
                    for _ in range(args.rounds):
                        samples["quiet"] += run(per_segment)
                        for name, flood in floods.items():
                            flood.on()
                            samples.setdefault(name, []).extend(run(per_segment))
                            operator = httpx.post(f"{centre.url}/api/v1/auth/token", timeout=120,
                                                  data={"username": OPERATOR, "password": PASSWORD})
                            sign_ins.setdefault(name, []).append(operator.status_code)
                            flood.off()
                finally:
                    answers = {name: flood.close() for name, flood in floods.items()}
                    console.close()
    quiet = percentiles(samples["quiet"])
    line: dict[str, Any] = {"presses_per_phase": len(samples["quiet"]), "rounds": args.rounds,
                            "attackers": args.attackers, "quiet_ms_p50": quiet["p50"], "quiet_ms_p99": quiet["p99"]}
    print(f"{'quiet':14} press→alert ms: {quiet}")
    for name in floods:
        flooded = percentiles(samples[name])
        print(f"{name:14} press→alert ms: {flooded}  attackers' answers: {answers[name]}  "
              f"operator sign-ins from the console: {sign_ins[name]}")
        line |= {f"{name}_ms_p50": flooded["p50"], f"{name}_ms_p99": flooded["p99"],
                 f"{name}_attempts": sum(answers[name].values()), f"{name}_checked": answers[name].get(401, 0),
                 f"{name}_operator_signed_in": all(status == 200 for status in sign_ins[name]),
                 f"ratio_p99_{name}_vs_quiet": round(flooded["p99"] / quiet["p99"], 2)}
    print(json.dumps(line))


if __name__ == "__main__":
    main()
