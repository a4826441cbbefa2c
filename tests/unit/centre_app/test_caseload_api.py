"""Caseloads over HTTP: teams, assignments by administrators and team leads (audited with before
and after), frailty entries (audited), and each nurse's caseload ordered by risk with its reasons;
who is refused (403, audited). On SQLite and PostgreSQL.

The world (`tests/support/api_world.py`): Ada and Bob each have an open help-button alarm; the
nurse has Ada on her own caseload. Added here: Cara and Eve, on team North (the nurse and the
lead); Dan, on nurse2's own caseload.
"""

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from centre_app.auth import create_user
from monitoring_centre.enrolment import enrol_home
from monitoring_centre.storage import AuditEntry, InboundMessage, Reading, utc_now
from tests.support.api_world import ADMIN, PASSWORD, World, api_app, bearer


@dataclass(frozen=True)
class Caseloads:
    client: TestClient
    world: World
    sessions: sessionmaker[Session]
    people: dict[str, int]
    team: int


def _spo2(session: Session, person_id: int, value: float) -> None:
    at = utc_now() - timedelta(hours=1)
    message_id = str(uuid.uuid4())
    session.add(InboundMessage(id=message_id, type="reading", hub_id="hub-cara", device_id="oximeter-1",
                               source_ts=at, hub_ts=at, received_at=at, payload="{}"))
    session.add(Reading(message_id=message_id, person_id=person_id, device_id="oximeter-1", metric="spo2",
                        value=value, unit="%", quality=[], source_ts=at, received_at=at))


@pytest.fixture
def setup(database_url: str) -> Iterator[Caseloads]:
    app, engine, world = api_app(database_url)
    sessions: sessionmaker[Session] = app.state.centre.sessions
    with sessions() as session, session.begin():
        people = dict(world.people)
        for name in ("Cara", "Dan", "Eve"):
            people[name.lower()] = enrol_home(session, name=name, address="", hub_id=f"hub-{name.lower()}",
                                              devices=[]).id
        create_user(session, "lead", PASSWORD, "team_lead", "Team lead")
        create_user(session, "nurse2", PASSWORD, "nurse")
        _spo2(session, people["cara"], 91)
    with TestClient(app) as client:
        admin = bearer(client, ADMIN)
        created = client.post("/api/v1/teams", headers=admin, json={"name": "North"})
        assert created.status_code == 201, created.text
        team = created.json()["id"]
        for member in ("nurse", "lead"):
            assert client.put(f"/api/v1/teams/{team}/members/{member}", headers=admin).status_code == 200
        for name in ("cara", "eve"):
            assert client.put(f"/api/v1/teams/{team}/caseload/{people[name]}", headers=admin).status_code == 200
        assert client.put(f"/api/v1/nurses/nurse2/caseload/{people['dan']}", headers=admin).status_code == 200
        yield Caseloads(client, world, sessions, people, team)
    engine.dispose()


def _audit(setup: Caseloads, action: str) -> list[AuditEntry]:
    with setup.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def test_a_nurse_sees_her_own_and_her_teams_people_ordered_by_risk_with_reasons(setup: Caseloads) -> None:
    client, people = setup.client, setup.people
    lead = bearer(client, "lead")
    # Cara's frailty: mild, then moderate (rising); Eve's: severe.
    for name, category in (("cara", "mild"), ("cara", "moderate"), ("eve", "severe")):
        response = client.put(f"/api/v1/patients/{people[name]}/frailty", headers=lead, json={"category": category})
        assert response.status_code == 200, response.text

    response = client.get("/api/v1/caseload", headers=bearer(client, "nurse"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["nurse"] == "nurse" and body["team"] is None
    rows = body["rows"]
    # Cara: SpO2 91 % scores 3, moderate 2, rising 1 = 6. Ada: an open help-button alarm, 3.
    # Eve: severe, 3: a tie with Ada, who comes first for her alert. Bob and Dan are not hers.
    assert [(row["name"], row["score"], row["via"]) for row in rows] == [
        ("Cara", 6, ["team North"]), ("Ada", 3, ["on your caseload"]), ("Eve", 3, ["team North"])]
    cara, ada, eve = rows
    assert cara["why"][0].startswith("Latest SpO2 91% (")
    assert cara["why"][0].endswith("): NEWS2 SpO2 Scale 1 scores 3")
    assert cara["why"][1].startswith("Frailty moderate (eFI 0.25-0.36; entered by lead, ")
    assert cara["why"][2] == "Frailty rose from mild to moderate in the last 12 months"
    assert cara["not_known"] == []
    assert ada["why"] == ["1 alert in the last 7 days: Help button pressed (emergency)"]
    assert ada["not_known"] == ["No clean SpO2 or pulse reading in the last 7 days: the score cannot see how they are"]
    assert eve["why"][0].startswith("Frailty severe (eFI above 0.36; entered by lead, ")
    assert [part["component"] for part in ada["components"]] == [
        "recent_alerts", "trend_alerts", "missed_measurements", "latest_spo2", "latest_pulse", "falls", "frailty",
        "frailty_rising"]
    assert sum(part["points"] for part in cara["components"]) == cara["score"]
    assert ada["last_alert_at"] is not None and eve["last_alert_at"] is None

    # Every person shown is audited, one row each.
    seen = [(row.actor, row.person_id, row.detail) for row in _audit(setup, "view_caseload")]
    assert sorted(seen) == sorted([("nurse", people[name], "nurse nurse") for name in ("ada", "cara", "eve")])


def test_team_leads_and_administrators_name_a_nurse_or_a_team(setup: Caseloads) -> None:
    client = setup.client
    lead, admin, nurse = bearer(client, "lead"), bearer(client, ADMIN), bearer(client, "nurse")
    # The lead sees, of the nurse's caseload, the people she may see herself: not Ada (the nurse's own).
    as_lead = client.get("/api/v1/caseload", headers=lead, params={"nurse": "nurse"}).json()
    assert [row["name"] for row in as_lead["rows"]] == ["Cara", "Eve"]
    # No frailty entered here: Ada 3 (her alarm) and Cara 3 (SpO2 91 %) tie, Ada's alert first; Eve 0.
    assert [(row["name"], row["score"]) for row in client.get("/api/v1/caseload", headers=admin, params={
        "nurse": "nurse"}).json()["rows"]] == [("Ada", 3), ("Cara", 3), ("Eve", 0)]
    team = client.get("/api/v1/caseload", headers=admin, params={"team": setup.team}).json()
    assert (team["team"], [row["name"] for row in team["rows"]]) == ("North", ["Cara", "Eve"])
    assert client.get("/api/v1/caseload", headers=nurse, params={"team": setup.team}).status_code == 200
    # Not hers to look at, nobody named, or no such nurse or team.
    assert client.get("/api/v1/caseload", headers=lead, params={"nurse": "nurse2"}).status_code == 403
    assert client.get("/api/v1/caseload", headers=nurse, params={"nurse": "lead"}).status_code == 403
    assert client.get("/api/v1/caseload", headers=admin).status_code == 422
    assert client.get("/api/v1/caseload", headers=admin, params={"nurse": "nurse", "team": setup.team}
                      ).status_code == 422
    assert client.get("/api/v1/caseload", headers=admin, params={"nurse": "operator"}).status_code == 404
    assert client.get("/api/v1/caseload", headers=admin, params={"team": 999_999}).status_code == 404
    assert [row["name"] for row in client.get("/api/v1/caseload", headers=bearer(client, "nurse2")).json()["rows"]
            ] == ["Dan"]


def test_assignments_are_audited_with_before_and_after(setup: Caseloads) -> None:
    client, people = setup.client, setup.people
    lead = bearer(client, "lead")
    cara = people["cara"]
    assigned = client.put(f"/api/v1/nurses/nurse/caseload/{cara}", headers=lead)
    assert assigned.status_code == 200, assigned.text
    assert assigned.json() == {"person_id": cara, "nurses": ["nurse"], "teams": ["North"]}
    assert client.put(f"/api/v1/nurses/nurse/caseload/{cara}", headers=lead).status_code == 200  # no change
    removed = client.delete(f"/api/v1/teams/{setup.team}/caseload/{cara}", headers=lead)
    assert removed.json() == {"person_id": cara, "nurses": ["nurse"], "teams": []}
    assert client.delete(f"/api/v1/teams/{setup.team}/caseload/{cara}", headers=lead).status_code == 404

    changes = [(row.actor, row.action, row.person_id, json.loads(row.detail))
               for row in _audit(setup, "assign_caseload") + _audit(setup, "unassign_caseload")
               if row.person_id == cara]
    assert changes == [
        (ADMIN, "assign_caseload", cara, {"change": "team:North", "before": {"nurses": [], "teams": []},
                                          "after": {"nurses": [], "teams": ["North"]}}),
        ("lead", "assign_caseload", cara, {"change": "nurse:nurse", "before": {"nurses": [], "teams": ["North"]},
                                           "after": {"nurses": ["nurse"], "teams": ["North"]}}),
        ("lead", "unassign_caseload", cara, {"change": "team:North",
                                             "before": {"nurses": ["nurse"], "teams": ["North"]},
                                             "after": {"nurses": ["nurse"], "teams": []}}),
    ]
    # A member added to a team: one row per person she now sees, with the members before and after.
    admin = bearer(client, ADMIN)
    assert client.put(f"/api/v1/teams/{setup.team}/members/nurse2", headers=admin).json()["members"] == [
        {"username": "lead", "display_name": "Team lead", "role": "team_lead"},
        {"username": "nurse", "display_name": "", "role": "nurse"},
        {"username": "nurse2", "display_name": "", "role": "nurse"}]
    joined = [row for row in _audit(setup, "add_team_member") if '"nurse2"' in row.detail]
    assert [row.person_id for row in joined] == [people["eve"]]
    assert json.loads(joined[0].detail)["before"] == ["lead", "nurse"]
    assert json.loads(joined[0].detail)["after"] == ["lead", "nurse", "nurse2"]


def test_a_team_lead_manages_only_her_own_teams_and_the_people_she_may_see(setup: Caseloads) -> None:
    client, people = setup.client, setup.people
    lead = bearer(client, "lead")
    # Dan is nurse2's, who shares no team with the lead; Bob is on no caseload of hers.
    assert client.put(f"/api/v1/nurses/nurse2/caseload/{people['eve']}", headers=lead).status_code == 403
    assert client.get("/api/v1/nurses/nurse2/caseload", headers=lead).status_code == 403
    assert client.put(f"/api/v1/teams/{setup.team}/caseload/{people['bob']}", headers=lead).status_code == 404
    assert client.put(f"/api/v1/nurses/nobody/caseload/{people['eve']}", headers=lead).status_code == 404
    assert client.post("/api/v1/teams", headers=lead, json={"name": "South"}).status_code == 403
    assert [p["name"] for p in client.get(f"/api/v1/teams/{setup.team}/caseload", headers=lead).json()] == [
        "Cara", "Eve"]
    assert [t["name"] for t in client.get("/api/v1/teams", headers=lead).json()] == ["North"]
    assert client.get("/api/v1/teams", headers=bearer(client, "nurse2")).json() == []


@pytest.mark.parametrize("username", ["daughter", "ada", "operator", "nurse"])
def test_others_may_not_manage_caseloads(setup: Caseloads, username: str) -> None:
    client, people = setup.client, setup.people
    headers = bearer(client, username)
    eve, team = people["eve"], setup.team
    answers = {
        "PUT nurse": client.put(f"/api/v1/nurses/nurse/caseload/{eve}", headers=headers),
        "DELETE nurse": client.delete(f"/api/v1/nurses/nurse2/caseload/{people['dan']}", headers=headers),
        "GET nurse": client.get("/api/v1/nurses/nurse/caseload", headers=headers),
        "PUT team": client.put(f"/api/v1/teams/{team}/caseload/{eve}", headers=headers),
        "GET team": client.get(f"/api/v1/teams/{team}/caseload", headers=headers),
        "POST team": client.post("/api/v1/teams", headers=headers, json={"name": "South"}),
        "PUT member": client.put(f"/api/v1/teams/{team}/members/nurse2", headers=headers),
    }
    assert {what: response.status_code for what, response in answers.items()} == dict.fromkeys(answers, 403)
    refusals = [row for row in _audit(setup, "refused") if row.actor == username]
    assert len(refusals) == len(answers)
    assert {row.person_id for row in refusals} == {eve, people["dan"], None}  # the person asked about, if any
    if username != "nurse":
        assert client.get("/api/v1/caseload", headers=headers).status_code == 403


def test_frailty_is_entered_by_clinicians_and_read_with_its_history(setup: Caseloads) -> None:
    client, people = setup.client, setup.people
    eve = people["eve"]
    nurse, admin = bearer(client, "nurse"), bearer(client, ADMIN)
    assert client.put(f"/api/v1/patients/{eve}/frailty", headers=nurse,
                      json={"category": "mild", "note": "clinical judgement"}).status_code == 200
    answer = client.put(f"/api/v1/patients/{eve}/frailty", headers=admin,
                        json={"category": "moderate", "source": "gp_record", "note": "eFI 0.31"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["current"]["category"] == "moderate"
    assert [(e["category"], e["source"], e["recorded_by"]) for e in answer.json()["history"]] == [
        ("moderate", "gp_record", ADMIN), ("mild", "entered", "nurse")]
    # Family never enters it, an operator reads but does not enter, a person reads their own only.
    assert client.put(f"/api/v1/patients/{eve}/frailty", headers=bearer(client, "operator"),
                      json={"category": "fit"}).status_code == 403
    assert client.get(f"/api/v1/patients/{eve}/frailty", headers=bearer(client, "daughter")).status_code == 403
    assert client.get(f"/api/v1/patients/{eve}/frailty", headers=bearer(client, "ada")).status_code == 404
    assert client.put(f"/api/v1/patients/{people['bob']}/frailty", headers=nurse,
                      json={"category": "fit"}).status_code == 404  # not on her caseload
    assert client.put(f"/api/v1/patients/{eve}/frailty", headers=nurse,
                      json={"category": "frail"}).status_code == 422
    assert client.get(f"/api/v1/patients/{eve}/frailty", headers=bearer(client, "operator")).status_code == 200

    changes = [(row.actor, row.person_id, json.loads(row.detail)) for row in _audit(setup, "change_frailty")]
    assert changes == [
        ("nurse", eve, {"before": None, "after": "mild", "source": "entered", "note": "clinical judgement"}),
        (ADMIN, eve, {"before": "mild", "after": "moderate", "source": "gp_record", "note": "eFI 0.31"}),
    ]
    assert [(row.actor, row.person_id) for row in _audit(setup, "view_frailty")] == [("operator", eve)]


def test_the_person_sees_which_teams_see_them(setup: Caseloads) -> None:
    client, people = setup.client, setup.people
    listed = client.get(f"/api/v1/patients/{people['eve']}/access", headers=bearer(client, ADMIN)).json()
    assert {(entry["who"], entry["basis"]) for entry in listed} >= {
        ("Team lead (team North)", "direct_care"), ("nurse (team North)", "direct_care"),
        ("the centre's operators", "direct_care"), ("the centre's administrators", "direct_care")}
    accounts = [entry["who"].split(" (")[0] for entry in listed]
    assert len(accounts) == len(set(accounts))  # each account once, with all its reasons
