"""An alert's escalation told in sentences (`alerting/escalation_log.py`), from the rows the real
escalation writes (`alerting/escalation.py`): who was told, how, how long after the alarm, and
what came of it; never a step or cycle count, a state name or an id."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from alerting import escalation
from alerting.escalation_log import after, escalation_log
from alerting.tables import Notification
from centre_app.auth import create_user
from monitoring_centre import alerts
from monitoring_centre.storage import Alert, Person, PersonContact
from tests.support.alerting_home import T0, enrol_keyholder_home, press

FORBIDDEN = re.compile(r"step \d|cycle \d|running|exhausted|nobody:|\(running\)|\d+ s after it opened|mailto|@|"
                       r"alert \d|/")


@pytest.fixture
def sessions(sqlite_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    return sqlite_sessions


def texts(session: Session, alert_id: int) -> list[str]:
    lines = [line.text for line in escalation_log(session, session.get_one(Alert, alert_id))]
    for text in lines:
        assert not FORBIDDEN.search(text), text
    return lines


def test_keyholders_told_in_order_with_how_when_and_what_came_of_it(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        home = enrol_keyholder_home(session)
        session.execute(update(PersonContact).where(PersonContact.responder_id == home.lee_id)
                        .values(relationship="neighbour"))
        alert_id = press(session, home.person_id)
        alert = session.get_one(Alert, alert_id)
        chain = escalation.start(session, alert, T0)
        escalation.advance(session, chain, alert, T0)  # Kim, both addresses
        session.commit()
        assert texts(session, alert_id) == ["E-mailed Kim (daughter) at once; sending now"] * 2
        session.execute(update(Notification).values(status="sent"))
        session.commit()
        assert texts(session, alert_id) == ["E-mailed Kim (daughter) at once; not yet accepted"] * 2
        escalation.advance(session, chain, alert, T0 + timedelta(minutes=5))  # then Lee
        kim_first = session.scalars(select(Notification.id).where(Notification.responder_id == home.kim_id)
                                    .order_by(Notification.id)).first()
        session.execute(update(Notification).where(Notification.id == kim_first)
                        .values(accepted_at=T0 + timedelta(minutes=6)))
        session.execute(update(Notification).values(status="sent"))
        session.commit()
        lines = texts(session, alert_id)
        assert lines[0] == "E-mailed Kim (daughter) at once; accepted 6 min after the alarm"
        assert lines[2] == "E-mailed Lee (neighbour) 5 min after the alarm; not yet accepted"


def test_the_operators_queue_an_acknowledgement_and_a_resolution(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        home = enrol_keyholder_home(session)
        session.get_one(Person, home.person_id).service = "monitored"
        create_user(session, "olive", "a-long-enough-password", "operator", "Olive Operator")
        alert_id = press(session, home.person_id)
        alert = session.get_one(Alert, alert_id)
        chain = escalation.start(session, alert, T0)
        escalation.advance(session, chain, alert, T0)
        escalation.advance(session, chain, alert, T0 + timedelta(seconds=61))
        alerts.transition(session, alert, alerts.AlertState.ACKNOWLEDGED, "olive")
        session.commit()
        lines = texts(session, alert_id)
        assert lines[0] == "On the operators' queue from the moment the alarm came in"
        assert "Operators told again 61 s after the alarm: not yet acknowledged" in lines
        assert lines[-1].startswith("Acknowledged by Olive Operator")
        alerts.transition(session, alert, alerts.AlertState.RESOLVED, "olive", outcome="false_alarm")
        session.commit()
        assert texts(session, alert_id)[-1].startswith("Resolved by Olive Operator")
        assert texts(session, alert_id)[-1].endswith(": pressed or triggered by accident")


def test_a_step_with_nobody_to_tell_says_so(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        home = enrol_keyholder_home(session)
        session.execute(delete(PersonContact))
        session.commit()
        alert_id = press(session, home.person_id)
        alert = session.get_one(Alert, alert_id)
        chain = escalation.start(session, alert, T0)
        escalation.advance(session, chain, alert, T0)
        session.commit()
        assert texts(session, alert_id)[0] == (
            "No keyholder could be told at once: none has a number to text or an e-mail address on record "
            "(a number only to phone is on the call screen)")


def test_how_long_after_the_alarm() -> None:
    assert [after(T0, T0 + timedelta(seconds=s)) for s in (3, 40, 180, 3900, 7200)] == [
        "at once", "40 s after the alarm", "3 min after the alarm", "1 h 5 min after the alarm",
        "2 h after the alarm"]


def test_an_accept_link_reads_as_the_responder_by_name(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        home = enrol_keyholder_home(session)
        alert_id = press(session, home.person_id)
        alert = session.get_one(Alert, alert_id)
        link = "responder:2:Susan Hughes"
        alerts.transition(session, alert, alerts.AlertState.ACKNOWLEDGED, link, "accepted from a notification")
        alerts.transition(session, alert, alerts.AlertState.IN_PROGRESS, link)
        session.commit()
        lines = texts(session, alert_id)
        assert lines[-1].startswith("Susan Hughes accepted by link ")
        assert not any("responder:" in line or "Acknowledged by" in line for line in lines)
