"""Output (a): a home's happenings as the radio frames its devices send, into a real hub agent.

BTHome devices (pendant, doors, bed, and motion sensors) broadcast each frame `REPEATS`
times with the real bytes from `firmware_stubs.bthome`; the oximeter's readings are PLX
notifications/indications from `firmware_stubs.oximeter`. Frames go into
`HubAgent.radio` (or straight to `HubAgent.handle`), so the hub's own decoders run.

Motion sensors send BTHome's motion object (0x21): "detected" on a trigger and "clear"
before the next one (a PIR's hold-off, `firmware_stubs.motion`), since the hub raises
activity on the change to "detected".
Hub-level happenings (power, going offline) and silences are the hub's business, not the
radio's, and produce no frames.
"""

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from device_sims.clock import RealClock
from device_sims.happenings import Measurement, Status, Timed, Transmission
from device_sims.home import Kind, Layout, SimDevice
from device_sims.virtual_hub import ms, plx_frame
from firmware_stubs.bthome import (
    BTHOME_SERVICE_UUID,
    BTHomeValues,
    Transmitter,
    battery_low,
    mac_bytes,
    transmit,
)
from hub_agent.agent import Frame, HubAgent
from hub_agent.devices import DeviceKind, PairedDevice
from hub_agent.radio import Advertisement, GattNotification

REPEATS = 3
"""How many times a BTHome device broadcasts each frame (as the demo's devices do)."""
MOTION_CLEAR_AFTER_S = 60.0
"""As `firmware_stubs.motion.DEFAULT_CLEAR_AFTER_S`."""


def paired_devices(layout: Layout) -> list[PairedDevice]:
    """The devices to pair with a real hub agent: every kind it can decode."""
    known = {k.value for k in DeviceKind}
    return [PairedDevice(d.device_id, d.address, DeviceKind(d.kind.value), expected_interval_s=d.expected_interval_s)
            for d in layout.devices if d.kind.value in known]


@dataclass
class _Radio:
    device: SimDevice
    tx: Transmitter
    battery_pct: int = 100
    opening: bool = False
    occupancy: bool = True
    motion_at: datetime | None = None
    """When the last "detected" went out and no "clear" yet."""


@dataclass
class FrameRenderer:
    """Keeps each device's radio state (packet ids, battery, door and bed state)."""

    layout: Layout
    start: datetime
    battery: dict[str, int] = field(default_factory=dict)
    _radios: dict[str, _Radio] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for d in self.layout.devices:
            self._radios[d.device_id] = _Radio(d, Transmitter(mac_bytes(d.address)),
                                               battery_pct=self.battery.get(d.device_id, 100))

    def frames(self, at: datetime, happening: object) -> list[Frame]:
        at = ms(at)
        monotonic = (at - self.start).total_seconds()
        if isinstance(happening, Measurement):
            radio = self._radios[happening.device_id]
            characteristic, data = plx_frame(happening)
            return [GattNotification(address=radio.device.address, characteristic=characteristic, data=data,
                                     received_at=at, monotonic=monotonic)]
        if not isinstance(happening, Transmission | Status):
            return []
        radio = self._radios[happening.device_id]
        buttons: tuple[int, ...] = ()
        motion = False
        if isinstance(happening, Transmission):
            if happening.opening is not None:
                radio.opening = happening.opening
            if happening.occupancy is not None:
                radio.occupancy = happening.occupancy
            if happening.battery_pct is not None:
                radio.battery_pct = happening.battery_pct
            buttons = (happening.help_button, happening.fall_channel)
            motion = happening.motion
        frames: list[Frame] = []
        if radio.device.kind is Kind.MOTION and motion and radio.motion_at is not None:
            cleared = min(at, radio.motion_at + timedelta(seconds=MOTION_CLEAR_AFTER_S))
            frames += self._broadcast(radio, cleared, (), False)
        if motion:
            radio.motion_at = at
        return frames + self._broadcast(radio, at, buttons, motion)

    def _broadcast(self, radio: _Radio, at: datetime, buttons: tuple[int, ...], motion: bool) -> list[Frame]:
        kind = radio.device.kind
        low = battery_low(radio.battery_pct)
        values = BTHomeValues(battery_pct=radio.battery_pct, battery_low=low,
                              opening=radio.opening if kind is Kind.DOOR else None,
                              occupancy=radio.occupancy if kind is Kind.BED else None,
                              motion=motion if kind is Kind.MOTION else None,
                              buttons=buttons if kind is Kind.PENDANT else ())
        if kind is Kind.MOTION and not motion:
            radio.motion_at = None
        radio.tx, data = transmit(radio.tx, values)
        monotonic = (at - self.start).total_seconds()
        return [Advertisement(address=radio.device.address, service_data={BTHOME_SERVICE_UUID: data}, rssi=-60,
                              received_at=at, monotonic=monotonic) for _ in range(REPEATS)]

    def render(self, happenings: Iterable[Timed]) -> Iterator[Frame]:
        for at, happening in happenings:
            yield from self.frames(at, happening)


async def play_into_hub(hub: HubAgent, renderer: FrameRenderer, happenings: Iterable[Timed],
                        clock: RealClock) -> int:
    """Put each happening's frames on the hub's radio queue when the clock reaches it.

    Returns the number of frames played. Frame times are the simulated times, so the
    hub's messages carry them as `source_ts`.
    """
    played = 0
    async for at, happening in clock.apace(happenings):
        for frame in renderer.frames(at, happening):
            hub.radio.put_nowait(frame)
            played += 1
        await asyncio.sleep(0)
    return played
