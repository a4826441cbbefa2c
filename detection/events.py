"""Rules over device events: alarms that need no detection, and supervision.

- A press of the pendant's help button is always an alarm and never needs detection to
  confirm it; so is a fall the pendant reports after its cancel window (domain brief,
  "Falls"). Both are top priority (level 1: medical, fire or panic).
- A fall the wearer cancelled on the pendant is stored and logged, not alarmed.
- Supervision (battery low, tamper, power failure, device not seen, device fault) is
  level 4, as in alarm-receiving software (TSA / domain brief "Monitoring-centre
  practice"); each clears with an all-clear when its restoral event arrives.
"""

from dataclasses import dataclass

from telecare_protocol import DeviceEvent, EventCode, Priority


@dataclass(frozen=True)
class EventRule:
    rule: str
    title: str
    priority: Priority
    per_device: bool
    """True when the condition is about one device (its battery), not the person."""


@dataclass(frozen=True)
class Raise:
    rule: EventRule
    subject: str


@dataclass(frozen=True)
class Clear:
    rule: EventRule
    subject: str


PENDANT_ALARM = EventRule("pendant_alarm", "Help button pressed", Priority.EMERGENCY, per_device=False)
FALL = EventRule("fall", "Fall detected (not cancelled by the wearer)", Priority.EMERGENCY, per_device=False)
BATTERY_LOW = EventRule("battery_low", "Device battery low", Priority.SUPERVISION, per_device=True)
TAMPER = EventRule("tamper", "Device tampered with", Priority.SUPERVISION, per_device=True)
POWER_FAILURE = EventRule("power_failure", "Mains power lost at the hub", Priority.SUPERVISION, per_device=False)
DEVICE_NOT_SEEN = EventRule("device_not_seen", "Device not heard from", Priority.SUPERVISION, per_device=True)
DEVICE_FAULT = EventRule("device_fault", "Device fault", Priority.SUPERVISION, per_device=True)
HUB_OFFLINE = EventRule("hub_offline", "Hub offline: the home is not monitored", Priority.URGENT, per_device=False)

RAISES: dict[EventCode, EventRule] = {
    EventCode.MANUAL_ALARM: PENDANT_ALARM,
    EventCode.FALL_DETECTED: FALL,
    EventCode.BATTERY_LOW: BATTERY_LOW,
    EventCode.TAMPER: TAMPER,
    EventCode.POWER_FAILURE: POWER_FAILURE,
    EventCode.DEVICE_NOT_SEEN: DEVICE_NOT_SEEN,
    EventCode.DEVICE_FAULT: DEVICE_FAULT,
}
CLEARS: dict[EventCode, EventRule] = {
    EventCode.BATTERY_OK: BATTERY_LOW,
    EventCode.TAMPER_CLEARED: TAMPER,
    EventCode.POWER_RESTORED: POWER_FAILURE,
    EventCode.DEVICE_SEEN_AGAIN: DEVICE_NOT_SEEN,
}


def assess(event: DeviceEvent) -> Raise | Clear | None:
    """What a device event means for the alert queue, if anything."""
    if event.code in RAISES:
        rule = RAISES[event.code]
        return Raise(rule, event.device_id if rule.per_device else "")
    if event.code in CLEARS:
        rule = CLEARS[event.code]
        return Clear(rule, event.device_id if rule.per_device else "")
    return None
