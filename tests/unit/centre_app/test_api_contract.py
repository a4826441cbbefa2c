"""The HTTP API keeps to its own OpenAPI document: ids in paths are bounded (an oversized one is
a 422, never a 500 from the database), a route's own 422 has FastAPI's validation-error shape,
the refusals a route can make are documented, and every refusal of a person's data is audited.
On SQLite and PostgreSQL (whose INTEGER keys are 4 bytes)."""

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from centre_app.api.deps import ROW_ID_MAX
from monitoring_centre.storage import AuditEntry
from tests.support.api_world import ADMIN, World, api_app, bearer


@pytest.fixture
def api(database_url: str) -> Iterator[tuple[TestClient, World]]:
    app, engine, world = api_app(database_url)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, world
    engine.dispose()


def _operations(client: TestClient) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        for method, operation in operations.items():
            yield method, path, operation


def _integer_path_parameters(operation: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in operation.get("parameters", []) if p["in"] == "path" and p["schema"].get("type") == "integer"]


def _url(path: str, value: int) -> str:
    """The path with every integer id set to `value` (the integer parameters end in `_id`) and
    any other parameter set to a plain word."""
    return re.sub(r"\{(\w+)\}", lambda m: str(value) if m.group(1).endswith("_id") else "word", path)


def _is_validation_error(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("detail"), list) and all(
        {"loc", "msg", "type"} <= set(item) for item in body["detail"])


def test_every_id_in_a_path_is_bounded_and_an_oversized_one_is_a_422(api: tuple[TestClient, World]) -> None:
    client, _world = api
    admin = bearer(client, ADMIN)
    walked = 0
    for method, path, operation in _operations(client):
        ids = _integer_path_parameters(operation)
        if not ids:
            continue
        walked += 1
        assert all(p["schema"].get("minimum") == 1 and p["schema"].get("maximum") == ROW_ID_MAX for p in ids), path
        for oversized in (ROW_ID_MAX + 1, 2**63, 2**64):
            response = client.request(method, _url(path, oversized), headers=admin, json={})
            assert response.status_code == 422, (method, path, oversized, response.text)
            body = response.json()
            assert _is_validation_error(body), body
            assert {item["loc"][1] for item in body["detail"] if item["loc"][0] == "path"} == {p["name"] for p in ids}
        # The largest id there can be is a query like any other: no such row.
        largest = client.request(method, _url(path, ROW_ID_MAX), headers=admin, json={})
        assert largest.status_code in (404, 422), (method, path, largest.text)
    assert walked >= 15


def test_an_id_in_a_body_is_bounded_too(api: tuple[TestClient, World]) -> None:
    client, world = api
    response = client.put(f"/api/v1/patients/{world.people['ada']}/contacts", headers=bearer(client, ADMIN),
                          json={"responder_ids": [2**63]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "responder_ids", 0]


def test_a_routes_own_422_has_the_validation_error_shape(api: tuple[TestClient, World]) -> None:
    client, world = api
    admin, ada = bearer(client, ADMIN), world.people["ada"]
    refused = {
        ("body", "outcome"): client.post(f"/api/v1/alerts/{world.alerts['ada']}/resolve", headers=admin,
                                         json={"outcome": "no-such-outcome"}),
        ("query", "bucket_minutes"): client.get(f"/api/v1/patients/{ada}/readings", headers=admin,
                                                params={"metric": "spo2", "hours": 744, "bucket_minutes": 1}),
        ("body", "username"): client.post(f"/api/v1/patients/{ada}/consent", headers=admin,
                                          json={"username": "nobody-at-all"}),
        ("path", "username"): client.delete(f"/api/v1/patients/{ada}/consent/nobody-at-all", headers=admin),
        ("body", "ends_at"): client.post(f"/api/v1/patients/{ada}/absences", headers=admin, json={
            "starts_at": "2026-01-02T00:00:00Z", "ends_at": "2026-01-01T00:00:00Z"}),
        ("body", "params"): client.put(f"/api/v1/patients/{ada}/rules/no_such_rule", headers=admin,
                                       json={"params": {}, "reason": "testing"}),
        ("body", "role"): client.post("/api/v1/responders", headers=admin, json={"name": "X", "role": "wizard"}),
        ("body", "responder_ids", 0): client.put(f"/api/v1/patients/{ada}/contacts", headers=admin,
                                                 json={"responder_ids": [ROW_ID_MAX]}),
    }
    for location, response in refused.items():
        assert response.status_code == 422, (location, response.text)
        body = response.json()
        assert _is_validation_error(body), body
        assert tuple(body["detail"][0]["loc"]) == location
        assert body["detail"][0]["msg"]


def test_each_route_documents_the_refusals_it_can_make(api: tuple[TestClient, World]) -> None:
    client, _world = api
    documented = {(method, path): set(operation["responses"]) for method, path, operation in _operations(client)}
    assert {"401", "404", "422"} <= documented["get", "/api/v1/patients/{person_id}"]
    assert "403" not in documented["get", "/api/v1/patients/{person_id}"]
    assert {"401", "403", "404", "409", "422"} <= documented["post", "/api/v1/alerts/{alert_id}/acknowledge"]
    assert {"401", "403", "404", "422"} <= documented["post", "/api/v1/patients/{person_id}/absences"]
    assert {"401", "403"} <= documented["post", "/api/v1/responders"]
    assert {"409"} <= documented["post", "/api/v1/patients/{person_id}/consent"]
    assert {"401", "429"} <= documented["post", "/api/v1/auth/token"]
    assert "401" not in documented["get", "/health"]
    for (method, path), codes in documented.items():
        for code in codes - {"200", "201", "204", "422", "503"}:
            operation = client.get("/openapi.json").json()["paths"][path][method]
            schema = operation["responses"][code]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (method, path, code)


def _refusals(api: tuple[TestClient, World], actor: str) -> list[tuple[int | None, str]]:
    client, _world = api
    sessions = client.app.state.centre.sessions  # type: ignore[attr-defined]
    with sessions() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.actor == actor, AuditEntry.action == "refused")
                               .order_by(AuditEntry.id))
        return [(row.person_id, row.detail) for row in rows]


def test_every_refusal_of_a_persons_data_is_audited(api: tuple[TestClient, World]) -> None:
    client, world = api
    ada, bob = world.people["ada"], world.people["bob"]
    daughter, nurse, person = bearer(client, "daughter"), bearer(client, "nurse"), bearer(client, "ada")

    # Not visible (404): the daughter has no consent; the nurse's caseload is Ada alone.
    assert client.get(f"/api/v1/patients/{ada}/record", headers=daughter).status_code == 404
    assert client.get(f"/api/v1/alerts/{world.alerts['bob']}/escalation", headers=nurse).status_code == 404
    # The wrong role (403): family never read rule settings; a person plans only their own absences.
    assert client.get(f"/api/v1/patients/{ada}/rules", headers=daughter).status_code == 403
    assert client.post(f"/api/v1/patients/{bob}/absences", headers=person, json={
        "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2026-01-02T00:00:00Z"}).status_code == 403
    # Not the person's to decide (404), and a person who does not exist (404, no one to name).
    assert client.get(f"/api/v1/patients/{bob}/audit", headers=person).status_code == 404
    assert client.get(f"/api/v1/patients/{ROW_ID_MAX}", headers=nurse).status_code == 404

    assert _refusals(api, "daughter") == [
        (ada, f"GET /api/v1/patients/{ada}/record: 404 no such person (not visible)"),
        (ada, f"GET /api/v1/patients/{ada}/rules: 403 only admin or operator or nurse or team_lead or person users "
              "may do this"),
    ]
    assert _refusals(api, "nurse") == [
        (bob, f"GET /api/v1/alerts/{world.alerts['bob']}/escalation: 404 no such alert (not visible)"),
        (None, f"GET /api/v1/patients/{ROW_ID_MAX}: 404 no such person (none)"),
    ]
    assert _refusals(api, "ada") == [
        (bob, f"POST /api/v1/patients/{bob}/absences: 403 a person plans only their own absences"),
        (bob, f"GET /api/v1/patients/{bob}/audit: 404 no such person (not theirs to decide)"),
    ]
    # The person sees who tried: Bob's own audit view lists the refusals about him.
    seen = client.get(f"/api/v1/patients/{bob}/audit", headers=bearer(client, "bob")).json()
    assert {(entry["actor"], entry["action"]) for entry in seen} >= {("nurse", "refused"), ("ada", "refused")}
    # The caller is told no more than before: no reason, no hint that the person exists.
    assert client.get(f"/api/v1/patients/{ada}", headers=daughter).json() == {"detail": "no such person"}


def test_text_the_database_cannot_store_is_a_422_not_a_500(api: tuple[TestClient, World]) -> None:
    """PostgreSQL refuses a NUL character in text (SQLite stores it): whatever route it comes
    through, the answer is a 422 in the validation-error shape."""
    client, world = api
    admin, ada = bearer(client, ADMIN), world.people["ada"]
    answers = [
        client.post(f"/api/v1/patients/{ada}/consent", headers=admin, json={"username": "a\x00b"}),
        client.delete(f"/api/v1/patients/{ada}/consent/a%00b", headers=admin),
        client.post("/api/v1/responders", headers=admin, json={"name": "a\x00b", "role": "keyholder"}),
        client.put(f"/api/v1/patients/{ada}/rules/pendant_alarm", headers=admin,
                   json={"params": {}, "reason": "x\x00"}),
        client.post(f"/api/v1/alerts/{world.alerts['ada']}/resolve", headers=admin,
                    json={"outcome": "false_alarm", "note": "x\x00"}),
        client.post("/api/v1/auth/token", data={"username": "a\x00", "password": "x"}),
    ]
    for response in answers:
        assert response.status_code < 500, response.text
        if response.status_code == 422:
            assert _is_validation_error(response.json()), response.text
    if client.app.state.centre.settings.database_url.startswith("postgresql"):  # type: ignore[attr-defined]
        assert [response.status_code for response in answers] == [422] * len(answers)
        assert all("NUL" in response.json()["detail"][0]["msg"] for response in answers)
