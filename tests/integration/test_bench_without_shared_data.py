"""`make bench` on a machine without the shared data sets (`../shared/data`): the benchmarks that
need them say so in one JSON line and exit 0, so the rest of `make bench` still runs."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("bench", ["falls.py", "eval_spo2.py", "eval_activity.py"])
def test_a_bench_without_its_data_is_skipped_with_a_json_line(bench: str, tmp_path: Path) -> None:
    # The bench finds its data beside the repository it runs from; a copy here has none beside it.
    (tmp_path / "repo" / "bench").mkdir(parents=True)
    script = tmp_path / "repo" / "bench" / bench
    shutil.copy(REPO / "bench" / bench, script)
    env = os.environ | {"PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert "shared data absent" in last["skipped"]
