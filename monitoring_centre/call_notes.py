"""What an operator did on a call, as structured notes against an alert.

Each note has an action (`NoteAction`) and free text. "No further action" needs its reason:
"if in doubt, go out" (TSA; domain brief), so a decision not to send anyone is always
recorded with why. Every note is audited ("add_call_note") against the person; the caller commits.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitoring_centre import audit
from monitoring_centre.storage import Alert, CallNote, utc_now

MAX_TEXT = 4000
"""Characters of a note's text or reason."""


class NoteAction(StrEnum):
    """What the operator did (`CallNote.action`)."""

    NOTE = "note"
    """A note only."""
    CALLED_BACK = "called_back"
    """Called the person back."""
    DISPATCHED_KEYHOLDER = "dispatched_keyholder"
    DISPATCHED_RESPONDER_TEAM = "dispatched_responder_team"
    CALLED_999 = "called_999"
    NO_FURTHER_ACTION = "no_further_action"
    """Decided not to send anyone: needs a reason."""


ACTION_WORDS: dict[NoteAction, str] = {
    NoteAction.NOTE: "Note",
    NoteAction.CALLED_BACK: "Called the person back",
    NoteAction.DISPATCHED_KEYHOLDER: "Sent a keyholder",
    NoteAction.DISPATCHED_RESPONDER_TEAM: "Sent the responder team",
    NoteAction.CALLED_999: "Called 999",
    NoteAction.NO_FURTHER_ACTION: "No further action",
}
"""Each action as a handover or the record reads it."""


class BadNote(ValueError):
    """The note cannot be kept; `field` names what to correct ("action", "text" or "reason")."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class Note:
    id: int
    alert_id: int
    at: datetime
    by: str
    """The operator's username."""
    action: NoteAction
    text: str
    reason: str


def _of(row: CallNote) -> Note:
    return Note(row.id, row.alert_id, row.at, row.by, NoteAction(row.action), row.text, row.reason)


def add_note(session: Session, alert: Alert, by: str, action: str, text: str, reason: str = "",
             now: datetime | None = None) -> Note:
    """Keep a note on `alert`. Raises `BadNote` for an unknown action, a `no_further_action`
    without a reason, a note with neither text nor a non-note action, or text or a reason over
    `MAX_TEXT` characters. Audited "add_call_note" ("alert 7: called_back")."""
    if action not in {a.value for a in NoteAction}:
        raise BadNote("action", f"action must be one of {', '.join(a.value for a in NoteAction)}")
    kind = NoteAction(action)
    text, reason = text.strip(), reason.strip()
    if kind == NoteAction.NO_FURTHER_ACTION and not reason:
        raise BadNote("reason", "a decision to take no further action is recorded with its reason")
    if kind == NoteAction.NOTE and not text:
        raise BadNote("text", "a note needs some text")
    if len(text) > MAX_TEXT:
        raise BadNote("text", f"at most {MAX_TEXT} characters")
    if len(reason) > MAX_TEXT:
        raise BadNote("reason", f"at most {MAX_TEXT} characters")
    row = CallNote(alert_id=alert.id, person_id=alert.person_id, at=now or utc_now(), by=by, action=kind.value,
                   text=text, reason=reason if kind == NoteAction.NO_FURTHER_ACTION else "")
    session.add(row)
    session.flush()
    audit.record(session, by, "add_call_note", [alert.person_id], f"alert {alert.id}: {kind.value}")
    return _of(row)


def notes_for(session: Session, alert_ids: Iterable[int]) -> list[Note]:
    """The notes of these alerts, oldest first."""
    ids = list(alert_ids)
    if not ids:
        return []
    return [_of(row) for row in session.scalars(
        select(CallNote).where(CallNote.alert_id.in_(ids)).order_by(CallNote.at, CallNote.id))]


def in_words(note: Note) -> str:
    """A note as one line: "Sent a keyholder: Susan is on her way", "No further action: pressed by
    accident (reason: spoke to her, she is well)"."""
    head = ACTION_WORDS[note.action]
    line = f"{head}: {note.text}" if note.text else head
    if note.reason:
        line += f" (reason: {note.reason})"
    return line
