"""Notification channels against real servers on loopback: SMTP (aiosmtpd) and an HTTP webhook."""

import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from alerting.channels import Delivery, InternalTargets, Message, SmtpSettings, send, validate_address
from alerting.channels.email import compose
from tests.support.helpers import free_port
from tests.support.smtp_server import SmtpServer, silent_server, smtp_server
from tests.support.webhook import Webhook

RESPONDER = "responder@example.org"
ACCEPT_URL = "https://centre.example.org/alerts/12/accept?token=abc"
PASSWORD = "correct-horse-" + "battery"
LOOPBACK = InternalTargets.parse(["127.0.0.0/8"])
"""The test webhooks listen on loopback, which the centre refuses unless told otherwise."""

pytestmark = pytest.mark.filterwarnings(
    # the AUTH test server runs without TLS on purpose; aiosmtpd warns about that
    "ignore:Requiring AUTH while not requiring TLS:UserWarning"
)


def fall_alarm(reference: str = "alert-12/step-0/responder-3", priority: int = 1) -> Message:
    return Message(
        subject="Fall detected: Ada Lovelace",
        body="Ada Lovelace's fall detector raised an alarm at 03:12.\nPlease call her or go round.",
        priority=priority,
        reference=reference,
        links={"accept": ACCEPT_URL},
    )


def settings(server: SmtpServer | None = None, **overrides: Any) -> SmtpSettings:
    values: dict[str, Any] = {
        "host": server.host if server else "127.0.0.1",
        "port": server.port if server else free_port(),
        "starttls": False,
        "mail_from": "Telecare Centre <alerts@centre.example.org>",
        "timeout_s": 5.0,
    }
    values.update(overrides)
    return SmtpSettings(**values)


@pytest.fixture
def mail_server() -> Iterator[SmtpServer]:
    with smtp_server(refuse={"nobody@example.org": "550 5.1.1 No such user here"}) as server:
        yield server


@pytest.fixture
def auth_mail_server() -> Iterator[SmtpServer]:
    with smtp_server(accounts={"centre": PASSWORD}) as server:
        yield server


# --- e-mail ---------------------------------------------------------------------------------


def test_mail_arrives_with_sender_recipient_priority_and_accept_link(mail_server: SmtpServer) -> None:
    delivery = send(f"mailto:{RESPONDER}", fall_alarm(), settings(mail_server))

    assert delivery == Delivery(ok=True, channel="email", detail="250 2.0.0 Ok: queued as test-1")
    [mail] = mail_server.mailbox.received
    assert mail.mail_from == "alerts@centre.example.org"
    assert mail.rcpt_tos == [RESPONDER]
    assert mail.message["From"] == "Telecare Centre <alerts@centre.example.org>"
    assert mail.message["To"] == RESPONDER
    assert mail.message["Subject"] == "[EMERGENCY] Fall detected: Ada Lovelace"
    assert mail.message["X-Priority"] == "1"
    assert mail.message["Message-ID"] == "<alert-12/step-0/responder-3@centre.example.org>"
    assert "Please call her or go round." in mail.text
    assert f"Accept: {ACCEPT_URL}" in mail.text


def test_a_retry_keeps_the_message_id_and_another_notification_gets_its_own(mail_server: SmtpServer) -> None:
    smtp = settings(mail_server)
    for reference in ("alert-12/step-0/responder-3", "alert-12/step-0/responder-3", "alert-12/step-1/responder 4"):
        assert send(f"mailto:{RESPONDER}", fall_alarm(reference), smtp).ok

    first, retry, other = (mail.message["Message-ID"] for mail in mail_server.mailbox.received)
    assert first == retry
    assert other == "<alert-12/step-1/responder%204@centre.example.org>"


@pytest.mark.parametrize(
    ("priority", "prefix", "x_priority"),
    [
        (1, "[EMERGENCY]", "1"),
        (2, "[URGENT]", "1"),
        (3, "[HIGH]", None),
        (4, "[SUPERVISION]", None),
        (5, "[RESTORAL]", None),
        (9, "[ROUTINE]", None),
    ],
)
def test_subject_prefix_and_x_priority_follow_the_priority(priority: int, prefix: str, x_priority: str | None) -> None:
    mail = compose(RESPONDER, fall_alarm(priority=priority), settings())
    assert mail["Subject"] == f"{prefix} Fall detected: Ada Lovelace"
    assert mail["X-Priority"] == x_priority


def test_login_with_the_right_password_delivers(auth_mail_server: SmtpServer) -> None:
    smtp = settings(auth_mail_server, username="centre", password=SecretStr(PASSWORD))
    delivery = send(f"mailto:{RESPONDER}", fall_alarm(), smtp)

    assert delivery.ok, delivery.detail
    assert [mail.rcpt_tos for mail in auth_mail_server.mailbox.received] == [[RESPONDER]]


def test_a_wrong_password_is_refused_and_not_repeated_in_the_detail(auth_mail_server: SmtpServer) -> None:
    wrong = "wrong-" + PASSWORD
    delivery = send(
        f"mailto:{RESPONDER}", fall_alarm(), settings(auth_mail_server, username="centre", password=SecretStr(wrong))
    )

    assert not delivery.ok
    assert "535" in delivery.detail and "login refused" in delivery.detail
    assert wrong not in delivery.detail and PASSWORD not in delivery.detail
    assert auth_mail_server.mailbox.received == []


def test_without_login_a_server_requiring_auth_refuses(auth_mail_server: SmtpServer) -> None:
    delivery = send(f"mailto:{RESPONDER}", fall_alarm(), settings(auth_mail_server))
    assert not delivery.ok
    assert "530" in delivery.detail


def test_nothing_listening_is_reported_promptly() -> None:
    started = time.monotonic()
    delivery = send(f"mailto:{RESPONDER}", fall_alarm(), settings(port=free_port(), timeout_s=2.0))

    assert time.monotonic() - started < 2.0
    assert not delivery.ok
    assert "could not connect" in delivery.detail and "connection refused" in delivery.detail


def test_a_server_that_never_answers_times_out() -> None:
    with silent_server() as port:
        started = time.monotonic()
        delivery = send(f"mailto:{RESPONDER}", fall_alarm(), settings(port=port, timeout_s=0.3))

    assert time.monotonic() - started < 2.0
    assert not delivery.ok
    assert "no answer within 0.3 s" in delivery.detail


def test_a_refused_recipient_gives_the_servers_550(mail_server: SmtpServer) -> None:
    delivery = send("mailto:nobody@example.org", fall_alarm(), settings(mail_server))

    assert not delivery.ok
    assert "550 5.1.1 No such user here" in delivery.detail
    assert mail_server.mailbox.received == []


def test_starttls_required_but_not_offered_is_not_sent_in_clear(mail_server: SmtpServer) -> None:
    delivery = send(f"mailto:{RESPONDER}", fall_alarm(), settings(mail_server, starttls=True))

    assert not delivery.ok
    assert "STARTTLS" in delivery.detail
    assert mail_server.mailbox.received == []


def test_without_an_smtp_server_mail_is_not_sent() -> None:
    assert send(f"mailto:{RESPONDER}", fall_alarm(), None) == Delivery(
        ok=False, channel="email", detail="no SMTP server configured"
    )


def test_a_bad_mailto_is_returned_not_raised(mail_server: SmtpServer) -> None:
    delivery = send("mailto:not-an-address", fall_alarm(), settings(mail_server))
    assert delivery.channel == "email" and not delivery.ok
    assert "not an e-mail address" in delivery.detail


def test_smtp_settings_refuse_a_bad_sender_and_a_username_without_password() -> None:
    with pytest.raises(ValidationError, match="not an e-mail address"):
        SmtpSettings(host="mail.example.org", mail_from="centre")
    with pytest.raises(ValidationError, match="needs a password"):
        SmtpSettings(host="mail.example.org", mail_from="alerts@example.org", username="centre")


# --- Apprise --------------------------------------------------------------------------------


def test_json_webhook_receives_title_message_and_type(webhook: Webhook) -> None:
    delivery = send(f"json://127.0.0.1:{webhook.port}/hook", fall_alarm(), None, internal=LOOPBACK)

    assert delivery == Delivery(ok=True, channel="json", detail="accepted by JSON")
    [(path, payload)] = webhook.requests
    assert path == "/hook"
    assert payload["title"] == "Fall detected: Ada Lovelace"
    assert "Please call her or go round." in payload["message"]
    assert f"Accept: {ACCEPT_URL}" in payload["message"]
    assert payload["type"] == "failure"


@pytest.mark.parametrize(("priority", "notify_type"), [(2, "failure"), (4, "warning"), (5, "info"), (9, "info")])
def test_priority_becomes_the_apprise_notification_type(webhook: Webhook, priority: int, notify_type: str) -> None:
    assert send(f"json://127.0.0.1:{webhook.port}/hook", fall_alarm(priority=priority), None, internal=LOOPBACK).ok
    assert webhook.requests[0][1]["type"] == notify_type


def test_a_webhook_answering_500_is_a_failed_delivery(webhook: Webhook) -> None:
    secret = "hook-" + "secret"
    delivery = send(f"json://centre:{secret}@127.0.0.1:{webhook.port}/fail", fall_alarm(), None, internal=LOOPBACK)

    assert not delivery.ok
    assert delivery.channel == "json"
    assert "500" in delivery.detail and "JSON" in delivery.detail
    assert secret not in delivery.detail
    assert len(webhook.requests) == 1


def test_a_webhook_nobody_listens_on_is_a_failed_delivery() -> None:
    delivery = send(f"json://127.0.0.1:{free_port()}/hook", fall_alarm(), None, internal=LOOPBACK)
    assert not delivery.ok
    assert "connection error" in delivery.detail.lower()


def test_a_webhook_on_loopback_is_not_called_unless_allowed(webhook: Webhook) -> None:
    for host in ("127.0.0.1", "localhost"):
        delivery = send(f"json://{host}:{webhook.port}/hook", fall_alarm(), None)
        assert not delivery.ok and "loopback address" in delivery.detail
        assert "TELECARE_ALLOWED_INTERNAL_TARGETS" in delivery.detail
    assert webhook.requests == []  # refused before any connection


@pytest.mark.parametrize("address", ["garbage", "foo://bar", "json://", "mailto://user:pw@example.org"])
def test_an_unusable_address_is_returned_not_raised(address: str) -> None:
    delivery = send(address, fall_alarm(), None)
    assert not delivery.ok
    assert delivery.detail == validate_address(address)


# --- validate_address -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "mailto:responder@example.org",
        "MAILTO:Responder@Example.org",
        "mailto:first%2Blast@example.org",
        "json://127.0.0.1:8080/hook",
        "jsons://hooks.example.org/telecare",
        "ntfys://ntfy.example.org/ada-alarms",
    ],
)
def test_usable_addresses(address: str) -> None:
    assert validate_address(address) is None


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("mailto:responder", "not an e-mail address"),
        ("mailto:", "empty"),
        ("mailto:a@example.org,b@example.org", "one e-mail address"),
        ("mailto:a@example.org?subject=hi", "not supported"),
        ("mailto:Ada <a@example.org>", "not an e-mail address"),
        ("mailto://user:pw@mail.example.org", "mailto:someone@example.org"),
        ("mailtos://user:pw@mail.example.org", "mailto:someone@example.org"),
        ("foo://bar", "unknown notification service foo://"),
        ("http://example.org/hook", "write a webhook as json://"),
        ("json://", "not a usable json:// URL"),
        ("garbage", "not a notification URL"),
        ("", "empty"),
        (" mailto:responder@example.org", "spaces"),
    ],
)
def test_unusable_addresses_name_the_problem(address: str, problem: str) -> None:
    found = validate_address(address)
    assert found is not None and problem in found
