import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from alerting.escalation import escalation_lines
from centre_app.api.deps import (
    Centre,
    CentreStaff,
    CentreState,
    CurrentUser,
    Db,
    DocumentedRoute,
    VisibleAlert,
    errors,
    invalid,
)
from monitoring_centre import alerts, audit
from monitoring_centre.access import visible_person_ids
from monitoring_centre.live import Marker, visible_alert_ids
from monitoring_centre.storage import Alert, Person, User

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"], route_class=DocumentedRoute)
KEEPALIVE_S = 15.0


class AlertOut(BaseModel):
    id: int
    person_id: int
    person_name: str
    hub_id: str
    rule: str
    subject: str
    title: str
    priority: int
    status: str
    outcome: str | None
    opened_at: datetime
    last_seen_at: datetime
    repeat_count: int
    explanation: dict[str, Any]
    escalation: str = ""
    """Where the alert's escalation has got to, in a line: who was told, and how it went."""


@router.get("")
def list_alerts(user: CurrentUser, session: Db,
                state: Annotated[Literal["active", "all"], Query(alias="status")] = "all",
                limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[AlertOut]:
    """Alerts for the people the caller may see, newest first."""
    query = select(Alert, Person.name).join(Person, Person.id == Alert.person_id)
    visible = visible_person_ids(session, user)
    if visible is not None:
        query = query.where(Alert.person_id.in_(visible))
    if state == "active":
        query = query.where(Alert.status.in_(alerts.ACTIVE))
    rows = session.execute(query.order_by(Alert.opened_at.desc(), Alert.id.desc()).limit(limit)).all()
    progress = escalation_lines(session, [alert.id for alert, _name in rows])
    result = [AlertOut(person_name=name, escalation=progress.get(alert.id, ""), **_columns(alert))
              for alert, name in rows]
    audit.record(session, user.username, "view_alerts", [a.person_id for a in result])
    session.commit()
    return result


@router.post("/{alert_id}/acknowledge", responses=errors(409))
def acknowledge(user: CentreStaff, alert: VisibleAlert, session: Db, centre: Centre) -> AlertOut:
    """An operator has seen this alert and owns it now. Escalation stops on acknowledgement,
    so only the centre's staff may do it: never the person or their family."""
    try:
        alerts.transition(session, alert, alerts.AlertState.ACKNOWLEDGED, user.username)
    except alerts.TransitionRefused as refused:
        raise HTTPException(status.HTTP_409_CONFLICT, str(refused)) from None
    audit.record(session, user.username, "acknowledge_alert", [alert.person_id], f"alert {alert.id}")
    name = session.get(Person, alert.person_id)
    session.commit()
    centre.alerts_changed({alert.id})  # the escalation stops now, not at its next step
    return AlertOut(person_name=name.name if name else "", **_columns(alert))


class Resolution(BaseModel):
    outcome: str
    note: str = Field(default="", max_length=2000)


@router.get("/outcomes")
def outcomes(user: CurrentUser) -> dict[str, str]:
    """The outcome codes an alert is resolved with, and what each means."""
    return alerts.OUTCOMES


@router.post("/{alert_id}/resolve", responses=errors(409))
def resolve(resolution: Resolution, user: CentreStaff, alert: VisibleAlert, session: Db, centre: Centre) -> AlertOut:
    """Close the matter, with its outcome. A decision not to visit needs its reason."""
    if resolution.outcome not in alerts.OUTCOMES:
        raise invalid(("body", "outcome"), f"outcome must be one of {sorted(alerts.OUTCOMES)}")
    if resolution.outcome in alerts.NEEDS_A_REASON and not resolution.note.strip():
        raise invalid(("body", "note"), "a decision not to visit is recorded with its reason: add a note")
    try:
        alerts.transition(session, alert, alerts.AlertState.RESOLVED, user.username, resolution.note,
                          outcome=resolution.outcome)
    except alerts.TransitionRefused as refused:
        raise HTTPException(status.HTTP_409_CONFLICT, str(refused)) from None
    audit.record(session, user.username, "resolve_alert", [alert.person_id],
                 f"alert {alert.id}: {resolution.outcome}")
    person = session.get(Person, alert.person_id)
    session.commit()
    centre.alerts_changed({alert.id})
    return AlertOut(person_name=person.name if person else "", **_columns(alert))


@router.get("/stream", response_class=StreamingResponse, responses={
    200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
          "description": 'Server-sent events, without end: `data: {"alert_ids": [...]}`, and a comment as keepalive.'}})
async def stream(user: CurrentUser, centre: Centre) -> StreamingResponse:
    """Server-sent events: `data: {"alert_ids": [...]}` whenever alerts the caller may see change
    (of the others, not even the ids: `live.visible_alert_ids`). No other personal data travels
    here; the console refetches `GET /api/v1/alerts`, which checks access and audits.
    `event: storage` with `data: {"storage_fault": false}`, or `true` with the fault's `rule`,
    `title` and `since` (`StorageHealth.banner`), when the stream opens and whenever that changes.
    The stream ends when the centre stops, and when notices from the centre's other workers may have
    been missed (`AlertFeed.resync`): the console reconnects and refetches everything."""
    feed = centre.feed.subscribe()

    async def events() -> AsyncIterator[str]:
        try:
            yield "retry: 1000\n\n"
            told = _storage_event(centre)
            yield told
            while True:
                try:
                    ids = await asyncio.wait_for(feed.get(), timeout=KEEPALIVE_S)
                except TimeoutError:
                    ids = []
                    yield ": keepalive\n\n"
                if centre.feed.closed:  # the centre is stopping: end the stream, the console reconnects
                    return
                if ids is Marker.RESYNC:  # notices may have been missed: the console reconnects and refetches
                    return
                if (storage := _storage_event(centre)) != told:  # a storage fault began or ended
                    told = storage
                    yield storage
                ids = await asyncio.to_thread(_seen_by, centre, user, ids) if ids else []
                if ids:
                    yield f"data: {json.dumps({'alert_ids': ids})}\n\n"
        finally:
            centre.feed.unsubscribe(feed)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


def _storage_event(centre: CentreState) -> str:
    return f"event: storage\ndata: {json.dumps(centre.storage.banner())}\n\n"


def _seen_by(centre: CentreState, user: User, alert_ids: list[int]) -> list[int]:
    with centre.sessions() as session:
        return visible_alert_ids(session, user, alert_ids)


def _columns(alert: Alert) -> dict[str, Any]:
    return {name: getattr(alert, name) for name in AlertOut.model_fields if name not in ("person_name", "escalation")}
