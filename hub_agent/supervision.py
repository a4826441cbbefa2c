"""Per-device supervision: is each paired device still being heard on its own cadence?

A device is "not seen" once it has been silent for longer than `silence_limit_s(interval)`:

    silence limit = 2 x expected interval + 60 s

so one missed report (a collision, BlueZ hiding a repeat, a neighbour's microwave) is
tolerated and a second is not, and a sleepy sensor that reports every 10 minutes is only
reported after 21 minutes of silence, never on its normal cadence (home-assistant/core
#78702 marked such sensors offline after 5). The 60 s covers scheduling jitter on both
sides. This is an engineering choice, not a clinical one: EN 50134 asks that every link be
supervised but leaves the period to the scheme.

`DEVICE_NOT_SEEN` is raised once when the limit passes, and `DEVICE_SEEN_AGAIN` once when
the device is next heard. Time is the hub's monotonic clock (seconds), passed in, so a
wall-clock correction never raises or hides an alarm and tests drive time explicitly.
A device is supervised from the moment supervision starts: one that is never heard at all
is reported after its first silence limit.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from telecare_protocol.codes import DeviceType, EventCode
from telecare_protocol.messages import DeviceEvent, utc_now

log = logging.getLogger(__name__)

MISSED_REPORTS_TOLERATED = 1
SILENCE_SLACK_S = 60.0


def silence_limit_s(expected_interval_s: float) -> float:
    """How long a device with this reporting interval may be silent before it is "not seen"."""
    return (MISSED_REPORTS_TOLERATED + 1) * expected_interval_s + SILENCE_SLACK_S


@dataclass
class Supervised:
    """One device under supervision."""

    device_id: str
    device_type: DeviceType
    expected_interval_s: float
    last_heard: float
    """Monotonic seconds; the start of supervision until the device is first heard."""
    missing: bool = False

    @property
    def limit_s(self) -> float:
        return silence_limit_s(self.expected_interval_s)


class Supervisor:
    """Tracks when each device was last heard and says when one goes missing or comes back."""

    def __init__(self, hub_id: str, *, clock: Callable[[], float], wall_clock: Callable[[], datetime] = utc_now,
                 ) -> None:
        self.hub_id = hub_id
        self._clock = clock
        self._wall_clock = wall_clock
        self.devices: dict[str, Supervised] = {}

    def watch(self, device_id: str, device_type: DeviceType, expected_interval_s: float) -> None:
        """Start supervising a device, as if it had been heard just now."""
        if not expected_interval_s > 0:
            raise ValueError(f"{device_id}: expected interval must be positive")
        self.devices[device_id] = Supervised(device_id, device_type, expected_interval_s, self._clock())

    def watch_all(self, devices: Iterable[tuple[str, DeviceType, float]]) -> None:
        for device_id, device_type, interval in devices:
            self.watch(device_id, device_type, interval)

    def heard(self, device_id: str, at: float | None = None, received_at: datetime | None = None,
              ) -> list[DeviceEvent]:
        """The device was heard (an accepted frame) at monotonic time `at` (default: now).

        Returns `[DEVICE_SEEN_AGAIN]` if it had been reported not seen, else []."""
        device = self.devices.get(device_id)
        if device is None:
            return []
        now = self._clock() if at is None else at
        device.last_heard = max(device.last_heard, now)
        if not device.missing:
            return []
        device.missing = False
        log.warning("%s is heard again", device_id)
        return [self._event(device, EventCode.DEVICE_SEEN_AGAIN, received_at or self._wall_clock(), {})]

    def check(self) -> list[DeviceEvent]:
        """`DEVICE_NOT_SEEN` for each device that has just passed its silence limit."""
        now = self._clock()
        events = []
        for device in self.devices.values():
            silent = now - device.last_heard
            if device.missing or silent <= device.limit_s:
                continue
            device.missing = True
            log.warning("%s not heard for %.0f s (expected every %.0f s)", device.device_id, silent,
                        device.expected_interval_s)
            events.append(self._event(device, EventCode.DEVICE_NOT_SEEN, self._wall_clock(), {
                "silent_s": round(silent, 1), "expected_interval_s": device.expected_interval_s}))
        return events

    def next_check_in(self) -> float:
        """Seconds until the earliest device could pass its limit (at least 1 s, at most 60 s)."""
        now = self._clock()
        waits = [d.last_heard + d.limit_s - now for d in self.devices.values() if not d.missing]
        return min(60.0, max(1.0, min(waits, default=60.0)))

    def _event(self, device: Supervised, code: EventCode, at: datetime,
               detail: dict[str, str | int | float | bool]) -> DeviceEvent:
        return DeviceEvent.new(hub_id=self.hub_id, device_id=device.device_id, device_type=device.device_type,
                               code=code, source_ts=at, detail=detail)
