"""Each person as the detection engine sees them (`PersonProfile`), built from the database.

- `id`: `str(Person.id)`; the engine's decisions name people by it, and the centre maps
  them back with `int()`.
- `hubs`: the person's hubs; a person without a hub has nothing to watch and is left out.
- `devices`: device id → `Device.location`, for devices whose location is set (the activity
  rules need it; a device without one is still supervised through its hub).
- `expected_intervals`: device id → `Device.expected_interval_s`, where set.
- `bed_sensors`: bed device id → `Device.bed_sensor_kind`, for beds that are not occupancy mats
  (`detection.people.BedSensorKind`; an unknown stored kind is logged and read as occupancy).
- `rules`: every `RuleSetting` row whose `rule` is one of the engine's rule names
  (`detection.rules.RuleId`), its `params` as the overrides.
- The pseudo-rule `profile` holds what is about the person rather than a rule:
  `{"spo2_scale": 2, "on_oxygen": false, "measurement_schedule": {"times": ["09:00"],
  "window_minutes": 120}, "timezone": "Europe/London"}` (each key optional).
- `absences`: the person's `PlannedAbsence` rows.

A row the engine would refuse (an unknown rule or parameter, a value of the wrong kind, or
one outside the parameter's floor and ceiling, `detection.defaults`) is left out of the
profile, logged as a warning naming the person, the rule and the bound, and counted in
`SETTINGS_IGNORED` (`telecare_detection_settings_ignored_total{rule}`), so one bad setting
never stops a person being watched on the defaults. For the alarm rules the defaults are
their safety floor: a row stored before the floors existed (`pendant_alarm` with
`enabled = false` or `priority = 5`) never switches the help button off or demotes it. The
settings API validates before writing (`check_rule_setting`, and again in
`person_settings.set_rule`), so this is for rows written some other way or before.
"""

import logging
from collections import defaultdict
from typing import Any

from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from detection.defaults import OverrideError, check_value
from detection.people import Absence, BedSensorKind, PersonProfile
from detection.rules import CATALOGUE
from monitoring_centre.storage import Device, Hub, Person, PlannedAbsence, RuleSetting

log = logging.getLogger(__name__)

PROFILE_RULE = "profile"
PROFILE_KEYS = frozenset({"spo2_scale", "on_oxygen", "measurement_schedule", "timezone"})
SETTINGS_IGNORED = Counter(
    "telecare_detection_settings_ignored", "Stored rule settings left out when a profile was loaded (unknown, "
    "malformed or outside a floor or ceiling); the rule runs on its defaults", ["rule"], registry=None)
"""Counted once per load of the row (a centre start, and each refresh of the person). Not in
any registry until the centre registers it (`Centre.registry`)."""


def check_rule_setting(rule: str, params: dict[str, Any]) -> dict[str, Any]:
    """A person's parameters for `rule` as the engine will read them; ValueError says what is wrong.

    For the settings API (`CentreState.check_rule_setting`): the engine's rules, and `profile`."""
    if rule == PROFILE_RULE:
        unknown = set(params) - PROFILE_KEYS
        if unknown:
            raise ValueError(f"unknown profile setting(s) {sorted(unknown)}; known: {sorted(PROFILE_KEYS)}")
        try:
            PersonProfile.model_validate({"id": "check", "hubs": ("check",), **params})
        except ValidationError as error:
            raise ValueError("; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                                       for e in error.errors())) from None
        return dict(params)
    if rule not in CATALOGUE:
        raise ValueError(f"{rule!r} is not a detection rule; known: {', '.join(sorted(CATALOGUE))}, {PROFILE_RULE}")
    return {key: check_value(rule, key, value) for key, value in params.items()}


def load_profiles(session: Session, *, timezone: str = "UTC", person_ids: list[int] | None = None,
                  ) -> list[PersonProfile]:
    """Profiles of every person with a hub (or only of `person_ids`)."""
    people = select(Person.id, Person.name)
    if person_ids is not None:
        people = people.where(Person.id.in_(person_ids))
    names = dict(session.execute(people).all())
    if not names:
        return []
    hubs: dict[int, list[str]] = defaultdict(list)
    for hub_id, person_id in session.execute(select(Hub.id, Hub.person_id).where(Hub.person_id.in_(names))
                                             .order_by(Hub.id)):
        hubs[person_id].append(hub_id)
    devices: dict[int, list[Device]] = defaultdict(list)
    for device, person_id in session.execute(select(Device, Hub.person_id).join(Hub, Hub.id == Device.hub_id)
                                             .where(Hub.person_id.in_(names))):
        devices[person_id].append(device)
    settings: dict[int, list[RuleSetting]] = defaultdict(list)
    for row in session.scalars(select(RuleSetting).where(RuleSetting.person_id.in_(names))):
        settings[row.person_id].append(row)
    absences: dict[int, list[PlannedAbsence]] = defaultdict(list)
    for absence in session.scalars(select(PlannedAbsence).where(PlannedAbsence.person_id.in_(names))
                                   .order_by(PlannedAbsence.starts_at)):
        absences[absence.person_id].append(absence)
    profiles = []
    for person_id, name in names.items():
        if not hubs[person_id]:
            continue
        profile = _profile(person_id, name, hubs[person_id], devices[person_id], settings[person_id],
                           absences[person_id], timezone)
        if profile is not None:
            profiles.append(profile)
    return profiles


def _bed_sensors(person_id: int, devices: list[Device]) -> dict[str, BedSensorKind]:
    """Bed device id → its kind, for the beds that are not occupancy mats; a stored kind the engine does
    not know is logged and read as an occupancy mat (the default), never refusing the whole profile."""
    kinds: dict[str, BedSensorKind] = {}
    for device in devices:
        if device.location != "bed" or device.bed_sensor_kind == BedSensorKind.OCCUPANCY:
            continue
        try:
            kinds[device.id] = BedSensorKind(device.bed_sensor_kind)
        except ValueError:
            log.error("person %s: bed sensor %s has an unknown kind %r, read as occupancy", person_id, device.id,
                      device.bed_sensor_kind)
    return kinds


def _profile(person_id: int, name: str, hubs: list[str], devices: list[Device], settings: list[RuleSetting],
             absences: list[PlannedAbsence], timezone: str) -> PersonProfile | None:
    fields: dict[str, Any] = {
        "id": str(person_id), "name": name, "hubs": tuple(hubs), "timezone": timezone,
        "devices": {d.id: d.location for d in devices if d.location},
        "expected_intervals": {d.id: d.expected_interval_s for d in devices if d.expected_interval_s},
        "bed_sensors": _bed_sensors(person_id, devices),
        "rules": {}, "absences": tuple(Absence(start=a.starts_at, end=a.ends_at, reason=a.reason) for a in absences),
    }
    for row in settings:
        if row.rule == PROFILE_RULE:
            unknown = set(row.params) - PROFILE_KEYS
            if unknown:
                log.error("person %s: unknown profile settings %s left out", person_id, sorted(unknown))
            fields |= {key: value for key, value in row.params.items() if key in PROFILE_KEYS}
        elif row.rule in CATALOGUE:
            try:
                fields["rules"][row.rule] = {key: check_value(row.rule, key, value)
                                             for key, value in row.params.items()}
            except OverrideError as error:
                SETTINGS_IGNORED.labels(rule=row.rule).inc()
                log.warning("person %s: stored setting for %s ignored, the rule runs on its defaults: %s",
                            person_id, row.rule, error)
        else:
            SETTINGS_IGNORED.labels(rule="unknown").inc()
            log.error("person %s: setting for unknown rule %r left out", person_id, row.rule)
    try:
        return PersonProfile.model_validate(fields)
    except ValidationError as error:
        log.error("person %s: profile refused (%s); watched on the defaults", person_id, error)
    fallback = {key: fields[key] for key in ("id", "name", "hubs", "timezone", "expected_intervals")}
    try:
        return PersonProfile.model_validate(fallback)
    except ValidationError as error:
        log.error("person %s cannot be watched by the detection engine: %s", person_id, error)
        return None
