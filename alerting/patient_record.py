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
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import httpx
from sqlalchemy import bindparam, func, insert, select, update
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


def facts_of_alert(alert: Alert, ended_at: datetime | None) -> fhir.AlertFacts:
    """`ended_at`: when an ended alert was resolved, from its history (`_Sources.ended`)."""
    return fhir.AlertFacts(
        id=alert.id, person_id=alert.person_id, rule=alert.rule, title=alert.title, priority=alert.priority,
        status=alert.status, outcome=alert.outcome, opened_at=alert.opened_at, last_seen_at=alert.last_seen_at,
        explanation=alert.explanation, ended_at=ended_at if alert.status in ENDED else None,
    )


def facts_of_notification(alert: Alert, n: Notification) -> fhir.NotificationFacts:
    return fhir.NotificationFacts(
        id=n.id, alert_id=alert.id, person_id=alert.person_id, responder_name=n.responder_name or "operators",
        responder_role=_role(n), channel=n.address.split(":", 1)[0], status=n.status,
        at=n.sent_at or n.created_at, reason=n.reason,
    )


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


def _role(notification: Notification) -> str:
    return "operator" if notification.address == CONSOLE_ADDRESS else "responder"


IN_CHUNK = 500
"""Values per `IN (...)` list: well under SQLite's limit on bound parameters in one statement."""


def _chunks(values: Collection[Any]) -> Iterator[list[Any]]:
    ordered = sorted(values)
    for start in range(0, len(ordered), IN_CHUNK):
        yield ordered[start:start + IN_CHUNK]


@dataclass
class _Sources:
    """What the Bundles of a set of alerts are built from, each kind read for all of them in one query
    (`_sources`): a pass builds up to `BATCH` Bundles, and a query per alert per kind was most of its cost."""

    people: dict[int, Person] = field(default_factory=dict)
    ended: dict[int, datetime] = field(default_factory=dict)
    """Alert id → when it was last resolved (alerts that have ended)."""
    notifications: dict[int, list[Notification]] = field(default_factory=dict)
    """Alert id → its sent and failed notifications, oldest first."""
    readings: dict[str, Reading] = field(default_factory=dict)
    """Message id → the stored reading, for every id the alerts' explanations name."""


def _sources(session: Session, alerts: Sequence[Alert]) -> _Sources:
    found = _Sources()
    alert_ids = {alert.id for alert in alerts}
    for ids in _chunks({alert.person_id for alert in alerts}):
        found.people.update((person.id, person) for person in session.scalars(select(Person).where(Person.id.in_(ids))))
    for ids in _chunks({alert.id for alert in alerts if alert.status in ENDED}):
        for alert_id, at in session.execute(
                select(AlertTransition.alert_id, AlertTransition.at)
                .where(AlertTransition.alert_id.in_(ids), AlertTransition.to_status == AlertState.RESOLVED)
                .order_by(AlertTransition.id)):
            found.ended[alert_id] = at  # the newest resolution wins
    logged = (NotificationStatus.SENT, NotificationStatus.FAILED)
    for ids in _chunks(alert_ids):
        for notification in session.scalars(select(Notification).where(Notification.alert_id.in_(ids),
                                                                       Notification.status.in_(logged))
                                            .order_by(Notification.id)):
            found.notifications.setdefault(notification.alert_id, []).append(notification)
    for ids in _chunks(set().union(*(message_ids_in(alert.explanation) for alert in alerts))):
        found.readings.update((row.message_id, row) for row in session.scalars(
            select(Reading).where(Reading.message_id.in_(ids))))
    return found


def _readings_of(alert: Alert, sources: _Sources) -> list[fhir.ReadingFacts]:
    """The person's readings the alert's explanation names (an SpO2 or pulse alert's evidence):
    written with the alert as Observations. Never another person's, whatever the evidence says."""
    rows = [row for message_id in message_ids_in(alert.explanation)
            if (row := sources.readings.get(message_id)) is not None and row.person_id == alert.person_id]
    return [facts_of_reading(row) for row in sorted(rows, key=lambda row: row.id)]


class Built(NamedTuple):
    """One alert's Bundle (JSON), or why it must not be written (`refused`; then `bundle` is "")."""

    bundle: str
    refused: str = ""


def bundles_for(session: Session, alerts: Sequence[Alert], *, allow_test_nhs_numbers: bool = False) -> dict[int, Built]:
    """Each alert's transaction Bundle (`fhir.record_for_alert`), by alert id. An alert whose record must
    not be written (an NHS number failing its check, no person, a value FHIR refuses) has `refused` set:
    a wrong record is never built, let alone sent."""
    sources = _sources(session, alerts)
    built: dict[int, Built] = {}
    for alert in alerts:
        try:
            person = sources.people.get(alert.person_id)
            if person is None:
                raise LookupError(f"alert {alert.id} has no person")
            bundle = fhir.record_for_alert(
                facts_of_person(person, allow_test_nhs_numbers=allow_test_nhs_numbers),
                facts_of_alert(alert, sources.ended.get(alert.id)),
                [facts_of_notification(alert, n) for n in sources.notifications.get(alert.id, [])],
                _readings_of(alert, sources))
            built[alert.id] = Built(fhir.bundle_json(bundle))
        except (InvalidNhsNumber, LookupError, ValueError) as error:
            built[alert.id] = Built("", str(error))
    return built


def bundle_for(session: Session, alert: Alert, *, allow_test_nhs_numbers: bool = False) -> str:
    """One alert's Bundle (JSON). Raises `ValueError` (with the reason) where it must not be written."""
    built = bundles_for(session, [alert], allow_test_nhs_numbers=allow_test_nhs_numbers)[alert.id]
    if built.refused:
        raise ValueError(built.refused)
    return built.bundle


@dataclass
class Plan:
    """What one pass of the record writer will write (`plan`, then `keep`): built while reading, so that
    on SQLite the Bundles are built without holding the write lock the alarm path waits for."""

    new: list[dict[str, Any]] = field(default_factory=list)
    """`record_writes` rows to insert, in the order their alerts changed."""
    moved_on: list[tuple[int, int]] = field(default_factory=list)
    """(row id, newest transition): rows already written for an alert's present state, to move forward."""
    superseding: dict[str, list[int]] = field(default_factory=dict)
    """A new state → the alerts that reached it, whose unsent rows it supersedes."""


def plan(session: Session, now: datetime, *, send: bool, allow_test_nhs_numbers: bool = False) -> Plan:
    """Read the alerts' changes since the last pass and build a Bundle for every alert state not yet in the
    outbox; writes nothing (`keep` does), so it may run in a read-only transaction (`storage.begin_read`).

    A person's NHS number goes through the enrolment check again; `allow_test_nhs_numbers`
    (the centre's setting) lets the synthetic test range through, for the demo and tests.

    Driven by the alerts' history: only transitions newer than the newest one already
    written are read, so each pass costs what changed, not the size of the alerts table;
    and what the pass's Bundles are built from is read in one query per kind (`_sources`).
    Only one worker at a time runs a pass (`storage.one_worker_at_a_time`), so what it read
    is still the outbox's state when it keeps what it built."""
    written_up_to = session.scalar(select(func.max(RecordWrite.transition_id))) or 0
    changes = session.execute(
        select(AlertTransition.id, AlertTransition.alert_id).where(AlertTransition.id > written_up_to)
        .order_by(AlertTransition.id).limit(BATCH)
    ).all()
    planned = Plan()
    newest: dict[int, int] = {}  # alert id → its newest transition in this pass (in the order they changed)
    for transition_id, alert_id in changes:
        newest[alert_id] = transition_id
    if not newest:
        return planned
    found: dict[int, Alert] = {}
    written: dict[tuple[int, str], tuple[int, int]] = {}  # (alert, state) → (row id, its transition)
    for ids in _chunks(newest):
        found.update((alert.id, alert) for alert in session.scalars(select(Alert).where(Alert.id.in_(ids))))
        written.update(((alert_id, state), (row_id, transition)) for row_id, alert_id, state, transition in
                       session.execute(select(RecordWrite.id, RecordWrite.alert_id, RecordWrite.alert_status,
                                              RecordWrite.transition_id).where(RecordWrite.alert_id.in_(ids))))
    to_build: list[tuple[Alert, int]] = []
    for alert_id, transition_id in newest.items():
        alert = found.get(alert_id)
        if alert is None:
            continue
        # The record shows the alert as it is now; an older transition of an alert that has
        # moved on since is covered by the row for its present state.
        existing = written.get((alert.id, alert.status))
        if existing is None:
            to_build.append((alert, transition_id))
            planned.superseding.setdefault(alert.status, []).append(alert.id)
        elif transition_id > existing[1]:
            planned.moved_on.append((existing[0], transition_id))
    bundles = bundles_for(session, [alert for alert, _ in to_build], allow_test_nhs_numbers=allow_test_nhs_numbers)
    for alert, transition_id in to_build:
        bundle, refused = bundles[alert.id]
        # Never send a wrong record; say why in the outbox, where the operators' metrics see it.
        status = "refused" if refused else "pending" if send else "kept"
        planned.new.append({
            "alert_id": alert.id, "person_id": alert.person_id, "alert_status": alert.status,
            "transition_id": transition_id, "bundle": bundle, "status": status, "attempts": 0,
            "next_attempt_at": now if status == "pending" else None, "detail": refused, "created_at": now})
    return planned


_MOVE_ON = update(RecordWrite).where(RecordWrite.id == bindparam("row")).values(transition_id=bindparam("newest"))


def keep(session: Session, planned: Plan) -> int:
    """Write what `plan` built, in `session`'s transaction: newer states supersede unsent rows of their
    alerts, new rows are inserted (one executemany), rows already written move on to their alert's
    newest transition. Returns how many Bundles were added."""
    for state, ids in planned.superseding.items():
        for chunk in _chunks(ids):
            session.execute(
                update(RecordWrite).where(RecordWrite.alert_id.in_(chunk), RecordWrite.status == "pending")
                .values(status="superseded", next_attempt_at=None, detail=f"superseded by the {state} state")
                .execution_options(synchronize_session=False)
            )
    if planned.new:
        session.execute(insert(RecordWrite), planned.new)  # in the order the alerts changed
    if planned.moved_on:
        session.connection().execute(_MOVE_ON, [{"row": row, "newest": newest} for row, newest in planned.moved_on])
    return len(planned.new)


def queue(session: Session, now: datetime, *, send: bool, allow_test_nhs_numbers: bool = False) -> int:
    """`plan` and `keep` in `session`'s one transaction. Returns how many Bundles were added."""
    return keep(session, plan(session, now, send=send, allow_test_nhs_numbers=allow_test_nhs_numbers))


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
