"""Conformance of the BTHome v2 firmware stubs: every frame decodes with `bthome-ble` to
exactly the values encoded, plain and encrypted, and the device logic sends the frames
docs/devices.md documents."""

import time
from typing import Any

import pytest
from bthome_ble import BTHomeBluetoothDeviceData
from bthome_ble.bthome_v2_encryption import encrypt_payload
from habluetooth import BluetoothServiceInfoBleak
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_stubs import bed, door, pendant
from firmware_stubs.bthome import (
    BTHOME_SERVICE_UUID,
    BUTTON_DOUBLE_PRESS,
    BUTTON_LONG_PRESS,
    BUTTON_NONE,
    BUTTON_PRESS,
    BTHomeValues,
    Transmitter,
    advertising_data,
    battery_low,
    device_info,
    encode_encrypted,
    encode_plain,
    mac_bytes,
    nonce,
    transmit,
)

ADDRESS = "A4:C1:38:00:00:01"
MAC = bytes.fromhex("A4C138000001")
KEY = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932")
BUTTON_NAMES = {BUTTON_PRESS: "press", BUTTON_DOUBLE_PRESS: "double_press", BUTTON_LONG_PRESS: "long_press"}


def service_info(frame: bytes, address: str = ADDRESS) -> BluetoothServiceInfoBleak:
    return BluetoothServiceInfoBleak(
        name=address, address=address, rssi=-60, manufacturer_data={},
        service_data={BTHOME_SERVICE_UUID: frame}, service_uuids=[BTHOME_SERVICE_UUID], source="local",
        device=None,  # type: ignore[arg-type]  # only needed to connect
        advertisement=None, connectable=False, time=time.monotonic(), tx_power=None, raw=None,
    )


def decode(frame: bytes | None, bindkey: bytes | None = None, address: str = ADDRESS) -> dict[str, Any]:
    """What bthome-ble makes of one frame, on a fresh parser."""
    assert frame is not None, "the device sent nothing"
    data = BTHomeBluetoothDeviceData(bindkey=bindkey)
    info = service_info(frame, address)
    update = data.update(info)
    assert data.last_service_info is info, "bthome-ble did not accept the frame"
    if bindkey is not None:
        assert data.bindkey_verified and not data.decryption_failed
    return {
        "sensors": {k.key: v.native_value for k, v in update.entity_values.items() if k.key != "signal_strength"},
        "binary": {k.key: v.native_value for k, v in update.binary_entity_values.items()},
        "events": {k.key: v.event_type for k, v in update.events.items()},
        "sleepy": data.sleepy_device,
        "encrypted": data.encryption_scheme.value != "none",
    }


def expected(values: BTHomeValues) -> dict[str, Any]:
    sensors: dict[str, Any] = {}
    if values.packet_id is not None:
        sensors["packet_id"] = values.packet_id
    if values.battery_pct is not None:
        sensors["battery"] = values.battery_pct
    binary = {key: flag for key, flag in (("opening", values.opening), ("battery", values.battery_low),
                                          ("occupancy", values.occupancy), ("tamper", values.tamper))
              if flag is not None}
    if len(values.buttons) == 1:
        events = {"button": BUTTON_NAMES[values.buttons[0]]} if values.buttons[0] else {}
    else:
        events = {f"button_{i}": BUTTON_NAMES[code] for i, code in enumerate(values.buttons, 1) if code}
    return {"sensors": sensors, "binary": binary, "events": events, "sleepy": values.trigger_based}


values_strategy = st.builds(
    BTHomeValues,
    packet_id=st.integers(0, 255),
    battery_pct=st.none() | st.integers(0, 100),
    opening=st.none() | st.booleans(),
    battery_low=st.none() | st.booleans(),
    occupancy=st.none() | st.booleans(),
    tamper=st.none() | st.booleans(),
    buttons=st.lists(st.sampled_from([BUTTON_NONE, BUTTON_PRESS, BUTTON_DOUBLE_PRESS, BUTTON_LONG_PRESS]),
                     max_size=3).map(tuple),
    trigger_based=st.booleans(),
)


# --- known frames, byte for byte ----------------------------------------------------------


def test_plain_frame_bytes() -> None:
    frame = encode_plain(BTHomeValues(packet_id=5, battery_pct=90, buttons=(BUTTON_PRESS,)))
    assert frame == bytes.fromhex("44 00 05 01 5a 3a 01")
    assert decode(frame) == {"sensors": {"packet_id": 5, "battery": 90}, "binary": {},
                             "events": {"button": "press"}, "sleepy": True, "encrypted": False}


def test_objects_go_out_in_ascending_object_id_order() -> None:
    frame = encode_plain(BTHomeValues(packet_id=1, battery_pct=100, opening=True, battery_low=False,
                                      occupancy=False, tamper=True, buttons=(BUTTON_NONE, BUTTON_LONG_PRESS)))
    assert frame == bytes.fromhex("44 00 01 01 64 11 01 15 00 23 00 2b 01 3a 00 3a 04")


def test_device_info_byte() -> None:
    assert device_info(encrypted=False, trigger_based=False) == 0x40
    assert device_info(encrypted=False, trigger_based=True) == 0x44
    assert device_info(encrypted=True, trigger_based=True) == 0x45


def test_encrypted_frame_bytes() -> None:
    values = BTHomeValues(packet_id=7, battery_pct=90, battery_low=False, buttons=(BUTTON_PRESS, BUTTON_NONE))
    frame = encode_encrypted(values, key=KEY, mac=MAC, counter=1000)
    # device info, ciphertext (9 bytes), counter 1000 little-endian, MIC
    assert frame == bytes.fromhex("45 c8 38 8b 9f e9 4c 7c c1 46 c7 e8 03 00 00 9b 7f 52 3c")
    assert decode(frame, KEY) == {"sensors": {"packet_id": 7, "battery": 90}, "binary": {"battery": False},
                                  "events": {"button_1": "press"}, "sleepy": True, "encrypted": True}


def test_encryption_matches_the_bthome_reference_implementation(capsys: pytest.CaptureFixture[str]) -> None:
    values = BTHomeValues(packet_id=200, battery_pct=3, battery_low=True, buttons=(BUTTON_NONE, BUTTON_PRESS))
    ours = encode_encrypted(values, key=KEY, mac=MAC, counter=0x01020304)
    reference = encrypt_payload(data=bytes.fromhex("00c801031501 3a003a01".replace(" ", "")), mac=MAC,
                                uuid16=b"\xd2\xfc", sw_version=b"\x45", count_id=(0x01020304).to_bytes(4, "little"),
                                key=KEY)
    capsys.readouterr()  # the reference implementation prints its working
    assert ours == reference[2:]  # the reference also returns the 16-bit UUID


def test_nonce_layout() -> None:
    assert nonce(MAC, 0x45, 0x01020304) == bytes.fromhex("a4c138000001 d2fc 45 04030201".replace(" ", ""))


def test_advertising_data_wraps_service_data_in_ad_structures() -> None:
    frame = bytes.fromhex("44 00 05 01 5a 3a 01")
    assert advertising_data(frame) == bytes.fromhex("02 01 06 0a 16 d2 fc 44 00 05 01 5a 3a 01")
    with pytest.raises(ValueError, match="31"):
        advertising_data(bytes(25))


def test_every_stub_frame_fits_a_legacy_advertisement() -> None:
    p = pendant.Pendant(tx=Transmitter(mac=MAC, key=KEY))
    p, frame = pendant.help_press(p, 0.0)
    assert len(advertising_data(frame)) <= 31


# --- conformance with bthome-ble ----------------------------------------------------------


@given(values_strategy)
def test_every_plain_frame_decodes_to_what_was_encoded(values: BTHomeValues) -> None:
    assert decode(encode_plain(values)) == {**expected(values), "encrypted": False}


@settings(deadline=None)
@given(values_strategy, st.binary(min_size=16, max_size=16), st.binary(min_size=6, max_size=6),
       st.integers(0, 0xFFFFFFFF))
def test_every_encrypted_frame_decodes_to_what_was_encoded(values: BTHomeValues, key: bytes, mac: bytes,
                                                           counter: int) -> None:
    address = ":".join(f"{b:02X}" for b in mac)
    frame = encode_encrypted(values, key=key, mac=mac, counter=counter)
    assert int.from_bytes(frame[-8:-4], "little") == counter
    assert decode(frame, key, address) == {**expected(values), "encrypted": True}


def test_an_encrypted_frame_does_not_decode_with_another_key() -> None:
    frame = encode_encrypted(BTHomeValues(packet_id=1, buttons=(BUTTON_PRESS,)), key=KEY, mac=MAC, counter=1)
    data = BTHomeBluetoothDeviceData(bindkey=bytes(16))
    update = data.update(service_info(frame))
    assert data.decryption_failed and not update.events


# --- values and transmitter ---------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{"packet_id": 256}, {"packet_id": -1}, {"battery_pct": 101},
                                    {"battery_pct": -1}, {"buttons": (3,)}])
def test_values_out_of_range_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        BTHomeValues(**kwargs)


def test_mac_bytes() -> None:
    assert mac_bytes("a4:c1:38:00:00:01") == MAC
    with pytest.raises(ValueError):
        mac_bytes("A4:C1:38")


def test_transmitter_refuses_a_short_key() -> None:
    with pytest.raises(ValueError):
        Transmitter(mac=MAC, key=bytes(15))
    with pytest.raises(ValueError):
        encode_encrypted(BTHomeValues(packet_id=0), key=bytes(15), mac=MAC, counter=0)


def test_packet_id_wraps_at_256_and_counter_advances_only_when_keyed() -> None:
    plain = Transmitter(mac=MAC, packet_id=255)
    plain, frame = transmit(plain, BTHomeValues(battery_pct=50))
    assert frame == bytes.fromhex("44 00 ff 01 32")
    assert (plain.packet_id, plain.counter) == (0, 0)
    plain, frame = transmit(plain, BTHomeValues(battery_pct=50))
    assert frame == bytes.fromhex("44 00 00 01 32")

    keyed = Transmitter(mac=MAC, key=KEY, packet_id=255, counter=41)
    keyed, frame = transmit(keyed, BTHomeValues(battery_pct=50))
    assert frame[-8:-4] == (41).to_bytes(4, "little")
    assert (keyed.packet_id, keyed.counter) == (0, 42)
    assert decode(frame, KEY)["sensors"] == {"packet_id": 255, "battery": 50}


def test_battery_low_threshold() -> None:
    assert battery_low(20) and battery_low(0)
    assert not battery_low(21)


# --- pendant ------------------------------------------------------------------------------


def fresh_pendant(battery_pct: int = 90) -> pendant.Pendant:
    return pendant.Pendant(tx=Transmitter(mac=MAC), battery_pct=battery_pct)


def buttons_of(frame: bytes | None) -> dict[str, str]:
    assert frame is not None
    return dict(decode(frame)["events"])


def test_pendant_help_press_frame() -> None:
    p, frame = pendant.help_press(fresh_pendant(), now=0.0)
    assert frame == bytes.fromhex("44 00 00 01 5a 15 00 3a 01 3a 00")
    assert decode(frame)["events"] == {"button_1": "press"}
    assert p.tx.packet_id == 1


def test_pendant_long_press_within_the_window_cancels_the_help_alarm() -> None:
    p, _ = pendant.help_press(fresh_pendant(), now=0.0)
    p, frame = pendant.help_long_press(p, now=10.0)
    assert frame == bytes.fromhex("44 00 01 01 5a 15 00 3a 04 3a 00")
    assert buttons_of(frame) == {"button_1": "long_press"}


def test_pendant_long_press_with_nothing_to_cancel_is_an_alarm() -> None:
    p, _ = pendant.help_press(fresh_pendant(), now=0.0)
    p, frame = pendant.help_long_press(p, now=31.0)  # help cancel window (30 s) has closed
    assert buttons_of(frame) == {"button_1": "press"}
    _, frame = pendant.help_long_press(fresh_pendant(), now=0.0)
    assert buttons_of(frame) == {"button_1": "press"}


def test_pendant_fall_alarm_after_the_cancel_window() -> None:
    p, frame = pendant.fall_detected(fresh_pendant(), now=100.0)
    assert frame is None  # the wearer's cancel window: nothing sent yet
    p, frame = pendant.tick(p, now=119.9)
    assert frame is None
    p, frame = pendant.tick(p, now=120.0)
    assert frame == bytes.fromhex("44 00 00 01 5a 15 00 3a 00 3a 01")
    assert buttons_of(frame) == {"button_2": "press"}
    p, frame = pendant.tick(p, now=200.0)
    assert frame is None  # raised once


def test_pendant_fall_cancelled_by_the_wearer() -> None:
    frame: bytes | None
    p, _ = pendant.fall_detected(fresh_pendant(), now=100.0)
    p, frame = pendant.help_long_press(p, now=110.0)
    assert frame == bytes.fromhex("44 00 00 01 5a 15 00 3a 00 3a 04")
    assert buttons_of(frame) == {"button_2": "long_press"}
    p, frame = pendant.tick(p, now=200.0)
    assert frame is None


def test_pendant_help_press_during_the_fall_window_raises_both_at_once() -> None:
    frame: bytes | None
    p, _ = pendant.fall_detected(fresh_pendant(), now=100.0)
    p, frame = pendant.help_press(p, now=105.0)
    assert buttons_of(frame) == {"button_1": "press", "button_2": "press"}
    _, frame = pendant.tick(p, now=200.0)
    assert frame is None


def test_pendant_late_long_press_does_not_stop_an_expired_fall_alarm() -> None:
    p, _ = pendant.fall_detected(fresh_pendant(), now=100.0)
    p, frame = pendant.help_long_press(p, now=125.0)
    assert buttons_of(frame) == {"button_2": "press"}


def test_pendant_second_fall_keeps_the_first_deadline() -> None:
    p, _ = pendant.fall_detected(fresh_pendant(), now=100.0)
    p, _ = pendant.fall_detected(p, now=110.0)
    _, frame = pendant.tick(p, now=120.0)
    assert buttons_of(frame) == {"button_2": "press"}


def test_pendant_battery_frames() -> None:
    p, frame = pendant.set_battery(fresh_pendant(), 90)
    assert frame is None
    p, frame = pendant.set_battery(p, 20)
    assert frame == bytes.fromhex("44 00 00 01 14 15 01 3a 00 3a 00")
    assert decode(frame) == {"sensors": {"packet_id": 0, "battery": 20}, "binary": {"battery": True},
                             "events": {}, "sleepy": True, "encrypted": False}
    with pytest.raises(ValueError):
        pendant.set_battery(p, 101)
    _, frame = pendant.status(p)
    assert frame == bytes.fromhex("44 00 01 01 14 15 01 3a 00 3a 00")


def test_keyed_pendant_frames_decrypt() -> None:
    p = pendant.Pendant(tx=Transmitter(mac=MAC, key=KEY, counter=500))
    p, frame = pendant.help_press(p, now=0.0)
    assert decode(frame, KEY)["events"] == {"button_1": "press"}
    assert p.tx.counter == 501


# --- door and bed -------------------------------------------------------------------------


def test_door_frames_one_per_change() -> None:
    d = door.DoorSensor(tx=Transmitter(mac=MAC), battery_pct=80)
    d, frame = door.set_open(d, True)
    assert frame == bytes.fromhex("44 00 00 01 50 11 01 15 00")
    assert decode(frame)["binary"] == {"opening": True, "battery": False}
    d, frame = door.set_open(d, True)
    assert frame is None
    d, frame = door.set_open(d, False)
    assert frame == bytes.fromhex("44 00 01 01 50 11 00 15 00")
    d, frame = door.set_battery(d, 80)
    assert frame is None
    d, frame = door.set_battery(d, 15)
    assert frame == bytes.fromhex("44 00 02 01 0f 11 00 15 01")
    with pytest.raises(ValueError):
        door.set_battery(d, -1)
    _, frame = door.status(d)
    assert frame == bytes.fromhex("44 00 03 01 0f 11 00 15 01")


def test_door_status_before_first_reading_has_no_opening_object() -> None:
    _, frame = door.status(door.DoorSensor(tx=Transmitter(mac=MAC)))
    assert frame == bytes.fromhex("44 00 00 01 64 15 00")


def test_bed_frames_one_per_change() -> None:
    b = bed.BedSensor(tx=Transmitter(mac=MAC, key=KEY, counter=7))
    b, frame = bed.set_occupied(b, True)
    assert decode(frame, KEY)["binary"] == {"battery": False, "occupancy": True}
    b, frame = bed.set_occupied(b, True)
    assert frame is None
    b, frame = bed.set_occupied(b, False)
    assert frame is not None
    assert decode(frame, KEY)["binary"] == {"battery": False, "occupancy": False}
    b, frame = bed.set_battery(b, 100)
    assert frame is None
    b, frame = bed.set_battery(b, 5)
    assert frame is not None
    with pytest.raises(ValueError):
        bed.set_battery(b, 200)
    b, frame = bed.status(b)
    assert decode(frame, KEY)["sensors"] == {"packet_id": 3, "battery": 5}
    assert b.tx.counter == 11


def test_plain_bed_frame_bytes() -> None:
    _, frame = bed.set_occupied(bed.BedSensor(tx=Transmitter(mac=MAC)), True)
    assert frame == bytes.fromhex("44 00 00 01 64 15 00 23 01")
