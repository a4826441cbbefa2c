"""Where the hub's power comes from, and the events when that changes.

Ofcom expects home equipment to keep emergency access for at least an hour in a power cut,
so a hub runs on a UPS HAT or battery pack, and the centre must hear that mains has gone.
A `PowerSource` reads the current state; `PowerMonitor` turns changes into
`POWER_FAILURE` / `POWER_RESTORED` events (device type COMMUNICATION_LINK, device id = the
hub id) and tells the heartbeat what to say.

Sources:
* `FixedSource`: always mains (a hub with no way of knowing).
* `FileSource`: a file holding "mains" or "battery" (written by a UPS HAT's own daemon, or a
  udev / power-supply hook, e.g. from /sys/class/power_supply/*/online).
* `GpioSource`: a GPIO line through the kernel's sysfs interface
  (/sys/class/gpio/gpioN/value, "1" or "0"); `mains_level` says which level means mains.
  UPS HATs commonly expose "external power present" on such a line. Newer kernels drop the
  sysfs GPIO interface in favour of the character device (libgpiod); a line exported by
  `gpio-sysfs` or a `gpio-keys`-style overlay works here, anything else can feed a
  `FileSource` from a small helper.

A source that cannot be read (file missing, garbage in it) returns None: the last known
state is kept and the failure is counted and logged, never raised.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from telecare_protocol.codes import DeviceType, EventCode, Power
from telecare_protocol.messages import DeviceEvent, utc_now

log = logging.getLogger(__name__)


class PowerSource(Protocol):
    def read(self) -> Power | None:
        """The current power, or None when it cannot be read right now."""


class FixedSource:
    """A hub that cannot tell: it reports mains."""

    def read(self) -> Power | None:
        return Power.MAINS


@dataclass(frozen=True)
class FileSource:
    """A text file holding `mains` or `battery` (surrounding whitespace and case ignored)."""

    path: Path

    def read(self) -> Power | None:
        try:
            text = self.path.read_text(encoding="ascii", errors="replace").strip().lower()
        except OSError as error:
            log.debug("power file %s unreadable: %s", self.path, error)
            return None
        try:
            return Power(text)
        except ValueError:
            return None


@dataclass(frozen=True)
class GpioSource:
    """A GPIO value file ("0" or "1"); `mains_level` is the level that means mains is present."""

    path: Path
    mains_level: int = 1

    def read(self) -> Power | None:
        try:
            text = self.path.read_text(encoding="ascii", errors="replace").strip()
        except OSError as error:
            log.debug("GPIO %s unreadable: %s", self.path, error)
            return None
        if text not in ("0", "1"):
            return None
        return Power.MAINS if int(text) == self.mains_level else Power.BATTERY


class PowerMonitor:
    """Polls a source and reports changes. Starts from mains, so a hub that boots on battery
    reports a power failure at once."""

    def __init__(self, hub_id: str, source: PowerSource, *, wall_clock: Callable[[], datetime] = utc_now) -> None:
        self.hub_id = hub_id
        self.source = source
        self.current = Power.MAINS
        self.unreadable = 0
        """How many polls could not read the source."""
        self._wall_clock = wall_clock

    def poll(self) -> list[DeviceEvent]:
        """Read the source: `[POWER_FAILURE]` or `[POWER_RESTORED]` on a change, else []."""
        try:
            power = self.source.read()
        except Exception:  # a broken source must not stop the hub
            log.exception("power source failed")
            power = None
        if power is None:
            self.unreadable += 1
            if self.unreadable == 1:
                log.warning("power source %r cannot be read; keeping %s", self.source, self.current)
            return []
        if power is self.current:
            return []
        self.current = power
        code = EventCode.POWER_FAILURE if power is Power.BATTERY else EventCode.POWER_RESTORED
        log.warning("power: now on %s", power)
        return [DeviceEvent.new(hub_id=self.hub_id, device_id=self.hub_id, device_type=DeviceType.COMMUNICATION_LINK,
                                code=code, source_ts=self._wall_clock(), detail={"power": power.value})]
