"""The keyholder's accept page: the centre's phone number, what to do and when to call 999 on
every state; "No, I cannot go" recorded and changing nothing else (the responder may still
accept); a link that does not accept refused the same way for both buttons."""

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from alerting.acceptance import accept_token, link_key
from alerting.tables import Notification
from monitoring_centre import alerts
from monitoring_centre.storage import Alert, AuditEntry, Person, Responder, utc_now
from tests.support.api_world import World, api_app

PHONE = "0300 123 4567"
ACCESS = "Key safe left of the door, code 2468"


def link(sessions: Any, world: World, name: str) -> str:
    """An accept link for the person's open alert, as the escalator sends it to a keyholder."""
    with sessions() as session, session.begin():
        keyholder = Responder(name="Kim", role="keyholder", active=True)
        session.add(keyholder)
        session.flush()
        reference = f"test/{name}/{secrets.token_hex(4)}"
        token, hashed = accept_token(link_key(session), reference)
        session.add(Notification(alert_id=world.alerts[name], responder_id=keyholder.id, responder_name="Kim",
                                 address="mailto:kim@family.test", reference=reference, purpose="alert",
                                 reason="keyholder 1 of 1", status="sent", created_at=utc_now(), sent_at=utc_now(),
                                 accept_token_hash=hashed))
        session.get_one(Person, world.people[name]).access_details = ACCESS
    return token


@pytest.fixture
def world(database_url: str) -> Iterator[tuple[TestClient, World]]:
    app, engine, people = api_app(database_url, centre_phone=PHONE)
    with TestClient(app) as client:
        yield client, people
    engine.dispose()


def sessions(client: TestClient) -> Any:
    return client.app.state.centre.sessions  # type: ignore[attr-defined]


def test_the_offer_gives_the_centres_number_what_to_do_and_when_to_call_999_but_not_the_way_in(
        world: tuple[TestClient, World]) -> None:
    client, people = world
    page = client.get(f"/accept/{link(sessions(client), people, 'ada')}")
    assert page.status_code == 200
    text = page.text
    assert "Kim, can you go to Ada now?" in text and "What to do" in text
    assert 'href="tel:03001234567"' in text and PHONE in text
    assert "Call 999 if Ada" in text and "not breathing" in text
    assert "Yes, I am going" in text and "No, I cannot go" in text
    assert ACCESS not in text and "1 Test Street" not in text
    assert "nhsuk-frontend.min.css" in text and "style=" not in text


def test_declining_is_recorded_changes_nothing_else_and_the_responder_may_still_accept(
        world: tuple[TestClient, World]) -> None:
    client, people = world
    token = link(sessions(client), people, "ada")
    declined = client.post(f"/accept/{token}/decline")
    assert declined.status_code == 200 and "You said you cannot go to Ada" in declined.text
    assert ACCESS not in declined.text and PHONE in declined.text
    with sessions(client)() as session:
        [row] = session.scalars(select(AuditEntry).where(AuditEntry.action == "decline_accept_link")).all()
        assert row.person_id == people.people["ada"] and row.actor.endswith(":Kim")
        assert session.get_one(Alert, people.alerts["ada"]).status == "open"
    accepted = client.post(f"/accept/{token}")
    assert accepted.status_code == 200 and ACCESS in accepted.text and "What to do" in accepted.text


def test_a_link_that_does_not_accept_is_refused_for_both_buttons_without_the_persons_name(
        world: tuple[TestClient, World]) -> None:
    client, people = world
    assert client.post("/accept/not-a-link/decline").status_code == 404
    token = link(sessions(client), people, "bob")
    with sessions(client)() as session, session.begin():
        alert = session.get_one(Alert, people.alerts["bob"])
        alerts.transition(session, alert, alerts.AlertState.RESOLVED, "operator", "test", outcome="false_alarm")
    for answer in (client.post(f"/accept/{token}/decline"), client.get(f"/accept/{token}")):
        assert answer.status_code == 410 and "Link expired" in answer.text
        assert "Bob" not in answer.text and PHONE in answer.text and "call 999" in answer.text


def test_without_a_phone_number_set_the_page_still_says_to_call_the_centre(database_url: str) -> None:
    app, engine, people = api_app(database_url)
    try:
        with TestClient(app) as client:
            page = client.get(f"/accept/{link(sessions(client), people, 'ada')}")
        assert page.status_code == 200 and "call the monitoring centre" in page.text and "tel:" not in page.text
    finally:
        engine.dispose()
