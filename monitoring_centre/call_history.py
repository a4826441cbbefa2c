"""Resolved alerts, searched and paged, newest resolution first: the operators' call history.

An alert is in the history once it is resolved (or closed after). Its times come from its
transitions: when it was first acknowledged, when it was resolved and by whom (a username, or
`system:<rule>` when the condition recovered by itself).
"""

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitoring_centre.alerts import ENDED, AlertState
from monitoring_centre.calls import display_names
from monitoring_centre.storage import Alert, AlertTransition, Person

PAGE_SIZE = 50


@dataclass(frozen=True)
class HistoryFilter:
    """Every filter that is set must hold: the person's name contains `name` (any case), the
    alert opened at or after `opened_from` and before `opened_to`, its rule is `rule`, its
    outcome is `outcome`."""

    name: str | None = None
    opened_from: datetime | None = None
    opened_to: datetime | None = None
    rule: str | None = None
    outcome: str | None = None


@dataclass(frozen=True)
class Resolved:
    id: int
    person_id: int
    person_name: str
    rule: str
    title: str
    priority: int
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime
    outcome: str | None
    resolved_by: str
    """A username, or `system:<rule>` when the condition recovered by itself."""
    resolved_by_name: str
    """Who resolved it, in words: the operator's display name, the responder's name (an accept
    link), or "cleared by itself" (the detection engine's all-clear)."""


def resolver_words(actor: str, names: dict[str, str]) -> str:
    """`Alert` transitions' `by` in words: "olive" → "Olive Operator", "system:fall" → "cleared by
    itself", "responder:2:Susan Hughes" → "Susan Hughes"."""
    if actor.startswith("system:"):
        return "cleared by itself"
    if actor.startswith("responder:"):
        parts = actor.split(":", 2)
        return (parts[2].strip() if len(parts) == 3 else "") or "a responder"
    return names.get(actor, actor)


@dataclass(frozen=True)
class Page:
    items: tuple[Resolved, ...]
    total: int
    page: int
    """1 is the newest."""
    pages: int
    """At least 1, even with nothing found."""


def history(session: Session, matching: HistoryFilter, page: int = 1, visible: set[int] | None = None,
            page_size: int = PAGE_SIZE) -> Page:
    """One page of resolved alerts of the people in `visible` (None: everyone)."""
    resolution = (select(AlertTransition.alert_id, func.max(AlertTransition.at).label("at"))
                  .where(AlertTransition.to_status == AlertState.RESOLVED)
                  .group_by(AlertTransition.alert_id).subquery())
    query = (select(Alert, Person.name, resolution.c.at).join(Person, Person.id == Alert.person_id)
             .join(resolution, resolution.c.alert_id == Alert.id).where(Alert.status.in_(ENDED)))
    if visible is not None:
        query = query.where(Alert.person_id.in_(visible))
    if matching.name:
        escaped = matching.name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Person.name.ilike(f"%{escaped}%", escape="\\"))
    if matching.opened_from is not None:
        query = query.where(Alert.opened_at >= matching.opened_from)
    if matching.opened_to is not None:
        query = query.where(Alert.opened_at < matching.opened_to)
    if matching.rule:
        query = query.where(Alert.rule == matching.rule)
    if matching.outcome:
        query = query.where(Alert.outcome == matching.outcome)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, math.ceil(total / page_size))
    rows = session.execute(query.order_by(resolution.c.at.desc(), Alert.id.desc())
                           .offset((page - 1) * page_size).limit(page_size)).all()
    ids = [alert.id for alert, _name, _at in rows]
    acknowledged: dict[int, datetime] = {}
    resolver: dict[int, str] = {}
    if ids:
        for transition in session.scalars(select(AlertTransition).where(
                AlertTransition.alert_id.in_(ids),
                AlertTransition.to_status.in_((AlertState.ACKNOWLEDGED, AlertState.RESOLVED)))
                .order_by(AlertTransition.at, AlertTransition.id)):
            if transition.to_status == AlertState.ACKNOWLEDGED:
                acknowledged.setdefault(transition.alert_id, transition.at)
            else:
                resolver[transition.alert_id] = transition.by
    names = display_names(session, resolver.values())
    items = tuple(Resolved(
        id=alert.id, person_id=alert.person_id, person_name=name, rule=alert.rule, title=alert.title,
        priority=alert.priority, opened_at=alert.opened_at, acknowledged_at=acknowledged.get(alert.id),
        resolved_at=at, outcome=alert.outcome, resolved_by=resolver.get(alert.id, ""),
        resolved_by_name=resolver_words(resolver.get(alert.id, ""), names))
        for alert, name, at in rows)
    return Page(items, total, page, pages)
