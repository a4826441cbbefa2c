"""What the person at home and their family see of the record: the latest clean readings, the
range of the last week, recent alerts, who can see the record, and who looked at it. Plain
queries for `centre_app/pages/person.py`, which says them in words; each caller audits its view.

A reading is clean as in `trends.py` and `caseload.py`: no quality flag, not `clock_suspect`, a
value an oximeter measures (`telecare_protocol.codes.MEASURABLE`).
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitoring_centre import access
from monitoring_centre.storage import Alert, AuditEntry, CareRelationship, Reading, User
from telecare_protocol.codes import Metric, measurable

PAGE = 200


@dataclass(frozen=True)
class CleanReading:
    value: float
    at: datetime


@dataclass(frozen=True)
class Viewer:
    """Someone who can see the record: their name, role, on what basis, since when."""

    name: str
    username: str | None
    role: str
    basis: str
    since: datetime | None
    team: str | None = None


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
    """Everyone who can see the person's record: the centre's operators and administrators (every
    one, on direct care), the nurses it is assigned to and the members of its teams (direct care),
    and the family members the person consented to, each with since when."""
    found = [Viewer(name=f"every {role} of the centre", username=None, role=role, basis="direct_care", since=None)
             for role in sorted(access.SEES_EVERYONE)]
    rows = session.execute(select(User, CareRelationship).join(CareRelationship, CareRelationship.user_id == User.id)
                           .where(CareRelationship.person_id == person_id).order_by(CareRelationship.granted_at))
    found += [Viewer(name=user.display_name or user.username, username=user.username, role=user.role,
                     basis=link.basis, since=link.granted_at) for user, link in rows]
    found += [Viewer(name=member.display_name or member.username, username=member.username, role=member.role,
                     basis="direct_care", since=since, team=team)
              for member, team, since in access.team_access(session, person_id)]
    return found


def looked(session: Session, person_id: int, *, leave_out: str | None = None, limit: int = 50) -> list[AuditEntry]:
    """The audit rows about the person, newest first; `leave_out`: an actor whose rows are not listed
    (the person's own visits)."""
    query = select(AuditEntry).where(AuditEntry.person_id == person_id)
    if leave_out is not None:
        query = query.where(AuditEntry.actor != leave_out)
    return list(session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit)))


def accounts(session: Session, usernames: set[str]) -> dict[str, User]:
    """The accounts of these usernames (those that exist)."""
    if not usernames:
        return {}
    return {user.username: user for user in session.scalars(select(User).where(User.username.in_(usernames)))}
