"""Threshold rules on single readings, with persistence and quality rules.

Bands (values are rounded to the whole percent or beat an oximeter displays):
- `spo2_low`, NEWS2 Scale 1 with NHS oximetry @home: <=92% urgent (priority 2; NEWS2 scores
  <=91 as 3, oximetry @home says 999/A&E at <=92), 93-94% review today (priority 3).
- `spo2_low` on NEWS2 Scale 2 (clinician-set 88-92% target only): <=83 urgent, 84-85
  review; on oxygen also >=97 urgent and 95-96 review (over-oxygenation; same rule name).
- `pulse_high`: >=131 urgent (NEWS2 3), 111-130 review (NEWS2 2). `pulse_low`: <=40 urgent.

Persistence: a band fires only when clean readings stay in it.
- Continuous oximetry (clean readings <= `continuous_gap_s` apart): for
  `continuous_persistence_s` (60 s) of clean readings; a gap in clean readings longer than
  `continuous_max_gap_s` restarts the count. The real 1 Hz record's 35 s below 92% in
  separate dips does not alarm.
- Spot checks (readings minutes or hours apart): `persistence_readings` (2) consecutive
  clean readings in the band, i.e. the re-measurement confirms.
Quality: a reading with any quality flag (questionable, low perfusion, early estimate,
measurement ongoing, probe off, invalid) neither counts toward nor breaks persistence. It is
never discarded: the alert's explanation lists the flagged readings seen during the run.
An episode ends after clean in-range readings persist (`episode_end_*`) without a `Clear`:
a normal reading never cancels a human's concern.
Late readings (older than the device's latest) run on a persistence stream of their own.
"""

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from detection.decisions import Decision, PersonContext
from detection.defaults import Settings
from detection.rules import RuleId
from telecare_protocol import Metric, Priority, Reading

URGENT, REVIEW = Priority.URGENT, Priority.HIGH
"""The bands' priorities: urgent (2, each threshold rule's catalogue priority) and review today (3)."""
MAX_LISTED = 10


def displayed(value: float) -> int:
    """As an oximeter shows it: rounded half up to a whole number."""
    return int(value + 0.5)


def band(rule: RuleId, value: float, settings: Settings, scale: int, on_oxygen: bool) -> tuple[int, str] | None:
    """(priority, description) of the band a clean value falls in, or None when in range."""
    v = displayed(value)
    if rule == RuleId.SPO2_LOW:
        if scale == 2:
            if v <= settings.i("scale2_urgent_at_or_below"):
                return URGENT, f"SpO2 {v}% (NEWS2 Scale 2: score 3)"
            if v <= settings.i("scale2_review_at_or_below"):
                return REVIEW, f"SpO2 {v}% (NEWS2 Scale 2: score 2)"
            if on_oxygen and v >= settings.i("scale2_oxygen_urgent_at_or_above"):
                return URGENT, f"SpO2 {v}% on oxygen (NEWS2 Scale 2: score 3, above target)"
            if on_oxygen and v >= settings.i("scale2_oxygen_review_at_or_above"):
                return REVIEW, f"SpO2 {v}% on oxygen (NEWS2 Scale 2: score 2, above target)"
            return None
        if v <= settings.i("urgent_at_or_below"):
            return URGENT, f"SpO2 {v}% (oximetry @home: 999/A&E now; NEWS2 Scale 1)"
        if v <= settings.i("review_at_or_below"):
            return REVIEW, f"SpO2 {v}% (oximetry @home: GP or 111 today; NEWS2 Scale 1)"
        return None
    if rule == RuleId.PULSE_HIGH:
        if v >= settings.i("urgent_at_or_above"):
            return URGENT, f"pulse {v}/min (NEWS2: score 3)"
        if v >= settings.i("review_at_or_above"):
            return REVIEW, f"pulse {v}/min (NEWS2: score 2)"
        return None
    if v <= settings.i("urgent_at_or_below"):
        return URGENT, f"pulse {v}/min (NEWS2: score 3)"
    if settings.i("review_at_or_below") and v <= settings.i("review_at_or_below"):
        return REVIEW, f"pulse {v}/min (NEWS2)"
    return None


class Ref(NamedTuple):
    """What an explanation needs of a reading; kept instead of the message (a few hundred bytes less each)."""

    id: UUID
    device_id: str
    source_ts: datetime
    value: float | None
    quality: tuple[str, ...]

    @classmethod
    def of(cls, reading: Reading) -> "Ref":
        return cls(reading.id, reading.device_id, reading.source_ts, reading.value,
                   tuple(flag.value for flag in reading.quality))


@dataclass
class Run:
    """Consecutive clean readings in one band (or in range)."""

    first: Ref
    last: Ref
    count: int = 1
    continuous: bool = False
    low: float = 0.0
    high: float = 0.0
    fired: bool = False

    @classmethod
    def start(cls, reading: Reading) -> "Run":
        value = float(reading.value or 0.0)
        ref = Ref.of(reading)
        return cls(ref, ref, low=value, high=value)

    def extend(self, reading: Reading, continuous: bool) -> None:
        value = float(reading.value or 0.0)
        self.last, self.count = Ref.of(reading), self.count + 1
        self.continuous = self.continuous or continuous
        self.low, self.high = min(self.low, value), max(self.high, value)

    def seconds(self) -> float:
        return (self.last.source_ts - self.first.source_ts).total_seconds()

    def persists(self, settings: Settings, *, ending: bool = False) -> bool:
        if self.continuous:
            need = settings.f("episode_end_s" if ending else "continuous_persistence_s")
            return self.seconds() >= need
        need_readings = settings.i("episode_end_readings" if ending else "persistence_readings")
        return self.count >= need_readings


def _reading_ref(reading: Ref) -> dict[str, Any]:
    return {"id": str(reading.id), "source_ts": reading.source_ts.isoformat(), "value": reading.value,
            "quality": list(reading.quality)}


@dataclass
class Stream:
    """Persistence state of one rule over one device's readings of one metric."""

    last_clean: datetime | None = None
    runs: dict[int, Run] = field(default_factory=dict)
    in_range: Run | None = None
    flagged: deque[Ref] = field(default_factory=lambda: deque(maxlen=MAX_LISTED))
    flagged_count: int = 0


RULES_BY_METRIC = {Metric.SPO2: (RuleId.SPO2_LOW,), Metric.PULSE_RATE: (RuleId.PULSE_HIGH, RuleId.PULSE_LOW)}
_WHAT = {RuleId.SPO2_LOW: "SpO2", RuleId.PULSE_HIGH: "Pulse high", RuleId.PULSE_LOW: "Pulse low"}
"""How a title starts: "SpO2 91%: urgent", "Pulse high 135/min: urgent"."""


class ThresholdRules:
    def __init__(self, ctx: PersonContext) -> None:
        self.ctx = ctx
        self.streams: dict[tuple[RuleId, str, bool], Stream] = {}
        self.latest: dict[tuple[str, str], datetime] = {}

    def reading(self, reading: Reading) -> list[Decision]:
        rules = RULES_BY_METRIC.get(reading.metric, ())
        if not rules:
            return []
        key = (reading.device_id, reading.metric.value)
        latest = self.latest.get(key)
        late = latest is not None and reading.source_ts < latest
        if not late:
            self.latest[key] = reading.source_ts
        decisions: list[Decision] = []
        for rule in rules:
            if self.ctx.enabled(rule):
                stream = self.streams.setdefault((rule, reading.device_id, late), Stream())
                decisions += self._evaluate(rule, stream, reading, late)
        return decisions

    def _evaluate(self, rule: RuleId, stream: Stream, reading: Reading, late: bool) -> list[Decision]:
        if reading.value is None or reading.quality:
            stream.flagged.append(Ref.of(reading))
            stream.flagged_count += 1
            return []
        settings = self.ctx.settings[rule]
        if late and stream.last_clean is not None and reading.source_ts < stream.last_clean:
            stream.runs.clear()  # the late stream went back in time again: start over
            stream.in_range = None
        gap = None if stream.last_clean is None else (reading.source_ts - stream.last_clean).total_seconds()
        stream.last_clean = reading.source_ts
        continuous = gap is not None and gap <= settings.f("continuous_gap_s")
        if gap is not None and gap > settings.f("continuous_max_gap_s"):
            for level in [lvl for lvl, run in stream.runs.items() if run.continuous]:
                del stream.runs[level]
            if stream.in_range is not None and stream.in_range.continuous:
                stream.in_range = None
        scale, on_oxygen = self._scale(settings)
        found = band(rule, float(reading.value), settings, scale, on_oxygen)
        if found is None:
            stream.runs.clear()
            if stream.in_range is None:
                stream.in_range = Run.start(reading)
            else:
                stream.in_range.extend(reading, continuous)
            if stream.in_range.persists(settings, ending=True):
                self.ctx.end_quietly(rule)
                stream.flagged.clear()
            return []
        stream.in_range = None
        priority, description = found
        for level in (URGENT, REVIEW):
            if level >= priority:  # an urgent reading also counts toward the review band
                run = stream.runs.get(level)
                if run is None:
                    stream.runs[level] = Run.start(reading)
                else:
                    run.extend(reading, continuous)
            else:
                stream.runs.pop(level, None)
        for level in (URGENT, REVIEW):
            run = stream.runs.get(level)
            if run is not None and not run.fired and run.persists(settings):
                run.fired = True
                return self._raise(rule, level, run, stream, settings, scale, on_oxygen, description, late)
        return []

    def _scale(self, settings: Settings) -> tuple[int, bool]:
        profile = self.ctx.profile
        scale = settings.i("scale") if "scale" in settings.overridden else profile.spo2_scale
        on_oxygen = settings.b("on_oxygen") if "on_oxygen" in settings.overridden else profile.on_oxygen
        return (2 if scale == 2 else 1), on_oxygen and scale == 2

    def _raise(self, rule: RuleId, level: int, run: Run, stream: Stream, settings: Settings, scale: int,
               on_oxygen: bool, description: str, late: bool) -> list[Decision]:
        what = _WHAT[rule]
        urgency = "urgent" if level == URGENT else "review today"
        if rule == RuleId.SPO2_LOW and scale == 1:
            source = settings.source("urgent_at_or_below" if level == URGENT else "review_at_or_below")
        elif rule == RuleId.SPO2_LOW:
            source = settings.source("scale2_urgent_at_or_below")
        else:
            side = "above" if rule == RuleId.PULSE_HIGH else "below"
            source = settings.source(f"{'urgent' if level == URGENT else 'review'}_at_or_{side}")
        first_flagged = run.first.source_ts
        flagged = [_reading_ref(r) for r in stream.flagged if r.source_ts >= first_flagged]
        persistence = (
            {"mode": "continuous", "seconds": run.seconds(), "needed_s": settings.f("continuous_persistence_s"),
             "source": settings.source("continuous_persistence_s")}
            if run.continuous else
            {"mode": "spot_check", "readings": run.count, "needed": settings.i("persistence_readings"),
             "source": settings.source("persistence_readings")}
        )
        explanation: dict[str, Any] = {
            "band": description, "urgency": urgency, "scale": scale if rule == RuleId.SPO2_LOW else None,
            "on_oxygen": on_oxygen if rule == RuleId.SPO2_LOW else None, "source": source,
            "settings": settings.describe(), "persistence": persistence,
            "readings": {"device_id": run.first.device_id, "count": run.count, "first": _reading_ref(run.first),
                         "last": _reading_ref(run.last), "lowest": run.low, "highest": run.high},
            "flagged_readings_not_counted": {"count_in_run": len(flagged), "listed": flagged},
            "late": late,
        }
        title = f"{what} {description.split(' (')[0].split(' ', 1)[1]}: {urgency}"
        return self.ctx.raise_(rule, "", level, title, explanation, run.last.source_ts)
