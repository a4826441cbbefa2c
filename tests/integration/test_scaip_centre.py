"""A whole centre (Mosquitto, SQLite, escalator) with its SCAIP receiver switched on by settings:
another maker's pull cord, over SIP on loopback, reaches the person's keyholder as a text
message through GOV.UK Notify (a stand-in on loopback)."""

import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from centre_app.centre import Centre, CentreThread
from monitoring_centre.broker import BrokerAccount
from monitoring_centre.enrolment import enrol_home
from monitoring_centre.storage import Alert, ContactPoint, PersonContact, Responder
from telecare_protocol import scaip
from tests.support.centre import centre_settings
from tests.support.notify_standin import API_KEY, SMS_TEMPLATE, NotifyStandIn, notify_standin
from tests.support.waiting import wait_for

PULL_CORD = b"<mrq><ref>803137200003</ref><mty>ME</mty><cid>8031372</cid><dty>0004</dty><stc>0010</stc>" \
            b"<crd>gsm:+</crd></mrq>"


@pytest.fixture
def notify() -> Iterator[NotifyStandIn]:
    with notify_standin() as standin:
        yield standin


@pytest.fixture
def centre(tmp_path: Path, mosquitto: Any, broker_accounts: dict[str, BrokerAccount],
           notify: NotifyStandIn) -> Iterator[Centre]:
    settings = centre_settings(
        tmp_path / "centre.db", mosquitto, broker_accounts, alerting_poll_s=0.1,
        scaip={"port": 0, "units": {"8031372": "scaip-8031372"}},
        notify={"api_key": API_KEY, "sms_template_id": SMS_TEMPLATE, "base_url": notify.base_url},
    )
    centre = Centre(settings)
    with centre.sessions() as session:
        person = enrol_home(session, name="Margaret Hughes", address="12 Elm Road", hub_id="scaip-8031372",
                            devices=[])
        person.service = "keyholder_only"
        susan = Responder(name="Susan (daughter)", role="keyholder", active=True)
        session.add(susan)
        session.flush()
        session.add(ContactPoint(responder_id=susan.id, address="sms:+447700900123", position=0))
        session.add(PersonContact(person_id=person.id, responder_id=susan.id, position=0,
                                  nominated_at=datetime.now(UTC)))
        session.commit()
    with CentreThread(centre):
        yield centre


def test_a_scaip_pull_cord_reaches_the_keyholder_by_text(centre: Centre, notify: NotifyStandIn) -> None:
    assert centre.scaip is not None and centre.scaip.port > 0
    request = (f"MESSAGE sip:alarms@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK"
               f"{uuid.uuid4().hex[:10]}\r\nFrom: <sip:8031372@127.0.0.1>;tag=1\r\nTo: <sip:alarms@127.0.0.1>\r\n"
               f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 MESSAGE\r\nContent-Type: application/scaip+xml\r\n"
               f"Content-Length: {len(PULL_CORD)}\r\n\r\n").encode() + PULL_CORD
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as unit:
        unit.settimeout(10)  # a guard against a hang, not a measurement
        unit.sendto(request, ("127.0.0.1", centre.scaip.port))
        answer, _ = unit.recvfrom(65535)
    assert answer.startswith(b"SIP/2.0 200 OK\r\n")
    mrs = scaip.parse_response(answer.partition(b"\r\n\r\n")[2])
    assert (mrs.reference, mrs.status) == ("803137200003", scaip.StatusNumber.OK)

    with centre.sessions() as session:
        [alert] = session.scalars(select(Alert)).all()
        assert (alert.rule, alert.hub_id) == ("pendant_alarm", "scaip-8031372")
    [text] = wait_for(lambda: notify.received, what="the keyholder's text message")
    body = text.body["personalisation"]["body"]
    assert text.body["phone_number"] == "+447700900123"
    assert body.startswith("Telecare alarm: Margaret Hughes pressed the help button at ") and "/accept/" in body
