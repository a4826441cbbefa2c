"""False alarms of the SpO2 rules on a real 1 Hz oximetry record (PhysioZoo example trace).

The record (`shared/data/spo2_1hz_normal`, see its SOURCE.md; Levy et al., npj Digit Med
2021) is an hour of mostly normal SpO2 with 35 s below 92% in short dips: a false-alarm
test. It is fed to the detection engine as continuous 1 Hz readings from one oximeter,
with a tick every 60 s. Target: 0 alarms.

As a positive control in the same run, the same trace shifted down by `--shift` points
(default 6: a sustained desaturation) must alarm, or the zero above would mean nothing.

    .venv/bin/python bench/eval_spo2.py
"""

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detection.engine import Engine, Raise
from detection.people import PersonProfile
from telecare_protocol import Metric, Reading

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "spo2_1hz_normal" / "example_spo2.txt"
START = datetime(2026, 1, 5, 22, 0, tzinfo=UTC)


def load(path: Path) -> list[float]:
    """PhysioZoo text: a YAML header between `---` lines, then one value per line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    markers = [i for i, line in enumerate(lines) if line.strip() == "---"]
    body = lines[markers[1] + 1:] if len(markers) >= 2 else lines
    return [float(line) for line in body if line.strip()]


def run(values: list[float], shift: float = 0.0) -> list[Raise]:
    person = PersonProfile(id="eval", hubs=("hub-eval",), devices={"oxi-1": "oximeter"})
    engine = Engine([person])
    alarms: list[Raise] = []
    next_tick = START + timedelta(seconds=60)
    for second, value in enumerate(values):
        at = START + timedelta(seconds=second)
        if at >= next_tick:
            alarms += [d for d in engine.tick(next_tick) if isinstance(d, Raise)]
            next_tick += timedelta(seconds=60)
        reading = Reading(hub_id="hub-eval", device_id="oxi-1", metric=Metric.SPO2,
                          value=max(0.0, min(100.0, value - shift)), unit="%", source_ts=at, hub_ts=at)
        alarms += [d for d in engine.observe(reading) if isinstance(d, Raise)]
    return [a for a in alarms if a.explanation.get("episode") == "new"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shift", type=float, default=6.0, help="points to subtract for the positive control")
    args = parser.parse_args()
    if not DATA.exists():
        print(json.dumps({"skipped": f"{DATA.name} not found (shared data absent)"}))
        return 0
    values = load(DATA)
    alarms = run(values)
    for alarm in alarms:
        print(f"ALARM {alarm.at.isoformat()} {alarm.rule} p{alarm.priority}: {alarm.title}")
    control = run(values, args.shift)
    below = sum(1 for v in values if int(v + 0.5) < 92)
    print(json.dumps({
        "false_alarms": len(alarms), "hours": round(len(values) / 3600, 3), "samples": len(values),
        "seconds_displayed_below_92": below, "rules": sorted({a.rule for a in alarms}),
        "control_shift": args.shift, "control_alarms": len(control),
        "control_rules": sorted({f"{a.rule}:p{a.priority}" for a in control}),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
