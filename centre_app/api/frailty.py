"""A person's frailty category (eFI; `monitoring_centre/frailty.py`) over HTTP: read by the
centre's staff and the person, entered by a clinician or an administrator. Every view and
change is audited (`view_frailty`; `change_frailty` with the category before and after)."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from centre_app.api.deps import Db, DocumentedRoute, VisiblePerson, require_roles
from monitoring_centre import audit, frailty
from monitoring_centre.frailty import FrailtyCategory, FrailtySource
from monitoring_centre.roles import Role
from monitoring_centre.storage import User

router = APIRouter(prefix="/api/v1/patients", tags=["frailty"], route_class=DocumentedRoute)

ENTERS_FRAILTY = (Role.ADMIN.value, Role.NURSE.value, Role.TEAM_LEAD.value)
"""A clinician with the person on her caseload, or an administrator recording a clinician's or the
GP record's category."""
READS_FRAILTY = (Role.ADMIN.value, Role.OPERATOR.value, Role.NURSE.value, Role.TEAM_LEAD.value, Role.PERSON.value)
"""Everyone but family, of the people they may see (the person: their own)."""

FrailtyReader = Annotated[User, Depends(require_roles(*READS_FRAILTY))]
FrailtyEnterer = Annotated[User, Depends(require_roles(*ENTERS_FRAILTY))]


class AssessmentOut(BaseModel):
    category: FrailtyCategory
    efi: str
    """The category's eFI range in words ("eFI 0.25-0.36")."""
    source: FrailtySource
    recorded_at: datetime
    recorded_by: str
    note: str


class FrailtyOut(BaseModel):
    current: AssessmentOut | None
    """The latest entry; None when none was ever made."""
    history: list[AssessmentOut]
    """Every entry, newest first (the first is `current`)."""


class FrailtyIn(BaseModel):
    category: FrailtyCategory
    source: FrailtySource = FrailtySource.ENTERED
    """`entered` (a clinician's judgement) or `gp_record` (copied from the person's GP record)."""
    note: str = Field(default="", max_length=frailty.MAX_NOTE)


def _out(entries: list[frailty.Assessment]) -> FrailtyOut:
    history = [AssessmentOut(category=e.category, efi=frailty.EFI_RANGE[e.category], source=e.source,
                             recorded_at=e.recorded_at, recorded_by=e.recorded_by, note=e.note) for e in entries]
    return FrailtyOut(current=history[0] if history else None, history=history)


@router.get("/{person_id}/frailty")
def get_frailty(user: FrailtyReader, person: VisiblePerson, session: Db) -> FrailtyOut:
    """The person's frailty category and its history. Audited `view_frailty`."""
    entries = frailty.history(session, person.id)
    audit.record(session, user.username, "view_frailty", [person.id])
    session.commit()
    return _out(entries)


@router.put("/{person_id}/frailty")
def set_frailty(body: FrailtyIn, user: FrailtyEnterer, person: VisiblePerson, session: Db) -> FrailtyOut:
    """Record the person's category now (a new entry; the earlier ones stay as its trajectory).
    Audited `change_frailty` with the category before and after, the source and the note."""
    frailty.set_category(session, person.id, body.category, by=user.username, source=body.source, note=body.note)
    session.commit()
    return _out(frailty.history(session, person.id))
