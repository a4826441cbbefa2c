"""`telecare replay`: a people file it cannot use is refused (exit 2). The command end to end,
in a subprocess, is in tests/integration/test_replay_cli.py."""

from pathlib import Path


def test_bad_people_file_is_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "people.toml").write_text('[[person]]\nid = "x"\nhubs = []\n')
    (tmp_path / "stream.jsonl").write_text("")
    from telecare.cli import main

    code = main(["replay", "--input", str(tmp_path / "stream.jsonl"), "--people", str(tmp_path / "people.toml"),
                 "--output", str(tmp_path / "out.jsonl")])
    assert code == 2
