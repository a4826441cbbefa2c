"""`telecare centre --help` lists every setting as its environment variable, with description and
default, and a wrong or missing setting is reported as one line naming its variable."""

import os
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError

from centre_app.settings import CentreSettings, environment_variables, explain_errors, settings_help


def _field_names(model: type[BaseModel], prefix: str) -> set[str]:
    names = set()
    for name, info in model.model_fields.items():
        nested = next((t for t in (info.annotation, *getattr(info.annotation, "__args__", ()))
                       if isinstance(t, type) and issubclass(t, BaseModel)), None)
        if nested is not None:
            names |= _field_names(nested, f"{prefix}{name.upper()}__")
        else:
            names.add(f"{prefix}{name.upper()}")
    return names


def test_every_setting_is_listed_as_its_variable_with_a_description() -> None:
    variables = {variable.name: variable for variable in environment_variables()}
    assert set(variables) == _field_names(CentreSettings, "TELECARE_")
    assert {"TELECARE_DATABASE_URL", "TELECARE_RETENTION__READINGS_DAYS", "TELECARE_EXPORT__INFLUX_TOKEN",
            "TELECARE_SMTP__HOST", "TELECARE_SMTP__MAIL_FROM"} <= set(variables)
    undescribed = [name for name, variable in variables.items() if not variable.description]
    assert undescribed == []


def test_defaults_are_shown_as_an_administrator_writes_them() -> None:
    variables = {variable.name: variable.default for variable in environment_variables()}
    assert variables["TELECARE_DATABASE_URL"] == "required"
    assert variables["TELECARE_MQTT_PORT"] == "1883"
    assert variables["TELECARE_MQTT_V5"] == "true"
    assert variables["TELECARE_RETENTION__READINGS_DAYS"] == "400"
    assert variables["TELECARE_EXPORT__INFLUX_TOKEN"] == "(empty)"
    assert variables["TELECARE_SMTP__HOST"] == "required when any TELECARE_SMTP__* is set"
    assert variables["TELECARE_FHIR_BASE_URL"] == "none"


def test_the_help_text_names_each_variable_and_its_default() -> None:
    text = settings_help()
    assert "  TELECARE_RETENTION__READINGS_DAYS\n      readings and events, and their inbound messages; default: 400" \
        in text
    assert "  TELECARE_JWT_SECRET\n      HMAC key for API bearer tokens; required" in text


def _errors(monkeypatch: pytest.MonkeyPatch, **environment: str) -> list[str]:
    for name in [name for name in os.environ if name.startswith("TELECARE_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    try:
        CentreSettings()
    except (ValidationError, SettingsError) as problem:
        return explain_errors(problem)
    raise AssertionError("the settings were accepted")


def test_each_wrong_setting_is_one_line_naming_its_variable_never_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _errors(monkeypatch, TELECARE_JWT_SECRET="too-short-secret", TELECARE_MQTT_PASSWORD="changeme",
                    TELECARE_RETENTION__READINGS_DAYS="-1", TELECARE_MQTT_PORT="eighty")
    assert lines == [
        "TELECARE_DATABASE_URL: missing: it must be set",
        "TELECARE_JWT_SECRET: too short: at least 32 characters",
        "TELECARE_MQTT_PORT: Input should be a valid integer, unable to parse string as an integer",
        "TELECARE_MQTT_PASSWORD: secret is a placeholder: generate a real secret",
        "TELECARE_RETENTION__READINGS_DAYS: Input should be greater than 0",
    ]
    assert not any("too-short-secret" in line or "changeme" in line for line in lines)


def test_a_group_given_as_bad_json_names_the_group(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _errors(monkeypatch, TELECARE_SMTP="{not json")
    assert "TELECARE_SMTP: a group of settings: set each part as its own variable (TELECARE_SMTP__…)" in lines


@pytest.mark.parametrize(("value", "ok"), [('["centre-b.internal:8883"]', True), ('["centre-b.internal"]', False),
                                           ('["centre-b.internal:70000"]', False), ('["a b:1883"]', False)])
def test_the_centres_other_brokers_are_host_and_port(monkeypatch: pytest.MonkeyPatch, value: str, ok: bool) -> None:
    monkeypatch.setenv("TELECARE_MQTT_OTHER_BROKERS", value)
    values: dict[str, Any] = {"jwt_secret": "s" * 48, "mqtt_password": "a-broker-password-long-enough",
                              "database_url": "sqlite:///unused.db"}
    if ok:
        assert CentreSettings(**values).mqtt_other_brokers == ["centre-b.internal:8883"]
    else:
        with pytest.raises(ValidationError):
            CentreSettings(**values)
