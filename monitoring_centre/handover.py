"""The shift handover: what one shift of operators leaves to the next.

Open calls nobody has taken, calls in progress (taken) with the newest note on each, and
the handover notes written in the last `NOTES_WINDOW` (24 h). Notes are the operators' own
words to each other, about the shift rather than about one person, so they are not
audited per person; viewing the calls in the handover is (the caller audits it).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitoring_centre import calls
from monitoring_centre.call_notes import Note, notes_for
from monitoring_centre.storage import HandoverNote, utc_now

NOTES_WINDOW = timedelta(hours=24)
MAX_TEXT = 4000


@dataclass(frozen=True)
class InProgress:
    """A taken call and its newest note (None before any)."""

    call: calls.Call
    latest_note: Note | None


@dataclass(frozen=True)
class ShiftNote:
    id: int
    at: datetime
    by: str
    by_name: str
    text: str


@dataclass(frozen=True)
class Handover:
    open: tuple[calls.Call, ...]
    """Calls nobody has taken, in queue order."""
    in_progress: tuple[InProgress, ...]
    notes: tuple[ShiftNote, ...]
    """Handover notes of the last 24 h, newest first."""


class BadHandoverNote(ValueError):
    pass


def handover(session: Session, visible: set[int] | None = None, now: datetime | None = None) -> Handover:
    """The handover for the people in `visible` (None: everyone)."""
    now = now or utc_now()
    queue = calls.active_calls(session, visible)
    taken = [call for call in queue if call.taken_by]
    members = {call.person_id: calls.same_call(session, call.person_id, calls.alert_ids(call), call.opened_at)
               for call in taken}  # a note on an alarm of the call already resolved is still the call's
    notes = notes_for(session, [alert_id for ids in members.values() for alert_id in ids])
    latest: dict[int, Note] = {}
    for note in notes:  # oldest first: the last one wins
        latest[note.alert_id] = note
    in_progress = []
    for call in taken:
        mine = [latest[alert_id] for alert_id in members[call.person_id] if alert_id in latest]
        in_progress.append(InProgress(call, max(mine, key=lambda n: (n.at, n.id)) if mine else None))
    rows = list(session.scalars(select(HandoverNote).where(HandoverNote.at >= now - NOTES_WINDOW)
                                .order_by(HandoverNote.at.desc(), HandoverNote.id.desc())))
    names = calls.display_names(session, [row.by for row in rows])
    return Handover(
        open=tuple(call for call in queue if not call.taken_by), in_progress=tuple(in_progress),
        notes=tuple(ShiftNote(row.id, row.at, row.by, names.get(row.by, row.by), row.text) for row in rows))


def add_note(session: Session, by: str, text: str, now: datetime | None = None) -> ShiftNote:
    """Keep a handover note. Raises `BadHandoverNote` for an empty one or one over `MAX_TEXT`
    characters. The caller commits."""
    text = text.strip()
    if not text or len(text) > MAX_TEXT:
        raise BadHandoverNote(f"a handover note has some text, at most {MAX_TEXT} characters")
    row = HandoverNote(at=now or utc_now(), by=by, text=text)
    session.add(row)
    session.flush()
    return ShiftNote(row.id, row.at, row.by, calls.display_names(session, [by])[by], row.text)
