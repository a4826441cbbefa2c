"""Every rule's default parameters, each naming where it comes from.

One `DEFAULTS` table per rule (`rules.RuleId`): parameter name → `Param(default, source)`.
A rule's `priority` parameter, where it has one, is its catalogue priority and source
(`rules.CATALOGUE`). A person's
overrides (`PersonProfile.rules[rule]`) are checked against these tables: an unknown rule
or parameter, or a value of the wrong kind, is a clear error, never silently ignored.
`Settings` is what a rule reads: the defaults with the person's overrides applied.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time

from detection.rules import ACTIVITY, CATALOGUE, DESIGN, NEWS2, OXIMETRY, SCATTER, SLOPE, SPC, Z2M, RuleId

ParamValue = bool | int | float | str


@dataclass(frozen=True)
class Param:
    default: ParamValue
    source: str



def _priority(rule: RuleId) -> dict[str, Param]:
    """The rule's `priority` parameter: its catalogue priority, citing the catalogue's source."""
    entry = CATALOGUE[rule]
    return {"priority": Param(int(entry.priority), entry.source)}


_PERSISTENCE = {
    "persistence_readings": Param(2, DESIGN + ": spot checks, a second clean reading confirms (re-measure rule)"),
    "continuous_persistence_s": Param(60, DESIGN + ": continuous oximetry must stay out of range >=60 s"),
    "continuous_gap_s": Param(10, DESIGN + ": readings <=10 s apart are a continuous session (PLX 0x2A5F, 1-4 s)"),
    "continuous_max_gap_s": Param(30, DESIGN + ": a longer gap in clean readings restarts the count"),
    "episode_end_readings": Param(3, DESIGN + ": clean in-range readings that end an episode (no Clear is sent)"),
    "episode_end_s": Param(300, DESIGN + ": continuous: in range this long ends an episode"),
}

SPO2_LOW: dict[str, Param] = {
    "scale": Param(0, NEWS2 + ": 0 = use the profile's spo2_scale; 1 or 2 overrides it"),
    "on_oxygen": Param(False, NEWS2 + ": Scale 2 on oxygen scores high saturations"),
    "urgent_at_or_below": Param(92, OXIMETRY + "; NEWS2 Scale 1 scores <=91 as 3"),
    "review_at_or_below": Param(94, OXIMETRY + "; NEWS2 Scale 1 scores 94-95 as 1, 92-93 as 2"),
    "scale2_urgent_at_or_below": Param(83, NEWS2 + " Scale 2: <=83 scores 3"),
    "scale2_review_at_or_below": Param(85, NEWS2 + " Scale 2: 84-85 scores 2"),
    "scale2_oxygen_urgent_at_or_above": Param(97, NEWS2 + " Scale 2 on oxygen: >=97 scores 3"),
    "scale2_oxygen_review_at_or_above": Param(95, NEWS2 + " Scale 2 on oxygen: 95-96 scores 2"),
    **_PERSISTENCE,
}
PULSE_HIGH: dict[str, Param] = {
    "urgent_at_or_above": Param(131, NEWS2 + ": pulse >=131 scores 3"),
    "review_at_or_above": Param(111, NEWS2 + ": pulse 111-130 scores 2"),
    **_PERSISTENCE,
}
PULSE_LOW: dict[str, Param] = {
    "urgent_at_or_below": Param(40, NEWS2 + ": pulse <=40 scores 3"),
    "review_at_or_below": Param(0, NEWS2 + ": 41-50 scores only 1, so no review band by default (0 = off)"),
    **_PERSISTENCE,
}
MISSED_MEASUREMENT: dict[str, Param] = {
    "early_minutes": Param(30, DESIGN + ": a reading this long before the scheduled time counts"),
    **_priority(RuleId.MISSED_MEASUREMENT),
}
_TREND_COMMON = {
    "metric": Param("spo2", DESIGN + ": spo2 or pulse_rate"),
    "eval_interval_s": Param(900, DESIGN + ": trends are re-evaluated at most every 15 min per person"),
}
SPO2_TREND_SPC: dict[str, Param] = {
    "baseline_days": Param(7, SPC),
    "z": Param(1.645, SPC),
    "min_baseline_days": Param(5, DESIGN + ": learning period: days with clean readings before the rule runs"),
    "min_today_readings": Param(2, DESIGN + ": today's mean needs at least this many clean readings"),
    "min_sd": Param(1.0, DESIGN + ": SD floor, so a very steady week does not make 1 point an alarm"),
    "days_needed": Param(2, DESIGN + ": run rule, 2 of the last 3 days beyond the limit (~5% of well days are)"),
    "days_window": Param(3, DESIGN + ": run rule window (Western Electric style)"),
    "direction": Param("low", DESIGN + ": low for SpO2; high for pulse"),
    **_TREND_COMMON,
}
SPO2_TREND_SLOPE: dict[str, Param] = {
    "window_h": Param(72, SLOPE),
    "min_span_h": Param(48, DESIGN + ": the clean readings must span at least 48 h"),
    "min_readings": Param(6, DESIGN),
    "alert_per_day": Param(1.0, DESIGN + ": a decline of >=1 %-point/day"),
    "confidence_z": Param(2.33, DESIGN + ": and the decline must be significant (one-sided 99%)"),
    "baseline_days": Param(7, DESIGN + ": the person's level before the window"),
    "corroborate_sd": Param(1.0, DESIGN + ": the last 24 h at least 1 SD below that level"),
    **_TREND_COMMON,
    "eval_interval_s": Param(43200, DESIGN + ": every 12 h (each look at noisy data is a chance of a false alarm)"),
}
SPO2_VARIABILITY: dict[str, Param] = {
    "window_h": Param(72, SCATTER),
    "baseline_days": Param(7, SCATTER + ": baseline scatter from the days before the window"),
    "alert_sd": Param(4.0, SCATTER),
    "ratio": Param(1.5, DESIGN + ": and at least 1.5x the person's own baseline scatter when learnt"),
    "min_readings": Param(9, DESIGN),
    **_TREND_COMMON,
}
_NIGHT = {
    "night_start": Param("22:00", ACTIVITY + ": out of bed > 45 min between 22:00 and 06:00"),
    "night_end": Param("06:00", ACTIVITY),
}
NIGHT_EXIT: dict[str, Param] = {
    **_NIGHT,
    "preceding_activity_minutes": Param(15, DESIGN + ": indoor activity this recent means the door was an exit"),
    **_priority(RuleId.NIGHT_EXIT),
}
OUT_OF_BED_AT_NIGHT: dict[str, Param] = {
    **_NIGHT,
    "minutes": Param(45, ACTIVITY + ": out of bed for more than 45 minutes between 22:00 and 06:00"),
    "up_from": Param("05:00", DESIGN + ": leaving the bed from 05:00 is getting up (early risers)"),
    **_priority(RuleId.OUT_OF_BED_AT_NIGHT),
}
NO_MORNING_ACTIVITY: dict[str, Param] = {
    "default_deadline": Param("10:00", ACTIVITY + ": no kitchen activity 08:00-12:00; 10:00 while learning"),
    "latest_deadline": Param("12:00", ACTIVITY + ": no kitchen activity 08:00-12:00"),
    "earliest_deadline": Param("07:00", DESIGN),
    "morning_from": Param("05:00", DESIGN + ": activity from this local time counts as getting up"),
    "percentile": Param(90.0, DESIGN + ": 90th percentile of the person's first-activity times"),
    "margin_minutes": Param(60, DESIGN),
    "baseline_days": Param(14, ACTIVITY + ": products learn each person's normal pattern"),
    "min_days": Param(7, DESIGN + ": learning period"),
    **_priority(RuleId.NO_MORNING_ACTIVITY),
}
HOUSE_UNOCCUPIED: dict[str, Param] = {
    "default_hours": Param(8.0, DESIGN + ": while learning"),
    "min_hours": Param(3.0, DESIGN + ": never sooner"),
    "factor": Param(1.5, DESIGN + ": x the person's 90th-percentile outing"),
    "min_outing_minutes": Param(10, DESIGN + ": a shorter silence after a door is not an outing"),
    "baseline_days": Param(28, ACTIVITY),
    "min_outings": Param(5, DESIGN + ": learning period"),
    "night_start": Param("22:00", ACTIVITY),
    "night_grace_minutes": Param(60, DESIGN + ": still out an hour into the night"),
    "late_returns": Param(2, DESIGN + ": came home that late this often in the baseline: a night owl, no alert"),
    **_priority(RuleId.HOUSE_UNOCCUPIED),
}
DOOR_LEFT_OPEN: dict[str, Param] = {
    "minutes": Param(15, ACTIVITY + ": door left open; SCAIP status 'open too long'"),
    **_priority(RuleId.DOOR_LEFT_OPEN),
}
NIGHT_TOILET_FREQUENCY: dict[str, Param] = {
    **_NIGHT,
    "visit_gap_minutes": Param(10, DESIGN + ": toilet events closer than this are one visit"),
    "baseline_nights": Param(28, ACTIVITY + ": frequent night bathroom visits, an early sign of a UTI"),
    "min_nights": Param(7, DESIGN + ": learning period"),
    "sd_factor": Param(2.0, DESIGN + ": mean + 2 SD of the person's nights"),
    "min_visits": Param(4, DESIGN + ": 1-3 visits a night are common in older people"),
    "default_visits": Param(5, DESIGN + ": while learning"),
    **_priority(RuleId.NIGHT_TOILET_FREQUENCY),
}
HUB_OFFLINE: dict[str, Param] = {
    "missed_heartbeats": Param(2, "SCAIP heartbeat: receiver-set interval; 2 missed"),
    "grace_s": Param(60, DESIGN),
    **_priority(RuleId.HUB_OFFLINE),
}
DEVICE_NOT_SEEN: dict[str, Param] = {
    "default_expected_s": Param(25 * 3600, Z2M),
    "grace_s": Param(300, "peers.md: sleepy devices need their own interval and a grace (HA core #78702)"),
    **_priority(RuleId.DEVICE_NOT_SEEN),
}

DEFAULTS: dict[str, dict[str, Param]] = {
    RuleId.PENDANT_ALARM: _priority(RuleId.PENDANT_ALARM),
    RuleId.FALL: _priority(RuleId.FALL),
    RuleId.SPO2_LOW: SPO2_LOW,
    RuleId.PULSE_HIGH: PULSE_HIGH,
    RuleId.PULSE_LOW: PULSE_LOW,
    RuleId.MISSED_MEASUREMENT: MISSED_MEASUREMENT,
    RuleId.SPO2_TREND_SPC: SPO2_TREND_SPC,
    RuleId.SPO2_TREND_SLOPE: SPO2_TREND_SLOPE,
    RuleId.SPO2_VARIABILITY: SPO2_VARIABILITY,
    RuleId.NIGHT_EXIT: NIGHT_EXIT,
    RuleId.OUT_OF_BED_AT_NIGHT: OUT_OF_BED_AT_NIGHT,
    RuleId.NO_MORNING_ACTIVITY: NO_MORNING_ACTIVITY,
    RuleId.HOUSE_UNOCCUPIED: HOUSE_UNOCCUPIED,
    RuleId.DOOR_LEFT_OPEN: DOOR_LEFT_OPEN,
    RuleId.NIGHT_TOILET_FREQUENCY: NIGHT_TOILET_FREQUENCY,
    RuleId.HUB_OFFLINE: HUB_OFFLINE,
    RuleId.DEVICE_NOT_SEEN: DEVICE_NOT_SEEN,
    RuleId.BATTERY_LOW: _priority(RuleId.BATTERY_LOW),
    RuleId.TAMPER: _priority(RuleId.TAMPER),
    RuleId.POWER_FAILURE: _priority(RuleId.POWER_FAILURE),
    RuleId.DEVICE_FAULT: _priority(RuleId.DEVICE_FAULT),
    RuleId.DATA_DROPPED: _priority(RuleId.DATA_DROPPED),
}
for _table in DEFAULTS.values():
    _table.setdefault("enabled", Param(True, DESIGN + ": a rule can be switched off for one person"))
RULES = tuple(DEFAULTS)


class OverrideError(ValueError):
    """A per-person override names an unknown rule or parameter, or has the wrong kind of value."""


def check_value(rule: str, name: str, value: object) -> ParamValue:
    """The override, checked against the default's kind; raises `OverrideError`."""
    table = DEFAULTS.get(rule)
    if table is None:
        raise OverrideError(f"unknown rule {rule!r}; rules are: {', '.join(RULES)}")
    param = table.get(name)
    if param is None:
        raise OverrideError(f"rule {rule!r} has no parameter {name!r}; it has: {', '.join(sorted(table))}")
    default = param.default
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise OverrideError(f"{rule}.{name} must be true or false, not {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise OverrideError(f"{rule}.{name} must be a whole number, not {value!r}")
        if value < 0:
            raise OverrideError(f"{rule}.{name} must not be negative")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OverrideError(f"{rule}.{name} must be a number, not {value!r}")
        if value < 0:
            raise OverrideError(f"{rule}.{name} must not be negative")
        return float(value)
    if not isinstance(value, str):
        raise OverrideError(f"{rule}.{name} must be text, not {value!r}")
    if ":" in default:
        parse_hhmm(value, f"{rule}.{name}")
    elif name == "metric" and value not in ("spo2", "pulse_rate"):
        raise OverrideError(f"{rule}.{name} must be spo2 or pulse_rate")
    elif name == "direction" and value not in ("low", "high"):
        raise OverrideError(f"{rule}.{name} must be low or high")
    return value


def parse_hhmm(text: str, what: str) -> time:
    try:
        hours, minutes = text.split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise OverrideError(f"{what} must be a local time HH:MM, not {text!r}") from None


class Settings:
    """One rule's parameters for one person: defaults, with that person's overrides."""

    def __init__(self, rule: RuleId, overrides: Mapping[str, ParamValue] | None = None) -> None:
        self.rule = rule
        self.values: dict[str, ParamValue] = {name: p.default for name, p in DEFAULTS[rule].items()}
        self.overridden = dict(overrides or {})
        for name, value in self.overridden.items():
            self.values[name] = check_value(rule, name, value)

    def f(self, name: str) -> float:
        return float(self.values[name])  # kinds were checked when the overrides were read

    def i(self, name: str) -> int:
        return int(self.values[name])

    def s(self, name: str) -> str:
        return str(self.values[name])

    def b(self, name: str) -> bool:
        return bool(self.values[name])

    def t(self, name: str) -> time:
        return parse_hhmm(self.s(name), f"{self.rule}.{name}")

    def describe(self) -> dict[str, ParamValue | dict[str, ParamValue]]:
        """For an explanation: the values used, and which were the person's own."""
        return {**self.values, "overridden": dict(self.overridden)}

    def source(self, name: str) -> str:
        return DEFAULTS[self.rule][name].source
