"""A person's own detection settings and planned absences, each change audited.

Rules run on their cited defaults (`detection/`) until a clinician sets a
person's own value: a Scale 2 SpO2 target for hypercapnic COPD, a longer persistence for
someone whose probe slips at night. Every change keeps who made it, when and why, in the
row and in the audit log, with the values before and after. The detection engine is told
at once (`CentreState.profile_changed`).
"""

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitoring_centre import audit
from monitoring_centre.profiles import check_rule_setting
from monitoring_centre.storage import PlannedAbsence, RuleSetting, utc_now

MAX_ABSENCE_DAYS = 366


class SettingRefused(ValueError):
    """A change that cannot be made, with the reason the caller is shown."""


def rule_settings(session: Session, person_id: int) -> list[RuleSetting]:
    return list(session.scalars(select(RuleSetting).where(RuleSetting.person_id == person_id)
                                .order_by(RuleSetting.rule)))


def set_rule(session: Session, person_id: int, rule: str, params: dict[str, Any], *, by: str,
             reason: str) -> RuleSetting:
    """Give the person their own parameters for `rule`.

    The parameters are checked here again (`profiles.check_rule_setting`: the engine's kinds,
    floors and ceilings), whatever checked them before, so no caller can store a setting the
    engine would refuse, such as a help button switched off or demoted. Raises
    `SettingRefused` with the reason (naming the bound and its source) and writes nothing."""
    if not reason.strip():
        raise SettingRefused("say why the person's setting changes (it goes in the audit log)")
    try:
        params = check_rule_setting(rule, params)
    except ValueError as refused:
        raise SettingRefused(str(refused)) from None
    row = session.scalar(select(RuleSetting).where(RuleSetting.person_id == person_id, RuleSetting.rule == rule))
    before = row.params if row else None
    if row is None:
        row = RuleSetting(person_id=person_id, rule=rule, params=params, changed_at=utc_now(), changed_by=by,
                          reason=reason)
        session.add(row)
    else:
        row.params, row.changed_at, row.changed_by, row.reason = params, utc_now(), by, reason
    audit.record(session, by, "change_rule_setting", [person_id],
                 json.dumps({"rule": rule, "before": before, "after": params, "reason": reason}, sort_keys=True))
    return row


def reset_rule(session: Session, person_id: int, rule: str, *, by: str, reason: str) -> bool:
    """Back to the rule's defaults. False when the person had no setting of their own."""
    if not reason.strip():
        raise SettingRefused("say why the person's setting changes (it goes in the audit log)")
    row = session.scalar(select(RuleSetting).where(RuleSetting.person_id == person_id, RuleSetting.rule == rule))
    if row is None:
        return False
    audit.record(session, by, "change_rule_setting", [person_id],
                 json.dumps({"rule": rule, "before": row.params, "after": None, "reason": reason}, sort_keys=True))
    session.delete(row)
    return True


def absences(session: Session, person_id: int) -> list[PlannedAbsence]:
    return list(session.scalars(select(PlannedAbsence).where(PlannedAbsence.person_id == person_id)
                                .order_by(PlannedAbsence.starts_at)))


def plan_absence(session: Session, person_id: int, starts_at: datetime, ends_at: datetime, *, reason: str,
                 by: str) -> PlannedAbsence:
    """A hospital stay or a holiday: the activity rules pause from `starts_at` to `ends_at`."""
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise SettingRefused("give the absence's times with a time zone")
    if ends_at <= starts_at:
        raise SettingRefused("an absence must end after it starts")
    if (ends_at - starts_at).days > MAX_ABSENCE_DAYS:
        raise SettingRefused(f"an absence longer than {MAX_ABSENCE_DAYS} days is a change of service, not an absence")
    absence = PlannedAbsence(person_id=person_id, starts_at=starts_at, ends_at=ends_at, reason=reason,
                             created_by=by, created_at=utc_now())
    session.add(absence)
    session.flush()
    audit.record(session, by, "plan_absence", [person_id],
                 json.dumps({"absence": absence.id, "starts_at": starts_at.isoformat(),
                             "ends_at": ends_at.isoformat(), "reason": reason}, sort_keys=True))
    return absence


def cancel_absence(session: Session, person_id: int, absence_id: int, *, by: str) -> bool:
    absence = session.get(PlannedAbsence, absence_id)
    if absence is None or absence.person_id != person_id:
        return False
    audit.record(session, by, "cancel_absence", [person_id],
                 json.dumps({"absence": absence.id, "starts_at": absence.starts_at.isoformat(),
                             "ends_at": absence.ends_at.isoformat()}, sort_keys=True))
    session.delete(absence)
    return True
