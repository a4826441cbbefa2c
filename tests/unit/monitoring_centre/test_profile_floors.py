"""A setting stored before the safety floors existed cannot switch an alarm off: at load it is
ignored with a logged, counted warning, and the alarm runs at its floor (priority 1, always
on). Nothing can store a new one, whatever route it takes. SQLite and PostgreSQL."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from centre_app import schema
from detection.engine import Engine
from monitoring_centre import person_settings
from monitoring_centre.detection_runner import EngineRunner
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.ingest import Inbound, Ingest, IngestMetrics
from monitoring_centre.profiles import SETTINGS_IGNORED, load_profiles
from monitoring_centre.storage import Alert, RuleSetting, make_engine
from telecare_protocol import DeviceEvent, DeviceType, EventCode, encode
from telecare_protocol.topics import topic_for

BAD_ROWS = {
    "pendant_alarm": {"enabled": False},
    "fall": {"priority": 5},
    "spo2_low": {"urgent_at_or_below": 80},
}
"""As a centre could hold them from before the floors: the fault seen in the field."""


def _world(database_url: str) -> tuple[sessionmaker[Session], int]:
    engine = make_engine(database_url)
    schema.upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session, session.begin():
        person = enrol_home(session, name="Ada", address="", hub_id="hub-1",
                            devices=[DeviceRecord("pendant-1", "pendant")])
    return sessions, person.id


def _ignored(rule: str) -> float:
    registry = CollectorRegistry()
    registry.register(SETTINGS_IGNORED)
    return registry.get_sample_value("telecare_detection_settings_ignored_total", {"rule": rule}) or 0.0


def _event(device: str, kind: DeviceType, code: EventCode, when: datetime) -> Inbound:
    message = DeviceEvent.new(hub_id="hub-1", device_id=device, device_type=kind, code=code, source_ts=when)
    return Inbound(topic_for("hub-1", "event"), encode(message))


def test_a_stored_row_that_switches_an_alarm_off_is_ignored_with_a_counted_warning_and_the_alarm_still_rings(
        database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    sessions, person_id = _world(database_url)
    now = datetime.now(UTC) - timedelta(minutes=5)
    with sessions() as session, session.begin():
        for rule, params in BAD_ROWS.items():
            session.add(RuleSetting(person_id=person_id, rule=rule, params=params, changed_at=now,
                                    changed_by="nurse", reason="written before the floors"))
        session.add(RuleSetting(person_id=person_id, rule="spo2_trend_spc", params={"days_needed": 1},
                                changed_at=now, changed_by="nurse", reason="a good one"))
    before = {rule: _ignored(rule) for rule in BAD_ROWS}

    with caplog.at_level(logging.WARNING, logger="monitoring_centre.profiles"), sessions() as session:
        [profile] = load_profiles(session)
    assert profile.rules == {"spo2_trend_spc": {"days_needed": 1}}
    for rule in BAD_ROWS:
        assert _ignored(rule) == before[rule] + 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("pendant_alarm" in w and "safety floor" in w for w in warnings)
    assert any("fall" in w and "safety floor" in w for w in warnings)
    assert any("spo2_low" in w and "below its floor 88" in w for w in warnings)

    # The centre runs on it: two presses make one priority 1 alarm and its repeat; a fall is
    # priority 1 too.
    runner = EngineRunner(Engine([]), sessions, tick_s=10)
    runner.load()
    ingest = Ingest(sessions, IngestMetrics(CollectorRegistry()), detector=runner)
    ingest.process([_event("pendant-1", DeviceType.PERSONAL_TRIGGER, EventCode.MANUAL_ALARM, now),
                    _event("pendant-1", DeviceType.PERSONAL_TRIGGER, EventCode.MANUAL_ALARM,
                           now + timedelta(seconds=20))])
    ingest.process([_event("pendant-1", DeviceType.PERSONAL_TRIGGER, EventCode.FALL_DETECTED,
                           now + timedelta(minutes=1))])
    with sessions() as session:
        alerts = {a.rule: a for a in session.scalars(select(Alert))}
    assert (alerts["pendant_alarm"].priority, alerts["pendant_alarm"].repeat_count) == (1, 1)
    assert alerts["fall"].priority == 1


@pytest.mark.parametrize(("rule", "params"), [*BAD_ROWS.items(), ("pendant_alarm", {"priority": 2})])
def test_no_route_can_store_a_setting_beyond_a_floor(database_url: str, rule: str, params: dict[str, object]) -> None:
    """`person_settings.set_rule` checks again, whatever its caller checked (the API, an admin tool)."""
    sessions, person_id = _world(database_url)
    with sessions() as session, session.begin(), pytest.raises(person_settings.SettingRefused, match="floor"):
        person_settings.set_rule(session, person_id, rule, dict(params), by="admin", reason="x")
    with sessions() as session:
        assert session.scalars(select(RuleSetting)).all() == []
