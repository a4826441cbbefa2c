"""Running an alert's escalation chain: snapshot it when the alert opens, step it when a
step is due, stop it the moment someone acts.

Everything lives in the database (the `escalations` and `notifications` tables), so a
centre that crashes or restarts carries on where it stopped (Grafana OnCall #1206: a
paused escalation that never resumed). Each pass is a plain function of the stored state
and the time; `escalator.py` calls it every second.

States of an escalation:
- running: steps are being sent while nobody has acknowledged the alert;
- inhibited: muted by another alert (see `inhibit.py`), re-checked every few seconds;
- reminding: acknowledged; the operators are reminded if it is not resolved in time;
- exhausted: every cycle ran and nobody acknowledged; the operators are told again at
  the interval of the last step until somebody does ("if in doubt, go out");
- finished: a responder accepted, or the alert was resolved.
"""

import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from alerting import inhibit, snapshot
from alerting.channels import is_tel
from alerting.notify import (
    CONSOLE_ADDRESS,
    NoContact,
    NotificationPurpose,
    NotificationStatus,
    StepOccasion,
    TimerOccasion,
    ToContact,
    notification_reference,
)
from alerting.policy import ACKNOWLEDGED_REMINDER_S, POLICIES, ROLE_OF_AUDIENCE, Audience, Policy, policy_for
from alerting.snapshot import ChainStep, EscalationChain, Recipient
from alerting.tables import Escalation, Notification
from monitoring_centre.alerts import AlertState
from monitoring_centre.storage import Alert, ContactPoint, Person, PersonContact, Responder

_HANDLED = (AlertState.IN_PROGRESS, AlertState.RESOLVED, AlertState.CLOSED)
"""A responder accepted, or the alert was resolved or closed: the chain has nothing left to do."""


class EscalationState(StrEnum):
    """Where an escalation is (`Escalation.state`); each is described at the top of this module."""

    RUNNING = "running"
    INHIBITED = "inhibited"
    REMINDING = "reminding"
    EXHAUSTED = "exhausted"
    FINISHED = "finished"


UNFINISHED = (EscalationState.RUNNING, EscalationState.INHIBITED, EscalationState.REMINDING,
              EscalationState.EXHAUSTED)
AcceptToken = Callable[[str], tuple[str, str]]
"""reference → (token, token hash): makes a responder's accept link (`acceptance.accept_token`)."""
INHIBITED_RECHECK_S = 5
"""How soon a muted escalation notices that what muted it has cleared."""


def new_token() -> str:
    return secrets.token_hex(8)


def recipients(session: Session, person: Person, audience: Audience,
               directory: "Directory | None" = None) -> list[list[Recipient]]:
    """The responders a step reaches, as one group per step: each keyholder is a step of
    their own, in the person's order; every other audience is one step for all its members.
    `directory`: a pass's `Directory`, so that what it has read already is not read again."""
    directory = directory or Directory(session)
    if audience == Audience.KEYHOLDERS:
        rows = session.execute(
            select(Responder).join(PersonContact, PersonContact.responder_id == Responder.id)
            .where(PersonContact.person_id == person.id, Responder.active)
            .order_by(PersonContact.position)
        ).scalars()
        return [[directory.recipient(responder)] for responder in rows] or [[]]
    return [directory.of_role(ROLE_OF_AUDIENCE[audience])]


class Directory:
    """The responder directory as one pass reads it, in its one transaction: each role's active
    responders and each responder's contact points are read once, however many chains the pass
    snapshots (in a burst of alarms, a power cut in a village, they are the same for every alert)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._of_role: dict[str, list[Recipient]] = {}
        self._recipient: dict[int, Recipient] = {}

    def recipient(self, responder: Responder) -> Recipient:
        """`recipient_of(responder)`, read once per pass."""
        known = self._recipient.get(responder.id)
        if known is None:
            known = self._recipient[responder.id] = recipient_of(self.session, responder)
        return known

    def of_role(self, role: str) -> list[Recipient]:
        """Every active responder of `role`, oldest first (a copy: the caller may keep it)."""
        known = self._of_role.get(role)
        if known is None:
            responders = self.session.scalars(select(Responder).where(Responder.role == role, Responder.active)
                                              .order_by(Responder.id))
            known = self._of_role[role] = [self.recipient(responder) for responder in responders]
        return list(known)


def contact_points(session: Session, responder_id: int) -> list[str]:
    """A responder's contact points as entered, in their own order (`tel:` numbers among them)."""
    return list(session.scalars(select(ContactPoint.address).where(ContactPoint.responder_id == responder_id)
                                .order_by(ContactPoint.position)))


def recipient_of(session: Session, responder: Responder) -> Recipient:
    """A responder with the contact points a channel sends to, in their own order, and apart from
    them the `tel:` ones: numbers for the operator to phone (shown on the call screen), never sent to."""
    listed = contact_points(session, responder.id)
    return Recipient(responder_id=responder.id, name=responder.name, role=responder.role,
                     addresses=tuple(address for address in listed if not is_tel(address)),
                     phones=tuple(address for address in listed if is_tel(address)))


def chain_for(session: Session, person: Person, policy: Policy, directory: Directory | None = None) -> EscalationChain:
    """The chain with its responders and addresses resolved now, as it will run (stored with
    `snapshot.dump`)."""
    directory = directory or Directory(session)
    return EscalationChain(steps=tuple(
        ChainStep(audience=step.audience, wait_s=step.wait_s, recipients=tuple(group))
        for step in policy.steps for group in recipients(session, person, step.audience, directory)
    ))


def start(session: Session, alert: Alert, now: datetime) -> Escalation:
    """Snapshot the chain for a newly opened alert. Idempotent: one escalation per alert. (The escalator
    starts a pass's escalations with `snapshot_of`, sharing one `Directory`.)"""
    existing = session.scalar(select(Escalation).where(Escalation.alert_id == alert.id))
    if existing is not None:
        return existing
    escalation = snapshot_of(session, alert, now)
    session.add(escalation)
    session.flush()
    return escalation


def snapshot_of(session: Session, alert: Alert, now: datetime, directory: Directory | None = None) -> Escalation:
    """The escalation `start` writes for `alert`, not yet in the session: its policy, and the chain with
    its responders and addresses resolved now. Only reads, so a pass can snapshot its chains in a
    read-only transaction and write them in a short one (`Escalator.start_escalations`)."""
    person = session.get(Person, alert.person_id)
    service = person.service if person is not None else "monitored"
    policy = policy_for(alert.priority, service, alert.rule)
    chain = chain_for(session, person, policy, directory) if person is not None else EscalationChain()
    runs = bool(chain.steps)
    return Escalation(
        alert_id=alert.id, policy=policy.name, steps=snapshot.dump(chain), cycles=policy.cycles, step=0, cycle=0,
        state=EscalationState.RUNNING if runs else EscalationState.FINISHED, due_at=now if runs else None,
        token=new_token(), note="" if runs else f"not sent: {policy.source}", started_at=now,
    )


def unfinished(session: Session) -> list[tuple[Escalation, Alert]]:
    rows = session.execute(
        select(Escalation, Alert).join(Alert, Alert.id == Escalation.alert_id)
        .where(Escalation.state.in_(UNFINISHED)).order_by(Alert.priority, Escalation.id)
    )
    return [(escalation, alert) for escalation, alert in rows]


def needs_attention(escalation: Escalation, alert: Alert, now: datetime) -> bool:
    """Whether `advance` has anything to do: a step is due, or someone acted on the alert.
    Checked before claiming, so an idle pass writes nothing."""
    if alert.status in _HANDLED:
        return True
    if alert.status == AlertState.ACKNOWLEDGED and escalation.state != EscalationState.REMINDING:
        return True
    return escalation.due_at is not None and escalation.due_at <= now


def claim(session: Session, escalation: Escalation) -> bool:
    """Take the escalation's token for this pass; False when another worker got there first."""
    token = new_token()
    result = session.execute(
        update(Escalation).where(Escalation.id == escalation.id, Escalation.token == escalation.token)
        .values(token=token).execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    escalation.token = token
    return True


def advance(session: Session, escalation: Escalation, alert: Alert, now: datetime, *,
            accept_token: AcceptToken | None = None) -> list[Notification]:
    """Bring one escalation up to date with its alert and the time. Returns the notifications
    it wrote (the pending ones go out in `notify`)."""
    if alert.status in _HANDLED:
        why = "a responder accepted" if alert.status == AlertState.IN_PROGRESS else f"the alert is {alert.status}"
        _finish(session, escalation, alert, why)
        return []
    if alert.status == AlertState.ACKNOWLEDGED:
        return _remind(session, escalation, alert, now)

    # The alert is open: nobody has acted yet.
    if escalation.state == EscalationState.REMINDING:  # an acknowledgement cannot be undone; defensive
        escalation.state = EscalationState.RUNNING
    muted_by = inhibit.inhibitor(session, alert)
    if muted_by is not None:
        if escalation.state != EscalationState.INHIBITED:
            _cancel_pending(session, alert, f"muted by alert {muted_by.id} ({muted_by.title})")
        escalation.state = EscalationState.INHIBITED
        escalation.note = f"muted by alert {muted_by.id}: {muted_by.title}"
        escalation.due_at = now + timedelta(seconds=INHIBITED_RECHECK_S)
        return []
    if escalation.state == EscalationState.INHIBITED:  # the cause has cleared and this alert is still open
        escalation.state, escalation.step, escalation.cycle = EscalationState.RUNNING, 0, 0
        escalation.note = "no longer muted"
        escalation.due_at = now
    if escalation.due_at is None or escalation.due_at > now:
        return []
    if escalation.state == EscalationState.EXHAUSTED:
        return _notify_operators(session, escalation, alert, now, NotificationPurpose.EXHAUSTED,
                                 f"nobody has acknowledged {alert.title!r} after the whole chain ran "
                                 f"{escalation.cycles} times", wait_s=_last_wait(escalation))
    return _run_step(session, escalation, alert, now, accept_token)


def _run_step(session: Session, escalation: Escalation, alert: Alert, now: datetime,
              accept_token: AcceptToken | None) -> list[Notification]:
    chain = snapshot.load(escalation.steps)
    step = chain.steps[escalation.step]
    position = f"step {escalation.step + 1}/{len(chain.steps)}, cycle {escalation.cycle + 1}/{escalation.cycles}"
    elapsed = int((now - alert.opened_at).total_seconds())
    audience = step.audience.replace("_", " ")
    reason = f"{escalation.policy} chain {position}: {audience}; not acknowledged {elapsed} s after it opened"
    occasion = StepOccasion(cycle=escalation.cycle, step=escalation.step)
    operator_role = ROLE_OF_AUDIENCE[Audience.OPERATORS]
    planned = []
    for recipient in step.recipients:
        for index, address in enumerate(recipient.addresses):
            reference = notification_reference(alert.id, occasion, ToContact(recipient.responder_id, index))
            token_hash = None
            if accept_token is not None and recipient.role != operator_role:
                _token, token_hash = accept_token(reference)
            planned.append(_planned(alert, now, recipient, address, reference, NotificationPurpose.ESCALATION,
                                    reason, token_hash))
    if step.audience == Audience.OPERATORS:
        # The operators' own channel is the alarm queue, which has shown the alert since it opened.
        planned.append(_planned(alert, now, None, CONSOLE_ADDRESS,
                                notification_reference(alert.id, occasion, NoContact.CONSOLE),
                                NotificationPurpose.ESCALATION, reason, None, status=NotificationStatus.SENT,
                                detail="on the operators' alarm queue"))
    elif not step.reaches_anyone():
        if to_phone := step.to_phone():
            # Only numbers to phone (the emergency services' desk, a keyholder without e-mail): the step is
            # the operators' to do, on their alarm queue, which names whom to phone.
            planned.append(_planned(alert, now, None, CONSOLE_ADDRESS,
                                    notification_reference(alert.id, occasion, NoContact.CONSOLE),
                                    NotificationPurpose.ESCALATION, reason, None, status=NotificationStatus.SENT,
                                    detail=f"on the operators' alarm queue: phone {'; '.join(to_phone)}"))
        else:
            # Nobody to tell at this step: say so in the log instead of skipping it silently.
            planned.append(_planned(alert, now, None, "",
                                    notification_reference(alert.id, occasion, NoContact.NOBODY),
                                    NotificationPurpose.ESCALATION, reason, None, status=NotificationStatus.FAILED,
                                    detail=f"no {audience} with a contact point"))
    sent = _keep(session, planned)
    escalation.step += 1
    if escalation.step == len(chain.steps):
        escalation.step = 0
        escalation.cycle += 1
    escalation.due_at = now + timedelta(seconds=step.wait_s)
    if escalation.cycle >= escalation.cycles:
        policy = POLICIES.get(escalation.policy)
        if policy is None or policy.until_acknowledged:
            escalation.state = EscalationState.EXHAUSTED
        else:  # told once, as the policy says; the alert stays on the queue until handled
            escalation.state, escalation.due_at = EscalationState.FINISHED, None
            escalation.note = "sent once, as its policy says"
    return sent


_STEP_REFERENCE = re.compile(r"^alert-\d+/cycle-(\d+)/step-(\d+)/responder-\d+/")


def _step_of(notification: Notification) -> StepOccasion | None:
    """The chain step a notification was sent at (from its reference), or None for a timer's message."""
    found = _STEP_REFERENCE.match(notification.reference)
    return StepOccasion(cycle=int(found[1]), step=int(found[2])) if found else None


def _last_step_run(escalation: Escalation) -> StepOccasion | None:
    """The step `_run_step` ran last (escalation.step is the next one), or None before the first."""
    if escalation.step > 0:
        return StepOccasion(cycle=escalation.cycle, step=escalation.step - 1)
    if escalation.cycle == 0:
        return None
    return StepOccasion(cycle=escalation.cycle - 1, step=len(escalation.steps) - 1)


def declined(session: Session, notification: Notification, now: datetime) -> bool:
    """A responder said "No, I cannot go" to `notification` (the accept page or the family page).

    Marks every message of that step to that responder declined. When the alert is still open, its
    chain is running, the message is of the step the chain ran last and every responder told at that
    step has now declined, the next step is due at once instead of after the step's wait: nobody is
    on the way, so waiting for them only delays the next contact ("if in doubt, go out", TSA; the
    domain brief). Returns True when the chain was brought forward. Commit is the caller's."""
    step = _step_of(notification)
    if step is None or notification.responder_id is None:
        notification.declined_at = notification.declined_at or now
        return False
    prefix = f"alert-{notification.alert_id}/cycle-{step.cycle}/step-{step.step}/"
    told = [row for row in session.scalars(select(Notification).where(Notification.reference.startswith(prefix)))
            if row.responder_id is not None]
    for row in told:
        if row.responder_id == notification.responder_id and row.declined_at is None:
            row.declined_at = now
    escalation = session.scalar(select(Escalation).where(Escalation.alert_id == notification.alert_id))
    alert = session.get(Alert, notification.alert_id)
    if escalation is None or alert is None or alert.status != AlertState.OPEN:
        return False
    if escalation.state != EscalationState.RUNNING or _last_step_run(escalation) != step:
        return False
    if any(row.declined_at is None and row.accepted_at is None for row in told):
        return False  # someone else told at this step may still go
    if escalation.due_at is not None and escalation.due_at > now:
        escalation.due_at = now
        escalation.note = f"{notification.responder_name} cannot go: the next contact is asked now"
        escalation.token = new_token()  # a pass holding the old token does nothing
    return True


def _remind(session: Session, escalation: Escalation, alert: Alert, now: datetime) -> list[Notification]:
    if escalation.state != EscalationState.REMINDING:
        # Acknowledged: stop the chain at once, including anything not yet sent (OnCall #4654).
        _cancel_pending(session, alert, "acknowledged before it was sent", purpose=NotificationPurpose.ESCALATION)
        escalation.state = EscalationState.REMINDING
        escalation.note = "acknowledged; reminding if not resolved"
        escalation.due_at = now + timedelta(seconds=ACKNOWLEDGED_REMINDER_S)
        return []
    if escalation.due_at is None or escalation.due_at > now:
        return []
    minutes = ACKNOWLEDGED_REMINDER_S // 60
    return _notify_operators(session, escalation, alert, now, NotificationPurpose.REMINDER,
                             f"{alert.title!r} was acknowledged and is still not resolved (every {minutes} min)",
                             wait_s=ACKNOWLEDGED_REMINDER_S)


def _notify_operators(session: Session, escalation: Escalation, alert: Alert, now: datetime,
                      purpose: NotificationPurpose, reason: str, wait_s: int) -> list[Notification]:
    person = session.get(Person, alert.person_id)
    operators = recipients(session, person, Audience.OPERATORS)[0] if person is not None else []
    planned = []
    occasion = TimerOccasion(purpose=purpose, at=now)
    for operator in operators:
        for index, address in enumerate(operator.addresses):
            reference = notification_reference(alert.id, occasion, ToContact(operator.responder_id, index))
            planned.append(_planned(alert, now, operator, address, reference, purpose, reason, None))
    sent = _keep(session, planned)
    escalation.due_at = now + timedelta(seconds=max(wait_s, 60))
    return sent


def _last_wait(escalation: Escalation) -> int:
    chain = snapshot.load(escalation.steps)
    return chain.steps[-1].wait_s if chain.steps else 300


def _planned(alert: Alert, now: datetime, recipient: Recipient | None, address: str, reference: str,
             purpose: NotificationPurpose, reason: str, token_hash: str | None, *,
             status: NotificationStatus = NotificationStatus.PENDING, detail: str = "") -> Notification:
    """A notification to write (`_keep`), not yet in the session."""
    return Notification(
        alert_id=alert.id, responder_id=recipient.responder_id if recipient else None,
        responder_name=recipient.name if recipient else "", address=address, reference=reference,
        purpose=purpose, reason=reason, status=status, attempts=0,
        next_attempt_at=now if status == NotificationStatus.PENDING else None, detail=detail, created_at=now,
        accept_token_hash=token_hash,
    )


def _keep(session: Session, planned: list[Notification]) -> list[Notification]:
    """Write the `planned` notifications whose reference is not written yet (a retried pass: a step is
    never sent twice), with one query and one flush for them all. Returns those written."""
    if not planned:
        return []
    written = set(session.scalars(select(Notification.reference).where(
        Notification.reference.in_([notification.reference for notification in planned]))))
    new = [notification for notification in planned if notification.reference not in written]
    session.add_all(new)
    session.flush()
    return new


def _finish(session: Session, escalation: Escalation, alert: Alert, why: str) -> None:
    _cancel_pending(session, alert, f"not sent: {why}")
    escalation.state = EscalationState.FINISHED
    escalation.note = why
    escalation.due_at = None


def _cancel_pending(session: Session, alert: Alert, why: str, purpose: NotificationPurpose | None = None) -> None:
    query = select(Notification).where(Notification.alert_id == alert.id,
                                       Notification.status == NotificationStatus.PENDING)
    if purpose is not None:
        query = query.where(Notification.purpose == purpose)
    for notification in session.scalars(query):
        notification.status = NotificationStatus.CANCELLED
        notification.detail = why
        notification.next_attempt_at = None


def escalation_lines(session: Session, alert_ids: list[int]) -> dict[int, str]:
    """One line per alert for the alarm queue: the newest message to a responder and the
    chain's state, e.g. "Kim: sent (running)", or "emergency: running" before anyone is told."""
    if not alert_ids:
        return {}
    chains = {c.alert_id: c for c in session.scalars(select(Escalation).where(Escalation.alert_id.in_(alert_ids)))}
    newest: dict[int, Notification] = {}
    for notification in session.scalars(
            select(Notification).where(Notification.alert_id.in_(alert_ids), Notification.address != CONSOLE_ADDRESS)
            .order_by(Notification.id)):
        newest[notification.alert_id] = notification
    lines = {}
    for alert_id, chain in chains.items():
        quiet = chain.state in (EscalationState.FINISHED, EscalationState.INHIBITED)
        state = chain.note if quiet and chain.note else chain.state
        told = newest.get(alert_id)
        if told is None:
            lines[alert_id] = f"{chain.policy.replace('_', ' ')}: {state}"
            continue
        who = told.responder_name or "nobody"
        lines[alert_id] = f"{who}: {told.status} ({state})"
    return lines
