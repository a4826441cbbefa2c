"""Every alert and its outcome go into the person's record, as FHIR R4.

For each state an alert reaches (open, acknowledged, in progress, resolved, closed) the
centre builds one transaction Bundle (`fhir.record_for_alert`: the Patient, a Flag, a
DetectedIssue, a Communication per notification) and keeps it in the `record_writes`
outbox. With a record server configured it is sent there until the server takes it; the
Bundle's entries are PUTs with stable ids, so sending twice never duplicates anything.
A newer state of the same alert supersedes one not yet sent, so the record never goes
back in time. Without a record server the bundles are kept, and the person's record is
served by the centre itself (`GET /api/v1/patients/{id}/record`).
"""

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from alerting import fhir
from alerting.notify import CONSOLE_ADDRESS, NotificationStatus
from alerting.tables import Notification, RecordWrite
from monitoring_centre.alerts import ENDED, AlertState
from monitoring_centre.nhs_number import InvalidNhsNumber
from monitoring_centre.storage import Alert, AlertTransition, Person, Reading, ReviewNote

RETRY_AFTER_S = (5, 15, 60, 300, 600)
"""Waits between attempts; the last repeats for ever: a record write is never given up."""
BATCH = 200


def facts_of_person(person: Person, *, allow_test_nhs_numbers: bool = False) -> fhir.PersonFacts:
    return fhir.PersonFacts(id=person.id, name=person.name, nhs_number=person.nhs_number, address=person.address,
                            allow_test_nhs_number=allow_test_nhs_numbers)


def facts_of_alert(session: Session, alert: Alert) -> fhir.AlertFacts:
    ended = None
    if alert.status in ENDED:  # when it was resolved, from its history
        ended = session.scalar(select(AlertTransition.at).where(AlertTransition.alert_id == alert.id,
                                                                AlertTransition.to_status == AlertState.RESOLVED)
                               .order_by(AlertTransition.id.desc()).limit(1))
    return fhir.AlertFacts(
        id=alert.id, person_id=alert.person_id, rule=alert.rule, title=alert.title, priority=alert.priority,
        status=alert.status, outcome=alert.outcome, opened_at=alert.opened_at, last_seen_at=alert.last_seen_at,
        explanation=alert.explanation, ended_at=ended,
    )


def facts_of_notifications(session: Session, alert: Alert) -> list[fhir.NotificationFacts]:
    logged = (NotificationStatus.SENT, NotificationStatus.FAILED)
    rows = session.scalars(select(Notification).where(Notification.alert_id == alert.id,
                                                      Notification.status.in_(logged))
                           .order_by(Notification.id))
    return [
        fhir.NotificationFacts(
            id=n.id, alert_id=alert.id, person_id=alert.person_id, responder_name=n.responder_name or "operators",
            responder_role=_role(n), channel=n.address.split(":", 1)[0], status=n.status,
            at=n.sent_at or n.created_at, reason=n.reason,
        )
        for n in rows
    ]


def facts_of_reading(row: Reading) -> fhir.ReadingFacts:
    return fhir.ReadingFacts(id=row.id, person_id=row.person_id, device_id=row.device_id, metric=row.metric,
                             value=row.value, unit=row.unit, quality=tuple(str(q) for q in row.quality),
                             source_ts=row.source_ts)


def message_ids_in(explanation: object) -> set[str]:
    """Every `message_id` named anywhere in an alert's explanation (its evidence, each repeat's,
    an estimate's source), at any depth."""
    found: set[str] = set()
    if isinstance(explanation, dict):
        for key, value in explanation.items():
            if key == "message_id" and isinstance(value, str):
                found.add(value)
            else:
                found |= message_ids_in(value)
    elif isinstance(explanation, list):
        for item in explanation:
            found |= message_ids_in(item)
    return found


def facts_of_readings(session: Session, alert: Alert) -> list[fhir.ReadingFacts]:
    """The person's readings the alert's explanation names (an SpO2 or pulse alert's evidence):
    written with the alert as Observations. Never another person's, whatever the evidence says."""
    ids = message_ids_in(alert.explanation)
    if not ids:
        return []
    rows = session.scalars(select(Reading).where(Reading.message_id.in_(sorted(ids)),
                                                 Reading.person_id == alert.person_id).order_by(Reading.id))
    return [facts_of_reading(row) for row in rows]


def _role(notification: Notification) -> str:
    return "operator" if notification.address == CONSOLE_ADDRESS else "responder"


def bundle_for(session: Session, alert: Alert, *, allow_test_nhs_numbers: bool = False) -> str:
    person = session.get(Person, alert.person_id)
    if person is None:
        raise LookupError(f"alert {alert.id} has no person")
    bundle = fhir.record_for_alert(facts_of_person(person, allow_test_nhs_numbers=allow_test_nhs_numbers),
                                   facts_of_alert(session, alert),
                                   facts_of_notifications(session, alert), facts_of_readings(session, alert))
    return fhir.bundle_json(bundle)


def queue(session: Session, now: datetime, *, send: bool, allow_test_nhs_numbers: bool = False) -> int:
    """Build a Bundle for every alert state not yet in the outbox. Returns how many.

    A person's NHS number goes through the enrolment check again; `allow_test_nhs_numbers`
    (the centre's setting) lets the synthetic test range through, for the demo and tests.

    Driven by the alerts' history: only transitions newer than the newest one already
    written are read, so each pass costs what changed, not the size of the alerts table."""
    written_up_to = session.scalar(select(func.max(RecordWrite.transition_id))) or 0
    changes = session.execute(
        select(AlertTransition.id, AlertTransition.alert_id).where(AlertTransition.id > written_up_to)
        .order_by(AlertTransition.id).limit(BATCH)
    ).all()
    built = 0
    for transition_id, alert_id in changes:
        alert = session.get(Alert, alert_id)
        if alert is None:
            continue
        # The record shows the alert as it is now; an older transition of an alert that has
        # moved on since is covered by the row for its present state.
        existing = session.scalar(select(RecordWrite).where(RecordWrite.alert_id == alert.id,
                                                            RecordWrite.alert_status == alert.status))
        if existing is not None:
            existing.transition_id = max(existing.transition_id, transition_id)
            continue
        session.execute(
            update(RecordWrite).where(RecordWrite.alert_id == alert.id, RecordWrite.status == "pending")
            .values(status="superseded", next_attempt_at=None, detail=f"superseded by the {alert.status} state")
            .execution_options(synchronize_session=False)
        )
        try:
            bundle = bundle_for(session, alert, allow_test_nhs_numbers=allow_test_nhs_numbers)
            status, detail = ("pending" if send else "kept"), ""
        except (InvalidNhsNumber, LookupError, ValueError) as error:
            # Never send a wrong record; say why in the outbox, where the operators' metrics see it.
            bundle, status, detail = "", "refused", str(error)
        session.add(RecordWrite(alert_id=alert.id, person_id=alert.person_id, alert_status=alert.status,
                                transition_id=transition_id, bundle=bundle, status=status, attempts=0,
                                next_attempt_at=now if status == "pending" else None, detail=detail,
                                created_at=now))
        session.flush()
        built += 1
    return built


def send_due(sessions: sessionmaker[Session], base_url: str, now: datetime) -> Iterator[str]:
    """POST each due Bundle to the record server. Yields each attempt's outcome."""
    with sessions() as session:
        due = session.scalars(select(RecordWrite.id).where(RecordWrite.status == "pending",
                                                           RecordWrite.next_attempt_at <= now)
                              .order_by(RecordWrite.id).limit(BATCH)).all()
    with httpx.Client(timeout=10.0) as client:
        for write_id in due:
            with sessions() as session:
                write = session.get(RecordWrite, write_id)
                if write is None or write.status != "pending":
                    continue
                write.attempts += 1
                ok, detail = _post(client, base_url, write.bundle)
                write.detail = detail[:2000]
                if ok:
                    write.status, write.next_attempt_at = "written", None
                else:
                    wait = RETRY_AFTER_S[min(write.attempts, len(RETRY_AFTER_S)) - 1]
                    write.next_attempt_at = now + timedelta(seconds=wait)
                session.commit()
            yield "written" if ok else "retry"


def _post(client: httpx.Client, base_url: str, bundle: str) -> tuple[bool, str]:
    try:
        response = client.post(base_url, content=bundle.encode(), headers={
            "Content-Type": "application/fhir+json", "Accept": "application/fhir+json"})
    except httpx.HTTPError as error:
        return False, f"{type(error).__name__}: {error}"
    if response.is_success:
        return True, f"HTTP {response.status_code}"
    return False, f"HTTP {response.status_code}: {response.text[:500]}"


def latest_vital_signs(session: Session, person_id: int) -> list[fhir.ReadingFacts]:
    """The person's newest clean reading of each vital sign the record carries (SpO2, pulse),
    by the device's time: what a clinician opening the record sees first. The full series is
    the FHIR gateway's `Observation` search (`centre_app/fhir_gateway`)."""
    latest = []
    for metric in fhir.VITAL_SIGNS:
        rows = session.scalars(select(Reading).where(Reading.person_id == person_id, Reading.metric == metric.value,
                                                     Reading.value.is_not(None))
                               .order_by(Reading.source_ts.desc(), Reading.id.desc()).limit(20))
        clean = next((row for row in rows if not row.quality and not row.clock_suspect), None)
        if clean is not None:
            latest.append(facts_of_reading(clean))
    return latest


def person_record(session: Session, person_id: int) -> dict[str, Any]:
    """The person's record as the centre holds it: a FHIR collection Bundle of the newest
    entry of every resource written for them, the nurses' reviews (ClinicalImpression,
    `alerting/review_record.py`), and their latest SpO2 and pulse Observations
    (`latest_vital_signs`)."""
    resources: dict[str, dict[str, Any]] = {}
    for bundle in session.scalars(select(RecordWrite.bundle).where(RecordWrite.person_id == person_id,
                                                                    RecordWrite.bundle != "")
                                  .order_by(RecordWrite.id)):
        for entry in json.loads(bundle).get("entry", []):
            resource = entry["resource"]
            resources[f"{resource['resourceType']}/{resource['id']}"] = resource
    for review in session.scalars(select(ReviewNote.record_bundle).where(ReviewNote.person_id == person_id,
                                                                        ReviewNote.record_bundle != "")
                                  .order_by(ReviewNote.id)):
        for entry in json.loads(review).get("entry", []):  # a nurse's "Reviewed, plan: ..." (ClinicalImpression)
            resource = entry["resource"]
            resources.setdefault(f"{resource['resourceType']}/{resource['id']}", resource)
    for facts in latest_vital_signs(session, person_id):
        built = fhir.observation(facts)
        if built is not None:
            resources.setdefault(f"Observation/{built.id}", json.loads(built.model_dump_json()))
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": key, "resource": value} for key, value in resources.items()]}
