"""`telecare hub --config FILE`: assemble the hub from its configuration and run it.

Exit status: 0 after a clean stop (SIGTERM or SIGINT: the uplink gets up to 10 s to have
everything acknowledged and say "offline"), 2 when the configuration cannot be used (one
line on stderr naming the key, no traceback). A missing Bluetooth adapter or Zigbee2MQTT
broker is not fatal: it is reported to the centre and retried (see `hub_agent.scanner`).
"""

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

from hub_agent.agent import HubAgent
from hub_agent.config import ConfigError, HubConfig, PowerConfig, centre_password, load_config, zigbee_broker
from hub_agent.devices import DeviceKind
from hub_agent.power import FileSource, FixedSource, GpioSource, PowerMonitor, PowerSource
from hub_agent.uplink import Uplink
from telecare_protocol import DeviceEvent, DeviceType, EventCode
from telecare_protocol.messages import utc_now

log = logging.getLogger(__name__)


def power_source(config: PowerConfig) -> PowerSource:
    if config.source == "file" and config.path is not None:
        return FileSource(config.path)
    if config.source == "gpio" and config.path is not None:
        return GpioSource(config.path, mains_level=config.mains_level)
    return FixedSource()


def make_uplink(config: HubConfig, password: str) -> Uplink:
    return Uplink(hub_id=config.hub_id, password=password, host=config.centre.host, port=config.centre.port,
                  fallbacks=config.centre.fallback_brokers(),
                  outbox_path=config.outbox.path, outbox_budget_bytes=config.outbox.budget_bytes,
                  tls_ca=config.centre.tls_ca, tls_cert=config.centre.tls_cert, tls_key=config.centre.tls_key)


def report_oximeter_fault(agent: HubAgent, device_id: str, detail: dict[str, str | int | float | bool]) -> None:
    """A `DEVICE_FAULT` about one oximeter (from `OximeterLink.on_fault`: no PLX measurement)."""
    agent.send(DeviceEvent.new(hub_id=agent.hub_id, device_id=device_id, device_type=DeviceType.PULSE_OXIMETER,
                               code=EventCode.DEVICE_FAULT, source_ts=utc_now(), detail=detail))


def build(config: HubConfig, password: str) -> HubAgent:
    return HubAgent(config.hub_id, config.paired_devices(), make_uplink(config, password),
                    heartbeat_interval_s=config.heartbeat_interval_s, zigbee_devices=config.zigbee_devices(),
                    power=PowerMonitor(config.hub_id, power_source(config.power)))


async def run_hub(config: HubConfig, password: str) -> int:
    """Run until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    agent = build(config, password)
    inputs: list[tuple[str, Callable[[], Awaitable[None]]]] = []
    if config.bluetooth.enabled:
        from hub_agent.oximeter_link import OximeterLink, bleak_connect
        from hub_agent.scanner import BleScanner, bleak_scanner_factory

        scanner = BleScanner(agent.radio.put_nowait,
                             factory=bleak_scanner_factory(adapter=config.bluetooth.adapter,
                                                           mode=config.bluetooth.scanning_mode),
                             watchdog_s=config.bluetooth.watchdog_s,
                             on_fault=lambda error: agent.report_fault("bluetooth_adapter", error))
        inputs.append(("ble_scanner", scanner.run))
        for device in config.paired_devices():
            if device.kind is DeviceKind.OXIMETER:
                link = OximeterLink(device.address, agent.radio.put_nowait, connect=bleak_connect(scanner.ble_device),
                                    on_fault=partial(report_oximeter_fault, agent, device.device_id))
                inputs.append((f"oximeter_{device.device_id}", link.run))
    zigbee = None
    if config.zigbee2mqtt is not None and config.zigbee2mqtt.devices:
        from hub_agent.zigbee import ZigbeeLink

        zigbee = ZigbeeLink(zigbee_broker(config.zigbee2mqtt), config.zigbee_devices(),
                            lambda report: loop.call_soon_threadsafe(agent.radio.put_nowait, report),
                            on_fault=agent.report_fault_threadsafe(loop, "zigbee2mqtt"),
                            client_id=f"telecare-hub-{config.hub_id}")
        zigbee.start()

    running = asyncio.create_task(agent.run(inputs=inputs))
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, running.cancel)
    log.info("hub %s running: %d BLE devices, %d Zigbee devices", config.hub_id, len(agent.devices),
             len(agent.zigbee))
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await running
    finally:
        if zigbee is not None:
            zigbee.stop()
    log.info("hub %s stopped (%d messages sent)", config.hub_id, agent.sent)
    return 0


def main(config_path: Path) -> int:
    try:
        config = load_config(config_path)
        password = centre_password(config)
        logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                            force=True)
        return asyncio.run(run_hub(config, password))
    except ConfigError as error:
        print(f"telecare hub: {config_path}: {error}", file=sys.stderr)
        return 2
