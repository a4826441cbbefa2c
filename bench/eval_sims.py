"""Detection against the simulator's labelled incidents (device_sims/scenarios), scored by `telecare score`.

For each scenario: `telecare sim run SCENARIO --record tmp/S.jsonl` writes the stream, its
labels and people file; `telecare replay` runs the detection engine over it; then the
decisions of every scenario are scored together with `telecare.score` (its docstring says how:
an incident is detected by a raise or repeat of an expected rule from its start to its end +
`--slack` minutes; a raise that detects nothing is a false alarm, also inside a must-not-alarm
label; per week is per home-week watched). Per incident kind: recall, latency (median and
max, seconds from the labelled start) and false alarms per week.

    .venv/bin/python bench/eval_sims.py [SCENARIO ...] [--slack 30]
"""

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from telecare.score import AlertLine, LabelLine, Observed, load_alerts, load_labels, score, weeks_watched

ROOT = Path(__file__).resolve().parent.parent


def recorded(scenario: Path, tmp: Path) -> tuple[list[AlertLine], list[LabelLine], list[Observed]]:
    """Record the scenario, replay it through `telecare replay`; its decisions and labels, person ids
    prefixed with the scenario (each scenario numbers its homes from home-001)."""
    out = tmp / f"{scenario.stem}.jsonl"
    labels_path, people_path = out.with_name(f"{scenario.stem}.labels.jsonl"), \
        out.with_name(f"{scenario.stem}.people.toml")
    alerts_path = out.with_name(f"{scenario.stem}.alerts.jsonl")
    for command in (["sim", "run", str(scenario), "--record", str(out)],
                    ["replay", "--input", str(out), "--people", str(people_path), "--output", str(alerts_path)]):
        subprocess.run([sys.executable, "-m", "telecare.cli", *command], check=True, capture_output=True, cwd=ROOT)
    alerts, observed = load_alerts(alerts_path)
    prefix = f"{scenario.stem}/"
    return ([replace(a, person=prefix + a.person) for a in alerts],
            [replace(label, person=prefix + label.person) for label in load_labels(labels_path)],
            [replace(o, person=prefix + o.person) for o in observed])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help="scenario files (default: every shipped scenario)")
    parser.add_argument("--slack", type=float, default=30.0, help="minutes after a label's end that still count")
    args = parser.parse_args()
    scenarios = [Path(s) for s in args.scenarios] or sorted((ROOT / "device_sims" / "scenarios").glob("*.toml"))
    if not scenarios:
        print(json.dumps({"skipped": "no device_sims scenarios"}))
        return 0
    slack = timedelta(minutes=args.slack)
    alerts: list[AlertLine] = []
    labels: list[LabelLine] = []
    observed: list[Observed] = []
    by_scenario: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in scenarios:
            these = recorded(scenario, Path(tmp))
            result = score(*these[:2], weeks_watched(these[2]), slack)
            by_scenario[scenario.stem] = {"false_alarms": result["false_alarms"],
                                          "by_rule": result["false_alarms_by_rule"]}
            detected = {k: f"{v['detected']}/{v['labels']}" for k, v in result["kinds"].items() if "detected" in v}
            print(f"{scenario.stem}: detected {detected}; false alarms {result['false_alarms_by_rule']}",
                  file=sys.stderr)
            alerts += these[0]
            labels += these[1]
            observed += these[2]
    overall = score(alerts, labels, weeks_watched(observed), slack)
    print(json.dumps({"scenarios": len(scenarios), **overall, "by_scenario": by_scenario}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
