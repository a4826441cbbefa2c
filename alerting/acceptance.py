"""A responder accepts an alarm explicitly, and only then is shown how to get in.

Each message to a keyholder, nurse or the emergency services carries its own accept link.
The link's token is an HMAC of the notification's reference under the centre's secret:
a retry of the message carries the same link, and only the token's hash is stored.
Accepting puts the alert in progress, stops its escalation, and reveals the person's
access details (key safe) to that responder, which the audit log records (TSA: "a
responder accepts explicitly and is then sent the access details").
"""

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerting.tables import Notification
from monitoring_centre import alerts, audit
from monitoring_centre.alerts import AlertState
from monitoring_centre.storage import Alert, Person


class AcceptRefused(ValueError):
    pass


@dataclass(frozen=True)
class Accepted:
    alert: Alert
    person: Person
    responder_name: str


def accept_token(secret: str, reference: str) -> tuple[str, str]:
    """(token, its hash) for a notification's accept link."""
    digest = hmac.new(secret.encode(), f"accept:{reference}".encode(), hashlib.sha256).digest()
    token = base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def offer(session: Session, token: str) -> Notification:
    """The notification an accept link belongs to, if it still stands."""
    notification = session.scalar(select(Notification).where(Notification.accept_token_hash == token_hash(token)))
    if notification is None:
        raise AcceptRefused("this link is not valid")
    return notification


def accept(session: Session, token: str, now: datetime) -> Accepted:
    notification = offer(session, token)
    alert = session.get(Alert, notification.alert_id)
    person = session.get(Person, alert.person_id) if alert is not None else None
    if alert is None or person is None:
        raise AcceptRefused("this link is not valid")
    actor = f"responder:{notification.responder_id}:{notification.responder_name}"
    if alert.status == AlertState.IN_PROGRESS:
        if notification.accepted_at is None:
            raise AcceptRefused("someone else has already accepted this alarm; thank you")
    elif alert.status in alerts.ENDED:
        raise AcceptRefused("this alarm has been dealt with; thank you")
    else:
        if alert.status == AlertState.OPEN:
            alerts.transition(session, alert, AlertState.ACKNOWLEDGED, actor, "accepted from a notification")
        alerts.transition(session, alert, AlertState.IN_PROGRESS, actor, f"{notification.responder_name} is on the way")
        notification.accepted_at = now
    audit.record(session, actor, "show_access_details", [person.id], f"alert {alert.id} accepted")
    return Accepted(alert, person, notification.responder_name)
