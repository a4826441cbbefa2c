"""Reference logic for the pendant: a help button and a fall detector on one BTHome v2 radio.

BTHome has no "fall" object, so the pendant signals falls on a second button channel. Every
pendant frame carries exactly two button objects (0x3A), button 1 first, so the receiver
always sees them as `button_1` and `button_2`:

    button 1 (help button)
        press       (1)  help alarm. A press is always an alarm; it never needs confirming.
        long press  (4)  the wearer cancels a help alarm within the help cancel window.
                         A long press with nothing to cancel is an alarm, like a press.
    button 2 (fall channel, not a physical button)
        press       (1)  fall detected and the cancel window expired (or the wearer pressed
                         for help during it): fall alarm.
        long press  (4)  fall detected but the wearer cancelled it within the cancel window.
                         The centre logs this; it does not raise an alarm.
    event code 0 (none)  nothing happened on that button in this frame.

Falls come from `firmware_stubs.fall_detector.FallDetector`: `on_accelerometer` feeds it one
sample and opens the cancel window when it confirms a fall (docs/devices.md, "Fall detector").
A fall starts a cancel window (`fall_cancel_window_s`, default 20 s; commercial pendants use
about 10-30 s) during which the pendant vibrates and nothing is sent. A long press in the
window cancels it; a press escalates at once; otherwise `tick` raises the fall alarm when the
window expires. Every frame also carries the packet id, battery % and battery low.

The hub maps these to events in `hub_agent.bthome`; docs/devices.md is the reference.
Each function returns the next state and the frame to broadcast, or None when there is
nothing to send. One frame per state change: repeating it for reliability is the caller's job.
"""

from dataclasses import dataclass, replace

from firmware_stubs.bthome import (
    BUTTON_LONG_PRESS,
    BUTTON_NONE,
    BUTTON_PRESS,
    BTHomeValues,
    Transmitter,
    battery_low,
    transmit,
)
from firmware_stubs.fall_detector import FallDecision, FallDetector

HELP_BUTTON = 1
FALL_CHANNEL = 2
DEFAULT_FALL_CANCEL_WINDOW_S = 20.0
DEFAULT_HELP_CANCEL_WINDOW_S = 30.0


@dataclass(frozen=True)
class Pendant:
    """The pendant's state. Times are the device's monotonic clock, in seconds."""

    tx: Transmitter
    battery_pct: int = 100
    help_raised_at: float | None = None
    """When the last help alarm went out; it can be cancelled within the help cancel window."""
    fall_detected_at: float | None = None
    """A detected fall whose cancel window is still open (no frame sent yet)."""
    fall_cancel_window_s: float = DEFAULT_FALL_CANCEL_WINDOW_S
    help_cancel_window_s: float = DEFAULT_HELP_CANCEL_WINDOW_S


def _send(p: Pendant, help_event: int, fall_event: int) -> tuple[Pendant, bytes]:
    values = BTHomeValues(battery_pct=p.battery_pct, battery_low=battery_low(p.battery_pct),
                          buttons=(help_event, fall_event))
    tx, frame = transmit(p.tx, values)
    return replace(p, tx=tx), frame


def _settle(p: Pendant, now: float) -> tuple[Pendant, bool]:
    """Close expired windows. Returns the new state and whether a fall alarm is now due."""
    if p.help_raised_at is not None and now - p.help_raised_at > p.help_cancel_window_s:
        p = replace(p, help_raised_at=None)
    if p.fall_detected_at is not None and now - p.fall_detected_at >= p.fall_cancel_window_s:
        return replace(p, fall_detected_at=None), True
    return p, False


def help_press(p: Pendant, now: float) -> tuple[Pendant, bytes]:
    """Help button pressed: alarm now. A fall waiting in its cancel window is raised with it."""
    p, fall_due = _settle(p, now)
    fall_event = BUTTON_PRESS if fall_due or p.fall_detected_at is not None else BUTTON_NONE
    p = replace(p, help_raised_at=now, fall_detected_at=None)
    return _send(p, BUTTON_PRESS, fall_event)


def help_long_press(p: Pendant, now: float) -> tuple[Pendant, bytes]:
    """Help button held: cancel whatever is cancellable; with nothing to cancel, an alarm."""
    p, fall_due = _settle(p, now)
    if p.fall_detected_at is not None:
        fall_event = BUTTON_LONG_PRESS
    elif fall_due:
        fall_event = BUTTON_PRESS  # too late to cancel: the fall alarm goes out
    else:
        fall_event = BUTTON_NONE
    if p.help_raised_at is not None:
        help_event = BUTTON_LONG_PRESS
        p = replace(p, help_raised_at=None)
    elif fall_event == BUTTON_NONE:
        help_event = BUTTON_PRESS  # nothing to cancel: a press is always an alarm
        p = replace(p, help_raised_at=now)
    else:
        help_event = BUTTON_NONE
    return _send(replace(p, fall_detected_at=None), help_event, fall_event)


def fall_detected(p: Pendant, now: float) -> tuple[Pendant, bytes | None]:
    """The detector saw a fall: open the cancel window (nothing is sent yet).

    A second fall inside an open window keeps the first window's deadline.
    """
    p, fall_due = _settle(p, now)
    if fall_due:
        p, frame = _send(p, BUTTON_NONE, BUTTON_PRESS)
        return replace(p, fall_detected_at=now), frame
    if p.fall_detected_at is None:
        p = replace(p, fall_detected_at=now)
    return p, None


def tick(p: Pendant, now: float) -> tuple[Pendant, bytes | None]:
    """Call regularly: raises the fall alarm when its cancel window expires."""
    p, fall_due = _settle(p, now)
    if fall_due:
        return _send(p, BUTTON_NONE, BUTTON_PRESS)
    return p, None


def on_accelerometer(p: Pendant, detector: FallDetector, now: float, ax: float, ay: float,
                     az: float) -> tuple[Pendant, bytes | None, FallDecision | None]:
    """One accelerometer sample (g) at `now`: run the fall detector, then the cancel window.

    A confirmed fall opens the cancel window at `now` (the confirmation time, not the impact
    time: the wearer gets the full window to cancel). Returns the next state, the frame to
    broadcast (a fall alarm whose window expired), and the detector's decision, if any.
    """
    decision = detector.update(now, ax, ay, az)
    if decision is not None:
        p, frame = fall_detected(p, now)
    else:
        p, frame = tick(p, now)
    return p, frame, decision


def set_battery(p: Pendant, battery_pct: int) -> tuple[Pendant, bytes | None]:
    """A new battery reading: a frame if the percentage changed."""
    if not 0 <= battery_pct <= 100:
        raise ValueError(f"battery {battery_pct}% is outside 0-100")
    if battery_pct == p.battery_pct:
        return p, None
    return _send(replace(p, battery_pct=battery_pct), BUTTON_NONE, BUTTON_NONE)


def status(p: Pendant) -> tuple[Pendant, bytes]:
    """The periodic supervision frame (no button events), so the hub knows the pendant is alive."""
    return _send(p, BUTTON_NONE, BUTTON_NONE)
