"""The shift handover (`monitoring_centre/handover.py`): open calls, calls in progress with their
newest note, and the handover notes of the last 24 h. Operators and administrators only (403 otherwise, audited)."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, Field

from centre_app.api.calls import CallOut, NoteOut, call_out, note_out
from centre_app.api.deps import Db, DocumentedRoute, invalid, require_roles
from monitoring_centre import audit, handover
from monitoring_centre.access import visible_person_ids
from monitoring_centre.roles import Role
from monitoring_centre.storage import User

router = APIRouter(prefix="/api/v1/handover", tags=["handover"], route_class=DocumentedRoute)
Operator = Annotated[User, Depends(require_roles(Role.OPERATOR, Role.ADMIN))]
"""Operators, and administrators (supervisors): never a nurse, the person or their family."""


class InProgressOut(CallOut):
    """A taken call, with the newest note on any of its alerts (null before any)."""

    latest_note: NoteOut | None


class HandoverNoteOut(BaseModel):
    id: int
    at: datetime
    by: str
    by_name: str
    text: str


class HandoverOut(BaseModel):
    open: list[CallOut]
    """Calls nobody has taken, most urgent first, then longest waiting."""
    in_progress: list[InProgressOut]
    notes: list[HandoverNoteOut]
    """Handover notes of the last 24 h, newest first."""


@router.get("")
def get_handover(user: Operator, session: Db) -> HandoverOut:
    """What this shift hands to the next. Audited "view_handover" against each person with a call."""
    found = handover.handover(session, visible_person_ids(session, user))
    people = [call.person_id for call in found.open] + [item.call.person_id for item in found.in_progress]
    audit.record(session, user.username, "view_handover", people)
    out = HandoverOut(
        open=[call_out(call) for call in found.open],
        in_progress=[InProgressOut(**call_out(item.call).model_dump(),
                                   latest_note=note_out(session, item.latest_note) if item.latest_note else None)
                     for item in found.in_progress],
        notes=[HandoverNoteOut(**vars(note)) for note in found.notes])
    session.commit()
    return out


class HandoverNoteIn(BaseModel):
    text: str = Field(max_length=handover.MAX_TEXT)


@router.post("/notes", status_code=status.HTTP_201_CREATED)
def add_handover_note(body: HandoverNoteIn, user: Operator, session: Db) -> HandoverNoteOut:
    """A note for the next shift. 422 when empty. Audited "add_handover_note" (about the shift,
    not a person)."""
    try:
        note = handover.add_note(session, user.username, body.text)
    except handover.BadHandoverNote as bad:
        raise invalid(("body", "text"), str(bad)) from None
    audit.record(session, user.username, "add_handover_note", [None], f"handover note {note.id}")
    session.commit()
    return HandoverNoteOut(**vars(note))
