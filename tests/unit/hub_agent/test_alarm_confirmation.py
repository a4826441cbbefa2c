"""The hub tells the person that help is coming: an alarm the centre acknowledged fires the "alarm
received" signal once; one not acknowledged within 60 s is signalled and reported to the centre as a
hub fault, while it keeps being resent; one refused is signalled as refused."""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest

from hub_agent.agent import HubAgent
from hub_agent.confirmation import ALARM_CONFIRM_BOUND_S, AlarmConfirmations, AlarmNotice, AlarmSignal
from hub_agent.uplink import Confirmation
from telecare_protocol import DeviceEvent, DeviceType, EventCode, Message, Metric, Priority, Reading

HUB = "hub-1"
NOW = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def event(code: EventCode, device: str = "pendant-1", kind: DeviceType = DeviceType.PERSONAL_TRIGGER) -> DeviceEvent:
    return DeviceEvent.new(hub_id=HUB, device_id=device, device_type=kind, code=code, source_ts=NOW)


class ConfirmingUplink:
    """An uplink that commits nothing and lets the test play the centre's confirmations."""

    def __init__(self, waiting: list[DeviceEvent] | None = None) -> None:
        self.sent: list[Message] = []
        self.listeners: list[Callable[[Confirmation], None]] = []
        self.waiting = waiting or []

    @property
    def unacked(self) -> int:
        return len(self.sent)

    def start(self) -> None:
        pass

    def send(self, message: Message) -> None:
        self.sent.append(message)

    def stop(self, timeout: float = 10.0) -> None:
        pass

    def add_listener(self, listener: Callable[[Confirmation], None]) -> None:
        self.listeners.append(listener)

    def waiting_events(self) -> list[DeviceEvent]:
        return self.waiting

    def confirm(self, stored: Sequence[Message] = (), refused: Sequence[tuple[Message, str]] = ()) -> None:
        for listener in self.listeners:
            listener(Confirmation(tuple(str(m.id) for m in stored), tuple((str(m.id), r) for m, r in refused)))


@pytest.fixture
def clock() -> Clock:
    return Clock()


def agent_with(clock: Clock, uplink: ConfirmingUplink) -> tuple[HubAgent, list[AlarmNotice]]:
    notices: list[AlarmNotice] = []
    return HubAgent(HUB, [], uplink, clock=clock, on_alarm=notices.append), notices


def test_an_acknowledged_press_says_help_is_coming_once(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    uplink = ConfirmingUplink()
    agent, notices = agent_with(clock, uplink)
    press = event(EventCode.MANUAL_ALARM)
    agent.send(press)
    clock.now += 0.25
    with caplog.at_level(logging.INFO, logger="hub_agent.confirmation"):
        uplink.confirm(stored=[press])
    assert notices == [AlarmNotice(AlarmSignal.RECEIVED, press, 0.25)]
    assert "received by the centre after 0.25 s" in caplog.text
    uplink.confirm(stored=[press])  # a duplicate's ack: the person is told once
    assert len(notices) == 1
    assert agent.alarms.waiting == 0


@pytest.mark.parametrize(("code", "kind"), [(EventCode.FALL_DETECTED, DeviceType.FALL_DETECTOR),
                                            (EventCode.MANUAL_ALARM, DeviceType.PULL_CORD)])
def test_falls_and_pull_cords_are_alarms_too(clock: Clock, code: EventCode, kind: DeviceType) -> None:
    uplink = ConfirmingUplink()
    agent, notices = agent_with(clock, uplink)
    alarm = event(code, device="cord-1", kind=kind)
    agent.send(alarm)
    uplink.confirm(stored=[alarm])
    assert [n.signal for n in notices] == [AlarmSignal.RECEIVED]


def test_other_messages_give_no_alarm_signal(clock: Clock) -> None:
    uplink = ConfirmingUplink()
    agent, notices = agent_with(clock, uplink)
    others: list[Message] = [event(EventCode.ALARM_CANCELLED), event(EventCode.DOOR_OPENED, "door-1"),
                             Reading(hub_id=HUB, device_id="oximeter-1", source_ts=NOW, metric=Metric.SPO2,
                                     value=80.0, unit="%")]
    for message in others:
        agent.send(message)
    uplink.confirm(stored=others)
    clock.now += 3600
    assert agent.alarms_overdue() == []
    assert notices == []


def test_an_alarm_unconfirmed_for_a_minute_is_signalled_and_reported_as_a_hub_fault(clock: Clock) -> None:
    assert ALARM_CONFIRM_BOUND_S == 60.0
    uplink = ConfirmingUplink()
    agent, notices = agent_with(clock, uplink)
    press = event(EventCode.MANUAL_ALARM)
    agent.send(press)
    clock.now += 59.9
    assert agent.alarms_overdue() == []
    assert agent.alarms.next_check_in() == pytest.approx(0.1)
    clock.now += 0.1
    [fault] = agent.alarms_overdue()
    assert (fault.hub_id, fault.device_id, fault.device_type, fault.code, fault.priority) == (
        HUB, HUB, DeviceType.COMMUNICATION_LINK, EventCode.DEVICE_FAULT, Priority.SUPERVISION)
    assert fault.detail == {"fault": "alarm_unconfirmed", "alarm_id": str(press.id), "alarm_code": "manual_alarm",
                            "alarm_device": "pendant-1", "waited_s": 60.0}
    assert [n.signal for n in notices] == [AlarmSignal.NOT_CONFIRMED]
    clock.now += 600
    assert agent.alarms_overdue() == [], "one fault per alarm"
    uplink.confirm(stored=[press])  # the link came back: the alarm and the fault both reach the centre
    assert [(n.signal, n.after_s) for n in notices] == [(AlarmSignal.NOT_CONFIRMED, 60.0),
                                                        (AlarmSignal.RECEIVED, 660.0)]


def test_a_refused_alarm_is_signalled_as_refused(clock: Clock) -> None:
    uplink = ConfirmingUplink()
    agent, notices = agent_with(clock, uplink)
    press = event(EventCode.MANUAL_ALARM, device="pendant-9")
    agent.send(press)
    uplink.confirm(refused=[(press, "unknown_device")])
    assert notices == [AlarmNotice(AlarmSignal.REFUSED, press, 0.0, "unknown_device")]
    clock.now += 120
    assert agent.alarms_overdue() == []


def test_a_failing_signal_callback_does_not_stop_the_hub(clock: Clock) -> None:
    def broken(_notice: AlarmNotice) -> None:
        raise RuntimeError("LED driver gone")

    confirmations = AlarmConfirmations(broken, clock=clock)
    press = event(EventCode.MANUAL_ALARM)
    confirmations.watch(press)
    confirmations.confirmed([str(press.id)])
    assert confirmations.waiting == 0


def test_after_a_restart_the_alarms_still_in_the_outbox_are_watched(clock: Clock) -> None:
    waiting = event(EventCode.MANUAL_ALARM)
    uplink = ConfirmingUplink(waiting=[event(EventCode.ALARM_CANCELLED), waiting])
    agent, notices = agent_with(clock, uplink)

    async def run_briefly() -> None:
        running = asyncio.create_task(agent.run(power_poll_s=3600))
        await asyncio.sleep(0.05)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running

    asyncio.run(run_briefly())
    assert agent.alarms.waiting == 1
    uplink.confirm(stored=[waiting])
    assert [n.signal for n in notices] == [AlarmSignal.RECEIVED]
