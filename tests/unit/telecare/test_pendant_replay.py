"""`telecare pendant-replay`: JSON lines for the falls the pendant would send, clear errors for bad files.
The installed command, in a subprocess, is in tests/integration/test_replay_cli.py."""

import json
from pathlib import Path

import pytest

from telecare.cli import main
from tests.support import fall_traces


def replay(capsys: pytest.CaptureFixture[str], path: Path, rate: float) -> tuple[int, list[dict[str, object]], str]:
    code = main(["pendant-replay", "--input", str(path), "--rate", f"{rate:g}"])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


@pytest.mark.parametrize("rate", [20.0, 200.0])
def test_a_fall_gives_one_line_with_its_impact_time(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    rate: float) -> None:
    trace = fall_traces.fall(rate, seed=21, fall_at=5.0, duration_s=15.0)  # ends inside the cancel window
    path = tmp_path / "fall.csv"
    path.write_text(trace.csv())
    code, lines, err = replay(capsys, path, rate)
    assert code == 0
    assert trace.impact_t is not None
    assert len(lines) == 1
    assert lines[0]["kind"] == "fall"
    assert lines[0]["t"] == pytest.approx(trace.impact_t, abs=1.5 / rate + 0.01)
    assert "warning" not in err


@pytest.mark.parametrize("rate", [20.0, 200.0])
def test_fall_like_activity_gives_no_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], rate: float) -> None:
    path = tmp_path / "sit.csv"
    path.write_text(fall_traces.sit_down_hard(rate, seed=22).csv())
    code, lines, _ = replay(capsys, path, rate)
    assert (code, lines) == (0, [])


def test_two_falls_apart_give_two_lines_and_one_inside_the_window_is_the_same_alarm(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rate = 50.0
    first = fall_traces.fall(rate, seed=23, fall_at=5.0, duration_s=14.0)
    second = fall_traces.fall(rate, seed=23, fall_at=5.0, duration_s=14.0)

    def joined(gap_s: float) -> Path:
        path = tmp_path / f"two-{gap_s:g}.csv"
        offset = first.t[-1] + 1 / rate + gap_s
        rows = [*zip(first.t, first.a, strict=True),
                *((t + offset, a) for t, a in zip(second.t, second.a, strict=True))]
        path.write_text("t,ax,ay,az\n" + "".join(f"{t:.5f},{x},{y},{z}\n" for t, (x, y, z) in rows))
        return path

    _, lines, _ = replay(capsys, joined(30.0), rate)
    second_impact = 14.0 + 1 / rate + 30.0 + 5.0
    assert [line["t"] for line in lines] == [pytest.approx(5.0, abs=0.05), pytest.approx(second_impact, abs=0.05)]
    # The second fall 14 s after the first one is inside its 20 s cancel window: one alarm.
    _, lines, _ = replay(capsys, joined(0.0), rate)
    assert [line["t"] for line in lines] == [pytest.approx(5.0, abs=0.05)]


def test_a_rate_that_disagrees_with_the_t_column_is_warned_about(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    trace = fall_traces.fall(50.0, seed=24)
    path = tmp_path / "fall.csv"
    path.write_text(trace.csv())
    code, lines, err = replay(capsys, path, 200.0)
    assert code == 0
    assert "warning" in err and "50 Hz" in err
    assert len(lines) == 1  # timing follows the t column


@pytest.mark.parametrize(("content", "message"), [
    ("", "empty"),
    ("time,x,y,z\n0,0,0,1\n", "line 1"),
    ("0,0,0,1\n0.02,0,0,1\n", "line 1"),
    ("t,ax,ay,az\n0,0,0,1\n0.02,0,0\n", "line 3: 3 columns"),
    ("t,ax,ay,az\n0,0,0,1\n0.02,0,x,1\n", "line 3: ay is 'x'"),
    ("t,ax,ay,az\n0,0,0,1\n0.02,0,nan,1\n", "line 3: ay is 'nan', not a finite number"),
    ("t,ax,ay,az\n0,0,0,1\n0.02,0,0,1\n0.02,0,0,1\n", "line 4: t 0.02 does not increase"),
], ids=["empty", "wrong-header", "no-header", "columns", "not-a-number", "nan", "t-not-increasing"])
def test_a_bad_file_is_refused_with_its_line_and_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code = main(["pendant-replay", "--input", str(path), "--rate", "50"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert message in err and "Traceback" not in err


def test_a_missing_file_or_a_rate_out_of_range_is_exit_code_2(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pendant-replay", "--input", str(tmp_path / "nope.csv"), "--rate", "50"]) == 2
    assert "cannot read" in capsys.readouterr().err
    path = tmp_path / "ok.csv"
    path.write_text("t,ax,ay,az\n0,0,0,1\n")
    assert main(["pendant-replay", "--input", str(path), "--rate", "5"]) == 2
    assert "outside" in capsys.readouterr().err
