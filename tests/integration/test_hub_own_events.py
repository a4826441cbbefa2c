"""What a hub says about itself reaches the operators: every event a hub sends under its own id
(device id = hub id) goes through a real Mosquitto into a real centre, is stored (never
dead-lettered as an unknown device), acknowledged, and raises its supervision alert under a
title naming the hub; power restored clears the power failure. A real `telecare hub` process
on a machine with no Bluetooth adapter gets its adapter fault onto the operators' queue, and
its last will, published while the centre is down, still opens `hub_offline` when the centre
is back (the will is not retained: the broker keeps no retained messages)."""

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from centre_app.centre import Centre, CentreThread
from centre_app.settings import CentreSettings
from detection.rules import HUB_FAULTS, RAISED_BY, RuleId
from hub_agent.agent import HubAgent
from hub_agent.power import FileSource, PowerMonitor
from hub_agent.uplink import Uplink
from monitoring_centre.broker import BrokerAccount, Mosquitto
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.storage import Alert, DeadLetter, Hub, InboundMessage
from telecare_protocol import DeviceEvent, EventCode, Message, Metric, Reading
from tests.support.centre import HOMES, centre_settings, enrol_test_homes
from tests.support.hub_config import write_config
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
HUB = "hub-1"
HUB_LEVEL_CODES = frozenset({EventCode.DEVICE_FAULT, EventCode.POWER_FAILURE, EventCode.POWER_RESTORED,
                             EventCode.DATA_DROPPED})
"""Every code the hub sends under its own id (`hub_agent`: agent.py, power.py, outbox.py)."""
HAS_ADAPTER = any(Path("/sys/class/bluetooth").glob("hci*"))


@pytest.fixture
def centre(tmp_path: Path, mosquitto: Mosquitto, broker_accounts: dict[str, BrokerAccount]) -> Iterator[Any]:
    centre = Centre(centre_settings(tmp_path / "centre.db", mosquitto, broker_accounts))
    people = enrol_test_homes(centre)
    with CentreThread(centre):
        yield centre, people


def alerts_of(centre: Centre, person_id: int, rule: RuleId) -> list[Alert]:
    with centre.sessions() as session:
        return list(session.scalars(select(Alert).where(Alert.person_id == person_id, Alert.rule == rule)
                                    .order_by(Alert.id)))


def stored(centre: Centre, messages: list[Message]) -> bool:
    with centre.sessions() as session:
        return all(session.get(InboundMessage, str(m.id)) is not None for m in messages)


def dead_letters(centre: Centre) -> list[tuple[str, str]]:
    with centre.sessions() as session:
        return [(d.topic, d.reason) for d in session.scalars(select(DeadLetter))]


def test_every_event_a_hub_sends_about_itself_is_stored_and_raises_its_alert(
        centre: Any, mosquitto: Mosquitto, broker_accounts: dict[str, BrokerAccount], tmp_path: Path) -> None:
    centre, people = centre
    person = people[HUB]
    power_file = tmp_path / "power"
    power_file.write_text("mains")
    # A small outbox budget, filled before the link is up: it sheds readings and reports it (data_dropped).
    uplink = Uplink(hub_id=HUB, password=broker_accounts[HUB].password, host=mosquitto.host, port=mosquitto.port,
                    outbox_budget_bytes=6000)
    agent = HubAgent(HUB, HOMES[HUB][1], uplink, power=PowerMonitor(HUB, FileSource(power_file)))
    for n in range(40):
        uplink.send(Reading(hub_id=HUB, device_id="oximeter-1", source_ts=datetime.now(UTC), metric=Metric.SPO2,
                            value=90.0 + n % 8, unit="%"))
    assert uplink.outbox.dropped_counts() is not None, "the budget did not shed: no data_dropped to send"
    uplink.start()
    try:
        faults = [agent.hub_fault("bluetooth_adapter", {"error": "FileNotFoundError: no D-Bus"}),
                  agent.hub_fault("zigbee2mqtt", {"error": "cannot reach the local broker"}),
                  agent.hub_fault("alarm_unconfirmed", {"alarm_id": "x", "alarm_code": "manual_alarm",
                                                        "alarm_device": "pendant-1", "waited_s": 61.5})]
        for fault in faults:
            agent.send(fault)
        power_file.write_text("battery")
        [failure] = agent.power.poll()
        agent.send(failure)
        [power_alert] = wait_for(lambda: alerts_of(centre, person, RuleId.POWER_FAILURE), what="the power alert")
        assert (power_alert.title, power_alert.status, power_alert.hub_id) == (
            f"Mains power lost at hub {HUB}", "open", HUB)
        power_file.write_text("mains")
        [restored] = agent.power.poll()
        agent.send(restored)
        assert uplink.wait_until_delivered(30), "the centre did not acknowledge every hub event"
        assert uplink.centre_refused == {}, uplink.centre_refused
    finally:
        uplink.stop()

    with centre.sessions() as session:
        own = [DeviceEvent.model_validate_json(m.payload) for m in session.scalars(
            select(InboundMessage).where(InboundMessage.hub_id == HUB, InboundMessage.device_id == HUB,
                                         InboundMessage.type == "event"))]
    assert {e.code for e in own} == HUB_LEVEL_CODES  # every hub-level code was sent, and stored
    assert all(e.device_id == e.hub_id == HUB for e in own)
    assert stored(centre, [*faults, failure, restored])
    assert dead_letters(centre) == []

    [power_alert] = alerts_of(centre, person, RuleId.POWER_FAILURE)
    assert (power_alert.status, power_alert.outcome) == ("resolved", "all_clear")  # power restored cleared it

    [fault_alert] = alerts_of(centre, person, RuleId.DEVICE_FAULT)  # one open fault of the hub, each a repeat
    assert (fault_alert.subject, fault_alert.hub_id, fault_alert.status) == (HUB, HUB, "open")
    assert fault_alert.title == f"Hub {HUB} fault: {HUB_FAULTS['bluetooth_adapter']}"
    said = [evidence["detail"]["fault"] for evidence in fault_alert.explanation["evidence"]]
    assert said == ["bluetooth_adapter", "zigbee2mqtt", "alarm_unconfirmed"]

    [dropped] = alerts_of(centre, person, RuleId.DATA_DROPPED)
    [report] = [e for e in own if e.code == EventCode.DATA_DROPPED]
    assert dropped.title == f"Hub {HUB} shed {report.detail['readings_dropped']} stored readings (outbox full)"


def test_every_code_and_fault_the_hub_sends_about_itself_has_its_rule() -> None:
    """The catalogue knows every hub-level event: each code raises or clears a rule, and each fault
    name the hub's code sends (`hub_fault("...")`, `report_fault("...")`) has its words."""
    cleared = {EventCode.POWER_RESTORED}
    assert {code for code in HUB_LEVEL_CODES if code not in cleared} <= set(RAISED_BY)
    sources = "\n".join(path.read_text() for path in (REPO / "hub_agent").glob("*.py"))
    sent = set(re.findall(r'(?:hub_fault|report_fault)\(\s*"([a-z0-9_]+)"', sources))
    sent |= set(re.findall(r'report_fault_threadsafe\(\s*\w+,\s*"([a-z0-9_]+)"', sources))
    assert sent == {"bluetooth_adapter", "zigbee2mqtt", "alarm_unconfirmed"}, sent
    assert sent <= set(HUB_FAULTS)


# --- a real hub process ---------------------------------------------------------------------


def hub_process(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "telecare.cli", "hub", "--config", str(config)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def enrol_the_configured_home(centre: Centre) -> int:
    """hub-1 with the devices `tests/support/hub_config.write_config` pairs."""
    with centre.sessions() as session, session.begin():
        person = enrol_home(session, name="Ada Lovelace", address="1 Test Street", hub_id=HUB, devices=[
            DeviceRecord("pendant-1", "pendant"), DeviceRecord("oximeter-1", "oximeter"),
            DeviceRecord("door-2", "door")])
        return person.id


def heartbeat_stored(centre: Centre) -> bool:
    with centre.sessions() as session:
        hub = session.get(Hub, HUB)
        return hub is not None and hub.last_heartbeat_at is not None


@pytest.fixture
def settings(tmp_path: Path, mosquitto: Mosquitto, broker_accounts: dict[str, BrokerAccount]) -> CentreSettings:
    return centre_settings(tmp_path / "centre.db", mosquitto, broker_accounts)


@pytest.mark.skipif(HAS_ADAPTER, reason="this machine has a Bluetooth adapter: the hub would find it")
def test_a_hub_without_a_bluetooth_adapter_raises_its_fault_at_the_centre(
        tmp_path: Path, settings: CentreSettings, broker_accounts: dict[str, BrokerAccount]) -> None:
    centre = Centre(settings)
    person = enrol_the_configured_home(centre)
    config = write_config(tmp_path, password=broker_accounts[HUB].password, port=settings.mqtt_port)
    with CentreThread(centre):
        hub = hub_process(config)
        try:
            def adapter_fault() -> Alert | None:
                return next((a for a in alerts_of(centre, person, RuleId.DEVICE_FAULT) if a.subject == HUB and any(
                    e["detail"].get("fault") == "bluetooth_adapter" for e in a.explanation["evidence"])), None)

            alert = wait_for(adapter_fault, timeout=60, what="the hub's adapter fault on the operators' queue")
            assert hub.poll() is None, "the hub died"
        finally:
            hub.send_signal(signal.SIGTERM)
            assert hub.wait(30) == 0
    assert alert.status == "open" and alert.hub_id == HUB and alert.priority == 4
    assert alert.title.startswith(f"Hub {HUB} fault: ")
    assert [reason for topic, reason in dead_letters(centre) if f"/{HUB}/" in topic] == []


def test_the_last_will_of_a_hub_that_died_while_the_centre_was_down_opens_hub_offline(
        tmp_path: Path, settings: CentreSettings, broker_accounts: dict[str, BrokerAccount]) -> None:
    first = Centre(settings)
    person = enrol_the_configured_home(first)
    config = write_config(tmp_path, password=broker_accounts[HUB].password, port=settings.mqtt_port)
    hub = hub_process(config)
    try:
        with CentreThread(first):
            wait_for(lambda: heartbeat_stored(first), timeout=60, what="the hub's first heartbeat")
        # The centre is down (its sessions stay at the broker); the hub dies without a word.
        hub.kill()
        hub.wait(30)
        second = Centre(settings)
        with CentreThread(second):
            [alert] = wait_for(lambda: alerts_of(second, person, RuleId.HUB_OFFLINE), timeout=30,
                               what="hub_offline from the hub's last will")
    finally:
        if hub.poll() is None:
            hub.kill()
            hub.wait(30)
    assert alert.title == f"Hub {HUB} offline: the home is not monitored"
    assert alert.explanation["evidence"][0]["state"] == "offline"  # the will, not the heartbeat deadline
