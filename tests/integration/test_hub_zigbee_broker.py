"""Zigbee2MQTT through a real local Mosquitto (anonymous, like a home's own Zigbee2MQTT broker)
into the agent, and losing that broker. The decoding itself is tested in
tests/unit/hub_agent/test_hub_zigbee.py."""

import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub_agent.agent import HubAgent
from hub_agent.devices import DeviceKind
from hub_agent.radio import ZigbeeReport
from hub_agent.uplink import Uplink
from hub_agent.zigbee import BrokerSettings, ZigbeeDevice, ZigbeeLink
from monitoring_centre.broker import find_mosquitto
from telecare_protocol import DeviceEvent, EventCode
from tests.support.helpers import TIMEOUT, close, free_port, mqtt_client, publish
from tests.support.waiting import wait_for

DOOR = ZigbeeDevice("door-2", "front_door", DeviceKind.DOOR, location="hall")
PIR = ZigbeeDevice("motion-1", "kitchen/pir", DeviceKind.MOTION)


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
    arrived = threading.Lock()
    faults: list[str] = []

    def sink(r: ZigbeeReport) -> None:
        with arrived:
            reports.append(r)

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

        def four_reports() -> bool:
            with arrived:
                return len(reports) >= 4

        wait_for(four_reports, TIMEOUT, "four reports through the local broker")
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
