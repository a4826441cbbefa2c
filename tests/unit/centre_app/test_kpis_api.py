"""`GET /api/v1/kpis` over a real (unstarted) centre on SQLite: who may read it, its refusals in the
API's declared 422 shape, and the /metrics histograms observed when an operator acknowledges and
resolves an alarm through the API. The figures themselves are tested in
tests/unit/monitoring_centre/test_kpis.py."""

import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from centre_app.auth import create_user
from centre_app.centre import Centre
from centre_app.settings import CentreSettings
from detection.events import PENDANT_ALARM
from monitoring_centre.alerts import raise_alert
from monitoring_centre.enrolment import enrol_home
from monitoring_centre.storage import utc_now
from tests.support.alerting_home import KIM, T0, FakeChannel, channel, enrol_keyholder_home, press

__all__ = ["channel"]  # the fixture, used by name

PASSWORD = "a-long-test-password-" + secrets.token_hex(4)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, int]]:
    """A centre with Ada's open pendant alarm and an account of each role; the client is on
    loopback (/metrics answers it). Yields the client and the alarm's id."""
    centre = Centre(CentreSettings(database_url=f"sqlite:///{tmp_path / 'centre.db'}",
                                   jwt_secret=secrets.token_urlsafe(48), mqtt_password=secrets.token_urlsafe(16)))
    with centre.sessions() as session, session.begin():
        ada = enrol_home(session, name="Ada Lovelace", address="1 Test Street", hub_id="hub-a", devices=[])
        alert = raise_alert(session, person_id=ada.id, hub_id="hub-a", rule=PENDANT_ALARM, subject="",
                            at=utc_now(), evidence={}, why="test")
        create_user(session, "operator", PASSWORD, "operator", "Olive Operator")
        create_user(session, "admin", PASSWORD, "admin")
        create_user(session, "nurse", PASSWORD, "nurse")
        create_user(session, "daughter", PASSWORD, "family", "Ada's daughter")
        create_user(session, "ada", PASSWORD, "person", "Ada", person_id=ada.id)
        alert_id = alert.id
    with TestClient(centre.app, client=("127.0.0.1", 50000)) as client:
        yield client, alert_id
    centre.engine.dispose()


def login(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one sample in the /metrics text (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    found = re.search(rf"^{re.escape(name)}\{{{re.escape(wanted)}\}} (\S+)$", metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_acknowledge_and_resolve_through_the_api_feed_the_histograms_and_the_kpis(
        api: tuple[TestClient, int]) -> None:
    client, alert_id = api
    operator = login(client, "operator")
    before = client.get("/api/v1/kpis", headers=operator)
    assert before.status_code == 200, before.text
    assert before.json()["alarm_calls"]["unanswered_ids"] == [alert_id]
    assert sample(client.get("/metrics").text, "telecare_alert_answer_seconds_count", priority="1") == 0

    assert client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=operator).status_code == 200
    metrics = client.get("/metrics").text
    assert sample(metrics, "telecare_alert_answer_seconds_count", priority="1") == 1
    assert sample(metrics, "telecare_alert_resolve_seconds_count", priority="1") == 0
    # the buckets hold TEC Quality's 60 s and 180 s
    assert 'telecare_alert_answer_seconds_bucket{le="60.0",priority="1"}' in metrics
    assert 'telecare_alert_answer_seconds_bucket{le="180.0",priority="1"}' in metrics

    resolved = client.post(f"/api/v1/alerts/{alert_id}/resolve", headers=operator,
                           json={"outcome": "false_alarm", "note": ""})
    assert resolved.status_code == 200, resolved.text
    metrics = client.get("/metrics").text
    assert sample(metrics, "telecare_alert_answer_seconds_count", priority="1") == 1  # answered once only
    assert sample(metrics, "telecare_alert_resolve_seconds_count", priority="1") == 1
    assert sample(metrics, "telecare_alert_accept_seconds_count", priority="1") == 0  # no responder accepted

    # a refused transition (resolving again: 409) is observed by nobody
    again = client.post(f"/api/v1/alerts/{alert_id}/resolve", headers=operator,
                        json={"outcome": "false_alarm", "note": ""})
    assert again.status_code == 409
    assert sample(client.get("/metrics").text, "telecare_alert_resolve_seconds_count", priority="1") == 1

    body = client.get("/api/v1/kpis", headers=login(client, "admin")).json()
    calls = body["alarm_calls"]
    assert (calls["alarms"], calls["answered"], calls["unanswered_ids"]) == (1, 1, [])
    assert calls["outcomes"] == {"false_alarm": 1}
    assert calls["time_to_answer"]["count"] == 1 and calls["time_to_resolve"]["count"] == 1
    assert [t["within_s"] for t in calls["within"]] == [60, 180]
    assert [(t["within_s"], t["fraction"]) for t in body["targets"]] == [(60, 0.975), (180, 0.99)]
    assert len(body["by_day"]) in (7, 8)  # the last 7 days up to now: 8 UTC days unless now is midnight
    # ids only: no name of a person or of a user anywhere in the answer
    text = json.dumps(body)
    assert "Ada" not in text and "Olive" not in text and '"operator"' not in text


@pytest.mark.parametrize("username", ["ada", "daughter", "nurse"])
def test_only_operators_and_admins_may_read_the_kpis(api: tuple[TestClient, int], username: str) -> None:
    client, _alert_id = api
    response = client.get("/api/v1/kpis", headers=login(client, username))
    assert response.status_code == 403
    assert response.json() == {"detail": "only admin or operator users may do this"}
    assert client.get("/api/v1/kpis").status_code == 401


def test_a_window_is_read_in_utc_with_dates_as_their_midnight(api: tuple[TestClient, int]) -> None:
    client, _alert_id = api
    response = client.get("/api/v1/kpis", params={"from": "2025-03-01", "to": "2025-03-03T01:00:00+01:00"},
                          headers=login(client, "operator"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["from"], body["to"]) == ("2025-03-01T00:00:00Z", "2025-03-03T00:00:00Z")
    assert body["as_of"] == body["to"]
    assert [day["day"] for day in body["by_day"]] == ["2025-03-01", "2025-03-02"]
    assert body["alarm_calls"]["alarms"] == 0 and body["alarm_calls"]["within"][0]["fraction"] is None


@pytest.mark.parametrize(("params", "bound"), [
    ({"from": "2025-03-02", "to": "2025-03-02"}, "to"),
    ({"from": "2025-03-03", "to": "2025-03-02"}, "to"),
    ({"from": "2024-01-01", "to": "2025-03-02"}, "from"),
    ({"to": "0001-01-01"}, "to"),  # no week before it
    ({"to": "0001-01-01T00:30:00+01:00"}, "to"),  # before the calendar in UTC
])
def test_a_backwards_or_overlong_window_is_a_422_in_the_declared_shape(
        api: tuple[TestClient, int], params: dict[str, str], bound: str) -> None:
    client, _alert_id = api
    response = client.get("/api/v1/kpis", params=params, headers=login(client, "operator"))
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["query", bound] and problem["type"] == "value_error" and problem["msg"]


def test_a_window_that_ends_with_the_calendar_is_answered(api: tuple[TestClient, int]) -> None:
    client, _alert_id = api
    response = client.get("/api/v1/kpis", params={"to": "9999-12-31T23:00:00"}, headers=login(client, "operator"))
    assert response.status_code == 200, response.text
    assert response.json()["by_day"][-1]["day"] == "9999-12-31"


def test_the_route_documents_its_refusals(api: tuple[TestClient, int]) -> None:
    client, _alert_id = api
    operation = client.get("/openapi.json").json()["paths"]["/api/v1/kpis"]["get"]
    assert {"200", "401", "403", "422"} <= set(operation["responses"])
    assert {p["name"] for p in operation["parameters"]} == {"from", "to"}


def test_a_responder_accepting_by_link_feeds_the_accept_histogram_and_answers_nothing(
        tmp_path: Path, channel: FakeChannel) -> None:
    """Ada is on the keyholder-only service: Kim is messaged at once and accepts by her link. The
    link acknowledges and puts the alert in progress, but no operator answered: the accept histogram
    has it, the answer histogram does not."""
    centre = Centre(CentreSettings(database_url=f"sqlite:///{tmp_path / 'centre.db'}",
                                   jwt_secret=secrets.token_urlsafe(48), mqtt_password=secrets.token_urlsafe(16),
                                   public_url="http://centre.test"))
    centre.escalator.clock = lambda: T0
    with centre.sessions() as session:
        home = enrol_keyholder_home(session)
        press(session, home.person_id)
    centre.escalator.run_once()
    link = re.fullmatch(r"http://centre\.test/accept/([A-Za-z0-9_-]+)", channel.to(KIM[0])[0].links["accept"])
    assert link is not None
    with TestClient(centre.app, client=("127.0.0.1", 50000)) as client:
        assert client.post(f"/accept/{link.group(1)}").status_code == 200
        metrics = client.get("/metrics").text
    centre.engine.dispose()
    assert sample(metrics, "telecare_alert_accept_seconds_count", priority="1") == 1
    assert sample(metrics, "telecare_alert_answer_seconds_count", priority="1") == 0


@pytest.mark.parametrize("bound", ["0.5", "1732924800", "-3"])
def test_a_bound_that_is_a_number_is_refused_not_read_as_unix_seconds(
        api: tuple[TestClient, int], bound: str) -> None:
    client, _alert_id = api
    response = client.get("/api/v1/kpis", params={"to": bound}, headers=login(client, "operator"))
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["query", "to"] and "not a number" in problem["msg"]


def test_taking_the_call_answers_it_for_the_kpis(api: tuple[TestClient, int]) -> None:
    client, _alert_id = api
    operator = login(client, "operator")
    person_id = client.get("/api/v1/calls", headers=operator).json()[0]["person_id"]
    taken = client.post(f"/api/v1/calls/{person_id}/take", headers=operator)
    assert taken.status_code == 200, taken.text
    assert [a["status"] for a in taken.json()["alerts"]] == ["acknowledged"]  # the escalation stops
    calls = client.get("/api/v1/kpis", headers=operator).json()["alarm_calls"]
    assert (calls["answered"], calls["unanswered_ids"], calls["ended_unanswered_ids"]) == (1, [], [])
    assert sample(client.get("/metrics").text, "telecare_alert_answer_seconds_count", priority="1") == 1
