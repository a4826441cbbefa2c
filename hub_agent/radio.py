"""What the hub's radios hand to the decoders: advertisements, GATT notifications, Zigbee2MQTT reports.

These are plain values, free of any BLE stack's types, so decoders can be tested with
literal bytes. `received_at` is the hub's UTC wall clock (it becomes `source_ts` for
devices that carry no clock of their own); `monotonic` is the hub's monotonic clock in
seconds, for intervals that must not jump when the wall clock is corrected.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


def _require_aware(received_at: datetime) -> None:
    if received_at.tzinfo is None or received_at.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware (UTC)")


@dataclass(frozen=True)
class Advertisement:
    """One BLE advertisement (merged with its scan response, if any)."""

    address: str
    """The sender's address, "AA:BB:CC:DD:EE:FF"."""
    service_data: Mapping[str, bytes]
    """Service data keyed by 128-bit UUID string, e.g. "0000fcd2-0000-1000-8000-00805f9b34fb"."""
    rssi: int
    received_at: datetime
    monotonic: float

    def __post_init__(self) -> None:
        _require_aware(self.received_at)


@dataclass(frozen=True)
class GattNotification:
    """One GATT notification or indication from a connected device."""

    address: str
    characteristic: str
    """The characteristic's 128-bit UUID string, e.g. "00002a5f-0000-1000-8000-00805f9b34fb"."""
    data: bytes
    received_at: datetime
    monotonic: float

    def __post_init__(self) -> None:
        _require_aware(self.received_at)


@dataclass(frozen=True)
class ZigbeeReport:
    """One message from the home's Zigbee2MQTT broker about one device.

    `friendly_name` is the device's Zigbee2MQTT name (the topic `zigbee2mqtt/<friendly_name>`);
    `availability` is True for the `<friendly_name>/availability` topic, whose payload says
    whether Zigbee2MQTT can still reach the device. `payload` is the raw MQTT payload.
    """

    friendly_name: str
    payload: bytes
    received_at: datetime
    monotonic: float
    availability: bool = False

    def __post_init__(self) -> None:
        _require_aware(self.received_at)
