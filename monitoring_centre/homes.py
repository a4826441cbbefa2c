"""The centre's books as an administrator keeps them: each person's entry, their homes' hubs and
devices, each device's battery and when it was last heard from, and retiring a home.

Enrolment itself is `enrolment.py` (and `centre_app/admin.py`, which also gives the hub its
broker password); this module reads the books and changes them afterwards. Every change is
audited against the person, with the values before and after as JSON:
`{"before": {"address": "1 Old Road"}, "after": {"address": "2 New Road"}, "reason": ""}`.
The way in (`Person.access_details`, a key safe code) never goes into the audit log: an
enrolment records it as `"(changed)"`, so the log does not become a list of key safe codes.
A person's name, address and the rest of what operators read are their caller record
(`caller_record.py`); the service they are on is here (`set_service`).

Retiring a home (the person has left the service, or moved) takes its hub and devices off the
books: the hub gets no broker account when the broker's files are next written
(`centre_app.admin.broker_files`), messages from it are refused as from an unknown hub, and
the detection engine stops watching the person (a person without a hub has no profile,
`profiles.load_profiles`). The person's entry, alerts, readings and audit stay: the
record of the care given is kept (`retention.py` never purges alerts or audit).
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from detection.rules import RuleId
from monitoring_centre import audit
from monitoring_centre.alerts import ACTIVE
from monitoring_centre.enrolment import DeviceRecord
from monitoring_centre.storage import Alert, Device, Hub, Person

SERVICES = ("monitored", "keyholder_only")
"""A person's service (`Person.service`): the operators answer first, or the keyholders are called."""
WAY_IN_CHANGED = "(changed)"
"""What the audit log says of a change to the way in, instead of its value."""
QUIET_AFTER_S = 25 * 3600
"""A device not heard from for this long, when it has no expected interval of its own, is shown
as quiet: Zigbee2MQTT's default for a battery device's availability (25 h, domain brief)."""


class BooksRefused(ValueError):
    """A change to the books that cannot be made; the message says what to correct."""


@dataclass(frozen=True)
class PersonRow:
    """A person in the administrator's list."""

    id: int
    name: str
    address: str
    nhs_number: str | None
    service: str
    hub_ids: tuple[str, ...]
    """Empty for a person whose home is retired (or was never enrolled)."""
    devices: int


@dataclass(frozen=True)
class DeviceRow:
    """A device with what the centre last heard from it."""

    person_id: int
    person_name: str
    hub_id: str
    device_id: str
    kind: str
    location: str
    battery_pct: int | None
    """The battery level the hub last reported (0-100 %), from its heartbeat; None if never reported."""
    last_seen: datetime | None
    """When the hub last heard from the device (the centre's clock); None if never."""
    expected_interval_s: int | None
    problems: tuple[str, ...]
    """The device's open supervision alerts (`battery_low`, `device_not_seen`, `tamper`, `device_fault`)
    and "quiet" when not heard from for longer than expected: empty when all is well."""


def people(session: Session) -> list[PersonRow]:
    """Everyone on the books, by name, with their hubs and how many devices."""
    hubs: dict[int, list[str]] = {}
    for hub_id, person_id in session.execute(select(Hub.id, Hub.person_id).order_by(Hub.id)):
        hubs.setdefault(person_id, []).append(hub_id)
    counts: dict[str, int] = {}
    for hub_id in session.scalars(select(Device.hub_id)):
        counts[hub_id] = counts.get(hub_id, 0) + 1
    return [PersonRow(id=p.id, name=p.name, address=p.address, nhs_number=p.nhs_number, service=p.service,
                      hub_ids=tuple(hubs.get(p.id, ())), devices=sum(counts.get(h, 0) for h in hubs.get(p.id, ())))
            for p in session.scalars(select(Person).order_by(Person.name, Person.id))]


DEVICE_RULES = (RuleId.BATTERY_LOW, RuleId.DEVICE_NOT_SEEN, RuleId.TAMPER, RuleId.DEVICE_FAULT)


def devices(session: Session, now: datetime, person_id: int | None = None) -> list[DeviceRow]:
    """Every device (or one person's), by person and hub, with its battery, when it was last
    heard from and its problems (see `DeviceRow.problems`)."""
    query = (select(Device, Hub.person_id, Person.name).join(Hub, Hub.id == Device.hub_id)
             .join(Person, Person.id == Hub.person_id).order_by(Person.name, Device.hub_id, Device.id))
    if person_id is not None:
        query = query.where(Hub.person_id == person_id)
    rows = session.execute(query).all()
    open_alerts: dict[tuple[str, str], list[str]] = {}
    alerts = select(Alert.hub_id, Alert.subject, Alert.rule).where(Alert.status.in_(ACTIVE),
                                                                    Alert.rule.in_(DEVICE_RULES))
    for hub_id, subject, rule in session.execute(alerts):
        open_alerts.setdefault((hub_id, subject), []).append(rule)
    result = []
    for device, owner, name in rows:
        problems = sorted(open_alerts.get((device.hub_id, device.id), []))
        allowed = timedelta(seconds=device.expected_interval_s or QUIET_AFTER_S)
        if (device.last_seen is None or now - device.last_seen > allowed) and RuleId.DEVICE_NOT_SEEN not in problems:
            problems.append("quiet")
        result.append(DeviceRow(person_id=owner, person_name=name, hub_id=device.hub_id, device_id=device.id,
                                kind=device.kind, location=device.location, battery_pct=device.battery_pct,
                                last_seen=device.last_seen, expected_interval_s=device.expected_interval_s,
                                problems=tuple(problems)))
    return result


def hubs(session: Session, person_id: int) -> list[Hub]:
    return list(session.scalars(select(Hub).where(Hub.person_id == person_id).order_by(Hub.id)))


def _details(person: Person) -> dict[str, object]:
    return {"name": person.name, "address": person.address, "nhs_number": person.nhs_number,
            "service": person.service, "access_details": WAY_IN_CHANGED if person.access_details else ""}


def set_service(session: Session, person: Person, service: str, *, by: str) -> bool:
    """The person's service (`SERVICES`): whether the operators answer first or the keyholders are
    called. Raises `BooksRefused` for another value. Audited "change_service" with before and after;
    False (nothing recorded) when it is the service already. The rest of the person's entry is
    their caller record (`caller_record.py`)."""
    if service not in SERVICES:
        raise BooksRefused(f"service {service!r}: one of {', '.join(SERVICES)}")
    if service == person.service:
        return False
    before, person.service = person.service, service
    audit.record(session, by, "change_service", [person.id],
                 json.dumps({"before": {"service": before}, "after": {"service": service}}, sort_keys=True))
    return True


def enrolled_detail(person: Person, hub_id: str, devices: list[str]) -> str:
    """The audit detail of an enrolment: nothing before, the entry, hub and devices after."""
    return json.dumps({"before": None, "after": {**_details(person), "hub": hub_id, "devices": devices}},
                      sort_keys=True)


def _device_state(device: Device) -> dict[str, object]:
    return {"hub": device.hub_id, "device": device.id, "kind": device.kind, "location": device.location}


def add_device(session: Session, hub: Hub, record: DeviceRecord, *, by: str) -> Device:
    """A new device in the hub's home (the hub learns of it from its own configuration). Raises
    `BooksRefused` if the hub has a device of this id already. Audited "add_device"."""
    if session.get(Device, (hub.id, record.device_id)) is not None:
        raise BooksRefused(f"hub {hub.id!r} already has a device {record.device_id!r}")
    device = Device(hub_id=hub.id, id=record.device_id, kind=record.kind, location=record.location,
                    expected_interval_s=record.expected_interval_s, bed_sensor_kind=record.bed_sensor_kind.value)
    session.add(device)
    session.flush()
    audit.record(session, by, "add_device", [hub.person_id],
                 json.dumps({"before": None, "after": _device_state(device)}, sort_keys=True))
    return device


def remove_device(session: Session, hub: Hub, device_id: str, *, by: str, reason: str) -> bool:
    """The device is taken out of the home (lost, broken, replaced). False if there is no such
    device. Its events and readings stay. Audited "remove_device" with the reason."""
    device = session.get(Device, (hub.id, device_id))
    if device is None:
        return False
    if not reason.strip():
        raise BooksRefused("say why the device is removed (it goes in the audit log)")
    before = _device_state(device)
    session.delete(device)
    session.flush()
    audit.record(session, by, "remove_device", [hub.person_id],
                 json.dumps({"before": before, "after": None, "reason": reason.strip()}, sort_keys=True))
    return True


def retire_home(session: Session, person: Person, *, by: str, reason: str) -> list[str]:
    """Take the person's hubs and devices off the books (see the module docstring); their
    entry and history stay. Returns the hub ids retired. Raises `BooksRefused` without a reason,
    or when the person has no hub. Audited "retire_home" with the hubs and devices before."""
    if not reason.strip():
        raise BooksRefused("say why the home is retired (it goes in the audit log)")
    found = hubs(session, person.id)
    if not found:
        raise BooksRefused("this person has no hub on the books: nothing to retire")
    before = {hub.id: [d.id for d in session.scalars(select(Device).where(Device.hub_id == hub.id)
                                                     .order_by(Device.id))] for hub in found}
    ids = [hub.id for hub in found]
    session.execute(delete(Device).where(Device.hub_id.in_(ids)))
    session.execute(delete(Hub).where(Hub.id.in_(ids)))
    session.flush()
    audit.record(session, by, "retire_home", [person.id],
                 json.dumps({"before": {"hubs": before}, "after": {"hubs": {}}, "reason": reason.strip()},
                            sort_keys=True))
    return ids
