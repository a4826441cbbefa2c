"""The operator workstation's calls: the queue grouped into calls, taking and releasing a call,
the call screen (the alert, the caller's record, what raised it in words, the script, the
escalation in sentences, the notes), notes, the call history, and the console's sound.

Operators and administrators (supervisors) only: 403 to every other role, audited. Every read
of a person's data is audited as the alert routes are (`centre_app/api/alerts.py`); every change
is audited where it is made (`monitoring_centre/calls.py`, `call_notes.py`). A take, a release or a note tells the open
consoles through the live stream (`GET /api/v1/alerts/stream`: the call's alert ids), and the
pages refetch `GET /api/v1/calls`. The logic lives in `monitoring_centre/` and
`alerting/escalation_log.py`; docs/console.md describes the API.
"""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import BaseModel, Field, StrictBool
from sqlalchemy import select

from alerting.escalation import escalation_lines
from alerting.escalation_log import escalation_log
from centre_app.api.alerts import AlertOut
from centre_app.api.deps import (
    Centre,
    Db,
    DocumentedRoute,
    IsoBound,
    VisibleAlert,
    VisiblePerson,
    errors,
    invalid,
    require_roles,
)
from monitoring_centre import audit, call_history, call_notes, caller_record, calls, why
from monitoring_centre.access import visible_person_ids
from monitoring_centre.alerts import AlertState
from monitoring_centre.call_scripts import script_for
from monitoring_centre.roles import Role
from monitoring_centre.storage import Alert, AlertTransition, Device, Hub, Person, User, utc_now

router = APIRouter(prefix="/api/v1", tags=["calls"], route_class=DocumentedRoute)
Operator = Annotated[User, Depends(require_roles(Role.OPERATOR, Role.ADMIN))]
"""Operators, and administrators (supervisors): never a nurse, the person or their family."""


class CallAlertOut(BaseModel):
    id: int
    rule: str
    title: str
    priority: int
    status: str
    opened_at: datetime
    last_seen_at: datetime
    repeat_count: int


class CallOut(BaseModel):
    """One person's active alerts, as one call."""

    person_id: int
    person_name: str
    priority: int
    """The most urgent of its alerts (1 emergency ... 5 restoral)."""
    opened_at: datetime
    """When its earliest alert opened (ISO 8601, UTC)."""
    taken_by: str | None
    """The username of the operator who has taken it, or null."""
    taken_by_name: str | None
    taken_at: datetime | None
    alerts: list[CallAlertOut]


def call_out(call: calls.Call) -> CallOut:
    return CallOut(person_id=call.person_id, person_name=call.person_name, priority=call.priority,
                   opened_at=call.opened_at, taken_by=call.taken_by, taken_by_name=call.taken_by_name,
                   taken_at=call.taken_at, alerts=[CallAlertOut(**vars(alert)) for alert in call.alerts])


@router.get("/calls")
def list_calls(user: Operator, session: Db,
               priority: Annotated[list[Annotated[int, Field(ge=1, le=5)]] | None, Query()] = None,
               rule: Annotated[str | None, Query(max_length=64)] = None,
               state: Annotated[list[Literal["open", "acknowledged", "in_progress"]] | None,
                                Query(alias="status")] = None,
               q: Annotated[str | None, Query(max_length=200)] = None) -> list[CallOut]:
    """Active alerts grouped into calls, one per person with any open, acknowledged or in-progress
    alert: most urgent first, then longest waiting. A call is listed when the person's name
    contains `q` (any case) and at least one of its alerts matches `priority` (repeatable),
    `rule` and `status` (repeatable); it then shows all its alerts. Audited "view_calls"."""
    matching = calls.CallFilter(priorities=frozenset(priority or ()), rule=rule or None,
                                statuses=frozenset(state or ()), name=q or None)
    found = calls.active_calls(session, visible_person_ids(session, user), matching)
    audit.record(session, user.username, "view_calls", [call.person_id for call in found])
    session.commit()
    return [call_out(call) for call in found]


def _take_or_release(person: Person, user: User, session: Db, centre: Centre, taking: bool) -> CallOut:
    person_id = person.id
    try:
        call = (calls.take if taking else calls.release)(session, person_id, user)
    except calls.NoCall as missing:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(missing)) from None
    except calls.CallTaken as taken:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, str(taken)) from None
    session.commit()
    centre.alerts_changed(calls.alert_ids(call))
    return call_out(call)


@router.post("/calls/{person_id}/take", responses=errors(404, 409))
def take_call(user: Operator, person: VisiblePerson, session: Db, centre: Centre) -> CallOut:
    """Take the person's call: every active alert of theirs is marked as yours (`taken_by`), and
    an alert that opens for them while you hold it joins the call. Taking a call you hold is
    allowed. 409 `{"detail": "taken by <name> at <time>"}` when another operator holds it; 404
    when the person has no active alert. Audited "take_call"."""
    return _take_or_release(person, user, session, centre, taking=True)


@router.post("/calls/{person_id}/release", responses=errors(404, 409))
def release_call(user: Operator, person: VisiblePerson, session: Db, centre: Centre) -> CallOut:
    """Give the call back: nobody holds it after. 409 when another operator holds it (only the
    holder releases); 404 when the person has no active alert. Audited "release_call"."""
    return _take_or_release(person, user, session, centre, taking=False)


class PhoneOut(BaseModel):
    label: str
    number: str


class KeyholderOut(BaseModel):
    order: int
    """1 = called first."""
    name: str
    relationship: str
    phones: list[PhoneOut]


class CallerOut(BaseModel):
    """What an operator may see of the caller: never the key-safe code, which is shown only to a
    responder who has accepted the alarm."""

    person_id: int
    name: str
    age: int | None
    date_of_birth: date | None
    address: str
    access_notes: str
    phones: list[PhoneOut]
    conditions: str
    medication_summary: str
    allergies: str
    communication_needs: str
    property_risks: str
    pets: str
    gp_practice: str
    nhs_number: str | None
    keyholders: list[KeyholderOut]


def caller_out(record: caller_record.CallerRecord) -> CallerOut:
    values: dict[str, Any] = {name: getattr(record, name) for name in CallerOut.model_fields}
    values["phones"] = [PhoneOut(label=p.label, number=p.number) for p in record.phones]
    values["keyholders"] = [KeyholderOut(order=k.order, name=k.name, relationship=k.relationship,
                                         phones=[PhoneOut(label=p.label, number=p.number) for p in k.phones])
                            for k in record.keyholders]
    return CallerOut(**values)


class FactOut(BaseModel):
    label: str
    value: str


class WhyOut(BaseModel):
    """What raised the alert, in plain words (`monitoring_centre/why.py`)."""

    rule_title: str
    summary: str
    """One plain sentence, e.g. "The help button on the pendant was pressed at 03:12."."""
    facts: list[FactOut]
    """Readings with units and UK local times, the band or limit crossed, the person's baseline."""
    repeats: int
    first_at: datetime
    last_at: datetime


class ScriptOut(BaseModel):
    rule: str
    title: str
    steps: list[str]


class LogLineOut(BaseModel):
    at: datetime
    text: str
    """A plain sentence, e.g. "E-mailed Susan Hughes (daughter) 3 min after the alarm; not yet accepted"."""


class NoteOut(BaseModel):
    id: int
    alert_id: int
    at: datetime
    by: str
    by_name: str
    action: call_notes.NoteAction
    text: str
    reason: str


class CallScreen(BaseModel):
    alert: AlertOut
    caller: CallerOut
    why: WhyOut
    script: ScriptOut
    escalation_log: list[LogLineOut]
    notes: list[NoteOut]
    """Oldest first."""
    taken_by: str | None
    taken_by_name: str | None


def alert_out(session: Db, alert: Alert, person_name: str) -> AlertOut:
    values = {name: getattr(alert, name) for name in AlertOut.model_fields if name not in ("person_name", "escalation")}
    return AlertOut(person_name=person_name, escalation=escalation_lines(session, [alert.id]).get(alert.id, ""),
                    **values)


def note_out(session: Db, note: call_notes.Note, names: dict[str, str] | None = None) -> NoteOut:
    names = names if names is not None else calls.display_names(session, [note.by])
    return NoteOut(id=note.id, alert_id=note.alert_id, at=note.at, by=note.by, by_name=names.get(note.by, note.by),
                   action=note.action, text=note.text, reason=note.reason)


def home_devices(session: Db, person_id: int) -> dict[str, str]:
    """Each device of the person's homes → how an operator calls it."""
    rows = session.execute(select(Device).join(Hub, Hub.id == Device.hub_id).where(Hub.person_id == person_id))
    return {device.id: why.device_words(device.kind, device.location) for (device,) in rows}


@router.get("/alerts/{alert_id}/call")
def call_screen(user: Operator, alert: VisibleAlert, session: Db) -> CallScreen:
    """Everything an operator needs on the call about this alert: the alert itself (as in
    `GET /api/v1/alerts`), the caller's record, what raised it in plain words, the script for its
    rule, the escalation in sentences, the notes of the call (on any of its alarms: each names its
    `alert_id`), and who has taken the call.
    Audited "view_call" against the person."""
    person = session.get_one(Person, alert.person_id)
    explained = why.explain(alert, home_devices(session, person.id))
    script = script_for(session, alert.rule)
    call = calls.call_of(session, person.id)
    resolved_at = session.scalar(select(AlertTransition.at).where(AlertTransition.alert_id == alert.id,
                                                                  AlertTransition.to_status == AlertState.RESOLVED))
    ongoing = call if call is not None and alert.id in calls.alert_ids(call) else None  # not a past alarm's
    notes = call_notes.notes_for(session, calls.same_call(  # every note of the call, whichever alarm it was on
        session, person.id, {alert.id} | (calls.alert_ids(ongoing) if ongoing else set()),
        ongoing.opened_at if ongoing else alert.opened_at, None if ongoing else resolved_at))
    names = calls.display_names(session, [note.by for note in notes] + [alert.taken_by])
    screen = CallScreen(
        alert=alert_out(session, alert, person.name),
        caller=caller_out(caller_record.record(session, person, utc_now().date())),
        why=WhyOut(rule_title=explained.rule_title, summary=explained.summary,
                   facts=[FactOut(label=f.label, value=f.value) for f in explained.facts],
                   repeats=explained.repeats, first_at=explained.first_at, last_at=explained.last_at),
        script=ScriptOut(rule=script.rule, title=script.title, steps=list(script.steps)),
        escalation_log=[LogLineOut(at=line.at, text=line.text) for line in escalation_log(session, alert)],
        notes=[note_out(session, note, names) for note in notes],
        taken_by=call.taken_by if call else alert.taken_by,
        taken_by_name=call.taken_by_name if call else (names.get(alert.taken_by) if alert.taken_by else None))
    audit.record(session, user.username, "view_call", [person.id], f"alert {alert.id}")
    session.commit()
    return screen


class NoteIn(BaseModel):
    action: str = Field(description="note, called_back, dispatched_keyholder, dispatched_responder_team, "
                                    "called_999 or no_further_action")
    text: str = Field(default="", max_length=call_notes.MAX_TEXT)
    reason: str = Field(default="", max_length=call_notes.MAX_TEXT)
    """Required for `no_further_action`: why nobody is sent."""


@router.post("/alerts/{alert_id}/notes", status_code=status.HTTP_201_CREATED)
def add_note(body: NoteIn, user: Operator, alert: VisibleAlert, session: Db, centre: Centre) -> NoteOut:
    """Record what you did on the call, against this alert. 422 for an unknown action, a
    `no_further_action` without a reason, or a `note` without text. Audited "add_call_note"."""
    try:
        note = call_notes.add_note(session, alert, user.username, body.action, body.text, body.reason)
    except call_notes.BadNote as bad:
        raise invalid(("body", bad.field), str(bad)) from None
    session.commit()
    centre.alerts_changed({alert.id})
    return note_out(session, note)


class HistoryPage(BaseModel):
    items: list[call_history.Resolved]
    total: int
    page: int
    pages: int


@router.get("/alerts/history")
def history(user: Operator, session: Db,
            q: Annotated[str | None, Query(max_length=200)] = None,
            opened_from: Annotated[IsoBound | None, Query(alias="from")] = None,
            opened_to: Annotated[IsoBound | None, Query(alias="to")] = None,
            rule: Annotated[str | None, Query(max_length=64)] = None,
            outcome: Annotated[str | None, Query(max_length=32)] = None,
            page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> HistoryPage:
    """Resolved alerts, newest resolution first, `call_history.PAGE_SIZE` (50) a page: `q` a
    substring of the person's name, `from`/`to` bound when the alert opened (ISO 8601 with a
    zone; `to` excluded), `rule`, `outcome`. A page past the last is empty. Audited
    "view_alert_history" against each person on the page."""
    for name, moment in (("from", opened_from), ("to", opened_to)):
        if moment is not None and moment.tzinfo is None:
            raise invalid(("query", name), "give the time with its zone, e.g. 2026-11-30T00:00:00Z")
    found = call_history.history(
        session, call_history.HistoryFilter(name=q or None, opened_from=opened_from, opened_to=opened_to,
                                            rule=rule or None, outcome=outcome or None),
        page, visible_person_ids(session, user))
    audit.record(session, user.username, "view_alert_history", [item.person_id for item in found.items],
                 f"page {page}")
    session.commit()
    return HistoryPage(items=list(found.items), total=found.total, page=found.page,
                       pages=found.pages)


class SoundIn(BaseModel):
    muted: StrictBool


@router.post("/console/sound", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def console_sound(body: SoundIn, user: Operator, session: Db) -> Response:
    """The operator muted or unmuted their console's alarm sound: audited ("console_sound_muted"
    or "console_sound_on"), so a missed alarm can be traced to a muted console. 204."""
    audit.record(session, user.username, "console_sound_muted" if body.muted else "console_sound_on", [None])
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
