"""What the person at home and their family see of the record: the latest clean readings, the
range of the last week, recent alerts, who can see the record, and who looked at it. Plain
queries for `centre_app/pages/person.py`, which says them in words; each caller audits its view.

A reading is clean as in `trends.py` and `caseload.py`: no quality flag, not `clock_suspect`, a
value an oximeter measures (`telecare_protocol.codes.MEASURABLE`).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitoring_centre import access
from monitoring_centre.accounts import is_disabled
from monitoring_centre.roles import Role
from monitoring_centre.storage import (
    Alert,
    AuditEntry,
    CareRelationship,
    PersonContact,
    Reading,
    ResponderAccount,
    User,
)
from telecare_protocol.codes import Metric, measurable

PAGE = 200


@dataclass(frozen=True)
class CleanReading:
    value: float
    at: datetime


@dataclass(frozen=True)
class Viewer:
    """One account that can see the record, once, with every reason it can: a family member the
    person said yes to (`consent_since`), a nurse with the person on her own caseload (`direct`),
    and the teams whose caseload the person is on (`teams`)."""

    name: str
    username: str
    role: str
    consent_since: datetime | None = None
    direct: bool = False
    teams: tuple[str, ...] = ()
    since: datetime | None = None


@dataclass(frozen=True)
class Look:
    """One audit row said as who did what, when (the words come from the caller)."""

    who: str
    what: str
    at: datetime


@dataclass(frozen=True)
class LookGroup:
    """Repeats of one look by the same person, newest first: `count` of them from `first` to `last`."""

    who: str
    what: str
    first: datetime
    last: datetime
    count: int


GROUP_WINDOW = timedelta(minutes=30)
"""Repeats of the same look by the same person this close together are one line."""

def clean_readings(session: Session, person_id: int, metric: Metric, since: datetime,
                   until: datetime) -> list[CleanReading]:
    """The clean readings of `metric` measured from `since` to `until`, newest first (at most 2000)."""
    rows = session.execute(select(Reading.value, Reading.source_ts, Reading.quality)
                           .where(Reading.person_id == person_id, Reading.metric == metric.value,
                                  ~Reading.clock_suspect, Reading.value.is_not(None),
                                  Reading.source_ts >= since, Reading.source_ts <= until)
                           .order_by(Reading.source_ts.desc(), Reading.id.desc()).limit(2000))
    return [CleanReading(float(value), at) for value, at, quality in rows
            if not quality and value is not None and measurable(metric, value)]


def recent_alerts(session: Session, person_id: int, since: datetime, limit: int = 20) -> list[Alert]:
    """The person's alerts opened since `since` or still active, newest first."""
    return list(session.scalars(select(Alert).where(Alert.person_id == person_id, Alert.opened_at >= since)
                                .order_by(Alert.opened_at.desc(), Alert.id.desc()).limit(limit)))


def viewers(session: Session, person_id: int) -> list[Viewer]:
    """Every account that can see the person's record, each once with all its reasons: the nurses
    it is assigned to, the members of its teams, and the family members the person consented to
    (since the earliest of them). The centre's operators and administrators see every record: they
    are not listed one by one (`access.SEES_EVERYONE`)."""
    found: dict[str, Viewer] = {}

    def add(user: User, since: datetime, basis: str | None = None, team: str | None = None) -> None:
        seen = found.get(user.username) or Viewer(name=user.display_name or user.username, username=user.username,
                                                  role=user.role)
        found[user.username] = Viewer(
            name=seen.name, username=seen.username, role=seen.role,
            since=since if seen.since is None else min(seen.since, since),
            teams=seen.teams + ((team,) if team is not None and team not in seen.teams else ()),
            direct=seen.direct or basis == "direct_care",
            consent_since=since if basis == "consent" else seen.consent_since)

    rows = session.execute(select(User, CareRelationship).join(CareRelationship, CareRelationship.user_id == User.id)
                           .where(CareRelationship.person_id == person_id).order_by(CareRelationship.granted_at))
    for user, link in rows:
        add(user, link.granted_at, basis=link.basis)
    for member, team, since in access.team_access(session, person_id):
        add(member, since, team=team)
    return list(found.values())


def group_looks(looks: Iterable[Look], window: timedelta = GROUP_WINDOW) -> list[LookGroup]:
    """`looks` (newest first) with repeats of the same who and what within `window` of the newest
    of them made one group; the groups newest first."""
    groups: list[LookGroup] = []
    latest: dict[tuple[str, str], int] = {}
    for look in looks:
        key = (look.who, look.what)
        index = latest.get(key)
        if index is not None and groups[index].last - look.at <= window:
            group = groups[index]
            groups[index] = LookGroup(group.who, group.what, min(group.first, look.at), max(group.last, look.at),
                                      group.count + 1)
            continue
        latest[key] = len(groups)
        groups.append(LookGroup(look.who, look.what, look.at, look.at, 1))
    return groups


def looked(session: Session, person_id: int, *, leave_out: str | None = None, limit: int = 5000) -> list[AuditEntry]:
    """The audit rows about the person, newest first; `leave_out`: an actor whose rows are not listed
    (the person's own visits)."""
    query = select(AuditEntry).where(AuditEntry.person_id == person_id)
    if leave_out is not None:
        query = query.where(AuditEntry.actor != leave_out)
    return list(session.scalars(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)))


@dataclass(frozen=True)
class FamilyChoice:
    """One of the person's own keyholders with a family account that cannot see the record yet."""

    username: str
    name: str


def family_choices(session: Session, person_id: int) -> list[FamilyChoice]:
    """The person's keyholders (in their order) whose responder is linked to a family account
    (`ResponderAccount`, not switched off) that has no access to the record yet: the people they
    may let see it."""
    has_access = select(CareRelationship.user_id).where(CareRelationship.person_id == person_id)
    rows = session.scalars(select(User).join(ResponderAccount, ResponderAccount.user_id == User.id)
                           .join(PersonContact, PersonContact.responder_id == ResponderAccount.responder_id)
                           .where(PersonContact.person_id == person_id, User.role == Role.FAMILY.value,
                                  User.id.not_in(has_access))
                           .order_by(PersonContact.position))
    return list({user.username: FamilyChoice(user.username, user.display_name or user.username)
                 for user in rows if not is_disabled(user)}.values())


def accounts(session: Session, usernames: set[str]) -> dict[str, User]:
    """The accounts of these usernames (those that exist)."""
    if not usernames:
        return {}
    return {user.username: user for user in session.scalars(select(User).where(User.username.in_(usernames)))}
