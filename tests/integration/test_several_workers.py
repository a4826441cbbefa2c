"""Several centre workers, all active, on one PostgreSQL and one Mosquitto (docs/operating.md, "Several workers").

Each worker is its own process, as `telecare centre` runs it, with `TELECARE_WORKER` and shared
subscriptions on; hubs stream readings and help-button presses through `hub_agent.uplink.Uplink`.
- Steady state: every message is stored once, each person is detected by exactly one worker (the
  rendezvous owner, by its lease), each person's presses make one alert counted once per press,
  and a press stored by a worker that does not hold the person reaches the holder through the
  detection queue (its latency printed).
- A worker SIGKILLed under the stream (no release, its MQTT sessions left at the broker) and
  restarted by its "supervisor" after its leases have lapsed: nothing is lost, no alert is doubled,
  the other worker takes the dead one's people over; press latency through the failover printed.
- A worker SIGKILLed for good: its sessions expire at the broker and the hubs' resends bring what
  they held to the live worker (a copy lost to the dead session is resent again).
- Escalation with two workers: each step is sent once.
Leases are shortened (1 s heartbeats, 4 s leases) so that the takeover happens within the test.
"""

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from alerting.tables import Notification
from centre_app import schema
from hub_agent.uplink import Uplink
from monitoring_centre import workers
from monitoring_centre.broker import BrokerAccount, Mosquitto, find_mosquitto
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.storage import (
    Alert,
    DetectionLease,
    DetectionQueueEntry,
    InboundMessage,
    Person,
    PersonContact,
    make_engine,
)
from telecare_protocol import DeviceEvent, DeviceType, EventCode, Heartbeat, Metric, Power, Reading
from tests.support import postgres
from tests.support.alerting_home import add_responder
from tests.support.helpers import free_port
from tests.support.smtp_server import smtp_server
from tests.support.waiting import wait_for

HUBS = [f"hub-{n}" for n in range(1, 7)]
RUN_CENTRE = ("import asyncio, logging\n"
              "logging.basicConfig(level=logging.INFO)\n"
              "from centre_app.centre import Centre\n"
              "from centre_app.settings import CentreSettings\n"
              "asyncio.run(Centre(CentreSettings()).serve_until_signalled())\n")
"""What `telecare centre` runs (telecare/admin_cli.py), without the rest of the command line."""
LEASE_S = 4.0


class Worker:
    """One centre worker process; `kill()` is a crash (SIGKILL), `start()` the supervisor's restart."""

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.env = env | {"TELECARE_WORKER": name, "TELECARE_HTTP_PORT": str(free_port())}
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['TELECARE_HTTP_PORT']}"

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen([sys.executable, "-c", RUN_CENTRE], env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT)

        def up() -> bool:
            assert self.process is not None and self.process.poll() is None, self.log_path.read_text()[-3000:]
            try:
                return "telecare_broker_connected 1.0" in httpx.get(self.url + "/metrics", timeout=1).text
            except httpx.HTTPError:
                return False
        wait_for(up, timeout=240, what=f"worker {self.name} to start")  # a loaded machine: imports, migrations

    def metric(self, line_start: str) -> float:
        text = httpx.get(self.url + "/metrics", timeout=5).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start))

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


@dataclass
class World:
    tmp: Path
    broker: Mosquitto
    accounts: dict[str, BrokerAccount]
    sessions: sessionmaker[Session]
    people: dict[str, int]
    env: dict[str, str]
    workers: list[Worker] = field(default_factory=list)
    uplinks: dict[str, Uplink] = field(default_factory=dict)

    def worker(self, name: str) -> Worker:
        worker = Worker(name, self.env, self.tmp / f"{name}.log")
        self.workers.append(worker)
        worker.start()
        return worker

    def connect_hubs(self) -> None:
        for hub in HUBS:
            uplink = Uplink(hub_id=hub, password=self.accounts[hub].password, host=self.broker.host,
                            port=self.broker.port, outbox_path=self.tmp / f"{hub}-outbox.db", reconnect_max_delay_s=2)
            uplink.start()
            self.uplinks[hub] = uplink

    def leases(self) -> dict[int, str]:
        with self.sessions() as session:
            rows = session.execute(select(DetectionLease.person_id, DetectionLease.worker))
            return {person: worker for person, worker in rows}

    def settled(self, names: list[str]) -> bool:
        """Every person's lease is with their rendezvous owner among `names`."""
        leases = self.leases()
        return all(leases.get(person) == workers.owner(person, names) for person in self.people.values())


@pytest.fixture
def world(tmp_path: Path, postgres_cluster: postgres.Cluster) -> Iterator[World]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto); CI installs it")
    accounts = {account.username: account for account in
                [BrokerAccount.generate("centre", "centre"), *(BrokerAccount.generate(hub, "hub") for hub in HUBS)]}
    url = postgres_cluster.create_database(f"workers_{secrets.token_hex(4)}")
    engine = make_engine(url)
    schema.upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    people = {}
    with sessions() as session, session.begin():
        for n, hub in enumerate(HUBS, start=1):
            people[hub] = enrol_home(session, name=f"Person {n}", address="1 Test Street", hub_id=hub, devices=[
                DeviceRecord(f"pendant-{n}", "pendant"), DeviceRecord(f"oximeter-{n}", "oximeter")]).id
    env = {key: value for key, value in os.environ.items() if not key.startswith("TELECARE_")}
    with Mosquitto(tmp_path / "broker", accounts.values()) as broker:
        env |= {"TELECARE_DATABASE_URL": url, "TELECARE_JWT_SECRET": secrets.token_urlsafe(48),
                "TELECARE_MQTT_HOST": broker.host, "TELECARE_MQTT_PORT": str(broker.port),
                "TELECARE_MQTT_PASSWORD": accounts["centre"].password, "TELECARE_MQTT_SHARED_SUBSCRIPTIONS": "true",
                "TELECARE_WORKER_HEARTBEAT_S": "1", "TELECARE_WORKER_LEASE_S": str(LEASE_S),
                "TELECARE_INGEST_MAX_BATCH": "50", "TELECARE_DATA_DIR": str(tmp_path)}
        built = World(tmp_path, broker, accounts, sessions, people, env)
        try:
            yield built
        finally:
            for uplink in built.uplinks.values():
                uplink.stop()
            for worker in built.workers:
                worker.stop()
            engine.dispose()


def press(hub: str) -> DeviceEvent:
    return DeviceEvent.new(hub_id=hub, device_id=f"pendant-{hub.removeprefix('hub-')}",
                           device_type=DeviceType.PERSONAL_TRIGGER, code=EventCode.MANUAL_ALARM,
                           source_ts=datetime.now(UTC))


def reading(hub: str, n: int) -> Reading:
    return Reading(hub_id=hub, device_id=f"oximeter-{hub.removeprefix('hub-')}", metric=Metric.SPO2,
                   value=95.0 + n % 3, unit="%", source_ts=datetime.now(UTC))


class Stream:
    """Readings from every hub at a steady pace, a press every `press_every` messages (hubs in turn);
    a watcher thread times each press until its alert counts it (press → alert latency)."""

    def __init__(self, world: World, *, press_every: int = 25, pace_s: float = 0.01) -> None:
        self.world = world
        self.press_every = press_every
        self.pace_s = pace_s
        self.sent: list[str] = []
        self.presses: dict[str, list[float]] = {hub: [] for hub in HUBS}
        """Send times (monotonic) of each hub's presses, in order."""
        self.latencies: list[tuple[float, float]] = []
        """(sent at, seconds until the alert counted it), by the watcher."""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sender = threading.Thread(target=self._send, name="stream", daemon=True)
        self._watcher = threading.Thread(target=self._watch, name="press-watcher", daemon=True)

    def __enter__(self) -> "Stream":
        self._sender.start()
        self._watcher.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._sender.join(10)

    def _send(self) -> None:
        n = 0
        while not self._stop.is_set():
            hub = HUBS[n % len(HUBS)]
            message: DeviceEvent | Reading
            if n % self.press_every == self.press_every - 1:
                hub = HUBS[(n // self.press_every) % len(HUBS)]
                message = press(hub)
                with self._lock:
                    self.presses[hub].append(time.monotonic())
            else:
                message = reading(hub, n)
            self.world.uplinks[hub].send(message)
            self.sent.append(str(message.id))
            n += 1
            time.sleep(self.pace_s)

    def counted(self) -> dict[int, int]:
        """Presses each person's pendant alert has counted (1 + repeats)."""
        with self.world.sessions() as session:
            rows = session.execute(select(Alert.person_id, func.sum(Alert.repeat_count + 1), func.count())
                                   .where(Alert.rule == "pendant_alarm").group_by(Alert.person_id)).all()
        return {person: int(total) for person, total, _alerts in rows}

    def _watch(self) -> None:
        seen = {hub: 0 for hub in HUBS}
        while not (self._stop.is_set() and self.all_counted(seen)):
            counted = self.counted()
            now = time.monotonic()
            with self._lock:
                for hub, times in self.presses.items():
                    new = counted.get(self.world.people[hub], 0)
                    for k in range(seen[hub], min(new, len(times))):
                        self.latencies.append((times[k], now - times[k]))
                    seen[hub] = max(seen[hub], new)
            if self._stop.wait(0.025) and self.all_counted(seen):
                return
            if self._stop.is_set() and time.monotonic() > self._deadline():
                return

    def _deadline(self) -> float:
        return max((times[-1] for times in self.presses.values() if times), default=0.0) + 120

    def all_counted(self, seen: dict[str, int]) -> bool:
        with self._lock:
            return all(seen[hub] >= len(times) for hub, times in self.presses.items())

    def wait_done(self, timeout: float = 120) -> None:
        self._watcher.join(timeout)

    def report(self, what: str) -> str:
        values = sorted(latency for _sent, latency in self.latencies)
        return (f"{what}: press -> alert over {len(values)} presses: median {values[len(values) // 2]:.2f} s, "
                f"p95 {values[int(len(values) * 0.95)]:.2f} s, max {values[-1]:.2f} s")


def heartbeat(hub: str) -> Heartbeat:
    now = datetime.now(UTC)
    return Heartbeat(hub_id=hub, device_id=hub, source_ts=now, hub_ts=now, power=Power.MAINS, uptime_s=1.0,
                     interval_s=60)


def all_stored_once(world: World, sent: list[str]) -> None:
    """Every message the hubs sent is acknowledged and stored exactly once. While waiting, each hub with
    messages unacknowledged sends a heartbeat every 2 s, as its agent does: readings have no resend
    timer, and a later message's ack is what makes a hub resend an earlier reading (`hub_agent.uplink`)."""
    last_beat = [0.0]

    def acknowledged() -> bool:
        waiting = [hub for hub, uplink in world.uplinks.items() if uplink.unacked]
        if waiting and time.monotonic() - last_beat[0] >= 2:
            last_beat[0] = time.monotonic()
            for hub in waiting:
                world.uplinks[hub].send(heartbeat(hub))
        return not waiting

    wait_for(acknowledged, timeout=120, what="every hub's messages to be acknowledged by the centre")
    with world.sessions() as session:
        stored = session.scalar(select(func.count()).select_from(InboundMessage).where(InboundMessage.id.in_(sent)))
    assert stored == len(sent)


def one_alert_per_press(world: World, stream: Stream) -> None:
    with world.sessions() as session:
        for hub, person in world.people.items():
            alerts = session.scalars(select(Alert).where(Alert.person_id == person,
                                                         Alert.rule == "pendant_alarm")).all()
            assert len(alerts) == 1, (hub, len(alerts))
            assert alerts[0].repeat_count + 1 == len(stream.presses[hub]), hub
        assert session.scalar(select(func.count()).select_from(DetectionQueueEntry)) == 0


@pytest.mark.slow
def test_two_workers_share_the_stream_and_each_person_is_detected_by_one(world: World) -> None:
    first, second = world.worker("w1"), world.worker("w2")
    wait_for(lambda: world.settled(["w1", "w2"]), timeout=30, what="the leases to settle over both workers")
    world.connect_hubs()
    with Stream(world) as stream:
        time.sleep(15)
    stream.wait_done()
    all_stored_once(world, stream.sent)
    one_alert_per_press(world, stream)
    assert world.settled(["w1", "w2"])
    assert first.metric("telecare_detection_people ") + second.metric("telecare_detection_people ") == len(HUBS)
    stored_by = {worker.name: worker.metric("telecare_ingest_accepted_total{") for worker in (first, second)}
    assert all(count > 0 for count in stored_by.values()), stored_by  # the broker spread the stream
    queued_presses = sum(worker.metric('telecare_detection_queued_total{type="event"}') for worker in (first, second))
    assert queued_presses > 0  # some presses went through a worker that does not hold their person
    print(f"\nstored by worker: {stored_by}; presses through the detection queue: {queued_presses:.0f} of "
          f"{sum(map(len, stream.presses.values()))}")
    print(stream.report("two workers, steady"))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_worker_killed_under_the_stream_loses_nothing_and_its_people_are_taken_over(world: World) -> None:
    first = world.worker("w1")
    world.worker("w2")
    wait_for(lambda: world.settled(["w1", "w2"]), timeout=30, what="the leases to settle over both workers")
    dead_people = {person for person, worker in world.leases().items() if worker == "w1"}
    world.connect_hubs()
    with Stream(world) as stream:
        time.sleep(5)
        killed_at = time.monotonic()
        first.kill()  # a crash: no release of its leases, its MQTT sessions stay at the broker
        wait_for(lambda: world.settled(["w2"]), timeout=LEASE_S * 4, what="w2 to take the dead worker's people")
        taken_after = time.monotonic() - killed_at
        time.sleep(3)
        first.start()  # the supervisor restarts it (systemd Restart=always): its broker sessions resume
        restarted_at = time.monotonic() - killed_at
        wait_for(lambda: world.settled(["w1", "w2"]), timeout=30, what="the leases to settle over both again")
        time.sleep(5)
    stream.wait_done()
    all_stored_once(world, stream.sent)
    one_alert_per_press(world, stream)
    assert dead_people, "w1 held nobody: the test would prove nothing"
    during = [latency for sent, latency in stream.latencies if killed_at - 1 <= sent <= killed_at + restarted_at]
    print(f"\nw1 killed; its {len(dead_people)} people taken by w2 after {taken_after:.1f} s (lease {LEASE_S} s); "
          f"w1 restarted after {restarted_at:.1f} s")
    print(f"presses sent during the failover: {len(during)}, press -> alert max {max(during, default=0):.2f} s")
    print(stream.report("whole run, with the failover"))
    # Every worker takes every call for help (the alarms topic is not shared), so a press waits only for
    # the dead holder's lease to lapse and the takeover, never for the hub's resend or the restart.
    assert max(during, default=0) < 2 * LEASE_S


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_worker_that_never_comes_back_stops_taking_its_turn(world: World) -> None:
    """A worker killed for good: its sessions expire at the broker (5 s here), so the broker stops giving it
    a turn of the stream; what they held comes again from the hubs' resends. Nothing lost, nothing doubled,
    and the presses sent once the expiry and a resend have passed reach an alert as fast as before."""
    world.env["TELECARE_WORKER_SESSION_EXPIRY_S"] = "5"
    first = world.worker("w1")
    world.worker("w2")
    wait_for(lambda: world.settled(["w1", "w2"]), timeout=30, what="the leases to settle over both workers")
    world.connect_hubs()
    with Stream(world) as stream:
        time.sleep(5)
        killed_at = time.monotonic()
        first.kill()
        wait_for(lambda: world.settled(["w2"]), timeout=LEASE_S * 4, what="w2 to take the dead worker's people")
        time.sleep(25)
    stream.wait_done()
    all_stored_once(world, stream.sent)
    one_alert_per_press(world, stream)
    before = [latency for sent, latency in stream.latencies if sent < killed_at]
    settled = [latency for sent, latency in stream.latencies if sent > killed_at + LEASE_S + 10]
    print(f"\nw1 killed for good; presses before: max {max(before, default=0):.2f} s; "
          f"after the expiry: {len(settled)}, max {max(settled, default=0):.2f} s")
    print(stream.report("whole run, one worker lost for good"))
    assert settled, "no press after the expiry: the test would prove nothing"
    assert max(settled) < 5  # the hubs' first resend is at 5 s: none waited for one


@pytest.mark.slow
def test_escalation_steps_are_sent_once_with_two_workers(world: World) -> None:
    with world.sessions() as session:  # hub-1's person on the keyholder-only service: Kim is e-mailed at once
        person = session.get(Person, world.people["hub-1"])
        assert person is not None
        person.service = "keyholder_only"
        kim = add_responder(session, "Kim (daughter)", "keyholder", "mailto:kim@family.test", "mailto:kim@work.test")
        session.add(PersonContact(person_id=person.id, responder_id=kim.id, position=0, nominated_at=datetime.now(UTC)))
        session.commit()
    with smtp_server() as smtp:
        world.env |= {"TELECARE_SMTP__HOST": smtp.host, "TELECARE_SMTP__PORT": str(smtp.port),
                      "TELECARE_SMTP__STARTTLS": "false", "TELECARE_SMTP__MAIL_FROM": "alerts@centre.test"}
        world.worker("w1")
        world.worker("w2")
        wait_for(lambda: world.settled(["w1", "w2"]), timeout=30, what="the leases to settle over both workers")
        world.connect_hubs()
        for n in range(3):
            world.uplinks["hub-1"].send(press("hub-1"))
            world.uplinks["hub-2"].send(reading("hub-2", n))
            time.sleep(0.5)

        def mail_to(address: str) -> int:
            return sum(address in mail.rcpt_tos for mail in smtp.mailbox.received)

        wait_for(lambda: mail_to("kim@family.test") and mail_to("kim@work.test"), timeout=60,
                 what="the keyholder's two addresses to be e-mailed")
        time.sleep(5)  # both workers' escalators have had several passes since
        with world.sessions() as session:
            log = session.execute(select(Notification.reference, Notification.address, Notification.purpose,
                                         Notification.status, Notification.lease_owner)).all()
        mails = [(mail.rcpt_tos, mail.message["Message-ID"], mail.message["Date"]) for mail in smtp.mailbox.received]
        assert (mail_to("kim@family.test"), mail_to("kim@work.test")) == (1, 1), (log, mails)
    with world.sessions() as session:
        alerts = session.scalars(select(Alert).where(Alert.person_id == world.people["hub-1"],
                                                     Alert.rule == "pendant_alarm")).all()
        assert len(alerts) == 1 and alerts[0].repeat_count == 2
        sent = session.scalars(select(Notification.address).where(Notification.alert_id == alerts[0].id,
                                                                  Notification.status == "sent")).all()
        assert sorted(sent) == ["mailto:kim@family.test", "mailto:kim@work.test"]
