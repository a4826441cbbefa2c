"""The centre through the loss of its primary database: PostgreSQL with a synchronous
streaming standby, the primary killed under a steady stream, the standby promoted.

The centre's database URL names both servers (`target_session_attrs=read-write`): its pooled
connections to the dead primary fail their ping and new ones find the promoted standby; a batch
that could not be committed is retried (`Receiver._store_then_ack`) and nothing is acknowledged
to a hub before its commit. So: every message the hub sent is stored exactly once, every press
counts once on the one open alarm, and the hub's outbox empties.
"""

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from centre_app.centre import Centre, CentreThread
from hub_agent.uplink import Confirmation, Uplink
from monitoring_centre.broker import BrokerAccount
from monitoring_centre.storage import Alert, InboundMessage
from telecare_protocol import DeviceEvent, DeviceType, EventCode, Metric, Reading
from tests.support import postgres
from tests.support.centre import centre_settings, enrol_test_homes
from tests.support.waiting import wait_for

HUB = "hub-1"
PRESSES = 12
READINGS_PER_PRESS = 40


@pytest.fixture
def ha_database() -> Iterator[postgres.ReplicatedCluster]:
    if (reason := postgres.why_missing()) is not None:
        pytest.skip(reason)
    with postgres.replicated_cluster() as cluster:
        yield cluster


def press() -> DeviceEvent:
    return DeviceEvent.new(hub_id=HUB, device_id="pendant-1", device_type=DeviceType.PERSONAL_TRIGGER,
                           code=EventCode.MANUAL_ALARM, source_ts=datetime.now(UTC))


def reading(n: int) -> Reading:
    return Reading(hub_id=HUB, device_id="oximeter-1", metric=Metric.SPO2, value=94.0 + n % 4, unit="%",
                   source_ts=datetime.now(UTC))


def test_the_primary_database_dies_and_nothing_acknowledged_is_lost_or_doubled(
        tmp_path: Path, mosquitto: Any, broker_accounts: dict[str, BrokerAccount],
        ha_database: postgres.ReplicatedCluster) -> None:
    url = ha_database.create_database("centre")
    centre = Centre(centre_settings(tmp_path / "unused.db", mosquitto, broker_accounts, database_url=url))
    people = enrol_test_homes(centre)
    uplink = Uplink(hub_id=HUB, password=broker_accounts[HUB].password, host=mosquitto.host, port=mosquitto.port,
                    outbox_path=tmp_path / "outbox.db")
    sent_at: dict[str, float] = {}
    acked_at: dict[str, float] = {}
    lock = threading.Lock()

    def heard(confirmation: Confirmation) -> None:
        with lock:
            for message_id in confirmation.stored:
                acked_at.setdefault(message_id, time.monotonic())

    uplink.add_listener(heard)
    sent: list[str] = []
    presses: list[str] = []
    with CentreThread(centre):
        uplink.start()
        try:
            for n in range(PRESSES):
                alarm = press()
                sent_at[str(alarm.id)] = time.monotonic()
                uplink.send(alarm)
                sent.append(str(alarm.id))
                presses.append(str(alarm.id))
                for k in range(READINGS_PER_PRESS):
                    message = reading(n * READINGS_PER_PRESS + k)
                    uplink.send(message)
                    sent.append(str(message.id))
                    time.sleep(0.005)
                if n == 3:
                    ha_database.kill_primary()
                if n == 5:
                    ha_database.promote_standby()
            wait_for(lambda: uplink.unacked == 0, timeout=120, what="the hub's outbox to empty")
        finally:
            uplink.stop()
        with centre.sessions() as session:
            stored = session.scalar(select(func.count()).select_from(InboundMessage)
                                    .where(InboundMessage.id.in_(sent)))
            alerts = session.scalars(select(Alert).where(Alert.person_id == people[HUB],
                                                         Alert.rule == "pendant_alarm")).all()
    assert stored == len(sent)
    assert len(alerts) == 1 and alerts[0].repeat_count == PRESSES - 1
    latencies = sorted(acked_at[m] - sent_at[m] for m in presses)
    print(f"alarm stored-and-acknowledged latency through the failover: max {latencies[-1]:.2f} s, "
          f"median {latencies[len(latencies) // 2]:.2f} s over {PRESSES} presses")
