"""Threshold rules on single readings, with persistence and quality rules.

Bands (values are rounded to the whole percent or beat an oximeter displays):
- `spo2_low`, NEWS2 Scale 1 with NHS oximetry @home: <=92% urgent (priority 2; NEWS2 scores
  <=91 as 3, oximetry @home says 999/A&E at <=92), 93-94% review today (priority 3).
- `spo2_low` on NEWS2 Scale 2 (clinician-set 88-92% target only): <=83 urgent, 84-85
  review; on oxygen also >=97 urgent and 95-96 review (over-oxygenation; same rule name).
- `pulse_high`: >=131 urgent (NEWS2 3), 111-130 review (NEWS2 2). `pulse_low`: <=40 urgent.
Every band is one row of `BANDS` (table, name, side, the `defaults.py` parameter at its edge,
action); the decision (which band a reading is in, at which priority) and the alert's title and
explanation all read that row, so a title always names the band that fired: "SpO2 91 %: urgent,
999/A&E now (NEWS2 Scale 1 ≤ 92 %)". A review band that fires on a run holding a reading of the
urgent band (93 % then 91 %: the urgent band is not yet confirmed) says so: "SpO2 93 %: review
today, GP or 111 today (NEWS2 Scale 1 93–94 %); 91 % seen, urgent if confirmed".

Persistence: a band fires only when clean readings stay in it.
- Continuous oximetry, at any steady cadence from 1 Hz to one a minute: for
  `continuous_persistence_s` (60 s) of wall-clock time, whatever the number of readings. A
  reading is continuous when it comes <= `continuous_gap_s` (10 s) after the previous clean
  one, or when the stream's own cadence, the median of its last `CADENCE_GAPS` (3) gaps
  between clean readings (so one gap does not change it), is <= `continuous_cadence_s` (90 s)
  and this gap is no gap (below). A gap in clean readings longer than `continuous_max_gap_s`
  (30 s) and than `continuous_max_gap_cadences` (2.5) x the cadence restarts the count. The
  real 1 Hz record's 35 s below 92% in separate dips does not alarm.
- Spot checks (readings minutes or hours apart, or the first two of a stream slower than
  10 s, which cannot yet be told from a spot check and its re-measure): `persistence_readings`
  (2) consecutive clean readings in the band, i.e. the re-measurement confirms.
Quality: a reading with any quality flag (questionable, low perfusion, early estimate,
measurement ongoing, probe off, invalid) neither counts toward nor breaks persistence. It is
never discarded: the alert's explanation lists the flagged readings seen during the run.
An episode ends after clean in-range readings persist (`episode_end_*`) without a `Clear`:
a normal reading never cancels a human's concern.
Late readings (older than the device's latest) run on a persistence stream of their own.
"""

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple
from uuid import UUID

from detection.decisions import Decision, PersonContext
from detection.defaults import Settings
from detection.rules import RuleId
from telecare_protocol import Metric, Priority, Reading

CADENCE_GAPS = 3
"""A stream's cadence is the median of its last 3 gaps between clean readings: one gap (a probe
re-seated, a lost radio packet) changes neither it nor whether the stream is steady (design)."""
URGENT, REVIEW = Priority.URGENT, Priority.HIGH
"""The bands' priorities: urgent (2, each threshold rule's catalogue priority) and review today (3)."""
MAX_LISTED = 10


def displayed(value: float) -> int:
    """As an oximeter shows it: rounded half up to a whole number."""
    return int(value + 0.5)


class BandName(StrEnum):
    """What a band asks for, as its alert says it: the name of the band in every title."""

    URGENT = "urgent"
    REVIEW = "review today"


class Side(StrEnum):
    """Which way a band lies from normal: `low` bands are "at or below" their edge, `high` "at or above"."""

    LOW = "low"
    HIGH = "high"


class BandTable(StrEnum):
    """The table a person's readings are judged by (chosen by rule, `spo2_scale` and `on_oxygen`)."""

    SPO2_SCALE_1 = "NEWS2 Scale 1"
    SPO2_SCALE_2 = "NEWS2 Scale 2, on air"
    SPO2_SCALE_2_OXYGEN = "NEWS2 Scale 2, on oxygen"
    PULSE_HIGH = "NEWS2 pulse, high"
    PULSE_LOW = "NEWS2 pulse, low"


@dataclass(frozen=True)
class BandSpec:
    """One row of the band table (`BANDS`): the single source of every threshold band's name, edge,
    action and source. Both the decision (`band_of`: which band a reading is in, at which priority)
    and the alert's title and explanation (`title`) read it.

    `edge` is the parameter (`defaults.py`) whose value bounds the band on its normal side, inclusive
    ("at or below" for a low band, "at or above" for a high one); the other bound is the next more
    urgent band's edge on the same side. The band's source is that parameter's source (`Band.source`),
    so a band cites exactly what `defaults.py` cites for its edge."""

    table: BandTable
    name: BandName
    side: Side
    edge: str
    action: str
    """What the guideline asks for in this band, as the title says it ("999/A&E now")."""

    @property
    def priority(self) -> Priority:
        return URGENT if self.name == BandName.URGENT else REVIEW


_NOW_999 = "999/A&E now"
_TODAY_GP = "GP or 111 today"
_NOW_NEWS2 = "urgent clinical review now (NEWS2 score 3)"
_TODAY_NEWS2 = "clinical review today"
BANDS: Mapping[BandTable, tuple[BandSpec, ...]] = MappingProxyType({
    BandTable.SPO2_SCALE_1: (
        BandSpec(BandTable.SPO2_SCALE_1, BandName.URGENT, Side.LOW, "urgent_at_or_below", _NOW_999),
        BandSpec(BandTable.SPO2_SCALE_1, BandName.REVIEW, Side.LOW, "review_at_or_below", _TODAY_GP),
    ),
    BandTable.SPO2_SCALE_2: (
        BandSpec(BandTable.SPO2_SCALE_2, BandName.URGENT, Side.LOW, "scale2_urgent_at_or_below", _NOW_NEWS2),
        BandSpec(BandTable.SPO2_SCALE_2, BandName.REVIEW, Side.LOW, "scale2_review_at_or_below",
                 _TODAY_NEWS2 + " (NEWS2 score 2)"),
    ),
    BandTable.SPO2_SCALE_2_OXYGEN: (
        BandSpec(BandTable.SPO2_SCALE_2_OXYGEN, BandName.URGENT, Side.LOW, "scale2_urgent_at_or_below", _NOW_NEWS2),
        BandSpec(BandTable.SPO2_SCALE_2_OXYGEN, BandName.REVIEW, Side.LOW, "scale2_review_at_or_below",
                 _TODAY_NEWS2 + " (NEWS2 score 2)"),
        BandSpec(BandTable.SPO2_SCALE_2_OXYGEN, BandName.URGENT, Side.HIGH, "scale2_oxygen_urgent_at_or_above",
                 "urgent clinical review now: above the 88-92 % target on oxygen (NEWS2 score 3)"),
        BandSpec(BandTable.SPO2_SCALE_2_OXYGEN, BandName.REVIEW, Side.HIGH, "scale2_oxygen_review_at_or_above",
                 "clinical review today: above the 88-92 % target on oxygen (NEWS2 score 2)"),
    ),
    BandTable.PULSE_HIGH: (
        BandSpec(BandTable.PULSE_HIGH, BandName.URGENT, Side.HIGH, "urgent_at_or_above", _NOW_NEWS2),
        BandSpec(BandTable.PULSE_HIGH, BandName.REVIEW, Side.HIGH, "review_at_or_above",
                 _TODAY_NEWS2 + " (NEWS2 score 2)"),
    ),
    BandTable.PULSE_LOW: (
        BandSpec(BandTable.PULSE_LOW, BandName.URGENT, Side.LOW, "urgent_at_or_below", _NOW_NEWS2),
        BandSpec(BandTable.PULSE_LOW, BandName.REVIEW, Side.LOW, "review_at_or_below",
                 _TODAY_NEWS2 + " (NEWS2 score 1)"),
    ),
})
"""Every threshold band, per table, the most urgent first on each side (see `BandSpec`)."""
UNITS: Mapping[RuleId, str] = MappingProxyType({RuleId.SPO2_LOW: "%", RuleId.PULSE_HIGH: "/min",
                                                RuleId.PULSE_LOW: "/min"})


def table_for(rule: RuleId, scale: int, on_oxygen: bool) -> BandTable:
    """The table a rule judges a person's readings by (`scale` 1 or 2; `on_oxygen` counts on Scale 2 only)."""
    if rule == RuleId.PULSE_HIGH:
        return BandTable.PULSE_HIGH
    if rule == RuleId.PULSE_LOW:
        return BandTable.PULSE_LOW
    if scale == 2:
        return BandTable.SPO2_SCALE_2_OXYGEN if on_oxygen else BandTable.SPO2_SCALE_2
    return BandTable.SPO2_SCALE_1


@dataclass(frozen=True)
class Band:
    """A band of the table with a person's settings applied: displayed values `low` to `high`,
    inclusive (None: no bound on that side). A band whose `low` is above its `high` is empty (a
    person's review edge set inside the urgent band; pulse_low's review band, off at 0)."""

    spec: BandSpec
    rule: RuleId
    low: int | None
    high: int | None
    source: str

    @property
    def name(self) -> BandName:
        return self.spec.name

    @property
    def priority(self) -> Priority:
        return self.spec.priority

    @property
    def key(self) -> tuple[Side, Priority]:
        return self.spec.side, self.spec.priority

    def contains(self, value: int) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def empty(self) -> bool:
        return self.low is not None and self.high is not None and self.low > self.high

    def range_text(self) -> str:
        """"≤ 92 %", "93–94 %", "≥ 131 /min"."""
        unit = UNITS[self.rule]
        if self.low is None:
            return f"≤ {self.high} {unit}"
        if self.high is None:
            return f"≥ {self.low} {unit}"
        if self.low == self.high:
            return f"{self.low} {unit}"
        return f"{self.low}–{self.high} {unit}"

    def describe(self) -> dict[str, Any]:
        """For an explanation: the band's table, name, range, action and source."""
        return {"table": self.spec.table.value, "name": self.name.value, "side": self.spec.side.value,
                "range": self.range_text(), "low": self.low, "high": self.high, "edge": self.spec.edge,
                "action": self.spec.action, "source": self.source}


def bands(rule: RuleId, settings: Settings, scale: int, on_oxygen: bool) -> tuple[Band, ...]:
    """A person's bands for `rule`, the most urgent first on each side; empty bands left out."""
    out: list[Band] = []
    inner: dict[Side, int | None] = {Side.LOW: None, Side.HIGH: None}
    for spec in BANDS[table_for(rule, scale, on_oxygen)]:
        edge = settings.i(spec.edge)
        before = inner[spec.side]
        if spec.side == Side.LOW:
            found = Band(spec, rule, None if before is None else before + 1, edge, settings.source(spec.edge))
        else:
            found = Band(spec, rule, edge, None if before is None else before - 1, settings.source(spec.edge))
        if spec.name == BandName.REVIEW and spec.side == Side.LOW and edge == 0:
            continue  # 0 = no review band (pulse_low's default)
        inner[spec.side] = edge if before is None else (min(before, edge) if spec.side == Side.LOW
                                                        else max(before, edge))
        if not found.empty():
            out.append(found)
    return tuple(out)


def band_of(rule: RuleId, value: float, settings: Settings, scale: int, on_oxygen: bool) -> Band | None:
    """The band a clean value falls in (as displayed), or None when it is in range."""
    shown = displayed(value)
    return next((b for b in bands(rule, settings, scale, on_oxygen) if b.contains(shown)), None)


def title(band: Band, shown: int, beyond: int | None) -> str:
    """The alert's title, from the band that fired: `shown`, the latest reading in the band; `beyond`,
    the most extreme reading of the run in a more urgent band of the same side, not confirmed there.

    E.g. "SpO2 91 %: urgent, 999/A&E now (NEWS2 Scale 1 ≤ 92 %)"; "SpO2 93 %: review today, GP or 111
    today (NEWS2 Scale 1 93–94 %); 91 % seen, urgent if confirmed"."""
    what = _WHAT[band.rule]
    unit = UNITS[band.rule]
    text = (f"{what} {shown} {unit}: {band.name.value}, {band.spec.action} "
            f"({band.spec.table.value} {band.range_text()})")
    if beyond is not None:
        text += f"; {beyond} {unit} seen, urgent if confirmed"
    return text


class Ref(NamedTuple):
    """What an explanation needs of a reading; kept instead of the message (a few hundred bytes less each)."""

    id: UUID
    device_id: str
    source_ts: datetime
    value: float | None
    quality: tuple[str, ...]

    @classmethod
    def of(cls, reading: Reading) -> "Ref":
        quality = reading.quality
        return cls(reading.id, reading.device_id, reading.source_ts, reading.value,
                   tuple(flag.value for flag in quality) if quality else ())


@dataclass
class Run:
    """Consecutive clean readings in one band, or in a more urgent band of the same side (an urgent
    reading also counts toward the review band), or in range. `shown` is the latest displayed value
    inside the run's own band, `beyond` the most extreme one in a more urgent band (for the title)."""

    first: Ref
    last: Ref
    count: int = 1
    continuous: bool = False
    low: float = 0.0
    high: float = 0.0
    fired: bool = False
    shown: int | None = None
    beyond: int | None = None

    @classmethod
    def start(cls, reading: Reading, band: Band | None = None, *, continuous: bool = False) -> "Run":
        """A run of one reading; `continuous` when it starts inside a steady stream (its persistence is
        then a time, even if its first gap restarted the count)."""
        value = float(reading.value or 0.0)
        ref = Ref.of(reading)
        run = cls(ref, ref, continuous=continuous, low=value, high=value)
        run._note(displayed(value), band)
        return run

    def extend(self, reading: Reading, continuous: bool, band: Band | None = None) -> None:
        value = float(reading.value or 0.0)
        self.last, self.count = Ref.of(reading), self.count + 1
        self.continuous = self.continuous or continuous
        self.low, self.high = min(self.low, value), max(self.high, value)
        self._note(displayed(value), band)

    def _note(self, shown: int, band: Band | None) -> None:
        if band is None:
            return
        if band.contains(shown):
            self.shown = shown
        elif self.beyond is None or (shown < self.beyond if band.spec.side == Side.LOW else shown > self.beyond):
            self.beyond = shown

    def seconds(self) -> float:
        return (self.last.source_ts - self.first.source_ts).total_seconds()

    def persists(self, settings: Settings, *, ending: bool = False) -> bool:
        if self.continuous:
            need = settings.f("episode_end_s" if ending else "continuous_persistence_s")
            return self.seconds() >= need
        need_readings = settings.i("episode_end_readings" if ending else "persistence_readings")
        return self.count >= need_readings


class Calm:
    """Consecutive clean readings in range (the counterpart of `Run`, which an explanation reads; this
    one only ends an episode, so it keeps two times and a count, not references to readings)."""

    __slots__ = ("continuous", "count", "first", "last")

    def __init__(self, at: datetime, *, continuous: bool = False) -> None:
        self.first = self.last = at
        self.count = 1
        self.continuous = continuous
        """As `Run.continuous`: started inside a steady stream, or extended by a continuous reading."""

    def extend(self, at: datetime, continuous: bool) -> None:
        self.last = at
        self.count += 1
        if continuous:
            self.continuous = True

    def ended(self, end_s: float, end_readings: int) -> bool:
        """The episode is over: in range for `end_s` seconds (continuous) or `end_readings` readings."""
        if self.continuous:
            return (self.last - self.first).total_seconds() >= end_s
        return self.count >= end_readings


def _reading_ref(reading: Ref) -> dict[str, Any]:
    return {"id": str(reading.id), "source_ts": reading.source_ts.isoformat(), "value": reading.value,
            "quality": list(reading.quality)}


@dataclass
class Stream:
    """Persistence state of one rule over one device's readings of one metric."""

    last_clean: datetime | None = None
    gaps: deque[float] = field(default_factory=lambda: deque(maxlen=CADENCE_GAPS))
    """Seconds between the last `CADENCE_GAPS` + 1 clean readings, for `cadence`."""
    runs: dict[tuple[Side, Priority], Run] = field(default_factory=dict)
    """(side, priority) of a band → the run of readings in it (`Run`)."""
    in_range: Calm | None = None
    flagged: deque[Ref] = field(default_factory=lambda: deque(maxlen=MAX_LISTED))
    flagged_count: int = 0

    def cadence(self) -> float | None:
        """The stream's own cadence in seconds: the median of its recent gaps (None with fewer than 2:
        two readings are a spot check and its re-measure as much as the start of a stream)."""
        gaps = self.gaps
        if len(gaps) < 2:
            return None
        return _median(gaps[0], gaps[1], gaps[2] if len(gaps) > 2 else None)


def _median(a: float, b: float, c: float | None = None) -> float:
    """The median of two or three numbers, as `statistics.median` gives it (the mean of two; the middle
    of three), without its sorting: it runs for every clean reading."""
    if c is None:
        return (a + b) / 2
    return max(min(a, b), min(max(a, b), c))


class Continuity(NamedTuple):
    """What the gap before a clean reading says (`continuity`)."""

    continuous: bool
    """The reading continues the one before in a continuous session."""
    broken: bool
    """The gap restarts the count of continuous runs (longer than the stream allows)."""
    steady: bool
    """The stream's own cadence is continuous: a run starting now is counted in time."""


def continuity(stream: Stream, gap: float | None, settings: Settings) -> Continuity:
    """The gap before a clean reading (seconds) against the stream's cadence, which must already include it."""
    if gap is None:
        return Continuity(continuous=False, broken=False, steady=False)
    cadence = stream.cadence()
    steady = cadence is not None and cadence <= settings.f("continuous_cadence_s")
    max_gap = settings.f("continuous_max_gap_s")
    if steady and cadence is not None:
        max_gap = max(max_gap, settings.f("continuous_max_gap_cadences") * cadence)
    broken = gap > max_gap
    return Continuity(not broken and (gap <= settings.f("continuous_gap_s") or steady), broken, steady)


RULES_BY_METRIC = {Metric.SPO2: (RuleId.SPO2_LOW,), Metric.PULSE_RATE: (RuleId.PULSE_HIGH, RuleId.PULSE_LOW)}
_WHAT = {RuleId.SPO2_LOW: "SpO2", RuleId.PULSE_HIGH: "Pulse high", RuleId.PULSE_LOW: "Pulse low"}
"""How a title starts (`title`): "SpO2 91 %: urgent, ...", "Pulse high 135 /min: urgent, ..."."""


class InRange(NamedTuple):
    """One rule's settings for a person, as `ThresholdRules.fast_reading` reads them: the displayed values
    no band of the person's contains (`low` <= displayed < `above`; whole numbers, or infinite), and the
    parameters (`defaults.py`, seconds and readings) of `continuity` and `Calm.ended`."""

    rule: RuleId
    enabled: bool
    low: float
    above: float
    gap_s: float
    cadence_s: float
    max_gap_s: float
    max_gap_cadences: float
    end_s: float
    end_readings: int


def in_range_of(rule: RuleId, person_bands: tuple[Band, ...], settings: Settings) -> InRange:
    """The displayed values between the person's low bands and high bands (no band holds them), and the
    parameters the in-range path reads. Every low band's values are at most its `high`, every high band's
    at least its `low`, so a value in `low`..`high` is in none, whatever the bands (empty ones left out)."""
    low = max((float(b.high) for b in person_bands if b.spec.side is Side.LOW and b.high is not None),
              default=-math.inf) + 1
    high = min((float(b.low) for b in person_bands if b.spec.side is Side.HIGH and b.low is not None),
               default=math.inf) - 1
    if any(b.high is None for b in person_bands if b.spec.side is Side.LOW) or any(
            b.low is None for b in person_bands if b.spec.side is Side.HIGH):
        low, high = math.inf, -math.inf  # a band unbounded towards normal: no fast path (not in BANDS)
    return InRange(rule, settings.b("enabled"), low, high + 1, settings.f("continuous_gap_s"),
                   settings.f("continuous_cadence_s"), settings.f("continuous_max_gap_s"),
                   settings.f("continuous_max_gap_cadences"), settings.f("episode_end_s"),
                   settings.i("episode_end_readings"))


class ThresholdRules:
    def __init__(self, ctx: PersonContext) -> None:
        self.ctx = ctx
        self.streams: dict[tuple[RuleId, str, bool], Stream] = {}
        self.latest: dict[tuple[str, str], datetime] = {}
        self._bands: dict[tuple[RuleId, Settings, int, bool], tuple[Band, ...]] = {}
        """The person's bands, made once per rule, settings (replaced when they change) and scale."""
        self._in_range: dict[str, tuple[InRange, ...]] = {}
        self._in_range_ctx: PersonContext | None = None
        """`fast_reading`'s settings per metric, made for this context (a new one when the profile changes)."""

    def fast_reading(self, reading: Reading) -> bool:
        """The common case of `reading` at a fraction of its cost: a clean reading (a value, no quality
        flag) in order from its device, in range for every rule of its metric, continuing streams whose
        runs are all in range. Updates exactly what `reading` would (it returns no decision then) and
        returns True; returns False, having changed nothing, for anything else (`reading` then runs).
        Raises only before changing anything."""
        device, at = reading.device_id, reading.source_ts
        name = reading.metric._value_  # the member's own attribute: `.value` is a descriptor call
        key = (device, name)
        latest = self.latest.get(key)
        if latest is None or at < latest:
            return False
        if self._in_range_ctx is not self.ctx:
            self._in_range.clear()
            self._in_range_ctx = self.ctx
        person = self._in_range.get(name)
        if person is None:
            person = self._in_range[name] = self._in_range_of(reading.metric)
        point = float(reading.value or 0.0) + 0.5  # `displayed` is its whole part: compared with whole bounds
        plans = []
        for fast in person:
            if not fast.enabled:
                continue
            stream = self.streams.get((fast.rule, device, False))
            if stream is None or stream.runs or not fast.low <= point < fast.above:
                return False
            last_clean, calm = stream.last_clean, stream.in_range
            if last_clean is None or calm is None:
                return False
            gap = (at - last_clean).total_seconds()
            gaps = stream.gaps  # the cadence as `continuity` sees it once this gap is in (`Stream.cadence`)
            count = len(gaps)
            if count >= 2:  # the median of the last two gaps and this one
                a, b = gaps[count - 2], gaps[count - 1]
                if a > b:
                    a, b = b, a
                cadence: float | None = a if gap < a else b if gap > b else gap
            elif count == 1:
                cadence = (gaps[0] + gap) / 2
            else:
                cadence = None
            steady = cadence is not None and cadence <= fast.cadence_s
            max_gap = fast.max_gap_s
            if steady and cadence is not None:
                max_gap = max(max_gap, fast.max_gap_cadences * cadence)
            broken = gap > max_gap
            plans.append((fast, stream, calm, gap, not broken and (gap <= fast.gap_s or steady), steady,
                          broken and calm.continuous))
        self.latest[key] = at
        open_ = self.ctx.open
        for fast, stream, calm, gap, continuous, steady, restart in plans:
            stream.last_clean = at
            stream.gaps.append(gap)
            if restart:  # a gap broke a continuous calm: a new one
                calm = stream.in_range = Calm(at, continuous=steady)
            else:
                calm.extend(at, continuous)
            if calm.ended(fast.end_s, fast.end_readings):
                if open_:
                    self.ctx.end_quietly(fast.rule)
                if stream.flagged:
                    stream.flagged.clear()
        return True

    def _in_range_of(self, metric: Metric) -> tuple[InRange, ...]:
        """The `InRange` of each rule of `metric`, for this context."""
        out = []
        for rule in RULES_BY_METRIC.get(metric, ()):
            settings = self.ctx.settings[rule]
            out.append(in_range_of(rule, self._person_bands(rule, settings)[2], settings))
        return tuple(out)

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
            stream.gaps.clear()
            stream.last_clean = None
        gap = None if stream.last_clean is None else (reading.source_ts - stream.last_clean).total_seconds()
        stream.last_clean = reading.source_ts
        if gap is not None:
            stream.gaps.append(gap)
        continuous, broken, steady = continuity(stream, gap, settings)
        if broken:
            for level in [lvl for lvl, run in stream.runs.items() if run.continuous]:
                del stream.runs[level]
            if stream.in_range is not None and stream.in_range.continuous:
                stream.in_range = None
        scale, on_oxygen, person_bands = self._person_bands(rule, settings)
        shown = displayed(float(reading.value))
        found = next((b for b in person_bands if b.contains(shown)), None)
        if found is None:
            stream.runs.clear()
            if stream.in_range is None:
                stream.in_range = Calm(reading.source_ts, continuous=steady)
            else:
                stream.in_range.extend(reading.source_ts, continuous)
            if stream.in_range.ended(settings.f("episode_end_s"), settings.i("episode_end_readings")):
                self.ctx.end_quietly(rule)
                stream.flagged.clear()
            return []
        stream.in_range = None
        for each in person_bands:
            if each.spec.side == found.spec.side and each.priority >= found.priority:
                run = stream.runs.get(each.key)  # an urgent reading also counts toward the review band
                if run is None:
                    stream.runs[each.key] = Run.start(reading, each, continuous=steady)
                else:
                    run.extend(reading, continuous, each)
            else:
                stream.runs.pop(each.key, None)
        for each in sorted(person_bands, key=lambda b: b.priority):
            run = stream.runs.get(each.key)
            if run is not None and not run.fired and run.persists(settings):
                run.fired = True
                return self._raise(rule, each, run, stream, settings, scale, on_oxygen, late)
        return []

    def _person_bands(self, rule: RuleId, settings: Settings) -> tuple[int, bool, tuple[Band, ...]]:
        """The person's scale, whether on oxygen, and bands for `rule` (made once per settings and scale)."""
        scale, on_oxygen = self._scale(settings)
        key = (rule, settings, scale, on_oxygen)
        person_bands = self._bands.get(key)
        if person_bands is None:
            if len(self._bands) >= 8:  # settings replaced (a profile changed): forget the old ones
                self._bands.clear()
            person_bands = self._bands[key] = bands(rule, settings, scale, on_oxygen)
        return scale, on_oxygen, person_bands

    def _scale(self, settings: Settings) -> tuple[int, bool]:
        profile = self.ctx.profile
        scale = settings.i("scale") if "scale" in settings.overridden else profile.spo2_scale
        on_oxygen = settings.b("on_oxygen") if "on_oxygen" in settings.overridden else profile.on_oxygen
        return (2 if scale == 2 else 1), on_oxygen and scale == 2

    def _raise(self, rule: RuleId, fired: Band, run: Run, stream: Stream, settings: Settings, scale: int,
               on_oxygen: bool, late: bool) -> list[Decision]:
        first_flagged = run.first.source_ts
        flagged = [_reading_ref(r) for r in stream.flagged if r.source_ts >= first_flagged]
        persistence = (
            {"mode": "continuous", "seconds": run.seconds(), "needed_s": settings.f("continuous_persistence_s"),
             "cadence_s": stream.cadence(), "source": settings.source("continuous_persistence_s")}
            if run.continuous else
            {"mode": "spot_check", "readings": run.count, "needed": settings.i("persistence_readings"),
             "source": settings.source("persistence_readings")}
        )
        shown = run.shown if run.shown is not None else displayed(float(run.last.value or 0.0))
        explanation: dict[str, Any] = {
            "band": fired.describe(), "urgency": fired.name.value,
            "scale": scale if rule == RuleId.SPO2_LOW else None,
            "on_oxygen": on_oxygen if rule == RuleId.SPO2_LOW else None, "source": fired.source,
            "settings": settings.describe(), "persistence": persistence,
            "readings": {"device_id": run.first.device_id, "count": run.count, "first": _reading_ref(run.first),
                         "last": _reading_ref(run.last), "lowest": run.low, "highest": run.high,
                         "latest_in_band": shown, "beyond_band_unconfirmed": run.beyond},
            "flagged_readings_not_counted": {"count_in_run": len(flagged), "listed": flagged},
            "late": late,
        }
        return self.ctx.raise_(rule, "", fired.priority, title(fired, shown, run.beyond), explanation,
                               run.last.source_ts)
