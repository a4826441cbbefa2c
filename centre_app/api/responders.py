"""Responders, their contact points, and the contacts each person has nominated.

Administrators add, change (`PUT /responders/{id}`: name, role, the whole list of contact points,
audited with before and after) and retire (`DELETE /responders/{id}`: never called again, taken
off every keyholder list, each list's change audited; the rows stay for the logs) responders.

A contact point must be usable (`channels.validate_address`) and, for an Apprise URL, reach
a public host: one inside the centre's own networks is refused unless
`TELECARE_ALLOWED_INTERNAL_TARGETS` allows it (`channels.targets`), so neither an escalation
nor a test message can be aimed at the centre itself or its neighbours.

Test messages (`POST /responders/{id}/test`) are limited, counted over the audit log's
"test_responder" rows (and any still waiting in memory): `TEST_LIMIT_PER_RESPONDER` per
responder and `TEST_LIMIT_OVERALL` in all within `TEST_WINDOW_S`; beyond, 429 with
`Retry-After` (seconds until one may go again), audited as "test_responder_refused".
"""

import json
import math
import threading
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from alerting.channels import InternalTargets, Message, NotifySettings, SmtpSettings, send, validate_address
from alerting.channels.targets import refusal
from alerting.escalation import contact_points, recipient_of
from alerting.policy import ROLE_OF_AUDIENCE
from centre_app.api.deps import (
    Admin,
    AdminOrOperator,
    Centre,
    CentreState,
    Db,
    DocumentedRoute,
    ErrorOut,
    RowId,
    VisiblePerson,
    invalid,
    refuse,
)
from monitoring_centre import audit
from monitoring_centre.storage import AuditEntry, ContactPoint, Person, PersonContact, Responder, User, utc_now

router = APIRouter(prefix="/api/v1", tags=["responders"], route_class=DocumentedRoute)
RESPONDER_ROLES = ("keyholder", *ROLE_OF_AUDIENCE.values())


class ResponderIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: str
    contact_points: list[str] = Field(default_factory=list, description="mailto:, sms: (GOV.UK Notify) or "
                                      "Apprise URLs, in order")


class ResponderOut(BaseModel):
    id: int
    name: str
    role: str
    contact_points: list[str]
    """Every contact point as entered, in its order: the addresses messages go to and the `tel:` numbers
    the operators phone (`alerting.escalation.recipient_of` tells them apart)."""


def _out(session: Session, responder: Responder) -> ResponderOut:
    return ResponderOut(id=responder.id, name=responder.name, role=responder.role,
                        contact_points=contact_points(session, responder.id))


@router.get("/responders")
def list_responders(user: AdminOrOperator, session: Db) -> list[ResponderOut]:
    return [_out(session, r) for r in session.scalars(select(Responder).order_by(Responder.name))]


@router.post("/responders", status_code=status.HTTP_201_CREATED)
def create_responder(new: ResponderIn, user: Admin, session: Db, centre: Centre) -> ResponderOut:
    """Add a responder. Every contact point is checked now, so a bad one fails here, not at 3 a.m.;
    so is one that would reach inside the centre's own networks (see the module docstring)."""
    _checked(new, centre)
    responder = Responder(name=new.name, role=new.role, active=True)
    session.add(responder)
    session.flush()
    for position, address in enumerate(new.contact_points):
        session.add(ContactPoint(responder_id=responder.id, address=address, position=position))
    audit.record(session, user.username, "create_responder", [None], f"responder {responder.id} ({new.role})")
    session.commit()
    return _out(session, responder)


def _checked(new: ResponderIn, centre: CentreState) -> None:
    """422 naming the field when the role is unknown or a contact point unusable (see the module docstring)."""
    if new.role not in RESPONDER_ROLES:
        raise invalid(("body", "role"), f"role must be one of {RESPONDER_ROLES}")
    allowed = _internal_targets(centre)
    for position, address in enumerate(new.contact_points):
        problem = validate_address(address) or refusal(address, allowed)
        if problem is not None:
            raise invalid(("body", "contact_points", position), f"contact point {address!r}: {problem}")


def _nominating(session: Session, responder_id: int) -> list[Person]:
    """The people who have the responder among their keyholders, by name."""
    return list(session.scalars(select(Person).join(PersonContact, PersonContact.person_id == Person.id)
                                .where(PersonContact.responder_id == responder_id).order_by(Person.name)))


def _found(request: Request, session: Session, user: User, responder_id: int) -> Responder:
    responder = session.get(Responder, responder_id)
    if responder is None:
        raise refuse(request, session, user, status.HTTP_404_NOT_FOUND, "no such responder", None, "none")
    return responder


@router.put("/responders/{responder_id}", responses={
    404: {"model": ErrorOut, "description": "No such responder."},
    409: {"model": ErrorOut, "description": "A keyholder people have nominated cannot change role."}})
def change_responder(request: Request, responder_id: RowId, new: ResponderIn, user: Admin, session: Db,
                     centre: Centre) -> ResponderOut:
    """Change a responder's name, role and contact points (the whole list, in order), checked as when
    adding one. Audited "change_responder" with the values before and after. A keyholder whom people
    have nominated keeps the keyholder role (409 naming how many): take them off those people's lists
    first. An escalation already running keeps the addresses it started with (its snapshot)."""
    responder = _found(request, session, user, responder_id)
    _checked(new, centre)
    people = _nominating(session, responder.id)
    if responder.role == "keyholder" and new.role != "keyholder" and people:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"{len(people)} people have {responder.name} as a keyholder: take them off those "
                            "lists before changing the role")
    before = _out(session, responder).model_dump(exclude={"id"})
    responder.name, responder.role = new.name, new.role
    session.execute(delete(ContactPoint).where(ContactPoint.responder_id == responder.id))
    for position, address in enumerate(new.contact_points):
        session.add(ContactPoint(responder_id=responder.id, address=address, position=position))
    session.flush()
    after = _out(session, responder).model_dump(exclude={"id"})
    audit.record(session, user.username, "change_responder", [None],
                 json.dumps({"responder": responder.id, "before": before, "after": after}))
    session.commit()
    return _out(session, responder)


class RetiredOut(BaseModel):
    id: int
    name: str
    removed_from: list[str]
    """The people who had this responder as a keyholder, by name: each needs another one now."""


@router.delete("/responders/{responder_id}", responses={404: {"model": ErrorOut, "description": "No such responder."}})
def retire_responder(request: Request, responder_id: RowId, user: Admin, session: Db) -> RetiredOut:
    """Retire a responder: no escalation that starts from now on calls them (`Responder.active`), and
    they leave every person's keyholder list. The rows stay, so the notification log and the audit
    log still name them. Audited "retire_responder", and "change_contacts" with each person's list
    before and after; the answer names the people who need another keyholder."""
    responder = _found(request, session, user, responder_id)
    people = _nominating(session, responder.id)
    for person in people:
        before = list(session.scalars(select(PersonContact.responder_id).where(PersonContact.person_id == person.id)
                                      .order_by(PersonContact.position)))
        after = [rid for rid in before if rid != responder.id]
        session.execute(delete(PersonContact).where(PersonContact.person_id == person.id,
                                                    PersonContact.responder_id == responder.id))
        for position, contact in enumerate(session.scalars(
                select(PersonContact).where(PersonContact.person_id == person.id).order_by(PersonContact.position))):
            contact.position = position
        audit.record(session, user.username, "change_contacts", [person.id],
                     json.dumps({"before": before, "after": after, "why": f"responder {responder.id} retired"}))
    responder.active = False
    audit.record(session, user.username, "retire_responder", [None],
                 f"responder {responder.id} ({responder.name}); taken off {len(people)} keyholder lists")
    session.commit()
    return RetiredOut(id=responder.id, name=responder.name, removed_from=[person.name for person in people])


@router.put("/patients/{person_id}/contacts")
def set_contacts(responder_ids: Annotated[list[RowId], Body(embed=True)], user: Admin, person: VisiblePerson,
                 session: Db) -> list[ResponderOut]:
    """The keyholders the person has nominated, in the order they want them called."""
    # An admin sees everyone: for them `VisiblePerson` is simply "404 if there is no such person".
    if len(set(responder_ids)) != len(responder_ids):
        raise invalid(("body", "responder_ids"), "a responder is listed twice")
    responders = [session.get(Responder, rid) for rid in responder_ids]
    for position, responder in enumerate(responders):
        if responder is None:
            raise invalid(("body", "responder_ids", position), "no such responder")
        if responder.role != "keyholder":
            raise invalid(("body", "responder_ids", position),
                          f"{responder.name} is not a keyholder (they are the centre's "
                          f"{responder.role.replace('_', ' ')}): only a keyholder can be one of a person's keyholders")
    session.execute(delete(PersonContact).where(PersonContact.person_id == person.id))
    now = utc_now()
    for position, rid in enumerate(responder_ids):
        session.add(PersonContact(person_id=person.id, responder_id=rid, position=position, nominated_at=now))
    audit.record(session, user.username, "change_contacts", [person.id], f"in order: {responder_ids}")
    session.commit()
    return [_out(session, r) for r in responders if r is not None]


class TestDelivery(BaseModel):
    address: str
    ok: bool
    detail: str


TEST_WINDOW_S = 10 * 60
"""The window test messages are counted over."""
TEST_LIMIT_PER_RESPONDER = 3
"""Test messages to one responder per window. A test proves a channel once; three let an
administrator correct an address and try twice more. A keyholder's phone is someone's own
phone, and an SMS gateway charges per message: more is a nuisance to them, or an attack on
them through the centre."""
TEST_LIMIT_OVERALL = 20
"""Test messages in all per window, whoever asks: enough to check a small team in one sitting
(the operators' pagers, the nurses, the keyholders just enrolled). Each test connects to an
address an administrator chose; more than this is not testing but using the centre as a
message cannon, or as a probe."""
_reserving = threading.Lock()
"""One check-and-count at a time in this process (SQLite serialises them across processes too)."""


@router.post("/responders/{responder_id}/test", responses={
    404: {"model": ErrorOut, "description": "No such responder."},
    429: {"model": ErrorOut, "description": "Too many test messages: try again after `Retry-After` seconds."}})
def send_test(request: Request, responder_id: RowId, user: AdminOrOperator, session: Db,
              centre: Centre) -> list[TestDelivery]:
    """Send a test message to every contact point of a responder, now, through the real
    channels, and say how each went: a notifier is known to work before an alarm needs it.
    Limited (429, see the module docstring); an address inside the centre's own networks is
    not sent to (its delivery says why). No database transaction is open while sending."""
    responder = session.get(Responder, responder_id)
    if responder is None:
        raise refuse(request, session, user, status.HTTP_404_NOT_FOUND, "no such responder", None, "none")
    addresses = list(recipient_of(session, responder).addresses)  # a `tel:` number is phoned, never sent to
    with _reserving:
        wait_s = _test_wait_s(session, centre, responder_id, utc_now())
        if wait_s is not None:
            audit.record(session, user.username, "test_responder_refused", [None],
                         f"responder {responder_id}: too many test messages, next in {wait_s} s")
            session.commit()
            raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                                f"too many test messages (at most {TEST_LIMIT_PER_RESPONDER} per responder and "
                                f"{TEST_LIMIT_OVERALL} in all every {TEST_WINDOW_S // 60} minutes): "
                                f"try again in {wait_s} s", headers={"Retry-After": str(wait_s)})
        audit.record(session, user.username, "test_responder", [None],
                     f"responder {responder_id}: to {len(addresses)} contact points")
        session.commit()  # counted before anything is sent
    stamp = utc_now()
    message = Message(subject="Test message from the telecare monitoring centre",
                      body=f"This is a test, sent by {user.username} at {stamp:%H:%M} UTC. No action is needed.",
                      priority=9, reference=f"test/responder-{responder_id}/{int(stamp.timestamp())}")
    allowed = _internal_targets(centre)
    results = [TestDelivery(address=address, **_delivery(address, message, centre.settings.smtp, allowed,
                                                         centre.settings.notify))
               for address in addresses]
    audit.record(session, user.username, "test_responder_result", [None],
                 f"responder {responder_id}: " + ", ".join("ok" if r.ok else "failed" for r in results))
    session.commit()
    return results


def _test_wait_s(session: Session, centre: CentreState, responder_id: int, now: datetime) -> int | None:
    """Seconds until another test message to this responder may go (the later of the two
    limits to clear), or None if one may go now."""
    since = now - timedelta(seconds=TEST_WINDOW_S)
    rows = session.execute(select(AuditEntry.at, AuditEntry.detail).where(
        AuditEntry.action == "test_responder", AuditEntry.at >= since)).all()
    waiting = centre.storage.backlog.waiting("test_responder", since)
    sent = sorted([(at, detail) for at, detail in rows] + [(row.at, row.detail) for row in waiting])
    mine = [at for at, detail in sent if detail.startswith(f"responder {responder_id}:")]
    everyone = [at for at, _detail in sent]
    wait = 0.0
    for times, limit in ((mine, TEST_LIMIT_PER_RESPONDER), (everyone, TEST_LIMIT_OVERALL)):
        if len(times) >= limit:  # one may go when the oldest that keeps the count at the limit leaves the window
            frees_at = times[len(times) - limit] + timedelta(seconds=TEST_WINDOW_S)
            wait = max(wait, (frees_at - now).total_seconds())
    return max(1, math.ceil(wait)) if wait > 0 else None


def _internal_targets(centre: CentreState) -> InternalTargets:
    return InternalTargets.parse(centre.settings.allowed_internal_targets)


def _delivery(address: str, message: Message, smtp: SmtpSettings | None,
              allowed: InternalTargets, notify: NotifySettings | None = None) -> dict[str, bool | str]:
    delivery = send(address, message, smtp, internal=allowed, notify=notify)
    return {"ok": delivery.ok, "detail": delivery.detail}
