"""The hub agent: radio frames in, protocol messages out, with supervision and heartbeats.

Frames arrive on `radio`, one asyncio queue fed by every input: the BLE scanner
(advertisements), the oximeter link (GATT notifications), the Zigbee2MQTT link (reports),
or a simulator through the same door. Each paired device has its own decoder; frames from
addresses that are not paired (the neighbours' devices) are counted and ignored, quietly.

Besides decoding, the agent:
* supervises each BLE device on its own expected interval (`hub_agent.supervision`);
* watches the hub's power (`hub_agent.power`) and reports failures and restorals;
* reports hub-level faults (no Bluetooth adapter, lost Zigbee2MQTT) as `DEVICE_FAULT` on
  the hub's own id (device type COMMUNICATION_LINK), once per outage;
* sends a heartbeat every interval with the power, uptime, outbox depth and each device's
  last-seen time and battery;
* follows each alarm until the centre confirms it (`hub_agent.confirmation`): `on_alarm` gets
  an `AlarmNotice` when the centre has stored it ("help is coming"), refused it, or not
  confirmed it within 60 s, in which case a hub `DEVICE_FAULT` (`fault = "alarm_unconfirmed"`)
  goes to the centre too, once the link returns.

`handle` never raises: every rejected frame is counted in `rejected`, by source and reason
(`bthome_duplicate`, `plx_bad_frame`, `zigbee_malformed_json`, `not_paired`...).
"""

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Protocol, runtime_checkable

from hub_agent import plx
from hub_agent.bthome import BTHomeDevice
from hub_agent.confirmation import AlarmConfirmations, AlarmNotice
from hub_agent.devices import DeviceKind, PairedDevice
from hub_agent.power import FixedSource, PowerMonitor
from hub_agent.radio import Advertisement, GattNotification, ZigbeeReport
from hub_agent.supervision import Supervisor
from hub_agent.zigbee import ZigbeeDecoder, ZigbeeDevice
from telecare_protocol import DeviceEvent, DeviceStatus, DeviceType, EventCode, Heartbeat, Message
from telecare_protocol.messages import utc_now

log = logging.getLogger(__name__)

Frame = Advertisement | GattNotification | ZigbeeReport
Detail = dict[str, str | int | float | bool]
POWER_POLL_S = 5.0
"""How often the power source is read: a power cut reaches the centre within seconds."""
TASK_RESTART_S = 10.0


class UplinkLike(Protocol):
    """What the agent needs of `hub_agent.uplink.Uplink`."""

    @property
    def unacked(self) -> int: ...
    def start(self) -> None: ...
    def send(self, message: Message) -> None: ...
    def stop(self, timeout: float = ...) -> None: ...


class ConfirmationLike(Protocol):
    """What the agent reads of `hub_agent.uplink.Confirmation`."""

    @property
    def stored(self) -> tuple[str, ...]: ...
    @property
    def refused(self) -> tuple[tuple[str, str], ...]: ...


@runtime_checkable
class ConfirmingUplink(UplinkLike, Protocol):
    """An uplink that hears the centre's end-to-end acks (`hub_agent.uplink.Uplink`)."""

    def add_listener(self, listener: Callable[[ConfirmationLike], None]) -> None: ...
    def waiting_events(self) -> list[DeviceEvent]: ...


class HubAgent:
    """The home's hub: radio frames and Zigbee2MQTT payloads in, protocol messages out through `uplink`.

    `hub_id`: its broker username; `devices`, `zigbee_devices`: what is paired (others are counted
    and ignored); `heartbeat_interval_s`: seconds between heartbeats; `power`: the mains monitor;
    `on_alarm`: told when the centre confirms an alarm (help is coming), or has not within 60 s.
    Everything runs on one asyncio loop (`run()`): the scanner and links push frames into `radio`,
    the agent decodes, supervises each device on its own cadence, and hands messages to the uplink,
    whose durable outbox keeps each until the centre acknowledges it.
    """

    def __init__(self, hub_id: str, devices: Iterable[PairedDevice], uplink: UplinkLike,
                 heartbeat_interval_s: int = 60, *, zigbee_devices: Iterable[ZigbeeDevice] = (),
                 power: PowerMonitor | None = None, clock: Callable[[], float] = time.monotonic,
                 on_alarm: Callable[[AlarmNotice], None] = lambda notice: None,
                 wall_clock: Callable[[], datetime] = utc_now) -> None:
        """`clock`: monotonic seconds (uptime, supervision timers). `wall_clock`: the hub's UTC time, which
        stamps `hub_ts` on every message and the times of the hub's own events and heartbeats; on a
        Raspberry Pi without a real-time clock it can be days off after a power cut (tests inject one
        that is)."""
        self.hub_id = hub_id
        self.uplink = uplink
        self.heartbeat_interval_s = heartbeat_interval_s
        self.devices = {d.address.upper(): d for d in devices}
        self.bthome = {address: BTHomeDevice(device, hub_id=hub_id)
                       for address, device in self.devices.items() if device.kind != DeviceKind.OXIMETER}
        self.zigbee = {d.friendly_name: ZigbeeDecoder(d, hub_id=hub_id) for d in zigbee_devices}
        self.last_seen: dict[str, datetime] = {}
        self.rejected: Counter[str] = Counter()
        self.radio: asyncio.Queue[Frame] = asyncio.Queue()
        self._wall_clock = wall_clock
        self.power = power or PowerMonitor(hub_id, FixedSource(), wall_clock=wall_clock)
        self.supervisor = Supervisor(hub_id, clock=clock, wall_clock=wall_clock)
        for device in self.devices.values():
            device_type = (DeviceType.PULSE_OXIMETER if device.kind is DeviceKind.OXIMETER
                           else self.bthome[device.address.upper()].device_type)
            self.supervisor.watch(device.device_id, device_type, device.expected_interval_s)
        self.sent = 0
        self.send_failures = 0
        self._faults: set[str] = set()
        self._clock = clock
        self._started = clock()
        self.alarms = AlarmConfirmations(on_alarm, clock=clock)
        """The alarms waiting for the centre's confirmation (see `hub_agent.confirmation`)."""
        if isinstance(uplink, ConfirmingUplink):
            uplink.add_listener(self.confirmed)

    # --- frames -------------------------------------------------------------------------------

    def handle(self, frame: Frame) -> list[Message]:
        """Decode one frame from a radio into the messages it means (often none), each stamped `hub_ts`
        by the hub's wall clock now. Never raises."""
        try:
            now = self._wall_clock()
            return [message.model_copy(update={"hub_ts": now}) for message in self._handle(frame)]
        except Exception:
            log.exception("unexpected error handling a %s", type(frame).__name__)
            self.rejected["internal_error"] += 1
            return []

    def _handle(self, frame: Frame) -> list[Message]:
        if isinstance(frame, ZigbeeReport):
            return self._handle_zigbee(frame)
        device = self.devices.get(frame.address.upper())
        if device is None:
            self.rejected["not_paired"] += 1
            return []
        if isinstance(frame, Advertisement):
            decoder = self.bthome.get(device.address.upper())
            if decoder is None:
                self.rejected["advertisement_from_gatt_device"] += 1
                return []
            before = Counter(decoder.rejected)
            accepted_before = decoder.accepted
            events: list[Message] = list(decoder.decode(frame))
            for reason, count in (decoder.rejected - before).items():
                self.rejected[f"bthome_{reason}"] += count
            if decoder.accepted > accepted_before:
                return [*self.supervisor.heard(device.device_id, received_at=frame.received_at), *events]
            return events
        if device.kind is not DeviceKind.OXIMETER:
            self.rejected["gatt_from_bthome_device"] += 1
            return []
        try:
            measurement = plx.parse(frame.characteristic, frame.data)
        except plx.PlxError:
            self.rejected["plx_bad_frame"] += 1
            return []
        self.last_seen[device.device_id] = frame.received_at
        readings = plx.plx_readings(measurement, hub_id=self.hub_id, device_id=device.device_id,
                                    source_ts=frame.received_at)
        return [*self.supervisor.heard(device.device_id, received_at=frame.received_at), *readings]

    def _handle_zigbee(self, report: ZigbeeReport) -> list[Message]:
        decoder = self.zigbee.get(report.friendly_name)
        if decoder is None:
            self.rejected["zigbee_unknown_device"] += 1
            return []
        before = Counter(decoder.rejected)
        events = decoder.decode(report)
        for reason, count in (decoder.rejected - before).items():
            self.rejected[f"zigbee_{reason}"] += count
        return list(events)

    # --- hub-level events ---------------------------------------------------------------------

    def hub_fault(self, fault: str, detail: Detail | None = None) -> DeviceEvent:
        """A `DEVICE_FAULT` about the hub itself (device id = hub id)."""
        now = self._wall_clock()
        return DeviceEvent.new(hub_id=self.hub_id, device_id=self.hub_id, device_type=DeviceType.COMMUNICATION_LINK,
                               code=EventCode.DEVICE_FAULT, source_ts=now,
                               detail={"fault": fault, **(detail or {})}).model_copy(update={"hub_ts": now})

    def report_fault(self, fault: str, error: str) -> None:
        """Send a hub fault now (called by the scanner and the Zigbee link, once per outage)."""
        self._faults.add(fault)
        self.send(self.hub_fault(fault, {"error": error[:200]}))

    def report_fault_threadsafe(self, loop: asyncio.AbstractEventLoop, fault: str) -> Callable[[str], None]:
        """A fault callback for code running on another thread (paho's)."""
        def report(error: str) -> None:
            loop.call_soon_threadsafe(self.report_fault, fault, error)

        return report

    def confirmed(self, confirmation: ConfirmationLike) -> None:
        """The centre acknowledged messages (called on the uplink's thread)."""
        self.alarms.confirmed(confirmation.stored, confirmation.refused)

    def alarms_overdue(self) -> list[DeviceEvent]:
        """A hub fault for each alarm the centre has not confirmed within the bound (each once)."""
        return [self.hub_fault("alarm_unconfirmed", {
            "alarm_id": str(notice.alarm.id), "alarm_code": notice.alarm.code.value,
            "alarm_device": notice.alarm.device_id, "waited_s": round(notice.after_s, 1)})
            for notice in self.alarms.overdue()]

    def send(self, message: Message) -> None:
        self.alarms.watch(message)  # before the uplink: its ack can come back at once
        try:
            self.uplink.send(message)
            self.sent += 1
        except Exception:
            self.send_failures += 1
            log.exception("could not queue a %s for the centre", message.type)

    # --- heartbeat ----------------------------------------------------------------------------

    def heartbeat(self) -> Heartbeat:
        statuses = []
        for address, device in self.devices.items():
            decoder = self.bthome.get(address)
            last_seen = decoder.last_seen if decoder else self.last_seen.get(device.device_id)
            battery = decoder.battery_pct if decoder else None
            statuses.append(DeviceStatus(device_id=device.device_id, last_seen=last_seen, battery_pct=battery))
        for zigbee in self.zigbee.values():
            statuses.append(DeviceStatus(device_id=zigbee.device.device_id, last_seen=zigbee.last_seen,
                                         battery_pct=zigbee.battery_pct))
        now = self._wall_clock()
        return Heartbeat(hub_id=self.hub_id, device_id=self.hub_id, source_ts=now, hub_ts=now, power=self.power.current,
                         uptime_s=round(max(0.0, self._clock() - self._started), 3),
                         interval_s=self.heartbeat_interval_s, outbox_depth=self.uplink.unacked,
                         devices=tuple(statuses))

    # --- running ------------------------------------------------------------------------------

    async def run(self, *, inputs: Iterable[tuple[str, Callable[[], Awaitable[None]]]] = (),
                  power_poll_s: float = POWER_POLL_S) -> None:
        """Decode and send until cancelled, with heartbeats, supervision and power checks.

        `inputs` are (name, coroutine function) pairs run alongside (the scanner, the oximeter
        links): one that crashes is logged and restarted, never taking the hub down."""
        self.uplink.start()
        if isinstance(self.uplink, ConfirmingUplink):  # alarms from before a restart, still unconfirmed
            for alarm in self.uplink.waiting_events():
                self.alarms.watch(alarm)
        for event in self.power.poll():  # before the first heartbeat, so it tells the truth
            self.send(event)
        tasks = [asyncio.create_task(self._keep_running(name, run)) for name, run in (
            ("heartbeat", self._beat), ("supervision", self._supervise), ("alarm_confirmation", self._confirm),
            ("power", lambda: self._watch_power(power_poll_s)), *inputs)]
        try:
            while True:
                frame = await self.radio.get()
                for message in self.handle(frame):
                    self.send(message)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.to_thread(self.uplink.stop)

    async def _keep_running(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("hub task %s crashed; restarting in %.0f s", name, TASK_RESTART_S)
                self.rejected[f"task_crash_{name}"] += 1
            await asyncio.sleep(TASK_RESTART_S)

    async def _beat(self) -> None:
        while True:
            self.send(self.heartbeat())
            await asyncio.sleep(self.heartbeat_interval_s)

    async def _confirm(self) -> None:
        while True:
            for fault in self.alarms_overdue():
                self.send(fault)
            await asyncio.sleep(self.alarms.next_check_in())

    async def _supervise(self) -> None:
        while True:
            for event in self.supervisor.check():
                self.send(event)
            await asyncio.sleep(self.supervisor.next_check_in())

    async def _watch_power(self, period_s: float) -> None:
        while True:
            for event in self.power.poll():
                self.send(event)
            await asyncio.sleep(period_s)
