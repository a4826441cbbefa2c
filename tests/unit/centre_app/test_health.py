"""`GET /health`: 200 only when the broker, the database and the escalator are all well, else
503 naming which is not; `/metrics` has the broker-connected gauge."""

import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from centre_app.api.health import HealthSources, attach
from centre_app.centre import Centre
from centre_app.settings import CentreSettings
from monitoring_centre.receiver import BrokerLink
from monitoring_centre.storage import utc_now

SINCE = utc_now() - timedelta(minutes=5)


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[Centre]:
    centre = Centre(CentreSettings(database_url=f"sqlite:///{tmp_path / 'centre.db'}",
                                   jwt_secret=secrets.token_urlsafe(48), mqtt_password=secrets.token_urlsafe(16),
                                   mqtt_port=1))
    yield centre
    centre.engine.dispose()


def well(connected: bool = True, last_pass_age_s: float | None = 0.5) -> HealthSources:
    last = None if last_pass_age_s is None else utc_now() - timedelta(seconds=last_pass_age_s)
    return HealthSources(broker=lambda: BrokerLink(connected, SINCE, "127.0.0.1", 1883),
                         escalator_last_pass=lambda: last)


def test_a_centre_that_has_not_reached_its_broker_is_not_healthy(centre: Centre) -> None:
    # the centre's own sources: nothing started, no broker; /metrics answers loopback clients
    with TestClient(centre.app, client=("127.0.0.1", 50000)) as client:
        response = client.get("/health")
        metrics = client.get("/metrics").text
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing"
    assert body["checks"]["broker"]["connected"] is False and body["checks"]["broker"]["address"] == "127.0.0.1:1"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["escalator"]["ok"] is False and body["checks"]["escalator"]["last_pass"] is None
    assert "telecare_broker_connected 0.0" in metrics


def test_all_well_is_200_with_when_the_broker_connected(centre: Centre) -> None:
    attach(centre.app, well())
    with TestClient(centre.app) as client:
        response = client.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["broker"] == {"ok": True, "connected": True, "since": SINCE.isoformat(),
                                        "address": "127.0.0.1:1883"}
    assert body["checks"]["escalator"]["ok"] is True and body["checks"]["escalator"]["age_s"] < 60


@pytest.mark.parametrize(("state", "failing"), [
    ({"connected": False}, "broker"),
    ({"last_pass_age_s": 600}, "escalator"),
    ({"last_pass_age_s": None}, "escalator"),
])
def test_any_part_down_is_503_naming_it(centre: Centre, state: dict[str, Any], failing: str) -> None:
    attach(centre.app, well(**state))  # made now: the last pass is as old as the test says, not the test run
    with TestClient(centre.app) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert [name for name, check in response.json()["checks"].items() if not check["ok"]] == [failing]


def test_an_unreachable_database_is_503_without_its_details(centre: Centre) -> None:
    attach(centre.app, well())
    centre.app.state.centre.sessions = sessionmaker(create_engine("sqlite:////nonexistent-directory/centre.db"))
    with TestClient(centre.app) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == {"ok": False, "error": "OperationalError"}
