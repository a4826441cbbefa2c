"""The demo's home: one person, a pendant, a pulse oximeter, a front door and a bed.

It plays a short scripted day (`DAY`, 10 minutes) on a loop, sending the real bytes each device would
send into the hub agent's radio input: BTHome v2 advertisements (each broadcast three
times, as devices repeat a frame for reliability), and PLX continuous-measurement
notifications from the oximeter. The day includes a pendant alarm and a fall at its start, and
another press five minutes on. Margaret's 30 days before it are `device_sims.demo_history`.
"""

import asyncio
import itertools
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from firmware_stubs import bed, door, pendant
from firmware_stubs.bthome import BTHOME_SERVICE_UUID, Transmitter, mac_bytes
from firmware_stubs.oximeter import ContinuousMeasurement, encode_continuous, probe_off_continuous
from hub_agent.agent import Frame
from hub_agent.devices import DeviceKind, PairedDevice
from hub_agent.plx import CONTINUOUS_UUID
from hub_agent.radio import Advertisement, GattNotification

DEMO_HUB_ID = "demo-hub-1"
PENDANT = PairedDevice("pendant-1", "D0:C0:00:00:00:01", DeviceKind.PENDANT, expected_interval_s=3600)
FRONT_DOOR = PairedDevice("front-door", "D0:C0:00:00:00:02", DeviceKind.DOOR, expected_interval_s=3600)
BED = PairedDevice("bed-1", "D0:C0:00:00:00:03", DeviceKind.BED, expected_interval_s=3600)
OXIMETER = PairedDevice("oximeter-1", "D0:C0:00:00:00:04", DeviceKind.OXIMETER, expected_interval_s=300)
DEMO_DEVICES = (PENDANT, FRONT_DOOR, BED, OXIMETER)

REPEATS = 3
"""How many times a BTHome device broadcasts each frame."""
FALL_CANCEL_WINDOW_S = 3.0
"""Shortened from the pendant's 20 s so the demo's fall alarm arrives quickly."""


@dataclass(frozen=True)
class Step:
    at_s: float
    action: str


DAY: tuple[Step, ...] = (
    # The night's first call at once, so a visitor sees the queue at work within seconds:
    Step(1.0, "bed_vacated"),
    Step(2.0, "door_opened"),
    Step(3.5, "door_closed"),
    Step(5.0, "help_pressed"),
    Step(8.0, "fall_detected"),
    Step(13.0, "probe_off"),
    Step(16.0, "door_opened"),
    Step(17.0, "door_closed"),
    Step(22.0, "bed_occupied"),
    # then a quieter stretch: up and back to bed, another press five minutes on, the door.
    Step(150.0, "bed_vacated"),
    Step(240.0, "bed_occupied"),
    Step(305.0, "help_pressed"),
    Step(420.0, "door_opened"),
    Step(425.0, "door_closed"),
    Step(480.0, "bed_vacated"),
    Step(540.0, "bed_occupied"),
)
DAY_S = 600.0
"""The scripted day repeats every 10 minutes: a help press every 5 minutes and a fall every 10, so
the queue fills like a night's calls, not with the same alarm every half minute."""
OXIMETER_PERIOD_S = 2.0


class DemoHome:
    def __init__(self, seed: int = 1) -> None:
        self.random = random.Random(seed)
        self.pendant = pendant.Pendant(Transmitter(mac_bytes(PENDANT.address)),
                                       fall_cancel_window_s=FALL_CANCEL_WINDOW_S)
        self.door = door.DoorSensor(Transmitter(mac_bytes(FRONT_DOOR.address)), is_open=False)
        self.bed = bed.BedSensor(Transmitter(mac_bytes(BED.address)), occupied=True)
        self.probe_off_until = 0.0

    def act(self, action: str, now: float) -> list[Frame]:
        """The frames the home's devices send when `action` happens at device time `now`."""
        frame: bytes | None = None
        address = PENDANT.address
        if action == "help_pressed":
            self.pendant, frame = pendant.help_press(self.pendant, now)
        elif action == "fall_detected":
            self.pendant, frame = pendant.fall_detected(self.pendant, now)
        elif action in ("door_opened", "door_closed"):
            self.door, frame = door.set_open(self.door, action == "door_opened")
            address = FRONT_DOOR.address
        elif action in ("bed_occupied", "bed_vacated"):
            self.bed, frame = bed.set_occupied(self.bed, action == "bed_occupied")
            address = BED.address
        elif action == "probe_off":
            self.probe_off_until = now + 3 * OXIMETER_PERIOD_S
        else:
            raise ValueError(f"unknown action {action!r}")
        return broadcast(address, frame) if frame else []

    def tick(self, now: float) -> list[Frame]:
        """Frames due on the device clock: a pendant fall whose cancel window expired."""
        self.pendant, frame = pendant.tick(self.pendant, now)
        return broadcast(PENDANT.address, frame) if frame else []

    def oximeter(self, now: float) -> Frame:
        if now < self.probe_off_until:
            data = probe_off_continuous()
        else:
            spo2 = round(self.random.gauss(96.5, 0.8))
            pulse = round(self.random.gauss(72, 4))
            data = encode_continuous(ContinuousMeasurement(spo2=min(spo2, 100), pulse_rate=pulse))
        return GattNotification(address=OXIMETER.address, characteristic=CONTINUOUS_UUID, data=data,
                                received_at=datetime.now(UTC), monotonic=time.monotonic())


def broadcast(address: str, service_data: bytes) -> list[Frame]:
    now = datetime.now(UTC)
    return [Advertisement(address=address, service_data={BTHOME_SERVICE_UUID: service_data}, rssi=-62,
                          received_at=now, monotonic=time.monotonic()) for _ in range(REPEATS)]


def schedule(day_s: float = DAY_S) -> Iterator[tuple[float, str]]:
    """The day's steps as (seconds since start, action), repeating day after day."""
    for day in itertools.count():
        for step in DAY:
            yield day * day_s + step.at_s, step.action


async def play_demo_day(radio: "asyncio.Queue[Frame]", *, seed: int = 1, day_s: float = DAY_S) -> None:
    """Play the day on a loop, in real time, until cancelled."""
    home = DemoHome(seed)
    start = time.monotonic()
    steps = schedule(day_s)
    due, action = next(steps)
    next_reading = 0.0
    while True:
        now = time.monotonic() - start
        frames = home.tick(now)
        if now >= next_reading:
            frames.append(home.oximeter(now))
            next_reading += OXIMETER_PERIOD_S
        while now >= due:
            frames += home.act(action, now)
            due, action = next(steps)
        for frame in frames:
            radio.put_nowait(frame)
        await asyncio.sleep(0.05)
