"""Per-device supervision on each device's own cadence, power transitions, and what the
heartbeat says. Time is driven by the test (an injected monotonic clock), never slept."""

from pathlib import Path

import pytest

from firmware_stubs import door, pendant
from firmware_stubs.bthome import BTHOME_SERVICE_UUID, Transmitter, mac_bytes
from hub_agent.agent import HubAgent
from hub_agent.devices import DeviceKind, PairedDevice
from hub_agent.power import FileSource, GpioSource, PowerMonitor
from hub_agent.radio import Advertisement
from hub_agent.supervision import Supervisor, silence_limit_s
from hub_agent.uplink import Uplink
from hub_agent.zigbee import ZigbeeDevice
from telecare_protocol import DeviceEvent, DeviceType, EventCode, Power
from telecare_protocol.messages import utc_now

PENDANT = PairedDevice("pendant-1", "A4:C1:38:00:00:01", DeviceKind.PENDANT, expected_interval_s=600)
DOOR = PairedDevice("door-1", "A4:C1:38:00:00:02", DeviceKind.DOOR, expected_interval_s=3600)


class Clock:
    def __init__(self) -> None:
        self.t = 50_000.0

    def __call__(self) -> float:
        return self.t


def codes(events: list[DeviceEvent]) -> list[tuple[str, EventCode]]:
    return [(e.device_id, e.code) for e in events]


def test_silence_limit_tolerates_one_missed_report() -> None:
    assert silence_limit_s(600) == 1260
    assert silence_limit_s(60) == 180


def test_sleepy_device_on_its_cadence_is_never_reported() -> None:
    clock = Clock()
    supervisor = Supervisor("hub-1", clock=clock)
    supervisor.watch("door-1", DeviceType.DOOR_SENSOR, 600)
    for _ in range(48):  # eight hours of 10-minute reports, each a little late
        clock.t += 600 + 30
        assert supervisor.check() == []
        assert supervisor.heard("door-1") == []


def test_silent_device_is_reported_once_and_seen_again_once() -> None:
    clock = Clock()
    supervisor = Supervisor("hub-1", clock=clock)
    supervisor.watch("door-1", DeviceType.DOOR_SENSOR, 600)
    supervisor.watch("pendant-1", DeviceType.PERSONAL_TRIGGER, 60)
    clock.t += 181
    (lost,) = supervisor.check()
    assert (lost.device_id, lost.code, lost.device_type) == ("pendant-1", EventCode.DEVICE_NOT_SEEN,
                                                             DeviceType.PERSONAL_TRIGGER)
    assert lost.detail == {"silent_s": 181.0, "expected_interval_s": 60}
    clock.t += 1100  # 1281 s: past the door's 1260 s
    assert codes(supervisor.check()) == [("door-1", EventCode.DEVICE_NOT_SEEN)]  # pendant not again
    assert codes(supervisor.heard("pendant-1")) == [("pendant-1", EventCode.DEVICE_SEEN_AGAIN)]
    assert supervisor.heard("pendant-1") == []
    assert supervisor.check() == []
    assert supervisor.heard("unknown") == []


def test_next_check_is_due_when_the_first_device_could_go_missing() -> None:
    clock = Clock()
    supervisor = Supervisor("hub-1", clock=clock)
    supervisor.watch("pendant-1", DeviceType.PERSONAL_TRIGGER, 10)
    assert silence_limit_s(10) == 80
    assert supervisor.next_check_in() == 60.0  # capped
    clock.t += 70
    assert supervisor.next_check_in() == 10.0
    clock.t += 9.5
    assert supervisor.next_check_in() == 1.0


def agent(clock: Clock, **kwargs: object) -> HubAgent:
    return HubAgent("hub-1", [PENDANT, DOOR], Uplink(hub_id="hub-1", password="not-started-here",
                                                     host="127.0.0.1", port=1), clock=clock, **kwargs)  # type: ignore[arg-type]


def adv(address: str, frame: bytes, clock: Clock) -> Advertisement:
    return Advertisement(address=address, service_data={BTHOME_SERVICE_UUID: frame}, rssi=-70, received_at=utc_now(),
                         monotonic=clock.t)


def test_agent_supervises_on_accepted_frames_only() -> None:
    clock = Clock()
    hub = agent(clock)
    device = pendant.Pendant(Transmitter(mac_bytes(PENDANT.address)))
    device, frame = pendant.status(device)
    hub.handle(adv(PENDANT.address, frame, clock))
    clock.t += silence_limit_s(600) + 1
    assert codes(hub.supervisor.check()) == [("pendant-1", EventCode.DEVICE_NOT_SEEN)]
    assert hub.handle(adv(PENDANT.address, frame, clock)) == []  # a repeat (or a replay) is not life
    device, frame = pendant.help_press(device, now=5.0)
    messages = hub.handle(adv(PENDANT.address, frame, clock))
    assert [m.code for m in messages if isinstance(m, DeviceEvent)][:2] == [EventCode.DEVICE_SEEN_AGAIN,
                                                                             EventCode.MANUAL_ALARM]
    clock.t += 3000  # the door reports hourly: still within its limit
    sensor = door.DoorSensor(Transmitter(mac_bytes(DOOR.address)))
    sensor, frame = door.status(sensor)
    hub.handle(adv(DOOR.address, frame, clock))
    clock.t += silence_limit_s(3600) - 1
    assert codes(hub.supervisor.check()) == [("pendant-1", EventCode.DEVICE_NOT_SEEN)]


def test_power_file_transitions_and_heartbeat(tmp_path: Path) -> None:
    state = tmp_path / "power"
    state.write_text("mains\n")
    clock = Clock()
    monitor = PowerMonitor("hub-1", FileSource(state))
    hub = agent(clock, power=monitor)
    assert monitor.poll() == []
    state.write_text("battery\n")
    (failure,) = monitor.poll()
    assert (failure.code, failure.device_id, failure.device_type) == (EventCode.POWER_FAILURE, "hub-1",
                                                                      DeviceType.COMMUNICATION_LINK)
    assert hub.heartbeat().power is Power.BATTERY
    assert monitor.poll() == []  # once per change
    state.write_text("???")
    assert monitor.poll() == [] and monitor.unreadable == 1 and monitor.current is Power.BATTERY
    state.unlink()
    assert monitor.poll() == [] and monitor.unreadable == 2
    state.write_text("MAINS")
    assert [e.code for e in monitor.poll()] == [EventCode.POWER_RESTORED]
    assert hub.heartbeat().power is Power.MAINS


@pytest.mark.parametrize(("mains_level", "value", "power"), [
    (1, "1", Power.MAINS), (1, "0", Power.BATTERY), (0, "0", Power.MAINS), (0, "1", Power.BATTERY)])
def test_gpio_line_polarity(tmp_path: Path, mains_level: int, value: str, power: Power) -> None:
    line = tmp_path / "value"
    line.write_text(value + "\n")
    assert GpioSource(line, mains_level=mains_level).read() is power
    line.write_text("x")
    assert GpioSource(line).read() is None


def test_heartbeat_carries_uptime_power_outbox_and_every_device(tmp_path: Path) -> None:
    clock = Clock()
    hub = HubAgent("hub-1", [PENDANT, DOOR], Uplink(hub_id="hub-1", password="not-started-here",
                                                    host="127.0.0.1", port=1),
                   heartbeat_interval_s=30, clock=clock,
                   zigbee_devices=[ZigbeeDevice("bed-2", "bed_mat", DeviceKind.BED)])
    device = pendant.Pendant(Transmitter(mac_bytes(PENDANT.address)), battery_pct=64)
    device, frame = pendant.status(device)
    received = adv(PENDANT.address, frame, clock)
    hub.handle(received)
    clock.t += 12.5
    beat = hub.heartbeat()
    assert (beat.uptime_s, beat.interval_s, beat.outbox_depth, beat.power) == (12.5, 30, 0, Power.MAINS)
    assert [(d.device_id, d.last_seen, d.battery_pct) for d in beat.devices] == [
        ("pendant-1", received.received_at, 64), ("door-1", None, None), ("bed-2", None, None)]
