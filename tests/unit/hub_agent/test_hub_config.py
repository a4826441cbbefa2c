"""The hub's TOML configuration and `telecare hub --config`: bad files and placeholder
credentials are refused with one line naming the key (exit 2, no traceback); a valid
configuration starts, reaches a real Mosquitto, reports the missing Bluetooth adapter
without dying, and stops cleanly on SIGTERM."""

import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hub_agent.config import EXAMPLE_PASSWORD, ConfigError, HubConfig, centre_password, load_config
from hub_agent.devices import DeviceKind
from monitoring_centre.broker import BrokerAccount, Mosquitto
from telecare_protocol.topics import ROOT
from tests.support.helpers import Inbox, close, free_port, mqtt_client, subscribe

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "deploy" / "hub" / "hub.example.toml"
NO_DBUS = not (Path("/run/dbus/system_bus_socket").exists() or Path("/var/run/dbus/system_bus_socket").exists())


def write_config(tmp_path: Path, *, password: str | None = "a-real-hub-password-" + secrets.token_hex(8),
                 host: str = "127.0.0.1", port: int = 1883, extra: str = "") -> Path:
    password_file = tmp_path / "password"
    if password is not None:
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
    config = tmp_path / "hub.toml"
    outbox = f'[outbox]\npath = "{tmp_path / "outbox.sqlite3"}"\n'
    config.write_text(f"""
hub_id = "hub-1"
heartbeat_interval_s = 60
[centre]
host = "{host}"
port = {port}
password_file = "{password_file}"
{outbox}
[bluetooth]
watchdog_s = 90
[[devices]]
id = "pendant-1"
address = "A4:C1:38:00:00:01"
kind = "pendant"
bindkey = "{secrets.token_hex(16)}"
expected_interval_s = 600
location = "worn"
[[devices]]
id = "oximeter-1"
address = "A4:C1:38:00:00:04"
kind = "oximeter"
expected_interval_s = 60
[zigbee2mqtt]
port = {free_port()}
[[zigbee2mqtt.devices]]
id = "door-2"
friendly_name = "front_door"
kind = "door"
{extra}
""")
    return config


def run_cli(config: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "telecare.cli", "hub", "--config", str(config)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_valid_file_loads(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    assert isinstance(config, HubConfig)
    (pendant, oximeter) = config.paired_devices()
    assert (pendant.kind, len(pendant.bindkey or b""), pendant.expected_interval_s) == (DeviceKind.PENDANT, 16, 600)
    assert oximeter.bindkey is None
    assert [d.friendly_name for d in config.zigbee_devices()] == ["front_door"]
    assert centre_password(config).startswith("a-real-hub-password-")


@pytest.mark.parametrize(("extra", "key"), [
    ("[power]\nsource = \"file\"\n", "power: power source 'file' needs a path"),
    ("surprise = 1\n", "zigbee2mqtt.devices[0].surprise: unknown key"),
])
def test_bad_keys_are_named(tmp_path: Path, extra: str, key: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(write_config(tmp_path, extra=extra))
    assert str(error.value).startswith(key)


def test_bad_bindkey_is_named(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('bindkey = "', 'bindkey = "zz', 1))
    with pytest.raises(ConfigError, match=r"^devices\[0\]\.bindkey: String should match pattern"):
        load_config(path)


def test_the_example_file_is_refused_as_it_stands(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(EXAMPLE)
    assert "placeholder" in str(error.value)


def test_the_example_is_valid_once_its_placeholders_are_replaced(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("hub-example", "hub-1").replace("centre.example.org", "centre.home.arpa")
    text = text.replace('"00000000000000000000000000000000"', f'"{secrets.token_hex(16)}"')
    text = text.replace('tls_ca = "/etc/telecare-hub/ca.pem"', "")
    (tmp_path / "hub.toml").write_text(text)
    config = load_config(tmp_path / "hub.toml")
    assert config.centre.password_file == Path("/etc/telecare-hub/password")


@pytest.mark.parametrize("password", ["", "changeme", "Password", "example", EXAMPLE_PASSWORD, "short-one"])
def test_placeholder_passwords_are_refused(tmp_path: Path, password: str) -> None:
    config = load_config(write_config(tmp_path, password=password))
    with pytest.raises(ConfigError, match=r"^centre\.password_file: the password is"):
        centre_password(config)


def test_password_from_the_environment(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace(f'password_file = "{tmp_path / "password"}"',
                                             'password_env = "HUB_PASSWORD"'))
    config = load_config(path)
    assert centre_password(config, {"HUB_PASSWORD": "x" * 20}) == "x" * 20
    with pytest.raises(ConfigError, match="HUB_PASSWORD is not set"):
        centre_password(config, {})
    with pytest.raises(ConfigError, match="placeholder"):
        centre_password(config, {"HUB_PASSWORD": "changeme"})


def test_cli_bad_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('kind = "pendant"', 'kind = "toaster"'))
    result = run_cli(path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "devices[0].kind" in lines[0] and "Traceback" not in result.stderr
    assert run_cli(tmp_path / "missing.toml").returncode == 2
    (tmp_path / "broken.toml").write_text("hub_id = ")
    broken = run_cli(tmp_path / "broken.toml")
    assert broken.returncode == 2 and "not valid TOML" in broken.stderr


def test_cli_refuses_a_placeholder_password(tmp_path: Path) -> None:
    result = run_cli(write_config(tmp_path, password=EXAMPLE_PASSWORD))
    assert result.returncode == 2
    assert "placeholder" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.integration
def test_cli_runs_beats_reports_the_missing_adapter_and_stops_on_sigterm(
        tmp_path: Path, mosquitto: Mosquitto, broker_accounts: dict[str, BrokerAccount]) -> None:
    centre = mqtt_client(mosquitto, broker_accounts["centre"])
    inbox = Inbox()
    centre.on_message = inbox.on_message
    subscribe(centre, f"{ROOT}/hub-1/#")
    config = write_config(tmp_path, password=broker_accounts["hub-1"].password, port=mosquitto.port)
    hub = subprocess.Popen([sys.executable, "-m", "telecare.cli", "hub", "--config", str(config)], cwd=REPO,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        def decoded(messages: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
            return [json.loads(p) for t, p in messages if not t.endswith("/status")]

        def has(kind: str, fault: str | None = None) -> bool:
            return any(m["type"] == kind and (fault is None or m.get("detail", {}).get("fault") == fault)
                       for m in decoded(inbox.messages))

        assert inbox.wait_for(lambda _: has("heartbeat"), timeout=30), hub.stderr
        beat = next(m for m in decoded(inbox.messages) if m["type"] == "heartbeat")
        assert [d["device_id"] for d in beat["devices"]] == ["pendant-1", "oximeter-1", "door-2"]
        assert beat["power"] == "mains"
        # Nothing listens on the zigbee2mqtt port: reported, not fatal.
        assert inbox.wait_for(lambda _: has("event", "zigbee2mqtt"), timeout=30)
        if NO_DBUS:  # no BlueZ here: the scanner's failure is reported and retried, not fatal
            assert inbox.wait_for(lambda _: has("event", "bluetooth_adapter"), timeout=30)
        assert hub.poll() is None, "the hub died"
        hub.send_signal(signal.SIGTERM)
        assert hub.wait(30) == 0
        assert inbox.wait_for(lambda messages: messages[-1] == (f"{ROOT}/hub-1/status", b"offline"))
        stderr = hub.stderr.read() if hub.stderr else ""
        assert "Traceback" not in stderr
    finally:
        if hub.poll() is None:
            hub.kill()
            hub.wait()
        close(centre)
