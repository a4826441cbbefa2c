"""A hub with a wrong wall clock, end to end: real Mosquitto, a real hub agent (its own heartbeat
loop, radio queue and uplink) whose clock is injected an hour fast or fourteen days slow, and a
real centre. Nothing is refused: every press is alerted once, the clock gets one supervision
alert with the measured offset, and a hub that beats on time is never offline."""

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from centre_app.centre import Centre, CentreThread
from hub_agent.agent import HubAgent
from hub_agent.radio import Advertisement
from hub_agent.uplink import Uplink
from monitoring_centre.broker import BrokerAccount
from monitoring_centre.storage import Alert, DeadLetter, Event, InboundMessage
from tests.support.centre import HOMES, centre_settings, enrol_test_homes
from tests.support.waiting import wait_for

BTHOME_UUID = "0000fcd2-0000-1000-8000-00805f9b34fb"
PRESSES = 3


def _press(packet_id: int, hub_time: datetime) -> Advertisement:
    """A BTHome v2 pendant's help-button press (button 1 = press), received by the hub at `hub_time`."""
    frame = bytes([0x44, 0x00, packet_id, 0x01, 90, 0x3A, 0x01])
    return Advertisement(address=HOMES["hub-1"][1][0].address, service_data={BTHOME_UUID: frame}, rssi=-60,
                         received_at=hub_time, monotonic=time.monotonic())


@contextmanager
def running(agent: HubAgent) -> Iterator[asyncio.AbstractEventLoop]:
    """The agent's own `run()` (heartbeats, supervision, uplink) on a thread of its own; cancelled on exit."""
    loop = asyncio.new_event_loop()
    task = loop.create_task(agent.run())

    def run() -> None:
        with suppress(asyncio.CancelledError):
            loop.run_until_complete(task)

    thread = threading.Thread(target=run, name="hub-agent", daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(task.cancel)
        thread.join(timeout=15)
        loop.close()


def _alerts(centre: Centre, person_id: int) -> list[Alert]:
    with centre.sessions() as session:
        return list(session.scalars(select(Alert).where(Alert.person_id == person_id).order_by(Alert.id)))


@pytest.mark.parametrize("offset", [timedelta(hours=1), -timedelta(days=14)], ids=["1h_fast", "14d_slow"])
def test_a_hub_with_a_wrong_clock_is_alerted_once_and_every_press_is_alerted(
        tmp_path: Path, mosquitto: Any, broker_accounts: dict[str, BrokerAccount], offset: timedelta) -> None:
    centre = Centre(centre_settings(tmp_path / "centre.db", mosquitto, broker_accounts, detection_tick_s=0.5))
    people = enrol_test_homes(centre)

    def hub_clock() -> datetime:
        return datetime.now(UTC) + offset

    uplink = Uplink(hub_id="hub-1", password=broker_accounts["hub-1"].password, host=mosquitto.host,
                    port=mosquitto.port)
    agent = HubAgent("hub-1", HOMES["hub-1"][1], uplink, heartbeat_interval_s=1, wall_clock=hub_clock)
    with CentreThread(centre), running(agent) as loop:
        clock_alert = wait_for(lambda: next((a for a in _alerts(centre, people["hub-1"])
                                             if a.rule == "hub_clock_wrong"), None),
                               timeout=30, what="the hub clock alert")
        pressed: list[datetime] = []
        for packet_id in range(1, PRESSES + 1):
            pressed.append(datetime.now(UTC))
            loop.call_soon_threadsafe(agent.radio.put_nowait, _press(packet_id, hub_clock()))
            wait_for(partial(_presses_stored, centre, packet_id), what=f"press {packet_id} stored")
        time.sleep(3)  # heartbeats keep coming, ticks keep running: nothing more may be raised
        alerts = _alerts(centre, people["hub-1"])
    with centre.sessions() as session:
        refused = list(session.scalars(select(DeadLetter)))
        press_ids = list(session.scalars(select(Event.message_id).where(Event.code == "manual_alarm")
                                         .order_by(Event.id)))
        beats = len(list(session.scalars(select(InboundMessage.id).where(InboundMessage.type == "heartbeat"))))

    assert refused == []
    assert beats >= 4
    assert sorted(a.rule for a in alerts) == ["hub_clock_wrong", "pendant_alarm"]  # no hub offline, no device unseen
    [alarm] = [a for a in alerts if a.rule == "pendant_alarm"]
    assert [e["message_id"] for e in alarm.explanation["evidence"]] == press_ids  # each press once
    assert (alarm.priority, alarm.repeat_count, len(press_ids)) == (1, PRESSES - 1, PRESSES)
    assert abs(alarm.opened_at - pressed[0]) < timedelta(seconds=10)  # the centre's time, not the hub's
    [clock] = [a for a in alerts if a.rule == "hub_clock_wrong"]
    assert clock.id == clock_alert.id and clock.repeat_count == 0 and clock.status == "open"
    measured = timedelta(seconds=clock.explanation["detail"]["offset_s"])
    assert abs(measured - offset) < timedelta(seconds=5)
    assert clock.explanation["detail"]["direction"] == ("ahead" if offset > timedelta(0) else "behind")


def _presses_stored(centre: Centre, count: int) -> bool:
    with centre.sessions() as session:
        return len(list(session.scalars(select(Event.id).where(Event.code == "manual_alarm")))) == count
