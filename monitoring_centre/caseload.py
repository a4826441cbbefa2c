"""A caseload ordered by risk, and explained: who a nurse should look at first, and why.

The score is a sum of points over a few facts the centre holds about each person, each from a
small table (`WEIGHTS`, shown in docs/caseload.md with a worked example). No fitted model, no
hidden input: every point is listed in the person's components and said in plain words (`why`).
It orders a caseload for review; it is not a diagnosis and never replaces an alert's own
escalation (an alarm is escalated whatever anyone's score).

Components (`WEIGHTS`; points, and the most a component gives):
- `recent_alerts`: alerts of the last 7 days (alarms but falls, thresholds, activity): priority 1
  or 2 scores 3, priority 3 scores 2, priority 4 scores 1; at most 6. TSA's priority levels on
  NEWS2's 0-3 scale (local choice).
- `trend_alerts`: each SpO2 trend rule (`spo2_trend_spc`, `spo2_trend_slope`, `spo2_variability`)
  alerting in the last 7 days: 2; at most 6. Trends precede COPD admissions (domain brief).
- `missed_measurements`: each scheduled measurement missed in the last 7 days: 1; at most 3 (OpenTele).
- `latest_spo2`, `latest_pulse`: the NEWS2 score (0-3) of the latest clean reading of the last
  7 days, SpO2 on the person's scale (NEWS2, RCP 2017; `detection.news2`).
- `falls`: each fall alerted in the last 30 days: 3; at most 6 (NICE CG161).
- `frailty`: the eFI category: fit 0, mild 1, moderate 2, severe 3 (Clegg et al., Age and Ageing 2016).
- `frailty_rising`: the category rose at its latest change, made in the last 12 months: 1
  (Stow et al., BMC Medicine 2018).

An alert counts when it was open at some time in its window (opened or repeated in it, or still
open); one resolved as a false alarm or a technical fault (`NOT_AT_RISK`) never counts.
Supervision alerts (the equipment, not the person) and log entries do not count: the operators'
queue has them. Each alert counts in one component only. A reading is clean when it has no quality
flag, is not `clock_suspect` and is a measurement (`telecare_protocol.codes.MEASURABLE`), as in
`trends.py`.

Ties are broken by the most recent counted alert (latest first; none last), then by name, then by
id: the same data always give the same order (`rank`).
"""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from detection import news2
from detection.rules import CATALOGUE, NEWS2, OPENTELE, SLOPE, TSA, RuleId, RuleKind, of_kind
from monitoring_centre.alerts import ACTIVE
from monitoring_centre.frailty import (
    CLEGG_2016,
    EFI_RANGE,
    RANK,
    Assessment,
    FrailtyCategory,
    FrailtySource,
    trajectories,
)
from monitoring_centre.profiles import PROFILE_RULE
from monitoring_centre.storage import Alert, Person, Reading, RuleSetting
from telecare_protocol import Priority
from telecare_protocol.codes import MEASURABLE, Metric

RECENT = timedelta(days=7)
"""The window of alerts, missed measurements and readings: a week, the span of the SPC rule's
rolling baseline (domain brief, 'Clinical thresholds'), and of a weekly caseload review (local choice)."""
FALLS_WINDOW = timedelta(days=30)
"""Falls count for 30 days (local choice: a month of follow-up after a fall, the time a falls assessment
and its changes take to arrange; longer than the 7 days of the other alerts because a fall's
consequences outlast the alarm)."""
FRAILTY_RISE_WINDOW = timedelta(days=365)
"""A rise in frailty category counts for a year (local choice: recent enough to be a change in the
person's trajectory, which Stow et al., BMC Medicine 2018, found more telling than one value)."""

NOT_AT_RISK: frozenset[str] = frozenset({"false_alarm", "technical"})
"""Outcomes after which an alert says nothing about the person's risk (`alerts.OUTCOMES`: pressed by
accident; an equipment fault, the person was not at risk)."""

ALERT_POINTS: Mapping[int, int] = MappingProxyType({
    Priority.EMERGENCY: 3, Priority.URGENT: 3, Priority.HIGH: 2, Priority.SUPERVISION: 1})
"""Points per recent alert, by its priority (1 most urgent; 5 and 9 score nothing). Local choice on
NEWS2's 0-3 scale: an alarm or an urgent alert (act now) weighs as a parameter scoring 3 (urgent
review within the hour), a review-today alert as 2, a priority-4 one as 1."""
ALERT_CAP = 6
"""Two urgent alerts (local choice): a flurry of alarms ranks a person high, not above everything else."""
TREND_RULES: tuple[RuleId, ...] = of_kind(RuleKind.TREND)
TREND_POINTS = 2
"""Per trend rule that alerted (each rule once, however often it repeated): a trend is a review-today
alert (priority 3, scoring 2 as above), and trends beat single readings for COPD (domain brief)."""
TREND_CAP = TREND_POINTS * len(TREND_RULES)
MISSED_POINTS = 1
"""Per missed scheduled measurement (an alert and each of its repeats): the nurse does not know how the
person is (OpenTele: for the nurse's review), which weighs less than knowing they are unwell (local choice)."""
MISSED_CAP = 3
FALL_POINTS = 3
"""Per fall (an alarm, priority 1, scoring 3 as above); a fall in the last month is what calls for a
falls assessment (NICE CG161, 2013) (weight: local choice)."""
FALL_CAP = 6
FRAILTY_POINTS: Mapping[FrailtyCategory, int] = MappingProxyType(dict(RANK))
"""One point per category above fit: the eFI categories grade the risk of death, hospital and care home
admission (Clegg 2016); equal steps are a local choice."""
FRAILTY_RISING_POINTS = 1
"""A rising trajectory predicts more than one value (Stow et al., BMC Medicine 2018; weight: local choice)."""

STOW_2018 = "a rising eFI trajectory matters more than one value (Stow et al., BMC Medicine 2018)"
NICE_CG161 = "NICE CG161 (2013), falls in older people: a fall calls for a multifactorial falls assessment"
LOCAL = "local choice (docs/caseload.md says why)"


class Component(StrEnum):
    """One line of the score."""

    RECENT_ALERTS = "recent_alerts"
    TREND_ALERTS = "trend_alerts"
    MISSED_MEASUREMENTS = "missed_measurements"
    LATEST_SPO2 = "latest_spo2"
    LATEST_PULSE = "latest_pulse"
    FALLS = "falls"
    FRAILTY = "frailty"
    FRAILTY_RISING = "frailty_rising"


@dataclass(frozen=True)
class Weight:
    """A component's row of the table: what it counts, its points, the most it gives, its source."""

    component: Component
    counts: str
    points: str
    cap: int
    source: str


WEIGHTS: tuple[Weight, ...] = (
    Weight(Component.RECENT_ALERTS, "alerts open in the last 7 days: alarms but falls, thresholds, activity",
           "priority 1 or 2: 3 each; 3: 2; 4: 1", ALERT_CAP, f"{TSA}; points on the 0-3 scale of {NEWS2}: {LOCAL}"),
    Weight(Component.TREND_ALERTS, "SpO2 trend rules alerting in the last 7 days", f"{TREND_POINTS} per rule",
           TREND_CAP, SLOPE),
    Weight(Component.MISSED_MEASUREMENTS, "scheduled measurements missed in the last 7 days",
           f"{MISSED_POINTS} each", MISSED_CAP, f"{OPENTELE}; {LOCAL}"),
    Weight(Component.LATEST_SPO2, "the latest clean SpO2 reading of the last 7 days, on the person's scale",
           "its NEWS2 score, 0-3", 3, NEWS2),
    Weight(Component.LATEST_PULSE, "the latest clean pulse reading of the last 7 days", "its NEWS2 score, 0-3",
           3, NEWS2),
    Weight(Component.FALLS, "falls alerted in the last 30 days", f"{FALL_POINTS} each", FALL_CAP,
           f"{NICE_CG161}; {LOCAL}"),
    Weight(Component.FRAILTY, "the eFI category", "fit 0, mild 1, moderate 2, severe 3",
           max(FRAILTY_POINTS.values()), f"{CLEGG_2016}; {LOCAL}"),
    Weight(Component.FRAILTY_RISING, "the category rose at its latest change, made in the last 12 months",
           f"{FRAILTY_RISING_POINTS}", FRAILTY_RISING_POINTS, f"{STOW_2018}; {LOCAL}"),
)
"""The formula, one row per component, in the order the components are listed."""
MAX_SCORE = sum(weight.cap for weight in WEIGHTS)

PRIORITY_WORDS: Mapping[int, str] = MappingProxyType({
    Priority.EMERGENCY: "emergency", Priority.URGENT: "urgent", Priority.HIGH: "review today",
    Priority.SUPERVISION: "low priority"})


# The facts about one person the score reads.

@dataclass(frozen=True)
class AlertFact:
    """An alert as the score reads it (`Alert`'s columns)."""

    rule: str
    title: str
    priority: int
    opened_at: datetime
    last_seen_at: datetime
    status: str
    outcome: str | None = None
    repeat_count: int = 0


@dataclass(frozen=True)
class ReadingFact:
    """A clean reading: its value (% or /min) and when it was measured."""

    value: float
    at: datetime


@dataclass(frozen=True)
class PersonFacts:
    """Everything the score knows about one person (`load_facts`). `alerts`: at least those open in
    the last 30 days; `spo2` and `pulse`: the latest clean readings of the last 7 days."""

    person_id: int
    name: str
    alerts: tuple[AlertFact, ...] = ()
    spo2: ReadingFact | None = None
    pulse: ReadingFact | None = None
    spo2_scale: Literal[1, 2] = 1
    on_oxygen: bool = False
    frailty: Assessment | None = None
    frailty_since: datetime | None = None
    """Since when the category has been `frailty` (None: since its entry)."""
    frailty_before: Assessment | None = None
    """The entry before the category last changed (`frailty.Trajectory`)."""


@dataclass(frozen=True)
class Part:
    """One component's points for one person, and what they were for in words (`detail` says so
    also when the component scored nothing)."""

    component: Component
    points: int
    detail: str


@dataclass(frozen=True)
class Risk:
    """A person's place on a caseload: `score` (0 to `MAX_SCORE`), the `parts` it adds up (one per
    component, in `WEIGHTS` order), `why`: the parts that scored, in words, most points first,
    `not_known`: what the score could not see (no recent reading), and `last_alert_at`: when the
    most recent counted alert was last open (the first tie-break)."""

    person_id: int
    name: str
    score: int
    parts: tuple[Part, ...]
    why: tuple[str, ...]
    not_known: tuple[str, ...] = ()
    last_alert_at: datetime | None = None
    frailty: FrailtyCategory | None = None


def _kind(rule: str) -> RuleKind | None:
    try:
        return CATALOGUE[RuleId(rule)].kind
    except ValueError:
        return None


def _component_of(alert: AlertFact) -> Component | None:
    """Which component an alert counts in, or None (supervision, log). A rule the catalogue does not
    know counts as a recent alert: better to show it than to hide it."""
    if alert.rule == RuleId.FALL:
        return Component.FALLS
    if alert.rule in TREND_RULES:
        return Component.TREND_ALERTS
    if alert.rule == RuleId.MISSED_MEASUREMENT:
        return Component.MISSED_MEASUREMENTS
    if _kind(alert.rule) in (RuleKind.SUPERVISION, RuleKind.LOG):
        return None
    return Component.RECENT_ALERTS


def _open_in(alert: AlertFact, since: datetime) -> bool:
    return alert.status in ACTIVE or alert.last_seen_at >= since or alert.opened_at >= since


def counted_alerts(facts: PersonFacts, now: datetime) -> dict[Component, list[AlertFact]]:
    """The person's alerts that count, by component: open in its window (falls: opened in the last
    30 days) and not resolved as `NOT_AT_RISK`."""
    counted: dict[Component, list[AlertFact]] = {}
    for alert in facts.alerts:
        component = _component_of(alert)
        if component is None or alert.outcome in NOT_AT_RISK:
            continue
        if component == Component.FALLS:
            if not now - FALLS_WINDOW <= alert.opened_at <= now:
                continue
        elif not _open_in(alert, now - RECENT):
            continue
        counted.setdefault(component, []).append(alert)
    return counted


def _plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {words or word + 's'}"


def _cap_note(raw: int, cap: int) -> str:
    return f" ({raw} points, at most {cap} count)" if raw > cap else ""


def _recent_alerts(alerts: Sequence[AlertFact]) -> Part:
    if not alerts:
        return Part(Component.RECENT_ALERTS, 0, "no alerts in the last 7 days")
    raw = sum(ALERT_POINTS.get(alert.priority, 0) for alert in alerts)
    points = min(ALERT_CAP, raw)
    seen = Counter((alert.title, alert.priority) for alert in alerts)
    listed = "; ".join(f"{title} ({PRIORITY_WORDS.get(priority, f'priority {priority}')})"
                       + (f" x{count}" if count > 1 else "")
                       for (title, priority), count in sorted(seen.items(), key=lambda item: (item[0][1], item[0][0])))
    capped = _cap_note(raw, ALERT_CAP)
    return Part(Component.RECENT_ALERTS, points,
                f"{_plural(len(alerts), 'alert')} in the last 7 days: {listed}{capped}")


def _trend_alerts(alerts: Sequence[AlertFact]) -> Part:
    rules = sorted({alert.rule for alert in alerts}, key=lambda rule: TREND_RULES.index(RuleId(rule)))
    if not rules:
        return Part(Component.TREND_ALERTS, 0, "no SpO2 trend alert in the last 7 days")
    titles = "; ".join(CATALOGUE[RuleId(rule)].title for rule in rules)
    return Part(Component.TREND_ALERTS, min(TREND_CAP, TREND_POINTS * len(rules)),
                f"SpO2 trend {'alert' if len(rules) == 1 else 'alerts'} in the last 7 days: {titles}")


def _missed(alerts: Sequence[AlertFact]) -> Part:
    missed = sum(1 + alert.repeat_count for alert in alerts)
    if not missed:
        return Part(Component.MISSED_MEASUREMENTS, 0, "no scheduled measurement missed in the last 7 days")
    raw = MISSED_POINTS * missed
    return Part(Component.MISSED_MEASUREMENTS, min(MISSED_CAP, raw),
                f"{_plural(missed, 'scheduled measurement')} missed in the last 7 days{_cap_note(raw, MISSED_CAP)}")


def _falls(alerts: Sequence[AlertFact]) -> Part:
    if not alerts:
        return Part(Component.FALLS, 0, "no fall in the last 30 days")
    raw = FALL_POINTS * len(alerts)
    return Part(Component.FALLS, min(FALL_CAP, raw),
                f"{_plural(len(alerts), 'fall')} in the last 30 days{_cap_note(raw, FALL_CAP)}")


def _when(at: datetime) -> str:
    return at.strftime("%d %b %H:%M UTC")


def _spo2(facts: PersonFacts) -> Part:
    if facts.spo2 is None:
        return Part(Component.LATEST_SPO2, 0, "no clean SpO2 reading in the last 7 days")
    scored = news2.spo2_score(facts.spo2.value, facts.spo2_scale, facts.on_oxygen)
    return Part(Component.LATEST_SPO2, scored.score,
                f"latest SpO2 {scored.value}% ({_when(facts.spo2.at)}): NEWS2 {scored.table} scores {scored.score}")


def _pulse(facts: PersonFacts) -> Part:
    if facts.pulse is None:
        return Part(Component.LATEST_PULSE, 0, "no clean pulse reading in the last 7 days")
    scored = news2.pulse_score(facts.pulse.value)
    return Part(Component.LATEST_PULSE, scored.score,
                f"latest pulse {scored.value}/min ({_when(facts.pulse.at)}): NEWS2 scores {scored.score}")


def _source_words(assessment: Assessment) -> str:
    if assessment.source == FrailtySource.GP_RECORD:
        return f"from the GP record, {assessment.recorded_at:%d %b %Y}"
    return f"entered by {assessment.recorded_by}, {assessment.recorded_at:%d %b %Y}"


def _frailty(facts: PersonFacts) -> Part:
    if facts.frailty is None:
        return Part(Component.FRAILTY, 0, "no frailty category recorded")
    category = facts.frailty.category
    return Part(Component.FRAILTY, FRAILTY_POINTS[category],
                f"frailty {category.value} ({EFI_RANGE[category]}; {_source_words(facts.frailty)})")


def _frailty_rising(facts: PersonFacts, now: datetime) -> Part:
    current, before = facts.frailty, facts.frailty_before
    if current is None or before is None or RANK[current.category] <= RANK[before.category]:
        return Part(Component.FRAILTY_RISING, 0, "frailty category not rising")
    if (facts.frailty_since or current.recorded_at) < now - FRAILTY_RISE_WINDOW:
        return Part(Component.FRAILTY_RISING, 0,
                    f"frailty rose from {before.category.value} to {current.category.value} more than 12 months ago")
    return Part(Component.FRAILTY_RISING, FRAILTY_RISING_POINTS,
                f"frailty rose from {before.category.value} to {current.category.value} in the last 12 months")


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def assess(facts: PersonFacts, now: datetime) -> Risk:
    """The person's score at `now`, its parts and its reasons (see the module docstring)."""
    counted = counted_alerts(facts, now)
    parts = (
        _recent_alerts(counted.get(Component.RECENT_ALERTS, [])),
        _trend_alerts(counted.get(Component.TREND_ALERTS, [])),
        _missed(counted.get(Component.MISSED_MEASUREMENTS, [])),
        _spo2(facts),
        _pulse(facts),
        _falls(counted.get(Component.FALLS, [])),
        _frailty(facts),
        _frailty_rising(facts, now),
    )
    order = {weight.component: index for index, weight in enumerate(WEIGHTS)}
    scoring = sorted((part for part in parts if part.points), key=lambda part: (-part.points, order[part.component]))
    not_known = []
    if facts.spo2 is None and facts.pulse is None:
        not_known.append("No clean SpO2 or pulse reading in the last 7 days: the score cannot see how they are")
    last = max((alert.last_seen_at for alerts in counted.values() for alert in alerts), default=None)
    return Risk(person_id=facts.person_id, name=facts.name, score=sum(part.points for part in parts), parts=parts,
                why=tuple(_capitalised(part.detail) for part in scoring), not_known=tuple(not_known),
                last_alert_at=last, frailty=facts.frailty.category if facts.frailty else None)


def rank(risks: Iterable[Risk]) -> list[Risk]:
    """Highest score first; then the most recent counted alert (none last); then name, then id."""
    return sorted(risks, key=lambda risk: (-risk.score, risk.last_alert_at is None,
                                           -(risk.last_alert_at.timestamp() if risk.last_alert_at else 0.0),
                                           risk.name, risk.person_id))


# Reading the facts from the database.

READING_PAGE = 200
"""Readings fetched at a time while looking back for the latest clean one."""


def _latest_clean(session: Session, person_id: int, metric: Metric, since: datetime,
                  now: datetime) -> ReadingFact | None:
    """The person's latest clean reading of `metric` measured from `since` to `now` (placed by its
    `source_ts`; a `clock_suspect` reading is never clean)."""
    bounds = MEASURABLE.get(metric)
    query = (select(Reading.value, Reading.source_ts, Reading.quality)
             .where(Reading.person_id == person_id, Reading.metric == metric.value, ~Reading.clock_suspect,
                    Reading.value.is_not(None), Reading.source_ts >= since, Reading.source_ts <= now)
             .order_by(Reading.source_ts.desc(), Reading.id.desc()))
    if bounds is not None:
        query = query.where(Reading.value >= bounds.low, Reading.value <= bounds.high)
    offset = 0
    while True:
        page = session.execute(query.offset(offset).limit(READING_PAGE)).all()
        for value, at, quality in page:
            if not quality and value is not None:
                return ReadingFact(float(value), at)
        if len(page) < READING_PAGE:
            return None
        offset += READING_PAGE


def _scales(session: Session, person_ids: list[int]) -> dict[int, tuple[Literal[1, 2], bool]]:
    """Each person's NEWS2 SpO2 scale and whether on oxygen, as the threshold rule reads them: the
    `spo2_low` setting's `scale` (1 or 2; 0 = the profile's) and `on_oxygen`, else the profile's
    `spo2_scale` and `on_oxygen`; on oxygen counts on Scale 2 only."""
    rows = session.scalars(select(RuleSetting).where(RuleSetting.person_id.in_(person_ids),
                                                     RuleSetting.rule.in_((PROFILE_RULE, RuleId.SPO2_LOW.value))))
    profile: dict[int, dict[str, Any]] = {}
    rule: dict[int, dict[str, Any]] = {}
    for row in rows:
        (profile if row.rule == PROFILE_RULE else rule)[row.person_id] = row.params or {}
    result: dict[int, tuple[Literal[1, 2], bool]] = {}
    for person_id in person_ids:
        own, base = rule.get(person_id, {}), profile.get(person_id, {})
        scale_set = own.get("scale") if own.get("scale") in (1, 2) else base.get("spo2_scale")
        scale: Literal[1, 2] = 2 if scale_set == 2 else 1
        oxygen = own["on_oxygen"] if isinstance(own.get("on_oxygen"), bool) else base.get("on_oxygen") is True
        result[person_id] = (scale, bool(oxygen) and scale == 2)
    return result


def load_facts(session: Session, person_ids: Iterable[int], now: datetime) -> list[PersonFacts]:
    """The facts of these people (those that exist), by id: alerts open in the last 30 days or still
    active, the latest clean SpO2 and pulse of the last 7 days, the SpO2 scale, the frailty entries."""
    ids = sorted(set(person_ids))
    if not ids:
        return []
    names = dict(session.execute(select(Person.id, Person.name).where(Person.id.in_(ids))).all())
    ids = [person_id for person_id in ids if person_id in names]
    since = now - max(RECENT, FALLS_WINDOW)
    alerts: dict[int, list[AlertFact]] = {}
    for alert in session.scalars(select(Alert).where(
            Alert.person_id.in_(ids), or_(Alert.status.in_(ACTIVE), Alert.last_seen_at >= since,
                                          Alert.opened_at >= since)).order_by(Alert.id)):
        alerts.setdefault(alert.person_id, []).append(AlertFact(
            rule=alert.rule, title=alert.title, priority=alert.priority, opened_at=alert.opened_at,
            last_seen_at=alert.last_seen_at, status=alert.status, outcome=alert.outcome,
            repeat_count=alert.repeat_count))
    scales = _scales(session, ids)
    frailty = trajectories(session, ids)
    facts = []
    for person_id in ids:
        scale, oxygen = scales[person_id]
        trajectory = frailty.get(person_id)
        facts.append(PersonFacts(
            person_id=person_id, name=names[person_id], alerts=tuple(alerts.get(person_id, ())),
            spo2=_latest_clean(session, person_id, Metric.SPO2, now - RECENT, now),
            pulse=_latest_clean(session, person_id, Metric.PULSE_RATE, now - RECENT, now),
            spo2_scale=scale, on_oxygen=oxygen, frailty=trajectory.current if trajectory else None,
            frailty_since=trajectory.since if trajectory else None,
            frailty_before=trajectory.before if trajectory else None))
    return facts


def ranked_caseload(session: Session, person_ids: Iterable[int], now: datetime) -> list[Risk]:
    """These people, scored at `now` and ordered by `rank`."""
    return rank(assess(facts, now) for facts in load_facts(session, person_ids, now))
