"""Bluetooth SIG Pulse Oximeter Service (0x1822) frames, as our oximeter sends them.

Two characteristics carry measurements (PLX Service / GATT Specification Supplement):

Continuous Measurement (0x2A5F, notify, about every 1-4 s), little-endian:

    flags                    uint8   bit0 SpO2PR-Fast present, bit1 SpO2PR-Slow present,
                                     bit2 measurement status present, bit3 device & sensor
                                     status present, bit4 pulse amplitude index present
    SpO2PR-Normal            2 x SFLOAT  SpO2 (%), pulse rate (/min): always present
    SpO2PR-Fast              2 x SFLOAT  (bit0)
    SpO2PR-Slow              2 x SFLOAT  (bit1)
    measurement status       uint16  (bit2)
    device & sensor status   uint24  (bit3)
    pulse amplitude index    SFLOAT  (bit4, %)

Spot-check Measurement (0x2A5E, indicate):

    flags                    uint8   bit0 timestamp present, bit1 measurement status present,
                                     bit2 device & sensor status present, bit3 pulse amplitude
                                     index present, bit4 device clock is not set
    SpO2PR-Spot-Check        2 x SFLOAT  always present
    timestamp                7 bytes: year uint16, month, day, hours, minutes, seconds (bit0)
    measurement status       uint16  (bit1)
    device & sensor status   uint24  (bit2)
    pulse amplitude index    SFLOAT  (bit3)

SFLOAT is IEEE 11073-20601's 16-bit float: a 4-bit signed exponent (high nibble) and a
12-bit signed mantissa, value = mantissa x 10^exponent. Mantissas 0x7FE-0x802 are reserved:
NaN 0x07FF, NRes 0x0800, +INF 0x07FE, -INF 0x0802, reserved 0x0801. Numbers therefore use
mantissas -2045..2045.

A probe-off frame (finger out of the clip) sends NaN SpO2 and pulse with "measurement
unavailable" and "sensor unconnected to user" status, never a stale or zero value.

Pure functions over frozen dataclasses; no numpy, only byte arithmetic (MicroPython-friendly).
"""

from dataclasses import dataclass

PLX_SERVICE_UUID16 = 0x1822
SPOT_CHECK_UUID16 = 0x2A5E
CONTINUOUS_UUID16 = 0x2A5F
FEATURES_UUID16 = 0x2A60
RACP_UUID16 = 0x2A52

# SFLOAT special values.
SFLOAT_NAN = 0x07FF
SFLOAT_NRES = 0x0800
SFLOAT_POS_INF = 0x07FE
SFLOAT_NEG_INF = 0x0802
SFLOAT_RESERVED = 0x0801
SFLOAT_MANTISSA_MAX = 2045
SFLOAT_EXPONENT_MIN = -8
SFLOAT_EXPONENT_MAX = 7

# Continuous Measurement flags.
CONT_FAST_PRESENT = 0x01
CONT_SLOW_PRESENT = 0x02
CONT_STATUS_PRESENT = 0x04
CONT_DEVICE_STATUS_PRESENT = 0x08
CONT_PAI_PRESENT = 0x10

# Spot-check Measurement flags.
SPOT_TIMESTAMP_PRESENT = 0x01
SPOT_STATUS_PRESENT = 0x02
SPOT_DEVICE_STATUS_PRESENT = 0x04
SPOT_PAI_PRESENT = 0x08
SPOT_CLOCK_NOT_SET = 0x10

# Measurement status (uint16); bits 0-4 are reserved.
MEASUREMENT_ONGOING = 1 << 5
EARLY_ESTIMATED_DATA = 1 << 6
VALIDATED_DATA = 1 << 7
FULLY_QUALIFIED_DATA = 1 << 8
DATA_FROM_MEASUREMENT_STORAGE = 1 << 9
DATA_FOR_DEMONSTRATION = 1 << 10
DATA_FOR_TESTING = 1 << 11
CALIBRATION_ONGOING = 1 << 12
MEASUREMENT_UNAVAILABLE = 1 << 13
QUESTIONABLE_MEASUREMENT = 1 << 14
INVALID_MEASUREMENT = 1 << 15

# Device and sensor status (uint24); bits 16-23 are reserved.
EXTENDED_DISPLAY_UPDATE_ONGOING = 1 << 0
EQUIPMENT_MALFUNCTION = 1 << 1
SIGNAL_PROCESSING_IRREGULARITY = 1 << 2
INADEQUATE_SIGNAL = 1 << 3
POOR_SIGNAL = 1 << 4
LOW_PERFUSION = 1 << 5
ERRATIC_SIGNAL = 1 << 6
NONPULSATILE_SIGNAL = 1 << 7
QUESTIONABLE_PULSE = 1 << 8
SIGNAL_ANALYSIS_ONGOING = 1 << 9
SENSOR_INTERFERENCE = 1 << 10
SENSOR_UNCONNECTED_TO_USER = 1 << 11
UNKNOWN_SENSOR_CONNECTED = 1 << 12
SENSOR_DISPLACED = 1 << 13
SENSOR_MALFUNCTIONING = 1 << 14
SENSOR_DISCONNECTED = 1 << 15

Timestamp = tuple[int, int, int, int, int, int]
"""(year, month, day, hours, minutes, seconds), device local time, like MicroPython's
`time.localtime()[:6]`. A 0 year, month or day means "not known"."""


def _pack(exponent: int, mantissa: int) -> int:
    return ((exponent & 0x0F) << 12) | (mantissa & 0x0FFF)


def encode_sfloat(value: float | None) -> int:
    """The 16-bit SFLOAT for `value`, at the finest resolution that fits.

    None and NaN encode as NaN, +-inf as +-INF, and a magnitude too large for any exponent
    saturates to +-INF, as IEEE 11073-20601 prescribes. Values are rounded to the chosen
    resolution; fractional trailing zeros are dropped, so whole numbers go out with
    exponent 0 when they fit (98.0 -> 98 x 10^0, 70 -> 70 x 10^0, never 7 x 10^1).
    """
    if value is None or value != value:
        return SFLOAT_NAN
    if value == float("inf"):
        return SFLOAT_POS_INF
    if value == float("-inf"):
        return SFLOAT_NEG_INF
    if abs(value) > (SFLOAT_MANTISSA_MAX + 0.5) * 10**SFLOAT_EXPONENT_MAX:
        return SFLOAT_POS_INF if value > 0 else SFLOAT_NEG_INF
    for exponent in range(SFLOAT_EXPONENT_MIN, SFLOAT_EXPONENT_MAX + 1):
        scaled = value * 10 ** -exponent if exponent < 0 else value / 10**exponent
        mantissa = round(scaled)
        if abs(mantissa) <= SFLOAT_MANTISSA_MAX:
            if mantissa == 0:
                return _pack(0, 0)
            while mantissa % 10 == 0 and exponent < 0:
                mantissa //= 10
                exponent += 1
            return _pack(exponent, mantissa)
    return SFLOAT_POS_INF if value > 0 else SFLOAT_NEG_INF


def _u16(value: int) -> bytes:
    return bytes((value & 0xFF, (value >> 8) & 0xFF))


def _u24(value: int) -> bytes:
    return bytes((value & 0xFF, (value >> 8) & 0xFF, (value >> 16) & 0xFF))


def sfloat_bytes(value: float | None) -> bytes:
    return _u16(encode_sfloat(value))


def _check_status(measurement_status: int | None, device_sensor_status: int | None) -> None:
    if measurement_status is not None and not 0 <= measurement_status <= 0xFFFF:
        raise ValueError("measurement status is a uint16")
    if device_sensor_status is not None and not 0 <= device_sensor_status <= 0xFFFFFF:
        raise ValueError("device and sensor status is a uint24")


@dataclass(frozen=True)
class ContinuousMeasurement:
    """One Continuous Measurement notification.

    `spo2` and `pulse_rate` are always sent: None sends NaN. The optional fields are left
    out when None (send `float("nan")` for an optional SFLOAT field that is present but
    has no value).
    """

    spo2: float | None
    pulse_rate: float | None
    fast: tuple[float | None, float | None] | None = None
    slow: tuple[float | None, float | None] | None = None
    measurement_status: int | None = None
    device_sensor_status: int | None = None
    pulse_amplitude_index: float | None = None

    def __post_init__(self) -> None:
        _check_status(self.measurement_status, self.device_sensor_status)


@dataclass(frozen=True)
class SpotCheckMeasurement:
    """One Spot-check Measurement indication. None leaves an optional field out."""

    spo2: float | None
    pulse_rate: float | None
    timestamp: Timestamp | None = None
    measurement_status: int | None = None
    device_sensor_status: int | None = None
    pulse_amplitude_index: float | None = None
    device_clock_set: bool = True

    def __post_init__(self) -> None:
        _check_status(self.measurement_status, self.device_sensor_status)
        if self.timestamp is not None:
            year, month, day, hours, minutes, seconds = self.timestamp
            if not (
                (year == 0 or 1582 <= year <= 9999)
                and 0 <= month <= 12
                and 0 <= day <= 31
                and 0 <= hours <= 23
                and 0 <= minutes <= 59
                and 0 <= seconds <= 59
            ):
                raise ValueError(f"timestamp {self.timestamp} is not a valid Date Time")


def encode_continuous(m: ContinuousMeasurement) -> bytes:
    """The Continuous Measurement (0x2A5F) characteristic value."""
    flags = 0
    body = sfloat_bytes(m.spo2) + sfloat_bytes(m.pulse_rate)
    if m.fast is not None:
        flags |= CONT_FAST_PRESENT
        body += sfloat_bytes(m.fast[0]) + sfloat_bytes(m.fast[1])
    if m.slow is not None:
        flags |= CONT_SLOW_PRESENT
        body += sfloat_bytes(m.slow[0]) + sfloat_bytes(m.slow[1])
    if m.measurement_status is not None:
        flags |= CONT_STATUS_PRESENT
        body += _u16(m.measurement_status)
    if m.device_sensor_status is not None:
        flags |= CONT_DEVICE_STATUS_PRESENT
        body += _u24(m.device_sensor_status)
    if m.pulse_amplitude_index is not None:
        flags |= CONT_PAI_PRESENT
        body += sfloat_bytes(m.pulse_amplitude_index)
    return bytes((flags,)) + body


def encode_spot_check(m: SpotCheckMeasurement) -> bytes:
    """The Spot-check Measurement (0x2A5E) characteristic value."""
    flags = 0 if m.device_clock_set else SPOT_CLOCK_NOT_SET
    body = sfloat_bytes(m.spo2) + sfloat_bytes(m.pulse_rate)
    if m.timestamp is not None:
        flags |= SPOT_TIMESTAMP_PRESENT
        year, month, day, hours, minutes, seconds = m.timestamp
        body += _u16(year) + bytes((month, day, hours, minutes, seconds))
    if m.measurement_status is not None:
        flags |= SPOT_STATUS_PRESENT
        body += _u16(m.measurement_status)
    if m.device_sensor_status is not None:
        flags |= SPOT_DEVICE_STATUS_PRESENT
        body += _u24(m.device_sensor_status)
    if m.pulse_amplitude_index is not None:
        flags |= SPOT_PAI_PRESENT
        body += sfloat_bytes(m.pulse_amplitude_index)
    return bytes((flags,)) + body


PROBE_OFF_MEASUREMENT_STATUS = MEASUREMENT_UNAVAILABLE
PROBE_OFF_DEVICE_STATUS = SENSOR_UNCONNECTED_TO_USER


def probe_off_continuous() -> bytes:
    """The notification sent while no finger is in the clip: NaN values, sensor unconnected."""
    return encode_continuous(ContinuousMeasurement(
        spo2=None, pulse_rate=None,
        measurement_status=PROBE_OFF_MEASUREMENT_STATUS, device_sensor_status=PROBE_OFF_DEVICE_STATUS,
    ))


def probe_off_spot_check(timestamp: Timestamp | None = None, *, device_clock_set: bool = True) -> bytes:
    """A spot check attempted with no finger in the clip: NaN values, sensor unconnected."""
    return encode_spot_check(SpotCheckMeasurement(
        spo2=None, pulse_rate=None, timestamp=timestamp,
        measurement_status=PROBE_OFF_MEASUREMENT_STATUS, device_sensor_status=PROBE_OFF_DEVICE_STATUS,
        device_clock_set=device_clock_set,
    ))
