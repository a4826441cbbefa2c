"""Changes told across the centre's workers: "these alerts changed", "this person's profile changed".

Several centre workers (processes, on one machine or many) share one PostgreSQL. A console is
connected to one of them and a person's detection is held by one of them, but an alert may be
raised, acknowledged or resolved, and a person's settings changed, on any. Each change is told to
the other workers with PostgreSQL's `NOTIFY` on the channel `telecare_changes`:

- in the transaction that makes the change (`watch`: Session events, for alert rows and the rows a
  profile is loaded from, as the ORM writes them), so the notice goes out if and only if the change
  commits, and a worker that dies just after its commit has told the others already;
- and after the commit (`announce`), for what the caller knows changed and the ORM did not see (a
  Core `UPDATE`, a device row): ids the transaction told already, on the same thread, are not told
  twice.

Each worker listens on a connection of its own (`PostgresChanges`: a thread, reconnecting with
backoff, a `SELECT 1` after a silence to notice a dead link). A notice from the worker itself is
ignored: its own consoles and runner were told directly, as with one worker. Notices sent while
the listener was not connected are lost (PostgreSQL keeps none for a session that was not
listening), so after every reconnection its subscribers hear `resync`: the consoles refetch
everything, the runner reloads its profiles.

A notice carries ids and the sending worker's name, never personal data: what an id means is read
through the API, where access rules and the audit log apply. A `NOTIFY` payload must be shorter
than 8000 bytes, so a large set of ids goes as several notices (`encode`).

SQLite (one machine: tests, the demo) has one worker: `LocalChanges` tells nobody, as before.

Errors: `decode` raises `BadNotice`; the listener logs a bad notice and tells `resync` (a worker
of a newer version may have said something this one cannot read). A failed `announce` is logged,
never raised: the change is committed already, and the caller (ingest, an API request) must not
fail for a notice.
"""

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Protocol

import psycopg
from sqlalchemy import Engine, event, func, inspect, select
from sqlalchemy.orm import Session, UOWTransaction, sessionmaker

from monitoring_centre.storage import Alert, Hub, PlannedAbsence, RuleSetting

log = logging.getLogger(__name__)

CHANNEL = "telecare_changes"
"""The PostgreSQL notification channel every worker listens on."""
PAYLOAD_LIMIT_BYTES = 7999
"""PostgreSQL refuses a `NOTIFY` payload of 8000 bytes or more (the default build)."""
VERSION = 1
"""The notice format's version (`"v"` in the JSON)."""
MAX_ORIGIN_CHARS = 200
"""A worker's name is at most this long, so a notice with one id always fits in a payload."""

_WATCHER = "telecare_change_feed"
"""`Session.info` key: the `TransactionTeller` of a sessionmaker's sessions (`watch`)."""
_PENDING = "telecare_change_feed_pending"
"""`Session.info` key: the alert and person ids the open transaction's flushes wrote."""
_TOLD = "telecare_change_feed_told"
"""`Session.info` key: what the committing transaction told, handed to its thread after the commit."""


class BadNotice(ValueError):
    """A payload that is not a notice of this format (`decode`); the message says what is wrong."""


@dataclass(frozen=True)
class Notice:
    """One notice: ids only. `origin`: the worker that made the changes (`ChangeFeed.worker`)."""

    origin: str
    alert_ids: frozenset[int] = frozenset()
    """Alerts that changed (raised, repeated, taken, acknowledged, escalated, resolved...)."""
    person_ids: frozenset[int] = frozenset()
    """People whose detection profile changed (settings, absences, hubs, devices)."""

    @property
    def empty(self) -> bool:
        return not self.alert_ids and not self.person_ids


def _size(origin_json: str, alert_ids: list[int], person_ids: list[int]) -> int:
    return len(_payload(origin_json, alert_ids, person_ids).encode())


def _payload(origin_json: str, alert_ids: list[int], person_ids: list[int]) -> str:
    alerts = ",".join(map(str, alert_ids))
    people = ",".join(map(str, person_ids))
    return f'{{"v":{VERSION},"from":{origin_json},"alerts":[{alerts}],"people":[{people}]}}'


def encode(notice: Notice, limit: int = PAYLOAD_LIMIT_BYTES) -> list[str]:
    """The notice as `NOTIFY` payloads of at most `limit` bytes each (compact JSON,
    `{"v":1,"from":"<worker>","alerts":[ids],"people":[ids]}`), ids in ascending order, each id in
    exactly one payload. An empty notice is no payload. Raises `ValueError` if the worker's name
    is longer than `MAX_ORIGIN_CHARS` or one id alone would not fit in `limit`."""
    if len(notice.origin) > MAX_ORIGIN_CHARS:
        raise ValueError(f"a worker's name is at most {MAX_ORIGIN_CHARS} characters")
    if notice.empty:
        return []
    origin_json = json.dumps(notice.origin)  # ASCII only: one byte a character
    base = _size(origin_json, [], [])
    payloads: list[str] = []
    alerts: list[int] = []
    people: list[int] = []
    size = base
    for kind, ids in ((alerts, sorted(notice.alert_ids)), (people, sorted(notice.person_ids))):
        for one in ids:
            grows = len(str(one)) + (1 if kind else 0)
            if size + grows > limit:
                if not alerts and not people:
                    raise ValueError(f"one id does not fit in a payload of {limit} bytes")
                payloads.append(_payload(origin_json, alerts, people))
                alerts.clear()
                people.clear()
                size, grows = base, len(str(one))
            kind.append(one)
            size += grows
    if alerts or people:
        payloads.append(_payload(origin_json, alerts, people))
    return payloads


def _ids(body: dict[str, Any], key: str) -> frozenset[int]:
    ids = body.get(key, [])
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids):
        raise BadNotice(f"{key!r} must be a list of positive integer ids")
    return frozenset(ids)


def decode(payload: str) -> Notice:
    """One payload (`encode`) back to its notice. Raises `BadNotice` naming what is wrong: not JSON,
    not an object, another version, no worker's name, ids that are not positive integers."""
    try:
        body = json.loads(payload)
    except ValueError as error:
        raise BadNotice(f"not JSON: {error}") from None
    if not isinstance(body, dict):
        raise BadNotice("not a JSON object")
    if body.get("v") != VERSION:
        raise BadNotice(f"version {body.get('v')!r}, this worker reads version {VERSION}")
    origin = body.get("from")
    if not isinstance(origin, str) or not origin:
        raise BadNotice("'from' must name the worker")
    return Notice(origin, _ids(body, "alerts"), _ids(body, "people"))


@dataclass(frozen=True)
class Subscriber:
    """What a worker does with the other workers' notices. Each is called on the listener's thread
    and must not block long; an exception is logged and the next notice still comes."""

    alerts_changed: Callable[[frozenset[int]], None]
    """Alerts changed on another worker: tell this worker's consoles (and wake its escalator)."""
    profile_changed: Callable[[int], None]
    """A person's profile changed on another worker: reload it if this worker watches them."""
    resync: Callable[[], None]
    """Notices may have been missed (the listener reconnected): refetch everything."""


class ChangeFeed(Protocol):
    """The centre's side of the notices between workers."""

    worker: str
    """This worker's name in the notices it sends (unique per process and start)."""

    def subscribe(self, subscriber: Subscriber) -> None:
        """Hear the other workers' notices (not this worker's own) from `start()` on."""

    def watch(self, sessions: sessionmaker[Session]) -> None:
        """Tell, in each transaction `sessions`' sessions commit, the alerts and profiles it changed."""

    def announce(self, alert_ids: Iterable[int] = (), person_ids: Iterable[int] = ()) -> None:
        """After a commit: tell the other workers these changed (those not told in the transaction)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class LocalChanges:
    """One worker (SQLite): there is no one else to tell, and nothing to hear."""

    def __init__(self, worker: str) -> None:
        self.worker = worker

    def subscribe(self, subscriber: Subscriber) -> None:
        pass

    def watch(self, sessions: sessionmaker[Session]) -> None:
        pass

    def announce(self, alert_ids: Iterable[int] = (), person_ids: Iterable[int] = ()) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


@dataclass
class Written:
    """Ids a transaction wrote (`written_ids`), or a thread's transactions told (`PostgresChanges`)."""

    alert_ids: set[int] = field(default_factory=set)
    person_ids: set[int] = field(default_factory=set)


def written_ids(new_or_deleted: Iterable[object], modified: Iterable[object] = ()) -> Written:
    """The alert ids and the profile's person ids that a flush touched, from the rows it inserted or
    deleted and those it updated: an `Alert`, and any row with an `alert_id` (transitions, calls,
    escalations, notifications); a `RuleSetting` or `PlannedAbsence` (by `person_id`); a `Hub` added,
    removed or moved to another person (not its other columns: a hub's status changes all the time).
    Rows without an id yet are skipped."""
    found = Written()
    for row, inserted_or_deleted in chain(((row, True) for row in new_or_deleted), ((row, False) for row in modified)):
        alert_id = row.id if isinstance(row, Alert) else getattr(row, "alert_id", None)
        if isinstance(alert_id, int):
            found.alert_ids.add(alert_id)
        people: list[object] = []
        if isinstance(row, RuleSetting | PlannedAbsence):
            people = [row.person_id]
        elif isinstance(row, Hub):
            moved = inspect(row).attrs.person_id.history  # a hub moved: its old person changed too
            people = [row.person_id, *moved.deleted] if inserted_or_deleted or moved.has_changes() else []
        found.person_ids.update(person_id for person_id in people if isinstance(person_id, int))
    return found


class TransactionTeller(Protocol):
    """Who sends the notice of a transaction's changes inside it (`watch_sessions`): `PostgresChanges`."""

    def write(self, session: Session, notice: Notice) -> None:
        """Send `notice` inside `session`'s transaction, before it commits."""

    def told(self, notice: Notice) -> None:
        """`notice` was committed (on this thread)."""

    @property
    def worker(self) -> str: ...


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _flush: UOWTransaction) -> None:
    if session.info.get(_WATCHER) is None:
        return
    modified = (row for row in session.dirty if session.is_modified(row, include_collections=False))
    found = written_ids(chain(session.new, session.deleted), modified)
    if found.alert_ids or found.person_ids:
        pending: Written = session.info.setdefault(_PENDING, Written())
        pending.alert_ids |= found.alert_ids
        pending.person_ids |= found.person_ids


@event.listens_for(Session, "before_commit")
def _notify_in_transaction(session: Session) -> None:
    """The root transaction is about to commit: flush what is left, then `NOTIFY` in it. (A savepoint's
    release comes here too: it waits for the root. A savepoint rolled back may leave ids that did not
    change: a notice too many only makes a console refetch.)"""
    watcher: TransactionTeller | None = session.info.get(_WATCHER)
    if watcher is None or session.in_nested_transaction():
        return
    session.flush()
    pending: Written | None = session.info.pop(_PENDING, None)
    if pending is None:
        return
    notice = Notice(watcher.worker, frozenset(pending.alert_ids), frozenset(pending.person_ids))
    watcher.write(session, notice)
    session.info[_TOLD] = notice


@event.listens_for(Session, "after_commit")
def _told(session: Session) -> None:
    notice: Notice | None = session.info.pop(_TOLD, None)
    watcher: TransactionTeller | None = session.info.get(_WATCHER)
    if notice is not None and watcher is not None:
        watcher.told(notice)


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: Any) -> None:
    """A root transaction ended without a commit: what it wrote never happened."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_TOLD, None)


def watch_sessions(sessions: sessionmaker[Session], teller: TransactionTeller) -> None:
    """Have `teller` send, inside each transaction of `sessions`' sessions (made with its options,
    as the API's are), a notice of the alerts and profiles the ORM wrote in it (`written_ids`)."""
    info = dict(sessions.kw.get("info") or {})
    info[_WATCHER] = teller
    sessions.configure(info=info)


def worker_name(prefix: str) -> str:
    """A name for this worker in its notices: `prefix` (e.g. its MQTT client id), then a random part
    unique to this start, so two workers (or two centres in one test) never take each other's
    notices for their own."""
    return f"{prefix[:MAX_ORIGIN_CHARS - 13]}:{secrets.token_hex(6)}"


class PostgresChanges:
    """Notices between the workers of one PostgreSQL database (`NOTIFY` / `LISTEN`).

    `engine`: the centre's (its URL, with every host of a failover list, is used for the listener's own
    connection). `worker`: this worker's name (`worker_name`). `backoff_s`: the first and the longest
    wait between reconnection attempts (doubling). `ping_s`: seconds of silence after which the
    listener checks its connection (`SELECT 1`), so a link that died without a word is noticed.
    """

    def __init__(self, engine: Engine, worker: str, *, backoff_s: tuple[float, float] = (0.5, 5.0),
                 ping_s: float = 10.0) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("PostgresChanges needs a PostgreSQL database (use LocalChanges for SQLite)")
        self.engine = engine
        self.worker = worker
        self.backoff_s = backoff_s
        self.ping_s = ping_s
        self.listening = threading.Event()
        """Set while the listener's connection is up and `LISTEN`ing."""
        self.resyncs = 0
        """How many times subscribers were told `resync` (reconnections, bad notices)."""
        self.backend_pid: int | None = None
        """The listener's PostgreSQL backend process id while connected (for operators and tests)."""
        self._subscribers: list[Subscriber] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._local = threading.local()

    # sending

    def watch(self, sessions: sessionmaker[Session]) -> None:
        watch_sessions(sessions, self)

    def write(self, session: Session, notice: Notice) -> None:
        """`TransactionTeller`: `pg_notify` in the session's open transaction (sent on its commit)."""
        for payload in encode(notice):
            session.execute(select(func.pg_notify(CHANNEL, payload)))

    def told(self, notice: Notice) -> None:
        """`TransactionTeller`: remembered on this thread, so `announce` after this commit does not repeat it."""
        told = self._told_here()
        if len(told.alert_ids) + len(told.person_ids) > 100_000:  # a thread that never announces
            told.alert_ids.clear()
            told.person_ids.clear()
        told.alert_ids |= notice.alert_ids
        told.person_ids |= notice.person_ids

    def _told_here(self) -> Written:
        told: Written | None = getattr(self._local, "told", None)
        if told is None:
            told = self._local.told = Written()
        return told

    def announce(self, alert_ids: Iterable[int] = (), person_ids: Iterable[int] = ()) -> None:
        """After a commit, on the thread that committed: `NOTIFY` (a transaction of its own) of the ids
        this thread's transactions have not told already. Never raises: a failure is logged."""
        told = self._told_here()
        notice = Notice(self.worker, frozenset(alert_ids) - told.alert_ids, frozenset(person_ids) - told.person_ids)
        told.alert_ids.clear()
        told.person_ids.clear()
        if notice.empty:
            return
        try:
            with self.engine.begin() as connection:
                for payload in encode(notice):
                    connection.execute(select(func.pg_notify(CHANNEL, payload)))
        except Exception:
            log.exception("could not tell the other workers of %d alert and %d profile changes (committed); "
                          "their consoles see them at their next refetch", len(notice.alert_ids),
                          len(notice.person_ids))

    # listening

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def start(self) -> None:
        """Start listening (a daemon thread); returns at once."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._listen, name="centre-change-feed", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop listening; returns once the listener's connection is closed (at most about `timeout_s`)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None

    def _connect(self) -> psycopg.Connection[Any]:
        arguments, options = self.engine.dialect.create_connect_args(self.engine.url)
        options = {key: value for key, value in options.items() if key != "context"}
        options["application_name"] = "telecare-change-listener"
        return psycopg.connect(*arguments, **options, autocommit=True)

    def _listen(self) -> None:
        wait_s = self.backoff_s[0]
        missed = False  # whether notices may have gone by unheard since the last connection
        while not self._stopping.is_set():
            try:
                with self._connect() as connection:
                    connection.execute(f"LISTEN {CHANNEL}")  # a constant, not input
                    self.backend_pid = connection.info.backend_pid
                    self.listening.set()
                    wait_s = self.backoff_s[0]
                    if missed:
                        log.info("listening for the other workers' changes again: consoles refetch")
                        self._tell_resync()
                    missed = True  # from here on, losing the connection may lose notices
                    for payload in self._payloads(connection):
                        self._deliver(payload)
            except (psycopg.Error, OSError) as error:
                log.warning("the listener for the other workers' changes lost its connection (%s); "
                            "retrying in %.1f s", error, wait_s)
            finally:
                self.listening.clear()
                self.backend_pid = None
            if self._stopping.wait(wait_s):
                return
            wait_s = min(wait_s * 2, self.backoff_s[1])

    def _payloads(self, connection: psycopg.Connection[Any]) -> Iterator[str]:
        """Notices' payloads until stopped; raises `psycopg.Error` when the connection fails."""
        quiet_since = time.monotonic()
        while not self._stopping.is_set():
            for notify in connection.notifies(timeout=0.5):
                quiet_since = time.monotonic()
                if notify.channel == CHANNEL:
                    yield notify.payload
            if time.monotonic() - quiet_since >= self.ping_s:
                connection.execute("SELECT 1")
                quiet_since = time.monotonic()

    def _deliver(self, payload: str) -> None:
        try:
            notice = decode(payload)
        except BadNotice as bad:
            log.warning("a notice this worker cannot read (%s): consoles refetch", bad)
            self._tell_resync()
            return
        if notice.origin == self.worker:  # this worker's own: its consoles and runner know already
            return
        for subscriber in self._subscribers:
            if notice.alert_ids:
                self._call(subscriber.alerts_changed, notice.alert_ids)
            for person_id in sorted(notice.person_ids):
                self._call(subscriber.profile_changed, person_id)

    def _tell_resync(self) -> None:
        self.resyncs += 1
        for subscriber in self._subscribers:
            self._call(subscriber.resync)

    @staticmethod
    def _call(callback: Callable[..., None], *arguments: Any) -> None:
        try:
            callback(*arguments)
        except Exception:
            log.exception("a subscriber to the other workers' changes failed; the next notice still comes")


def for_engine(engine: Engine, worker: str) -> ChangeFeed:
    """`PostgresChanges` on PostgreSQL, else (SQLite: one worker) `LocalChanges`."""
    if engine.dialect.name == "postgresql":
        return PostgresChanges(engine, worker)
    return LocalChanges(worker)
