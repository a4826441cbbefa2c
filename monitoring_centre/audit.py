"""The audit trail: who saw or changed a person's data, when, and why."""

from collections.abc import Iterable

from sqlalchemy.orm import Session

from monitoring_centre.storage import AuditEntry, utc_now


def record(session: Session, actor: str, action: str, person_ids: Iterable[int | None], detail: str = "") -> None:
    """One row per person concerned, so "who saw Mrs Smith's data?" is a single query."""
    now = utc_now()
    for person_id in sorted(set(person_ids), key=lambda p: -1 if p is None else p):
        session.add(AuditEntry(at=now, actor=actor, action=action, person_id=person_id, detail=detail))
