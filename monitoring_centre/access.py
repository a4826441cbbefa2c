"""Who may see whom ("nothing about me without me").

Centre operators and administrators see everyone the centre monitors: they provide
direct care on every alarm. A nurse sees her caseload (direct care). A family member
sees only the people who have consented to it.
"""

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitoring_centre.storage import CareRelationship, Person, User, utc_now

SEES_EVERYONE = frozenset({"admin", "operator"})
BASES = ("direct_care", "consent")


def visible_person_ids(session: Session, user: User) -> set[int] | None:
    """The ids of the people `user` may see; None means everyone."""
    if user.role in SEES_EVERYONE:
        return None
    allowed = ("direct_care",) if user.role == "nurse" else ("consent",)
    rows = session.scalars(
        select(CareRelationship.person_id).where(
            CareRelationship.user_id == user.id, CareRelationship.basis.in_(allowed)
        )
    )
    return set(rows)


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
