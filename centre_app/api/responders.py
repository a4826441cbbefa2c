"""Responders, their contact points, and the contacts each person has nominated."""

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, status
from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from alerting.channels import Message, SmtpSettings, send, validate_address
from alerting.escalation import recipient_of
from alerting.policy import ROLE_OF_AUDIENCE
from centre_app.api.deps import Admin, AdminOrOperator, Centre, Db, VisiblePerson
from monitoring_centre import audit
from monitoring_centre.storage import ContactPoint, PersonContact, Responder, utc_now

router = APIRouter(prefix="/api/v1", tags=["responders"])
RESPONDER_ROLES = ("keyholder", *ROLE_OF_AUDIENCE.values())


class ResponderIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: str
    contact_points: list[str] = Field(default_factory=list, description="mailto: or Apprise URLs, in order")


class ResponderOut(BaseModel):
    id: int
    name: str
    role: str
    contact_points: list[str]


def _out(session: Session, responder: Responder) -> ResponderOut:
    addresses = recipient_of(session, responder).addresses
    return ResponderOut(id=responder.id, name=responder.name, role=responder.role, contact_points=list(addresses))


@router.get("/responders")
def list_responders(user: AdminOrOperator, session: Db) -> list[ResponderOut]:
    return [_out(session, r) for r in session.scalars(select(Responder).order_by(Responder.name))]


@router.post("/responders", status_code=status.HTTP_201_CREATED)
def create_responder(new: ResponderIn, user: Admin, session: Db) -> ResponderOut:
    """Add a responder. Every contact point is checked now, so a bad one fails here, not at 3 a.m."""
    if new.role not in RESPONDER_ROLES:
        raise HTTPException(422, f"role must be one of {RESPONDER_ROLES}")
    for address in new.contact_points:
        problem = validate_address(address)
        if problem is not None:
            raise HTTPException(422, f"contact point {address!r}: {problem}")
    responder = Responder(name=new.name, role=new.role, active=True)
    session.add(responder)
    session.flush()
    for position, address in enumerate(new.contact_points):
        session.add(ContactPoint(responder_id=responder.id, address=address, position=position))
    audit.record(session, user.username, "create_responder", [None], f"responder {responder.id} ({new.role})")
    session.commit()
    return _out(session, responder)


@router.put("/patients/{person_id}/contacts")
def set_contacts(responder_ids: Annotated[list[int], Body(embed=True)], user: Admin, person: VisiblePerson,
                 session: Db) -> list[ResponderOut]:
    """The keyholders the person has nominated, in the order they want them called."""
    # An admin sees everyone: for them `VisiblePerson` is simply "404 if there is no such person".
    if len(set(responder_ids)) != len(responder_ids):
        raise HTTPException(422, "a responder is listed twice")
    responders = [session.get(Responder, rid) for rid in responder_ids]
    if any(r is None for r in responders):
        raise HTTPException(422, "no such responder")
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


@router.post("/responders/{responder_id}/test")
def send_test(responder_id: int, user: AdminOrOperator, session: Db, centre: Centre) -> list[TestDelivery]:
    """Send a test message to every contact point of a responder, now, through the real
    channels, and say how each went: a notifier is known to work before an alarm needs it."""
    responder = session.get(Responder, responder_id)
    if responder is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such responder")
    stamp = utc_now()
    message = Message(subject="Test message from the telecare monitoring centre",
                      body=f"This is a test, sent by {user.username} at {stamp:%H:%M} UTC. No action is needed.",
                      priority=9, reference=f"test/responder-{responder_id}/{int(stamp.timestamp())}")
    results = [TestDelivery(address=address, **_delivery(address, message, centre.settings.smtp))
               for address in _out(session, responder).contact_points]
    audit.record(session, user.username, "test_responder", [None],
                 f"responder {responder_id}: " + ", ".join("ok" if r.ok else "failed" for r in results))
    session.commit()
    return results


def _delivery(address: str, message: Message, smtp: SmtpSettings | None) -> dict[str, bool | str]:
    delivery = send(address, message, smtp)
    return {"ok": delivery.ok, "detail": delivery.detail}
