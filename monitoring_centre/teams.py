"""Caseloads: which nurses and teams of nurses care for whom.

A person is on a nurse's own caseload through a `CareRelationship` of basis `direct_care` (as
before teams), and on a team's through a `TeamCaseload` row: every member of the team then
sees them (`access.visible_person_ids`). A member is a nurse or a team lead (`roles.CLINICIANS`).

Who may change what:
- an administrator makes teams, chooses their members, and assigns anyone to any nurse or team;
- a team lead assigns and unassigns the people she may see (her own and her teams' people) to
  her own teams and to the nurses who share a team with her (herself included);
- nobody else (a nurse, an operator, a family member, the person) changes a caseload.

Every change is audited with the state before and after, as JSON in the row's detail: for an
assignment, one row for the person, e.g. action `assign_caseload`, detail
`{"change": "nurse:anna", "before": {"nurses": [], "teams": ["North"]},
"after": {"nurses": ["anna"], "teams": ["North"]}}`; for a team's membership, one row per
person on the team's caseload (whose data the member gains or loses sight of), or one row
without a person when the caseload is empty. Functions here never commit: the caller does.
"""

import json
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from monitoring_centre import audit
from monitoring_centre.roles import CLINICIANS, Role
from monitoring_centre.storage import CareRelationship, Person, Team, TeamCaseload, TeamMember, User, utc_now

MAX_TEAM_NAME = 200


class CaseloadRefused(ValueError):
    """A change that cannot be made, with the reason the caller is shown."""


@dataclass(frozen=True)
class Assignments:
    """Who cares for one person: the usernames of the nurses it is assigned to, and the names of
    the teams it is on, each sorted."""

    nurses: tuple[str, ...]
    teams: tuple[str, ...]

    def as_json(self) -> dict[str, list[str]]:
        return {"nurses": list(self.nurses), "teams": list(self.teams)}


def assignments(session: Session, person_id: int) -> Assignments:
    nurses = session.scalars(select(User.username).join(CareRelationship, CareRelationship.user_id == User.id)
                             .where(CareRelationship.person_id == person_id,
                                    CareRelationship.basis == "direct_care", User.role.in_(CLINICIANS))
                             .order_by(User.username))
    teams = session.scalars(select(Team.name).join(TeamCaseload, TeamCaseload.team_id == Team.id)
                            .where(TeamCaseload.person_id == person_id).order_by(Team.name))
    return Assignments(tuple(nurses), tuple(teams))


def team_ids_of(session: Session, user: User) -> set[int]:
    """The teams `user` is a member of."""
    return set(session.scalars(select(TeamMember.team_id).where(TeamMember.user_id == user.id)))


def is_clinician(user: User | None) -> bool:
    return user is not None and user.role in CLINICIANS


def clinician_named(session: Session, username: str) -> User | None:
    """The nurse or team lead called `username`, or None (no such account, or another role)."""
    user = session.scalar(select(User).where(User.username == username))
    return user if is_clinician(user) else None


def may_manage_team(session: Session, user: User, team_id: int) -> bool:
    """Whether `user` may change this team's caseload: an administrator, or a team lead on the team."""
    return user.role == Role.ADMIN or (user.role == Role.TEAM_LEAD and team_id in team_ids_of(session, user))


def may_manage_nurse(session: Session, user: User, nurse: User) -> bool:
    """Whether `user` may change `nurse`'s own caseload: an administrator, or a team lead who is the
    nurse or shares a team with her."""
    if user.role == Role.ADMIN:
        return True
    return user.role == Role.TEAM_LEAD and (
        user.id == nurse.id or bool(team_ids_of(session, user) & team_ids_of(session, nurse)))


def may_view_nurse(session: Session, user: User, nurse: User) -> bool:
    """Whether `user` may look at `nurse`'s caseload: the nurse herself, or whoever may manage it."""
    return user.id == nurse.id or may_manage_nurse(session, user, nurse)


def may_view_team(session: Session, user: User, team_id: int) -> bool:
    """Whether `user` may look at a team's caseload: an administrator, or a member of the team."""
    return user.role == Role.ADMIN or team_id in team_ids_of(session, user)


# Teams and their members (administrators).

@dataclass(frozen=True)
class TeamView:
    """A team, its members (sorted by username) and how many people are on its caseload."""

    id: int
    name: str
    members: tuple[User, ...]
    caseload_size: int


def teams(session: Session, user: User) -> list[TeamView]:
    """Every team for an administrator; the teams they are a member of for anyone else. By name."""
    query = select(Team).order_by(Team.name)
    if user.role != Role.ADMIN:
        query = query.where(Team.id.in_(team_ids_of(session, user)))
    found = list(session.scalars(query))
    return [view(session, team) for team in found]


def view(session: Session, team: Team) -> TeamView:
    members = session.scalars(select(User).join(TeamMember, TeamMember.user_id == User.id)
                              .where(TeamMember.team_id == team.id).order_by(User.username))
    size = session.scalar(select(func.count()).select_from(TeamCaseload).where(TeamCaseload.team_id == team.id))
    return TeamView(team.id, team.name, tuple(members), size or 0)


def create_team(session: Session, name: str, *, by: str) -> Team:
    """A new team with no members. Raises `CaseloadRefused` for an empty name, one too long, or one
    another team has. Audited `create_team` (no person)."""
    name = name.strip()
    if not name or len(name) > MAX_TEAM_NAME:
        raise CaseloadRefused(f"a team's name has 1 to {MAX_TEAM_NAME} characters")
    if session.scalar(select(Team.id).where(Team.name == name)) is not None:
        raise CaseloadRefused(f"there is a team called {name!r} already")
    team = Team(name=name, created_at=utc_now())
    session.add(team)
    session.flush()
    audit.record(session, by, "create_team", [None], json.dumps({"team": team.id, "name": name}, sort_keys=True))
    return team


def _members(session: Session, team: Team) -> list[str]:
    return list(session.scalars(select(User.username).join(TeamMember, TeamMember.user_id == User.id)
                                .where(TeamMember.team_id == team.id).order_by(User.username)))


def _caseload_ids(session: Session, team_id: int) -> list[int]:
    return list(session.scalars(select(TeamCaseload.person_id).where(TeamCaseload.team_id == team_id)))


def _audit_membership(session: Session, team: Team, member: User, action: str, before: list[str], *,
                      by: str) -> None:
    detail = json.dumps({"team": team.id, "name": team.name, "member": member.username, "before": before,
                         "after": _members(session, team)}, sort_keys=True)
    audit.record(session, by, action, _caseload_ids(session, team.id) or [None], detail)


def add_member(session: Session, team: Team, member: User, *, by: str) -> bool:
    """Put a nurse or team lead on the team: she sees its caseload from now on. False (and nothing
    recorded) when she is on it already; `CaseloadRefused` for an account of another role."""
    if not is_clinician(member):
        raise CaseloadRefused(f"{member.username} is not a nurse or team lead: only they are team members")
    if session.scalar(select(TeamMember.id).where(TeamMember.team_id == team.id,
                                                  TeamMember.user_id == member.id)) is not None:
        return False
    before = _members(session, team)
    session.add(TeamMember(team_id=team.id, user_id=member.id, added_at=utc_now()))
    session.flush()
    _audit_membership(session, team, member, "add_team_member", before, by=by)
    return True


def remove_member(session: Session, team: Team, member: User, *, by: str) -> bool:
    """Take a member off the team: she no longer sees its caseload (unless it is hers otherwise).
    False when she was not on it."""
    before = _members(session, team)
    removed = session.execute(delete(TeamMember).where(TeamMember.team_id == team.id,
                                                       TeamMember.user_id == member.id))
    if getattr(removed, "rowcount", 0) != 1:
        return False
    _audit_membership(session, team, member, "remove_team_member", before, by=by)
    return True


# People on caseloads (administrators and team leads).

def _audit_assignment(session: Session, person: Person, action: str, change: str, before: Assignments, *,
                      by: str) -> None:
    detail = {"change": change, "before": before.as_json(), "after": assignments(session, person.id).as_json()}
    audit.record(session, by, action, [person.id], json.dumps(detail, sort_keys=True))


def assign_to_nurse(session: Session, person: Person, nurse: User, *, by: str) -> bool:
    """Put the person on the nurse's own caseload (direct care). False (nothing recorded) when
    they are on it already. Audited `assign_caseload`, change `nurse:<username>`."""
    if not is_clinician(nurse):
        raise CaseloadRefused(f"{nurse.username} is not a nurse or team lead")
    link = session.scalar(select(CareRelationship).where(CareRelationship.user_id == nurse.id,
                                                         CareRelationship.person_id == person.id))
    if link is not None:
        return False
    before = assignments(session, person.id)
    session.add(CareRelationship(user_id=nurse.id, person_id=person.id, basis="direct_care", granted_at=utc_now()))
    session.flush()
    _audit_assignment(session, person, "assign_caseload", f"nurse:{nurse.username}", before, by=by)
    return True


def unassign_from_nurse(session: Session, person: Person, nurse: User, *, by: str) -> bool:
    """Take the person off the nurse's own caseload. False when they were not on it (their teams'
    caseloads are not touched). Audited `unassign_caseload`."""
    before = assignments(session, person.id)
    removed = session.execute(delete(CareRelationship).where(
        CareRelationship.user_id == nurse.id, CareRelationship.person_id == person.id,
        CareRelationship.basis == "direct_care"))
    if getattr(removed, "rowcount", 0) != 1:
        return False
    _audit_assignment(session, person, "unassign_caseload", f"nurse:{nurse.username}", before, by=by)
    return True


def assign_to_team(session: Session, person: Person, team: Team, *, by: str) -> bool:
    """Put the person on the team's caseload: every member sees them. False when already there.
    Audited `assign_caseload`, change `team:<name>`."""
    if session.scalar(select(TeamCaseload.id).where(TeamCaseload.team_id == team.id,
                                                    TeamCaseload.person_id == person.id)) is not None:
        return False
    before = assignments(session, person.id)
    session.add(TeamCaseload(team_id=team.id, person_id=person.id, assigned_at=utc_now(), assigned_by=by))
    session.flush()
    _audit_assignment(session, person, "assign_caseload", f"team:{team.name}", before, by=by)
    return True


def unassign_from_team(session: Session, person: Person, team: Team, *, by: str) -> bool:
    """Take the person off the team's caseload. False when they were not on it."""
    before = assignments(session, person.id)
    removed = session.execute(delete(TeamCaseload).where(TeamCaseload.team_id == team.id,
                                                         TeamCaseload.person_id == person.id))
    if getattr(removed, "rowcount", 0) != 1:
        return False
    _audit_assignment(session, person, "unassign_caseload", f"team:{team.name}", before, by=by)
    return True


def nurse_people(session: Session, nurse: User) -> list[Person]:
    """The people on the nurse's own caseload (not her teams'), by name."""
    return list(session.scalars(select(Person).join(CareRelationship, CareRelationship.person_id == Person.id)
                                .where(CareRelationship.user_id == nurse.id, CareRelationship.basis == "direct_care")
                                .order_by(Person.name, Person.id)))


def team_people(session: Session, team_id: int) -> list[Person]:
    """The people on the team's caseload, by name."""
    return list(session.scalars(select(Person).join(TeamCaseload, TeamCaseload.person_id == Person.id)
                                .where(TeamCaseload.team_id == team_id).order_by(Person.name, Person.id)))


def caseload_of_nurse(session: Session, nurse: User, *, own: bool = True) -> dict[int, list[str]]:
    """Everyone the nurse cares for, each with how: person id → ["on your caseload", "team North"]
    (her own caseload first, then her teams' by name). `own`: the nurse herself is reading it;
    else her own people are "on Anna Jones's caseload" (her display name, else her username)."""
    via: dict[int, list[str]] = defaultdict(list)
    whose = "your" if own else f"{nurse.display_name or nurse.username}'s"
    for person in nurse_people(session, nurse):
        via[person.id].append(f"on {whose} caseload")
    rows = session.execute(select(TeamCaseload.person_id, Team.name).join(Team, Team.id == TeamCaseload.team_id)
                           .join(TeamMember, TeamMember.team_id == Team.id)
                           .where(TeamMember.user_id == nurse.id).order_by(Team.name))
    for person_id, team_name in rows:
        via[person_id].append(f"team {team_name}")
    return dict(via)


def caseload_of_team(session: Session, team: Team) -> dict[int, list[str]]:
    """Everyone on the team's caseload: person id → ["team North"]."""
    return {person.id: [f"team {team.name}"] for person in team_people(session, team.id)}
