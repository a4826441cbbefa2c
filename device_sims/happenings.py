"""What happens in a simulated home, as the devices and the hub experience it.

A `Transmission` is the content of one BTHome frame (only what changed is set; the
renderers add the device's standing state: battery, door position, bed occupancy). A
`Measurement` is one PLX notification or indication. `Status` is a device's supervision
frame, `Silence` a device going quiet (flat battery, out of range) or coming back, and
`HubChange` something that happens to the hub itself. Renderers turn these into protocol
messages (`virtual_hub`) or into radio frames for a real hub agent (`radio`).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from firmware_stubs.bthome import BUTTON_NONE


@dataclass(frozen=True, slots=True)
class Transmission:
    device_id: str
    opening: bool | None = None
    occupancy: bool | None = None
    motion: bool = False
    help_button: int = BUTTON_NONE
    fall_channel: int = BUTTON_NONE
    battery_pct: int | None = None


@dataclass(frozen=True, slots=True)
class Measurement:
    device_id: str
    spo2: float | None
    pulse_rate: float | None
    spot_check: bool
    questionable: bool = False
    probe_off: bool = False


@dataclass(frozen=True, slots=True)
class Status:
    device_id: str


@dataclass(frozen=True, slots=True)
class Silence:
    device_id: str
    silent: bool


@dataclass(frozen=True, slots=True)
class HubChange:
    what: Literal["power_failure", "power_restored", "offline", "online"]


Happening = Transmission | Measurement | Status | Silence | HubChange
Timed = tuple[datetime, Happening]
