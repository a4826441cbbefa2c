"""`telecare sim run --record`, `telecare replay` and `telecare score` end to end, as the installed command in
subprocesses: a small recorded scenario is replayed (every decision with its time, the escalation steps of each
alert's chain) and scored (recall, false alarms per week, latency per incident kind)."""

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
SCENARIO = """
name = "small"
seed = 7
start = 2026-03-02
days = 2

[[home]]
personality = { name = "Eric", wake_time = "07:30", bed_time = "22:00", night_toilet_visits = 0.5 }

[[home.incident]]
kind = "night_exit"
day = 1
at = "03:10"

[[home.incident]]
kind = "pendant_alarm"
day = 2
at = "11:00"

[[home.incident]]
kind = "door_left_open"
day = 2
at = "13:30"
minutes = 20
"""


def telecare(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "telecare.cli", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=300, check=False)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The scenario recorded, replayed and scored once for this module: (the replay's lines, the score)."""
    tmp_path = tmp_path_factory.mktemp("small")
    (tmp_path / "small.toml").write_text(SCENARIO)
    stream = tmp_path / "small.jsonl"
    done = telecare("sim", "run", str(tmp_path / "small.toml"), "--record", str(stream))
    assert done.returncode == 0, done.stderr
    alerts = tmp_path / "small.alerts.jsonl"
    done = telecare("replay", "--input", str(stream), "--people", str(tmp_path / "small.people.toml"),
                    "--output", str(alerts))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    done = telecare("score", "--alerts", str(alerts), "--labels", str(tmp_path / "small.labels.jsonl"))
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in alerts.read_text().splitlines()], json.loads(done.stdout)


def test_a_recorded_scenario_replayed_and_scored(recorded: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    lines, score = recorded
    raised = [(line["rule"], line["policy"]) for line in lines if line["decision"] == "raise"]
    assert raised == [("night_exit", "emergency"), ("pendant_alarm", "emergency"), ("door_left_open", "emergency")]
    assert [line["decision"] for line in lines][-1] == "observed"
    times = [at(line["at"]) for line in lines if "at" in line]
    assert times == sorted(times)

    assert score["false_alarms"] == 0 and score["false_alarms_per_week"] == 0.0
    assert 0.27 < score["weeks"] < 0.29  # one home, two days
    kinds = score["kinds"]
    assert {k: (v["detected"], v["labels"], v["recall"]) for k, v in kinds.items()} == {
        "night_exit": (1, 1, 1.0), "pendant_alarm": (1, 1, 1.0), "door_left_open": (1, 1, 1.0)}
    assert kinds["pendant_alarm"]["latency_s"] == {"median": 0.0, "max": 0.0}
    # the front door opens 3 min into the incident; nobody is seen indoors for 15 min; ticks are a minute apart
    assert 18 * 60 <= kinds["night_exit"]["latency_s"]["max"] < 19 * 60
    assert 15 * 60 <= kinds["door_left_open"]["latency_s"]["max"] < 16 * 60


def test_the_chain_runs_its_steps_until_the_condition_clears(
        recorded: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    lines, _ = recorded

    def steps(rule: str) -> list[tuple[float, str, Any, Any, bool]]:
        opened = at(next(line["at"] for line in lines if line["decision"] == "raise" and line["rule"] == rule))
        return [((at(line["at"]) - opened).total_seconds(), line["audience"], line["step"], line["cycle"],
                 line["exhausted"]) for line in lines if line["decision"] == "escalate" and line["rule"] == rule]

    # The help press is closed by a person: nobody acknowledges, so the emergency chain (operators 60 s,
    # operators 120 s, keyholders 300 s, emergency services 600 s) runs twice, then tells the operators again.
    assert steps("pendant_alarm") == [
        (0, "operators", 1, 1, False), (60, "operators", 2, 1, False), (180, "keyholders", 3, 1, False),
        (480, "emergency_services", 4, 1, False), (1080, "operators", 1, 2, False), (1140, "operators", 2, 2, False),
        (1260, "keyholders", 3, 2, False), (1560, "emergency_services", 4, 2, False),
        (2160, "operators", None, None, True)]
    # The door closes 5 min after its alert: the chain stops before its fourth step (due at 480 s).
    assert steps("door_left_open") == [(0, "operators", 1, 1, False), (60, "operators", 2, 1, False),
                                       (180, "keyholders", 3, 1, False)]
    cleared = next(line for line in lines if line["decision"] == "clear" and line["rule"] == "door_left_open")
    opened = next(line for line in lines if line["decision"] == "raise" and line["rule"] == "door_left_open")
    assert at(cleared["at"]) - at(opened["at"]) < timedelta(seconds=480)
