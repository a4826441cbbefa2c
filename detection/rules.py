"""The catalogue of detection rules: every rule the engine can raise, in one place.

A rule's id (`RuleId`) is what an alert stores in `alerts.rule` and what a person's
settings are keyed by (`rule_settings.rule`, the people file's `[person.rules.<id>]`), so
the values never change. Each `Rule` says:

- `title`: what an operator reads. The fixed event rules (`events.py`) and the hub's last
  will (`monitoring_centre/ingest.py`) use it as the alert title; the engine's rules put
  their evidence into a title of their own ("Hub hub-1 offline: ...") and use this one
  where the title needs no evidence.
- `priority`: the default priority (1 emergency ... 5 restoral, `telecare_protocol.Priority`).
  Where the rule has a `priority` parameter (`defaults.py`) this is its default and a person's
  settings can change it; threshold rules raise at this priority in their urgent band and at
  `Priority.HIGH` in their review band.
- `kind`: the family of the rule, and so the module that runs it (`RuleKind`).
- `source`: where the rule and its priority come from, cited as `defaults.py` cites it
  (for a rule with a `priority` parameter, exactly that parameter's source).
- `per_device`: the condition is about one device (its battery), so an alert's subject is
  the device id; otherwise it is about the person, subject "".
- `raised_by` / `cleared_by`: the device event codes that raise or clear it on their own
  (event-driven rules only; empty for rules over readings, timers or learned patterns).

The citations below are shared with `defaults.py`, which cites each parameter.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import TypeGuard

from telecare_protocol import EventCode, Priority

NEWS2 = "NEWS2 (Royal College of Physicians, 2017)"
OXIMETRY = "NHS oximetry @home (SpO2 <=92% 999/A&E; 93-94% GP or 111 today)"
SPC = "COPD telemonitoring: SPC rule, 7-day rolling mean - 1.645 SD (domain brief, 'Clinical thresholds')"
SCATTER = "COPD telemonitoring: day-to-day SpO2 scatter ~2% when well, >=4% in deterioration (domain brief)"
SLOPE = "COPD telemonitoring: changes precede admission by days; window 24-72 h"
ACTIVITY = "activity-monitoring products (Lilli, Canary Care, Just Checking; domain brief 'Activity and wellbeing')"
TSA = "TSA QSF / alarm-receiving software: 5 priority levels, supervision at level 4 (domain brief)"
DESIGN = "our design choice (docs/detection.md explains why)"
Z2M = "Zigbee2MQTT availability default: battery devices offline after 25 h (domain brief)"
OPENTELE = "OpenTele (open-source telemedicine platform): a missed scheduled measurement is for the nurses' review"
CLOCK = ("a hub's clock must be NTP-synchronised (RFC 5905) and a Raspberry Pi has no real-time clock; "
         "a clock more than 2 min off is equipment needing attention: supervision, level 4 (" + TSA + ")")
ALARM_FLOOR = ("a help press, a pull cord and a fall are always an alarm: priority 1, always escalated, never "
               "switched off or demoted for one person (domain brief, 'Falls'; hazard log H20)")
"""The safety floor of the alarm rules, cited by every bound that holds them (`defaults.py`)."""


class RuleId(StrEnum):
    """A rule's name, as stored on alerts and rule settings."""

    PENDANT_ALARM = "pendant_alarm"
    """The help button pressed, or a pull cord pulled."""
    FALL = "fall"
    SPO2_LOW = "spo2_low"
    PULSE_HIGH = "pulse_high"
    PULSE_LOW = "pulse_low"
    MISSED_MEASUREMENT = "missed_measurement"
    SPO2_TREND_SPC = "spo2_trend_spc"
    SPO2_TREND_SLOPE = "spo2_trend_slope"
    SPO2_VARIABILITY = "spo2_variability"
    NIGHT_EXIT = "night_exit"
    OUT_OF_BED_AT_NIGHT = "out_of_bed_at_night"
    NO_MORNING_ACTIVITY = "no_morning_activity"
    HOUSE_UNOCCUPIED = "house_unoccupied"
    DOOR_LEFT_OPEN = "door_left_open"
    NIGHT_TOILET_FREQUENCY = "night_toilet_frequency"
    HUB_OFFLINE = "hub_offline"
    """No heartbeat from a hub (or its last will): the home is not monitored."""
    HUB_CLOCK_WRONG = "hub_clock_wrong"
    """A hub's clock is more than 2 min from the centre's (`clock.py`); its messages are placed on the centre's."""
    DEVICE_NOT_SEEN = "device_not_seen"
    NO_SIGNAL = "no_signal"
    """An oximeter that keeps sending readings with no signal (probe off; SpO2 0 %, pulse 0): `signal.py`."""
    BATTERY_LOW = "battery_low"
    TAMPER = "tamper"
    POWER_FAILURE = "power_failure"
    DEVICE_FAULT = "device_fault"
    DATA_DROPPED = "data_dropped"


class RuleKind(StrEnum):
    """A family of rules, and the engine module that runs it."""

    ALARM = "alarm"
    """Needs no detection: a press or an uncancelled fall (`alarms.py`)."""
    THRESHOLD = "threshold"
    """A vital sign out of its band, persisting (`thresholds.py`)."""
    SCHEDULE = "schedule"
    """A scheduled measurement not taken (`schedule.py`)."""
    TREND = "trend"
    """Against the person's own history (`trends.py`)."""
    ACTIVITY = "activity"
    """Daily living, learnt per person (`activity.py`)."""
    SUPERVISION = "supervision"
    """The monitoring equipment itself: hub, devices, power (`supervision.py`)."""
    LOG = "log"
    """Something the hub did that is logged, never sent (`supervision.py`)."""


@dataclass(frozen=True)
class PriorityRange:
    """The priorities a person's settings may give the rules of one kind (`RuleKind`).

    Priorities count down: 1 is the most urgent (`telecare_protocol.Priority`), so
    `most_urgent` is the smallest number allowed (a `priority` parameter's floor) and
    `least_urgent` the largest (its ceiling: how far the rule may be demoted)."""

    most_urgent: Priority
    most_urgent_source: str
    least_urgent: Priority
    least_urgent_source: str


_ONLY_ALARMS_AT_1 = ("priority 1 is kept for a person's own call for help and a fall, so nothing else queues "
                     "beside them (TSA: 5 levels, 1 medical/panic; hazard log H5, alarm flood)")
_NEVER_LOGGED_ONLY = ("priority 5 is logged only (alerting/policy.py `logged_only`): a demotion to it would hide the "
                      "alert from everyone; switching the rule off (`enabled`, audited) says so openly")
PRIORITY_RANGES: Mapping[RuleKind, PriorityRange] = MappingProxyType({
    RuleKind.ALARM: PriorityRange(Priority.EMERGENCY, ALARM_FLOOR, Priority.EMERGENCY, ALARM_FLOOR),
    RuleKind.THRESHOLD: PriorityRange(Priority.URGENT, _ONLY_ALARMS_AT_1, Priority.HIGH,
                                      f"{OXIMETRY}; {NEWS2}: urgent (2) and review today (3) bands"),
    RuleKind.SCHEDULE: PriorityRange(Priority.URGENT, _ONLY_ALARMS_AT_1, Priority.SUPERVISION, _NEVER_LOGGED_ONLY),
    RuleKind.TREND: PriorityRange(Priority.URGENT, _ONLY_ALARMS_AT_1, Priority.SUPERVISION, _NEVER_LOGGED_ONLY),
    RuleKind.ACTIVITY: PriorityRange(Priority.URGENT, _ONLY_ALARMS_AT_1, Priority.SUPERVISION, _NEVER_LOGGED_ONLY),
    RuleKind.SUPERVISION: PriorityRange(Priority.URGENT, _ONLY_ALARMS_AT_1, Priority.SUPERVISION,
                                        f"{TSA}; a supervision alert demoted to 5 would tell nobody that the "
                                        "equipment has stopped watching (hazard log H3)"),
    RuleKind.LOG: PriorityRange(Priority.SUPERVISION, f"{TSA}: a hub's log entry is about equipment, at most "
                                "supervision", Priority.RESTORAL, "restoral level: logged, never sent"),
})
"""Each rule family's allowed priorities (its `priority` parameter's floor and ceiling in
`defaults.py`); every catalogue priority lies inside its family's range."""


@dataclass(frozen=True)
class Rule:
    """One catalogue entry (see the module docstring for each field)."""

    rule: RuleId
    title: str
    priority: Priority
    kind: RuleKind
    source: str
    per_device: bool = False
    raised_by: tuple[EventCode, ...] = ()
    cleared_by: tuple[EventCode, ...] = ()


_ENTRIES = (
    Rule(RuleId.PENDANT_ALARM, "Help button pressed", Priority.EMERGENCY, RuleKind.ALARM,
         "a press of the help button is always an alarm (domain brief, 'Falls')",
         raised_by=(EventCode.MANUAL_ALARM,)),
    Rule(RuleId.FALL, "Fall detected (not cancelled by the wearer)", Priority.EMERGENCY, RuleKind.ALARM,
         "a fall the pendant did not have cancelled is an alarm (domain brief, 'Falls')",
         raised_by=(EventCode.FALL_DETECTED,)),
    Rule(RuleId.SPO2_LOW, "SpO2 low (or above target on oxygen)", Priority.URGENT, RuleKind.THRESHOLD,
         f"{OXIMETRY}; {NEWS2}"),
    Rule(RuleId.PULSE_HIGH, "Pulse high", Priority.URGENT, RuleKind.THRESHOLD, NEWS2),
    Rule(RuleId.PULSE_LOW, "Pulse low", Priority.URGENT, RuleKind.THRESHOLD, NEWS2),
    Rule(RuleId.MISSED_MEASUREMENT, "Scheduled SpO2 measurement missed", Priority.HIGH, RuleKind.SCHEDULE,
         OPENTELE),
    Rule(RuleId.SPO2_TREND_SPC, "Daily mean beyond the person's 7-day baseline", Priority.HIGH, RuleKind.TREND, SPC),
    Rule(RuleId.SPO2_TREND_SLOPE, "A steady change over days", Priority.HIGH, RuleKind.TREND, SLOPE),
    Rule(RuleId.SPO2_VARIABILITY, "Day-to-day scatter widened", Priority.HIGH, RuleKind.TREND, SCATTER),
    Rule(RuleId.NIGHT_EXIT, "Door opened at night: the person may have gone out", Priority.URGENT,
         RuleKind.ACTIVITY, ACTIVITY + ": front door opened at night (wandering)"),
    Rule(RuleId.OUT_OF_BED_AT_NIGHT, "Out of bed at night", Priority.URGENT, RuleKind.ACTIVITY, ACTIVITY),
    Rule(RuleId.NO_MORNING_ACTIVITY, "No activity this morning", Priority.HIGH, RuleKind.ACTIVITY, ACTIVITY),
    Rule(RuleId.HOUSE_UNOCCUPIED, "House unoccupied", Priority.HIGH, RuleKind.ACTIVITY,
         ACTIVITY + ": movement near the exit, then no activity anywhere"),
    Rule(RuleId.DOOR_LEFT_OPEN, "Door left open", Priority.HIGH, RuleKind.ACTIVITY, ACTIVITY),
    Rule(RuleId.NIGHT_TOILET_FREQUENCY, "Night-time toilet visits (more than usual)", Priority.HIGH,
         RuleKind.ACTIVITY, ACTIVITY),
    Rule(RuleId.HUB_OFFLINE, "Hub offline: the home is not monitored", Priority.URGENT, RuleKind.SUPERVISION,
         "every link must be supervised: a silent hub is an alarm (domain brief)"),
    Rule(RuleId.HUB_CLOCK_WRONG, "Hub clock wrong", Priority.SUPERVISION, RuleKind.SUPERVISION, CLOCK,
         per_device=True),
    Rule(RuleId.DEVICE_NOT_SEEN, "Device not heard from", Priority.SUPERVISION, RuleKind.SUPERVISION, TSA,
         per_device=True, raised_by=(EventCode.DEVICE_NOT_SEEN,), cleared_by=(EventCode.DEVICE_SEEN_AGAIN,)),
    Rule(RuleId.NO_SIGNAL, "Oximeter gives no signal (probe off?)", Priority.SUPERVISION, RuleKind.SUPERVISION,
         TSA + "; a device that sends but does not measure has stopped watching as surely as one not heard from "
         "(hazard log H3)", per_device=True),
    Rule(RuleId.BATTERY_LOW, "Device battery low", Priority.SUPERVISION, RuleKind.SUPERVISION, TSA,
         per_device=True, raised_by=(EventCode.BATTERY_LOW,), cleared_by=(EventCode.BATTERY_OK,)),
    Rule(RuleId.TAMPER, "Device tampered with", Priority.SUPERVISION, RuleKind.SUPERVISION, TSA,
         per_device=True, raised_by=(EventCode.TAMPER,), cleared_by=(EventCode.TAMPER_CLEARED,)),
    Rule(RuleId.POWER_FAILURE, "Mains power lost at the hub", Priority.SUPERVISION, RuleKind.SUPERVISION, TSA,
         raised_by=(EventCode.POWER_FAILURE,), cleared_by=(EventCode.POWER_RESTORED,)),
    Rule(RuleId.DEVICE_FAULT, "Device fault", Priority.SUPERVISION, RuleKind.SUPERVISION, TSA,
         per_device=True, raised_by=(EventCode.DEVICE_FAULT,)),
    Rule(RuleId.DATA_DROPPED, "Hub shed stored readings (outbox full)", Priority.RESTORAL, RuleKind.LOG,
         "outbox shed readings: logged, never sent (restoral level)", raised_by=(EventCode.DATA_DROPPED,)),
)

CATALOGUE: Mapping[RuleId, Rule] = MappingProxyType({entry.rule: entry for entry in _ENTRIES})
"""Every rule, in `RuleId` order. Looked up by a `RuleId` or by its plain string value."""

HUB_FAULTS: Mapping[str, str] = MappingProxyType({
    "bluetooth_adapter": "Bluetooth adapter unavailable, its Bluetooth devices cannot be heard",
    "zigbee2mqtt": "Zigbee link lost, its Zigbee devices cannot be heard",
    "alarm_unconfirmed": "an alarm was not confirmed by the centre in time",
})
"""What failed, in words, for each `fault` a hub reports about itself in a `device_fault` (its detail
`fault`, as `hub_agent` sends it: `main.py` for the radios, `agent.py` for an unconfirmed alarm)."""


def hub_title(rule: Rule, hub_id: str, detail: Mapping[str, object] | None = None) -> str:
    """The title of an alert raised by what a hub says about itself (an event whose device id is the
    hub's id, its heartbeat, its last will): the rule's, naming the hub and, from the event's
    `detail`, what failed (`HUB_FAULTS`) or how many readings were shed.

    E.g. "Hub hub-1 fault: Bluetooth adapter unavailable, ...", "Mains power lost at hub hub-1".
    At most `_HUB_TITLE_MAX` characters whatever the detail says (an alert's title is stored in 200):
    a fault name the catalogue does not know is cut short, and a number out of all reason left out."""
    detail = detail or {}
    if rule.rule == RuleId.DEVICE_FAULT:
        fault = str(detail.get("fault") or "")
        what = HUB_FAULTS.get(fault, fault.replace("_", " ")[:_UNKNOWN_FAULT_MAX] or "unspecified")
        waited = detail.get("waited_s")
        if fault == "alarm_unconfirmed" and _plausible(waited):
            what = f"an alarm waited {waited:.0f} s for the centre's confirmation"
        return f"Hub {hub_id} fault: {what}"[:_HUB_TITLE_MAX]
    if rule.rule == RuleId.POWER_FAILURE:
        return f"Mains power lost at hub {hub_id}"
    if rule.rule == RuleId.HUB_OFFLINE:
        return f"Hub {hub_id} offline: the home is not monitored"
    if rule.rule == RuleId.DATA_DROPPED:
        count = detail.get("readings_dropped")
        shed = f"{count} stored readings" if isinstance(count, int) and _plausible(count) else "stored readings"
        return f"Hub {hub_id} shed {shed} (outbox full)"
    return f"Hub {hub_id}: {rule.title}"[:_HUB_TITLE_MAX]


_HUB_TITLE_MAX = 200
_UNKNOWN_FAULT_MAX = 60


def _plausible(number: object) -> TypeGuard[int | float]:
    """A count or a duration a title may show: a number from 0 to a billion (never bool, NaN or a 300-digit int)."""
    return isinstance(number, int | float) and not isinstance(number, bool) and 0 <= number < 1e9


def of_kind(*kinds: RuleKind) -> tuple[RuleId, ...]:
    """The rules of these kinds, in catalogue order (e.g. `of_kind(RuleKind.TREND)`)."""
    return tuple(entry.rule for entry in _ENTRIES if entry.kind in kinds)


RAISED_BY: Mapping[EventCode, Rule] = MappingProxyType(
    {code: entry for entry in _ENTRIES for code in entry.raised_by})
"""Device event code → the rule it raises (at most one rule per code)."""
CLEARED_BY: Mapping[EventCode, Rule] = MappingProxyType(
    {code: entry for entry in _ENTRIES for code in entry.cleared_by})
"""Device event code → the rule whose condition it clears (its all-clear)."""
_codes = [code for entry in _ENTRIES for code in entry.raised_by + entry.cleared_by]
if tuple(CATALOGUE) != tuple(RuleId) or len(_codes) != len(set(_codes)):  # a broken catalogue must not load
    raise RuntimeError("the rule catalogue needs one entry per RuleId, in order, and one rule per event code")
PER_DEVICE: frozenset[RuleId] = frozenset(entry.rule for entry in _ENTRIES if entry.per_device)
"""Rules whose condition is about one device (alert subject: the device id)."""
ALARMS: frozenset[RuleId] = frozenset(of_kind(RuleKind.ALARM))
"""The help button (and pull cord) and the fall: always priority 1 and always escalated
(`ALARM_FLOOR`). Their `enabled` and `priority` parameters are fixed at that floor
(`defaults.py`), and `alerting/policy.py` always gives them a chain that reaches the operators."""
CLINICAL_REVIEW: frozenset[RuleId] = frozenset({
    RuleId.SPO2_TREND_SPC, RuleId.SPO2_TREND_SLOPE, RuleId.SPO2_VARIABILITY, RuleId.MISSED_MEASUREMENT,
    RuleId.NIGHT_TOILET_FREQUENCY,
})
"""Rules whose alerts are the community nurses' review tasks, not alarm calls: slow changes over days
and a missed scheduled measurement (COPD telemonitoring: trend alerts precede admissions by days; the
domain brief's telehealth practice). `alerting/policy.py` sends them to the nurses only; the operators'
queue (`monitoring_centre/calls.py`) and the answer-time KPIs (`monitoring_centre/kpis.py`) leave
them out, so a review task is never answered, or counted, as a call."""
if any(not PRIORITY_RANGES[e.kind].most_urgent <= e.priority <= PRIORITY_RANGES[e.kind].least_urgent
       for e in _ENTRIES):
    raise RuntimeError("a catalogue priority lies outside its rule family's PRIORITY_RANGES")
