"""The operator's workstation: the alarm queue with its call screen, the history of resolved
alarms, the shift handover, and the answer-time KPIs.

The pages are server-rendered shells (`templates/operator/`); their live parts are small ES
modules (`static/js/operator/`) over the same JSON API every other client uses
(`/api/v1/calls`, `/api/v1/alerts/...`, `/api/v1/handover`, `/api/v1/console/sound`), so each
read of a person's data and each refusal is checked and audited there, once. The KPI page is
rendered here from `monitoring_centre.kpis` (aggregate figures, as `GET /api/v1/kpis`), its table
the text equivalent of its charts; the calls it lists (answered late, not answered) are named by
person, alarm and time, a read of those people's data audited "view_kpi_calls".

Routes (all `GET`, HTML):
- `/operator`: the queue and the call screen (operators);
- `/operator/history`: resolved alarms, searchable (operators);
- `/operator/handover`: open alarms, calls in progress, handover notes (operators);
- `/operator/kpis?from=YYYY-MM-DD&to=YYYY-MM-DD`: answer times by UTC day, both days included
  (operators and administrators); a refused window is shown with the reason.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from centre_app.api.deps import Db, centre
from centre_app.api.kpis import KpisOut
from centre_app.pages.rendering import page_roles, render
from detection.rules import CATALOGUE
from monitoring_centre import alerts, audit, kpis
from monitoring_centre.access import visible_person_ids
from monitoring_centre.roles import Role
from monitoring_centre.storage import Alert, Person, User, begin_read, utc_now

router = APIRouter(include_in_schema=False)

Operator = Annotated[User, Depends(page_roles(Role.OPERATOR))]
OperatorOrAdmin = Annotated[User, Depends(page_roles(Role.OPERATOR, Role.ADMIN))]

ANSWER_TARGETS_S = (60, 180)
"""TEC Quality's answer targets (97.5 % of alarm calls within 60 s, 99 % within 180 s): the
queue colours each waiting alarm's age against them (docs/kpis.md)."""

KPI_DEFAULT_DAYS = 7
"""The KPI page's default window: the last 7 UTC days, today included."""

NOTE_ACTIONS = (("note", "Note only"), ("called_back", "Called back"),
                ("dispatched_keyholder", "Keyholder sent"), ("dispatched_responder_team", "Responder team sent"),
                ("called_999", "999 called"), ("no_further_action", "No further action (give the reason)"))
"""The call screen's actions (`POST /api/v1/alerts/{id}/notes`), in the words shown."""

KEYS = (("↓ or j, ↑ or k", "move between calls in the queue"), ("Enter", "open the call under focus"),
        ("t", "take the open call (or release it if it is yours)"), ("a", "acknowledge the open alarm"),
        ("r", "go to the outcome, to resolve the open alarm"), ("n", "go to the call notes"),
        ("m", "mute or unmute the sound of new alarms"), ("Escape", "close the call and go back to the queue"))
"""The queue's keyboard shortcuts (not while typing in a field), as documented on the page."""


def _rules() -> list[tuple[str, str]]:
    return sorted(((rule.value, entry.title) for rule, entry in CATALOGUE.items()), key=lambda pair: pair[1])


@router.get("/operator")
def queue(request: Request, user: Operator) -> HTMLResponse:
    """The alarm queue (grouped by person, most urgent and longest waiting first) and the call
    screen of the call opened from it."""
    return render(request, user, "operator/queue.html", title="Alarm queue", targets=ANSWER_TARGETS_S,
                  actions=NOTE_ACTIONS, outcomes=alerts.OUTCOMES, needs_reason=sorted(alerts.NEEDS_A_REASON),
                  rules=_rules(), keys=KEYS)


@router.get("/operator/history")
def history(request: Request, user: Operator) -> HTMLResponse:
    """Resolved alarms, newest first, searchable by name, dates, rule and outcome (the query is
    the page's own: the script asks `GET /api/v1/alerts/history` with it)."""
    return render(request, user, "operator/history.html", title="Resolved alarms", rules=_rules(),
                  outcomes={**alerts.OUTCOMES, "all_clear": "the condition cleared by itself"},
                  query=dict(request.query_params))


@router.get("/operator/handover")
def handover(request: Request, user: Operator) -> HTMLResponse:
    """The shift handover: alarms nobody has taken, calls in progress with their latest note,
    and the handover notes of the last 24 hours, with a form to add one."""
    return render(request, user, "operator/handover.html", title="Shift handover")


@dataclass(frozen=True)
class KpiWindow:
    """The KPI page's window as asked: UTC days `first` to `last`, both included, and any
    refusal in words (`where`: the field to change, "from" or "to")."""

    first: date
    last: date
    problem: str = ""
    where: str = ""


@dataclass(frozen=True)
class NamedCall:
    """An alarm call the KPI page lists (answered late, not answered): whose, what, when."""

    person_name: str
    title: str
    raised_at: datetime


def _named_calls(session: Db, user: User, figures: dict[str, Any]) -> dict[int, NamedCall]:
    """The listed calls (alert id → whose, what, when), for the people `user` may see; reading a
    person's name is audited "view_kpi_calls" as any read of a call is."""
    wanted = {int(i) for key in ("answered_late_ids", "unanswered_ids", "ended_unanswered_ids") for i in figures[key]}
    if not wanted:
        return {}
    visible = visible_person_ids(session, user)
    query = (select(Alert, Person.name).join(Person, Person.id == Alert.person_id).where(Alert.id.in_(wanted)))
    if visible is not None:
        query = query.where(Alert.person_id.in_(visible))
    found = {alert.id: (alert.person_id, NamedCall(name, alert.title, alert.opened_at))
             for alert, name in session.execute(query)}
    if found:
        audit.record(session, user.username, "view_kpi_calls", sorted({pid for pid, _c in found.values()}))
        session.commit()
    return {alert_id: call for alert_id, (_pid, call) in found.items()}


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    """The start of `day` in the centre's time zone, in UTC (23:00 UTC the evening before in summer)."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


@router.get("/operator/kpis")
def kpi_page(request: Request, user: OperatorOrAdmin, session: Db,
             first: Annotated[date | None, Query(alias="from")] = None,
             last: Annotated[date | None, Query(alias="to")] = None) -> HTMLResponse:
    """Answer times per day of the centre's time zone (`settings.timezone`, UK time by default) from
    `from` to `to`, both included (default: the last 7 days, today included), against TEC Quality's
    targets: a chart of the fractions answered within 60 s and 180 s, one of the calls and the
    median answer time per day, and the table both are drawn from (the charts' text equivalent). A
    refused window (`to` before `from`, longer than 400 days) is a 422 page with the reason."""
    now = utc_now()
    zone = ZoneInfo(centre(request).settings.timezone)
    last = last or now.astimezone(zone).date()
    first = first or last - timedelta(days=KPI_DEFAULT_DAYS - 1)
    asked = KpiWindow(first, last)
    report: dict[str, Any] | None = None
    as_of: datetime | None = None
    named: dict[int, NamedCall] = {}
    try:
        start, end = kpis.window(_midnight(first, zone), _midnight(last + timedelta(days=1), zone), now)
    except (kpis.WindowRefused, OverflowError) as refused:
        where = refused.bound if isinstance(refused, kpis.WindowRefused) else "to"
        asked = KpiWindow(first, last, str(refused).replace("`", ""), where)
    else:
        session.commit()  # end the sign-in's transaction: the history is read in a read-only one
        begin_read(session)
        calls = kpis.read_calls(session, start, end)
        session.commit()
        as_of = min(end, now)
        report = KpisOut.model_validate(kpis.report(calls, start, end, now, zone)).model_dump(mode="json",
                                                                                             by_alias=True)
        named = _named_calls(session, user, report["alarm_calls"])
    return render(request, user, "operator/kpis.html", title="Answer times", window=asked, report=report,
                  named=named, as_of=as_of,
                  outcomes={**alerts.OUTCOMES, "all_clear": "the condition cleared by itself"},
                  status_code=422 if asked.problem else 200)
