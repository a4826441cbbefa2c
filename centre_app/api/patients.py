from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from alerting import patient_record
from alerting.escalation import recipients
from alerting.policy import Audience
from centre_app.api.calls import CallerOut, caller_out
from centre_app.api.deps import Admin, Centre, CurrentUser, Db, DocumentedRoute, VisiblePerson, invalid
from monitoring_centre import audit, caller_record, trends
from monitoring_centre.access import visible_people
from monitoring_centre.nhs_number import InvalidNhsNumber, normalise
from monitoring_centre.storage import Hub, begin_read, utc_now
from telecare_protocol.codes import METRICS, Metric

router = APIRouter(prefix="/api/v1/patients", tags=["patients"], route_class=DocumentedRoute)


class PatientOut(BaseModel):
    id: int
    name: str
    address: str
    hub_ids: list[str]


@router.get("")
def list_patients(user: CurrentUser, session: Db) -> list[PatientOut]:
    """The people the caller may see: everyone for operators, a caseload or consented people otherwise."""
    people = visible_people(session, user)
    hubs: dict[int, list[str]] = {}
    for hub in session.scalars(select(Hub).where(Hub.person_id.in_([p.id for p in people]))):
        hubs.setdefault(hub.person_id, []).append(hub.id)
    audit.record(session, user.username, "view_patient_list", [p.id for p in people])
    session.commit()
    return [PatientOut(id=p.id, name=p.name, address=p.address, hub_ids=sorted(hubs.get(p.id, []))) for p in people]


@router.get("/{person_id}/record", response_class=JSONResponse,
            responses={200: {"content": {"application/fhir+json": {}}}})
def record(person: VisiblePerson, user: CurrentUser, session: Db) -> JSONResponse:
    """The person's record as the centre wrote it: FHIR R4 (a collection Bundle of every
    alert, its outcome and who was told). Read in a read-only transaction (`begin_read`: a whole
    record is no reason to hold up the alarm path's writes), audited in a short one of its own."""
    session.commit()
    begin_read(session)
    bundle = patient_record.person_record(session, person.id)
    session.commit()
    audit.record(session, user.username, "view_record", [person.id])
    session.commit()
    return JSONResponse(bundle, media_type="application/fhir+json")


class HubOut(BaseModel):
    id: str
    link: str | None
    power: str | None
    last_heartbeat_at: datetime | None


class KeyholderOut(BaseModel):
    name: str
    contact_points: list[str]


class PatientDetail(BaseModel):
    id: int
    name: str
    address: str
    nhs_number: str | None
    service: str
    hubs: list[HubOut]
    keyholders: list[KeyholderOut]
    """In the order the person wants them called."""


@router.get("/{person_id}")
def patient(person: VisiblePerson, user: CurrentUser, session: Db) -> PatientDetail:
    """What an operator needs to act on an alert for this person: where they are, their hub's
    state, and whom they want called. (How to get in is shown only to a responder who accepts.)"""
    hubs = [HubOut(id=h.id, link=h.link, power=h.power, last_heartbeat_at=h.last_heartbeat_at)
            for h in session.scalars(select(Hub).where(Hub.person_id == person.id).order_by(Hub.id))]
    keyholders = [KeyholderOut(name=k.name, contact_points=list(k.addresses))
                  for group in recipients(session, person, Audience.KEYHOLDERS) for k in group]
    audit.record(session, user.username, "view_patient", [person.id])
    session.commit()
    return PatientDetail(id=person.id, name=person.name, address=person.address, nhs_number=person.nhs_number,
                         service=person.service, hubs=hubs, keyholders=keyholders)


class BucketOut(BaseModel):
    start: datetime
    low: float | None
    median: float | None
    high: float | None
    clean: int
    flagged: int
    """Readings the device flagged (questionable, low perfusion, probe off): counted, never charted."""


class ReadingsOut(BaseModel):
    metric: Metric
    unit: str
    since: datetime
    bucket_minutes: int
    buckets: list[BucketOut]


@router.get("/{person_id}/readings")
def readings(person: VisiblePerson, user: CurrentUser, session: Db, metric: Metric,
             hours: Annotated[int, Query(ge=1, le=24 * 31)] = 72,
             bucket_minutes: Annotated[int, Query(ge=1, le=24 * 60)] = 15) -> ReadingsOut:
    """A person's readings of one metric over the last `hours`, one summary per bucket. Read in a
    read-only transaction (`begin_read`: up to a month of readings, summarised in Python, must not
    hold up the alarm path's writes), audited in a short one of its own."""
    until = utc_now()
    since = until - timedelta(hours=hours)
    session.commit()
    begin_read(session)
    try:
        buckets = trends.summarise(session, person.id, metric, since, until, timedelta(minutes=bucket_minutes))
    except ValueError as problem:
        raise invalid(("query", "bucket_minutes"), str(problem)) from None
    session.commit()
    audit.record(session, user.username, "view_readings", [person.id], f"{metric.value}, {hours} h")
    session.commit()
    return ReadingsOut(metric=metric, unit=METRICS[metric].unit, since=since, bucket_minutes=bucket_minutes,
                       buckets=[BucketOut(**vars(b)) for b in buckets])


class PhoneIn(BaseModel):
    label: str = Field(default="", max_length=50)
    number: str = Field(max_length=50)


class CallerRecordChange(BaseModel):
    """Any subset of the caller record's fields (a field left out is left as it is)."""

    name: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=500)
    access_details: str | None = Field(default=None, max_length=2000)
    """How a responder gets in (the key-safe code): shown only to a responder who has accepted."""
    access_notes: str | None = Field(default=None, max_length=2000)
    """What an operator may see about getting in (which door, lights, parking)."""
    date_of_birth: date | None = None
    phones: list[PhoneIn] | None = Field(default=None, max_length=caller_record.MAX_PHONES)
    conditions: str | None = Field(default=None, max_length=4000)
    medication_summary: str | None = Field(default=None, max_length=4000)
    allergies: str | None = Field(default=None, max_length=2000)
    communication_needs: str | None = Field(default=None, max_length=2000)
    property_risks: str | None = Field(default=None, max_length=2000)
    pets: str | None = Field(default=None, max_length=1000)
    gp_practice: str | None = Field(default=None, max_length=300)
    nhs_number: str | None = Field(default=None, max_length=20)
    """Written "943 476 5919" or plain; "" or null clears it."""


_CLEARABLE = frozenset({"date_of_birth", "nhs_number"})


@router.patch("/{person_id}")
def change_caller_record(change: CallerRecordChange, user: Admin, person: VisiblePerson, session: Db,
                         centre: Centre) -> CallerOut:
    """Change a person's caller record (administrators). Each field sent is set; null clears
    `date_of_birth` or `nhs_number` and is refused for the others. 422 names the field: an empty
    name, a date of birth in the future, an invalid NHS number or one already another person's.
    Audited "edit_caller_record" with the values before and after (the key-safe code as "(changed)")."""
    changes: dict[str, Any] = {}
    for field in sorted(change.model_fields_set):
        value = getattr(change, field)
        if value is None and field not in _CLEARABLE:
            raise invalid(("body", field), "null clears only date_of_birth or nhs_number")
        if field == "phones":
            value = [{"label": phone.label, "number": phone.number} for phone in value]
        if field == "nhs_number":
            try:
                value = normalise(value, allow_test_numbers=centre.settings.allow_test_nhs_numbers) if value else None
            except InvalidNhsNumber as bad:
                raise invalid(("body", "nhs_number"), str(bad)) from None
        changes[field] = value
    today = utc_now().date()
    try:
        caller_record.update(session, person, changes, user.username, today)
    except caller_record.BadRecord as bad:
        raise invalid(("body", bad.field), str(bad)) from None
    record = caller_record.record(session, person, today)
    session.commit()
    return caller_out(record)
