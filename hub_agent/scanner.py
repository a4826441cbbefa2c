"""Continuous BLE scanning with bleak, and the adapter watchdog.

The scanner never pauses: a pendant press is a one-shot burst of a few advertisements, and
a scanner that listens 5 s out of 10 (Theengs Gateway) misses it half the time. bleak asks
BlueZ for every repeat (`DuplicateData` off), and liveness does not depend on repeats anyway
(`hub_agent.supervision`).

Each advertisement becomes a plain `hub_agent.radio.Advertisement` handed to `sink` (the
agent's radio queue); bleak's types stay in this module and `oximeter_link`.

Watchdog. BlueZ adapters wedge (`org.bluez.Error.InProgress`, home-assistant/core #77664,
#84046, #93481) and then go quiet. A scanner that has heard no advertisement at all, from
any device, for `watchdog_s` (default 90 s, as Home Assistant) is stopped and started
again. In a home with few radios around, that restart may be routine; it costs a moment
of listening, and our devices repeat each frame.

Adapter faults. With no BlueZ, no D-Bus or no adapter, starting the scanner raises
(`FileNotFoundError` for a missing D-Bus socket, `OSError`, `BleakError`). That is
reported through `on_fault` once per outage (the agent turns it into a hub
`DEVICE_FAULT`, detail fault=bluetooth_adapter), logged, and retried with exponential
backoff (2 s doubling to 5 min). The process keeps running: the Zigbee devices, power
supervision and heartbeat do not depend on Bluetooth.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Literal, Protocol

from bleak import BleakScanner
from bleak.args.bluez import BlueZScannerArgs, OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from hub_agent.radio import Advertisement

log = logging.getLogger(__name__)

ADAPTER_ERRORS: tuple[type[BaseException], ...] = (BleakError, OSError, TimeoutError)
"""What a missing or wedged adapter raises (`FileNotFoundError` is an `OSError`)."""
DEFAULT_WATCHDOG_S = 90.0
BACKOFF_MIN_S = 2.0
BACKOFF_MAX_S = 300.0
BTHOME_UUID16_LE = b"\xd2\xfc"

ScanningMode = Literal["active", "passive"]
DetectionCallback = Callable[[BLEDevice, AdvertisementData], None]


class ScannerLike(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


ScannerFactory = Callable[[DetectionCallback], ScannerLike]


def to_advertisement(device: BLEDevice, data: AdvertisementData, *, received_at: datetime | None = None,
                     monotonic: float | None = None) -> Advertisement:
    """bleak's (device, advertisement data) as the hub's plain `Advertisement`."""
    return Advertisement(
        address=device.address.upper(),
        service_data={uuid.lower(): bytes(value) for uuid, value in data.service_data.items()},
        rssi=data.rssi,
        received_at=received_at if received_at is not None else datetime.now(UTC),
        monotonic=monotonic if monotonic is not None else time.monotonic(),
    )


def bleak_scanner_factory(*, adapter: str | None = None, mode: ScanningMode = "active") -> ScannerFactory:
    """Real `BleakScanner`s. Passive mode (less radio traffic, no scan requests) needs BlueZ
    advertisement monitors, so it matches BTHome service data only."""

    def make(callback: DetectionCallback) -> ScannerLike:
        bluez: BlueZScannerArgs = {}
        if adapter:
            bluez["adapter"] = adapter
        if mode == "passive":
            bluez["or_patterns"] = [OrPattern(0, AdvertisementDataType.SERVICE_DATA_UUID16, BTHOME_UUID16_LE)]
        return BleakScanner(detection_callback=callback, scanning_mode=mode, bluez=bluez)

    return make


class BleScanner:
    """Runs a scanner for ever: restarts it when quiet, retries it when the adapter fails."""

    def __init__(self, sink: Callable[[Advertisement], None], *, factory: ScannerFactory | None = None,
                 watchdog_s: float = DEFAULT_WATCHDOG_S, on_fault: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 backoff_min_s: float = BACKOFF_MIN_S, backoff_max_s: float = BACKOFF_MAX_S) -> None:
        self._sink = sink
        self._factory = factory or bleak_scanner_factory()
        self.watchdog_s = watchdog_s
        self._on_fault = on_fault
        self._clock = clock
        self._sleep = sleep
        self._backoff_min_s, self._backoff_max_s = backoff_min_s, backoff_max_s
        self.last_heard = clock()
        self.scanning = False
        self.faulted = False
        self.starts = 0
        self.restarts = 0
        """Watchdog restarts (the scanner was quiet for `watchdog_s`)."""
        self.failures = 0
        """Failed starts (no adapter, no BlueZ)."""
        self.advertisements = 0
        self._devices: dict[str, BLEDevice] = {}

    def ble_device(self, address: str) -> BLEDevice | None:
        """The last `BLEDevice` seen at `address` (for connecting to it), if any."""
        return self._devices.get(address.upper())

    def on_detection(self, device: BLEDevice, data: AdvertisementData) -> None:
        """bleak's detection callback (runs in the event loop)."""
        self.last_heard = self._clock()
        self.advertisements += 1
        self._devices[device.address.upper()] = device
        try:
            self._sink(to_advertisement(device, data, monotonic=self.last_heard))
        except Exception:  # one odd advertisement must not stop the scanner
            log.exception("advertisement from %s could not be queued", device.address)

    async def run(self) -> None:
        """Scan until cancelled."""
        backoff = self._backoff_min_s
        while True:
            scanner = self._factory(self.on_detection)
            try:
                await scanner.start()
            except ADAPTER_ERRORS as error:
                self._failed(error)
                await self._sleep(backoff)
                backoff = min(backoff * 2, self._backoff_max_s)
                continue
            backoff = self._backoff_min_s
            self.starts += 1
            self.scanning = True
            if self.faulted:
                log.warning("Bluetooth adapter is back; scanning")
                self.faulted = False
            self.last_heard = self._clock()
            try:
                await self._until_quiet()
                self.restarts += 1
                log.warning("no advertisement for %.0f s: restarting the BLE scanner", self.watchdog_s)
            finally:
                self.scanning = False
                try:
                    await scanner.stop()
                except ADAPTER_ERRORS as error:
                    log.warning("stopping the BLE scanner failed: %s", error)

    async def _until_quiet(self) -> None:
        while True:
            quiet = self._clock() - self.last_heard
            if quiet >= self.watchdog_s:
                return
            await self._sleep(max(0.5, self.watchdog_s - quiet))

    def _failed(self, error: BaseException) -> None:
        self.failures += 1
        text = f"{type(error).__name__}: {error}"
        if self.faulted:
            log.debug("Bluetooth adapter still unavailable: %s", text)
            return
        self.faulted = True
        log.error("Bluetooth adapter unavailable (%s); retrying with backoff", text)
        if self._on_fault is not None:
            self._on_fault(text)
