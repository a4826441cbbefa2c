"""The escalator's pass loads only the chains that may need attention (`may_need_attention`): a step
is due, or the alert is no longer open. An open alert whose next step is not due stays in the database,
and the pass still steps every chain `escalation.needs_attention` says yes to. SQLite and PostgreSQL."""

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from alerting import escalation, patient_record, snapshot
from alerting.escalation import needs_attention, unfinished
from alerting.escalator import AlertingMetrics, AlertingSettings, Escalator, may_need_attention
from alerting.tables import Escalation, RecordWrite
from centre_app import schema
from detection.rules import CATALOGUE, RuleId
from monitoring_centre import alerts
from monitoring_centre.alerts import AlertState
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.storage import Alert, ContactPoint, Person, PersonContact, Responder, make_engine

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _centre(database_url: str, people: int, first: int = 0) -> tuple[sessionmaker[Session], Escalator, list[int]]:
    """People `first` .. `first + people - 1` (`Person {n}` at `hub-{n}`), each with a help-button alert."""
    engine = make_engine(database_url)
    schema.upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    escalator = Escalator(sessions, AlertingSettings(public_url="http://127.0.0.1:1"),
                          AlertingMetrics(CollectorRegistry()), clock=lambda: NOW)
    alert_ids = []
    with sessions() as session, session.begin():
        for n in range(first, first + people):
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



def _with_responders(sessions: sessionmaker[Session], staff: bool) -> None:
    """With `staff`: two operators and a community nurse. And a keyholder of their own for each person
    who has none."""
    with sessions() as session, session.begin():
        if staff:
            team = [Responder(name="Operator A", role="operator"), Responder(name="Operator B", role="operator"),
                    Responder(name="District nurses", role="nurse")]
            session.add_all(team)
            session.flush()
            for n, responder in enumerate(team):
                session.add(ContactPoint(responder_id=responder.id, address=f"mailto:staff{n}@centre.invalid",
                                         position=0))
        have_one = select(PersonContact.person_id)
        for person in session.scalars(select(Person).where(Person.id.not_in(have_one)).order_by(Person.id)):
            keyholder = Responder(name=f"Keyholder of {person.name}", role="keyholder")
            session.add(keyholder)
            session.flush()
            session.add(ContactPoint(responder_id=keyholder.id, address=f"mailto:kh{person.id}@home.invalid",
                                     position=0))
            session.add(PersonContact(person_id=person.id, responder_id=keyholder.id, position=0, nominated_at=NOW))


def _role_reads_when_starting(database_url: str, people: int, first: int) -> tuple[int, dict[int, set[str]]]:
    """(statements reading a role's responders while one pass starts the escalations of people `first`..,
    the recipients by name of each chain that pass started, by alert id)."""
    sessions, escalator, alert_ids = _centre(database_url, people, first)
    _with_responders(sessions, staff=first == 0)
    reads: list[str] = []

    def count(_connection: object, _cursor: object, statement: str, *_: object) -> None:
        if "FROM responders" in statement and "responders.role" in statement.split("WHERE", 1)[-1]:
            reads.append(statement)

    event.listen(sessions.kw["bind"], "before_cursor_execute", count)
    assert escalator.start_escalations(NOW) == set(alert_ids)
    event.remove(sessions.kw["bind"], "before_cursor_execute", count)
    with sessions() as session:
        named = {chain.alert_id: {r.name for step in snapshot.load(chain.steps).steps for r in step.recipients}
                 for chain in session.scalars(select(Escalation).where(Escalation.alert_id.in_(alert_ids)))}
    return len(reads), named


def test_a_burst_of_alarms_reads_each_role_once_and_each_chain_keeps_its_own_keyholder(database_url: str) -> None:
    """Starting a chain reads the responders of each role it reaches. In a burst of alarms (a power
    cut in a village) that is the same operators and nurses for every alert: read once per pass."""
    one, _ = _role_reads_when_starting(database_url, 1, first=0)
    many, named = _role_reads_when_starting(database_url, 6, first=1)
    assert one >= 1  # the help button's chain reaches the operators (and may reach other roles)
    assert many == one  # not once per alert
    assert len(named) == 6
    for n, (_alert_id, names) in enumerate(sorted(named.items()), start=1):
        assert {name for name in names if name.startswith("Keyholder")} == {f"Keyholder of Person {n}"}
        assert {"Operator A", "Operator B"} <= names



def _another_writer_can_begin(database_url: str) -> bool:
    """Whether another connection can take SQLite's write lock now, without waiting."""
    other = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:  # "database is locked"
        return False
    finally:
        other.close()


def test_the_record_writer_builds_its_bundles_without_holding_the_write_lock(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On SQLite one transaction at a time writes; the alarm path's next batch waits for it. Building a
    pass's FHIR Bundles is the record writer's slowest part, so it is done in a read transaction, and
    another writer can begin meanwhile (here with no wait at all)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL locks rows, not the database")
    sessions, escalator, alert_ids = _centre(database_url, 3)
    building = patient_record.bundles_for
    others_began: list[bool] = []

    def bundles_for(*args: Any, **kwargs: Any) -> dict[int, patient_record.Built]:
        others_began.append(_another_writer_can_begin(database_url))
        return building(*args, **kwargs)

    monkeypatch.setattr(patient_record, "bundles_for", bundles_for)
    escalator.write_records(NOW)
    assert others_began == [True]
    with sessions() as session:
        assert sorted(session.scalars(select(RecordWrite.alert_id))) == alert_ids


def test_starting_escalations_snapshots_the_chains_without_holding_the_write_lock(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """As the record writer: the chains are snapshotted while reading, and only inserted under the lock."""
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL locks rows, not the database")
    sessions, escalator, alert_ids = _centre(database_url, 2)
    snapshotting = escalation.chain_for
    others_began: list[bool] = []

    def chain_for(*args: Any, **kwargs: Any) -> snapshot.EscalationChain:
        others_began.append(_another_writer_can_begin(database_url))
        return snapshotting(*args, **kwargs)

    monkeypatch.setattr(escalation, "chain_for", chain_for)
    assert escalator.start_escalations(NOW) == set(alert_ids)
    assert others_began == [True, True]
    assert escalator.start_escalations(NOW) == set()  # started once
    with sessions() as session:
        assert sorted(session.scalars(select(Escalation.alert_id))) == alert_ids
