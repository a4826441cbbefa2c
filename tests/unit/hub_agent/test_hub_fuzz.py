"""Any bytes at all, as BTHome service data, PLX notifications or Zigbee2MQTT payloads, go
through `HubAgent.handle` without raising; a frame that produces nothing and is not accepted
is counted in `agent.rejected`."""

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub_agent.agent import HubAgent
from hub_agent.devices import DeviceKind, PairedDevice
from hub_agent.plx import CONTINUOUS_UUID, SPOT_CHECK_UUID
from hub_agent.radio import Advertisement, GattNotification, ZigbeeReport
from hub_agent.uplink import Uplink
from hub_agent.zigbee import ZigbeeDevice
from tests.support.examples import property_examples

KEY = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932")
PLAIN = PairedDevice("pendant-1", "A4:C1:38:00:00:01", DeviceKind.PENDANT)
KEYED = PairedDevice("motion-1", "A4:C1:38:00:00:02", DeviceKind.MOTION, bindkey=KEY)
OXIMETER = PairedDevice("oximeter-1", "A4:C1:38:00:00:04", DeviceKind.OXIMETER)
AT = datetime(2025, 1, 6, 3, 0, tzinfo=UTC)
BTHOME = "0000fcd2-0000-1000-8000-00805f9b34fb"


def make_agent() -> HubAgent:
    return HubAgent("hub-1", [PLAIN, KEYED, OXIMETER],
                    Uplink(hub_id="hub-1", password="not-started-here", host="127.0.0.1", port=1),
                    zigbee_devices=[ZigbeeDevice("door-2", "front_door", DeviceKind.DOOR)])


AGENT = make_agent()


def accounted(before_rejected: int, accepted_before: int, messages: list[object], accepted_after: int) -> bool:
    """Every frame is either turned into messages, rejected and counted, or accepted (a status frame)."""
    return bool(messages) or sum(AGENT.rejected.values()) > before_rejected or accepted_after > accepted_before


@settings(max_examples=property_examples(400), suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=40), keyed=st.booleans(), version_2=st.booleans())
def test_any_service_data_is_handled_or_counted(data: bytes, keyed: bool, version_2: bool) -> None:
    if version_2 and data:
        data = bytes((0x40 | (data[0] & 0x1F),)) + data[1:]  # reach past the version check often
    device = KEYED if keyed else PLAIN
    decoder = AGENT.bthome[device.address]
    before, accepted = sum(AGENT.rejected.values()), decoder.accepted
    messages = AGENT.handle(Advertisement(address=device.address, service_data={BTHOME: data}, rssi=-70,
                                          received_at=AT, monotonic=1.0))
    assert accounted(before, accepted, list(messages), decoder.accepted)


@settings(max_examples=property_examples(400))
@given(data=st.binary(max_size=30), spot=st.booleans())
def test_any_plx_notification_is_readings_or_counted(data: bytes, spot: bool) -> None:
    before = sum(AGENT.rejected.values())
    messages = AGENT.handle(GattNotification(address=OXIMETER.address, characteristic=SPOT_CHECK_UUID if spot
                                             else CONTINUOUS_UUID, data=data, received_at=AT, monotonic=1.0))
    if messages:
        assert {m.type for m in messages} <= {"reading", "event"}
    else:
        assert sum(AGENT.rejected.values()) == before + 1


@settings(max_examples=property_examples(300))
@given(payload=st.one_of(st.binary(max_size=60), st.text(max_size=60).map(str.encode),
                         st.dictionaries(st.sampled_from(["contact", "battery", "battery_low", "tamper", "occupancy"]),
                                         st.one_of(st.booleans(), st.integers(), st.floats(), st.text(max_size=5),
                                                   st.none())).map(lambda d: str(d).replace("'", '"').encode())),
       availability=st.booleans())
def test_any_zigbee_payload_never_raises(payload: bytes, availability: bool) -> None:
    messages = AGENT.handle(ZigbeeReport(friendly_name="front_door", payload=payload, received_at=AT, monotonic=1.0,
                                         availability=availability))
    assert all(m.type == "event" for m in messages)


def test_fuzzing_really_reaches_the_rejection_counters() -> None:
    agent = make_agent()
    agent.handle(Advertisement(address=KEYED.address, service_data={BTHOME: b"\x41" + bytes(12)}, rssi=-70,
                               received_at=AT, monotonic=1.0))
    agent.handle(GattNotification(address=OXIMETER.address, characteristic=CONTINUOUS_UUID, data=b"\x1f",
                                  received_at=AT, monotonic=1.0))
    agent.handle(ZigbeeReport(friendly_name="front_door", payload=b"{", received_at=AT, monotonic=1.0))
    assert agent.rejected == {"bthome_decryption_failed": 1, "plx_bad_frame": 1, "zigbee_malformed_json": 1}
