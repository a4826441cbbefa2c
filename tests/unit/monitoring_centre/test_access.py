"""Roles decide who sees whom, and every view of a person's data is audited."""

import secrets
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from centre_app.auth import create_user
from centre_app.centre import Centre
from centre_app.settings import CentreSettings
from detection.events import PENDANT_ALARM
from monitoring_centre import access
from monitoring_centre.alerts import raise_alert
from monitoring_centre.enrolment import enrol_home
from monitoring_centre.storage import AuditEntry, utc_now

PASSWORD = "a-long-test-password-" + secrets.token_hex(4)


@pytest.fixture
def centre(database_url: str) -> Centre:
    # No broker: the receiver is never started; the API works on the database alone.
    centre = Centre(CentreSettings(database_url=database_url, jwt_secret=secrets.token_urlsafe(48),
                                   mqtt_password=secrets.token_urlsafe(16)))
    with centre.sessions() as session, session.begin():
        ada = enrol_home(session, name="Ada", address="", hub_id="hub-a", devices=[])
        bob = enrol_home(session, name="Bob", address="", hub_id="hub-b", devices=[])
        for person in (ada, bob):
            raise_alert(session, person_id=person.id, hub_id=f"hub-{person.name[0].lower()}", rule=PENDANT_ALARM,
                        subject="", at=utc_now(), evidence={}, why="test")
        create_user(session, "operator", PASSWORD, "operator")
        nurse = create_user(session, "nurse", PASSWORD, "nurse")
        daughter = create_user(session, "daughter", PASSWORD, "family")
        stranger = create_user(session, "stranger", PASSWORD, "family")
        access.grant(session, nurse, ada, "direct_care")
        access.grant(session, daughter, bob, "consent")
        access.grant(session, stranger, ada, "direct_care")  # a family member is never direct care
    return centre


def login(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.mark.parametrize(("username", "sees"), [
    ("operator", {"Ada", "Bob"}),
    ("nurse", {"Ada"}),
    ("daughter", {"Bob"}),
    ("stranger", set()),
])
def test_each_role_sees_only_its_people(centre: Centre, username: str, sees: set[str]) -> None:
    with TestClient(centre.app) as client:
        headers = login(client, username)
        patients = client.get("/api/v1/patients", headers=headers).json()
        alerts = client.get("/api/v1/alerts", headers=headers).json()
    assert {p["name"] for p in patients} == sees
    assert {a["person_name"] for a in alerts} == sees


def test_every_view_is_audited_per_person(centre: Centre) -> None:
    with TestClient(centre.app) as client:
        headers = login(client, "nurse")
        client.get("/api/v1/alerts", headers=headers)
        [alert] = client.get("/api/v1/alerts", headers=headers).json()
        assert client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", headers=headers).status_code == 200
        assert client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", headers=headers).status_code == 409
    with centre.sessions() as session:
        rows = session.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.person_id)
                               .order_by(AuditEntry.id)).all()
    ada_id = alert["person_id"]
    assert rows == [("nurse", "login", None), ("nurse", "view_alerts", ada_id), ("nurse", "view_alerts", ada_id),
                    ("nurse", "acknowledge_alert", ada_id)]


def test_an_alert_out_of_reach_cannot_be_acknowledged(centre: Centre) -> None:
    with TestClient(centre.app) as client:
        operator_alerts = client.get("/api/v1/alerts", headers=login(client, "operator")).json()
        bob_alert = next(a for a in operator_alerts if a["person_name"] == "Bob")
        response = client.post(f"/api/v1/alerts/{bob_alert['id']}/acknowledge", headers=login(client, "nurse"))
    assert response.status_code == 404


def test_placeholder_secrets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="placeholder"):
        CentreSettings(database_url="sqlite://", jwt_secret=secrets.token_urlsafe(48), mqtt_password="changeme")
