"""BTHome motion sensors, and the encryption-counter reset after a battery change: one
DEVICE_FAULT that reaches the centre, the device accepted from its new counter, replays still
rejected. Real frames from firmware_stubs, encrypted with the device's bind key."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from firmware_stubs import pendant
from firmware_stubs.bthome import (
    BTHOME_SERVICE_UUID,
    MIC_LENGTH,
    BTHomeValues,
    Transmitter,
    device_info,
    encode_objects,
    nonce,
)
from hub_agent.agent import HubAgent
from hub_agent.bthome import BTHomeDevice, Rejection
from hub_agent.devices import DeviceKind, PairedDevice
from hub_agent.radio import Advertisement
from hub_agent.uplink import Uplink
from monitoring_centre.broker import BrokerAccount, Mosquitto
from telecare_protocol import DeviceEvent, DeviceType, EventCode
from telecare_protocol.topics import topic_for
from tests.support.helpers import Inbox, close, mqtt_client, subscribe

ADDRESS = "A4:C1:38:00:00:01"
MAC = bytes.fromhex("A4C138000001")
KEY = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932")
OBJ_MOTION = 0x21
T0 = datetime(2025, 1, 6, 3, 0, tzinfo=UTC)


class Radio:
    def __init__(self) -> None:
        self.t = 1000.0

    def adv(self, frame: bytes, after: float = 5.0) -> Advertisement:
        self.t += after
        return Advertisement(address=ADDRESS, service_data={BTHOME_SERVICE_UUID: frame}, rssi=-70,
                             received_at=T0 + timedelta(seconds=self.t), monotonic=self.t)


def motion_frame(packet_id: int, motion: bool, *, key: bytes | None = None, counter: int = 0) -> bytes:
    """A BTHome motion sensor's frame: packet id, battery, motion (0x21), in object-id order."""
    objects = encode_objects(BTHomeValues(packet_id=packet_id, battery_pct=77)) + bytes((OBJ_MOTION, int(motion)))
    if key is None:
        return bytes((device_info(encrypted=False, trigger_based=True),)) + objects
    info = device_info(encrypted=True, trigger_based=True)
    sealed = AESCCM(key, tag_length=MIC_LENGTH).encrypt(nonce(MAC, info, counter), objects, None)
    return bytes((info,)) + sealed[:-MIC_LENGTH] + counter.to_bytes(4, "little") + sealed[-MIC_LENGTH:]


def codes(events: list[DeviceEvent]) -> list[EventCode]:
    return [e.code for e in events]


# --- motion -------------------------------------------------------------------------------


def test_motion_is_activity_from_a_motion_sensor() -> None:
    dev = BTHomeDevice(PairedDevice("motion-1", ADDRESS, DeviceKind.MOTION, bindkey=KEY), hub_id="hub-1")
    radio = Radio()
    moved = dev.decode(radio.adv(motion_frame(1, True, key=KEY, counter=10)))
    activity = [e for e in moved if e.code is EventCode.ACTIVITY]
    assert len(activity) == 1 and activity[0].device_type is DeviceType.MOTION_SENSOR
    assert activity[0].detail == {"packet_id": 1}
    assert codes(dev.decode(radio.adv(motion_frame(2, False, key=KEY, counter=11)))) == []  # cleared: nothing
    assert codes(dev.decode(radio.adv(motion_frame(3, True, key=KEY, counter=12)))) == [EventCode.ACTIVITY]
    assert dev.battery_pct == 77


def test_motion_object_from_other_kinds_is_ignored() -> None:
    dev = BTHomeDevice(PairedDevice("door-1", ADDRESS, DeviceKind.DOOR), hub_id="hub-1")
    assert EventCode.ACTIVITY not in codes(dev.decode(Radio().adv(motion_frame(1, True))))


# --- counter reset ------------------------------------------------------------------------


def worn_pendant(counter: int) -> pendant.Pendant:
    return pendant.Pendant(Transmitter(MAC, key=KEY, packet_id=counter % 256, counter=counter))


def test_battery_change_is_one_fault_and_the_device_is_heard_again() -> None:
    dev, radio = BTHomeDevice(PairedDevice("pendant-1", ADDRESS, DeviceKind.PENDANT, bindkey=KEY),
                              hub_id="hub-1"), Radio()
    before = worn_pendant(counter=5000)
    recorded = []
    for _ in range(5):
        before, frame = pendant.status(before)
        recorded.append(frame)
        dev.decode(radio.adv(frame))
    assert not dev.rejected

    after = worn_pendant(counter=0)  # new battery: the counter restarts at 0
    after, press = pendant.help_press(after, now=1.0)
    events = dev.decode(radio.adv(press))
    assert codes(events)[:2] == [EventCode.DEVICE_FAULT, EventCode.MANUAL_ALARM]  # the press is not lost
    fault = events[0]
    assert fault.detail == {"fault": "encryption_counter_reset", "last_counter": 5004, "counter": 0}
    assert (fault.device_id, fault.device_type) == ("pendant-1", DeviceType.PERSONAL_TRIGGER)
    assert dev.decode(radio.adv(press, after=0.1)) == []  # its repeats are duplicates, not new resets

    for _ in range(3):  # the new sequence is accepted, with no further fault
        after, frame = pendant.status(after)
        assert EventCode.DEVICE_FAULT not in codes(dev.decode(radio.adv(frame)))
    assert dev.last_seen is not None and dev.counter_resets == 1

    # Replays of frames recorded before the battery change, above the new counter: rejected, counted.
    for old in recorded:
        assert dev.decode(radio.adv(old)) == []
    assert dev.rejected == {Rejection.DUPLICATE: 1, Rejection.REPLAYED_COUNTER: 5}
    assert dev.counter_resets == 1


def test_forged_low_counter_is_not_a_reset() -> None:
    dev, radio = BTHomeDevice(PairedDevice("pendant-1", ADDRESS, DeviceKind.PENDANT, bindkey=KEY),
                              hub_id="hub-1"), Radio()
    device = worn_pendant(counter=9000)
    device, frame = pendant.status(device)
    dev.decode(radio.adv(frame))
    forged = pendant.help_press(pendant.Pendant(Transmitter(MAC, key=bytes(range(16)), counter=0)), now=0.0)[1]
    assert dev.decode(radio.adv(forged)) == []
    assert dev.rejected == {Rejection.DECRYPTION_FAILED: 1} and dev.counter_resets == 0
    device, frame = pendant.help_press(device, now=2.0)  # the real pendant carries on from 9001
    assert codes(dev.decode(radio.adv(frame)))[0] is EventCode.MANUAL_ALARM


def test_counter_reset_fault_reaches_the_centre(mosquitto: Mosquitto, broker_accounts: dict[str, BrokerAccount],
                                                ) -> None:
    centre = mqtt_client(mosquitto, broker_accounts["centre"])
    inbox = Inbox()
    centre.on_message = inbox.on_message
    subscribe(centre, topic_for("hub-1", "event"))
    agent = HubAgent("hub-1", [PairedDevice("pendant-1", ADDRESS, DeviceKind.PENDANT, bindkey=KEY)],
                     Uplink(hub_id="hub-1", password=broker_accounts["hub-1"].password, host=mosquitto.host,
                            port=mosquitto.port))
    agent.uplink.start()
    try:
        radio = Radio()
        old = worn_pendant(counter=7000)
        old, frame = pendant.status(old)
        fresh = replace(worn_pendant(counter=3), battery_pct=100)
        fresh, restarted = pendant.status(fresh)
        for advert in (radio.adv(frame), radio.adv(restarted)):
            for message in agent.handle(advert):
                agent.send(message)

        def faults(messages: list[tuple[str, bytes]]) -> list[dict[str, object]]:
            return [e for _, p in messages if (e := json.loads(p))["code"] == "device_fault"]

        assert inbox.wait_for(lambda messages: len(faults(messages)) == 1)
        (event,) = faults(inbox.messages)
        assert event["device_id"] == "pendant-1"
        assert event["detail"] == {"fault": "encryption_counter_reset", "last_counter": 7000, "counter": 3}
    finally:
        agent.uplink.stop(timeout=5)
        close(centre)
