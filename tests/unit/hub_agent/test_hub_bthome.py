"""The hub's BTHome decoder: real frames in, protocol events out; duplicates, replays,
downgrades and wrong keys counted and dropped; any bytes at all never raise."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_stubs import bed, door, pendant
from firmware_stubs.bthome import (
    BUTTON_DOUBLE_PRESS,
    BUTTON_LONG_PRESS,
    BUTTON_NONE,
    BUTTON_PRESS,
    BTHomeValues,
    Transmitter,
    encode_encrypted,
    encode_plain,
)
from hub_agent.bthome import BTHOME_SERVICE_UUID, COUNTER_RESET_CEILING, BTHomeDevice, Rejection
from hub_agent.devices import DeviceKind, PairedDevice
from hub_agent.radio import Advertisement
from telecare_protocol.codes import DeviceType, EventCode, Priority
from telecare_protocol.messages import DeviceEvent
from tests.support.examples import property_examples

ADDRESS = "A4:C1:38:00:00:01"
MAC = bytes.fromhex("A4C138000001")
KEY = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932")
T0 = datetime(2025, 1, 6, 3, 0, tzinfo=UTC)


class Radio:
    """Hands frames to a device as advertisements, with the clocks moving on."""

    def __init__(self) -> None:
        self.t = 1000.0

    def adv(self, frame: bytes | None, *, after: float = 0.5, uuid: str = BTHOME_SERVICE_UUID) -> Advertisement:
        assert frame is not None, "the device sent nothing"
        self.t += after
        return Advertisement(address=ADDRESS, service_data={uuid: frame}, rssi=-70,
                             received_at=T0 + timedelta(seconds=self.t), monotonic=self.t)


def device(kind: DeviceKind = DeviceKind.PENDANT, bindkey: bytes | None = None) -> BTHomeDevice:
    return BTHomeDevice(PairedDevice(device_id=f"{kind}-1", address=ADDRESS, kind=kind, bindkey=bindkey),
                        hub_id="hub-1")


def codes(events: list[DeviceEvent]) -> list[EventCode]:
    return [e.code for e in events]


def pendant_frame(packet_id: int, help_event: int = BUTTON_NONE, fall_event: int = BUTTON_NONE,
                  battery: int = 90, key: bytes | None = None, counter: int = 0) -> bytes:
    values = BTHomeValues(packet_id=packet_id, battery_pct=battery, battery_low=battery <= 20,
                          buttons=(help_event, fall_event))
    return encode_plain(values) if key is None else encode_encrypted(values, key=key, mac=MAC, counter=counter)


# --- pendant ------------------------------------------------------------------------------


def test_help_press_is_a_manual_alarm() -> None:
    dev, radio = device(), Radio()
    adv = radio.adv(bytes.fromhex("44 00 05 01 5a 15 00 3a 01 3a 00"))
    alarm, battery = dev.decode(adv)
    assert (alarm.code, alarm.device_type, alarm.priority) == (
        EventCode.MANUAL_ALARM, DeviceType.PERSONAL_TRIGGER, Priority.EMERGENCY)
    assert alarm.detail == {"packet_id": 5, "button": 1, "press": "short"}
    assert (alarm.hub_id, alarm.device_id, alarm.source_ts) == ("hub-1", "pendant-1", adv.received_at)
    assert (battery.code, battery.detail) == (EventCode.BATTERY_OK, {"packet_id": 5, "battery_pct": 90})
    assert dev.last_seen == adv.received_at and dev.battery_pct == 90
    assert not dev.rejected


def test_single_button_device_counts_as_help_button() -> None:
    dev, radio = device(), Radio()
    (alarm,) = dev.decode(radio.adv(bytes.fromhex("44 00 05 01 5a 3a 01")))
    assert alarm.code is EventCode.MANUAL_ALARM and alarm.detail["button"] == 1


@pytest.mark.parametrize(("help_event", "fall_event", "code", "device_type", "detail"), [
    (BUTTON_LONG_PRESS, BUTTON_NONE, EventCode.ALARM_CANCELLED, DeviceType.PERSONAL_TRIGGER,
     {"button": 1, "press": "long"}),
    (BUTTON_NONE, BUTTON_PRESS, EventCode.FALL_DETECTED, DeviceType.FALL_DETECTOR, {"button": 2, "press": "short"}),
    (BUTTON_NONE, BUTTON_LONG_PRESS, EventCode.FALL_CANCELLED, DeviceType.FALL_DETECTOR,
     {"button": 2, "press": "long"}),
    (BUTTON_DOUBLE_PRESS, BUTTON_NONE, EventCode.MANUAL_ALARM, DeviceType.PERSONAL_TRIGGER,
     {"button": 1, "press": "double"}),
])
def test_pendant_button_mapping(help_event: int, fall_event: int, code: EventCode, device_type: DeviceType,
                                detail: dict[str, object]) -> None:
    dev, radio = device(), Radio()
    dev.decode(radio.adv(pendant_frame(1)))
    (event,) = dev.decode(radio.adv(pendant_frame(2, help_event, fall_event)))
    assert (event.code, event.device_type) == (code, device_type)
    assert event.detail == {"packet_id": 2, **detail}


def test_fall_cancelled_is_logged_not_an_alarm() -> None:
    dev, radio = device(), Radio()
    dev.decode(radio.adv(pendant_frame(1)))
    (event,) = dev.decode(radio.adv(pendant_frame(2, fall_event=BUTTON_LONG_PRESS)))
    assert event.priority == Priority.RESTORAL


def test_help_and_fall_in_one_frame_are_two_alarms() -> None:
    dev, radio = device(), Radio()
    dev.decode(radio.adv(pendant_frame(1)))
    events = dev.decode(radio.adv(pendant_frame(2, BUTTON_PRESS, BUTTON_PRESS)))
    assert codes(events) == [EventCode.MANUAL_ALARM, EventCode.FALL_DETECTED]


# --- deduplication ------------------------------------------------------------------------


def test_same_frame_twice_is_one_alarm_whatever_the_delay() -> None:
    dev, radio = device(), Radio()
    frame = pendant_frame(7, BUTTON_PRESS)
    assert EventCode.MANUAL_ALARM in codes(dev.decode(radio.adv(frame)))
    assert dev.decode(radio.adv(frame, after=0.1)) == []
    assert dev.decode(radio.adv(frame, after=60.0)) == []  # beyond bthome-ble's own 4 s filter
    assert dev.rejected == {Rejection.DUPLICATE: 2}
    assert codes(dev.decode(radio.adv(pendant_frame(8, BUTTON_PRESS)))) == [EventCode.MANUAL_ALARM]


def test_duplicates_do_not_refresh_last_seen() -> None:
    dev, radio = device(), Radio()
    frame = pendant_frame(7)
    dev.decode(radio.adv(frame))
    seen = dev.last_seen
    dev.decode(radio.adv(frame, after=600.0))
    assert dev.last_seen == seen


def test_packet_id_wraps_around() -> None:
    dev, radio = device(), Radio()
    dev.decode(radio.adv(pendant_frame(255, BUTTON_PRESS)))
    assert codes(dev.decode(radio.adv(pendant_frame(0, BUTTON_PRESS)))) == [EventCode.MANUAL_ALARM]


def test_stale_packet_id_within_four_seconds_is_a_duplicate() -> None:
    dev, radio = device(), Radio()
    dev.decode(radio.adv(pendant_frame(7, BUTTON_PRESS, battery=90)))
    # same packet id, different bytes, 1 s later: bthome-ble's own filter drops it
    assert dev.decode(radio.adv(pendant_frame(7, BUTTON_PRESS, battery=89), after=1.0)) == []
    assert dev.rejected == {Rejection.DUPLICATE: 1}


def test_repeats_of_a_stale_encrypted_frame_are_duplicates_not_replays() -> None:
    dev, radio = device(bindkey=KEY), Radio()
    dev.decode(radio.adv(pendant_frame(7, BUTTON_PRESS, key=KEY, counter=10)))
    stale = pendant_frame(7, BUTTON_PRESS, key=KEY, counter=11)  # re-encrypted copy of packet 7
    assert dev.decode(radio.adv(stale, after=0.2)) == []
    assert dev.decode(radio.adv(stale, after=0.2)) == []
    assert dev.rejected == {Rejection.DUPLICATE: 2}


def test_same_packet_id_with_different_bytes_later_is_accepted() -> None:
    dev, radio = device(), Radio()
    dev.decode(radio.adv(pendant_frame(7, BUTTON_PRESS, battery=90)))
    events = dev.decode(radio.adv(pendant_frame(7, BUTTON_PRESS, battery=89), after=30.0))
    assert codes(events) == [EventCode.MANUAL_ALARM]


# --- state events -------------------------------------------------------------------------


def test_door_events_on_change_and_first_seen() -> None:
    dev, radio = device(DeviceKind.DOOR), Radio()
    d = door.DoorSensor(tx=Transmitter(mac=MAC))
    d, frame = door.set_open(d, False)
    assert codes(dev.decode(radio.adv(frame))) == [EventCode.DOOR_CLOSED, EventCode.BATTERY_OK]
    d, frame = door.set_open(d, True)
    (opened,) = dev.decode(radio.adv(frame))
    assert (opened.code, opened.device_type, opened.detail) == (
        EventCode.DOOR_OPENED, DeviceType.DOOR_SENSOR, {"packet_id": 1})
    d, frame = door.status(d)
    assert dev.decode(radio.adv(frame)) == []  # still open: no event
    d, frame = door.set_open(d, False)
    assert codes(dev.decode(radio.adv(frame))) == [EventCode.DOOR_CLOSED]


def test_door_frame_literal() -> None:
    dev, radio = device(DeviceKind.DOOR), Radio()
    events = dev.decode(radio.adv(bytes.fromhex("44 00 2a 01 50 11 01 15 00")))
    assert codes(events) == [EventCode.DOOR_OPENED, EventCode.BATTERY_OK]
    assert dev.battery_pct == 80


def test_bed_events() -> None:
    dev, radio = device(DeviceKind.BED), Radio()
    assert codes(dev.decode(radio.adv(bytes.fromhex("44 00 01 01 64 15 00 23 01")))) == [
        EventCode.BED_OCCUPIED, EventCode.BATTERY_OK]
    (vacated,) = dev.decode(radio.adv(bytes.fromhex("44 00 02 01 64 15 00 23 00")))
    assert (vacated.code, vacated.device_type) == (EventCode.BED_VACATED, DeviceType.BED_MONITOR)


def test_battery_low_and_back() -> None:
    dev, radio = device(DeviceKind.BED), Radio()
    b = bed.BedSensor(tx=Transmitter(mac=MAC), occupied=True, battery_pct=30)
    frame: bytes | None
    b, frame = bed.status(b)
    dev.decode(radio.adv(frame))
    b, frame = bed.set_battery(b, 25)
    assert dev.decode(radio.adv(frame)) == [] and dev.battery_pct == 25
    b, frame = bed.set_battery(b, 18)
    (low,) = dev.decode(radio.adv(frame))
    assert (low.code, low.priority, low.detail) == (
        EventCode.BATTERY_LOW, Priority.SUPERVISION, {"packet_id": 2, "battery_pct": 18})
    b, frame = bed.set_battery(b, 100)
    assert codes(dev.decode(radio.adv(frame))) == [EventCode.BATTERY_OK]


def test_tamper_events() -> None:
    dev, radio = device(DeviceKind.DOOR), Radio()
    frame = encode_plain(BTHomeValues(packet_id=1, opening=False, tamper=True))
    assert codes(dev.decode(radio.adv(frame))) == [EventCode.DOOR_CLOSED, EventCode.TAMPER]
    frame = encode_plain(BTHomeValues(packet_id=2, opening=False, tamper=False))
    (cleared,) = dev.decode(radio.adv(frame))
    assert (cleared.code, cleared.device_type) == (EventCode.TAMPER_CLEARED, DeviceType.DOOR_SENSOR)


def test_objects_foreign_to_the_kind_are_ignored() -> None:
    dev, radio = device(DeviceKind.DOOR), Radio()
    frame = encode_plain(BTHomeValues(packet_id=1, occupancy=True, buttons=(BUTTON_PRESS,)))
    assert dev.decode(radio.adv(frame)) == []
    assert dev.last_seen is not None


# --- the stubs, end to end ----------------------------------------------------------------


def test_pendant_stub_end_to_end() -> None:
    dev, radio = device(DeviceKind.PENDANT, KEY), Radio()
    p = pendant.Pendant(tx=Transmitter(mac=MAC, key=KEY, counter=1000))
    seen: list[EventCode] = []
    frame: bytes | None
    p, frame = pendant.help_press(p, now=0.0)
    for _ in range(3):  # the caller repeats each frame for reliability
        seen += codes(dev.decode(radio.adv(frame, after=0.05)))
    p, frame = pendant.help_long_press(p, now=5.0)
    seen += codes(dev.decode(radio.adv(frame)))
    p, _ = pendant.fall_detected(p, now=10.0)
    p, frame = pendant.tick(p, now=30.0)
    assert frame is not None
    seen += codes(dev.decode(radio.adv(frame)))
    p, _ = pendant.fall_detected(p, now=40.0)
    p, frame = pendant.help_long_press(p, now=45.0)
    seen += codes(dev.decode(radio.adv(frame)))
    p, frame = pendant.set_battery(p, 15)
    assert frame is not None
    seen += codes(dev.decode(radio.adv(frame)))
    assert seen == [EventCode.MANUAL_ALARM, EventCode.BATTERY_OK, EventCode.ALARM_CANCELLED,
                    EventCode.FALL_DETECTED, EventCode.FALL_CANCELLED, EventCode.BATTERY_LOW]
    assert dev.rejected == {Rejection.DUPLICATE: 2}
    assert dev.battery_pct == 15


# --- encryption ---------------------------------------------------------------------------


def test_encrypted_frame_decodes() -> None:
    dev, radio = device(bindkey=KEY), Radio()
    frame = bytes.fromhex("45 c8 38 8b 9f e9 4c 7c c1 46 c7 e8 03 00 00 9b 7f 52 3c")  # packet 7, help press
    events = dev.decode(radio.adv(frame))
    assert codes(events) == [EventCode.MANUAL_ALARM, EventCode.BATTERY_OK]
    assert events[0].detail == {"packet_id": 7, "button": 1, "press": "short"}


def test_wrong_key_is_a_counted_rejection_with_no_event() -> None:
    dev, radio = device(bindkey=bytes(16)), Radio()
    for packet_id in range(3):
        assert dev.decode(radio.adv(pendant_frame(packet_id, BUTTON_PRESS, key=KEY, counter=500 + packet_id))) == []
    assert dev.rejected == {Rejection.DECRYPTION_FAILED: 3}
    assert dev.last_seen is None and dev.battery_pct is None


def test_tampered_ciphertext_is_rejected() -> None:
    dev, radio = device(bindkey=KEY), Radio()
    frame = bytearray(pendant_frame(1, BUTTON_PRESS, key=KEY, counter=10))
    frame[3] ^= 0x01
    assert dev.decode(radio.adv(bytes(frame))) == []
    assert dev.rejected == {Rejection.DECRYPTION_FAILED: 1}


def test_counter_going_backwards_is_a_replay() -> None:
    dev, radio = device(bindkey=KEY), Radio()
    old = pendant_frame(1, BUTTON_PRESS, key=KEY, counter=500)
    assert EventCode.MANUAL_ALARM in codes(dev.decode(radio.adv(old)))
    assert codes(dev.decode(radio.adv(pendant_frame(2, key=KEY, counter=501)))) == []
    assert dev.decode(radio.adv(old, after=60.0)) == []  # an attacker replays the recorded alarm
    # Lower, at or above the counter-reset ceiling: a replay, not a battery change.
    assert dev.decode(radio.adv(pendant_frame(3, BUTTON_PRESS, key=KEY, counter=COUNTER_RESET_CEILING))) == []
    assert dev.rejected == {Rejection.REPLAYED_COUNTER: 2}
    assert dev.counter_resets == 0


def test_replay_of_an_early_frame_is_rejected_even_below_the_reset_ceiling() -> None:
    dev, radio = device(bindkey=KEY), Radio()
    early = pendant_frame(1, BUTTON_PRESS, key=KEY, counter=5)
    dev.decode(radio.adv(early))
    dev.decode(radio.adv(pendant_frame(2, key=KEY, counter=10)))
    assert dev.decode(radio.adv(early, after=60.0)) == []  # one of the recent frames: a replay
    assert dev.rejected == {Rejection.REPLAYED_COUNTER: 1}
    assert dev.counter_resets == 0


def test_same_counter_with_different_bytes_is_a_replay() -> None:
    dev, radio = device(bindkey=KEY), Radio()
    dev.decode(radio.adv(pendant_frame(1, key=KEY, counter=10)))
    assert dev.decode(radio.adv(pendant_frame(2, BUTTON_PRESS, key=KEY, counter=10))) == []
    assert dev.rejected == {Rejection.REPLAYED_COUNTER: 1}


def test_replay_after_failed_decryptions_is_still_rejected() -> None:
    # bthome-ble stops checking the counter once decryption has failed twice; the hub does not.
    dev, radio = device(bindkey=KEY), Radio()
    old = pendant_frame(1, BUTTON_PRESS, key=KEY, counter=500)
    dev.decode(radio.adv(old))
    dev.decode(radio.adv(pendant_frame(2, key=KEY, counter=600)))
    for counter in (700, 701):
        dev.decode(radio.adv(pendant_frame(3, key=bytes(16), counter=counter)))
    assert dev.decode(radio.adv(old)) == []
    assert dev.rejected == {Rejection.DECRYPTION_FAILED: 2, Rejection.REPLAYED_COUNTER: 1}


def test_reset_encryption_counter_accepts_a_device_restarting_above_the_ceiling() -> None:
    dev, radio = device(bindkey=KEY), Radio()
    dev.decode(radio.adv(pendant_frame(1, key=KEY, counter=5000)))
    restarted = pendant_frame(0, BUTTON_PRESS, key=KEY, counter=3000)  # a device that seeds its counter
    assert dev.decode(radio.adv(restarted)) == []
    dev.reset_encryption_counter()  # the installer changed the battery
    assert codes(dev.decode(radio.adv(restarted, after=120.0))) == [EventCode.MANUAL_ALARM]
    assert dev.decode(radio.adv(pendant_frame(1, key=KEY, counter=2999))) == []  # protection resumes
    assert dev.rejected == {Rejection.REPLAYED_COUNTER: 2}


def test_plain_frame_for_a_keyed_device_is_a_downgrade() -> None:
    dev, radio = device(bindkey=KEY), Radio()
    assert dev.decode(radio.adv(pendant_frame(1, BUTTON_PRESS))) == []
    assert dev.rejected == {Rejection.DOWNGRADE: 1}
    assert dev.last_seen is None


def test_encrypted_frame_for_an_unkeyed_device_is_rejected() -> None:
    dev, radio = device(), Radio()
    assert dev.decode(radio.adv(pendant_frame(1, BUTTON_PRESS, key=KEY, counter=1))) == []
    assert dev.rejected == {Rejection.NO_KEY: 1}


# --- not BTHome ---------------------------------------------------------------------------


@pytest.mark.parametrize(("frame", "uuid", "reason"), [
    (b"", BTHOME_SERVICE_UUID, Rejection.NOT_BTHOME),
    (bytes.fromhex("04 00 05 01 5a"), BTHOME_SERVICE_UUID, Rejection.NOT_BTHOME),  # version 0
    (bytes.fromhex("24 00 05 01 5a"), BTHOME_SERVICE_UUID, Rejection.NOT_BTHOME),  # version 1
    (bytes.fromhex("44 00 05 01 5a"), "0000181c-0000-1000-8000-00805f9b34fb", Rejection.NOT_BTHOME),
    (bytes.fromhex("44"), BTHOME_SERVICE_UUID, Rejection.UNDECODABLE),
    (bytes.fromhex("44 ff 01"), BTHOME_SERVICE_UUID, Rejection.UNDECODABLE),
    (bytes.fromhex("45 00 01 02"), BTHOME_SERVICE_UUID, Rejection.NO_KEY),
])
def test_not_bthome_or_undecodable(frame: bytes, uuid: str, reason: Rejection) -> None:
    dev, radio = device(), Radio()
    assert dev.decode(radio.adv(frame, uuid=uuid)) == []
    assert dev.rejected == {reason: 1}


def test_short_encrypted_frame_is_undecodable() -> None:
    dev, radio = device(bindkey=KEY), Radio()
    assert dev.decode(radio.adv(bytes.fromhex("45 00 01 02 03 04 05 06 07 08"))) == []
    assert dev.rejected == {Rejection.UNDECODABLE: 1}


def test_service_data_uuid_is_case_insensitive() -> None:
    dev, radio = device(), Radio()
    events = dev.decode(radio.adv(pendant_frame(1, BUTTON_PRESS), uuid=BTHOME_SERVICE_UUID.upper()))
    assert EventCode.MANUAL_ALARM in codes(events)


# --- construction -------------------------------------------------------------------------


def test_an_oximeter_is_not_a_bthome_device() -> None:
    with pytest.raises(ValueError):
        device(DeviceKind.OXIMETER)


def test_ids_that_cannot_go_into_a_message_fail_at_pairing() -> None:
    with pytest.raises(ValueError):
        BTHomeDevice(PairedDevice(device_id="Pendant/1", address=ADDRESS, kind=DeviceKind.PENDANT), hub_id="hub-1")
    with pytest.raises(ValueError):
        BTHomeDevice(PairedDevice(device_id="pendant-1", address=ADDRESS, kind=DeviceKind.PENDANT), hub_id="#")


def test_paired_device_and_advertisement_validation() -> None:
    with pytest.raises(ValueError):
        PairedDevice(device_id="p", address=ADDRESS, kind=DeviceKind.PENDANT, bindkey=bytes(15))
    with pytest.raises(ValueError):
        PairedDevice(device_id="p", address=ADDRESS, kind=DeviceKind.PENDANT, expected_interval_s=0)
    with pytest.raises(ValueError):
        Advertisement(address=ADDRESS, service_data={}, rssi=-1, received_at=datetime(2025, 1, 1),
                      monotonic=0.0)


# --- any bytes at all ---------------------------------------------------------------------


@settings(max_examples=property_examples(300), deadline=None)
@given(st.binary(max_size=40), st.sampled_from([None, KEY]), st.sampled_from([DeviceKind.PENDANT, DeviceKind.DOOR]))
def test_random_bytes_never_raise(data: bytes, bindkey: bytes | None, kind: DeviceKind) -> None:
    dev, radio = device(kind, bindkey), Radio()
    for frame in (data, b"\x40" + data, b"\x44" + data, b"\x45" + data, b"\x42" + data):
        events = dev.decode(radio.adv(frame))
        assert isinstance(events, list)
    assert sum(dev.rejected.values()) + (dev.last_seen is not None) >= 1


@settings(max_examples=property_examples(200), deadline=None)
@given(st.lists(st.binary(max_size=24), max_size=6))
def test_random_frames_after_a_good_one_never_raise(frames: list[bytes]) -> None:
    dev, radio = device(bindkey=KEY), Radio()
    dev.decode(radio.adv(pendant_frame(1, key=KEY, counter=10)))
    for frame in frames:
        dev.decode(radio.adv(b"\x45" + frame, after=0.1))
    assert dev.last_seen is not None


def test_replace_keeps_paired_device_frozen() -> None:
    paired = PairedDevice(device_id="door-1", address=ADDRESS, kind=DeviceKind.DOOR)
    assert replace(paired, expected_interval_s=60.0).expected_interval_s == 60.0
    with pytest.raises(AttributeError):
        paired.kind = DeviceKind.BED  # type: ignore[misc]
