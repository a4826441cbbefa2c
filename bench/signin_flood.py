"""A home's pendant press while the operator's account is flooded with wrong sign-ins.

Seen in the field: 8 parallel wrong sign-ins (about 10 a second) against a SQLite centre made
another home's press take up to 7.8 s to store instead of 12 ms, because each failed sign-in held
the database's write lock through its password hash.

Starts a real Mosquitto and a centre on SQLite (WAL, synchronous=FULL) serving real HTTP, with
`TELECARE_TRUSTED_NETWORKS` = 127.0.0.1/32. A hub presses its pendant (MQTT QoS 1) again and
again, each press once the last one is shown; the clock runs from the publish to the console's
event stream (`GET /api/v1/alerts/stream`) announcing the changed alert, confirmed by the alert's
repeat count. Measured in the same run:
- `quiet`: presses alone (the baseline);
- `flood`: presses while a separate process runs 8 parallel clients from 127.0.0.2 (outside the
  trusted network), each sending a wrong password for the operator's account as soon as its last
  answer came back, whatever the answer (a script does not honour Retry-After);
- with `--trusted-flood`, also `trusted_flood`: the same 8 clients from 127.0.0.1, where nothing
  is throttled and every attempt costs a real Argon2 check: the lock alone, without the throttle.
After each flood phase the operator signs in from 127.0.0.1 with the right password, and must get in.

Target: press-to-alert p99 during the flood within 2× of p99 without. Prints a final JSON line.

    .venv/bin/python bench/signin_flood.py [--presses 300] [--attackers 8] [--trusted-flood]
"""

import argparse
import json
import multiprocessing
import queue
import random
import secrets
import statistics
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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50": round(statistics.median(ordered), 2), "p99": round(ordered[int(0.99 * (len(ordered) - 1))], 2),
            "max": round(ordered[-1], 2)}


def attack(base_url: str, source: str, clients: int, stop: ProcessEvent, results: "multiprocessing.Queue[Any]") -> None:
    """In its own process: `clients` threads, each posting a wrong password for `OPERATOR` from
    `source` until `stop`, the next as soon as the last is answered. Puts {status: count} on `results`."""
    counts: Counter[int] = Counter()
    lock = threading.Lock()

    def one_client() -> None:
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(base_url=base_url, transport=transport, timeout=60) as client:
            while not stop.is_set():
                answer = client.post("/api/v1/auth/token", data={"username": OPERATOR, "password": "wrong-guess"})
                with lock:
                    counts[answer.status_code] += 1

    threads = [threading.Thread(target=one_client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(dict(counts))


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


def flood_phase(centre: Centre, source: str, attackers: int, run: Any) -> tuple[list[float], dict[int, int], int]:
    """`run()` while `attackers` clients flood from `source`; then the operator signs in from the
    console's address. Returns the samples, the attackers' answers by status, and that sign-in's status."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    results: multiprocessing.Queue[Any] = context.Queue()
    process = context.Process(target=attack, args=(centre.url, source, attackers, stop, results))
    process.start()
    try:
        time.sleep(2.0)  # the flood is under way, and the throttle has had its say
        samples: list[float] = run()
        operator = httpx.post(f"{centre.url}/api/v1/auth/token", data={"username": OPERATOR, "password": PASSWORD},
                              timeout=60)
    finally:
        stop.set()
        answers: dict[int, int] = results.get(timeout=120)
        process.join(60)
    return samples, answers, operator.status_code


PASSWORD = "night-shift-" + secrets.token_urlsafe(12)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presses", type=int, default=300)
    parser.add_argument("--attackers", type=int, default=8)
    parser.add_argument("--trusted-flood", action="store_true",
                        help="also flood from the trusted network (nothing throttled: every attempt hashed)")
    args = parser.parse_args()
    phases: dict[str, dict[str, Any]] = {}
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
                done = 0

                def run(count: int) -> list[float]:
                    nonlocal done
                    samples = presses(centre, broker, accounts[0], api, console, count, done)
                    done += count
                    return samples

                run(5)  # warm-up: the alert opens, connections are made
                phases["quiet"] = {"ms": percentiles(run(args.presses))}
                floods = [("flood", ATTACKER_ADDRESS)] + ([("trusted_flood", CONSOLE_ADDRESS)]
                                                          if args.trusted_flood else [])
                for name, source in floods:
                    samples, answers, operator = flood_phase(centre, source, args.attackers,
                                                             lambda: run(args.presses))
                    phases[name] = {"ms": percentiles(samples), "attacker_answers": answers,
                                    "operator_sign_in": operator}
                console.close()
    quiet = phases["quiet"]["ms"]
    for name, phase in phases.items():
        print(f"{name:14} press→alert ms: {phase['ms']}"
              + (f"  attackers: {phase['attacker_answers']}  operator: {phase['operator_sign_in']}"
                 if name != "quiet" else ""))
    line: dict[str, Any] = {"presses": args.presses, "attackers": args.attackers,
                            "quiet_ms_p50": quiet["p50"], "quiet_ms_p99": quiet["p99"]}
    for name, phase in phases.items():
        if name == "quiet":
            continue
        line |= {f"{name}_ms_p50": phase["ms"]["p50"], f"{name}_ms_p99": phase["ms"]["p99"],
                 f"{name}_attempts": sum(phase["attacker_answers"].values()),
                 f"{name}_checked": phase["attacker_answers"].get(401, 0),
                 f"{name}_operator_signed_in": phase["operator_sign_in"] == 200,
                 f"ratio_p99_{name}_vs_quiet": round(phase["ms"]["p99"] / quiet["p99"], 2)}
    print(json.dumps(line))


if __name__ == "__main__":
    main()
