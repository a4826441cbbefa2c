"""`telecare admin`: enrol a home, render the broker's files from the database, and a real
Mosquitto started on those files lets each hub in with its own password, as itself only."""

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitoring_centre.broker import BrokerAccount, find_mosquitto
from tests.support.helpers import Inbox, close, free_port, mqtt_client, publish, subscribe
from tests.support.waiting import wait_for


@dataclass
class Env:
    values: dict[str, str]

    def telecare(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "telecare.cli", *args], env=self.values, text=True,
                              capture_output=True, timeout=60)

    def ok(self, *args: str) -> dict[str, Any]:
        done = self.telecare(*args)
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result


@pytest.fixture
def env(tmp_path: Path) -> Env:
    values = {key: value for key, value in os.environ.items() if not key.startswith("TELECARE_")}
    values |= {"TELECARE_DATABASE_URL": f"sqlite:///{tmp_path / 'centre.db'}",
               "TELECARE_JWT_SECRET": secrets.token_urlsafe(48), "TELECARE_MQTT_PASSWORD": secrets.token_urlsafe(24)}
    return Env(values)


@dataclass(frozen=True)
class RunningBroker:
    """Mosquitto on the files `telecare admin broker-files` wrote (not on generated ones)."""

    host: str
    port: int
    process: subprocess.Popen[bytes]
    mqtt5: bool = True

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def broker_dir(tmp_path: Path) -> Path:
    return tmp_path / "broker"


def start_mosquitto(directory: Path) -> Iterator[RunningBroker]:
    executable = find_mosquitto()
    if executable is None:
        pytest.skip("mosquitto is not installed; CI installs it")
    port = free_port()
    config = [f"listener {port} 127.0.0.1", "allow_anonymous false", f"password_file {directory / 'passwd'}",
              f"acl_file {directory / 'acl'}"]
    if os.geteuid() == 0:
        config.append("user root")  # written with --owner none: ours, mode 600
    (directory / "mosquitto.conf").write_text("\n".join(config) + "\n")
    process = subprocess.Popen([executable, "-c", str(directory / "mosquitto.conf")], stderr=subprocess.PIPE)
    broker = RunningBroker("127.0.0.1", port, process)
    try:
        wait_for(lambda: _listening(port), what="mosquitto to listen")
        yield broker
    finally:
        broker.stop()


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_an_enrolled_hub_gets_in_as_itself_and_nobody_else(env: Env, broker_dir: Path) -> None:
    env.values["TELECARE_ALLOW_TEST_NHS_NUMBERS"] = "true"  # Ada's is a test patient's NHS number
    ada = env.ok("admin", "enrol", "--name", "Ada Lovelace", "--hub-id", "hub-0042", "--device", "pendant-1:pendant",
                 "--nhs-number", "943 476 5919")
    bob = env.ok("admin", "enrol", "--name", "Bob Jones", "--hub-id", "hub-0043", "--device", "pendant-2:pendant")
    env.ok("admin", "broker-files", "--out", str(broker_dir), "--owner", "none")
    assert ada["hub_password"] not in (broker_dir / "passwd").read_text()  # hashes only
    assert oct((broker_dir / "passwd").stat().st_mode & 0o777) == "0o600"

    for broker in start_mosquitto(broker_dir):
        centre = mqtt_client(broker, BrokerAccount("centre", env.values["TELECARE_MQTT_PASSWORD"], "centre"),
                             on_message=(inbox := Inbox()).on_message)
        subscribe(centre, "telecare/v1/hubs/#")
        hub = mqtt_client(broker, BrokerAccount("hub-0042", ada["hub_password"], "hub"))
        publish(hub, "telecare/v1/hubs/hub-0043/events", b"pretending to be Bob")
        publish(hub, "telecare/v1/hubs/hub-0042/events", b"honest")
        assert inbox.wait_for_payload(b"honest")
        assert b"pretending to be Bob" not in inbox.payloads()
        close(hub)
        with pytest.raises(ConnectionRefusedError):
            mqtt_client(broker, BrokerAccount("hub-0042", bob["hub_password"], "hub"))
        close(centre)


def test_a_rotated_password_replaces_the_old_one_at_the_next_reload(env: Env, broker_dir: Path) -> None:
    old = env.ok("admin", "enrol", "--name", "Ada", "--hub-id", "hub-0042")["hub_password"]
    env.ok("admin", "broker-files", "--out", str(broker_dir), "--owner", "none")
    for broker in start_mosquitto(broker_dir):
        close(mqtt_client(broker, BrokerAccount("hub-0042", old, "hub")))
        new = env.ok("admin", "rotate-hub-password", "hub-0042")["hub_password"]
        env.ok("admin", "broker-files", "--out", str(broker_dir), "--owner", "none")
        broker.process.send_signal(1)  # SIGHUP: mosquitto rereads its password and ACL files

        def old_refused(broker: RunningBroker = broker) -> bool:
            try:
                close(mqtt_client(broker, BrokerAccount("hub-0042", old, "hub")))
            except ConnectionRefusedError:
                return True
            return False

        wait_for(old_refused, timeout=10, what="the reload to refuse the old password", interval=0.1)
        close(mqtt_client(broker, BrokerAccount("hub-0042", new, "hub")))


@pytest.mark.parametrize(("args", "says"), [
    (["admin", "enrol", "--name", "X", "--hub-id", "hub-1", "--nhs-number", "9434765918"], "check digit"),
    (["admin", "enrol", "--name", "X", "--hub-id", "hub-1", "--nhs-number", "0000000000"], "digits are the same"),
    (["admin", "enrol", "--name", "X", "--hub-id", "hub-1", "--nhs-number", "943 476 5919"], "synthetic range"),
    (["admin", "enrol", "--name", "X", "--hub-id", "Hub 1"], "hub id"),
    (["admin", "enrol", "--name", "X", "--hub-id", "hub-1", "--device", "kettle"], "for example pendant-1:pendant"),
    (["admin", "add-user", "ada", "--role", "person"], "exactly one person"),
])
def test_mistakes_get_a_clear_error_and_change_nothing(env: Env, args: list[str], says: str) -> None:
    done = env.telecare(*args)
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert done.stdout == ""


def test_a_hub_id_is_enrolled_once(env: Env) -> None:
    env.ok("admin", "enrol", "--name", "Ada", "--hub-id", "hub-1")
    done = env.telecare("admin", "enrol", "--name", "Someone else", "--hub-id", "hub-1")
    assert done.returncode == 2 and "already enrolled" in done.stderr


def test_the_centre_refuses_to_start_without_its_secrets(env: Env) -> None:
    values = dict(env.values)
    del values["TELECARE_JWT_SECRET"]
    done = Env(values).telecare("centre")
    assert done.returncode == 2 and "TELECARE_JWT_SECRET: missing" in done.stderr
    values["TELECARE_JWT_SECRET"] = secrets.token_urlsafe(48)
    values["TELECARE_MQTT_PASSWORD"] = "changeme"
    done = Env(values).telecare("centre")
    assert done.returncode == 2 and "TELECARE_MQTT_PASSWORD: secret is a placeholder" in done.stderr
    assert "changeme" not in done.stderr  # the value itself is never echoed: it may be a real secret


def test_a_new_user_gets_a_generated_password_that_works(env: Env) -> None:
    person = env.ok("admin", "enrol", "--name", "Ada", "--hub-id", "hub-1")
    user = env.ok("admin", "add-user", "ada", "--role", "person", "--person-id", str(person["person_id"]))
    assert len(user["password"]) >= 16
    from fastapi.testclient import TestClient

    from centre_app.centre import Centre
    from centre_app.settings import CentreSettings

    centre = Centre(CentreSettings(database_url=env.values["TELECARE_DATABASE_URL"],
                                   jwt_secret=env.values["TELECARE_JWT_SECRET"],
                                   mqtt_password=env.values["TELECARE_MQTT_PASSWORD"]))
    with TestClient(centre.app) as client:
        login = client.post("/api/v1/auth/token", data={"username": "ada", "password": user["password"]})
        assert login.status_code == 200
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert [p["name"] for p in client.get("/api/v1/patients", headers=headers).json()] == ["Ada"]
    centre.engine.dispose()


def test_telecare_centre_serves_until_told_to_stop(env: Env, mosquitto: Any,
                                                   broker_accounts: dict[str, BrokerAccount]) -> None:
    port = free_port()
    values = env.values | {"TELECARE_MQTT_PORT": str(mosquitto.port),
                           "TELECARE_MQTT_PASSWORD": broker_accounts["centre"].password,
                           "TELECARE_HTTP_PORT": str(port)}
    centre = subprocess.Popen([sys.executable, "-m", "telecare.cli", "centre"], env=values,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def serving() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/openapi.json").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(serving, timeout=30, what="the centre's API")
        centre.send_signal(15)  # SIGTERM, as systemd stops it
        output, _ = centre.communicate(timeout=30)
    finally:
        if centre.poll() is None:
            centre.kill()
    assert centre.returncode == 0, output
    assert "Traceback" not in output
