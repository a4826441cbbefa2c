"""`telecare demo` clears what an earlier run left in its data directory, and nothing else."""

from pathlib import Path

from telecare.demo import DEMO_DIRS, DEMO_FILES, clear_previous_run


def test_an_earlier_runs_files_go_and_everything_else_stays(tmp_path: Path) -> None:
    for name in DEMO_FILES:
        (tmp_path / name).write_text("old")
    for name in DEMO_DIRS:
        (tmp_path / name / "inside").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "elsewhere").mkdir()

    removed = clear_previous_run(tmp_path)

    assert removed == [*DEMO_FILES, *DEMO_DIRS]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["elsewhere", "notes.txt"]


def test_a_fresh_directory_has_nothing_to_clear(tmp_path: Path) -> None:
    assert clear_previous_run(tmp_path) == []
