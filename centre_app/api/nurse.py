"""What a nurse's person page draws: SpO2 and pulse over a window with flagged readings, bands and
alerts (`monitoring_centre/vital_series.py`), and the activity pattern against the learned baselines
(`monitoring_centre/activity_pattern.py`).

- `GET /api/v1/patients/{person_id}/series?metric=spo2&hours=24`: nurses, team leads, administrators,
  for a person they may see (404 otherwise, audited). Audited `view_readings`.
- `GET /api/v1/patients/{person_id}/activity?days=7`: the same callers. Audited `view_activity`.
"""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from centre_app.api.deps import Centre, Db, DocumentedRoute, VisiblePerson, require_roles
from monitoring_centre import activity_pattern, audit, vital_series
from monitoring_centre.roles import Role
from monitoring_centre.storage import User, begin_read, utc_now
from telecare_protocol.codes import METRICS, Metric

router = APIRouter(prefix="/api/v1/patients", tags=["nurse"], route_class=DocumentedRoute)

CLINICAL = (Role.NURSE.value, Role.TEAM_LEAD.value, Role.ADMIN.value)
Clinician = Annotated[User, Depends(require_roles(*CLINICAL))]
WINDOWS_H = (24, 24 * 7, 24 * 30)
"""The windows the nurse's page offers: 24 h, 7 days, 30 days."""


class BucketOut(BaseModel):
    start: datetime
    low: float | None
    median: float | None
    high: float | None
    clean: int
    flagged: int


class FlaggedOut(BaseModel):
    at: datetime
    value: float | None
    flags: list[str]


class AlertBandOut(BaseModel):
    rule: str
    table: str
    name: str
    low: int | None
    high: int | None
    range_text: str
    action: str
    source: str
    own: bool
    """A bound of this band is the person's own value, not the cited default."""


class ScoreBandOut(BaseModel):
    low: int
    high: int
    score: int


class AlertMarkOut(BaseModel):
    id: int
    rule: str
    title: str
    priority: int
    status: str
    opened_at: datetime


class SeriesOut(BaseModel):
    metric: Metric
    unit: str
    since: datetime
    until: datetime
    bucket_minutes: int
    buckets: list[BucketOut]
    """Clean readings per bucket (lowest, median, highest), oldest first."""
    flagged: list[FlaggedOut]
    """Flagged readings one by one (at most 500, the latest), oldest first: never charted as results."""
    flagged_total: int
    alert_bands: list[AlertBandOut]
    news2_table: str
    news2_bands: list[ScoreBandOut]
    alerts: list[AlertMarkOut]


@router.get("/{person_id}/series")
def series(user: Clinician, person: VisiblePerson, session: Db,
           metric: Annotated[Literal["spo2", "pulse_rate"], Query(description="what the chart draws")],
           hours: Annotated[int, Query(ge=1, le=24 * 31, description="the window, up to now")] = 24) -> SeriesOut:
    """SpO2 or pulse over the last `hours`: clean readings per bucket (about 300 buckets), each
    flagged reading with its flags, the person's alert bands and NEWS2's, the window's alerts.
    Read in a read-only transaction (`begin_read`), audited in one of its own."""
    now = utc_now()
    session.commit()
    begin_read(session)
    found = vital_series.series(session, person.id, Metric(metric), hours, now)
    session.commit()
    audit.record(session, user.username, "view_readings", [person.id], f"{metric}, {hours} h, chart")
    session.commit()
    return SeriesOut(
        metric=Metric(metric), unit=METRICS[Metric(metric)].unit, since=found.since, until=found.until,
        bucket_minutes=found.bucket_minutes, buckets=[BucketOut(**vars(b)) for b in found.buckets],
        flagged=[FlaggedOut(at=f.at, value=f.value, flags=list(f.flags)) for f in found.flagged],
        flagged_total=found.flagged_total, alert_bands=[AlertBandOut(**vars(b)) for b in found.alert_bands],
        news2_table=found.news2_table, news2_bands=[ScoreBandOut(**vars(b)) for b in found.news2_bands],
        alerts=[AlertMarkOut(**vars(a)) for a in found.alerts])


class ActivityOut(BaseModel):
    person_id: int
    timezone: str
    night_window: list[str]
    events_read: int
    has_bed_sensor: bool
    has_toilet_sensor: bool
    days: list[activity_pattern.Day]
    """Oldest first, today last; times "HH:MM" in `timezone`."""


@router.get("/{person_id}/activity")
def activity(user: Clinician, person: VisiblePerson, session: Db, centre: Centre,
             days: Annotated[int, Query(ge=1, le=activity_pattern.MAX_DAYS)] = 7) -> ActivityOut:
    """The person's last `days` days against what the activity rules learn of them (first activity,
    night toilet visits, bedtime, nights out of bed; `monitoring_centre/activity_pattern.py`). A
    person with no hub has an empty pattern. Audited `view_activity`."""
    now = utc_now()
    session.commit()
    begin_read(session)
    found = activity_pattern.pattern(session, person.id, days, now, centre.settings.timezone)
    session.commit()
    audit.record(session, user.username, "view_activity", [person.id], f"{days} days")
    session.commit()
    if found is None:
        return ActivityOut(person_id=person.id, timezone=centre.settings.timezone, night_window=[], events_read=0,
                           has_bed_sensor=False, has_toilet_sensor=False, days=[])
    return ActivityOut(person_id=person.id, timezone=found.timezone, night_window=list(found.night_window),
                       events_read=found.events_read, has_bed_sensor=found.has_bed_sensor,
                       has_toilet_sensor=found.has_toilet_sensor, days=list(found.days))
