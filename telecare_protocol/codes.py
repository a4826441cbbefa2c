"""The protocol's vocabulary: device types, event codes, metrics, quality flags, priorities.

Device types and event codes follow SCAIP (SS 91100, CLC/TS 50134-9) so alarms can be
exchanged with commercial alarm-receiving software; `SCAIP_STATUS` names the SCAIP
status each event code corresponds to.
"""

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class DeviceType(StrEnum):
    """What kind of device raised an event (SCAIP device types)."""

    PERSONAL_TRIGGER = "personal_trigger"
    FALL_DETECTOR = "fall_detector"
    BED_MONITOR = "bed_monitor"
    DOOR_SENSOR = "door_sensor"
    OCCUPANCY = "occupancy"
    WANDERING = "wandering"
    PULSE_OXIMETER = "pulse_oximeter"
    PULL_CORD = "pull_cord"
    MOTION_SENSOR = "motion_sensor"
    """Room activity: a PIR, or a switch on an appliance (fridge, kettle, toilet flush)."""
    COMMUNICATION_LINK = "communication_link"
    """The hub itself: its power supply and its links to devices and to the centre."""


class EventCode(StrEnum):
    """What happened. Alarms, state changes and supervision, SCAIP-style."""

    MANUAL_ALARM = "manual_alarm"
    FALL_DETECTED = "fall_detected"
    FALL_CANCELLED = "fall_cancelled"
    ALARM_CANCELLED = "alarm_cancelled"
    DOOR_OPENED = "door_opened"
    DOOR_CLOSED = "door_closed"
    BED_OCCUPIED = "bed_occupied"
    BED_VACATED = "bed_vacated"
    BATTERY_LOW = "battery_low"
    BATTERY_OK = "battery_ok"
    TAMPER = "tamper"
    TAMPER_CLEARED = "tamper_cleared"
    POWER_FAILURE = "power_failure"
    POWER_RESTORED = "power_restored"
    DEVICE_NOT_SEEN = "device_not_seen"
    DEVICE_SEEN_AGAIN = "device_seen_again"
    DEVICE_FAULT = "device_fault"
    ACTIVITY = "activity"
    """Someone moved in a room or used something (a PIR, the fridge, the toilet flush)."""
    DATA_DROPPED = "data_dropped"
    """The hub's outbox reached its disk budget and shed readings; `detail` counts them."""


SCAIP_STATUS: dict[EventCode, str] = {
    EventCode.MANUAL_ALARM: "manual alarm",
    EventCode.FALL_DETECTED: "automatic alarm",
    EventCode.FALL_CANCELLED: "restoral",
    EventCode.ALARM_CANCELLED: "restoral",
    EventCode.DOOR_OPENED: "open",
    EventCode.DOOR_CLOSED: "restoral",
    EventCode.BED_OCCUPIED: "presence",
    EventCode.BED_VACATED: "absence",
    EventCode.BATTERY_LOW: "battery low",
    EventCode.BATTERY_OK: "restoral",
    EventCode.TAMPER: "tamper",
    EventCode.TAMPER_CLEARED: "restoral",
    EventCode.POWER_FAILURE: "power failure",
    EventCode.POWER_RESTORED: "power restored",
    EventCode.DEVICE_NOT_SEEN: "radio test transmission missing",
    EventCode.DEVICE_SEEN_AGAIN: "restoral",
    EventCode.DEVICE_FAULT: "technical alarm",
    EventCode.ACTIVITY: "presence",
    EventCode.DATA_DROPPED: "technical alarm",
}


class Priority(IntEnum):
    """How urgent an event is. SCAIP carries a priority 0-9; lower is more urgent.

    Levels 1-5 are the five levels alarm-receiving software commonly uses (see
    docs/protocol.md): 1 medical, fire or panic; 2-3 intermediate; 4 supervision or low
    battery; 5 restorals. 9 is routine state with no alarm meaning (a door opened).
    """

    EMERGENCY = 1
    URGENT = 2
    HIGH = 3
    SUPERVISION = 4
    RESTORAL = 5
    ROUTINE = 9


DEFAULT_PRIORITY: dict[EventCode, Priority] = {
    EventCode.MANUAL_ALARM: Priority.EMERGENCY,
    EventCode.FALL_DETECTED: Priority.EMERGENCY,
    EventCode.FALL_CANCELLED: Priority.RESTORAL,
    EventCode.ALARM_CANCELLED: Priority.RESTORAL,
    EventCode.DOOR_OPENED: Priority.ROUTINE,
    EventCode.DOOR_CLOSED: Priority.ROUTINE,
    EventCode.BED_OCCUPIED: Priority.ROUTINE,
    EventCode.BED_VACATED: Priority.ROUTINE,
    EventCode.BATTERY_LOW: Priority.SUPERVISION,
    EventCode.BATTERY_OK: Priority.RESTORAL,
    EventCode.TAMPER: Priority.SUPERVISION,
    EventCode.TAMPER_CLEARED: Priority.RESTORAL,
    EventCode.POWER_FAILURE: Priority.SUPERVISION,
    EventCode.POWER_RESTORED: Priority.RESTORAL,
    EventCode.DEVICE_NOT_SEEN: Priority.SUPERVISION,
    EventCode.DEVICE_SEEN_AGAIN: Priority.RESTORAL,
    EventCode.DEVICE_FAULT: Priority.SUPERVISION,
    EventCode.ACTIVITY: Priority.ROUTINE,
    EventCode.DATA_DROPPED: Priority.SUPERVISION,
}

ALARM_CODES: frozenset[EventCode] = frozenset({EventCode.MANUAL_ALARM, EventCode.FALL_DETECTED})
"""The calls for help: a pendant's help button or a pull cord (`manual_alarm`), a fall the wearer did not
cancel (`fall_detected`). Each raises a priority-1 alarm at the centre (`detection.rules.ALARMS`, whose
`raised_by` codes are exactly these) and travels on the hub's alarms topic (`topics.alarm_topic`)."""


class QualityFlag(StrEnum):
    """Why a reading may not be trusted on its own: the BLE PLX status bits, and `no_signal` from the value."""

    QUESTIONABLE = "questionable"
    INVALID = "invalid"
    LOW_PERFUSION = "low_perfusion"
    SENSOR_OFF = "sensor_off"
    """The sensor is not on the finger, or is disconnected."""
    DATA_UNAVAILABLE = "data_unavailable"
    MEASUREMENT_ONGOING = "measurement_ongoing"
    EARLY_ESTIMATE = "early_estimate"
    NO_SIGNAL = "no_signal"
    """The value lies outside what an oximeter measures on a living person (`MEASURABLE`): a device's
    placeholder when it finds no signal (SpO2 0 %, pulse 0, with no status bit saying so), not a
    measurement. Set by the hub (`hub_agent/plx.py`), and by the centre for a sender that did not
    (`signal_quality`). Added to version 2's vocabulary after its release: upgrade a centre before its hubs."""


NO_VALUE_REASONS = frozenset({QualityFlag.INVALID, QualityFlag.SENSOR_OFF, QualityFlag.DATA_UNAVAILABLE})
"""A reading with no value must carry one of these, so a gap is never silent."""


class Power(StrEnum):
    MAINS = "mains"
    BATTERY = "battery"


@dataclass(frozen=True)
class MetricSpec:
    unit: str
    low: float
    high: float
    """Physically possible range: a value outside it is rejected as impossible."""


class Metric(StrEnum):
    SPO2 = "spo2"
    PULSE_RATE = "pulse_rate"
    PERFUSION_INDEX = "perfusion_index"


METRICS: dict[Metric, MetricSpec] = {
    # Units follow FHIR/UCUM as used for LOINC 59408-5 (SpO2, "%") and 8867-4 (heart rate, "/min").
    Metric.SPO2: MetricSpec(unit="%", low=0.0, high=100.0),
    Metric.PULSE_RATE: MetricSpec(unit="/min", low=0.0, high=300.0),
    Metric.PERFUSION_INDEX: MetricSpec(unit="%", low=0.0, high=100.0),
}


@dataclass(frozen=True)
class MeasurableRange:
    """What an oximeter measures on a living person. A value inside `METRICS`' possible range but outside
    this one is delivered and stored, flagged `NO_SIGNAL`: a probe with no signal, never a reading to alarm on."""

    low: float
    high: float
    source: str


MEASURABLE: dict[Metric, MeasurableRange] = {
    Metric.SPO2: MeasurableRange(50.0, 100.0, (
        "pulse oximeters' SpO2 accuracy is specified over 70-100 % only, '0-69 %: not specified' (ISO 80601-2-61 "
        "accuracy claims, e.g. FDA 510(k) K202173, and the Masimo and Mindray SpO2 module specifications); our "
        "design choice: 50-69 % is kept, unverified but reached by a real severe desaturation (and it alarms), "
        "while below 50 %, far under any verified range, a value from a person at home is a probe with no "
        "signal (a monitor in the field sent 0 % with no status bit when it had none)")),
    Metric.PULSE_RATE: MeasurableRange(20.0, 250.0, (
        "declared pulse-rate ranges of home oximeters: 25-250 /min (FDA 510(k) K202173), 30-250 /min "
        "(K212665); bedside modules display 20-300 (Mindray, ISO 80601-2-61); our design choice: below 20 /min "
        "no oximeter reports a pulse, so 0 is its placeholder for none found; above 250 a fingertip or wrist "
        "oximeter does not measure. NEWS2's bands (<=40, >=131 /min) lie wholly inside")),
}
"""Per metric the engine's rules read; `perfusion_index` has none (no rule reads it). Distinct from the
possible range (`METRICS`), which stays the wire's: a value outside that one is refused as impossible."""


def measurable(metric: Metric, value: float | None) -> bool:
    """Whether `value` is a measurement and not a placeholder for no signal: inside the metric's
    `MEASURABLE` range (any value of a metric without one). None (no value) is not measurable."""
    if value is None:
        return False
    bounds = MEASURABLE.get(metric)
    return bounds is None or bounds.low <= value <= bounds.high


def signal_quality(metric: Metric, value: float | None, quality: tuple[QualityFlag, ...]) -> tuple[QualityFlag, ...]:
    """`quality`, with `NO_SIGNAL` added (last) when `value` lies outside the metric's measurable range.
    Unchanged for a null value (its own flags say why) and for a value that is measurable."""
    if value is None or measurable(metric, value) or QualityFlag.NO_SIGNAL in quality:
        return quality
    return (*quality, QualityFlag.NO_SIGNAL)


class DeviceKind(StrEnum):
    """What a device paired with a hub is: the one list of kinds a hub supports (`hub_agent`
    reads each kind's frames) and a centre enrols (`telecare admin enrol --device ID:KIND`).
    Not on the wire itself: messages carry the SCAIP `DeviceType`."""

    PENDANT = "pendant"
    """Help button and fall detector (BTHome v2; see docs/devices.md)."""
    DOOR = "door"
    """Door contact sensor (BTHome v2, or Zigbee2MQTT `contact`)."""
    BED = "bed"
    """Bed occupancy sensor (BTHome v2, or Zigbee2MQTT `occupancy`)."""
    MOTION = "motion"
    """Room activity: a PIR or an appliance switch (BTHome v2 motion 0x21, or Zigbee2MQTT `occupancy`)."""
    OXIMETER = "oximeter"
    """Pulse oximeter (Bluetooth SIG Pulse Oximeter Service over GATT)."""
