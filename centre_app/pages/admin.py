"""The administrator's pages: people and homes, devices, accounts, responders, teams, escalation
policies and call scripts (paths: `navigation.ADMIN_PAGES`).

Each page is read on the server from the same plain modules the JSON API uses, and its view of
people's data is audited once (`view_patient_list`, `view_patient`, `view_devices`, ...). Every
change goes from a small form script (`static/js/admin/forms.js`) to the JSON API
(`/api/v1/homes`, `/api/v1/devices`, `/api/v1/users`, `/api/v1/responders`, `/api/v1/teams`,
`/api/v1/patients/{id}` (the caller record), `/api/v1/patients/{id}/contacts`,
`/api/v1/patients/{id}/rules/{rule}`, `/api/v1/patients/{id}/absences`, `/api/v1/call-scripts`),
so each change is checked and audited once, in one place. A secret the API gives once (a hub's
broker password, an account's one-time password) is shown once, in the page, and never stored
by it. The forms carry `data-admin-form`: `tests/integration/test_pages_by_role.py` checks that
no other role's page has one.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerting import policy
from alerting.escalation import contact_points
from centre_app.admin import DEVICE_KINDS, LOCATIONS
from centre_app.api.deps import Db, RowId, refuse
from centre_app.api.responders import RESPONDER_ROLES
from centre_app.pages.rendering import page_roles, render, signed_in_as
from detection.defaults import DEFAULTS, Param, label, plain, words_for
from detection.rules import CATALOGUE, RuleId
from monitoring_centre import accounts, audit, call_scripts, caller_record, homes, person_settings, teams
from monitoring_centre.roles import ROLES, Role
from monitoring_centre.storage import Person, PersonContact, Responder, RuleSetting, User, utc_now

router = APIRouter(prefix="/admin", include_in_schema=False)
AdminPage = Annotated[User, Depends(page_roles(Role.ADMIN))]


def _people_options(session: Session) -> list[tuple[int, str]]:
    return [(p.id, p.name) for p in session.scalars(select(Person).order_by(Person.name, Person.id))]


@router.get("/people")
def people(request: Request, user: AdminPage, session: Db) -> HTMLResponse:
    """Everyone on the books with their hubs and devices; the enrolment form."""
    rows = homes.people(session)
    audit.record(session, user.username, "view_patient_list", [row.id for row in rows] or [None])
    session.commit()
    return render(request, user, "admin/people.html", title="People and homes", people=rows,
                  services=homes.SERVICES, device_kinds=DEVICE_KINDS, locations=LOCATIONS)


@dataclass(frozen=True)
class Keyholder:
    position: int
    responder: Responder
    contact_points: list[str]


@dataclass(frozen=True)
class RuleParameter:
    """A rule's parameter as the settings form offers it."""

    key: str
    """`rule.parameter`, e.g. `spo2_low.threshold`."""
    rule: str
    name: str
    default: object
    floor: object
    ceiling: object
    source: str
    text: str
    """What the form shows: the rule's title, the parameter's plain description, its default and range in words."""


def _parameters() -> list[RuleParameter]:
    return [RuleParameter(f"{rule}.{name}", str(rule), name, param.default, param.floor.value, param.ceiling.value,
                          param.source, _parameter_text(RuleId(rule), name, param))
            for rule, table in sorted(DEFAULTS.items(), key=lambda item: CATALOGUE[RuleId(item[0])].title)
            for name, param in sorted(table.items()) if not param.fixed]


def _parameter_text(rule: RuleId, name: str, param: Param) -> str:
    if param.choices:
        allowed = "one of " + ", ".join(plain(rule, name, choice) for choice in param.choices)
    else:
        allowed = f"from {plain(rule, name, param.floor.value)} to {plain(rule, name, param.ceiling.value)}"
    return (f"{CATALOGUE[rule].title}: {label(rule, name)} (default {plain(rule, name, param.default)}, "
            f"{allowed})")


@dataclass(frozen=True)
class SettingRow:
    """A person's own setting for one rule as the page shows it: titles and descriptions, no keys."""

    rule: str
    title: str
    values: list[str]
    changed_at: datetime
    changed_by: str
    reason: str


def _setting_rows(settings: list[RuleSetting]) -> list[SettingRow]:
    rows = []
    for row in settings:
        rule = RuleId(row.rule)
        values = [f"{label(rule, name)}: {plain(rule, name, value)}" for name, value in sorted(row.params.items())
                  if name in DEFAULTS[rule]]
        rows.append(SettingRow(row.rule, CATALOGUE[rule].title, values, row.changed_at, row.changed_by, row.reason))
    return rows


ORDINALS = ("First", "Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh", "Eighth")


def _device_options() -> dict[str, Any]:
    return {"kind_options": [(kind, kind.replace("_", " ")) for kind in DEVICE_KINDS],
            "location_options": [(place, place.replace("_", " ")) for place in LOCATIONS]}


@router.get("/people/{person_id}")
def person(request: Request, person_id: RowId, user: AdminPage, session: Db) -> HTMLResponse:
    """One person: their caller record and service, hubs and devices, keyholders in order, rule
    settings, planned absences, retiring their home."""
    found = session.get(Person, person_id)
    if found is None:
        raise refuse(request, session, user, status.HTTP_404_NOT_FOUND, "no such person", None, "none")
    contacts = session.execute(select(PersonContact.position, Responder).join(
        Responder, Responder.id == PersonContact.responder_id).where(PersonContact.person_id == person_id)
        .order_by(PersonContact.position)).all()
    keyholders = [Keyholder(position + 1, responder, contact_points(session, responder.id))
                  for position, responder in contacts]
    responders = list(session.scalars(select(Responder).where(Responder.active.is_(True),
                                                              Responder.role == "keyholder")
                                      .order_by(Responder.name)))
    settings = person_settings.rule_settings(session, person_id)
    absences = person_settings.absences(session, person_id)
    record = caller_record.record(session, found, utc_now().date())
    audit.record(session, user.username, "view_patient", [person_id], "administration page")
    session.commit()
    hubs = homes.hubs(session, person_id)
    return render(request, user, "admin/person.html", title=found.name, person=found, hubs=hubs, record=record,
                  absences=absences,
                  devices=homes.devices(session, utc_now(), person_id), show_person=False,
                  keyholders=keyholders, slots=min(len(ORDINALS), max(3, len(keyholders) + 1)), ordinals=ORDINALS,
                  responder_options=[(r.id, r.name) for r in responders],
                  settings=_setting_rows(settings), current={row.rule: row.params for row in settings},
                  parameter_options=[(p.key, p.text) for p in _parameters()],
                  parameter_words={p.key: words_for(RuleId(p.rule), p.name) for p in _parameters()
                                   if words_for(RuleId(p.rule), p.name)},
                  hubs_options=[(hub.id, hub.id) for hub in hubs], **_device_options())


@router.get("/devices")
def devices(request: Request, user: AdminPage, session: Db) -> HTMLResponse:
    """Every device with its battery, when it was last heard from and its problems; adding one."""
    rows = homes.devices(session, utc_now())
    hubs = [(row.id, row.name, hub_id) for row in homes.people(session) for hub_id in row.hub_ids]
    audit.record(session, user.username, "view_devices", sorted({row.person_id for row in rows}) or [None])
    session.commit()
    return render(request, user, "admin/devices.html", title="Devices", devices=rows, show_person=True,
                  hubs_options=[(hub_id, f"{hub_id} ({name})") for _id, name, hub_id in hubs], **_device_options())


@router.get("/users")
def users(request: Request, user: AdminPage, session: Db) -> HTMLResponse:
    """Every account; creating one (with a one-time password), changing a role, disabling."""
    views = accounts.accounts(session)
    audit.record(session, user.username, "view_users", [v.person_id for v in views if v.person_id] or [None])
    session.commit()
    return render(request, user, "admin/users.html", title="Users", accounts=views,
                  role_options=[(role, role.replace("_", " ")) for role in ROLES],
                  people_options=_people_options(session), me=user.username)


@router.get("/responders")
def responders(request: Request, user: AdminPage, session: Db) -> HTMLResponse:
    """Responders, their contact points and whose keyholder each is; adding, changing or retiring
    one; sending a test message."""
    keyholder_for: dict[int, list[str]] = {}
    for responder_id, name in session.execute(
            select(PersonContact.responder_id, Person.name).join(Person, Person.id == PersonContact.person_id)
            .order_by(Person.name)):
        keyholder_for.setdefault(responder_id, []).append(name)
    found = [(responder, contact_points(session, responder.id), keyholder_for.get(responder.id, []))
             for responder in session.scalars(select(Responder).order_by(Responder.active.desc(), Responder.role,
                                                                         Responder.name))]
    return render(request, user, "admin/responders.html", title="Responders", responders=found,
                  role_options=[(role, role.replace("_", " ")) for role in RESPONDER_ROLES])


@router.get("/teams")
def teams_page(request: Request, user: AdminPage, session: Db) -> HTMLResponse:
    """Teams, their members and caseloads; creating a team, adding members, assigning people."""
    views = teams.teams(session, user)
    caseloads = {view.id: teams.team_people(session, view.id) for view in views}
    shown = sorted({p.id for people in caseloads.values() for p in people})
    audit.record(session, user.username, "view_caseloads", shown or [None], "administration page")
    session.commit()
    clinicians = [c for c in session.scalars(select(User).where(User.role.in_([Role.NURSE, Role.TEAM_LEAD]))
                                             .order_by(User.username)) if not accounts.is_disabled(c)]
    return render(request, user, "admin/teams.html", title="Teams and caseloads", teams=views, caseloads=caseloads,
                  clinician_options=[(c.username, signed_in_as(c)) for c in clinicians],
                  people_options=_people_options(session))


@router.get("/policies")
def policies(request: Request, user: AdminPage, session: Db) -> HTMLResponse:
    """The escalation chains and which alerts follow which (`alerting/policy.py`): read only, as
    they are set in code with their sources; a person's service is chosen on their page."""
    by_rule = sorted((CATALOGUE[RuleId(rule)].title, chosen.name) for rule, chosen in policy.RULE_POLICIES.items())
    return render(request, user, "admin/policies.html", title="Escalation policies",
                  chains=list(policy.POLICIES.values()), by_rule=by_rule,
                  supervision=policy.SUPERVISION, logged_only=policy.LOGGED_ONLY)


@router.get("/scripts")
def scripts(request: Request, user: AdminPage, session: Db) -> HTMLResponse:
    """The operators' call script for each kind of alarm, and editing one."""
    return render(request, user, "admin/scripts.html", title="Call scripts",
                  scripts=call_scripts.all_scripts(session), editable=_script_api(request),
                  seed_actor=call_scripts.SEED_ACTOR,
                  rule_titles={str(rule): entry.title for rule, entry in CATALOGUE.items()})


def _script_api(request: Request) -> str:
    """The call-script API's path when this centre has it (`PUT {path}/{rule}`), else ""."""
    return SCRIPTS_API if f"{SCRIPTS_API}/{{rule}}" in request.app.openapi().get("paths", {}) else ""


SCRIPTS_API = "/api/v1/call-scripts"
