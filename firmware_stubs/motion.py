"""Reference logic for the motion sensor (a PIR) on BTHome v2.

Every frame carries, in object-id order: packet id (0x00), battery % (0x01), battery low
(0x15) and motion (0x21, 1 = motion detected, 0 = clear).

A PIR fires on every movement; the sensor sends "detected" on the first trigger and "clear"
only after `clear_after_s` with no trigger (the hold-off most PIR sensors use, so that a
person moving about a room is one motion period, not dozens of frames). Each function
returns the next state and the frame to broadcast, or None when nothing changed. One frame
per state change: repeating it for reliability is the caller's job; `status` is the periodic
supervision frame the hub uses to know the sensor is alive.
"""

from dataclasses import dataclass, replace

from firmware_stubs.bthome import BTHomeValues, Transmitter, battery_low, transmit

DEFAULT_CLEAR_AFTER_S = 60.0
"""Engineering choice: a minute without a PIR trigger means the room is clear (PIR sensors
typically hold "occupied" for 30 s to a few minutes after the last trigger)."""


@dataclass(frozen=True)
class MotionSensor:
    """Times are the device's monotonic clock, in seconds."""

    tx: Transmitter
    motion: bool | None = None
    """None until the PIR has been read once."""
    last_trigger_at: float | None = None
    battery_pct: int = 100
    clear_after_s: float = DEFAULT_CLEAR_AFTER_S


def _send(m: MotionSensor) -> tuple[MotionSensor, bytes]:
    values = BTHomeValues(battery_pct=m.battery_pct, battery_low=battery_low(m.battery_pct), motion=m.motion)
    tx, frame = transmit(m.tx, values)
    return replace(m, tx=tx), frame


def triggered(m: MotionSensor, now: float) -> tuple[MotionSensor, bytes | None]:
    """The PIR saw movement: a "detected" frame if the room was clear (or never read)."""
    m = replace(m, last_trigger_at=now)
    if m.motion is True:
        return m, None
    return _send(replace(m, motion=True))


def tick(m: MotionSensor, now: float) -> tuple[MotionSensor, bytes | None]:
    """Call regularly: a "clear" frame once `clear_after_s` passed without a trigger."""
    if m.motion is True and m.last_trigger_at is not None and now - m.last_trigger_at >= m.clear_after_s:
        return _send(replace(m, motion=False))
    return m, None


def set_battery(m: MotionSensor, battery_pct: int) -> tuple[MotionSensor, bytes | None]:
    """A new battery reading: a frame if the percentage changed."""
    if not 0 <= battery_pct <= 100:
        raise ValueError(f"battery {battery_pct}% is outside 0-100")
    if battery_pct == m.battery_pct:
        return m, None
    return _send(replace(m, battery_pct=battery_pct))


def status(m: MotionSensor) -> tuple[MotionSensor, bytes]:
    """The periodic supervision frame: the current state with a new packet id."""
    return _send(m)
