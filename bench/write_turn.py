"""How long a centre's SQLite writer waits for the write lock: queued in the process (`write_turn`)
against SQLite's own busy handler, in the same run.

Two threads write without pause (a short transaction each: an insert, then 4 ms of work holding
the lock, like the escalator or the record writer in a busy minute), and a third begins a write
every 3 ms (the ingest thread's batches) and times how long its `BEGIN IMMEDIATE` waited. Once
with `make_engine(write_turn=False)`, SQLite's busy handler alone (it sleeps 1, 2, 5, 10 ... 100 ms
between tries, so a waiter may sleep long after the lock is free, or lose it again to a writer
that never slept), the baseline; once with the turn (waiters wake when it is given back).

Prints one JSON line: per mode, the wait's median, p90, p99 and max in ms; `ratio` = p99 with the
turn / p99 without.

    .venv/bin/python bench/write_turn.py [--writes 300]
"""

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from monitoring_centre.storage import make_engine, sqlite_url

HOLD_S = 0.004
"""How long each busy writer holds the lock per transaction."""
EVERY_S = 0.003
"""The timed writer's pause between its transactions."""


def waits(folder: Path, write_turn: bool, writes: int) -> list[float]:
    """The timed writer's wait for the lock, in seconds, one per transaction."""
    engine = make_engine(sqlite_url(folder / f"turn-{write_turn}.db"), write_turn=write_turn)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (a INTEGER)"))
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO t VALUES (1)"))
                time.sleep(HOLD_S)
            time.sleep(0.001)

    writers = [threading.Thread(target=busy, name=f"busy-{n}") for n in range(2)]
    for writer in writers:
        writer.start()
    out = []
    try:
        for _ in range(writes):
            began = time.perf_counter()
            with engine.begin() as connection:
                out.append(time.perf_counter() - began)
                connection.execute(text("INSERT INTO t VALUES (2)"))
            time.sleep(EVERY_S)
    finally:
        stop.set()
        for writer in writers:
            writer.join()
        engine.dispose()
    return sorted(out)


def figures(sample: list[float]) -> dict[str, float]:
    def at(q: float) -> float:
        return round(1000 * sample[round(q * (len(sample) - 1))], 2)
    return {"median_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99), "max_ms": at(1.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--writes", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        sqlite_own = figures(waits(Path(folder), False, args.writes))
        turn = figures(waits(Path(folder), True, args.writes))
    print(json.dumps({"writes": args.writes, "busy_writers": 2, "hold_ms": HOLD_S * 1000,
                      "sqlite_busy_handler": sqlite_own, "write_turn": turn,
                      "ratio": round(turn["p99_ms"] / sqlite_own["p99_ms"], 3)}))


if __name__ == "__main__":
    main()
