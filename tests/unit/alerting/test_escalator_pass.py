"""The escalator's pass loads only the chains that may need attention (`may_need_attention`): a step
is due, or the alert is no longer open. An open alert whose next step is not due stays in the database,
and the pass still steps every chain `escalation.needs_attention` says yes to. SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerting.escalation import needs_attention, unfinished
from alerting.escalator import AlertingMetrics, AlertingSettings, Escalator, may_need_attention
from alerting.tables import Escalation
from centre_app import schema
from detection.rules import CATALOGUE, RuleId
from monitoring_centre import alerts
from monitoring_centre.alerts import AlertState
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.storage import Alert, make_engine

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _centre(database_url: str, people: int) -> tuple[sessionmaker[Session], Escalator, list[int]]:
    engine = make_engine(database_url)
    schema.upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    escalator = Escalator(sessions, AlertingSettings(public_url="http://127.0.0.1:1"),
                          AlertingMetrics(CollectorRegistry()), clock=lambda: NOW)
    alert_ids = []
    with sessions() as session, session.begin():
        for n in range(people):
            person = enrol_home(session, name=f"Person {n}", address="", hub_id=f"hub-{n}",
                                devices=[DeviceRecord("pendant-1", "pendant")])
            alert = alerts.raise_alert(session, person_id=person.id, hub_id=f"hub-{n}",
                                       rule=CATALOGUE[RuleId.PENDANT_ALARM], subject="", at=NOW, evidence={},
                                       why="help button")
            alert_ids.append(alert.id)
    return sessions, escalator, alert_ids


def _attention(sessions: sessionmaker[Session], at: datetime) -> tuple[list[int], list[int]]:
    """(the alerts the narrowed query loads, the alerts `needs_attention` says yes to among all unfinished)."""
    with sessions() as session:
        loaded = [alert.id for _chain, alert in may_need_attention(session, at)]
        wanted = [alert.id for chain, alert in unfinished(session) if needs_attention(chain, alert, at)]
    return loaded, wanted


def test_only_chains_that_may_need_attention_are_loaded(database_url: str) -> None:
    sessions, escalator, alert_ids = _centre(database_url, 3)
    escalator.start_escalations(NOW)
    assert _attention(sessions, NOW) == (alert_ids, alert_ids)  # each first step is due at once
    assert escalator.step_escalations(NOW) == set(alert_ids)
    with sessions() as session:
        next_due = min(chain.due_at for chain in session.scalars(select(Escalation)) if chain.due_at is not None)
    assert next_due > NOW
    assert _attention(sessions, NOW) == ([], [])  # three calls waiting, nothing to do: nothing loaded
    with sessions() as session, session.begin():
        alert = session.get(Alert, alert_ids[1])
        assert alert is not None
        alerts.transition(session, alert, AlertState.ACKNOWLEDGED, by="operator")
    assert _attention(sessions, NOW) == ([alert_ids[1]], [alert_ids[1]])
    assert _attention(sessions, next_due) == (alert_ids, alert_ids)


def test_a_pass_steps_what_is_due_and_leaves_the_rest(database_url: str) -> None:
    sessions, escalator, alert_ids = _centre(database_url, 2)
    escalator.start_escalations(NOW)
    escalator.step_escalations(NOW)
    with sessions() as session, session.begin():
        chain = session.scalars(select(Escalation).where(Escalation.alert_id == alert_ids[0])).one()
        chain.due_at = NOW - timedelta(seconds=1)
        steps_before = {c.alert_id: c.step for c in session.scalars(select(Escalation))}
    assert escalator.step_escalations(NOW) == {alert_ids[0]}
    with sessions() as session:
        steps_after = {c.alert_id: c.step for c in session.scalars(select(Escalation))}
    assert steps_after[alert_ids[1]] == steps_before[alert_ids[1]]
    assert steps_after[alert_ids[0]] != steps_before[alert_ids[0]]
