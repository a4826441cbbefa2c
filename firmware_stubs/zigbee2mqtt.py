"""What Zigbee2MQTT publishes for our Zigbee variants of the door and motion sensors.

Zigbee devices do not speak to the hub directly: Zigbee2MQTT, running beside the hub on a
USB coordinator, publishes each device's state as JSON on `zigbee2mqtt/<friendly name>` and
its availability (retained) on `zigbee2mqtt/<friendly name>/availability`. These functions
return (topic, payload) exactly as Zigbee2MQTT sends them, for tests of whatever reads them.

Field meanings (Zigbee2MQTT's exposes):

    contact      true = CLOSED, false = open. The reverse of BTHome "opening" (1 = open):
                 `contact_state` takes `is_open` and inverts it, so nobody else has to.
    occupancy    true = motion/occupancy detected (PIR)
    battery      percent, 0-100
    battery_low  true when the device reports a low battery
    tamper       true when the case is open
    linkquality  LQI, 0-255

Availability payload: `{"state": "online"}` / `{"state": "offline"}` (JSON, the default since
Zigbee2MQTT 1.x's `advanced.legacy_availability_payload: false`); with the legacy setting it is
the bare string `online` / `offline`. By default Zigbee2MQTT marks a mains device offline after
10 minutes of silence and a battery device after 25 hours (shared domain notes).
"""

import json
from dataclasses import dataclass

BASE_TOPIC = "zigbee2mqtt"
AVAILABILITY_SUFFIX = "/availability"
MAINS_OFFLINE_AFTER_S = 10 * 60
BATTERY_OFFLINE_AFTER_S = 25 * 3600
LINKQUALITY_MAX = 255


def _check_name(friendly_name: str) -> None:
    if not friendly_name or friendly_name != friendly_name.strip("/"):
        raise ValueError(f"friendly name {friendly_name!r} is empty or starts or ends with '/'")
    if "+" in friendly_name or "#" in friendly_name:
        raise ValueError(f"friendly name {friendly_name!r} contains an MQTT wildcard")


def state_topic(friendly_name: str) -> str:
    _check_name(friendly_name)
    return f"{BASE_TOPIC}/{friendly_name}"


def availability_topic(friendly_name: str) -> str:
    return state_topic(friendly_name) + AVAILABILITY_SUFFIX


@dataclass(frozen=True)
class Common:
    """The fields every battery Zigbee sensor of ours reports. None leaves a field out."""

    battery_pct: int | None = None
    battery_low: bool | None = None
    tamper: bool | None = None
    linkquality: int | None = None

    def __post_init__(self) -> None:
        if self.battery_pct is not None and not 0 <= self.battery_pct <= 100:
            raise ValueError(f"battery {self.battery_pct}% is outside 0-100")
        if self.linkquality is not None and not 0 <= self.linkquality <= LINKQUALITY_MAX:
            raise ValueError(f"linkquality {self.linkquality} is outside 0-255")

    def fields(self) -> dict[str, int | bool]:
        out: dict[str, int | bool] = {}
        for key, value in (("battery", self.battery_pct), ("battery_low", self.battery_low),
                           ("linkquality", self.linkquality), ("tamper", self.tamper)):
            if value is not None:
                out[key] = value
        return out


def contact_state(friendly_name: str, *, is_open: bool, common: Common = Common()) -> tuple[str, str]:
    """A contact (door) sensor's state message. Note `contact` is True when the door is CLOSED."""
    return state_topic(friendly_name), json.dumps({**common.fields(), "contact": not is_open}, sort_keys=True)


def occupancy_state(friendly_name: str, *, occupied: bool, common: Common = Common()) -> tuple[str, str]:
    """An occupancy (PIR motion) sensor's state message."""
    return state_topic(friendly_name), json.dumps({**common.fields(), "occupancy": occupied}, sort_keys=True)


def availability(friendly_name: str, *, online: bool, legacy: bool = False) -> tuple[str, str]:
    """The retained availability message: `{"state": "online"}` (or the bare legacy string)."""
    state = "online" if online else "offline"
    return availability_topic(friendly_name), state if legacy else json.dumps({"state": state})
