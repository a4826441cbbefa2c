"""The caller's record: what an operator needs to know about a person when answering their
call, and its changes by administrators.

What an operator may see: name, age and date of birth, address, the access notes kept for
operators (`Person.operator_notes`: which door, lights, parking), phones, conditions,
medication summary, allergies, communication needs, risks at the property, pets, GP
practice, NHS number, and the keyholders in the person's order with their numbers and
relationship. Never the key-safe code (`Person.access_details`): that is shown only to a
responder who has accepted the alarm (`alerting/acceptance.py`).

Every change (`update`) is audited against the person ("edit_caller_record") with the values
before and after as JSON: `{"before": {"pets": ""}, "after": {"pets": "a cat"}}`. The way in
(`access_details`) is recorded as `"(changed)"` instead of its value, so that the audit log
never becomes a list of key-safe codes.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitoring_centre import audit
from monitoring_centre.storage import ContactPoint, Person, PersonContact, Responder

WAY_IN_CHANGED = "(changed)"
"""What the audit log says of a change to `access_details`, instead of its value."""
MAX_PHONES = 10
TEXT_FIELDS = ("conditions", "medication_summary", "allergies", "communication_needs", "property_risks", "pets",
               "gp_practice", "address", "access_details")
"""Free-text fields an administrator may set (besides `name`, `date_of_birth`, `phones`,
`nhs_number`, and `access_notes`, stored as `operator_notes`)."""
PHONE_SCHEMES = ("tel:", "sms:")
"""A keyholder's contact points that are phone numbers (RFC 3966 `tel:`, RFC 5724 `sms:`)."""


@dataclass(frozen=True)
class Phone:
    label: str
    """"home", "mobile", "text" ..."""
    number: str


@dataclass(frozen=True)
class Keyholder:
    order: int
    """1 = called first."""
    name: str
    relationship: str
    phones: tuple[Phone, ...]


@dataclass(frozen=True)
class CallerRecord:
    person_id: int
    name: str
    age: int | None
    """Whole years on `today`; None without a date of birth."""
    date_of_birth: date | None
    address: str
    access_notes: str
    phones: tuple[Phone, ...]
    conditions: str
    medication_summary: str
    allergies: str
    communication_needs: str
    property_risks: str
    pets: str
    gp_practice: str
    nhs_number: str | None
    keyholders: tuple[Keyholder, ...]


class BadRecord(ValueError):
    """A change that cannot be made; `field` names the field to correct."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def age_on(born: date | None, today: date) -> int | None:
    if born is None:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def phones_of(raw: object) -> tuple[Phone, ...]:
    """The stored `Person.phones` as phones; entries of another shape are left out."""
    if not isinstance(raw, list):
        return ()
    return tuple(Phone(str(p.get("label", "")), str(p["number"])) for p in raw
                 if isinstance(p, dict) and isinstance(p.get("number"), str) and p["number"])


def keyholders(session: Session, person_id: int) -> tuple[Keyholder, ...]:
    """The person's nominated keyholders (active responders), in the order they want them called,
    with their phone contact points (`PHONE_SCHEMES`)."""
    rows = session.execute(
        select(PersonContact, Responder).join(Responder, Responder.id == PersonContact.responder_id)
        .where(PersonContact.person_id == person_id, Responder.active).order_by(PersonContact.position)).all()
    points: dict[int, list[str]] = {}
    if rows:
        ids = [responder.id for _contact, responder in rows]
        for point in session.scalars(select(ContactPoint).where(ContactPoint.responder_id.in_(ids))
                                     .order_by(ContactPoint.position)):
            points.setdefault(point.responder_id, []).append(point.address)
    out = []
    for order, (contact, responder) in enumerate(rows, start=1):
        phones = tuple(Phone("text" if address.startswith("sms:") else "phone", address.split(":", 1)[1])
                       for address in points.get(responder.id, []) if address.startswith(PHONE_SCHEMES))
        out.append(Keyholder(order, responder.name, contact.relationship, phones))
    return tuple(out)


def record(session: Session, person: Person, today: date) -> CallerRecord:
    """What an operator sees of `person` (not audited here: the caller audits the view)."""
    return CallerRecord(
        person_id=person.id, name=person.name, age=age_on(person.date_of_birth, today),
        date_of_birth=person.date_of_birth, address=person.address, access_notes=person.operator_notes,
        phones=phones_of(person.phones), conditions=person.conditions, medication_summary=person.medication_summary,
        allergies=person.allergies, communication_needs=person.communication_needs,
        property_risks=person.property_risks, pets=person.pets, gp_practice=person.gp_practice,
        nhs_number=person.nhs_number, keyholders=keyholders(session, person.id))


def _audited(person: Person) -> dict[str, Any]:
    values: dict[str, Any] = {field: getattr(person, field) for field in TEXT_FIELDS}
    values["access_details"] = WAY_IN_CHANGED if person.access_details else ""
    values |= {"name": person.name, "nhs_number": person.nhs_number, "access_notes": person.operator_notes,
               "date_of_birth": person.date_of_birth.isoformat() if person.date_of_birth else None,
               "phones": [{"label": p.label, "number": p.number} for p in phones_of(person.phones)]}
    return values


def update(session: Session, person: Person, changes: Mapping[str, Any], by: str, today: date) -> list[str]:
    """Apply `changes` (field → new value; fields as in `CallerRecord`, with `access_details`
    too, and no `age`, `keyholders` or `person_id`) and audit them with before and after.
    `nhs_number` must be normalised already (`nhs_number.normalise`), or None to clear it.
    Returns the names of the fields that changed (nothing is audited when none did). Raises
    `BadRecord` for an empty name, a date of birth in the future, more than `MAX_PHONES`
    phones or a phone without a number, an NHS number already another person's, or an unknown field."""
    before, way_in = _audited(person), person.access_details
    for field, value in changes.items():
        if field == "name":
            if not str(value).strip():
                raise BadRecord("name", "a person has a name")
            person.name = str(value).strip()
        elif field in TEXT_FIELDS:
            setattr(person, field, str(value).strip())
        elif field == "access_notes":
            person.operator_notes = str(value).strip()
        elif field == "date_of_birth":
            if value is not None and value > today:
                raise BadRecord("date_of_birth", "a date of birth cannot be in the future")
            person.date_of_birth = value
        elif field == "phones":
            phones = [{"label": str(p["label"]).strip(), "number": str(p["number"]).strip()} for p in value]
            if len(phones) > MAX_PHONES or any(not p["number"] for p in phones):
                raise BadRecord("phones", f"at most {MAX_PHONES} phones, each with a number")
            person.phones = phones
        elif field == "nhs_number":
            if value is not None and session.scalar(select(Person.id).where(
                    Person.nhs_number == value, Person.id != person.id)) is not None:
                raise BadRecord("nhs_number", "another person on the books has this NHS number")
            person.nhs_number = value
        else:
            raise BadRecord(field, "not a field of the caller record")
    after = _audited(person)
    changed = sorted({key for key in after if after[key] != before[key]}
                     | ({"access_details"} if person.access_details != way_in else set()))
    if changed:
        audit.record(session, by, "edit_caller_record", [person.id], json.dumps(
            {"before": {key: before[key] for key in changed}, "after": {key: after[key] for key in changed}},
            sort_keys=True))
    return changed
