"""The devices paired with a hub."""

from collections.abc import Iterable
from dataclasses import dataclass

from telecare_protocol.codes import DeviceKind as DeviceKind  # the one list, shared with the centre

BINDKEY_LENGTH = 16


@dataclass(frozen=True)
class PairedDevice:
    """One device paired with this hub.

    `device_id` is the id the device's messages carry (a protocol identifier: lower-case
    letters, digits, `_` and `-`). `address` is its BLE address, "AA:BB:CC:DD:EE:FF".
    `bindkey` is the 16-byte BTHome AES-CCM key: when it is set the hub accepts only
    encrypted frames from the device; None means the device sends plain frames.
    `expected_interval_s` is how often the device is expected to be heard from (its
    supervision frames); a device silent for longer than that plus a grace period
    (`hub_agent.supervision`) is reported as not seen. `location` is where it is in the
    home ("bedroom"), for the installer's and the operator's benefit.
    """

    device_id: str
    address: str
    kind: DeviceKind
    bindkey: bytes | None = None
    expected_interval_s: float = 3600.0
    location: str | None = None

    def __post_init__(self) -> None:
        if self.bindkey is not None and len(self.bindkey) != BINDKEY_LENGTH:
            raise ValueError(f"a BTHome bind key is {BINDKEY_LENGTH} bytes, not {len(self.bindkey)}")
        if not self.expected_interval_s > 0:
            raise ValueError("expected_interval_s must be positive")


UNREAD_REPORTS_BEFORE_FAULT = 3
"""Unread reports (states, none the kind reads) before a device that was never read is a fault.
More than one, so a device that says something else now and then (vibration, a lock) is not
reported before its first real state; few, as a device speaking another object does so in
every report."""
NO_STATE_FAULT = "no_state_for_kind"


class StateCheck:
    """Notices a paired device that is heard but never says anything its kind reads.

    Each kind reads a few state objects (a door its opening or one of its synonyms, a bed its
    occupancy, a motion sensor its motion, a pendant its buttons). A device that sends none
    of them is still heard, so supervision counts it alive, yet it can never raise an event:
    it is mute. The decoders (`hub_agent.bthome`, `hub_agent.zigbee`) call `observe` once per
    accepted report with `read` (the report carried a state the kind reads) and `unread` (it
    carried states or events, none the kind reads; a report of measurements, battery and tamper
    only, such as a pendant's status frame or a sensor's before it has read its switch, is
    neither: silence about the state is no evidence). `unread_reports` counts the unread ones.
    `observe` returns the detail of one `DEVICE_FAULT` (`fault = "no_state_for_kind"`, `kind`,
    `reads`: what the kind would have read, `sent`: what the device did send, `reports`) the
    first time `UNREAD_REPORTS_BEFORE_FAULT` unread reports have arrived while no report has
    ever been read since the hub started; after that, and once the device has been read, never
    again.
    """

    def __init__(self, kind: DeviceKind, reads: tuple[str, ...]) -> None:
        self.kind = kind
        self.reads = reads
        """The names of the states (objects, properties) this kind reads, for the fault detail."""
        self.unread_reports = 0
        self.read_reports = 0
        self._reported = False

    def observe(self, *, read: bool, unread: bool, sent: Iterable[str]) -> dict[str, str | int | float | bool] | None:
        """Record one accepted report; the fault detail when the device has just proved mute, else None."""
        if read:
            self.read_reports += 1
            return None
        if not unread:
            return None
        self.unread_reports += 1
        if self._reported or self.read_reports or self.unread_reports < UNREAD_REPORTS_BEFORE_FAULT:
            return None
        self._reported = True
        return {"fault": NO_STATE_FAULT, "kind": str(self.kind), "reads": ", ".join(self.reads),
                "sent": ", ".join(sorted(set(sent)))[:200] or "nothing", "reports": self.unread_reports}
