"""Whether the centre's database takes writes: the storage fault, from the first failed write
to the write that proves space is back.

A full disk (or a failing one) must not blind the centre. Ingest already holds hub
acknowledgements until its batch commits; everything else needs to know too:

- every failure of the database engine goes through `watch`'s hook (SQLAlchemy's
  `handle_error`), which recognises a storage fault (`is_storage_fault`: SQLite's
  SQLITE_FULL, SQLITE_IOERR, SQLITE_READONLY; PostgreSQL's disk_full 53100, io_error 58030,
  read_only_sql_transaction 25006), counts it, and opens the fault (`StorageHealth.fault`);
- reads keep working: a read route's audit rows that cannot be written wait in memory
  (`audit.AuditBacklog`, `audit.AuditDeferringSession`), and the answer says so;
- the fault is the centre's own supervision alert, `CENTRE_STORAGE_FAULT` (priority 4,
  supervision, as the TSA levels put equipment faults): it cannot be an alert row, since it
  has no person and the alerts table is on the full disk, so `/health` (503), the consoles'
  live stream (a banner) and `/metrics` carry it, and the log says it at ERROR;
- `retry` (the centre runs it every `RETRY_S`) writes the waiting audit rows, and once no
  write has failed for `QUIET_S` it writes a row saying what happened ("storage_fault",
  from when to when, how many writes failed) and ends the fault. A small write can fit in
  a disk that is still nearly full, so one success alone does not end it.

Thread-safe: the hook runs on whichever thread's write failed.
"""

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.orm import Session, sessionmaker

from detection.rules import TSA
from monitoring_centre.audit import AuditBacklog
from monitoring_centre.storage import AuditEntry, utc_now
from telecare_protocol import Priority

log = logging.getLogger(__name__)

RETRY_S = 5.0
"""How often waiting audit rows are tried again while the database refuses writes."""
QUIET_S = 30.0
"""How long without a failed write before a successful one ends the fault: six retries, so a
disk that takes a small write but still fails the next batch does not flap the banner."""
SQLITE_CODES = {13: "SQLITE_FULL", 10: "SQLITE_IOERR", 8: "SQLITE_READONLY"}
"""Primary SQLite result codes (the low byte of an extended code) that mean the storage refuses writes."""
POSTGRES_STATES = {"53100": "disk_full", "58030": "io_error", "25006": "read_only_sql_transaction"}
"""PostgreSQL SQLSTATEs that mean the storage refuses writes."""


@dataclass(frozen=True)
class CentreCondition:
    """A fault of the centre itself, raised by the centre (not by the detection engine), kept in memory."""

    rule: str
    title: str
    priority: Priority
    source: str


CENTRE_STORAGE_FAULT = CentreCondition(
    rule="centre_storage_fault", title="Centre storage fault: the database refuses writes",
    priority=Priority.SUPERVISION,
    source=f"{TSA}; a fault of the monitoring equipment itself, and the centre is part of it",
)


def storage_error_name(error: BaseException) -> str | None:
    """The name of the storage fault `error` is ("SQLITE_FULL", "disk_full", …), or None when it
    is any other failure (a lock, a constraint, a lost connection). `error` may be the driver's
    exception or SQLAlchemy's wrapper of it."""
    original = getattr(error, "orig", None) or error
    code = getattr(original, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in SQLITE_CODES:
        return SQLITE_CODES[code & 0xFF]
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if isinstance(state, str) and state in POSTGRES_STATES:
        return POSTGRES_STATES[state]
    return None


def is_storage_fault(error: BaseException) -> bool:
    """Whether `error` means the database cannot store anything now (`storage_error_name`)."""
    return storage_error_name(error) is not None


@dataclass(frozen=True)
class StorageFault:
    """A storage fault in progress."""

    since: datetime
    """The first failed write (UTC)."""
    last_failure_at: datetime
    failures: int
    """Writes that failed since `since`."""
    error: str
    """The latest failure's name (`storage_error_name`)."""


class StorageHealth:
    """The centre's storage fault, and the audit rows waiting for the database (`backlog`).

    `on_change` is called (on the thread that changed it) when a fault starts or ends; the
    centre wakes the consoles' live streams with it. `clock` gives the time (UTC); tests move it.
    """

    def __init__(self, *, backlog: AuditBacklog | None = None, registry: CollectorRegistry | None = None,
                 on_change: Callable[[], None] | None = None, clock: Callable[[], datetime] = utc_now) -> None:
        self.backlog = backlog if backlog is not None else AuditBacklog()
        self.on_change = on_change
        self.clock = clock
        self._lock = threading.Lock()
        self._fault: StorageFault | None = None
        self._seen: BaseException | None = None
        self._failures = Counter("telecare_storage_write_failures", "Database writes refused for lack of storage "
                                 "(full disk, I/O error, read-only)", registry=registry)
        self._deferred = Counter("telecare_audit_deferred", "Audit rows kept in memory because the database "
                                 "refused them (written later)", registry=registry)
        fault = Gauge("telecare_storage_fault", "1 while the centre's database refuses writes (the "
                      "centre_storage_fault condition)", registry=registry)
        fault.set_function(lambda: 0.0 if self.fault is None else 1.0)
        waiting = Gauge("telecare_audit_backlog", "Audit rows waiting in memory for the database", registry=registry)
        waiting.set_function(lambda: float(len(self.backlog)))

    @property
    def fault(self) -> StorageFault | None:
        """The fault in progress, or None while the database takes writes."""
        with self._lock:
            return self._fault

    def watch(self, engine: Engine) -> None:
        """Hear of every failure of `engine`'s connections (SQLAlchemy's `handle_error`)."""
        event.listen(engine, "handle_error", self._on_error)

    def _on_error(self, context: ExceptionContext) -> None:
        if is_storage_fault(context.original_exception):
            self.failed(context.original_exception)

    def failed(self, error: BaseException) -> None:
        """A write failed for lack of storage: start the fault, or count it in the one in progress.
        The same exception told twice (the hook, then a session that caught it) counts once."""
        original = getattr(error, "orig", None) or error
        name = storage_error_name(original) or type(original).__name__
        now = self.clock()
        with self._lock:
            if original is self._seen:
                return
            self._seen = original
            started = self._fault is None
            previous = self._fault
            self._fault = StorageFault(since=now if previous is None else previous.since, last_failure_at=now,
                                       failures=1 if previous is None else previous.failures + 1, error=name)
        self._failures.inc()
        if started:
            log.error("%s (%s): %s; reads go on, audit rows wait in memory", CENTRE_STORAGE_FAULT.title, name,
                      original)
            self._changed()

    def deferred(self, rows: int) -> None:
        """Count audit rows a read kept in memory (`audit.AuditDeferringSession`)."""
        self._deferred.inc(rows)

    def retry(self, sessions: sessionmaker[Session]) -> bool:
        """Write the waiting audit rows, and end a fault once no write has failed for `QUIET_S`,
        with a row of its own saying what happened (action "storage_fault", actor
        "system:centre"), all in one transaction. Returns True when nothing is left to do (the
        database took it all and no fault is open). A failure puts the rows back, and is
        counted in the fault; it never raises."""
        fault = self.fault
        if fault is None and not len(self.backlog):
            return True
        now = self.clock()
        ending = fault is not None and (now - fault.last_failure_at).total_seconds() >= QUIET_S
        rows = self.backlog.take()
        try:
            with sessions() as session:
                session.add_all(row.entry() for row in rows)
                if ending and fault is not None:
                    session.add(AuditEntry(at=now, actor="system:centre", action="storage_fault", person_id=None,
                                           detail=self._episode(fault, now, len(rows))))
                session.commit()
        except Exception as error:
            self.backlog.restore(rows)
            if is_storage_fault(error):
                self.failed(error)
            else:
                log.exception("could not write %d waiting audit rows; trying again in %g s", len(rows), RETRY_S)
            return False
        if ending:
            with self._lock:
                ended = self._fault is fault  # not if a write failed meanwhile
                if ended:
                    self._fault = None
            if ended:
                log.warning("%s ended: the database takes writes again; %d waiting audit rows written",
                            CENTRE_STORAGE_FAULT.rule, len(rows))
                self._changed()
        return self.fault is None and not len(self.backlog)

    def _episode(self, fault: StorageFault, now: datetime, written: int) -> str:
        minutes = math.ceil((now - fault.since).total_seconds() / 60)
        return (f"{CENTRE_STORAGE_FAULT.rule}: from {fault.since:%Y-%m-%d %H:%M:%S} to {now:%H:%M:%S} UTC "
                f"(about {minutes} min), {fault.failures} writes refused ({fault.error}); {written} audit rows "
                "kept in memory meanwhile, written now")

    def report(self) -> dict[str, Any]:
        """The fault as `/health` and the live stream give it: `{"ok": true, "audit_pending": 0}`,
        or `{"ok": false, "rule": "centre_storage_fault", "title", "priority": 4, "since" (ISO 8601
        UTC), "failures", "error" ("SQLITE_FULL", …), "audit_pending"}`."""
        fault = self.fault
        report: dict[str, Any] = {"ok": fault is None, "audit_pending": len(self.backlog)}
        if fault is not None:
            report |= {"rule": CENTRE_STORAGE_FAULT.rule, "title": CENTRE_STORAGE_FAULT.title,
                       "priority": int(CENTRE_STORAGE_FAULT.priority), "since": fault.since.isoformat(),
                       "failures": fault.failures, "error": fault.error}
        return report

    def banner(self) -> dict[str, Any]:
        """What a console shows, steady while a fault lasts: `{"storage_fault": false}`, or
        `{"storage_fault": true, "rule": "centre_storage_fault", "title", "since" (ISO 8601 UTC)}`."""
        fault = self.fault
        if fault is None:
            return {"storage_fault": False}
        return {"storage_fault": True, "rule": CENTRE_STORAGE_FAULT.rule, "title": CENTRE_STORAGE_FAULT.title,
                "since": fault.since.isoformat()}

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:  # telling the consoles must never break the write path that noticed
                log.exception("could not announce a change of the storage fault")
