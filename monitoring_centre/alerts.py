"""Stored alerts and their life cycle.

open → acknowledged → in_progress → resolved → closed, every transition kept with who
and when. While an alert for a person and condition is open, a repeat of the condition
counts against it instead of opening another.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitoring_centre import alert_observers
from monitoring_centre.storage import Alert, AlertTransition, utc_now


class AlertState(StrEnum):
    """Where an alert is in its life cycle; stored as its value in `alerts.status` and
    `alert_transitions.from_status` / `to_status`."""

    OPEN = "open"
    """Raised; nobody has picked it up yet (the escalation runs)."""
    ACKNOWLEDGED = "acknowledged"
    """An operator has picked it up."""
    IN_PROGRESS = "in_progress"
    """Someone is dealing with it (a responder accepted and is on the way)."""
    RESOLVED = "resolved"
    """Dealt with, with an outcome code (or `all_clear` when the condition recovered)."""
    CLOSED = "closed"
    """Reviewed and filed."""


ACTIVE = (AlertState.OPEN, AlertState.ACKNOWLEDGED, AlertState.IN_PROGRESS)
"""States in which an alert still needs someone; at most one per person, rule and subject."""
ENDED = (AlertState.RESOLVED, AlertState.CLOSED)
NEXT_STATES: dict[AlertState, tuple[AlertState, ...]] = {
    AlertState.OPEN: (AlertState.ACKNOWLEDGED, AlertState.RESOLVED),
    AlertState.ACKNOWLEDGED: (AlertState.IN_PROGRESS, AlertState.RESOLVED),
    AlertState.IN_PROGRESS: (AlertState.RESOLVED,),
    AlertState.RESOLVED: (AlertState.CLOSED,),
    AlertState.CLOSED: (),
}
OUTCOMES: dict[str, str] = {
    "responder_visited": "a responder visited",
    "ambulance_called": "the emergency services were called",
    "resolved_by_call": "spoken to; no visit needed",
    "false_alarm": "pressed or triggered by accident",
    "technical": "an equipment or connection fault; the person was not at risk",
}
"""How an operator closes an alert, in the staff's words (a label only: what the operator must
add, such as the reason nobody visits, is said next to the resolve form's field). "If in doubt,
go out": a decision not to visit is recorded with its reason (TSA; domain brief), so
`resolved_by_call` needs a note. The detection engine closes a recovered condition itself, with
the outcome `all_clear`."""
ALL_CLEAR = "all_clear"
PLAIN_OUTCOMES: dict[str, str] = {
    "responder_visited": "someone came to see {you}",
    "ambulance_called": "the centre called an ambulance",
    "resolved_by_call": "someone spoke to {you}; no visit was needed",
    "false_alarm": "it went off by accident; nobody needed to come",
    "technical": "a fault in the equipment or its connection; nothing was wrong with {you}",
    ALL_CLEAR: "it settled by itself",
}
"""The same outcomes for the person and their family, `{you}` being "you" or the person's first name."""
NEEDS_A_REASON = frozenset({"resolved_by_call"})
MAX_EVIDENCE = 50
"""Evidence kept on the alert itself; every message stays in the events table."""


class TransitionRefused(ValueError):
    pass


class Condition(Protocol):
    """What an alert is raised for: the detection engine's `Raise`, or a catalogue entry
    (`detection.rules.Rule`). Only the rule name, the title and the priority are read."""

    @property
    def rule(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def priority(self) -> int: ...


class NamedRule(Protocol):
    @property
    def rule(self) -> str: ...


def active_alert(session: Session, person_id: int, rule: str, subject: str, *, locked: bool = False) -> Alert | None:
    """The active alert of this condition, if any. `locked`: read `FOR UPDATE` and freshly loaded, so that
    what the caller writes to it is never based on a count another transaction has since changed."""
    query = select(Alert).where(
        Alert.person_id == person_id, Alert.rule == rule, Alert.subject == subject, Alert.status.in_(ACTIVE)
    )
    if locked:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


def raise_alert(
    session: Session, *, person_id: int, hub_id: str, rule: Condition, subject: str, at: datetime,
    evidence: dict[str, Any], why: str, detail: dict[str, Any] | None = None,
) -> Alert:
    """Open an alert, or count a repeat on the one already open for this condition.

    `detail` is the detection engine's explanation (thresholds, baseline, window); it is
    kept on the alert when it opens, and each repeat adds its evidence only.

    The open alert is read locked (`FOR UPDATE`, freshly loaded), so two transactions counting a
    repeat on it at once (two threads of a worker, or two workers during a takeover) count two: each
    waits for the other's commit and adds to what it wrote, never to a stale count."""
    alert = active_alert(session, person_id, rule.rule, subject, locked=True)
    if alert is not None:
        alert.repeat_count += 1
        alert.last_seen_at = max(alert.last_seen_at, at)
        alert.priority = min(alert.priority, int(rule.priority))
        explanation = dict(alert.explanation)
        explanation["evidence"] = [*explanation.get("evidence", []), evidence][-MAX_EVIDENCE:]
        alert.explanation = explanation
        return alert
    alert = Alert(
        person_id=person_id, hub_id=hub_id, rule=rule.rule, subject=subject, title=rule.title,
        priority=int(rule.priority), status=AlertState.OPEN, opened_at=at, last_seen_at=at, repeat_count=0,
        explanation={"rule": rule.rule, "why": why, "evidence": [evidence], **({"detail": detail} if detail else {})},
    )
    session.add(alert)
    session.flush()
    _log(session, alert, None, AlertState.OPEN, f"system:{rule.rule}", why)
    return alert


def clear_alert(
    session: Session, *, person_id: int, rule: NamedRule | str, subject: str, evidence: dict[str, Any]
) -> Alert | None:
    """The all-clear: the condition has recovered, so its open alert is resolved."""
    name = rule if isinstance(rule, str) else rule.rule
    alert = active_alert(session, person_id, name, subject)
    if alert is None:
        return None
    explanation = dict(alert.explanation)
    explanation["all_clear"] = evidence
    alert.explanation = explanation
    transition(session, alert, AlertState.RESOLVED, f"system:{name}", "all clear: the condition recovered", "all_clear")
    return alert


def transition(session: Session, alert: Alert, to: AlertState, by: str, note: str = "",
               outcome: str | None = None) -> None:
    """Move the alert to `to` and log who did it; `TransitionRefused` if `NEXT_STATES` does not allow it,
    or when resolving without an outcome code."""
    if to not in NEXT_STATES[AlertState(alert.status)]:
        raise TransitionRefused(f"an alert that is {alert.status} cannot become {to}")
    if to == AlertState.RESOLVED and not outcome:
        raise TransitionRefused("resolving an alert needs an outcome code")
    _log(session, alert, alert.status, to, by, note)
    alert_observers.written(session, alert, AlertState(alert.status), to, by)  # told once committed
    alert.status = to
    if outcome:
        alert.outcome = outcome


def _log(session: Session, alert: Alert, before: str | None, after: str, by: str, note: str) -> None:
    session.add(AlertTransition(alert_id=alert.id, at=utc_now(), from_status=before, to_status=after, by=by, note=note))
