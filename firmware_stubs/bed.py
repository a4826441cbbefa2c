"""Reference logic for the bed occupancy sensor (a pressure mat) on BTHome v2.

Every frame carries, in object-id order: packet id (0x00), battery % (0x01), battery low
(0x15) and occupancy (0x23, 1 = someone is in bed, 0 = bed empty).

Each function returns the next state and the frame to broadcast, or None when nothing
changed. One frame per state change: repeating it for reliability is the caller's job;
`status` is the periodic supervision frame the hub uses to know the sensor is alive.
Debouncing the mat (someone turning over) belongs before `set_occupied`.
"""

from dataclasses import dataclass, replace

from firmware_stubs.bthome import BTHomeValues, Transmitter, battery_low, transmit


@dataclass(frozen=True)
class BedSensor:
    tx: Transmitter
    occupied: bool | None = None
    """None until the mat has been read once."""
    battery_pct: int = 100


def _send(b: BedSensor) -> tuple[BedSensor, bytes]:
    values = BTHomeValues(battery_pct=b.battery_pct, battery_low=battery_low(b.battery_pct), occupancy=b.occupied)
    tx, frame = transmit(b.tx, values)
    return replace(b, tx=tx), frame


def set_occupied(b: BedSensor, occupied: bool) -> tuple[BedSensor, bytes | None]:
    """The mat read `occupied`: a frame if that is a change."""
    if b.occupied is occupied:
        return b, None
    return _send(replace(b, occupied=occupied))


def set_battery(b: BedSensor, battery_pct: int) -> tuple[BedSensor, bytes | None]:
    """A new battery reading: a frame if the percentage changed."""
    if not 0 <= battery_pct <= 100:
        raise ValueError(f"battery {battery_pct}% is outside 0-100")
    if battery_pct == b.battery_pct:
        return b, None
    return _send(replace(b, battery_pct=battery_pct))


def status(b: BedSensor) -> tuple[BedSensor, bytes]:
    """The periodic supervision frame: the current state with a new packet id."""
    return _send(b)
