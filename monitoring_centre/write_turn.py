"""SQLite's write lock, queued for inside the centre's process: a writer that finds it taken
wakes the moment it is given back, not at the next step of SQLite's back-off.

SQLite has one writer at a time. A connection whose `BEGIN IMMEDIATE` finds the lock taken
waits in SQLite's busy handler, which sleeps and tries again: 1, 2, 5, 10, 15, 20, 25, 25, 25,
50, 50, then 100 ms between tries (`sqliteDefaultBusyCallback`, sqlite3/src/main.c). A batch
of readings that finds the escalator writing for 3 ms may so sleep for 8 ms, and one that
finds it writing for 30 ms for 53 ms; meanwhile nobody writes. `bench/ingest.py` found the
centre's ingest thread waiting 50-70 ms per batch at its first statement, 2-3 s of a 13 s run,
with the lock mostly free.

The centre's writers (the ingest thread, the escalator, the record writer, the detection
tick, the web API) share one process and one engine, so here each non-read transaction first
takes a `threading.Lock` of the engine's (`Turn`) and gives it back when the transaction ends
(commit, rollback or close of the connection): waiters queue on it and wake at once, and
SQLite's own lock is then almost always free at `BEGIN IMMEDIATE`. Other processes (the admin
command line, a migration) still meet SQLite's busy handler, as before.

A turn never blocks a writer for good: one not had within `busy_timeout` (30 s, the wait SQLite
allows) is logged and counted, and the transaction begins anyway, meeting SQLite's own wait and error.
Read transactions (`storage.begin_read`) take no turn: in WAL mode they never wait for a writer.
"""

import logging
import sqlite3
import threading
import time
from typing import Any

log = logging.getLogger(__name__)


class Turn:
    """The write turn of one engine's connections: at most one holds it, the others wait on it.

    `timeout_s`: how long `take` waits before letting the caller go on without it (then SQLite's
    own busy handler waits, and fails, as it would have). Counts, which `/metrics` exports
    (`centre_app.centre`): `taken` (turns given), `waited` (of those, turns a writer had to wait
    for), `waited_s` (seconds waited, in all), `timed_out` (writers that went on without one)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self.taken = 0
        self.waited = 0
        self.waited_s = 0.0
        self.timed_out = 0

    def take(self) -> bool:
        """Wait for the turn; True when had, False when `timeout_s` passed first (go on without it)."""
        if self._lock.acquire(blocking=False):
            self.taken += 1
            return True
        began = time.monotonic()
        had = self._lock.acquire(timeout=self.timeout_s)
        waited = time.monotonic() - began
        if not had:
            self.timed_out += 1
            log.warning("no SQLite write turn within %.0f s; beginning without one (SQLite waits as before)",
                        self.timeout_s)
            return False
        self.taken += 1
        self.waited += 1
        self.waited_s += waited
        return True

    def give_back(self) -> None:
        self._lock.release()


class TurnConnection(sqlite3.Connection):
    """A sqlite3 connection that gives back its engine's write turn when its transaction ends.

    Made per engine by `connection_class`, which sets `turn`. `begin_write()` takes the turn (the
    engine's `begin` hook calls it before `BEGIN IMMEDIATE`); `commit`, `rollback` and `close` give
    it back, after SQLite has ended the transaction, also when they raise."""

    turn: Turn
    _holding = False

    def begin_write(self) -> None:
        if not self._holding:
            self._holding = self.turn.take()

    def end_write(self) -> None:
        """Give the turn back, if held (also when a `BEGIN IMMEDIATE` after `begin_write` failed)."""
        if self._holding:
            self._holding = False
            self.turn.give_back()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.end_write()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.end_write()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.end_write()


def connection_class(turn: Turn) -> type[TurnConnection]:
    """A `sqlite3.connect(factory=...)` class whose connections share `turn`."""
    attributes: dict[str, Any] = {"turn": turn}
    return type("EngineTurnConnection", (TurnConnection,), attributes)
