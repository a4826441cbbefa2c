"""Calls: the operators' queue, one call per person with any active alert that is not a nurse's
review task (`detection.rules.CLINICAL_REVIEW`: a trend over days, a missed measurement, which the
nurses review from their caseload and which no operator answers).

A press and a fall from one person are one call, with two alerts; two people are two calls.
A call is most urgent first (its most urgent alert's priority, 1 = emergency), then longest
waiting (the earliest `opened_at` of its most urgent alerts: a help press made a minute ago by
someone whose battery-low alert is two days old has waited a minute).

One operator takes a call (`take`): every active alert of the person is marked with the
operator's username and the time (`Alert.taken_by`, `taken_at`), so another operator sees who
has it and cannot take it too (`CallTaken`, the API's 409). Taking a call answers it: every
`open` alert of the call is acknowledged by the operator (the escalation stops, and the KPIs count
it answered then, `monitoring_centre/kpis.py`). An alert that opens for the person while the call
is taken joins the call and its holder but stays `open`: the console shows it as new within the
call, and the holder acknowledges it explicitly (taking the call again, or "Acknowledge").
`release` gives it back. Both are audited ("take_call", "release_call") with the holder before
and after, `{"alerts": [7, 9], "before": {"taken_by": null}, "after": {"taken_by": "olive"}}`
(a take also names the alerts it acknowledged, `"acknowledged": [7]`), and the caller commits.
The call ends when its last alert is resolved.
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from detection.rules import CLINICAL_REVIEW
from monitoring_centre import audit
from monitoring_centre.alerts import ACTIVE, AlertState, transition
from monitoring_centre.storage import Alert, AlertTransition, Person, User, utc_now

_IN_A_CALL = (Alert.status.in_(ACTIVE), Alert.rule.not_in(CLINICAL_REVIEW))
"""The alerts calls are made of: active, and not a nurse's review task."""


@dataclass(frozen=True)
class CallAlert:
    """One alert of a call."""

    id: int
    rule: str
    title: str
    priority: int
    status: str
    opened_at: datetime
    last_seen_at: datetime
    repeat_count: int


@dataclass(frozen=True)
class Call:
    """Every active alert of one person."""

    person_id: int
    person_name: str
    priority: int
    """The most urgent of its alerts (1 emergency ... 5 restoral)."""
    opened_at: datetime
    """When the earliest of its most urgent alerts opened: how long the call has waited."""
    taken_by: str | None
    """The operator's username, or None when nobody has taken it."""
    taken_by_name: str | None
    """The operator's display name (their username if they have none)."""
    taken_at: datetime | None
    alerts: tuple[CallAlert, ...]
    """Most urgent first, then oldest."""


@dataclass(frozen=True)
class CallFilter:
    """Which calls to list. A call is listed when its person's name contains `name` (any case)
    and at least one of its alerts has one of `priorities`, `rule` and one of `statuses` (each
    filter that is set); the call then shows all its alerts."""

    priorities: frozenset[int] = frozenset()
    rule: str | None = None
    statuses: frozenset[str] = frozenset()
    name: str | None = None

    def matches(self, alert: Alert) -> bool:
        return ((not self.priorities or alert.priority in self.priorities)
                and (self.rule is None or alert.rule == self.rule)
                and (not self.statuses or alert.status in self.statuses))


class CallTaken(Exception):
    """Another operator holds the call. The message is what the API answers with:
    "taken by Olive Operator at 2026-11-30T03:12:00+00:00"."""

    def __init__(self, name: str, at: datetime | None) -> None:
        self.name, self.at = name, at
        super().__init__(f"taken by {name} at {at.isoformat() if at else 'an unknown time'}")


class NoCall(LookupError):
    """The person has no active alert: there is no call to take or release."""


def display_names(session: Session, usernames: Iterable[str | None]) -> dict[str, str]:
    """username → display name (the username itself when the account has none, or is gone)."""
    wanted = {name for name in usernames if name}
    if not wanted:
        return {}
    found = {user.username: user.display_name or user.username
             for user in session.scalars(select(User).where(User.username.in_(wanted)))}
    return {name: found.get(name, name) for name in wanted}


def _holder(alerts: Sequence[Alert]) -> tuple[str | None, datetime | None]:
    taken = [alert for alert in alerts if alert.taken_by]
    if not taken:
        return None, None
    first = min(taken, key=lambda alert: (alert.taken_at or alert.opened_at, alert.id))
    return first.taken_by, first.taken_at


def group(session: Session, rows: Sequence[tuple[Alert, str]]) -> list[Call]:
    """Active alerts (with their person's name) grouped into calls, in queue order."""
    by_person: dict[int, list[Alert]] = {}
    names: dict[int, str] = {}
    for alert, name in rows:
        by_person.setdefault(alert.person_id, []).append(alert)
        names[alert.person_id] = name
    holders = {person_id: _holder(alerts) for person_id, alerts in by_person.items()}
    shown = display_names(session, [holder for holder, _at in holders.values()])
    calls = []
    for person_id, alerts in by_person.items():
        alerts.sort(key=lambda alert: (alert.priority, alert.opened_at, alert.id))
        holder, taken_at = holders[person_id]
        priority = min(a.priority for a in alerts)
        calls.append(Call(
            person_id=person_id, person_name=names[person_id], priority=priority,
            opened_at=min(a.opened_at for a in alerts if a.priority == priority), taken_by=holder,
            taken_by_name=shown.get(holder) if holder else None, taken_at=taken_at,
            alerts=tuple(CallAlert(a.id, a.rule, a.title, a.priority, a.status, a.opened_at, a.last_seen_at,
                                   a.repeat_count) for a in alerts)))
    calls.sort(key=lambda call: (call.priority, call.opened_at, call.person_id))
    return calls


def active_calls(session: Session, visible: set[int] | None = None,
                 matching: CallFilter | None = None) -> list[Call]:
    """The calls of the people in `visible` (None: everyone), in queue order, filtered."""
    query = select(Alert, Person.name).join(Person, Person.id == Alert.person_id).where(*_IN_A_CALL)
    if visible is not None:
        query = query.where(Alert.person_id.in_(visible))
    rows = [(alert, name) for alert, name in session.execute(query)]
    if matching is not None:
        needle = (matching.name or "").casefold()
        rows = [(a, n) for a, n in rows if needle in n.casefold()]
        wanted = {a.person_id for a, _n in rows if matching.matches(a)}
        rows = [(a, n) for a, n in rows if a.person_id in wanted]
    return group(session, rows)


def call_of(session: Session, person_id: int) -> Call | None:
    """The person's call, or None when they have no active alert."""
    calls = active_calls(session, {person_id})
    return calls[0] if calls else None


def _active(session: Session, person_id: int) -> list[Alert]:
    return list(session.scalars(select(Alert).where(Alert.person_id == person_id, *_IN_A_CALL)
                                .order_by(Alert.id).with_for_update()))


def take(session: Session, person_id: int, user: User, now: datetime | None = None) -> Call:
    """The operator `user` takes the person's call and so answers it: every `open` alert of the
    call is acknowledged by them (the escalation stops). Taking a call one already holds is
    allowed: an alert that joined since is marked and acknowledged too. Raises `NoCall` when the
    person has no active alert and `CallTaken` when another operator holds it. Audited
    "take_call"; the caller tells the consoles and the escalation (`alerts_changed`)."""
    alerts = _active(session, person_id)
    if not alerts:
        raise NoCall("no active call for this person")
    holder, at = _holder(alerts)
    if holder is not None and holder != user.username:
        raise CallTaken(display_names(session, [holder])[holder], at)
    when = at if holder is not None and at is not None else (now or utc_now())
    acknowledged = []
    for alert in alerts:
        alert.taken_by, alert.taken_at = user.username, when
        if alert.status == AlertState.OPEN:
            transition(session, alert, AlertState.ACKNOWLEDGED, user.username, "took the call")
            acknowledged.append(alert.id)
    _audit(session, user, "take_call", person_id, alerts, holder, user.username, acknowledged)
    session.flush()
    call = call_of(session, person_id)
    assert call is not None
    return call


def release(session: Session, person_id: int, user: User) -> Call:
    """The holder gives the call back (nobody holds it after). Releasing a call nobody holds
    changes nothing. Raises `NoCall` and `CallTaken` as `take`. Audited "release_call"."""
    alerts = _active(session, person_id)
    if not alerts:
        raise NoCall("no active call for this person")
    holder, at = _holder(alerts)
    if holder is not None and holder != user.username:
        raise CallTaken(display_names(session, [holder])[holder], at)
    for alert in alerts:
        alert.taken_by, alert.taken_at = None, None
    _audit(session, user, "release_call", person_id, alerts, holder, None)
    session.flush()
    call = call_of(session, person_id)
    assert call is not None
    return call


def _audit(session: Session, user: User, action: str, person_id: int, alerts: Sequence[Alert], before: str | None,
           after: str | None, acknowledged: Sequence[int] | None = None) -> None:
    fields: dict[str, object] = {"alerts": [alert.id for alert in alerts], "before": {"taken_by": before},
                                 "after": {"taken_by": after}}
    if acknowledged is not None:
        fields["acknowledged"] = list(acknowledged)
    detail = json.dumps(fields, sort_keys=True)
    audit.record(session, user.username, action, [person_id], detail)


def alert_ids(call: Call) -> set[int]:
    return {alert.id for alert in call.alerts}


def same_call(session: Session, person_id: int, alert_ids: Iterable[int], since: datetime,
              until: datetime | None = None) -> set[int]:
    """The alerts of one call, for its notes: `alert_ids` and every other alert of the person that
    was active with them, i.e. resolved at or after `since` (when the call's earliest alert
    opened) and opened before `until` (None: still going). A note written against one alarm
    belongs to the call: the call screen and the handover show them all."""
    query = (select(Alert.id).join(AlertTransition, AlertTransition.alert_id == Alert.id)
             .where(Alert.person_id == person_id, AlertTransition.to_status == AlertState.RESOLVED,
                    AlertTransition.at >= since))
    if until is not None:
        query = query.where(Alert.opened_at <= until)
    return set(alert_ids) | set(session.scalars(query))
