"""Who is told of each alert transition, once it is committed: e.g. the answer-time histograms
(`kpis.AnswerTimeMetrics`). The core keeps no registry and no global list of observers.

Observers belong to a `sessionmaker` (`observe_transitions`): they ride in its sessions'
`Session.info`, so each centre process (and each test's centre) has its own, and a session
without them pays nothing. `alerts.transition` calls `written` for every change of state it
writes; the facts an observer needs (when the alert was raised, whether a centre account made
the change) are read there, inside the transition's own transaction, and each observer is
called with them after that transaction commits:

- a transaction rolled back (a full disk, a conflict, a batch the receiver will retry) tells
  nobody, and neither does a savepoint rolled back inside a committed one (ingest's
  message-by-message fallback), so nothing is counted twice or counted that did not happen;
- an observer that raises is logged and skipped: the change is already committed, and the
  request or batch that made it must not fail for a metric.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from monitoring_centre.storage import Alert, AlertTransition, User, utc_now

if TYPE_CHECKING:
    from monitoring_centre.alerts import AlertState  # alerts.py imports this module

log = logging.getLogger(__name__)

OBSERVERS = "telecare_alert_transition_observers"
"""`Session.info` key: the observers (`TransitionObserver`) of a sessionmaker's sessions."""
_PENDING = "telecare_alert_transitions_pending"
"""`Session.info` key: (innermost transaction when written, call) pairs waiting for the commit."""
_OPEN = "open"
"""`AlertState.OPEN`: the state of the transition that raises an alert."""


@dataclass(frozen=True)
class TransitionWritten:
    """One change of an alert's state, as `alerts.transition` wrote it."""

    alert_id: int
    rule: str
    """The rule that raised the alert (`detection.rules.RuleId` value)."""
    priority: int
    """The alert's priority when it changed (1 most urgent; a repeat can only raise it)."""
    before: "AlertState"
    after: "AlertState"
    by: str
    """A username, `system:<rule>` (the detection engine) or `responder:<id>:<name>` (an accept link)."""
    by_account: bool
    """Whether `by` is the username of one of the centre's accounts (a `users` row): a person at
    the centre made the change, not the detection engine and not a responder's accept link."""
    raised_at: datetime
    """When the alert was raised at the centre: the time of its `open` transition (UTC)."""
    at: datetime
    """When the change was written (UTC)."""

    @property
    def since_raised_s(self) -> float:
        """Seconds from `raised_at` to `at` (never negative)."""
        return max(0.0, (self.at - self.raised_at).total_seconds())


TransitionObserver = Callable[[TransitionWritten], None]
"""Called once per committed transition, after the commit, on the thread that committed it."""


def observe_transitions(sessions: sessionmaker[Session], observer: TransitionObserver) -> None:
    """Tell `observer` of every transition committed through a session `sessions` makes from
    now on (sessions made with its options: `sessions.kw`, as the API's are)."""
    info = dict(sessions.kw.get("info") or {})
    info[OBSERVERS] = (*info.get(OBSERVERS, ()), observer)
    sessions.configure(info=info)


def account_named(session: Session, by: str) -> bool:
    """Whether `by` (an `alert_transitions.by`) is the username of one of the centre's accounts."""
    return session.scalar(select(User.id).where(User.username == by)) is not None


def written(session: Session, alert: Alert, before: "AlertState", after: "AlertState", by: str) -> None:
    """`alerts.transition` wrote this change: schedule the session's observers for its commit.
    Reads two rows (the alert's `open` transition, the account named `by`) when there are observers,
    nothing when there are none."""
    observers: tuple[TransitionObserver, ...] = session.info.get(OBSERVERS, ())
    if not observers:
        return
    raised_at = session.scalar(select(func.min(AlertTransition.at))
                               .where(AlertTransition.alert_id == alert.id, AlertTransition.to_status == _OPEN))
    if raised_at is None:  # an alert with no `open` transition is none the centre raised
        return
    change = TransitionWritten(alert_id=alert.id, rule=alert.rule, priority=alert.priority, before=before,
                               after=after, by=by, by_account=account_named(session, by), raised_at=raised_at,
                               at=utc_now())
    innermost = session.get_nested_transaction() or session.get_transaction()
    pending: list[tuple[SessionTransaction | None, Callable[[], None]]] = session.info.setdefault(_PENDING, [])
    pending.extend((innermost, partial(observer, change)) for observer in observers)


def _inside(transaction: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_commit")
def _tell_observers(session: Session) -> None:
    """After the root transaction commits (a savepoint's release also comes here: it waits)."""
    if session.in_nested_transaction():
        return
    for _transaction, call in session.info.pop(_PENDING, ()):
        try:
            call()
        except Exception:
            log.exception("an alert transition observer failed (the transition is committed)")


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    pending = session.info.get(_PENDING)
    if pending:
        pending[:] = [(txn, call) for txn, call in pending if not _inside(txn, previous_transaction)]


@event.listens_for(Session, "after_transaction_end")
def _forget_uncommitted(session: Session, transaction: SessionTransaction) -> None:
    """A root transaction that ended without a commit (closed): what it wrote never happened."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
