"""`telecare centre`: `--help` lists its settings; missing or wrong ones are one line each, exit 2."""

import os

import pytest

from telecare.cli import main


def test_help_lists_every_setting_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["centre", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for expected in ("TELECARE_DATABASE_URL", "TELECARE_MQTT_HOST", "default: 127.0.0.1", "TELECARE_HTTP_PORT",
                     "TELECARE_RETENTION__READINGS_DAYS", "TELECARE_SMTP__MAIL_FROM", "TELECARE_ALERTING_POLL_S"):
        assert expected in out, expected


def test_missing_settings_name_their_variables_and_exit_2(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    for name in [name for name in os.environ if name.startswith("TELECARE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TELECARE_MQTT_PASSWORD", "a-real-broker-password-for-the-test")
    monkeypatch.setenv("TELECARE_HTTP_PORT", "not-a-port")
    assert main(["centre"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert lines[1:] == ["  TELECARE_DATABASE_URL: missing: it must be set",
                         "  TELECARE_JWT_SECRET: missing: it must be set",
                         "  TELECARE_HTTP_PORT: Input should be a valid integer, unable to parse string as an integer"]
    assert "telecare centre --help" in lines[0]
    assert "database_url\n" not in captured.err and "errors.pydantic.dev" not in captured.err
