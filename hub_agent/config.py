"""The hub's configuration: one TOML file, validated at start.

`deploy/hub/hub.example.toml` documents every key, and docs/hub.md ("Configuration")
repeats them. `load_config` reads the file with `tomllib` and validates it with pydantic;
anything wrong becomes a `ConfigError` whose message is one line naming the bad key
(`devices[1].bindkey: ...`), which `telecare hub` prints before exiting with status 2.

Secrets never live in the TOML file: the centre password is read from `password_file`
(mode 0600, owned by the hub's user) or from the environment variable named by
`password_env`. Placeholder credentials are refused, so a hub installed from the example
never runs with a guessable password: empty, "changeme", "password", "example", the
example's own placeholder, or anything shorter than 12 characters. Bind keys of one
repeated byte (all zeros...) are refused too: every device gets its own random key.
"""

import logging
import os
import stat
import tomllib
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hub_agent.devices import DeviceKind, PairedDevice
from hub_agent.outbox import DEFAULT_BUDGET_BYTES
from hub_agent.zigbee import DEFAULT_BASE_TOPIC, BrokerSettings, ZigbeeDevice
from telecare_protocol.messages import Identifier

EXAMPLE_PASSWORD = "replace-with-the-hub-password-from-the-centre"  # noqa: S105 - the placeholder we refuse
"""What `deploy/hub/install.sh` writes into a new password file; refused like any placeholder."""
PLACEHOLDERS = frozenset({"", "changeme", "change-me", "password", "secret", "admin", "default", "test", "example",
                          EXAMPLE_PASSWORD})
MIN_PASSWORD_LENGTH = 12
EXAMPLE_DOMAINS = ("example.org", "example.com", "example.net")
"""RFC 2606 names, as in the example file: never a real centre."""

log = logging.getLogger(__name__)

MacAddress = Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")]


class ConfigError(Exception):
    """The configuration cannot be used. The message is one line, naming the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CentreConfig(_Section):
    """The monitoring centre's MQTT broker."""

    host: str = Field(min_length=1)
    port: int = Field(default=8883, ge=1, le=65535)
    fallbacks: tuple[Annotated[str, Field(pattern=r"^[^\s:]+:[0-9]{1,5}$")], ...] = ()
    """Other brokers of the same centre, tried in order when `host` fails: "host:port" each
    (`hub_agent.uplink`: the hub fails over after `FAILOVER_AFTER` failed attempts). The same
    password and TLS settings apply to each."""
    password_file: Path | None = None
    password_env: str | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None

    def fallback_brokers(self) -> list[tuple[str, int]]:
        """`fallbacks` as (host, port) pairs. ValueError for a port outside 1..65535."""
        brokers = []
        for entry in self.fallbacks:
            host, _, port = entry.rpartition(":")
            if not 1 <= int(port) <= 65535:
                raise ValueError(f"fallback broker {entry!r}: the port is not 1..65535")
            brokers.append((host, int(port)))
        return brokers

    @model_validator(mode="after")
    def _one_password_source(self) -> Self:
        self.fallback_brokers()
        if (self.password_file is None) == (self.password_env is None):
            raise ValueError("set exactly one of password_file and password_env")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self


class OutboxConfig(_Section):
    path: Path | None = None
    """The durable outbox (SQLite); None keeps messages in memory only (tests, demos)."""
    budget_bytes: int = Field(default=DEFAULT_BUDGET_BYTES, gt=0)


class PowerConfig(_Section):
    source: Literal["fixed", "file", "gpio"] = "fixed"
    path: Path | None = None
    mains_level: Literal[0, 1] = 1

    @model_validator(mode="after")
    def _path_for_sources(self) -> Self:
        if self.source != "fixed" and self.path is None:
            raise ValueError(f"power source {self.source!r} needs a path")
        return self


class BluetoothConfig(_Section):
    enabled: bool = True
    adapter: str | None = Field(default=None, pattern=r"^hci[0-9]+$")
    scanning_mode: Literal["active", "passive"] = "active"
    watchdog_s: float = Field(default=90.0, ge=10)


class DeviceConfig(_Section):
    id: Identifier
    address: MacAddress
    kind: DeviceKind
    bindkey: str | None = Field(default=None, pattern=r"^[0-9A-Fa-f]{32}$")
    expected_interval_s: float = Field(default=3600.0, gt=0)
    location: str | None = None

    @field_validator("bindkey")
    @classmethod
    def _not_a_placeholder_key(cls, value: str | None) -> str | None:
        if value is not None and len(set(bytes.fromhex(value))) == 1:
            raise ValueError("a bind key of one repeated byte is a placeholder: use the device's own random key")
        return value

    @model_validator(mode="after")
    def _key_only_for_bthome(self) -> Self:
        if self.kind is DeviceKind.OXIMETER and self.bindkey is not None:
            raise ValueError("an oximeter (GATT) has no BTHome bind key")
        return self

    def paired(self) -> PairedDevice:
        return PairedDevice(device_id=self.id, address=self.address.upper(), kind=self.kind,
                            bindkey=bytes.fromhex(self.bindkey) if self.bindkey else None,
                            expected_interval_s=self.expected_interval_s, location=self.location)


class ZigbeeDeviceConfig(_Section):
    id: Identifier
    friendly_name: str = Field(min_length=1)
    kind: Literal[DeviceKind.DOOR, DeviceKind.BED, DeviceKind.MOTION, DeviceKind.PENDANT]
    location: str | None = None

    def device(self) -> ZigbeeDevice:
        return ZigbeeDevice(device_id=self.id, friendly_name=self.friendly_name, kind=self.kind,
                            location=self.location)


class ZigbeeConfig(_Section):
    """The home's own Zigbee2MQTT broker (not the centre's)."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password_file: Path | None = None
    base_topic: str = DEFAULT_BASE_TOPIC
    devices: list[ZigbeeDeviceConfig] = Field(default_factory=list)


class HubConfig(_Section):
    hub_id: Identifier
    heartbeat_interval_s: int = Field(default=60, gt=0, le=86400)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    centre: CentreConfig
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    power: PowerConfig = Field(default_factory=PowerConfig)
    bluetooth: BluetoothConfig = Field(default_factory=BluetoothConfig)
    devices: list[DeviceConfig] = Field(default_factory=list)
    zigbee2mqtt: ZigbeeConfig | None = None

    @model_validator(mode="after")
    def _not_the_example(self) -> Self:
        if "example" in self.hub_id:
            raise ValueError("hub_id is the example's placeholder: use the id the centre enrolled this hub with")
        if self.centre.host.rstrip(".").lower().endswith(EXAMPLE_DOMAINS):
            raise ValueError("centre.host is the example's placeholder: use your centre's broker")
        return self

    @model_validator(mode="after")
    def _unique(self) -> Self:
        ids = [d.id for d in self.devices] + [d.id for d in (self.zigbee2mqtt.devices if self.zigbee2mqtt else [])]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"device id {duplicates[0]!r} is used twice")
        addresses = [d.address.upper() for d in self.devices]
        if len(set(addresses)) != len(addresses):
            raise ValueError("two devices have the same address")
        if self.hub_id in ids:
            raise ValueError("a device cannot have the hub's id")
        return self

    def paired_devices(self) -> list[PairedDevice]:
        return [d.paired() for d in self.devices]

    def zigbee_devices(self) -> list[ZigbeeDevice]:
        return [d.device() for d in self.zigbee2mqtt.devices] if self.zigbee2mqtt else []


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    where = _where(tuple(first["loc"]))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    more = error.error_count() - 1
    return f"{where}: {message}" + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def load_config(path: Path) -> HubConfig:
    """Read and validate the TOML file, or raise `ConfigError` with a one-line reason."""
    try:
        with path.open("rb") as file:
            raw = tomllib.load(file)
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    try:
        config = HubConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_one_line(error)) from None
    for key, file_path in (("centre.tls_ca", config.centre.tls_ca), ("centre.tls_cert", config.centre.tls_cert),
                           ("centre.tls_key", config.centre.tls_key)):
        if file_path is not None and not file_path.is_file():
            raise ConfigError(f"{key}: {file_path} does not exist")
    return config


def _secret_from_file(key: str, path: Path) -> str:
    try:
        mode = path.stat().st_mode
        value = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConfigError(f"{key}: cannot read {path}: {error.strerror or error}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s: %s is readable by others; chmod 600 it", key, path)
    return value


def refuse_placeholder(key: str, password: str) -> str:
    if password.strip().lower() in PLACEHOLDERS or "replace-with" in password.lower():
        raise ConfigError(f"{key}: the password is a placeholder; put the hub's real password from the centre there")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(f"{key}: the password is shorter than {MIN_PASSWORD_LENGTH} characters")
    return password


def centre_password(config: HubConfig, environ: dict[str, str] | None = None) -> str:
    """The centre password, from its file or environment variable; placeholders refused."""
    centre = config.centre
    if centre.password_file is not None:
        return refuse_placeholder("centre.password_file",
                                  _secret_from_file("centre.password_file", centre.password_file))
    assert centre.password_env is not None  # the model requires one of the two
    env = os.environ if environ is None else environ
    if centre.password_env not in env:
        raise ConfigError(f"centre.password_env: the environment variable {centre.password_env} is not set")
    return refuse_placeholder("centre.password_env", env[centre.password_env])


def zigbee_broker(config: ZigbeeConfig) -> BrokerSettings:
    password = None
    if config.password_file is not None:
        password = _secret_from_file("zigbee2mqtt.password_file", config.password_file)
    return BrokerSettings(host=config.host, port=config.port, username=config.username, password=password,
                          base_topic=config.base_topic)
