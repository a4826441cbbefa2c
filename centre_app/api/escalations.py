"""An alert's escalation: the chain it follows and every notification sent, with why."""

from datetime import datetime

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel
from sqlalchemy import select

from alerting import snapshot
from alerting.escalation import EscalationState
from alerting.notify import NotificationPurpose, NotificationStatus
from alerting.snapshot import ChainStep
from alerting.tables import Escalation, Notification
from centre_app.api.deps import CurrentUser, Db, DocumentedRoute, VisibleAlert
from monitoring_centre import audit

router = APIRouter(prefix="/api/v1/alerts", tags=["escalation"], route_class=DocumentedRoute)


class NotificationOut(BaseModel):
    id: int
    responder_name: str
    address: str
    purpose: NotificationPurpose
    reason: str
    status: NotificationStatus
    attempts: int
    detail: str
    created_at: datetime
    sent_at: datetime | None
    accepted_at: datetime | None


class EscalationOut(BaseModel):
    alert_id: int
    policy: str
    state: EscalationState
    note: str
    step: int
    cycle: int
    cycles: int
    due_at: datetime | None
    steps: list[ChainStep]
    notifications: list[NotificationOut]


@router.get("/{alert_id}/escalation")
def escalation(alert: VisibleAlert, user: CurrentUser, session: Db) -> EscalationOut:
    """The chain snapshotted onto this alert, where it has got to, and the notification log."""
    chain = session.scalar(select(Escalation).where(Escalation.alert_id == alert.id))
    if chain is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this alert's escalation has not started yet")
    log = session.scalars(select(Notification).where(Notification.alert_id == alert.id).order_by(Notification.id))
    notifications = [NotificationOut.model_validate(n, from_attributes=True) for n in log]
    audit.record(session, user.username, "view_escalation", [alert.person_id], f"alert {alert.id}")
    session.commit()
    return EscalationOut(alert_id=alert.id, policy=chain.policy, state=chain.state, note=chain.note, step=chain.step,
                         cycle=chain.cycle, cycles=chain.cycles, due_at=chain.due_at,
                         steps=list(snapshot.load(chain.steps).steps),
                         notifications=notifications)
