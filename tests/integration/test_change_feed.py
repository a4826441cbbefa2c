"""Two centre workers on one PostgreSQL: what changes on one reaches the other (`change_feed`).

An alert raised and acknowledged on worker 1 reaches a console's live stream opened on worker 2,
each change once; a threshold changed through worker 2's API reaches worker 1's detection engine;
and when worker 2's listening connection is killed (`pg_terminate_backend`) it reconnects, its
open streams end so their consoles refetch everything, and notices reach it again.

The workers share the test broker with two client ids; nothing here goes through MQTT.
"""

import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import sessionmaker

from centre_app import schema
from centre_app.auth import create_user
from centre_app.centre import Centre, CentreThread
from detection.engine import Engine
from detection.events import PENDANT_ALARM
from monitoring_centre import change_feed
from monitoring_centre.alerts import raise_alert
from monitoring_centre.broker import BrokerAccount
from monitoring_centre.enrolment import enrol_home
from monitoring_centre.storage import make_engine, utc_now
from tests.support import postgres
from tests.support.centre import OPERATOR, centre_settings, enrol_test_homes, token
from tests.support.live_stream import AlertStream
from tests.support.waiting import wait_for

ADMIN = ("admin-ann", "admin-password-" + secrets.token_hex(4))
WAIT_MS = 15_000
MARKER = 999_999_999
"""An alert id no test raises, announced last: notices arrive in commit order."""


def open_console(base_url: str) -> AlertStream:
    """An operator's console's live stream on `base_url`, open."""
    stream = AlertStream(base_url, {"Authorization": f"Bearer {token(base_url)}"})
    assert stream.opened.wait(10), "the stream did not open"
    return stream


class Heard:
    """A subscriber to a worker's feed that keeps what it hears, in order."""

    def __init__(self) -> None:
        self.alerts: list[frozenset[int]] = []
        self.profiles: list[int] = []
        self.resyncs = 0

    def subscriber(self) -> change_feed.Subscriber:
        return change_feed.Subscriber(alerts_changed=self.alerts.append, profile_changed=self.profiles.append,
                                      resync=self._resync)

    def _resync(self) -> None:
        self.resyncs += 1

    def times(self, alert_id: int) -> int:
        return sum(alert_id in notice for notice in list(self.alerts))


@pytest.fixture
def workers(tmp_path: Path, mosquitto: Any, broker_accounts: dict[str, BrokerAccount],
            postgres_cluster: postgres.Cluster) -> Iterator[tuple[Centre, Centre, dict[str, int]]]:
    """Worker 1 and worker 2 running on one new database, with Ada and Brian enrolled, an operator
    and an administrator."""
    url = postgres_cluster.create_database(f"change_feed_{secrets.token_hex(4)}")
    first = Centre(centre_settings(tmp_path / "unused.db", mosquitto, broker_accounts, database_url=url,
                                   mqtt_client_id="telecare-centre-1"))
    people = enrol_test_homes(first)
    with first.sessions() as session, session.begin():
        create_user(session, *ADMIN, role="admin")
    second = Centre(centre_settings(tmp_path / "unused.db", mosquitto, broker_accounts, database_url=url,
                                    mqtt_client_id="telecare-centre-2"))
    with ExitStack() as running:
        for centre in (first, second):
            running.enter_context(CentreThread(centre))
            assert isinstance(centre.changes, change_feed.PostgresChanges)
            wait_for(centre.changes.listening.is_set, timeout=10, what="the worker to listen for changes")
        yield first, second, people


def raise_on(centre: Centre, person_id: int, hub_id: str, *, publish: bool = True) -> int:
    """An alert raised in one of `centre`'s transactions, as its ingest would: the other workers are
    told by the transaction itself, its own consoles after the commit (`publish`; False: as if the
    worker died right after its commit)."""
    with centre.sessions() as session, session.begin():
        alert_id = raise_alert(session, person_id=person_id, hub_id=hub_id, rule=PENDANT_ALARM, subject="",
                               at=utc_now(), evidence={}, why="test").id
    if publish:
        centre.feed.publish({alert_id})
    return alert_id


def test_an_alert_raised_and_acknowledged_on_one_worker_reaches_a_console_on_the_other_once_a_change(
        workers: tuple[Centre, Centre, dict[str, int]]) -> None:
    first, second, people = workers
    console = open_console(second.url)

    raised = raise_on(first, people["hub-1"], "hub-1", publish=False)  # the commit alone tells
    wait_for(partial(console.heard, raised), timeout=10, what="worker 2's console to hear of the alarm")

    acknowledged = httpx.post(f"{first.url}/api/v1/alerts/{raised}/acknowledge",
                              headers={"Authorization": f"Bearer {token(first.url)}"})
    assert acknowledged.status_code == 200, acknowledged.text
    wait_for(lambda: console.times(raised) >= 2, timeout=10, what="worker 2's console to hear of the acknowledgement")


def test_a_threshold_changed_through_one_worker_reaches_the_engine_of_the_other(
        workers: tuple[Centre, Centre, dict[str, int]]) -> None:
    first, second, people = workers
    ada = people["hub-1"]
    heard = Heard()
    first.changes.subscribe(heard.subscriber())

    engine = first.detection.engine
    assert isinstance(engine, Engine)

    def threshold_on_worker_1() -> object:
        profile = engine.profile(str(ada))
        return profile.rules.get("spo2_low", {}).get("urgent_at_or_below") if profile is not None else None

    assert threshold_on_worker_1() is None
    changed = httpx.put(f"{second.url}/api/v1/patients/{ada}/rules/spo2_low",
                        headers={"Authorization": f"Bearer {token(second.url, *ADMIN)}"},
                        json={"params": {"urgent_at_or_below": 90}, "reason": "clinician's instruction"})
    assert changed.status_code == 200, changed.text
    wait_for(lambda: threshold_on_worker_1() == 90, timeout=10, what="worker 1's engine to take the new threshold")
    # Notices arrive in commit order: once a later one is heard, everything before it has been.
    second.changes.announce(alert_ids={MARKER})
    wait_for(lambda: heard.times(MARKER) > 0, timeout=10, what="worker 1 to hear of the marker")
    assert heard.profiles == [ada]  # told once: in the transaction, not again by the API after it


def test_a_killed_listening_connection_reconnects_and_the_consoles_refetch(
        workers: tuple[Centre, Centre, dict[str, int]], postgres_cluster: postgres.Cluster) -> None:
    first, second, people = workers
    changes = second.changes
    assert isinstance(changes, change_feed.PostgresChanges)
    console = open_console(second.url)
    before = changes.backend_pid

    terminate(postgres_cluster, before)

    wait_for(lambda: changes.resyncs == 1 and changes.listening.is_set(), timeout=15,
             what="worker 2 to listen again and tell its subscribers to resync")
    assert changes.backend_pid not in (None, before)
    assert console.ended.wait(10), "the open stream did not end, so its console would not refetch"

    again = open_console(second.url)  # the console's reconnection
    raised = raise_on(first, people["hub-2"], "hub-2")
    wait_for(partial(again.heard, raised), timeout=10, what="worker 2's console to hear of an alarm after it")


def test_a_transaction_tells_the_other_workers_once_in_ids_split_under_the_limit(
        postgres_cluster: postgres.Cluster) -> None:
    """Two feeds on one database, no centre around them: a committed alert is heard though nobody
    announced it after the commit; announcing it after, on the committing thread, adds nothing; a
    rolled-back one is never heard; 4,000 ids travel in several notices of at most 7,999 bytes (the
    server refuses 8,000) and arrive complete; a feed does not hear its own notices."""
    engine = make_engine(postgres_cluster.create_database(f"change_feed_{secrets.token_hex(4)}"))
    schema.upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session, session.begin():
        ada = enrol_home(session, name="Ada", address="", hub_id="hub-a", devices=[]).id
        bea = enrol_home(session, name="Bea", address="", hub_id="hub-b", devices=[]).id
    sender = change_feed.PostgresChanges(engine, change_feed.worker_name("sender"))
    sender.watch(sessions)
    listener = change_feed.PostgresChanges(engine, change_feed.worker_name("listener"))
    heard = Heard()
    listener.subscribe(heard.subscriber())
    listener.start()
    try:
        wait_for(listener.listening.is_set, timeout=10, what="the listener to listen")
        with sessions() as session, session.begin():
            raised = raise_alert(session, person_id=ada, hub_id="hub-a", rule=PENDANT_ALARM, subject="",
                                 at=utc_now(), evidence={}, why="test").id
        wait_for(lambda: heard.times(raised) == 1, timeout=10, what="the alert, told by its transaction alone")
        sender.announce(alert_ids={raised})  # on the committing thread, after the commit: told already
        with sessions() as session:
            never = raise_alert(session, person_id=bea, hub_id="hub-b", rule=PENDANT_ALARM, subject="",
                                at=utc_now(), evidence={}, why="test").id
            session.rollback()
        many = set(range(1_000_000, 1_004_000))
        sender.announce(alert_ids=many)
        listener.announce(alert_ids={MARKER - 1})  # its own: not heard
        sender.announce(alert_ids={MARKER})
        wait_for(lambda: heard.times(MARKER) > 0, timeout=10, what="the marker")
    finally:
        listener.stop()
        engine.dispose()
    assert heard.alerts[0] == {raised} and heard.times(raised) == 1 and heard.times(never) == 0
    split = heard.alerts[1:-1]
    assert len(split) >= 4 and set().union(*split) == many and sum(map(len, split)) == len(many)
    assert heard.alerts[-1] == {MARKER} and heard.times(MARKER - 1) == 0 and heard.resyncs == 0


def terminate(cluster: postgres.Cluster, backend_pid: int | None) -> None:
    """End one PostgreSQL backend, as a network cut or an administrator would."""
    assert backend_pid is not None
    with psycopg.connect(host="127.0.0.1", port=cluster.port, user=postgres.USER, password=cluster.password,
                         dbname="postgres", autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (backend_pid,)).fetchone() == (True,)


def test_the_operator_page_on_one_worker_shows_alarms_raised_on_the_other_through_a_lost_link(
        workers: tuple[Centre, Centre, dict[str, int]], postgres_cluster: postgres.Cluster,
        browser_page: Any) -> None:
    """In Chromium: the operator's queue on worker 2 shows an alarm raised on worker 1, live; then
    worker 2's listening connection is killed and another alarm raised at once, perhaps while no one
    listens: it appears all the same (told, or refetched when the stream ends and reconnects)."""
    first, second, people = workers
    page = browser_page
    page.goto(f"{second.url}/")
    page.fill("#username", OPERATOR[0])
    page.fill("#password", OPERATOR[1])
    page.click("button[type=submit]")
    page.locator("#link.op-link--up").wait_for(timeout=WAIT_MS)
    expect(page.locator("#queue tbody tr")).to_have_count(0)

    raise_on(first, people["hub-1"], "hub-1")
    page.locator("#queue tbody tr", has_text="Ada Lovelace").wait_for(timeout=WAIT_MS)

    changes = second.changes
    assert isinstance(changes, change_feed.PostgresChanges)
    terminate(postgres_cluster, changes.backend_pid)
    raise_on(first, people["hub-2"], "hub-2")
    page.locator("#queue tbody tr", has_text="Brian Jones").wait_for(timeout=WAIT_MS)
    expect(page.locator("#queue tbody tr")).to_have_count(2)
