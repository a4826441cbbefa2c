"""Delivering notifications: compose each message, send it, retry it, record what happened.

A notification row is written (by `escalation.py`) before anything is sent, so a crash
between the two loses nothing: the row is still pending and is sent after the restart.
Sending is at least once: a worker leases the row for `LEASE_S`, and a retry carries the
same reference (the same e-mail Message-ID), so a receiver can drop a repeat. Every
attempt's outcome and the reason the message was sent stay in the notification log.

Each lease names its holder (`Notification.lease_owner`, "{worker}#{run}": the worker's
stable name, and a random id of this run of it). A worker that restarts knows that every
lease its earlier runs still hold is dead (a worker runs once at a time, by its name), so it
takes them back at once (`reclaim`) instead of waiting out `LEASE_S`: a keyholder's message
cut off by a crash goes out as soon as the centre is back. Another worker's lease is never
touched: it lapses by itself if that worker died.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from alerting import texts
from alerting.channels import Delivery, Message
from alerting.tables import Notification
from monitoring_centre.alerts import AlertState
from monitoring_centre.storage import Alert, Person

LEASE_S = 60
"""A claimed notification not recorded within this time is tried again (its worker died)."""
RUN_SEPARATOR = "#"
"""Between a worker's name and its run id in a lease owner; not allowed in a worker's name."""
RETRY_AFTER_S = (10, 30, 60, 120, 300)
"""Waits between attempts; after the last one the notification is marked failed."""
CONSOLE_ADDRESS = "console"
"""The address of a log line for the operators' alarm queue: shown there, never sent."""


class NotificationStatus(StrEnum):
    """Where a notification is (`Notification.status`)."""

    PENDING = "pending"
    """Written, not sent yet: due at `next_attempt_at`, or leased by a worker until then."""
    SENT = "sent"
    FAILED = "failed"
    """Gave up after every retry, or there was nobody to send it to."""
    CANCELLED = "cancelled"
    """Not sent: the alert was handled (or muted) first."""


class NotificationPurpose(StrEnum):
    """Why a notification was written (`Notification.purpose`)."""

    ESCALATION = "escalation"
    """A step of the alert's chain."""
    REMINDER = "reminder"
    """The alert was acknowledged and is still not resolved: the operators, again."""
    EXHAUSTED = "exhausted"
    """Every cycle of the chain ran and nobody acknowledged: the operators, again."""


@dataclass(frozen=True)
class StepOccasion:
    """A step of an alert's chain, by cycle and step (both counted from 0)."""

    cycle: int
    step: int


@dataclass(frozen=True)
class TimerOccasion:
    """A message on a timer rather than a step (a reminder, or the operators told again after
    the chain was exhausted), by its purpose and when it was written."""

    purpose: NotificationPurpose
    at: datetime


@dataclass(frozen=True)
class ToContact:
    """One contact point of a responder, by its position in their list (from 0)."""

    responder_id: int
    index: int


class NoContact(StrEnum):
    """A step's log line that reaches no contact point."""

    CONSOLE = "console"
    """The operators' alarm queue, which has shown the alert since it opened."""
    NOBODY = "nobody"
    """Nobody of the step's audience has a contact point."""


def notification_reference(alert_id: int, occasion: StepOccasion | TimerOccasion, to: ToContact | NoContact) -> str:
    """A notification's reference (`Notification.reference`): the dedup key (one row per
    reference, so a step never runs twice), the message id a receiver sees, and what an accept
    link signs. One of "alert-{id}/cycle-{c}/step-{s}/responder-{r}/contact-{i}",
    "alert-{id}/cycle-{c}/step-{s}/console" or ".../nobody", and
    "alert-{id}/{purpose}-{unix seconds}/responder-{r}/contact-{i}"."""
    if isinstance(occasion, StepOccasion):
        when = f"cycle-{occasion.cycle}/step-{occasion.step}"
    else:
        when = f"{occasion.purpose}-{int(occasion.at.timestamp())}"
    whom = f"responder-{to.responder_id}/contact-{to.index}" if isinstance(to, ToContact) else str(to)
    return f"alert-{alert_id}/{when}/{whom}"


@dataclass(frozen=True)
class Outgoing:
    notification_id: int
    alert_id: int
    person_id: int
    address: str
    message: Message


def due(session: Session, now: datetime, limit: int = 100) -> list[int]:
    rows = session.scalars(
        select(Notification.id).join(Alert, Alert.id == Notification.alert_id)
        .where(Notification.status == NotificationStatus.PENDING, Notification.next_attempt_at <= now)
        .order_by(Alert.priority, Notification.id).limit(limit)
    )
    return list(rows)


def lease_owner(worker: str) -> str:
    """A lease owner for a new run of `worker` (its stable name): "{worker}#{8 hex digits}".
    Raises ValueError for a name that is empty, too long or holds `RUN_SEPARATOR`."""
    if not worker or RUN_SEPARATOR in worker or len(worker) > 80:
        raise ValueError(f"a worker's name is 1-80 characters without {RUN_SEPARATOR!r}: {worker!r}")
    return f"{worker}{RUN_SEPARATOR}{secrets.token_hex(4)}"


def claim(session: Session, notification_id: int, now: datetime, owner: str) -> Notification | None:
    """Lease a pending notification for one attempt, for `owner` (`lease_owner`); None if
    another worker has it. Only a notification due at `now` can be claimed: a worker that listed it
    as due (`due`) before another's claim committed finds it leased (its `next_attempt_at` moved on
    by `LEASE_S`) and leaves it, so with several workers each attempt is sent once."""
    notification = session.get(Notification, notification_id)
    if notification is None or notification.status != NotificationStatus.PENDING:
        return None
    result = session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.attempts == notification.attempts,
               Notification.status == NotificationStatus.PENDING, Notification.next_attempt_at <= now)
        .values(attempts=notification.attempts + 1, next_attempt_at=now + timedelta(seconds=LEASE_S),
                lease_owner=owner)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return None
    session.refresh(notification)
    return notification


def reclaim(session: Session, owner: str, now: datetime) -> list[int]:
    """Take back, at once, the live leases of earlier runs of `owner`'s worker (a crash cut
    their sends off): each is due again at `now`, its attempt still counted. Leases of other
    workers, and this run's own, are left alone. Returns the ids of the notifications taken
    back (the caller commits)."""
    worker, _, _run = owner.partition(RUN_SEPARATOR)
    stale = (Notification.status == NotificationStatus.PENDING,
             Notification.lease_owner.startswith(worker + RUN_SEPARATOR, autoescape=True),
             Notification.lease_owner != owner, Notification.next_attempt_at > now)
    ids = list(session.scalars(select(Notification.id).where(*stale)))
    if ids:
        session.execute(update(Notification).where(Notification.id.in_(ids), *stale)
                        .values(next_attempt_at=now, lease_owner=None)
                        .execution_options(synchronize_session=False))
    return ids


def unwanted(notification: Notification, alert: Alert) -> str | None:
    """Why this message should no longer go out, if it should not: somebody acted first."""
    if (notification.purpose in (NotificationPurpose.ESCALATION, NotificationPurpose.EXHAUSTED)
            and alert.status != AlertState.OPEN):
        return f"not sent: the alert was {alert.status.replace('_', ' ')} first"
    if notification.purpose == NotificationPurpose.REMINDER and alert.status != AlertState.ACKNOWLEDGED:
        return f"not sent: the alert is {alert.status.replace('_', ' ')}"
    return None


def compose(notification: Notification, alert: Alert, person: Person, *, accept_url: str | None,
            timezone: str, centre_phone: str | None = None) -> Message:
    """The message for one notification, in plain words (`texts`): subject and e-mail body (the
    accept link as an "Accept: <url>" line), and the text message. `accept_url`: the responder's
    link, None for the operators; `timezone`: the local time the text gives (IANA name);
    `centre_phone`: the centre's number, given to a keyholder in the e-mail."""
    opened = alert.opened_at.astimezone(ZoneInfo(timezone))
    occasion = texts.Occasion(reminder=notification.purpose == NotificationPurpose.REMINDER,
                              unanswered=notification.purpose == NotificationPurpose.EXHAUSTED)
    what = texts.what_happened(alert.rule, alert.title, person.name)
    call_999 = alert.rule in texts.CALL_999_RULES or alert.priority == 1
    body = texts.mail_body(what=what, name=person.name, opened=opened, address=person.address, call_999=call_999,
                           accept=accept_url is not None, occasion=occasion, centre_phone=centre_phone)
    head = texts.headline(alert.priority)
    if occasion.reminder or occasion.unanswered:
        head = f"{head} (still open)"
    sms = texts.sms_text(head=head, what=what, opened=opened, address=person.address, call_999=call_999,
                         accept_url=accept_url)
    links = {"accept": accept_url} if accept_url is not None else {}
    return Message(subject=texts.subject(what, occasion), body=body, priority=alert.priority,
                   reference=notification.reference, links=links, sms=sms)


def record(notification: Notification, delivery: Delivery, now: datetime) -> None:
    """Store one attempt's outcome and end its lease; schedule the next attempt, or give up and say
    so: after the last of `RETRY_AFTER_S`, or at once when the channel says no retry can help
    (`Delivery.retry`, e.g. Notify refusing the number)."""
    notification.detail = delivery.detail[:2000]
    notification.lease_owner = None
    if delivery.ok:
        notification.status = NotificationStatus.SENT
        notification.sent_at = now
        notification.next_attempt_at = None
        return
    if notification.attempts >= len(RETRY_AFTER_S) or not delivery.retry:  # tried enough, or it cannot work
        notification.status = NotificationStatus.FAILED
        notification.next_attempt_at = None
        return
    notification.next_attempt_at = now + timedelta(seconds=RETRY_AFTER_S[notification.attempts - 1])
