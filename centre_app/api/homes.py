"""People and their homes on the centre's books, for administrators: enrol, change the service, retire.

Thin routes over `centre_app/admin.py` (`enrol`: the person, their hub and devices, and the
hub's broker password) and `monitoring_centre/homes.py` (the service, retiring); the rest of a person's entry is their
caller record (`PATCH /api/v1/patients/{id}`, `centre_app/api/patients.py`). The hub's broker
password is in the enrolment's answer only, once: the centre keeps its hash, and writes the
broker's files from the hashes (`telecare admin broker-files`). Every change is audited with
before and after (`homes.py`), every refusal too.
"""

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from centre_app.admin import AdminError, enrol, parse_device
from centre_app.api.deps import Admin, Centre, Db, DocumentedRoute, VisiblePerson, errors, invalid, refuse
from monitoring_centre import audit, homes
from monitoring_centre.storage import Person

router = APIRouter(prefix="/api/v1/homes", tags=["homes"], route_class=DocumentedRoute)


class EnrolmentIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    address: str = Field(min_length=1, max_length=500)
    hub_id: str = Field(description="the hub's id, also its broker username: lower-case letters, digits, - and _")
    devices: list[str] = Field(default_factory=list, max_length=100,
                               description="each `ID:KIND[:LOCATION[:BED_SENSOR]]`, e.g. `pendant-1:pendant`, "
                                           "`pir-1:motion:kitchen`")
    nhs_number: str | None = Field(default=None, max_length=20)
    service: str = Field(default="monitored", description="`monitored` or `keyholder_only`")
    access_details: str = Field(default="", max_length=2000, description="how a responder gets in (key safe)")


class EnrolmentOut(BaseModel):
    person_id: int
    hub_id: str
    broker_username: str
    broker_password: str = Field(description="shown once, here: the centre keeps only its hash")


class ServiceChange(BaseModel):
    service: str = Field(description="`monitored` (the operators answer first) or `keyholder_only` (the "
                                     "keyholders are called in order, then the emergency services)")


class PersonOut(BaseModel):
    id: int
    name: str
    address: str
    nhs_number: str | None
    service: str
    hub_ids: list[str]
    access_details_recorded: bool = Field(description="whether a way in is recorded (never the way in itself)")


class Retirement(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class RetiredOut(BaseModel):
    person_id: int
    hubs_retired: list[str]


@router.post("", status_code=status.HTTP_201_CREATED, responses=errors(409))
def enrol_home(request: Request, new: EnrolmentIn, user: Admin, session: Db, centre: Centre) -> EnrolmentOut:
    """Put a person, their hub and devices on the books. 409 if the hub or NHS number is
    enrolled already; 422 for a hub id no hub may have, a malformed device or NHS number."""
    try:
        devices = [parse_device(text) for text in new.devices]
    except AdminError as problem:
        raise invalid(("body", "devices"), str(problem)) from None
    ids = [device.device_id for device in devices]
    if len(set(ids)) != len(ids):
        raise invalid(("body", "devices"), "a device id is listed twice")
    try:
        person, credentials = enrol(session, name=new.name.strip(), address=new.address.strip(),
                                    hub_id=new.hub_id, devices=devices,
                                    centre_username=centre.settings.mqtt_username,
                                    nhs_number=new.nhs_number or None, service=new.service,
                                    allow_test_nhs_numbers=centre.settings.allow_test_nhs_numbers)
    except AdminError as problem:
        session.rollback()
        if "already enrolled" in str(problem):
            raise refuse(request, session, user, status.HTTP_409_CONFLICT, str(problem), None) from None
        raise invalid(("body",), str(problem)) from None
    person.access_details = new.access_details.strip()
    audit.record(session, user.username, "enrol_home", [person.id], homes.enrolled_detail(person, credentials.hub_id,
                                                                                         new.devices))
    session.commit()
    centre.profile_changed(person.id)
    return EnrolmentOut(person_id=person.id, hub_id=credentials.hub_id, broker_username=credentials.hub_id,
                        broker_password=credentials.password)


def person_out(session: Db, person: Person) -> PersonOut:
    return PersonOut(id=person.id, name=person.name, address=person.address, nhs_number=person.nhs_number,
                     service=person.service, hub_ids=[hub.id for hub in homes.hubs(session, person.id)],
                     access_details_recorded=bool(person.access_details))


@router.patch("/{person_id}")
def change_service(body: ServiceChange, user: Admin, person: VisiblePerson, session: Db) -> PersonOut:
    """The person's service (audited "change_service" with before and after; a running alert keeps
    the chain it started with). 422 for an unknown service. The person's name, address and the
    rest are their caller record: `PATCH /api/v1/patients/{person_id}`."""
    try:
        homes.set_service(session, person, body.service, by=user.username)
    except homes.BooksRefused as problem:
        raise invalid(("body", "service"), str(problem)) from None
    session.commit()
    return person_out(session, person)


@router.post("/{person_id}/retire")
def retire(body: Retirement, user: Admin, person: VisiblePerson, session: Db, centre: Centre) -> RetiredOut:
    """Take the person's hubs and devices off the books (`monitoring_centre.homes.retire_home`):
    the hub's broker account goes when the broker's files are next written. 422 when the person
    has no hub."""
    try:
        retired = homes.retire_home(session, person, by=user.username, reason=body.reason)
    except homes.BooksRefused as problem:
        raise invalid(("body", "reason"), str(problem)) from None
    session.commit()
    centre.profile_changed(person.id)
    return RetiredOut(person_id=person.id, hubs_retired=retired)
