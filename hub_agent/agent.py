"""The hub agent: radio frames in, protocol messages out.

Frames arrive on `radio` (an asyncio queue fed by the BLE scanner, or by a simulator
through the same door). Each paired device has its own decoder; frames from
addresses that are not paired (the neighbours' devices) are counted and ignored.
"""

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from hub_agent import plx
from hub_agent.bthome import BTHomeDevice
from hub_agent.devices import DeviceKind, PairedDevice
from hub_agent.radio import Advertisement, GattNotification
from hub_agent.uplink import Uplink
from telecare_protocol import DeviceStatus, Heartbeat, Message, Power
from telecare_protocol.messages import utc_now

log = logging.getLogger(__name__)

Frame = Advertisement | GattNotification


class HubAgent:
    def __init__(self, hub_id: str, devices: Iterable[PairedDevice], uplink: Uplink,
                 heartbeat_interval_s: int = 60) -> None:
        self.hub_id = hub_id
        self.uplink = uplink
        self.heartbeat_interval_s = heartbeat_interval_s
        self.devices = {d.address.upper(): d for d in devices}
        self.bthome = {address: BTHomeDevice(device, hub_id=hub_id)
                       for address, device in self.devices.items() if device.kind != DeviceKind.OXIMETER}
        self.last_seen: dict[str, datetime] = {}
        self.rejected: Counter[str] = Counter()
        self.radio: asyncio.Queue[Frame] = asyncio.Queue()
        self._started = time.monotonic()

    def handle(self, frame: Frame) -> list[Message]:
        """Decode one frame from the radio into the messages it means (often none)."""
        device = self.devices.get(frame.address.upper())
        if device is None:
            self.rejected["not_paired"] += 1
            return []
        if isinstance(frame, Advertisement):
            decoder = self.bthome.get(frame.address.upper())
            return list(decoder.decode(frame)) if decoder else []
        self.last_seen[device.device_id] = frame.received_at
        try:
            measurement = plx.parse(frame.characteristic, frame.data)
        except plx.PlxError:
            self.rejected["bad_plx_frame"] += 1
            return []
        return list(plx.plx_readings(measurement, hub_id=self.hub_id, device_id=device.device_id,
                                     source_ts=frame.received_at))

    def heartbeat(self) -> Heartbeat:
        statuses = []
        for address, device in self.devices.items():
            decoder = self.bthome.get(address)
            last_seen = decoder.last_seen if decoder else self.last_seen.get(device.device_id)
            battery = decoder.battery_pct if decoder else None
            statuses.append(DeviceStatus(device_id=device.device_id, last_seen=last_seen, battery_pct=battery))
        return Heartbeat(hub_id=self.hub_id, device_id=self.hub_id, source_ts=utc_now(), power=Power.MAINS,
                         uptime_s=round(time.monotonic() - self._started, 3), interval_s=self.heartbeat_interval_s,
                         outbox_depth=self.uplink.unacked, devices=tuple(statuses))

    async def run(self) -> None:
        """Decode and send until cancelled, with a heartbeat every interval."""
        self.uplink.start()
        beating = asyncio.create_task(self._beat())
        try:
            while True:
                frame = await self.radio.get()
                for message in self.handle(frame):
                    self.uplink.send(message)
        finally:
            beating.cancel()
            await asyncio.to_thread(self.uplink.stop)

    async def _beat(self) -> None:
        while True:
            self.uplink.send(self.heartbeat())
            await asyncio.sleep(self.heartbeat_interval_s)
