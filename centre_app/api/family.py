"""Keyholder requests for a family member who is also a keyholder: thin routes over
`alerting/keyholder_requests.py` (design there: an account linked to its responder).

- `GET /api/v1/keyholder-requests`: family accounts; the open requests to their responder (none if
  the account is no responder). Audited `view_keyholder_requests`, one row per person concerned.
- `POST /api/v1/keyholder-requests/{notification_id}/accept` (family accounts; 404 for any other): as
  the link in the message (`acceptance.accept`): 404 for a request not theirs, 409 taken or already
  accepted, 410 expired; on success the person's access details (key safe) are returned, as the link page shows them.
- `POST /api/v1/keyholder-requests/{notification_id}/decline`: recorded; the escalation carries on.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel

from alerting import acceptance, keyholder_requests
from centre_app.api.accept import STATUS
from centre_app.api.deps import (
    CurrentUser,
    Db,
    DocumentedRoute,
    ErrorOut,
    RowId,
    errors,
    refuse,
    refuses,
    require_roles,
)
from monitoring_centre import audit
from monitoring_centre.roles import Role
from monitoring_centre.storage import Person, User, utc_now

router = APIRouter(prefix="/api/v1/keyholder-requests", tags=["family"], route_class=DocumentedRoute)

FamilyMember = Annotated[User, Depends(require_roles(Role.FAMILY.value))]


@refuses(404)
def answering_family(request: Request, notification_id: RowId, user: CurrentUser, session: Db) -> User:
    """A family account answering the request at the path's `{notification_id}`: the id is checked
    with the role (an oversized id is a 422 for every caller, before anything else). Another role has
    no keyholder requests: 404 "no such request", audited (`refuse`)."""
    if user.role != Role.FAMILY:
        raise refuse(request, session, user, 404, "no such request", None, f"a {user.role} account")
    return user


AnsweringFamily = Annotated[User, Depends(answering_family)]


class RequestOut(BaseModel):
    notification_id: int
    alert_id: int
    person_id: int
    person_name: str
    alert_title: str
    priority: int
    sent_at: datetime
    address: str


class AnswerOut(BaseModel):
    alert_id: int
    person_name: str
    answer: str
    """accepted or declined."""
    access_details: str
    """How to get in (key safe): only after accepting, as the link page shows it; empty otherwise."""


@router.get("")
def open_requests(user: FamilyMember, session: Db) -> list[RequestOut]:
    """The open requests to the account's responder, newest first."""
    found = keyholder_requests.open_requests(session, user)
    audit.record(session, user.username, "view_keyholder_requests", [r.person_id for r in found])
    session.commit()
    return [RequestOut(**vars(r)) for r in found]


def _refused(request: Request, session: Db, user: User, refused: acceptance.AcceptRefused) -> HTTPException:
    session.commit()  # the refusal's own audit row (acceptance.accept), if any
    return refuse(request, session, user, STATUS[refused.refusal], str(refused), None)


@router.post("/{notification_id}/accept", responses={**errors(404, 409), 410: {
    "model": ErrorOut, "description": "The alarm is over: the request has expired."}})
def accept(notification_id: RowId, request: Request, user: AnsweringFamily, session: Db) -> AnswerOut:
    """Accept: the alert goes in progress and its escalation stops (as by the link)."""
    try:
        accepted = keyholder_requests.accept(session, user, notification_id, utc_now())
    except acceptance.AcceptRefused as refused:
        raise _refused(request, session, user, refused) from None
    session.commit()
    return AnswerOut(alert_id=accepted.alert.id, person_name=accepted.person.name, answer="accepted",
                     access_details=accepted.person.access_details)


@router.post("/{notification_id}/decline", responses=errors(404))
def decline(notification_id: RowId, request: Request, user: AnsweringFamily, session: Db) -> AnswerOut:
    """Decline: recorded; the escalation goes on to the next contact."""
    try:
        alert = keyholder_requests.decline(session, user, notification_id)
    except acceptance.AcceptRefused as refused:
        raise _refused(request, session, user, refused) from None
    session.commit()
    person = session.get_one(Person, alert.person_id)
    return AnswerOut(alert_id=alert.id, person_name=person.name, answer="declined", access_details="")
