"""The nurse's worklist: trend alerts and missed measurements to review, and the review notes that
close them ("Reviewed, plan: ...").

A review task is an alert of a trend rule (`detection.rules.RuleKind.TREND`: SPC, slope,
variability) or of `missed_measurement`, for a person the nurse may see, that has no review note
yet and was open in the last `TASK_WINDOW` (or is still active). Writing the note (`review`)
stores it (`storage.ReviewNote`), audits it with the task's state before and after, and closes
the task; the alert itself keeps its state (the operators' queue and the engine own it: a
review is a clinical note, not an outcome of the alarm's handling). The FHIR record of the note
is built by the caller (`alerting.review_record`), which sits above this layer.

Errors: `ReviewRefused` (no such task, already reviewed, or an empty plan), with words to show.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from detection.rules import CATALOGUE, RuleId, RuleKind, of_kind
from monitoring_centre import audit
from monitoring_centre.alerts import ACTIVE
from monitoring_centre.storage import Alert, Person, ReviewNote, utc_now

TASK_RULES: tuple[str, ...] = (*(rule.value for rule in of_kind(RuleKind.TREND)), RuleId.MISSED_MEASUREMENT.value)
"""The rules whose alerts are review tasks: trends (a review-today change over days) and missed
scheduled measurements (the nurse does not know how the person is)."""
TASK_WINDOW = timedelta(days=30)
"""Tasks older than this (and no longer active) leave the worklist: a month, the span of the
nurse's 30-day chart (local choice)."""
MAX_PLAN = 2000
"""The longest plan kept (characters)."""


class ReviewRefused(ValueError):
    """The note cannot be written: the words say why."""


@dataclass(frozen=True)
class Task:
    """One review task: the alert, its person, what kind of task it is, and its evidence in words."""

    alert_id: int
    person_id: int
    person_name: str
    rule: str
    kind: str
    """"trend" or "missed measurement"."""
    title: str
    opened_at: datetime
    last_seen_at: datetime
    repeats: int
    alert_status: str
    evidence: tuple[str, ...]
    """What the engine saw, in words: the baseline, the days beyond it, the window."""


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def evidence_words(rule: str, detail: dict[str, Any]) -> tuple[str, ...]:
    """The alert's explanation (`Alert.explanation["detail"]`) in a few sentences, per rule."""
    words: list[str] = []
    if rule == RuleId.SPO2_TREND_SPC:
        baseline = detail.get("baseline") or {}
        if baseline:
            words.append(f"7-day baseline: mean {_number(baseline.get('mean'))} %, SD {_number(baseline.get('sd'))},"
                         f" lower limit {_number(baseline.get('limit'))} % ({baseline.get('days')} days)")
        for day in detail.get("days", []):
            state = "below the limit" if day.get("beyond") else "within the limit"
            words.append(f"{day.get('date')}: daily mean {_number(day.get('mean'))} % from {day.get('readings')} "
                         f"readings, {state} ({_number(day.get('limit'))} %)")
    elif rule == RuleId.SPO2_TREND_SLOPE:
        window = detail.get("window") or {}
        words.append(f"Slope {_number(detail.get('slope_per_day'))} per day (standard error "
                     f"{_number(detail.get('standard_error'))}) over {_number(window.get('hours'))} h; "
                     f"alerts at {_number(detail.get('threshold_per_day'))} per day")
        corroboration = detail.get("corroboration") or {}
        if "baseline_mean" in corroboration:
            words.append(f"Earlier baseline mean {_number(corroboration['baseline_mean'])} (SD "
                         f"{_number(corroboration.get('baseline_sd'))}); last 24 h mean "
                         f"{_number(corroboration.get('last_24h_mean'))}")
    elif rule == RuleId.SPO2_VARIABILITY:
        for key, value in detail.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                words.append(f"{key.replace('_', ' ')}: {_number(value)}")
    elif rule == RuleId.MISSED_MEASUREMENT:
        window = detail.get("window") or ["?", "?"]
        words.append(f"Measurement due {detail.get('scheduled', '?')}; window {window[0]} to {window[-1]}")
        last = detail.get("last_clean_reading")
        words.append(f"Last clean reading: {last}" if last else "No clean reading in the window")
    source = detail.get("source")
    if source:
        words.append(f"Rule's source: {source}")
    return tuple(words[:12])


def _task(alert: Alert, name: str) -> Task:
    kind = "missed measurement" if alert.rule == RuleId.MISSED_MEASUREMENT else "trend"
    detail = alert.explanation.get("detail") if isinstance(alert.explanation, dict) else None
    title = CATALOGUE[RuleId(alert.rule)].title if alert.rule in CATALOGUE else alert.rule
    return Task(alert_id=alert.id, person_id=alert.person_id, person_name=name, rule=alert.rule, kind=kind,
                title=alert.title or title, opened_at=alert.opened_at, last_seen_at=alert.last_seen_at,
                repeats=alert.repeat_count, alert_status=alert.status,
                evidence=evidence_words(alert.rule, detail if isinstance(detail, dict) else {}))


def open_tasks(session: Session, person_ids: Iterable[int] | None, now: datetime) -> list[Task]:
    """The review tasks of these people (None: everyone), oldest first: alerts of `TASK_RULES`
    with no review note, active or last seen in the last `TASK_WINDOW`."""
    query = (select(Alert, Person.name).join(Person, Person.id == Alert.person_id)
             .outerjoin(ReviewNote, ReviewNote.alert_id == Alert.id)
             .where(Alert.rule.in_(TASK_RULES), ReviewNote.id.is_(None),
                    or_(Alert.status.in_(ACTIVE), Alert.last_seen_at >= now - TASK_WINDOW))
             .order_by(Alert.opened_at, Alert.id))
    if person_ids is not None:
        query = query.where(Alert.person_id.in_(list(person_ids)))
    return [_task(alert, name) for alert, name in session.execute(query)]


def task(session: Session, alert_id: int) -> Task | None:
    """The task of this alert if it is one (reviewed or not), else None."""
    row = session.execute(select(Alert, Person.name).join(Person, Person.id == Alert.person_id)
                          .where(Alert.id == alert_id, Alert.rule.in_(TASK_RULES))).first()
    return _task(row[0], row[1]) if row else None


def notes(session: Session, person_id: int, limit: int = 50) -> list[ReviewNote]:
    """The person's review notes, newest first."""
    return list(session.scalars(select(ReviewNote).where(ReviewNote.person_id == person_id)
                                .order_by(ReviewNote.written_at.desc(), ReviewNote.id.desc()).limit(limit)))


def review(session: Session, alert: Alert, plan: str, *, by: str) -> ReviewNote:
    """Write the nurse's note on a task's alert and close the task. Audited `review_task` with the
    task's state before ("open") and after ("reviewed", with the plan). Raises `ReviewRefused`
    when the alert is no task, already has a note, or the plan is empty or too long."""
    plan = plan.strip()
    if alert.rule not in TASK_RULES:
        raise ReviewRefused("only trend alerts and missed measurements are review tasks")
    if not plan:
        raise ReviewRefused("write the plan: what was found and what happens next")
    if len(plan) > MAX_PLAN:
        raise ReviewRefused(f"a plan is at most {MAX_PLAN} characters")
    if session.scalar(select(ReviewNote.id).where(ReviewNote.alert_id == alert.id)) is not None:
        raise ReviewRefused("this task was already reviewed")
    note = ReviewNote(alert_id=alert.id, person_id=alert.person_id, plan=plan, written_by=by, written_at=utc_now(),
                      record_bundle="", record_status="kept", record_detail="")
    session.add(note)
    session.flush()
    audit.record(session, by, "review_task", [alert.person_id], json.dumps(
        {"alert": alert.id, "rule": alert.rule, "before": {"task": "open"},
         "after": {"task": "reviewed", "plan": plan}}, sort_keys=True))
    return note
