"""A virtual hub: a home's happenings in, the protocol messages its hub would publish out.

It follows `hub_agent` exactly where the hub decodes frames (event codes, device types,
`detail`, state events only on a change or when a device is first heard, PLX readings
through the hub's own `hub_agent.plx` parser), and does the hub's own jobs: a heartbeat
every `interval_s` with each device's last-seen time and battery, `device_not_seen` when a
device stays silent past its expected interval, power failure on mains loss. While the hub
is offline nothing it produces is published (the brief's recording convention).

Every id comes from the home's seeded `random.Random`, and every timestamp from the
simulated clock, so the same seed gives the same bytes.
"""

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from device_sims.clock import SimClock
from device_sims.happenings import Happening, HubChange, Measurement, Silence, Status, Transmission
from device_sims.home import Kind, Layout, SimDevice
from device_sims.routine import Routine
from firmware_stubs.bthome import BUTTON_LONG_PRESS, BUTTON_NONE, battery_low
from firmware_stubs.oximeter import (
    QUESTIONABLE_MEASUREMENT,
    ContinuousMeasurement,
    SpotCheckMeasurement,
    encode_continuous,
    encode_spot_check,
    probe_off_continuous,
    probe_off_spot_check,
)
from hub_agent import plx
from telecare_protocol import DeviceEvent, DeviceStatus, DeviceType, EventCode, Heartbeat, Message, Power
from telecare_protocol.codes import DEFAULT_PRIORITY

Detail = dict[str, str | int | float | bool]


@dataclass(frozen=True, slots=True)
class Beat:
    """Internal: time for a heartbeat."""


@dataclass(frozen=True, slots=True)
class Check:
    """Internal: is this device still silent after its expected interval?"""

    device_id: str
    episode: int


Item = Happening | Beat | Check


def plx_frame(m: Measurement) -> tuple[str, bytes]:
    """The characteristic and bytes the oximeter sends for `m`."""
    status = QUESTIONABLE_MEASUREMENT if m.questionable else None
    if m.spot_check:
        data = probe_off_spot_check() if m.probe_off else encode_spot_check(
            SpotCheckMeasurement(spo2=m.spo2, pulse_rate=m.pulse_rate, measurement_status=status))
        return plx.SPOT_CHECK_UUID, data
    data = probe_off_continuous() if m.probe_off else encode_continuous(
        ContinuousMeasurement(spo2=m.spo2, pulse_rate=m.pulse_rate, measurement_status=status))
    return plx.CONTINUOUS_UUID, data


def initial_batteries(layout: Layout, seed: str) -> dict[str, int]:
    """Each device's battery charge at the start of the run (55-100%, seeded)."""
    rng = random.Random(f"{seed}/batteries")
    return {d.device_id: rng.randint(55, 100) for d in layout.devices}


@dataclass
class DeviceState:
    device: SimDevice
    battery_pct: int
    opening: bool = False
    occupancy: bool = True
    reported: dict[str, bool] = field(default_factory=dict)
    last_heard: datetime | None = None
    silent_since: datetime | None = None
    not_seen_sent: bool = False
    episode: int = 0
    frames: int = 0
    motion_pending: bool = False


def ms(at: datetime) -> datetime:
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


class VirtualHub:
    def __init__(self, layout: Layout, routine: Routine, clock: SimClock[Item], *, seed: str,
                 heartbeat_interval_s: int) -> None:
        self.layout, self.routine, self.clock = layout, routine, clock
        self.hub_id = layout.hub_id
        self.interval_s = heartbeat_interval_s
        self.ids = random.Random(f"{seed}/ids")
        setup = random.Random(f"{seed}/hub")
        batteries = initial_batteries(layout, seed)
        self.devices = {d.device_id: DeviceState(d, battery_pct=batteries[d.device_id]) for d in layout.devices}
        self.uptime_at_start = setup.uniform(3600, 30 * 86400)
        self.power = Power.MAINS
        self.offline = False
        clock.schedule(routine.start + timedelta(seconds=setup.uniform(0, heartbeat_interval_s)), Beat())

    def _id(self) -> uuid.UUID:
        return uuid.UUID(int=self.ids.getrandbits(128), version=4)

    def handle(self, at: datetime, item: Item) -> list[Message]:
        at = ms(at)
        messages = self._handle(at, item)
        return [] if self.offline else messages

    def _handle(self, at: datetime, item: Item) -> list[Message]:
        if isinstance(item, Beat):
            self.clock.schedule(at + timedelta(seconds=self.interval_s), Beat())
            return [self.heartbeat(at)]
        if isinstance(item, HubChange):
            return self._hub_change(at, item)
        if isinstance(item, Check):
            return self._check(at, item)
        state = self.devices[item.device_id]
        if isinstance(item, Silence):
            return self._silence(at, state, item.silent)
        if state.silent_since is not None:
            return []  # a silent device sends nothing
        state.last_heard = at
        if isinstance(item, Measurement):
            return self._readings(at, item)
        state.frames += 1
        if isinstance(item, Status):
            state.motion_pending = False
            return self._states(at, state)
        if item.motion and state.device.kind is Kind.MOTION:
            if state.motion_pending:
                state.frames += 1  # the PIR's "clear" frame went out first (see radio.py)
            state.motion_pending = True
        return self._transmission(at, state, item)

    def _event(self, at: datetime, device_id: str, device_type: DeviceType, code: EventCode,
               detail: Detail) -> DeviceEvent:
        return DeviceEvent(id=self._id(), hub_id=self.hub_id, device_id=device_id, device_type=device_type,
                           code=code, priority=int(DEFAULT_PRIORITY[code]), source_ts=at, hub_ts=at, detail=detail)

    def _transmission(self, at: datetime, state: DeviceState, tx: Transmission) -> list[Message]:
        device = state.device
        base: Detail = {"packet_id": (state.frames - 1) % 256}
        out: list[Message] = []
        for number, code in ((1, tx.help_button), (2, tx.fall_channel)):
            if code == BUTTON_NONE:
                continue
            cancel = code == BUTTON_LONG_PRESS
            press = "long" if cancel else "short"
            if number == 2:
                kind, event = DeviceType.FALL_DETECTOR, EventCode.FALL_CANCELLED if cancel else EventCode.FALL_DETECTED
            else:
                kind, event = (DeviceType.PERSONAL_TRIGGER,
                               EventCode.ALARM_CANCELLED if cancel else EventCode.MANUAL_ALARM)
            out.append(self._event(at, device.device_id, kind, event, {**base, "button": number, "press": press}))
        if tx.motion:
            out.append(self._event(at, device.device_id, DeviceType.MOTION_SENSOR, EventCode.ACTIVITY, base))
        if tx.opening is not None:
            state.opening = tx.opening
        if tx.occupancy is not None:
            state.occupancy = tx.occupancy
        if tx.battery_pct is not None:
            state.battery_pct = tx.battery_pct
        return out + self._states(at, state)

    def _states(self, at: datetime, state: DeviceState) -> list[Message]:
        """State events, as the hub raises them: on a change, or when first heard."""
        device = state.device
        base: Detail = {"packet_id": (state.frames - 1) % 256}
        current: list[tuple[str, bool, EventCode, EventCode]] = []
        if device.kind is Kind.DOOR:
            current.append(("opening", state.opening, EventCode.DOOR_OPENED, EventCode.DOOR_CLOSED))
        if device.kind is Kind.BED:
            current.append(("occupancy", state.occupancy, EventCode.BED_OCCUPIED, EventCode.BED_VACATED))
        current.append(("battery", battery_low(state.battery_pct), EventCode.BATTERY_LOW, EventCode.BATTERY_OK))
        out: list[Message] = []
        for key, value, on_true, on_false in current:
            if state.reported.get(key) is value:
                continue
            state.reported[key] = value
            detail = {**base, "battery_pct": state.battery_pct} if key == "battery" else base
            out.append(self._event(at, device.device_id, device.device_type, on_true if value else on_false, detail))
        return out

    def _readings(self, at: datetime, m: Measurement) -> list[Message]:
        characteristic, data = plx_frame(m)
        readings = plx.plx_readings(plx.parse(characteristic, data), hub_id=self.hub_id, device_id=m.device_id,
                                    source_ts=at, hub_ts=at)
        return [r.model_copy(update={"id": self._id()}) for r in readings]

    def _silence(self, at: datetime, state: DeviceState, silent: bool) -> list[Message]:
        device = state.device
        if silent:
            if state.silent_since is None:
                state.silent_since = at
                state.episode += 1
                last = self.last_seen(state, at) or at
                self.clock.schedule(last + timedelta(seconds=device.expected_interval_s),
                                    Check(device.device_id, state.episode))
            return []
        state.silent_since = None
        state.last_heard = at
        if state.not_seen_sent:
            state.not_seen_sent = False
            return [self._event(at, device.device_id, device.device_type, EventCode.DEVICE_SEEN_AGAIN, {})]
        return []

    def _check(self, at: datetime, check: Check) -> list[Message]:
        state = self.devices[check.device_id]
        if state.silent_since is None or state.episode != check.episode or state.not_seen_sent:
            return []
        state.not_seen_sent = True
        last = self.last_seen(state, at)
        detail: Detail = {"expected_interval_s": state.device.expected_interval_s}
        if last is not None:
            detail["last_seen"] = last.isoformat()
        return [self._event(at, state.device.device_id, state.device.device_type, EventCode.DEVICE_NOT_SEEN, detail)]

    def _hub_change(self, at: datetime, change: HubChange) -> list[Message]:
        if change.what == "offline":
            self.offline = True
            return []
        if change.what == "online":
            self.offline = False
            return [self.heartbeat(at)]
        failed = change.what == "power_failure"
        self.power = Power.BATTERY if failed else Power.MAINS
        code = EventCode.POWER_FAILURE if failed else EventCode.POWER_RESTORED
        return [self._event(at, self.hub_id, DeviceType.COMMUNICATION_LINK, code, {})]

    def last_seen(self, state: DeviceState, at: datetime) -> datetime | None:
        """When the hub last heard the device: its last frame, or its last supervision frame."""
        heard = state.last_heard
        period = state.device.status_period_s
        if period:
            first = self.routine.start + timedelta(seconds=self.routine.status_phase[state.device.device_id])
            until = state.silent_since if state.silent_since is not None else at
            if until >= first:
                status = first + timedelta(seconds=(until - first).total_seconds() // period * period)
                heard = status if heard is None else max(heard, status)
        return ms(heard) if heard is not None else None

    def heartbeat(self, at: datetime) -> Heartbeat:
        statuses = tuple(
            DeviceStatus(device_id=s.device.device_id, last_seen=self.last_seen(s, at),
                         battery_pct=None if s.device.kind is Kind.OXIMETER else s.battery_pct)
            for s in self.devices.values())
        uptime = self.uptime_at_start + (at - self.routine.start).total_seconds()
        return Heartbeat(id=self._id(), hub_id=self.hub_id, device_id=self.hub_id, source_ts=at, hub_ts=at,
                         power=self.power, uptime_s=round(uptime, 3), interval_s=self.interval_s, outbox_depth=0,
                         devices=statuses)
