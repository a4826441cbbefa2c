"""Keyholder requests on a family member's page: a family member whose account is linked to a
responder (`storage.ResponderAccount`) sees the open requests sent to that responder and accepts
or declines them there, as by the link in the message.

Design (the smallest honest one): accounts and responders stay separate things (a responder may
have no account; an account may be no responder); one row links an account to the responder it
is, set by an administrator or the demo. Matching by e-mail address was rejected: contact points
are free text, shared mailboxes exist, and a changed address would silently hand someone else's
requests to an account.

A request is a notification of an escalation to that responder with an accept link, for an alert
still active (`alerts.ACTIVE`), not yet accepted or declined by them. Accepting goes through
`acceptance.accept` with the notification's own link token (the same checks, state change and
audit as the link in the message: taken by another, expired, a replay). Declining is recorded in
the audit log ("keyholder_declined") and on the message (`escalation.declined`): when everyone
told at that step has said no, the next contact is asked at once rather than after the step's
wait, and the request leaves their page.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerting import acceptance, escalation
from alerting.tables import Notification
from monitoring_centre import audit
from monitoring_centre.alerts import ACTIVE
from monitoring_centre.storage import Alert, AuditEntry, Person, ResponderAccount, User, utc_now

DECLINED = "keyholder_declined"


@dataclass(frozen=True)
class Request:
    """An open request: the notification, its alert and the person it is about."""

    notification_id: int
    alert_id: int
    person_id: int
    person_name: str
    alert_title: str
    priority: int
    sent_at: datetime
    address: str
    """The person's address (where to go): shown to a keyholder asked to attend."""


def responder_of(session: Session, user: User) -> int | None:
    """The responder the account is linked to, if any."""
    return session.scalar(select(ResponderAccount.responder_id).where(ResponderAccount.user_id == user.id))


def _declined(session: Session, user: User, person_ids: set[int]) -> set[str]:
    rows = session.scalars(select(AuditEntry.detail).where(AuditEntry.actor == user.username,
                                                           AuditEntry.action == DECLINED,
                                                           AuditEntry.person_id.in_(person_ids)))
    return {detail.split(":", 1)[0] for detail in rows}


def open_requests(session: Session, user: User) -> list[Request]:
    """The requests open for the account's responder, newest first (none if it is no responder)."""
    responder_id = responder_of(session, user)
    if responder_id is None:
        return []
    rows = session.execute(
        select(Notification, Alert, Person).join(Alert, Alert.id == Notification.alert_id)
        .join(Person, Person.id == Alert.person_id)
        .where(Notification.responder_id == responder_id, Notification.accept_token_hash.is_not(None),
               Notification.status == "sent", Alert.status.in_(ACTIVE))
        .order_by(Notification.id.desc())).all()
    accepted = {alert.id for notification, alert, _ in rows if notification.accepted_at is not None}
    declined = _declined(session, user, {person.id for _, _, person in rows})
    result, seen = [], set()
    for notification, alert, person in rows:
        if alert.id in accepted or alert.id in seen or f"alert {alert.id}" in declined:
            continue
        seen.add(alert.id)
        result.append(Request(notification.id, alert.id, person.id, person.name, alert.title, alert.priority,
                              notification.sent_at or notification.created_at, person.address))
    return result


@dataclass(frozen=True)
class Going:
    """An alert still active that a responder said they are going to (accepted by link or page)."""

    alert_id: int
    person_id: int
    person_name: str
    alert_title: str
    responder_id: int | None
    responder_name: str
    accepted_at: datetime


def who_is_going(session: Session, alert_ids: Iterable[int]) -> dict[int, Going]:
    """For each of these alerts that a responder accepted: the first who did (by alert id)."""
    ids = set(alert_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(Notification, Alert, Person).join(Alert, Alert.id == Notification.alert_id)
        .join(Person, Person.id == Alert.person_id)
        .where(Notification.alert_id.in_(ids), Notification.accepted_at.is_not(None))
        .order_by(Notification.accepted_at, Notification.id)).all()
    found: dict[int, Going] = {}
    for notification, alert, person in rows:
        assert notification.accepted_at is not None
        found.setdefault(alert.id, Going(alert.id, person.id, person.name, alert.title, notification.responder_id,
                                         notification.responder_name, notification.accepted_at))
    return found


def going(session: Session, user: User) -> list[Going]:
    """The alerts still active that the account's responder said they are going to, newest first."""
    responder_id = responder_of(session, user)
    if responder_id is None:
        return []
    ids = session.scalars(select(Notification.alert_id).join(Alert, Alert.id == Notification.alert_id)
                          .where(Notification.responder_id == responder_id, Notification.accepted_at.is_not(None),
                                 Alert.status.in_(ACTIVE)))
    return sorted((g for g in who_is_going(session, ids).values() if g.responder_id == responder_id),
                  key=lambda g: g.accepted_at, reverse=True)


def _request(session: Session, user: User, notification_id: int) -> Notification:
    responder_id = responder_of(session, user)
    notification = session.get(Notification, notification_id)
    if responder_id is None or notification is None or notification.responder_id != responder_id:
        raise acceptance.AcceptRefused(acceptance.Refusal.NOT_VALID, acceptance.MESSAGES[acceptance.Refusal.NOT_VALID])
    return notification


def accept(session: Session, user: User, notification_id: int, now: datetime) -> acceptance.Accepted:
    """Accept the request as the link would (`acceptance.accept`); `AcceptRefused` when it is not
    this account's, or the link would refuse (expired, taken, already accepted). Commit either way."""
    notification = _request(session, user, notification_id)
    token, _ = acceptance.accept_token(acceptance.link_key(session), notification.reference)
    accepted = acceptance.accept(session, token, now)
    audit.record(session, user.username, "keyholder_accepted", [accepted.person.id],
                 f"alert {accepted.alert.id}: accepted on the family page as {accepted.responder_name}")
    return accepted


def decline(session: Session, user: User, notification_id: int) -> Alert:
    """Record that the account's responder declines; the escalation carries on. `AcceptRefused`
    (`NOT_VALID`) when the request is not this account's."""
    notification = _request(session, user, notification_id)
    alert = session.get_one(Alert, notification.alert_id)
    brought_forward = escalation.declined(session, notification, utc_now())
    audit.record(session, user.username, DECLINED, [alert.person_id],
                 f"alert {alert.id}: declined on the family page as {notification.responder_name}"
                 + ("; the next contact is asked now" if brought_forward else ""))
    return alert
