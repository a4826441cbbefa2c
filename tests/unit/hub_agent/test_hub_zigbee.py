"""Zigbee2MQTT input: contact polarity, occupancy by device kind, battery, tamper,
availability; malformed payloads counted. The real path through a local Mosquitto is in
tests/integration/test_hub_zigbee_broker.py."""

from datetime import UTC, datetime

import pytest

from hub_agent.devices import DeviceKind
from hub_agent.radio import ZigbeeReport
from hub_agent.zigbee import ZigbeeDecoder, ZigbeeDevice
from telecare_protocol import DeviceEvent, DeviceType, EventCode

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
