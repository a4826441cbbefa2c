from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from monitoring_centre import audit
from monitoring_centre.access import visible_people
from monitoring_centre.api.deps import CurrentUser, Db
from monitoring_centre.storage import Hub

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
