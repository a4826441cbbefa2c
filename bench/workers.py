"""Ingest with 1, 2 and 4 centre workers on one PostgreSQL: the rate, and cores per 10,000 users.

    .venv/bin/python bench/workers.py [--workers 1,2,4] [--hubs 100] [--per-hub 100] [--publishers 2]

For each worker count (a phase each, in this one run): a fresh Mosquitto, a throwaway PostgreSQL
cluster (fsync on: `measure.postgres_cluster`), the homes enrolled and the schema migrated by this
process, then N centre workers, each a process of its own (`Centre` in a thread, `TELECARE_WORKER`
w1..wN, MQTT 5 shared subscriptions on, the detection engine running, each person detected by the
holder of their lease). Once every person's lease is with their rendezvous owner, `--publishers`
processes (`ingest.publisher`: a connection per hub, readings 9 in 10 and door events 1 in 10, QoS 1
as fast as the broker acknowledges) publish `hubs x per-hub` messages.

A phase is timed from the publishers' start to the moment every message is stored and the
detection queue is empty (polled every 50 ms: stored, committed, PUBACKed, and observed by the
holder of its person). Figures per phase: `msgs_per_s`; `ratio` to the first phase's rate (1 worker
by default: the baseline, measured in the same run); CPU seconds per 1,000 messages (user + system,
from /proc) of the worker processes (`worker_cpu_s_per_1k`), of the PostgreSQL server with its
backends (`database_cpu_s_per_1k`) and of Mosquitto (`broker_cpu_s_per_1k`); `queued_share` (of the
messages, the part stored by a worker that did not hold the person, observed via the detection queue,
from the workers' `telecare_detection_queued_total`).

The model (`cores_per_10k_users`): Kent's 10,000 users send about 300 msgs/s (issue 17), so they
keep `300 x cpu_s_per_msg` cores busy: for the workers alone, with the database, and with the broker
too (`whole_stack`), from the first phase's CPU per message (CPU per message is what counts, not the
rate, which on shared cores depends on everything else running). On a 2-core machine shared with
other work, the rate flattens (or falls) as workers are added: more processes share the same cores,
each stores smaller batches, and half or more of the messages take the detection queue. The load
average is printed with the figures.

Prints one JSON line: `{"phases": {"1": {...}, "2": {...}, "4": {...}}, "cores_per_10k_users": {...}, ...}`.
"""

import argparse
import json
import multiprocessing
import os
import secrets
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest import hub_name, publisher
from measure import free_port, postgres_cluster, process_usage

from monitoring_centre.broker import BrokerAccount, Mosquitto

KENT_MSGS_PER_S = 300.0
"""Kent's 10,000 users (issue 17): about 300 messages a second."""


def run_worker(url: str, data_dir: str, host: str, port: int, password: str, name: str, http_port: int,
               ready: Any, stop: Any) -> None:
    """One centre worker process until `stop` is set."""
    from centre_app.centre import Centre, CentreThread
    from centre_app.settings import CentreSettings

    settings = CentreSettings(database_url=url, jwt_secret=secrets.token_urlsafe(48), mqtt_host=host, mqtt_port=port,
                              mqtt_password=password, http_port=http_port, data_dir=Path(data_dir),
                              worker=name, mqtt_shared_subscriptions=True)
    with CentreThread(Centre(settings)):
        ready.set()
        stop.wait()


def _processes() -> Iterator[tuple[int, int, str, list[int]]]:
    """(pid, parent pid, command line, stat fields from utime on) of every process readable in /proc."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        yield int(entry.name), int(fields[1]), command, [int(f) for f in fields[11:15]]


def stack_cpu_s(broker_dir: str, database_port: int) -> tuple[float, float]:
    """CPU seconds so far of (the PostgreSQL server: its postmaster, its live backends and the ones it
    has reaped; the Mosquitto broker), found in /proc by the port and the broker's folder."""
    table = list(_processes())
    tick = os.sysconf("SC_CLK_TCK")
    postmaster = next((row for row in table if "postgres" in row[2] and f"-p {database_port} " in row[2]), None)
    database = 0.0
    if postmaster is not None:
        utime, stime, cutime, cstime = postmaster[3]
        database = utime + stime + cutime + cstime + sum(row[3][0] + row[3][1] for row in table
                                                         if row[1] == postmaster[0])
    broker = sum(row[3][0] + row[3][1] for row in table if "mosquitto" in row[2] and broker_dir in row[2])
    return database / tick, broker / tick


def phase(args: argparse.Namespace, count: int) -> dict[str, Any]:
    from sqlalchemy import func, select
    from sqlalchemy.orm import sessionmaker

    from centre_app import schema
    from monitoring_centre import workers
    from monitoring_centre.enrolment import DeviceRecord, enrol_home
    from monitoring_centre.storage import DetectionLease, DetectionQueueEntry, InboundMessage, make_engine

    hubs = [hub_name(i) for i in range(args.hubs)]
    accounts = {a.username: a for a in [BrokerAccount.generate("centre", "centre"),
                                        *(BrokerAccount.generate(hub, "hub") for hub in hubs)]}
    total = args.hubs * args.per_hub
    names = [f"w{i}" for i in range(1, count + 1)]
    context = multiprocessing.get_context("spawn")
    with (tempfile.TemporaryDirectory(prefix="telecare-bench-workers-") as tmp,
          Mosquitto(Path(tmp) / "broker", accounts.values()) as broker, postgres_cluster() as url):
        engine = make_engine(url)
        schema.upgrade(engine)  # once, here: workers starting together would race to create the schema
        sessions = sessionmaker(engine)
        with sessions() as session, session.begin():
            people = [enrol_home(session, name=hub, address="", hub_id=hub, devices=[
                DeviceRecord("oximeter-1", "oximeter"), DeviceRecord("door-1", "door")]).id for hub in hubs]
        stop = context.Event()
        processes, ready, ports = [], [], []
        for name in names:
            started = context.Event()
            folder = Path(tmp) / name
            folder.mkdir()
            ports.append(free_port())
            process = context.Process(target=run_worker, args=(url, str(folder), broker.host, broker.port,
                                                               accounts["centre"].password, name, ports[-1],
                                                               started, stop))
            process.start()
            processes.append(process)
            ready.append(started)
        try:
            for started in ready:
                if not started.wait(300):
                    raise RuntimeError("a worker did not start")
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # every lease with its rendezvous owner
                with sessions() as session:
                    leases = dict(session.execute(select(DetectionLease.person_id, DetectionLease.worker)).all())
                if all(leases.get(person) == workers.owner(person, names) for person in people):
                    break
                time.sleep(0.2)
            else:
                raise RuntimeError("the leases did not settle")
            start, finished, publishers, encoded = context.Event(), [], [], []
            for share in [hubs[i::args.publishers] for i in range(args.publishers)]:
                done, prepared = context.Event(), context.Event()
                finished.append(done)
                encoded.append(prepared)
                pub = context.Process(target=publisher, args=(broker.host, broker.port,
                                                              [(h, accounts[h].password) for h in share],
                                                              args.per_hub, prepared, start, done))
                pub.start()
                publishers.append(pub)
            for prepared in encoded:
                if not prepared.wait(300):
                    raise RuntimeError("a publisher did not get ready")
            cpu_before = sum(process_usage(p.pid or 0)[0] for p in processes)
            database_port = int(url.rsplit(":", 1)[1].split("/")[0])
            stack_before = stack_cpu_s(str(Path(tmp) / "broker"), database_port)
            began = time.monotonic()
            start.set()
            stored = queued = 0
            while time.monotonic() - began < 900:
                with sessions() as session:
                    stored = int(session.scalar(select(func.count()).select_from(InboundMessage)) or 0)
                    queued = int(session.scalar(select(func.count()).select_from(DetectionQueueEntry)) or 0)
                if stored >= total and queued == 0:
                    break
                time.sleep(0.05)
            ended = time.monotonic()
            cpu = sum(process_usage(p.pid or 0)[0] for p in processes) - cpu_before
            stack_after = stack_cpu_s(str(Path(tmp) / "broker"), database_port)
            database_cpu, broker_cpu = (after - before for after, before in zip(stack_after, stack_before, strict=True))
            through_queue = sum(_metric(port, "telecare_detection_queued_total") for port in ports)
            for pub in publishers:
                pub.join(60)
        finally:
            stop.set()
            for process in processes:
                process.join(60)
                if process.is_alive():
                    process.kill()
            engine.dispose()
    rate = stored / (ended - began)
    return {"workers": count, "messages": stored, "msgs_per_s": round(rate), "seconds": round(ended - began, 2),
            "worker_cpu_s_per_1k": round(cpu / stored * 1000, 3),
            "database_cpu_s_per_1k": round(database_cpu / stored * 1000, 3),
            "broker_cpu_s_per_1k": round(broker_cpu / stored * 1000, 3),
            "queued_share": round(through_queue / stored, 2)}


def _metric(port: int, name: str) -> float:
    """The sum of a metric's samples on a worker's /metrics (every label)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", default="1,2,4", help="worker counts, one phase each; the first is the baseline")
    parser.add_argument("--hubs", type=int, default=100)
    parser.add_argument("--per-hub", type=int, default=100)
    parser.add_argument("--publishers", type=int, default=2)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    phases = {str(n): phase(args, n) for n in counts}
    baseline = phases[str(counts[0])]["msgs_per_s"]
    for figures in phases.values():
        figures["ratio"] = round(figures["msgs_per_s"] / baseline, 2)
    base = phases[str(counts[0])]
    model = {"msgs_per_s_per_10k_users": KENT_MSGS_PER_S,
             "workers_only": round(KENT_MSGS_PER_S * base["worker_cpu_s_per_1k"] / 1000, 2),
             "workers_and_database": round(KENT_MSGS_PER_S * (base["worker_cpu_s_per_1k"]
                                                              + base["database_cpu_s_per_1k"]) / 1000, 2),
             "whole_stack": round(KENT_MSGS_PER_S * (base["worker_cpu_s_per_1k"] + base["database_cpu_s_per_1k"]
                                                     + base["broker_cpu_s_per_1k"]) / 1000, 2),
             "from_phase": str(counts[0])}
    print(json.dumps({"bench": "workers", "phases": phases, "cores_per_10k_users": model,
                      "loadavg": Path("/proc/loadavg").read_text().split()[:3], "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
