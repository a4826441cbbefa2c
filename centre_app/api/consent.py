"""The person's own controls: who can see my record, give or withdraw a family member's
access, and who has seen or changed my data ("nothing about me without me")."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Query, status
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from centre_app.api.deps import CurrentUser, Db, DocumentedRoute, PersonDecidedFor, errors, invalid
from monitoring_centre import access, audit, own_record
from monitoring_centre.access import SEES_EVERYONE
from monitoring_centre.roles import Role
from monitoring_centre.storage import AuditEntry, User

router = APIRouter(prefix="/api/v1/patients", tags=["consent"], route_class=DocumentedRoute)


class AccessOut(BaseModel):
    who: str
    role: str
    basis: str
    since: datetime | None


class AuditOut(BaseModel):
    at: datetime
    actor: str
    action: str
    detail: str


NOT_FOUND = "We could not find that person. Check the name they use to sign in, or ask the monitoring centre."
"""The one answer for a name that is no family member's account: it says nothing about which
accounts exist or what they are."""


def _family_member(session: Session, username: str, where: str) -> User:
    """The family member's account called `username`; 422 at `(where, "username")` (`NOT_FOUND`)
    when there is none, or the account is not a family member's."""
    member = session.scalar(select(User).where(User.username == username.strip()))
    if member is None or member.role != Role.FAMILY.value:
        raise invalid((where, "username"), NOT_FOUND)
    return member


EVERYONE_SEERS = {Role.ADMIN.value: "the centre's administrators", Role.OPERATOR.value: "the centre's operators"}
"""The roles that see every record (`access.SEES_EVERYONE`), as the person's list names them."""


@router.get("/{person_id}/access")
def who_can_see(person: PersonDecidedFor, user: CurrentUser, session: Db) -> list[AccessOut]:
    """Everyone who can see this person's record, and on what basis: first the roles that see every
    record, then each account once (`own_record.viewers`) with its teams in brackets; `basis` is
    `consent` for a family member the person said yes to, else `direct_care`."""
    result = [AccessOut(who=EVERYONE_SEERS.get(role, role), role=role, basis="direct_care", since=None)
              for role in sorted(SEES_EVERYONE)]
    for viewer in own_record.viewers(session, person.id):
        teams = ""
        if viewer.teams:
            teams = f" (team{'s' if len(viewer.teams) > 1 else ''} {', '.join(viewer.teams)})"
        result.append(AccessOut(who=viewer.name + teams, role=viewer.role,
                                basis="consent" if viewer.consent_since is not None else "direct_care",
                                since=viewer.since))
    audit.record(session, user.username, "view_access_list", [person.id])
    session.commit()
    return result


@router.post("/{person_id}/consent", status_code=status.HTTP_201_CREATED, responses=errors(409))
def give(person: PersonDecidedFor, username: Annotated[str, Body()], user: CurrentUser, session: Db,
         why: Annotated[str, Body(max_length=500)] = "") -> list[AccessOut]:
    """Let a family member see this person's record."""
    try:
        access.give_consent(session, user, person, _family_member(session, username, "body"), why)
    except access.ConsentRefused as refused:
        raise HTTPException(status.HTTP_409_CONFLICT, str(refused)) from None
    session.commit()
    return who_can_see(person, user, session)


@router.delete("/{person_id}/consent/{username}", responses=errors(409))
def withdraw(person: PersonDecidedFor, username: str, user: CurrentUser, session: Db,
             why: Annotated[str, Query(max_length=500)] = "") -> list[AccessOut]:
    """Withdraw a family member's access. It ends at once."""
    try:
        access.withdraw_consent(session, user, person, _family_member(session, username, "path"), why)
    except access.ConsentRefused as refused:
        raise HTTPException(status.HTTP_409_CONFLICT, str(refused)) from None
    session.commit()
    return who_can_see(person, user, session)


@router.get("/{person_id}/audit")
def who_saw_my_data(person: PersonDecidedFor, user: CurrentUser, session: Db,
                    limit: Annotated[int, Query(ge=1, le=1000, description="newest first")] = 200,
                    ) -> list[AuditOut]:
    """Who saw or changed this person's data, when, and why: newest first."""
    rows = session.scalars(select(AuditEntry).where(AuditEntry.person_id == person.id)
                           .order_by(AuditEntry.id.desc()).limit(limit))
    result = [AuditOut(at=e.at, actor=e.actor, action=e.action, detail=e.detail) for e in rows]
    audit.record(session, user.username, "view_audit", [person.id])
    session.commit()
    return result
