"""Scenarios as data: TOML files read with `tomllib`, checked with pydantic.

The schema is documented in docs/scenarios.md. A bad file raises `ScenarioError`, whose
message names the file and the field at fault (`home.0.incident.1.kind: …`).
"""

import tomllib
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from device_sims.home import DEFAULT_ROLES, ROLES
from device_sims.incidents import NEEDS_OXIMETER, NEEDS_SPOT_CHECKS, IncidentKind
from device_sims.personality import Personality, parse_hhmm

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message says where and why."""


class IncidentModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: IncidentKind
    day: int = Field(ge=1, description="1-based day of the scenario")
    at: str | None = Field(default=None, description="local HH:MM; default depends on the kind")
    minutes: float | None = Field(default=None, gt=0, le=7 * 1440)
    device: str | None = Field(default=None, description="device role, for low_battery/device_not_seen/door_left_open")

    @field_validator("at")
    @classmethod
    def _at(cls, value: str | None) -> str | None:
        if value is not None:
            parse_hhmm(value)
        return value

    @field_validator("device")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        if value is not None and value not in ROLES:
            raise ValueError(f"{value!r} is not a device role ({', '.join(ROLES)})")
        return value


class HomeModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    hub_id: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    devices: tuple[str, ...] | None = None
    """Device roles; default: the standard set, plus an oximeter when the personality has one."""
    personality: dict[str, Any] = Field(default_factory=dict)
    """Overrides of the seeded personality (fields of `Personality`)."""
    spo2_scale: int = Field(default=1, ge=1, le=2)
    incident: tuple[IncidentModel, ...] = ()

    @field_validator("devices")
    @classmethod
    def _roles(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return value
        for role in value:
            if role not in ROLES:
                raise ValueError(f"{role!r} is not a device role ({', '.join(ROLES)})")
        if len(set(value)) != len(value):
            raise ValueError("each device role may appear once")
        return value

    @field_validator("personality")
    @classmethod
    def _personality(cls, value: dict[str, Any]) -> dict[str, Any]:
        Personality.model_validate(value)  # errors name the personality field
        return value


class ScenarioModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    seed: int = 1
    start: date = Field(description="local date of day 1")
    days: int = Field(ge=1, le=366)
    timezone: str = "Europe/London"
    heartbeat_interval_s: int = Field(default=300, ge=10, le=86400)
    home: tuple[HomeModel, ...] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone") from None
        return value

    @model_validator(mode="after")
    def _incidents_fit(self) -> "ScenarioModel":
        for h, home in enumerate(self.home):
            roles = set(home.devices or DEFAULT_ROLES)
            oximetry = home.personality.get("oximetry")
            if home.devices is None and oximetry in ("spot", "overnight"):
                roles.add("oximeter")
            for i, incident in enumerate(home.incident):
                where = f"home.{h}.incident.{i}"
                if incident.day > self.days:
                    raise ValueError(f"{where}.day: day {incident.day} is after the last day ({self.days})")
                if incident.kind in NEEDS_OXIMETER and oximetry not in ("spot", "overnight"):
                    raise ValueError(f"{where}.kind: {incident.kind} needs personality.oximetry 'spot' or 'overnight'")
                if incident.kind in NEEDS_SPOT_CHECKS and oximetry != "spot":
                    raise ValueError(f"{where}.kind: {incident.kind} needs personality.oximetry 'spot'")
                if incident.device is not None and incident.device not in roles:
                    raise ValueError(f"{where}.device: the home has no {incident.device!r}")
        return self


def _where(error: dict[str, Any]) -> str:
    return ".".join(str(part) for part in error["loc"]) or "(top level)"


def parse_scenario(data: dict[str, Any], source: str = "scenario") -> ScenarioModel:
    try:
        return ScenarioModel.model_validate(data)
    except ValidationError as exc:
        lines = [f"{_where(dict(e))}: {e['msg']}" for e in exc.errors(include_url=False)]
        raise ScenarioError(f"{source}: " + "; ".join(lines)) from None


def load_scenario(path: Path | str) -> ScenarioModel:
    """Read and check a scenario file; a bare name finds a shipped scenario."""
    path = Path(path)
    if not path.exists() and not path.suffix and (SCENARIO_DIR / f"{path}.toml").exists():
        path = SCENARIO_DIR / f"{path}.toml"
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_scenario(data, str(path))
