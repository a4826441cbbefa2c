"""`telecare replay` and `telecare pendant-replay` run as the installed command, in a
subprocess: a recorded stream and a people file in, alerts.jsonl out; only JSON on stdout.
Their in-process behaviour is tested in tests/unit/telecare/."""

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from telecare_protocol import EventCode, Message, encode
from tests.support import fall_traces
from tests.support.detection_builders import at, beat, event, spo2

REPO = Path(__file__).resolve().parents[2]

PEOPLE = '''
[[person]]
id = "home-001"
hubs = ["hub-001"]
timezone = "Europe/London"

[person.devices]
"door-001" = "front_door"
"pendant-001" = "pendant"
"oxi-001" = "oximeter"
"pir-001" = "kitchen"
'''


def stream() -> list[bytes]:
    # 5-min heartbeats for an hour, silence, then the hub is back at 02:00
    messages: list[Message] = [beat(at(hours=h / 12)) for h in range(12)]
    messages.append(beat(at(hours=2)))
    messages += [event(at(minutes=30), "pendant-001", EventCode.MANUAL_ALARM)]
    messages += [spo2(at(minutes=40, seconds=s), 89) for s in range(90)]
    messages += [event(at(minutes=50), "pir-001", EventCode.ACTIVITY), event(at(minutes=51), "door-001",
                                                                            EventCode.DOOR_OPENED)]
    messages += [event(at(minutes=80), "door-001", EventCode.DOOR_CLOSED)]
    messages.sort(key=lambda m: m.source_ts)
    lines = [encode(m) for m in messages]
    lines.insert(5, b'{"version": 1, "type": "reading", "id": "x"}')
    lines.insert(9, b"not json at all")
    return lines


def replay(tmp_path: Path, name: str) -> tuple[subprocess.CompletedProcess[str], list[dict[str, object]], bytes]:
    source = tmp_path / "stream.jsonl"
    if not source.exists():  # one recording per test: message ids are minted when it is built
        source.write_bytes(b"\n".join(stream()) + b"\n")
    people = tmp_path / "people.toml"
    people.write_text(PEOPLE)
    output = tmp_path / name
    result = subprocess.run(
        [sys.executable, "-m", "telecare.cli", "replay", "--input", str(source), "--people", str(people),
         "--output", str(output)], capture_output=True, text=True, timeout=120, check=False)
    data = output.read_bytes() if output.exists() else b""
    return result, [json.loads(line) for line in data.splitlines()], data


def test_replay_writes_alerts_and_reports_bad_lines(tmp_path: Path) -> None:
    result, alerts, _ = replay(tmp_path, "alerts.jsonl")
    assert result.returncode == 0, result.stderr
    assert "line 6:" in result.stderr and "line 10:" in result.stderr and "2 bad lines" in result.stderr
    raised = [(a["rule"], a["priority"]) for a in alerts if a["decision"] == "raise"]
    assert raised == [("pendant_alarm", 1), ("spo2_low", 2), ("door_left_open", 3), ("night_exit", 2),
                      ("hub_offline", 2)]
    cleared = [a["rule"] for a in alerts if a["decision"] == "clear"]
    assert cleared == ["door_left_open", "hub_offline"]
    spo2_alert = next(a for a in alerts if a.get("rule") == "spo2_low")
    assert set(spo2_alert) == {"decision", "at", "person", "rule", "subject", "priority", "title", "policy",
                               "explanation"}
    assert spo2_alert["person"] == "home-001"
    assert spo2_alert["at"] == (at(minutes=41)).isoformat()
    offline = next(a for a in alerts if a.get("rule") == "hub_offline")
    assert offline["at"] == (at(minutes=55) + timedelta(minutes=12)).isoformat()


def test_replay_is_deterministic(tmp_path: Path) -> None:
    _, _, first = replay(tmp_path, "one.jsonl")
    _, _, second = replay(tmp_path, "two.jsonl")
    assert first == second and first


def test_the_installed_command_prints_only_json_on_stdout(tmp_path: Path) -> None:
    trace = fall_traces.fall(200.0, seed=25, fall_at=4.0, duration_s=10.0)
    path = tmp_path / "fall.csv"
    path.write_text(trace.csv())
    done = subprocess.run([sys.executable, "-m", "telecare.cli", "pendant-replay", "--input", str(path),
                           "--rate", "200"], capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["kind"] for line in done.stdout.splitlines()] == ["fall"]
    assert "1 fall alarm" in done.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("t,ax,ay,az\n0,0,0,1\n0,0,0,1\n")
    done = subprocess.run([sys.executable, "-m", "telecare.cli", "pendant-replay", "--input", str(bad),
                           "--rate", "200"], capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert "line 3" in done.stderr and "Traceback" not in done.stderr
