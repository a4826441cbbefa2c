"""Zigbee devices through the home's own Zigbee2MQTT broker.

Zigbee2MQTT (a USB coordinator on the hub) publishes each device's state as a JSON object
on `zigbee2mqtt/<friendly name>` and its reachability on `zigbee2mqtt/<friendly name>/availability`.
That broker is LOCAL to the home (usually a Mosquitto on the hub itself), distinct from the
centre's: `ZigbeeLink` subscribes to it for the configured devices only and hands each
message to the agent's radio queue as a `hub_agent.radio.ZigbeeReport`; `ZigbeeDecoder`
(pure, one per device) turns reports into protocol events, like `BTHomeDevice` does for BLE.

Mapping (Zigbee2MQTT "exposes"; a message carrying several of one kind's properties reads as
one state, on if any says so):
* Door sensors: `contact` and `garage_door_contact`: **true means CLOSED** (the reed switch is in
  contact), the reverse of BTHome's `opening`; `window_open`: true means open; `door_state` and
  `window` (text): "open", "opened" or "error_forced_open" open, "closed" or "close" closed
  (any case; others such as "error_jammed" say nothing) -> DOOR_OPENED / DOOR_CLOSED.
* `occupancy` or `presence`: a bed sensor -> BED_OCCUPIED / BED_VACATED; a motion sensor ->
  ACTIVITY when it becomes true (clearing produces nothing).
* Pendants (SOS buttons, pull cords): every message with a non-empty `action` (Zigbee2MQTT
  never caches it, so each one is a press) -> MANUAL_ALARM, whatever the action ("single",
  "hold", "emergency": "if in doubt, go out"); `sos` becoming true -> MANUAL_ALARM; one alarm
  per message.
* `battery_low` -> BATTERY_LOW / BATTERY_OK; a device that only reports `battery` (percent)
  is low at or below 20 %, as our BTHome devices. `battery` also feeds the heartbeat.
* `tamper` -> TAMPER / TAMPER_CLEARED.
* availability (`{"state": "online"|"offline"}`, or the legacy plain `online` / `offline`)
  -> DEVICE_NOT_SEEN when the device goes offline, DEVICE_SEEN_AGAIN when it comes back.
  Zigbee2MQTT's own availability tracking (per device timeouts, pings for mains devices)
  supervises Zigbee devices; the hub's `Supervisor` watches the BLE ones.

State events go out when the state changes or is first seen (Zigbee2MQTT repeats the whole
state object on every update, so most messages produce nothing). Malformed JSON, a payload
that is not an object, and values of the wrong type are counted in `rejected`, never raised.
A door, bed or motion sensor whose messages carry states (true/false properties other than
`battery_low` and `tamper`, or an open/closed text) but none its kind reads is mute:
`hub_agent.devices.StateCheck` counts those messages and sends one `DEVICE_FAULT`
(`fault = "no_state_for_kind"`). A message of measurements and battery only (Zigbee2MQTT
without `cache_state` sends battery reports alone) is neither read nor unread. Pendants are
not checked that way: a button's configuration flags are true/false properties too, and its
`action` appears only when pressed.
The link itself reports a lost local broker or Zigbee2MQTT bridge (`zigbee2mqtt/bridge/state`
offline) through `on_fault`, once per outage, and reconnects on its own.
"""

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hub_agent.devices import DeviceKind, StateCheck
from hub_agent.radio import ZigbeeReport
from telecare_protocol.codes import DeviceType, EventCode
from telecare_protocol.messages import DeviceEvent

log = logging.getLogger(__name__)

DEFAULT_BASE_TOPIC = "zigbee2mqtt"
LOW_BATTERY_PCT = 20
"""Battery low at or below this percentage when a device reports no `battery_low` (as firmware_stubs)."""

_DEVICE_TYPE = {
    DeviceKind.DOOR: DeviceType.DOOR_SENSOR,
    DeviceKind.BED: DeviceType.BED_MONITOR,
    DeviceKind.MOTION: DeviceType.MOTION_SENSOR,
    DeviceKind.PENDANT: DeviceType.PERSONAL_TRIGGER,
}
Detail = dict[str, str | int | float | bool]

CLOSED_WHEN_TRUE = ("contact", "garage_door_contact")
"""Zigbee2MQTT's door properties that are true when the door is CLOSED."""
OPEN_WHEN_TRUE = ("window_open",)
OPEN_CLOSED_TEXT = ("door_state", "window")
"""Door properties Zigbee2MQTT publishes as text ("open" / "closed", by device)."""
OPEN_WORDS = frozenset({"open", "opened", "error_forced_open"})
CLOSED_WORDS = frozenset({"closed", "close"})
OCCUPANCY = ("occupancy", "presence")
PENDANT_PROPERTIES = ("action", "sos")
KIND_READS: dict[DeviceKind, tuple[str, ...]] = {
    DeviceKind.DOOR: (*CLOSED_WHEN_TRUE, *OPEN_WHEN_TRUE, *OPEN_CLOSED_TEXT),
    DeviceKind.BED: OCCUPANCY, DeviceKind.MOTION: OCCUPANCY, DeviceKind.PENDANT: PENDANT_PROPERTIES,
}
"""The properties each kind reads besides battery and tamper."""


@dataclass(frozen=True)
class ZigbeeDevice:
    """One Zigbee device paired with the home's Zigbee2MQTT."""

    device_id: str
    friendly_name: str
    kind: DeviceKind
    location: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in _DEVICE_TYPE:
            raise ValueError(f"{self.kind} devices are not read from Zigbee2MQTT")
        if not self.friendly_name or any(c in self.friendly_name for c in "+#") \
                or self.friendly_name.startswith("bridge") or self.friendly_name.endswith("/availability"):
            raise ValueError(f"{self.friendly_name!r} is not a usable Zigbee2MQTT friendly name")


def _availability(payload: bytes) -> bool | None:
    """True online, False offline, None unreadable."""
    text = payload.decode("utf-8", errors="replace").strip()
    if text in ("online", "offline"):
        return text == "online"
    try:
        value = json.loads(text)
    except ValueError:
        return None
    state = value.get("state") if isinstance(value, dict) else None
    return state == "online" if state in ("online", "offline") else None


class ZigbeeDecoder:
    """One Zigbee2MQTT device: its reports in, protocol events out. Never raises."""

    def __init__(self, device: ZigbeeDevice, *, hub_id: str) -> None:
        self.device = device
        self.hub_id = hub_id
        self.device_type = _DEVICE_TYPE[device.kind]
        self.last_seen: datetime | None = None
        self.battery_pct: int | None = None
        self.available: bool | None = None
        self.rejected: Counter[str] = Counter()
        self.state_check = StateCheck(device.kind, KIND_READS[device.kind])
        """Messages with no property this kind reads (`state_check.unread_reports`), and the fault."""
        self._states: dict[str, bool] = {}

    def decode(self, report: ZigbeeReport) -> list[DeviceEvent]:
        try:
            if report.availability:
                return self._availability(report)
            return self._state(report)
        except Exception:  # a strange payload must never take the hub down
            log.exception("%s: unexpected error reading a Zigbee2MQTT message", self.device.device_id)
            self.rejected["undecodable"] += 1
            return []

    def _event(self, code: EventCode, at: datetime, detail: Detail | None = None) -> DeviceEvent:
        return DeviceEvent.new(hub_id=self.hub_id, device_id=self.device.device_id, device_type=self.device_type,
                               code=code, source_ts=at, detail=detail or {})

    def _availability(self, report: ZigbeeReport) -> list[DeviceEvent]:
        online = _availability(report.payload)
        if online is None:
            self.rejected["bad_availability"] += 1
            return []
        previous, self.available = self.available, online
        if online:
            self.last_seen = report.received_at
            return [self._event(EventCode.DEVICE_SEEN_AGAIN, report.received_at)] if previous is False else []
        if previous is False:
            return []
        return [self._event(EventCode.DEVICE_NOT_SEEN, report.received_at, {"source": "zigbee2mqtt"})]

    def _state(self, report: ZigbeeReport) -> list[DeviceEvent]:
        try:
            state = json.loads(report.payload)
        except ValueError:
            self.rejected["malformed_json"] += 1
            return []
        if not isinstance(state, dict):
            self.rejected["not_an_object"] += 1
            return []
        self.last_seen = report.received_at
        events: list[DeviceEvent] = []

        def flag(key: str) -> bool | None:
            value = state.get(key)
            if value is None:
                return None
            if not isinstance(value, bool):
                self.rejected[f"bad_{key}"] += 1
                return None
            return value

        def changed(key: str, value: bool | None) -> bool:
            if value is None or self._states.get(key) is value:
                return False
            self._states[key] = value
            return True

        def text(key: str) -> bool | None:
            """True for an open word, False for a closed one, None otherwise."""
            value = state.get(key)
            if value is None:
                return None
            if not isinstance(value, str):
                self.rejected[f"bad_{key}"] += 1
                return None
            word = value.strip().lower()
            return True if word in OPEN_WORDS else False if word in CLOSED_WORDS else None

        def any_of(values: list[bool | None]) -> bool | None:
            known = [value for value in values if value is not None]
            return any(known) if known else None

        battery = state.get("battery")
        if isinstance(battery, int | float) and not isinstance(battery, bool) and 0 <= battery <= 100:
            self.battery_pct = int(battery)
        elif battery is not None:
            self.rejected["bad_battery"] += 1

        at = report.received_at
        kind = self.device.kind
        read = False
        if kind is DeviceKind.DOOR:
            closed = [flag(key) for key in CLOSED_WHEN_TRUE]
            is_open = any_of([None if value is None else not value for value in closed]
                             + [flag(key) for key in OPEN_WHEN_TRUE] + [text(key) for key in OPEN_CLOSED_TEXT])
            read = is_open is not None
            if changed("door", is_open):
                events.append(self._event(EventCode.DOOR_OPENED if is_open else EventCode.DOOR_CLOSED, at))
        if kind in (DeviceKind.BED, DeviceKind.MOTION):
            occupancy = any_of([flag(key) for key in OCCUPANCY])
            read = occupancy is not None
            if changed("occupancy", occupancy):
                if kind is DeviceKind.BED:
                    events.append(self._event(EventCode.BED_OCCUPIED if occupancy else EventCode.BED_VACATED, at))
                elif occupancy:
                    events.append(self._event(EventCode.ACTIVITY, at))
        if kind is DeviceKind.PENDANT:
            read = any(key in state for key in PENDANT_PROPERTIES)
            action = state.get("action")
            if action is not None and not isinstance(action, str):
                self.rejected["bad_action"] += 1
            sos = flag("sos")
            sos_raised = changed("sos", sos) and sos is True
            pressed: Detail = {"action": action.strip()} if isinstance(action, str) and action.strip() else {}
            if pressed or sos_raised:
                events.append(self._event(EventCode.MANUAL_ALARM, at, pressed or {"sos": True}))
        low = flag("battery_low")
        if low is None and self.battery_pct is not None and "battery" in state:
            low = self.battery_pct <= LOW_BATTERY_PCT
        if changed("battery_low", low):
            detail: Detail = {} if self.battery_pct is None else {"battery_pct": self.battery_pct}
            events.append(self._event(EventCode.BATTERY_LOW if low else EventCode.BATTERY_OK, at, detail))
        tamper = flag("tamper")
        if changed("tamper", tamper):
            events.append(self._event(EventCode.TAMPER if tamper else EventCode.TAMPER_CLEARED, at))
        said = [key for key, value in state.items()
                if (isinstance(value, bool) and key not in ("battery_low", "tamper")) or key in OPEN_CLOSED_TEXT]
        fault = self.state_check.observe(read=read, unread=bool(said) and not read and kind is not DeviceKind.PENDANT,
                                         sent=(key for key in state if key != "linkquality"))
        if fault is not None:
            log.error("%s: a Zigbee %s that sends none of the properties a %s reads (%s); it sent %s",
                      self.device.device_id, kind, kind, fault["reads"], fault["sent"])
            events.append(self._event(EventCode.DEVICE_FAULT, at, fault))
        return events


@dataclass(frozen=True)
class BrokerSettings:
    """The home's Zigbee2MQTT broker (not the centre's)."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    base_topic: str = DEFAULT_BASE_TOPIC


class ZigbeeLink:
    """Subscribes to the local Zigbee2MQTT broker and hands each device message to `sink`.

    `sink` is called from paho's network thread: give it something thread-safe (the agent
    passes `loop.call_soon_threadsafe(queue.put_nowait, ...)`)."""

    def __init__(self, broker: BrokerSettings, devices: Iterable[ZigbeeDevice], sink: Callable[[ZigbeeReport], object],
                 *, on_fault: Callable[[str], None] | None = None, client_id: str = "telecare-hub") -> None:
        self.broker = broker
        self._sink = sink
        self._on_fault = on_fault
        base = broker.base_topic.rstrip("/")
        self._topics: dict[str, tuple[str, bool]] = {}
        for device in devices:
            self._topics[f"{base}/{device.friendly_name}"] = (device.friendly_name, False)
            self._topics[f"{base}/{device.friendly_name}/availability"] = (device.friendly_name, True)
        self._bridge_topic = f"{base}/bridge/state"
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        """Set once the broker has acknowledged the subscriptions (after each connection)."""
        self._stopping = threading.Event()
        self.faulted = False
        self.messages = 0
        self.rejected: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{client_id}-zigbee", protocol=mqtt.MQTTv311,
                                  clean_session=True)
        if broker.username:
            self.client.username_pw_set(broker.username, broker.password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_connect_fail = self._on_connect_fail

    def start(self) -> None:
        """Connect in the background (and keep reconnecting); never raises for an absent broker."""
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self._stopping.set()
        self.client.disconnect()
        self.client.loop_stop()

    def _fault(self, text: str) -> None:
        with self._lock:
            if self.faulted:
                return
            self.faulted = True
        log.error("Zigbee2MQTT: %s", text)
        if self._on_fault is not None:
            self._on_fault(text)

    def _restored(self, text: str) -> None:
        with self._lock:
            was, self.faulted = self.faulted, False
        if was:
            log.warning("Zigbee2MQTT: %s", text)

    def _on_connect(self, client: mqtt.Client, _userdata: object, _flags: object, reason: Any,
                    _properties: object) -> None:
        if getattr(reason, "is_failure", False):
            self._fault(f"local broker {self.broker.host}:{self.broker.port} refused the hub: {reason}")
            return
        self.subscribed.clear()
        subscriptions = [(topic, 1) for topic in (*self._topics, self._bridge_topic)]
        client.subscribe(subscriptions)
        self.connected.set()
        self._restored("local broker connected")

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: object) -> None:
        self._fault(f"cannot reach the local broker {self.broker.host}:{self.broker.port}")

    def _on_disconnect(self, _client: mqtt.Client, _userdata: object, _flags: object, reason: object,
                       _properties: object) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        self.subscribed.clear()
        if was_connected and not self._stopping.is_set():
            self._fault(f"lost the local broker {self.broker.host}:{self.broker.port} ({reason})")

    def _on_subscribe(self, _client: mqtt.Client, _userdata: object, _mid: int, _codes: object,
                      _properties: object) -> None:
        self.subscribed.set()

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        payload = bytes(message.payload)
        if message.topic == self._bridge_topic:
            online = _availability(payload)
            if online is False:
                self._fault("the Zigbee2MQTT bridge is offline")
            elif online:
                self._restored("the Zigbee2MQTT bridge is online")
            return
        target = self._topics.get(message.topic)
        if target is None:
            self.rejected["unexpected_topic"] += 1
            return
        self.messages += 1
        name, availability = target
        try:
            self._sink(ZigbeeReport(friendly_name=name, payload=payload, received_at=datetime.now(UTC),
                                    monotonic=time.monotonic(), availability=availability))
        except Exception:
            log.exception("Zigbee2MQTT message for %s could not be queued", name)
