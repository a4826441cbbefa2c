"""The broker's accounts, ACL and durability, against a real Mosquitto and the embedded amqtt.

A spoofed message "never arriving" is checked against a control message from the same
hub in the same window, so these tests fail if delivery is broken rather than pass vacuously.
"""

import os
import shutil
import socket
import stat
import subprocess
import uuid
from pathlib import Path

import pytest
from paho.mqtt.client import Client
from paho.mqtt.enums import MQTTProtocolVersion

from monitoring_centre.broker import (
    Broker,
    BrokerAccount,
    BrokerStartError,
    EmbeddedBroker,
    Mosquitto,
    find_mosquitto,
    mosquitto_password_line,
    start_broker,
    verify_mosquitto_password,
)
from telecare_protocol.topics import ROOT, topic_for
from tests.support.helpers import (
    TIMEOUT,
    Inbox,
    MQTTv5,
    MQTTv311,
    close,
    mqtt_client,
    publish,
    state,
    subscribe,
)
from tests.support.waiting import wait_for

GRACE = 1.0
"""How long a message that must NOT arrive is waited for, after a control message that must arrive did."""

Accounts = dict[str, BrokerAccount]
NOT_AUTHORIZED = 0x87


def _unique(label: str) -> bytes:
    return f"{label}-{uuid.uuid4().hex}".encode()


def _centre_inbox(broker: Broker, accounts: Accounts, protocol: MQTTProtocolVersion) -> tuple[Client, Inbox]:
    inbox = Inbox()
    centre = mqtt_client(broker, accounts["centre"], protocol=protocol, on_message=inbox.on_message)
    codes = subscribe(centre, f"{ROOT}/#", qos=1)
    assert not codes[0].is_failure, codes
    return centre, inbox


# --- shared account / ACL checks, run against both brokers ------------------------------


def check_own_topic_delivered(broker: Broker, accounts: Accounts, protocol: MQTTProtocolVersion) -> None:
    centre, inbox = _centre_inbox(broker, accounts, protocol)
    hub = mqtt_client(broker, accounts["hub-1"], protocol=protocol)
    try:
        payload = _unique("alarm")
        ack = publish(hub, topic_for("hub-1", "event"), payload)
        assert ack is not None and not ack.is_failure
        assert inbox.wait_for(lambda ms: (topic_for("hub-1", "event"), payload) in ms), inbox.messages
    finally:
        close(hub)
        close(centre)


def check_spoof_not_delivered(broker: Broker, accounts: Accounts, protocol: MQTTProtocolVersion) -> int | None:
    """hub-1 publishes as hub-2, then on its own topic. Returns the spoof's PUBACK reason code."""
    centre, inbox = _centre_inbox(broker, accounts, protocol)
    hub = mqtt_client(broker, accounts["hub-1"], protocol=protocol)
    try:
        spoof, control = _unique("spoof"), _unique("control")
        spoof_ack = publish(hub, topic_for("hub-2", "event"), spoof)
        publish(hub, topic_for("hub-1", "event"), control)
        assert inbox.wait_for_payload(control), "the control message from hub-1's own topic never arrived"
        assert not inbox.wait_for_payload(spoof, timeout=GRACE), "hub-1 published as hub-2 and it was delivered"
        assert [topic for topic, _ in inbox.messages] == [topic_for("hub-1", "event")]
        return spoof_ack.value if spoof_ack is not None else None
    finally:
        close(hub)
        close(centre)


def check_hub_cannot_read(broker: Broker, accounts: Accounts, protocol: MQTTProtocolVersion) -> None:
    """hub-2 subscribes to everything and gets nothing of hub-1's, while the centre does."""
    centre, centre_inbox = _centre_inbox(broker, accounts, protocol)
    snoop_inbox = Inbox()
    snoop = mqtt_client(broker, accounts["hub-2"], protocol=protocol, on_message=snoop_inbox.on_message)
    hub = mqtt_client(broker, accounts["hub-1"], protocol=protocol)
    try:
        subscribe(snoop, f"{ROOT}/#")  # refused or granted-but-empty: either way nothing may arrive
        subscribe(snoop, "#")
        payload = _unique("private")
        publish(hub, topic_for("hub-1", "reading"), payload)
        assert centre_inbox.wait_for_payload(payload)
        assert not snoop_inbox.wait_for(lambda ms: bool(ms), timeout=GRACE), snoop_inbox.messages
    finally:
        close(hub)
        close(snoop)
        close(centre)


def check_wrong_password_refused(broker: Broker, accounts: Accounts, protocol: MQTTProtocolVersion) -> None:
    wrong = BrokerAccount("hub-1", accounts["hub-1"].password + "x", "hub")
    with pytest.raises(ConnectionRefusedError):
        mqtt_client(broker, wrong, protocol=protocol)
    # another account's (valid) password does not work either
    borrowed = BrokerAccount("hub-1", accounts["hub-2"].password, "hub")
    with pytest.raises(ConnectionRefusedError):
        mqtt_client(broker, borrowed, protocol=protocol)
    unknown = BrokerAccount("hub-9", accounts["hub-1"].password, "hub")
    with pytest.raises(ConnectionRefusedError):
        mqtt_client(broker, unknown, protocol=protocol)


def check_anonymous_refused(broker: Broker, protocol: MQTTProtocolVersion) -> None:
    with pytest.raises(ConnectionRefusedError):
        mqtt_client(broker, None, protocol=protocol)


# --- Mosquitto --------------------------------------------------------------------------


def test_hub_publishes_on_its_own_topic_and_the_centre_gets_it(mosquitto: Mosquitto, broker_accounts: Accounts) -> None:
    check_own_topic_delivered(mosquitto, broker_accounts, MQTTv5)


def test_hub_publishing_as_another_hub_is_never_delivered(mosquitto: Mosquitto, broker_accounts: Accounts) -> None:
    reason = check_spoof_not_delivered(mosquitto, broker_accounts, MQTTv5)
    assert reason == NOT_AUTHORIZED  # MQTT 5 tells the hub; 3.1.1 cannot


def test_hub_cannot_read_other_hubs(mosquitto: Mosquitto, broker_accounts: Accounts) -> None:
    check_hub_cannot_read(mosquitto, broker_accounts, MQTTv5)


def test_wrong_password_is_refused(mosquitto: Mosquitto, broker_accounts: Accounts) -> None:
    check_wrong_password_refused(mosquitto, broker_accounts, MQTTv5)


def test_anonymous_is_refused(mosquitto: Mosquitto) -> None:
    check_anonymous_refused(mosquitto, MQTTv5)
    check_anonymous_refused(mosquitto, MQTTv311)


def test_mqtt311_clients_get_the_same_acl(mosquitto: Mosquitto, broker_accounts: Accounts) -> None:
    check_own_topic_delivered(mosquitto, broker_accounts, MQTTv311)
    check_spoof_not_delivered(mosquitto, broker_accounts, MQTTv311)


def _away_centre(broker: Broker, centre: BrokerAccount, client_id: str) -> None:
    """Open a persistent session subscribed at QoS 1, then leave."""
    client = mqtt_client(broker, centre, client_id, clean_start=False, session_expiry=3600)
    assert not subscribe(client, f"{ROOT}/+/+", qos=1)[0].is_failure
    close(client)


def _publish_while_away(broker: Broker, hub: BrokerAccount, count: int) -> list[bytes]:
    client = mqtt_client(broker, hub)
    payloads = [_unique(f"queued-{i}") for i in range(count)]
    try:
        for payload in payloads:
            ack = publish(client, topic_for(hub.username, "event"), payload, qos=1)
            assert ack is not None and not ack.is_failure
    finally:
        close(client)
    return payloads


def _return_centre(broker: Broker, centre: BrokerAccount, client_id: str) -> tuple[Client, Inbox]:
    """Resume the session without subscribing again: anything received came from the session."""
    inbox = Inbox()
    client = mqtt_client(broker, centre, client_id, clean_start=False, session_expiry=3600, on_message=inbox.on_message)
    return client, inbox


def test_persistent_session_gets_what_was_published_while_away(mosquitto: Mosquitto, broker_accounts: Accounts) -> None:
    _away_centre(mosquitto, broker_accounts["centre"], "centre-persistent")
    payloads = _publish_while_away(mosquitto, broker_accounts["hub-1"], 5)
    client, inbox = _return_centre(mosquitto, broker_accounts["centre"], "centre-persistent")
    try:
        assert state(client).session_present
        assert inbox.wait_for(lambda ms: len(ms) >= len(payloads)), inbox.messages
        assert inbox.payloads() == payloads  # all of them, in order
    finally:
        close(client)


def test_persistent_session_survives_a_broker_restart(mosquitto: Mosquitto, broker_accounts: Accounts) -> None:
    _away_centre(mosquitto, broker_accounts["centre"], "centre-restart")
    payloads = _publish_while_away(mosquitto, broker_accounts["hub-1"], 5)
    port = mosquitto.port
    mosquitto.restart()  # SIGTERM: mosquitto saves its database on the way out
    assert mosquitto.port == port
    assert "Saving in-memory database" in mosquitto.log_tail(200)
    client, inbox = _return_centre(mosquitto, broker_accounts["centre"], "centre-restart")
    try:
        assert state(client).session_present
        assert inbox.wait_for(lambda ms: len(ms) >= len(payloads)), inbox.messages
        assert inbox.payloads() == payloads
    finally:
        close(client)
    assert "being dropped" not in mosquitto.log_path.read_text()


def test_queued_messages_survive_a_crash_after_an_autosave(mosquitto: Mosquitto, broker_accounts: Accounts) -> None:
    _away_centre(mosquitto, broker_accounts["centre"], "centre-crash")
    payloads = _publish_while_away(mosquitto, broker_accounts["hub-1"], 3)
    db = mosquitto.db_path
    before = db.stat().st_mtime_ns if db.exists() else None  # mosquitto rewrites it after what was acknowledged
    wait_for(lambda: db.exists() and db.stat().st_mtime_ns != before,
             timeout=min(mosquitto.autosave_interval * 3 + 5, 30), what=f"mosquitto to autosave {db}")
    mosquitto.kill()  # no shutdown save
    mosquitto.start()
    client, inbox = _return_centre(mosquitto, broker_accounts["centre"], "centre-crash")
    try:
        assert state(client).session_present
        assert inbox.wait_for(lambda ms: len(ms) >= len(payloads)), inbox.messages
        assert inbox.payloads() == payloads
    finally:
        close(client)


def test_puback_is_not_a_disk_write(tmp_path: Path, broker_accounts: Accounts) -> None:
    """Why autosave_interval is short: a crash loses what arrived since the last save (mosquitto #1855)."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    with Mosquitto(tmp_path / "lazy", broker_accounts.values(), autosave_interval=3600) as broker:
        _away_centre(broker, broker_accounts["centre"], "centre-lazy")
        _publish_while_away(broker, broker_accounts["hub-1"], 1)  # acknowledged...
        broker.kill()
        broker.start()
        client, inbox = _return_centre(broker, broker_accounts["centre"], "centre-lazy")
        try:
            assert not state(client).session_present  # ...and gone, with the session
            assert not inbox.wait_for(lambda ms: bool(ms), timeout=GRACE)
        finally:
            close(client)


def test_config_files_are_private_and_use_our_password_lines(mosquitto: Mosquitto, broker_accounts: Accounts) -> None:
    for name in ("mosquitto.conf", "passwd", "acl"):
        mode = stat.S_IMODE((mosquitto.directory / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    lines = (mosquitto.directory / "passwd").read_text().splitlines()
    assert sorted(line.split(":")[0] for line in lines) == sorted(broker_accounts)
    acl = (mosquitto.directory / "acl").read_text()
    assert f"pattern write {ROOT}/%u/#" in acl
    assert f"user centre\ntopic read {ROOT}/#" in acl
    conf = mosquitto.config_path.read_text()
    assert "allow_anonymous false" in conf
    assert f"listener {mosquitto.port} 127.0.0.1" in conf
    # The broker was started from exactly these lines, and hub-1 authenticates against them:
    check_own_topic_delivered(mosquitto, broker_accounts, MQTTv5)


def test_password_line_has_mosquitto_passwd_format() -> None:
    line = mosquitto_password_line("hub-1", "s3cret")
    username, hashed = line.split(":", 1)
    empty, kind, iterations, salt, digest = hashed.split("$")
    assert (username, empty, kind, iterations, len(salt), len(digest)) == ("hub-1", "", "7", "101", 16, 88)
    assert verify_mosquitto_password(hashed, "s3cret")
    assert not verify_mosquitto_password(hashed, "s3cret ")
    assert mosquitto_password_line("hub-1", "s3cret") != line  # fresh salt each time


def test_we_verify_what_mosquitto_passwd_writes(tmp_path: Path) -> None:
    tool = shutil.which("mosquitto_passwd") or shutil.which("mosquitto_passwd", path="/usr/sbin:/usr/local/sbin")
    if tool is None:
        pytest.skip("mosquitto_passwd is not installed")
    path = tmp_path / "passwd"
    subprocess.run([tool, "-c", "-b", str(path), "hub-1", "s3cret"], check=True, capture_output=True)
    username, hashed = path.read_text().strip().split(":", 1)
    assert username == "hub-1"
    assert hashed.startswith("$7$101$")
    assert verify_mosquitto_password(hashed, "s3cret")
    assert not verify_mosquitto_password(hashed, "S3cret")


@pytest.mark.parametrize("username", ["hub+1", "hub#", "hubs/hub-1", "hub 1", "hub\t1", "", "hub:1", "hub\n1"])
def test_usernames_that_would_break_the_acl_are_rejected(username: str) -> None:
    with pytest.raises(ValueError):
        BrokerAccount(username, "password-not-used", "hub")


def test_account_repr_hides_the_password() -> None:
    account = BrokerAccount.generate("hub-1", "hub")
    assert account.password not in repr(account)


def test_start_fails_with_the_log_tail_when_the_port_is_taken(tmp_path: Path, broker_accounts: Accounts) -> None:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))  # bound, not listening: only mosquitto's own bind() notices
        broker = Mosquitto(tmp_path / "taken", broker_accounts.values(), port=blocker.getsockname()[1])
        with pytest.raises(BrokerStartError, match="Address already in use"):
            broker.start()
        assert not broker.running
        blocker.listen()  # now anyone can see the port is taken
        with pytest.raises(BrokerStartError, match="already in use"):
            broker.start()


def test_stop_is_idempotent_and_restart_reuses_the_port(mosquitto: Mosquitto) -> None:
    port = mosquitto.port
    mosquitto.stop()
    mosquitto.stop()
    assert not mosquitto.running
    mosquitto.start()
    assert mosquitto.running and mosquitto.port == port


def test_start_broker_prefers_mosquitto(tmp_path: Path, broker_accounts: Accounts) -> None:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    broker = start_broker(tmp_path / "auto", broker_accounts.values())
    try:
        assert isinstance(broker, Mosquitto) and broker.mqtt5
        check_own_topic_delivered(broker, broker_accounts, MQTTv5)
    finally:
        broker.stop()


def test_start_broker_falls_back_to_the_embedded_broker(
    tmp_path: Path, broker_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("monitoring_centre.broker.find_mosquitto", lambda: None)
    broker = start_broker(tmp_path / "auto", broker_accounts.values())
    try:
        assert isinstance(broker, EmbeddedBroker) and not broker.mqtt5
        check_own_topic_delivered(broker, broker_accounts, MQTTv311)
    finally:
        broker.stop()


def test_start_broker_can_be_told_which(tmp_path: Path, broker_accounts: Accounts) -> None:
    broker = start_broker(tmp_path / "embedded", broker_accounts.values(), prefer="embedded")
    try:
        assert isinstance(broker, EmbeddedBroker)
    finally:
        broker.stop()
    with pytest.raises(ValueError, match="unknown broker"):
        start_broker(tmp_path / "x", broker_accounts.values(), prefer="rabbitmq")


def test_find_mosquitto_looks_in_sbin(monkeypatch: pytest.MonkeyPatch) -> None:
    if not any(os.access(f"{d}/mosquitto", os.X_OK) for d in ("/usr/sbin", "/usr/local/sbin")):
        pytest.skip("mosquitto is not installed in an sbin directory")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert find_mosquitto() is not None


# --- the embedded amqtt broker (MQTT 3.1.1 only) ----------------------------------------


def test_embedded_own_topic_delivered(embedded_broker: EmbeddedBroker, broker_accounts: Accounts) -> None:
    assert not embedded_broker.mqtt5
    check_own_topic_delivered(embedded_broker, broker_accounts, MQTTv311)


def test_embedded_spoof_not_delivered(embedded_broker: EmbeddedBroker, broker_accounts: Accounts) -> None:
    check_spoof_not_delivered(embedded_broker, broker_accounts, MQTTv311)


def test_embedded_hub_cannot_read_other_hubs(embedded_broker: EmbeddedBroker, broker_accounts: Accounts) -> None:
    check_hub_cannot_read(embedded_broker, broker_accounts, MQTTv311)


def test_embedded_wrong_password_refused(embedded_broker: EmbeddedBroker, broker_accounts: Accounts) -> None:
    check_wrong_password_refused(embedded_broker, broker_accounts, MQTTv311)


def test_embedded_anonymous_refused(embedded_broker: EmbeddedBroker) -> None:
    check_anonymous_refused(embedded_broker, MQTTv311)


def test_embedded_broker_stops_and_frees_its_port(broker_accounts: Accounts) -> None:
    broker = EmbeddedBroker(broker_accounts.values())
    broker.start()
    with socket.create_connection((broker.host, broker.port), timeout=TIMEOUT):
        pass
    broker.stop()
    broker.stop()
    with pytest.raises(OSError), socket.create_connection((broker.host, broker.port), timeout=1):
        pass
