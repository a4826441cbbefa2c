"""The centre's answer-time KPIs (TEC Quality / TSA Quality Standards Framework), from the alert
history: how many alarm calls came in, how fast an operator answered them, how fast a responder
accepted and the matter was resolved, with what outcome, and which calls need an exception report.

Every definition, formula and edge case is in docs/kpis.md; in short:
- a **call** is one alert raised in the window `[from, to)` (by the time of its `open`
  transition, i.e. when it reached the centre); its repeats are the same call. A nurse's review task
  (`detection.rules.CLINICAL_REVIEW`: a trend over days, a missed measurement) is not a call: the
  operators never see it in their queue, so it is left out;
- it is **answered** by the first transition out of `open` that one of the centre's accounts
  made (`answers`): an operator acknowledging it, or resolving it straight away. The detection
  engine's all-clear and a responder's accept link answer nothing for the centre;
- the history is read as it stood at `to` (transitions after it are not read), and ages are
  taken at `as_of`, the earlier of `to` and now: a past window's figures never change;
- alarm calls are priorities 1 to 3 (`ALARM_CALL_LEAST_URGENT`), judged against the targets;
  priority 4 and above (supervision, restorals, routine) are reported apart, without targets;
- medians and 90th percentiles are nearest-rank (`nearest_rank`).

`read_calls` reads the window in one query; `report` is pure. `AnswerTimeMetrics` gives the same
times to /metrics as histograms, observed as each transition commits (`alert_observers`).
"""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from itertools import groupby

from prometheus_client import CollectorRegistry, Histogram
from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased, sessionmaker

from detection.rules import CLINICAL_REVIEW
from monitoring_centre.alert_observers import TransitionWritten, observe_transitions
from monitoring_centre.alerts import AlertState
from monitoring_centre.storage import Alert, AlertTransition, User
from telecare_protocol import Priority

TEC_QUALITY = ("TEC Quality (TSA Quality Standards Framework), monitoring: 97.5 % of alarm calls answered "
               "within 60 s and 99 % within 180 s (domain brief, 'Monitoring-centre practice')")


@dataclass(frozen=True)
class AnswerTarget:
    """A share of alarm calls to answer within a time: "97.5 % within 60 s"."""

    within_s: int
    fraction: float
    """0 to 1: 0.975 is 97.5 %."""
    source: str


ANSWER_TARGETS: tuple[AnswerTarget, ...] = (
    AnswerTarget(60, 0.975, TEC_QUALITY),
    AnswerTarget(180, 0.99, TEC_QUALITY),
)
"""The call-answer targets, the lower end of the TSA's 97.5–98.5 % band (a contract may ask more)."""
EXCEPTION_REPORT_AFTER_S = 180
"""A call answered after this many seconds needs an exception report (TSA: "anything answered after
3 minutes needs an exception report"; domain brief)."""
ALARM_CALL_LEAST_URGENT = Priority.HIGH
"""Alarm calls are priorities 1 to 3: medical, fire or panic (1) and the intermediate levels (2, 3).
Level 4 is supervision or low battery, level 5 restorals (alarm-receiving software's five levels,
TSA; domain brief): about the equipment, not a person asking for help, so not the "alarm calls"
TEC Quality's call-answer targets are about (docs/kpis.md)."""
DEFAULT_WINDOW = timedelta(days=7)
"""The window when `from` is not given: the 7 days before `to` (issue "The operator's workstation",
item 4)."""
MAX_WINDOW = timedelta(days=400)
"""The longest window (issue "The operator's workstation", item 4): a year with a month to spare;
the query reads every transition of the window's alerts in one read-only transaction."""
HISTOGRAM_BUCKETS_S: tuple[float, ...] = (10, 30, 60, 120, 180, 300, 600, 1800, 2700, 3600, 4 * 3600, 24 * 3600)
"""Upper bounds (s) of the /metrics histograms: 60 and 180 are TEC Quality's answer targets; 300 a
keyholder's step (`alerting/policy.py`); 1800 the forgotten-acknowledgement reminder; 2700 and 3600
the TSA mobile response (90 % within 45 min, all within 60; domain brief); 10 and 30 to see a good
centre's spread; 4 h and a day for what waits."""


class WindowRefused(ValueError):
    """A window the KPIs are not computed for; `bound` is "from" or "to", the one to change."""

    def __init__(self, bound: str, message: str) -> None:
        super().__init__(message)
        self.bound = bound


def as_utc(moment: datetime) -> datetime:
    """A time with no offset is UTC; one with an offset is converted to UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def window(start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """The window `[from, to)` in UTC: `to` defaults to `now`, `from` to `DEFAULT_WINDOW` before `to`.
    Raises `WindowRefused` when a bound is beyond the calendar in UTC, `from` is not before `to`,
    or the window is longer than `MAX_WINDOW`."""
    try:
        end = as_utc(end) if end is not None else now
    except OverflowError:
        raise WindowRefused("to", "`to` is beyond the calendar in UTC") from None
    try:
        start = as_utc(start) if start is not None else end - DEFAULT_WINDOW
    except OverflowError:
        raise WindowRefused("from" if start is not None else "to",
                            "the window begins before the calendar does (UTC)") from None
    if start >= end:
        raise WindowRefused("to", "`to` must be after `from`")
    if end - start > MAX_WINDOW:
        raise WindowRefused("from", f"a window of at most {MAX_WINDOW.days} days")
    return start, end


@dataclass(frozen=True)
class Call:
    """One alert raised in the window, with its history as it stood at the window's end."""

    alert_id: int
    priority: int
    raised_at: datetime
    """Its `open` transition: when it reached the centre (not the device's own event time)."""
    left_open_at: datetime | None
    """The first transition out of `open`, if any before `to`."""
    left_open_by_account: bool
    """Whether one of the centre's accounts made that transition (`answers`)."""
    accepted_at: datetime | None
    """Its `in_progress` transition: a responder accepted it (by an accept link, which also sets
    `notifications.accepted_at` in the same transaction)."""
    resolved_at: datetime | None
    outcome: str | None
    """The outcome code it was resolved with (`alerts.OUTCOMES`, or `all_clear`), once resolved."""

    @property
    def answered_at(self) -> datetime | None:
        return self.left_open_at if self.left_open_by_account else None


def answers(before: AlertState, by_account: bool) -> bool:
    """Whether a transition answers the call: it leaves `open` (to `acknowledged`, or straight to
    `resolved`) and one of the centre's accounts made it. The one definition, for the KPIs and the
    /metrics histogram alike."""
    return before == AlertState.OPEN and by_account


def read_calls(session: Session, start: datetime, end: datetime) -> list[Call]:
    """The calls raised in `[start, end)`, each with its transitions before `end`, in one query
    (the alert, its `open` transition in the window, each transition, and the account it names)."""
    raised, step = aliased(AlertTransition), aliased(AlertTransition)
    rows = session.execute(
        select(Alert.id.label("alert_id"), Alert.priority, Alert.outcome, raised.at.label("raised_at"),
               step.at, step.from_status, step.to_status, User.id.label("account_id"))
        .join(raised, and_(raised.alert_id == Alert.id, raised.to_status == AlertState.OPEN.value))
        .join(step, step.alert_id == Alert.id)
        .outerjoin(User, User.username == step.by)
        .where(raised.at >= start, raised.at < end, step.at < end, Alert.rule.not_in(CLINICAL_REVIEW))
        .order_by(Alert.id, step.at, step.id)
    )
    calls = []
    for _alert_id, group in groupby(rows, key=lambda row: row.alert_id):
        steps = list(group)
        first = steps[0]
        left = next((s for s in steps if s.from_status == AlertState.OPEN), None)
        accepted = next((s.at for s in steps if s.to_status == AlertState.IN_PROGRESS), None)
        resolved = next((s.at for s in steps if s.to_status == AlertState.RESOLVED), None)
        calls.append(Call(
            alert_id=first.alert_id, priority=first.priority, raised_at=first.raised_at,
            left_open_at=left.at if left is not None else None,
            left_open_by_account=left is not None and answers(AlertState.OPEN, left.account_id is not None),
            accepted_at=accepted, resolved_at=resolved, outcome=first.outcome if resolved is not None else None,
        ))
    return calls


@dataclass(frozen=True)
class Durations:
    """Times from a call's arrival to something, in seconds: how many, their median and 90th
    percentile (nearest-rank), None when there are none."""

    count: int
    median_s: float | None
    p90_s: float | None


@dataclass(frozen=True)
class TargetResult:
    """How a group of calls did against one `AnswerTarget`."""

    within_s: int
    target: float
    answered_within: int
    """Answered by an operator within `within_s` seconds (inclusive: 60.0 s is within 60 s)."""
    decided: int
    """Calls whose result against this target is known at `as_of`: answered (in time or late), ended
    without an answer, or still open and already older than `within_s`. The fraction's denominator."""
    pending: int
    """Still open at `as_of` and not older than `within_s`: may yet be answered in time; not counted."""
    fraction: float | None
    """`answered_within / decided`; None when nothing is decided."""
    met: bool | None
    """`fraction >= target`; None when nothing is decided, or the target does not apply (priority 4 and above)."""


@dataclass(frozen=True)
class Figures:
    """The KPIs of one group of calls (alarm calls, supervision, a priority, a day)."""

    alarms: int
    """Calls raised: one alert is one call, whatever its repeats."""
    answered: int
    targets_apply: bool
    """Whether TEC Quality's targets apply: alarm calls (priorities 1 to 3) only."""
    within: tuple[TargetResult, ...]
    time_to_answer: Durations
    time_to_accept: Durations
    """To a responder accepting (the `in_progress` transition)."""
    time_to_resolve: Durations
    outcomes: Mapping[str, int]
    """Resolved calls by outcome code (`alerts.OUTCOMES`, `all_clear`)."""
    answered_late_ids: tuple[int, ...]
    """Alert ids answered after `EXCEPTION_REPORT_AFTER_S`: each needs an exception report (TSA)."""
    unanswered_ids: tuple[int, ...]
    """Alert ids still open at `as_of`: nobody has answered or ended them."""
    ended_unanswered_ids: tuple[int, ...]
    """Alert ids that left `open` without an operator: the detection engine's all-clear, or a
    responder's accept link. Not answered within any target; listed for review."""


@dataclass(frozen=True)
class PriorityFigures(Figures):
    priority: int


@dataclass(frozen=True)
class DayFigures:
    """The calls raised on one calendar day (UTC, or the zone `report` was given)."""

    day: date
    alarm_calls: Figures
    supervision: Figures


@dataclass(frozen=True)
class KpiReport:
    start: datetime
    """`from`, UTC, inclusive."""
    end: datetime
    """`to`, UTC, exclusive: the history is read as it stood then."""
    as_of: datetime
    """The earlier of `to` and now: the time at which open calls' ages are taken."""
    targets: tuple[AnswerTarget, ...]
    alarm_calls: Figures
    """Priorities 1 to 3, judged against `targets`."""
    supervision: Figures
    """Priority 4 and above (supervision, restorals, routine): reported, not judged."""
    by_priority: tuple[PriorityFigures, ...]
    """Each priority of `telecare_protocol.Priority`, and any other that occurs, in order."""
    by_day: tuple[DayFigures, ...]
    """Each day (of `report`'s zone) the window touches, in order, with no gaps (a day without calls has zeros)."""


def nearest_rank(ordered: Sequence[float], percent: int) -> float | None:
    """The nearest-rank percentile of values sorted ascending: the value at rank ⌈percent × n / 100⌉
    (1-based). The median is percent 50: for an even count, the lower of the two middle values."""
    if not ordered:
        return None
    rank = max(1, -(-percent * len(ordered) // 100))
    return ordered[rank - 1]


def durations(values: Iterable[float]) -> Durations:
    ordered = sorted(values)
    return Durations(len(ordered), nearest_rank(ordered, 50), nearest_rank(ordered, 90))


def _seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier) / timedelta(seconds=1)


def figures(calls: Sequence[Call], as_of: datetime, targets_apply: bool,
            targets: Sequence[AnswerTarget] = ANSWER_TARGETS) -> Figures:
    """The KPIs of `calls`, with open calls aged at `as_of` (pure)."""
    answer_s = {c.alert_id: _seconds(c.answered_at, c.raised_at) for c in calls if c.answered_at is not None}
    still_open = [c for c in calls if c.left_open_at is None]
    ended_unanswered = [c for c in calls if c.left_open_at is not None and not c.left_open_by_account]
    results = []
    for target in targets:
        within = sum(1 for s in answer_s.values() if s <= target.within_s)
        overdue = sum(1 for c in still_open if _seconds(as_of, c.raised_at) > target.within_s)
        decided = len(answer_s) + len(ended_unanswered) + overdue
        fraction = within / decided if decided else None
        met = None if fraction is None or not targets_apply else fraction >= target.fraction
        results.append(TargetResult(target.within_s, target.fraction, within, decided, len(still_open) - overdue,
                                    fraction, met))
    resolved = [c for c in calls if c.resolved_at is not None]
    return Figures(
        alarms=len(calls), answered=len(answer_s), targets_apply=targets_apply, within=tuple(results),
        time_to_answer=durations(answer_s.values()),
        time_to_accept=durations(_seconds(c.accepted_at, c.raised_at) for c in calls if c.accepted_at is not None),
        time_to_resolve=durations(_seconds(c.resolved_at, c.raised_at) for c in calls if c.resolved_at is not None),
        outcomes=dict(sorted(Counter(c.outcome or "unknown" for c in resolved).items())),
        answered_late_ids=tuple(sorted(i for i, s in answer_s.items() if s > EXCEPTION_REPORT_AFTER_S)),
        unanswered_ids=tuple(sorted(c.alert_id for c in still_open)),
        ended_unanswered_ids=tuple(sorted(c.alert_id for c in ended_unanswered)),
    )


def is_alarm_call(priority: int) -> bool:
    return priority <= ALARM_CALL_LEAST_URGENT


def report(calls: Sequence[Call], start: datetime, end: datetime, now: datetime, zone: tzinfo = UTC) -> KpiReport:
    """The KPIs of the calls `read_calls` gave for `[start, end)`, aged at the earlier of `end` and `now`;
    `by_day` in the calendar days of `zone` (UTC unless given: the operator's page uses the centre's
    local time, where a night's calls straddle midnight in summer as in winter)."""
    as_of = min(end, now)
    alarm_calls = [c for c in calls if is_alarm_call(c.priority)]
    supervision = [c for c in calls if not is_alarm_call(c.priority)]
    priorities = sorted({int(p) for p in Priority} | {c.priority for c in calls})
    by_priority = tuple(
        PriorityFigures(**vars(figures([c for c in calls if c.priority == p], as_of, is_alarm_call(p))), priority=p)
        for p in priorities)
    days = []
    first, last = start.astimezone(zone).date(), (end - timedelta(microseconds=1)).astimezone(zone).date()
    for n in range((last - first).days + 1):  # never a day past `last`: the window may end with the calendar
        day = first + timedelta(days=n)
        on_day = [c for c in calls if c.raised_at.astimezone(zone).date() == day]
        days.append(DayFigures(day, figures([c for c in on_day if is_alarm_call(c.priority)], as_of, True),
                               figures([c for c in on_day if not is_alarm_call(c.priority)], as_of, False)))
    return KpiReport(start=start, end=end, as_of=as_of, targets=ANSWER_TARGETS,
                     alarm_calls=figures(alarm_calls, as_of, True), supervision=figures(supervision, as_of, False),
                     by_priority=by_priority, by_day=tuple(days))


class AnswerTimeMetrics:
    """/metrics: the KPIs' times as histograms (seconds from the alert's arrival at the centre, by
    priority), each observed once its transition commits (`alert_observers.observe_transitions`):
    - `telecare_alert_answer_seconds`: to an operator's answer (`answers`);
    - `telecare_alert_accept_seconds`: to a responder accepting (`in_progress`);
    - `telecare_alert_resolve_seconds`: to its resolution (by anyone, the all-clear included).
    The priority is the alert's when the transition was written. Buckets: `HISTOGRAM_BUCKETS_S`.
    A nurse's review task (`CLINICAL_REVIEW`) is no call, as in `read_calls`: not observed."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def histogram(name: str, what: str) -> Histogram:
            return Histogram(name, f"Seconds from an alert reaching the centre to {what}, by priority", ["priority"],
                             buckets=HISTOGRAM_BUCKETS_S, registry=registry)

        self.answer = histogram("telecare_alert_answer_seconds", "an operator answering it")
        self.accept = histogram("telecare_alert_accept_seconds", "a responder accepting it")
        self.resolve = histogram("telecare_alert_resolve_seconds", "its resolution")

    def __call__(self, change: TransitionWritten) -> None:
        if change.rule in CLINICAL_REVIEW:
            return
        priority = str(change.priority)
        if answers(change.before, change.by_account):
            self.answer.labels(priority).observe(change.since_raised_s)
        if change.after == AlertState.IN_PROGRESS:
            self.accept.labels(priority).observe(change.since_raised_s)
        if change.after == AlertState.RESOLVED:
            self.resolve.labels(priority).observe(change.since_raised_s)


def observe_answer_times(sessions: sessionmaker[Session], registry: CollectorRegistry) -> AnswerTimeMetrics:
    """`AnswerTimeMetrics` on `registry`, told of every transition committed through a session of `sessions`
    (the centre calls this once, as it starts: `centre_app/centre.py`)."""
    metrics = AnswerTimeMetrics(registry)
    observe_transitions(sessions, metrics)
    return metrics
