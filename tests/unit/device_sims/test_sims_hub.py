"""Output (a): a simulated home's frames through a real HubAgent decode to the events and
readings the virtual hub publishes for the same happenings."""

from datetime import date, timedelta
from typing import Any

from device_sims.home import Kind
from device_sims.incidents import IncidentSpec
from device_sims.radio import REPEATS, FrameRenderer, paired_devices
from device_sims.simulation import build_home, home_happenings, home_stream
from device_sims.virtual_hub import initial_batteries
from hub_agent.agent import HubAgent
from hub_agent.radio import Advertisement
from telecare_protocol import DeviceEvent, Message, Reading
from telecare_protocol.codes import EventCode


class CollectingUplink:
    """Stands in for the MQTT uplink: keeps what the agent sends."""

    def __init__(self) -> None:
        self.sent: list[Message] = []

    @property
    def unacked(self) -> int:
        return 0

    def start(self) -> None:
        pass

    def send(self, message: Message) -> None:
        self.sent.append(message)

    def stop(self, timeout: float = 10.0) -> None:
        pass


SUPERVISION = {EventCode.DEVICE_NOT_SEEN, EventCode.DEVICE_SEEN_AGAIN}


def _key(message: Message) -> tuple[Any, ...]:
    if isinstance(message, Reading):
        return ("reading", message.device_id, message.source_ts, message.metric, message.value, message.quality)
    assert isinstance(message, DeviceEvent)
    return ("event", message.device_id, message.source_ts, message.device_type, message.code,
            tuple(sorted(message.detail.items())))


def test_frames_through_a_real_hub_agent_decode_to_the_virtual_hubs_messages() -> None:
    incidents = [IncidentSpec("pendant_alarm", day=0, at="11:00"), IncidentSpec("fall_with_press", day=0),
                 IncidentSpec("fall_cancelled", day=1), IncidentSpec("fall_without_press", day=1),
                 IncidentSpec("probe_off_gap", day=1, at="02:00"), IncidentSpec("questionable_readings", day=1,
                                                                               at="04:00"),
                 IncidentSpec("low_battery", day=0, device="bed")]
    home = build_home(1, seed=7, first_day=date(2026, 3, 2), days=2, incidents=incidents,
                      personality={"oximetry": "overnight", "condition": "copd"})
    uplink = CollectingUplink()
    hub = HubAgent(home.layout.hub_id, paired_devices(home.layout), uplink)
    renderer = FrameRenderer(home.layout, home.routine.start, battery=initial_batteries(home.layout, home.seed))
    decoded: list[Message] = []
    advertisements = 0
    for at, happening in home_happenings(home):
        for frame in renderer.frames(at, happening):
            advertisements += isinstance(frame, Advertisement)
            decoded += hub.handle(frame)

    assert advertisements > 300
    # Nothing rejected but the deliberate repeats: each frame goes out REPEATS times.
    assert set(hub.rejected) == {"bthome_duplicate"}, hub.rejected
    assert hub.rejected["bthome_duplicate"] == advertisements * (REPEATS - 1) // REPEATS
    hub_devices = {d.device_id for d in paired_devices(home.layout)}
    published = [m for m in home_stream(home) if m.type != "heartbeat" and m.device_id in hub_devices]
    from_hub = [m for m in decoded if not (isinstance(m, DeviceEvent) and m.code in SUPERVISION)]
    assert sorted(map(_key, from_hub)) == sorted(map(_key, published))
    codes = {m.code for m in from_hub if isinstance(m, DeviceEvent)}
    assert {EventCode.MANUAL_ALARM, EventCode.FALL_DETECTED, EventCode.FALL_CANCELLED, EventCode.BED_VACATED,
            EventCode.DOOR_OPENED, EventCode.BATTERY_LOW, EventCode.BATTERY_OK} <= codes
    if any(home.layout.by_id(d).kind is Kind.MOTION for d in hub_devices):
        assert EventCode.ACTIVITY in codes
    readings = [m for m in from_hub if isinstance(m, Reading)]
    assert any(r.value is None and "sensor_off" in r.quality for r in readings)
    assert any("questionable" in r.quality for r in readings)


def test_play_into_hub_paces_frames_onto_the_radio_queue() -> None:
    import asyncio
    import itertools

    from device_sims.clock import RealClock
    from device_sims.radio import play_into_hub

    home = build_home(2, seed=3, first_day=date(2026, 3, 2), days=1,
                      incidents=[IncidentSpec("pendant_alarm", day=0, at="00:20")])
    uplink = CollectingUplink()
    hub = HubAgent(home.layout.hub_id, paired_devices(home.layout), uplink)
    renderer = FrameRenderer(home.layout, home.routine.start, battery=initial_batteries(home.layout, home.seed))
    first_half_hour = itertools.takewhile(lambda item: item[0] < home.routine.start + timedelta(minutes=30),
                                          home_happenings(home))
    wall = [0.0]
    clock = RealClock(origin=home.routine.start, speed=3600.0, monotonic=lambda: wall[0])

    played = asyncio.run(play_into_hub(hub, renderer, first_half_hour, clock))
    assert played == hub.radio.qsize() > 0
    decoded = []
    while not hub.radio.empty():
        decoded += hub.handle(hub.radio.get_nowait())
    alarms = [m for m in decoded if isinstance(m, DeviceEvent) and m.code == EventCode.MANUAL_ALARM]
    assert len(alarms) == 1
    assert alarms[0].source_ts == home.routine.start + timedelta(minutes=20)
