"""Notices between centre workers (`change_feed`): payloads split under PostgreSQL's limit and read
back strictly; the notice a transaction sends is the alerts and profiles it wrote, sent inside it and
only if it commits; the consoles' feed tells the other workers and hears from them."""

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from centre_app import schema
from detection.events import PENDANT_ALARM
from monitoring_centre import alerts, change_feed, person_settings
from monitoring_centre.change_feed import PAYLOAD_LIMIT_BYTES, BadNotice, Notice, decode, encode
from monitoring_centre.enrolment import enrol_home
from monitoring_centre.live import AlertFeed, Marker
from monitoring_centre.live import Notice as StreamNotice
from monitoring_centre.storage import Alert, Hub, make_engine, utc_now

WORKER = "telecare-centre:0123456789ab"


def test_a_notice_is_read_back_as_it_was_written() -> None:
    notice = Notice(WORKER, frozenset({3, 1, 20}), frozenset({7}))
    [payload] = encode(notice)
    assert json.loads(payload) == {"v": 1, "from": WORKER, "alerts": [1, 3, 20], "people": [7]}
    assert decode(payload) == notice


def test_nothing_changed_is_no_payload() -> None:
    assert encode(Notice(WORKER)) == []


@pytest.mark.parametrize("limit", [PAYLOAD_LIMIT_BYTES, 200, 90])
def test_a_large_notice_is_split_under_the_limit_and_every_id_travels_once(limit: int) -> None:
    alert_ids = frozenset(range(1_000_000, 1_006_000))  # 6,000 seven-digit ids: about 48 kB
    person_ids = frozenset(range(1, 900, 3))
    payloads = encode(Notice(WORKER, alert_ids, person_ids), limit=limit)
    assert len(payloads) > 1
    assert all(len(payload.encode()) <= limit for payload in payloads)
    notices = [decode(payload) for payload in payloads]
    assert all(notice.origin == WORKER for notice in notices)
    alerts_heard = [i for notice in notices for i in notice.alert_ids]
    people_heard = [i for notice in notices for i in notice.person_ids]
    assert sorted(alerts_heard) == sorted(alert_ids) and len(alerts_heard) == len(set(alerts_heard))
    assert sorted(people_heard) == sorted(person_ids) and len(people_heard) == len(set(people_heard))


def test_payloads_are_filled_not_merely_split() -> None:
    """The default limit is the most PostgreSQL takes (8000 bytes refused): each payload but the last
    is within an id's length of it, so a large change is as few notices as it can be."""
    payloads = encode(Notice(WORKER, frozenset(range(1_000_000, 1_006_000))))
    assert all(PAYLOAD_LIMIT_BYTES - 8 <= len(p.encode()) <= PAYLOAD_LIMIT_BYTES for p in payloads[:-1])
    assert len(payloads) == 7  # 6,000 × 8 bytes ≈ 48,000 bytes at ≈ 7,950 a payload


def test_a_worker_name_too_long_or_a_limit_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 200"):
        encode(Notice("w" * 201, frozenset({1})))
    with pytest.raises(ValueError, match="does not fit"):
        encode(Notice(WORKER, frozenset({123456})), limit=60)


@pytest.mark.parametrize(("payload", "says"), [
    ("not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"v": 2, "from": "w", "alerts": [1]}', "version 2"),
    ('{"v": 1, "alerts": [1]}', "'from' must name the worker"),
    ('{"v": 1, "from": "", "alerts": [1]}', "'from' must name the worker"),
    ('{"v": 1, "from": "w", "alerts": ["1"]}', "'alerts' must be a list of positive integer ids"),
    ('{"v": 1, "from": "w", "alerts": [true]}', "'alerts' must be a list"),
    ('{"v": 1, "from": "w", "people": [-4]}', "'people' must be a list"),
    ('{"v": 1, "from": "w", "people": {"1": 1}}', "'people' must be a list"),
])
def test_a_bad_payload_is_refused_saying_what_is_wrong(payload: str, says: str) -> None:
    with pytest.raises(BadNotice, match=says):
        decode(payload)


class Recorder:
    """An in-transaction teller (`watch_sessions`) that keeps what it was asked to send, and whether
    the session's transaction was still open then."""

    worker = WORKER

    def __init__(self) -> None:
        self.written: list[tuple[Notice, bool]] = []
        self.committed: list[Notice] = []

    def write(self, session: Session, notice: Notice) -> None:
        self.written.append((notice, session.in_transaction()))

    def told(self, notice: Notice) -> None:
        self.committed.append(notice)


@pytest.fixture
def watched() -> Iterator[tuple[sessionmaker[Session], Recorder, int]]:
    engine = make_engine("sqlite://")
    schema.upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session, session.begin():
        ada = enrol_home(session, name="Ada", address="", hub_id="hub-a", devices=[]).id
    recorder = Recorder()
    change_feed.watch_sessions(sessions, recorder)
    yield sessions, recorder, ada
    engine.dispose()


def raise_one(session: Session, person_id: int) -> int:
    return alerts.raise_alert(session, person_id=person_id, hub_id="hub-a", rule=PENDANT_ALARM, subject="",
                              at=utc_now(), evidence={}, why="test").id


def test_a_committed_alert_is_told_inside_its_transaction(
        watched: tuple[sessionmaker[Session], Recorder, int]) -> None:
    sessions, recorder, ada = watched
    with sessions() as session, session.begin():
        alert_id = raise_one(session, ada)
    assert recorder.written == [(Notice(WORKER, frozenset({alert_id})), True)]
    assert recorder.committed == [Notice(WORKER, frozenset({alert_id}))]
    with sessions() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        alerts.transition(session, alert, alerts.AlertState.ACKNOWLEDGED, "op-ann", "")
        session.commit()
    assert recorder.committed[-1] == Notice(WORKER, frozenset({alert_id}))


def test_a_rolled_back_change_tells_no_one(watched: tuple[sessionmaker[Session], Recorder, int]) -> None:
    sessions, recorder, ada = watched
    with sessions() as session:
        raise_one(session, ada)
        session.flush()
        session.rollback()
        raise_one(session, ada)
        session.flush()
    # closed without a commit: nothing either; and a later commit of nothing tells nothing stale
    with sessions() as session, session.begin():
        pass
    assert recorder.written == [] and recorder.committed == []


def test_settings_absences_and_a_moved_hub_tell_the_profile_but_a_hub_status_does_not(
        watched: tuple[sessionmaker[Session], Recorder, int]) -> None:
    sessions, recorder, ada = watched
    with sessions() as session, session.begin():
        person_settings.set_rule(session, ada, "spo2_low", {"urgent_at_or_below": 90}, by="nurse", reason="plan")
    with sessions() as session, session.begin():
        person_settings.plan_absence(session, ada, utc_now(), utc_now() + timedelta(days=2), reason="hospital",
                                     by="nurse")
    with sessions() as session, session.begin():
        hub = session.get(Hub, "hub-a")
        assert hub is not None
        hub.link, hub.last_heartbeat_at = "online", utc_now()
    with sessions() as session, session.begin():
        bea = enrol_home(session, name="Bea", address="", hub_id="hub-b", devices=[]).id
    with sessions() as session, session.begin():
        hub = session.get(Hub, "hub-a")
        assert hub is not None
        hub.person_id = bea
    assert [notice.person_ids for notice in recorder.committed] == [
        frozenset({ada}), frozenset({ada}), frozenset({bea}), frozenset({ada, bea})]
    assert all(not notice.alert_ids for notice in recorder.committed)


def test_sqlite_has_one_worker_and_tells_no_one() -> None:
    engine = create_engine("sqlite://")
    feed = change_feed.for_engine(engine, WORKER)
    assert isinstance(feed, change_feed.LocalChanges)
    with pytest.raises(ValueError, match="PostgreSQL"):
        change_feed.PostgresChanges(engine, WORKER)


def test_worker_names_differ_between_starts_and_keep_their_prefix() -> None:
    first, second = change_feed.worker_name("centre-a"), change_feed.worker_name("centre-a")
    assert first != second and first.startswith("centre-a:") and second.startswith("centre-a:")
    assert len(change_feed.worker_name("x" * 500)) <= change_feed.MAX_ORIGIN_CHARS


def test_the_consoles_feed_tells_other_workers_and_hears_from_them() -> None:
    """`publish` (this worker's change) reaches its streams and the other workers; `deliver` (another
    worker's) reaches the streams only; `resync` reaches every stream as the marker that ends it."""
    told: list[set[int]] = []
    feed = AlertFeed(others=told.append)

    async def run() -> list[StreamNotice]:
        feed.bind(asyncio.get_running_loop())
        stream = feed.subscribe()

        def from_other_threads() -> None:
            feed.publish({5, 2})
            feed.publish(set())  # a storage banner's wake-up: no one else to tell
            feed.deliver(frozenset({9}))
            feed.resync()

        await asyncio.to_thread(from_other_threads)
        return [await asyncio.wait_for(stream.get(), 5) for _ in range(4)]

    assert asyncio.run(run()) == [[2, 5], [], [9], Marker.RESYNC]
    assert told == [{2, 5}]


def test_a_failing_announcement_does_not_fail_the_publisher() -> None:
    def broken(_ids: set[int]) -> None:
        raise OSError("database gone")

    feed = AlertFeed(others=broken)
    feed.publish({1})  # logged, not raised: the change is committed


def test_the_listener_thread_delivers_skips_its_own_and_resyncs_on_a_bad_notice() -> None:
    """`PostgresChanges._deliver` without a server: another worker's notice reaches each subscriber,
    this worker's own does not, a notice it cannot read tells `resync`, and a failing subscriber does
    not stop the others."""
    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")  # never connected
    feed = change_feed.PostgresChanges(engine, WORKER)
    heard: list[object] = []

    def failing(_ids: frozenset[int]) -> None:
        raise RuntimeError("a subscriber's bug")

    feed.subscribe(change_feed.Subscriber(failing, lambda p: None, lambda: None))
    feed.subscribe(change_feed.Subscriber(
        alerts_changed=lambda ids: heard.append(("alerts", sorted(ids))),
        profile_changed=lambda person: heard.append(("profile", person)),
        resync=lambda: heard.append("resync")))
    for payload in encode(Notice("elsewhere:1", frozenset({4, 3}), frozenset({8, 6}))):
        feed._deliver(payload)
    for payload in encode(Notice(WORKER, frozenset({99}))):
        feed._deliver(payload)
    feed._deliver('{"v": 9}')
    assert heard == [("alerts", [3, 4]), ("profile", 6), ("profile", 8), "resync"]
    assert feed.resyncs == 1
    engine.dispose()
