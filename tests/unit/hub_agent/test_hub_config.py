"""The hub's TOML configuration: bad files and placeholder credentials are refused with one
line naming the key. `telecare hub --config` itself runs in tests/integration/test_hub_cli.py."""

import secrets
from pathlib import Path

import pytest

from hub_agent.config import EXAMPLE_PASSWORD, ConfigError, HubConfig, centre_password, load_config
from hub_agent.devices import DeviceKind
from tests.support.hub_config import write_config

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "deploy" / "hub" / "hub.example.toml"


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


def _with_fallbacks(tmp_path: Path, line: str) -> Path:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("port = 1883\n", f"port = 1883\n{line}\n", 1))
    return path


def test_the_centres_other_brokers_are_tried_in_the_order_given(tmp_path: Path) -> None:
    config = load_config(_with_fallbacks(tmp_path, 'fallbacks = ["centre-b.internal:8883", "10.0.0.7:1883"]'))
    assert config.centre.fallback_brokers() == [("centre-b.internal", 8883), ("10.0.0.7", 1883)]
    (tmp_path / "plain").mkdir()
    assert load_config(write_config(tmp_path / "plain")).centre.fallback_brokers() == []


@pytest.mark.parametrize("entry", ['"centre-b.internal"', '"centre-b.internal:99999"', '"centre b:1883"', '":1883"'])
def test_a_fallback_broker_without_a_host_and_a_valid_port_is_refused(tmp_path: Path, entry: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(_with_fallbacks(tmp_path, f"fallbacks = [{entry}]"))
    assert str(error.value).startswith("centre")
