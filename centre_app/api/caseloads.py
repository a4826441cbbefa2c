"""Caseloads over HTTP: teams and their members, who is assigned to which nurse and team, and a
caseload ordered by risk with its reasons. Thin routes over `monitoring_centre/teams.py` (who
may change what; every change audited with before and after) and `monitoring_centre/caseload.py`
(the score; docs/caseload.md).

Who may use which route:
- `GET /api/v1/caseload[?nurse=username | ?team=id]`: a nurse or team lead, her own caseload, or
  (a team lead) one of her teams' or of a nurse sharing a team with her; an administrator names one.
- `GET /api/v1/teams`: administrators (every team), nurses and team leads (their own).
- `POST /api/v1/teams`, `PUT`/`DELETE /api/v1/teams/{team_id}/members/{username}`: administrators.
- `GET`/`PUT`/`DELETE /api/v1/teams/{team_id}/caseload[/{person_id}]`: administrators, team leads of the team.
- `GET`/`PUT`/`DELETE /api/v1/nurses/{username}/caseload[/{person_id}]`: administrators, team leads
  sharing a team with the nurse.

Refusals are audited (`deps.refuse`): 403 for a role that may not, or a team or nurse not the
caller's to manage; 404 for a team, nurse or person that does not exist or the caller may not see.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from centre_app.api.deps import (
    Admin,
    Db,
    DocumentedRoute,
    RowId,
    errors,
    invalid,
    person_asked_about,
    refuse,
    refuses,
    require_roles,
    visible_person,
)
from monitoring_centre import audit, caseload, teams
from monitoring_centre.access import visible_person_ids
from monitoring_centre.roles import Role
from monitoring_centre.storage import Person, Team, User, utc_now

router = APIRouter(prefix="/api/v1", tags=["caseloads"], route_class=DocumentedRoute)

VIEWS_CASELOADS = (Role.NURSE.value, Role.TEAM_LEAD.value, Role.ADMIN.value)
MANAGES_CASELOADS = (Role.ADMIN.value, Role.TEAM_LEAD.value)
"""`roles.CASELOAD_MANAGERS`, in the order the refusal names them."""

CaseloadViewer = Annotated[User, Depends(require_roles(*VIEWS_CASELOADS))]
CaseloadManager = Annotated[User, Depends(require_roles(*MANAGES_CASELOADS))]


@refuses(404)
def existing_team(request: Request, team_id: RowId, user: Admin, session: Db) -> Team:
    """The team at the path's `{team_id}`, for an administrator; 404 "no such team", audited."""
    team = session.get(Team, team_id)
    if team is None:
        raise refuse(request, session, user, status.HTTP_404_NOT_FOUND, "no such team", None)
    return team


@refuses(403, 404)
def managed_team(request: Request, team_id: RowId, user: CaseloadManager, session: Db) -> Team:
    """The team at the path's `{team_id}`, if the caller may change its caseload
    (`teams.may_manage_team`): 404 "no such team", 403 for a team lead not on it; audited."""
    team = session.get(Team, team_id)
    if team is None:
        raise refuse(request, session, user, status.HTTP_404_NOT_FOUND, "no such team",
                     person_asked_about(request, session))
    if not teams.may_manage_team(session, user, team.id):
        raise refuse(request, session, user, status.HTTP_403_FORBIDDEN, "a team lead manages only her own teams",
                     person_asked_about(request, session))
    return team


@refuses(403, 404)
def managed_nurse(request: Request, username: str, user: CaseloadManager, session: Db) -> User:
    """The nurse or team lead at the path's `{username}`, if the caller may change her caseload
    (`teams.may_manage_nurse`): 404 "no such nurse" (no such account, or not a clinician), 403 for a
    team lead who shares no team with her; audited."""
    nurse = teams.clinician_named(session, username)
    if nurse is None:
        raise refuse(request, session, user, status.HTTP_404_NOT_FOUND, "no such nurse",
                     person_asked_about(request, session))
    if not teams.may_manage_nurse(session, user, nurse):
        raise refuse(request, session, user, status.HTTP_403_FORBIDDEN,
                     "a team lead manages only the caseloads of her teams' nurses",
                     person_asked_about(request, session))
    return nurse


@dataclass(frozen=True)
class Assignment:
    """A person and the nurse or team a route assigns them to (or takes them off)."""

    person: Person
    nurse: User | None = None
    team: Team | None = None


@refuses(403, 404)
def nurse_assignment(request: Request, username: str, person_id: RowId, user: CaseloadManager,
                     session: Db) -> Assignment:
    """`managed_nurse`, then the person at `{person_id}` as `visible_person` (404 unless the caller may
    see them). Both ids are declared here, so a bad one is a 422 before anything is looked up."""
    nurse = managed_nurse(request, username, user, session)
    return Assignment(person=visible_person(request, person_id, user, session), nurse=nurse)


@refuses(403, 404)
def team_assignment(request: Request, team_id: RowId, person_id: RowId, user: CaseloadManager,
                    session: Db) -> Assignment:
    """`managed_team`, then the person at `{person_id}` as `visible_person`."""
    team = managed_team(request, team_id, user, session)
    return Assignment(person=visible_person(request, person_id, user, session), team=team)


ExistingTeam = Annotated[Team, Depends(existing_team)]
ManagedTeam = Annotated[Team, Depends(managed_team)]
ManagedNurse = Annotated[User, Depends(managed_nurse)]
NurseAssignment = Annotated[Assignment, Depends(nurse_assignment)]
TeamAssignment = Annotated[Assignment, Depends(team_assignment)]


class MemberOut(BaseModel):
    username: str
    display_name: str
    role: str


class TeamOut(BaseModel):
    id: int
    name: str
    members: list[MemberOut]
    caseload_size: int
    """How many people are on the team's caseload."""


class TeamIn(BaseModel):
    name: str = Field(min_length=1, max_length=teams.MAX_TEAM_NAME)


class PersonOut(BaseModel):
    id: int
    name: str


class AssignmentsOut(BaseModel):
    """Who cares for one person after a change: nurses' usernames and teams' names."""

    person_id: int
    nurses: list[str]
    teams: list[str]


class PartOut(BaseModel):
    component: caseload.Component
    points: int
    detail: str


class CaseloadRowOut(BaseModel):
    person_id: int
    name: str
    score: int
    """The sum of `components`' points (0 to `max_score`)."""
    components: list[PartOut]
    """Every component of the formula, in its order, with its points and what they were for."""
    why: list[str]
    """The components that scored, in plain words, most points first (empty when none did)."""
    not_known: list[str]
    """What the score could not see (no recent reading): not scored, not reassurance."""
    via: list[str]
    """How the person is on this caseload: "on your caseload", "team North"."""
    frailty: str | None
    last_alert_at: datetime | None
    """When the most recent counted alert was last open: the first tie-break."""


class CaseloadOut(BaseModel):
    nurse: str | None
    team: str | None
    computed_at: datetime
    max_score: int
    rows: list[CaseloadRowOut]
    """Highest score first; ties by the most recent counted alert, then name (docs/caseload.md)."""


def _team_out(team: teams.TeamView) -> TeamOut:
    return TeamOut(id=team.id, name=team.name, caseload_size=team.caseload_size,
                   members=[MemberOut(username=m.username, display_name=m.display_name, role=m.role)
                            for m in team.members])


@router.get("/caseload", responses=errors(403, 404))
def my_caseload(request: Request, user: CaseloadViewer, session: Db,
                nurse: Annotated[str | None, Query(max_length=100, description="a nurse's username")] = None,
                team: Annotated[RowId | None, Query(description="a team's id")] = None) -> CaseloadOut:
    """The caseload ordered by risk: a nurse's or team lead's own (her people and her teams'), or,
    with `nurse` or `team`, one she may look at (a nurse herself; a team lead, a nurse sharing a
    team with her or a team of hers; an administrator, any: she must name one). Shows only people
    the caller may see. Audited `view_caseload`, one row per person shown."""
    if nurse is not None and team is not None:
        raise invalid(("query", "team"), "give a nurse or a team, not both")
    team_name: str | None = None
    nurse_name: str | None = None
    if team is not None:
        found = session.get(Team, team)
        if found is None:
            raise refuse(request, session, user, status.HTTP_404_NOT_FOUND, "no such team", None)
        if not teams.may_view_team(session, user, found.id):
            raise refuse(request, session, user, status.HTTP_403_FORBIDDEN,
                         "only the team's members and administrators see its caseload", None)
        via, scope, team_name = teams.caseload_of_team(session, found), f"team {found.id} ({found.name})", found.name
    else:
        if nurse is None and user.role == Role.ADMIN:
            raise invalid(("query", "nurse"), "an administrator names a nurse (nurse=) or a team (team=)")
        whose = user if nurse is None else teams.clinician_named(session, nurse)
        if whose is None:
            raise refuse(request, session, user, status.HTTP_404_NOT_FOUND, "no such nurse", None)
        if not teams.may_view_nurse(session, user, whose):
            raise refuse(request, session, user, status.HTTP_403_FORBIDDEN,
                         "a nurse sees her own caseload; a team lead, those of her teams' nurses", None)
        via = teams.caseload_of_nurse(session, whose, own=whose.id == user.id)
        scope, nurse_name = f"nurse {whose.username}", whose.username
    visible = visible_person_ids(session, user)
    shown = [person_id for person_id in via if visible is None or person_id in visible]
    now = utc_now()
    risks = caseload.ranked_caseload(session, shown, now)
    audit.record(session, user.username, "view_caseload", [risk.person_id for risk in risks], scope)
    session.commit()
    return CaseloadOut(
        nurse=nurse_name, team=team_name, computed_at=now, max_score=caseload.MAX_SCORE,
        rows=[CaseloadRowOut(person_id=risk.person_id, name=risk.name, score=risk.score,
                             components=[PartOut(component=p.component, points=p.points, detail=p.detail)
                                         for p in risk.parts],
                             why=list(risk.why), not_known=list(risk.not_known), via=via[risk.person_id],
                             frailty=risk.frailty.value if risk.frailty else None, last_alert_at=risk.last_alert_at)
              for risk in risks])


# Teams and their members.

TeamViewer = Annotated[User, Depends(require_roles(*VIEWS_CASELOADS))]


@router.get("/teams")
def list_teams(user: TeamViewer, session: Db) -> list[TeamOut]:
    """Every team for an administrator; her own teams for a nurse or team lead. No person's data
    (names of staff, and caseload sizes), so not audited."""
    return [_team_out(team) for team in teams.teams(session, user)]


@router.post("/teams", status_code=status.HTTP_201_CREATED, responses=errors(409))
def create_team(body: TeamIn, user: Admin, session: Db) -> TeamOut:
    """A new team, with no members. 409 when another team has the name. Audited `create_team`."""
    try:
        team = teams.create_team(session, body.name, by=user.username)
    except teams.CaseloadRefused as refused:
        raise HTTPException(status.HTTP_409_CONFLICT, str(refused)) from None
    session.commit()
    return _team_out(teams.view(session, team))


def _member(session: Db, username: str) -> User:
    member = teams.clinician_named(session, username)
    if member is None:
        raise invalid(("path", "username"), f"no nurse or team lead called {username!r}")
    return member


@router.put("/teams/{team_id}/members/{username}")
def add_member(username: str, user: Admin, team: ExistingTeam, session: Db) -> TeamOut:
    """Put a nurse or team lead on the team: she sees its caseload from now on. Audited
    `add_team_member` with the members before and after, one row per person she now sees."""
    teams.add_member(session, team, _member(session, username), by=user.username)
    session.commit()
    return _team_out(teams.view(session, team))


@router.delete("/teams/{team_id}/members/{username}")
def remove_member(username: str, user: Admin, team: ExistingTeam, session: Db) -> TeamOut:
    """Take a member off the team. 404 when she is not on it. Audited `remove_team_member`."""
    if not teams.remove_member(session, team, _member(session, username), by=user.username):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{username} is not on this team")
    session.commit()
    return _team_out(teams.view(session, team))


# People on caseloads.

def _assignments(session: Db, person_id: int) -> AssignmentsOut:
    now = teams.assignments(session, person_id)
    return AssignmentsOut(person_id=person_id, nurses=list(now.nurses), teams=list(now.teams))


@router.get("/teams/{team_id}/caseload")
def team_caseload(user: CaseloadManager, team: ManagedTeam, session: Db) -> list[PersonOut]:
    """The people on the team's caseload, by name. Audited `view_caseload_assignments`, one row per person."""
    people = teams.team_people(session, team.id)
    audit.record(session, user.username, "view_caseload_assignments", [p.id for p in people], f"team {team.id}")
    session.commit()
    return [PersonOut(id=p.id, name=p.name) for p in people]


@router.put("/teams/{team_id}/caseload/{person_id}")
def assign_to_team(user: CaseloadManager, target: TeamAssignment, session: Db) -> AssignmentsOut:
    """Put the person on the team's caseload (no change if already there). Audited
    `assign_caseload` with the person's nurses and teams before and after."""
    assert target.team is not None
    teams.assign_to_team(session, target.person, target.team, by=user.username)
    session.commit()
    return _assignments(session, target.person.id)


@router.delete("/teams/{team_id}/caseload/{person_id}")
def unassign_from_team(user: CaseloadManager, target: TeamAssignment, session: Db) -> AssignmentsOut:
    """Take the person off the team's caseload. 404 when they are not on it. Audited `unassign_caseload`."""
    assert target.team is not None
    if not teams.unassign_from_team(session, target.person, target.team, by=user.username):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the person is not on this team's caseload")
    session.commit()
    return _assignments(session, target.person.id)


@router.get("/nurses/{username}/caseload")
def nurse_caseload(user: CaseloadManager, nurse: ManagedNurse, session: Db) -> list[PersonOut]:
    """The people assigned to the nurse herself (not her teams'), by name, as far as the caller may
    see them. Audited `view_caseload_assignments`, one row per person."""
    visible = visible_person_ids(session, user)
    people = [p for p in teams.nurse_people(session, nurse) if visible is None or p.id in visible]
    audit.record(session, user.username, "view_caseload_assignments", [p.id for p in people],
                 f"nurse {nurse.username}")
    session.commit()
    return [PersonOut(id=p.id, name=p.name) for p in people]


@router.put("/nurses/{username}/caseload/{person_id}")
def assign_to_nurse(user: CaseloadManager, target: NurseAssignment, session: Db) -> AssignmentsOut:
    """Put the person on the nurse's own caseload (no change if already there). Audited
    `assign_caseload` with the person's nurses and teams before and after."""
    assert target.nurse is not None
    teams.assign_to_nurse(session, target.person, target.nurse, by=user.username)
    session.commit()
    return _assignments(session, target.person.id)


@router.delete("/nurses/{username}/caseload/{person_id}")
def unassign_from_nurse(user: CaseloadManager, target: NurseAssignment, session: Db) -> AssignmentsOut:
    """Take the person off the nurse's own caseload. 404 when they are not on it. Audited `unassign_caseload`."""
    assert target.nurse is not None
    if not teams.unassign_from_nurse(session, target.person, target.nurse, by=user.username):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the person is not on this nurse's caseload")
    session.commit()
    return _assignments(session, target.person.id)
