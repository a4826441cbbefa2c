"""The person's own page says who looked at their record and who can see it in plain words: every
audit action from a table (none in system terms, those not about their data left out), repeats
grouped, 20 groups a page with "Show older"; each viewer once with all their reasons."""

import ast
import secrets
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from alerting.acceptance import accept_token, link_key
from alerting.tables import Notification
from centre_app.api.consent import NOT_FOUND
from centre_app.api.deps import CentreState
from centre_app.pages.person import ACTION_WORDS, REVIEW_WORDS
from detection.rules import CLINICAL_REVIEW
from monitoring_centre import access, teams
from monitoring_centre.alerts import ALL_CLEAR, OUTCOMES, PLAIN_OUTCOMES
from monitoring_centre.own_record import Look, group_looks
from monitoring_centre.storage import (
    Alert,
    AuditEntry,
    Person,
    PersonContact,
    Responder,
    ResponderAccount,
    User,
    utc_now,
)
from tests.support.api_world import ADMIN, PASSWORD, api_app

ROOT = Path(__file__).resolve().parents[4]
SAME_SITE = {"sec-fetch-site": "same-origin"}
DYNAMIC_ACTIONS = {"take_call", "release_call", "add_team_member", "remove_team_member", "assign_caseload",
                   "unassign_caseload", "change_user", "disable_user", "reset_password", "keyholder_declined",
                   "console_sound_on"}
"""Actions passed to `audit.record` through a variable or helper (`calls.py`, `teams.py`, `accounts.py`)."""


def recorded_actions() -> set[str]:
    """Every action given as a literal to `audit.record` in the centre's packages."""
    found: set[str] = set()
    for package in ("centre_app", "monitoring_centre", "alerting", "telecare"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "record"
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "audit"
                        and len(node.args) >= 3):
                    found |= {n.value for n in ast.walk(node.args[2])
                              if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return found


def test_every_audit_action_has_plain_words_or_is_left_out() -> None:
    actions = recorded_actions() | DYNAMIC_ACTIONS
    assert "view_readings" in actions and "notify_responder" in actions
    assert actions - ACTION_WORDS.keys() == set()
    for words in ACTION_WORDS.values():
        assert words is None or "_" not in words


def test_repeats_within_half_an_hour_are_one_group() -> None:
    now = utc_now()
    looks = [Look("Nurse Jo", "looked at your readings", now - timedelta(minutes=m)) for m in range(7)]
    looks.insert(3, Look("Nurse Jo", "looked at your activity", now - timedelta(minutes=2, seconds=30)))
    looks.append(Look("Nurse Jo", "looked at your readings", now - timedelta(minutes=50)))
    groups = group_looks(looks)
    assert [(g.what, g.count) for g in groups] == [("looked at your readings", 7), ("looked at your activity", 1),
                                                   ("looked at your readings", 1)]
    assert groups[0].first == now - timedelta(minutes=6) and groups[0].last == now


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    app, engine, _world = api_app(database_url)
    with TestClient(app, base_url="https://centre.test") as test_client:
        yield test_client
    engine.dispose()


def _seed(client: TestClient) -> None:
    centre: CentreState = cast(FastAPI, client.app).state.centre
    now = utc_now()
    with centre.sessions() as session, session.begin():
        ada = session.scalars(select(Person).where(Person.name == "Ada")).one()
        nurse = session.scalars(select(User).where(User.username == "nurse")).one()
        nurse.display_name = "Jane Smith"
        teams.assign_to_nurse(session, ada, nurse, by=ADMIN)
        team = teams.create_team(session, "North", by=ADMIN)
        teams.add_member(session, team, nurse, by=ADMIN)
        teams.assign_to_team(session, ada, team, by=ADMIN)

        def row(actor: str, action: str, minutes_ago: float, detail: str = "") -> None:
            session.add(AuditEntry(at=now - timedelta(minutes=minutes_ago), actor=actor, action=action,
                                   person_id=ada.id, detail=detail))

        for minute in range(7):
            row("nurse", "view_readings", 200 + minute * 0.5)
        row("system:alerting", "notify_responder", 190, "alert 3 to Susan Hughes (email): no answer in 120 s")
        row(ADMIN, "view_users", 180)
        row("operator", "view_calls", 170)
        row("responder:2:Susan Hughes", "open_accept_link", 160, "alert 3")
        row("fhir-client:gp", "fhir_read", 150, "{}")
        for hour in range(25):
            row("nurse", "view_activity", 1000 + hour * 60)


def test_the_person_reads_who_looked_and_who_can_see_in_plain_words(client: TestClient) -> None:
    _seed(client)
    signed_in = client.post("/signin", data={"username": "ada", "password": PASSWORD, "next": ""},
                            headers=SAME_SITE, follow_redirects=False)
    assert signed_in.status_code == 303, signed_in.text
    page = client.get("/me")
    assert page.status_code == 200, page.text
    text = page.text
    assert "Nurse Jane Smith looked at your readings 7 times between" in text
    assert "The monitoring centre e-mailed Susan Hughes about an alarm of yours" in text
    assert "Susan Hughes opened the message asking them to come to you" in text
    assert "Your GP&#39;s system read your record through the GP system" in text
    assert "saw your alarm call in the list of calls" in text
    for system_term in ("view users", "view_users", "notify responder", "open accept link", "(a contact of yours)",
                        "Every admin", "Every operator"):
        assert system_term not in text
    assert text.count("Jane Smith:") == 1
    assert "Nurse Jane Smith: your nurse, and in the nursing team North, which looks after you" in text
    assert "Staff at the monitoring centre who answer your alarms" in text
    assert "The centre&#39;s administrators, to run the service" in text
    assert 'id="looked-older"' in text and text.count("looked at your daily activity") == 20 - 6
    older = client.get("/me?page=2").text
    assert older.count("looked at your daily activity") == 11 and 'id="looked-older"' not in older
    assert 'id="looked-newer"' in older


def test_outcomes_have_a_staff_label_and_a_plain_phrase_without_instructions() -> None:
    assert set(PLAIN_OUTCOMES) == set(OUTCOMES) | {ALL_CLEAR}
    for words in (*OUTCOMES.values(), *PLAIN_OUTCOMES.values()):
        assert "(" not in words and "say why" not in words


def _family_sees_adas_first_alert(client: TestClient, change: Callable[[Alert], None]) -> None:
    """Ada consents to her daughter seeing her record, and her first alert is made what the test needs."""
    centre: CentreState = cast(FastAPI, client.app).state.centre
    with centre.sessions() as session, session.begin():
        ada = session.scalars(select(Person).where(Person.name == "Ada")).one()
        daughter = session.scalars(select(User).where(User.username == "daughter")).one()
        access.grant(session, daughter, ada, "consent")
        alert = session.scalars(select(Alert).where(Alert.person_id == ada.id)).first()
        assert alert is not None
        change(alert)


def _page_of(client: TestClient, username: str, page: str) -> str:
    client.cookies.clear()
    signed_in = client.post("/signin", data={"username": username, "password": PASSWORD, "next": ""},
                            headers=SAME_SITE, follow_redirects=False)
    assert signed_in.status_code == 303, signed_in.text
    return str(client.get(page).text)


def test_the_person_and_family_read_the_outcome_in_plain_words(client: TestClient) -> None:
    def resolved(alert: Alert) -> None:
        alert.status, alert.outcome = "resolved", "resolved_by_call"

    _family_sees_adas_first_alert(client, resolved)
    for username, page, you in (("ada", "/me", "you"), ("daughter", "/family", "Ada")):
        text = _page_of(client, username, page)
        assert f"This was dealt with: someone spoke to {you}; no visit was needed." in text
        assert "say why" not in text and "no visit needed" not in text


def test_a_nurses_review_task_reads_in_plain_words_to_the_person_and_family(client: TestClient) -> None:
    """A trend alert's title is the clinician's ("Daily mean 93.0 below the person's 7-day baseline");
    the person and their family read what it means and who looks at it."""
    assert set(REVIEW_WORDS) == CLINICAL_REVIEW  # every review task has its plain words

    def a_trend(alert: Alert) -> None:
        alert.rule, alert.status = "spo2_trend_spc", "open"
        alert.title = "Daily mean 93.0 below the person's 7-day baseline (94.7) on 2 of the last 3 days"

    _family_sees_adas_first_alert(client, a_trend)
    for username, page, whose, them in (("ada", "/me", "Your", "you"), ("daughter", "/family", "Ada's", "them")):
        text = _page_of(client, username, page).replace("&#39;", "'")
        assert (f"{whose} oxygen readings have been lower than usual for {them} over the last few days. "
                "The nurses will look at it.") in text
        assert "7-day baseline" not in text and "The centre is dealing with it" not in text


def test_the_resolve_form_says_what_the_note_needs_next_to_the_field(client: TestClient) -> None:
    signed_in = client.post("/signin", data={"username": "operator", "password": PASSWORD, "next": ""},
                            headers=SAME_SITE, follow_redirects=False)
    assert signed_in.status_code == 303, signed_in.text
    text = client.get("/operator").text
    assert 'id="resolve-note-hint">For "Spoken to; no visit needed", say why nobody needs to go out.' in text


def test_after_accepting_the_family_page_and_the_persons_alert_say_who_is_going(client: TestClient) -> None:
    centre: CentreState = cast(FastAPI, client.app).state.centre
    with centre.sessions() as session, session.begin():
        ada = session.scalars(select(Person).where(Person.name == "Ada")).one()
        daughter = session.scalars(select(User).where(User.username == "daughter")).one()
        access.grant(session, daughter, ada, "consent")
        susan = Responder(name="Susan Hughes", role="keyholder", active=True)
        session.add(susan)
        session.flush()
        session.add(ResponderAccount(user_id=daughter.id, responder_id=susan.id, linked_at=utc_now(),
                                     linked_by=ADMIN))
        alert = session.scalars(select(Alert).where(Alert.person_id == ada.id)).one()
        reference = f"test/ada/{secrets.token_hex(4)}"
        _token, hashed = accept_token(link_key(session), reference)
        notification = Notification(alert_id=alert.id, responder_id=susan.id, responder_name="Susan Hughes",
                                    address="mailto:susan@family.test", reference=reference, purpose="alert",
                                    reason="keyholder 1 of 1", status="sent", created_at=utc_now(),
                                    sent_at=utc_now(), accept_token_hash=hashed)
        session.add(notification)
        session.flush()
        notification_id = notification.id
    _sign_in(client, "daughter")
    before = client.get("/family").text
    assert "Can you go now?" in before and "You said you are going" not in before
    accepted = client.post(f"/api/v1/keyholder-requests/{notification_id}/accept", headers=SAME_SITE)
    assert accepted.status_code == 200, accepted.text
    after = client.get("/family").text
    assert "You said you are going to Ada (" in after
    assert "Nobody has asked you to help right now" not in after
    assert "You said you are going." in after and "Someone is on the way" not in after
    _sign_in(client, "ada")
    mine = client.get("/me").text
    assert "Susan Hughes is on the way." in mine and "Someone is on the way" not in mine


def _sign_in(client: TestClient, username: str) -> None:
    client.cookies.clear()
    signed_in = client.post("/signin", data={"username": username, "password": PASSWORD, "next": ""},
                            headers=SAME_SITE, follow_redirects=False)
    assert signed_in.status_code == 303, signed_in.text


def test_the_person_chooses_among_their_keyholders_and_a_wrong_name_reveals_nothing(client: TestClient) -> None:
    centre: CentreState = cast(FastAPI, client.app).state.centre
    with centre.sessions() as session, session.begin():
        ada = session.scalars(select(Person).where(Person.name == "Ada")).one()
        daughter = session.scalars(select(User).where(User.username == "daughter")).one()
        susan = Responder(name="Susan Hughes", role="keyholder", active=True)
        session.add(susan)
        session.flush()
        session.add(ResponderAccount(user_id=daughter.id, responder_id=susan.id, linked_at=utc_now(),
                                     linked_by=ADMIN))
        session.add(PersonContact(person_id=ada.id, responder_id=susan.id, position=0, nominated_at=utc_now()))
        ada_id = ada.id
    _sign_in(client, "ada")
    page = client.get("/me").text
    assert 'name="choice" type="radio" value="daughter"' in page and "Ada&#39;s daughter</label>" in page
    assert 'id="give-username"' in page  # typing a name stays as the fallback
    answers = [client.post(f"/api/v1/patients/{ada_id}/consent", json={"username": name}, headers=SAME_SITE)
               for name in ("susan-h", "operator", "nurse")]
    for answer in answers:
        assert answer.status_code == 422, answer.text
        words = answer.json()["detail"][0]["msg"]
        assert NOT_FOUND in words and "account" not in words.lower()
    assert len({a.json()["detail"][0]["msg"] for a in answers}) == 1
    given = client.post(f"/api/v1/patients/{ada_id}/consent", json={"username": "daughter"}, headers=SAME_SITE)
    assert given.status_code == 201, given.text
    assert 'value="daughter"' not in client.get("/me").text  # she can see it now: no longer offered
