"""The GOV.UK Notify channel against a stand-in for Notify's API on loopback
(tests/support/notify_standin.py), which checks the client's JWT and JSON as Notify does."""

import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerting.channels import Message, NotifySettings, send, validate_address
from alerting.escalator import AlertingMetrics, AlertingSettings, Escalator
from alerting.notify import RETRY_AFTER_S, NotificationStatus
from alerting.tables import Notification
from detection.events import PENDANT_ALARM
from monitoring_centre import alerts
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.storage import ContactPoint, PersonContact, Responder
from tests.support.notify_standin import (
    API_KEY,
    EMAIL_TEMPLATE,
    SECRET,
    SERVICE_ID,
    SMS_TEMPLATE,
    NotifyStandIn,
    notify_standin,
)

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
MESSAGE = Message(subject="Ada Lovelace pressed the help button", body="Ada Lovelace pressed the help button.",
                  priority=1, reference="alert-7/cycle-0/step-1/responder-2/contact-0",
                  links={"accept": "http://centre.test/accept/abc"},
                  sms="Telecare alarm: Ada Lovelace pressed the help button at 02:00. Can you go? "
                      "Accept: http://centre.test/accept/abc")


@pytest.fixture
def notify() -> Iterator[NotifyStandIn]:
    with notify_standin() as standin:
        yield standin


def settings(standin: NotifyStandIn, **overrides: object) -> NotifySettings:
    return NotifySettings(api_key=SecretStr(API_KEY), sms_template_id=SMS_TEMPLATE, base_url=standin.base_url,
                          timeout_s=5, **overrides)


def test_a_text_message_goes_to_notify_signed_and_addressed_as_notify_wants(notify: NotifyStandIn) -> None:
    delivery = send("sms:+447700900123", MESSAGE, None, notify=settings(notify))
    assert delivery.ok and delivery.channel == "notify-sms", delivery.detail
    assert notify.problems == []
    [request] = notify.received
    assert request.path == "/v2/notifications/sms"
    assert request.claims["iss"] == SERVICE_ID and abs(time.time() - request.claims["iat"]) <= 30
    assert request.body == {"phone_number": "+447700900123", "template_id": SMS_TEMPLATE,
                            "personalisation": {"body": MESSAGE.sms}, "reference": MESSAGE.reference}
    assert "accepted by GOV.UK Notify (id " in delivery.detail


def test_mail_goes_through_notify_when_the_centre_has_a_notify_email_template(notify: NotifyStandIn) -> None:
    delivery = send("mailto:kim@family.test", MESSAGE, None,
                    notify=settings(notify, email_template_id=EMAIL_TEMPLATE))
    assert delivery.ok and delivery.channel == "notify-email", delivery.detail
    [request] = notify.received
    assert request.path == "/v2/notifications/email"
    assert request.body["email_address"] == "kim@family.test"
    assert request.body["template_id"] == EMAIL_TEMPLATE
    assert request.body["personalisation"]["subject"] == MESSAGE.subject
    assert "Accept: http://centre.test/accept/abc" in request.body["personalisation"]["body"]


def test_without_a_notify_email_template_mail_still_goes_to_the_smtp_server(notify: NotifyStandIn) -> None:
    delivery = send("mailto:kim@family.test", MESSAGE, None, notify=settings(notify))
    assert not delivery.ok and delivery.channel == "email" and "no SMTP server" in delivery.detail
    assert notify.received == []


@pytest.mark.parametrize(("status", "retry"), [(400, False), (403, False), (429, True), (500, True)])
def test_notify_refusals_fail_at_once_and_its_troubles_are_retried(notify: NotifyStandIn, status: int,
                                                                  retry: bool) -> None:
    notify.answers.append(status)
    delivery = send("sms:07700900123", MESSAGE, None, notify=settings(notify))
    assert not delivery.ok and delivery.retry is retry
    assert f"GOV.UK Notify answered {status}" in delivery.detail
    assert SECRET not in delivery.detail and API_KEY not in delivery.detail


def test_a_wrong_key_is_refused_by_notify_and_not_retried(notify: NotifyStandIn) -> None:
    wrong = f"test_key-{SERVICE_ID}-00000000-0000-4000-8000-000000000000"
    delivery = send("sms:+447700900123", MESSAGE, None,
                    notify=replace_key(settings(notify), wrong))
    assert not delivery.ok and delivery.retry is False and "403" in delivery.detail
    assert notify.problems and notify.problems[0].startswith("Invalid token: signature")


def replace_key(current: NotifySettings, key: str) -> NotifySettings:
    return current.model_copy(update={"api_key": SecretStr(key)})


def test_notify_out_of_reach_is_retried() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = NotifySettings(api_key=SecretStr(API_KEY), sms_template_id=SMS_TEMPLATE,
                                 base_url=f"http://127.0.0.1:{port}", timeout_s=5)
    delivery = send("sms:+447700900123", MESSAGE, None, notify=unreachable)
    assert not delivery.ok and delivery.retry is True and "no answer" in delivery.detail


def test_sms_addresses_are_checked_and_need_a_template(notify: NotifyStandIn) -> None:
    assert validate_address("sms:+447700900123") is None
    assert validate_address("sms:07700900123") is None
    problem = validate_address("sms:not-a-number")
    assert problem is not None and "not a phone number" in problem
    no_template = NotifySettings(api_key=SecretStr(API_KEY), base_url=notify.base_url)
    delivery = send("sms:+447700900123", MESSAGE, None, notify=no_template)
    assert not delivery.ok and not delivery.retry and "SMS template" in delivery.detail
    assert not send("sms:+447700900123", MESSAGE, None).ok  # no Notify at all


def test_settings_refuse_a_key_that_is_not_a_notify_key_without_quoting_it() -> None:
    with pytest.raises(ValidationError) as refused:
        NotifySettings(api_key=SecretStr("sekrit-but-not-a-notify-key"))
    assert "sekrit" not in str(refused.value)
    with pytest.raises(ValidationError):
        NotifySettings(api_key=SecretStr(API_KEY), sms_template_id="not-a-uuid")


# --- through the escalator: the same delivery status and retries as every channel -------------


@pytest.fixture
def sessions(migrated_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    return migrated_sessions


def keyholder_with_a_phone(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        person = enrol_home(session, name="Ada Lovelace", address="1 Test Street, Leeds", hub_id="hub-1",
                            devices=[DeviceRecord("pendant-1", "pendant")])
        person.service = "keyholder_only"
        kim = Responder(name="Kim (daughter)", role="keyholder", active=True)
        session.add(kim)
        session.flush()
        session.add(ContactPoint(responder_id=kim.id, address="sms:+447700900123", position=0))
        session.add(PersonContact(person_id=person.id, responder_id=kim.id, position=0, nominated_at=T0))
        alerts.raise_alert(session, person_id=person.id, hub_id="hub-1", rule=PENDANT_ALARM, subject="", at=T0,
                           evidence={"code": "test"}, why="a test alarm")
        session.commit()
        return person.id


def escalator(sessions: sessionmaker[Session], standin: NotifyStandIn, clock: list[datetime]) -> Escalator:
    base = AlertingSettings(public_url="http://centre.test")
    return Escalator(sessions, replace(base, notify=settings(standin)), AlertingMetrics(CollectorRegistry()),
                     clock=lambda: clock[0])


def texts_to_kim(sessions: sessionmaker[Session]) -> list[Notification]:
    with sessions() as session:
        return list(session.scalars(select(Notification).where(Notification.address == "sms:+447700900123")))


def test_a_keyholder_is_texted_in_plain_words_with_the_accept_link(sessions: sessionmaker[Session],
                                                                   notify: NotifyStandIn) -> None:
    keyholder_with_a_phone(sessions)
    clock = [T0]
    escalator(sessions, notify, clock).run_once()
    [sent] = texts_to_kim(sessions)
    assert sent.status == NotificationStatus.SENT, sent.detail
    [request] = notify.received
    text = request.body["personalisation"]["body"]
    assert text.startswith("Telecare alarm: Ada Lovelace pressed the help button at 02:00")
    assert "http://centre.test/accept/" in text and "999" in text
    assert len(text) <= 160, text
    assert request.body["reference"] == sent.reference


def test_notify_refusing_a_number_fails_the_text_at_once_and_a_notify_outage_is_retried(
        sessions: sessionmaker[Session], notify: NotifyStandIn) -> None:
    keyholder_with_a_phone(sessions)
    clock = [T0]
    notify.answers.append(500)
    worker = escalator(sessions, notify, clock)
    worker.run_once()
    [text] = texts_to_kim(sessions)
    assert text.status == NotificationStatus.PENDING and "500" in text.detail
    assert text.next_attempt_at is not None and text.next_attempt_at.replace(tzinfo=UTC) == \
        T0 + timedelta(seconds=RETRY_AFTER_S[0])

    notify.answers.append(400)
    clock[0] = T0 + timedelta(seconds=RETRY_AFTER_S[0])
    worker.run_once()
    [text] = texts_to_kim(sessions)
    assert text.status == NotificationStatus.FAILED and "400" in text.detail
    assert text.attempts == 2 and text.next_attempt_at is None
