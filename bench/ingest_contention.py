"""Ingest beside a busy thread: what a batch waits for Python's global interpreter lock.

The centre stores a batch in one thread while others run Python beside it: the MQTT client's
network thread parses the next messages, the escalator snapshots chains, the record writer builds
FHIR Bundles. Every time the database driver lets go of the interpreter's lock (SQLite's, for
every statement and every row it steps; psycopg's, whenever it waits on the server's socket, with
`--postgresql`) the ingest thread may wait up to the switch interval
(5 ms) to get it back while another thread is busy. This bench shows that cost on its own,
without a broker, and in the same run:
- the baseline: batches of readings from `--homes` homes stored by `Ingest.process` alone;
- the same batches with one thread beside it running Python without pause (a worst case: the
  centre's other threads are busy part of the time).

Prints one JSON line: wall and CPU microseconds per message alone and beside the busy thread, and
`ratio`, wall beside it over wall alone.

    .venv/bin/python bench/ingest_contention.py [--homes 100] [--batches 20] [--database-url URL] [--postgresql]
"""

import argparse
import json
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import add_database_options, centre_in_process

from centre_app.centre import Centre
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.ingest import Inbound
from telecare_protocol.codec import encode
from telecare_protocol.codes import Metric
from telecare_protocol.messages import Reading
from telecare_protocol.topics import topic_for

PER_HOME = 4
"""Readings a home sends per batch (SpO2 and pulse, twice: a 1 Hz oximeter over a 2 s batch)."""


def batches(hubs: list[str], count: int, start: datetime) -> list[list[Inbound]]:
    out = []
    for k in range(count):
        batch = []
        for j in range(PER_HOME):
            metric = Metric.SPO2 if j % 2 == 0 else Metric.PULSE_RATE
            for hub in hubs:
                at = start + timedelta(seconds=k * PER_HOME + j)
                batch.append(Inbound(topic_for(hub, "reading"), encode(Reading(
                    hub_id=hub, device_id="oximeter-1", metric=metric, source_ts=at,
                    value=96.0 if metric == Metric.SPO2 else 70.0, unit="%" if metric == Metric.SPO2 else "/min"))))
        out.append(batch)
    return out


def timed(centre: Centre, work: list[list[Inbound]]) -> tuple[float, float]:
    """(wall, CPU of this thread) in µs per message, storing `work`."""
    messages = sum(len(batch) for batch in work)
    wall, cpu = time.perf_counter(), time.thread_time()
    for batch in work:
        centre.ingest.process(batch)
    return ((time.perf_counter() - wall) / messages * 1e6, (time.thread_time() - cpu) / messages * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--homes", type=int, default=100)
    parser.add_argument("--batches", type=int, default=20)
    add_database_options(parser)
    args = parser.parse_args()
    with centre_in_process(args) as (centre, database):
        hubs = [f"home-{n:04d}" for n in range(args.homes)]
        with centre.sessions() as session, session.begin():
            for hub in hubs:
                enrol_home(session, name=hub, address="", hub_id=hub, devices=[DeviceRecord("oximeter-1", "oximeter")])
        centre.detection.load()
        start = datetime.now(UTC) - timedelta(days=1)
        work = batches(hubs, 2 * args.batches + 2, start)
        timed(centre, work[:2])  # warm: compiled statements, detection state
        alone_wall, alone_cpu = timed(centre, work[2:2 + args.batches])
        stop = threading.Event()

        def busy() -> None:
            spin = 0
            while not stop.is_set():
                for n in range(1000):
                    spin += n

        beside = threading.Thread(target=busy, name="busy", daemon=True)
        beside.start()
        try:
            busy_wall, busy_cpu = timed(centre, work[2 + args.batches:])
        finally:
            stop.set()
            beside.join()
    print(json.dumps({
        "database": database,
        "homes": args.homes, "messages_per_batch": args.homes * PER_HOME, "batches": args.batches,
        "switch_interval_ms": sys.getswitchinterval() * 1000,
        "alone_us_per_message": {"wall": round(alone_wall, 1), "cpu": round(alone_cpu, 1)},
        "beside_a_busy_thread_us_per_message": {"wall": round(busy_wall, 1), "cpu": round(busy_cpu, 1)},
        "ratio": round(busy_wall / alone_wall, 2),
    }))


if __name__ == "__main__":
    main()
