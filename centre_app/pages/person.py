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

from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from alerting import keyholder_requests
from centre_app.api.deps import Db, centre
from centre_app.pages.rendering import page_roles, render
from monitoring_centre import audit, own_record, person_settings, vital_series
from monitoring_centre.access import visible_people
from monitoring_centre.alerts import OUTCOMES
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
ACTION_WORDS = {
    "view_readings": "looked at your readings", "view_patient": "looked at your details",
    "view_record": "looked at your record", "view_caseload": "saw you on their caseload list",
    "view_patient_list": "saw your name on their list", "view_alerts": "looked at your alerts",
    "view_alert_history": "looked at your past alerts", "view_activity": "looked at your activity pattern",
    "view_rule_settings": "looked at your alert settings", "change_rule_setting": "changed your alert settings",
    "view_absences": "looked at your planned absences", "plan_absence": "added a planned absence",
    "cancel_absence": "cancelled a planned absence", "give_consent": "gave a family member access",
    "withdraw_consent": "withdrew a family member's access", "review_task": "wrote a review of your readings",
    "view_review_tasks": "looked at the reviews waiting for you", "view_review_notes": "looked at your reviews",
    "refused": "tried to look at your record and was refused", "show_access_details": "was given the key safe details",
    "acknowledge_alert": "picked up an alert", "resolve_alert": "closed an alert", "view_call": "looked at a call",
    "view_access_list": "looked at who can see your record", "view_audit": "looked at who has seen your record",
    "view_caseload_assignments": "saw which nurse looks after you", "view_frailty": "looked at your frailty score",
    "change_frailty": "recorded your frailty score", "keyholder_accepted": "said they would come",
    "view_keyholder_requests": "saw a request to come to you", "edit_person": "changed your details",
}
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


def alert_words(alert: Alert, now: datetime, zone: ZoneInfo) -> str:
    """"This morning at 10:14: Help button pressed. This was dealt with: a responder visited."."""
    when = when_words(alert.opened_at, now, zone)
    text = f"{when[:1].upper()}{when[1:]}: {alert.title}. {STATUS_WORDS.get(alert.status, '')}"
    if alert.status in ("resolved", "closed"):
        outcome = OUTCOMES.get(alert.outcome or "", "the condition recovered" if alert.outcome == "all_clear" else "")
        text += f": {outcome}." if outcome else "."
    return text


def _actor_words(entry: AuditEntry, accounts: dict[str, User]) -> str:
    if entry.actor.startswith("system:") or entry.actor == "system":
        return "The centre's system"
    if entry.actor.startswith("responder:"):
        return entry.actor.split(":", 2)[-1] + " (a contact of yours)"
    account = accounts.get(entry.actor)
    if account is None:
        return entry.actor
    role = ROLE_WORDS.get(account.role, account.role)
    return f"{role} {account.display_name or account.username}".strip()


def looked_words(session: Session, person: Person, user: User, now: datetime, zone: ZoneInfo) -> list[str]:
    """Who looked at or changed the person's record, newest first, in words ("Nurse Jane Smith looked
    at your readings on 3 June at 10:14"); the person's own visits left out."""
    entries = own_record.looked(session, person.id, leave_out=user.username)
    accounts = own_record.accounts(session, {entry.actor for entry in entries})
    return [f"{_actor_words(entry, accounts)} {ACTION_WORDS.get(entry.action, entry.action.replace('_', ' '))} "
            f"{when_words(entry.at, now, zone)}" for entry in entries]


@router.get("/me", response_class=HTMLResponse)
def me(request: Request, user: PersonUser, session: Db) -> HTMLResponse:
    """The person's own record in plain words (see the module docstring)."""
    person = session.get(Person, user.person_id) if user.person_id is not None else None
    if person is None:
        return render(request, user, "person/me.html", title="My record", person=None)
    now, zone = utc_now(), _zone(request)
    readings = [words for metric in (Metric.SPO2, Metric.PULSE_RATE)
                if (words := reading_words(session, person, metric, "Your", now, zone)) is not None]
    alerts = [alert_words(a, now, zone) for a in own_record.recent_alerts(session, person.id, now - timedelta(days=30))]
    viewers = own_record.viewers(session, person.id)
    looked = looked_words(session, person, user, now, zone)
    absences = [a for a in person_settings.absences(session, person.id) if a.ends_at >= now]
    audit.record(session, user.username, "view_patient", [person.id], "own record page")
    session.commit()
    return render(request, user, "person/me.html", title="My record", person=person, readings=readings,
                  alerts=alerts, viewers=viewers, looked=looked,
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
    for person in shown:
        first = person.name.split()[0] if person.name.split() else person.name
        readings = [words for metric in (Metric.SPO2, Metric.PULSE_RATE)
                    if (words := reading_words(session, person, metric, f"{first}'s", now, zone)) is not None]
        alerts = [alert_words(a, now, zone)
                  for a in own_record.recent_alerts(session, person.id, now - timedelta(days=30))]
        people.append({"person": person, "first": first, "readings": readings, "alerts": alerts})
    requests = keyholder_requests.open_requests(session, user)
    audit.record(session, user.username, "view_patient", [person.id for person in shown], "family page")
    if requests:
        audit.record(session, user.username, "view_keyholder_requests", [r.person_id for r in requests], "family page")
    session.commit()
    return render(request, user, "family/family.html", title="People I help", people=people,
                  requests=[{"id": r.notification_id, "name": r.person_name, "title": r.alert_title,
                             "address": r.address, "when": when_words(r.sent_at, now, zone)} for r in requests])
