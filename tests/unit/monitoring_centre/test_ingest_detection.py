"""The detection engine inside ingest: profiles from the database, decisions into alerts,
the tick's hub_offline sharing one alert with the hub's last will, and a restart (warm-up)
that neither opens a second alert nor counts a repeat for old evidence. SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from centre_app import schema
from detection.engine import Engine
from monitoring_centre.detection_runner import EngineRunner
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.ingest import Inbound, Ingest, IngestMetrics
from monitoring_centre.profiles import check_rule_setting, load_profiles
from monitoring_centre.storage import Alert, RuleSetting, make_engine
from telecare_protocol import DeviceEvent, DeviceType, EventCode, Heartbeat, Power, encode
from telecare_protocol.topics import status_topic, topic_for


def _world(database_url: str) -> tuple[sessionmaker[Session], int]:
    engine = make_engine(database_url)
    schema.upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session, session.begin():
        person = enrol_home(session, name="Ada", address="", hub_id="hub-1",
                            devices=[DeviceRecord("pendant-1", "pendant"), DeviceRecord("door-1", "door")])
    return sessions, person.id


def _runner(sessions: sessionmaker[Session]) -> tuple[EngineRunner, Ingest]:
    runner = EngineRunner(Engine([]), sessions, tick_s=10)
    runner.load()
    runner.warm_up(14)
    return runner, Ingest(sessions, IngestMetrics(CollectorRegistry()), detector=runner)


def _alerts(sessions: sessionmaker[Session]) -> list[Alert]:
    with sessions() as session:
        return list(session.scalars(select(Alert).order_by(Alert.id)))


def test_engine_decisions_become_one_alert_per_condition_across_a_restart(database_url: str) -> None:
    sessions, person_id = _world(database_url)
    runner, ingest = _runner(sessions)
    now = datetime.now(UTC) - timedelta(minutes=1)
    beat = Heartbeat(hub_id="hub-1", device_id="hub-1", source_ts=now, power=Power.MAINS, uptime_s=5, interval_s=60)
    press = DeviceEvent.new(hub_id="hub-1", device_id="pendant-1", device_type=DeviceType.PERSONAL_TRIGGER,
                            code=EventCode.MANUAL_ALARM, source_ts=now)
    outcome = ingest.process([Inbound(topic_for("hub-1", "heartbeat"), encode(beat)),
                              Inbound(topic_for("hub-1", "event"), encode(press))])
    assert outcome.stored == 2 and len(outcome.changed_alerts) == 1
    [alarm] = _alerts(sessions)
    assert (alarm.rule, alarm.person_id, alarm.priority, alarm.hub_id) == ("pendant_alarm", person_id, 1, "hub-1")
    assert alarm.explanation["evidence"][0]["message_id"] == str(press.id)

    # Heartbeats stop: the engine's tick raises hub_offline; the hub's last will counts on the same alert.
    later = now + timedelta(hours=2)
    assert runner.tick(later)
    ingest.process([Inbound(status_topic("hub-1"), b"offline")])
    offline = [a for a in _alerts(sessions) if a.rule == "hub_offline"]
    assert len(offline) == 1 and offline[0].status == "open"

    # A restart: a new engine warmed up from the stored messages. Its ticks re-assert what is
    # already on the queue, which is neither a new alert nor a repeat.
    before = {a.id: a.repeat_count for a in _alerts(sessions)}
    restarted, ingest_again = _runner(sessions)
    restarted.tick(later)
    restarted.tick(later + timedelta(minutes=5))
    assert {a.id: a.repeat_count for a in _alerts(sessions)} == before

    # The hub beats again: the engine clears hub_offline (all clear); a new press repeats the alarm.
    back = datetime.now(UTC)
    again = DeviceEvent.new(hub_id="hub-1", device_id="pendant-1", device_type=DeviceType.PERSONAL_TRIGGER,
                            code=EventCode.MANUAL_ALARM, source_ts=back)
    ingest_again.process([
        Inbound(topic_for("hub-1", "heartbeat"), encode(Heartbeat(hub_id="hub-1", device_id="hub-1", source_ts=back,
                                                                   power=Power.MAINS, uptime_s=9, interval_s=60))),
        Inbound(topic_for("hub-1", "event"), encode(again))])
    by_rule = {a.rule: a for a in _alerts(sessions)}
    assert len(_alerts(sessions)) == 2
    assert by_rule["hub_offline"].status == "resolved" and by_rule["hub_offline"].outcome == "all_clear"
    assert by_rule["pendant_alarm"].repeat_count == before[by_rule["pendant_alarm"].id] + 1


def test_profiles_come_from_the_database(database_url: str) -> None:
    sessions, person_id = _world(database_url)
    now = datetime.now(UTC)
    with sessions() as session, session.begin():
        session.add(RuleSetting(person_id=person_id, rule="profile", params={"spo2_scale": 2, "on_oxygen": False},
                                changed_at=now, changed_by="nurse", reason="COPD, target 88-92%"))
        session.add(RuleSetting(person_id=person_id, rule="no_such_rule", params={"x": 1}, changed_at=now,
                                changed_by="nurse", reason="typo"))
    with sessions() as session:
        [profile] = load_profiles(session, timezone="Europe/London")
    assert (profile.id, profile.hubs, profile.spo2_scale, profile.timezone) == (str(person_id), ("hub-1",), 2,
                                                                                "Europe/London")
    assert "no_such_rule" not in profile.rules
    assert check_rule_setting("profile", {"spo2_scale": 2}) == {"spo2_scale": 2}
    for rule, params in (("profile", {"spo2_scale": 3}), ("profile", {"colour": "red"}), ("no_such_rule", {})):
        try:
            check_rule_setting(rule, params)
        except ValueError:
            continue
        raise AssertionError(f"{rule} {params} was accepted")
