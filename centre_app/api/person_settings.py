"""A person's detection settings (clinicians) and planned absences: thin routes over
`monitoring_centre/person_settings.py`. Every view and change is audited."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import AwareDatetime, BaseModel, Field

from centre_app.api.deps import (
    Centre,
    CurrentUser,
    Db,
    DocumentedRoute,
    RowId,
    VisiblePerson,
    invalid,
    refuse,
    refuses,
    require_roles,
    visible_person,
)
from monitoring_centre import audit, person_settings
from monitoring_centre.storage import Person, User

router = APIRouter(prefix="/api/v1/patients", tags=["detection settings"], route_class=DocumentedRoute)

CHANGES_RULES = ("admin", "nurse", "team_lead")
"""Thresholds are clinical decisions: a nurse with the person on their caseload, or an admin
recording a clinician's instruction."""
PLANS_ABSENCES = ("admin", "operator", "nurse", "team_lead", "person")
READS_RULES = ("admin", "operator", "nurse", "team_lead", "person")
"""Everyone but family: the person sees their own settings, the centre's staff those of the people they may see."""

RuleReader = Annotated[User, Depends(require_roles(*READS_RULES))]
RuleChanger = Annotated[User, Depends(require_roles(*CHANGES_RULES))]


AbsencePlanner = Annotated[User, Depends(require_roles(*PLANS_ABSENCES))]


@refuses(403, 404)
def person_planned_for(request: Request, person_id: RowId, user: AbsencePlanner, session: Db) -> Person:
    """The person at the path's `{person_id}`, if the caller may plan their absences: 403 unless
    the caller is one of PLANS_ABSENCES, 403 for a person planning someone else's, then 404 as
    `visible_person` if the caller may not see them. Every refusal is audited (`refuse`)."""
    if user.role == "person" and user.person_id != person_id:
        raise refuse(request, session, user, status.HTTP_403_FORBIDDEN, "a person plans only their own absences",
                     person_id if session.get(Person, person_id) is not None else None)
    return visible_person(request, person_id, user, session)


PersonPlannedFor = Annotated[Person, Depends(person_planned_for)]


class RuleSettingOut(BaseModel):
    rule: str
    params: dict[str, Any]
    changed_at: datetime
    changed_by: str
    reason: str


class RuleSettingIn(BaseModel):
    params: dict[str, Any]
    reason: str = Field(min_length=1, description="why this person's setting differs (kept in the audit log)")


class ResetIn(BaseModel):
    reason: str = Field(min_length=1)


class AbsenceIn(BaseModel):
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: str = Field(default="", max_length=200)


class AbsenceOut(BaseModel):
    id: int
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str


@router.get("/{person_id}/rules")
def list_rule_settings(user: RuleReader, person: VisiblePerson, session: Db) -> list[RuleSettingOut]:
    """The person's own values; every rule not listed runs on its cited default."""
    rows = person_settings.rule_settings(session, person.id)
    audit.record(session, user.username, "view_rule_settings", [person.id])
    session.commit()
    return [RuleSettingOut(rule=r.rule, params=r.params, changed_at=r.changed_at, changed_by=r.changed_by,
                           reason=r.reason) for r in rows]


@router.put("/{person_id}/rules/{rule}")
def set_rule_setting(rule: str, body: RuleSettingIn, user: RuleChanger, person: VisiblePerson, session: Db,
                     centre: Centre) -> RuleSettingOut:
    try:
        params = centre.check_rule_setting(rule, body.params)
        row = person_settings.set_rule(session, person.id, rule, params, by=user.username, reason=body.reason)
    except (ValueError, person_settings.SettingRefused) as refused:
        raise invalid(("body", "params"), str(refused)) from refused
    session.commit()
    centre.profile_changed(person.id)
    return RuleSettingOut(rule=row.rule, params=row.params, changed_at=row.changed_at, changed_by=row.changed_by,
                          reason=row.reason)


@router.delete("/{person_id}/rules/{rule}", status_code=status.HTTP_204_NO_CONTENT)
def reset_rule_setting(rule: str, body: ResetIn, user: RuleChanger, person: VisiblePerson, session: Db,
                       centre: Centre) -> None:
    if not person_settings.reset_rule(session, person.id, rule, by=user.username, reason=body.reason):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the person has no setting of their own for this rule")
    session.commit()
    centre.profile_changed(person.id)


@router.get("/{person_id}/absences")
def list_absences(person: VisiblePerson, user: CurrentUser, session: Db) -> list[AbsenceOut]:
    rows = person_settings.absences(session, person.id)
    audit.record(session, user.username, "view_absences", [person.id])
    session.commit()
    return [AbsenceOut(id=a.id, starts_at=a.starts_at, ends_at=a.ends_at, reason=a.reason, created_by=a.created_by)
            for a in rows]


@router.post("/{person_id}/absences", status_code=status.HTTP_201_CREATED)
def plan_absence(body: AbsenceIn, person: PersonPlannedFor, user: CurrentUser, session: Db,
                 centre: Centre) -> AbsenceOut:
    """While the person is away (hospital, holiday) the activity rules pause; alarms do not."""
    try:
        absence = person_settings.plan_absence(session, person.id, body.starts_at, body.ends_at, reason=body.reason,
                                               by=user.username)
    except person_settings.SettingRefused as refused:
        raise invalid(("body", "ends_at"), str(refused)) from refused
    session.commit()
    centre.profile_changed(person.id)
    return AbsenceOut(id=absence.id, starts_at=absence.starts_at, ends_at=absence.ends_at, reason=absence.reason,
                      created_by=absence.created_by)


@router.delete("/{person_id}/absences/{absence_id}", status_code=status.HTTP_204_NO_CONTENT)
def cancel_absence(absence_id: RowId, person: PersonPlannedFor, user: CurrentUser, session: Db,
                   centre: Centre) -> None:
    if not person_settings.cancel_absence(session, person.id, absence_id, by=user.username):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such absence")
    session.commit()
    centre.profile_changed(person.id)
