"""A simulated home's layout: which devices it has, where they are, and their radio identity.

Locations use the people-file vocabulary (front_door, bed, toilet, kitchen, …), which is
what the centre's activity rules read. Device ids are prefixed with the home's number so
they are unique across a fleet.
"""

from dataclasses import dataclass

from hub_agent.devices import DeviceKind
from telecare_protocol import DeviceType

Kind = DeviceKind
"""A simulated device is one of the kinds a hub pairs (`hub_agent.devices.DeviceKind`)."""

DEVICE_TYPE = {
    Kind.PENDANT: DeviceType.PERSONAL_TRIGGER,
    Kind.DOOR: DeviceType.DOOR_SENSOR,
    Kind.BED: DeviceType.BED_MONITOR,
    Kind.MOTION: DeviceType.MOTION_SENSOR,
    Kind.OXIMETER: DeviceType.PULSE_OXIMETER,
}

ROLES: dict[str, tuple[Kind, str]] = {
    # role (what the simulator calls it) -> (kind, location in the people file)
    "front_door": (Kind.DOOR, "front_door"),
    "bed": (Kind.BED, "bed"),
    "toilet_door": (Kind.DOOR, "toilet_door"),
    "flush": (Kind.MOTION, "toilet"),
    "kitchen": (Kind.MOTION, "kitchen"),
    "fridge": (Kind.MOTION, "kitchen"),
    "living_room": (Kind.MOTION, "living_room"),
    "pendant": (Kind.PENDANT, "pendant"),
    "oximeter": (Kind.OXIMETER, "oximeter"),
}
DEFAULT_ROLES = ("front_door", "bed", "toilet_door", "flush", "kitchen", "fridge", "living_room", "pendant")

STATUS_PERIOD_S = {Kind.PENDANT: 1800, Kind.DOOR: 1800, Kind.BED: 1800, Kind.MOTION: 1800, Kind.OXIMETER: 0}
"""How often each battery device sends its supervision frame (0: only when it measures)."""
EXPECTED_INTERVAL_S = {Kind.PENDANT: 6 * 3600, Kind.DOOR: 3600, Kind.BED: 3600, Kind.MOTION: 3600,
                       Kind.OXIMETER: 36 * 3600}
"""What the people file tells the centre to expect. A worn pendant goes out with its wearer,
hence its longer interval; a spot-check oximeter is heard only three times a day."""


@dataclass(frozen=True)
class SimDevice:
    device_id: str
    role: str
    kind: Kind
    location: str
    address: str
    """BLE address "AA:BB:CC:DD:EE:FF", derived from the home and device numbers."""

    @property
    def device_type(self) -> DeviceType:
        return DEVICE_TYPE[self.kind]

    @property
    def status_period_s(self) -> int:
        return STATUS_PERIOD_S[self.kind]

    @property
    def expected_interval_s(self) -> int:
        return EXPECTED_INTERVAL_S[self.kind]


@dataclass(frozen=True)
class Layout:
    number: int
    person_id: str
    hub_id: str
    devices: tuple[SimDevice, ...]

    def by_role(self, role: str) -> SimDevice | None:
        return next((d for d in self.devices if d.role == role), None)

    def role(self, role: str) -> SimDevice:
        device = self.by_role(role)
        if device is None:
            raise KeyError(f"{self.hub_id} has no {role} device")
        return device

    def by_id(self, device_id: str) -> SimDevice:
        return next(d for d in self.devices if d.device_id == device_id)


def build_layout(number: int, roles: tuple[str, ...], *, person_id: str | None = None,
                 hub_id: str | None = None) -> Layout:
    """Home `number` (1-based) with one device per role, in `roles` order."""
    if not 1 <= number <= 0xFFFFFF:
        raise ValueError("home number must be 1-16777215")
    devices = []
    for index, role in enumerate(roles, start=1):
        kind, location = ROLES[role]
        address = f"5E:{number >> 16 & 0xFF:02X}:{number >> 8 & 0xFF:02X}:{number & 0xFF:02X}:00:{index:02X}"
        devices.append(SimDevice(f"h{number:03d}-{role.replace('_', '-')}", role, kind, location, address))
    return Layout(number=number, person_id=person_id or f"home-{number:03d}", hub_id=hub_id or f"hub-{number:03d}",
                  devices=tuple(devices))
