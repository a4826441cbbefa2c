"""The patient-record outbox: one Bundle per state an alert reaches, built from the alerts'
history incrementally, newer states superseding unsent older ones; on SQLite and PostgreSQL."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from alerting import patient_record
from alerting.tables import RecordWrite
from detection.events import PENDANT_ALARM
from detection.rules import CATALOGUE, RuleId
from monitoring_centre import alerts
from monitoring_centre.enrolment import enrol_home
from monitoring_centre.storage import Alert, InboundMessage, Person, Reading

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


@pytest.fixture
def sessions(migrated_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    return migrated_sessions


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


def _stored_reading(session: Session, person: Person, hub_id: str, value: float, *, metric: str = "spo2",
                    at: datetime = NOW, quality: tuple[str, ...] = ()) -> str:
    message_id = str(uuid.uuid4())
    session.add(InboundMessage(id=message_id, type="reading", hub_id=hub_id, device_id="oximeter-1", source_ts=at,
                               hub_ts=at, received_at=at, payload="{}"))
    session.flush()
    session.add(Reading(message_id=message_id, person_id=person.id, device_id="oximeter-1", metric=metric,
                        value=value, unit="%" if metric == "spo2" else "/min", quality=list(quality), source_ts=at,
                        received_at=at))
    session.flush()
    return message_id


def test_an_alert_is_written_with_the_readings_its_evidence_names_and_only_its_persons(
        sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        ada = enrol_home(session, name="Ada", address="1 Test Street", hub_id="hub-1", devices=[])
        bob = enrol_home(session, name="Bob", address="2 Test Street", hub_id="hub-2", devices=[])
        low = _stored_reading(session, ada, "hub-1", 87.0)
        lower = _stored_reading(session, ada, "hub-1", 86.0)
        _not_named = _stored_reading(session, ada, "hub-1", 97.0)
        bobs = _stored_reading(session, bob, "hub-2", 85.0)
        alert = alerts.raise_alert(session, person_id=ada.id, hub_id="hub-1", rule=CATALOGUE[RuleId.SPO2_LOW],
                                   subject="", at=NOW, evidence={"message_id": low, "repeats": [{"message_id": lower},
                                                                                    {"message_id": bobs}]},
                                   why="SpO2 below the person's threshold")
        bundle = json.loads(patient_record.bundle_for(session, alert))
    observations = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert sorted(o["valueQuantity"]["value"] for o in observations) == [86.0, 87.0]
    assert all({c["code"] for c in o["code"]["coding"]} & {"2708-6", "59408-5"} for o in observations)
    assert {o["subject"]["reference"] for o in observations} == {f"Patient/person-{ada.id}"}


def test_the_record_carries_the_latest_clean_spo2_and_pulse_observations(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        ada = enrol_home(session, name="Ada", address="1 Test Street", hub_id="hub-1", devices=[])
        for minutes, value in ((0, 95.0), (5, 96.0)):
            _stored_reading(session, ada, "hub-1", value, at=NOW + timedelta(minutes=minutes))
        _stored_reading(session, ada, "hub-1", 71.0, at=NOW + timedelta(minutes=9), quality=("motion",))
        _stored_reading(session, ada, "hub-1", 72.0, metric="pulse_rate", at=NOW + timedelta(minutes=3))
        record = patient_record.person_record(session, ada.id)
        assert patient_record.person_record(session, 999) == {"resourceType": "Bundle", "type": "collection",
                                                              "entry": []}
    observations = [e["resource"] for e in record["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert sorted(o["valueQuantity"]["value"] for o in observations) == [72.0, 96.0]  # newest clean, not flagged
    Bundle.model_validate(record)


def _statements_of_a_pass(sessions: sessionmaker[Session], home: str, people: int) -> tuple[int, list[RecordWrite]]:
    """Raise one SpO2 alert (naming its own reading) for each of `people` people in homes `{home}-{n}`,
    then count the statements one `queue` pass sends to build and keep their Bundles."""
    sent: list[str] = []

    def count(_connection: object, _cursor: object, statement: str, *_: object) -> None:
        sent.append(statement)

    with sessions() as session:
        for n in range(people):
            person = enrol_home(session, name=f"Person {n}", address="", hub_id=f"{home}-{n}", devices=[])
            low = _stored_reading(session, person, f"{home}-{n}", 80.0 + n)
            alerts.raise_alert(session, person_id=person.id, hub_id=f"{home}-{n}", rule=CATALOGUE[RuleId.SPO2_LOW],
                               subject="", at=NOW, evidence={"message_id": low}, why="SpO2 low")
        session.flush()
        connection = session.connection()
        event.listen(connection, "before_cursor_execute", count)
        assert patient_record.queue(session, NOW, send=False) == people
        event.remove(connection, "before_cursor_execute", count)
        written = list(session.scalars(select(RecordWrite).where(RecordWrite.alert_id.in_(
            select(Alert.id).where(Alert.hub_id.like(f"{home}-%")))).order_by(RecordWrite.id)))
        session.commit()
    return len(sent), written


def test_a_pass_reads_what_its_bundles_need_once_however_many_alerts_and_keeps_each_alerts_own(
        sessions: sessionmaker[Session]) -> None:
    """A pass's cost must not grow by a query per alert: a burst of alarms (a power cut in a village)
    reaches the record writer at once. And reading for many alerts at once must not mix one
    person's facts into another's Bundle."""
    one, [only] = _statements_of_a_pass(sessions, "first", 1)
    assert only.status == "kept"
    many, written = _statements_of_a_pass(sessions, "burst", 12)
    assert many == one
    assert len(written) == 12
    for write in written:
        resources = [e["resource"] for e in json.loads(write.bundle)["entry"]]
        [patient] = [r for r in resources if r["resourceType"] == "Patient"]
        [observation] = [r for r in resources if r["resourceType"] == "Observation"]
        assert patient["id"] == f"person-{write.person_id}"
        assert observation["subject"]["reference"] == f"Patient/person-{write.person_id}"
        number = int(patient["name"][0]["text"].removeprefix("Person "))
        assert observation["valueQuantity"]["value"] == 80.0 + number
