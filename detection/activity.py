"""Activity and wellbeing rules, in the person's local time, learning each person's normal.

The rules follow the activity-monitoring products in the domain brief (Lilli, Canary Care,
Just Checking): typical fixed rules, with baselines learnt per person where a fixed rule
would be wrong for many people. Device locations come from the profile (`devices`).

- `door_left_open`: a front or back door open > 15 min. Clears when it closes.
- `night_exit`: a front or back door opened in the person's night window by someone who was
  in (something heard indoors since the exit doors were last used: an exit, not a return to
  an empty house), and no sign of anyone indoors for `return_minutes` (15) after it: raised
  then; a return in time is no alert. The window runs from the person's learned bedtime (the median of their last 14
  bedtimes: the bed occupied, or with no bed sensor a bedroom door or bedroom event, from
  18:00, with nothing elsewhere for `BEDTIME_SETTLED` after it; 22:00 while learning, < 7
  nights, or with neither sensor) to 06:00; a person's own `night_start` replaces the
  learned one. Whether or not the person has gone to bed yet. The first departure of a
  night is a new alert, later ones repeats; never cleared by the engine.
- `out_of_bed_at_night` (needs a bed sensor): the bed vacated at night and not occupied
  again for 45 min of night time. Clears when the bed is occupied again. How a bed is left
  depends on its kind (`people.BedSensorKind`, a device setting): an occupancy mat says so
  (vacated); a pulse-on-movement mat never does (its pulses end by themselves, and a sleeper
  lying still sends none), so after its last pulse the person is out of bed only once
  something is heard outside the sleeping places (`SLEEPING_PLACES`), from then; its next
  pulse is back in bed. A pulse mat's silence is never "out of bed".
- `no_morning_activity`: no activity since 05:00 by the person's deadline: the 90th
  percentile of their first-activity times over the last 14 days + 60 min, between 07:00
  and 12:00; 10:00 while learning (< 7 days). Held back while a worn oximeter measures a
  pulse (a clean reading in the last hour; see "Readings" below). Clears on the first activity.
- `house_unoccupied`: the last thing heard was an exit door, then nothing anywhere for
  longer than 1.5x the person's 90th-percentile outing (at least 3 h; 8 h while learning),
  or still nothing an hour into the night (unless the person came home that late at
  least twice in the last 28 days: a night owl). Clears on the next activity.
- `night_toilet_frequency`: night toilet visits (toilet or toilet-door events, clustered
  10 min apart; bathroom devices when the home has no toilet devices) above the mean +
  2 SD of the person's last 28 nights and >= 3 (>= 4 while learning, < 7 nights). Once a
  night; never cleared by the engine.

Readings (an oximeter, 1 Hz to one a minute, or a spot check) are signs of the person only
when clean (no quality flag: a probe with no signal, a questionable or nonpulsatile reading is
what a cold, still or lifeless finger gives too). A clean reading that starts a session (the
first from its device `SESSION_GAP`, 10 min, after its last clean one: a spot check taken,
the probe put on) is activity like any event, at the location "oximeter". A clean reading
inside a session shows the person alive but says nothing of getting up (in bed, as a bed
sensor is): it holds `no_morning_activity` back for `reading_alive_minutes` (60) after it,
and feeds neither the learned first-activity times nor the night-time state.

Planned absences pause every rule here, and their days and nights are left out of the
baselines. No timer rule fires while a hub of the person is offline (the silence is the
link's, not the person's). Late events (older than the latest seen) feed the baselines
but not the night-time state, which follows the live stream.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np

from detection.decisions import Decision, PersonContext
from detection.defaults import NIGHT_EXIT, parse_hhmm
from detection.people import EXIT_DOORS, BedSensorKind
from detection.rules import CATALOGUE, RuleId
from telecare_protocol import DeviceEvent, DeviceType, EventCode, Reading

ACTIVITY_CODES = frozenset({
    EventCode.DOOR_OPENED, EventCode.DOOR_CLOSED, EventCode.BED_OCCUPIED, EventCode.BED_VACATED,
    EventCode.ACTIVITY, EventCode.MANUAL_ALARM, EventCode.FALL_DETECTED, EventCode.FALL_CANCELLED,
    EventCode.ALARM_CANCELLED,
})
KEEP = 35
SESSION_GAP = timedelta(minutes=10)
"""A clean reading this long after the previous clean one from its device starts a session: activity.
Readings closer together (a stream, 1 Hz to one a minute) are one session: signs of life, not of being up."""
_ZERO = timedelta(0)
BEDTIME_SETTLED = timedelta(hours=1)
"""Going to bed (the bed occupied; a bedroom door or bedroom event in a home with no bed sensor) is the
night's bedtime when nothing happens elsewhere in the home for this long after it (design: a toilet
visit or a last drink after going to bed comes sooner; the first night-time get-up in van Kasteren
house A comes later)."""
EVENING_FROM = parse_hhmm(str(NIGHT_EXIT["night_start"].floor.value), "night_exit.night_start")
"""The earliest going to bed that can be a bedtime: `night_exit.night_start`'s floor (18:00)."""
SLEEPING_PLACES = frozenset({"bed", "bedroom", "bedroom_door", "oximeter"})
"""Where activity does not undo going to bed (an overnight oximeter put on in bed starts a session)."""
NOON = time(12)
"""Nights are taken by the date they began: a time before noon belongs to the night before."""


def night_date(local: datetime) -> date:
    """The date of the night `local` belongs to: its own date from noon, the day before until noon."""
    return local.date() if local.time() >= NOON else local.date() - timedelta(days=1)


@dataclass
class PendingExit:
    """An exit door opened in the night window; a night exit unless someone is seen indoors in time."""

    at: datetime
    night: date
    evidence: dict[str, Any]
    window: dict[str, Any]
    last_indoor: datetime


def in_window(at: time, start: time, end: time) -> bool:
    return (start <= at < end) if start < end else (at >= start or at < end)


def night_of(local: datetime, start: time, end: time) -> date | None:
    """The date the night containing `local` started on, or None outside the night."""
    if not in_window(local.time(), start, end):
        return None
    if start > end and local.time() < end:
        return local.date() - timedelta(days=1)
    return local.date()


@dataclass
class Visits:
    """Night toilet visits, by the date each night started."""

    starts: dict[date, list[datetime]] = field(default_factory=dict)
    last: datetime | None = None


class ActivityRules:
    def __init__(self, ctx: PersonContext) -> None:
        self.ctx = ctx
        self.last_live: datetime | None = None
        self.last_event: tuple[datetime, str, str] | None = None
        """(time, location, code) of the latest live activity."""
        self.last_indoor: datetime | None = None
        self.bed_vacated: datetime | None = None
        self.open_doors: dict[str, datetime] = {}
        self.first_activity: dict[date, datetime] = {}
        self.outings: list[tuple[datetime, float]] = []
        """(departure, hours) of recent outings."""
        self.nights: dict[date, int] = {}
        self.visits = Visits()
        self.exit_night: date | None = None
        self.toilet_night: date | None = None
        self.session: dict[str, datetime] = {}
        """Device → its latest clean reading."""
        self.alive: datetime | None = None
        """The latest clean reading from any device: the person was alive then (module docstring)."""
        self.in_bed = False
        self.in_bed_by: BedSensorKind | None = None
        """The kind of the bed sensor that last put the person in bed (None: not in bed)."""
        self.bed_left: dict[str, Any] | None = None
        """What showed the person left the bed (the vacated event, or for a pulse mat the first activity
        elsewhere after its last pulse)."""
        self.first_seen: datetime | None = None
        self.exit_opened: datetime | None = None
        self.bed_candidate: datetime | None = None
        """The latest going to bed this evening, not yet the night's bedtime (`BEDTIME_SETTLED`)."""
        self.bedtimes: dict[date, datetime] = {}
        """Night (the date it began) → when the person went to bed; kept `KEEP` nights."""
        self.pending_exit: PendingExit | None = None
        self.last_exit_door: datetime | None = None
        """The latest live event of a front or back door (opened or closed)."""

    # where things are ------------------------------------------------------------------
    def _location(self, device: str, device_type: DeviceType | None) -> str:
        where = self.ctx.profile.devices.get(device)
        if where is not None:
            return where
        return {DeviceType.BED_MONITOR: "bed", DeviceType.PERSONAL_TRIGGER: "pendant",
                DeviceType.FALL_DETECTOR: "pendant", DeviceType.PULSE_OXIMETER: "oximeter"}.get(
                    device_type or DeviceType.MOTION_SENSOR, "unknown")

    def _toilet_locations(self) -> frozenset[str]:
        if self.ctx.profile.devices_at("toilet", "toilet_door"):
            return frozenset({"toilet", "toilet_door"})
        return frozenset({"toilet", "toilet_door", "bathroom", "bathroom_door"})

    def _local(self, at: datetime) -> datetime:
        return at.astimezone(self.ctx.profile.zone)

    def _absent_during(self, start: datetime, end: datetime) -> bool:
        return any(a.start < end and start < a.end for a in self.ctx.profile.absences)

    def _day_bounds(self, day: date) -> tuple[datetime, datetime]:
        zone = self.ctx.profile.zone
        return datetime.combine(day, time(0), zone), datetime.combine(day + timedelta(days=1), time(0), zone)

    # observing -------------------------------------------------------------------------
    def reading(self, reading: Reading) -> list[Decision]:
        """A clean reading: activity when it starts a session, else a sign of life (module docstring).
        A flagged one (no signal, probe off, questionable...) is the device's, not the person's: nothing."""
        if reading.value is None or reading.quality:
            return []
        at = reading.source_ts
        previous = self.session.get(reading.device_id)
        self.session[reading.device_id] = max(previous or at, at)
        self.alive = at if self.alive is None else max(self.alive, at)
        if previous is not None and _ZERO <= at - previous < SESSION_GAP:
            return []
        return self._activity(reading.source_ts, "oximeter", "reading", str(reading.id))

    def fast_reading(self, reading: Reading) -> bool:
        """`reading` for a clean reading (a value, no quality flag) inside a session: a sign of life, noted
        as `reading` notes it (which returns no decision then), and True; False, having changed nothing,
        for a reading that starts a session (`reading` then runs)."""
        at = reading.source_ts
        previous = self.session.get(reading.device_id)
        if previous is None or not _ZERO <= at - previous < SESSION_GAP:
            return False
        alive = self.alive
        if at > previous:  # `max` keeps the first of equals, as `reading` does
            self.session[reading.device_id] = at
        if alive is None or at > alive:
            self.alive = at
        return True

    def event(self, event: DeviceEvent) -> list[Decision]:
        if event.code not in ACTIVITY_CODES:
            return []
        where = self._location(event.device_id, event.device_type)
        return self._activity(event.source_ts, where, event.code.value, str(event.id), event.device_id)

    def _activity(self, at: datetime, where: str, code: str, message_id: str, device: str = "") -> list[Decision]:
        local = self._local(at)
        self.first_seen = at if self.first_seen is None else min(self.first_seen, at)
        if where != "bed":  # getting out of bed is not yet being up: what follows is
            self._learn_first_activity(at, local)
        if self.last_live is not None and at < self.last_live:
            self._count_toilet(at, local, where, late=True)
            return []
        decisions: list[Decision] = self._exit_overdue(at)
        evidence = {"message_id": message_id, "device_id": device, "location": where, "code": code,
                    "source_ts": at.isoformat()}
        if self.last_event is not None:
            decisions += self._returned(at, evidence)
        kind = self.ctx.profile.bed_sensor_kind(device) if where == "bed" else None
        pulse_in_bed = kind is BedSensorKind.PULSE and self.in_bed  # movement in bed: nothing new
        into_bed = where == "bed" and code == EventCode.BED_OCCUPIED.value and not pulse_in_bed
        self._learn_bedtime(at, local, where, into_bed)
        if where not in EXIT_DOORS:
            self.pending_exit = None  # someone is indoors: whoever opened the door came back, or never left
        self.last_live = at
        self.last_event = (at, where, code)
        if where not in EXIT_DOORS:
            self.last_indoor = at
        if into_bed:
            self.bed_vacated, self.bed_left, self.in_bed, self.in_bed_by = None, None, True, kind
            self._back_to_bed(at, local)
            decisions += self.ctx.clear(RuleId.OUT_OF_BED_AT_NIGHT, "", at, {"why": "back in bed", "event": evidence})
        elif where == "bed" and code == EventCode.BED_VACATED.value and kind is BedSensorKind.OCCUPANCY:
            self.bed_vacated, self.bed_left, self.in_bed, self.in_bed_by = at, evidence, False, None
        elif self.in_bed_by is BedSensorKind.PULSE and where not in SLEEPING_PLACES:
            # Up from a pulse mat's bed: the first sign of the person outside the sleeping places.
            self.bed_vacated, self.bed_left, self.in_bed, self.in_bed_by = at, evidence, False, None
        if where in EXIT_DOORS and code == EventCode.DOOR_OPENED.value:
            self.open_doors.setdefault(device, at)
            self.exit_opened = at
            decisions += self._night_exit(at, local, evidence)
        elif where in EXIT_DOORS and code == EventCode.DOOR_CLOSED.value:
            self.open_doors.pop(device, None)
            if not self.open_doors:
                decisions += self.ctx.clear(RuleId.DOOR_LEFT_OPEN, "", at, {"why": "door closed", "event": evidence})
        if where in EXIT_DOORS:
            self.last_exit_door = at
        decisions += self._count_toilet(at, local, where, late=False)
        if where != "bed" and self._local(at).date() in self.first_activity:
            decisions += self.ctx.clear(RuleId.NO_MORNING_ACTIVITY, "", at, {"why": "activity seen", "event": evidence})
        decisions += self._timers(at)
        return decisions

    def _returned(self, at: datetime, evidence: dict[str, Any]) -> list[Decision]:
        """The silence since the last event is over: learn it as an outing if it followed an exit door."""
        assert self.last_event is not None
        since, where, _ = self.last_event
        rule = self.ctx.settings[RuleId.HOUSE_UNOCCUPIED]
        hours = (at - since).total_seconds() / 3600
        if where in EXIT_DOORS and hours * 60 >= rule.f("min_outing_minutes") and not self._absent_during(since, at):
            self.outings.append((since, hours))
            cutoff = at - timedelta(days=rule.i("baseline_days"))
            self.outings = [o for o in self.outings if o[0] >= cutoff][-200:]
        return self.ctx.clear(RuleId.HOUSE_UNOCCUPIED, "", at, {"why": "activity at home", "event": evidence})

    def _back_to_bed(self, at: datetime, local: datetime) -> None:
        """Back to bed in the early morning (after a toilet trip): not up for the day yet."""
        first = self.first_activity.get(local.date())
        if first is not None and local.time() < time(12) and at - first <= timedelta(hours=3):
            del self.first_activity[local.date()]

    def _learn_first_activity(self, at: datetime, local: datetime) -> None:
        morning = self.ctx.settings[RuleId.NO_MORNING_ACTIVITY].t("morning_from")
        if local.time() < morning:
            return
        day = local.date()
        known = self.first_activity.get(day)
        if known is None or at < known:
            self.first_activity[day] = at
            for old in sorted(self.first_activity)[:-KEEP]:
                del self.first_activity[old]

    # rules -----------------------------------------------------------------------------
    def _learn_bedtime(self, at: datetime, local: datetime, where: str, into_bed: bool) -> None:
        """Going to bed from 18:00 (`EVENING_FROM`) is the night's bedtime once nothing has happened
        elsewhere for `BEDTIME_SETTLED`; activity elsewhere sooner undoes it (up again). `into_bed`:
        this event puts the person in bed (an occupancy mat's occupied; a pulse mat's first pulse
        since they were up, not every movement in bed)."""
        candidate = self.bed_candidate
        if candidate is not None and at - candidate >= BEDTIME_SETTLED:
            night = night_date(self._local(candidate))
            if night not in self.bedtimes and self.ctx.profile.absent(candidate) is None:
                self.bedtimes[night] = candidate
                for old in sorted(self.bedtimes)[:-KEEP]:
                    del self.bedtimes[old]
            self.bed_candidate = candidate = None
        has_bed = bool(self.ctx.profile.devices_at("bed"))
        to_bed = into_bed or (not has_bed and where in ("bedroom_door", "bedroom"))
        end = self.ctx.settings[RuleId.NIGHT_EXIT].t("night_end")
        evening = local.time() >= EVENING_FROM or local.time() < end
        if to_bed and evening and night_date(local) not in self.bedtimes:
            self.bed_candidate = at
        elif where not in SLEEPING_PLACES:
            self.bed_candidate = None

    def night_window(self, night: date) -> tuple[time, time, dict[str, Any]]:
        """(start, end, how the start was chosen) of the night exit window of the night that began on
        `night`: the person's own `night_start`; else the median of their bedtimes over the
        `bedtime_nights` before (absences left out), kept within `night_start`'s floor and ceiling;
        else, while learning (fewer than `bedtime_min_nights`), the default `night_start`."""
        rule = self.ctx.settings[RuleId.NIGHT_EXIT]
        end = rule.t("night_end")
        if "night_start" in rule.overridden:
            return rule.t("night_start"), end, {"start": rule.s("night_start"), "end": rule.s("night_end"),
                                                "from": "the person's own night_start"}
        first = night - timedelta(days=rule.i("bedtime_nights"))
        minutes = []  # after noon, so that 23:30 and 00:30 are an hour apart
        for day in sorted(self.bedtimes):
            if first <= day < night:
                local = self._local(self.bedtimes[day])
                minutes.append((local.hour * 60 + local.minute - NOON.hour * 60) % 1440)
        if len(minutes) < rule.i("bedtime_min_nights"):
            return rule.t("night_start"), end, {"start": rule.s("night_start"), "end": rule.s("night_end"),
                                                "from": "default while learning", "bedtimes": len(minutes)}
        param = NIGHT_EXIT["night_start"]
        floor, ceiling = (parse_hhmm(str(bound.value), "night_start") for bound in (param.floor, param.ceiling))
        median = float(np.median(minutes))
        value = min(max(median, _after_noon(floor)), _after_noon(ceiling))
        total = int(value + NOON.hour * 60) % 1440
        start = time(total // 60, total % 60)
        usual = int(median + NOON.hour * 60) % 1440
        return start, end, {"start": start.strftime("%H:%M"), "end": rule.s("night_end"),
                            "from": "learned bedtime", "bedtimes": len(minutes),
                            "median_bedtime": f"{usual // 60:02d}:{usual % 60:02d}"}

    def _night_exit(self, at: datetime, local: datetime, evidence: dict[str, Any]) -> list[Decision]:
        """An exit door opened in the night window by someone who was in (something was heard indoors
        since the exit doors were last used): it waits `return_minutes` for a sign of anyone indoors."""
        if self.ctx.profile.absent(at) is not None or self.pending_exit is not None:
            return []
        night = night_date(local)
        start, end, window = self.night_window(night)
        if not (local.time() >= start if local.time() >= NOON else local.time() < end):
            return []
        previous = self.last_exit_door
        if self.last_indoor is None or (previous is not None and self.last_indoor < previous):
            return []  # nothing heard indoors since the door was last used: a return to an empty house
        self.pending_exit = PendingExit(at, night, evidence, window, self.last_indoor)
        return []

    def _exit_overdue(self, now: datetime) -> list[Decision]:
        """The night exit, once `return_minutes` have passed since the door with nobody seen indoors."""
        pending = self.pending_exit
        if pending is None:
            return []
        rule = self.ctx.settings[RuleId.NIGHT_EXIT]
        wait = rule.i("return_minutes")
        if now - pending.at < timedelta(minutes=wait):
            return []
        self.pending_exit = None
        repeat = self.exit_night == pending.night
        if not repeat:
            self.exit_night = pending.night
            self.ctx.end_quietly(RuleId.NIGHT_EXIT)
        door = str(pending.evidence["location"]).replace("_", " ")
        opened = self._local(pending.at).strftime("%H:%M")
        title = f"{CATALOGUE[RuleId.NIGHT_EXIT].title} ({door} at {opened}, nobody seen indoors for {wait} min)"
        went_to_bed = self.bedtimes.get(pending.night) or self.bed_candidate
        return self.ctx.raise_(RuleId.NIGHT_EXIT, "", rule.i("priority"), title,
                               {"event": pending.evidence, "local_time": self._local(pending.at).isoformat(),
                                "night": pending.window, "return_minutes": wait,
                                "last_indoor_activity": pending.last_indoor.isoformat(),
                                "went_to_bed": went_to_bed.isoformat() if went_to_bed else None,
                                "checked_at": now.isoformat(), "source": rule.source("return_minutes"),
                                "window_source": rule.source("night_start")}, now, repeat=repeat)

    def _count_toilet(self, at: datetime, local: datetime, where: str, *, late: bool) -> list[Decision]:
        if where not in self._toilet_locations():
            return []
        rule = self.ctx.settings[RuleId.NIGHT_TOILET_FREQUENCY]
        night = night_of(local, rule.t("night_start"), rule.t("night_end"))
        if night is None:
            return []
        starts = self.visits.starts.setdefault(night, [])
        gap = timedelta(minutes=rule.i("visit_gap_minutes"))
        if any(abs(at - s) < gap for s in starts[-3:]) or (
                self.visits.last is not None and not late and timedelta(0) <= at - self.visits.last < gap):
            if not late:
                self.visits.last = at
            return []
        starts.append(at)
        starts.sort()
        if not late:
            self.visits.last = at
        for old in sorted(self.visits.starts)[:-KEEP]:
            del self.visits.starts[old]
        if late or self.ctx.profile.absent(at) is not None:
            return []
        return self._toilet_frequency(night, starts, rule_time=at)

    def learned_nights(self, before: date) -> list[int]:
        """Visit counts of the observed nights before `before` (absences left out)."""
        rule = self.ctx.settings[RuleId.NIGHT_TOILET_FREQUENCY]
        first = before - timedelta(days=rule.i("baseline_nights"))
        counts = []
        for night in sorted(self.nights):
            if first <= night < before:
                start = datetime.combine(night, rule.t("night_start"), self.ctx.profile.zone)
                if not self._absent_during(start, start + timedelta(hours=12)):
                    counts.append(len(self.visits.starts.get(night, [])))
        return counts

    def _toilet_frequency(self, night: date, starts: list[datetime], rule_time: datetime) -> list[Decision]:
        rule = self.ctx.settings[RuleId.NIGHT_TOILET_FREQUENCY]
        if self.toilet_night == night:
            return []
        self.nights.setdefault(night, 0)
        history = self.learned_nights(night)
        count = len(starts)
        if len(history) >= rule.i("min_nights"):
            mean, sd = float(np.mean(history)), float(np.std(history, ddof=1))
            limit = mean + rule.f("sd_factor") * sd
            fires = count > limit and count >= rule.i("min_visits")
            baseline: dict[str, Any] = {"nights": len(history), "mean": round(mean, 2), "sd": round(sd, 2),
                                        "limit": round(limit, 2), "learning": False}
        else:
            fires = count >= rule.i("default_visits")
            baseline = {"nights": len(history), "learning": True, "limit": rule.i("default_visits")}
        if not fires:
            return []
        self.toilet_night = night
        self.ctx.end_quietly(RuleId.NIGHT_TOILET_FREQUENCY)
        return self.ctx.raise_(RuleId.NIGHT_TOILET_FREQUENCY, "", rule.i("priority"),
                               f"{count} night-time toilet visits (more than usual)",
                               {"night": night.isoformat(), "visits": [s.isoformat() for s in starts],
                                "baseline": baseline, "source": rule.source("baseline_nights")}, rule_time)

    def _deadline(self, today: date) -> tuple[time, dict[str, Any]]:
        rule = self.ctx.settings[RuleId.NO_MORNING_ACTIVITY]
        first = today - timedelta(days=rule.i("baseline_days"))
        minutes = []
        for day in sorted(self.first_activity):
            if first <= day < today and not self._absent_during(*self._day_bounds(day)):
                local = self._local(self.first_activity[day])
                minutes.append(local.hour * 60 + local.minute)
        if len(minutes) < rule.i("min_days"):
            return rule.t("default_deadline"), {"learning": True, "days": len(minutes),
                                                "deadline": rule.s("default_deadline")}
        p = float(np.percentile(minutes, rule.f("percentile")))
        lo, hi = rule.t("earliest_deadline"), rule.t("latest_deadline")
        value = min(max(p + rule.i("margin_minutes"), lo.hour * 60 + lo.minute), hi.hour * 60 + hi.minute)
        deadline = time(int(value) // 60, int(value) % 60)
        return deadline, {"learning": False, "days": len(minutes), "percentile_minutes": round(p, 1),
                          "deadline": deadline.strftime("%H:%M")}

    def _timers(self, now: datetime) -> list[Decision]:
        decisions: list[Decision] = []
        if self.ctx.profile.absent(now) is not None:
            return decisions
        local = self._local(now)
        toilet = self.ctx.settings[RuleId.NIGHT_TOILET_FREQUENCY]
        night = night_of(local, toilet.t("night_start"), toilet.t("night_end"))
        if night is not None and night not in self.nights:  # an observed night, even with no visits
            self.nights[night] = 0
            for old in sorted(self.nights)[:-KEEP]:
                del self.nights[old]
        door = self.ctx.settings[RuleId.DOOR_LEFT_OPEN]
        for device, opened in sorted(self.open_doors.items()):
            if now - opened >= timedelta(minutes=door.i("minutes")):
                decisions += self.ctx.raise_(
                    RuleId.DOOR_LEFT_OPEN, "", door.i("priority"), f"Door left open ({device})",
                    {"device_id": device, "opened_at": opened.isoformat(), "minutes": door.i("minutes"),
                     "checked_at": now.isoformat(), "source": door.source("minutes")}, now)
        decisions += self._out_of_bed(now)
        decisions += self._exit_overdue(now)
        return decisions

    def _out_of_bed(self, now: datetime) -> list[Decision]:
        rule = self.ctx.settings[RuleId.OUT_OF_BED_AT_NIGHT]
        if self.bed_vacated is None or not self.ctx.profile.devices_at("bed"):
            return []
        start, end = rule.t("night_start"), rule.t("night_end")
        vacated = self._local(self.bed_vacated)
        night = night_of(vacated, start, end)
        up_from = rule.t("up_from")
        if night is None or (up_from < end and up_from <= vacated.time() < end):
            return []  # up in the early morning: getting up for the day
        zone = self.ctx.profile.zone
        window_end = datetime.combine(night + timedelta(days=1) if start > end else night, end, zone)
        minutes = (min(now, window_end) - self.bed_vacated).total_seconds() / 60
        if minutes < rule.i("minutes"):
            return []
        return self.ctx.raise_(RuleId.OUT_OF_BED_AT_NIGHT, "", rule.i("priority"),
                               f"Out of bed at night for {int(minutes)} min",
                               {"bed_vacated_at": self.bed_vacated.isoformat(), "left_bed": self.bed_left,
                                "checked_at": now.isoformat(),
                                "minutes": rule.i("minutes"), "night": [rule.s("night_start"), rule.s("night_end")],
                                "source": rule.source("minutes")}, now)

    def tick(self, now: datetime, *, link_down: bool = False) -> list[Decision]:
        if self.last_live is None or link_down:
            return []
        decisions = self._timers(now)
        if self.ctx.profile.absent(now) is not None:
            return decisions
        decisions += self._no_morning(now)
        decisions += self._unoccupied(now)
        return decisions

    def _no_morning(self, now: datetime) -> list[Decision]:
        rule = self.ctx.settings[RuleId.NO_MORNING_ACTIVITY]
        local = self._local(now)
        today = local.date()
        if local.time() < rule.t("morning_from") or today in self.first_activity:
            return []
        morning = datetime.combine(today, rule.t("morning_from"), self.ctx.profile.zone)
        if self.first_seen is None or self.first_seen > morning:
            return []  # not watched since this morning began: no opinion yet
        deadline, baseline = self._deadline(today)
        if local.time() < deadline or self.ctx.is_open(RuleId.HOUSE_UNOCCUPIED):
            return []
        if self.last_event is not None and self.last_event[1] in EXIT_DOORS:
            return []  # left the house: house_unoccupied's business
        if self.alive is not None and now - self.alive <= timedelta(minutes=rule.i("reading_alive_minutes")):
            return []  # a worn oximeter measures a pulse: alive, in bed (module docstring)
        return self.ctx.raise_(RuleId.NO_MORNING_ACTIVITY, "", rule.i("priority"),
                               f"No activity this morning by {deadline.strftime('%H:%M')}",
                               {"date": today.isoformat(), "baseline": baseline,
                                "last_activity": self.last_live.isoformat() if self.last_live else None,
                                "last_clean_reading": self.alive.isoformat() if self.alive else None,
                                "reading_alive_minutes": rule.i("reading_alive_minutes"),
                                "source": rule.source("default_deadline")}, now)

    def _late(self, departure: datetime, hours: float) -> bool:
        """Was the person still out an hour into the night on this outing?"""
        rule = self.ctx.settings[RuleId.HOUSE_UNOCCUPIED]
        local = self._local(departure)
        moment = datetime.combine(local.date(), rule.t("night_start"), self.ctx.profile.zone) + timedelta(
            minutes=rule.i("night_grace_minutes"))
        if moment < departure:
            moment += timedelta(days=1)
        return departure < moment <= departure + timedelta(hours=hours)

    def outing_limit(self) -> tuple[float, dict[str, Any]]:
        """The longest silence after an exit door that is still an ordinary outing, learnt per person.

        A person who has come home late at least `late_returns` times in the baseline
        (a night owl) is not alerted just for being out into the night."""
        rule = self.ctx.settings[RuleId.HOUSE_UNOCCUPIED]
        hours = [h for _, h in self.outings]
        late = sum(1 for departure, h in self.outings if self._late(departure, h))
        often_out_late = late >= rule.i("late_returns")
        if len(hours) < rule.i("min_outings"):
            return rule.f("default_hours"), {"learning": True, "outings": len(hours), "late_returns": late,
                                             "often_out_late": often_out_late}
        p90 = float(np.percentile(hours, 90))
        limit = max(rule.f("min_hours"), rule.f("factor") * p90)
        return limit, {"learning": False, "outings": len(hours), "p90_hours": round(p90, 2), "late_returns": late,
                       "often_out_late": often_out_late}

    def _unoccupied(self, now: datetime) -> list[Decision]:
        if self.last_event is None:
            return []
        since, where, code = self.last_event
        if where not in EXIT_DOORS or self.in_bed:
            return []
        if self.exit_opened is None or since - self.exit_opened > timedelta(minutes=10):
            return []  # a door reported closed without being opened: a state report, not a departure
        rule = self.ctx.settings[RuleId.HOUSE_UNOCCUPIED]
        hours = (now - since).total_seconds() / 3600
        if hours * 60 < rule.f("min_outing_minutes"):
            return []
        limit, baseline = self.outing_limit()
        local = self._local(now)
        zone = self.ctx.profile.zone
        night_start = rule.t("night_start")
        grace = timedelta(minutes=rule.i("night_grace_minutes"))
        tonight = datetime.combine(local.date(), night_start, zone)
        if local.time() < time(12):
            tonight -= timedelta(days=1)
        into_night = since < tonight and now >= tonight + grace and not baseline.get("often_out_late", False)
        if hours < limit and not into_night:
            return []
        why = "still out an hour into the night" if hours < limit else f"out longer than usual ({limit:.1f} h)"
        return self.ctx.raise_(RuleId.HOUSE_UNOCCUPIED, "", rule.i("priority"), f"House unoccupied for {hours:.1f} h",
                               {"why": why, "last_event": {"at": since.isoformat(), "location": where, "code": code},
                                "limit_hours": round(limit, 2), "baseline": baseline, "checked_at": now.isoformat(),
                                "source": rule.source("priority")}, now)


def _after_noon(moment: time) -> int:
    """Minutes from noon to `moment` (the next morning's times after the evening's)."""
    return (moment.hour * 60 + moment.minute - NOON.hour * 60) % 1440


def night_toilet_visits(rules: ActivityRules) -> dict[date, list[datetime]]:
    """The night toilet visits a person's rules counted (for evaluation against labels)."""
    return {night: list(starts) for night, starts in sorted(rules.visits.starts.items())}
