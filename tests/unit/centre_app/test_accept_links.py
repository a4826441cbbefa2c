"""Accept links: signed with the centre's own key (never the API's token key, which may be
rotated), dead once the alarm is over, and good for one acceptance per responder; every refusal
audited. A real centre on SQLite and PostgreSQL, its escalator on a test clock; the messages
are caught at the channel (`tests/support/alerting_home.py`)."""

import base64
import hashlib
import re
import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from alerting.channels import Message
from alerting.tables import CentreSecret, Notification
from centre_app.centre import Centre
from centre_app.settings import CentreSettings
from monitoring_centre import alerts
from monitoring_centre.storage import Alert, AuditEntry
from tests.support.alerting_home import ACCESS, KIM, T0, FakeChannel, Home, channel, enrol_keyholder_home, press

__all__ = ["channel"]  # the fixture, used by name


def make_centre(database_url: str, **overrides: Any) -> Centre:
    values: dict[str, Any] = {"database_url": database_url, "jwt_secret": secrets.token_urlsafe(48),
                              "mqtt_password": secrets.token_urlsafe(16), "public_url": "http://centre.test"}
    centre = Centre(CentreSettings(**(values | overrides)))
    centre.escalator.clock = lambda: T0
    return centre


@pytest.fixture
def centre(database_url: str) -> Iterator[Centre]:
    centre = make_centre(database_url)
    yield centre
    centre.engine.dispose()


@pytest.fixture
def home(centre: Centre) -> Home:
    with centre.sessions() as session:
        return enrol_keyholder_home(session)


def token_in(message: Message) -> str:
    match = re.fullmatch(r"http://centre\.test/accept/([A-Za-z0-9_-]+)", message.links["accept"])
    assert match is not None, message.links
    return match.group(1)


def audited(centre: Centre, action: str) -> list[str]:
    with centre.sessions() as session:
        return list(session.scalars(select(AuditEntry.detail).where(AuditEntry.action == action)
                                    .order_by(AuditEntry.id)))


def test_a_retried_message_carries_a_link_that_works_after_the_api_key_is_rotated(
        database_url: str, centre: Centre, home: Home, channel: FakeChannel) -> None:
    with centre.sessions() as session:
        press(session, home.person_id)
    channel.ok = False  # Kim's mail server is down: her messages will be retried
    centre.escalator.run_once()
    assert channel.to(KIM[0])
    centre.engine.dispose()

    # The centre restarts with a new API token key (the demo makes one at every start).
    rotated = make_centre(database_url)
    rotated.escalator.clock = lambda: T0 + timedelta(seconds=11)  # the first retry is due after 10 s
    channel.ok = True
    rotated.escalator.run_once()
    [retried, *_] = channel.to(KIM[0])[1:]
    with TestClient(rotated.app) as client:
        page = client.get(f"/accept/{token_in(retried)}")
    assert page.status_code == 200, page.text
    assert "can you go to Ada Lovelace now?" in page.text
    with rotated.sessions() as session:
        [key] = session.scalars(select(CentreSecret)).all()
    assert key.name == "accept_links" and len(key.value) >= 43  # 256 bits of its own, kept in the database
    assert key.value != rotated.settings.jwt_secret.get_secret_value()
    rotated.engine.dispose()


def test_a_responder_accepts_once_and_a_replay_is_refused_and_audited(
        centre: Centre, home: Home, channel: FakeChannel) -> None:
    with centre.sessions() as session:
        alert_id = press(session, home.person_id)
    centre.escalator.run_once()
    [home_link] = [token_in(m) for m in channel.to(KIM[0])]
    [work_link] = [token_in(m) for m in channel.to(KIM[1])]
    with TestClient(centre.app) as client:
        accepted = client.post(f"/accept/{home_link}")
        assert accepted.status_code == 200 and ACCESS in accepted.text
        for link in (home_link, work_link):  # the same link again, and Kim's other message
            again = client.post(f"/accept/{link}")
            assert again.status_code == 409, again.text
            assert "You have already accepted this alarm" in again.text and ACCESS not in again.text
        opened = client.get(f"/accept/{home_link}")
        assert opened.status_code == 409 and "Already accepted" in opened.text and ACCESS not in opened.text
    refused = audited(centre, "accept_refused")
    assert len(refused) == 2 and all(f"alert {alert_id}: already_accepted (accepted at" in d for d in refused)
    assert len(audited(centre, "show_access_details")) == 1  # the way in was shown once
    with centre.sessions() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None and alert.status == "in_progress"
        accepted_rows = session.scalars(select(Notification).where(Notification.accepted_at.is_not(None))).all()
        assert len(accepted_rows) == 1


def test_a_link_expires_when_the_alarm_is_over_and_the_page_says_so(
        centre: Centre, home: Home, channel: FakeChannel) -> None:
    with centre.sessions() as session:
        alert_id = press(session, home.person_id)
    centre.escalator.run_once()
    [link] = [token_in(m) for m in channel.to(KIM[0])]
    with centre.sessions() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        alerts.transition(session, alert, alerts.AlertState.RESOLVED, "op-alice", outcome="false_alarm")
        session.commit()
    with TestClient(centre.app) as client:
        for answer in (client.get(f"/accept/{link}"), client.post(f"/accept/{link}")):
            assert answer.status_code == 410, answer.text
            assert "Link expired" in answer.text
            assert "This alarm has been dealt with, so this link has expired" in answer.text
            assert "Ada" not in answer.text and ACCESS not in answer.text  # nothing about her any more
        assert client.get("/accept/" + "x" * 5000).status_code == 404
    assert audited(centre, "accept_refused") == [f"alert {alert_id}: expired"]
    assert audited(centre, "open_accept_link") == [f"alert {alert_id}: expired"]
    with centre.sessions() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None and alert.status == "resolved"


def test_the_page_styles_itself_only_with_what_its_own_policy_allows(
        centre: Centre, home: Home, channel: FakeChannel) -> None:
    """No inline `style=` (the centre's policy refuses it); its one <style> is allowed by hash."""
    with centre.sessions() as session:
        press(session, home.person_id)
    centre.escalator.run_once()
    [link] = [token_in(m) for m in channel.to(KIM[0])][:1]
    with TestClient(centre.app) as client:
        page = client.get(f"/accept/{link}")
    assert page.status_code == 200 and "style=" not in page.text
    [style] = re.findall(r"<style>(.*?)</style>", page.text)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    policy = page.headers["content-security-policy"]
    assert f"style-src 'sha256-{digest}'" in policy and "frame-ancestors 'none'" in policy
