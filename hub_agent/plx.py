"""Hub-side parser for the Bluetooth SIG Pulse Oximeter Service (PLX, 0x1822).

Parses the two measurement characteristics, Continuous Measurement (0x2A5F) and
Spot-check Measurement (0x2A5E), into a `PlxMeasurement`, and turns a measurement into
protocol `Reading`s. The layouts are in firmware_stubs/oximeter.py and docs/devices.md.

Pure and table-driven: each characteristic is a table of (flag bit, field, size) rows
walked in order; each status word is a table of (bit, quality flag) rows. Any truncated
or malformed frame raises `PlxError` (a `ValueError`), and nothing else. Octets after the
last field the flags announce are ignored, for forward compatibility.

Quality: the status bits become `QualityFlag`s. The protocol's flags map as
questionable -> QUESTIONABLE, invalid -> INVALID, measurement unavailable ->
DATA_UNAVAILABLE, measurement ongoing -> MEASUREMENT_ONGOING, early estimate ->
EARLY_ESTIMATE, low perfusion -> LOW_PERFUSION, sensor unconnected to user or sensor
disconnected -> SENSOR_OFF. The other PLX status bits that say a value cannot be trusted
map conservatively: signal problems, questionable pulse, interference, unknown or
displaced sensor and calibration -> QUESTIONABLE; equipment or sensor malfunction and
demonstration or test data (not a measurement of this person) -> INVALID; signal analysis
ongoing -> MEASUREMENT_ONGOING. A flag never deletes a value; the caller decides. One flag
comes from the value, not a bit: NO_SIGNAL, for a value outside what an oximeter measures
(`telecare_protocol.codes.MEASURABLE`), as a device with no signal sends 0 % and 0 /min with
no status bit set (`plx_readings`).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from telecare_protocol.codes import METRICS, NO_VALUE_REASONS, Metric, QualityFlag, signal_quality
from telecare_protocol.messages import Reading

PLX_SERVICE_UUID = "00001822-0000-1000-8000-00805f9b34fb"
SPOT_CHECK_UUID = "00002a5e-0000-1000-8000-00805f9b34fb"
CONTINUOUS_UUID = "00002a5f-0000-1000-8000-00805f9b34fb"


class PlxError(ValueError):
    """A PLX frame that is truncated or malformed."""


class PlxKind(StrEnum):
    CONTINUOUS = "continuous"
    SPOT_CHECK = "spot_check"


# --- SFLOAT (IEEE 11073-20601) ------------------------------------------------------------

SFLOAT_NAN = 0x07FF
SFLOAT_NRES = 0x0800
SFLOAT_POS_INF = 0x07FE
SFLOAT_NEG_INF = 0x0802
SFLOAT_RESERVED = 0x0801
_RESERVED_MANTISSAS = frozenset({SFLOAT_NAN, SFLOAT_NRES, SFLOAT_POS_INF, SFLOAT_NEG_INF, SFLOAT_RESERVED})


def decode_sfloat(raw: int) -> float | None:
    """A 16-bit SFLOAT as a float; None for NaN, NRes, +-INF and the reserved value.

    A mantissa in the reserved range (0x7FE-0x802) is never read as a number, whatever
    the exponent: real numbers use mantissas -2045..2045.
    """
    if not 0 <= raw <= 0xFFFF:
        raise PlxError(f"SFLOAT {raw:#x} is not 16 bits")
    mantissa = raw & 0x0FFF
    if mantissa in _RESERVED_MANTISSAS:
        return None
    exponent = raw >> 12
    if exponent >= 0x8:
        exponent -= 0x10
    if mantissa >= 0x800:
        mantissa -= 0x1000
    if exponent >= 0:
        return float(mantissa * 10**exponent)
    return mantissa / float(10**-exponent)  # 10**k is exact in a float for k <= 8


# --- status bits --------------------------------------------------------------------------

MEASUREMENT_STATUS_QUALITY: tuple[tuple[int, QualityFlag], ...] = (
    (5, QualityFlag.MEASUREMENT_ONGOING),
    (6, QualityFlag.EARLY_ESTIMATE),
    (10, QualityFlag.INVALID),  # data for demonstration
    (11, QualityFlag.INVALID),  # data for testing
    (12, QualityFlag.QUESTIONABLE),  # calibration ongoing
    (13, QualityFlag.DATA_UNAVAILABLE),  # measurement unavailable
    (14, QualityFlag.QUESTIONABLE),  # questionable measurement detected
    (15, QualityFlag.INVALID),  # invalid measurement detected
)
"""Measurement status (uint16) bit -> quality flag. Bits 7 validated, 8 fully qualified and
9 from measurement storage say nothing against the value."""

DEVICE_STATUS_QUALITY: tuple[tuple[int, QualityFlag], ...] = (
    (1, QualityFlag.INVALID),  # equipment malfunction detected
    (2, QualityFlag.QUESTIONABLE),  # signal processing irregularity detected
    (3, QualityFlag.QUESTIONABLE),  # inadequate signal detected
    (4, QualityFlag.QUESTIONABLE),  # poor signal detected
    (5, QualityFlag.LOW_PERFUSION),  # low perfusion detected
    (6, QualityFlag.QUESTIONABLE),  # erratic signal detected
    (7, QualityFlag.QUESTIONABLE),  # nonpulsatile signal detected
    (8, QualityFlag.QUESTIONABLE),  # questionable pulse detected
    (9, QualityFlag.MEASUREMENT_ONGOING),  # signal analysis ongoing
    (10, QualityFlag.QUESTIONABLE),  # sensor interference detected
    (11, QualityFlag.SENSOR_OFF),  # sensor unconnected to user
    (12, QualityFlag.QUESTIONABLE),  # unknown sensor connected
    (13, QualityFlag.QUESTIONABLE),  # sensor displaced
    (14, QualityFlag.INVALID),  # sensor malfunctioning
    (15, QualityFlag.SENSOR_OFF),  # sensor disconnected
)
"""Device and sensor status (uint24) bit -> quality flag. Bit 0 (extended display update
ongoing) says nothing about the value."""

_FLAG_ORDER = {flag: i for i, flag in enumerate(QualityFlag)}


def _ordered(flags: Iterable[QualityFlag]) -> tuple[QualityFlag, ...]:
    return tuple(sorted(set(flags), key=_FLAG_ORDER.__getitem__))


def status_quality(measurement_status: int | None, device_sensor_status: int | None) -> tuple[QualityFlag, ...]:
    """The quality flags the two status words raise, each once, in `QualityFlag` order."""
    flags: list[QualityFlag] = []
    for word, table in ((measurement_status, MEASUREMENT_STATUS_QUALITY),
                        (device_sensor_status, DEVICE_STATUS_QUALITY)):
        if word is not None:
            flags.extend(flag for bit, flag in table if word >> bit & 1)
    return _ordered(flags)


# --- frames -------------------------------------------------------------------------------

_ALWAYS = 0
_SIZES = {"sfloat_pair": 4, "sfloat": 2, "timestamp": 7, "uint16": 2, "uint24": 3}

CONTINUOUS_FIELDS: tuple[tuple[int, str, str], ...] = (
    (_ALWAYS, "normal", "sfloat_pair"),
    (0x01, "fast", "sfloat_pair"),
    (0x02, "slow", "sfloat_pair"),
    (0x04, "measurement_status", "uint16"),
    (0x08, "device_sensor_status", "uint24"),
    (0x10, "pulse_amplitude_index", "sfloat"),
)
"""Continuous Measurement (0x2A5F): (flag bit that makes the field present, field, type)."""

SPOT_CHECK_FIELDS: tuple[tuple[int, str, str], ...] = (
    (_ALWAYS, "normal", "sfloat_pair"),
    (0x01, "timestamp", "timestamp"),
    (0x02, "measurement_status", "uint16"),
    (0x04, "device_sensor_status", "uint24"),
    (0x08, "pulse_amplitude_index", "sfloat"),
)
"""Spot-check Measurement (0x2A5E): (flag bit that makes the field present, field, type)."""

SPOT_CHECK_CLOCK_NOT_SET = 0x10


@dataclass(frozen=True)
class PlxMeasurement:
    """One decoded PLX measurement. A value is None when the device sent a special value
    (NaN, NRes, +-INF) or, for the optional fields, did not send the field."""

    kind: PlxKind
    spo2: float | None
    """SpO2 in %: SpO2PR-Normal (continuous) or SpO2PR-Spot-Check."""
    pulse_rate: float | None
    """Pulse rate in beats per minute."""
    quality: tuple[QualityFlag, ...] = ()
    """The quality flags the status fields raise."""
    spo2_fast: float | None = None
    pulse_rate_fast: float | None = None
    spo2_slow: float | None = None
    pulse_rate_slow: float | None = None
    timestamp: datetime | None = None
    """Spot check only: the device's clock when it measured. Naive (the device's local
    time, no zone); None when absent or when the device sent year, month or day 0."""
    device_clock_set: bool | None = None
    """Spot check only: False when the device says its clock is not set."""
    measurement_status: int | None = None
    device_sensor_status: int | None = None
    pulse_amplitude_index: float | None = None


def _coerce(data: object) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise PlxError(f"a PLX frame is bytes, not {type(data).__name__}")


def _split(data: bytes, table: tuple[tuple[int, str, str], ...]) -> tuple[int, dict[str, bytes]]:
    if not data:
        raise PlxError("empty frame: no flags byte")
    flags = data[0]
    fields: dict[str, bytes] = {}
    offset = 1
    for bit, name, kind in table:
        if bit != _ALWAYS and not flags & bit:
            continue
        size = _SIZES[kind]
        if offset + size > len(data):
            raise PlxError(f"truncated frame: {name} needs {size} bytes at offset {offset}, frame is {len(data)} bytes")
        fields[name] = data[offset:offset + size]
        offset += size
    return flags, fields


def _uint(raw: bytes | None) -> int | None:
    return None if raw is None else int.from_bytes(raw, "little")


def _sfloat(raw: bytes | None) -> float | None:
    return None if raw is None else decode_sfloat(int.from_bytes(raw, "little"))


def _pair(raw: bytes | None) -> tuple[float | None, float | None]:
    if raw is None:
        return None, None
    return _sfloat(raw[:2]), _sfloat(raw[2:])


def _timestamp(raw: bytes | None) -> datetime | None:
    if raw is None:
        return None
    year = int.from_bytes(raw[:2], "little")
    month, day, hours, minutes, seconds = raw[2:7]
    if year == 0 or month == 0 or day == 0:
        return None  # Date Time: 0 means "not known"
    if year < 1582:
        raise PlxError(f"timestamp year {year} is outside 1582-9999")
    try:
        return datetime(year, month, day, hours, minutes, seconds)  # device local time: no zone on the wire
    except ValueError as exc:
        raise PlxError(f"timestamp {raw.hex()} is not a valid date and time: {exc}") from None


def parse_continuous(data: bytes | bytearray) -> PlxMeasurement:
    """Parse a Continuous Measurement (0x2A5F) value. Raises PlxError if malformed."""
    _, fields = _split(_coerce(data), CONTINUOUS_FIELDS)
    spo2, pulse = _pair(fields["normal"])
    spo2_fast, pulse_fast = _pair(fields.get("fast"))
    spo2_slow, pulse_slow = _pair(fields.get("slow"))
    measurement_status = _uint(fields.get("measurement_status"))
    device_status = _uint(fields.get("device_sensor_status"))
    return PlxMeasurement(
        kind=PlxKind.CONTINUOUS, spo2=spo2, pulse_rate=pulse,
        quality=status_quality(measurement_status, device_status),
        spo2_fast=spo2_fast, pulse_rate_fast=pulse_fast, spo2_slow=spo2_slow, pulse_rate_slow=pulse_slow,
        measurement_status=measurement_status, device_sensor_status=device_status,
        pulse_amplitude_index=_sfloat(fields.get("pulse_amplitude_index")),
    )


def parse_spot_check(data: bytes | bytearray) -> PlxMeasurement:
    """Parse a Spot-check Measurement (0x2A5E) value. Raises PlxError if malformed."""
    flags, fields = _split(_coerce(data), SPOT_CHECK_FIELDS)
    spo2, pulse = _pair(fields["normal"])
    measurement_status = _uint(fields.get("measurement_status"))
    device_status = _uint(fields.get("device_sensor_status"))
    return PlxMeasurement(
        kind=PlxKind.SPOT_CHECK, spo2=spo2, pulse_rate=pulse,
        quality=status_quality(measurement_status, device_status),
        timestamp=_timestamp(fields.get("timestamp")),
        device_clock_set=not flags & SPOT_CHECK_CLOCK_NOT_SET,
        measurement_status=measurement_status, device_sensor_status=device_status,
        pulse_amplitude_index=_sfloat(fields.get("pulse_amplitude_index")),
    )


PARSERS = {CONTINUOUS_UUID: parse_continuous, SPOT_CHECK_UUID: parse_spot_check}


def parse(characteristic: str, data: bytes | bytearray) -> PlxMeasurement:
    """Parse a value of either measurement characteristic, chosen by its UUID."""
    parser = PARSERS.get(characteristic.lower())
    if parser is None:
        raise PlxError(f"{characteristic} is not a PLX measurement characteristic")
    return parser(data)


# --- readings -----------------------------------------------------------------------------


def _reading(metric: Metric, value: float | None, quality: tuple[QualityFlag, ...], *, hub_id: str,
             device_id: str, source_ts: datetime, hub_ts: datetime | None) -> Reading:
    spec = METRICS[metric]
    flags = set(quality)
    if value is not None and not spec.low <= value <= spec.high:
        value = None  # a broken device's impossible value is a gap, not a reading
        flags.add(QualityFlag.INVALID)
    if value is None and not NO_VALUE_REASONS.intersection(flags):
        flags.add(QualityFlag.DATA_UNAVAILABLE)  # a gap is never silent
    flags.update(signal_quality(metric, value, ()))  # SpO2 0 %, pulse 0: no signal, whatever the status bits say
    fields: dict[str, object] = {"hub_id": hub_id, "device_id": device_id, "source_ts": source_ts, "metric": metric,
                                 "value": value, "unit": spec.unit, "quality": _ordered(flags)}
    if hub_ts is not None:
        fields["hub_ts"] = hub_ts
    return Reading.model_validate(fields)


def plx_readings(measurement: PlxMeasurement, *, hub_id: str, device_id: str, source_ts: datetime,
                 hub_ts: datetime | None = None) -> list[Reading]:
    """The SpO2 (%) and pulse rate (/min) readings of one measurement.

    Both always come out, so a probe-off frame is a visible gap: a special value gives
    `value=None` with the measurement's quality flags, plus DATA_UNAVAILABLE when no flag
    already says why. A value outside the metric's possible range (SpO2 above 100 from a
    broken device) becomes None + INVALID rather than an error. A value inside the possible range but
    outside the measurable one (`telecare_protocol.codes.MEASURABLE`: SpO2 0 % and pulse 0 sent with no
    status bit by a device with no signal) keeps its value and is flagged NO_SIGNAL.
    """
    return [
        _reading(metric, value, measurement.quality, hub_id=hub_id, device_id=device_id,
                 source_ts=source_ts, hub_ts=hub_ts)
        for metric, value in ((Metric.SPO2, measurement.spo2), (Metric.PULSE_RATE, measurement.pulse_rate))
    ]
