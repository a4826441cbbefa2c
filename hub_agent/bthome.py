"""Hub-side BTHome v2 decoder: one paired device's advertisements in, protocol events out.

Built on the `bthome-ble` library, which parses and decrypts the frames; this module adds
what a telecare hub needs on top (docs/devices.md is the reference for the frames):

* Mapping to events. Pendant: button 1 press -> MANUAL_ALARM, long press -> ALARM_CANCELLED
  (PERSONAL_TRIGGER); button 2, the fall channel: press -> FALL_DETECTED, long press ->
  FALL_CANCELLED (FALL_DETECTOR). Any other event code on a button is read as its press
  ("if in doubt, go out"); a single-button device's `button`, and any button above 2, is a
  help button. Event code 0 and codes `bthome-ble` does not know produce nothing. Door:
  opening (0x11), door (0x1A), garage door (0x1B) or window (0x2D), all 1 = open ->
  DOOR_OPENED / DOOR_CLOSED. Bed: occupancy (0x23) or presence (0x25) -> BED_OCCUPIED /
  BED_VACATED. Motion sensor: motion (0x21), occupancy (0x23) or presence (0x25) detected ->
  ACTIVITY (MOTION_SENSOR); cleared produces nothing. A frame with several of one kind's
  objects reads as one state, on if any is on. Every kind: battery low -> BATTERY_LOW /
  BATTERY_OK, tamper -> TAMPER / TAMPER_CLEARED. Button events come once per accepted frame;
  state events when the state changes or is first seen. `source_ts` is the time the hub
  received the frame: BTHome carries no device clock.
* Mute devices. A device that is heard but sends its state in an object its kind does not
  read (a door sensor speaking an object missing above) would pass supervision and never
  raise an event. A frame that carries binary states or events (battery low and tamper
  aside) and none its kind reads is unread: `hub_agent.devices.StateCheck` counts such
  frames (`unread_reports`) and the decoder sends one `DEVICE_FAULT` (`fault =
  "no_state_for_kind"`) for the device. A frame of measurements, battery and tamper only (a
  sensor that has not read its switch yet; a pendant's status frame, whose code-0 buttons
  `bthome-ble` drops) is neither read nor unread.
* Deduplication. A device repeats each frame for reliability. `bthome-ble` drops a repeated
  packet id only within 4 s, so a frame identical to the last accepted one is dropped here
  whatever the delay (same bytes means the same packet id, and for an encrypted frame the
  same counter). A frame with the same packet id but different bytes is a new frame, unless
  it comes within `bthome-ble`'s 4 s window. Frames without a packet id are compared by
  bytes too, so a device must send a packet id for two identical presses to count twice.
* Replay protection. For a keyed device an encryption counter lower than the last accepted
  one, or equal to it in different bytes, is rejected as a replay. This is stricter than
  `bthome-ble` (which lets a counter restart below 100 and stops checking after failed
  decryptions). One exception, the counter-reset rule: a device whose battery was changed
  may restart its counter. A frame whose counter is lower than the last accepted one but
  below `COUNTER_RESET_CEILING`, that is not one of the device's recent frames, and that
  decrypts and authenticates with the device's bind key, is accepted as the new base of
  the counter, and produces one `DEVICE_FAULT` event (detail `fault=encryption_counter_reset`,
  `last_counter`, `counter`) for the centre, once per reset, besides the frame's own events
  (a help press right after a battery change is still an alarm); the following frames count
  up from the new base as usual. A lower counter at or above the ceiling is still a replay,
  rejected and counted, and so is a replay of any of the last `RECENT_FRAMES` accepted
  frames, whatever its counter (so the frames recorded before a reset cannot be replayed
  above the new base). A device is never silently dropped after a battery change, and the
  operator sees that it happened. `reset_encryption_counter` forgets the high-water mark by
  hand (a device that restarts from a random counter above the ceiling).
* Downgrade protection. A plain frame from a device with a bind key is rejected.
* Counting. Every rejected frame is counted by reason in `rejected`; `decode` never raises.

`last_seen` and `battery_pct` (for the hub's heartbeat) change only on accepted frames,
so a replayed or duplicated frame cannot make a dead device look alive.

Which device a frame belongs to (the address) is the caller's business, not this module's.
"""

import hashlib
import logging
import math
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bthome_ble import BTHomeBluetoothDeviceData
from habluetooth import BluetoothServiceInfoBleak
from sensor_state_data import BinarySensorDeviceClass, BinarySensorValue, DeviceKey, SensorUpdate, SensorValue

from hub_agent.devices import DeviceKind, PairedDevice, StateCheck
from hub_agent.radio import Advertisement
from telecare_protocol.codes import DeviceType, EventCode
from telecare_protocol.messages import DeviceEvent, utc_now

_LOGGER = logging.getLogger(__name__)

BTHOME_SERVICE_UUID = "0000fcd2-0000-1000-8000-00805f9b34fb"
BTHOME_VERSION = 2
_INFO_ENCRYPTED = 0x01
_INFO_MAC_INCLUDED = 0x02
_COUNTER_AND_MIC = 8
_MIN_CIPHERTEXT = 2
COUNTER_RESET_CEILING = 256
"""A lower counter below this, authenticated, is a device that restarted its counter (a battery
change), not a replay. Our devices restart at 0; 256 leaves room for the frames a hub may miss
after the restart (a status frame every few minutes), and is below the counter of any device
that has run for a day. bthome-ble uses 100 for the same purpose."""
RECENT_FRAMES = 64
"""How many accepted frames per device are remembered (as digests) to reject their replays."""
BTHOME_BLE_PACKET_WINDOW_S = 4.0
"""`bthome-ble` drops a frame whose packet id is not newer than the last one within this window."""

Detail = dict[str, str | int | float | bool]


class Rejection(StrEnum):
    """Why a frame was dropped (the keys of `BTHomeDevice.rejected`)."""

    NOT_BTHOME = "not_bthome"
    """No BTHome v2 service data: missing, empty, or another BTHome version."""
    UNDECODABLE = "undecodable"
    """BTHome v2, but too short or nothing in it could be parsed."""
    NO_KEY = "no_key"
    """An encrypted frame for a device paired without a bind key."""
    DECRYPTION_FAILED = "decryption_failed"
    """Wrong bind key, or a forged or corrupted frame."""
    REPLAYED_COUNTER = "replayed_counter"
    """An encryption counter that did not increase."""
    DOWNGRADE = "downgrade"
    """A plain frame from a device that has a bind key."""
    DUPLICATE = "duplicate"
    """A repeat of an accepted frame, or a stale packet id `bthome-ble` filtered."""


_DEVICE_TYPE = {
    DeviceKind.PENDANT: DeviceType.PERSONAL_TRIGGER,
    DeviceKind.DOOR: DeviceType.DOOR_SENSOR,
    DeviceKind.BED: DeviceType.BED_MONITOR,
    DeviceKind.MOTION: DeviceType.MOTION_SENSOR,
}

HELP_BUTTON = 1
FALL_CHANNEL = 2
_LONG_PRESS = "long_press"
_PRESS_NAMES = {"press": "short", "long_press": "long", "double_press": "double", "triple_press": "triple"}

_B = BinarySensorDeviceClass
DOOR_KEYS = (_B.OPENING, _B.DOOR, _B.GARAGE_DOOR, _B.WINDOW)
"""`bthome-ble`'s binary sensors that say a door (or window) is open: objects 0x11, 0x1A, 0x1B, 0x2D."""
BED_KEYS = (_B.OCCUPANCY, _B.PRESENCE)
"""Someone is in bed: occupancy 0x23, presence 0x25."""
MOTION_KEYS = (_B.MOTION, _B.OCCUPANCY, _B.PRESENCE)
"""Someone is moving in the room: motion 0x21, occupancy 0x23, presence 0x25."""
_COMMON_KEYS = (_B.TAMPER, _B.BATTERY)
BUTTON_KEY = "button"

# (state, binary sensor keys meaning it, device kinds it applies to, event when on, event when off or None)
_STATES: tuple[tuple[str, tuple[str, ...], frozenset[DeviceKind], EventCode, EventCode | None], ...] = (
    ("door", DOOR_KEYS, frozenset({DeviceKind.DOOR}), EventCode.DOOR_OPENED, EventCode.DOOR_CLOSED),
    ("occupancy", BED_KEYS, frozenset({DeviceKind.BED}), EventCode.BED_OCCUPIED, EventCode.BED_VACATED),
    ("motion", MOTION_KEYS, frozenset({DeviceKind.MOTION}), EventCode.ACTIVITY, None),
    ("tamper", (_B.TAMPER,), frozenset(_DEVICE_TYPE), EventCode.TAMPER, EventCode.TAMPER_CLEARED),
    ("battery", (_B.BATTERY,), frozenset(_DEVICE_TYPE), EventCode.BATTERY_LOW, EventCode.BATTERY_OK),
)
KIND_READS: dict[DeviceKind, tuple[str, ...]] = {
    DeviceKind.PENDANT: (BUTTON_KEY,), DeviceKind.DOOR: DOOR_KEYS, DeviceKind.BED: BED_KEYS,
    DeviceKind.MOTION: MOTION_KEYS,
}
"""What each kind reads besides battery and tamper: a device sending none of it is mute."""
_NOT_SAID = frozenset({"packet_id", "signal_strength"})
"""Keys `bthome-ble` fills in for every frame: not something the device said."""


def _without_postfix(key: str) -> str:
    """`opening_2` -> `opening`: `bthome-ble` numbers the objects of a type a frame carries twice."""
    base, _, number = key.rpartition("_")
    return base if base and number.isdigit() else key


@dataclass(frozen=True)
class _Carried:
    """What one frame carried: binary states by key (postfix removed; several of one key read
    as on if any is) and measurements by key."""

    binary: dict[str, bool]
    sensors: dict[str, object]


class _FrameValues:
    """Picks out the values one frame carried from a `bthome-ble` SensorUpdate.

    A SensorUpdate hands back every value the library has ever parsed for the device (its
    `entity_values` and `binary_entity_values` accumulate, for Home Assistant's sake), so a
    window seen an hour ago would still look open in a frame that carries opening only. The
    library makes a new value object for each object it parses, so the values this frame
    carried are those that are not the very objects seen after the previous update."""

    def __init__(self) -> None:
        self._binary: dict[DeviceKey, BinarySensorValue] = {}
        self._sensors: dict[DeviceKey, SensorValue] = {}

    def carried(self, update: SensorUpdate) -> _Carried:
        binary: dict[str, bool] = {}
        for device_key, value in update.binary_entity_values.items():
            if self._binary.get(device_key) is not value and value.native_value is not None:
                key = _without_postfix(device_key.key)
                binary[key] = binary.get(key, False) or bool(value.native_value)
        sensors: dict[str, object] = {_without_postfix(device_key.key): value.native_value
                                      for device_key, value in update.entity_values.items()
                                      if self._sensors.get(device_key) is not value}
        self._binary, self._sensors = dict(update.binary_entity_values), dict(update.entity_values)
        return _Carried(binary, sensors)


def _button_number(key: str) -> int | None:
    """`button` -> 1, `button_2` -> 2, anything else -> None."""
    if key == "button":
        return 1
    prefix, _, number = key.partition("_")
    if prefix == "button" and number.isdigit():
        return int(number)
    return None


class BTHomeDevice:
    """One paired BTHome device: feed it that device's advertisements, get events back."""

    def __init__(self, device: PairedDevice, *, hub_id: str) -> None:
        if device.kind not in _DEVICE_TYPE:
            raise ValueError(f"{device.kind} devices do not speak BTHome")
        # Fail at pairing, not at the first alarm, if the ids cannot go into a message.
        DeviceEvent.new(hub_id=hub_id, device_id=device.device_id, device_type=_DEVICE_TYPE[device.kind],
                        code=EventCode.DEVICE_FAULT, source_ts=utc_now())
        self.device = device
        self.device_type = _DEVICE_TYPE[device.kind]
        self.hub_id = hub_id
        self.last_seen: datetime | None = None
        self.battery_pct: int | None = None
        self.rejected: Counter[Rejection] = Counter()
        self.state_check = StateCheck(device.kind, KIND_READS[device.kind])
        """Accepted frames with no state this kind reads (`state_check.unread_reports`), and the fault."""
        self._data = BTHomeBluetoothDeviceData(bindkey=device.bindkey)
        self._states: dict[str, bool] = {}
        self._values = _FrameValues()
        self._last_frame: bytes | None = None
        self._last_counter: int | None = None
        self._last_parsed_at: float | None = None
        self._recent: deque[bytes] = deque(maxlen=RECENT_FRAMES)
        self.counter_resets = 0
        self.accepted = 0
        """Frames accepted (authentic, new and parsed): what supervision counts as hearing the device."""
        """How many times the device restarted its encryption counter (see the counter-reset rule)."""

    def reset_encryption_counter(self) -> None:
        """Accept the next encrypted frame whatever its counter (after a battery change on a
        device that restarts its counter). Replay protection resumes from that frame."""
        self._last_counter = None
        self._last_frame = None
        self._data.reset_encryption_counter()

    def decode(self, adv: Advertisement) -> list[DeviceEvent]:
        """The events in one advertisement; [] for a rejected or uneventful frame. Never raises."""
        try:
            return self._decode(adv)
        except Exception:  # the radio must never take the hub down; count it and move on
            _LOGGER.exception("%s: unexpected error decoding a BTHome frame", self.device.device_id)
            self._reject(Rejection.UNDECODABLE)
            return []

    def _reject(self, reason: Rejection) -> list[DeviceEvent]:
        self.rejected[reason] += 1
        _LOGGER.debug("%s: BTHome frame rejected: %s", self.device.device_id, reason)
        return []

    def _decode(self, adv: Advertisement) -> list[DeviceEvent]:
        raw = next((v for k, v in adv.service_data.items() if k.lower() == BTHOME_SERVICE_UUID), None)
        if not isinstance(raw, bytes | bytearray) or not raw or raw[0] >> 5 != BTHOME_VERSION:
            return self._reject(Rejection.NOT_BTHOME)
        raw = bytes(raw)
        encrypted = bool(raw[0] & _INFO_ENCRYPTED)
        header = 7 if raw[0] & _INFO_MAC_INCLUDED else 1
        counter: int | None = None
        if encrypted:
            if self.device.bindkey is None:
                return self._reject(Rejection.NO_KEY)
            if len(raw) < header + _MIN_CIPHERTEXT + _COUNTER_AND_MIC:
                return self._reject(Rejection.UNDECODABLE)
            counter = int.from_bytes(raw[-8:-4], "little")
        elif self.device.bindkey is not None:
            return self._reject(Rejection.DOWNGRADE)
        if raw == self._last_frame:
            return self._reject(Rejection.DUPLICATE)
        if counter is not None and hashlib.sha256(raw).digest() in self._recent:
            return self._reject(Rejection.REPLAYED_COUNTER)  # also after a counter reset lowered the base
        reset_from: int | None = None
        if counter is not None and self._last_counter is not None and counter <= self._last_counter:
            if counter >= COUNTER_RESET_CEILING or counter == self._last_counter:
                return self._reject(Rejection.REPLAYED_COUNTER)
            # Perhaps a restarted counter: let bthome-ble accept it, then require it to authenticate.
            reset_from = self._last_counter
            self._data.reset_encryption_counter()

        info = BluetoothServiceInfoBleak(
            name=adv.address, address=adv.address, rssi=adv.rssi, manufacturer_data={},
            service_data={BTHOME_SERVICE_UUID: raw}, service_uuids=[BTHOME_SERVICE_UUID], source="local",
            device=None,  # type: ignore[arg-type]  # only needed to connect; bthome-ble never reads it
            advertisement=None, connectable=False, time=adv.monotonic, tx_power=None, raw=None,
        )
        update = self._data.update(info)
        carried = self._values.carried(update)

        if counter is not None:
            if self._data.decryption_failed or self._data.encryption_counter != counter:
                return self._reject(Rejection.DECRYPTION_FAILED)
            self._last_counter = counter  # authenticated: the device really sent this counter
            self._recent.append(hashlib.sha256(raw).digest())
        reset: list[DeviceEvent] = []
        if reset_from is not None and counter is not None:
            reset = [self._counter_reset(reset_from, counter, adv)]
        if self._data.last_service_info is not info:
            # Authentic (or plain) but nothing parsed: bthome-ble's own stale-packet filter
            # (within its 4 s window), or no object it knows.
            recent = (self._last_parsed_at is not None
                      and adv.monotonic - self._last_parsed_at <= BTHOME_BLE_PACKET_WINDOW_S)
            starts_with_packet_id = encrypted or raw[header:header + 1] == b"\x00"
            if counter is not None:
                self._last_frame = raw  # authentic: its repeats are duplicates, not replays
            self._reject(Rejection.DUPLICATE if recent and starts_with_packet_id else Rejection.UNDECODABLE)
            return reset

        self._last_frame = raw
        self._last_parsed_at = adv.monotonic
        self.last_seen = adv.received_at
        self.accepted += 1
        events = self._events(update, carried, adv)
        return reset + events + self._mute(update, carried, adv)

    def _mute(self, update: SensorUpdate, carried: _Carried, adv: Advertisement) -> list[DeviceEvent]:
        """One `DEVICE_FAULT` when the device has proved to send nothing its kind reads."""
        reads = KIND_READS[self.device.kind]
        events = {_without_postfix(key.key) for key in update.events}
        said = {key for key in carried.binary if key not in _COMMON_KEYS} | events
        read = any(key in said for key in reads)
        sent = said | set(carried.binary) | set(carried.sensors) - _NOT_SAID
        detail = self.state_check.observe(read=read, unread=bool(said) and not read, sent=sent)
        if detail is None:
            return []
        _LOGGER.error("%s: a %s that sends none of the states a %s reads (%s); it sent %s", self.device.device_id,
                      self.device.kind, self.device.kind, detail["reads"], detail["sent"])
        return [DeviceEvent.new(hub_id=self.hub_id, device_id=self.device.device_id, device_type=self.device_type,
                                code=EventCode.DEVICE_FAULT, source_ts=adv.received_at, detail=detail)]

    def _counter_reset(self, last_counter: int, counter: int, adv: Advertisement) -> DeviceEvent:
        """The device restarted its encryption counter (an authenticated frame says so): tell the centre once."""
        self.counter_resets += 1
        _LOGGER.warning("%s: encryption counter went back from %d to %d (battery change?); accepted as the new base",
                        self.device.device_id, last_counter, counter)
        return DeviceEvent.new(hub_id=self.hub_id, device_id=self.device.device_id,
                               device_type=_DEVICE_TYPE[self.device.kind], code=EventCode.DEVICE_FAULT,
                               source_ts=adv.received_at,
                               detail={"fault": "encryption_counter_reset", "last_counter": last_counter,
                                       "counter": counter})

    def _events(self, update: SensorUpdate, carried: _Carried, adv: Advertisement) -> list[DeviceEvent]:
        packet_id = self._data.packet_id
        base: Detail = {} if packet_id is None else {"packet_id": int(packet_id)}
        events: list[DeviceEvent] = []

        def emit(device_type: DeviceType, code: EventCode, detail: Detail) -> None:
            events.append(DeviceEvent.new(hub_id=self.hub_id, device_id=self.device.device_id,
                                          device_type=device_type, code=code, source_ts=adv.received_at,
                                          detail={**base, **detail}))

        if self.device.kind is DeviceKind.PENDANT:
            for event_key, event in update.events.items():
                number = _button_number(event_key.key)
                if number is not None:
                    device_type, code = self._button_event(number, event.event_type)
                    press = _PRESS_NAMES.get(event.event_type, event.event_type)
                    emit(device_type, code, {"button": number, "press": press})

        value = carried.sensors.get("battery")
        if isinstance(value, int | float) and math.isfinite(value) and 0 <= value <= 100:
            self.battery_pct = int(value)

        device_type = _DEVICE_TYPE[self.device.kind]
        binary = carried.binary
        for state, keys, kinds, on_true, on_false in _STATES:
            if self.device.kind not in kinds:
                continue
            values = [binary[key] for key in keys if key in binary]
            if not values:
                continue
            value = any(values)
            if self._states.get(state) is value:
                continue
            self._states[state] = value
            state_code = on_true if value else on_false
            if state_code is None:
                continue
            detail: Detail = {}
            if state == "battery" and self.battery_pct is not None:
                detail["battery_pct"] = self.battery_pct
            emit(device_type, state_code, detail)
        return events

    @staticmethod
    def _button_event(number: int, event_type: str) -> tuple[DeviceType, EventCode]:
        cancel = event_type == _LONG_PRESS
        if number == FALL_CHANNEL:
            return DeviceType.FALL_DETECTOR, EventCode.FALL_CANCELLED if cancel else EventCode.FALL_DETECTED
        return DeviceType.PERSONAL_TRIGGER, EventCode.ALARM_CANCELLED if cancel else EventCode.MANUAL_ALARM
