"""The operator workstation's API (docs/console.md): calls, taking and releasing them, the call
screen, notes, history, the console's sound, the handover, call scripts and the caller record.
Over the HTTP app on a migrated database: SQLite, and PostgreSQL with the integration tests
(`tests/support/api_world.py`: Ada and Bob, an open pendant alarm each, an account of each role)."""

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from centre_app.auth import create_user
from detection.rules import CATALOGUE, RuleId
from monitoring_centre.alerts import AlertState, raise_alert, transition
from monitoring_centre.storage import (
    Alert,
    AuditEntry,
    ContactPoint,
    Person,
    PersonContact,
    Responder,
    utc_now,
)
from tests.support.api_world import ADMIN, PASSWORD, World, api_app, bearer

FALL = CATALOGUE[RuleId.FALL]


@dataclass
class Api:
    client: TestClient
    world: World
    sessions: sessionmaker[Session]
    changed: list[set[int]] = field(default_factory=list)
    """What the app told the live stream, call by call."""

    def as_(self, username: str) -> dict[str, str]:
        return bearer(self.client, username)

    def audit(self, action: str) -> list[AuditEntry]:
        with self.sessions() as session:
            return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    app, engine, world = api_app(database_url, allow_test_nhs_numbers=True)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session, session.begin():
        create_user(session, "operator2", PASSWORD, "operator", "Priya Patel")
    out = Api(TestClient(app, raise_server_exceptions=True), world, sessions)
    app.state.centre.alerts_changed = out.changed.append
    with out.client:
        yield out
    _dispose(engine)


def _dispose(engine: Engine) -> None:
    engine.dispose()


def fall_for(api: Api, name: str, minutes_ago: float = 0) -> int:
    with api.sessions() as session, session.begin():
        alert = raise_alert(session, person_id=api.world.people[name], hub_id=f"hub-{name}", rule=FALL, subject="",
                            at=utc_now() - timedelta(minutes=minutes_ago), evidence={}, why="test")
        return alert.id


def test_a_press_and_a_fall_from_one_person_are_one_call_and_two_people_two(api: Api) -> None:
    fall = fall_for(api, "ada")
    calls = api.client.get("/api/v1/calls", headers=api.as_("operator")).json()
    assert [c["person_name"] for c in calls] == ["Ada", "Bob"]  # both priority 1: the longest waiting first
    ada = calls[0]
    assert ada["priority"] == 1 and ada["taken_by"] is None and ada["taken_by_name"] is None
    assert sorted(a["id"] for a in ada["alerts"]) == sorted([api.world.alerts["ada"], fall])
    assert set(ada["alerts"][0]) == {"id", "rule", "title", "priority", "status", "opened_at", "last_seen_at",
                                     "repeat_count"}
    assert ada["opened_at"] == min(a["opened_at"] for a in ada["alerts"])
    viewed = api.audit("view_calls")
    assert {row.person_id for row in viewed} == set(api.world.people.values())


def test_calls_are_filtered_by_name_rule_status_and_priority(api: Api) -> None:
    fall_for(api, "ada")
    headers = api.as_("operator")

    def names(query: str) -> list[str]:
        response = api.client.get(f"/api/v1/calls?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return [c["person_name"] for c in response.json()]

    assert names("q=bO") == ["Bob"]
    assert names("rule=fall") == ["Ada"]
    assert names("priority=1&priority=2") == ["Ada", "Bob"]
    assert names("priority=3") == []
    assert names("status=acknowledged") == []
    api.client.post(f"/api/v1/alerts/{api.world.alerts['bob']}/acknowledge", headers=headers)
    assert names("status=acknowledged") == ["Bob"]
    assert len([a for c in api.client.get("/api/v1/calls?rule=fall", headers=headers).json()
                for a in c["alerts"]]) == 2  # a matching call shows all its alerts
    assert api.client.get("/api/v1/calls?status=closed", headers=headers).status_code == 422


def test_a_call_is_taken_by_one_operator_at_a_time(api: Api) -> None:
    ada = api.world.people["ada"]
    first, second = api.as_("operator"), api.as_("operator2")
    taken = api.client.post(f"/api/v1/calls/{ada}/take", headers=second)
    assert taken.status_code == 200, taken.text
    assert taken.json()["taken_by"] == "operator2" and taken.json()["taken_by_name"] == "Priya Patel"
    assert api.changed[-1] == {api.world.alerts["ada"]}  # the consoles are told
    again = api.client.post(f"/api/v1/calls/{ada}/take", headers=first)
    assert again.status_code == 409
    assert again.json()["detail"].startswith("taken by Priya Patel at ")
    assert api.client.post(f"/api/v1/calls/{ada}/release", headers=first).status_code == 409
    assert api.client.post(f"/api/v1/calls/{ada}/take", headers=second).status_code == 200  # already hers: fine
    calls = {c["person_name"]: c for c in api.client.get("/api/v1/calls", headers=first).json()}
    assert calls["Ada"]["taken_by"] == "operator2" and calls["Bob"]["taken_by"] is None
    fall = fall_for(api, "ada")  # a new alert joins the call and its holder
    calls = {c["person_name"]: c for c in api.client.get("/api/v1/calls", headers=first).json()}
    assert calls["Ada"]["taken_by"] == "operator2" and len(calls["Ada"]["alerts"]) == 2
    released = api.client.post(f"/api/v1/calls/{ada}/release", headers=second)
    assert released.status_code == 200 and released.json()["taken_by"] is None
    assert api.client.post(f"/api/v1/calls/{ada}/take", headers=first).json()["taken_by"] == "operator"
    with api.sessions() as session:
        assert session.get_one(Alert, fall).taken_by == "operator"
    assert [(r.actor, r.person_id) for r in api.audit("take_call")] == [
        ("operator2", ada), ("operator2", ada), ("operator", ada)]
    assert [(r.actor, r.person_id) for r in api.audit("release_call")] == [("operator2", ada)]


def test_taking_the_call_of_someone_with_no_alert_is_a_404(api: Api) -> None:
    headers = api.as_("operator")
    api.client.post(f"/api/v1/alerts/{api.world.alerts['bob']}/resolve", headers=headers,
                    json={"outcome": "false_alarm"})
    assert api.client.post(f"/api/v1/calls/{api.world.people['bob']}/take", headers=headers).status_code == 404
    assert api.client.post("/api/v1/calls/999/take", headers=headers).status_code == 404


def _give_ada_a_record(api: Api) -> None:
    with api.sessions() as session, session.begin():
        ada = session.get_one(Person, api.world.people["ada"])
        ada.access_details = "Key safe left of the door, code 4711"
        ada.operator_notes = "Use the side gate; the porch light is on a timer"
        susan = Responder(name="Susan Hughes", role="keyholder", active=True)
        session.add(susan)
        session.flush()
        session.add_all([ContactPoint(responder_id=susan.id, address="tel:+447700900123", position=0),
                         ContactPoint(responder_id=susan.id, address="mailto:susan@example.org", position=1),
                         PersonContact(person_id=ada.id, responder_id=susan.id, position=0, nominated_at=utc_now(),
                                       relationship="daughter")])


def test_the_call_screen_has_the_caller_the_why_the_script_and_no_key_safe_code(api: Api) -> None:
    _give_ada_a_record(api)
    admin = api.as_(ADMIN)
    changed = api.client.patch(f"/api/v1/patients/{api.world.people['ada']}", headers=admin, json={
        "date_of_birth": "1936-05-04", "phones": [{"label": "home", "number": "01632 960123"}],
        "conditions": "COPD", "allergies": "penicillin", "pets": "a cat, Tibbles", "gp_practice": "Orchard Surgery"})
    assert changed.status_code == 200, changed.text
    headers = api.as_("operator")
    api.client.post(f"/api/v1/calls/{api.world.people['ada']}/take", headers=headers)
    response = api.client.get(f"/api/v1/alerts/{api.world.alerts['ada']}/call", headers=headers)
    assert response.status_code == 200, response.text
    assert "4711" not in response.text and "Key safe" not in response.text
    screen = response.json()
    assert set(screen) == {"alert", "caller", "why", "script", "escalation_log", "notes", "taken_by", "taken_by_name"}
    assert screen["alert"]["id"] == api.world.alerts["ada"] and screen["alert"]["rule"] == "pendant_alarm"
    caller = screen["caller"]
    assert caller["name"] == "Ada" and caller["date_of_birth"] == "1936-05-04" and caller["age"] >= 90
    assert caller["access_notes"] == "Use the side gate; the porch light is on a timer"
    assert caller["phones"] == [{"label": "home", "number": "01632 960123"}]
    assert (caller["conditions"], caller["allergies"], caller["pets"]) == ("COPD", "penicillin", "a cat, Tibbles")
    assert caller["keyholders"] == [{"order": 1, "name": "Susan Hughes", "relationship": "daughter",
                                     "phones": [{"label": "phone", "number": "+447700900123"}]}]
    assert set(screen["why"]) == {"rule_title", "summary", "facts", "repeats", "first_at", "last_at"}
    assert screen["why"]["rule_title"] == "Help button pressed"
    assert "{" not in screen["why"]["summary"]
    assert screen["script"]["rule"] == "pendant_alarm" and len(screen["script"]["steps"]) >= 3
    assert screen["taken_by"] == "operator" and screen["taken_by_name"] == "operator"
    assert screen["notes"] == [] and isinstance(screen["escalation_log"], list)
    assert [r.person_id for r in api.audit("view_call")] == [api.world.people["ada"]]


def test_notes_need_a_known_action_and_a_reason_for_no_further_action(api: Api) -> None:
    alert_id = api.world.alerts["ada"]
    headers = api.as_("operator")
    url = f"/api/v1/alerts/{alert_id}/notes"
    bad = api.client.post(url, headers=headers, json={"action": "went_home", "text": "x"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "action"]
    no_reason = api.client.post(url, headers=headers, json={"action": "no_further_action", "text": "fine"})
    assert no_reason.status_code == 422 and no_reason.json()["detail"][0]["loc"] == ["body", "reason"]
    empty = api.client.post(url, headers=headers, json={"action": "note", "text": "  "})
    assert empty.status_code == 422
    sent = api.client.post(url, headers=headers, json={"action": "dispatched_keyholder", "text": "Susan on her way"})
    assert sent.status_code == 201, sent.text
    note = sent.json()
    assert (note["action"], note["text"], note["by"], note["alert_id"]) == (
        "dispatched_keyholder", "Susan on her way", "operator", alert_id)
    nfa = api.client.post(url, headers=headers, json={"action": "no_further_action", "text": "",
                                                      "reason": "pressed by accident; she is well"})
    assert nfa.status_code == 201
    screen = api.client.get(f"/api/v1/alerts/{alert_id}/call", headers=headers).json()
    assert [(n["action"], n["by_name"]) for n in screen["notes"]] == [
        ("dispatched_keyholder", "operator"), ("no_further_action", "operator")]
    assert screen["notes"][1]["reason"] == "pressed by accident; she is well"
    assert [(r.action, r.person_id) for r in api.audit("add_call_note")] == [
        ("add_call_note", api.world.people["ada"])] * 2
    assert {alert_id} in api.changed


def _resolve_many(api: Api, count: int) -> None:
    with api.sessions() as session, session.begin():
        for index in range(count):
            alert = raise_alert(session, person_id=api.world.people["bob"], hub_id="hub-bob", rule=FALL,
                                subject="", at=utc_now() - timedelta(hours=index + 1), evidence={}, why="test")
            transition(session, alert, AlertState.RESOLVED, "operator", outcome="false_alarm")


def test_history_is_searched_and_paged_newest_first(api: Api) -> None:
    headers, priya = api.as_("operator"), api.as_("operator2")
    acknowledged = api.client.post(f"/api/v1/alerts/{api.world.alerts['ada']}/acknowledge", headers=priya)
    assert acknowledged.status_code == 200
    resolved = api.client.post(f"/api/v1/alerts/{api.world.alerts['ada']}/resolve", headers=priya,
                               json={"outcome": "responder_visited"})
    assert resolved.status_code == 200
    _resolve_many(api, 55)
    page = api.client.get("/api/v1/alerts/history", headers=headers).json()
    assert (page["total"], page["page"], page["pages"], len(page["items"])) == (56, 1, 2, 50)
    newest = page["items"][-0]
    assert set(newest) == {"id", "person_id", "person_name", "rule", "title", "priority", "opened_at",
                           "acknowledged_at", "resolved_at", "outcome", "resolved_by", "resolved_by_name"}
    resolved_times = [item["resolved_at"] for item in page["items"]]
    assert resolved_times == sorted(resolved_times, reverse=True)
    second = api.client.get("/api/v1/alerts/history?page=2", headers=headers).json()
    assert len(second["items"]) == 6
    ada = api.client.get("/api/v1/alerts/history?q=ad&outcome=responder_visited", headers=headers).json()
    assert ada["total"] == 1
    item = ada["items"][0]
    assert (item["person_name"], item["resolved_by"], item["outcome"]) == ("Ada", "operator2", "responder_visited")
    assert item["resolved_by_name"] == "Priya Patel"  # the page shows the name, not the username
    assert item["acknowledged_at"] is not None
    assert api.client.get("/api/v1/alerts/history?rule=pendant_alarm", headers=headers).json()["total"] == 1
    later = (utc_now() - timedelta(hours=10, minutes=30)).isoformat().replace("+00:00", "Z")
    window = api.client.get("/api/v1/alerts/history", headers=headers, params={"from": later}).json()
    assert window["total"] == 11  # Ada's and Bob's ten newest
    naive = api.client.get("/api/v1/alerts/history?from=2026-11-30T00:00:00", headers=headers)
    assert naive.status_code == 422
    assert api.client.get("/api/v1/alerts/history?page=9", headers=headers).json()["items"] == []
    assert api.audit("view_alert_history")


def test_muting_the_console_sound_is_audited(api: Api) -> None:
    headers = api.as_("operator")
    assert api.client.post("/api/v1/console/sound", headers=headers, json={"muted": True}).status_code == 204
    assert api.client.post("/api/v1/console/sound", headers=headers, json={"muted": False}).status_code == 204
    assert [r.actor for r in api.audit("console_sound_muted")] == ["operator"]
    assert [r.actor for r in api.audit("console_sound_on")] == ["operator"]
    assert api.client.post("/api/v1/console/sound", headers=headers, json={}).status_code == 422


def test_the_handover_lists_open_calls_calls_in_progress_with_their_latest_note_and_notes(api: Api) -> None:
    headers = api.as_("operator")
    ada = api.world.people["ada"]
    api.client.post(f"/api/v1/calls/{ada}/take", headers=headers)
    api.client.post(f"/api/v1/alerts/{api.world.alerts['ada']}/notes", headers=headers,
                    json={"action": "called_back", "text": "no answer"})
    api.client.post(f"/api/v1/alerts/{api.world.alerts['ada']}/notes", headers=headers,
                    json={"action": "dispatched_keyholder", "text": "Susan going"})
    written = api.client.post("/api/v1/handover/notes", headers=headers, json={"text": "Bob's hub was flaky at 02:00"})
    assert written.status_code == 201, written.text
    assert api.client.post("/api/v1/handover/notes", headers=headers, json={"text": " "}).status_code == 422
    handover = api.client.get("/api/v1/handover", headers=api.as_("operator2")).json()
    assert [c["person_name"] for c in handover["open"]] == ["Bob"]
    assert [c["person_name"] for c in handover["in_progress"]] == ["Ada"]
    progress = handover["in_progress"][0]
    assert progress["taken_by"] == "operator"
    assert (progress["latest_note"]["action"], progress["latest_note"]["text"]) == ("dispatched_keyholder",
                                                                                     "Susan going")
    assert [(n["by"], n["text"]) for n in handover["notes"]] == [("operator", "Bob's hub was flaky at 02:00")]
    assert set(handover["notes"][0]) == {"id", "at", "by", "by_name", "text"}
    assert {r.person_id for r in api.audit("view_handover")} == set(api.world.people.values())


def test_there_is_a_default_script_for_every_rule_and_admins_edit_them_audited(api: Api) -> None:
    scripts = api.client.get("/api/v1/call-scripts", headers=api.as_("operator")).json()
    assert [s["rule"] for s in scripts] == [rule.value for rule in RuleId]
    assert all(s["steps"] and s["title"] and s["updated_by"] == "seed" for s in scripts)
    body = {"title": "Help button", "steps": ["Speak through the hub.", "Send help if in doubt."]}
    assert api.client.put("/api/v1/call-scripts/pendant_alarm", headers=api.as_("operator"), json=body).status_code \
        == 403
    admin = api.as_(ADMIN)
    edited = api.client.put("/api/v1/call-scripts/pendant_alarm", headers=admin, json=body)
    assert edited.status_code == 200, edited.text
    assert edited.json()["steps"] == body["steps"] and edited.json()["updated_by"] == ADMIN
    audit = api.audit("edit_call_script")
    assert len(audit) == 1
    detail = json.loads(audit[0].detail)
    assert detail["after"] == body and detail["before"]["title"] == "Help button or pull cord"
    screen = api.client.get(f"/api/v1/alerts/{api.world.alerts['ada']}/call", headers=api.as_("operator")).json()
    assert screen["script"]["steps"] == body["steps"]
    assert api.client.put("/api/v1/call-scripts/no_such_rule", headers=admin, json=body).status_code == 404
    empty = api.client.put("/api/v1/call-scripts/fall", headers=admin, json={"title": "Fall", "steps": ["ok", " "]})
    assert empty.status_code == 422


def test_admins_change_the_caller_record_audited_before_and_after(api: Api) -> None:
    ada = api.world.people["ada"]
    admin = api.as_(ADMIN)
    url = f"/api/v1/patients/{ada}"
    first = api.client.patch(url, headers=admin, json={"pets": "a dog", "access_details": "code 1234",
                                                         "access_notes": "side gate", "nhs_number": "943 476 5919"})
    assert first.status_code == 200, first.text
    assert first.json()["pets"] == "a dog" and first.json()["nhs_number"] == "9434765919"
    assert "1234" not in first.text
    second = api.client.patch(url, headers=admin, json={"pets": "a dog and a cat", "name": "Ada King"})
    assert second.status_code == 200
    rows = api.audit("edit_caller_record")
    assert [row.person_id for row in rows] == [ada, ada]
    before_after = [json.loads(row.detail) for row in rows]
    assert before_after[0]["before"]["pets"] == "" and before_after[0]["after"]["pets"] == "a dog"
    assert before_after[0]["after"]["access_details"] == "(changed)"
    assert "1234" not in rows[0].detail
    assert before_after[1] == {"before": {"name": "Ada", "pets": "a dog"},
                               "after": {"name": "Ada King", "pets": "a dog and a cat"}}
    for bad in ({"nhs_number": "123"}, {"name": ""}, {"date_of_birth": "2999-01-01"}, {"pets": None},
                {"phones": [{"label": "home", "number": ""}]}):
        response = api.client.patch(url, headers=admin, json=bad)
        assert response.status_code == 422, bad
        assert response.json()["detail"][0]["loc"] == ["body", next(iter(bad))]
    assert api.client.patch(url, headers=api.as_("operator"), json={"pets": "x"}).status_code == 403
    with api.sessions() as session:
        assert session.get_one(Person, ada).pets == "a dog and a cat"


@pytest.mark.parametrize("username", ["nurse", "daughter", "ada"])
def test_nobody_but_operators_uses_the_workstation_and_each_refusal_is_audited(api: Api, username: str) -> None:
    headers = api.as_(username)
    alert_id, ada = api.world.alerts["ada"], api.world.people["ada"]
    requests = [("GET", "/api/v1/calls", None), ("POST", f"/api/v1/calls/{ada}/take", None),
                ("POST", f"/api/v1/calls/{ada}/release", None), ("GET", f"/api/v1/alerts/{alert_id}/call", None),
                ("POST", f"/api/v1/alerts/{alert_id}/notes", {"action": "note", "text": "x"}),
                ("GET", "/api/v1/alerts/history", None), ("POST", "/api/v1/console/sound", {"muted": True}),
                ("GET", "/api/v1/handover", None), ("POST", "/api/v1/handover/notes", {"text": "x"}),
                ("GET", "/api/v1/call-scripts", None),
                ("PUT", "/api/v1/call-scripts/fall", {"title": "t", "steps": ["s"]}),
                ("PATCH", f"/api/v1/patients/{ada}", {"pets": "x"})]
    for method, url, body in requests:
        response = api.client.request(method, url, headers=headers, json=body)
        assert response.status_code == 403, (method, url, response.text)
    refused = api.audit("refused")
    assert len(refused) == len(requests)
    assert {row.actor for row in refused} == {username}
    assert sum(1 for row in refused if row.person_id == ada) == 5  # the ones that name Ada or her alert
    assert not api.audit("view_call") and not api.audit("take_call")


def test_the_call_screen_shows_the_notes_of_every_alarm_of_the_call(api: Api) -> None:
    ada, press = api.world.people["ada"], api.world.alerts["ada"]
    headers = api.as_("operator")
    fall = fall_for(api, "ada")
    assert api.client.post(f"/api/v1/calls/{ada}/take", headers=headers).status_code == 200
    noted = api.client.post(f"/api/v1/alerts/{press}/notes", headers=headers,
                            json={"action": "called_back", "text": "She slipped; sitting in her chair"})
    assert noted.status_code == 201, noted.text
    on_fall = api.client.get(f"/api/v1/alerts/{fall}/call", headers=headers).json()["notes"]
    assert [(n["alert_id"], n["text"]) for n in on_fall] == [(press, "She slipped; sitting in her chair")]
    resolved = api.client.post(f"/api/v1/alerts/{press}/resolve", headers=headers, json={"outcome": "false_alarm"})
    assert resolved.status_code == 200, resolved.text
    assert len(api.client.get(f"/api/v1/alerts/{fall}/call", headers=headers).json()["notes"]) == 1  # still the call's
    bob = api.client.get(f"/api/v1/alerts/{api.world.alerts['bob']}/call", headers=headers).json()["notes"]
    assert bob == []  # another person's call: none of Ada's
