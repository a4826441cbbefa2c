"""`telecare sim`: recording a scenario, and clear errors (exit 2, no traceback) for bad input."""

import json
import tomllib
from pathlib import Path

import pytest

from device_sims.clock import RealClock, SimClock
from telecare.cli import main
from telecare_protocol import decode


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_run_records_stream_labels_and_people(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out" / "falls.jsonl"  # a folder that does not exist yet, as on a fresh clone
    code, stdout, _ = _run(["sim", "run", "falls", "--record", str(out)], capsys)
    assert code == 0
    summary = json.loads(stdout)
    lines = out.read_bytes().splitlines()
    assert summary["messages"] == len(lines) > 1000
    assert all(decode(line) for line in lines)
    labels = [json.loads(line) for line in (out.parent / "falls.labels.jsonl").read_text().splitlines()]
    assert [lb["incident"] for lb in labels] == ["pendant_alarm", "fall_with_press", "fall_cancelled",
                                                 "fall_without_press", "fall_long_lie"]
    assert set(labels[0]) == {"incident", "person", "hub_id", "device_id", "start", "end", "expect"}
    assert labels[0]["start"].endswith("Z")
    people = tomllib.loads((out.parent / "falls.people.toml").read_text())["person"]
    assert people[0]["hubs"] == [labels[0]["hub_id"]] and people[0]["id"] == labels[0]["person"]

    again = tmp_path / "again.jsonl"
    assert _run(["sim", "run", "falls", "--record", str(again)], capsys)[0] == 0
    assert again.read_bytes() == out.read_bytes()
    other = tmp_path / "other.jsonl"
    assert _run(["sim", "run", "falls", "--seed", "3", "--record", str(other)], capsys)[0] == 0
    assert other.read_bytes() != out.read_bytes()


def test_fleet_records_a_reproducible_stream(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["sim", "fleet", "--homes", "4", "--days", "1", "--seed", "5", "--start", "2026-03-02", "--record"]
    assert _run([*args, str(tmp_path / "a.jsonl")], capsys)[0] == 0
    assert _run([*args, str(tmp_path / "b.jsonl")], capsys)[0] == 0
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    hubs = {decode(line).hub_id for line in (tmp_path / "a.jsonl").read_bytes().splitlines()}
    assert hubs == {"hub-001", "hub-002", "hub-003", "hub-004"}
    assert (tmp_path / "a.labels.jsonl").read_text() == ""


@pytest.mark.parametrize(("argv", "message"), [
    (["sim", "run", "no-such-scenario.toml"], "no such scenario file"),
    (["sim", "run", "falls", "--mqtt", "localhost"], "is not HOST:PORT"),
    (["sim", "run", "falls", "--mqtt", "localhost:1883"], "--mqtt needs --credentials"),
    (["sim", "run", "falls", "--speed", "0"], "--speed must be positive"),
    (["sim", "fleet", "--homes", "0", "--days", "1"], "--homes must be"),
    (["sim", "fleet", "--homes", "2", "--days", "-1"], "--days must be"),
    (["sim", "fleet", "--homes", "2", "--days", "1", "--rate", "-5"], "--rate must be positive"),
    (["sim", "fleet", "--homes", "2", "--days", "1", "--mqtt", "127.0.0.1:1", "--credentials", "absent.json"],
     "no such credentials file"),
    (["sim", "run", "falls", "--record", "/dev/null/x.jsonl"], "cannot write"),  # under a file
])
def test_bad_input_exits_2_with_a_reason(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(argv, capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_bad_scenario_file_names_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nstart = 2026-03-02\ndays = 2\n[[home]]\n[[home.incident]]\nkind = "fall"\nday = 1\n')
    code, _, err = _run(["sim", "run", str(bad)], capsys)
    assert code == 2
    assert "home.0.incident.0.kind" in err and str(bad) in err


def test_unparsable_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["sim", "fleet", "--homes", "many", "--days", "1"])
    assert stop.value.code == 2
    assert "invalid int value" in capsys.readouterr().err


def test_credentials_file_that_is_not_json_is_a_clear_error(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    creds = tmp_path / "creds.json"
    creds.write_text("hub-001: secret\n")
    code, _, err = _run(["sim", "fleet", "--homes", "1", "--days", "1", "--mqtt", "127.0.0.1:1",
                         "--credentials", str(creds)], capsys)
    assert code == 2 and "not a credentials file" in err


def test_sim_clock_orders_by_time_then_by_scheduling() -> None:
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 3, 2, tzinfo=UTC)
    clock: SimClock[str] = SimClock(now=t0)
    clock.schedule(t0 + timedelta(seconds=5), "late")
    clock.schedule(t0 + timedelta(seconds=1), "first")
    clock.schedule(t0 + timedelta(seconds=1), "second")
    assert [item for _, item in clock.run(until=t0 + timedelta(seconds=2))] == ["first", "second"]
    assert clock.now == t0 + timedelta(seconds=1) and len(clock) == 1
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.schedule(datetime(2026, 3, 2), "naive")


def test_real_clock_maps_simulated_time_onto_the_wall_clock() -> None:
    from datetime import UTC, datetime, timedelta

    wall = [100.0]
    t0 = datetime(2026, 3, 2, tzinfo=UTC)
    clock = RealClock(origin=t0, speed=60, monotonic=lambda: wall[0])
    clock.start()
    assert clock.wall_delay(t0 + timedelta(minutes=10)) == pytest.approx(10.0)
    wall[0] = 104.0
    assert clock.wall_delay(t0 + timedelta(minutes=10)) == pytest.approx(6.0)
    assert clock.wall_delay(t0) == 0.0
    assert clock.now() == t0 + timedelta(minutes=4)
    with pytest.raises(ValueError, match="speed"):
        RealClock(origin=t0, speed=0)
