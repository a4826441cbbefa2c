"""A resident's ordinary days, as the devices in their home see them.

Each day: getting up (bed vacated, toilet, breakfast in the kitchen), meals, toilet
visits, time in the living room, sometimes an outing (front door, house empty, return)
or a visitor, spot checks of SpO2 if they have them, bed, and 0-2 night toilet visits
(bed vacated → toilet door → flush → toilet door → back to bed), with an overnight
oximeter on the finger if they use one. Times scatter from day to day around the
personality's. Each day draws from its own `random.Random`, seeded from the home's seed
and the day number, so days can be generated one at a time and still be reproducible.

Incidents (`incidents.py`) cut `Window`s out of the routine and add their own happenings.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from device_sims.happenings import Happening, Measurement, Silence, Status, Timed, Transmission
from device_sims.home import Layout
from device_sims.personality import Personality

WELL_SPO2_RANGE = (95, 99)
"""Readings of a well resident stay at or above 95%: NHS oximetry@home "carry on monitoring"
(domain.md, Clinical thresholds), so a quiet week raises no SpO2 alert."""
WELL_PULSE_RANGE = (52, 90)
"""NEWS2 scores a pulse of 51-90 as 0."""
SPO2_READING_SD = 0.6
SPO2_DAY_SD = 0.4
"""Day-to-day scatter of a well resident's daily mean: a spread of about 2 points (domain.md)."""


def _scatter(rng: random.Random, sd: float) -> float:
    """Gaussian minutes, cut at 2 SD: a habit scatters, but a routine day is not a 3-SD outlier
    (those are incidents, injected on purpose)."""
    return max(-2 * sd, min(2 * sd, rng.gauss(0, sd)))


@dataclass(frozen=True)
class Window:
    """A stretch of time an incident takes over from the routine."""

    start: datetime
    end: datetime
    scope: Literal["all", "oximetry", "device"] = "all"
    device_id: str | None = None

    def covers(self, at: datetime, happening: Happening) -> bool:
        if not self.start <= at < self.end:
            return False
        if self.scope == "all":
            return not isinstance(happening, Status)
        if self.scope == "oximetry":
            return isinstance(happening, Measurement)
        return getattr(happening, "device_id", None) == self.device_id


@dataclass(frozen=True)
class Decline:
    """A slow SpO2 decline: the daily mean drops `drop_per_day` points a day and the
    scatter widens, from `start` for `days` days (and stays down until `end`)."""

    start: datetime
    days: float
    drop_per_day: float
    end: datetime

    def shift(self, at: datetime) -> tuple[float, float]:
        """(drop in the mean, extra standard deviation) at `at`."""
        if not self.start <= at < self.end:
            return 0.0, 0.0
        progress = min((at - self.start).total_seconds() / 86400, self.days)
        return self.drop_per_day * progress, 0.25 * progress


@dataclass
class Plan:
    """What incidents tell the routine: windows to leave alone, quiet days, SpO2 changes."""

    windows: list[Window] = field(default_factory=list)
    quiet_days: set[int] = field(default_factory=set)
    """Days with an incident: no outing or visitor, so the incident happens at home."""
    declines: list[Decline] = field(default_factory=list)


class Routine:
    def __init__(self, layout: Layout, personality: Personality, *, tz: ZoneInfo, first_day: date, days: int,
                 seed: str) -> None:
        self.layout, self.person, self.tz = layout, personality, tz
        self.first_day, self.days, self.seed = first_day, days, seed
        self.start = self.local(0, 0)
        self.end = self.local(days, 0)
        rng = random.Random(f"{seed}/times")
        sd = personality.time_scatter_min
        wake, bed = personality.wake(), personality.bed()
        wake_min, bed_min = wake.hour * 60 + wake.minute, bed.hour * 60 + bed.minute
        if bed_min < 12 * 60:
            bed_min += 24 * 60  # a night owl going to bed after midnight
        self.wake = [self.local(d, wake_min + _scatter(rng, sd)) for d in range(days + 1)]
        self.bed = [self.local(d, bed_min + _scatter(rng, sd)) for d in range(days + 1)]
        self.spo2_day = [rng.gauss(0, SPO2_DAY_SD) for _ in range(days + 1)]
        self.status_phase = {d.device_id: rng.uniform(1, 600) for d in layout.devices}

    def local(self, day: int, minutes: float) -> datetime:
        """`minutes` after local midnight starting day `day` (0-based), in UTC."""
        midnight = datetime.combine(self.first_day + timedelta(days=day), datetime.min.time(), tzinfo=self.tz)
        return (midnight.astimezone(UTC) + timedelta(minutes=minutes)).astimezone(UTC)

    def day_of(self, at: datetime) -> int:
        return (at.astimezone(self.tz).date() - self.first_day).days

    # --- one day -------------------------------------------------------------------------

    def plan_day(self, day: int, plan: Plan) -> list[Timed]:
        """Day `day`'s routine (from its wake time to the next), minus incident windows."""
        rng = random.Random(f"{self.seed}/day/{day}")
        out: list[Timed] = []
        if day == 0:
            out += [(self.start + timedelta(seconds=self.status_phase[d.device_id]), Status(d.device_id))
                    for d in self.layout.devices if d.status_period_s]
            self._night(out, rng, self.start, self.wake[0], plan)
        self._awake(out, rng, day, plan)
        self._night(out, rng, self.bed[day], self.wake[day + 1], plan)
        kept = [(at, h) for at, h in out
                if self.start <= at < self.end and not any(w.covers(at, h) for w in plan.windows)]
        kept.sort(key=lambda item: item[0])
        return kept

    def _tx(self, out: list[Timed], at: datetime, role: str, **values: bool | int) -> None:
        device = self.layout.by_role(role)
        if device is not None:
            out.append((at, Transmission(device.device_id, **values)))  # type: ignore[arg-type]

    def _awake(self, out: list[Timed], rng: random.Random, day: int, plan: Plan) -> None:
        wake, bed = self.wake[day], self.bed[day]
        minute = timedelta(minutes=1)
        self._tx(out, wake, "bed", occupancy=False)
        self.toilet(out, rng, wake + rng.uniform(1, 4) * minute)
        self.meal(out, rng, wake + rng.uniform(10, 25) * minute, 15)
        sd = self.person.time_scatter_min
        self.meal(out, rng, self.local(day, 12 * 60 + 30 + rng.gauss(0, sd)), 25)
        self.meal(out, rng, self.local(day, 18 * 60 + rng.gauss(0, sd)), 35)
        away: list[tuple[datetime, datetime]] = []
        if day not in plan.quiet_days and rng.random() < self.person.outings_per_week / 7:
            leave = self.local(day, rng.uniform(10 * 60, 15 * 60))
            back = leave + rng.uniform(60, 180) * minute
            if not any(leave - 15 * minute < t + 50 * minute and t < back + 15 * minute
                       for t in self.spot_times(day)):
                away.append((leave, back))
        if day not in plan.quiet_days and rng.random() < self.person.visitor_days_per_week / 7:
            arrive = self.local(day, rng.uniform(14 * 60, 17 * 60))
            leaves = arrive + rng.uniform(30, 90) * minute
            if not any(a <= leaves and arrive <= b for a, b in away):
                self._tx(out, arrive, "front_door", opening=True)
                self._tx(out, arrive + 40 * timedelta(seconds=1), "front_door", opening=False)
                self._tx(out, leaves, "front_door", opening=True)
                self._tx(out, leaves + 30 * timedelta(seconds=1), "front_door", opening=False)
        for _ in range(self.person.day_toilet_visits):
            self.toilet(out, rng, wake + rng.uniform(0.1, 0.95) * (bed - wake))
        at = wake + rng.uniform(20, 40) * minute
        while at < bed:
            self._tx(out, at, "living_room", motion=True)
            at += rng.uniform(12, 45) * minute
        self.toilet(out, rng, bed - rng.uniform(8, 15) * minute)
        self._tx(out, bed, "bed", occupancy=True)
        if self.person.oximetry == "spot":
            for scheduled in self.spot_times(day):
                taken = scheduled + rng.uniform(0, 50) * minute
                out.append((taken, self.measure(rng, taken, spot_check=True, plan=plan)))
        # Nothing happens at home while the resident is out.
        out[:] = [(t, h) for t, h in out if not any(a <= t <= b for a, b in away) or isinstance(h, Status)]
        for leave, back in away:
            self.outing(out, leave, back)

    def spot_times(self, day: int) -> list[datetime]:
        if self.person.oximetry != "spot":
            return []
        return [self.local(day, t.hour * 60 + t.minute) for t in self.person.spot_times()]

    def _night(self, out: list[Timed], rng: random.Random, bed: datetime, wake: datetime, plan: Plan) -> None:
        minute = timedelta(minutes=1)
        mean = self.person.night_toilet_visits
        visits = int(rng.random() < mean / 2) + int(rng.random() < mean / 2)
        span = (wake - bed).total_seconds() / 60
        out_of_bed: list[tuple[datetime, datetime]] = []
        if span > 150:
            for at in sorted(bed + rng.uniform(60, span - 45) * minute for _ in range(visits)):
                if out_of_bed and at < out_of_bed[-1][1] + 20 * minute:
                    continue
                out_of_bed.append((at, self.night_visit(out, rng, at)))
        if self.person.oximetry == "overnight":
            self.overnight(out, rng, bed + 10 * minute, wake - 5 * minute, out_of_bed, plan)

    # --- pieces the incidents reuse ------------------------------------------------------

    def toilet(self, out: list[Timed], rng: random.Random, at: datetime) -> datetime:
        """Toilet door, flush, toilet door. Returns when it is over."""
        second = timedelta(seconds=1)
        self._tx(out, at, "toilet_door", opening=True)
        self._tx(out, at + rng.uniform(5, 15) * second, "toilet_door", opening=False)
        flush = at + rng.uniform(120, 300) * second
        self._tx(out, flush, "flush", motion=True)
        self._tx(out, flush + rng.uniform(10, 30) * second, "toilet_door", opening=True)
        done = flush + rng.uniform(40, 60) * second
        self._tx(out, done, "toilet_door", opening=False)
        return done

    def night_visit(self, out: list[Timed], rng: random.Random, at: datetime) -> datetime:
        """Out of bed to the toilet and back. Returns when they are back in bed."""
        self._tx(out, at, "bed", occupancy=False)
        done = self.toilet(out, rng, at + rng.uniform(30, 90) * timedelta(seconds=1))
        back = done + rng.uniform(60, 180) * timedelta(seconds=1)
        self._tx(out, back, "bed", occupancy=True)
        return back

    def meal(self, out: list[Timed], rng: random.Random, at: datetime, minutes: float) -> None:
        """Kitchen motion every few minutes, and the fridge."""
        end = at + timedelta(minutes=minutes)
        self._tx(out, at + rng.uniform(1, 4) * timedelta(minutes=1), "fridge", motion=True)
        while at < end:
            self._tx(out, at, "kitchen", motion=True)
            at += rng.uniform(3, 6) * timedelta(minutes=1)

    def outing(self, out: list[Timed], leave: datetime, back: datetime) -> None:
        """Front door out and in; a worn pendant goes too (the hub stops hearing it)."""
        second = timedelta(seconds=1)
        self._tx(out, leave, "front_door", opening=True)
        self._tx(out, leave + 20 * second, "front_door", opening=False)
        self._tx(out, back, "front_door", opening=True)
        self._tx(out, back + 25 * second, "front_door", opening=False)
        self._tx(out, back + 90 * second, "living_room", motion=True)
        pendant = self.layout.by_role("pendant")
        if pendant is not None and self.person.pendant_worn:
            out.append((leave + 30 * second, Silence(pendant.device_id, True)))
            out.append((back, Silence(pendant.device_id, False)))

    def overnight(self, out: list[Timed], rng: random.Random, start: datetime, end: datetime,
                  out_of_bed: list[tuple[datetime, datetime]], plan: Plan,
                  value: Callable[[datetime], Measurement] | None = None) -> None:
        period = timedelta(seconds=self.person.overnight_period_s)
        at = start
        while at < end:
            if not any(a <= at < b for a, b in out_of_bed):
                out.append((at, value(at) if value else self.measure(rng, at, spot_check=False, plan=plan)))
            at += period

    def measure(self, rng: random.Random, at: datetime, *, spot_check: bool, plan: Plan) -> Measurement:
        """An ordinary reading: the day's mean plus scatter, lower pulse at night."""
        oximeter = self.layout.role("oximeter")
        drop, extra_sd = 0.0, 0.0
        for decline in plan.declines:
            d, s = decline.shift(at)
            drop, extra_sd = drop + d, extra_sd + s
        day = min(max(self.day_of(at), 0), self.days)
        mean = self.person.spo2_baseline + self.spo2_day[day] - drop
        spo2 = round(rng.gauss(mean, SPO2_READING_SD + extra_sd))
        low, high = WELL_SPO2_RANGE if drop == 0 else (80, 99)
        night = 0 if spot_check else -6
        pulse = round(rng.gauss(self.person.pulse_baseline + night + 2 * drop, 3))
        return Measurement(oximeter.device_id, spo2=min(max(spo2, low), high),
                           pulse_rate=min(max(pulse, WELL_PULSE_RANGE[0]), WELL_PULSE_RANGE[1]), spot_check=spot_check)
