"""The hub's uplink publishes a call for help on its alarms topic and everything else on its type's
topic, from the outbox and from memory alike. paho's publish is replaced by a recorder."""

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub_agent.uplink import Uplink
from telecare_protocol import DeviceEvent, DeviceType, EventCode, Metric, Reading, encode

HUB = "hub-1"
NOW = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


@dataclass
class Info:
    mid: int
    rc: int = 0


@dataclass
class FakePaho:
    published: list[tuple[str, bytes]] = field(default_factory=list)

    def publish(self, topic: str, payload: bytes | str, qos: int = 0, retain: bool = False) -> Info:
        self.published.append((topic, payload if isinstance(payload, bytes) else payload.encode()))
        return Info(len(self.published))


@pytest.fixture
def uplink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Uplink, FakePaho]:
    link = Uplink(hub_id=HUB, password="not-used-here", host="127.0.0.1", port=1, outbox_path=tmp_path / "o.db")
    paho = FakePaho()
    monkeypatch.setattr(link.client, "publish", paho.publish)
    monkeypatch.setattr(link.client, "subscribe", lambda *args, **kwargs: (0, 1))
    link._on_connect(link.client, None, None, None, None)
    return link, paho


def event(code: EventCode, device: str = "pendant-1", kind: DeviceType = DeviceType.PERSONAL_TRIGGER) -> DeviceEvent:
    return DeviceEvent.new(hub_id=HUB, device_id=device, device_type=kind, code=code, source_ts=NOW)


def topics_of(paho: FakePaho) -> dict[bytes, str]:
    return {payload: topic for topic, payload in paho.published}


def test_calls_for_help_go_on_alarms_and_the_rest_on_their_own_topics(uplink: tuple[Uplink, FakePaho]) -> None:
    link, paho = uplink
    door = event(EventCode.DOOR_OPENED, "door-1", DeviceType.DOOR_SENSOR)
    battery = event(EventCode.BATTERY_LOW)  # the pendant's: carried into the alarm lane ahead of its press
    press, fall = event(EventCode.MANUAL_ALARM), event(EventCode.FALL_DETECTED, "pendant-2")
    cord = event(EventCode.MANUAL_ALARM, "cord-1", DeviceType.PULL_CORD)
    cancel = event(EventCode.FALL_CANCELLED, "pendant-2")
    reading = Reading(hub_id=HUB, device_id="oximeter-1", source_ts=NOW, metric=Metric.SPO2, value=96.0, unit="%")
    for message in (door, reading, battery, press, fall, cancel, cord):
        link.outbox.put(message)
    link._send_some()
    sent = topics_of(paho)
    alarms, events = f"telecare/v1/hubs/{HUB}/alarms", f"telecare/v1/hubs/{HUB}/events"
    assert [sent[encode(m)] for m in (press, fall, cord)] == [alarms] * 3
    assert [sent[encode(m)] for m in (door, battery, cancel)] == [events] * 3
    assert sent[encode(reading)] == f"telecare/v1/hubs/{HUB}/readings"
    assert [topic for topic, _ in paho.published if topic != f"telecare/v1/hubs/{HUB}/status"][:4] == \
        [events, alarms, alarms, alarms]  # the alarm lane first, in order: battery, press, fall, cord


def test_a_call_for_help_sent_from_memory_goes_on_alarms(uplink: tuple[Uplink, FakePaho],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    link, paho = uplink

    def broken(message: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(link.outbox, "put", broken)
    press = event(EventCode.MANUAL_ALARM)
    link.send(press)
    assert topics_of(paho)[encode(press)] == f"telecare/v1/hubs/{HUB}/alarms"
