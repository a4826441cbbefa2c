"""Every setting of the centre, in one place. Read from `TELECARE_*` environment
variables (or passed in by `telecare demo`). Placeholder secrets are refused."""

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from alerting.channels import SmtpSettings
from monitoring_centre.export import ExportSettings
from monitoring_centre.retention import RetentionSettings

PLACEHOLDERS = frozenset({"", "changeme", "change-me", "password", "secret", "admin", "default", "test", "example"})


def refuse_placeholder(value: SecretStr, what: str) -> SecretStr:
    if value.get_secret_value().strip().lower() in PLACEHOLDERS:
        raise ValueError(f"{what} is a placeholder: generate a real secret")
    return value


class CentreSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TELECARE_", env_nested_delimiter="__", extra="forbid")

    database_url: str = Field(description="SQLAlchemy URL, e.g. sqlite:///data/centre.db or postgresql+psycopg://…")
    jwt_secret: SecretStr = Field(min_length=32, description="HMAC key for API bearer tokens")
    token_ttl_s: int = Field(default=8 * 3600, gt=0, description="an operator's shift")

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str = "centre"
    mqtt_password: SecretStr
    mqtt_client_id: str = Field(default="telecare-centre", description="stable: the broker keeps our session")

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    mqtt_v5: bool = Field(default=True, description="MQTT 5; 3.1.1 for brokers without it (the embedded demo broker)")

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
    smtp: SmtpSettings | None = Field(default=None, description="mail server for mailto: contact points, "
                                      "e.g. TELECARE_SMTP__HOST, TELECARE_SMTP__MAIL_FROM")
    fhir_base_url: str | None = Field(default=None, description="FHIR R4 server the patient record is written "
                                      "to (transaction Bundles); none keeps the record in the centre")
    timezone: str = Field(default="Europe/London", description="local time in messages to responders")
    alerting_poll_s: float = Field(default=1.0, gt=0, description="how often escalations are stepped")

    @field_validator("jwt_secret", "mqtt_password")
    @classmethod
    def _no_placeholders(cls, value: SecretStr) -> SecretStr:
        return refuse_placeholder(value, "secret")


def default_sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'centre.db'}"
