"""A centre's database with people, alerts and one account of each role, for tests of the HTTP
API: over a `TestClient` (unit tests) or a running centre (integration tests).

Ada and Bob each live at home with a hub and have one open pendant alarm. The nurse has Ada on
her caseload; the daughter has no consent yet (she sees no one); `ada` and `bob` are the
people's own accounts."""

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from centre_app import schema
from centre_app.api.app import create_app
from centre_app.api.deps import CentreState
from centre_app.auth import create_user
from centre_app.settings import CentreSettings
from detection.events import PENDANT_ALARM
from monitoring_centre.access import grant
from monitoring_centre.alerts import raise_alert
from monitoring_centre.enrolment import enrol_home
from monitoring_centre.live import AlertFeed
from monitoring_centre.profiles import check_rule_setting
from monitoring_centre.storage import Person, make_engine, utc_now
from tests.support.helpers import free_port
from tests.support.waiting import wait_for

PASSWORD = "a-long-test-password-" + secrets.token_hex(4)
ADMIN = "admin-" + secrets.token_hex(3)
"""Not guessable: a fuzzer signing in with random names must never lock the admin out."""


@dataclass(frozen=True)
class World:
    people: dict[str, int]
    """Person ids by first name, lower case: "ada", "bob"."""
    alerts: dict[str, int]
    """The id of each person's open alert, by the same names."""


def populate(sessions: sessionmaker[Session]) -> World:
    """Ada and Bob, an alert each, and the accounts ADMIN, operator, nurse (Ada's), daughter
    (no consent), ada and bob, all with PASSWORD."""
    with sessions() as session, session.begin():
        people, alerts = {}, {}
        for name, number in (("Ada", 1), ("Bob", 2)):
            person = enrol_home(session, name=name, address=f"{number} Test Street", hub_id=f"hub-{name.lower()}",
                                devices=[])
            alert = raise_alert(session, person_id=person.id, hub_id=f"hub-{name.lower()}", rule=PENDANT_ALARM,
                                subject="", at=utc_now(), evidence={}, why="test")
            people[name.lower()], alerts[name.lower()] = person.id, alert.id
        create_user(session, ADMIN, PASSWORD, "admin")
        create_user(session, "operator", PASSWORD, "operator")
        nurse = create_user(session, "nurse", PASSWORD, "nurse")
        create_user(session, "daughter", PASSWORD, "family", "Ada's daughter")
        create_user(session, "ada", PASSWORD, "person", "Ada", person_id=people["ada"])
        create_user(session, "bob", PASSWORD, "person", "Bob", person_id=people["bob"])
        session.flush()
        grant(session, nurse, session.get_one(Person, people["ada"]), "direct_care")
    return World(people, alerts)


def bearer(client: httpx.Client | Any, username: str) -> dict[str, str]:
    """Signs in as `username` (PASSWORD) through the API; the Authorization header to send. Over a real
    socket it waits up to 30 s: a sign-in is an Argon2 check (`centre_app.auth`), and with the machine's two
    cores busy (a browser, the centre, other processes) it has taken longer than httpx's default 5 s. (A
    `TestClient` calls the app in-process and takes no timeout.)"""
    waits: dict[str, Any] = {} if isinstance(client, TestClient) else {"timeout": 30}
    response = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD}, **waits)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def api_app(database_url: str, **settings: Any) -> tuple[FastAPI, Engine, World]:
    """The centre's HTTP app alone (no broker, no escalator) on a migrated, populated database;
    `settings` override CentreSettings fields. Dispose of the engine when done."""
    values: dict[str, Any] = {"database_url": database_url, "jwt_secret": secrets.token_urlsafe(48),
                              "mqtt_password": secrets.token_urlsafe(16), **settings}
    centre_settings = CentreSettings(**values)
    engine = make_engine(database_url)
    schema.upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    world = populate(sessions)
    app = create_app(CentreState(centre_settings, sessions, AlertFeed(), CollectorRegistry(),
                                 alerts_changed=lambda _ids: None, check_rule_setting=check_rule_setting))
    return app, engine, world


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port, on a thread of its own; yields its base
    URL ("http://127.0.0.1:PORT") and stops the server on leaving."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, what="the API server to start")
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
