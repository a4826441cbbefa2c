from datetime import datetime

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select

from alerting import patient_record
from monitoring_centre import audit
from monitoring_centre.access import visible_people
from monitoring_centre.api.deps import CurrentUser, Db, may_see
from monitoring_centre.storage import ContactPoint, Hub, Person, PersonContact, Responder

router = APIRouter(prefix="/api/v1/patients", tags=["patients"])


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
def record(person_id: int, user: CurrentUser, session: Db) -> JSONResponse:
    """The person's record as the centre wrote it: FHIR R4 (a collection Bundle of every
    alert, its outcome and who was told)."""
    if not may_see(session, user, person_id) or session.get(Person, person_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such person")
    bundle = patient_record.person_record(session, person_id)
    audit.record(session, user.username, "view_record", [person_id])
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
def patient(person_id: int, user: CurrentUser, session: Db) -> PatientDetail:
    """What an operator needs to act on an alert for this person: where they are, their hub's
    state, and whom they want called. (How to get in is shown only to a responder who accepts.)"""
    person = session.get(Person, person_id)
    if person is None or not may_see(session, user, person_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such person")
    hubs = [HubOut(id=h.id, link=h.link, power=h.power, last_heartbeat_at=h.last_heartbeat_at)
            for h in session.scalars(select(Hub).where(Hub.person_id == person_id).order_by(Hub.id))]
    keyholders = []
    for responder in session.scalars(select(Responder).join(PersonContact, PersonContact.responder_id == Responder.id)
                                     .where(PersonContact.person_id == person_id).order_by(PersonContact.position)):
        addresses = session.scalars(select(ContactPoint.address).where(ContactPoint.responder_id == responder.id)
                                    .order_by(ContactPoint.position))
        keyholders.append(KeyholderOut(name=responder.name, contact_points=list(addresses)))
    audit.record(session, user.username, "view_patient", [person_id])
    session.commit()
    return PatientDetail(id=person.id, name=person.name, address=person.address, nhs_number=person.nhs_number,
                         service=person.service, hubs=hubs, keyholders=keyholders)
