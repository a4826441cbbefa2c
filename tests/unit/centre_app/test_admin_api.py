"""The administrator's API: accounts (no default passwords, a one-time password shown once,
role changes and disabling that end sessions), people and homes (enrol with the hub's broker
password once, edit, retire) and devices (battery and last heard, add, take out). Every change
is audited with before and after; every other role is refused, audited."""

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from alerting.escalation import recipients
from alerting.policy import Audience
from centre_app.auth import create_user
from monitoring_centre.storage import AuditEntry, Device, Hub, Person, User, utc_now
from tests.support.api_world import ADMIN, PASSWORD, World, api_app, bearer

NOT_ADMINS = ("operator", "nurse", "daughter", "ada", "lead")


@pytest.fixture
def world(database_url: str) -> Iterator[tuple[TestClient, World]]:
    app, engine, people = api_app(database_url, allow_test_nhs_numbers=True)
    with app.state.centre.sessions() as session, session.begin():
        create_user(session, "lead", PASSWORD, "team_lead")
    with TestClient(app) as client:
        yield client, people
    engine.dispose()


def sessions(client: TestClient) -> Any:
    return client.app.state.centre.sessions  # type: ignore[attr-defined]


def audit_rows(client: TestClient, action: str) -> list[AuditEntry]:
    with sessions(client)() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def refusals(client: TestClient, actor: str) -> list[str]:
    return [row.detail for row in audit_rows(client, "refused") if row.actor == actor]


ENROL = {"name": "Edith Clarke", "address": "3 Mill Lane", "hub_id": "hub-edith",
         "devices": ["pendant-1:pendant", "pir-1:motion:kitchen"], "nhs_number": "999 000 1235",
         "service": "keyholder_only", "access_details": "Key safe by the back door, code 9753"}


# Accounts

def test_an_account_is_created_with_a_one_time_password_that_signs_in_and_is_never_stored(
        world: tuple[TestClient, World]) -> None:
    client, _ = world
    admin = bearer(client, ADMIN)
    created = client.post("/api/v1/users", json={"username": "kim.nurse", "role": "nurse", "display_name": "Kim"},
                          headers=admin)
    assert created.status_code == 201, created.text
    password = created.json()["password"]
    assert len(password) >= 20 and created.json()["user"] == {
        "id": created.json()["user"]["id"], "username": "kim.nurse", "display_name": "Kim", "role": "nurse",
        "person_id": None, "person_name": None, "disabled": False}
    signed_in = client.post("/api/v1/auth/token", data={"username": "kim.nurse", "password": password})
    assert signed_in.status_code == 200
    [row] = audit_rows(client, "create_user")
    assert row.actor == ADMIN and password not in row.detail
    assert json.loads(row.detail) == {"username": "kim.nurse", "before": None, "after": {
        "role": "nurse", "display_name": "Kim", "person_id": None, "disabled": False}}
    with sessions(client)() as session:
        stored = session.scalar(select(User.password_hash).where(User.username == "kim.nurse"))
    assert stored is not None and password not in stored and stored.startswith("$argon2")
    listed = client.get("/api/v1/users", headers=admin).json()
    assert [u["username"] for u in listed] == sorted(u["username"] for u in listed)
    assert "password" not in json.dumps(listed) and "argon2" not in json.dumps(listed)


def test_an_account_is_refused_a_taken_name_an_unknown_role_and_a_person_role_without_its_person(
        world: tuple[TestClient, World]) -> None:
    client, people = world
    admin = bearer(client, ADMIN)
    assert client.post("/api/v1/users", json={"username": "nurse", "role": "nurse"}, headers=admin).status_code == 409
    assert client.post("/api/v1/users", json={"username": "x1", "role": "wizard"}, headers=admin).status_code == 422
    assert client.post("/api/v1/users", json={"username": "x2", "role": "person"}, headers=admin).status_code == 422
    taken = client.post("/api/v1/users", json={"username": "x3", "role": "person", "person_id": people.people["ada"]},
                        headers=admin)
    assert taken.status_code == 409 and "has an account already" in taken.json()["detail"]
    assert len(refusals(client, ADMIN)) == 2  # the two conflicts


def test_a_role_change_is_audited_with_before_and_after_and_ends_the_accounts_sessions(
        world: tuple[TestClient, World]) -> None:
    client, _ = world
    admin = bearer(client, ADMIN)
    nurse = bearer(client, "nurse")
    changed = client.patch("/api/v1/users/nurse", json={"role": "team_lead"}, headers=admin)
    assert changed.status_code == 200 and changed.json()["role"] == "team_lead"
    assert client.get("/api/v1/caseload", headers=nurse).status_code == 401  # signed in under the old role
    [row] = audit_rows(client, "change_user")
    detail = json.loads(row.detail)
    assert detail["before"]["role"] == "nurse" and detail["after"]["role"] == "team_lead"
    assert client.patch(f"/api/v1/users/{ADMIN}", json={"role": "operator"}, headers=admin).status_code == 422
    assert client.patch("/api/v1/users/ada", json={"role": "family"}, headers=admin).status_code == 422
    assert client.patch("/api/v1/users/nobody-here", json={"role": "nurse"}, headers=admin).status_code == 404


def test_a_disabled_account_cannot_sign_in_its_sessions_end_and_a_new_password_enables_it(
        world: tuple[TestClient, World]) -> None:
    client, _ = world
    admin = bearer(client, ADMIN)
    operator = bearer(client, "operator")
    disabled = client.post("/api/v1/users/operator/disable", headers=admin)
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    assert client.get("/api/v1/alerts", headers=operator).status_code == 401
    assert client.post("/api/v1/auth/token", data={"username": "operator", "password": PASSWORD}).status_code == 401
    assert client.post(f"/api/v1/users/{ADMIN}/disable", headers=admin).status_code == 409
    renewed = client.post("/api/v1/users/operator/password", headers=admin)
    assert renewed.status_code == 200 and renewed.json()["user"]["disabled"] is False
    password = renewed.json()["password"]
    assert client.post("/api/v1/auth/token", data={"username": "operator", "password": password}).status_code == 200
    [off] = audit_rows(client, "disable_user")
    assert json.loads(off.detail)["before"]["disabled"] is False and json.loads(off.detail)["after"]["disabled"]
    [reset] = audit_rows(client, "reset_password")
    assert password not in reset.detail


# People and homes

def test_enrolment_gives_the_hubs_broker_password_once_and_keeps_only_its_hash(
        world: tuple[TestClient, World]) -> None:
    client, _ = world
    admin = bearer(client, ADMIN)
    enrolled = client.post("/api/v1/homes", json=ENROL, headers=admin)
    assert enrolled.status_code == 201, enrolled.text
    answer = enrolled.json()
    assert answer["hub_id"] == answer["broker_username"] == "hub-edith" and len(answer["broker_password"]) >= 24
    with sessions(client)() as session:
        person = session.get_one(Person, answer["person_id"])
        hub = session.get_one(Hub, "hub-edith")
        assert (person.name, person.nhs_number, person.service) == ("Edith Clarke", "9990001235", "keyholder_only")
        assert person.access_details == ENROL["access_details"]
        assert hub.broker_password_hash and answer["broker_password"] not in hub.broker_password_hash
        assert sorted(d.id for d in session.scalars(select(Device).where(Device.hub_id == "hub-edith"))) == [
            "pendant-1", "pir-1"]
    [row] = audit_rows(client, "enrol_home")
    assert row.person_id == answer["person_id"] and answer["broker_password"] not in row.detail
    assert "9753" not in row.detail  # the way in never goes into the audit log
    again = client.post("/api/v1/homes", json=ENROL, headers=admin)
    assert again.status_code == 409
    reserved = client.post("/api/v1/homes", json={**ENROL, "hub_id": "centre", "nhs_number": None}, headers=admin)
    assert reserved.status_code == 422 and "centre" in reserved.text
    bad_device = client.post("/api/v1/homes", json={**ENROL, "hub_id": "hub-x", "nhs_number": None,
                                                    "devices": ["p:toaster"]}, headers=admin)
    assert bad_device.status_code == 422
    assert "the kind 'toaster' is not" in bad_device.text and "pendant" in bad_device.text  # said in words
    twice = client.post("/api/v1/homes", json={**ENROL, "hub_id": "hub-y", "nhs_number": None,
                                               "devices": ["p1:pendant", "p1:door"]}, headers=admin)
    assert twice.status_code == 422 and "twice" in twice.text


def test_a_change_of_service_is_audited_with_before_and_after(world: tuple[TestClient, World]) -> None:
    client, people = world
    admin = bearer(client, ADMIN)
    ada = people.people["ada"]
    changed = client.patch(f"/api/v1/homes/{ada}", json={"service": "keyholder_only"}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert changed.json()["service"] == "keyholder_only" and changed.json()["hub_ids"] == ["hub-ada"]
    [row] = audit_rows(client, "change_service")
    assert row.person_id == ada and json.loads(row.detail) == {
        "before": {"service": "monitored"}, "after": {"service": "keyholder_only"}}
    assert client.patch(f"/api/v1/homes/{ada}", json={"service": "keyholder_only"}, headers=admin).status_code == 200
    assert len(audit_rows(client, "change_service")) == 1  # no change, nothing recorded
    assert client.patch(f"/api/v1/homes/{ada}", json={"service": "gold"}, headers=admin).status_code == 422
    assert client.patch("/api/v1/homes/999999", json={"service": "monitored"}, headers=admin).status_code == 404


def test_retiring_a_home_takes_its_hub_and_devices_off_the_books_and_keeps_the_person(
        world: tuple[TestClient, World]) -> None:
    client, people = world
    admin = bearer(client, ADMIN)
    bob = people.people["bob"]
    assert client.post(f"/api/v1/homes/{bob}/retire", json={"reason": ""}, headers=admin).status_code == 422
    retired = client.post(f"/api/v1/homes/{bob}/retire", json={"reason": "moved into residential care"},
                          headers=admin)
    assert retired.status_code == 200 and retired.json() == {"person_id": bob, "hubs_retired": ["hub-bob"]}
    with sessions(client)() as session:
        assert session.get(Hub, "hub-bob") is None and session.get(Person, bob) is not None
    [row] = audit_rows(client, "retire_home")
    assert json.loads(row.detail) == {"before": {"hubs": {"hub-bob": []}}, "after": {"hubs": {}},
                                      "reason": "moved into residential care"}
    assert client.post(f"/api/v1/homes/{bob}/retire", json={"reason": "again"}, headers=admin).status_code == 422


# Devices

def test_devices_are_listed_with_battery_and_last_heard_and_added_and_taken_out(
        world: tuple[TestClient, World]) -> None:
    client, people = world
    admin = bearer(client, ADMIN)
    added = client.post("/api/v1/devices", json={"hub_id": "hub-ada", "device_id": "pendant-1", "kind": "pendant"},
                        headers=admin)
    assert added.status_code == 201, added.text
    assert added.json()["problems"] == ["quiet"]  # never heard from
    heard = utc_now() - timedelta(minutes=5)
    with sessions(client)() as session, session.begin():
        device = session.get_one(Device, ("hub-ada", "pendant-1"))
        device.battery_pct, device.last_seen = 64, heard
    [listed] = client.get("/api/v1/devices", headers=admin).json()
    assert (listed["person_name"], listed["battery_pct"], listed["problems"]) == ("Ada", 64, [])
    assert listed["last_seen"].startswith(heard.strftime("%Y-%m-%dT%H:%M"))
    assert client.post("/api/v1/devices", json={"hub_id": "hub-ada", "device_id": "pendant-1", "kind": "pendant"},
                       headers=admin).status_code == 409
    assert client.post("/api/v1/devices", json={"hub_id": "hub-ada", "device_id": "d2", "kind": "toaster"},
                       headers=admin).status_code == 422
    assert client.post("/api/v1/devices", json={"hub_id": "hub-nobody", "device_id": "d2", "kind": "pendant"},
                       headers=admin).status_code == 404
    removed = client.post("/api/v1/devices/hub-ada/pendant-1/remove", json={"reason": "lost"}, headers=admin)
    assert removed.status_code == 200
    assert client.get("/api/v1/devices", headers=admin).json() == []
    assert client.post("/api/v1/devices/hub-ada/pendant-1/remove", json={"reason": "lost"},
                       headers=admin).status_code == 404
    [add] = audit_rows(client, "add_device")
    [remove] = audit_rows(client, "remove_device")
    assert add.person_id == remove.person_id == people.people["ada"]
    assert json.loads(remove.detail)["before"]["device"] == "pendant-1" and json.loads(remove.detail)["after"] is None
    [view] = [row for row in audit_rows(client, "view_devices") if row.person_id is not None]
    assert view.person_id == people.people["ada"]


# Refusals

# Responders

def test_a_responder_is_changed_with_before_and_after_and_a_nominated_keyholder_keeps_the_role(
        world: tuple[TestClient, World]) -> None:
    client, people = world
    admin = bearer(client, ADMIN)
    kim = client.post("/api/v1/responders", json={"name": "Kim", "role": "keyholder",
                                                  "contact_points": ["mailto:kim@family.test"]}, headers=admin).json()
    assert client.put(f"/api/v1/patients/{people.people['ada']}/contacts", json={"responder_ids": [kim["id"]]},
                      headers=admin).status_code == 200
    changed = client.put(f"/api/v1/responders/{kim['id']}", headers=admin, json={
        "name": "Kim Hughes", "role": "keyholder", "contact_points": ["sms:+447700900123", "mailto:kim@family.test"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["contact_points"] == ["sms:+447700900123", "mailto:kim@family.test"]
    phoned = client.put(f"/api/v1/responders/{kim['id']}", headers=admin, json={
        "name": "Kim Hughes", "role": "keyholder",
        "contact_points": ["sms:+447700900123", "tel:07700900123", "mailto:kim@family.test"]})
    assert phoned.json()["contact_points"] == ["sms:+447700900123", "tel:07700900123", "mailto:kim@family.test"]
    [listed] = [r for r in client.get("/api/v1/responders", headers=admin).json() if r["id"] == kim["id"]]
    assert listed["contact_points"] == phoned.json()["contact_points"]  # the number to phone is shown too
    assert client.put(f"/api/v1/responders/{kim['id']}", headers=admin, json={
        "name": "Kim Hughes", "role": "keyholder",
        "contact_points": ["sms:+447700900123", "mailto:kim@family.test"]}).status_code == 200
    row = audit_rows(client, "change_responder")[0]
    assert json.loads(row.detail) == {
        "responder": kim["id"],
        "before": {"name": "Kim", "role": "keyholder", "contact_points": ["mailto:kim@family.test"]},
        "after": {"name": "Kim Hughes", "role": "keyholder",
                  "contact_points": ["sms:+447700900123", "mailto:kim@family.test"]}}
    bad = client.put(f"/api/v1/responders/{kim['id']}", headers=admin, json={
        "name": "Kim", "role": "keyholder", "contact_points": ["not an address"]})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "contact_points", 0]
    moved = client.put(f"/api/v1/responders/{kim['id']}", headers=admin, json={
        "name": "Kim", "role": "nurse", "contact_points": []})
    assert moved.status_code == 409 and "1 people have Kim Hughes as a keyholder" in moved.json()["detail"]
    assert client.put("/api/v1/responders/999999", headers=admin, json={
        "name": "X", "role": "keyholder", "contact_points": []}).status_code == 404
    assert len(audit_rows(client, "change_responder")) == 3  # refusals changed nothing


def test_a_retired_responder_leaves_every_keyholder_list_and_is_never_called_again(
        world: tuple[TestClient, World]) -> None:
    client, people = world
    admin = bearer(client, ADMIN)
    ids = [client.post("/api/v1/responders", json={"name": name, "role": "keyholder",
                                                   "contact_points": [f"mailto:{name.lower()}@family.test"]},
                       headers=admin).json()["id"] for name in ("Kim", "Lee")]
    ada = people.people["ada"]
    client.put(f"/api/v1/patients/{ada}/contacts", json={"responder_ids": ids}, headers=admin)
    retired = client.delete(f"/api/v1/responders/{ids[0]}", headers=admin)
    assert retired.status_code == 200, retired.text
    assert retired.json() == {"id": ids[0], "name": "Kim", "removed_from": ["Ada"]}
    with sessions(client)() as session:
        person = session.get_one(Person, ada)
        called = [recipient.name for group in recipients(session, person, Audience.KEYHOLDERS) for recipient in group]
    assert called == ["Lee"]
    [change] = [row for row in audit_rows(client, "change_contacts") if "retired" in row.detail]
    assert change.person_id == ada and json.loads(change.detail)["before"] == ids
    assert json.loads(change.detail)["after"] == [ids[1]]
    assert [row.detail for row in audit_rows(client, "retire_responder")] == [
        f"responder {ids[0]} (Kim); taken off 1 keyholder lists"]
    listed = {r["name"] for r in client.get("/api/v1/responders", headers=admin).json()}
    assert "Kim" in listed  # kept: the logs still name them


@pytest.mark.parametrize("username", NOT_ADMINS)
def test_no_other_role_may_use_the_administrators_api_and_each_refusal_is_audited(
        world: tuple[TestClient, World], username: str) -> None:
    client, people = world
    headers = bearer(client, username)
    ada = people.people["ada"]
    calls = [("GET", "/api/v1/users", None), ("POST", "/api/v1/users", {"username": "zz", "role": "admin"}),
             ("PATCH", "/api/v1/users/nurse", {"role": "admin"}), ("POST", "/api/v1/users/nurse/disable", None),
             ("POST", "/api/v1/users/nurse/password", None), ("GET", "/api/v1/devices", None),
             ("POST", "/api/v1/devices", {"hub_id": "hub-ada", "device_id": "p9", "kind": "pendant"}),
             ("POST", "/api/v1/devices/hub-ada/p9/remove", {"reason": "x"}),
             ("POST", "/api/v1/homes", {**ENROL, "hub_id": "hub-zz", "nhs_number": None}),
             ("PATCH", f"/api/v1/homes/{ada}", {"service": "keyholder_only"}),
             ("POST", f"/api/v1/homes/{ada}/retire", {"reason": "x"}),
             ("PUT", "/api/v1/responders/1", {"name": "x", "role": "keyholder", "contact_points": []}),
             ("DELETE", "/api/v1/responders/1", None)]
    for method, path, body in calls:
        answer = client.request(method, path, json=body, headers=headers)
        assert answer.status_code == 403, (method, path, answer.text)
    assert len(refusals(client, username)) == len(calls)
    with sessions(client)() as session:
        assert session.get(Hub, "hub-ada") is not None and session.get(Hub, "hub-zz") is None
        assert session.scalar(select(User.role).where(User.username == "nurse")) == "nurse"
