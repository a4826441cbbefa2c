"""Rules over device events: alarms that need no detection, and supervision.

- A press of the pendant's help button is always an alarm and never needs detection to
  confirm it; so is a fall the pendant reports after its cancel window (domain brief,
  "Falls"). Both are top priority (level 1: medical, fire or panic).
- A fall the wearer cancelled on the pendant is stored and logged, not alarmed.
- Supervision (battery low, tamper, power failure, device not seen, device fault) is
  level 4, as in alarm-receiving software (TSA / domain brief "Monitoring-centre
  practice"); each clears with an all-clear when its restoral event arrives.

Which code raises or clears which rule, and each rule's title and priority, come from the
catalogue (`rules.py`).
"""

from dataclasses import dataclass

from detection.rules import CATALOGUE, CLEARED_BY, RAISED_BY, Rule, RuleId, RuleKind
from telecare_protocol import DeviceEvent, EventCode


@dataclass(frozen=True)
class Raise:
    rule: Rule
    subject: str


@dataclass(frozen=True)
class Clear:
    rule: Rule
    subject: str


FIXED_KINDS = (RuleKind.ALARM, RuleKind.SUPERVISION)
"""The fixed rules are the catalogue's alarms and supervision; a logged-only event is the engine's."""
RAISES: dict[EventCode, Rule] = {code: rule for code, rule in RAISED_BY.items() if rule.kind in FIXED_KINDS}
CLEARS: dict[EventCode, Rule] = {code: rule for code, rule in CLEARED_BY.items() if rule.kind in FIXED_KINDS}

# The fixed rules by name, for callers that raise one directly (tests, bench).
PENDANT_ALARM = CATALOGUE[RuleId.PENDANT_ALARM]
FALL = CATALOGUE[RuleId.FALL]
BATTERY_LOW = CATALOGUE[RuleId.BATTERY_LOW]
TAMPER = CATALOGUE[RuleId.TAMPER]
POWER_FAILURE = CATALOGUE[RuleId.POWER_FAILURE]
DEVICE_NOT_SEEN = CATALOGUE[RuleId.DEVICE_NOT_SEEN]
DEVICE_FAULT = CATALOGUE[RuleId.DEVICE_FAULT]
HUB_OFFLINE = CATALOGUE[RuleId.HUB_OFFLINE]


def assess(event: DeviceEvent) -> Raise | Clear | None:
    """What a device event means for the alert queue, if anything."""
    if event.code in RAISES:
        rule = RAISES[event.code]
        return Raise(rule, event.device_id if rule.per_device else "")
    if event.code in CLEARS:
        rule = CLEARS[event.code]
        return Clear(rule, event.device_id if rule.per_device else "")
    return None
