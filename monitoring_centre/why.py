"""What raised an alert, in plain words, for an operator on a call.

Built from the alert's stored explanation (`Alert.explanation`: `{"rule", "why", "evidence":
[...], "detail": {...}}`, where `detail` is the detection engine's explanation of the rule that
fired, `detection/*.py`) and the rule catalogue (`detection.rules.CATALOGUE`). An operator on a
night shift reads one sentence (`summary`) and a few labelled facts: readings with their units
and local times, the band or limit that was crossed, and the person's own baseline when a
learned rule fired. Never a message id, a reading id, a raw key or a JSON fragment: an
explanation this module does not recognise gives the alert's title and the times only.

Times are shown in UK local time (Europe/London), as "03:12, 2 Mar".
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from detection.rules import CATALOGUE, HUB_FAULTS, RuleId
from monitoring_centre.storage import Alert

RULE_IDS = frozenset(rule.value for rule in RuleId)
LOCAL = ZoneInfo("Europe/London")
"""The zone an operator's times are shown in."""

_UNITS = {"spo2": "%", "pulse_rate": "beats a minute"}
_WHAT = {"spo2": "SpO2 (oxygen saturation)", "pulse_rate": "Pulse"}
_SHORT = {"spo2": "SpO2", "pulse_rate": "pulse"}
_DEVICE_WORDS = {
    "personal_trigger": "pendant", "pull_cord": "pull cord", "pulse_oximeter": "oximeter",
    "door_sensor": "door sensor", "motion_sensor": "movement sensor", "bed_monitor": "bed sensor",
    "communication_link": "home hub", "smoke_detector": "smoke alarm",
}
_LOCATION_WORDS = {"front_door": "front door", "back_door": "back door", "bedroom_door": "bedroom door"}


@dataclass(frozen=True)
class Fact:
    """One labelled fact, e.g. ("Latest reading", "90 % at 03:01, 2 Mar")."""

    label: str
    value: str


@dataclass(frozen=True)
class Why:
    """What raised the alert (`GET /api/v1/alerts/{id}/call`, "why")."""

    rule_title: str
    """The rule's title from the catalogue, e.g. "Help button pressed"."""
    summary: str
    """One plain sentence."""
    facts: tuple[Fact, ...]
    repeats: int
    """How many times the condition came again while the alert was open."""
    first_at: datetime
    last_at: datetime


def when(value: object) -> str:
    """An ISO 8601 time (or a datetime) as UK local time, "03:12, 2 Mar"; "" when it is not a time."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return ""
    else:
        return ""
    if moment.tzinfo is None:
        return ""
    local = moment.astimezone(LOCAL)
    return f"{local:%H:%M}, {local.day} {local:%b}"


def clock(value: object) -> str:
    """As `when`, the time of day alone: "03:12"."""
    text = when(value)
    return text.split(",")[0] if text else ""


def number(value: object, places: int = 1) -> str:
    """A number as an operator reads it: 90.0 → "90", 95.07 → "95.1"; "" when not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    rounded = round(float(value), places)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.{places}f}"


def minutes(seconds: object) -> str:
    """A duration in seconds as "45 s", "11 min", "3 h 10 min"; "" when not a number."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        return ""
    if seconds < 90:
        return f"{int(seconds)} s"
    whole = round(seconds / 60)
    if whole < 120:
        return f"{whole} min"
    hours, rest = divmod(whole, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


class _Facts:
    """Facts with empty values left out."""

    def __init__(self) -> None:
        self.items: list[Fact] = []

    def add(self, label: str, value: str) -> None:
        if value:
            self.items.append(Fact(label, value))


def _device(device_id: object, devices: Mapping[str, str], device_type: object = None) -> str:
    """A device in words: its description from the home's books (`devices`), else its type."""
    if isinstance(device_id, str) and device_id in devices:
        return devices[device_id]
    if isinstance(device_type, str) and device_type in _DEVICE_WORDS:
        return _DEVICE_WORDS[device_type]
    return "device"


def _place(location: object) -> str:
    if not isinstance(location, str) or not location:
        return ""
    return _LOCATION_WORDS.get(location, location.replace("_", " "))


def device_words(kind: str, location: str) -> str:
    """How an operator calls a device of the home's books: "front door sensor", "pendant",
    "kitchen movement sensor"."""
    words = _DEVICE_WORDS.get(kind, kind.replace("_", " ")) or "device"
    place = _place(location)
    if not place or place in words or words in place:
        return words
    if place.split()[-1] == words.split()[0]:  # "front door" + "door sensor"
        return f"{place} {words.split(' ', 1)[1]}" if " " in words else place
    return f"{place} {words}"


Builder = Callable[[Alert, Mapping[str, Any], Mapping[str, str], _Facts], str]


def _alarm(alert: Alert, detail: Mapping[str, Any], devices: Mapping[str, str], facts: _Facts) -> str:
    at = detail.get("source_ts") or alert.opened_at
    device = _device(detail.get("device_id"), devices, detail.get("device_type"))
    pull_cord = detail.get("device_type") == "pull_cord"
    facts.add("Raised by", device)
    facts.add("Happened at", when(at))
    facts.add("Reached the centre", when(detail.get("received_at")))
    if detail.get("late") is True:
        facts.add("Sent late", "yes: the hub sent it after a delay, so it happened earlier than it reached us")
    if alert.rule == RuleId.FALL:
        cancelled = detail.get("cancelled_falls_24h")
        if isinstance(cancelled, int) and not isinstance(cancelled, bool):
            facts.add("Falls the wearer cancelled in the last 24 h", str(cancelled))
        return f"The {device} detected a fall at {clock(at)} and the wearer did not cancel it."
    if pull_cord:
        return f"The pull cord was pulled at {clock(at)}."
    return f"The help button on the {device} was pressed at {clock(at)}."


def _threshold(alert: Alert, detail: Mapping[str, Any], devices: Mapping[str, str], facts: _Facts) -> str:
    metric = "spo2" if alert.rule == RuleId.SPO2_LOW else "pulse_rate"
    unit = _UNITS[metric]
    band = _dict(detail.get("band"))
    readings = _dict(detail.get("readings"))
    last = _dict(readings.get("last"))
    shown = readings.get("latest_in_band", last.get("value"))
    value = number(shown, 0)
    band_text = f"{_text(band.get('table'))} {_text(band.get('range'))}".strip()
    name = _text(band.get("name")) or _text(detail.get("urgency"))
    facts.add("Latest reading", f"{value} {unit} at {when(last.get('source_ts'))}" if value else "")
    lowest, highest = number(readings.get("lowest"), 0), number(readings.get("highest"), 0)
    if band.get("side") == "high":
        facts.add("Highest in this run", f"{highest} {unit}" if highest else "")
    else:
        facts.add("Lowest in this run", f"{lowest} {unit}" if lowest else "")
    facts.add("Band", f"{name}: {band_text}" if name and band_text else band_text)
    facts.add("Advice for this band", _text(band.get("action")))
    persistence = _dict(detail.get("persistence"))
    if persistence.get("mode") == "continuous":
        facts.add("How long", f"{minutes(persistence.get('seconds'))} in the band "
                              f"({minutes(persistence.get('needed_s'))} needed to confirm)"
                  if minutes(persistence.get("seconds")) else "")
    elif isinstance(persistence.get("readings"), int):
        facts.add("Readings in the band", f"{persistence['readings']} in a row ({persistence.get('needed', '?')} "
                                          "needed to confirm)")
    first = _dict(readings.get("first"))
    facts.add("First reading in the band", when(first.get("source_ts")))
    beyond = number(readings.get("beyond_band_unconfirmed"), 0)
    facts.add("Also seen", f"{beyond} {unit}, urgent if confirmed" if beyond else "")
    if detail.get("scale") == 2:
        facts.add("Target", "NEWS2 Scale 2 (a lower target, set for this person)"
                  + ("; on oxygen" if detail.get("on_oxygen") else ""))
    what = _SHORT[metric]
    if not value:
        return f"{what.capitalize()} readings were outside the person's range."
    sentence = f"{what.capitalize() if what == 'pulse' else what} was {value} {unit} at {clock(last.get('source_ts'))}"
    if name and band_text:
        sentence += f", in the {name} band ({band_text})"
    action = _text(band.get("action"))
    return sentence + (f": {action}." if action else ".")


def _schedule(alert: Alert, detail: Mapping[str, Any], devices: Mapping[str, str], facts: _Facts) -> str:
    window = detail.get("window")
    opens, closes = (window[0], window[1]) if isinstance(window, list) and len(window) == 2 else (None, None)
    facts.add("Planned for", when(detail.get("scheduled")))
    facts.add("Could be taken", f"{clock(opens)} to {clock(closes)}" if clock(opens) and clock(closes) else "")
    facts.add("Last reading taken", when(detail.get("last_clean_reading")) or "none remembered")
    planned = clock(detail.get("scheduled"))
    return (f"The SpO2 reading planned for {planned} was not taken." if planned
            else "A planned SpO2 reading was not taken.")


def _trend(alert: Alert, detail: Mapping[str, Any], devices: Mapping[str, str], facts: _Facts) -> str:
    metric = _text(detail.get("metric")) or "spo2"
    unit = _UNITS.get(metric, "")
    what = _SHORT.get(metric, metric)
    if alert.rule == RuleId.SPO2_TREND_SPC:
        today, baseline = _dict(detail.get("today")), _dict(detail.get("baseline"))
        days = [d for d in detail.get("days", []) if isinstance(d, Mapping)] if isinstance(
            detail.get("days"), list) else []
        beyond = sum(1 for d in days if d.get("beyond") is True)
        facts.add("Average today", f"{number(today.get('mean'))} {unit} from {today.get('readings', '?')} readings"
                  if number(today.get("mean")) else "")
        facts.add("Their usual average", f"{number(baseline.get('mean'))} {unit} over {baseline.get('days', '?')} days"
                  if number(baseline.get("mean")) else "")
        facts.add("Limit from their own week", f"{number(baseline.get('limit'))} {unit}"
                  if number(baseline.get("limit")) else "")
        facts.add("Days past the limit", f"{beyond} of the last {len(days)}" if days else "")
        low = _dict(detail.get("settings")).get("direction", "low") != "high"
        side = "below" if low else "above"
        return (f"Their average {what} ({number(today.get('mean'))} {unit}) has been {side} their own usual "
                f"range on {beyond} of the last {len(days)} days." if days and number(today.get("mean"))
                else f"Their {what} has moved {side} their own usual range.")
    window = _dict(detail.get("window"))
    hours = number(window.get("hours"), 0)
    behind = _dict(detail.get("readings_behind"))
    facts.add("Over", f"the last {hours} h" if hours else "")
    facts.add("Readings behind it", str(behind["readings"]) if isinstance(behind.get("readings"), int) else "")
    if alert.rule == RuleId.SPO2_TREND_SLOPE:
        slope = detail.get("slope_per_day")
        change = number(abs(slope)) if isinstance(slope, int | float) else ""
        word = "falling" if isinstance(slope, int | float) and slope < 0 else "rising"
        facts.add("Change per day", f"{word} {change} {unit}" if change else "")
        facts.add("Alert from", f"{number(detail.get('threshold_per_day'))} {unit} a day"
                  if number(detail.get("threshold_per_day")) else "")
        return (f"Their {what} has been {word} by about {change} {unit} a day over the last {hours} hours."
                if change else f"Their {what} has changed steadily over days.")
    scatter = number(detail.get("residual_sd"))
    facts.add("Day-to-day scatter", scatter)
    facts.add("Their usual scatter", number(detail.get("baseline_residual_sd")) or "not known yet")
    facts.add("Alert from", number(detail.get("threshold_sd")))
    return (f"Their {what} readings vary more than usual: a scatter of {scatter} (about 2 when well)."
            if scatter else f"Their {what} readings vary more than usual.")


def _activity(alert: Alert, detail: Mapping[str, Any], devices: Mapping[str, str], facts: _Facts) -> str:
    rule = alert.rule
    baseline = _dict(detail.get("baseline"))
    learning = baseline.get("learning") is True
    if rule == RuleId.NIGHT_EXIT:
        event = _dict(detail.get("event"))
        door = _place(event.get("location")) or _device(event.get("device_id"), devices)
        night = _dict(detail.get("night"))
        wait = detail.get("return_minutes")
        facts.add("Door opened", f"{door} at {when(event.get('source_ts'))}")
        facts.add("Last movement indoors", when(detail.get("last_indoor_activity")))
        facts.add("Went to bed", when(detail.get("went_to_bed")))
        facts.add("Their night", f"{_text(night.get('start'))} to {_text(night.get('end'))}"
                  + (" (the default: still learning their bedtime)" if "learning" in _text(night.get("from")) else "")
                  if night.get("start") else "")
        return (f"The {door} opened at {clock(event.get('source_ts'))} in the night and nobody has been seen "
                f"indoors for {wait} minutes since.")
    if rule == RuleId.OUT_OF_BED_AT_NIGHT:
        limit = detail.get("minutes")
        window = detail.get("night")
        facts.add("Got out of bed", when(detail.get("bed_vacated_at")))
        facts.add("Alert after", f"{limit} min out of bed" if isinstance(limit, int) else "")
        facts.add("Night", f"{window[0]} to {window[1]}" if isinstance(window, list) and len(window) == 2 else "")
        return (f"They got out of bed at {clock(detail.get('bed_vacated_at'))} and have not gone back "
                f"for more than {limit} minutes.")
    if rule == RuleId.NO_MORNING_ACTIVITY:
        deadline = _text(baseline.get("deadline"))
        facts.add("Usually up by", deadline + (" (the default while learning their mornings)" if learning else
                                               f" (learned over {baseline.get('days', '?')} days)") if deadline else "")
        facts.add("Last movement seen", when(detail.get("last_activity")) or "none")
        facts.add("Last reading taken", when(detail.get("last_clean_reading")))
        return (f"No movement in the home by {deadline}, when they are usually up." if deadline
                else "No movement in the home this morning.")
    if rule == RuleId.HOUSE_UNOCCUPIED:
        last = _dict(detail.get("last_event"))
        place = _place(last.get("location"))
        limit = number(detail.get("limit_hours"))
        facts.add("Last seen", f"{place} at {when(last.get('at'))}" if place else when(last.get("at")))
        facts.add("Alert after", f"{limit} h away" if limit else "")
        facts.add("Why now", _text(detail.get("why")))
        if not learning and isinstance(baseline.get("outings"), int):
            facts.add("Outings learned", str(baseline["outings"]))
        return (f"Nobody has been seen at home since {clock(last.get('at'))}"
                + (f" ({place})" if place else "") + ", longer than their usual time out.")
    if rule == RuleId.DOOR_LEFT_OPEN:
        door = _device(detail.get("device_id"), devices)
        facts.add("Opened at", when(detail.get("opened_at")))
        facts.add("Alert after", f"{detail.get('minutes')} min open" if isinstance(detail.get("minutes"), int) else "")
        return f"The {door} has been open since {clock(detail.get('opened_at'))}."
    if rule == RuleId.NIGHT_TOILET_FREQUENCY:
        raw = detail.get("visits")
        visits: list[Any] = raw if isinstance(raw, list) else []
        times = ", ".join(clock(v) for v in visits if clock(v))
        facts.add("Visits", times)
        if learning:
            facts.add("Alert from", f"{number(baseline.get('limit'))} visits (the default while learning)")
        else:
            facts.add("Their usual",
                      f"{number(baseline.get('mean'))} a night over {baseline.get('nights', '?')} nights")
            facts.add("Alert above", f"{number(baseline.get('limit'))} visits")
        return f"{len(visits)} toilet visits in the night, more than usual for them."
    return ""


def _supervision(alert: Alert, detail: Mapping[str, Any], devices: Mapping[str, str], facts: _Facts) -> str:
    rule = alert.rule
    event = _dict(detail.get("event"))
    at = event.get("source_ts") or alert.opened_at
    if rule == RuleId.HUB_OFFLINE:
        if "last_heartbeat" in detail:
            facts.add("Last heard from", when(detail.get("last_heartbeat")))
            facts.add("Expected every", minutes(detail.get("interval_s")))
            facts.add("Alert after", minutes(detail.get("limit_s")) + " of silence" if minutes(detail.get("limit_s"))
                      else "")
            return (f"The home hub has not been heard from since {clock(detail.get('last_heartbeat'))}: "
                    "alarms from the home cannot reach the centre.")
        evidence = _last_evidence(alert)
        facts.add("Connection lost", when(evidence.get("received_at")) or when(alert.opened_at))
        return "The home hub lost its connection to the centre: alarms from the home cannot reach us."
    if rule == RuleId.HUB_CLOCK_WRONG:
        facts.add("Clock off by", _text(detail.get("offset")))
        facts.add("Meanwhile", _text(detail.get("consequence")))
        return f"The home hub's clock is wrong ({_text(detail.get('offset')) or 'more than 2 min off'})."
    if rule == RuleId.DEVICE_NOT_SEEN:
        device = _device(detail.get("device_id") or event.get("device_id") or alert.subject, devices)
        facts.add("Last heard from", when(detail.get("last_seen")))
        facts.add("Expected within", minutes(detail.get("expected_within_s")))
        seen = clock(detail.get("last_seen"))
        return f"The {device} has not been heard from" + (f" since {seen}." if seen else ".")
    if rule == RuleId.NO_SIGNAL:
        device = _device(detail.get("device_id") or alert.subject, devices, "pulse_oximeter")
        facts.add("Since", when(detail.get("since")))
        facts.add("Readings with no signal", str(detail["readings"]) if isinstance(detail.get("readings"), int) else "")
        facts.add("Last one", when(detail.get("last_at")))
        return f"The {device} keeps sending readings with no signal (probe off, or a cold finger)."
    if rule == RuleId.POWER_FAILURE:
        beat = _dict(detail.get("heartbeat"))
        since = beat.get("source_ts") or at
        facts.add("On battery since", when(since))
        return f"The mains power at the home is off: the hub has been running on its battery since {clock(since)}."
    device = _device(event.get("device_id") or alert.subject, devices)
    facts.add("Device", device)
    facts.add("At", when(at))
    info = _dict(event.get("detail"))
    if rule == RuleId.BATTERY_LOW:
        level = number(info.get("level") if "level" in info else info.get("battery_pct"), 0)
        facts.add("Battery", f"{level} %" if level else "")
        return f"The {device}'s battery is low" + (f" ({level} %)." if level else ".")
    if rule == RuleId.TAMPER:
        return f"The {device}'s case was opened or moved at {clock(at)}."
    if rule == RuleId.DEVICE_FAULT:
        fault = _text(info.get("fault"))
        what = HUB_FAULTS.get(fault, fault.replace("_", " "))
        facts.add("What failed", what)
        return f"Equipment fault at {clock(at)}" + (f": {what}." if what else ".")
    if rule == RuleId.DATA_DROPPED:
        count = info.get("readings_dropped")
        facts.add("Readings dropped", str(count) if isinstance(count, int) and not isinstance(count, bool) else "")
        return "The home hub dropped stored readings because its store was full."
    return ""


def _last_evidence(alert: Alert) -> Mapping[str, Any]:
    evidence = _dict(alert.explanation).get("evidence")
    return _dict(evidence[-1]) if isinstance(evidence, list) and evidence else {}


def _detail(alert: Alert) -> Mapping[str, Any]:
    """The engine's explanation of the rule that fired: kept on the alert when it opened, or the
    newest evidence's."""
    explanation = _dict(alert.explanation)
    detail = _dict(explanation.get("detail"))
    if detail:
        return detail
    return _dict(_last_evidence(alert).get("explanation"))


_BY_RULE: dict[RuleId, Builder] = {
    RuleId.PENDANT_ALARM: _alarm, RuleId.FALL: _alarm,
    RuleId.SPO2_LOW: _threshold, RuleId.PULSE_HIGH: _threshold, RuleId.PULSE_LOW: _threshold,
    RuleId.MISSED_MEASUREMENT: _schedule,
    RuleId.SPO2_TREND_SPC: _trend, RuleId.SPO2_TREND_SLOPE: _trend, RuleId.SPO2_VARIABILITY: _trend,
    RuleId.NIGHT_EXIT: _activity, RuleId.OUT_OF_BED_AT_NIGHT: _activity, RuleId.NO_MORNING_ACTIVITY: _activity,
    RuleId.HOUSE_UNOCCUPIED: _activity, RuleId.DOOR_LEFT_OPEN: _activity, RuleId.NIGHT_TOILET_FREQUENCY: _activity,
    RuleId.HUB_OFFLINE: _supervision, RuleId.HUB_CLOCK_WRONG: _supervision, RuleId.DEVICE_NOT_SEEN: _supervision,
    RuleId.NO_SIGNAL: _supervision, RuleId.BATTERY_LOW: _supervision, RuleId.TAMPER: _supervision,
    RuleId.POWER_FAILURE: _supervision, RuleId.DEVICE_FAULT: _supervision, RuleId.DATA_DROPPED: _supervision,
}
if set(_BY_RULE) != set(RuleId):
    raise RuntimeError("why.py needs words for every RuleId")


def explain(alert: Alert, devices: Mapping[str, str] | None = None) -> Why:
    """The alert's "why" in plain words. `devices`: each device id of the person's home → how an
    operator calls it ("pendant", "front door sensor"), from the home's books; a device not in
    it is named by its type. Never raises on an explanation of an unexpected shape: what cannot
    be read is left out, and the summary falls back to the alert's title."""
    known = alert.rule in RULE_IDS
    rule_title = CATALOGUE[RuleId(alert.rule)].title if known else alert.title
    facts = _Facts()
    summary = ""
    if known:
        try:
            summary = _BY_RULE[RuleId(alert.rule)](alert, _detail(alert), devices or {}, facts)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError):
            facts = _Facts()
            summary = ""
    if not summary:
        summary = f"{alert.title} (raised at {clock(alert.opened_at)})."
    if alert.repeat_count:
        facts.add("Came again", f"{alert.repeat_count} more time{'s' if alert.repeat_count > 1 else ''}, "
                                f"the last at {when(alert.last_seen_at)}")
    return Why(rule_title=rule_title, summary=summary, facts=tuple(facts.items), repeats=alert.repeat_count,
               first_at=alert.opened_at, last_at=alert.last_seen_at)
