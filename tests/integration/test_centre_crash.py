"""A centre killed mid-stream (SIGKILL) and restarted loses nothing and alerts nothing twice.

The centre runs as its own process with its settings in `TELECARE_*` variables, as
`telecare centre` runs it, against a real Mosquitto. A hub publishes readings, door
events and help-button presses as fast as the broker takes them; part-way through, the
centre is SIGKILLed (no clean shutdown, no last commit) and started again. Then:
- every message the broker acknowledged to the hub (PUBACK) is in the database: a batch
  is acknowledged to the broker only after its commit, so the broker still held, and
  redelivered, whatever the dead centre had not committed;
- the presses made exactly one alert, with every press after the first counted once as a
  repeat: a redelivered press is dropped by its message id in the same transaction that
  would have counted it.
On SQLite and PostgreSQL.
"""

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from centre_app import schema
from monitoring_centre.broker import BrokerAccount, Mosquitto, find_mosquitto
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.storage import Alert, InboundMessage, make_engine
from telecare_protocol import DeviceEvent, DeviceType, EventCode, encode
from telecare_protocol import Reading as ReadingMessage
from telecare_protocol.codes import Metric
from telecare_protocol.topics import topic_for
from tests.support.helpers import free_port
from tests.support.waiting import wait_for

MESSAGES = 3000
PRESS_EVERY = 100
KILL_AFTER = 800
"""Stored messages before the centre is killed."""
PACE_S = 0.002
"""About 500 messages a second, so the stream outlasts the kill (a faster centre could
otherwise store all of it before the test sees the first part)."""

RUN_CENTRE = ("import asyncio\n"
              "from centre_app.centre import Centre\n"
              "from centre_app.settings import CentreSettings\n"
              "asyncio.run(Centre(CentreSettings()).serve_until_signalled())\n")
"""What `telecare centre` runs (telecare/admin_cli.py), without the rest of the command line."""


class CentreProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen([sys.executable, "-c", RUN_CENTRE], env=self.env,
                                        stdout=self._log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{self.env['TELECARE_HTTP_PORT']}/metrics"

        def up() -> bool:
            assert self.process is not None and self.process.poll() is None, self.log_path.read_text()[-3000:]
            try:
                return "telecare_ingest" in httpx.get(url, timeout=1).text
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=60, what="the centre to start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, dict[str, BrokerAccount]]]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    accounts = {a.username: a for a in (BrokerAccount.generate("centre", "centre"),
                                        BrokerAccount.generate("hub-1", "hub"))}
    with Mosquitto(tmp_path / "broker", accounts.values()) as running:
        yield running, accounts


class Publisher:
    """The hub: publishes at full speed and remembers which message ids the broker acknowledged."""

    def __init__(self, broker: Mosquitto, account: BrokerAccount) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="crash-hub-1", protocol=mqtt.MQTTv5)
        self.client.username_pw_set(account.username, account.password)
        self.client.max_queued_messages_set(0)
        self.pending: dict[int, str] = {}
        self.acked: set[str] = set()
        self.presses: list[str] = []
        self.early: set[int] = set()
        self.lock = threading.Lock()
        self.client.on_publish = self._on_publish
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, reason: object, _p: object) -> None:
        if getattr(reason, "is_failure", False):
            return
        with self.lock:
            message_id = self.pending.pop(mid, None)
            if message_id is None:
                self.early.add(mid)  # acknowledged before publish() returned its mid
            else:
                self.acked.add(message_id)

    def run(self, count: int) -> None:
        for n in range(count):
            time.sleep(PACE_S)
            now = datetime.now(UTC)
            message: ReadingMessage | DeviceEvent
            if n % PRESS_EVERY == PRESS_EVERY - 1:
                message = DeviceEvent.new(hub_id="hub-1", device_id="pendant-1",
                                          device_type=DeviceType.PERSONAL_TRIGGER, code=EventCode.MANUAL_ALARM,
                                          source_ts=now)
                self.presses.append(str(message.id))
            elif n % 10 == 0:
                message = DeviceEvent.new(hub_id="hub-1", device_id="door-1", device_type=DeviceType.DOOR_SENSOR,
                                          code=EventCode.DOOR_OPENED if n % 20 else EventCode.DOOR_CLOSED,
                                          source_ts=now)
            else:
                message = ReadingMessage(hub_id="hub-1", device_id="oximeter-1", source_ts=now, metric=Metric.SPO2,
                                         value=float(94 + n % 5), unit="%")
            topic = topic_for("hub-1", message.type)
            info = self.client.publish(topic, encode(message), qos=1)  # not under our lock: paho calls back
            with self.lock:
                if info.mid in self.early:
                    self.early.discard(info.mid)
                    self.acked.add(str(message.id))
                else:
                    self.pending[info.mid] = str(message.id)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(InboundMessage)) or 0)


def test_sigkill_mid_stream_loses_nothing_acknowledged_and_alerts_once(
        tmp_path: Path, database_url: str, broker: tuple[Mosquitto, dict[str, BrokerAccount]]) -> None:
    mosquitto, accounts = broker
    engine = make_engine(database_url)
    schema.upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session, session.begin():
        person = enrol_home(session, name="Ada", address="", hub_id="hub-1", devices=[
            DeviceRecord("pendant-1", "pendant"), DeviceRecord("door-1", "door"),
            DeviceRecord("oximeter-1", "oximeter")])
    env = {key: value for key, value in os.environ.items() if not key.startswith("TELECARE_")}
    env |= {"TELECARE_DATABASE_URL": database_url, "TELECARE_JWT_SECRET": secrets.token_urlsafe(48),
            "TELECARE_MQTT_HOST": mosquitto.host, "TELECARE_MQTT_PORT": str(mosquitto.port),
            "TELECARE_MQTT_PASSWORD": accounts["centre"].password, "TELECARE_HTTP_PORT": str(free_port()),
            "TELECARE_INGEST_MAX_BATCH": "50", "TELECARE_DATA_DIR": str(tmp_path)}
    centre = CentreProcess(env, tmp_path / "centre.log")
    centre.start()
    publisher = Publisher(mosquitto, accounts["hub-1"])
    feeding = threading.Thread(target=publisher.run, args=(MESSAGES,))
    try:
        feeding.start()
        wait_for(lambda: _count(sessions) >= KILL_AFTER, timeout=60, what="the centre to store a first part")
        centre.kill()
        killed_at = _count(sessions)
        centre.start()
        feeding.join(60)
        assert not feeding.is_alive()
        wait_for(lambda: len(publisher.acked) == MESSAGES, timeout=60, what="the broker to acknowledge every message")
        with sessions() as session:
            wanted = publisher.acked

            def all_stored() -> bool:
                with sessions() as session:
                    stored = set(session.scalars(select(InboundMessage.id)))
                return wanted <= stored

            wait_for(all_stored, timeout=60, what="every acknowledged message in the database")
    finally:
        publisher.close()
        centre.stop()
    assert KILL_AFTER <= killed_at < MESSAGES, "the kill must land mid-stream"
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(InboundMessage)) == MESSAGES
        pendant = list(session.scalars(select(Alert).where(Alert.person_id == person.id,
                                                           Alert.rule == "pendant_alarm")))
        conditions = list(session.execute(select(Alert.rule, Alert.subject, func.count()).where(
            Alert.status.in_(("open", "acknowledged", "in_progress"))).group_by(Alert.rule, Alert.subject)))
    assert len(publisher.presses) == MESSAGES // PRESS_EVERY
    [alert] = pendant
    assert alert.repeat_count == len(publisher.presses) - 1
    assert all(n == 1 for _rule, _subject, n in conditions), conditions
    engine.dispose()
