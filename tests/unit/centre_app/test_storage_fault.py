"""A full disk: the alarm queue stays readable, sign-in works, the answers, `/health`, the live
stream and `/metrics` say there is a storage fault; the audit rows of the reads wait in memory
and are written, with the episode, once space is back. The disk is filled honestly, until SQLite
answers SQLITE_FULL (`tests/support/full_disk.py`)."""

import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from centre_app.centre import Centre
from centre_app.settings import CentreSettings
from monitoring_centre.storage import AuditEntry, utc_now
from monitoring_centre.storage_health import QUIET_S
from tests.support.api_world import PASSWORD, World, bearer, populate
from tests.support.full_disk import Disk

FAULT = "Telecare-Storage-Fault"


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[tuple[Centre, World]]:
    centre = Centre(CentreSettings(database_url=f"sqlite:///{tmp_path / 'centre.db'}",
                                   jwt_secret=secrets.token_urlsafe(48), mqtt_password=secrets.token_urlsafe(16)))
    world = populate(centre.sessions)
    yield centre, world
    centre.engine.dispose()


def audit_actions(centre: Centre) -> list[tuple[str, str]]:
    with centre.sessions() as session:
        return [(actor, action) for actor, action in session.execute(
            select(AuditEntry.actor, AuditEntry.action).where(AuditEntry.action != "filler").order_by(AuditEntry.id))]


def test_on_a_full_disk_the_queue_stays_readable_and_everyone_is_told(centre: tuple[Centre, World]) -> None:
    centre_, world = centre
    disk = Disk(centre_)
    with TestClient(centre_.app, client=("127.0.0.1", 50000)) as client:  # /metrics answers loopback
        operator = bearer(client, "operator")
        before = len(audit_actions(centre_))
        disk.fill()
        assert centre_.storage.fault is not None and centre_.storage.fault.error == "SQLITE_FULL"

        queue = client.get("/api/v1/alerts?status=active", headers=operator)
        assert queue.status_code == 200, queue.text
        assert {a["person_name"] for a in queue.json()} == {"Ada", "Bob"} and queue.headers[FAULT] == "true"
        person = client.get(f"/api/v1/patients/{world.people['ada']}", headers=operator)
        assert person.status_code == 200 and person.json()["address"] == "1 Test Street"
        assert person.headers[FAULT] == "true"
        signed_in = client.post("/api/v1/auth/token", data={"username": "nurse", "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        nurse = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
        assert [a["person_name"] for a in client.get("/api/v1/alerts", headers=nurse).json()] == ["Ada"]

        health = client.get("/health")
        assert health.status_code == 503
        storage = health.json()["checks"]["storage"]
        assert storage["ok"] is False and storage["rule"] == "centre_storage_fault" and storage["priority"] == 4
        assert storage["error"] == "SQLITE_FULL" and storage["audit_pending"] == 5  # one a person seen
        assert health.json()["checks"]["database"]["ok"] is True  # reads work; writes do not
        metrics = client.get("/metrics").text
        assert "telecare_storage_fault 1.0" in metrics and "telecare_audit_deferred_total 5.0" in metrics

        centre_.feed.close()  # the stream then ends after what it says on opening
        stream = client.get("/api/v1/alerts/stream", headers=operator).text
        assert 'event: storage\ndata: {"storage_fault": true, "rule": "centre_storage_fault"' in stream
        assert len(audit_actions(centre_)) == before  # nothing of it stored yet

        disk.free()
        assert centre_.storage.retry(centre_.sessions) is False  # written, but the fault waits out QUIET_S
        assert centre_.storage.fault is not None and len(centre_.storage.backlog) == 0
        centre_.storage.clock = lambda: utc_now() + timedelta(seconds=QUIET_S)
        assert centre_.storage.retry(centre_.sessions) is True
        assert centre_.storage.fault is None
        assert client.get("/health").json()["checks"]["storage"] == {"ok": True, "audit_pending": 0}
        assert FAULT not in client.get("/api/v1/alerts", headers=operator).headers

    actions = audit_actions(centre_)[before:]
    assert actions[:5] == [("operator", "view_alerts"), ("operator", "view_alerts"), ("operator", "view_patient"),
                           ("nurse", "login"), ("nurse", "view_alerts")]
    assert ("system:centre", "storage_fault") in actions
    with centre_.sessions() as session:
        episode = session.scalars(select(AuditEntry.detail).where(AuditEntry.action == "storage_fault")).one()
    assert episode.startswith("centre_storage_fault: from ") and "SQLITE_FULL" in episode


def test_a_change_is_never_deferred_and_a_full_backlog_fails_the_read(centre: tuple[Centre, World]) -> None:
    centre_, world = centre
    with TestClient(centre_.app, raise_server_exceptions=False) as client:
        operator = bearer(client, "operator")
        Disk(centre_).fill()
        acknowledged = client.post(f"/api/v1/alerts/{world.alerts['ada']}/acknowledge", headers=operator)
        assert acknowledged.status_code == 500  # the change was not stored, and is not said to be
        centre_.storage.backlog.limit = 0
        assert client.get("/api/v1/alerts", headers=operator).status_code == 500  # never served unaudited
