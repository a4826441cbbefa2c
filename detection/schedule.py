"""Missed scheduled measurement (OpenTele: an alert when a scheduled measurement is missed).

The profile's `measurement_schedule` lists local times and a window. A slot is met by any
clean SpO2 reading from `early_minutes` before the time to `window_minutes` after it. When
a tick passes the end of a window with no such reading, `missed_measurement` is raised
(priority 3, the nurses' review); the next clean SpO2 reading clears it. Slots inside a
planned absence are skipped, and so are slots before the engine first heard of the person
(no alert for history it never saw).
"""

from datetime import date, datetime, timedelta

from detection.decisions import Decision, PersonContext
from detection.defaults import parse_hhmm
from detection.rules import RuleId
from telecare_protocol import Metric, Reading

MAX_TIMES = 128
_SPO2, _MISSED = Metric.SPO2, RuleId.MISSED_MEASUREMENT
"""Read once: an enum member's lookup on its class costs more than the test it serves (fast path)."""
SPACING = timedelta(minutes=5)
"""One remembered time per 5 min of clean readings, 128 of them: over 10 h, more than any window."""


class ScheduleRule:
    def __init__(self, ctx: PersonContext) -> None:
        self.ctx = ctx
        self.clean: list[datetime] = []
        """Times of recent clean SpO2 readings (bounded)."""
        self.checked_until: datetime | None = None

    def fast_reading(self, reading: Reading) -> bool:
        """`reading` for a clean reading (a value, no quality flag) that changes nothing: not SpO2, or within
        `SPACING` of the latest remembered time with no missed measurement open; True then (`reading` would
        return no decision), else False (`reading` then runs). Changes nothing."""
        if reading.metric != _SPO2:
            return True
        clean, open_ = self.clean, self.ctx.open
        return (self.checked_until is not None and bool(clean) and reading.source_ts - clean[-1] < SPACING
                and not (open_ and (_MISSED, "") in open_))

    def reading(self, reading: Reading) -> list[Decision]:
        if reading.metric != Metric.SPO2 or reading.value is None or reading.quality:
            return []
        if self.checked_until is None:
            self.checked_until = reading.source_ts
        if not self.clean or reading.source_ts - self.clean[-1] >= SPACING:
            self.clean.append(reading.source_ts)
            horizon = reading.source_ts - timedelta(days=1)
            keep = next((i for i, t in enumerate(self.clean) if t >= horizon), len(self.clean) - 1)
            del self.clean[:max(keep, len(self.clean) - MAX_TIMES)]
        if not self.ctx.is_open(RuleId.MISSED_MEASUREMENT):
            return []
        return self.ctx.clear(RuleId.MISSED_MEASUREMENT, "", reading.source_ts,
                              {"why": "a clean SpO2 reading arrived", "reading_id": str(reading.id),
                               "source_ts": reading.source_ts.isoformat()})

    def _slots(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime, datetime]]:
        """(time, window start, window end) of every slot whose window ends in (start, end]."""
        schedule = self.ctx.profile.measurement_schedule
        assert schedule is not None
        zone = self.ctx.profile.zone
        early = timedelta(minutes=self.ctx.settings[RuleId.MISSED_MEASUREMENT].i("early_minutes"))
        window = timedelta(minutes=schedule.window_minutes)
        slots = []
        day: date = (start - window).astimezone(zone).date()
        last_day = end.astimezone(zone).date()
        while day <= last_day:
            for text in schedule.times:
                when = datetime.combine(day, parse_hhmm(text, "times"), zone)
                if start < when + window <= end:
                    slots.append((when, when - early, when + window))
            day += timedelta(days=1)
        return slots

    def tick(self, now: datetime) -> list[Decision]:
        if self.ctx.profile.measurement_schedule is None or self.checked_until is None:
            return []
        if now <= self.checked_until:
            return []
        start, self.checked_until = self.checked_until, now
        if now - start > timedelta(hours=20):
            start = now - timedelta(hours=20)  # never look back past the remembered readings
        decisions: list[Decision] = []
        settings = self.ctx.settings[RuleId.MISSED_MEASUREMENT]
        for when, opens, closes in self._slots(start, now):
            if self.ctx.profile.absent(when) is not None:
                continue
            if any(opens <= t <= closes for t in self.clean):
                continue
            last = self.clean[-1].isoformat() if self.clean else None
            decisions += self.ctx.raise_(
                RuleId.MISSED_MEASUREMENT, "", settings.i("priority"),
                f"Scheduled SpO2 measurement at {when.strftime('%H:%M')} missed",
                {"scheduled": when.isoformat(), "window": [opens.isoformat(), closes.isoformat()],
                 "last_clean_reading": last, "checked_at": now.isoformat(), "source": settings.source("priority")},
                now, repeat=True)
        return decisions
