"""Contact points and test messages never reach inside the centre's own networks unless it is
told they may; test messages are limited per responder and in all, with 429 and Retry-After.
Over the real API (SQLite); mail goes nowhere (no SMTP server is configured), so nothing waits."""

import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from centre_app.api.responders import TEST_LIMIT_OVERALL, TEST_LIMIT_PER_RESPONDER, TEST_WINDOW_S
from centre_app.centre import Centre
from centre_app.settings import CentreSettings
from monitoring_centre.storage import AuditEntry
from tests.support.alerting_home import add_responder
from tests.support.api_world import ADMIN, bearer, populate

Api = tuple[TestClient, Centre]


def make_api(tmp_path: Path, **settings: Any) -> Iterator[Api]:
    centre = Centre(CentreSettings(database_url=f"sqlite:///{tmp_path / 'centre.db'}",
                                   jwt_secret=secrets.token_urlsafe(48), mqtt_password=secrets.token_urlsafe(16),
                                   **settings))
    populate(centre.sessions)
    with TestClient(centre.app) as client:
        yield client, centre
    centre.engine.dispose()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from make_api(tmp_path)


def responder(api: Api, name: str, *addresses: str) -> int:
    """A responder written straight to the database (as one entered before the check existed)."""
    with api[1].sessions() as session:
        made = add_responder(session, name, "keyholder", *addresses)
        session.commit()
        return made.id


def test_a_contact_point_inside_the_centres_networks_is_refused(api: Api) -> None:
    client = api[0]
    admin = bearer(client, ADMIN)
    for address, why in (("json://127.0.0.1:8080/hook", "127.0.0.1 is a loopback address"),
                         ("json://169.254.169.254/latest", "169.254.169.254 is a link-local address"),
                         ("json://localhost/hook", "localhost resolves to")):
        answer = client.post("/api/v1/responders", headers=admin,
                             json={"name": "Kim", "role": "keyholder", "contact_points": ["mailto:k@family.test",
                                                                                          address]})
        assert answer.status_code == 422, answer.text
        [problem] = answer.json()["detail"]
        assert problem["loc"] == ["body", "contact_points", 1] and why in problem["msg"]
    assert client.get("/api/v1/responders", headers=admin).json() == []


def test_an_allowed_internal_network_may_be_entered(tmp_path: Path) -> None:
    for client, _centre in make_api(tmp_path, allowed_internal_targets=["127.0.0.0/8"]):
        made = client.post("/api/v1/responders", headers=bearer(client, ADMIN),
                           json={"name": "Pager", "role": "operator", "contact_points": ["json://127.0.0.1:8080/p"]})
        assert made.status_code == 201, made.text


def test_a_test_message_to_an_internal_address_is_not_sent(api: Api) -> None:
    client = api[0]
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        kim = responder(api, "Kim", f"json://127.0.0.1:{port}/hook")
        answer = client.post(f"/api/v1/responders/{kim}/test", headers=bearer(client, ADMIN))
        assert answer.status_code == 200, answer.text
        [result] = answer.json()
        assert result["ok"] is False and result["detail"].startswith("not sent: 127.0.0.1 is a loopback address")
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected


def test_a_number_to_phone_gets_no_test_message(api: Api) -> None:
    """A `tel:` contact point is shown in the list, but it is the operators' to phone: no channel sends to it,
    so a test message leaves it out instead of reporting a failure."""
    client = api[0]
    kim = responder(api, "Kim", "tel:07700900123", "json://127.0.0.1:9/hook")
    admin = bearer(client, ADMIN)
    [listed] = client.get("/api/v1/responders", headers=admin).json()
    assert listed["contact_points"] == ["tel:07700900123", "json://127.0.0.1:9/hook"]
    answer = client.post(f"/api/v1/responders/{kim}/test", headers=admin)
    assert answer.status_code == 200, answer.text
    assert [result["address"] for result in answer.json()] == ["json://127.0.0.1:9/hook"]


def test_test_messages_are_limited_per_responder_and_in_all(api: Api) -> None:
    client, centre = api
    admin = bearer(client, ADMIN)
    kim = responder(api, "Kim", "mailto:kim@family.test")
    for _ in range(TEST_LIMIT_PER_RESPONDER):
        answer = client.post(f"/api/v1/responders/{kim}/test", headers=admin)
        assert answer.status_code == 200, answer.text
        assert answer.json() == [{"address": "mailto:kim@family.test", "ok": False,
                                  "detail": "no SMTP server configured"}]
    refused = client.post(f"/api/v1/responders/{kim}/test", headers=admin)
    assert refused.status_code == 429, refused.text
    assert 0 < int(refused.headers["Retry-After"]) <= TEST_WINDOW_S
    assert "too many test messages" in refused.json()["detail"]

    others = [responder(api, f"Keyholder {n}", f"mailto:k{n}@family.test") for n in range(8)]
    sent = TEST_LIMIT_PER_RESPONDER
    for other in others:
        for _ in range(TEST_LIMIT_PER_RESPONDER):
            if sent == TEST_LIMIT_OVERALL:
                break
            assert client.post(f"/api/v1/responders/{other}/test", headers=admin).status_code == 200
            sent += 1
    fresh = responder(api, "Lee", "mailto:lee@family.test")
    overall = client.post(f"/api/v1/responders/{fresh}/test", headers=admin)
    assert overall.status_code == 429 and 0 < int(overall.headers["Retry-After"]) <= TEST_WINDOW_S

    with centre.sessions() as session:
        actions = list(session.scalars(select(AuditEntry.action).where(AuditEntry.action.startswith("test_"))))
    assert actions.count("test_responder") == TEST_LIMIT_OVERALL
    assert actions.count("test_responder_result") == TEST_LIMIT_OVERALL
    assert actions.count("test_responder_refused") == 2
