"""A person's own detection settings and planned absences: who may change them, and every
view and change in the audit log. Over the real API, on SQLite and PostgreSQL."""

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from centre_app.auth import create_user
from centre_app.centre import Centre
from centre_app.settings import CentreSettings
from monitoring_centre.access import grant
from monitoring_centre.enrolment import enrol_home
from monitoring_centre.storage import AuditEntry, PlannedAbsence, RuleSetting

PASSWORD = "a-long-test-password-" + secrets.token_hex(4)


@pytest.fixture
def centre(database_url: str) -> Iterator[tuple[Centre, TestClient, dict[str, int]]]:
    centre = Centre(CentreSettings(database_url=database_url, jwt_secret=secrets.token_urlsafe(48),
                                   mqtt_password=secrets.token_urlsafe(16)))
    with centre.sessions() as session, session.begin():
        ada = enrol_home(session, name="Ada", address="1 Test Street", hub_id="hub-a", devices=[])
        bob = enrol_home(session, name="Bob", address="2 Test Street", hub_id="hub-b", devices=[])
        nurse = create_user(session, "nurse", PASSWORD, "nurse", "Nurse")
        grant(session, nurse, ada, "direct_care")
        create_user(session, "operator", PASSWORD, "operator")
        create_user(session, "ada", PASSWORD, "person", "Ada", person_id=ada.id)
        ids = {"ada": ada.id, "bob": bob.id}
    with TestClient(centre.app) as client:
        yield centre, client, ids
    centre.engine.dispose()


def login(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def audit_rows(centre: Centre, action: str) -> list[AuditEntry]:
    with centre.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def test_a_nurse_sets_a_persons_threshold_and_the_change_is_audited_with_before_and_after(
        centre: tuple[Centre, TestClient, dict[str, int]]) -> None:
    app, api, ids = centre
    told: list[int] = []
    app.app.state.centre.profile_changed = told.append
    nurse = login(api, "nurse")
    url = f"/api/v1/patients/{ids['ada']}/rules/spo2_low"
    first = api.put(url, headers=nurse, json={"params": {"scale": 2}, "reason": "COPD: target 88-92% (Dr Patel)"})
    assert first.status_code == 200, first.text
    second = api.put(url, headers=nurse, json={"params": {"scale": 1}, "reason": "target withdrawn"})
    assert second.json()["params"] == {"scale": 1}
    listed = api.get(f"/api/v1/patients/{ids['ada']}/rules", headers=nurse).json()
    assert [(r["rule"], r["params"], r["changed_by"]) for r in listed] == [("spo2_low", {"scale": 1}, "nurse")]
    changes = [json.loads(row.detail) for row in audit_rows(app, "change_rule_setting")]
    assert [(c["before"], c["after"]) for c in changes] == [(None, {"scale": 2}), ({"scale": 2}, {"scale": 1})]
    assert changes[0]["reason"] == "COPD: target 88-92% (Dr Patel)"
    assert [row.person_id for row in audit_rows(app, "view_rule_settings")] == [ids["ada"]]
    assert told == [ids["ada"], ids["ada"]]
    reset = api.request("DELETE", url, headers=nurse, json={"reason": "back to defaults"})
    assert reset.status_code == 204
    with app.sessions() as session:
        assert session.scalars(select(RuleSetting)).all() == []
    assert json.loads(audit_rows(app, "change_rule_setting")[-1].detail)["after"] is None


def test_only_clinicians_change_thresholds_and_only_for_people_they_may_see(
        centre: tuple[Centre, TestClient, dict[str, int]]) -> None:
    _app, api, ids = centre
    body: dict[str, Any] = {"params": {"scale": 2}, "reason": "because"}
    assert api.put(f"/api/v1/patients/{ids['ada']}/rules/spo2_low", headers=login(api, "operator"),
                   json=body).status_code == 403
    assert api.put(f"/api/v1/patients/{ids['ada']}/rules/spo2_low", headers=login(api, "ada"),
                   json=body).status_code == 403
    # Bob is not on the nurse's caseload: as far as she can tell, he does not exist.
    assert api.put(f"/api/v1/patients/{ids['bob']}/rules/spo2_low", headers=login(api, "nurse"),
                   json=body).status_code == 404
    assert api.put(f"/api/v1/patients/{ids['ada']}/rules/spo2_low", headers=login(api, "nurse"),
                   json={"params": {"scale": 2}, "reason": ""}).status_code == 422


def test_a_person_plans_their_own_absence_and_a_bad_one_is_refused_with_its_reason(
        centre: tuple[Centre, TestClient, dict[str, int]]) -> None:
    app, api, ids = centre
    told: list[int] = []
    app.app.state.centre.profile_changed = told.append
    ada = login(api, "ada")
    url = f"/api/v1/patients/{ids['ada']}/absences"
    made = api.post(url, headers=ada, json={"starts_at": "2026-12-20T10:00:00Z", "ends_at": "2026-12-27T18:00:00Z",
                                            "reason": "Christmas at my son's"})
    assert made.status_code == 201, made.text
    backwards = api.post(url, headers=ada, json={"starts_at": "2026-12-20T10:00:00Z",
                                                 "ends_at": "2026-12-19T10:00:00Z"})
    assert backwards.status_code == 422 and "end after it starts" in backwards.json()["detail"][0]["msg"]
    assert api.post(f"/api/v1/patients/{ids['bob']}/absences", headers=ada,
                    json={"starts_at": "2026-12-20T10:00:00Z", "ends_at": "2026-12-21T10:00:00Z"}).status_code == 403
    listed = api.get(url, headers=login(api, "operator")).json()
    assert [(a["reason"], a["created_by"]) for a in listed] == [("Christmas at my son's", "ada")]
    assert api.delete(f"{url}/{made.json()['id']}", headers=ada).status_code == 204
    with app.sessions() as session:
        assert session.scalars(select(PlannedAbsence)).all() == []
    assert [row.actor for row in audit_rows(app, "plan_absence")] == ["ada"]
    assert [row.actor for row in audit_rows(app, "cancel_absence")] == ["ada"]
    assert told == [ids["ada"], ids["ada"]]


def test_a_setting_the_engine_would_not_understand_is_refused_with_its_reason(
        centre: tuple[Centre, TestClient, dict[str, int]]) -> None:
    app, api, ids = centre
    nurse = login(api, "nurse")
    unknown_rule = api.put(f"/api/v1/patients/{ids['ada']}/rules/no_such_rule", headers=nurse,
                           json={"params": {"x": 1}, "reason": "typo"})
    assert unknown_rule.status_code == 422 and "not a detection rule" in unknown_rule.json()["detail"][0]["msg"]
    scale_2 = api.put(f"/api/v1/patients/{ids['ada']}/rules/profile", headers=nurse,
                      json={"params": {"spo2_scale": 2}, "reason": "COPD: target 88-92% (Dr Patel)"})
    assert scale_2.status_code == 200, scale_2.text
    with app.sessions() as session:
        assert [(r.rule, r.params) for r in session.scalars(select(RuleSetting))] == [("profile", {"spo2_scale": 2})]
