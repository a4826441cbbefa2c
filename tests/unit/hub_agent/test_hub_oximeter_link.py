"""The oximeter's GATT link: subscriptions, real PLX bytes from firmware_stubs into the agent,
and reconnection with backoff. The radio cannot exist here: a fake client stands in for
BleakClient and delivers what the oximeter sends; like bleak, it refuses to subscribe to a
characteristic the device's GATT table does not have.

Both PLX measurement characteristics are optional (Bluetooth SIG Pulse Oximeter Profile): a
spot-check-only oximeter must connect, and a device with neither is one fault, not a retry
loop."""

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from bleak.exc import BleakCharacteristicNotFoundError, BleakError

from firmware_stubs.oximeter import ContinuousMeasurement, SpotCheckMeasurement, encode_continuous, encode_spot_check
from hub_agent.agent import HubAgent
from hub_agent.devices import DeviceKind, PairedDevice
from hub_agent.main import report_oximeter_fault
from hub_agent.oximeter_link import NO_MEASUREMENT_RETRY_S, Detail, GattClient, LinkState, OximeterLink
from hub_agent.plx import CONTINUOUS_UUID, SPOT_CHECK_UUID
from hub_agent.radio import GattNotification
from hub_agent.uplink import Uplink
from telecare_protocol import DeviceEvent, DeviceType, EventCode, Message, Metric, QualityFlag, Reading

ADDRESS = "A4:C1:38:00:01:04"
BOTH = (CONTINUOUS_UUID, SPOT_CHECK_UUID)
SPOT_CHECK = bytes.fromhex("0f 6100 4800 e807030f081e05 8001 200000 23f0")
"""The hand-assembled spot check of docs/devices.md: SpO2 97 %, pulse 72 /min, low perfusion."""


class FakeServices:
    """The device's GATT table, as `BleakGATTServiceCollection.get_characteristic` answers."""

    def __init__(self, characteristics: tuple[str, ...]) -> None:
        self.characteristics = characteristics

    def get_characteristic(self, specifier: str, /) -> object | None:
        return object() if specifier in self.characteristics else None


class FakeClient:
    def __init__(self, characteristics: tuple[str, ...] = BOTH) -> None:
        self.callbacks: dict[str, Callable[[Any, bytearray], None]] = {}
        self.disconnected = False
        self.services = FakeServices(characteristics)

    async def start_notify(self, char_specifier: str, callback: Callable[[Any, bytearray], None]) -> None:
        if self.services.get_characteristic(char_specifier) is None:
            raise BleakCharacteristicNotFoundError(char_specifier)  # what BleakClient does
        self.callbacks[char_specifier] = callback

    async def disconnect(self) -> bool:
        self.disconnected = True
        return True

    def notify(self, uuid: str, data: bytes) -> None:
        self.callbacks[uuid](object(), bytearray(data))


class Oximeter:
    """Connections as the radio would give them: failures first, then clients."""

    def __init__(self, failures: int = 0, tables: tuple[tuple[str, ...], ...] = (BOTH,)) -> None:
        self.failures = failures
        self.tables = tables
        """The GATT table of each successive connection; the last one repeats."""
        self.clients: list[FakeClient] = []
        self.lose: list[Callable[[], None]] = []

    async def connect(self, address: str, on_disconnect: Callable[[], None]) -> GattClient:
        assert address == ADDRESS
        if self.failures:
            self.failures -= 1
            raise BleakError(f"Device with address {address} was not found")
        self.clients.append(FakeClient(self.tables[min(len(self.clients), len(self.tables) - 1)]))
        self.lose.append(on_disconnect)
        return self.clients[-1]


class Sleeps:
    def __init__(self) -> None:
        self.seen: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seen.append(seconds)
        await asyncio.sleep(0)


async def until(condition: Callable[[], bool], task: "asyncio.Task[None]", steps: int = 1000) -> None:
    for _ in range(steps):
        if condition():
            return
        if task.done():
            task.result()
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


def test_notifications_carry_the_oximeters_bytes_to_readings() -> None:
    async def scenario() -> None:
        agent = HubAgent("hub-1", [PairedDevice("oximeter-1", ADDRESS, DeviceKind.OXIMETER)],
                         Uplink(hub_id="hub-1", password="not-started-here", host="127.0.0.1", port=1))
        radio = Oximeter()
        states: list[LinkState] = []
        link = OximeterLink(ADDRESS.lower(), agent.radio.put_nowait, connect=radio.connect, on_state=states.append,
                            sleep=Sleeps())
        task = asyncio.create_task(link.run())
        await until(lambda: link.state is LinkState.CONNECTED, task)
        client = radio.clients[0]
        assert set(client.callbacks) == {CONTINUOUS_UUID, SPOT_CHECK_UUID}
        continuous = encode_continuous(ContinuousMeasurement(spo2=97, pulse_rate=64))
        spot = encode_spot_check(SpotCheckMeasurement(spo2=93, pulse_rate=88, timestamp=(2025, 1, 6, 8, 30, 0)))
        client.notify(CONTINUOUS_UUID, continuous)
        client.notify(SPOT_CHECK_UUID, spot)
        first, second = agent.radio.get_nowait(), agent.radio.get_nowait()
        assert isinstance(first, GattNotification) and (first.characteristic, first.data) == (CONTINUOUS_UUID,
                                                                                                 continuous)
        assert first.address == ADDRESS
        readings = [m for frame in (first, second) for m in agent.handle(frame)]
        assert [(r.metric, r.value) for r in readings if isinstance(r, Reading)] == [
            (Metric.SPO2, 97), (Metric.PULSE_RATE, 64), (Metric.SPO2, 93), (Metric.PULSE_RATE, 88)]
        assert agent.heartbeat().devices[0].last_seen == second.received_at
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client.disconnected  # hung up politely on the way out
        assert states == [LinkState.CONNECTING, LinkState.CONNECTED, LinkState.DISCONNECTED]

    asyncio.run(scenario())


def test_link_retries_with_backoff_and_reconnects_after_a_drop() -> None:
    async def scenario() -> None:
        radio = Oximeter(failures=3)
        sleeps = Sleeps()
        frames: list[GattNotification] = []
        link = OximeterLink(ADDRESS, frames.append, connect=radio.connect, sleep=sleeps)
        task = asyncio.create_task(link.run())
        await until(lambda: link.state is LinkState.CONNECTED, task)
        assert sleeps.seen == [2.0, 4.0, 8.0] and link.failures == 3
        radio.lose[0]()  # the person walked out of range
        await until(lambda: link.connections == 2, task)
        assert sleeps.seen[3] == 2.0  # backoff was reset by the successful connection
        radio.clients[1].notify(CONTINUOUS_UUID, encode_continuous(ContinuousMeasurement(spo2=95, pulse_rate=70)))
        assert len(frames) == 1 and link.state is LinkState.CONNECTED
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_backoff_is_capped_at_a_minute() -> None:
    async def scenario() -> None:
        radio = Oximeter(failures=10)
        sleeps = Sleeps()
        link = OximeterLink(ADDRESS, lambda frame: None, connect=radio.connect, sleep=sleeps)
        task = asyncio.create_task(link.run())
        await until(lambda: link.state is LinkState.CONNECTED, task)
        assert max(sleeps.seen) == 60.0 and sleeps.seen[-1] == 60.0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_a_spot_check_only_oximeter_connects_and_its_measurements_arrive() -> None:
    async def scenario() -> None:
        agent = HubAgent("hub-1", [PairedDevice("oximeter-1", ADDRESS, DeviceKind.OXIMETER)],
                         Uplink(hub_id="hub-1", password="not-started-here", host="127.0.0.1", port=1))
        radio = Oximeter(tables=((SPOT_CHECK_UUID,),))
        faults: list[Detail] = []
        link = OximeterLink(ADDRESS, agent.radio.put_nowait, connect=radio.connect, on_fault=faults.append,
                            sleep=Sleeps())
        task = asyncio.create_task(link.run())
        await until(lambda: link.state is LinkState.CONNECTED, task)
        client = radio.clients[0]
        assert set(client.callbacks) == {SPOT_CHECK_UUID} and link.subscribed == (SPOT_CHECK_UUID,)
        client.notify(SPOT_CHECK_UUID, SPOT_CHECK)
        readings = [m for m in agent.handle(agent.radio.get_nowait()) if isinstance(m, Reading)]
        assert [(r.metric, r.value, r.quality) for r in readings] == [
            (Metric.SPO2, 97, (QualityFlag.LOW_PERFUSION,)), (Metric.PULSE_RATE, 72, (QualityFlag.LOW_PERFUSION,))]
        assert (link.failures, link.refusals, faults) == (0, 0, [])
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_a_continuous_only_oximeter_subscribes_to_continuous_alone() -> None:
    async def scenario() -> None:
        radio = Oximeter(tables=((CONTINUOUS_UUID,),))
        frames: list[GattNotification] = []
        link = OximeterLink(ADDRESS, frames.append, connect=radio.connect, sleep=Sleeps())
        task = asyncio.create_task(link.run())
        await until(lambda: link.state is LinkState.CONNECTED, task)
        assert set(radio.clients[0].callbacks) == {CONTINUOUS_UUID} and link.failures == 0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_a_device_with_neither_measurement_is_one_fault_and_is_not_retried_in_a_tight_loop() -> None:
    async def scenario() -> None:
        radio = Oximeter(tables=((), (), (), BOTH, ()))  # refused three times, fixed, then wrong again
        sleeps = Sleeps()
        faults: list[Detail] = []
        states: list[LinkState] = []
        link = OximeterLink(ADDRESS, lambda frame: None, connect=radio.connect, on_fault=faults.append,
                            on_state=states.append, sleep=sleeps)
        task = asyncio.create_task(link.run())
        await until(lambda: link.state is LinkState.CONNECTED, task)
        assert faults == [{"fault": "no_plx_measurement", "missing": "0x2A5F continuous, 0x2A5E spot-check"}]
        assert sleeps.seen == [NO_MEASUREMENT_RETRY_S] * 3 and NO_MEASUREMENT_RETRY_S >= 600
        assert (link.refusals, link.failures, link.connections) == (3, 0, 1)
        assert all(client.disconnected for client in radio.clients[:3])  # hung up each time
        assert states[:3] == [LinkState.CONNECTING, LinkState.REFUSED, LinkState.CONNECTING]
        radio.lose[3]()  # the working device goes; what comes back has no measurement again
        await until(lambda: link.refusals == 4, task)
        assert len(faults) == 2  # a new outage, reported again
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


class Sent:
    """An uplink that keeps what the agent sends."""

    unacked = 0

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def start(self) -> None: ...
    def send(self, message: Message) -> None:
        self.messages.append(message)

    def stop(self, timeout: float = 10.0) -> None: ...


def test_the_hub_sends_a_refused_oximeter_to_the_centre_as_a_fault_of_that_oximeter() -> None:
    uplink = Sent()
    agent = HubAgent("hub-1", [PairedDevice("oximeter-1", ADDRESS, DeviceKind.OXIMETER)], uplink)
    report_oximeter_fault(agent, "oximeter-1", {"fault": "no_plx_measurement", "missing": "0x2A5F continuous"})
    [event] = uplink.messages
    assert isinstance(event, DeviceEvent)
    assert (event.device_id, event.device_type, event.code, event.detail) == (
        "oximeter-1", DeviceType.PULSE_OXIMETER, EventCode.DEVICE_FAULT,
        {"fault": "no_plx_measurement", "missing": "0x2A5F continuous"})
