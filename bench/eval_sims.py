"""Detection against the simulator's labelled incidents (device_sims/scenarios).

For each scenario: `telecare sim run SCENARIO --record tmp/S.jsonl` writes the stream, its
labels and people file; the stream is replayed through the detection engine exactly as
`telecare replay` does; then, per incident kind:

- detected: an alert (a new episode) of the label's person, with a rule in its `expect`,
  raised between the label's start and its end + `--slack` minutes;
- false alarm: an alert that no label with a non-empty `expect` explains (same person, a
  rule it expects, raised in its window + slack). Alerts inside a must-not-alarm label
  (questionable readings, probe-off gaps, a cancelled fall) are false alarms.

    .venv/bin/python bench/eval_sims.py [SCENARIO ...] [--slack 30]
"""

import argparse
import io
import json
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detection.engine import Engine
from detection.people import load_people
from telecare.replay import ReplayStats, read_stream, replay

ROOT = Path(__file__).resolve().parent.parent


def alerts_for(stream: Path, people: Path) -> list[dict[str, Any]]:
    out = io.StringIO()
    stats = ReplayStats()
    with stream.open(encoding="utf-8") as handle:
        replay(Engine(load_people(people)), read_stream(handle, stats), out, stats)
    return [a for a in (json.loads(line) for line in out.getvalue().splitlines()) if "raised_at" in a]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def score(labels: list[dict[str, Any]], alerts: list[dict[str, Any]], slack: timedelta) -> dict[str, Any]:
    kinds: dict[str, list[bool]] = defaultdict(list)
    explained: set[int] = set()
    for label in labels:
        start, end = when(label["start"]), when(label["end"]) + slack
        hits = [i for i, a in enumerate(alerts) if a["person"] == label["person"] and a["rule"] in label["expect"]
                and start <= when(a["raised_at"]) <= end]
        explained.update(hits)
        if label["expect"]:
            kinds[label["incident"]].append(bool(hits))
    false = [a for i, a in enumerate(alerts) if i not in explained]
    return {
        "recall": {k: round(sum(v) / len(v), 3) for k, v in sorted(kinds.items())},
        "detected": {k: f"{sum(v)}/{len(v)}" for k, v in sorted(kinds.items())},
        "false_alarms": len(false),
        "false_alarms_by_rule": dict(sorted(Counter(a["rule"] for a in false).items())),
        "false": [f"{a['person']} {a['rule']} {a['raised_at'][:16]}" for a in false],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help="scenario files (default: every shipped scenario)")
    parser.add_argument("--slack", type=float, default=30.0, help="minutes after a label's end that still count")
    args = parser.parse_args()
    scenarios = [Path(s) for s in args.scenarios] or sorted((ROOT / "device_sims" / "scenarios").glob("*.toml"))
    if not scenarios:
        print(json.dumps({"skipped": "no device_sims scenarios"}))
        return 0
    results: dict[str, Any] = {}
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    false_total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in scenarios:
            out = Path(tmp) / f"{scenario.stem}.jsonl"
            subprocess.run([sys.executable, "-m", "telecare.cli", "sim", "run", str(scenario), "--record", str(out)],
                           check=True, capture_output=True, cwd=ROOT)
            labels_path, people_path = out.with_name(f"{scenario.stem}.labels.jsonl"), \
                out.with_name(f"{scenario.stem}.people.toml")
            labels = [json.loads(line) for line in labels_path.read_text().splitlines() if line.strip()]
            result = score(labels, alerts_for(out, people_path), timedelta(minutes=args.slack))
            results[scenario.stem] = result
            false_total += result["false_alarms"]
            for kind, text in result["detected"].items():
                hit, total = (int(x) for x in text.split("/"))
                totals[kind][0] += hit
                totals[kind][1] += total
            print(f"{scenario.stem}: detected {result['detected']}; false alarms {result['false']}")
    recall = {k: round(h / t, 3) for k, (h, t) in sorted(totals.items())}
    print(json.dumps({"scenarios": len(scenarios), "recall": recall, "false_alarms": false_total,
                      "slack_minutes": args.slack,
                      "by_scenario": {k: {"false_alarms": v["false_alarms"], "by_rule": v["false_alarms_by_rule"]}
                                      for k, v in results.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
