"""Devices in people's homes, for administrators: every device with its battery and when it was
last heard from; add one to a home, take one out.

Thin routes over `monitoring_centre/homes.py`. The battery level and last-heard time are the
ones the hub reported in its heartbeats and events (`Device.battery_pct`, `Device.last_seen`,
kept by `ingest.py`); a device's problems are its open supervision alerts. Listing is audited
as a view of every person whose devices are listed; each change with before and after.
"""

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from centre_app.admin import BED_SENSOR_KINDS, DEVICE_KINDS, LOCATIONS, AdminError, check_identifier, parse_device
from centre_app.api.deps import Admin, Centre, Db, DocumentedRoute, ErrorOut, errors, invalid, refuse
from monitoring_centre import audit, homes
from monitoring_centre.storage import Hub, utc_now

router = APIRouter(prefix="/api/v1/devices", tags=["devices"], route_class=DocumentedRoute)


class DeviceOut(BaseModel):
    person_id: int
    person_name: str
    hub_id: str
    device_id: str
    kind: str
    location: str
    battery_pct: int | None = Field(description="as the hub last reported it, 0-100 %; null if never")
    last_seen: datetime | None = Field(description="when the hub last heard from it (UTC); null if never")
    expected_interval_s: int | None
    problems: list[str] = Field(description="open supervision alerts (battery_low, device_not_seen, tamper, "
                                            "device_fault) and `quiet` (not heard from for longer than expected)")


class DeviceIn(BaseModel):
    hub_id: str = Field(max_length=63)
    device_id: str = Field(max_length=63, description="lower-case letters, digits, - and _")
    kind: str = Field(description=f"one of {', '.join(DEVICE_KINDS)}")
    location: str = Field(default="", description=f"where in the home: one of {', '.join(LOCATIONS)}, or empty")
    bed_sensor: str = Field(default="", description=f"for a bed: one of {', '.join(BED_SENSOR_KINDS)}, or empty")


class Removal(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


def _out(row: homes.DeviceRow) -> DeviceOut:
    return DeviceOut(person_id=row.person_id, person_name=row.person_name, hub_id=row.hub_id,
                     device_id=row.device_id, kind=row.kind, location=row.location, battery_pct=row.battery_pct,
                     last_seen=row.last_seen, expected_interval_s=row.expected_interval_s,
                     problems=list(row.problems))


@router.get("")
def list_devices(user: Admin, session: Db) -> list[DeviceOut]:
    """Every device, by person, hub and id."""
    rows = homes.devices(session, utc_now())
    audit.record(session, user.username, "view_devices", sorted({row.person_id for row in rows}) or [None])
    session.commit()
    return [_out(row) for row in rows]


NO_HUB: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such hub, or no such device in it."}}


@router.post("", status_code=status.HTTP_201_CREATED, responses={**NO_HUB, **errors(409)})
def add_device(request: Request, new: DeviceIn, user: Admin, session: Db, centre: Centre) -> DeviceOut:
    """A device in the hub's home. 404 for no such hub, 409 for a device id the hub has already,
    422 for an unknown kind or location."""
    hub = session.get(Hub, new.hub_id)
    if hub is None:
        raise refuse(request, session, user, status.HTTP_404_NOT_FOUND, "no such hub", None, "none")
    parts = [new.device_id, new.kind]
    if new.location or new.bed_sensor:
        parts.append(new.location)
    if new.bed_sensor:
        parts.append(new.bed_sensor)
    try:
        check_identifier(new.device_id, "device id")
        record = parse_device(":".join(parts))
        homes.add_device(session, hub, record, by=user.username)
    except AdminError as problem:
        raise invalid(("body",), str(problem)) from None
    except homes.BooksRefused as problem:
        raise refuse(request, session, user, status.HTTP_409_CONFLICT, str(problem), hub.person_id) from None
    session.commit()
    centre.profile_changed(hub.person_id)
    [row] = [r for r in homes.devices(session, utc_now(), hub.person_id)
             if r.hub_id == hub.id and r.device_id == record.device_id]
    return _out(row)


@router.post("/{hub_id}/{device_id}/remove", responses=NO_HUB)
def remove_device(request: Request, hub_id: str, device_id: str, body: Removal, user: Admin, session: Db,
                  centre: Centre) -> None:
    """Take the device out of the home's books (lost, broken, replaced), with the reason. Its
    events and readings stay. 404 for no such hub or device."""
    hub = session.get(Hub, hub_id)
    if hub is None or not homes.remove_device(session, hub, device_id, by=user.username, reason=body.reason):
        raise refuse(request, session, user, status.HTTP_404_NOT_FOUND, "no such device",
                     hub.person_id if hub else None, "none")
    session.commit()
    centre.profile_changed(hub.person_id)
