"""The alarm path end to end: pendant bytes → hub agent → Mosquitto → centre → API.

Real Mosquitto (per-hub passwords, ACL by username), real SQLite, real HTTP."""

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from centre_app.centre import Centre, CentreThread
from hub_agent.radio import Advertisement
from monitoring_centre.broker import BrokerAccount
from monitoring_centre.storage import DeadLetter, InboundMessage
from telecare_protocol import DeviceEvent, DeviceType, EventCode, encode
from telecare_protocol.topics import topic_for
from tests.support.centre import centre_settings, enrol_test_homes, get_json, hub_agent, press_pendant, token
from tests.support.helpers import mqtt_client
from tests.support.waiting import wait_for

BTHOME_UUID = "0000fcd2-0000-1000-8000-00805f9b34fb"


def pendant_press(packet_id: int, address: str = "AA:BB:CC:00:01:01") -> Advertisement:
    """What a BTHome v2 pendant advertises for one press of its help button:
    device info 0x44 (v2, trigger-based), packet id, battery 90 %, button 1 = press."""
    frame = bytes([0x44, 0x00, packet_id, 0x01, 90, 0x3A, 0x01])
    now = datetime.now(UTC)
    return Advertisement(address=address, service_data={BTHOME_UUID: frame}, rssi=-60, received_at=now,
                         monotonic=time.monotonic())


@pytest.fixture
def centre(tmp_path: Path, mosquitto: Any, broker_accounts: dict[str, BrokerAccount], database_url: str) -> Any:
    """A running centre, on SQLite and on PostgreSQL."""
    centre = Centre(centre_settings(tmp_path / "centre.db", mosquitto, broker_accounts, database_url=database_url))
    people = enrol_test_homes(centre)
    with CentreThread(centre):
        yield centre, people


def alerts_for(base_url: str, bearer: str, person_id: int) -> list[dict[str, Any]]:
    return [a for a in get_json(base_url, "/api/v1/alerts", bearer) if a["person_id"] == person_id]


def test_pendant_press_reaches_the_operator(centre: Any, mosquitto: Any, broker_accounts: Any) -> None:
    centre, people = centre
    agent = hub_agent("hub-1", mosquitto, broker_accounts)
    agent.uplink.start()
    try:
        for message in agent.handle(pendant_press(packet_id=7)):
            agent.uplink.send(message)
        bearer = token(centre.url)
        alerts = wait_for(lambda: alerts_for(centre.url, bearer, people["hub-1"]), what="the pendant alert")
    finally:
        agent.uplink.stop()
    [alert] = alerts
    assert alert["rule"] == "pendant_alarm"
    assert alert["priority"] == 1
    assert alert["status"] == "open"
    assert alert["person_name"] == "Ada Lovelace"
    [evidence] = alert["explanation"]["evidence"]
    assert evidence["device_id"] == "pendant-1" and evidence["code"] == "manual_alarm"
    assert alerts_for(centre.url, bearer, people["hub-2"]) == []


def test_a_message_seen_twice_makes_one_alert(centre: Any, mosquitto: Any, broker_accounts: Any) -> None:
    centre, people = centre
    press = DeviceEvent.new(hub_id="hub-1", device_id="pendant-1", device_type=DeviceType.PERSONAL_TRIGGER,
                            code=EventCode.MANUAL_ALARM, source_ts=datetime.now(UTC))
    second_press = DeviceEvent.new(hub_id="hub-1", device_id="pendant-1", device_type=DeviceType.PERSONAL_TRIGGER,
                                   code=EventCode.MANUAL_ALARM, source_ts=datetime.now(UTC))
    hub = mqtt_client(mosquitto, broker_accounts["hub-1"])
    try:
        for message in (press, press, second_press):  # a redelivery, then a genuine second press
            hub.publish(topic_for("hub-1", "event"), encode(message), qos=1).wait_for_publish(5)
    finally:
        hub.disconnect()
        hub.loop_stop()
    bearer = token(centre.url)
    alert = wait_for(lambda: next((a for a in alerts_for(centre.url, bearer, people["hub-1"])
                                   if a["repeat_count"] == 1), None), what="the repeat to be counted")
    assert len(alerts_for(centre.url, bearer, people["hub-1"])) == 1
    assert [e["message_id"] for e in alert["explanation"]["evidence"]] == [str(press.id), str(second_press.id)]
    with centre.sessions() as session:
        assert session.scalar(select(func.count()).select_from(InboundMessage)) == 2
    assert 'telecare_ingest_duplicates_total 1.0' in httpx.get(f"{centre.url}/metrics").text


def test_spoofed_messages_raise_no_alert(centre: Any, mosquitto: Any, broker_accounts: Any) -> None:
    centre, _people = centre
    forged = DeviceEvent.new(hub_id="hub-2", device_id="pendant-2", device_type=DeviceType.PERSONAL_TRIGGER,
                             code=EventCode.MANUAL_ALARM, source_ts=datetime.now(UTC))
    honest = DeviceEvent.new(hub_id="hub-1", device_id="door-1", device_type=DeviceType.DOOR_SENSOR,
                             code=EventCode.DOOR_OPENED, source_ts=datetime.now(UTC))
    hub1 = mqtt_client(mosquitto, broker_accounts["hub-1"])
    try:
        # hub-1 publishing on hub-2's topic: the broker's ACL never delivers it.
        hub1.publish(topic_for("hub-2", "event"), encode(forged), qos=1).wait_for_publish(5)
        # hub-1 publishing, on its own topic, a payload claiming to be hub-2: the centre rejects it.
        hub1.publish(topic_for("hub-1", "event"), encode(forged), qos=1).wait_for_publish(5)
        # A control message, so the test would notice a centre that receives nothing at all.
        hub1.publish(topic_for("hub-1", "event"), encode(honest), qos=1).wait_for_publish(5)
    finally:
        hub1.disconnect()
        hub1.loop_stop()

    def stored_honest() -> bool:
        with centre.sessions() as session:
            return session.get(InboundMessage, str(honest.id)) is not None

    wait_for(stored_honest, what="the control message")
    with centre.sessions() as session:
        letters = list(session.scalars(select(DeadLetter)))
        assert session.get(InboundMessage, str(forged.id)) is None
    assert [(d.reason, d.field, d.topic) for d in letters] == [("hub_mismatch", "hub_id", topic_for("hub-1", "event"))]
    assert 'telecare_ingest_rejected_total{reason="hub_mismatch"} 1.0' in httpx.get(f"{centre.url}/metrics").text
    bearer = token(centre.url)
    assert get_json(centre.url, "/api/v1/alerts", bearer) == []


def test_centre_acknowledges_only_what_it_stored(tmp_path: Path, mosquitto: Any, broker_accounts: Any) -> None:
    """A centre that cannot store a message never PUBACKs it, so the broker gives it to the next centre."""
    settings = centre_settings(tmp_path / "centre.db", mosquitto, broker_accounts)
    failing = Centre(settings)
    people = enrol_test_homes(failing)
    attempts: list[int] = []

    def broken_store(batch: Any) -> Any:
        attempts.append(len(batch))
        raise OSError("disk on fire")

    failing.ingest.process = broken_store  # type: ignore[method-assign]
    with CentreThread(failing):
        press = press_pendant(mosquitto, broker_accounts)
        wait_for(lambda: attempts, what="the failing centre to try")

    healthy = Centre(settings.model_copy(update={"http_port": settings.http_port}))
    with CentreThread(healthy):
        bearer = token(healthy.url)
        [alert] = wait_for(lambda: alerts_for(healthy.url, bearer, people["hub-1"]), what="the redelivered alarm")
    assert alert["explanation"]["evidence"][0]["message_id"] == str(press.id)


def test_bad_input_is_dead_lettered_and_good_input_survives(centre: Any, mosquitto: Any,
                                                            broker_accounts: Any) -> None:
    centre, people = centre
    good = DeviceEvent.new(hub_id="hub-1", device_id="pendant-1", device_type=DeviceType.PERSONAL_TRIGGER,
                           code=EventCode.MANUAL_ALARM, source_ts=datetime.now(UTC))
    unknown_device = DeviceEvent.new(hub_id="hub-1", device_id="kettle-9", device_type=DeviceType.OCCUPANCY,
                                     code=EventCode.DOOR_OPENED, source_ts=datetime.now(UTC))
    bad_payloads = [b"\xff\xfe not json", b"[]", b'{"version": 3}', encode(unknown_device),
                    encode(good).replace(b'"version":2', b'"version":2,"extra":1')]
    hub = mqtt_client(mosquitto, broker_accounts["hub-1"])
    try:
        for payload in bad_payloads[:3]:
            hub.publish(topic_for("hub-1", "event"), payload, qos=1)
        hub.publish(topic_for("hub-1", "event"), encode(good), qos=1)
        for payload in bad_payloads[3:]:
            hub.publish(topic_for("hub-1", "event"), payload, qos=1).wait_for_publish(5)
    finally:
        hub.disconnect()
        hub.loop_stop()

    def letters() -> list[str] | None:
        with centre.sessions() as session:
            reasons = sorted(session.scalars(select(DeadLetter.reason)))
        return reasons if len(reasons) == len(bad_payloads) else None

    reasons = wait_for(letters, what="every bad payload to be dead-lettered")
    assert reasons == sorted(["malformed", "malformed", "unknown_version", "unknown_device", "malformed"])
    bearer = token(centre.url)
    [alert] = alerts_for(centre.url, bearer, people["hub-1"])
    assert alert["explanation"]["evidence"][0]["message_id"] == str(good.id)


def test_api_needs_a_token_and_lists_patients(centre: Any) -> None:
    centre, _people = centre
    assert httpx.get(f"{centre.url}/api/v1/alerts").status_code == 401
    assert httpx.get(f"{centre.url}/api/v1/alerts", headers={"Authorization": "Bearer forged"}).status_code == 401
    assert httpx.post(f"{centre.url}/api/v1/auth/token",
                      data={"username": "op-alice", "password": "wrong-password"}).status_code == 401
    bearer = token(centre.url)
    patients = get_json(centre.url, "/api/v1/patients", bearer)
    assert {(p["name"], tuple(p["hub_ids"])) for p in patients} == {("Ada Lovelace", ("hub-1",)),
                                                                    ("Brian Jones", ("hub-2",))}
    schema = httpx.get(f"{centre.url}/openapi.json").json()
    assert {"/api/v1/auth/token", "/api/v1/patients", "/api/v1/alerts"} <= set(schema["paths"])


def test_the_centre_carries_on_after_the_broker_restarts(centre: Any, mosquitto: Any, broker_accounts: Any) -> None:
    centre, people = centre
    bearer = token(centre.url)

    press_pendant(mosquitto, broker_accounts)
    wait_for(lambda: alerts_for(centre.url, bearer, people["hub-1"]), what="the first press")
    mosquitto.restart()
    # Likely published before the centre has reconnected: its persistent session keeps the press.
    press_pendant(mosquitto, broker_accounts)
    [alert] = wait_for(lambda: [a for a in alerts_for(centre.url, bearer, people["hub-1"]) if a["repeat_count"] == 1],
                       timeout=30, what="the press after the restart")
    assert alert["status"] == "open"
