"""The person decides who sees their record: giving and withdrawing a family member's access,
seeing who can see it, and who has seen it. Over the real API, on SQLite and PostgreSQL."""

import secrets
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from centre_app.auth import create_user
from centre_app.centre import Centre
from centre_app.settings import CentreSettings
from detection.events import PENDANT_ALARM
from monitoring_centre.alerts import raise_alert
from monitoring_centre.enrolment import enrol_home
from monitoring_centre.storage import utc_now

PASSWORD = "a-long-test-password-" + secrets.token_hex(4)


@pytest.fixture
def client(database_url: str) -> Iterator[tuple[TestClient, dict[str, int]]]:
    centre = Centre(CentreSettings(database_url=database_url, jwt_secret=secrets.token_urlsafe(48),
                                   mqtt_password=secrets.token_urlsafe(16)))
    with centre.sessions() as session, session.begin():
        ada = enrol_home(session, name="Ada", address="1 Test Street", hub_id="hub-a", devices=[])
        bob = enrol_home(session, name="Bob", address="2 Test Street", hub_id="hub-b", devices=[])
        for person in (ada, bob):
            raise_alert(session, person_id=person.id, hub_id=f"hub-{person.name[0].lower()}", rule=PENDANT_ALARM,
                        subject="", at=utc_now(), evidence={}, why="test")
        create_user(session, "ada", PASSWORD, "person", "Ada", person_id=ada.id)
        create_user(session, "bob", PASSWORD, "person", "Bob", person_id=bob.id)
        create_user(session, "daughter", PASSWORD, "family", "Ada's daughter")
        create_user(session, "operator", PASSWORD, "operator")
        create_user(session, "admin", PASSWORD, "admin")
        ids = {"ada": ada.id, "bob": bob.id}
    with TestClient(centre.app) as test_client:
        yield test_client, ids
    centre.engine.dispose()


def login(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def names(client: TestClient, headers: dict[str, str]) -> set[str]:
    return {p["name"] for p in client.get("/api/v1/patients", headers=headers).json()}


def test_a_person_sees_only_their_own_record(client: tuple[TestClient, dict[str, int]]) -> None:
    api, ids = client
    ada = login(api, "ada")
    assert names(api, ada) == {"Ada"}
    assert {a["person_name"] for a in api.get("/api/v1/alerts", headers=ada).json()} == {"Ada"}
    assert api.get(f"/api/v1/patients/{ids['ada']}/record", headers=ada).status_code == 200
    assert api.get(f"/api/v1/patients/{ids['bob']}/record", headers=ada).status_code == 404
    assert api.get(f"/api/v1/patients/{ids['ada']}", headers=ada).json()["address"] == "1 Test Street"
    assert api.get(f"/api/v1/patients/{ids['bob']}", headers=ada).status_code == 404


def test_the_person_gives_and_withdraws_a_family_members_access(client: tuple[TestClient, dict[str, int]]) -> None:
    api, ids = client
    ada, daughter = login(api, "ada"), login(api, "daughter")
    assert names(api, daughter) == set()

    given = api.post(f"/api/v1/patients/{ids['ada']}/consent", headers=ada,
                     json={"username": "daughter", "why": "she visits every day"})
    assert given.status_code == 201, given.text
    assert {"who": "Ada's daughter", "role": "family", "basis": "consent"}.items() <= given.json()[-1].items()
    assert names(api, daughter) == {"Ada"}
    assert api.post(f"/api/v1/patients/{ids['ada']}/consent", headers=ada,
                    json={"username": "daughter"}).status_code == 409  # already given

    withdrawn = api.delete(f"/api/v1/patients/{ids['ada']}/consent/daughter", headers=ada,
                           params={"why": "changed my mind"})
    assert withdrawn.status_code == 200, withdrawn.text
    assert all(entry["role"] != "family" for entry in withdrawn.json())
    assert names(api, daughter) == set()  # at once, with the token she already holds
    assert api.get("/api/v1/alerts", headers=daughter).json() == []

    trail = api.get(f"/api/v1/patients/{ids['ada']}/audit", headers=ada).json()
    actions = [(entry["actor"], entry["action"]) for entry in trail]
    assert ("ada", "give_consent") in actions and ("ada", "withdraw_consent") in actions
    assert ("daughter", "view_patient_list") in actions  # the person sees who looked at their data
    assert any(entry["detail"] == "from daughter: changed my mind" for entry in trail)


def test_nobody_else_decides_for_the_person(client: tuple[TestClient, dict[str, int]]) -> None:
    api, ids = client
    for username in ("bob", "daughter", "operator"):
        headers = login(api, username)
        response = api.post(f"/api/v1/patients/{ids['ada']}/consent", headers=headers, json={"username": "daughter"})
        assert response.status_code == 404, username
        assert api.get(f"/api/v1/patients/{ids['ada']}/audit", headers=headers).status_code == 404, username
    # An administrator records a decision the person made on paper; the audit says who recorded it.
    admin = login(api, "admin")
    recorded = api.post(f"/api/v1/patients/{ids['ada']}/consent", headers=admin,
                        json={"username": "daughter", "why": "signed consent form, 25 Nov"})
    assert recorded.status_code == 201
    trail = api.get(f"/api/v1/patients/{ids['ada']}/audit", headers=login(api, "ada")).json()
    assert any(e["actor"] == "admin" and e["action"] == "give_consent" for e in trail)


def test_consent_is_only_for_family_accounts(client: tuple[TestClient, dict[str, int]]) -> None:
    api, ids = client
    ada = login(api, "ada")
    response = api.post(f"/api/v1/patients/{ids['ada']}/consent", headers=ada, json={"username": "operator"})
    nobody = api.post(f"/api/v1/patients/{ids['ada']}/consent", headers=ada, json={"username": "nobody"})
    # The same plain answer for an account that is not a family member's as for no account at all.
    assert response.status_code == nobody.status_code == 422
    assert response.json()["detail"][0]["msg"] == nobody.json()["detail"][0]["msg"]
    assert "We could not find that person" in response.text


def test_the_person_and_their_family_cannot_acknowledge_an_alarm(client: tuple[TestClient, dict[str, int]]) -> None:
    api, _ids = client
    ada = login(api, "ada")
    [alert] = api.get("/api/v1/alerts", headers=ada).json()
    assert api.post(f"/api/v1/alerts/{alert['id']}/acknowledge", headers=ada).status_code == 403
    assert api.post(f"/api/v1/alerts/{alert['id']}/resolve", headers=ada,
                    json={"outcome": "false_alarm"}).status_code == 403
    operator = login(api, "operator")
    assert api.post(f"/api/v1/alerts/{alert['id']}/acknowledge", headers=operator).status_code == 200
    assert api.post(f"/api/v1/alerts/{alert['id']}/resolve", headers=operator,
                    json={"outcome": "made_up"}).status_code == 422
    resolved = api.post(f"/api/v1/alerts/{alert['id']}/resolve", headers=operator, json={"outcome": "false_alarm"})
    assert resolved.status_code == 200 and resolved.json()["outcome"] == "false_alarm"
    assert resolved.json()["status"] == "resolved"
