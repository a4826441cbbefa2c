"""The hub's durable outbox: every message is on disk before MQTT sees it.

A power cut at the hub must not lose an alarm, so `put` commits the message to SQLite
(WAL, `synchronous=FULL`: the commit is on the storage medium when `put` returns, not
only in the OS page cache, which a power cut would lose; NORMAL would survive a killed
process but not a power cut) and a row is deleted only when the centre's end-to-end ack
names it (`acknowledge`), never on the broker's PUBACK: a broker can PUBACK and then lose
the message (a crash before it writes its persistence), the centre cannot.

Order of sending (`next_batch`), in three lanes drained in turn:
0. alarms: events with priority <= `Priority.HIGH` (3), ahead of everything;
1. other events (supervision, restorals, routine state);
2. readings and heartbeats.
Within a lane rows go in the order they were put, so two messages of one device in one
lane are never reordered. An alarm also carries its device's earlier events into lane 0
(ahead of itself), so a device's events are never reordered either, also when resent
after a restart: an alarm never overtakes the cancel before it.

Heartbeats are coalesced: only the newest unsent heartbeat is kept (a replay of an
hour's heartbeats tells the centre nothing the newest does not).

Disk budget (`budget_bytes`, optionally `budget_rows`): when a new reading does not fit,
the older half of the unsent readings is thinned, keeping every other reading of each
device and metric; thinning again and again leaves old data sparser and recent data
whole. What was shed is counted, kept in the `tally` table, and reported to the centre
as one `DeviceEvent` `data_dropped` from the hub (`communication_link`) whose detail
counts it (`readings_dropped`, `since`, `until`). Events are never shed: the budget may
be exceeded for them, and that is logged.

`next_batch` hands rows out ("in flight") until `acknowledge` (the centre's ack) or
`delete` removes them, `requeue` makes some pending again (an ack overdue) or `release`
makes all of them pending again (a reconnect). Which rows are in flight is kept in memory
only: after a restart every row is pending, and is sent again with the same bytes, so
the same message id, and the receiver deduplicates.
"""

import json
import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from pathlib import Path
from typing import Final

from telecare_protocol import DeviceEvent, DeviceType, EventCode, Message, Priority, encode
from telecare_protocol.messages import utc_now

log = logging.getLogger(__name__)

ROW_OVERHEAD_BYTES: Final = 100
"""Added to each row's payload length in the budget: its other columns, index entries and page slack."""
DEFAULT_BUDGET_BYTES: Final = 64 * 1024 * 1024
"""About 195,000 readings: a day of a 1 Hz pulse oximeter (SpO2 and pulse); small beside a Pi's SD card."""
SCHEMA_VERSION: Final = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: the order messages were put
    lane INTEGER NOT NULL,
    kind TEXT NOT NULL,
    device_id TEXT NOT NULL,
    metric TEXT,
    message_id TEXT NOT NULL UNIQUE,
    coalesce_key TEXT,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_lane ON outbox (lane, seq);
CREATE INDEX IF NOT EXISTS outbox_coalesce ON outbox (coalesce_key) WHERE coalesce_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS tally (
    name TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    since TEXT NOT NULL,
    until TEXT NOT NULL
);
"""

_HEARTBEAT: Final = "heartbeat"
_DROP_REPORT: Final = "data_dropped"


class Lane(IntEnum):
    """Sending order: every pending row of a lower lane goes before any of a higher one."""

    ALARM = 0
    EVENT = 1
    ROUTINE = 2


def lane_of(message: Message) -> Lane:
    if message.type == "event":
        return Lane.ALARM if message.priority <= Priority.HIGH else Lane.EVENT
    return Lane.ROUTINE


@dataclass(frozen=True)
class Pending:
    """A row handed out for sending: the exact bytes to publish and the kind that picks the topic."""

    row_id: int
    lane: Lane
    kind: str
    """`reading`, `event` or `heartbeat`: the message `type`."""
    device_id: str
    message_id: str
    payload: bytes


@dataclass(frozen=True)
class Settled:
    """A row the centre's ack removed: which message, of which lane and kind."""

    row_id: int
    lane: Lane
    kind: str
    message_id: str


@dataclass(frozen=True)
class DropCount:
    """Readings shed for the budget: how many, and the first and last time it happened."""

    readings_dropped: int
    since: datetime
    until: datetime


class Outbox:
    """Messages waiting for the centre's ack, in SQLite. Thread-safe (one lock, one connection).

    `path=None` keeps the outbox in memory: no durability, for tests and the demo.
    """

    def __init__(self, path: Path | str | None, *, hub_id: str, budget_bytes: int = DEFAULT_BUDGET_BYTES,
                 budget_rows: int | None = None) -> None:
        if budget_bytes <= 0 or (budget_rows is not None and budget_rows <= 0):
            raise ValueError("an outbox budget must be positive")
        self.hub_id = hub_id
        self.path = Path(path) if path is not None else None
        self.budget_bytes = budget_bytes
        self.budget_rows = budget_rows
        self._lock = threading.Lock()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path) if self.path else ":memory:", isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._rows = 0
        self._bytes = 0
        self._recount()
        self._cursor = dict.fromkeys(Lane, 0)
        """Per lane, the highest row handed out: rows above it are pending, rows at or below are in flight."""
        self._skip: set[int] = set()
        """Rows in flight relabelled into lane 0 above its cursor (see `_promote_events_of`)."""
        self._again: set[int] = set()
        """Rows in flight to be handed out again (`requeue`), ahead of their lane's unsent rows."""
        self._swept = dict.fromkeys(Lane, 0)
        """Per lane, the row id up to which `requeue_gaps` has already looked since the last `release`."""
        self._copies: dict[int, tuple[Lane, int]] = {}
        """Rows handed out again (`_again`), each with its lane and that lane's cursor when the copy went:
        rows above that cursor were sent after the copy (`requeue_gaps`)."""
        self._over_budget_logged = False

    # --- what callers see --------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Rows the centre has not acknowledged yet (pending and in flight)."""
        return self._rows

    @property
    def size_bytes(self) -> int:
        """What the budget counts: payload bytes plus `ROW_OVERHEAD_BYTES` per row."""
        return self._bytes

    def put(self, message: Message) -> int | None:
        """Commit one message; return its row id once it is on disk.

        Idempotent by message id: putting a message already waiting returns its row. None only
        when the message is a reading that had to be shed at once (the budget is full of events).
        """
        return self.put_many([message])[0]

    def put_many(self, messages: Sequence[Message]) -> list[int | None]:
        """Commit several messages in one transaction (one disk flush); row ids in order."""
        with self._lock, self._transaction():
            return [self._put(message) for message in messages]

    def next_batch(self, limit: int) -> list[Pending]:
        """Up to `limit` pending rows in sending order, now in flight (not handed out again until `release`)."""
        batch: list[Pending] = []
        with self._lock:
            for lane in Lane:
                if len(batch) >= limit:
                    break
                if self._again:
                    again = self._db.execute(
                        "SELECT seq, kind, device_id, message_id, payload FROM outbox WHERE lane = ? AND seq IN "
                        "(SELECT value FROM json_each(?)) ORDER BY seq LIMIT ?",
                        (lane, json.dumps(sorted(self._again)), limit - len(batch))).fetchall()
                    self._again.difference_update(seq for seq, *_ in again)
                    self._copies.update((seq, (lane, self._cursor[lane])) for seq, *_ in again)
                    batch += [Pending(seq, lane, kind, device, message_id, bytes(payload))
                              for seq, kind, device, message_id, payload in again]
                    if len(batch) >= limit:
                        break
                rows = self._db.execute(
                    "SELECT seq, kind, device_id, message_id, payload FROM outbox WHERE lane = ? AND seq > ? "
                    "ORDER BY seq LIMIT ?", (lane, self._cursor[lane], limit - len(batch))).fetchall()
                if rows:
                    self._cursor[lane] = rows[-1][0]
                batch += [Pending(seq, lane, kind, device, message_id, bytes(payload))
                          for seq, kind, device, message_id, payload in rows if seq not in self._skip]
                if self._skip and lane == Lane.ALARM:
                    self._skip = {seq for seq in self._skip if seq > self._cursor[Lane.ALARM]}
        return batch

    def delete(self, row_ids: Iterable[int]) -> int:
        """Forget acknowledged rows, all in one transaction. Returns how many were still there."""
        ids = list(row_ids)
        if not ids:
            return 0
        with self._lock, self._transaction():
            sizes = self._db.execute(
                "DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?)) RETURNING length(payload)",
                (json.dumps(ids),)).fetchall()
            self._forget(sizes)
            self._again.difference_update(ids)
            for seq in ids:
                self._copies.pop(seq, None)
        return len(sizes)

    def acknowledge(self, message_ids: Iterable[str]) -> list[Settled]:
        """Forget the rows of messages the centre acknowledged (stored or refused), in one transaction.

        Returns the rows removed now, in row order; ids not (or no longer) in the outbox are ignored,
        so a second ack for the same message changes nothing."""
        wanted = list(dict.fromkeys(message_ids))
        if not wanted:
            return []
        with self._lock, self._transaction():
            rows = self._db.execute(
                "DELETE FROM outbox WHERE message_id IN (SELECT value FROM json_each(?)) "
                "RETURNING seq, lane, kind, message_id, length(payload)", (json.dumps(wanted),)).fetchall()
            self._forget([(size,) for *_, size in rows])
            self._skip.difference_update(seq for seq, *_ in rows)
            self._again.difference_update(seq for seq, *_ in rows)
            for seq, *_ in rows:
                self._copies.pop(seq, None)
        return sorted((Settled(seq, Lane(lane), kind, message_id) for seq, lane, kind, message_id, _ in rows),
                      key=lambda settled: settled.row_id)

    def requeue(self, message_ids: Iterable[str]) -> set[str]:
        """Hand these in-flight messages out again (their ack is overdue), ahead of the unsent rows of
        their lane, in row order. Returns the ids still in the outbox (in flight or already pending)."""
        wanted = list(dict.fromkeys(message_ids))
        if not wanted:
            return set()
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, lane, message_id FROM outbox WHERE message_id IN (SELECT value FROM json_each(?))",
                (json.dumps(wanted),)).fetchall()
            for seq, lane, _message_id in rows:
                if seq in self._skip:  # relabelled into lane 0 above its cursor: the cursor hands it out
                    self._skip.discard(seq)
                elif seq <= self._cursor[Lane(lane)]:
                    self._again.add(seq)
        return {message_id for *_, message_id in rows}

    def requeue_gaps(self, lane: Lane, acknowledged: int) -> int:
        """The centre acknowledged row `acknowledged` of this lane: its rows in flight below it, not yet
        acknowledged, were lost on the way (the centre takes a lane in order), so hand them out again.

        A row is requeued this way once when a later row's ack first passes it, and again only when a
        row sent after its copy is acknowledged while the copy is not: the copy was lost too (with
        several centre workers, a broker gives a dead worker's session its turn until that session
        expires, and whatever it was given then is gone). A copy that is merely on its way is not
        requeued by acks of rows sent before it. Returns how many rows were requeued."""
        with self._lock:
            rows: set[int] = set()
            low = self._swept[lane]
            if acknowledged > low:
                rows.update(seq for (seq,) in self._db.execute(
                    "SELECT seq FROM outbox WHERE lane = ? AND seq > ? AND seq < ? AND seq <= ?",
                    (lane, low, acknowledged, self._cursor[lane])) if seq not in self._skip)
                self._swept[lane] = min(acknowledged - 1, self._cursor[lane])  # rows above were not sent yet
            overtaken = [seq for seq, (copy_lane, sent_before) in self._copies.items()
                         if copy_lane == lane and sent_before < acknowledged and seq not in self._again]
            for seq in overtaken:
                del self._copies[seq]
            rows.update(overtaken)
            self._again.update(rows)
        return len(rows)

    def alarm_payloads(self) -> list[bytes]:
        """The events waiting in lane 0 (alarms and the events they carry), oldest first, as sent."""
        with self._lock:
            return [bytes(payload) for (payload,) in self._db.execute(
                "SELECT payload FROM outbox WHERE lane = ? AND kind = 'event' ORDER BY seq", (Lane.ALARM,))]

    def release(self) -> None:
        """Everything in flight is pending again (as after a restart), to be handed out in order."""
        with self._lock:
            self._cursor = dict.fromkeys(Lane, 0)
            self._skip.clear()
            self._again.clear()
            self._copies.clear()
            self._swept = dict.fromkeys(Lane, 0)

    def pending(self) -> int:
        """Rows not in flight (requeued rows included)."""
        with self._lock:
            return int(self._db.execute(
                "SELECT COUNT(*) FROM outbox WHERE (((lane = 0 AND seq > ?) OR (lane = 1 AND seq > ?) OR "
                "(lane = 2 AND seq > ?)) AND seq NOT IN (SELECT value FROM json_each(?))) "
                "OR seq IN (SELECT value FROM json_each(?))",
                (*self._pending_params(), json.dumps(sorted(self._again)))).fetchone()[0])

    def dropped_counts(self) -> DropCount | None:
        """Every reading shed for the budget since this outbox file was created, or None."""
        with self._lock:
            row = self._db.execute("SELECT count, since, until FROM tally WHERE name = 'readings_dropped'").fetchone()
        if row is None:
            return None
        return DropCount(row[0], datetime.fromisoformat(row[1]), datetime.fromisoformat(row[2]))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- inside the lock -----------------------------------------------------------------

    def _transaction(self) -> "_Transaction":
        return _Transaction(self)

    def _recount(self) -> None:
        rows, payload_bytes = self._db.execute("SELECT COUNT(*), TOTAL(length(payload)) FROM outbox").fetchone()
        self._rows = rows
        self._bytes = int(payload_bytes) + rows * ROW_OVERHEAD_BYTES

    def _put(self, message: Message) -> int | None:
        message_id = str(message.id)
        existing = self._db.execute("SELECT seq FROM outbox WHERE message_id = ?", (message_id,)).fetchone()
        if existing is not None:
            return int(existing[0])
        lane = lane_of(message)
        payload = encode(message)
        size = len(payload) + ROW_OVERHEAD_BYTES
        if message.type == "heartbeat":
            self._delete_pending(_HEARTBEAT)
        elif message.type == "event" and lane == Lane.ALARM:
            self._promote_events_of(message.device_id)
        if self._over_budget(size):
            if message.type == "reading":
                self._shed_readings(size)
                if self._over_budget(size):
                    self._count_dropped(1)
                    return None
            elif not self._over_budget_logged:
                log.warning("hub %s outbox over its budget (%d bytes, %d rows) with no reading left to shed: "
                            "keeping the %s anyway: only readings are ever shed",
                            self.hub_id, self._bytes, self._rows, message.type)
                self._over_budget_logged = True
        else:
            self._over_budget_logged = False
        return self._insert(lane, message, payload, _HEARTBEAT if message.type == "heartbeat" else None)

    def _insert(self, lane: Lane, message: Message, payload: bytes, coalesce_key: str | None) -> int:
        metric = message.metric.value if message.type == "reading" else None
        row_id = self._db.execute(
            "INSERT INTO outbox (lane, kind, device_id, metric, message_id, coalesce_key, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (lane, message.type, message.device_id, metric, str(message.id), coalesce_key, payload)).lastrowid
        assert row_id is not None
        self._rows += 1
        self._bytes += len(payload) + ROW_OVERHEAD_BYTES
        return row_id

    def _forget(self, sizes: Sequence[tuple[int]]) -> None:
        self._rows -= len(sizes)
        self._bytes -= sum(size for (size,) in sizes) + len(sizes) * ROW_OVERHEAD_BYTES

    def _pending_params(self) -> tuple[int | str, ...]:
        """Parameters for "not in flight": the three lane cursors, and the relabelled rows in flight."""
        return (*(self._cursor[lane] for lane in Lane), json.dumps(sorted(self._skip)))

    def _delete_pending(self, coalesce_key: str) -> list[bytes]:
        """Delete the unsent rows with this coalesce key; return their payloads."""
        rows = self._db.execute(
            "DELETE FROM outbox WHERE coalesce_key = ? AND ((lane = 0 AND seq > ?) OR (lane = 1 AND seq > ?) OR "
            "(lane = 2 AND seq > ?)) AND seq NOT IN (SELECT value FROM json_each(?)) RETURNING payload",
            (coalesce_key, *self._pending_params())).fetchall()
        self._forget([(len(payload),) for (payload,) in rows])
        return [bytes(payload) for (payload,) in rows]

    def _promote_events_of(self, device_id: str) -> None:
        """Move the device's lane-1 events into lane 0, ahead of its alarm about to be put, keeping their order.

        Rows in flight keep their row id (a PUBACK is coming for it) and are only relabelled, so that
        after a restart they still go before the alarm; `_skip` stops them being handed out twice now.
        Unsent rows are put again behind the newest row, so lane 0 hands them out next.
        """
        for (seq,) in self._db.execute("UPDATE outbox SET lane = ? WHERE lane = ? AND device_id = ? AND seq <= ? "
                                       "RETURNING seq", (Lane.ALARM, Lane.EVENT, device_id,
                                                         self._cursor[Lane.EVENT])).fetchall():
            if seq > self._cursor[Lane.ALARM]:
                self._skip.add(seq)
        rows = self._db.execute(
            "DELETE FROM outbox WHERE lane = ? AND device_id = ? AND seq > ? "
            "RETURNING seq, kind, device_id, metric, message_id, coalesce_key, payload",
            (Lane.EVENT, device_id, self._cursor[Lane.EVENT])).fetchall()
        for _seq, kind, device, metric, message_id, coalesce_key, payload in sorted(rows):
            self._db.execute(
                "INSERT INTO outbox (lane, kind, device_id, metric, message_id, coalesce_key, payload) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", (Lane.ALARM, kind, device, metric, message_id, coalesce_key, payload))

    def _over_budget(self, extra_bytes: int) -> bool:
        if self._bytes + extra_bytes > self.budget_bytes:
            return True
        return self.budget_rows is not None and self._rows + 1 > self.budget_rows

    def _shed_readings(self, need_bytes: int) -> None:
        """Thin the older half of the unsent readings until `need_bytes` more fit; count what went."""
        shed = 0
        while self._over_budget(need_bytes):
            pending = self._db.execute(
                "SELECT COUNT(*) FROM outbox WHERE lane = ? AND kind = 'reading' AND seq > ?",
                (Lane.ROUTINE, self._cursor[Lane.ROUTINE])).fetchone()[0]
            if pending == 0:
                break
            oldest = self._db.execute(
                "SELECT seq, device_id, metric FROM outbox WHERE lane = ? AND kind = 'reading' AND seq > ? "
                "ORDER BY seq LIMIT ?", (Lane.ROUTINE, self._cursor[Lane.ROUTINE], max(1, pending // 2))).fetchall()
            seen: Counter[tuple[str, str]] = Counter()
            doomed = []
            for seq, device, metric in oldest:
                seen[(device, metric)] += 1
                if seen[(device, metric)] % 2 == 0:  # keep the 1st, 3rd, 5th... of each series
                    doomed.append(seq)
            if not doomed:  # one reading per series left in the old half: drop the oldest outright
                doomed = [oldest[0][0]]
            sizes = self._db.execute(
                "DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?)) RETURNING length(payload)",
                (json.dumps(doomed),)).fetchall()
            self._forget(sizes)
            shed += len(sizes)
        if shed:
            self._count_dropped(shed)

    def _count_dropped(self, n: int) -> None:
        """Add to the tally and to the one unsent `data_dropped` report (replacing it, or starting one)."""
        now = utc_now().isoformat()
        self._db.execute(
            "INSERT INTO tally (name, count, since, until) VALUES ('readings_dropped', ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET count = count + excluded.count, until = excluded.until", (n, now, now))
        since, count = now, n
        for payload in self._delete_pending(_DROP_REPORT):
            detail = json.loads(payload)["detail"]
            count += int(detail["readings_dropped"])
            since = min(since, str(detail["since"]))
        log.warning("hub %s outbox at its budget: shed %d readings (%d unreported since %s)",
                    self.hub_id, n, count, since)
        report = DeviceEvent.new(
            hub_id=self.hub_id, device_id=self.hub_id, device_type=DeviceType.COMMUNICATION_LINK,
            code=EventCode.DATA_DROPPED, source_ts=datetime.fromisoformat(now),
            detail={"readings_dropped": count, "since": since, "until": now, "budget_bytes": self.budget_bytes})
        self._insert(lane_of(report), report, encode(report), _DROP_REPORT)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT; on error ROLLBACK and recount, so the running totals stay true."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    def __enter__(self) -> None:
        self._outbox._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self._outbox._db.execute("COMMIT")
        else:
            if self._outbox._db.in_transaction:  # SQLite has already rolled back after some errors (disk full)
                self._outbox._db.execute("ROLLBACK")
            self._outbox._recount()
