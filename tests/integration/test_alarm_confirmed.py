"""An alarm is never lost: the centre confirms each message to the hub, end to end.

Real Mosquitto, a real centre process (`telecare centre`'s code, on SQLite) and a real hub
agent process (`tests.support.hub_e2e_process`: pendant, door and oximeter frames through its
radio queue, an event every 0.2 s, with its on-disk outbox). The hub keeps each message until
the centre's ack names it, and resends until then; each test ends with the exact count of
`assert_every_message_stored_once_and_alarmed_once`: every message the hub committed is
acknowledged once and stored once, every press said "help is coming" once, and the presses
made one alert (every later press counted once as a repeat).

- A centre stopped with SIGTERM keeps its broker sessions: what is published while it is down
  waits at the broker (raw QoS 1 publishes, no hub resending, to show it plainly).
- Three SIGTERMs and restarts of the centre in a row under the steady stream.
- The broker SIGKILLed 0.2 s after the broker PUBACKed a burst of presses, with the centre up
  and with it down, then restarted on the same port and persistence directory. Its autosave is
  30 s here, so it certainly loses what it PUBACKed (`test_broker.py` shows that a PUBACK is not
  a disk write); with the centre down and the hub's network cut, the test shows the centre
  started again without the burst, and only the hub's resending brings it.
- Each of those with the network between hub and broker cut for a while (a relay that
  swallows everything, `tests.support.hub_zero_loss_proxy`).
- Another hub can neither read nor write a hub's ack topic.
"""

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from centre_app import schema
from monitoring_centre.broker import Broker, BrokerAccount, EmbeddedBroker, Mosquitto, find_mosquitto
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.storage import make_engine
from telecare_protocol import Ack, DeviceEvent, DeviceType, EventCode, encode
from telecare_protocol.topics import ACKS_ROOT, ack_topic, topic_for
from tests.support.e2e_ack import (
    CentreProcess,
    HubProcess,
    assert_every_message_stored_once_and_alarmed_once,
    stored_ids,
)
from tests.support.helpers import Inbox, MQTTv5, MQTTv311, close, mqtt_client, publish, subscribe
from tests.support.hub_zero_loss_proxy import NetworkCut
from tests.support.waiting import holds_within, wait_for

HUB = "hub-1"
BROKER_AUTOSAVE_S = 30
"""Longer than any of these tests runs between a graceful save and the SIGKILL: the kill loses
everything the broker received since, as a real crash between two autosaves does."""
GRACE_S = 1.0
"""How long a message that must not arrive is waited for, after a control message that must arrive did."""


@pytest.fixture
def accounts() -> dict[str, BrokerAccount]:
    return {a.username: a for a in (BrokerAccount.generate("centre", "centre"), BrokerAccount.generate(HUB, "hub"),
                                    BrokerAccount.generate("hub-2", "hub"))}


@pytest.fixture
def broker(tmp_path: Path, accounts: dict[str, BrokerAccount]) -> Iterator[Mosquitto]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto); CI installs it")
    mosquitto = Mosquitto(tmp_path / "broker", accounts.values(), autosave_interval=BROKER_AUTOSAVE_S)
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture
def home(tmp_path: Path) -> Iterator[tuple[str, sessionmaker[Session], int]]:
    """The centre's database with the home enrolled: (url, sessions, person id)."""
    url = f"sqlite:///{tmp_path / 'centre.db'}"
    engine = make_engine(url)
    schema.upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session, session.begin():
        person = enrol_home(session, name="Ada", address="", hub_id=HUB, devices=[
            DeviceRecord("pendant-1", "pendant"), DeviceRecord("door-1", "door"),
            DeviceRecord("oximeter-1", "oximeter")])
    yield url, sessions, person.id
    engine.dispose()


def acked(hub: HubProcess) -> int:
    return len(hub.journal().acked)


def flowing(hub: HubProcess, more_than: int, what: str, timeout: float = 60) -> int:
    """Wait until the centre has acknowledged more than `more_than` messages to the hub; return how many."""
    return wait_for(lambda: (n := acked(hub)) > more_than and n, timeout=timeout, what=what)


# --- a graceful stop keeps the sessions --------------------------------------------------------


def test_a_centre_stopped_with_sigterm_keeps_its_sessions(tmp_path: Path, broker: Mosquitto,
                                                          accounts: dict[str, BrokerAccount],
                                                          home: tuple[str, sessionmaker[Session], int]) -> None:
    """50 presses published (QoS 1, nobody resending) while the centre is stopped are all stored after it
    starts again: a stopping centre neither unsubscribes nor ends its sessions."""
    url, sessions, _person = home
    centre = CentreProcess(tmp_path, url, broker.host, broker.port, accounts["centre"].password)
    centre.start()
    assert centre.terminate() == 0
    hub = mqtt_client(broker, accounts[HUB])
    presses = [DeviceEvent.new(hub_id=HUB, device_id="pendant-1", device_type=DeviceType.PERSONAL_TRIGGER,
                               code=EventCode.MANUAL_ALARM, source_ts=datetime.now(UTC)) for _ in range(50)]
    try:
        for press in presses:
            ack = publish(hub, topic_for(HUB, "event"), encode(press))
            assert ack is not None and not ack.is_failure
    finally:
        close(hub)
    try:
        centre.start()
        wait_for(lambda: len(stored_ids(sessions, HUB)) == 50, timeout=30, what="the presses made while it was down")
    finally:
        centre.stop()
    assert set(stored_ids(sessions, HUB)) == {str(p.id) for p in presses}


# --- the centre restarted three times under a steady stream --------------------------------------


@pytest.mark.parametrize("network", ["direct", "network_cut"])
def test_three_centre_restarts_under_a_steady_stream_lose_nothing(
        network: str, tmp_path: Path, broker: Mosquitto, accounts: dict[str, BrokerAccount],
        home: tuple[str, sessionmaker[Session], int]) -> None:
    url, sessions, person = home
    with NetworkCut(broker.host, broker.port) as relay:
        centre = CentreProcess(tmp_path, url, broker.host, broker.port, accounts["centre"].password)
        hub = HubProcess(tmp_path, HUB, relay.host, relay.port, accounts[HUB].password)
        try:
            centre.start()
            hub.start()
            seen = flowing(hub, 10, "the centre's first acks")
            for restart in range(3):
                assert centre.terminate() == 0, centre.log_path.read_text()[-2000:]
                cut = network == "network_cut" and restart == 1
                if cut:
                    relay.partition()
                time.sleep(1.0)  # the stream goes on: the broker keeps it for the centre
                centre.start()
                if cut:
                    time.sleep(1.0)
                    relay.heal()
                seen = flowing(hub, seen, f"acks after restart {restart + 1}")
            assert hub.finish() == 0, hub.log_tail()
        finally:
            hub.stop()
            centre.stop()
    journal = hub.journal()
    assert len(journal.presses) >= 10
    assert_every_message_stored_once_and_alarmed_once(journal, sessions, HUB, person)


# --- the broker killed right after a burst ------------------------------------------------------


@pytest.mark.parametrize("network", ["direct", "network_cut"])
@pytest.mark.parametrize("centre_state", ["centre_up", "centre_down"])
def test_a_broker_killed_right_after_a_burst_loses_nothing(
        centre_state: str, network: str, tmp_path: Path, broker: Mosquitto, accounts: dict[str, BrokerAccount],
        home: tuple[str, sessionmaker[Session], int]) -> None:
    url, sessions, person = home
    cut = network == "network_cut"
    with NetworkCut(broker.host, broker.port) as relay:
        centre = CentreProcess(tmp_path, url, broker.host, broker.port, accounts["centre"].password)
        hub = HubProcess(tmp_path, HUB, relay.host, relay.port, accounts[HUB].password)
        try:
            centre.start()
            hub.start()
            seen = flowing(hub, 10, "the centre's first acks")
            broker.restart()  # a graceful save of both sessions; the next autosave is 30 s away
            seen = flowing(hub, seen, "acks after the broker's graceful restart")
            if centre_state == "centre_down":
                assert centre.terminate() == 0
            hub.tell("burst")
            wait_for(lambda: hub.journal().bursts, timeout=30, what="the broker to PUBACK the burst")
            published = time.monotonic()
            if cut:
                relay.partition()
            time.sleep(0.2)
            broker.kill()
            assert time.monotonic() - published < 0.3, "the kill must come within 0.3 s of the burst"
            broker.start()
            burst = set(hub.journal().bursts[0])
            assert len(burst) >= 40
            if centre_state == "centre_down":
                centre.start()
                if cut:  # the hub cannot resend yet: the centre gets what the broker kept, which is none of it
                    assert not holds_within(lambda: burst & set(stored_ids(sessions, HUB)), 3.0)
            if cut:
                relay.heal()
            assert hub.finish() == 0, hub.log_tail()
        finally:
            hub.stop()
            centre.stop()
    journal = hub.journal()
    assert len(burst & journal.presses) >= 40, "the burst's presses"
    assert_every_message_stored_once_and_alarmed_once(journal, sessions, HUB, person)


# --- the ack topic's ACL --------------------------------------------------------------------------


def check_ack_topic_is_private(broker: Broker, accounts: dict[str, BrokerAccount], protocol: object) -> None:
    """hub-1 hears its acks; hub-2 hears none of them and cannot write one, and neither can hub-1 itself."""
    owner_inbox, snoop_inbox = Inbox(), Inbox()
    owner = mqtt_client(broker, accounts[HUB], protocol=protocol, on_message=owner_inbox.on_message)  # type: ignore[arg-type]
    snoop = mqtt_client(broker, accounts["hub-2"], protocol=protocol,  # type: ignore[arg-type]
                        on_message=snoop_inbox.on_message)
    centre = mqtt_client(broker, accounts["centre"], protocol=protocol)  # type: ignore[arg-type]
    try:
        assert not subscribe(owner, ack_topic(HUB))[0].is_failure
        for topic in (ack_topic(HUB), f"{ACKS_ROOT}/+", f"{ACKS_ROOT}/#", "#"):
            subscribe(snoop, topic)  # refused or granted-but-empty: either way nothing may arrive
        forged = [encode(Ack(hub_id=HUB, stored=(DeviceEvent.new(
            hub_id=HUB, device_id="pendant-1", device_type=DeviceType.PERSONAL_TRIGGER, code=EventCode.MANUAL_ALARM,
            source_ts=datetime.now(UTC)).id,))) for _ in range(2)]
        publish(snoop, ack_topic(HUB), forged[0])  # another hub forging hub-1's ack
        publish(owner, ack_topic(HUB), forged[1])  # hub-1 forging its own
        real = encode(Ack(hub_id=HUB, stored=(DeviceEvent.new(
            hub_id=HUB, device_id="pendant-1", device_type=DeviceType.PERSONAL_TRIGGER, code=EventCode.MANUAL_ALARM,
            source_ts=datetime.now(UTC)).id,)))
        publish(centre, ack_topic(HUB), real)
        assert owner_inbox.wait_for_payload(real), "the centre's ack never reached its hub"
        assert not holds_within(lambda: snoop_inbox.messages, GRACE_S), snoop_inbox.messages
        assert not holds_within(lambda: {p for _, p in owner_inbox.messages} & set(forged), GRACE_S)
        assert owner_inbox.messages == [(ack_topic(HUB), real)]
    finally:
        for client in (owner, snoop, centre):
            close(client)


def test_another_hub_can_neither_read_nor_write_a_hubs_acks(broker: Mosquitto,
                                                            accounts: dict[str, BrokerAccount]) -> None:
    check_ack_topic_is_private(broker, accounts, MQTTv5)
    check_ack_topic_is_private(broker, accounts, MQTTv311)


def test_the_embedded_broker_keeps_acks_private_too(accounts: dict[str, BrokerAccount]) -> None:
    with EmbeddedBroker(accounts.values()) as embedded:
        check_ack_topic_is_private(embedded, accounts, MQTTv311)
