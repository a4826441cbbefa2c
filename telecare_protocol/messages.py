"""The three messages a hub sends: readings, device events and hub heartbeats.
(The one message the centre sends back, `Ack`, is in `telecare_protocol.ack`.)

Every message carries the same envelope: a schema `version`, an `id` minted at the
source (used for deduplication end to end), the `hub_id` and `device_id`, the time the
device measured or saw it (`source_ts`) and the time the hub received it (`hub_ts`).
A heartbeat's `device_id` is the hub's own id: the hub is the device that beats.
"""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Final, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from telecare_protocol.codes import (
    DEFAULT_PRIORITY,
    METRICS,
    NO_VALUE_REASONS,
    DeviceType,
    EventCode,
    Metric,
    Power,
    QualityFlag,
)

SCHEMA_VERSION: Final = 2
"""The version a hub writes. 2 added the centre's end-to-end `Ack` (docs/protocol.md, "Versions")."""
SUPPORTED_VERSIONS = frozenset({1, 2})
"""Versions a receiver accepts. A version-1 message means the same as a version-2 one: version 1 hubs
keep working, they only do not listen to the centre's acks."""

Identifier = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
"""Hub and device ids. No `/`, `+` or `#`, so an id is always safe inside an MQTT topic."""


def mint_id() -> str:
    """A globally unique message id, minted where the message is born."""
    return str(uuid.uuid4())


def utc_now() -> datetime:
    return datetime.now(UTC)


class _Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    version: Literal[1, 2] = SCHEMA_VERSION
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    hub_id: Identifier
    device_id: Identifier
    source_ts: AwareDatetime
    hub_ts: AwareDatetime = Field(default_factory=utc_now)


def _impossible(field: str, detail: str) -> PydanticCustomError:
    return PydanticCustomError("impossible_value", "{detail}", {"field": field, "detail": detail})


class Reading(_Envelope):
    """One measurement. `value` is null only when a quality flag says why."""

    type: Literal["reading"] = "reading"
    metric: Metric
    value: float | None
    unit: str
    quality: tuple[QualityFlag, ...] = ()

    @model_validator(mode="after")
    def _check_value(self) -> Self:
        spec = METRICS[self.metric]
        if self.unit != spec.unit:
            raise _impossible("unit", f"{self.metric} is measured in {spec.unit!r}, not {self.unit!r}")
        if self.value is None:
            if not NO_VALUE_REASONS.intersection(self.quality):
                raise _impossible(
                    "value", "null needs a quality flag saying why (sensor_off, invalid or data_unavailable)")
        elif not spec.low <= self.value <= spec.high:
            raise _impossible(
                "value", f"{self.metric} {self.value:g} is outside {spec.low:g}-{spec.high:g} {spec.unit}")
        return self


class DeviceEvent(_Envelope):
    """Something a device reported, or the hub noticed about a device."""

    type: Literal["event"] = "event"
    device_type: DeviceType
    code: EventCode
    priority: int = Field(ge=0, le=9, description="SCAIP priority 0-9; lower is more urgent")
    detail: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @classmethod
    def new(cls, *, hub_id: str, device_id: str, device_type: DeviceType, code: EventCode,
            source_ts: datetime, detail: dict[str, str | int | float | bool] | None = None) -> "DeviceEvent":
        """An event with the code's default priority and a freshly minted id."""
        return cls(hub_id=hub_id, device_id=device_id, device_type=device_type, code=code,
                   priority=int(DEFAULT_PRIORITY[code]), source_ts=source_ts, detail=detail or {})


class DeviceStatus(BaseModel):
    """One paired device, as the hub last saw it."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    device_id: Identifier
    last_seen: AwareDatetime | None
    battery_pct: int | None = Field(default=None, ge=0, le=100)


class Heartbeat(_Envelope):
    """The hub is alive. The centre expects the next one within `interval_s`."""

    type: Literal["heartbeat"] = "heartbeat"
    power: Power
    uptime_s: float = Field(ge=0)
    interval_s: int = Field(gt=0, le=86400)
    outbox_depth: int = Field(default=0, ge=0)
    devices: tuple[DeviceStatus, ...] = ()


Message = Reading | DeviceEvent | Heartbeat
MESSAGE_TYPES: dict[str, type[Reading] | type[DeviceEvent] | type[Heartbeat]] = {
    "reading": Reading,
    "event": DeviceEvent,
    "heartbeat": Heartbeat,
}
