"""What a nurse's SpO2 or pulse chart draws for one person over a window: the clean readings
summarised per bucket (`trends.summarise`), every flagged reading on its own (never a result, never
hidden), the person's own alert bands and NEWS2's bands, and every alert of the person opened in the
window (a fall or a trend is context for the readings around it).

Bands come from the detection engine's tables, one source of truth:
- the person's alert bands: `detection.thresholds.bands` with the person's settings for the rule
  (`profiles.load_profiles`, `detection.decisions.PersonContext`), their NEWS2 scale and oxygen,
  as the threshold rule applies them (NEWS2 Scale 1 is also NHS oximetry@home's: <= 92 % 999/A&E,
  93-94 % GP or 111 today); `own` says where the person's value differs from the cited default;
- NEWS2's scoring bands (`detection.news2`): how far from normal a reading is, whatever the alerts.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from detection import news2
from detection.decisions import PersonContext
from detection.rules import RuleId
from detection.thresholds import RULES_BY_METRIC, bands
from monitoring_centre import trends
from monitoring_centre.profiles import load_profiles
from monitoring_centre.storage import Alert, Reading
from telecare_protocol.codes import Metric, measurable

TARGET_BUCKETS = 300
"""About this many points per chart: a month at 1 Hz is 2.6 million readings, a screen shows a few hundred."""
MAX_FLAGGED = 500
"""Flagged readings listed one by one at most (the rest are counted in the buckets)."""


@dataclass(frozen=True)
class AlertBand:
    """One of the person's alert bands: values `low` to `high` displayed (None: open), its name
    ("urgent", "review today"), the guideline's action, the table, and whether a bound is the person's own."""

    rule: str
    table: str
    name: str
    low: int | None
    high: int | None
    range_text: str
    action: str
    source: str
    own: bool


@dataclass(frozen=True)
class ScoreBand:
    """A NEWS2 scoring band: values `low` to `high` score `score`."""

    low: int
    high: int
    score: int


@dataclass(frozen=True)
class FlaggedReading:
    at: datetime
    value: float | None
    flags: tuple[str, ...]
    """The device's quality flags; "clock_suspect" or "no_signal" when the centre flagged it."""


@dataclass(frozen=True)
class AlertMark:
    id: int
    rule: str
    title: str
    priority: int
    status: str
    opened_at: datetime


@dataclass(frozen=True)
class Series:
    metric: Metric
    since: datetime
    until: datetime
    bucket_minutes: int
    buckets: tuple[trends.Bucket, ...]
    flagged: tuple[FlaggedReading, ...]
    flagged_total: int
    alert_bands: tuple[AlertBand, ...]
    news2_table: str
    news2_bands: tuple[ScoreBand, ...]
    alerts: tuple[AlertMark, ...]


def bucket_for(hours: int) -> timedelta:
    """The bucket giving about `TARGET_BUCKETS` points over `hours` (whole minutes, at least 1)."""
    return timedelta(minutes=max(1, round(hours * 60 / TARGET_BUCKETS)))


def bands_for(session: Session, person_id: int,
              metric: Metric) -> tuple[tuple[AlertBand, ...], str, tuple[ScoreBand, ...]]:
    """The person's alert bands for `metric` (empty with no hub: nothing is watched), the NEWS2 table's
    name and its scoring bands, on the person's scale."""
    profiles = load_profiles(session, person_ids=[person_id])
    if not profiles:
        table, rows = ("pulse", news2.PULSE) if metric == Metric.PULSE_RATE else ("SpO2 Scale 1", news2.SPO2_SCALE1)
        return (), table, tuple(ScoreBand(*row) for row in rows)
    profile = profiles[0]
    ctx = PersonContext(profile)
    found: list[AlertBand] = []
    scale, oxygen = 1, False
    for rule in RULES_BY_METRIC[metric]:
        settings = ctx.settings[rule]
        if not settings.b("enabled"):
            continue
        if rule == RuleId.SPO2_LOW:
            scale = settings.i("scale") if "scale" in settings.overridden else profile.spo2_scale
            oxygen = settings.b("on_oxygen") if "on_oxygen" in settings.overridden else profile.on_oxygen
            scale, oxygen = (2 if scale == 2 else 1), bool(oxygen) and scale == 2
        for band in bands(rule, settings, scale, oxygen):
            found.append(AlertBand(rule=rule.value, table=band.spec.table.value, name=band.name.value, low=band.low,
                                   high=band.high, range_text=band.range_text(), action=band.spec.action,
                                   source=band.source, own=band.spec.edge in settings.overridden))
    if metric == Metric.PULSE_RATE:
        table, rows = "pulse", news2.PULSE
    elif scale == 2:
        table, rows = (("SpO2 Scale 2, on oxygen", news2.SPO2_SCALE2_ON_OXYGEN) if oxygen
                       else ("SpO2 Scale 2", news2.SPO2_SCALE2_ON_AIR))
    else:
        table, rows = "SpO2 Scale 1", news2.SPO2_SCALE1
    return tuple(found), table, tuple(ScoreBand(*row) for row in rows)


def series(session: Session, person_id: int, metric: Metric, hours: int, now: datetime) -> Series:
    """The chart of `metric` over the last `hours` up to `now` (see the module docstring). Raises
    ValueError for a metric no threshold rule reads (only SpO2 and pulse are charted)."""
    if metric not in RULES_BY_METRIC:
        raise ValueError(f"{metric.value} is not charted: only {', '.join(m.value for m in RULES_BY_METRIC)}")
    since = now - timedelta(hours=hours)
    bucket = bucket_for(hours)
    buckets = trends.summarise(session, person_id, metric, since, now, bucket)
    rows = session.execute(
        select(Reading.source_ts, Reading.received_at, Reading.clock_suspect, Reading.value, Reading.quality)
        .where(Reading.person_id == person_id, Reading.metric == metric.value,
               or_(and_(~Reading.clock_suspect, Reading.source_ts >= since, Reading.source_ts < now),
                   and_(Reading.clock_suspect, Reading.received_at >= since, Reading.received_at < now)))
        .order_by(Reading.source_ts.desc()))
    flagged: list[FlaggedReading] = []
    total = 0
    for source_ts, received_at, clock_suspect, value, quality in rows:
        flags = tuple(str(flag) for flag in quality or ())
        if clock_suspect:
            flags += ("clock_suspect",)
        if value is None or not measurable(metric, value):
            flags += ("no_signal",) if "no_signal" not in flags else ()
        if not flags:
            continue
        total += 1
        if len(flagged) < MAX_FLAGGED:
            flagged.append(FlaggedReading(received_at if clock_suspect else source_ts, value, flags))
    alert_bands, table, score_bands = bands_for(session, person_id, metric)
    marks = session.scalars(select(Alert).where(Alert.person_id == person_id,
                                                Alert.opened_at >= since, Alert.opened_at < now)
                            .order_by(Alert.opened_at))
    return Series(metric=metric, since=since, until=now, bucket_minutes=int(bucket.total_seconds() // 60),
                  buckets=tuple(buckets), flagged=tuple(reversed(flagged)), flagged_total=total,
                  alert_bands=alert_bands, news2_table=table, news2_bands=score_bands,
                  alerts=tuple(AlertMark(a.id, a.rule, a.title, a.priority, a.status, a.opened_at) for a in marks))
