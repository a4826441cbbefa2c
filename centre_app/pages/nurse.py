"""The nurse's pages (nurses and team leads): the caseload ordered by risk, a person's charts and
settings, the review tasks, and (team leads) the teams' caseloads.

Server-rendered from the same modules the API uses (`monitoring_centre.caseload`, `teams`,
`review_tasks`, `person_settings`), each view audited as the API audits it; the charts and every
change are small scripts (`static/js/nurse/`) over the JSON API, so each change is checked and
audited in one place (thresholds with a reason and before/after, absences, review notes, assignments).

- `/nurse`: the caseload, highest risk first, each row with the score's parts in words.
- `/nurse/people/{person_id}`: SpO2 and pulse over 24 h / 7 d / 30 d with bands, flagged readings
  and alerts; the activity pattern against the learned baselines; trend alerts with their
  evidence; thresholds and planned absences. 404 (audited) for a person not on her caseload.
- `/nurse/tasks`: trend alerts and missed measurements to review; a note closes each.
- `/nurse/teams` (team leads): her teams, their members and caseloads; assign people to nurses and teams.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from centre_app.api.deps import Db, RowId, may_see, refuse
from centre_app.pages.rendering import page_roles, render
from detection.defaults import ZERO_MEANS, Settings, label, plain
from detection.rules import CATALOGUE, RuleId
from detection.thresholds import BANDS, RULES_BY_METRIC, table_for
from monitoring_centre import audit, caseload, person_settings, review_tasks, teams
from monitoring_centre.access import visible_people, visible_person_ids
from monitoring_centre.alerts import ACTIVE
from monitoring_centre.roles import Role
from monitoring_centre.storage import Alert, Person, User, utc_now

router = APIRouter(include_in_schema=False)

NurseUser = Annotated[User, Depends(page_roles(Role.NURSE, Role.TEAM_LEAD))]
TeamLead = Annotated[User, Depends(page_roles(Role.TEAM_LEAD))]
THRESHOLD_RULES = (RuleId.SPO2_LOW, RuleId.PULSE_HIGH, RuleId.PULSE_LOW)


@router.get("/nurse", response_class=HTMLResponse)
def caseload_page(request: Request, user: NurseUser, session: Db) -> HTMLResponse:
    """Her caseload (her own people and her teams'), ordered by risk, each row explained."""
    via = teams.caseload_of_nurse(session, user)
    visible = visible_person_ids(session, user)
    shown = [person_id for person_id in via if visible is None or person_id in visible]
    risks = caseload.ranked_caseload(session, shown, utc_now())
    audit.record(session, user.username, "view_caseload", [risk.person_id for risk in risks],
                 f"nurse {user.username} (page)")
    session.commit()
    return render(request, user, "nurse/caseload.html", title="Caseload", risks=risks, via=via,
                  max_score=caseload.MAX_SCORE, tasks=len(review_tasks.open_tasks(session, shown, utc_now())))


def _person_seen(request: Request, session: Session, user: User, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise refuse(request, session, user, status.HTTP_404_NOT_FOUND, "no such person", None, "none")
    if not may_see(session, user, person_id):
        raise refuse(request, session, user, status.HTTP_404_NOT_FOUND, "no such person", person_id, "not visible")
    return person


def threshold_fields(settings: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each threshold rule's band edges (`thresholds.BANDS`, one source with the charts and the
    engine): the rule, the parameter, its default and source, and the person's own value if any."""
    fields = []
    for rule in THRESHOLD_RULES:
        defaults = Settings(rule)
        own = settings.get(rule.value, {})
        edges: list[str] = []
        tables = {table_for(rule, scale, oxygen) for scale in (1, 2) for oxygen in (False, True)}
        for table in sorted(tables):
            for spec in BANDS[table]:
                if spec.edge not in edges:
                    edges.append(spec.edge)
        for edge in edges:
            fields.append({"rule": rule.value, "rule_title": CATALOGUE[rule].title, "param": edge,
                           "label": f"{CATALOGUE[rule].title}: {label(rule, edge)}",
                           "default": plain(rule, edge, defaults.values[edge]),
                           "own": None if own.get(edge) is None else plain(rule, edge, own[edge]),
                           "source": defaults.source(edge), "zero": ZERO_MEANS.get((rule, edge), "")})
    return fields


@router.get("/nurse/people/{person_id}", response_class=HTMLResponse)
def person_page(request: Request, person_id: RowId, user: NurseUser, session: Db) -> HTMLResponse:
    """A person on her caseload: charts (scripts over the API), trend alerts with their evidence,
    review notes, thresholds and absences."""
    person = _person_seen(request, session, user, person_id)
    now = utc_now()
    rules = {row.rule: dict(row.params) for row in person_settings.rule_settings(session, person.id)}
    changes = person_settings.rule_settings(session, person.id)
    absences = person_settings.absences(session, person.id)
    tasks = review_tasks.open_tasks(session, [person.id], now)
    notes = review_tasks.notes(session, person.id, limit=10)
    recent = list(session.scalars(select(Alert).where(Alert.person_id == person.id)
                                  .order_by(Alert.opened_at.desc()).limit(10)))
    audit.record(session, user.username, "view_patient", [person.id], "nurse's person page")
    session.commit()
    return render(request, user, "nurse/person.html", title=person.name, person=person, tasks=tasks, notes=notes,
                  fields=threshold_fields(rules), changes=changes, absences=absences, recent=recent,
                  active=ACTIVE, metrics=[metric.value for metric in RULES_BY_METRIC])


@router.get("/nurse/tasks", response_class=HTMLResponse)
def tasks_page(request: Request, user: NurseUser, session: Db) -> HTMLResponse:
    """The open review tasks of her caseload, oldest first, each with a note form."""
    tasks = review_tasks.open_tasks(session, visible_person_ids(session, user), utc_now())
    audit.record(session, user.username, "view_review_tasks", [task.person_id for task in tasks], "page")
    session.commit()
    return render(request, user, "nurse/tasks.html", title="Review tasks", tasks=tasks)


@router.get("/nurse/teams", response_class=HTMLResponse)
def teams_page(request: Request, user: TeamLead, session: Db) -> HTMLResponse:
    """Her teams: members, each team's caseload and each member's own; forms to assign people."""
    found = teams.teams(session, user)
    caseloads = {team.id: teams.team_people(session, team.id) for team in found}
    members = {member.username: member for team in found for member in team.members} | {user.username: user}
    own = {username: teams.nurse_people(session, member) for username, member in members.items()}
    people = visible_people(session, user)
    audit.record(session, user.username, "view_caseload_assignments",
                 {p.id for listed in [*caseloads.values(), *own.values()] for p in listed} | {p.id for p in people},
                 "team lead's page")
    session.commit()
    return render(request, user, "nurse/teams.html", title="Teams and caseloads", teams=found, caseloads=caseloads,
                  members=sorted(members.values(), key=lambda m: m.username), own=own, people=people)
