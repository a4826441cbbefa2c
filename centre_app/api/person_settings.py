"""A person's detection settings (clinicians) and planned absences: thin routes over
`monitoring_centre/person_settings.py`. Every view and change is audited."""

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import AwareDatetime, BaseModel, Field

from centre_app.api.deps import Centre, CurrentUser, Db, may_see, require_role
from monitoring_centre import audit, person_settings
from monitoring_centre.storage import Person, User

router = APIRouter(prefix="/api/v1/patients", tags=["detection settings"])

CHANGES_RULES = ("admin", "nurse")
"""Thresholds are clinical decisions: a nurse with the person on their caseload, or an admin
recording a clinician's instruction."""
PLANS_ABSENCES = ("admin", "operator", "nurse", "person")


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


def _person(session: Db, user: User, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None or not may_see(session, user, person_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such person")
    return person


@router.get("/{person_id}/rules")
def list_rule_settings(person_id: int, user: CurrentUser, session: Db) -> list[RuleSettingOut]:
    """The person's own values; every rule not listed runs on its cited default."""
    require_role(user, "admin", "operator", "nurse", "person")
    _person(session, user, person_id)
    rows = person_settings.rule_settings(session, person_id)
    audit.record(session, user.username, "view_rule_settings", [person_id])
    session.commit()
    return [RuleSettingOut(rule=r.rule, params=r.params, changed_at=r.changed_at, changed_by=r.changed_by,
                           reason=r.reason) for r in rows]


@router.put("/{person_id}/rules/{rule}")
def set_rule_setting(person_id: int, rule: str, body: RuleSettingIn, user: CurrentUser, session: Db,
                     centre: Centre) -> RuleSettingOut:
    require_role(user, *CHANGES_RULES)
    _person(session, user, person_id)
    try:
        params = centre.check_rule_setting(rule, body.params)
        row = person_settings.set_rule(session, person_id, rule, params, by=user.username, reason=body.reason)
    except (ValueError, person_settings.SettingRefused) as refused:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(refused)) from refused
    session.commit()
    centre.profile_changed(person_id)
    return RuleSettingOut(rule=row.rule, params=row.params, changed_at=row.changed_at, changed_by=row.changed_by,
                          reason=row.reason)


@router.delete("/{person_id}/rules/{rule}", status_code=status.HTTP_204_NO_CONTENT)
def reset_rule_setting(person_id: int, rule: str, body: ResetIn, user: CurrentUser, session: Db,
                       centre: Centre) -> None:
    require_role(user, *CHANGES_RULES)
    _person(session, user, person_id)
    if not person_settings.reset_rule(session, person_id, rule, by=user.username, reason=body.reason):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the person has no setting of their own for this rule")
    session.commit()
    centre.profile_changed(person_id)


@router.get("/{person_id}/absences")
def list_absences(person_id: int, user: CurrentUser, session: Db) -> list[AbsenceOut]:
    _person(session, user, person_id)
    rows = person_settings.absences(session, person_id)
    audit.record(session, user.username, "view_absences", [person_id])
    session.commit()
    return [AbsenceOut(id=a.id, starts_at=a.starts_at, ends_at=a.ends_at, reason=a.reason, created_by=a.created_by)
            for a in rows]


@router.post("/{person_id}/absences", status_code=status.HTTP_201_CREATED)
def plan_absence(person_id: int, body: AbsenceIn, user: CurrentUser, session: Db, centre: Centre) -> AbsenceOut:
    """While the person is away (hospital, holiday) the activity rules pause; alarms do not."""
    require_role(user, *PLANS_ABSENCES)
    if user.role == "person" and user.person_id != person_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a person plans only their own absences")
    _person(session, user, person_id)
    try:
        absence = person_settings.plan_absence(session, person_id, body.starts_at, body.ends_at, reason=body.reason,
                                               by=user.username)
    except person_settings.SettingRefused as refused:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(refused)) from refused
    session.commit()
    centre.profile_changed(person_id)
    return AbsenceOut(id=absence.id, starts_at=absence.starts_at, ends_at=absence.ends_at, reason=absence.reason,
                      created_by=absence.created_by)


@router.delete("/{person_id}/absences/{absence_id}", status_code=status.HTTP_204_NO_CONTENT)
def cancel_absence(person_id: int, absence_id: int, user: CurrentUser, session: Db, centre: Centre) -> None:
    require_role(user, *PLANS_ABSENCES)
    if user.role == "person" and user.person_id != person_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a person plans only their own absences")
    _person(session, user, person_id)
    if not person_settings.cancel_absence(session, person_id, absence_id, by=user.username):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such absence")
    session.commit()
    centre.profile_changed(person_id)
