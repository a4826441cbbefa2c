"""Call scripts: what an operator says and does for each kind of alarm, step by step.

Kept as data (`storage.CallScript`, one row per rule) that administrators edit; every edit
is audited with the script before and after. Migration 0006 seeds `DEFAULT_SCRIPTS`, and a
rule with no row (a rule added after the seed) is answered with its default here, so every
`detection.rules.RuleId` always has a script.

The defaults follow UK telecare practice (domain brief, "Monitoring-centre practice"): speak
to the person through the hub first, "if in doubt, go out", keyholders in the person's
order, 999 for anyone hurt, unresponsive or in danger, and a reason recorded for any
decision not to send someone.
"""

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from detection.rules import CATALOGUE, RuleId
from monitoring_centre import audit
from monitoring_centre.storage import CallScript, utc_now

MAX_STEPS = 30
MAX_STEP_CHARS = 1000
_RULES = frozenset(rule.value for rule in RuleId)
SEED_ACTOR = "seed"
"""`CallScript.updated_by` of a default script written by the migration."""

_IF_NO_ANSWER = ("If there is no answer, or you are in any doubt, send the first keyholder who can go now; "
                 "if nobody can go within 30 minutes, send the responder team.")
_ALARM_SAFETY = "If they are hurt, cannot get up, or do not answer at all, call 999 and then tell a keyholder."
_CLINICAL_READ = ("Read the readings and times on this screen: say what the numbers are and when they were "
                  "taken; do not give a diagnosis.")
_EQUIPMENT = ("The person is not at risk from this alone, but while it lasts they are less protected: "
              "say so if you speak to them.")

DEFAULT_SCRIPTS: dict[RuleId, tuple[str, tuple[str, ...]]] = {
    RuleId.PENDANT_ALARM: ("Help button or pull cord", (
        "Speak to the person through the hub: give your name and say you are from the monitoring centre.",
        "Ask whether they are all right and what help they need.",
        "If they pressed it by accident, check they are well and record a false alarm.",
        _ALARM_SAFETY,
        _IF_NO_ANSWER,
        "Record what you did on this call before you close it.",
    )),
    RuleId.FALL: ("Fall detected", (
        "Speak to the person through the hub: say that their pendant thinks they have fallen.",
        "Ask whether they have fallen, whether they are hurt and whether they can get up safely.",
        "Tell them not to get up if they are hurt or unsure; stay on the line.",
        _ALARM_SAFETY,
        "If they are on the floor and not hurt, send a keyholder or the responder team to help them up "
        "(a long lie is harmful even without an injury).",
        _IF_NO_ANSWER,
    )),
    RuleId.SPO2_LOW: ("Low oxygen level", (
        _CLINICAL_READ,
        "Call the person and ask how their breathing is now, and whether they are more breathless than usual.",
        "Ask them to sit up, rest for a few minutes and take a new reading with the probe on a warm finger.",
        "If the band is urgent (999/A&E), or they are very breathless, confused, or their lips look blue, call 999.",
        "If the band is 'review today', tell them to contact their GP or NHS 111 today, and tell the nurse on duty.",
        "If you cannot reach them, send a keyholder or the responder team.",
    )),
    RuleId.PULSE_HIGH: ("High pulse", (
        _CLINICAL_READ,
        "Call the person and ask how they feel: chest pain, breathlessness, dizziness or palpitations?",
        "If they have chest pain, are very breathless, or faint, call 999.",
        "Otherwise ask them to rest and take a new reading in 5 minutes; tell the nurse on duty.",
        "If you cannot reach them, send a keyholder or the responder team.",
    )),
    RuleId.PULSE_LOW: ("Low pulse", (
        _CLINICAL_READ,
        "Call the person and ask how they feel: dizzy, faint, confused or unusually tired?",
        "If they have fainted, are confused, or have chest pain, call 999.",
        "Otherwise ask them to take a new reading sitting down; tell the nurse on duty.",
        "If you cannot reach them, send a keyholder or the responder team.",
    )),
    RuleId.MISSED_MEASUREMENT: ("Reading not taken", (
        "Call the person and remind them to take their reading now.",
        "Ask whether anything is stopping them (the oximeter, feeling unwell, being out).",
        "If they do not answer, try their other numbers, then a keyholder, to check they are all right.",
        "Tell the nurse on duty if they cannot take it today.",
    )),
    RuleId.SPO2_TREND_SPC: ("Oxygen level lower than their usual", (
        "This is for the nurses' review, not an emergency: their readings are below their own usual week.",
        "Tell the nurse on duty, giving the figures on this screen.",
        "If you speak to the person and they feel worse or more breathless, follow the low oxygen script.",
    )),
    RuleId.SPO2_TREND_SLOPE: ("Readings changing steadily over days", (
        "This is for the nurses' review, not an emergency: their readings have moved steadily over days.",
        "Tell the nurse on duty, giving the figures on this screen.",
        "If you speak to the person and they feel worse or more breathless, follow the low oxygen script.",
    )),
    RuleId.SPO2_VARIABILITY: ("Readings more unsettled than usual", (
        "This is for the nurses' review, not an emergency: their readings vary more from day to day than usual.",
        "Tell the nurse on duty, giving the figures on this screen.",
        "If you speak to the person and they feel unwell, ask how, and send help if in doubt.",
    )),
    RuleId.NIGHT_EXIT: ("Door opened at night", (
        "Speak to the person through the hub, then call their phone: are they at home and safe?",
        "If they answer and are at home, check they are all right and remind them the door is open if it is.",
        "If there is no answer, send the first keyholder who can go now to check the home; "
        "if nobody can go at once, send the responder team.",
        "If they may have gone out and are at risk (dementia, the cold, the dark), call 999 and ask for the police.",
    )),
    RuleId.OUT_OF_BED_AT_NIGHT: ("Out of bed at night", (
        "Speak to the person through the hub: are they all right, have they fallen?",
        "If they have fallen or are hurt, follow the fall script.",
        _IF_NO_ANSWER,
    )),
    RuleId.NO_MORNING_ACTIVITY: ("No movement this morning", (
        "Call the person: they have not moved about the home by the time they usually do.",
        "If they answer, check they are well (they may have slept in or be out).",
        "If there is no answer, try their other numbers, then send the first keyholder who can go; "
        "if nobody can go within 30 minutes, send the responder team.",
    )),
    RuleId.HOUSE_UNOCCUPIED: ("Nobody home for longer than usual", (
        "Call the person's mobile if they have one: they left the home longer ago than usual.",
        "Ask a keyholder whether they know where the person is.",
        "If nobody knows where they are and they may be at risk, call 999 and ask for the police.",
    )),
    RuleId.DOOR_LEFT_OPEN: ("Door left open", (
        "Speak to the person through the hub or call them: a door has been open for a long time.",
        "Ask them to close it if they can; if they cannot, or do not answer, send a keyholder.",
    )),
    RuleId.NIGHT_TOILET_FREQUENCY: ("More night-time toilet visits than usual", (
        "This is for the nurses' review, not an emergency: it can be a sign of an infection.",
        "Tell the nurse on duty; if you speak to the person, ask whether they feel unwell or confused.",
    )),
    RuleId.HUB_OFFLINE: ("Home hub offline", (
        "The home is not monitored while the hub is offline: alarms cannot reach us.",
        "Call the person: check they are well, and ask whether the power or the hub's plug is off.",
        "If there is no answer, send a keyholder to check the person and the hub.",
        "Book an engineer visit if it is not back within the hour.",
    )),
    RuleId.HUB_CLOCK_WRONG: ("Home hub clock wrong", (
        _EQUIPMENT,
        "No call to the person is needed. Book an engineer to check the hub's network and time.",
    )),
    RuleId.DEVICE_NOT_SEEN: ("A device has gone quiet", (
        _EQUIPMENT,
        "Call the person: ask whether the device named here is in place and switched on.",
        "If it stays quiet, book an engineer visit.",
    )),
    RuleId.NO_SIGNAL: ("Oximeter gives no reading", (
        "Call the person: the oximeter sends readings but measures nothing (probe off, or a cold finger).",
        "Ask them to put the probe back on a warm finger and keep still for a minute.",
        "If it still gives nothing, book an engineer and tell the nurse on duty.",
    )),
    RuleId.BATTERY_LOW: ("Device battery low", (
        _EQUIPMENT,
        "Book a battery change; if the device is a pendant or smoke alarm, do it within a day.",
    )),
    RuleId.TAMPER: ("Device tampered with", (
        "Call the person: a device's case has been opened or moved.",
        "If they did not do it, or do not answer, send a keyholder to check the home.",
        "Book an engineer to check the device.",
    )),
    RuleId.POWER_FAILURE: ("Power cut at the home", (
        "The hub runs on its battery: check the person is well, warm and has light.",
        "If they are vulnerable to the cold or use powered equipment (oxygen), send a keyholder.",
        "If the power is not back in a few hours, call them again.",
    )),
    RuleId.DEVICE_FAULT: ("Equipment fault", (
        _EQUIPMENT,
        "Read what failed on this screen; book an engineer visit.",
        "If it is the hub's radio, the person's pendant may not reach us: call them and say so.",
    )),
    RuleId.DATA_DROPPED: ("Hub dropped stored readings", (
        "Nothing for the person: the hub could not keep every reading while it was offline.",
        "Tell the nurse on duty if the person is on clinical monitoring.",
    )),
}
"""A default script for every rule: (title, steps)."""
if set(DEFAULT_SCRIPTS) != set(RuleId):  # a rule without a script must not load
    raise RuntimeError("call_scripts.DEFAULT_SCRIPTS needs a script for every RuleId")


@dataclass(frozen=True)
class Script:
    """One rule's script as the operator reads it."""

    rule: str
    title: str
    steps: tuple[str, ...]
    updated_at: datetime | None
    """None for a default not yet stored."""
    updated_by: str


class UnknownRule(ValueError):
    pass


class BadScript(ValueError):
    """The title or steps are empty or too long."""


def default(rule: RuleId) -> Script:
    title, steps = DEFAULT_SCRIPTS[rule]
    return Script(rule.value, title, steps, None, SEED_ACTOR)


def _of(row: CallScript) -> Script:
    return Script(row.rule, row.title, tuple(str(step) for step in row.steps), row.updated_at, row.updated_by)


def all_scripts(session: Session) -> list[Script]:
    """Every rule's script, in catalogue order: the stored one, or the default."""
    stored = {row.rule: row for row in session.scalars(select(CallScript))}
    return [_of(stored[rule.value]) if rule.value in stored else default(rule) for rule in CATALOGUE]


def script_for(session: Session, rule: str) -> Script:
    """The script for an alert's rule: the stored one, the default, or (an unknown rule)
    a general one made of the pendant alarm's first and last steps."""
    row = session.get(CallScript, rule)
    if row is not None:
        return _of(row)
    if rule in _RULES:
        return default(RuleId(rule))
    general = default(RuleId.PENDANT_ALARM)
    return Script(rule, "Alarm", general.steps, None, SEED_ACTOR)


def set_script(session: Session, rule: str, title: str, steps: list[str], by: str) -> Script:
    """Store the administrator's script for `rule`, audited ("edit_call_script") with the script
    before and after as JSON. Raises `UnknownRule` for a rule not in the catalogue and `BadScript`
    for an empty title, no steps, an empty step, more than `MAX_STEPS` steps or a step over
    `MAX_STEP_CHARS` characters. The caller commits."""
    if rule not in _RULES:
        raise UnknownRule(f"no such rule: {rule!r}")
    title = title.strip()
    cleaned = [step.strip() for step in steps]
    if not title:
        raise BadScript("a script needs a title")
    if not cleaned or any(not step for step in cleaned):
        raise BadScript("a script needs at least one step, and no step may be empty")
    if len(cleaned) > MAX_STEPS or any(len(step) > MAX_STEP_CHARS for step in cleaned):
        raise BadScript(f"at most {MAX_STEPS} steps of at most {MAX_STEP_CHARS} characters each")
    before = script_for(session, rule)
    row = session.get(CallScript, rule)
    now = utc_now()
    if row is None:
        row = CallScript(rule=rule, title=title, steps=cleaned, updated_at=now, updated_by=by)
        session.add(row)
    else:
        row.title, row.steps, row.updated_at, row.updated_by = title, cleaned, now, by
    after = _of(row)
    audit.record(session, by, "edit_call_script", [None], json.dumps({
        "rule": rule, "before": {"title": before.title, "steps": list(before.steps)},
        "after": {"title": after.title, "steps": list(after.steps)}}))
    return after
