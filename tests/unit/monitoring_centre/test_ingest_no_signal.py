"""Readings with no signal inside the centre: SpO2 0 % and pulse 0 sent with no flag (an older hub, another
device) are stored flagged `no_signal`, open no alert, stay off the nurses' chart (rows stored unflagged before
too), and are counted on /metrics as they arrive (not again in a restart's warm-up). SQLite and PostgreSQL."""

import uuid
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from centre_app import schema
from detection.engine import Engine
from monitoring_centre.detection_runner import NO_SIGNAL_READINGS, EngineRunner
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.ingest import Inbound, Ingest, IngestMetrics
from monitoring_centre.storage import Alert, InboundMessage, Reading, make_engine
from monitoring_centre.trends import summarise
from telecare_protocol import Metric, encode
from telecare_protocol import Reading as ReadingMessage
from telecare_protocol.topics import topic_for

COUNTER = "telecare_detection_no_signal_readings_total"


def _count(registry: CollectorRegistry, metric: str) -> float:
    return registry.get_sample_value(COUNTER, {"metric": metric}) or 0.0


def test_zeros_are_stored_flagged_counted_and_never_alarm(database_url: str) -> None:
    engine = make_engine(database_url)
    schema.upgrade(engine)
    sessions: sessionmaker[Session] = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session, session.begin():
        person = enrol_home(session, name="Ada", address="", hub_id="hub-1",
                            devices=[DeviceRecord("oxi-1", "oximeter")])
    registry = CollectorRegistry()
    registry.register(NO_SIGNAL_READINGS)
    before = {metric: _count(registry, metric) for metric in ("spo2", "pulse_rate")}
    runner = EngineRunner(Engine([]), sessions, tick_s=10)
    runner.load()
    ingest = Ingest(sessions, IngestMetrics(CollectorRegistry()), detector=runner)

    start = datetime.now(UTC) - timedelta(minutes=10)
    readings = [ReadingMessage(hub_id="hub-1", device_id="oxi-1", metric=metric, value=0.0, unit=unit,
                               source_ts=start + timedelta(minutes=m), hub_ts=start + timedelta(minutes=m))
                for m in range(5) for metric, unit in ((Metric.SPO2, "%"), (Metric.PULSE_RATE, "/min"))]
    outcome = ingest.process([Inbound(topic_for("hub-1", "reading"), encode(r)) for r in readings])

    assert outcome.stored == 10 and outcome.changed_alerts == set()
    with sessions() as session:
        assert list(session.scalars(select(Alert))) == []
        stored = list(session.scalars(select(Reading)))
        assert {(r.value, tuple(r.quality)) for r in stored} == {(0.0, ("no_signal",))}
        chart = summarise(session, person.id, Metric.SPO2, start - timedelta(minutes=1), start + timedelta(hours=1),
                          timedelta(hours=1))
        assert [(b.clean, b.flagged, b.low) for b in chart] == [(0, 5, None)]
    assert {m: _count(registry, m) - before[m] for m in before} == {"spo2": 5.0, "pulse_rate": 5.0}

    restarted = EngineRunner(Engine([]), sessions, tick_s=10)
    restarted.load()
    restarted.warm_up(1)  # the history is observed again, but counted once: when it arrived
    assert restarted.engine.counts.no_signal == {"spo2": 5, "pulse_rate": 5}
    assert {m: _count(registry, m) - before[m] for m in before} == {"spo2": 5.0, "pulse_rate": 5.0}


def test_zeros_stored_before_they_were_flagged_stay_off_the_chart(database_url: str) -> None:
    """Rows stored unflagged before ingest flagged them (the field's day of zeros) are counted as flagged too."""
    engine = make_engine(database_url)
    schema.upgrade(engine)
    sessions: sessionmaker[Session] = sessionmaker(engine, expire_on_commit=False)
    at = datetime.now(UTC) - timedelta(minutes=30)
    with sessions() as session, session.begin():
        person = enrol_home(session, name="Ada", address="", hub_id="hub-1",
                            devices=[DeviceRecord("oxi-1", "oximeter")])
        for minute, value in enumerate((96.0, 0.0, 0.0, 95.0)):
            message_id = str(uuid.uuid4())
            when = at + timedelta(minutes=minute)
            session.add(InboundMessage(id=message_id, type="reading", hub_id="hub-1", device_id="oxi-1",
                                       source_ts=when, hub_ts=when, received_at=when, payload="{}"))
            session.flush()
            session.add(Reading(message_id=message_id, person_id=person.id, device_id="oxi-1", metric="spo2",
                                value=value, unit="%", quality=[], source_ts=when, received_at=when))
    with sessions() as session:
        [bucket] = summarise(session, person.id, Metric.SPO2, at, at + timedelta(hours=1), timedelta(hours=1))
    assert (bucket.clean, bucket.flagged, bucket.low, bucket.high) == (2, 2, 95.0, 96.0)
