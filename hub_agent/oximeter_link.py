"""The GATT link to a pulse oximeter: connect, subscribe, hand notifications on, reconnect.

Connecting goes through `bleak_retry_connector.establish_connection`, which retries the
transient BlueZ failures (out of connection slots, `InProgress`, a device that just
disappeared) with the backoffs Home Assistant settled on. Once connected, the link
subscribes to the Pulse Oximeter Service's Continuous Measurement (0x2A5F, notify) and
Spot-check Measurement (0x2A5E, indicate; bleak acknowledges indications itself) and
turns each value into a `hub_agent.radio.GattNotification` for the agent's radio queue.
Parsing stays in `hub_agent.plx`: this module moves bytes, it does not read them.

When the link drops (the person walked out of range, the oximeter slept), the link waits
and reconnects for ever, with exponential backoff from 2 s to 60 s, reset by a successful
connection. The link state (`LinkState`) is logged on every change and reported through
`on_state`; whether the person is still being measured is supervision's business
(`hub_agent.supervision`, by the oximeter's expected interval), not the link's.

`connect` is injectable so the link can be tested without a radio: it must return an
object with `start_notify(uuid, callback)` and `disconnect()` (a `BleakClient`), and call
`on_disconnect` when the connection is lost.
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
MEASUREMENTS = (CONTINUOUS_UUID, SPOT_CHECK_UUID)


class LinkState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


class GattClient(Protocol):
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
                 on_state: Callable[[LinkState], None] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, clock: Callable[[], float] = time.monotonic,
                 backoff_min_s: float = BACKOFF_MIN_S, backoff_max_s: float = BACKOFF_MAX_S) -> None:
        self.address = address.upper()
        self._sink = sink
        self._connect = connect or bleak_connect()
        self._on_state = on_state
        self._sleep = sleep
        self._clock = clock
        self._backoff_min_s, self._backoff_max_s = backoff_min_s, backoff_max_s
        self.state = LinkState.DISCONNECTED
        self.connections = 0
        self.failures = 0
        self.notifications = 0
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
                for uuid in MEASUREMENTS:
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
