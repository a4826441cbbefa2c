"""Several centre workers on one database: who is alive, and who holds whose detection state.

Every worker stores and acknowledges whatever the broker hands it (MQTT v5 shared subscriptions:
`receiver.py`), but each person's detection state (`detection.engine.Engine`: order-dependent
rules, learned baselines, open conditions) lives in exactly one worker at a time, the holder of
the person's lease (`DetectionLease`). Keeping that state in the database instead would cost a
read and a write of a person's whole engine state per message.

- Membership (`CentreWorker`): each worker writes its heartbeat every `heartbeat_s`; a worker whose
  heartbeat is older than `lease_s` is taken as dead.
- Assignment: rendezvous (highest random weight) hashing of each person over the live workers
  (`owner`): every worker computes the same answer from the same list, and when a worker joins or
  leaves only the people it gains or loses move (about 1/n of them).
- Leases (`claim`, `renew`, `release`): a worker claims the people assigned to it whose lease is
  free, expired, or held by an earlier run of itself (a worker runs once at a time under its
  name: a lease of its dead run is dead); renews them every `heartbeat_s` for `lease_s`; releases
  those no longer assigned to it, and all of them on a clean stop. A crashed worker's people are
  claimed by the others once its leases lapse (at most `lease_s` plus one beat).
- Fencing (`holds`): a worker about to observe a message itself checks, in the storing
  transaction, that the lease is still its own, locking the lease row `FOR KEY SHARE`
  (PostgreSQL; SQLite has one writer at a time anyway). A claim locks the rows it takes over
  `FOR UPDATE`, so it waits for that commit, and its warm-up then sees the message; the holder's
  own renewals (`UPDATE` of `until` only) do not conflict with it, so the storing transactions and
  the renewals never wait on each other (nor deadlock). Clocks only decide when a lease lapses,
  never who observes.

Times are UTC datetimes from the worker's clock (keep the workers on NTP: a clock far ahead would
take leases early; the fencing keeps every message observed once even then).
"""

import hashlib
import logging
import secrets
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from monitoring_centre.periodic import PeriodicWorker
from monitoring_centre.storage import CentreWorker, DetectionLease, Hub, utc_now

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0
LEASE_S = 10.0


@dataclass(frozen=True)
class WorkerIdentity:
    """One run of one worker: its stable `name` and this start's random `run` id (`new_run`)."""

    name: str
    run: str


def new_run(name: str) -> WorkerIdentity:
    """A new run of worker `name` (8 hex digits). Raises ValueError for an empty or over-long name."""
    if not name or len(name) > 100:
        raise ValueError(f"a worker's name is 1 to 100 characters, not {name!r}")
    return WorkerIdentity(name, secrets.token_hex(4))


def weight(person: int, worker: str) -> int:
    """The rendezvous weight of `worker` for `person`: 64 bits of BLAKE2b, the same on every worker."""
    digest = hashlib.blake2b(f"{person}\x00{worker}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(person: int, workers: Iterable[str]) -> str | None:
    """The worker `person` is assigned to among `workers` (highest weight; ties by name); None if none."""
    return max(workers, key=lambda worker: (weight(person, worker), worker), default=None)


def assigned(people: Iterable[int], workers: Collection[str], me: str) -> set[int]:
    """The people of `people` that rendezvous hashing gives to `me` among `workers` (`me` counted live)."""
    live = set(workers) | {me}
    return {person for person in people if owner(person, live) == me}


# --- membership ----------------------------------------------------------------------------


def beat(session: Session, worker: WorkerIdentity, now: datetime) -> None:
    """Write `worker`'s heartbeat (its row made or taken over by this run)."""
    row = session.get(CentreWorker, worker.name)
    if row is None:
        session.add(CentreWorker(name=worker.name, run=worker.run, heartbeat_at=now))
    else:
        row.run, row.heartbeat_at = worker.run, now
    session.flush()


def live_workers(session: Session, now: datetime, lease_s: float = LEASE_S) -> list[str]:
    """Names of the workers whose heartbeat is younger than `lease_s` seconds, sorted."""
    cutoff = now - timedelta(seconds=lease_s)
    return sorted(session.scalars(select(CentreWorker.name).where(CentreWorker.heartbeat_at > cutoff)))


def leave(session: Session, worker: WorkerIdentity) -> None:
    """A clean stop: `worker`'s row goes (if this run still owns it), so the others re-assign at once."""
    session.execute(delete(CentreWorker).where(CentreWorker.name == worker.name, CentreWorker.run == worker.run))


def watched_people(session: Session) -> list[int]:
    """The people detection watches: everyone with a hub (a retired home has none), by id."""
    return sorted(set(session.scalars(select(Hub.person_id))))


# --- leases --------------------------------------------------------------------------------


def claim(session: Session, people: Collection[int], worker: WorkerIdentity, now: datetime,
          lease_s: float = LEASE_S) -> set[int]:
    """Take the leases of `people` that are free, lapsed, or held by an earlier run of this worker,
    until `now + lease_s`; returns the people whose lease this run now holds (of those asked)."""
    if not people:
        return set()
    until = now + timedelta(seconds=lease_s)
    wanted = sorted(people)
    rows = [{"person_id": person, "worker": worker.name, "run": worker.run, "until": until} for person in wanted]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(DetectionLease).on_conflict_do_nothing(index_elements=["person_id"]), rows)
    takeable = DetectionLease.person_id.in_(wanted) & ((DetectionLease.until <= now)
                                                      | (DetectionLease.worker == worker.name))
    # FOR UPDATE, in person order: waits for the storing transactions that hold these rows FOR KEY SHARE
    session.execute(select(DetectionLease.person_id).where(takeable).order_by(DetectionLease.person_id)
                    .with_for_update())
    session.execute(
        update(DetectionLease)
        .where(takeable)
        .values(worker=worker.name, run=worker.run, until=until)
        .execution_options(synchronize_session=False))
    return set(session.scalars(select(DetectionLease.person_id).where(
        DetectionLease.person_id.in_(wanted), DetectionLease.worker == worker.name,
        DetectionLease.run == worker.run)))


def renew(session: Session, worker: WorkerIdentity, now: datetime, lease_s: float = LEASE_S) -> set[int]:
    """Extend every lease this run holds to `now + lease_s`; returns the people it still holds (one
    taken by another worker after lapsing is not among them: drop that person's state)."""
    session.execute(update(DetectionLease)
                    .where(DetectionLease.worker == worker.name, DetectionLease.run == worker.run)
                    .values(until=now + timedelta(seconds=lease_s))
                    .execution_options(synchronize_session=False))
    return set(session.scalars(select(DetectionLease.person_id).where(
        DetectionLease.worker == worker.name, DetectionLease.run == worker.run)))


def release(session: Session, people: Collection[int] | None, worker: WorkerIdentity) -> None:
    """Give up the leases of `people` (all of this run's, if None), so another worker claims them at once."""
    statement = delete(DetectionLease).where(DetectionLease.worker == worker.name, DetectionLease.run == worker.run)
    if people is not None:
        if not people:
            return
        statement = statement.where(DetectionLease.person_id.in_(sorted(people)))
    session.execute(statement.execution_options(synchronize_session=False))


def holds(session: Session, person: int, worker: WorkerIdentity, now: datetime) -> bool:
    """Whether this run holds `person`'s lease, unexpired, locking the lease row against a claim until
    the session's transaction ends (PostgreSQL `FOR KEY SHARE`: renewals go on)."""
    found = session.scalar(select(DetectionLease.person_id)
                           .where(DetectionLease.person_id == person, DetectionLease.worker == worker.name,
                                  DetectionLease.run == worker.run, DetectionLease.until > now)
                           .with_for_update(read=True, key_share=True))
    return found is not None


# --- the keeper: one thread per worker ------------------------------------------------------


class Holder(Protocol):
    """What holds people's detection state (`monitoring_centre.detection_queue.SharedDetection`)."""

    def held_people(self) -> set[int]: ...
    def take(self, person_ids: Collection[int]) -> None: ...
    def drop(self, person_ids: Collection[int]) -> None: ...


class LeaseKeeper:
    """Keeps this worker's membership and leases: every `heartbeat_s` (`cycle`) it beats, renews its
    leases (dropping any it lost), releases the people no longer assigned to it (a worker joined)
    and claims those newly assigned (a worker left or died: once their leases lapse), at most
    `claim_chunk` people a cycle so that a long warm-up never lets its own leases lapse.

    `sessions`: the database; `worker`: this run; `holder`: told what to take and drop; `lease_s`:
    how long a lease lasts unrenewed (and how old a heartbeat may be). `start()` runs `cycle` at once
    and then on a thread ("centre-worker-leases"); `stop()` releases every lease and leaves, so the
    others take over within one of their cycles. A crashed worker's leases lapse after `lease_s`.
    """

    def __init__(self, sessions: sessionmaker[Session], worker: WorkerIdentity, holder: Holder, *,
                 heartbeat_s: float = HEARTBEAT_S, lease_s: float = LEASE_S, claim_chunk: int = 500,
                 clock: Callable[[], datetime] = utc_now) -> None:
        if lease_s <= 2 * heartbeat_s:
            raise ValueError(f"a lease ({lease_s} s) must outlast two heartbeats ({heartbeat_s} s each)")
        self.sessions = sessions
        self.worker = worker
        self.holder = holder
        self.heartbeat_s = heartbeat_s
        self.lease_s = lease_s
        self.claim_chunk = claim_chunk
        self.clock = clock
        self.live: list[str] = []
        """The live workers at the last cycle (this one among them)."""
        self._worker = PeriodicWorker("centre-worker-leases", self.cycle, heartbeat_s, logger=log)

    def cycle(self) -> None:
        """One beat: heartbeat, renew, release, claim (see the class docstring)."""
        now = self.clock()
        with self.sessions() as session, session.begin():
            beat(session, self.worker, now)
            live = live_workers(session, now, self.lease_s)
            people = watched_people(session)
            still = renew(session, self.worker, now, self.lease_s)
        self.live = sorted(set(live) | {self.worker.name})
        held = self.holder.held_people()
        if lost := held - still:
            log.warning("worker %s lost the leases of %d people to another worker", self.worker.name, len(lost))
            self.holder.drop(lost)
        mine = assigned(people, self.live, self.worker.name)
        if give_up := (held & still) - mine:
            self.holder.drop(give_up)
            with self.sessions() as session, session.begin():
                release(session, give_up, self.worker)
        if want := sorted(mine - (held & still))[:self.claim_chunk]:
            with self.sessions() as session, session.begin():
                got = claim(session, want, self.worker, self.clock(), self.lease_s)
            if got:
                self.holder.take(got)

    def start(self) -> None:
        """Claim this worker's people now (before the first message), then keep them on a thread."""
        self.cycle()
        self._worker.start()

    def stop(self) -> None:
        """Stop keeping leases; release them all and leave (a clean stop: others take over at once)."""
        self._worker.stop(timeout=30)
        held = self.holder.held_people()
        self.holder.drop(held)
        with self.sessions() as session, session.begin():
            release(session, None, self.worker)
            leave(session, self.worker)
