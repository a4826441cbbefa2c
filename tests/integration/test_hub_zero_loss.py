"""Nothing the hub commits is lost: a hub in a subprocess streams numbered alarms, door events and
oximeter readings through its durable outbox to a real Mosquitto while (a) the broker is stopped
for 30 s, (b) the hub is killed with SIGKILL and restarted, (c) both. A centre-side subscriber
with a persistent session must end up with every message, each device's messages in order, and
alarms held during an outage ahead of the rest. Also: the uplink over TLS, verifying the broker."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub_agent.outbox import Lane, Outbox
from hub_agent.uplink import Uplink, tls_context
from monitoring_centre.broker import BrokerAccount, Mosquitto, find_mosquitto
from telecare_protocol.topics import ROOT
from tests.support.hub_zero_loss_proxy import NetworkCut
from tests.support.hub_zero_loss_support import (
    Collector,
    Received,
    TlsMosquitto,
    close,
    issue,
    make_ca,
    message_id,
    numbered_message,
    read_progress,
    subscriber,
)
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
HUB = "hub-1"
OUTAGE_S = 30.0
"""Required by the issue: the broker is away for 30 s."""


class Hub:
    """The sender script as a subprocess that the test can SIGKILL and start again."""

    def __init__(self, tmp: Path, host: str, port: int, password: str, count: int, rate: float) -> None:
        self.outbox, self.progress = tmp / "hub" / "outbox.db", tmp / "hub" / "progress.json"
        self.outbox.parent.mkdir()
        self.log = tmp / "hub" / "sender.log"
        self.argv = [sys.executable, "-m", "tests.support.hub_zero_loss_sender", "--hub-id", HUB, "--host", host,
                     "--port", str(port), "--outbox", str(self.outbox), "--progress", str(self.progress),
                     "--count", str(count), "--rate", str(rate)]
        self.env = {**os.environ, "HUB_PASSWORD": password}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdout=log, stderr=log)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def committed(self) -> int:
        return read_progress(self.progress)

    def waiting_in_outbox(self) -> int:
        """Rows on disk, read while the hub is dead."""
        outbox = Outbox(self.outbox, hub_id=HUB)
        try:
            return outbox.depth
        finally:
            outbox.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


@pytest.fixture
def collector() -> Collector:
    return Collector({str(message_id(HUB, n)): n for n in range(1000)})


@pytest.fixture
def centre_subscriber(mosquitto: Mosquitto, broker_accounts: dict[str, BrokerAccount],
                      collector: Collector) -> Iterator[Any]:
    client = subscriber(mosquitto.host, mosquitto.port, broker_accounts["centre"], "zero-loss-centre", collector,
                        topic=f"{ROOT}/{HUB}/+")
    yield client
    close(client)


def assert_everything_arrived_in_order(collector: Collector, count: int) -> list[Received]:
    distinct = collector.distinct()
    assert sorted(a.n for a in distinct) == list(range(count)), "a committed message never arrived"
    assert len({a.message_id for a in distinct}) == count
    assert collector.strays == []
    for device in {a.device_id for a in distinct}:
        numbers = [a.n for a in distinct if a.device_id == device]
        assert numbers == sorted(numbers), f"{device}'s messages arrived out of order"
    return distinct


def assert_held_alarms_went_first(distinct: list[Received], held: range) -> None:
    """Messages committed while the broker was away arrive alarms first, then events, then readings."""
    lanes = [a.lane for a in distinct if a.n in held]
    assert len(lanes) > 100 and Lane.ALARM in lanes
    assert lanes == sorted(lanes), "a held alarm arrived after a reading or an event held with it"


@pytest.mark.parametrize("scenario", ["broker_outage", "hub_killed", "both"])
def test_no_message_is_lost(scenario: str, tmp_path: Path, mosquitto: Mosquitto,
                            broker_accounts: dict[str, BrokerAccount], collector: Collector,
                            centre_subscriber: Any) -> None:
    count, rate = (400, 40.0) if scenario == "hub_killed" else (600, 25.0)
    with NetworkCut(mosquitto.host, mosquitto.port) as network:
        hub = Hub(tmp_path, network.host, network.port, broker_accounts[HUB].password, count, rate)
        run_scenario(scenario, hub, network, mosquitto, collector, count)


def run_scenario(scenario: str, hub: Hub, network: NetworkCut, mosquitto: Mosquitto, collector: Collector,
                 count: int) -> None:
    hub.start()
    try:
        assert collector.wait_for_count(60, 15), "the hub never got going"
        held = range(0)
        if scenario == "broker_outage":
            mosquitto.stop()
            stopped = hub.committed()
            time.sleep(OUTAGE_S)
            held = range(stopped + 25, hub.committed() + 1)  # 1 s of margin for what was on the wire
            mosquitto.start()
        elif scenario == "hub_killed":
            # The network dies first (what the hub wrote in the meantime is swallowed, no PUBACK
            # comes back), then the power: only the outbox on disk still has those messages.
            network.partition()
            time.sleep(2.0)
            hub.kill()
            killed_at = hub.committed()
            assert hub.waiting_in_outbox() >= 40
            network.heal()
            hub.start()
            wait_for(lambda: hub.committed() > killed_at + 40, 10, "the restarted hub to carry on")
            hub.kill()  # and once more, a moment after the restart
            hub.start()
        else:
            mosquitto.stop()
            stopped = hub.committed()
            time.sleep(OUTAGE_S / 3)
            hub.kill()
            time.sleep(1.0)
            hub.start()
            time.sleep(OUTAGE_S * 2 / 3 - 1.0)
            held = range(stopped + 25, hub.committed() + 1)
            mosquitto.start()
        assert hub.wait(60) == 0, "the hub did not get every message acknowledged: " + hub.log.read_text()[-2000:]
        assert collector.wait_for_count(count, 20), "the subscriber is missing messages"
    finally:
        hub.stop()
    distinct = assert_everything_arrived_in_order(collector, count)
    if held:
        assert_held_alarms_went_first(distinct, held)
    leftover = Outbox(hub.outbox, hub_id=HUB)
    assert leftover.depth == 0
    leftover.close()


# --- TLS -------------------------------------------------------------------------------------


def tls_broker(tmp_path: Path, accounts: dict[str, BrokerAccount], *, server_dns: list[str],
               server_ips: list[str], require_certificate: bool = False) -> TlsMosquitto:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto); CI installs it")
    certs = tmp_path / "certs"
    ca = make_ca(certs)
    cert, key = issue(certs, "broker", ca, dns=server_dns, ips=server_ips)
    issue(certs, "hub-1", ca, client=True)
    issue(certs, "centre", ca, client=True)
    return TlsMosquitto(tmp_path / "tls-broker", accounts.values(), cafile=certs / "ca.crt", certfile=cert,
                        keyfile=key, require_certificate=require_certificate)


def test_the_hub_sends_over_tls_with_its_client_certificate(tmp_path: Path,
                                                            broker_accounts: dict[str, BrokerAccount]) -> None:
    broker = tls_broker(tmp_path, broker_accounts, server_dns=["localhost"], server_ips=["127.0.0.1"],
                        require_certificate=True)
    certs = tmp_path / "certs"
    messages = [numbered_message(HUB, n) for n in range(20)]
    collector = Collector({str(m.id): n for n, m in enumerate(messages)})
    with broker:
        listener = subscriber(broker.host, broker.port, broker_accounts["centre"], "tls-centre", collector,
                              tls=tls_context(certs / "ca.crt", certs / "centre.crt", certs / "centre.key"))
        uplink = Uplink(hub_id=HUB, password=broker_accounts[HUB].password, host=broker.host, port=broker.port,
                        outbox_path=tmp_path / "outbox.db", tls_ca=certs / "ca.crt", tls_cert=certs / "hub-1.crt",
                        tls_key=certs / "hub-1.key")
        uplink.start()
        try:
            for message in messages:
                uplink.send(message)
            assert uplink.wait_until_delivered(10)
            assert collector.wait_for_count(len(messages), 10)
        finally:
            uplink.stop()
            close(listener)
    assert sorted(a.n for a in collector.distinct()) == list(range(len(messages)))


@pytest.mark.parametrize("mismatch", ["host_name", "certificate_authority"])
def test_the_hub_refuses_a_broker_it_cannot_verify(mismatch: str, tmp_path: Path,
                                                   broker_accounts: dict[str, BrokerAccount]) -> None:
    """A broker whose certificate names another host, or chains to another CA, gets nothing; the
    message waits in the outbox."""
    if mismatch == "host_name":
        broker = tls_broker(tmp_path, broker_accounts, server_dns=["broker.example.invalid"], server_ips=[])
        trusted = tmp_path / "certs" / "ca.crt"
    else:
        broker = tls_broker(tmp_path, broker_accounts, server_dns=["localhost"], server_ips=["127.0.0.1"])
        make_ca(tmp_path / "other", name="other")
        trusted = tmp_path / "other" / "other.crt"
    good_ca = tmp_path / "certs" / "ca.crt"
    collector = Collector({str(message_id(HUB, 0)): 0})
    with broker:
        listener = subscriber(broker.host, broker.port, broker_accounts["centre"], "tls-centre", collector,
                              tls=tls_context(good_ca) if mismatch != "host_name" else _no_host_check(good_ca))
        uplink = Uplink(hub_id=HUB, password=broker_accounts[HUB].password, host=broker.host, port=broker.port,
                        tls_ca=trusted)
        uplink.start()
        try:
            uplink.send(numbered_message(HUB, 0))
            assert not uplink.connected.wait(3)
            assert uplink.unacked == 1
            assert not collector.wait_for_count(1, 0.5)
        finally:
            uplink.stop(timeout=0.1)
            close(listener)


def _no_host_check(ca: Path) -> Any:
    """The test's own subscriber, which does not care which name the broker's certificate carries."""
    context = tls_context(ca)
    context.check_hostname = False
    return context


# --- storage failure --------------------------------------------------------------------------


def test_an_alarm_still_goes_out_when_the_outbox_cannot_commit(tmp_path: Path, mosquitto: Mosquitto,
                                                               broker_accounts: dict[str, BrokerAccount]) -> None:
    """A full SD card (SQLite's page limit stands in for it) must not keep an alarm from the centre."""
    uplink = Uplink(hub_id=HUB, password=broker_accounts[HUB].password, host=mosquitto.host, port=mosquitto.port,
                    outbox_path=tmp_path / "outbox.db")
    page_count = uplink.outbox._db.execute("PRAGMA page_count").fetchone()[0]
    uplink.outbox._db.execute(f"PRAGMA max_page_count = {page_count + 2}")
    readings = []
    for n in range(1, 500):  # while the broker is out of reach, fill the outbox until a commit fails
        readings.append(numbered_message(HUB, n * 10 + 3))
        uplink.send(readings[-1])
        if uplink.not_durable:
            break
    assert uplink.not_durable == 1
    alarm = numbered_message(HUB, 0)
    uplink.send(alarm)
    assert uplink.not_durable == 2
    collector = Collector({str(m.id): n for n, m in enumerate([alarm, *readings])})
    listener = subscriber(mosquitto.host, mosquitto.port, broker_accounts["centre"], "full-disk-centre", collector)
    uplink.start()
    try:
        assert collector.wait_for_count(len(readings) + 1, 10)
        assert uplink.wait_until_delivered(10)
    finally:
        uplink.stop()
        close(listener)
