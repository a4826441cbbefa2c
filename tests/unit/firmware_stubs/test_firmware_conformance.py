"""Conformance of every firmware stub: what a device encodes is exactly what the hub's decoders read.

BTHome frames (pendant, door, bed, motion, battery, tamper; plain and encrypted) are decoded
with `bthome-ble`; PLX frames with `hub_agent.plx`. Hypothesis drives the device logic over its
whole value ranges, so a frame the stubs can produce and the decoders misread cannot hide.
"""

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_stubs import bed, door, motion, oximeter, pendant, zigbee2mqtt
from firmware_stubs.bthome import (
    BUTTON_DOUBLE_PRESS,
    BUTTON_LONG_PRESS,
    BUTTON_NONE,
    BUTTON_PRESS,
    BTHomeValues,
    Transmitter,
    battery_low,
    encode_encrypted,
    encode_plain,
)
from hub_agent import plx
from telecare_protocol.codes import QualityFlag
from tests.support.examples import property_examples
from tests.unit.firmware_stubs.test_firmware_bthome import decode

MAC = bytes.fromhex("A4C138000002")
ADDRESS = "A4:C1:38:00:00:02"
keys = st.none() | st.binary(min_size=16, max_size=16)
packet_ids = st.integers(0, 255)
counters = st.integers(0, 0xFFFFFFFF - 16)
batteries = st.integers(0, 100)


def tx_for(key: bytes | None, packet_id: int, counter: int) -> Transmitter:
    return Transmitter(mac=MAC, key=key, packet_id=packet_id, counter=counter)


def read(frame: bytes | None, key: bytes | None) -> dict[str, Any]:
    got = decode(frame, key, ADDRESS)
    assert got["encrypted"] is (key is not None)
    return got


# --- BTHome: every object, plain and encrypted --------------------------------------------------

all_values = st.builds(
    BTHomeValues,
    packet_id=packet_ids, battery_pct=st.none() | batteries, opening=st.none() | st.booleans(),
    battery_low=st.none() | st.booleans(), motion=st.none() | st.booleans(), occupancy=st.none() | st.booleans(),
    tamper=st.none() | st.booleans(),
    buttons=st.lists(st.sampled_from([BUTTON_NONE, BUTTON_PRESS, BUTTON_DOUBLE_PRESS, BUTTON_LONG_PRESS]),
                     min_size=2, max_size=3).map(tuple),
)
NAMES = {BUTTON_PRESS: "press", BUTTON_DOUBLE_PRESS: "double_press", BUTTON_LONG_PRESS: "long_press"}


@settings(max_examples=property_examples(150), deadline=None)
@given(all_values, keys, counters)
def test_every_object_decodes_to_exactly_what_was_encoded(values: BTHomeValues, key: bytes | None,
                                                          counter: int) -> None:
    frame = encode_plain(values) if key is None else encode_encrypted(values, key=key, mac=MAC, counter=counter)
    got = read(frame, key)
    expected_binary = {k: v for k, v in (("opening", values.opening), ("battery", values.battery_low),
                                         ("motion", values.motion), ("occupancy", values.occupancy),
                                         ("tamper", values.tamper)) if v is not None}
    assert got["binary"] == expected_binary
    assert got["sensors"].get("packet_id") == values.packet_id
    assert got["sensors"].get("battery") == values.battery_pct
    assert got["events"] == {f"button_{i}": NAMES[c] for i, c in enumerate(values.buttons, 1) if c}


# --- BTHome: each device's logic ------------------------------------------------------------------

@settings(max_examples=property_examples(60), deadline=None)
@given(keys, packet_ids, counters, batteries, st.lists(st.booleans(), min_size=1, max_size=6))
def test_door_frames(key: bytes | None, packet_id: int, counter: int, battery: int, states: list[bool]) -> None:
    d = door.DoorSensor(tx=tx_for(key, packet_id, counter), battery_pct=battery)
    for i, is_open in enumerate(states):
        before = d.is_open
        d, frame = door.set_open(d, is_open)
        assert (frame is None) is (before is is_open)
        if frame is not None:
            got = read(frame, key)
            assert got["binary"] == {"opening": is_open, "battery": battery_low(battery)}
            assert got["sensors"]["battery"] == battery
        if i == 0:
            assert frame is not None and got["sensors"]["packet_id"] == packet_id
    d, frame = door.status(d)
    assert read(frame, key)["binary"]["opening"] is states[-1]


@settings(max_examples=property_examples(60), deadline=None)
@given(keys, packet_ids, counters, batteries, st.lists(st.booleans(), min_size=1, max_size=6))
def test_bed_frames(key: bytes | None, packet_id: int, counter: int, battery: int, states: list[bool]) -> None:
    b = bed.BedSensor(tx=tx_for(key, packet_id, counter), battery_pct=battery)
    for occupied in states:
        before = b.occupied
        b, frame = bed.set_occupied(b, occupied)
        assert (frame is None) is (before is occupied)
        if frame is not None:
            assert read(frame, key)["binary"] == {"occupancy": occupied, "battery": battery_low(battery)}


@settings(max_examples=property_examples(60), deadline=None)
@given(keys, packet_ids, counters, batteries, st.lists(st.floats(0, 200, allow_nan=False), min_size=1, max_size=8))
def test_motion_frames(key: bytes | None, packet_id: int, counter: int, battery: int, gaps: list[float]) -> None:
    m = motion.MotionSensor(tx=tx_for(key, packet_id, counter), battery_pct=battery)
    now = 0.0
    m, frame = motion.triggered(m, now)
    assert read(frame, key)["binary"] == {"motion": True, "battery": battery_low(battery)}
    for gap in gaps:
        now += gap
        was, last = m.motion, m.last_trigger_at
        m, frame = motion.tick(m, now)
        assert last is not None
        expect_clear = was is True and now - last >= m.clear_after_s
        assert (frame is not None) is expect_clear
        if frame is not None:
            assert read(frame, key)["binary"]["motion"] is False
        m, frame = motion.triggered(m, now)
        assert (frame is not None) is (m.motion is True and expect_clear)
        if frame is not None:
            assert read(frame, key)["binary"]["motion"] is True


@settings(max_examples=property_examples(60), deadline=None)
@given(keys, packet_ids, counters, batteries, batteries)
def test_battery_frames_of_every_device(key: bytes | None, packet_id: int, counter: int, start: int,
                                        new: int) -> None:
    tx = tx_for(key, packet_id, counter)
    devices: list[tuple[Any, Any]] = [
        (door.DoorSensor(tx=tx, battery_pct=start), door.set_battery),
        (bed.BedSensor(tx=tx, battery_pct=start), bed.set_battery),
        (motion.MotionSensor(tx=tx, battery_pct=start), motion.set_battery),
        (pendant.Pendant(tx=tx, battery_pct=start), pendant.set_battery),
    ]
    for device, set_battery in devices:
        _, frame = set_battery(device, new)
        assert (frame is None) is (new == start)
        if frame is not None:
            got = read(frame, key)
            assert got["sensors"]["battery"] == new
            assert got["binary"]["battery"] is battery_low(new)
            assert got["sensors"]["packet_id"] == packet_id


@settings(max_examples=property_examples(60), deadline=None)
@given(keys, packet_ids, counters, st.booleans(), batteries)
def test_tamper_frames(key: bytes | None, packet_id: int, counter: int, tamper: bool, battery: int) -> None:
    # No device logic sets tamper yet; the encoder (what every stub uses) is conformance-tested here.
    values = BTHomeValues(packet_id=packet_id, battery_pct=battery, tamper=tamper)
    frame = encode_plain(values) if key is None else encode_encrypted(values, key=key, mac=MAC, counter=counter)
    assert read(frame, key)["binary"] == {"tamper": tamper}


pendant_actions = st.lists(st.tuples(st.sampled_from(["press", "long", "fall", "tick"]), st.floats(0, 40)),
                           min_size=1, max_size=10)


@settings(max_examples=property_examples(80), deadline=None)
@given(keys, packet_ids, counters, batteries, pendant_actions)
def test_pendant_frames(key: bytes | None, packet_id: int, counter: int, battery: int,
                        actions: list[tuple[str, float]]) -> None:
    p = pendant.Pendant(tx=tx_for(key, packet_id, counter), battery_pct=battery)
    now = 0.0
    sent = 0
    for action, gap in actions:
        now += gap
        frame: bytes | None
        if action == "press":
            p, frame = pendant.help_press(p, now)
        elif action == "long":
            p, frame = pendant.help_long_press(p, now)
        elif action == "fall":
            p, frame = pendant.fall_detected(p, now)
        else:
            p, frame = pendant.tick(p, now)
        if frame is None:
            continue
        got = read(frame, key)
        assert got["sensors"]["packet_id"] == (packet_id + sent) % 256
        assert got["sensors"]["battery"] == battery
        assert got["binary"] == {"battery": battery_low(battery)}
        # Exactly the two button objects the device encoded, with the codes it chose.
        help_code, fall_code = (frame[-3], frame[-1]) if key is None else _plain_buttons(frame, key, counter + sent)
        assert got["events"] == {f"button_{i}": NAMES[c] for i, c in ((1, help_code), (2, fall_code)) if c}
        if action == "press":
            assert got["events"]["button_1"] == "press"  # a press is always an alarm
        sent += 1


def _plain_buttons(frame: bytes, key: bytes, counter: int) -> tuple[int, int]:
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM

    from firmware_stubs.bthome import nonce

    assert int.from_bytes(frame[-8:-4], "little") == counter
    plain = AESCCM(key, tag_length=4).decrypt(nonce(MAC, frame[0], counter), frame[1:-8] + frame[-4:], None)
    return plain[-3], plain[-1]


# --- PLX -------------------------------------------------------------------------------------------

def _close(decoded: float | None, value: float | None) -> bool:
    """SFLOAT round trip: None/NaN stay no-value; numbers within half a step of their encoding."""
    if value is None or math.isnan(value):
        return decoded is None
    raw = oximeter.encode_sfloat(value)
    exponent = raw >> 12
    exponent = exponent - 16 if exponent >= 8 else exponent
    return decoded is not None and abs(decoded - value) <= 0.5 * 10.0**exponent + 1e-9 * abs(value)


sfloats = st.none() | st.floats(0, 2045, allow_nan=False) | st.floats(0, 20.45) | st.just(float("nan"))
statuses = st.none() | st.integers(0, 0xFFFF)
device_statuses = st.none() | st.integers(0, 0xFFFFFF)


@settings(max_examples=property_examples(200), deadline=None)
@given(sfloats, sfloats, st.none() | st.tuples(sfloats, sfloats), st.none() | st.tuples(sfloats, sfloats),
       statuses, device_statuses, sfloats)
def test_every_continuous_frame_decodes_to_what_was_encoded(spo2: Any, pulse: Any, fast: Any, slow: Any,
                                                            status: Any, device: Any, pai: Any) -> None:
    m = oximeter.ContinuousMeasurement(spo2, pulse, fast, slow, status, device, pai)
    got = plx.parse_continuous(oximeter.encode_continuous(m))
    assert _close(got.spo2, spo2) and _close(got.pulse_rate, pulse)
    assert (got.spo2_fast is None and got.pulse_rate_fast is None) if fast is None else (
        _close(got.spo2_fast, fast[0]) and _close(got.pulse_rate_fast, fast[1]))
    assert (got.spo2_slow is None and got.pulse_rate_slow is None) if slow is None else (
        _close(got.spo2_slow, slow[0]) and _close(got.pulse_rate_slow, slow[1]))
    assert (got.measurement_status, got.device_sensor_status) == (status, device)
    assert got.quality == plx.status_quality(status, device)
    assert _close(got.pulse_amplitude_index, pai) if pai is not None else got.pulse_amplitude_index is None


timestamps = st.none() | st.tuples(st.integers(1582, 9999), st.integers(1, 12), st.integers(1, 28),
                                   st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))


@settings(max_examples=property_examples(200), deadline=None)
@given(sfloats, sfloats, timestamps, statuses, device_statuses, sfloats, st.booleans())
def test_every_spot_check_frame_decodes_to_what_was_encoded(spo2: Any, pulse: Any, ts: Any, status: Any,
                                                            device: Any, pai: Any, clock_set: bool) -> None:
    m = oximeter.SpotCheckMeasurement(spo2, pulse, ts, status, device, pai, clock_set)
    got = plx.parse_spot_check(oximeter.encode_spot_check(m))
    assert _close(got.spo2, spo2) and _close(got.pulse_rate, pulse)
    assert (None if got.timestamp is None else got.timestamp.timetuple()[:6]) == ts
    assert (got.measurement_status, got.device_sensor_status, got.device_clock_set) == (status, device, clock_set)
    assert got.quality == plx.status_quality(status, device)
    assert _close(got.pulse_amplitude_index, pai) if pai is not None else got.pulse_amplitude_index is None


@pytest.mark.parametrize(("status", "device", "flag"), [
    (oximeter.QUESTIONABLE_MEASUREMENT, 0, QualityFlag.QUESTIONABLE),
    (0, oximeter.LOW_PERFUSION, QualityFlag.LOW_PERFUSION),
    (0, oximeter.SENSOR_UNCONNECTED_TO_USER, QualityFlag.SENSOR_OFF),
    (0, oximeter.SENSOR_DISCONNECTED, QualityFlag.SENSOR_OFF),
])
def test_questionable_low_perfusion_and_sensor_off_reach_the_hub(status: int, device: int,
                                                                  flag: QualityFlag) -> None:
    for frame in (oximeter.encode_continuous(oximeter.ContinuousMeasurement(95, 70, measurement_status=status,
                                                                            device_sensor_status=device)),
                  oximeter.encode_spot_check(oximeter.SpotCheckMeasurement(95, 70, measurement_status=status,
                                                                           device_sensor_status=device))):
        assert flag in plx.parse(plx.CONTINUOUS_UUID if frame[0] & 0x0C == 0x0C else plx.SPOT_CHECK_UUID,
                                 frame).quality


# --- Zigbee2MQTT ----------------------------------------------------------------------------------

@given(st.booleans(), st.none() | batteries, st.none() | st.booleans(), st.none() | st.booleans(),
       st.none() | st.integers(0, 255))
def test_zigbee2mqtt_contact_is_true_when_closed(is_open: bool, battery: Any, low: Any, tamper: Any,
                                                 lqi: Any) -> None:
    common = zigbee2mqtt.Common(battery_pct=battery, battery_low=low, tamper=tamper, linkquality=lqi)
    topic, payload = zigbee2mqtt.contact_state("front door", is_open=is_open, common=common)
    assert topic == "zigbee2mqtt/front door"
    expected = {"contact": not is_open, "battery": battery, "battery_low": low, "tamper": tamper,
                "linkquality": lqi}
    assert json.loads(payload) == {k: v for k, v in expected.items() if v is not None}


def test_zigbee2mqtt_occupancy_and_availability() -> None:
    topic, payload = zigbee2mqtt.occupancy_state("hall pir", occupied=True,
                                                 common=zigbee2mqtt.Common(battery_pct=87, linkquality=120))
    assert (topic, json.loads(payload)) == ("zigbee2mqtt/hall pir", {"occupancy": True, "battery": 87,
                                                                     "linkquality": 120})
    assert zigbee2mqtt.availability("hall pir", online=True) == ("zigbee2mqtt/hall pir/availability",
                                                                 '{"state": "online"}')
    assert json.loads(zigbee2mqtt.availability("hall pir", online=False)[1]) == {"state": "offline"}
    assert zigbee2mqtt.availability("hall pir", online=False, legacy=True)[1] == "offline"


@pytest.mark.parametrize("name", ["", "/door", "door/", "door/#", "a+b"])
def test_zigbee2mqtt_refuses_names_that_break_the_topic(name: str) -> None:
    with pytest.raises(ValueError, match="friendly name"):
        zigbee2mqtt.state_topic(name)


def test_zigbee2mqtt_refuses_out_of_range_fields() -> None:
    with pytest.raises(ValueError, match="battery"):
        zigbee2mqtt.Common(battery_pct=101)
    with pytest.raises(ValueError, match="linkquality"):
        zigbee2mqtt.Common(linkquality=256)
