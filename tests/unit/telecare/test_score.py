"""`telecare score` on hand-made decisions and labels: recall, false alarms per week and latency, each
worked out by hand in the comments; and its refusal (exit 2, one line) of input it cannot use."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from telecare.cli import main
from telecare.score import AlertLine, LabelLine, Observed, ScoreInputError, load_alerts, score, weeks_watched


def t(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


OBSERVED = [Observed("p1", t(2, 0), t(16, 0)),  # two weeks
            Observed("p2", t(2, 0), t(9, 0))]   # one week: 3 person-weeks in all
LABELS = [
    LabelLine("night_exit", "p1", t(3, 3), t(3, 3, 30), ("night_exit",)),         # L1
    LabelLine("night_exit", "p1", t(5, 2), t(5, 2, 40), ("night_exit",)),         # L2
    LabelLine("night_exit", "p2", t(4, 1), t(4, 1, 20), ("night_exit",)),         # L3
    LabelLine("fall", "p1", t(6, 10), t(6, 10, 10), ("fall", "pendant_alarm")),  # L4
    LabelLine("fall_cancelled", "p2", t(5, 16), t(5, 16, 5), ()),               # L5: must not alarm
]
ALERTS = [
    AlertLine("raise", t(3, 3, 18), "p1", "night_exit"),         # A1 detects L1 18 min in: 1080 s
    AlertLine("repeat", t(5, 2, 25), "p1", "night_exit"),        # A2 a repeat detects L2 25 min in: 1500 s
    AlertLine("raise", t(4, 2, 0), "p2", "night_exit"),          # A3 after L3's end + 30 min (01:50): false
    AlertLine("raise", t(4, 1, 10), "p1", "night_exit"),         # A9 inside L3 but the wrong person: false
    AlertLine("raise", t(6, 10, 0, 20), "p1", "pendant_alarm"),  # A4 detects L4 20 s in
    AlertLine("raise", t(6, 10, 0, 30), "p1", "fall"),           # A5 inside L4 too: explained, not first
    AlertLine("raise", t(5, 16, 2), "p2", "door_left_open"),     # A6 inside must-not-alarm L5: false
    AlertLine("raise", t(10, 23), "p1", "night_exit"),           # A7 no label at all: false
]


def test_recall_false_alarms_per_week_and_latency_by_hand() -> None:
    result = score(ALERTS, LABELS, weeks_watched(OBSERVED))
    assert result["weeks"] == 3.0
    # raises: A1, A3, A9, A4, A5, A6, A7 (A2 is a repeat)
    assert result["raised"] == 7
    # false: A3, A9, A7 (night_exit) and A6 (door_left_open): 4 in 3 person-weeks
    assert result["false_alarms"] == 4
    assert result["false_alarms_per_week"] == 1.333
    assert result["false_alarms_by_rule"] == {"door_left_open": 1, "night_exit": 3}
    kinds = result["kinds"]
    # night exits: L1 and L2 detected, L3 missed: 2/3; latencies 1080 s and 1500 s: median 1290, max 1500;
    # the night_exit rule's 3 false alarms in 3 person-weeks: 1 a week
    assert kinds["night_exit"] == {
        "labels": 3, "expect": ["night_exit"], "detected": 2, "recall": 0.667,
        "latency_s": {"median": 1290.0, "max": 1500.0}, "false_alarms": 3, "false_alarms_per_week": 1.0}
    # the fall: the first matching alert is the press 20 s in; fall and pendant_alarm raised nothing false
    assert kinds["fall"] == {
        "labels": 1, "expect": ["fall", "pendant_alarm"], "detected": 1, "recall": 1.0,
        "latency_s": {"median": 20.0, "max": 20.0}, "false_alarms": 0, "false_alarms_per_week": 0.0}
    # the cancelled fall must not alarm; A6 came during it
    assert kinds["fall_cancelled"] == {"labels": 1, "expect": [], "alarmed": 1}


def test_slack_and_lead_widen_the_window() -> None:
    # With 40 min of slack, A3 (40 min after L3's end) detects L3, 60 min in, and is no longer false.
    result = score(ALERTS, LABELS, 3.0, slack=timedelta(minutes=40))
    assert result["kinds"]["night_exit"]["detected"] == 3
    assert result["kinds"]["night_exit"]["latency_s"] == {"median": 1500.0, "max": 3600.0}
    assert result["false_alarms"] == 3
    # An alert 2 min before the labelled start detects it only with a lead, at -120 s.
    early = [AlertLine("raise", t(3, 2, 58), "p1", "night_exit")]
    assert score(early, LABELS[:1], 1.0)["kinds"]["night_exit"]["detected"] == 0
    led = score(early, LABELS[:1], 1.0, lead=timedelta(minutes=5))["kinds"]["night_exit"]
    assert (led["detected"], led["latency_s"]) == (1, {"median": -120.0, "max": -120.0})


def test_weeks_watched_counts_each_person_once() -> None:
    again = [*OBSERVED, Observed("p2", t(1, 0), t(8, 0))]  # p2 from the 1st to the 9th: 8 days
    assert round(weeks_watched(again), 4) == round(2 + 8 / 7, 4)


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_the_command_reads_the_replay_and_the_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    alerts = write(tmp_path / "alerts.jsonl", [
        {"decision": "raise", "at": "2026-03-03T03:18:00+00:00", "person": "p1", "rule": "night_exit"},
        {"decision": "escalate", "at": "2026-03-03T03:18:00+00:00", "person": "p1", "rule": "night_exit"},
        {"decision": "clear", "at": "2026-03-03T04:00:00+00:00", "person": "p1", "rule": "night_exit"},
        {"decision": "observed", "person": "p1", "from": "2026-03-02T00:00:00+00:00",
         "to": "2026-03-09T00:00:00+00:00"}])
    labels = write(tmp_path / "labels.jsonl", [
        {"incident": "night_exit", "person": "p1", "hub_id": "hub-001", "device_id": None,
         "start": "2026-03-03T03:00:00.000Z", "end": "2026-03-03T03:30:00.000Z", "expect": ["night_exit"]}])
    assert main(["score", "--alerts", str(alerts), "--labels", str(labels)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["weeks"], result["kinds"]["night_exit"]["recall"], result["false_alarms"]) == (1.0, 1.0, 0)


@pytest.mark.parametrize(("alerts", "labels", "message"), [
    ('{"decision": "raise"', "", "line 1: not JSON"),
    ('{"decision": "raise", "at": "2026-03-03T03:18:00+00:00", "person": "p1"}\n', "", "line 1: no 'rule'"),
    ('{"decision": "raise", "at": "03:18", "person": "p1", "rule": "x"}\n', "", "not an ISO 8601 time"),
    ("", '{"incident": "x", "person": "p", "start": "2026-03-03T03:00:00Z", "end": "2026-03-03T02:00:00Z", '
         '"expect": []}\n', "ends before it starts"),
    ("", "", "no 'observed' lines"),
])
def test_input_it_cannot_use_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    alerts: str, labels: str, message: str) -> None:
    (tmp_path / "a.jsonl").write_text(alerts)
    (tmp_path / "l.jsonl").write_text(labels)
    assert main(["score", "--alerts", str(tmp_path / "a.jsonl"), "--labels", str(tmp_path / "l.jsonl")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_weeks_can_be_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.jsonl").write_text('{"decision": "raise", "at": "2026-03-03T03:18:00+00:00", "person": "p1", '
                                      '"rule": "night_exit"}\n')
    (tmp_path / "l.jsonl").write_text("")
    assert main(["score", "--alerts", str(tmp_path / "a.jsonl"), "--labels", str(tmp_path / "l.jsonl"),
                 "--weeks", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["false_alarms_per_week"] == 0.5
    with pytest.raises(ScoreInputError):
        load_alerts(tmp_path / "missing.jsonl")
