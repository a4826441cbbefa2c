"""The people file: who each home is, where its devices are, and their own detection settings.

TOML, one `[[person]]` table per person (format in docs/detection.md). `load_people`
refuses a bad file with an error that names the person, the field and, where it can, the
line: a wrong setting must never be silently ignored, since it changes who gets alarmed.
"""

import tomllib
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from detection.defaults import OverrideError, ParamValue, check_value, parse_hhmm

Location = Literal[
    "front_door", "back_door", "bedroom_door", "bathroom_door", "toilet_door", "bed", "bedroom", "bathroom",
    "toilet", "kitchen", "living_room", "hall", "pendant", "oximeter",
]
EXIT_DOORS = frozenset({"front_door", "back_door"})


class BedSensorKind(StrEnum):
    """What a bed sensor's events mean; a device setting (`Device.bed_sensor_kind` in the centre).

    The two kinds sold for telecare beds (activity-monitoring products, domain brief 'Activity and
    wellbeing'; SCAIP device type "bed monitor") report differently, so the rules read them differently:
    """

    OCCUPANCY = "occupancy"
    """A mat that holds a state: occupied while someone lies on it, vacated when they get up. Its
    vacated event is a getting up, and its silence means nothing has changed. The default, and what
    every bed sensor enrolled before the setting existed is."""
    PULSE = "pulse"
    """A pulse-on-movement mat: an event (occupied, then vacated a moment later) each time someone
    moves on it. A pulse says the person is in bed now; its end, and its silence, say nothing (a
    sleeper lying still sends nothing), so being up is learnt from activity elsewhere in the home."""


class Absence(BaseModel):
    """A planned absence (hospital, holiday): the activity rules pause (OpenTele's planned pauses)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: AwareDatetime
    end: AwareDatetime
    reason: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError("an absence ends after it starts")
        return self

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end


class MeasurementSchedule(BaseModel):
    """Telehealth: when the person is asked to measure (local times), and how long they have."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    times: tuple[str, ...] = Field(min_length=1)
    window_minutes: int = Field(default=120, gt=0, le=24 * 60)

    @field_validator("times")
    @classmethod
    def _hhmm(cls, times: tuple[str, ...]) -> tuple[str, ...]:
        for text in times:
            try:
                parse_hhmm(text, "measurement_schedule.times")
            except OverrideError as error:
                raise ValueError(str(error)) from None
        return tuple(sorted(times))


class PersonProfile(BaseModel):
    """One person as the detection engine sees them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    name: str | None = None
    hubs: tuple[str, ...] = Field(min_length=1)
    timezone: str = "UTC"
    spo2_scale: Literal[1, 2] = 1
    """NEWS2 Scale 2 only with a clinician-documented 88-92% target (e.g. hypercapnic COPD)."""
    on_oxygen: bool = False
    devices: dict[str, Location] = Field(default_factory=dict)
    bed_sensors: dict[str, BedSensorKind] = Field(default_factory=dict)
    """Device id → what kind of bed sensor it is; a bed device not listed is `BedSensorKind.OCCUPANCY`."""
    expected_intervals: dict[str, int] = Field(default_factory=dict)
    rules: dict[str, dict[str, ParamValue]] = Field(default_factory=dict)
    measurement_schedule: MeasurementSchedule | None = None
    absences: tuple[Absence, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/London)") from None
        return name

    @field_validator("expected_intervals")
    @classmethod
    def _positive(cls, intervals: dict[str, int]) -> dict[str, int]:
        for device, seconds in intervals.items():
            if seconds <= 0:
                raise ValueError(f"{device}: an expected interval is a positive number of seconds")
        return intervals

    @field_validator("rules")
    @classmethod
    def _known_rules(cls, rules: dict[str, dict[str, ParamValue]]) -> dict[str, dict[str, ParamValue]]:
        checked: dict[str, dict[str, ParamValue]] = {}
        for rule, overrides in rules.items():
            try:
                checked[rule] = {name: check_value(rule, name, value) for name, value in overrides.items()}
            except OverrideError as error:
                raise ValueError(str(error)) from None
        return checked

    @model_validator(mode="after")
    def _oxygen_needs_scale2(self) -> Self:
        if self.on_oxygen and self.spo2_scale != 2:
            raise ValueError("on_oxygen only applies to NEWS2 Scale 2 (spo2_scale = 2)")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def bed_sensor_kind(self, device: str) -> BedSensorKind:
        """The kind of bed sensor `device` is (`OCCUPANCY` unless set otherwise)."""
        return self.bed_sensors.get(device, BedSensorKind.OCCUPANCY)

    def devices_at(self, *locations: str) -> frozenset[str]:
        return frozenset(device for device, where in self.devices.items() if where in locations)

    def absent(self, at: datetime) -> Absence | None:
        return next((a for a in self.absences if a.covers(at)), None)


class PeopleFileError(ValueError):
    """The people file cannot be used; the message says where and why."""


def load_people(path: Path | str) -> list[PersonProfile]:
    """Every person in a TOML people file, validated; raises `PeopleFileError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PeopleFileError(f"{path}: cannot read: {error}") from None
    return parse_people(text, str(path))


def parse_people(text: str, where: str = "<people>") -> list[PersonProfile]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:  # its message carries the line and column
        raise PeopleFileError(f"{where}: not valid TOML: {error}") from None
    unknown = set(data) - {"person"}
    if unknown:
        raise PeopleFileError(f"{where}: unknown top-level key(s) {sorted(unknown)}; expected [[person]] tables")
    tables = data.get("person", [])
    if not isinstance(tables, list):
        raise PeopleFileError(f"{where}: 'person' must be an array of tables: write [[person]]")
    starts = [number for number, line in enumerate(text.splitlines(), 1) if line.strip() == "[[person]]"]
    people: list[PersonProfile] = []
    seen: dict[str, int] = {}
    hubs: dict[str, str] = {}
    for index, table in enumerate(tables):
        line = f"line {starts[index]}" if index < len(starts) else f"person #{index + 1}"
        label = f"{where}: {line} (person {table.get('id', '?')!r})" if isinstance(table, dict) else f"{where}: {line}"
        try:
            person = PersonProfile.model_validate(table)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in e['loc']) or 'person'}: {e['msg']}" for e in error.errors())
            raise PeopleFileError(f"{label}: {problems}") from None
        if person.id in seen:
            raise PeopleFileError(f"{label}: id {person.id!r} is already used by person #{seen[person.id] + 1}")
        for hub in person.hubs:
            if hub in hubs:
                raise PeopleFileError(f"{label}: hub {hub!r} already belongs to person {hubs[hub]!r}")
            hubs[hub] = person.id
        seen[person.id] = index
        people.append(person)
    return people
