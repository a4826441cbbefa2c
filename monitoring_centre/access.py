"""Who may see whom ("nothing about me without me").

Centre operators and administrators see everyone the centre monitors: they provide
direct care on every alarm. A nurse or team lead sees her caseload: the people assigned to
her, and those on the caseload of each team she is a member of (direct care; `teams.py`). A family member
sees only the people who have consented to it. The person sees their own record, and
they (or an administrator recording their decision) give and withdraw that consent.
"""

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from monitoring_centre import audit
from monitoring_centre.roles import CLINICIANS, Role
from monitoring_centre.storage import CareRelationship, Person, Team, TeamCaseload, TeamMember, User, utc_now

SEES_EVERYONE = frozenset({Role.ADMIN.value, Role.OPERATOR.value})
BASES = ("direct_care", "consent")


def visible_person_ids(session: Session, user: User) -> set[int] | None:
    """The ids of the people `user` may see; None means everyone."""
    if user.role in SEES_EVERYONE:
        return None
    if user.role == Role.PERSON:
        return {user.person_id} if user.person_id is not None else set()
    clinician = user.role in CLINICIANS
    allowed = ("direct_care",) if clinician else ("consent",)
    rows = set(session.scalars(
        select(CareRelationship.person_id).where(
            CareRelationship.user_id == user.id, CareRelationship.basis.in_(allowed)
        )
    ))
    if clinician:
        rows |= set(session.scalars(select(TeamCaseload.person_id).join(
            TeamMember, TeamMember.team_id == TeamCaseload.team_id).where(TeamMember.user_id == user.id)))
    return rows


def team_access(session: Session, person_id: int) -> list[tuple[User, str, datetime]]:
    """The members of the teams whose caseload the person is on: (member, team name, since when
    she sees them: the later of the assignment and her joining), by team, then username."""
    rows = session.execute(
        select(User, Team.name, TeamCaseload.assigned_at, TeamMember.added_at)
        .join(TeamMember, TeamMember.user_id == User.id).join(Team, Team.id == TeamMember.team_id)
        .join(TeamCaseload, TeamCaseload.team_id == Team.id)
        .where(TeamCaseload.person_id == person_id).order_by(Team.name, User.username))
    return [(member, name, max(assigned, added)) for member, name, assigned, added in rows]


def visible_people(session: Session, user: User) -> list[Person]:
    ids = visible_person_ids(session, user)
    query = select(Person).order_by(Person.name)
    if ids is not None:
        query = query.where(Person.id.in_(ids))
    return list(session.scalars(query))


def grant(session: Session, user: User, person: Person, basis: str) -> None:
    if basis not in BASES:
        raise ValueError(f"basis {basis!r} is not one of {BASES}")
    session.add(CareRelationship(user_id=user.id, person_id=person.id, basis=basis, granted_at=utc_now()))


class ConsentRefused(ValueError):
    pass


def may_decide_for(user: User, person_id: int) -> bool:
    """The person decides; an administrator may record a decision the person made elsewhere."""
    return user.role == "admin" or (user.role == "person" and user.person_id == person_id)


def give_consent(session: Session, decided_by: User, person: Person, family_member: User, why: str) -> None:
    if not may_decide_for(decided_by, person.id):
        raise ConsentRefused("only the person, or an administrator recording their decision, gives consent")
    if family_member.role != "family":
        raise ConsentRefused("consent is given to a family member's account")
    if session.scalar(select(CareRelationship).where(CareRelationship.user_id == family_member.id,
                                                     CareRelationship.person_id == person.id)) is not None:
        raise ConsentRefused(f"{family_member.username} already has access")
    grant(session, family_member, person, "consent")
    audit.record(session, decided_by.username, "give_consent", [person.id], f"to {family_member.username}: {why}")


def withdraw_consent(session: Session, decided_by: User, person: Person, family_member: User, why: str) -> None:
    """Takes effect at once: the next request the family member makes is refused."""
    if not may_decide_for(decided_by, person.id):
        raise ConsentRefused("only the person, or an administrator recording their decision, withdraws consent")
    removed = session.execute(delete(CareRelationship).where(
        CareRelationship.user_id == family_member.id, CareRelationship.person_id == person.id,
        CareRelationship.basis == "consent"))
    if getattr(removed, "rowcount", 0) != 1:
        raise ConsentRefused(f"{family_member.username} has no consent to withdraw")
    audit.record(session, decided_by.username, "withdraw_consent", [person.id],
                 f"from {family_member.username}: {why}")
