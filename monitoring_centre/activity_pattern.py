"""A person's activity pattern, day by day, against what the detection engine learns of them.

The stored device events of the window (and of the baseline period before it) are run through a
fresh copy of the engine's own activity rules (`detection.activity.ActivityRules`, with the person's
profile from `profiles.load_profiles`), and what those rules learn is read back, so the chart shows
exactly the baselines the alerts use, from one source:
- first activity of the day (from `morning_from`, 05:00): the time per day, against the learned
  deadline of `no_morning_activity` (90th percentile of the last 14 days + 60 min) and the median;
- night toilet visits (clustered 10 min apart): the count per night, against the mean and the
  alert's limit (mean + 2 SD of the last 28 nights; a fixed limit while learning);
- bedtime: the learned bedtime per night, against the median the `night_exit` window uses;
- nights out of bed: how often the bed was left in the night window (bed vacated events between
  the night's start and end) and for how many minutes in all, against the mean of the nights
  before in the window's baseline (this count is the chart's own: the engine keeps no history of
  it, only the 45-minute `out_of_bed_at_night` rule).
Oximeter readings are left out (a month at 1 Hz is millions of rows); the engine also counts a
reading session's start as activity, so on a day whose first sign of life was an oximeter
session, the first activity shown here can be later than the engine's.

Days and nights are in the centre's time zone; a night is named by the date it began.
"""

import statistics
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from detection.activity import ActivityRules, in_window, night_date
from detection.decisions import PersonContext
from detection.rules import RuleId
from monitoring_centre.profiles import load_profiles
from monitoring_centre.storage import Event
from telecare_protocol import DeviceEvent, DeviceType, EventCode

BASELINE_DAYS = 28
"""Events read before the window: the longest baseline of the activity rules (night toilet visits)."""
MAX_DAYS = 31


@dataclass(frozen=True)
class Day:
    """One day (and the night that began on it) of the pattern. Times are "HH:MM" local; None: not seen."""

    date: date
    first_activity: str | None
    first_activity_deadline: str
    """The `no_morning_activity` deadline the engine uses for this day (learned, or the default while learning)."""
    first_activity_median: str | None
    """The median first activity of the baseline days before it (None while there are none)."""
    learning_morning: bool
    toilet_visits: int | None
    """Night toilet visits in the night that began on this date (None: the night was not observed)."""
    toilet_mean: float | None
    toilet_limit: float
    """The count above which `night_toilet_frequency` alerts (mean + 2 SD, or the learning limit)."""
    learning_toilet: bool
    bedtime: str | None
    bedtime_usual: str | None
    """The median bedtime the night window is built on (None while learning)."""
    out_of_bed: int
    """Times the bed was left in the night window of the night that began on this date."""
    out_of_bed_minutes: int
    out_of_bed_mean: float | None
    """The mean of `out_of_bed` over the earlier nights read (up to 28): the chart's own baseline."""


@dataclass(frozen=True)
class Pattern:
    person_id: int
    timezone: str
    days: tuple[Day, ...]
    night_window: tuple[str, str]
    """The night window the toilet and out-of-bed counts use ("22:00", "06:00")."""
    events_read: int
    has_bed_sensor: bool
    has_toilet_sensor: bool


def _hhmm(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%H:%M")


def _minutes(moment: datetime) -> int:
    return moment.hour * 60 + moment.minute


def _median_time(values: list[int]) -> str | None:
    if not values:
        return None
    middle = int(statistics.median(values))
    return f"{middle // 60:02d}:{middle % 60:02d}"


def _events(session: Session, person_id: int, since: datetime, until: datetime) -> list[DeviceEvent]:
    rows = session.execute(select(Event.hub_id, Event.device_id, Event.device_type, Event.code, Event.source_ts)
                           .where(Event.person_id == person_id, Event.source_ts >= since, Event.source_ts < until,
                                  ~Event.clock_suspect)
                           .order_by(Event.source_ts, Event.id))
    events = []
    for hub_id, device_id, device_type, code, source_ts in rows:
        try:
            events.append(DeviceEvent.new(hub_id=hub_id, device_id=device_id, device_type=DeviceType(device_type),
                                          code=EventCode(code), source_ts=source_ts))
        except ValueError:
            continue  # a code this version does not know: not activity
    return events


def pattern(session: Session, person_id: int, days: int, now: datetime, timezone: str) -> Pattern | None:
    """The person's last `days` days (1 to 31, today last) against their learned baselines, or None
    when the person has no hub (no profile: nothing is watched). Raises ValueError for `days` out of range."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be 1 to {MAX_DAYS}")
    profiles = load_profiles(session, timezone=timezone, person_ids=[person_id])
    if not profiles:
        return None
    profile = profiles[0]
    zone = profile.zone
    today = now.astimezone(zone).date()
    first_day = today - timedelta(days=days - 1)
    read_from = datetime.combine(first_day - timedelta(days=BASELINE_DAYS), time(0), zone)
    events = _events(session, person_id, read_from, now)
    rules = ActivityRules(PersonContext(profile))
    toilet = rules.ctx.settings[RuleId.NIGHT_TOILET_FREQUENCY]
    start, end = toilet.t("night_start"), toilet.t("night_end")
    bed_devices: set[str] = set(profile.devices_at("bed"))
    leaving: dict[date, list[tuple[datetime, datetime | None]]] = {}
    left_at: datetime | None = None
    for event in events:
        rules.event(event)
        if event.device_id not in bed_devices and event.device_type != DeviceType.BED_MONITOR:
            continue
        bed_devices.add(event.device_id)  # a bed monitor with no location set is a bed all the same
        local = event.source_ts.astimezone(zone)
        if event.code == EventCode.BED_VACATED and in_window(local.time(), start, end):
            left_at = event.source_ts
            leaving.setdefault(night_date(local), []).append((left_at, None))
        elif event.code == EventCode.BED_OCCUPIED and left_at is not None:
            night = night_date(left_at.astimezone(zone))
            episodes = leaving.get(night, [])
            if episodes and episodes[-1][1] is None:
                episodes[-1] = (episodes[-1][0], event.source_ts)
            left_at = None
    out: list[Day] = []
    counts: list[int] = []
    observed_from = (events[0].source_ts.astimezone(zone).date() if events else today)
    for offset in range(-BASELINE_DAYS, days):
        day = first_day + timedelta(days=offset)
        episodes = leaving.get(day, [])
        minutes = sum(int(((back or min(now, datetime.combine(day + timedelta(days=1), end, zone))) - gone)
                          .total_seconds() // 60) for gone, back in episodes)
        mean_before = round(statistics.fmean(counts), 2) if counts else None
        if day >= observed_from:
            counts.append(len(episodes))
            counts = counts[-BASELINE_DAYS:]
        if offset < 0:
            continue
        out.append(_day(rules, day, len(episodes), minutes, mean_before))
    return Pattern(person_id=person_id, timezone=timezone, days=tuple(out),
                   night_window=(start.strftime("%H:%M"), end.strftime("%H:%M")), events_read=len(events),
                   has_bed_sensor=bool(bed_devices),
                   has_toilet_sensor=bool(profile.devices_at("toilet", "toilet_door", "bathroom", "bathroom_door")))


def _day(rules: ActivityRules, day: date, left: int, minutes: int, mean_before: float | None) -> Day:
    zone = rules.ctx.profile.zone
    deadline, morning = rules._deadline(day)
    morning_rule = rules.ctx.settings[RuleId.NO_MORNING_ACTIVITY]
    earlier = [_minutes(rules.first_activity[d].astimezone(zone)) for d in sorted(rules.first_activity)
               if day - timedelta(days=morning_rule.i("baseline_days")) <= d < day]
    first = rules.first_activity.get(day)
    toilet_rule = rules.ctx.settings[RuleId.NIGHT_TOILET_FREQUENCY]
    history = rules.learned_nights(day)
    learning_toilet = len(history) < toilet_rule.i("min_nights")
    toilet_mean = round(statistics.fmean(history), 2) if history else None
    if learning_toilet:
        limit = float(toilet_rule.i("default_visits"))
    else:
        sd = statistics.stdev(history) if len(history) > 1 else 0.0
        limit = round(statistics.fmean(history) + toilet_rule.f("sd_factor") * sd, 2)
    visits = len(rules.visits.starts.get(day, [])) if day in rules.nights or day in rules.visits.starts else None
    _start, _end, window = rules.night_window(day)
    bedtime = rules.bedtimes.get(day)
    usual: Any = window.get("median_bedtime")
    return Day(date=day, first_activity=_hhmm(first.astimezone(zone)) if first else None,
               first_activity_deadline=deadline.strftime("%H:%M"), first_activity_median=_median_time(earlier),
               learning_morning=bool(morning.get("learning")), toilet_visits=visits, toilet_mean=toilet_mean,
               toilet_limit=limit, learning_toilet=learning_toilet,
               bedtime=_hhmm(bedtime.astimezone(zone)) if bedtime else None,
               bedtime_usual=usual if isinstance(usual, str) else None, out_of_bed=left,
               out_of_bed_minutes=max(0, minutes), out_of_bed_mean=mean_before)
