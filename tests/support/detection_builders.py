"""Builders for detection tests: real protocol messages, at times the test chooses."""

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from detection.engine import Decision, Engine, Raise
from detection.people import PersonProfile
from telecare_protocol import DeviceEvent, DeviceStatus, DeviceType, EventCode, Heartbeat, Metric, Power, Reading
from telecare_protocol.codes import QualityFlag

HUB = "hub-001"
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday; Europe/London is on GMT (UTC+0) in early March

DEVICES = {
    "door-001": "front_door", "bed-001": "bed", "pir-001": "kitchen", "flush-001": "toilet",
    "pendant-001": "pendant", "oxi-001": "oximeter", "cord-001": "pendant", "bdoor-001": "bedroom_door",
}
TYPES = {
    "door-001": DeviceType.DOOR_SENSOR, "bed-001": DeviceType.BED_MONITOR, "pir-001": DeviceType.MOTION_SENSOR,
    "flush-001": DeviceType.MOTION_SENSOR, "pendant-001": DeviceType.PERSONAL_TRIGGER,
    "cord-001": DeviceType.PULL_CORD, "oxi-001": DeviceType.PULSE_OXIMETER, "bdoor-001": DeviceType.DOOR_SENSOR,
    HUB: DeviceType.COMMUNICATION_LINK,
}


def profile(**changes: Any) -> PersonProfile:
    base: dict[str, Any] = {"id": "home-001", "name": "Ada", "hubs": [HUB], "timezone": "Europe/London",
                            "devices": dict(DEVICES)}
    base.update(changes)
    return PersonProfile.model_validate(base)


def at(days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def spo2(when: datetime, value: float | None, *quality: QualityFlag, device: str = "oxi-001",
         metric: Metric = Metric.SPO2) -> Reading:
    unit = "%" if metric == Metric.SPO2 else "/min"
    return Reading(hub_id=HUB, device_id=device, metric=metric, value=value, unit=unit, quality=quality,
                   source_ts=when, hub_ts=when)


def pulse(when: datetime, value: float | None, *quality: QualityFlag) -> Reading:
    return spo2(when, value, *quality, metric=Metric.PULSE_RATE)


def event(when: datetime, device: str, code: EventCode, **detail: str | int | float | bool) -> DeviceEvent:
    return DeviceEvent.new(hub_id=HUB, device_id=device, device_type=TYPES.get(device, DeviceType.MOTION_SENSOR),
                           code=code, source_ts=when, detail=detail)


def beat(when: datetime, interval_s: int = 300, power: Power = Power.MAINS,
         devices: Iterable[DeviceStatus] = ()) -> Heartbeat:
    return Heartbeat(hub_id=HUB, device_id=HUB, source_ts=when, hub_ts=when, power=power, uptime_s=1.0,
                     interval_s=interval_s, devices=tuple(devices))


def run(engine: Engine, messages: Iterable[Reading | DeviceEvent | Heartbeat], tick_s: float = 60.0,
        until: datetime | None = None) -> list[Decision]:
    """Observe the messages in order, ticking every `tick_s` of message time, like `telecare replay`."""
    out: list[Decision] = []
    next_tick: datetime | None = None
    for message in messages:
        if next_tick is None:
            next_tick = message.source_ts + timedelta(seconds=tick_s)
        while message.source_ts >= next_tick:
            out += engine.tick(next_tick)
            next_tick += timedelta(seconds=tick_s)
        out += engine.observe(message)
    while until is not None and next_tick is not None and next_tick <= until:
        out += engine.tick(next_tick)
        next_tick += timedelta(seconds=tick_s)
    return out


def raised(decisions: Iterable[Decision], rule: str | None = None) -> list[Raise]:
    """New episodes (what an operator sees as a new alert), optionally of one rule."""
    return [d for d in decisions if isinstance(d, Raise) and d.explanation.get("episode") == "new"
            and (rule is None or d.rule == rule)]
