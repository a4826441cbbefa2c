"""Setting up a real centre and hub agents against a test broker."""

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from centre_app.auth import create_user
from centre_app.centre import Centre
from centre_app.settings import CentreSettings
from hub_agent.agent import HubAgent
from hub_agent.devices import DeviceKind, PairedDevice
from hub_agent.uplink import Uplink
from monitoring_centre.broker import BrokerAccount
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from telecare_protocol import DeviceEvent, DeviceType, EventCode, encode
from telecare_protocol.topics import topic_for
from tests.support.helpers import free_port, mqtt_client
from tests.support.waiting import wait_for as wait_for  # re-exported for older imports; new code imports waiting

HOMES = {
    "hub-1": ("Ada Lovelace", [PairedDevice("pendant-1", "AA:BB:CC:00:01:01", DeviceKind.PENDANT),
                               PairedDevice("door-1", "AA:BB:CC:00:01:02", DeviceKind.DOOR),
                               PairedDevice("bed-1", "AA:BB:CC:00:01:03", DeviceKind.BED),
                               PairedDevice("oximeter-1", "AA:BB:CC:00:01:04", DeviceKind.OXIMETER)]),
    "hub-2": ("Brian Jones", [PairedDevice("pendant-2", "AA:BB:CC:00:02:01", DeviceKind.PENDANT)]),
}
OPERATOR = ("op-alice", "operator-password-" + secrets.token_hex(4))


def centre_settings(db_path: Path, broker: Any, accounts: dict[str, BrokerAccount], **overrides: Any) -> CentreSettings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{db_path}", "jwt_secret": secrets.token_urlsafe(48),
        "mqtt_host": broker.host, "mqtt_port": broker.port, "mqtt_username": "centre",
        "mqtt_password": accounts["centre"].password, "http_port": free_port(),
    }
    values.update(overrides)
    return CentreSettings(**values)


def enrol_test_homes(centre: Centre) -> dict[str, int]:
    """Both homes, and an operator. Returns person ids by hub id."""
    people = {}
    with centre.sessions() as session, session.begin():
        for hub_id, (name, devices) in HOMES.items():
            person = enrol_home(session, name=name, address="1 Test Street", hub_id=hub_id,
                                devices=[DeviceRecord(d.device_id, d.kind.value) for d in devices])
            people[hub_id] = person.id
        create_user(session, *OPERATOR, role="operator")
    return people


def hub_agent(hub_id: str, broker: Any, accounts: dict[str, BrokerAccount]) -> HubAgent:
    uplink = Uplink(hub_id=hub_id, password=accounts[hub_id].password, host=broker.host, port=broker.port)
    return HubAgent(hub_id, HOMES[hub_id][1], uplink)


def token(base_url: str, username: str = OPERATOR[0], password: str = OPERATOR[1]) -> str:
    response = httpx.post(f"{base_url}/api/v1/auth/token", data={"username": username, "password": password})
    response.raise_for_status()
    return str(response.json()["access_token"])


def get_json(base_url: str, path: str, bearer: str) -> Any:
    response = httpx.get(f"{base_url}{path}", headers={"Authorization": f"Bearer {bearer}"})
    response.raise_for_status()
    return response.json()


def press_pendant(broker: Any, accounts: dict[str, BrokerAccount], hub_id: str = "hub-1",
                  device_id: str = "pendant-1") -> DeviceEvent:
    """Publish one help-button press as the hub would, and wait for the broker's PUBACK."""
    press = DeviceEvent.new(hub_id=hub_id, device_id=device_id, device_type=DeviceType.PERSONAL_TRIGGER,
                            code=EventCode.MANUAL_ALARM, source_ts=datetime.now(UTC))
    hub = mqtt_client(broker, accounts[hub_id])
    try:
        hub.publish(topic_for(hub_id, "event"), encode(press), qos=1).wait_for_publish(5)
    finally:
        hub.disconnect()
        hub.loop_stop()
    return press
