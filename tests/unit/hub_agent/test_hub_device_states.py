"""Every state a device kind can be told in, and devices that tell none: real BTHome frames
and Zigbee2MQTT messages in, events out.

From the field: a BTHome door/window sensor reporting the window object (0x2D) instead of
opening (0x11) was heard by supervision but produced no event. Each kind now reads every
synonym its libraries define (`bthome-ble`'s binary sensors, Zigbee2MQTT's exposes), and a
device that speaks only states its kind does not read is reported once as a device fault."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from bthome_ble.const import MEAS_TYPES
from sensor_state_data.description import BaseBinarySensorDescription

from firmware_stubs import door, pendant
from firmware_stubs.bthome import Transmitter
from hub_agent.agent import HubAgent
from hub_agent.bthome import BED_KEYS, BTHOME_SERVICE_UUID, DOOR_KEYS, MOTION_KEYS, BTHomeDevice
from hub_agent.config import ZigbeeDeviceConfig
from hub_agent.devices import UNREAD_REPORTS_BEFORE_FAULT, DeviceKind, PairedDevice
from hub_agent.radio import Advertisement, ZigbeeReport
from hub_agent.uplink import Uplink
from hub_agent.zigbee import ZigbeeDecoder, ZigbeeDevice
from telecare_protocol import DeviceEvent, DeviceType, EventCode, Priority

ADDRESS = "A4:C1:38:00:00:01"
T0 = datetime(2025, 1, 6, 3, 0, tzinfo=UTC)
WINDOW_OPEN = bytes.fromhex("40 00 4E 01 64 05 00 00 00 2D 01 3F 00 00")
"""From the field: packet 78, battery 100 %, illuminance 0 lx, WINDOW OPEN, rotation 0°."""
WINDOW_CLOSED = bytes.fromhex("40 00 4E 01 64 05 00 00 00 2D 00 3F 00 00")


class Radio:
    """Advertisements from one address, 10 s apart (outside `bthome-ble`'s 4 s packet-id window)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def adv(self, frame: bytes) -> Advertisement:
        self.t += 10.0
        return Advertisement(address=ADDRESS, service_data={BTHOME_SERVICE_UUID: frame}, rssi=-70,
                             received_at=T0 + timedelta(seconds=self.t), monotonic=self.t)


def bthome(kind: DeviceKind) -> BTHomeDevice:
    return BTHomeDevice(PairedDevice(device_id=f"{kind}-1", address=ADDRESS, kind=kind), hub_id="hub-1")


def codes(events: list[DeviceEvent]) -> list[EventCode]:
    return [e.code for e in events]


# --- BTHome: every synonym ------------------------------------------------------------------


def test_a_door_reporting_the_window_object_opens_and_closes() -> None:
    radio = Radio()
    opened = bthome(DeviceKind.DOOR)
    (event,) = opened.decode(radio.adv(WINDOW_OPEN))
    assert (event.code, event.device_type, event.detail) == (EventCode.DOOR_OPENED, DeviceType.DOOR_SENSOR,
                                                             {"packet_id": 78})
    assert codes(opened.decode(radio.adv(WINDOW_CLOSED))) == [EventCode.DOOR_CLOSED]  # same id, new bytes, later
    assert codes(bthome(DeviceKind.DOOR).decode(radio.adv(WINDOW_CLOSED))) == [EventCode.DOOR_CLOSED]
    assert opened.state_check.unread_reports == 0


@pytest.mark.parametrize(("kind", "object_id", "on", "off"), [
    (DeviceKind.DOOR, 0x11, EventCode.DOOR_OPENED, EventCode.DOOR_CLOSED),  # opening
    (DeviceKind.DOOR, 0x1A, EventCode.DOOR_OPENED, EventCode.DOOR_CLOSED),  # door
    (DeviceKind.DOOR, 0x1B, EventCode.DOOR_OPENED, EventCode.DOOR_CLOSED),  # garage door
    (DeviceKind.DOOR, 0x2D, EventCode.DOOR_OPENED, EventCode.DOOR_CLOSED),  # window
    (DeviceKind.BED, 0x23, EventCode.BED_OCCUPIED, EventCode.BED_VACATED),  # occupancy
    (DeviceKind.BED, 0x25, EventCode.BED_OCCUPIED, EventCode.BED_VACATED),  # presence
    (DeviceKind.MOTION, 0x21, EventCode.ACTIVITY, None),  # motion
    (DeviceKind.MOTION, 0x23, EventCode.ACTIVITY, None),  # occupancy
    (DeviceKind.MOTION, 0x25, EventCode.ACTIVITY, None),  # presence
])
def test_every_object_a_kind_can_be_told_in(kind: DeviceKind, object_id: int, on: EventCode,
                                            off: EventCode | None) -> None:
    radio, device = Radio(), bthome(kind)
    assert codes(device.decode(radio.adv(bytes([0x40, 0x00, 1, object_id, 1])))) == [on]
    assert codes(device.decode(radio.adv(bytes([0x40, 0x00, 2, object_id, 0])))) == ([off] if off else [])
    assert codes(device.decode(radio.adv(bytes([0x40, 0x00, 3, object_id, 0])))) == []  # no change, no event


def test_several_objects_of_one_kind_read_as_one_state_on_if_any_is() -> None:
    radio, device = Radio(), bthome(DeviceKind.DOOR)
    assert codes(device.decode(radio.adv(bytes.fromhex("40 00 01 11 00 2D 01")))) == [EventCode.DOOR_OPENED]
    assert codes(device.decode(radio.adv(bytes.fromhex("40 00 02 2D 00 2D 00")))) == [EventCode.DOOR_CLOSED]
    assert codes(device.decode(radio.adv(bytes.fromhex("40 00 03 2D 00 2D 01")))) == [EventCode.DOOR_OPENED]


def test_a_state_is_read_from_the_frame_that_carries_it_not_from_earlier_frames() -> None:
    """`bthome-ble` hands back every value it has ever parsed: a window reported open once must
    not hold the door open when a later frame carries opening only."""
    radio, device = Radio(), bthome(DeviceKind.DOOR)
    assert codes(device.decode(radio.adv(bytes.fromhex("40 00 01 2D 01")))) == [EventCode.DOOR_OPENED]
    assert codes(device.decode(radio.adv(bytes.fromhex("40 00 02 11 00")))) == [EventCode.DOOR_CLOSED]
    assert device.decode(radio.adv(bytes.fromhex("40 00 03 01 50"))) == []  # battery only: the door says nothing
    assert device.battery_pct == 80


NOT_A_KIND_STATE = {
    "battery", "tamper",  # every kind: battery low and tamper events of their own
    "battery_charging", "power", "plug", "connectivity",  # the device's own power and link
    "carbon_monoxide", "gas", "smoke", "heat", "cold", "moisture", "safety", "problem", "sound",  # hazards
    "light", "lock", "moving", "running", "vibration", "generic",  # no door, bed or activity meaning of their own
}
"""`bthome-ble` binary sensors no kind reads, each for a reason. A lock is not the door (a
door can be unlocked and shut); vibration and a running appliance are not a person; a
generic switch says nothing about what it means."""


def test_every_bthome_binary_object_is_read_by_a_kind_or_deliberately_not() -> None:
    """A new `bthome-ble` binary sensor fails here until it is mapped or ruled out."""
    library = {str(m.meas_format.device_class) for m in MEAS_TYPES.values()
               if isinstance(m.meas_format, BaseBinarySensorDescription)}
    read = {str(key) for key in (*DOOR_KEYS, *BED_KEYS, *MOTION_KEYS)}
    assert library - read == NOT_A_KIND_STATE
    assert read <= library


# --- BTHome: mute devices -------------------------------------------------------------------


def lock_frame(packet_id: int) -> bytes:
    return bytes([0x40, 0x00, packet_id, 0x01, 0x64, 0x1F, 0x01])  # battery 100 %, lock "open" (0x1F)


def test_a_door_that_speaks_only_objects_a_door_does_not_read_is_one_device_fault() -> None:
    radio, device = Radio(), bthome(DeviceKind.DOOR)
    for packet_id in range(1, UNREAD_REPORTS_BEFORE_FAULT):
        assert device.decode(radio.adv(lock_frame(packet_id))) == []
    adv = radio.adv(lock_frame(UNREAD_REPORTS_BEFORE_FAULT))
    (fault,) = device.decode(adv)
    assert (fault.code, fault.device_type, fault.device_id, fault.priority, fault.source_ts) == (
        EventCode.DEVICE_FAULT, DeviceType.DOOR_SENSOR, "door-1", Priority.SUPERVISION, adv.received_at)
    assert fault.detail == {"fault": "no_state_for_kind", "kind": "door", "reads": "opening, door, garage_door, window",
                            "sent": "battery, lock", "reports": UNREAD_REPORTS_BEFORE_FAULT}
    for packet_id in range(10, 15):  # once per device
        assert device.decode(radio.adv(lock_frame(packet_id))) == []
    assert device.state_check.unread_reports == UNREAD_REPORTS_BEFORE_FAULT + 5
    assert device.accepted == UNREAD_REPORTS_BEFORE_FAULT + 5  # still heard: supervision is not fooled either way


def test_a_device_that_has_told_its_state_is_never_called_mute() -> None:
    radio, device = Radio(), bthome(DeviceKind.DOOR)
    assert codes(device.decode(radio.adv(bytes.fromhex("40 00 01 11 00")))) == [EventCode.DOOR_CLOSED]
    for packet_id in range(2, 10):
        assert device.decode(radio.adv(lock_frame(packet_id))) == []


def test_status_frames_that_carry_no_state_yet_are_not_a_fault() -> None:
    """Our own door stub sends status frames before it has read its reed switch, and a
    pendant's status frame carries its buttons with code 0, which `bthome-ble` drops."""
    radio, sensor, device = Radio(), door.DoorSensor(Transmitter(mac=bytes.fromhex("A4C138000001"))), \
        bthome(DeviceKind.DOOR)
    keyfob, wearer = pendant.Pendant(Transmitter(mac=bytes.fromhex("A4C138000001"))), bthome(DeviceKind.PENDANT)
    for _ in range(UNREAD_REPORTS_BEFORE_FAULT * 2):
        sensor, frame = door.status(sensor)
        assert codes(device.decode(radio.adv(frame))) in ([], [EventCode.BATTERY_OK])
        keyfob, frame = pendant.status(keyfob)
        assert codes(wearer.decode(radio.adv(frame))) in ([], [EventCode.BATTERY_OK])
    assert device.state_check.unread_reports == wearer.state_check.unread_reports == 0
    sensor, change = door.set_open(replace(sensor), True)
    assert change is not None and codes(device.decode(radio.adv(change))) == [EventCode.DOOR_OPENED]


def test_a_pendant_that_sends_a_dimmer_instead_of_buttons_is_a_fault() -> None:
    radio, device = Radio(), bthome(DeviceKind.PENDANT)
    events = [device.decode(radio.adv(bytes([0x40, 0x00, n, 0x3C, 0x01, 0x03]))) for n in range(1, 6)]
    assert [codes(e) for e in events] == [[]] * (UNREAD_REPORTS_BEFORE_FAULT - 1) + [[EventCode.DEVICE_FAULT]] + \
        [[]] * (5 - UNREAD_REPORTS_BEFORE_FAULT)
    fault = events[UNREAD_REPORTS_BEFORE_FAULT - 1][0]
    assert (fault.device_type, fault.detail["reads"], fault.detail["sent"]) == (
        DeviceType.PERSONAL_TRIGGER, "button", "dimmer")


def test_the_fault_reaches_the_centre_through_the_agent_and_the_device_stays_supervised() -> None:
    radio = Radio()
    agent = HubAgent("hub-1", [PairedDevice("door-1", ADDRESS, DeviceKind.DOOR)],
                     Uplink(hub_id="hub-1", password="not-started-here", host="127.0.0.1", port=1))
    messages = [m for n in range(1, UNREAD_REPORTS_BEFORE_FAULT + 1) for m in agent.handle(radio.adv(lock_frame(n)))]
    assert [(m.device_id, m.code) for m in messages if isinstance(m, DeviceEvent)] == [
        ("door-1", EventCode.DEVICE_FAULT)]
    assert agent.heartbeat().devices[0].last_seen is not None


# --- Zigbee2MQTT ----------------------------------------------------------------------------


def zigbee(kind: DeviceKind) -> ZigbeeDecoder:
    return ZigbeeDecoder(ZigbeeDevice(f"{kind}-2", "thing", kind), hub_id="hub-1")


def message(payload: str) -> ZigbeeReport:
    return ZigbeeReport(friendly_name="thing", payload=payload.encode(), received_at=T0, monotonic=1.0)


@pytest.mark.parametrize(("opened", "closed"), [
    ('{"contact": false}', '{"contact": true}'),
    ('{"garage_door_contact": false}', '{"garage_door_contact": true}'),
    ('{"window_open": true}', '{"window_open": false}'),
    ('{"door_state": "open"}', '{"door_state": "closed"}'),
    ('{"door_state": "error_forced_open"}', '{"door_state": "closed"}'),
    ('{"window": "OPENED"}', '{"window": "CLOSED"}'),
    ('{"window": "OPEN"}', '{"window": "CLOSE"}'),
])
def test_every_zigbee2mqtt_property_a_door_can_be_told_in(opened: str, closed: str) -> None:
    device = zigbee(DeviceKind.DOOR)
    assert codes(device.decode(message(opened))) == [EventCode.DOOR_OPENED]
    assert codes(device.decode(message(closed))) == [EventCode.DOOR_CLOSED]
    assert device.decode(message(closed)) == []


def test_a_door_state_that_says_neither_open_nor_closed_is_no_event() -> None:
    device = zigbee(DeviceKind.DOOR)
    assert device.decode(message('{"door_state": "error_jammed"}')) == []
    assert codes(device.decode(message('{"contact": true, "door_state": "open"}'))) == [EventCode.DOOR_OPENED]


@pytest.mark.parametrize("key", ["occupancy", "presence"])
def test_occupancy_or_presence_for_bed_and_motion(key: str) -> None:
    bed, room = zigbee(DeviceKind.BED), zigbee(DeviceKind.MOTION)
    assert codes(bed.decode(message(f'{{"{key}": true}}'))) == [EventCode.BED_OCCUPIED]
    assert codes(bed.decode(message(f'{{"{key}": false}}'))) == [EventCode.BED_VACATED]
    assert codes(room.decode(message(f'{{"{key}": true}}'))) == [EventCode.ACTIVITY]
    assert room.decode(message(f'{{"{key}": false}}')) == []


def test_a_zigbee_pendant_raises_an_alarm_on_every_action_and_on_sos() -> None:
    device = zigbee(DeviceKind.PENDANT)
    (alarm,) = device.decode(message('{"action": "single", "battery": 90, "battery_low": false}'))[:1]
    assert (alarm.code, alarm.device_type, alarm.priority, alarm.detail) == (
        EventCode.MANUAL_ALARM, DeviceType.PERSONAL_TRIGGER, Priority.EMERGENCY, {"action": "single"})
    assert device.decode(message('{"action": "", "battery": 90, "battery_low": false}')) == []  # the reset
    assert device.decode(message('{"battery": 90, "battery_low": false}')) == []
    assert codes(device.decode(message('{"action": "hold"}'))) == [EventCode.MANUAL_ALARM]  # if in doubt, go out
    assert [e.detail for e in device.decode(message('{"sos": true}'))] == [{"sos": True}]
    assert device.decode(message('{"sos": true}')) == []
    assert device.decode(message('{"sos": false}')) == []
    assert codes(device.decode(message('{"sos": true, "action": "emergency"}'))) == [EventCode.MANUAL_ALARM]


def test_a_zigbee_pendant_can_be_configured() -> None:
    entry = ZigbeeDeviceConfig.model_validate({"id": "pendant-2", "friendly_name": "sos_button", "kind": "pendant"})
    assert entry.device() == ZigbeeDevice("pendant-2", "sos_button", DeviceKind.PENDANT)


def test_a_zigbee_door_that_speaks_another_state_is_one_fault_and_battery_reports_are_not() -> None:
    quiet = zigbee(DeviceKind.DOOR)
    for _ in range(UNREAD_REPORTS_BEFORE_FAULT * 2):  # Zigbee2MQTT without cache_state: battery alone
        assert codes(quiet.decode(message('{"battery": 90, "voltage": 3000, "linkquality": 80}'))) in (
            [], [EventCode.BATTERY_OK])
    assert quiet.state_check.unread_reports == 0
    mute = zigbee(DeviceKind.DOOR)
    events = [mute.decode(message('{"vibration": true, "battery": 90, "linkquality": 80}'))
              for _ in range(UNREAD_REPORTS_BEFORE_FAULT + 2)]
    faults = [e for batch in events for e in batch if e.code is EventCode.DEVICE_FAULT]
    assert [f.detail for f in faults] == [{"fault": "no_state_for_kind", "kind": "door",
                                           "reads": "contact, garage_door_contact, window_open, door_state, window",
                                           "sent": "battery, vibration", "reports": UNREAD_REPORTS_BEFORE_FAULT}]
    assert faults[0].device_type is DeviceType.DOOR_SENSOR
