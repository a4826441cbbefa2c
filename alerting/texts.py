"""What a responder reads: the subject, the e-mail body and the text message for an alert.

Written for a neighbour or a daughter woken at 3 a.m., not for an operator: what happened, to
whom, when, where, and what to do (go, accept by the link, call 999 if the person is hurt).
Nothing internal: no chain step, cycle, rule id or alert reference in the text (the reason
each message went stays in the notification log, `Notification.reason`).

A text message is one SMS (160 characters) where the names, the address and the link allow:
`sms_text` tries the fullest wording first and drops the least needed parts (the address's
later lines, then the address, then words) until it fits; the link is never dropped.
"""

from dataclasses import dataclass
from datetime import datetime

from detection.rules import RuleId

SMS_LIMIT = 160
"""Characters in one SMS (GSM 03.38); a longer text is sent as several, joined by the phone."""
CALL_999_RULES = frozenset({RuleId.PENDANT_ALARM, RuleId.FALL})
"""Calls for help: the text says to call 999 if the person is hurt or does not answer."""

WHAT: dict[str, str] = {
    RuleId.PENDANT_ALARM: "{name} pressed the help button",
    RuleId.FALL: "{name} may have fallen",
    RuleId.NIGHT_EXIT: "{name} may have gone out: the door opened at night",
    RuleId.OUT_OF_BED_AT_NIGHT: "{name} has been out of bed at night for a long time",
    RuleId.NO_MORNING_ACTIVITY: "no movement at {name}'s home this morning",
    RuleId.HOUSE_UNOCCUPIED: "{name}'s home seems empty when they should be in",
    RuleId.DOOR_LEFT_OPEN: "a door at {name}'s home has been left open",
    RuleId.SPO2_LOW: "{name}'s oxygen level is outside their safe range",
    RuleId.PULSE_HIGH: "{name}'s pulse is high",
    RuleId.PULSE_LOW: "{name}'s pulse is low",
    RuleId.HUB_OFFLINE: "the alarm equipment at {name}'s home has stopped reporting",
    RuleId.POWER_FAILURE: "the power is off at {name}'s home",
    RuleId.BATTERY_LOW: "a battery is low in {name}'s alarm equipment",
}
"""What happened, by rule, in plain words; other rules use the alert's title ("{title} for {name}")."""


@dataclass(frozen=True)
class Occasion:
    """Why this message goes now, in the words the text uses."""

    reminder: bool = False
    """The alert was acknowledged and is still not resolved."""
    unanswered: bool = False
    """Every responder was asked and nobody has acknowledged."""


def what_happened(rule: str, title: str, name: str) -> str:
    """"Ada Lovelace pressed the help button": the event, with the person's name, first letter capital."""
    template = WHAT.get(rule)
    text = template.format(name=name) if template is not None else f"{title} for {name}"
    return text[:1].upper() + text[1:]


def headline(priority: int) -> str:
    """"Telecare alarm" (priority 1-2), "Telecare alert" (3), "Telecare notice" (4 and lower)."""
    if priority <= 2:
        return "Telecare alarm"
    return "Telecare alert" if priority == 3 else "Telecare notice"


def subject(what: str, occasion: Occasion) -> str:
    """The e-mail subject: what happened, after "Still not resolved:" or "Nobody has answered:"."""
    if occasion.reminder:
        return f"Still not resolved: {what}"
    if occasion.unanswered:
        return f"Nobody has answered: {what}"
    return what


def mail_body(*, what: str, name: str, opened: datetime, address: str, call_999: bool,
              accept: bool, occasion: Occasion, centre_phone: str | None = None) -> str:
    """The e-mail's text, before its links: what and when, where, what to do; to a keyholder, that
    the link also takes "I can't go", and the centre's phone number when the centre has one."""
    lines = [f"{what} at {opened:%H:%M} on {opened:%a %d %b}."]
    if occasion.reminder:
        lines.append("Someone at the centre said they were dealing with it, and it is still not resolved.")
    elif occasion.unanswered:
        lines.append("Everyone on the list has been asked, and nobody has answered yet.")
    if address.strip():
        lines += ["", f"Where: {' '.join(address.split())}"]
    lines.append("")
    if accept:
        lines += [f"Can you go to {name} now? If you can, open the link below to say you are going.",
                  "You will then be shown how to get in.",
                  "If you cannot go, open the same link and say so, and the centre will ask someone else."]
        if centre_phone:
            lines.append(f"To speak to the monitoring centre, call {centre_phone}.")
    else:
        lines.append("Please open the alarm queue and deal with it.")
    if call_999:
        lines.append(f"If {name} is hurt or does not answer, call 999.")
    return "\n".join(lines)


def sms_text(*, head: str, what: str, opened: datetime, address: str, call_999: bool,
             accept_url: str | None) -> str:
    """The text message: one SMS where possible (see the module docstring), the link always in.
    Wordings, fullest first: the whole address, then its first line, then none; each with the
    long and then the short asking and 999 advice. The first that fits is sent, else the last."""
    when = f"{opened:%H:%M}"
    asks = ((f"Can you go? Accept: {accept_url}", f"Can you go? {accept_url}", f"Go? {accept_url}") if accept_url
            else ("Please open the alarm queue.", "See the alarm queue.", "See the queue."))
    helps = ("If hurt or not answering, call 999.", "If hurt, call 999.") if call_999 else ("", "")
    full = " ".join(address.split())
    first_line = full.split(",")[0].strip()
    candidates = []
    for where in [w for w in dict.fromkeys((full, first_line)) if w] + [""]:
        place = f", {where}" if where else ""
        for asking, help_line in ((asks[0], helps[0]), (asks[1], helps[0]), (asks[1], helps[1]), (asks[2], helps[1])):
            parts = (f"{head}: {what} at {when}{place}.", asking, help_line)
            candidates.append(" ".join(part for part in parts if part))
    for text in candidates:
        if len(text) <= SMS_LIMIT:
            return text
    return candidates[-1]
