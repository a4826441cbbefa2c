"""The person's own page (`/me`) and a family member's (`/family`), in plain words, readable on a
phone (390 px wide, no sideways scrolling): no operator controls.

- `/me` (role person): their readings and alerts in words ("Your oxygen level this morning was
  96 %, which is normal for you"), who can see their record (with give and withdraw for a family
  member), who looked at it and when (from the audit log), their planned absences and a form to
  add one. Changes go through the API (`/api/v1/patients/{id}/consent`, `/absences`), audited there.
- `/family` (role family): each person who consented, their alerts and readings in words (consent
  is to the whole of that view today: there is no per-part consent yet), and the open keyholder
  requests to accept or decline (`alerting/keyholder_requests.py`).

"Normal for you" means outside the person's own alert bands (`monitoring_centre.vital_series.bands_for`,
the same bands the engine alerts on); a reading never says more than that: the page always adds
that feeling unwell matters whatever the number (pulse oximeters read high on darker skin).
"""

import re
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from alerting import keyholder_requests
from centre_app.api.deps import Db, centre
from centre_app.pages.rendering import page_roles, render
from detection.rules import CLINICAL_REVIEW, RuleId
from monitoring_centre import audit, own_record, person_settings, vital_series
from monitoring_centre.access import visible_people
from monitoring_centre.alerts import PLAIN_OUTCOMES
from monitoring_centre.roles import Role
from monitoring_centre.storage import Alert, AuditEntry, Person, User, utc_now
from telecare_protocol.codes import Metric

router = APIRouter(include_in_schema=False)

PersonUser = Annotated[User, Depends(page_roles(Role.PERSON))]
FamilyUser = Annotated[User, Depends(page_roles(Role.FAMILY))]

WHAT = {Metric.SPO2: "oxygen level", Metric.PULSE_RATE: "pulse"}
UNIT = {Metric.SPO2: " %", Metric.PULSE_RATE: " beats a minute"}
ROLE_WORDS = {"nurse": "Nurse", "team_lead": "Nurse team lead", "operator": "Operator", "admin": "Administrator",
              "family": "Your family member", "person": ""}
ACTION_WORDS: dict[str, str | None] = {
    # Every audit action, in plain words for the person; None: not about the person's data, not listed.
    "view_readings": "looked at your readings", "view_patient": "looked at your details",
    "view_record": "looked at your record", "view_caseload": "saw you on their list of patients",
    "view_patient_list": "saw your name on the list of people the centre looks after",
    "view_alerts": "looked at your alarms", "view_alert_history": "looked at your past alarms",
    "view_activity": "looked at your daily activity", "view_rule_settings": "looked at your alarm settings",
    "change_rule_setting": "changed your alarm settings", "view_absences": "looked at your planned time away",
    "plan_absence": "added a planned time away", "cancel_absence": "cancelled a planned time away",
    "give_consent": "let a family member see your record",
    "withdraw_consent": "stopped a family member seeing your record",
    "review_task": "wrote a review of your readings",
    "view_review_tasks": "looked at the reviews of your readings still to do",
    "view_review_notes": "read the reviews of your readings",
    "refused": "tried to look at your record and was stopped",
    "show_access_details": "was given the key safe code for your home",
    "acknowledge_alert": "answered an alarm of yours", "resolve_alert": "closed an alarm of yours",
    "take_call": "took your alarm call", "release_call": "handed your alarm call to another operator",
    "view_call": "looked at your alarm call", "view_calls": "saw your alarm call in the list of calls",
    "add_call_note": "wrote a note about your alarm call",
    "view_handover": "saw you in the notes passed to the next shift",
    "add_handover_note": "wrote a note about you for the next shift",
    "view_escalation": "looked at who we contact about your alarm",
    "view_access_list": "looked at who can see your record", "view_audit": "looked at who has seen your record",
    "view_caseload_assignments": "looked at which nurses look after you",
    "assign_caseload": "chose a nurse or team to look after you",
    "unassign_caseload": "changed which nurse or team looks after you",
    "add_team_member": "changed who is in the nursing team that looks after you",
    "remove_team_member": "changed who is in the nursing team that looks after you",
    "view_frailty": "looked at your frailty score", "change_frailty": "recorded your frailty score",
    "fhir_read": "read your record through the GP system",
    "fhir_write": "recorded your frailty score through the GP system",
    "keyholder_accepted": "said they would come to you",
    "keyholder_declined": "said they could not come to you",
    "decline_accept_link": "said they could not come to you",
    "open_accept_link": "opened the message asking them to come to you",
    "accept_refused": "tried to answer an old message about an alarm (it no longer worked)",
    "view_keyholder_requests": "saw a request to come to you",
    "edit_caller_record": "changed the notes the centre reads when you call",
    "change_contacts": "changed who we contact when you need help",
    "enrol_home": "set up the equipment in your home", "add_device": "added equipment to your home",
    "remove_device": "took equipment out of your home", "retire_home": "took the equipment out of your home",
    "change_service": "changed the service you have", "create_user": "made your account",
    "change_user": "changed your account", "disable_user": "switched off your account",
    "reset_password": "reset your password",
    "notify_responder": "contacted someone about an alarm of yours",
    # Not about the person's data: the page lists of everything, sign-out, the centre's own set-up.
    "view_users": None, "view_devices": None, "view_caseloads": None, "logout": None,
    "console_sound_muted": None, "console_sound_on": None, "create_team": None, "create_responder": None,
    "edit_call_script": None, "test_responder": None, "test_responder_refused": None,
    "test_responder_result": None, "fhir_token": None, "fhir_client_registered": None,
    "fhir_client_deactivated": None, "view_kpi_calls": None, "change_responder": None, "retire_responder": None,
}
NOTIFIED = re.compile(r"^alert \d+ to (?P<name>.+) \((?P<channel>[a-z0-9_+-]+)\):")
"""The detail of a `notify_responder` row (`alerting/escalator.py`): whom, by which channel."""
FHIR_ACTOR = "fhir-client:"
"""The actor prefix of the GP system's reads and writes (`centre_app/fhir_gateway/clients.py`)."""
CHANNEL_WORDS = {"email": "e-mailed", "notify-email": "e-mailed", "mailto": "e-mailed", "mailtos": "e-mailed",
                 "notify-sms": "sent a text message to", "sms": "sent a text message to"}
LOOKS_PER_PAGE = 20
STATUS_WORDS = {"open": "The centre is dealing with it now.", "acknowledged": "The centre is dealing with it.",
                "in_progress": "Someone is on the way or helping.", "resolved": "This was dealt with",
                "closed": "This was dealt with"}


def _zone(request: Request) -> ZoneInfo:
    return ZoneInfo(centre(request).settings.timezone)


def when_words(at: datetime, now: datetime, zone: ZoneInfo) -> str:
    """"this morning at 08:05", "yesterday at 19:05", "on 3 June at 10:14" (local time)."""
    local, today = at.astimezone(zone), now.astimezone(zone).date()
    clock = local.strftime("%H:%M")
    if local.date() == today:
        part = "morning" if local.hour < 12 else "afternoon" if local.hour < 18 else "evening"
        return f"this {part} at {clock}"
    if local.date() == today - timedelta(days=1):
        return f"yesterday at {clock}"
    return f"on {local.day} {local.strftime('%B')} at {clock}"


def _number(value: float) -> str:
    return str(int(value + 0.5))


def reading_words(session: Session, person: Person, metric: Metric, whose: str, now: datetime,
                  zone: ZoneInfo) -> dict[str, Any] | None:
    """The latest clean reading of the last 7 days in words, whether it is normal for the person,
    and the week's range; None when there is none."""
    week = own_record.clean_readings(session, person.id, metric, now - timedelta(days=7), now)
    if not week:
        return None
    latest = week[0]
    shown = int(latest.value + 0.5)
    bands, _table, _news2 = vital_series.bands_for(session, person.id, metric)
    band = next((b for b in bands if (b.low is None or shown >= b.low) and (b.high is None or shown <= b.high)), None)
    what = f"{whose} {WHAT[metric]}"
    sentence = f"{what[:1].upper()}{what[1:]} {when_words(latest.at, now, zone)} was {shown}{UNIT[metric]}"
    if band is None:
        sentence += ", which is normal for " + ("you" if whose == "Your" else "them") + "."
        level = "normal"
    elif band.name == "urgent":
        sentence += ", which is in the range where the care team would act at once."
        level = "urgent"
    else:
        sentence += ", which is in the range the care team reviews the same day."
        level = "review"
    low, high = min(r.value for r in week), max(r.value for r in week)
    spread = (f"Over the last 7 days it was between {_number(low)} and {_number(high)}{UNIT[metric]} "
              f"({len(week)} reading{'s' if len(week) != 1 else ''}).")
    return {"metric": metric.value, "sentence": sentence, "spread": spread, "level": level}


REVIEW_WORDS = {
    RuleId.SPO2_TREND_SPC: "{whose} oxygen readings have been lower than usual for {them} over the last few days",
    RuleId.SPO2_TREND_SLOPE: "{whose} oxygen readings have been changing steadily over the last few days",
    RuleId.SPO2_VARIABILITY: "{whose} oxygen readings have varied more than usual from day to day",
    RuleId.MISSED_MEASUREMENT: "A planned oxygen measurement was not taken",
    RuleId.NIGHT_TOILET_FREQUENCY: "More trips to the toilet at night than usual",
}
"""A nurse's review task (`CLINICAL_REVIEW`) in plain words for the person and their family: its title is
the clinician's ("Daily mean 93.0 below the person's 7-day baseline ...")."""
REVIEW_STATUS_WORDS = {"open": "The nurses will look at it.", "acknowledged": "The nurses are looking at it.",
                       "in_progress": "The nurses are looking at it.", "resolved": "The nurses looked at it.",
                       "closed": "The nurses looked at it."}


def alert_words(alert: Alert, now: datetime, zone: ZoneInfo, you: str = "you",
                going: keyholder_requests.Going | None = None, own_responder: int | None = None) -> str:
    """"This morning at 10:14: Help button pressed. This was dealt with: someone came to see you."
    (`you`: "you" on the person's own page, their first name on the family's); while someone is
    on the way, who (`going`; "You said you are going" to the responder who is, `own_responder`).
    A nurse's review task in plain words (`REVIEW_WORDS`): "Yesterday at 12:58: Your oxygen readings
    have been lower than usual for you over the last few days. The nurses will look at it."
    """
    when = when_words(alert.opened_at, now, zone)
    if alert.rule in CLINICAL_REVIEW:
        whose, them = ("Your", "you") if you == "you" else (f"{you}'s", "them")
        words = REVIEW_WORDS.get(RuleId(alert.rule))
        what = words.format(whose=whose, them=them) if words is not None else alert.title
        return f"{when[:1].upper()}{when[1:]}: {what}. {REVIEW_STATUS_WORDS.get(alert.status, '')}"
    status = STATUS_WORDS.get(alert.status, "")
    if going is not None and alert.status in ("acknowledged", "in_progress"):
        status = ("You said you are going." if own_responder is not None and going.responder_id == own_responder
                  else f"{going.responder_name} is on the way.")
    text = f"{when[:1].upper()}{when[1:]}: {alert.title}. {status}"
    if alert.status in ("resolved", "closed"):
        outcome = PLAIN_OUTCOMES.get(alert.outcome or "", "").format(you=you)
        text += f": {outcome}." if outcome else "."
    return text


def _alert_lines(session: Session, person: Person, now: datetime, zone: ZoneInfo, you: str,
                 own_responder: int | None = None) -> list[str]:
    """The person's alerts of the last 30 days in words, saying who is on the way."""
    recent = own_record.recent_alerts(session, person.id, now - timedelta(days=30))
    going = keyholder_requests.who_is_going(session, (a.id for a in recent))
    return [alert_words(a, now, zone, you, going.get(a.id), own_responder) for a in recent]


def _actor_words(entry: AuditEntry, accounts: dict[str, User]) -> str:
    if entry.actor.startswith("system:") or entry.actor == "system":
        return "The monitoring centre"
    if entry.actor.startswith("responder:"):
        return entry.actor.split(":", 2)[-1]
    if entry.actor.startswith(FHIR_ACTOR):
        return "Your GP's system"
    account = accounts.get(entry.actor)
    if account is None:
        return "Someone who no longer has an account"
    role = ROLE_WORDS.get(account.role, "Someone at the centre")
    return f"{role} {account.display_name or account.username}".strip()


def action_words(entry: AuditEntry) -> str | None:
    """What the audit row did, in the person's words; None when it is not about their data (or an
    action this table does not know: never shown in system terms)."""
    if entry.action == "notify_responder":
        sent = NOTIFIED.match(entry.detail)
        if sent is not None:
            return f"{CHANNEL_WORDS.get(sent['channel'], 'sent a message to')} {sent['name']} about an alarm of yours"
    return ACTION_WORDS.get(entry.action)


def looks(session: Session, person: Person, user: User) -> list[own_record.LookGroup]:
    """Who looked at or changed the person's record, in words, repeats grouped, newest first; the
    person's own visits left out."""
    entries = own_record.looked(session, person.id, leave_out=user.username)
    accounts = own_record.accounts(session, {entry.actor for entry in entries})
    said = ((entry, action_words(entry)) for entry in entries)
    return own_record.group_looks(own_record.Look(_actor_words(entry, accounts), what, entry.at)
                                  for entry, what in said if what is not None)


def look_words(group: own_record.LookGroup, now: datetime, zone: ZoneInfo) -> str:
    """"Nurse Jane Smith looked at your readings this morning at 10:14", or for repeats "... 7 times
    between 10:02 and 10:09 this morning"."""
    if group.count == 1:
        return f"{group.who} {group.what} {when_words(group.last, now, zone)}"
    first, last = group.first.astimezone(zone), group.last.astimezone(zone)
    day = when_words(group.last, now, zone).rsplit(" at ", 1)[0]
    return (f"{group.who} {group.what} {group.count} times between {first:%H:%M} and {last:%H:%M} {day}")


def viewer_words(viewer: own_record.Viewer) -> str:
    """"Nurse Jane Smith: your nurse, and in team North, which looks after you"."""
    reasons: list[str] = []
    if viewer.consent_since is not None:
        since = viewer.consent_since
        reasons.append(f"because you said yes on {since.day} {since.strftime('%B %Y')}")
    if viewer.direct and viewer.consent_since is None:
        reasons.append("your nurse" if viewer.role in ("nurse", "team_lead") else "looks after you")
    if viewer.teams:
        names = " and ".join(viewer.teams)
        reasons.append(f"in the nursing team {names}, which looks after you" if len(viewer.teams) == 1
                       else f"in the nursing teams {names}, which look after you")
    role = {"nurse": "Nurse", "team_lead": "Nurse"}.get(viewer.role, "")
    return f"{role} {viewer.name}".strip() + ": " + ", and ".join(reasons)


CENTRE_STAFF = ("Staff at the monitoring centre who answer your alarms",
                "The centre's administrators, to run the service")


def looked_words(session: Session, person: Person, user: User, now: datetime, zone: ZoneInfo,
                 page: int = 1) -> tuple[list[str], bool]:
    """One page (newest first) of `looks` in words, and whether there are older ones."""
    groups = looks(session, person, user)
    start = (page - 1) * LOOKS_PER_PAGE
    shown = groups[start:start + LOOKS_PER_PAGE]
    return [look_words(group, now, zone) for group in shown], len(groups) > start + LOOKS_PER_PAGE


@router.get("/me", response_class=HTMLResponse)
def me(request: Request, user: PersonUser, session: Db, page: Annotated[int, Query(ge=1, le=1000)] = 1) -> HTMLResponse:
    """The person's own record in plain words (see the module docstring)."""
    person = session.get(Person, user.person_id) if user.person_id is not None else None
    if person is None:
        return render(request, user, "person/me.html", title="My record", person=None)
    now, zone = utc_now(), _zone(request)
    readings = [words for metric in (Metric.SPO2, Metric.PULSE_RATE)
                if (words := reading_words(session, person, metric, "Your", now, zone)) is not None]
    alerts = _alert_lines(session, person, now, zone, "you")
    viewers = [{"username": v.username, "name": v.name, "role": v.role, "text": viewer_words(v),
                "consent": v.consent_since is not None} for v in own_record.viewers(session, person.id)]
    looked, older = looked_words(session, person, user, now, zone, page)
    absences = [a for a in person_settings.absences(session, person.id) if a.ends_at >= now]
    audit.record(session, user.username, "view_patient", [person.id], "own record page")
    session.commit()
    return render(request, user, "person/me.html", title="My record", person=person, readings=readings,
                  alerts=alerts, viewers=viewers, centre_staff=CENTRE_STAFF, looked=looked,
                  looked_page=page, looked_older=older, choices=own_record.family_choices(session, person.id),
                  absences=[{"id": a.id, "text": _absence_words(a.starts_at, a.ends_at, a.reason, zone)}
                            for a in absences])


def _absence_words(starts: datetime, ends: datetime, reason: str, zone: ZoneInfo) -> str:
    """"Away 3 June to 10 June: reason". An end up to 02:00 local time closes the day before (an end
    given as the next midnight, by a browser in the centre's zone or an hour off it)."""
    first = starts.astimezone(zone)
    last = ends.astimezone(zone)
    if last.hour < 2 or (last.hour == 2 and last.minute == 0):
        last -= timedelta(days=1)
    span = (f"{first.day} {first.strftime('%B')}" if first.date() == last.date()
            else f"{first.day} {first.strftime('%B')} to {last.day} {last.strftime('%B')}")
    return f"Away {span}" + (f": {reason}" if reason else "")


@router.get("/family", response_class=HTMLResponse)
def family(request: Request, user: FamilyUser, session: Db) -> HTMLResponse:
    """The people who consented, in words, and the open keyholder requests (see the module docstring)."""
    now, zone = utc_now(), _zone(request)
    people: list[dict[str, Any]] = []
    shown = visible_people(session, user)
    own_responder = keyholder_requests.responder_of(session, user)
    for person in shown:
        first = person.name.split()[0] if person.name.split() else person.name
        readings = [words for metric in (Metric.SPO2, Metric.PULSE_RATE)
                    if (words := reading_words(session, person, metric, f"{first}'s", now, zone)) is not None]
        alerts = _alert_lines(session, person, now, zone, first, own_responder)
        people.append({"person": person, "first": first, "readings": readings, "alerts": alerts})
    requests = keyholder_requests.open_requests(session, user)
    going = keyholder_requests.going(session, user)
    audit.record(session, user.username, "view_patient", [person.id for person in shown], "family page")
    if requests or going:
        audit.record(session, user.username, "view_keyholder_requests",
                     [r.person_id for r in requests] + [g.person_id for g in going], "family page")
    session.commit()
    return render(request, user, "family/family.html", title="People I help", people=people,
                  requests=[{"id": r.notification_id, "name": r.person_name, "title": r.alert_title,
                             "address": r.address, "when": when_words(r.sent_at, now, zone)} for r in requests],
                  going=[{"id": g.alert_id, "first": (g.person_name.split() or [g.person_name])[0],
                          "title": g.alert_title, "at": f"{g.accepted_at.astimezone(zone):%H:%M}"} for g in going],
                  centre_phone=centre(request).settings.centre_phone)
