"""Zigbee2MQTT input: contact polarity, occupancy by device kind, battery, tamper,
availability; malformed payloads counted; and the real path through a local Mosquitto
(anonymous, like a home's own Zigbee2MQTT broker) into the agent."""

import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub_agent.agent import HubAgent
from hub_agent.devices import DeviceKind
from hub_agent.radio import ZigbeeReport
from hub_agent.uplink import Uplink
from hub_agent.zigbee import BrokerSettings, ZigbeeDecoder, ZigbeeDevice, ZigbeeLink
from monitoring_centre.broker import find_mosquitto
from telecare_protocol import DeviceEvent, DeviceType, EventCode
from tests.support.centre import wait_for
from tests.support.helpers import TIMEOUT, close, free_port, mqtt_client, publish

T0 = datetime(2025, 1, 6, 3, 0, tzinfo=UTC)
DOOR = ZigbeeDevice("door-2", "front_door", DeviceKind.DOOR, location="hall")
BED = ZigbeeDevice("bed-2", "bed_mat", DeviceKind.BED)
PIR = ZigbeeDevice("motion-1", "kitchen/pir", DeviceKind.MOTION)


def report(payload: str | bytes, name: str = "front_door", availability: bool = False) -> ZigbeeReport:
    data = payload.encode() if isinstance(payload, str) else payload
    return ZigbeeReport(friendly_name=name, payload=data, received_at=T0, monotonic=1.0, availability=availability)


def codes(events: list[DeviceEvent]) -> list[EventCode]:
    return [e.code for e in events]


def test_contact_true_means_closed_and_only_changes_are_events() -> None:
    door = ZigbeeDecoder(DOOR, hub_id="hub-1")
    opened, battery = door.decode(report('{"contact": false, "battery": 91, "linkquality": 120}'))
    assert battery.code is EventCode.BATTERY_OK  # first seen: the centre learns the current state
    assert (opened.code, opened.device_type, opened.device_id) == (EventCode.DOOR_OPENED, DeviceType.DOOR_SENSOR,
                                                                    "door-2")
    assert door.decode(report('{"contact": false, "battery": 91, "linkquality": 99}')) == []
    assert codes(door.decode(report('{"contact": true}'))) == [EventCode.DOOR_CLOSED]
    assert door.battery_pct == 91 and door.last_seen == T0


def test_occupancy_is_bed_state_or_activity_by_kind() -> None:
    bed, pir = ZigbeeDecoder(BED, hub_id="hub-1"), ZigbeeDecoder(PIR, hub_id="hub-1")
    assert codes(bed.decode(report('{"occupancy": true}', "bed_mat"))) == [EventCode.BED_OCCUPIED]
    assert codes(bed.decode(report('{"occupancy": false}', "bed_mat"))) == [EventCode.BED_VACATED]
    (moved,) = pir.decode(report('{"occupancy": true}', "kitchen/pir"))
    assert (moved.code, moved.device_type) == (EventCode.ACTIVITY, DeviceType.MOTION_SENSOR)
    assert pir.decode(report('{"occupancy": false}', "kitchen/pir")) == []  # clearing is not activity
    assert codes(pir.decode(report('{"occupancy": true}', "kitchen/pir"))) == [EventCode.ACTIVITY]


def test_battery_low_and_tamper() -> None:
    door = ZigbeeDecoder(DOOR, hub_id="hub-1")
    assert codes(door.decode(report('{"battery_low": true, "battery": 15}'))) == [EventCode.BATTERY_LOW]
    (ok,) = door.decode(report('{"battery_low": false, "battery": 100}'))
    assert ok.code is EventCode.BATTERY_OK and ok.detail == {"battery_pct": 100}
    assert codes(door.decode(report('{"tamper": true}'))) == [EventCode.TAMPER]
    assert codes(door.decode(report('{"tamper": false}'))) == [EventCode.TAMPER_CLEARED]
    only_percent = ZigbeeDecoder(BED, hub_id="hub-1")
    assert codes(only_percent.decode(report('{"battery": 18}', "bed_mat"))) == [EventCode.BATTERY_LOW]


@pytest.mark.parametrize("offline", ['{"state":"offline"}', "offline"])
def test_availability_offline_and_back(offline: str) -> None:
    door = ZigbeeDecoder(DOOR, hub_id="hub-1")
    assert door.decode(report('{"state":"online"}', availability=True)) == []
    (lost,) = door.decode(report(offline, availability=True))
    assert (lost.code, lost.detail) == (EventCode.DEVICE_NOT_SEEN, {"source": "zigbee2mqtt"})
    assert door.decode(report(offline, availability=True)) == []  # once per outage
    assert codes(door.decode(report("online", availability=True))) == [EventCode.DEVICE_SEEN_AGAIN]


@pytest.mark.parametrize(("payload", "reason"), [
    (b"{not json", "malformed_json"), (b"\xff\xfe", "malformed_json"), (b"[1, 2]", "not_an_object"),
    (b'"online"', "not_an_object"), (b'{"contact": "yes"}', "bad_contact"), (b'{"battery": 250}', "bad_battery"),
])
def test_malformed_payloads_are_counted_never_raised(payload: bytes, reason: str) -> None:
    door = ZigbeeDecoder(DOOR, hub_id="hub-1")
    assert door.decode(report(payload)) == []
    assert door.rejected == {reason: 1}
    assert ZigbeeDecoder(DOOR, hub_id="hub-1").decode(report(payload, availability=True)) == []


# --- through a real local broker ----------------------------------------------------------


@dataclass
class LocalBroker:
    host: str
    port: int
    process: subprocess.Popen[bytes]
    mqtt5: bool = True


@pytest.fixture
def zigbee_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """An anonymous Mosquitto on a free loopback port, standing in for the home's Zigbee2MQTT broker."""
    executable = find_mosquitto()
    if executable is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto); CI installs it")
    port = free_port()
    config = tmp_path / "zigbee-mosquitto.conf"
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true", "persistence false"]
    if os.geteuid() == 0:
        import pwd

        lines.append(f"user {pwd.getpwuid(0).pw_name}")
    config.write_text("\n".join(lines) + "\n")
    process = subprocess.Popen([executable, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    broker = LocalBroker("127.0.0.1", port, process)
    try:
        wait_for(lambda: _listening(port), what="the local broker")
        yield broker
    finally:
        process.terminate()
        process.wait(TIMEOUT)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_zigbee2mqtt_messages_reach_the_agent_through_the_local_broker(zigbee_broker: LocalBroker) -> None:
    agent = HubAgent("hub-1", [], Uplink(hub_id="hub-1", password="not-started-here", host="127.0.0.1", port=1),
                     zigbee_devices=[DOOR, PIR])
    reports: list[ZigbeeReport] = []
    arrived = threading.Condition()
    faults: list[str] = []

    def sink(r: ZigbeeReport) -> None:
        with arrived:
            reports.append(r)
            arrived.notify_all()

    link = ZigbeeLink(BrokerSettings(host=zigbee_broker.host, port=zigbee_broker.port), [DOOR, PIR], sink,
                      on_fault=faults.append)
    link.start()
    z2m = mqtt_client(zigbee_broker, None)  # type: ignore[arg-type]
    try:
        assert link.subscribed.wait(TIMEOUT)
        publish(z2m, "zigbee2mqtt/front_door", b'{"contact": false, "battery": 80}')
        publish(z2m, "zigbee2mqtt/front_door", b"{garbage")
        publish(z2m, "zigbee2mqtt/someone_elses_plug", b'{"state": "ON"}')  # not ours: never subscribed
        publish(z2m, "zigbee2mqtt/kitchen/pir", b'{"occupancy": true}')
        publish(z2m, "zigbee2mqtt/front_door/availability", b'{"state":"offline"}')
        with arrived:
            assert arrived.wait_for(lambda: len(reports) >= 4, TIMEOUT)
        messages = [m for r in reports for m in agent.handle(r)]
        assert [(m.device_id, m.code) for m in messages if isinstance(m, DeviceEvent)] == [
            ("door-2", EventCode.DOOR_OPENED), ("door-2", EventCode.BATTERY_OK), ("motion-1", EventCode.ACTIVITY),
            ("door-2", EventCode.DEVICE_NOT_SEEN)]
        assert agent.rejected == {"zigbee_malformed_json": 1}
        assert {s.device_id: s.battery_pct for s in agent.heartbeat().devices} == {"door-2": 80, "motion-1": None}
        publish(z2m, "zigbee2mqtt/bridge/state", b'{"state":"offline"}')
        wait_for(lambda: faults, what="the bridge fault")
        assert faults == ["the Zigbee2MQTT bridge is offline"]
    finally:
        close(z2m)
        link.stop()


def test_losing_the_local_broker_is_one_fault_not_a_crash(zigbee_broker: LocalBroker) -> None:
    faults: list[str] = []
    link = ZigbeeLink(BrokerSettings(host=zigbee_broker.host, port=zigbee_broker.port), [DOOR], lambda r: None,
                      on_fault=faults.append)
    link.start()
    try:
        assert link.connected.wait(TIMEOUT)
        zigbee_broker.process.terminate()
        zigbee_broker.process.wait(TIMEOUT)
        wait_for(lambda: faults, what="the fault")
        assert len(faults) == 1 and "lost the local broker" in faults[0]
        assert not link.connected.is_set()
    finally:
        link.stop()
