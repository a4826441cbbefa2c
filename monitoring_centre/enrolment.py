"""Putting a person, their hub and their devices on the centre's books.

A hub's id is also its broker username (`telecare_protocol.topics`): the broker's password
file and ACL know a hub only by it. So an id that is, or could be, another account's name is
refused here, for every way a hub is enrolled (`check_hub_id`): two accounts of one name in
Mosquitto's password file shut one of them out, and when the other is the centre's own, every
alarm stops (a hub enrolled as `centre` did exactly that).
"""

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from detection.people import BedSensorKind
from monitoring_centre.storage import Device, Hub, Person
from telecare_protocol.messages import Identifier

RESERVED_HUB_IDS: frozenset[str] = frozenset({
    "centre", "center",  # the centre's broker account by default (`TELECARE_MQTT_USERNAME`)
    "admin", "administrator", "root",  # what administrators and broker tools call themselves
    "mosquitto",  # the broker's own system user
    "telecare",  # the centre's own system user (docs/operating.md)
    "broker", "sys",  # the broker itself and its `$SYS` tree (`$` cannot be in an id at all)
})
"""Names no hub may have, whatever the centre's settings. The centre's configured broker username
is refused besides (`check_hub_id(..., centre_username=...)`)."""

_identifier = TypeAdapter(Identifier)


class HubIdRefused(ValueError):
    """A hub id that cannot be a hub's id and broker username; the message says why and what to do."""


def check_hub_id(hub_id: str, *, centre_username: str | None = None) -> str:
    """`hub_id`, if a hub may have it: the protocol's id pattern (`^[a-z0-9][a-z0-9_-]{0,62}$`), not
    in `RESERVED_HUB_IDS`, and not the centre's own broker username (compared without case, so no
    broker that folds case can mistake one for the other). Raises `HubIdRefused` otherwise."""
    try:
        _identifier.validate_python(hub_id)
    except ValidationError:
        raise HubIdRefused(f"hub id {hub_id!r}: lower-case letters, digits, '-' and '_', at most 63") from None
    if centre_username is not None and hub_id == centre_username.lower():
        raise HubIdRefused(f"hub id {hub_id!r} is the centre's own broker username: a hub enrolled under it would "
                           "shut the centre out of the broker; choose another id (e.g. hub-0042)")
    if hub_id in RESERVED_HUB_IDS:
        raise HubIdRefused(f"hub id {hub_id!r} is reserved (one of {', '.join(sorted(RESERVED_HUB_IDS))}): a hub's id "
                           "is its broker username and must never be another account's; choose another id "
                           "(e.g. hub-0042)")
    return hub_id


def reserved_hub_ids(hub_ids: Iterable[str], *, centre_username: str) -> dict[str, str]:
    """Of `hub_ids` (hubs already on the books), those `check_hub_id` refuses, each with the reason:
    enrolled before the check existed, they must get no broker account."""
    refused = {}
    for hub_id in hub_ids:
        try:
            check_hub_id(hub_id, centre_username=centre_username)
        except HubIdRefused as problem:
            refused[hub_id] = str(problem)
    return refused


@dataclass(frozen=True)
class DeviceRecord:
    device_id: str
    kind: str
    location: str = ""
    """Where in the home (front_door, bed, kitchen, ...), for the activity rules; "" if not known."""
    expected_interval_s: int | None = None
    """How often the device is heard from when all is well; None: the supervision default."""
    bed_sensor_kind: BedSensorKind = BedSensorKind.OCCUPANCY
    """For a bed sensor: an occupancy mat or a pulse-on-movement mat (`detection.people.BedSensorKind`)."""


def enrol_home(session: Session, *, name: str, address: str, hub_id: str, devices: list[DeviceRecord],
               nhs_number: str | None = None) -> Person:
    """A person, their hub and devices, flushed. Raises `HubIdRefused` for a hub id no hub may have
    (callers that know the centre's broker username check it first with `check_hub_id`)."""
    check_hub_id(hub_id)
    person = Person(name=name, address=address, nhs_number=nhs_number)
    session.add(person)
    session.flush()
    session.add(Hub(id=hub_id, person_id=person.id))
    session.flush()
    for device in devices:
        session.add(Device(hub_id=hub_id, id=device.device_id, kind=device.kind, location=device.location,
                           expected_interval_s=device.expected_interval_s,
                           bed_sensor_kind=device.bed_sensor_kind.value))
    session.flush()
    return person
