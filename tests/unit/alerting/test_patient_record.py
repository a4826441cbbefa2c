"""The patient-record outbox: one Bundle per state an alert reaches, built from the alerts'
history incrementally, newer states superseding unsent older ones; on SQLite and PostgreSQL."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerting import patient_record
from alerting.tables import RecordWrite
from centre_app import schema
from detection.events import PENDANT_ALARM
from monitoring_centre import alerts
from monitoring_centre.enrolment import enrol_home
from monitoring_centre.storage import Alert, Person, make_engine

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    schema.upgrade(engine)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


def raise_one(session: Session, person: Person) -> Alert:
    return alerts.raise_alert(session, person_id=person.id, hub_id="hub-1", rule=PENDANT_ALARM, subject="", at=NOW,
                              evidence={"code": "manual_alarm"}, why="pendant-1 reported manual_alarm")


def rows(session: Session) -> list[tuple[str, str]]:
    return [(r.alert_status, r.status) for r in session.scalars(select(RecordWrite).order_by(RecordWrite.id))]


def test_each_state_is_written_once_and_newer_states_supersede_unsent_ones(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        person = enrol_home(session, name="Ada", address="1 Test Street", hub_id="hub-1", devices=[],
                            nhs_number="9434765919")
        alert = raise_one(session, person)
        test_range = {"allow_test_nhs_numbers": True}  # 943 476 5919 is a test patient's number
        assert patient_record.queue(session, NOW, send=True, **test_range) == 1
        assert patient_record.queue(session, NOW, send=True, **test_range) == 0  # nothing new: nothing rebuilt
        alerts.transition(session, alert, alerts.AlertState.ACKNOWLEDGED, "op-alice")
        alerts.transition(session, alert, alerts.AlertState.RESOLVED, "op-alice", outcome="false_alarm")
        assert patient_record.queue(session, NOW, send=True, **test_range) == 1  # two changes, one present state
        assert rows(session) == [("open", "superseded"), ("resolved", "pending")]
        assert patient_record.queue(session, NOW, send=True, **test_range) == 0
        resolved = session.scalar(select(RecordWrite).where(RecordWrite.alert_status == "resolved"))
        assert resolved is not None
        Bundle.model_validate_json(resolved.bundle)  # valid FHIR
        entries = json.loads(resolved.bundle)["entry"]
        [flag] = [e["resource"] for e in entries if e["resource"]["resourceType"] == "Flag"]
        assert flag["status"] == "inactive"
        assert "9434765919" in resolved.bundle
        session.commit()


def test_without_a_record_server_bundles_are_kept_and_served(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        person = enrol_home(session, name="Ada", address="", hub_id="hub-1", devices=[])
        raise_one(session, person)
        patient_record.queue(session, NOW, send=False)
        assert rows(session) == [("open", "kept")]
        record = patient_record.person_record(session, person.id)
        Bundle.model_validate(record)
        assert {e["resource"]["resourceType"] for e in record["entry"]} >= {"Patient", "Flag", "DetectedIssue"}


def test_a_wrong_nhs_number_is_never_sent(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        person = enrol_home(session, name="Ada", address="", hub_id="hub-1", devices=[], nhs_number="9434765918")
        raise_one(session, person)
        patient_record.queue(session, NOW, send=True)
        [write] = session.scalars(select(RecordWrite)).all()
        assert (write.status, write.bundle) == ("refused", "")
        assert "check digit" in write.detail
        assert json.dumps(patient_record.person_record(session, person.id)["entry"]) == "[]"


def test_a_test_range_nhs_number_is_refused_where_the_centre_does_not_allow_it(
        sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        person = enrol_home(session, name="Ada", address="", hub_id="hub-1", devices=[], nhs_number="9434765919")
        raise_one(session, person)
        patient_record.queue(session, NOW, send=True)
        [write] = session.scalars(select(RecordWrite)).all()
        assert (write.status, write.bundle) == ("refused", "")
        assert "synthetic range" in write.detail and "9434765919" not in write.detail
