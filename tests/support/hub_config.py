"""A hub configuration file (`hub.toml` and its password file) for the hub's config and CLI tests."""

import secrets
from pathlib import Path

from tests.support.helpers import free_port


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
