"""Several centre workers: rendezvous assignment, membership and detection leases (`monitoring_centre/workers.py`)."""

from collections.abc import Collection
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitoring_centre import workers
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.storage import DetectionLease
from monitoring_centre.workers import LeaseKeeper, WorkerIdentity

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
A, A_AGAIN, B = WorkerIdentity("a", "00000001"), WorkerIdentity("a", "00000002"), WorkerIdentity("b", "00000003")


@pytest.fixture
def sessions(migrated_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    return migrated_sessions


def enrol(sessions: sessionmaker[Session], homes: int) -> list[int]:
    with sessions() as session, session.begin():
        return [enrol_home(session, name=f"Person {n}", address="1 Test Street", hub_id=f"hub-{n}",
                           devices=[DeviceRecord(f"pendant-{n}", "pendant")]).id for n in range(homes)]


# --- rendezvous ------------------------------------------------------------------------------


def test_each_person_has_one_owner_and_the_load_is_spread() -> None:
    people = range(1, 2001)
    names = ["w1", "w2", "w3", "w4"]
    shares = [workers.assigned(people, names, me) for me in names]
    assert sum(len(share) for share in shares) == 2000
    assert set().union(*shares) == set(people)
    assert all(350 <= len(share) <= 650 for share in shares), [len(share) for share in shares]


def test_a_worker_leaving_moves_only_its_own_people() -> None:
    people = range(1, 1001)
    before = {person: workers.owner(person, ["w1", "w2", "w3"]) for person in people}
    after = {person: workers.owner(person, ["w1", "w3"]) for person in people}
    moved = {person for person in people if before[person] != after[person]}
    assert moved == {person for person in people if before[person] == "w2"}
    assert workers.owner(7, []) is None


def test_a_run_needs_a_name() -> None:
    with pytest.raises(ValueError, match="worker's name"):
        workers.new_run("")
    first, second = workers.new_run("w1"), workers.new_run("w1")
    assert first.name == "w1" and first.run != second.run


# --- membership and leases -------------------------------------------------------------------


def test_live_workers_are_those_with_a_recent_heartbeat(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        workers.beat(session, A, T0)
        workers.beat(session, B, T0 + timedelta(seconds=8))
    with sessions() as session, session.begin():
        assert workers.live_workers(session, T0 + timedelta(seconds=9), lease_s=10) == ["a", "b"]
        assert workers.live_workers(session, T0 + timedelta(seconds=11), lease_s=10) == ["b"]
        workers.leave(session, B)
        assert workers.live_workers(session, T0 + timedelta(seconds=11), lease_s=10) == []


def test_a_held_lease_is_not_claimed_until_it_lapses(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        assert workers.claim(session, [1, 2], A, T0, lease_s=10) == {1, 2}
    with sessions() as session, session.begin():
        assert workers.claim(session, [1, 2, 3], B, T0 + timedelta(seconds=5), lease_s=10) == {3}
        assert workers.holds(session, 1, A, T0 + timedelta(seconds=5))
        assert not workers.holds(session, 1, B, T0 + timedelta(seconds=5))
    with sessions() as session, session.begin():  # renewed to T0 + 16 s
        assert workers.renew(session, A, T0 + timedelta(seconds=6), lease_s=10) == {1, 2}
    with sessions() as session, session.begin():
        assert workers.claim(session, [2], B, T0 + timedelta(seconds=15), lease_s=10) == set()
    with sessions() as session, session.begin():  # A missed its renewals: B takes the lapsed lease it asks for
        assert workers.claim(session, [2], B, T0 + timedelta(seconds=17), lease_s=10) == {2}
    with sessions() as session, session.begin():  # A, back, keeps the one nobody took, and learns it lost 2
        assert workers.renew(session, A, T0 + timedelta(seconds=18), lease_s=10) == {1}
        assert not workers.holds(session, 2, A, T0 + timedelta(seconds=18))
        assert workers.holds(session, 2, B, T0 + timedelta(seconds=18))


def test_a_restarted_worker_takes_back_its_dead_runs_leases_at_once(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        workers.claim(session, [1, 2], A, T0, lease_s=10)
    with sessions() as session, session.begin():
        assert workers.claim(session, [1, 2], A_AGAIN, T0 + timedelta(seconds=1), lease_s=10) == {1, 2}
        assert workers.renew(session, A, T0 + timedelta(seconds=1), lease_s=10) == set()


def test_released_leases_are_free_at_once(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        workers.claim(session, [1, 2, 3], A, T0, lease_s=10)
        workers.release(session, [1], A)
    with sessions() as session, session.begin():
        assert workers.claim(session, [1, 2], B, T0 + timedelta(seconds=1), lease_s=10) == {1}
        workers.release(session, None, A)
        assert session.scalars(select(DetectionLease.person_id).order_by(DetectionLease.person_id)).all() == [1]


# --- the keeper ------------------------------------------------------------------------------


class FakeHolder:
    """Records what a keeper takes and drops."""

    def __init__(self) -> None:
        self.people: set[int] = set()
        self.taken: list[set[int]] = []

    def held_people(self) -> set[int]:
        return set(self.people)

    def take(self, person_ids: Collection[int]) -> None:
        self.taken.append(set(person_ids))
        self.people |= set(person_ids)

    def drop(self, person_ids: Collection[int]) -> None:
        self.people -= set(person_ids)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_two_keepers_split_the_people_and_one_takes_over_from_a_crashed_one(
        sessions: sessionmaker[Session]) -> None:
    people = set(enrol(sessions, 12))
    clock = Clock()
    one, two = FakeHolder(), FakeHolder()
    first = LeaseKeeper(sessions, A, one, heartbeat_s=2, lease_s=10, clock=clock)
    second = LeaseKeeper(sessions, B, two, heartbeat_s=2, lease_s=10, clock=clock)
    first.cycle()  # alone so far: takes everyone
    assert one.people == people
    for _ in range(3):  # the second joins: the first gives up its share, the second claims it
        clock.now += timedelta(seconds=2)
        second.cycle()
        first.cycle()
    assert one.people | two.people == people and not one.people & two.people
    assert one.people == workers.assigned(people, ["a", "b"], "a") and two.people

    # the first crashes (no release): the second waits for its leases to lapse, then takes them all
    crashed = set(one.people)
    clock.now += timedelta(seconds=4)
    second.cycle()
    assert two.people.isdisjoint(crashed)
    clock.now += timedelta(seconds=7)  # 11 s since the first's last renewal
    second.cycle()
    assert two.people == people


def test_a_clean_stop_hands_over_at_the_next_cycle(sessions: sessionmaker[Session]) -> None:
    people = set(enrol(sessions, 6))
    clock = Clock()
    one, two = FakeHolder(), FakeHolder()
    first = LeaseKeeper(sessions, A, one, heartbeat_s=2, lease_s=10, clock=clock)
    second = LeaseKeeper(sessions, B, two, heartbeat_s=2, lease_s=10, clock=clock)
    first.cycle()
    second.cycle()
    first.stop()
    assert one.people == set()
    clock.now += timedelta(seconds=1)
    second.cycle()
    assert two.people == people


def test_a_lease_must_outlast_two_heartbeats(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="outlast"):
        LeaseKeeper(sessions, A, FakeHolder(), heartbeat_s=5, lease_s=10)
