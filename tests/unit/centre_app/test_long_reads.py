"""Routes that read a lot for one request (a month of readings, a whole FHIR record) read in a
read-only transaction, which on SQLite leaves the write lock to the alarm path: another writer
gets it while the route is still inside its read. Held by events, never by time."""

import secrets
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerting import patient_record
from centre_app.auth import create_user
from centre_app.centre import Centre
from centre_app.settings import CentreSettings
from monitoring_centre import trends
from monitoring_centre.enrolment import enrol_home
from monitoring_centre.storage import AuditEntry, begin_read

PASSWORD = "a-long-test-password-" + secrets.token_hex(4)


class Gate:
    """Wraps a function: runs it, then signals `inside` and waits for `release` before returning."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.inside = threading.Event()
        self.release = threading.Event()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = self.function(*args, **kwargs)
        self.inside.set()
        assert self.release.wait(30), "the test never released the read"
        return result


def another_writer_gets_the_lock(database: Path) -> None:
    """A write as impatient as can be (no busy timeout): fails at once if the lock is held."""
    other = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO audit_log (at, actor, action, detail) VALUES ('2024-01-01', 'ingest', 'x', '')")
        other.execute("COMMIT")
    finally:
        other.close()


@pytest.mark.parametrize(("module", "name", "path", "action"), [
    (trends, "summarise", "/readings?metric=spo2&hours=744&bucket_minutes=120", "view_readings"),
    (patient_record, "person_record", "/record", "view_record"),
])
def test_a_long_read_leaves_the_sqlite_write_lock_free(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       module: Any, name: str, path: str, action: str) -> None:
    database = tmp_path / "centre.db"
    centre = Centre(CentreSettings(database_url=f"sqlite:///{database}", jwt_secret=secrets.token_urlsafe(48),
                                   mqtt_password=secrets.token_urlsafe(16)))
    with centre.sessions() as session, session.begin():
        person_id = enrol_home(session, name="Ada", address="", hub_id="hub-a", devices=[]).id
        create_user(session, "operator", PASSWORD, "operator")
    gate = Gate(getattr(module, name))
    monkeypatch.setattr(module, name, gate)
    answer: dict[str, httpx.Response] = {}
    with TestClient(centre.app, client=("127.0.0.1", 40000)) as client:
        bearer = client.post("/api/v1/auth/token", data={"username": "operator", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {bearer.json()['access_token']}"}
        reading = threading.Thread(target=lambda: answer.update(
            response=client.get(f"/api/v1/patients/{person_id}{path}", headers=headers)))
        reading.start()
        try:
            assert gate.inside.wait(30), "the route never read"
            another_writer_gets_the_lock(database)
        finally:
            gate.release.set()
            reading.join(30)
    assert answer["response"].status_code == 200
    with centre.sessions() as session:
        assert session.scalars(select(AuditEntry.action).where(AuditEntry.actor == "operator")).all() == [
            "login", action]
    centre.engine.dispose()


def test_a_read_only_transaction_is_refused_inside_an_open_one(tmp_path: Path) -> None:
    centre = Centre(CentreSettings(database_url=f"sqlite:///{tmp_path / 'centre.db'}",
                                   jwt_secret=secrets.token_urlsafe(48), mqtt_password=secrets.token_urlsafe(16)))
    with centre.sessions() as session:
        session.execute(select(AuditEntry.id))
        with pytest.raises(RuntimeError, match="end the session's transaction first"):
            begin_read(session)
        session.commit()
        begin_read(session)
        assert isinstance(session, Session) and session.in_transaction()
    centre.engine.dispose()
