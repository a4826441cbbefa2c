"""An alert's escalation, told in plain sentences for the operator on the call.

Read from the notification log (`tables.Notification`: one row per message to one contact
point), the escalation's own state (`tables.Escalation`) and the alert's transitions: who was
told, how, how long after the alarm, and what came of it. For example:

    "E-mailed Susan Hughes (daughter) 3 min after the alarm; not yet accepted"
    "On the operators' queue from the moment the alarm came in"
    "Acknowledged by Olive Operator 40 s after the alarm"
    "No keyholder could be told 3 min after the alarm: none has a number to text or an e-mail address on record
    (a number only to phone is on the call screen)"

Never a reference, an id, a step or cycle count, or a raw state name.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerting.escalation import EscalationState
from alerting.notify import CONSOLE_ADDRESS, NotificationPurpose, NotificationStatus
from alerting.tables import Escalation, Notification
from monitoring_centre.alerts import ACTIVE, OUTCOMES, AlertState
from monitoring_centre.storage import Alert, AlertTransition, PersonContact, User


@dataclass(frozen=True)
class LogLine:
    at: datetime
    text: str


def after(opened: datetime, at: datetime) -> str:
    """How long after the alarm: "at once" (under 10 s), "40 s", "3 min", "1 h 5 min" after the alarm."""
    seconds = max(0, int((at - opened).total_seconds()))
    if seconds < 10:
        return "at once"
    if seconds < 90:
        return f"{seconds} s after the alarm"
    whole = round(seconds / 60)
    if whole < 60:
        return f"{whole} min after the alarm"
    hours, rest = divmod(whole, 60)
    return f"{hours} h {rest} min after the alarm" if rest else f"{hours} h after the alarm"


def _verb(address: str) -> str:
    if address.startswith("mailto:"):
        return "E-mailed"
    if address.startswith("sms:"):
        return "Texted"
    if address.startswith("tel:"):
        return "Phoned"
    return "Sent a message to"


def _who(name: str, relationship: str) -> str:
    if relationship and relationship.casefold() not in name.casefold():
        return f"{name} ({relationship})"
    return name or "a responder"


def _outcome(notification: Notification, alert: Alert) -> str:
    status = notification.status
    if notification.accepted_at is not None:
        return f"accepted {after(alert.opened_at, notification.accepted_at)}"
    if notification.declined_at is not None:
        return f"said they cannot go {after(alert.opened_at, notification.declined_at)}"
    if status == NotificationStatus.PENDING:
        return "sending now"
    if status == NotificationStatus.FAILED:
        return "could not be delivered"
    if status == NotificationStatus.CANCELLED:
        return "not sent: the alarm was dealt with first"
    if notification.purpose == NotificationPurpose.ESCALATION and alert.status in ACTIVE:
        return "not yet accepted"
    return "delivered"


RESPONDER_ACTOR = "responder:"
"""How an accept link signs what it does: "responder:{id}:{name}" (`alerting/acceptance.py`)."""


def responder_name(actor: str) -> str | None:
    """The responder's name when `actor` is an accept link ("responder:2:Susan Hughes" → "Susan
    Hughes"; "a responder" when the name is missing), else None."""
    if not actor.startswith(RESPONDER_ACTOR):
        return None
    parts = actor.split(":", 2)
    return (parts[2].strip() if len(parts) == 3 else "") or "a responder"


def _names(session: Session, usernames: set[str]) -> dict[str, str]:
    if not usernames:
        return {}
    return {u.username: u.display_name or u.username
            for u in session.scalars(select(User).where(User.username.in_(usernames)))}


def escalation_log(session: Session, alert: Alert) -> list[LogLine]:
    """The alert's escalation and handling in sentences, oldest first."""
    lines: list[LogLine] = []
    relationships = {contact.responder_id: contact.relationship for contact in session.scalars(
        select(PersonContact).where(PersonContact.person_id == alert.person_id))}
    console_told = False
    for row in session.scalars(select(Notification).where(Notification.alert_id == alert.id)
                               .order_by(Notification.created_at, Notification.id)):
        when = after(alert.opened_at, row.created_at)
        if row.address == CONSOLE_ADDRESS:
            text = ("On the operators' queue from the moment the alarm came in" if not console_told
                    else f"Operators told again {when}: not yet acknowledged")
            console_told = True
        elif not row.address:
            text = (f"Nobody could be told {when}: no one at this step has a number to text or an e-mail address "
                    "on record")
            if "keyholder" in row.detail:
                text = (f"No keyholder could be told {when}: none has a number to text or an e-mail "
                        "address on record (a number only to phone is on the call screen)")
        elif row.purpose == NotificationPurpose.REMINDER:
            text = f"Reminded {row.responder_name or 'the operators'} {when}: acknowledged but not yet resolved"
        elif row.purpose == NotificationPurpose.EXHAUSTED:
            text = (f"{_verb(row.address)} {row.responder_name or 'the operators'} {when}: everyone in the "
                    "escalation was told and nobody has acknowledged")
        else:
            who = _who(row.responder_name, relationships.get(row.responder_id or 0, ""))
            text = f"{_verb(row.address)} {who} {when}; {_outcome(row, alert)}"
        lines.append(LogLine(row.created_at, text))
    transitions = list(session.scalars(select(AlertTransition).where(AlertTransition.alert_id == alert.id)
                                       .order_by(AlertTransition.at, AlertTransition.id)))
    names = _names(session, {t.by for t in transitions if not t.by.startswith(("system:", RESPONDER_ACTOR))})
    for transition in transitions:
        responder = responder_name(transition.by)
        who = responder or names.get(transition.by, transition.by)
        when = after(alert.opened_at, transition.at)
        if transition.to_status == AlertState.ACKNOWLEDGED:
            if responder is None:  # a responder's accept link acknowledges and accepts at once: one line
                lines.append(LogLine(transition.at, f"Acknowledged by {who} {when}"))
        elif transition.to_status == AlertState.IN_PROGRESS:
            lines.append(LogLine(transition.at, f"{responder} accepted by link {when} and is on the way" if responder
                                 else f"A responder accepted {when} and is on the way"))
        elif transition.to_status == AlertState.RESOLVED:
            if transition.by.startswith("system:"):
                lines.append(LogLine(transition.at, f"Cleared by itself {when}: the condition recovered"))
            else:
                meaning = OUTCOMES.get(alert.outcome or "", "")
                lines.append(LogLine(transition.at, f"Resolved by {who} {when}" + (f": {meaning}" if meaning else "")))
    chain = session.scalar(select(Escalation).where(Escalation.alert_id == alert.id))
    if chain is not None and alert.status in ACTIVE:
        if chain.state == EscalationState.INHIBITED:
            lines.append(LogLine(chain.started_at, "Escalation paused while the home hub is offline: "
                                                   "this device alert waits until the hub is back"))
        elif chain.state == EscalationState.FINISHED and not chain.steps:
            lines.append(LogLine(chain.started_at, "Logged only: this kind of alert is not sent to anyone"))
    lines.sort(key=lambda line: line.at)
    return lines
