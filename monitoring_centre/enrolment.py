"""Putting a person, their hub and their devices on the centre's books."""

from dataclasses import dataclass

from sqlalchemy.orm import Session

from monitoring_centre.storage import Device, Hub, Person


@dataclass(frozen=True)
class DeviceRecord:
    device_id: str
    kind: str
    location: str = ""
    """Where in the home (front_door, bed, kitchen, ...), for the activity rules; "" if not known."""
    expected_interval_s: int | None = None
    """How often the device is heard from when all is well; None: the supervision default."""


def enrol_home(session: Session, *, name: str, address: str, hub_id: str, devices: list[DeviceRecord],
               nhs_number: str | None = None) -> Person:
    person = Person(name=name, address=address, nhs_number=nhs_number)
    session.add(person)
    session.flush()
    session.add(Hub(id=hub_id, person_id=person.id))
    session.flush()
    for device in devices:
        session.add(Device(hub_id=hub_id, id=device.device_id, kind=device.kind, location=device.location,
                           expected_interval_s=device.expected_interval_s))
    session.flush()
    return person
