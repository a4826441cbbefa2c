"""The nurse's review tasks: trend alerts and missed measurements to review, and the notes that
close them. Thin routes over `monitoring_centre/review_tasks.py` and `alerting/review_record.py`.

- `GET /api/v1/review-tasks`: nurses and team leads (their caseload), administrators (everyone).
  Audited `view_review_tasks`, one row per person listed.
- `POST /api/v1/review-tasks/{alert_id}/review` `{"plan": "..."}`: write the note and close the
  task; the note goes into the person's record as a FHIR ClinicalImpression. 404 for an alert the
  caller may not see, 409 when it is no task or already reviewed, 422 for an empty plan. Audited
  `review_task` with before and after.
- `GET /api/v1/patients/{person_id}/review-notes`: the person's notes, newest first. Audited.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field

from alerting import review_record
from centre_app.api.deps import Centre, Db, DocumentedRoute, VisibleAlert, VisiblePerson, errors, invalid, require_roles
from monitoring_centre import audit, review_tasks
from monitoring_centre.access import visible_person_ids
from monitoring_centre.roles import Role
from monitoring_centre.storage import ReviewNote, User, utc_now

router = APIRouter(prefix="/api/v1", tags=["review tasks"], route_class=DocumentedRoute)

Reviewer = Annotated[User, Depends(require_roles(Role.NURSE.value, Role.TEAM_LEAD.value, Role.ADMIN.value))]


class TaskOut(BaseModel):
    alert_id: int
    person_id: int
    person_name: str
    rule: str
    kind: str
    """"trend" or "missed measurement"."""
    title: str
    opened_at: datetime
    last_seen_at: datetime
    repeats: int
    alert_status: str
    evidence: list[str]


class ReviewIn(BaseModel):
    plan: str = Field(min_length=1, max_length=review_tasks.MAX_PLAN,
                      description="what was found and what happens next (\"Reviewed, plan: ...\")")


class NoteOut(BaseModel):
    id: int
    alert_id: int
    person_id: int
    plan: str
    written_by: str
    written_at: datetime
    record_status: str
    """kept: the FHIR ClinicalImpression is built and kept with the note; refused: `record_detail` says why."""
    record_detail: str


def _task_out(task: review_tasks.Task) -> TaskOut:
    return TaskOut(**{**vars(task), "evidence": list(task.evidence)})


def _note_out(note: ReviewNote) -> NoteOut:
    return NoteOut(id=note.id, alert_id=note.alert_id, person_id=note.person_id, plan=note.plan,
                   written_by=note.written_by, written_at=note.written_at, record_status=note.record_status,
                   record_detail=note.record_detail)


@router.get("/review-tasks")
def list_tasks(user: Reviewer, session: Db) -> list[TaskOut]:
    """The open review tasks of the people the caller may see, oldest first."""
    tasks = review_tasks.open_tasks(session, visible_person_ids(session, user), utc_now())
    audit.record(session, user.username, "view_review_tasks", [task.person_id for task in tasks])
    session.commit()
    return [_task_out(task) for task in tasks]


@router.post("/review-tasks/{alert_id}/review", status_code=status.HTTP_201_CREATED, responses=errors(409))
def review(body: ReviewIn, user: Reviewer, alert: VisibleAlert, session: Db, centre: Centre) -> NoteOut:
    """Write "Reviewed, plan: ..." on the task's alert: stored, audited with before and after, kept
    as a FHIR ClinicalImpression for the person's record; the task leaves the worklist."""
    if not body.plan.strip():
        raise invalid(("body", "plan"), "write the plan: what was found and what happens next")
    try:
        note = review_tasks.review(session, alert, body.plan, by=user.username)
    except review_tasks.ReviewRefused as refused:
        raise HTTPException(status.HTTP_409_CONFLICT, str(refused)) from None
    review_record.write(session, note, alert, user.display_name or user.username,
                        allow_test_nhs_numbers=centre.settings.allow_test_nhs_numbers)
    session.commit()
    return _note_out(note)


@router.get("/patients/{person_id}/review-notes")
def notes(user: Reviewer, person: VisiblePerson, session: Db) -> list[NoteOut]:
    """The person's review notes, newest first (at most 50)."""
    found = review_tasks.notes(session, person.id)
    audit.record(session, user.username, "view_review_notes", [person.id])
    session.commit()
    return [_note_out(note) for note in found]
