"""Two workers' detection on one database (`monitoring_centre/detection_queue.py`): a message stored by the
worker that does not hold its person is queued and observed by the holder; a takeover observes what is
still queued (decisions and all) after warming up from the rest. SQLite and PostgreSQL."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from centre_app import schema
from detection.engine import Engine
from monitoring_centre import workers
from monitoring_centre.detection_queue import SharedDetection
from monitoring_centre.detection_runner import EngineRunner
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.ingest import Inbound, Ingest, IngestMetrics
from monitoring_centre.storage import Alert, DetectionQueueEntry, make_engine
from monitoring_centre.workers import WorkerIdentity
from telecare_protocol import DeviceEvent, DeviceType, EventCode, encode
from telecare_protocol.topics import topic_for


@dataclass
class Worker:
    shared: SharedDetection
    ingest: Ingest


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    schema.upgrade(engine)
    made = sessionmaker(engine, expire_on_commit=False)
    with made() as session, session.begin():
        enrol_home(session, name="Ada", address="", hub_id="hub-1", devices=[DeviceRecord("pendant-1", "pendant")])
    yield made
    engine.dispose()


def worker(sessions: sessionmaker[Session], name: str) -> Worker:
    runner = EngineRunner(Engine([]), sessions, tick_s=10)
    runner.share()
    shared = SharedDetection(runner, sessions, WorkerIdentity(name, f"run-{name}"), warm_up_days=14)
    return Worker(shared, Ingest(sessions, IngestMetrics(CollectorRegistry()), detector=shared))


def claim(sessions: sessionmaker[Session], holder: Worker, person_id: int) -> None:
    with sessions() as session, session.begin():
        assert workers.claim(session, [person_id], holder.shared.worker, datetime.now(UTC)) == {person_id}
    holder.shared.take([person_id])


def press_through(ingest: Ingest) -> None:
    event = DeviceEvent.new(hub_id="hub-1", device_id="pendant-1", device_type=DeviceType.PERSONAL_TRIGGER,
                            code=EventCode.MANUAL_ALARM, source_ts=datetime.now(UTC) - timedelta(seconds=1))
    assert ingest.process([Inbound(topic_for("hub-1", "event", event.code), encode(event), lane="alarm_topic")]).stored


def counted(sessions: sessionmaker[Session]) -> tuple[int, int]:
    """(presses counted on the pendant alerts, entries left in the detection queue)."""
    with sessions() as session:
        alerts = session.scalars(select(Alert).where(Alert.rule == "pendant_alarm")).all()
        queued = session.scalar(select(func.count()).select_from(DetectionQueueEntry))
    return sum(alert.repeat_count + 1 for alert in alerts) if alerts else 0, int(queued or 0)


def test_the_holder_observes_what_another_worker_stored(sessions: sessionmaker[Session]) -> None:
    a, b = worker(sessions, "a"), worker(sessions, "b")
    claim(sessions, a, 1)
    press_through(b.ingest)  # b does not hold Ada: queued
    assert counted(sessions) == (0, 1)
    assert a.shared.drain() == 1
    assert counted(sessions) == (1, 0)
    press_through(a.ingest)  # the holder observes its own at once
    assert counted(sessions) == (2, 0)


def test_a_takeover_counts_the_presses_nobody_had_observed_and_nothing_twice(
        sessions: sessionmaker[Session]) -> None:
    a, b = worker(sessions, "a"), worker(sessions, "b")
    claim(sessions, a, 1)
    press_through(a.ingest)  # observed by the holder
    press_through(b.ingest)  # queued; then the holder dies before reading it
    press_through(b.ingest)
    with sessions() as session, session.begin():  # a's lease lapses
        workers.release(session, None, a.shared.worker)
    claim(sessions, b, 1)  # b warms up from the first press, then observes the two queued ones
    assert counted(sessions) == (3, 0)
    press_through(b.ingest)
    assert counted(sessions) == (4, 0)


def test_a_worker_that_lost_the_lease_queues_instead_of_observing(sessions: sessionmaker[Session]) -> None:
    a, b = worker(sessions, "a"), worker(sessions, "b")
    claim(sessions, a, 1)
    with sessions() as session, session.begin():  # taken by b while a still believes it holds Ada
        workers.release(session, None, a.shared.worker)
        workers.claim(session, [1], b.shared.worker, datetime.now(UTC))
    press_through(a.ingest)
    assert counted(sessions) == (0, 1)
    b.shared.take([1])
    assert counted(sessions) == (1, 0)
