"""The PLX (Pulse Oximeter Service) frames: hand-assembled spec frames, conformance between
firmware_stubs.oximeter and hub_agent.plx, and the readings the hub makes of them."""

import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_stubs import oximeter
from firmware_stubs.oximeter import (
    ContinuousMeasurement,
    SpotCheckMeasurement,
    encode_continuous,
    encode_sfloat,
    encode_spot_check,
    probe_off_continuous,
    probe_off_spot_check,
)
from hub_agent.plx import (
    CONTINUOUS_UUID,
    SPOT_CHECK_UUID,
    PlxError,
    PlxKind,
    PlxMeasurement,
    decode_sfloat,
    parse,
    parse_continuous,
    parse_spot_check,
    plx_readings,
    status_quality,
)
from telecare_protocol.codes import Metric, QualityFlag

NOW = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
IDS: dict[str, Any] = {"hub_id": "hub-1", "device_id": "oximeter-1", "source_ts": NOW}

# A spot-check frame assembled by hand from the PLX specification.
SPOT_CHECK_FRAME = bytes.fromhex(
    "0f"  # flags: timestamp, measurement status, device & sensor status, PAI present; clock set
    "6100"  # SpO2 97 (exponent 0, mantissa 97)
    "4800"  # pulse rate 72
    "e807 03 0f 08 1e 05"  # 2024-03-15 08:30:05
    "8001"  # measurement status: validated (bit 7), fully qualified (bit 8)
    "200000"  # device & sensor status: low perfusion (bit 5)
    "23f0"  # pulse amplitude index 3.5 (exponent -1, mantissa 35)
    .replace(" ", "")
)

CONTINUOUS_FRAME = bytes.fromhex(
    "1f"  # flags: fast, slow, measurement status, device & sensor status, PAI present
    "6000 4600"  # normal: SpO2 96, PR 70
    "5f00 4700"  # fast: SpO2 95, PR 71
    "cff3 4500"  # slow: SpO2 97.5 (975 x 10^-1), PR 69
    "2000"  # measurement ongoing (bit 5)
    "000100"  # questionable pulse (bit 8)
    "7de0"  # PAI 1.25 (125 x 10^-2)
    .replace(" ", "")
)


# --- SFLOAT -------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "value"), [
    (0x0061, 97.0), (0xF023, 3.5), (0x0000, 0.0), (0xFFFF, -0.1), (0x07FD, 2045.0), (0x0803, -2045.0),
    (0x1001, 10.0), (0x8001, 1e-8), (0x77FD, 2045e7), (0xE07D, 1.25),
])
def test_sfloat_decode(raw: int, value: float) -> None:
    assert decode_sfloat(raw) == value


@pytest.mark.parametrize("raw", [0x07FF, 0x0800, 0x07FE, 0x0802, 0x0801, 0xF7FF, 0x17FE])
def test_sfloat_specials_decode_to_none(raw: int) -> None:
    assert decode_sfloat(raw) is None


def test_sfloat_decode_refuses_more_than_16_bits() -> None:
    with pytest.raises(PlxError):
        decode_sfloat(0x10000)


@pytest.mark.parametrize(("value", "raw"), [
    (97, 0x0061), (98.0, 0x0062), (70, 0x0046), (100, 0x0064), (30000, 0x212C),
    (3.5, 0xF023), (0, 0x0000), (1.25, 0xE07D), (-0.1, 0xFFFF),
    (None, 0x07FF), (math.nan, 0x07FF), (math.inf, 0x07FE), (-math.inf, 0x0802),
    (3e10, 0x07FE), (-3e10, 0x0802), (1e300, 0x07FE), (2045.5e7, 0x07FE), (1e-12, 0x0000),
    (97.34, 0xF3CD),  # 9734 x 10^-2 does not fit: the finest that does is 973 x 10^-1
])
def test_sfloat_encode(value: float | None, raw: int) -> None:
    assert encode_sfloat(value) == raw


@given(st.integers(-2045, 2045), st.integers(-8, 7))
def test_sfloat_round_trip_for_every_representable_value(mantissa: int, exponent: int) -> None:
    raw = ((exponent & 0xF) << 12) | (mantissa & 0xFFF)
    value = decode_sfloat(raw)
    assert value is not None
    assert decode_sfloat(encode_sfloat(value)) == value


@given(st.floats(min_value=-2045e7, max_value=2045e7, allow_nan=False))
def test_sfloat_encode_is_within_half_a_step(value: float) -> None:
    raw = encode_sfloat(value)
    decoded = decode_sfloat(raw)
    assert decoded is not None
    step = 10.0 ** (((raw >> 12) ^ 0x8) - 0x8)
    assert abs(decoded - value) <= step / 2 * (1 + 1e-9) + 1e-300


# --- hand-assembled frames ----------------------------------------------------------------


def test_spot_check_frame_from_the_spec() -> None:
    m = parse_spot_check(SPOT_CHECK_FRAME)
    assert m == PlxMeasurement(
        kind=PlxKind.SPOT_CHECK, spo2=97.0, pulse_rate=72.0, quality=(QualityFlag.LOW_PERFUSION,),
        timestamp=datetime(2024, 3, 15, 8, 30, 5), device_clock_set=True,
        measurement_status=0x0180, device_sensor_status=0x000020, pulse_amplitude_index=3.5,
    )
    assert m.spo2_fast is None and m.spo2_slow is None


def test_spot_check_stub_encodes_the_spec_frame() -> None:
    assert encode_spot_check(SpotCheckMeasurement(
        spo2=97, pulse_rate=72, timestamp=(2024, 3, 15, 8, 30, 5),
        measurement_status=oximeter.VALIDATED_DATA | oximeter.FULLY_QUALIFIED_DATA,
        device_sensor_status=oximeter.LOW_PERFUSION, pulse_amplitude_index=3.5,
    )) == SPOT_CHECK_FRAME


def test_continuous_frame_from_the_spec() -> None:
    m = parse_continuous(CONTINUOUS_FRAME)
    assert m == PlxMeasurement(
        kind=PlxKind.CONTINUOUS, spo2=96.0, pulse_rate=70.0,
        quality=(QualityFlag.QUESTIONABLE, QualityFlag.MEASUREMENT_ONGOING),
        spo2_fast=95.0, pulse_rate_fast=71.0, spo2_slow=97.5, pulse_rate_slow=69.0,
        measurement_status=0x0020, device_sensor_status=0x000100, pulse_amplitude_index=1.25,
    )
    assert encode_continuous(ContinuousMeasurement(
        spo2=96, pulse_rate=70, fast=(95, 71), slow=(97.5, 69), measurement_status=oximeter.MEASUREMENT_ONGOING,
        device_sensor_status=oximeter.QUESTIONABLE_PULSE, pulse_amplitude_index=1.25,
    )) == CONTINUOUS_FRAME


def test_minimal_frames() -> None:
    assert parse_continuous(bytes.fromhex("00 6200 3c00")) == PlxMeasurement(
        kind=PlxKind.CONTINUOUS, spo2=98.0, pulse_rate=60.0)
    spot = parse_spot_check(bytes.fromhex("10 6200 3c00"))
    assert spot.device_clock_set is False and spot.timestamp is None


def test_probe_off_frames() -> None:
    assert probe_off_continuous() == bytes.fromhex("0c ff07 ff07 0020 000800")
    for m in (parse_continuous(probe_off_continuous()), parse_spot_check(probe_off_spot_check())):
        assert m.spo2 is None and m.pulse_rate is None
        assert m.quality == (QualityFlag.SENSOR_OFF, QualityFlag.DATA_UNAVAILABLE)
    spot = parse_spot_check(probe_off_spot_check((2025, 1, 6, 9, 0, 0), device_clock_set=False))
    assert spot.timestamp == datetime(2025, 1, 6, 9, 0, 0)
    assert spot.device_clock_set is False


def test_unknown_timestamp_fields_mean_no_timestamp() -> None:
    frame = bytes.fromhex("01 6200 3c00 0000 00 00 00 00 00")
    assert parse_spot_check(frame).timestamp is None


@pytest.mark.parametrize("timestamp", ["e807 0d 0f 08 1e 05", "e807 02 1e 08 1e 05", "e807 03 0f 18 1e 05",
                                       "e807 03 0f 08 3c 05", "0100 03 0f 08 1e 05"])
def test_impossible_timestamp_is_malformed(timestamp: str) -> None:
    with pytest.raises(PlxError, match="timestamp"):
        parse_spot_check(bytes.fromhex("01 6200 3c00" + timestamp.replace(" ", "")))


def test_parse_dispatches_on_the_characteristic() -> None:
    assert parse(SPOT_CHECK_UUID, SPOT_CHECK_FRAME).kind is PlxKind.SPOT_CHECK
    assert parse(CONTINUOUS_UUID.upper(), bytearray(CONTINUOUS_FRAME)).kind is PlxKind.CONTINUOUS
    with pytest.raises(PlxError):
        parse("00002a60-0000-1000-8000-00805f9b34fb", CONTINUOUS_FRAME)


def test_trailing_octets_are_ignored() -> None:
    assert parse_spot_check(SPOT_CHECK_FRAME + b"\x00\x01") == parse_spot_check(SPOT_CHECK_FRAME)


@pytest.mark.parametrize(("parser", "frame"), [(parse_spot_check, SPOT_CHECK_FRAME),
                                               (parse_continuous, CONTINUOUS_FRAME)])
def test_every_truncation_is_a_plx_error(parser: Any, frame: bytes) -> None:
    for length in range(len(frame)):
        with pytest.raises(PlxError):
            parser(frame[:length])


def test_non_bytes_is_a_plx_error() -> None:
    with pytest.raises(PlxError):
        parse_continuous("0062003c00")  # type: ignore[arg-type]


@given(st.binary(max_size=40))
def test_random_bytes_raise_nothing_but_plx_error(data: bytes) -> None:
    for parser in (parse_continuous, parse_spot_check):
        try:
            m = parser(data)
        except PlxError:
            continue
        plx_readings(m, **IDS)  # whatever parses also makes valid readings


# --- status bits --------------------------------------------------------------------------


@pytest.mark.parametrize(("measurement", "device", "flags"), [
    (oximeter.QUESTIONABLE_MEASUREMENT, None, (QualityFlag.QUESTIONABLE,)),
    (oximeter.INVALID_MEASUREMENT, None, (QualityFlag.INVALID,)),
    (oximeter.MEASUREMENT_UNAVAILABLE, None, (QualityFlag.DATA_UNAVAILABLE,)),
    (oximeter.MEASUREMENT_ONGOING, None, (QualityFlag.MEASUREMENT_ONGOING,)),
    (oximeter.EARLY_ESTIMATED_DATA, None, (QualityFlag.EARLY_ESTIMATE,)),
    (oximeter.DATA_FOR_TESTING, None, (QualityFlag.INVALID,)),
    (oximeter.DATA_FOR_DEMONSTRATION, None, (QualityFlag.INVALID,)),
    (oximeter.VALIDATED_DATA | oximeter.FULLY_QUALIFIED_DATA | oximeter.DATA_FROM_MEASUREMENT_STORAGE, None, ()),
    (None, oximeter.LOW_PERFUSION, (QualityFlag.LOW_PERFUSION,)),
    (None, oximeter.SENSOR_UNCONNECTED_TO_USER, (QualityFlag.SENSOR_OFF,)),
    (None, oximeter.SENSOR_DISCONNECTED, (QualityFlag.SENSOR_OFF,)),
    (None, oximeter.SENSOR_UNCONNECTED_TO_USER | oximeter.SENSOR_DISCONNECTED, (QualityFlag.SENSOR_OFF,)),
    (None, oximeter.EQUIPMENT_MALFUNCTION, (QualityFlag.INVALID,)),
    (None, oximeter.POOR_SIGNAL | oximeter.SENSOR_DISPLACED, (QualityFlag.QUESTIONABLE,)),
    (None, oximeter.EXTENDED_DISPLAY_UPDATE_ONGOING, ()),
    (0xFFFF, 0xFFFFFF, tuple(f for f in QualityFlag if f is not QualityFlag.NO_SIGNAL)),  # no_signal: the value's
    (None, None, ()),
])
def test_status_bits_become_quality_flags(measurement: int | None, device: int | None,
                                          flags: tuple[QualityFlag, ...]) -> None:
    assert status_quality(measurement, device) == flags


# --- conformance: stub frames decode to exactly what was encoded ---------------------------

spo2_values = st.none() | st.integers(0, 100).map(float) | st.integers(0, 1000).map(lambda v: v / 10)
pulse_values = st.none() | st.integers(0, 300).map(float)
statuses = st.none() | st.integers(0, 0xFFFF)
device_statuses = st.none() | st.integers(0, 0xFFFFFF)
pai_values = st.none() | st.integers(0, 2000).map(lambda v: v / 100)


@given(spo2_values, pulse_values, st.none() | st.tuples(spo2_values, pulse_values),
       st.none() | st.tuples(spo2_values, pulse_values), statuses, device_statuses, pai_values)
def test_continuous_round_trip(spo2: float | None, pulse: float | None, fast: Any, slow: Any,
                               status: int | None, device: int | None, pai: float | None) -> None:
    m = parse_continuous(encode_continuous(ContinuousMeasurement(
        spo2=spo2, pulse_rate=pulse, fast=fast, slow=slow, measurement_status=status,
        device_sensor_status=device, pulse_amplitude_index=pai)))
    assert (m.spo2, m.pulse_rate) == (spo2, pulse)
    assert (m.spo2_fast, m.pulse_rate_fast) == (fast or (None, None))
    assert (m.spo2_slow, m.pulse_rate_slow) == (slow or (None, None))
    assert (m.measurement_status, m.device_sensor_status, m.pulse_amplitude_index) == (status, device, pai)
    assert m.quality == status_quality(status, device)


timestamps = st.none() | st.datetimes(min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31)).map(
    lambda d: (d.year, d.month, d.day, d.hour, d.minute, d.second))


@given(spo2_values, pulse_values, timestamps, statuses, device_statuses, pai_values, st.booleans())
def test_spot_check_round_trip(spo2: float | None, pulse: float | None, timestamp: Any, status: int | None,
                               device: int | None, pai: float | None, clock_set: bool) -> None:
    m = parse_spot_check(encode_spot_check(SpotCheckMeasurement(
        spo2=spo2, pulse_rate=pulse, timestamp=timestamp, measurement_status=status,
        device_sensor_status=device, pulse_amplitude_index=pai, device_clock_set=clock_set)))
    assert (m.spo2, m.pulse_rate, m.pulse_amplitude_index) == (spo2, pulse, pai)
    assert m.timestamp == (None if timestamp is None else datetime(*timestamp))
    assert (m.measurement_status, m.device_sensor_status, m.device_clock_set) == (status, device, clock_set)


@pytest.mark.parametrize("kwargs", [{"measurement_status": 0x10000}, {"device_sensor_status": 0x1000000},
                                    {"timestamp": (2024, 13, 1, 0, 0, 0)}, {"timestamp": (1000, 1, 1, 0, 0, 0)}])
def test_stub_refuses_impossible_fields(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SpotCheckMeasurement(spo2=97, pulse_rate=60, **kwargs)


# --- readings -----------------------------------------------------------------------------


def test_readings_of_a_good_measurement() -> None:
    hub_ts = datetime(2025, 1, 6, 9, 0, 1, tzinfo=UTC)
    spo2, pulse = plx_readings(parse_spot_check(SPOT_CHECK_FRAME), **IDS, hub_ts=hub_ts)
    assert (spo2.metric, spo2.value, spo2.unit, spo2.quality) == (Metric.SPO2, 97.0, "%", (QualityFlag.LOW_PERFUSION,))
    assert (pulse.metric, pulse.value, pulse.unit) == (Metric.PULSE_RATE, 72.0, "/min")
    assert spo2.source_ts == NOW and spo2.hub_ts == hub_ts
    assert (spo2.hub_id, spo2.device_id) == ("hub-1", "oximeter-1")
    assert spo2.id != pulse.id


def test_probe_off_readings_are_visible_gaps() -> None:
    for reading in plx_readings(parse_continuous(probe_off_continuous()), **IDS):
        assert reading.value is None
        assert reading.quality == (QualityFlag.SENSOR_OFF, QualityFlag.DATA_UNAVAILABLE)


def test_nan_without_a_reason_gets_data_unavailable() -> None:
    spo2, pulse = plx_readings(parse_continuous(bytes.fromhex("00 ff07 4800")), **IDS)
    assert spo2.value is None and spo2.quality == (QualityFlag.DATA_UNAVAILABLE,)
    assert pulse.value == 72.0 and pulse.quality == ()


def test_questionable_value_is_kept_with_its_flag() -> None:
    frame = encode_continuous(ContinuousMeasurement(spo2=88, pulse_rate=120,
                                                    measurement_status=oximeter.QUESTIONABLE_MEASUREMENT))
    spo2, _ = plx_readings(parse_continuous(frame), **IDS)
    assert spo2.value == 88.0 and spo2.quality == (QualityFlag.QUESTIONABLE,)


@pytest.mark.parametrize("frame", ["00 ff00 4800",  # SpO2 255 %
                                   "00 1110 4800",  # 17 x 10^1 = 170 %
                                   "00 ff0f 4800",  # -1 %
                                   "00 fe07 4800"])  # +INF
def test_impossible_spo2_becomes_a_flagged_gap(frame: str) -> None:
    spo2, pulse = plx_readings(parse_continuous(bytes.fromhex(frame)), **IDS)
    assert spo2.value is None
    assert QualityFlag.INVALID in spo2.quality or QualityFlag.DATA_UNAVAILABLE in spo2.quality
    assert pulse.value == 72.0


def test_out_of_range_value_is_marked_invalid() -> None:
    spo2, pulse = plx_readings(parse_continuous(bytes.fromhex("00 6500 2d01")), **IDS)  # 101 %, 301 /min
    assert spo2.value is None and spo2.quality == (QualityFlag.INVALID,)
    assert pulse.value is None and pulse.quality == (QualityFlag.INVALID,)
    nan = PlxMeasurement(kind=PlxKind.CONTINUOUS, spo2=math.nan, pulse_rate=math.inf)
    assert [r.quality for r in plx_readings(nan, **IDS)] == [(QualityFlag.INVALID,)] * 2


@given(st.integers(0, 100), st.integers(0, 300))
def test_readings_carry_the_encoded_values(spo2: int, pulse: int) -> None:
    """Every value is kept; one outside what an oximeter measures (SpO2 50-100 %, pulse 20-250 /min) is flagged."""
    frame = encode_continuous(ContinuousMeasurement(spo2=spo2, pulse_rate=pulse))
    readings = plx_readings(parse_continuous(frame), **IDS)
    no_signal = (QualityFlag.NO_SIGNAL,)
    assert [(r.value, r.quality) for r in readings] == [(spo2, () if spo2 >= 50 else no_signal),
                                                        (pulse, () if 20 <= pulse <= 250 else no_signal)]


def test_zeros_with_no_status_bits_are_flagged_no_signal_at_source() -> None:
    """A monitor with no signal sends SpO2 0 % and pulse 0 and sets no status bit: the hub keeps the values
    (what the device said) and flags them, so nothing downstream takes them for a desaturation or a
    bradycardia."""
    for frame in (bytes.fromhex("00 0000 0000"), encode_spot_check(SpotCheckMeasurement(spo2=0, pulse_rate=0))):
        spo2, pulse = plx_readings(parse(CONTINUOUS_UUID if len(frame) == 5 else SPOT_CHECK_UUID, frame), **IDS)
        assert (spo2.value, spo2.quality) == (0.0, (QualityFlag.NO_SIGNAL,))
        assert (pulse.value, pulse.quality) == (0.0, (QualityFlag.NO_SIGNAL,))


@pytest.mark.parametrize(("spo2", "pulse", "flagged"), [
    (50, 20, (False, False)), (100, 250, (False, False)), (49, 19, (True, True)), (97, 251, (False, True)),
    (97, 255, (False, True)),  # 255: the largest value of a byte, a common "no pulse" placeholder
])
def test_the_measurable_range_edges(spo2: int, pulse: int, flagged: tuple[bool, bool]) -> None:
    readings = plx_readings(parse_continuous(encode_continuous(ContinuousMeasurement(spo2=spo2, pulse_rate=pulse))),
                            **IDS)
    assert tuple(QualityFlag.NO_SIGNAL in r.quality for r in readings) == flagged
    assert [r.value for r in readings] == [spo2, pulse]


def test_a_zero_with_a_probe_off_bit_says_both() -> None:
    frame = encode_continuous(ContinuousMeasurement(spo2=0, pulse_rate=0,
                                                    device_sensor_status=oximeter.PROBE_OFF_DEVICE_STATUS))
    for reading in plx_readings(parse_continuous(frame), **IDS):
        assert reading.value == 0.0
        assert reading.quality == (QualityFlag.SENSOR_OFF, QualityFlag.NO_SIGNAL)
