"""A keyholder's `tel:` contact point: a number for the operator to phone from the call screen
(`monitoring_centre/caller_record.py`), never a channel: the escalation leaves it out
(`alerting/escalation.py`, `recipient_of`) and `channels.send` refuses it should one arrive."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerting import escalation
from alerting.channels import Message, send, validate_address
from alerting.escalation import recipient_of
from alerting.notify import CONSOLE_ADDRESS
from alerting.tables import Notification
from centre_app import schema
from monitoring_centre.caller_record import keyholders
from monitoring_centre.storage import Alert, ContactPoint, PersonContact, Responder, make_engine
from tests.support.alerting_home import T0, enrol_keyholder_home, press


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'centre.db'}")
    schema.upgrade(engine)
    with sessionmaker(engine, expire_on_commit=False)() as session:
        yield session
    engine.dispose()


@pytest.mark.parametrize("address", ["tel:+447700900123", "tel:07700900123", "TEL:+447700900123"])
def test_a_phone_number_is_a_valid_tel_contact_point(address: str) -> None:
    assert validate_address(address) is None


@pytest.mark.parametrize("address", ["tel:", "tel:susan", "tel:+44 7700 900123", "tel:123"])
def test_a_tel_contact_point_must_be_a_phone_number(address: str) -> None:
    problem = validate_address(address)
    assert problem is not None and "tel:+447700900123" in problem


def test_no_channel_sends_to_a_tel_contact_point() -> None:
    delivery = send("tel:+447700900123", Message(subject="s", body="b", priority=1, reference="alert-1/step-0"), None)
    assert (delivery.ok, delivery.channel, delivery.retry) == (False, "tel", False)


def test_the_operator_sees_the_number_and_the_escalation_leaves_it_out(session: Session) -> None:
    home = enrol_keyholder_home(session)
    session.add(ContactPoint(responder_id=home.kim_id, address="tel:07700900123", position=9))
    session.commit()
    kim = recipient_of(session, session.get_one(Responder, home.kim_id))
    assert kim.addresses and not any(address.startswith("tel:") for address in kim.addresses)
    assert kim.phones == ("tel:07700900123",)
    shown = {phone.number for holder in keyholders(session, home.person_id) for phone in holder.phones}
    assert "07700900123" in shown


def test_a_step_with_only_numbers_to_phone_is_the_operators_task_naming_whom(session: Session) -> None:
    """Kim has only a phone number (and Lee is no longer a keyholder): her step is not "nobody could be told"
    but a line on the operators' alarm queue saying whom to phone, and on which number."""
    home = enrol_keyholder_home(session)
    for point in session.scalars(select(ContactPoint).where(ContactPoint.responder_id == home.kim_id)):
        session.delete(point)
    session.add(ContactPoint(responder_id=home.kim_id, address="tel:07700900123", position=0))
    session.delete(session.scalars(select(PersonContact).where(PersonContact.responder_id == home.lee_id)).one())
    session.commit()
    alert = session.get_one(Alert, press(session, home.person_id))
    chain = escalation.start(session, alert, T0)
    escalation.advance(session, chain, alert, T0)
    [step] = session.scalars(select(Notification).where(Notification.alert_id == alert.id)).all()
    assert (step.address, step.status) == (CONSOLE_ADDRESS, "sent")
    assert step.detail == "on the operators' alarm queue: phone Kim (daughter) (07700900123)"
