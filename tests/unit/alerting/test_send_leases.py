"""Send leases name their worker and run: a centre that restarts after a crash mid-send sends
the interrupted message at once, and never takes a live lease from another worker. On SQLite and
PostgreSQL; the messages are caught at the channel (`tests/support/alerting_home.py`)."""

from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerting import notify
from alerting.escalator import AlertingMetrics, AlertingSettings, Escalator
from alerting.tables import Notification
from tests.support.alerting_home import KIM, T0, FakeChannel, channel, enrol_keyholder_home, press

__all__ = ["channel"]  # the fixture, used by name


@pytest.fixture
def sessions(migrated_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    return migrated_sessions


def escalator(sessions: sessionmaker[Session], worker: str) -> Escalator:
    """A run of the worker named `worker` (a new run id each time)."""
    return Escalator(sessions, AlertingSettings(public_url="http://centre.test", worker=worker),
                     AlertingMetrics(CollectorRegistry()), clock=lambda: T0)


def kims_messages(sessions: sessionmaker[Session]) -> dict[str, Notification]:
    with sessions() as session:
        rows = session.scalars(select(Notification).where(Notification.address.in_(KIM)))
        return {row.address: row for row in rows}


def test_a_restarted_centre_resends_what_its_dead_run_left_leased_but_not_another_workers(
        sessions: sessionmaker[Session], channel: FakeChannel) -> None:
    with sessions() as session:
        home = enrol_keyholder_home(session)
        press(session, home.person_id)
    first_run = escalator(sessions, "centre-a")
    first_run.start_escalations(T0)
    first_run.step_escalations(T0)  # Kim's two messages (home and work) are written
    rows = kims_messages(sessions)
    elsewhere = notify.lease_owner("centre-b")
    with sessions() as session:
        # centre-a was sending to Kim's home address when it died; centre-b, alive, is sending to her work one
        assert notify.claim(session, rows[KIM[0]].id, T0, first_run.lease_owner) is not None
        assert notify.claim(session, rows[KIM[1]].id, T0, elsewhere) is not None
        session.commit()

    restarted = escalator(sessions, "centre-a")
    restarted.send_notifications(T0 + timedelta(seconds=1))  # long before the 60 s lease would run out
    assert [address for address, _message in channel.sent] == [KIM[0]]
    rows = kims_messages(sessions)
    assert rows[KIM[0]].status == "sent" and rows[KIM[0]].attempts == 2 and rows[KIM[0]].lease_owner is None
    live = rows[KIM[1]]
    assert (live.status, live.attempts, live.lease_owner) == ("pending", 1, elsewhere)
    assert live.next_attempt_at == T0 + timedelta(seconds=notify.LEASE_S)  # untouched

    # If centre-b died too, its lease runs out as before, and the message goes then.
    restarted.send_notifications(T0 + timedelta(seconds=notify.LEASE_S))
    assert [address for address, _message in channel.sent] == [KIM[0], KIM[1]]


def test_a_worker_that_listed_a_message_as_due_cannot_claim_it_once_another_has(
        sessions: sessionmaker[Session]) -> None:
    """Two workers list the same due message; the first claims and commits; the second, reading the row
    afresh (attempts now 1), must find it leased, not claim it again and send it twice."""
    with sessions() as session:
        home = enrol_keyholder_home(session)
        press(session, home.person_id)
    run = escalator(sessions, "centre-a")
    run.start_escalations(T0)
    run.step_escalations(T0)
    message = kims_messages(sessions)[KIM[0]].id
    with sessions() as listing:
        assert message in notify.due(listing, T0)
    with sessions() as first:
        assert notify.claim(first, message, T0, notify.lease_owner("centre-a")) is not None
        first.commit()
    with sessions() as second:
        assert notify.claim(second, message, T0, notify.lease_owner("centre-b")) is None
    assert kims_messages(sessions)[KIM[0]].attempts == 1


def test_a_run_never_takes_back_its_own_leases_or_another_workers_with_a_similar_name(
        sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        home = enrol_keyholder_home(session)
        press(session, home.person_id)
    run = escalator(sessions, "centre_a")  # "_" is a LIKE wildcard: "centre_a#" must not match "centreXa#"
    run.start_escalations(T0)
    run.step_escalations(T0)
    rows = kims_messages(sessions)
    with sessions() as session:
        notify.claim(session, rows[KIM[0]].id, T0, run.lease_owner)
        notify.claim(session, rows[KIM[1]].id, T0, notify.lease_owner("centreXa"))
        session.commit()
    assert run.reclaim_interrupted(T0 + timedelta(seconds=1)) == []


@pytest.mark.parametrize("name", ["", "centre#1", "x" * 81])
def test_a_worker_name_is_checked(name: str) -> None:
    with pytest.raises(ValueError, match="worker's name"):
        notify.lease_owner(name)
