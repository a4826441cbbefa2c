"""The devices paired with a hub."""

from dataclasses import dataclass
from enum import StrEnum


class DeviceKind(StrEnum):
    """What a paired device is, which decides how its frames are read."""

    PENDANT = "pendant"
    """Help button and fall detector (BTHome v2; see docs/devices.md)."""
    DOOR = "door"
    """Door contact sensor (BTHome v2, or Zigbee2MQTT `contact`)."""
    BED = "bed"
    """Bed occupancy sensor (BTHome v2, or Zigbee2MQTT `occupancy`)."""
    MOTION = "motion"
    """Room activity: a PIR or an appliance switch (BTHome v2 motion 0x21, or Zigbee2MQTT `occupancy`)."""
    OXIMETER = "oximeter"
    """Pulse oximeter (Bluetooth SIG Pulse Oximeter Service over GATT)."""


BINDKEY_LENGTH = 16


@dataclass(frozen=True)
class PairedDevice:
    """One device paired with this hub.

    `device_id` is the id the device's messages carry (a protocol identifier: lower-case
    letters, digits, `_` and `-`). `address` is its BLE address, "AA:BB:CC:DD:EE:FF".
    `bindkey` is the 16-byte BTHome AES-CCM key: when it is set the hub accepts only
    encrypted frames from the device; None means the device sends plain frames.
    `expected_interval_s` is how often the device is expected to be heard from (its
    supervision frames); a device silent for longer than that plus a grace period
    (`hub_agent.supervision`) is reported as not seen. `location` is where it is in the
    home ("bedroom"), for the installer's and the operator's benefit.
    """

    device_id: str
    address: str
    kind: DeviceKind
    bindkey: bytes | None = None
    expected_interval_s: float = 3600.0
    location: str | None = None

    def __post_init__(self) -> None:
        if self.bindkey is not None and len(self.bindkey) != BINDKEY_LENGTH:
            raise ValueError(f"a BTHome bind key is {BINDKEY_LENGTH} bytes, not {len(self.bindkey)}")
        if not self.expected_interval_s > 0:
            raise ValueError("expected_interval_s must be positive")
