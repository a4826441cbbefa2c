"""A responder accepts an alarm explicitly, and only then is shown how to get in.

Each message to a keyholder, nurse or the emergency services carries its own accept link.
The link's token is an HMAC of the notification's reference under the centre's own
accept-link key (`link_key`: made once, kept in the `centre_secrets` table; never the API's
token key, which an administrator may rotate at any time): a retry of the message carries
the same link, every worker mints the same one, and only the token's hash is stored.
Accepting puts the alert in progress, stops its escalation, and reveals the person's
access details (key safe) to that responder, which the audit log records (TSA: "a
responder accepts explicitly and is then sent the access details").

A link stands while its alert is active, for one acceptance per responder (`Refusal`):
- the alert was resolved or closed: the link has expired;
- this responder has already accepted the alert (by this link, or another message to
  them about it): a replay, refused, so a forwarded or leaked link never shows the way in
  again;
- another responder accepted first: they are thanked and told someone is going.
Each refusal of a real link is written to the audit log (action "accept_refused"); a token
that is no link of ours concerns nobody, and is only logged.
"""

import base64
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alerting.tables import CentreSecret, Notification
from monitoring_centre import alerts, audit
from monitoring_centre.alerts import AlertState
from monitoring_centre.storage import Alert, Person, utc_now

log = logging.getLogger(__name__)
ACCEPT_LINK_KEY = "accept_links"
"""The `centre_secrets` row of the accept-link key."""
TOKEN_MAX_CHARS = 64
"""A token is 32 characters (24 bytes, base64url); anything longer is not one of ours and is not hashed."""


class Refusal(StrEnum):
    """Why a link does not accept (`AcceptRefused.refusal`); the page says so in words."""

    NOT_VALID = "not_valid"
    """No such link."""
    EXPIRED = "expired"
    """Its alert was resolved or closed."""
    ALREADY_ACCEPTED = "already_accepted"
    """This responder has accepted this alert already: a second use, or a replay."""
    TAKEN = "taken"
    """Someone else accepted it first."""


class AcceptRefused(ValueError):
    """A link that does not accept: `refusal` says why, the message says it to the responder."""

    def __init__(self, refusal: Refusal, message: str) -> None:
        super().__init__(message)
        self.refusal = refusal


MESSAGES = {
    Refusal.NOT_VALID: "this link is not valid",
    Refusal.EXPIRED: "this alarm has been dealt with, so this link has expired: nothing more is needed from you, "
                     "thank you",
    Refusal.ALREADY_ACCEPTED: "you have already accepted this alarm; for safety the way in is shown only once: "
                              "if you need it again, call the centre",
    Refusal.TAKEN: "someone else has already accepted this alarm; thank you",
}


@dataclass(frozen=True)
class Accepted:
    alert: Alert
    person: Person
    responder_name: str


@dataclass(frozen=True)
class Offer:
    """A link of ours, with its alert and person, and whether it would accept now."""

    notification: Notification
    alert: Alert
    person: Person
    accepted_at: datetime | None
    """When this link's responder accepted this alert (by any message of theirs), if they have."""

    @property
    def actor(self) -> str:
        """Who the link speaks for, in the audit log: "responder:{id}:{name}"."""
        return f"responder:{self.notification.responder_id}:{self.notification.responder_name}"

    @property
    def refusal(self) -> Refusal | None:
        """Why accepting would be refused now, or None if it would accept."""
        if self.alert.status in alerts.ENDED:
            return Refusal.EXPIRED
        if self.accepted_at is not None:
            return Refusal.ALREADY_ACCEPTED
        if self.alert.status == AlertState.IN_PROGRESS:
            return Refusal.TAKEN
        return None


def link_key(session: Session) -> str:
    """The centre's accept-link key, made (256 random bits) and stored the first time it is
    asked for. Two workers asking at once on a new database get the same key: the second
    insert fails on the primary key and the first one's key is read back. Written in the
    caller's transaction (commit it)."""
    stored = session.get(CentreSecret, ACCEPT_LINK_KEY)
    if stored is not None:
        return stored.value
    try:
        with session.begin_nested():
            session.add(CentreSecret(name=ACCEPT_LINK_KEY, value=secrets.token_urlsafe(32), created_at=utc_now()))
    except IntegrityError:  # another worker made it first
        pass
    stored = session.get(CentreSecret, ACCEPT_LINK_KEY)
    if stored is None:
        raise RuntimeError("the accept-link key could neither be read nor stored")
    return stored.value


def accept_token(key: str, reference: str) -> tuple[str, str]:
    """(token, its hash) for a notification's accept link, under the accept-link key (`link_key`)."""
    digest = hmac.new(key.encode(), f"accept:{reference}".encode(), hashlib.sha256).digest()
    token = base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def offer(session: Session, token: str) -> Offer:
    """The link `token` opens, whatever its state (`Offer.refusal`). Raises `AcceptRefused`
    (`NOT_VALID`) when it is no link of ours."""
    notification = None
    if len(token) <= TOKEN_MAX_CHARS:
        notification = session.scalar(select(Notification)
                                      .where(Notification.accept_token_hash == token_hash(token)))
    alert = session.get(Alert, notification.alert_id) if notification is not None else None
    person = session.get(Person, alert.person_id) if alert is not None else None
    if notification is None or alert is None or person is None:
        log.info("an accept link that is not one of ours was used")
        raise AcceptRefused(Refusal.NOT_VALID, MESSAGES[Refusal.NOT_VALID])
    return Offer(notification, alert, person, _accepted_at(session, notification))


def _accepted_at(session: Session, notification: Notification) -> datetime | None:
    """When the notification's responder accepted its alert, through any message to them."""
    if notification.responder_id is None:
        return notification.accepted_at
    accepted: datetime | None = session.scalar(
        select(func.min(Notification.accepted_at))
        .where(Notification.alert_id == notification.alert_id,
               Notification.responder_id == notification.responder_id, Notification.accepted_at.is_not(None)))
    return accepted


def accept(session: Session, token: str, now: datetime) -> Accepted:
    """Accept the alarm of a link: the alert goes in progress, and the caller shows the access
    details (audited here, "show_access_details"). Raises `AcceptRefused` with the reason when the
    link does not accept now, audited ("accept_refused") for a link of ours; commit either way."""
    found = offer(session, token)
    session.refresh(found.alert, with_for_update=True)  # two presses at once: the second sees the first
    found = Offer(found.notification, found.alert, found.person, _accepted_at(session, found.notification))
    alert, notification = found.alert, found.notification
    refusal = found.refusal
    if refusal is not None:
        detail = f"alert {alert.id}: {refusal}"
        if found.accepted_at is not None:
            detail += f" (accepted at {found.accepted_at:%Y-%m-%d %H:%M:%S} UTC)"
        audit.record(session, found.actor, "accept_refused", [found.person.id], detail)
        raise AcceptRefused(refusal, MESSAGES[refusal])
    if alert.status == AlertState.OPEN:
        alerts.transition(session, alert, AlertState.ACKNOWLEDGED, found.actor, "accepted from a notification")
    alerts.transition(session, alert, AlertState.IN_PROGRESS, found.actor,
                      f"{notification.responder_name} is on the way")
    notification.accepted_at = now
    audit.record(session, found.actor, "show_access_details", [found.person.id], f"alert {alert.id} accepted")
    return Accepted(alert, found.person, notification.responder_name)
