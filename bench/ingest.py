"""Ingest per core: the centre against an honest ceiling, and beside a Node-RED flow, on the same stream.

    .venv/bin/python bench/ingest.py [--hubs 200] [--per-hub 250] [--publishers 4] [--presses 100]
                                     [--db sqlite,postgresql] [--peer nodered] [--max-batch 500]
                                     [--receiver-only] [--profile]

For each database in `--db` (one phase each, a fresh broker every phase): Mosquitto with an
account per hub (as `monitoring_centre/broker.py` writes them), and, each in a process of its own:

- the centre (`Centre`, the detection engine running): SQLite (WAL, synchronous=FULL), or PostgreSQL
  (a throwaway cluster on a free loopback port, `initdb`/`pg_ctl`, fsync on: a commit is on disk);
- the ceiling: a bare paho subscriber on the centre's subscription (QoS 1, persistent session,
  automatic PUBACK on receipt, nothing behind it) that only counts;
- with `--peer nodered`: a Node-RED 4 flow (`mqtt in` QoS 1 persistent session → a `function` node
  with SpO2 / pulse thresholds and the help button → `node-red-node-sqlite`, one insert per message,
  WAL, synchronous=FULL). It acknowledges on receipt (MQTT.js), so what it has not stored yet waits in
  its memory, not at the broker: faster to look at, unsafe in a crash. Installed with npm into
  `~/.cache/telecare-bench/nodered` (`$XDG_CACHE_HOME` if set) on first use, never in the repository;
  skipped with a message when npm or node is missing;
- `--publishers` processes that own a share of the hubs, one connection per hub, and publish their
  readings (9 in 10) and door events (1 in 10) with QoS 1 as fast as the broker acknowledges them.
  Payloads are encoded before the clock starts.

Every consumer receives the whole stream at once. Each is timed from the moment the publishers start
to the moment it has the last message (the centre: stored, detected and committed, PUBACK after the
commit; Node-RED: the last insert done; the ceiling: received). `ratio` = its rate / the ceiling's.
When the publishers are the bottleneck every rate approaches the publish rate (ratio near 1: the
consumer keeps up); when a consumer is, its backlog waits at the broker (the centre) or in its
memory (Node-RED). Per consumer: `msgs_per_s`, `ratio`, `peak_rss_mb` (VmHWM of its process) and
`cpu_s_per_1k` (user + system CPU seconds of its process from the start of the stream to its last
message, per 1,000 messages). Each counts a message once: `copies` are the broker's redeliveries
(a PUBACK it did not get in time), dropped by message id (the centre), by hash (the ceiling), or by
the table's primary key (Node-RED: the insert fails, so it is not counted).

The centre's figures also give `batches` (transactions committed) and `batch_size_mean` (messages per batch),
and `ingest_thread`: from its first batch to its last, `span_s`, of which `in_batches_s` storing batches
(`Ingest.process`), of which `cpu_s` on the CPU. The rest of `in_batches_s` is waiting: for the disk, for
SQLite's write lock, for the interpreter's lock, and on a busy machine for a core.

`--receiver-only`: the centre as it is, but each batch it takes is acknowledged at once, neither stored nor
detected (no alert is raised, so no alarm latency): the rate its MQTT sessions, queues and batched PUBACKs
alone keep up with, to set beside the whole centre's.

`--profile`: the centre's CPU by thread and by function (a sampling profiler of all its threads), on stderr;
`--profile-top N` prints the N functions with the most CPU (60 by default), by self and by inclusive share.
The sampler charges the CPU a thread used since its last look to the stack it is in now, so a function where
a thread waits for the GIL (a socket send, a database call) takes a share of what ran before it.

During the load, `--presses` help-button presses are published from other hubs' accounts (one press
per hub, at even intervals) on the alarms topic (`--press-topic events`: where a hub of the earlier
layout sends them). Each press's latency runs from its publish to the commit of the alert it opened
(the centre's "alerts changed" notice, after commit and PUBACK); the ceiling times the same presses,
publish to arrival. The machine's load average is part of the output: on shared cores every figure
moves with it, so compare figures of one run.

Prints one JSON line: `{"phases": {"sqlite": {...}, "postgresql": {...}}, ...}`.
"""

import argparse
import contextlib
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import free_port, postgres_cluster, process_usage

from monitoring_centre.broker import BrokerAccount, Mosquitto
from telecare_protocol import DeviceEvent, DeviceType, EventCode, encode
from telecare_protocol import Reading as ReadingMessage
from telecare_protocol.codes import Metric
from telecare_protocol.topics import SUBSCRIPTION, topic_for

NODE_RED_VERSION = "4"
NODE_RED_SQLITE_VERSION = "1"


def hub_name(i: int) -> str:
    return f"bench-{i:04d}"


def publisher(host: str, port: int, hubs: list[tuple[str, str]], per_hub: int, ready: Any, start: Any,
              done: Any) -> None:
    """One publishing process: a connection per hub, payloads encoded (then `ready`) before `start`, QoS 1 at
    full speed."""
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
    ready.set()
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


# --- the ceiling: a bare subscriber in a process of its own ---------------------------------


def ceiling(host: str, port: int, username: str, password: str, total: int, ready: Any, results: Any) -> None:
    """Count every message of the stream (QoS 1, persistent session, PUBACK on receipt), a copy the broker
    sends again (after a lost PUBACK) once; send back {count, copies, last (time.monotonic, shared by the
    processes of one machine), presses: {hub: arrival}}."""
    state: dict[str, Any] = {"count": 0, "copies": 0, "last": 0.0, "presses": {}}
    seen: set[int] = set()
    finished = threading.Event()
    subscribed = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        key = hash(message.payload)  # the payload holds the message id
        if key in seen:
            state["copies"] += 1
            return
        seen.add(key)
        state["count"] += 1
        state["last"] = time.monotonic()
        hub = message.topic.split("/")[3]
        if hub.startswith("alarm-"):
            state["presses"].setdefault(hub, state["last"])
        if state["count"] >= total:
            finished.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-ceiling", protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    client.on_message = on_message
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect(host, port, clean_start=False)
    client.subscribe(SUBSCRIPTION, qos=1)
    client.loop_start()
    subscribed.wait(10)
    ready.set()
    finished.wait(900)
    client.disconnect()
    client.loop_stop()
    results.put(state)


# --- the centre, in a process of its own ----------------------------------------------------


@dataclass(frozen=True)
class CentreJob:
    database_url: str
    data_dir: str
    host: str
    port: int
    password: str
    max_batch: int
    hubs: tuple[str, ...]
    total: int
    profile: bool = False
    profile_top: int = 60
    receiver_only: bool = False


class Sampler:
    """Where a process's CPU goes, all threads at once (cProfile sees only the thread that enables it):
    every `interval_s`, each other thread's CPU clock (`time.pthread_getcpuclockid`) and its stack
    (`sys._current_frames`); the CPU a thread used since the last look is charged to the stack it is in
    now, to its innermost function (self), to every function on it (inclusive), and to its thread name."""

    def __init__(self, interval_s: float = 0.002) -> None:
        self.interval_s = interval_s
        self.total = 0.0
        self.own: dict[str, float] = {}
        self.inclusive: dict[str, float] = {}
        self.threads: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        me = threading.get_ident()
        last: dict[int, float] = {}
        while not self._stop.wait(self.interval_s):
            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                try:
                    cpu = time.clock_gettime(time.pthread_getcpuclockid(ident))
                except OSError:
                    continue
                spent, last[ident] = cpu - last.get(ident, cpu), cpu
                if spent <= 0:
                    continue
                self.total += spent
                thread = names.get(ident, "?").split("(")[0].rstrip("-0123456789 ") or "?"
                self.threads[thread] = self.threads.get(thread, 0.0) + spent
                where: Any = frame
                seen: set[str] = set()
                while where is not None:
                    name = f"{Path(where.f_code.co_filename).name}:{where.f_code.co_name}"
                    if not seen:
                        self.own[name] = self.own.get(name, 0.0) + spent
                    if name not in seen:
                        seen.add(name)
                        self.inclusive[name] = self.inclusive.get(name, 0.0) + spent
                    where = where.f_back

    def top(self, n: int = 60) -> dict[str, list[tuple[str, float]]]:
        """The `n` functions (and every thread) with the most CPU, as a share of all the CPU sampled."""
        self._stop.set()
        self._thread.join()
        total = max(self.total, 1e-9)

        def share(counts: dict[str, float], limit: int) -> list[tuple[str, float]]:
            return [(k, round(v / total, 3)) for k, v in sorted(counts.items(), key=lambda x: -x[1])[:limit]]

        return {"threads": share(self.threads, 20), "self": share(self.own, n), "inclusive": share(self.inclusive, n)}


def centre(job: CentreJob, ready: Any, results: Any) -> None:
    """Enrol the homes, run a centre until it has stored `job.total` messages; send back when each batch
    committed, the alerts it changed, and which batches held a press."""
    from centre_app.centre import Centre, CentreThread
    from centre_app.settings import CentreSettings
    from monitoring_centre.enrolment import DeviceRecord, enrol_home
    from monitoring_centre.ingest import Inbound, Outcome
    from monitoring_centre.storage import Alert

    settings = CentreSettings(
        database_url=job.database_url, jwt_secret=secrets.token_urlsafe(48), mqtt_host=job.host,
        mqtt_port=job.port, mqtt_password=job.password, http_port=free_port(), ingest_max_batch=job.max_batch,
        data_dir=Path(job.data_dir))
    the_centre = Centre(settings)
    people: dict[int, str] = {}
    with the_centre.sessions() as session, session.begin():
        for hub in job.hubs:
            person = enrol_home(session, name=hub, address="", hub_id=hub, devices=[
                DeviceRecord("oximeter-1", "oximeter"), DeviceRecord("door-1", "door"),
                DeviceRecord("pendant-1", "pendant")])
            people[person.id] = hub
    stored, copies = [0], [0]
    last_stored = [0.0]
    done = threading.Event()
    changes: list[tuple[float, set[int]]] = []
    alarm_batches: list[tuple[float, float, int]] = []
    sizes: list[int] = []
    process = the_centre.ingest.process

    in_batches = [0.0, 0.0, 0.0]  # wall and thread CPU seconds inside `process`; when the first batch began

    def timed_process(batch: Sequence[Inbound]) -> Outcome:
        began, cpu_began = time.monotonic(), time.thread_time()
        outcome = Outcome(stored=len(batch)) if job.receiver_only else process(batch)
        in_batches[0] += time.monotonic() - began
        in_batches[1] += time.thread_time() - cpu_began
        in_batches[2] = in_batches[2] or began
        sizes.append(len(batch))
        if any(inbound.topic.split("/")[3].startswith("alarm-") for inbound in batch):
            alarm_batches.append((began, time.monotonic(), len(batch)))
        stored[0] += outcome.stored + outcome.rejected  # each message once: a redelivered copy is a duplicate
        copies[0] += outcome.duplicates
        last_stored[0] = time.monotonic()
        if stored[0] >= job.total:
            done.set()
        return outcome

    the_centre.ingest.process = timed_process  # type: ignore[method-assign]
    notify = the_centre.receiver.on_alerts

    def on_alerts(ids: set[int]) -> None:
        changes.append((time.monotonic(), set(ids)))
        notify(ids)

    the_centre.receiver.on_alerts = on_alerts
    with CentreThread(the_centre):
        ready.set()
        sampler = Sampler() if job.profile else None
        done.wait(900)
        profile = sampler.top(job.profile_top) if sampler is not None else None
        with the_centre.sessions() as session:
            hub_of_alert = {a.id: people[a.person_id] for a in session.query(Alert).filter(
                Alert.rule == "pendant_alarm")}
    results.put({"stored": stored[0], "copies": copies[0], "last": last_stored[0], "alarm_batches": alarm_batches,
                 "profile": profile, "batch_sizes": sizes,
                 "ingest_thread": {"span_s": round(last_stored[0] - in_batches[2], 2),
                                   "in_batches_s": round(in_batches[0], 2), "cpu_s": round(in_batches[1], 2)},
                 "alerted": {hub: next((t for t, ids in changes if any(hub_of_alert.get(i) == hub for i in ids)),
                                       None) for hub in set(hub_of_alert.values())}})


# --- Node-RED: installed into a cache folder, a flow of its own -----------------------------


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "telecare-bench" / "nodered"


def install_node_red() -> tuple[Path | None, str]:
    """Node-RED and node-red-node-sqlite under `cache_dir()`, installed with npm the first time.
    Returns (the folder, "") or (None, why not)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        return None, "npm or node is not installed: the Node-RED peer is skipped"
    root = cache_dir()
    red = root / "node_modules" / "node-red" / "red.js"
    binding = root / "node_modules" / "sqlite3" / "build" / "Release" / "node_sqlite3.node"
    if red.exists() and binding.exists():
        return root, ""
    root.mkdir(parents=True, exist_ok=True)
    package = root / "package.json"
    if not package.exists():  # npm 11 runs a dependency's install script only when allowed (sqlite3 builds here)
        package.write_text(json.dumps({"name": "telecare-bench-nodered", "private": True,
                                       "allowScripts": {"sqlite3": True}}))
    print(f"installing Node-RED {NODE_RED_VERSION} and node-red-node-sqlite into {root} (once)...", file=sys.stderr)
    steps = [[npm, "install", "--no-audit", "--no-fund", f"node-red@{NODE_RED_VERSION}",
              f"node-red-node-sqlite@{NODE_RED_SQLITE_VERSION}"]]
    for step in steps:
        done = subprocess.run(step, cwd=root, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            return None, f"npm could not install Node-RED ({done.stderr.strip()[-300:]}): the peer is skipped"
    if not binding.exists():  # its install script was not run: build (or fetch) the sqlite3 binding now
        subprocess.run([npm, "rebuild", "sqlite3"], cwd=root, capture_output=True, text=True, timeout=1800)
    if not (red.exists() and binding.exists()):
        return None, "Node-RED's sqlite3 module did not build: the Node-RED peer is skipped"
    return root, ""


FUNCTION = """
// The telecare centre's thresholds, as a Node-RED flow would write them: SpO2 below 92 %,
// pulse outside 40-130 /min, a help button press or a fall. One row per message.
let m;
try { m = JSON.parse(msg.payload); } catch (e) { return null; }
let alarm = null;
if (m.type === "reading" && m.metric === "spo2" && m.value !== null && m.value < 92) alarm = "spo2_low";
if (m.type === "reading" && m.metric === "pulse_rate" && m.value !== null && (m.value < 40 || m.value > 130))
    alarm = "pulse";
if (m.type === "event" && (m.code === "manual_alarm" || m.code === "fall_detected")) alarm = "help";
msg.params = {$id: m.id, $hub: m.hub_id, $type: m.type, $ts: m.source_ts, $alarm: alarm, $payload: msg.payload,
              $at: Date.now()};
return msg;
"""

COUNTER = """
const n = (global.get("stored") || 0) + 1;
global.set("stored", n);
global.set("last", Date.now());
return null;
"""

REPORT = """
msg.payload = {stored: global.get("stored") || 0, last: global.get("last") || 0};
return msg;
"""

SCHEMA = ("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE IF NOT EXISTS messages (id TEXT PRIMARY "
          "KEY, hub_id TEXT, type TEXT, source_ts TEXT, alarm TEXT, payload TEXT, stored_at INTEGER);")


def node_red_flow(host: str, port: int, database: Path) -> list[dict[str, Any]]:
    tab = "bench-tab"
    return [
        {"id": tab, "type": "tab", "label": "telecare bench"},
        {"id": "broker", "type": "mqtt-broker", "name": "centre broker", "broker": host, "port": str(port),
         "clientid": "bench-nodered", "autoConnect": True, "usetls": False, "protocolVersion": "5",
         "keepalive": "60", "cleansession": False, "sessionExpiry": "3600"},
        {"id": "db", "type": "sqlitedb", "db": str(database), "mode": "RWC"},
        {"id": "schema-once", "type": "inject", "z": tab, "once": True, "onceDelay": "0.1", "repeat": "",
         "topic": SCHEMA, "payload": "", "payloadType": "str", "props": [{"p": "topic", "vt": "str"}],
         "wires": [["schema"]]},
        {"id": "schema", "type": "sqlite", "z": tab, "mydb": "db", "sqlquery": "batch", "sql": "", "wires": [[]]},
        {"id": "in", "type": "mqtt in", "z": tab, "topic": SUBSCRIPTION, "qos": "1", "datatype": "utf8",
         "broker": "broker", "nl": False, "rap": True, "inputs": 0, "wires": [["thresholds"]]},
        {"id": "thresholds", "type": "function", "z": tab, "func": FUNCTION, "outputs": 1, "wires": [["insert"]]},
        {"id": "insert", "type": "sqlite", "z": tab, "mydb": "db", "sqlquery": "prepared",
         "sql": "INSERT INTO messages VALUES ($id, $hub, $type, $ts, $alarm, $payload, $at)",  # a copy fails
         "wires": [["counter"]]},
        {"id": "counter", "type": "function", "z": tab, "func": COUNTER, "outputs": 1, "wires": [[]]},
        {"id": "ask", "type": "http in", "z": tab, "url": "/bench/stored", "method": "get", "wires": [["report"]]},
        {"id": "report", "type": "function", "z": tab, "func": REPORT, "outputs": 1, "wires": [["answer"]]},
        {"id": "answer", "type": "http response", "z": tab, "statusCode": "", "headers": {}, "wires": []},
    ]


class NodeRed:
    """A Node-RED process running `node_red_flow`, with its own user folder under `folder`."""

    def __init__(self, root: Path, folder: Path, host: str, port: int, account: BrokerAccount) -> None:
        folder.mkdir(parents=True)
        (folder / "flows.json").write_text(json.dumps(node_red_flow(host, port, folder / "nodered.db")))
        (folder / "flows_cred.json").write_text(json.dumps(
            {"broker": {"user": account.username, "password": account.password}}))
        self.http_port = free_port()
        (folder / "settings.js").write_text(
            "module.exports = {credentialSecret: false, flowFile: 'flows.json', uiHost: '127.0.0.1', "
            f"uiPort: {self.http_port}, httpAdminRoot: false, logging: {{console: {{level: 'warn'}}}}}};\n")
        self.log = (folder / "nodered.log").open("w")
        self.process = subprocess.Popen(
            ["node", str(root / "node_modules" / "node-red" / "red.js"), "--userDir", str(folder),
             "--settings", str(folder / "settings.js")], stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)

    def progress(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/bench/stored", timeout=5) as answer:
            result: dict[str, Any] = json.load(answer)
            return result

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                self.progress()
                time.sleep(1.0)  # the MQTT session subscribes once the flow has started
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"Node-RED did not start (see {self.log.name})")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        self.log.close()


# --- one phase: one database, every consumer, the same stream ------------------------------


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def rate_figures(messages: int, began: float, last: float, cpu_s: float, rss_mb: float) -> dict[str, Any]:
    return {"msgs_per_s": round(messages / (last - began)) if last > began else None,
            "cpu_s_per_1k": round(cpu_s / messages * 1000, 3), "peak_rss_mb": round(rss_mb, 1)}


@contextlib.contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder}/centre.db"
        return
    with postgres_cluster() as url:
        yield url


def phase(args: argparse.Namespace, kind: str, node_red: Path | None) -> dict[str, Any]:
    load_hubs = [hub_name(i) for i in range(args.hubs)]
    alarm_hubs = [f"alarm-{i:04d}" for i in range(args.presses)]
    accounts = {a.username: a for a in [BrokerAccount.generate("centre", "centre"),
                                        BrokerAccount.generate("ceiling", "centre"),
                                        BrokerAccount.generate("nodered", "centre"),
                                        *(BrokerAccount.generate(h, "hub") for h in load_hubs + alarm_hubs)]}
    total = args.hubs * args.per_hub + args.presses
    context = multiprocessing.get_context("spawn")
    with (tempfile.TemporaryDirectory(prefix="telecare-bench-") as tmp,
          Mosquitto(Path(tmp) / "broker", accounts.values()) as broker, database(kind, Path(tmp)) as url):
        peer = NodeRed(node_red, Path(tmp) / "nodered", broker.host, broker.port, accounts["nodered"]) \
            if node_red else None
        centre_ready, ceiling_ready = context.Event(), context.Event()
        centre_results, ceiling_results = context.Queue(), context.Queue()
        job = CentreJob(url, tmp, broker.host, broker.port, accounts["centre"].password, args.max_batch,
                        tuple(load_hubs + alarm_hubs), total, args.profile, args.profile_top, args.receiver_only)
        centre_process = context.Process(target=centre, args=(job, centre_ready, centre_results))
        ceiling_process = context.Process(target=ceiling, args=(
            broker.host, broker.port, "ceiling", accounts["ceiling"].password, total, ceiling_ready, ceiling_results))
        centre_process.start()
        ceiling_process.start()
        try:
            if not centre_ready.wait(180) or not ceiling_ready.wait(30):
                raise RuntimeError("the centre or the ceiling did not start")
            if peer is not None:
                peer.wait_ready()
            start, finished, workers, ready = context.Event(), [], [], []
            for share in [load_hubs[i::args.publishers] for i in range(args.publishers)]:
                done, encoded = context.Event(), context.Event()
                finished.append(done)
                ready.append(encoded)
                worker = context.Process(target=publisher, args=(
                    broker.host, broker.port, [(h, accounts[h].password) for h in share], args.per_hub, encoded,
                    start, done))
                worker.start()
                workers.append(worker)
            alarm_clients = {}
            for hub in alarm_hubs:
                client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"press-{hub}", protocol=mqtt.MQTTv5)
                client.username_pw_set(hub, accounts[hub].password)
                client.connect(broker.host, broker.port)
                client.loop_start()
                alarm_clients[hub] = client
            for encoded in ready:  # publishers connected and their payloads encoded
                if not encoded.wait(300):
                    raise RuntimeError("a publisher did not get ready")
            time.sleep(1.0)  # the alarm clients' connections settle
            pids = {"centre": centre_process.pid or 0, "ceiling": ceiling_process.pid or 0}
            if peer is not None:
                pids["nodered"] = peer.process.pid
            usage_before = {name: process_usage(pid) for name, pid in pids.items()}
            pressed: dict[str, float] = {}
            began, began_wall = time.monotonic(), time.time()
            start.set()
            for hub in alarm_hubs:
                press = DeviceEvent.new(hub_id=hub, device_id="pendant-1", device_type=DeviceType.PERSONAL_TRIGGER,
                                        code=EventCode.MANUAL_ALARM, source_ts=datetime.now(UTC))
                payload = encode(press)
                pressed[hub] = time.monotonic()
                code = press.code if args.press_topic == "alarms" else None
                alarm_clients[hub].publish(topic_for(hub, "event", code), payload, qos=1)
                time.sleep(0.05)
            usage_at_end: dict[str, tuple[float, float]] = {}
            ceiling_state = ceiling_results.get(timeout=900)
            usage_at_end["ceiling"] = process_usage(pids["ceiling"])
            centre_state = centre_results.get(timeout=900)
            usage_at_end["centre"] = process_usage(pids["centre"])
            peer_state: dict[str, Any] = {}
            if peer is not None:
                deadline = time.monotonic() + 900
                while time.monotonic() < deadline:
                    peer_state = peer.progress()
                    if peer_state["stored"] >= total:
                        break
                    time.sleep(0.1)
                usage_at_end["nodered"] = process_usage(pids["nodered"])
            for worker in workers:
                worker.join(60)
            for client in alarm_clients.values():
                client.disconnect()
                client.loop_stop()
        finally:
            centre_process.join(60)
            ceiling_process.join(10)
            for child in (centre_process, ceiling_process):
                if child.is_alive():
                    child.kill()
            if peer is not None:
                peer.stop()

    def cpu(name: str) -> float:
        return usage_at_end[name][0] - usage_before[name][0]

    result: dict[str, Any] = {}
    the_ceiling = rate_figures(ceiling_state["count"], began, ceiling_state["last"], cpu("ceiling"),
                               usage_at_end["ceiling"][1])
    result["ceiling"] = {**the_ceiling, "messages": ceiling_state["count"], "copies": ceiling_state["copies"]}
    the_centre = rate_figures(centre_state["stored"], began, centre_state["last"], cpu("centre"),
                              usage_at_end["centre"][1])
    sizes = centre_state["batch_sizes"]
    result["centre"] = {**the_centre, "messages": centre_state["stored"], "copies": centre_state["copies"],
                        "ratio": round(the_centre["msgs_per_s"] / the_ceiling["msgs_per_s"], 2),
                        "batches": len(sizes), "batch_size_mean": round(statistics.fmean(sizes), 1) if sizes else None,
                        "ingest_thread": centre_state["ingest_thread"]}
    if peer is not None:
        last = began + (peer_state["last"] / 1000 - began_wall) if peer_state.get("last") else began
        the_peer = rate_figures(peer_state["stored"], began, last, cpu("nodered"), usage_at_end["nodered"][1])
        result["nodered"] = {**the_peer, "messages": peer_state["stored"],
                             "ratio": round(the_peer["msgs_per_s"] / the_ceiling["msgs_per_s"], 2)
                             if the_peer["msgs_per_s"] else None}
        result["centre"]["vs_nodered"] = round(the_centre["msgs_per_s"] / the_peer["msgs_per_s"], 2) \
            if the_peer["msgs_per_s"] else None
    latencies = [(centre_state["alerted"][hub] - at) * 1000 for hub, at in pressed.items()
                 if centre_state["alerted"].get(hub) is not None]
    bare = [(ceiling_state["presses"][hub] - at) * 1000 for hub, at in pressed.items()
            if hub in ceiling_state["presses"]]
    result["alarms"] = {
        "pressed": len(pressed), "alerted": len(latencies), "topic": args.press_topic,
        "latency_ms_p50": round(statistics.median(latencies), 1) if latencies else None,
        "latency_ms_p99": percentile(latencies, 0.99) if latencies else None,
        "ceiling_ms_p50": round(statistics.median(bare), 1) if bare else None,
        "ceiling_ms_p99": percentile(bare, 0.99) if bare else None,
        "batches_with_a_press": len(centre_state["alarm_batches"]),
        "largest_batch_with_a_press": max((n for *_, n in centre_state["alarm_batches"]), default=0),
    }
    if centre_state["profile"]:
        for what, rows in centre_state["profile"].items():
            print(f"{kind}: the centre's busy threads, {what} share of samples:", file=sys.stderr)
            for name, part in rows:
                print(f"  {part:6.1%}  {name}", file=sys.stderr)
    print(f"{kind}: " + ", ".join(f"{name} {figures.get('msgs_per_s')} msgs/s" for name, figures in result.items()
                                  if name != "alarms"), file=sys.stderr)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hubs", type=int, default=200)
    parser.add_argument("--per-hub", type=int, default=250)
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--presses", type=int, default=100)
    parser.add_argument("--max-batch", type=int, default=500)
    parser.add_argument("--db", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql (one phase each, in this order)")
    parser.add_argument("--peer", choices=("none", "nodered"), default="none",
                        help="nodered: a Node-RED 4 flow on the same stream in every phase (installed with npm)")
    parser.add_argument("--profile-top", type=int, default=60,
                        help="with --profile: how many functions to print, by self and by inclusive share")
    parser.add_argument("--profile", action="store_true",
                        help="sample the centre's threads' stacks and print where its time goes (stderr)")
    parser.add_argument("--receiver-only", action="store_true",
                        help="the centre acknowledges each batch without storing or detecting it: what its receiver "
                             "alone keeps up with (no alert is raised, so no alarm latency)")
    parser.add_argument("--press-topic", choices=("alarms", "events"), default="alarms",
                        help="where presses are published: the alarms topic, or events (a hub of the earlier layout)")
    args = parser.parse_args()
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    if unknown := set(kinds) - {"sqlite", "postgresql"}:
        parser.error(f"unknown database {sorted(unknown)}")
    node_red, skipped = (install_node_red() if args.peer == "nodered" else (None, ""))
    if skipped:
        print(skipped, file=sys.stderr)
    load_before = os.getloadavg()
    phases = {kind: phase(args, kind, node_red) for kind in kinds}
    print(json.dumps({
        "phases": phases, "messages": args.hubs * args.per_hub + args.presses, "hubs": args.hubs + args.presses,
        "publishers": args.publishers, "max_batch": args.max_batch, "peer": args.peer if node_red else None,
        "receiver_only": args.receiver_only,
        "peer_skipped": skipped or None, "cores": os.cpu_count(),
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in os.getloadavg()]},
    }))


if __name__ == "__main__":
    main()
