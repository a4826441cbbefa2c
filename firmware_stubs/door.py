"""Reference logic for the door sensor: a BTHome v2 contact sensor.

Every frame carries, in object-id order: packet id (0x00), battery % (0x01), opening (0x11,
1 = open, 0 = closed) and battery low (0x15). Note the polarity: BTHome "opening" is 1 when
the door is OPEN, the reverse of Zigbee2MQTT's `contact` (true = closed).

Each function returns the next state and the frame to broadcast, or None when nothing
changed. One frame per state change: repeating it for reliability is the caller's job;
`status` is the periodic supervision frame the hub uses to know the sensor is alive.
"""

from dataclasses import dataclass, replace

from firmware_stubs.bthome import BTHomeValues, Transmitter, battery_low, transmit


@dataclass(frozen=True)
class DoorSensor:
    tx: Transmitter
    is_open: bool | None = None
    """None until the reed switch has been read once."""
    battery_pct: int = 100


def _send(d: DoorSensor) -> tuple[DoorSensor, bytes]:
    values = BTHomeValues(battery_pct=d.battery_pct, opening=d.is_open, battery_low=battery_low(d.battery_pct))
    tx, frame = transmit(d.tx, values)
    return replace(d, tx=tx), frame


def set_open(d: DoorSensor, is_open: bool) -> tuple[DoorSensor, bytes | None]:
    """The reed switch read `is_open`: a frame if that is a change."""
    if d.is_open is is_open:
        return d, None
    return _send(replace(d, is_open=is_open))


def set_battery(d: DoorSensor, battery_pct: int) -> tuple[DoorSensor, bytes | None]:
    """A new battery reading: a frame if the percentage changed."""
    if not 0 <= battery_pct <= 100:
        raise ValueError(f"battery {battery_pct}% is outside 0-100")
    if battery_pct == d.battery_pct:
        return d, None
    return _send(replace(d, battery_pct=battery_pct))


def status(d: DoorSensor) -> tuple[DoorSensor, bytes]:
    """The periodic supervision frame: the current state with a new packet id."""
    return _send(d)
