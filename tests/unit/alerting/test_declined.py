"""A responder's "No, I cannot go" (`alerting.escalation.declined`): when everyone told at the
chain's latest step has said no, the next contact is asked at once, not after the step's wait;
a decline of an older step, or of an alert someone already acted on, changes only the log."""

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerting import escalation
from alerting.escalation_log import escalation_log
from alerting.tables import Escalation, Notification
from monitoring_centre import alerts
from monitoring_centre.storage import Alert
from tests.support.alerting_home import T0, Home, enrol_keyholder_home, press


@pytest.fixture
def sessions(sqlite_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    return sqlite_sessions


def started(session: Session) -> tuple[Home, Alert, Escalation]:
    """Kim (two addresses) told at T0; Lee is the next step, after the step's wait."""
    home = enrol_keyholder_home(session)
    alert = session.get_one(Alert, press(session, home.person_id))
    chain = escalation.start(session, alert, T0)
    escalation.advance(session, chain, alert, T0)
    session.commit()
    return home, alert, chain


def told(session: Session, responder_id: int) -> list[Notification]:
    return list(session.scalars(select(Notification).where(Notification.responder_id == responder_id)
                                .order_by(Notification.id)))


def test_the_only_keyholder_told_says_no_and_the_next_is_asked_at_once(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        home, alert, chain = started(session)
        waited_until = chain.due_at
        assert waited_until is not None and waited_until > T0 + timedelta(seconds=60)
        assert not told(session, home.lee_id)
        kim = told(session, home.kim_id)
        assert len(kim) == 2
        no_at = T0 + timedelta(seconds=30)
        assert escalation.declined(session, kim[0], no_at) is True
        assert chain.due_at == no_at and "Kim (daughter) cannot go" in chain.note
        assert all(row.declined_at == no_at for row in kim)  # both of Kim's messages: she said no
        escalation.advance(session, chain, alert, no_at + timedelta(seconds=1))
        session.commit()
        assert [row.address for row in told(session, home.lee_id)] == ["mailto:lee@family.test"]
        lines = [line.text for line in escalation_log(session, alert)]
        assert lines[0] == "E-mailed Kim (daughter) at once; said they cannot go 30 s after the alarm"


def test_without_a_decline_the_chain_waits_its_step(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        home, alert, chain = started(session)
        escalation.advance(session, chain, alert, T0 + timedelta(seconds=31))
        assert not told(session, home.lee_id)


def test_a_decline_of_an_earlier_step_does_not_bring_the_chain_forward(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        home, alert, chain = started(session)
        assert chain.due_at is not None
        escalation.advance(session, chain, alert, chain.due_at)  # Lee told
        lee_waits_until = chain.due_at
        kim = told(session, home.kim_id)
        assert escalation.declined(session, kim[0], T0 + timedelta(minutes=6)) is False
        assert chain.due_at == lee_waits_until
        assert kim[0].declined_at == T0 + timedelta(minutes=6)


def test_a_decline_after_an_operator_acknowledged_changes_only_the_log(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        home, alert, chain = started(session)
        alerts.transition(session, alert, alerts.AlertState.ACKNOWLEDGED, "olive")
        due = chain.due_at
        kim = told(session, home.kim_id)
        assert escalation.declined(session, kim[0], T0 + timedelta(seconds=40)) is False
        assert chain.due_at == due and kim[0].declined_at is not None
