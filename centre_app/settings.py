"""Every setting of the centre, in one place. Read from `TELECARE_*` environment
variables (or passed in by `telecare demo`). Placeholder secrets are refused.

`environment_variables()` lists every variable (nested groups as `TELECARE_GROUP__FIELD`)
with its description and default, for `telecare centre --help`; `explain_errors()` turns a
failed read into one line per variable, naming the variable rather than the field."""

import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    Field,
    IPvAnyNetwork,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from alerting.channels import InternalTargets, NotifySettings, SmtpSettings
from monitoring_centre.export import ExportSettings
from monitoring_centre.retention import RetentionSettings
from monitoring_centre.scaip_receiver import ScaipSettings

PLACEHOLDERS = frozenset({"", "changeme", "change-me", "password", "secret", "admin", "default", "test", "example"})


def refuse_placeholder(value: SecretStr, what: str) -> SecretStr:
    if value.get_secret_value().strip().lower() in PLACEHOLDERS:
        raise ValueError(f"{what} is a placeholder: generate a real secret")
    return value


class CentreSettings(BaseSettings):
    """Every setting of one centre process, from `TELECARE_<NAME>` environment variables (nested:
    `TELECARE_SMTP__HOST`). Times are in seconds (`_s`) or days (`_days`), ports are TCP ports.
    Invalid or placeholder values are refused at start, one line per variable
    (`telecare centre --help` lists them all). Read once, on the main thread; immutable after."""

    model_config = SettingsConfigDict(env_prefix="TELECARE_", env_nested_delimiter="__", extra="forbid")

    database_url: str = Field(description="SQLAlchemy URL, e.g. sqlite:///data/centre.db or postgresql+psycopg://…")
    jwt_secret: SecretStr = Field(min_length=32, description="HMAC key for API bearer tokens")
    token_ttl_s: int = Field(default=8 * 3600, gt=0, description="an operator's shift")

    mqtt_host: str = Field(default="127.0.0.1", description="the broker's host name or address")
    mqtt_port: int = Field(default=1883, ge=1, le=65535, description="the broker's port (the centre's own "
                           "listener, on the same host)")
    mqtt_username: str = Field(default="centre", description="the centre's broker account")
    mqtt_password: SecretStr = Field(description="the centre's broker password (`telecare admin broker-files` "
                                     "writes its hash into the broker's password file)")
    mqtt_client_id: str = Field(default="telecare-centre", description="stable: the broker keeps our session")

    http_host: str = Field(default="127.0.0.1", description="address the API and console listen on")
    http_port: int = Field(default=8080, ge=1, le=65535, description="port the API and console listen on")
    mqtt_other_brokers: list[Annotated[str, StringConstraints(pattern=r"^[^\s:]+:[0-9]{1,5}$")]] = Field(
        default=[], description='more brokers of this centre, "host:port" each: the centre keeps its sessions on '
                                'every one, so a hub failing over to any of them is heard (docs/operating.md)')
    mqtt_v5: bool = Field(default=True, description="MQTT 5; 3.1.1 for brokers without it (the embedded demo broker)")
    worker: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,40}$", description="this worker's "
                               "name, when several centre workers share one database and the brokers (each its "
                               "own, the same at every restart, e.g. w1): its MQTT client ids become "
                               "<mqtt_client_id>-<worker>, and each person's detection runs on the one worker "
                               "holding their lease (docs/operating.md, \"Several workers\"); unset: the only "
                               "worker, as ever")
    mqtt_shared_subscriptions: bool = Field(default=False, description="subscribe through MQTT 5 shared "
                                            "subscriptions ($share/telecare-centre-<lane>/...), so that the broker "
                                            "spreads messages over the workers (calls for help go to every "
                                            "worker, stored once); needs worker and mqtt_v5")
    worker_session_expiry_s: int = Field(
        default=60, ge=5, le=7 * 24 * 3600, description="with shared subscriptions, how long the broker keeps a "
        "worker's sessions while it is away: its turn of the stream waits there meanwhile (Mosquitto 2.0 keeps "
        "giving an absent member its turn), so a worker that never comes back stops taking it after this. The "
        "hubs resend what an expired session held (they keep every message until the centre's ack), so it never "
        "loses a message; a restart within it resumes the session (docs/operating.md, \"Several workers\")")
    worker_heartbeat_s: float = Field(default=2.0, gt=0, description="how often a worker beats and renews its "
                                      "detection leases")
    worker_lease_s: float = Field(default=10.0, gt=0, description="how long a lease lasts unrenewed: a "
                                  "crashed worker's people are taken over after this (more than two heartbeats)")
    metrics_allow: list[IPvAnyNetwork] = Field(default=["127.0.0.0/8", "::1/128"], validate_default=True,
                                               description="networks whose clients may read /metrics, as a JSON "
                                               "list, e.g. [\"127.0.0.0/8\", \"10.20.0.0/16\"]; others get 403")
    trusted_networks: list[IPvAnyNetwork] = Field(default=["127.0.0.0/8", "::1/128"], validate_default=True,
                                                  description="the centre's own networks, as a JSON list, e.g. "
                                                  "[\"127.0.0.0/8\", \"10.20.0.0/16\"]: sign-ins from them are "
                                                  "never throttled (centre_app/signin_throttle.py)")

    ingest_queue_size: int = Field(default=1000, gt=0, description="messages held before MQTT reads pause")
    ingest_max_batch: int = Field(default=500, gt=0, description="messages stored per transaction at most")
    detection_tick_s: float = Field(default=10.0, gt=0, description="how often the engine's timer rules run")
    detection_warm_up_days: float = Field(default=14.0, ge=0, description="stored history the engine "
                                          "replays at start (baselines, open conditions)")
    data_dir: Path | None = Field(default=None, description="where the centre keeps small state files "
                                  "(the export cursor); default: next to a SQLite database, else none")
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    export: ExportSettings = Field(default_factory=ExportSettings)

    public_url: str | None = Field(default=None, description="where responders reach the centre, for the accept "
                                   "links in their messages; default http://<http_host>:<http_port>")
    centre_phone: str | None = Field(default=None, min_length=3, max_length=40, pattern=r"^\+?[0-9][0-9 ()-]*$",
                                     description="the centre's phone number for responders, as they should dial "
                                     "it, e.g. 0300 123 4567: shown on the accept page (required in the demo)")
    smtp: SmtpSettings | None = Field(default=None, description="mail server for mailto: contact points, "
                                      "e.g. TELECARE_SMTP__HOST, TELECARE_SMTP__MAIL_FROM")
    notify: NotifySettings | None = Field(default=None, description="GOV.UK Notify for sms: contact points (and "
                                          "e-mail, with an e-mail template), e.g. TELECARE_NOTIFY__API_KEY, "
                                          "TELECARE_NOTIFY__SMS_TEMPLATE_ID")
    scaip: ScaipSettings | None = Field(default=None, description="a SIP/SCAIP receiver for other makers' social "
                                        "alarm units (CLC/TS 50134-9), off unless set, e.g. TELECARE_SCAIP__PORT, "
                                        "TELECARE_SCAIP__UNITS")
    fhir_base_url: str | None = Field(default=None, description="FHIR R4 server the patient record is written "
                                      "to (transaction Bundles); none keeps the record in the centre")
    fhir_gateway_base_url: str | None = Field(default=None, description="the FHIR gateway's base URL as clinical "
                                              "systems reach it, e.g. https://centre.example.org/fhir: fullUrls, "
                                              "paging links and the token URL (BASE/token) that client assertions "
                                              "name as aud; none: each request's own URL")
    fhir_token_ttl_s: int = Field(default=300, gt=0, le=3600, description="how long a FHIR gateway access token "
                                  "lives")
    timezone: str = Field(default="Europe/London", description="local time in messages to responders")
    allow_test_nhs_numbers: bool = Field(default=False, description="accept NHS numbers from the synthetic test "
                                         "range (9...) at enrolment and in the patient record: the demo and "
                                         "tests only, never in production")
    alerting_poll_s: float = Field(default=1.0, gt=0, description="how often escalations are stepped")
    allowed_internal_targets: list[str] = Field(
        default_factory=list, description="private, loopback or link-local networks and host names that "
        "notification URLs and test messages may reach anyway, as a JSON list, e.g. [\"10.20.0.0/16\", "
        "\"pager.centre.lan\"]; default none (mail through the SMTP server is never limited)")

    @field_validator("allowed_internal_targets")
    @classmethod
    def _targets_parse(cls, value: list[str]) -> list[str]:
        InternalTargets.parse(value)  # raises ValueError naming a bad entry
        return value

    @field_validator("mqtt_other_brokers")
    @classmethod
    def _ports_in_range(cls, brokers: list[str]) -> list[str]:
        for entry in brokers:
            if not 1 <= int(entry.rpartition(":")[2]) <= 65535:
                raise ValueError(f"{entry!r}: the port is not 1..65535")
        return brokers

    @model_validator(mode="after")
    def _workers_consistent(self) -> "CentreSettings":
        if self.mqtt_shared_subscriptions and (self.worker is None or not self.mqtt_v5):
            raise ValueError("mqtt_shared_subscriptions needs a worker name (TELECARE_WORKER) and mqtt_v5")
        if self.worker_lease_s <= 2 * self.worker_heartbeat_s:
            raise ValueError(f"worker_lease_s ({self.worker_lease_s}) must be more than two worker_heartbeat_s "
                             f"({self.worker_heartbeat_s})")
        return self

    @property
    def worker_client_id(self) -> str:
        """This worker's MQTT client id stem (and escalation lease name): `mqtt_client_id`, followed by
        `-<worker>` when several workers run."""
        return self.mqtt_client_id if self.worker is None else f"{self.mqtt_client_id}-{self.worker}"

    @field_validator("jwt_secret", "mqtt_password")
    @classmethod
    def _no_placeholders(cls, value: SecretStr) -> SecretStr:
        return refuse_placeholder(value, "secret")


def default_sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'centre.db'}"


ENV_PREFIX = "TELECARE_"
NESTED_DELIMITER = "__"


@dataclass(frozen=True)
class EnvironmentVariable:
    """One setting as an administrator writes it: `TELECARE_RETENTION__READINGS_DAYS`."""

    name: str
    description: str
    default: str
    """As text: "required", "none", "(empty)", or the value ("400.0", "Europe/London")."""


def _nested_model(annotation: object) -> type[BaseModel] | None:
    """The settings group a field holds (`RetentionSettings`, or `SmtpSettings | None`), else None."""
    candidates = typing.get_args(annotation) if isinstance(annotation, types.UnionType) or \
        typing.get_origin(annotation) is typing.Union else (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _default_text(info: FieldInfo) -> str:
    if info.default is PydanticUndefined and info.default_factory is None:
        return "required"
    value = info.get_default(call_default_factory=True, validated_data={})
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if str(value) != "" else "(empty)"


def _variables(model: type[BaseModel], prefix: str, group_optional: bool) -> list[EnvironmentVariable]:
    found = []
    for field_name, info in model.model_fields.items():
        name = f"{prefix}{field_name.upper()}"
        nested = _nested_model(info.annotation)
        if nested is not None:
            optional = info.default is None  # the whole group is off unless one of its variables is set
            found += _variables(nested, name + NESTED_DELIMITER, optional)
            continue
        default = _default_text(info)
        if default == "required" and group_optional:
            default = f"required when any {prefix}* is set"
        found.append(EnvironmentVariable(name, info.description or "", default))
    return found


def environment_variables() -> list[EnvironmentVariable]:
    """Every `TELECARE_*` variable `CentreSettings` reads, in field order, nested groups expanded."""
    return _variables(CentreSettings, ENV_PREFIX, False)


def settings_help() -> str:
    """The variables as an indented list for `--help`: name, then description and default."""
    lines = ["settings, from environment variables (e.g. an EnvironmentFile):"]
    for variable in environment_variables():
        parts = [variable.description.rstrip(".")] if variable.description else []
        if variable.default.startswith("required"):
            parts.append(variable.default)
        elif "default" not in variable.description:  # else the description says what the default means
            parts.append(f"default: {variable.default}")
        lines += [f"  {variable.name}", f"      {'; '.join(parts)}"]
    return "\n".join(lines)


def _variable_name(location: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + NESTED_DELIMITER.join(str(part).upper() for part in location if isinstance(part, str))


def _what_is_wrong(error: typing.Mapping[str, typing.Any], variable: str) -> str:
    kind, message = error["type"], str(error["msg"])
    context = error.get("ctx") or {}
    if kind == "missing":
        return "missing: it must be set"
    if kind in ("too_short", "string_too_short") and "min_length" in context:
        return f"too short: at least {context['min_length']} characters"
    if kind in ("model_type", "dict_type"):
        return f"a group of settings: set each part as its own variable ({variable}{NESTED_DELIMITER}…)"
    return message.removeprefix("Value error, ")


def explain_errors(problem: ValidationError | SettingsError) -> list[str]:
    """One line per wrong or missing setting, naming its environment variable and never its
    value (it may be a secret): "TELECARE_DATABASE_URL: missing: it must be set"."""
    if isinstance(problem, SettingsError):  # a group given as one JSON variable that does not parse
        field = re.search(r'field "(\w+)"', str(problem))
        return [f"{_variable_name((field.group(1),)) if field else ENV_PREFIX + '*'}: not valid JSON for this "
                f"group; set its parts as {ENV_PREFIX}GROUP{NESTED_DELIMITER}FIELD instead"]
    lines = []
    for error in problem.errors():
        name = _variable_name(tuple(error["loc"])) or ENV_PREFIX + "*"
        lines.append(f"{name}: {_what_is_wrong(error, name)}")
    return lines
