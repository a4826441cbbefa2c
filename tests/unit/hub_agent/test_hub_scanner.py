"""The BLE scanner: bleak's objects become plain advertisements, a quiet scanner is restarted,
and a missing adapter is reported once and retried with backoff, never fatal. No radio here:
time and bleak's scanner are driven by the test (bleak's own types are real)."""

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from firmware_stubs import pendant
from firmware_stubs.bthome import BTHOME_SERVICE_UUID, Transmitter, mac_bytes
from hub_agent.agent import HubAgent
from hub_agent.devices import DeviceKind, PairedDevice
from hub_agent.radio import Advertisement
from hub_agent.scanner import BleScanner, DetectionCallback, ScannerLike, bleak_scanner_factory, to_advertisement
from hub_agent.uplink import Uplink
from telecare_protocol import EventCode

ADDRESS = "A4:C1:38:00:00:01"


class Clock:
    """A monotonic clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep: list[Any] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        for hook in self.on_sleep:
            hook()
        await asyncio.sleep(0)


class FakeScanner:
    """Stands in for BleakScanner: the test decides when start fails and what is heard."""

    def __init__(self, callback: DetectionCallback, failures: list[BaseException], clock: Clock | None = None) -> None:
        self.callback = callback
        self._failures = failures
        self._clock = clock
        self.running = False
        self.stopped_at: float | None = None

    async def start(self) -> None:
        if self._failures:
            raise self._failures.pop(0)
        self.running = True

    async def stop(self) -> None:
        self.running = False
        self.stopped_at = self._clock() if self._clock else None


def ble(frame: bytes, address: str = ADDRESS, rssi: int = -61) -> tuple[BLEDevice, AdvertisementData]:
    data = AdvertisementData(local_name=None, manufacturer_data={}, service_data={BTHOME_SERVICE_UUID: frame},
                             service_uuids=[BTHOME_SERVICE_UUID], tx_power=None, rssi=rssi, platform_data=())
    return BLEDevice(address.lower(), None, None), data


async def until(condition: Any, task: "asyncio.Task[None]", steps: int = 10_000) -> None:
    for _ in range(steps):
        if condition():
            return
        if task.done():
            task.result()
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def test_bleak_advertisement_becomes_a_plain_advertisement() -> None:
    _, frame = pendant.help_press(pendant.Pendant(Transmitter(mac_bytes(ADDRESS))), now=0.0)
    device, data = ble(frame)
    at = datetime(2025, 1, 6, 3, 0, tzinfo=UTC)
    adv = to_advertisement(device, data, received_at=at, monotonic=12.5)
    assert adv == Advertisement(address=ADDRESS, service_data={BTHOME_SERVICE_UUID: frame}, rssi=-61,
                                received_at=at, monotonic=12.5)


def test_scanned_press_reaches_the_agent_as_an_alarm() -> None:
    agent = HubAgent("hub-1", [PairedDevice("pendant-1", ADDRESS, DeviceKind.PENDANT)],
                     Uplink(hub_id="hub-1", password="not-started-here", host="127.0.0.1", port=1))
    queue: list[Advertisement] = []
    scanner = BleScanner(queue.append, factory=lambda cb: FakeScanner(cb, []))
    _, frame = pendant.help_press(pendant.Pendant(Transmitter(mac_bytes(ADDRESS))), now=0.0)
    scanner.on_detection(*ble(frame))
    scanner.on_detection(*ble(frame, address="11:22:33:44:55:66"))  # a neighbour's device
    assert [adv.received_at.tzinfo for adv in queue] == [UTC, UTC]
    messages = [m for adv in queue for m in agent.handle(adv)]
    assert EventCode.MANUAL_ALARM in [getattr(m, "code", None) for m in messages]
    assert agent.rejected == {"not_paired": 1}
    assert scanner.ble_device(ADDRESS) is not None


def test_scanner_that_keeps_hearing_is_never_restarted_and_a_quiet_one_is() -> None:
    async def scenario() -> None:
        clock = Clock()
        scanners: list[FakeScanner] = []

        def factory(callback: DetectionCallback) -> ScannerLike:
            scanners.append(FakeScanner(callback, [], clock))
            return scanners[-1]

        scanner = BleScanner(lambda adv: None, factory=factory, watchdog_s=90, clock=clock, sleep=clock.sleep)
        radio_alive = True

        def busy_radio() -> None:
            if radio_alive and scanners and scanners[-1].running:
                scanners[-1].callback(*ble(b"\x40\x00\x01"))

        clock.on_sleep.append(busy_radio)
        task = asyncio.create_task(scanner.run())
        await until(lambda: clock.t > 1000 + 3600, task)
        assert (scanner.starts, scanner.restarts) == (1, 0)
        radio_alive = False  # BlueZ wedged: nothing at all is heard any more
        quiet_from = clock.t
        await until(lambda: scanner.restarts == 1, task)
        assert scanners[0].stopped_at is not None and scanners[0].stopped_at - quiet_from <= 90
        await until(lambda: scanner.starts == 2, task)
        assert not scanners[0].running and scanners[1].running
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not scanners[1].running  # stopped on the way out

    run(scenario())


def test_missing_adapter_is_reported_once_and_retried_with_backoff() -> None:
    async def scenario() -> None:
        clock = Clock()
        failures: list[BaseException] = [FileNotFoundError(2, "No such file or directory"), OSError("no adapter"),
                                         BleakError("org.bluez.Error.NotReady"), BleakError("still not ready")]
        faults: list[str] = []
        scanner = BleScanner(lambda adv: None, factory=lambda cb: FakeScanner(cb, failures), clock=clock,
                             sleep=clock.sleep, on_fault=faults.append)
        task = asyncio.create_task(scanner.run())
        await until(lambda: scanner.starts == 1, task)
        assert len(faults) == 1 and "FileNotFoundError" in faults[0]
        assert scanner.failures == 4
        assert clock.sleeps[:4] == [2.0, 4.0, 8.0, 16.0]
        assert not scanner.faulted
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario())


def test_backoff_is_capped() -> None:
    async def scenario() -> None:
        clock = Clock()
        failures: list[BaseException] = [OSError("no adapter")] * 12
        scanner = BleScanner(lambda adv: None, factory=lambda cb: FakeScanner(cb, failures), clock=clock,
                             sleep=clock.sleep)
        task = asyncio.create_task(scanner.run())
        await until(lambda: scanner.starts == 1, task)
        assert max(clock.sleeps) == 300.0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario())


@pytest.mark.skipif(Path("/run/dbus/system_bus_socket").exists() or Path("/var/run/dbus/system_bus_socket").exists(),
                    reason="this machine has a D-Bus system bus: bleak may really scan here")
def test_real_bleak_without_bluez_is_reported_and_retried() -> None:
    async def scenario() -> None:
        clock = Clock()
        faults: list[str] = []
        scanner = BleScanner(lambda adv: None, factory=bleak_scanner_factory(adapter="hci0"), clock=clock,
                             sleep=clock.sleep, on_fault=faults.append)
        task = asyncio.create_task(scanner.run())
        await until(lambda: scanner.failures >= 3, task)
        assert len(faults) == 1 and scanner.faulted and scanner.starts == 0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario())
