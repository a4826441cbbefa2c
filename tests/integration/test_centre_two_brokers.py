"""A centre reading two brokers, and a hub that fails over between them: the first broker is
killed mid-stream; every message the hub sent is stored exactly once, every press counted once
on the one open alarm, and the hub's outbox empties through the second broker."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from centre_app.centre import Centre, CentreThread
from hub_agent.uplink import Uplink
from monitoring_centre.broker import BrokerAccount, Mosquitto, find_mosquitto
from monitoring_centre.storage import Alert, InboundMessage
from telecare_protocol import DeviceEvent, DeviceType, EventCode, Metric, Reading
from tests.support.centre import centre_settings, enrol_test_homes
from tests.support.waiting import wait_for

HUB = "hub-1"


@pytest.fixture
def brokers(tmp_path: Path, broker_accounts: dict[str, BrokerAccount]) -> Iterator[tuple[Mosquitto, Mosquitto]]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto); CI installs it")
    with (Mosquitto(tmp_path / "a", broker_accounts.values()) as first,
          Mosquitto(tmp_path / "b", broker_accounts.values()) as second):
        yield first, second


def test_a_hub_fails_over_and_the_centre_hears_it_on_the_other_broker(
        tmp_path: Path, brokers: tuple[Mosquitto, Mosquitto], broker_accounts: dict[str, BrokerAccount]) -> None:
    first, second = brokers
    settings = centre_settings(tmp_path / "centre.db", first, broker_accounts,
                               mqtt_other_brokers=[f"{second.host}:{second.port}"])
    centre = Centre(settings)
    people = enrol_test_homes(centre)
    uplink = Uplink(hub_id=HUB, password=broker_accounts[HUB].password, host=first.host, port=first.port,
                    fallbacks=[(second.host, second.port)], outbox_path=tmp_path / "outbox.db",
                    reconnect_max_delay_s=2)
    sent, presses = [], 0
    with CentreThread(centre):
        uplink.start()
        try:
            for n in range(300):
                if n % 50 == 0:
                    message: DeviceEvent | Reading = DeviceEvent.new(
                        hub_id=HUB, device_id="pendant-1", device_type=DeviceType.PERSONAL_TRIGGER,
                        code=EventCode.MANUAL_ALARM, source_ts=datetime.now(UTC))
                    presses += 1
                else:
                    message = Reading(hub_id=HUB, device_id="oximeter-1", metric=Metric.SPO2, value=95.0 + n % 3,
                                      unit="%", source_ts=datetime.now(UTC))
                uplink.send(message)
                sent.append(str(message.id))
                if n == 120:
                    first.kill()
                time.sleep(0.002)
            wait_for(lambda: uplink.unacked == 0, timeout=90, what="every message to be acknowledged")
            assert (uplink.host, uplink.port) == (second.host, second.port)
        finally:
            uplink.stop()
        with centre.sessions() as session:
            stored = session.scalar(select(func.count()).select_from(InboundMessage)
                                    .where(InboundMessage.id.in_(sent)))
            alerts = session.scalars(select(Alert).where(Alert.person_id == people[HUB],
                                                         Alert.rule == "pendant_alarm")).all()
    assert stored == len(sent)
    assert len(alerts) == 1 and alerts[0].repeat_count == presses - 1
