"""The GATT link to a pulse oximeter: connect, subscribe, hand notifications on, reconnect.

Connecting goes through `bleak_retry_connector.establish_connection`, which retries the
transient BlueZ failures (out of connection slots, `InProgress`, a device that just
disappeared) with the backoffs Home Assistant settled on. Once connected, the link
subscribes to the Pulse Oximeter Service's Continuous Measurement (0x2A5F, notify) and
Spot-check Measurement (0x2A5E, indicate; bleak acknowledges indications itself) and
turns each value into a `hub_agent.radio.GattNotification` for the agent's radio queue.
Parsing stays in `hub_agent.plx`: this module moves bytes, it does not read them.

Both measurement characteristics are optional in the Bluetooth SIG Pulse Oximeter Profile
(PLXP 1.0, PLXS 1.0: a sensor supports Spot-check, Continuous, or both), so the link
subscribes to those in the device's GATT table (`client.services`) and logs the one
missing. A device with neither is no oximeter this hub can read: that is not a connection
failure to retry every few seconds but one device fault. The link reports it once through
`on_fault` (detail `fault = "no_plx_measurement"`, `missing`), hangs up, and looks again
only after `no_measurement_retry_s` (10 minutes: a firmware update or a replaced device is
picked up, the radio and the oximeter's battery are spared); the state is `REFUSED`. A
later connection that finds a measurement clears the fault, so a new refusal reports again.

When the link drops (the person walked out of range, the oximeter slept), the link waits
and reconnects for ever, with exponential backoff from 2 s to 60 s, reset by a successful
connection. The link state (`LinkState`) is logged on every change and reported through
`on_state`; whether the person is still being measured is supervision's business
(`hub_agent.supervision`, by the oximeter's expected interval), not the link's.

`connect` is injectable so the link can be tested without a radio: it must return an
object with `services.get_characteristic(uuid)`, `start_notify(uuid, callback)` and
`disconnect()` (a `BleakClient`), and call `on_disconnect` when the connection is lost.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from bleak import BleakClient
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError
from bleak_retry_connector import establish_connection, get_device

from hub_agent.plx import CONTINUOUS_UUID, SPOT_CHECK_UUID
from hub_agent.radio import GattNotification

log = logging.getLogger(__name__)

LINK_ERRORS: tuple[type[BaseException], ...] = (BleakError, OSError, TimeoutError, EOFError)
BACKOFF_MIN_S = 2.0
BACKOFF_MAX_S = 60.0
NO_MEASUREMENT_RETRY_S = 600.0
"""After refusing a device with no PLX measurement characteristic, wait this long before
connecting again (engineering choice: long enough not to drain its battery, short enough to
pick up a fixed pairing within the installer's visit)."""
MEASUREMENTS = (CONTINUOUS_UUID, SPOT_CHECK_UUID)
MEASUREMENT_NAMES = {CONTINUOUS_UUID: "0x2A5F continuous", SPOT_CHECK_UUID: "0x2A5E spot-check"}
NO_MEASUREMENT_FAULT = "no_plx_measurement"
Detail = dict[str, str | int | float | bool]


class LinkState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    REFUSED = "refused"
    """Connected, but the device has no PLX measurement characteristic: hung up, retried rarely."""


class GattServices(Protocol):
    """The device's GATT table as bleak discovered it (`BleakGATTServiceCollection`)."""

    def get_characteristic(self, specifier: str, /) -> object | None: ...


class GattClient(Protocol):
    @property
    def services(self) -> GattServices: ...
    async def start_notify(self, char_specifier: str, callback: Callable[[Any, bytearray], None]) -> None: ...
    async def disconnect(self) -> Any: ...


Connect = Callable[[str, Callable[[], None]], Awaitable[GattClient]]
"""(address, on_disconnect) -> a connected client."""


def bleak_connect(ble_device: Callable[[str], BLEDevice | None] | None = None) -> Connect:
    """Real connections: the scanner's last `BLEDevice` for the address, else BlueZ's own record."""

    async def connect(address: str, on_disconnect: Callable[[], None]) -> GattClient:
        device = ble_device(address) if ble_device is not None else None
        if device is None:
            device = await get_device(address)
        if device is None:
            raise BleakError(f"{address} has not been seen by the adapter")
        client: GattClient = await establish_connection(
            BleakClient, device, f"oximeter {address}", disconnected_callback=lambda _client: on_disconnect())
        return client

    return connect


class OximeterLink:
    """Keeps one oximeter connected and its measurements flowing into `sink`."""

    def __init__(self, address: str, sink: Callable[[GattNotification], None], *, connect: Connect | None = None,
                 on_state: Callable[[LinkState], None] | None = None, on_fault: Callable[[Detail], None] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, clock: Callable[[], float] = time.monotonic,
                 backoff_min_s: float = BACKOFF_MIN_S, backoff_max_s: float = BACKOFF_MAX_S,
                 no_measurement_retry_s: float = NO_MEASUREMENT_RETRY_S) -> None:
        self.address = address.upper()
        self._sink = sink
        self._connect = connect or bleak_connect()
        self._on_state = on_state
        self._on_fault = on_fault
        self._sleep = sleep
        self._clock = clock
        self._backoff_min_s, self._backoff_max_s = backoff_min_s, backoff_max_s
        self._no_measurement_retry_s = no_measurement_retry_s
        self.state = LinkState.DISCONNECTED
        self.connections = 0
        self.failures = 0
        self.refusals = 0
        """Connections hung up because the device had no PLX measurement characteristic."""
        self.notifications = 0
        self.subscribed: tuple[str, ...] = ()
        """The measurement characteristics subscribed to on the current (or last) connection."""
        self._faulted = False
        self._lost = asyncio.Event()

    def _set_state(self, state: LinkState) -> None:
        if state is self.state:
            return
        self.state = state
        log.info("oximeter %s: %s", self.address, state)
        if self._on_state is not None:
            self._on_state(state)

    def _notified(self, characteristic: str, data: bytearray | bytes) -> None:
        self.notifications += 1
        try:
            self._sink(GattNotification(address=self.address, characteristic=characteristic, data=bytes(data),
                                        received_at=datetime.now(UTC), monotonic=self._clock()))
        except Exception:  # a notification that cannot be queued must not break the link
            log.exception("oximeter %s: notification could not be queued", self.address)

    def _disconnected(self) -> None:
        self._lost.set()

    async def run(self) -> None:
        """Connect and stay connected until cancelled."""
        backoff = self._backoff_min_s
        while True:
            self._set_state(LinkState.CONNECTING)
            self._lost.clear()
            client: GattClient | None = None
            try:
                client = await self._connect(self.address, self._disconnected)
                self.subscribed = self._present(client)
                for uuid in self.subscribed:
                    await client.start_notify(uuid, self._callback(uuid))
            except LINK_ERRORS as error:
                self.failures += 1
                log.warning("oximeter %s: connection failed (%s: %s); retrying in %.0f s", self.address,
                            type(error).__name__, error, backoff)
                await self._drop(client)
                self._set_state(LinkState.DISCONNECTED)
                await self._sleep(backoff)
                backoff = min(backoff * 2, self._backoff_max_s)
                continue
            if not self.subscribed:
                await self._refuse(client)
                continue
            self._faulted = False
            self.connections += 1
            backoff = self._backoff_min_s
            self._set_state(LinkState.CONNECTED)
            try:
                await self._lost.wait()
            finally:
                if not self._lost.is_set():  # cancelled while connected: hang up politely
                    await self._drop(client)
                self._set_state(LinkState.DISCONNECTED)
            await self._sleep(backoff)

    def _present(self, client: GattClient) -> tuple[str, ...]:
        """The PLX measurement characteristics this device has, in subscription order."""
        present = tuple(uuid for uuid in MEASUREMENTS if client.services.get_characteristic(uuid) is not None)
        missing = [MEASUREMENT_NAMES[uuid] for uuid in MEASUREMENTS if uuid not in present]
        if present and missing:
            log.info("oximeter %s has no %s measurement; subscribing to the other only", self.address,
                     " or ".join(missing))
        return present

    async def _refuse(self, client: GattClient) -> None:
        """No measurement to subscribe to: one fault per outage, hang up, look again much later."""
        self.refusals += 1
        await self._drop(client)
        self._set_state(LinkState.REFUSED)
        if not self._faulted:
            self._faulted = True
            missing = ", ".join(MEASUREMENT_NAMES[uuid] for uuid in MEASUREMENTS)
            log.error("oximeter %s has neither PLX measurement characteristic (%s): not an oximeter this hub can "
                      "read; trying again in %.0f s", self.address, missing, self._no_measurement_retry_s)
            if self._on_fault is not None:
                try:
                    self._on_fault({"fault": NO_MEASUREMENT_FAULT, "missing": missing})
                except Exception:  # reporting must not break the link
                    log.exception("oximeter %s: the fault could not be reported", self.address)
        await self._sleep(self._no_measurement_retry_s)

    def _callback(self, uuid: str) -> Callable[[Any, bytearray], None]:
        def on_value(_characteristic: Any, data: bytearray) -> None:
            self._notified(uuid, data)

        return on_value

    async def _drop(self, client: GattClient | None) -> None:
        if client is None:
            return
        try:
            await client.disconnect()
        except LINK_ERRORS as error:
            log.debug("oximeter %s: disconnect failed: %s", self.address, error)
