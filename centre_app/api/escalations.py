"""An alert's escalation: the chain it follows and every notification sent, with why."""

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel
from sqlalchemy import select

from alerting.tables import Escalation, Notification
from centre_app.api.deps import CurrentUser, Db, may_see
from monitoring_centre import audit
from monitoring_centre.storage import Alert

router = APIRouter(prefix="/api/v1/alerts", tags=["escalation"])


class NotificationOut(BaseModel):
    id: int
    responder_name: str
    address: str
    purpose: str
    reason: str
    status: str
    attempts: int
    detail: str
    created_at: datetime
    sent_at: datetime | None
    accepted_at: datetime | None


class EscalationOut(BaseModel):
    alert_id: int
    policy: str
    state: str
    note: str
    step: int
    cycle: int
    cycles: int
    due_at: datetime | None
    steps: list[dict[str, Any]]
    notifications: list[NotificationOut]


@router.get("/{alert_id}/escalation")
def escalation(alert_id: int, user: CurrentUser, session: Db) -> EscalationOut:
    """The chain snapshotted onto this alert, where it has got to, and the notification log."""
    alert = session.get(Alert, alert_id)
    if alert is None or not may_see(session, user, alert.person_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such alert")
    chain = session.scalar(select(Escalation).where(Escalation.alert_id == alert_id))
    if chain is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this alert's escalation has not started yet")
    log = session.scalars(select(Notification).where(Notification.alert_id == alert_id).order_by(Notification.id))
    notifications = [NotificationOut.model_validate(n, from_attributes=True) for n in log]
    audit.record(session, user.username, "view_escalation", [alert.person_id], f"alert {alert_id}")
    session.commit()
    return EscalationOut(alert_id=alert_id, policy=chain.policy, state=chain.state, note=chain.note, step=chain.step,
                         cycle=chain.cycle, cycles=chain.cycles, due_at=chain.due_at, steps=chain.steps,
                         notifications=notifications)
