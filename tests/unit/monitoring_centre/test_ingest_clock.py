"""Ingest never trusts a hub's wall clock: every message is stored with the centre's receive time,
nothing is refused for its times, a time ahead of its receipt is flagged, and detection judges the
hub's clock and raises alarms on receipt. SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from centre_app import schema
from detection.engine import Engine
from monitoring_centre.detection_runner import EngineRunner
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.ingest import Inbound, Ingest, IngestMetrics
from monitoring_centre.storage import Alert, DeadLetter, Device, Event, Hub, Reading, make_engine
from telecare_protocol import DeviceEvent, DeviceStatus, DeviceType, EventCode, Heartbeat, Metric, Power, encode
from telecare_protocol import Reading as ReadingMessage
from telecare_protocol.topics import topic_for

RECEIVED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
AHEAD = timedelta(hours=1)


def _centre(database_url: str) -> tuple[sessionmaker[Session], list[datetime]]:
    engine = make_engine(database_url)
    schema.upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session, session.begin():
        enrol_home(session, name="Ada", address="", hub_id="hub-1",
                   devices=[DeviceRecord("pendant-1", "pendant"), DeviceRecord("oximeter-1", "oximeter")])
    return sessions, [RECEIVED]


def _ingest(sessions: sessionmaker[Session], now: list[datetime]) -> Ingest:
    runner = EngineRunner(Engine([]), sessions, tick_s=10, clock=lambda: now[0])
    runner.load()
    return Ingest(sessions, IngestMetrics(CollectorRegistry()), clock=lambda: now[0], detector=runner)


def _beat(hub_time: datetime, uptime_s: float, last_seen: datetime | None = None) -> Inbound:
    devices = (DeviceStatus(device_id="oximeter-1", last_seen=last_seen),) if last_seen else ()
    beat = Heartbeat(hub_id="hub-1", device_id="hub-1", source_ts=hub_time, hub_ts=hub_time, power=Power.MAINS,
                     uptime_s=uptime_s, interval_s=60, devices=devices)
    return Inbound(topic_for("hub-1", "heartbeat"), encode(beat))


def _press(hub_time: datetime) -> DeviceEvent:
    press = DeviceEvent.new(hub_id="hub-1", device_id="pendant-1", device_type=DeviceType.PERSONAL_TRIGGER,
                            code=EventCode.MANUAL_ALARM, source_ts=hub_time)
    return press.model_copy(update={"hub_ts": hub_time})


def test_a_hub_an_hour_ahead_is_stored_flagged_its_press_alerted_at_receipt_and_its_clock_alerted(
        database_url: str) -> None:
    sessions, now = _centre(database_url)
    ingest = _ingest(sessions, now)
    press = _press(RECEIVED + AHEAD)
    reading = ReadingMessage(hub_id="hub-1", device_id="oximeter-1", source_ts=RECEIVED + AHEAD,
                             hub_ts=RECEIVED + AHEAD, metric=Metric.SPO2, value=97.0, unit="%")
    honest = ReadingMessage(hub_id="hub-1", device_id="oximeter-1", source_ts=RECEIVED - timedelta(seconds=2),
                            hub_ts=RECEIVED - timedelta(seconds=1), metric=Metric.SPO2, value=96.0, unit="%")
    outcome = ingest.process([Inbound(topic_for("hub-1", "reading"), encode(honest)),
                              Inbound(topic_for("hub-1", "event"), encode(press)),
                              Inbound(topic_for("hub-1", "reading"), encode(reading)),
                              _beat(RECEIVED + AHEAD, 100, last_seen=RECEIVED + AHEAD)])
    assert (outcome.stored, outcome.rejected) == (4, 0)
    with sessions() as session:
        assert session.scalars(select(DeadLetter)).all() == []
        rows = {r.message_id: (r.source_ts, r.received_at, r.clock_suspect) for r in session.scalars(select(Reading))}
        assert rows == {str(honest.id): (honest.source_ts, RECEIVED, False),
                        str(reading.id): (RECEIVED + AHEAD, RECEIVED, True)}
        [event] = session.scalars(select(Event))
        assert (event.source_ts, event.received_at, event.clock_suspect) == (RECEIVED + AHEAD, RECEIVED, True)
        hub = session.get(Hub, "hub-1")
        assert hub is not None and hub.last_heartbeat_at == RECEIVED  # the centre's clock, not the hub's
        oximeter = session.get(Device, ("hub-1", "oximeter-1"))
        assert oximeter is not None and oximeter.last_seen == RECEIVED  # never later than its receipt
        alerts = {a.rule: a for a in session.scalars(select(Alert))}
    assert set(alerts) == {"pendant_alarm", "hub_clock_wrong"}
    alarm, clock = alerts["pendant_alarm"], alerts["hub_clock_wrong"]
    assert (alarm.priority, alarm.opened_at) == (1, RECEIVED)
    assert alarm.explanation["evidence"][0]["received_at"] == RECEIVED.isoformat()
    assert alarm.explanation["evidence"][0]["source_ts"] == (RECEIVED + AHEAD).isoformat()  # as the hub sent it
    assert (clock.subject, clock.hub_id, clock.priority, clock.opened_at) == ("hub-1", "hub-1", 4, RECEIVED)
    assert clock.title == "Hub hub-1 clock wrong: 1 h 0 min ahead"


def test_a_hub_fourteen_days_behind_beating_every_minute_is_not_offline_and_its_clock_is_alerted_once(
        database_url: str) -> None:
    sessions, now = _centre(database_url)
    ingest = _ingest(sessions, now)
    runner = ingest.detector
    assert isinstance(runner, EngineRunner)
    behind = -timedelta(days=14)
    for minute in range(12):
        now[0] = RECEIVED + timedelta(minutes=minute)
        ingest.process([_beat(now[0] + behind, 100 + 60 * minute, last_seen=now[0] + behind)])
        runner.tick(now[0] + timedelta(seconds=30))
    now[0] = RECEIVED + timedelta(minutes=12)
    ingest.process([Inbound(topic_for("hub-1", "event"), encode(_press(now[0] + behind)))])
    with sessions() as session:
        alerts = [(a.rule, a.subject, a.opened_at) for a in session.scalars(select(Alert).order_by(Alert.id))]
    assert alerts == [("hub_clock_wrong", "hub-1", RECEIVED + timedelta(minutes=1)),
                      ("pendant_alarm", "", RECEIVED + timedelta(minutes=12))]
