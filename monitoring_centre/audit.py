"""The audit trail: who saw or changed a person's data, when, and why.

Reads go on when the database cannot store their audit rows (a full disk): the API's
sessions are `AuditDeferringSession`s, whose commit, when it fails for lack of storage and
all it had to write were audit rows, keeps the rows in memory (`AuditBacklog`) and returns,
so the read is served (flagged as such by the caller). The rows are written, with the time
they were made, as soon as the database takes writes again (`storage_health.StorageHealth.retry`).
A change of data is never deferred: it fails as before. The backlog is bounded
(`MAX_WAITING`): when it is full, reads fail too, rather than go unaudited. It is memory:
a centre restarted during the fault loses the rows still waiting (the log says how many).
"""

import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from monitoring_centre.storage import AuditEntry, utc_now

if TYPE_CHECKING:
    from monitoring_centre.storage_health import StorageHealth

MAX_WAITING = 100_000
"""Audit rows kept in memory at most (a few hundred bytes each: tens of MB). A console fetches
its queue on every change and each fetch audits one row per person shown, so this is hours of
a busy centre's reading; beyond it the centre refuses reads rather than serve them unaudited."""


def record(session: Session, actor: str, action: str, person_ids: Iterable[int | None], detail: str = "") -> None:
    """One row per person concerned, so "who saw Mrs Smith's data?" is a single query."""
    now = utc_now()
    for person_id in sorted(set(person_ids), key=lambda p: -1 if p is None else p):
        entry = AuditEntry(at=now, actor=actor, action=action, person_id=person_id, detail=detail)
        session.add(entry)
        if isinstance(session, AuditDeferringSession):
            session.audit_rows.append(entry)


@dataclass(frozen=True)
class PendingEntry:
    """An audit row waiting in memory, as it was made."""

    at: datetime
    actor: str
    action: str
    person_id: int | None
    detail: str

    @classmethod
    def of(cls, entry: AuditEntry) -> "PendingEntry":
        return cls(entry.at, entry.actor, entry.action, entry.person_id, entry.detail)

    def entry(self) -> AuditEntry:
        """A new row to store, with the time it was made."""
        return AuditEntry(at=self.at, actor=self.actor, action=self.action, person_id=self.person_id,
                          detail=self.detail)


class AuditBacklog:
    """Audit rows the database could not take, oldest first, until it can (thread-safe)."""

    def __init__(self, limit: int = MAX_WAITING) -> None:
        self.limit = limit
        self._rows: deque[PendingEntry] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)

    def add(self, rows: Sequence[PendingEntry]) -> bool:
        """Keep `rows`, all or none: False (and none kept) when they would pass `limit`."""
        with self._lock:
            if len(self._rows) + len(rows) > self.limit:
                return False
            self._rows.extend(rows)
            return True

    def take(self) -> list[PendingEntry]:
        """Every waiting row, oldest first, no longer waiting (`restore` them if they cannot be written)."""
        with self._lock:
            rows = list(self._rows)
            self._rows.clear()
            return rows

    def restore(self, rows: Sequence[PendingEntry]) -> None:
        """Put rows back in front, as they were before `take` (never refused: they were kept already)."""
        with self._lock:
            self._rows.extendleft(reversed(rows))

    def waiting(self, action: str, since: datetime) -> list[PendingEntry]:
        """Waiting rows of `action` made at or after `since`, oldest first: what a counter over
        the audit log (test messages) adds while rows wait here."""
        with self._lock:
            return [row for row in self._rows if row.action == action and row.at >= since]


class AuditDeferringSession(Session):
    """A session for the API's routes (see the module docstring). `storage` is the centre's
    storage health: where the rows wait, and what counts the fault; `on_deferred` is told each
    time rows were kept instead of stored (the API flags its answer)."""

    def __init__(self, storage: "StorageHealth", on_deferred: Callable[[], None] | None = None,
                 **options: Any) -> None:
        super().__init__(**options)
        self.storage = storage
        self.on_deferred = on_deferred
        self.audit_rows: list[AuditEntry] = []
        """Audit rows added in this transaction (`record`)."""
        self.other_writes = False
        """Whether this transaction wrote anything but audit rows."""

    def commit(self) -> None:
        rows = [PendingEntry.of(entry) for entry in self.audit_rows]
        other = self.other_writes or any(not isinstance(obj, AuditEntry) for obj in self.new) \
            or bool(self.dirty) or bool(self.deleted)
        try:
            super().commit()
        except DBAPIError as error:
            from monitoring_centre.storage_health import is_storage_fault  # it imports this module

            if other or not rows or not is_storage_fault(error):
                raise
            super().rollback()
            self.storage.failed(error)
            if not self.storage.backlog.add(rows):
                raise
            self.storage.deferred(len(rows))
            if self.on_deferred is not None:
                self.on_deferred()
        finally:
            self._new_transaction()

    def rollback(self) -> None:
        super().rollback()
        self._new_transaction()

    def _new_transaction(self) -> None:
        self.audit_rows = []
        self.other_writes = False


@event.listens_for(AuditDeferringSession, "before_flush")
def _note_flushed_writes(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    if isinstance(session, AuditDeferringSession) and (
            any(not isinstance(obj, AuditEntry) for obj in session.new) or session.dirty or session.deleted):
        session.other_writes = True


@event.listens_for(AuditDeferringSession, "do_orm_execute")
def _note_statement_writes(state: ORMExecuteState) -> None:
    if isinstance(state.session, AuditDeferringSession) and (state.is_insert or state.is_update or state.is_delete):
        state.session.other_writes = True
