"""Shared fixtures: broker accounts and a running broker (real Mosquitto, or embedded amqtt),
and a database URL for each supported backend (SQLite, and a real PostgreSQL cluster).

Layout: `tests/unit/<package>/` tests one package; `tests/integration/` starts real servers;
`tests/support/` holds what tests share. Every test under `tests/integration/` is marked
`integration`, and so is any other test that asks for a real server (a fixture in
`REAL_SERVERS`, or the PostgreSQL side of `database_url`), so `pytest -m "not integration"`
runs without any server.

Hypothesis profiles: `dev` (the default here) runs a third of the examples, with no
per-example deadline, so that the unit tests stay quick on a small, busy machine. Hypothesis's
own `ci` profile (every example at full strength, derandomised) is what Hypothesis loads by
itself on a CI runner, and what `HYPOTHESIS_PROFILE=ci` chooses anywhere. See
tests/support/examples.py."""

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from sqlalchemy.orm import Session, sessionmaker

from centre_app import schema
from monitoring_centre.broker import BrokerAccount, EmbeddedBroker, Mosquitto, find_mosquitto
from monitoring_centre.storage import make_engine
from tests.support import postgres
from tests.support.webhook import Webhook, webhook_server

settings.register_profile("dev", max_examples=34, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE")
                      or ("ci" if settings.get_current_profile_name() == "ci" else "dev"))

_database_names = itertools.count(1)

INTEGRATION = Path(__file__).parent / "integration"
REAL_SERVERS = frozenset({"mosquitto", "embedded_broker", "smtp_server", "silent_server", "webhook",
                          "browser_page", "postgres_cluster"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        in_folder = INTEGRATION in Path(str(item.fspath)).parents
        if in_folder or REAL_SERVERS & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[postgres.Cluster]:
    """One throwaway PostgreSQL cluster for the whole run (each test gets its own database)."""
    missing = postgres.why_missing()
    if missing:
        pytest.skip(missing)
    with postgres.cluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each backend the centre supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'centre.db'}"
    cluster: postgres.Cluster = request.getfixturevalue("postgres_cluster")
    return cluster.create_database(f"test_{next(_database_names)}")


def _migrated(url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(url)
    schema.upgrade(engine)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture
def migrated_sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh database of each backend, migrated to the newest schema (no rows)."""
    yield from _migrated(database_url)


@pytest.fixture
def sqlite_sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh SQLite database migrated to the newest schema, for tests of one backend."""
    yield from _migrated(f"sqlite:///{tmp_path / 'centre.db'}")


@pytest.fixture
def broker_accounts() -> dict[str, BrokerAccount]:
    """Centre `centre` and hubs `hub-1`, `hub-2`, each with a fresh random password."""
    accounts = [
        BrokerAccount.generate("centre", "centre"),
        BrokerAccount.generate("hub-1", "hub"),
        BrokerAccount.generate("hub-2", "hub"),
    ]
    return {account.username: account for account in accounts}


@pytest.fixture
def mosquitto(tmp_path: Path, broker_accounts: dict[str, BrokerAccount]) -> Iterator[Mosquitto]:
    """A running Mosquitto on 127.0.0.1 with the `broker_accounts` and the hub ACL."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto); CI installs it")
    with Mosquitto(tmp_path / "mosquitto", broker_accounts.values()) as broker:
        yield broker


@pytest.fixture
def embedded_broker(broker_accounts: dict[str, BrokerAccount]) -> Iterator[EmbeddedBroker]:
    """The amqtt fallback broker (MQTT 3.1.1 only) with the `broker_accounts` and the hub ACL."""
    with EmbeddedBroker(broker_accounts.values()) as broker:
        yield broker


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A local webhook receiver (`json://127.0.0.1:<port>/path`); paths starting /fail answer 500."""
    with webhook_server() as hook:
        yield hook


CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser_page() -> Iterator[Any]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make setup-test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()
