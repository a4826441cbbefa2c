"""The activity rules on real homes: van Kasteren house A, Ordóñez A and B, through `telecare replay` and `score`.

Data (`shared/data`, see its README and each folder's SOURCE.md; never copied into the repo):
van Kasteren house A (UbiComp 2008; 28 days, doors and switches, no bed sensor) and Ordóñez
homes A and B (UCI ADL binary sensors, Sensors 2013; 14 and 21 days, bed and seat mats, the
main door, flush, PIRs). `device_sims.recordings` converts each into a protocol stream, a
people file and labels in the simulator's format (its docstring gives the sensor mapping and
the labels: a "leave the house" interval starting from 22:00, or from the usual labelled
bedtime if earlier, to 06:00 is a `night_exit`; any other is an `outing`, expecting
`house_unoccupied`). Every home absent from `shared/data` is skipped.

1. Night exits against `night_exit.return_minutes` (N): for each N, each home is replayed
   with `telecare replay` (N set in its people file, `[person.rules.night_exit]`) and scored with
   `telecare score`; printed per N, over the homes together: labelled night exits detected
   (recall), `night_exit` false alarms and false alarms per week (per home-week), and per home.
   Twice: with the night window learnt from the person's bedtimes (the default) and with it
   fixed at 22:00 (the person's own `night_start`), which exposes the evening's departures.
2. Every rule at the defaults, per home: `telecare score`'s false alarms per week by rule.
3. Read from the engine in process, at the defaults: each home's learned night window at the
   end of its recording (the median bedtime `night_exit` learnt), and house A's night toilet
   visits (the counter behind `night_toilet_frequency`): labelled use-toilet inside a go-to-bed
   interval, counted when a visit was counted from 5 min before the label to 5 min after it.
4. The bed sensor's kind (`detection.people.BedSensorKind`, a device setting). Ordóñez's bed
   pressure mats are enrolled as **occupancy** mats (`BED_SENSOR_KIND`): each of their sensor
   rows is one activation interval that holds for as long as the bed is occupied (home A's
   Sleeping labels equal them to the second; median 9.4 h a night), which is what an occupancy
   mat reports, not a pulse on each movement. For comparison only, every rule at the defaults
   is also run with the same mats read as pulse-on-movement mats (`bed_as_pulse`): what the
   rules lose when a mat's vacated event is not believed.

    .venv/bin/python bench/eval_activity.py [--minutes 5 10 15 ...]

A replay of house A's four weeks takes about half a minute (a tick a minute), so the whole
table takes several minutes.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detection.activity import night_date, night_toilet_visits
from detection.engine import Engine
from detection.people import BedSensorKind, load_people
from device_sims.recordings import Recording, ordonez, vankasteren

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RETURN_MINUTES = (2, 5, 10, 15, 20, 30, 45, 60)
"""N from `night_exit.return_minutes`' floor to its ceiling (detection/defaults.py)."""
WINDOWS: dict[str, dict[str, str]] = {"learned": {}, "fixed 22:00": {"night_start": "22:00"}}
"""The night window: learnt from the person's bedtimes (default), or the person's own 22:00."""
BED_SENSOR_KIND = BedSensorKind.OCCUPANCY
"""How the Ordóñez bed pressure mats are enrolled: occupancy mats (module docstring, 4)."""


def recordings() -> list[Recording]:
    found = []
    if (DATA / "vankasteren_houseA").exists():
        found.append(vankasteren(DATA / "vankasteren_houseA"))
    folder = DATA / "ordonez_adl_binary" / "UCI_ADL_Binary_Dataset"
    if folder.exists():
        found += [ordonez(folder, "A"), ordonez(folder, "B")]
    return found


def cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "telecare.cli", *args], check=True, capture_output=True, text=True,
                          cwd=ROOT)
    return done.stdout


def enrol_beds(people_file: Path, recording: Recording, kind: BedSensorKind) -> None:
    """Give the home's bed devices their kind in its people file (`[person.bed_sensors]`)."""
    beds = sorted(device for device, where in recording.devices.items() if where == "bed")
    if beds:
        lines = ["", "[person.bed_sensors]", *(f'{json.dumps(device)} = "{kind.value}"' for device in beds)]
        people_file.write_text(people_file.read_text(encoding="utf-8") + "\n".join(lines) + "\n", encoding="utf-8")


def replay_and_score(recording: Recording, tmp: Path, rules: dict[str, dict[str, Any]],
                     bed: BedSensorKind = BED_SENSOR_KIND) -> dict[str, Any]:
    """`telecare replay` then `telecare score` of one home with these rule settings and its beds of this kind."""
    stream = tmp / f"{recording.name}.jsonl"
    recording.write(stream, rules)
    enrol_beds(tmp / f"{recording.name}.people.toml", recording, bed)
    alerts = tmp / f"{recording.name}.alerts.jsonl"
    cli("replay", "--input", str(stream), "--people", str(tmp / f"{recording.name}.people.toml"),
        "--output", str(alerts))
    result: dict[str, Any] = json.loads(cli("score", "--alerts", str(alerts),
                                            "--labels", str(tmp / f"{recording.name}.labels.jsonl")))
    return result


def night_exit_row(scores: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The homes' `night_exit` results together: recall, false alarms, per home-week."""
    labels = detected = false = 0
    weeks = 0.0
    by_home = {}
    latencies: list[float] = []
    for home, result in scores.items():
        kind = result["kinds"].get("night_exit", {})
        home_false = result["false_alarms_by_rule"].get("night_exit", 0)
        labels += kind.get("labels", 0)
        detected += kind.get("detected", 0)
        false += home_false
        weeks += result["weeks"]
        if kind.get("latency_s"):
            latencies.append(kind["latency_s"]["max"])
        by_home[home] = {"detected": f"{kind.get('detected', 0)}/{kind.get('labels', 0)}", "false_alarms": home_false}
    return {"detected": f"{detected}/{labels}", "recall": round(detected / labels, 3) if labels else None,
            "false_alarms": false, "false_alarms_per_week": round(false / weeks, 3) if weeks else None,
            "max_latency_s": max(latencies) if latencies else None, "weeks": round(weeks, 2), "by_home": by_home}


def in_process(home: Recording, tmp: Path) -> Engine:
    """The engine after the home's recording, at the defaults, ticking every minute as `telecare replay` does."""
    home.write(tmp / f"{home.name}.engine.jsonl")
    enrol_beds(tmp / f"{home.name}.engine.people.toml", home, BED_SENSOR_KIND)
    engine = Engine(load_people(tmp / f"{home.name}.engine.people.toml"))
    next_tick = home.messages[0].source_ts + timedelta(seconds=60)
    for message in home.messages:
        while message.source_ts >= next_tick:
            engine.tick(next_tick)
            next_tick += timedelta(seconds=60)
        engine.observe(message)
    return engine


def learned_window(home: Recording, engine: Engine) -> dict[str, Any]:
    """The night exit window `night_exit` would use the night after the recording ends."""
    rules = engine._people[home.person_id].activity
    last = home.messages[-1].source_ts
    _, _, window = rules.night_window(night_date(last + timedelta(days=1)))
    return window


def toilet_visits(house_a: Recording, engine: Engine) -> dict[str, Any]:
    """House A's night toilet visits as the engine counts them, against the use-toilet labels in go-to-bed."""
    names = dict(line.split("\t", 1) for line in (DATA / "vankasteren_houseA" / "houseA.activity_names")
                 .read_text().splitlines() if line.strip())
    labels = []
    for line in (DATA / "vankasteren_houseA" / "houseA.activities").read_text().splitlines():
        if line.strip():
            start, duration, ident = line.split("\t")
            begin = datetime.fromtimestamp(float(start), tz=UTC)
            labels.append((begin, begin + timedelta(seconds=float(duration)), names[ident].strip()))
    beds = [(s, e) for s, e, name in labels if name == "go-to-bed"]
    toilets = [(s, e) for s, e, name in labels if name == "use-toilet" and any(b <= s and e <= f for b, f in beds)]
    counted = [v for visits in night_toilet_visits(engine._people[house_a.person_id].activity).values() for v in visits]
    slack = timedelta(minutes=5)
    hits = [any(s - slack <= v <= e + slack for v in counted) for s, e in toilets]
    night = [hit for hit, (s, _) in zip(hits, toilets, strict=True) if s.hour >= 22 or s.hour < 6]
    return {"labelled": len(toilets), "recall": round(sum(hits) / len(hits), 3) if hits else None,
            "labelled_22_06": len(night), "recall_22_06": round(sum(night) / len(night), 3) if night else None,
            "counted": len(counted)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, nargs="*", default=list(RETURN_MINUTES),
                        help="values of night_exit.return_minutes to try")
    args = parser.parse_args()
    homes = recordings()
    if not homes:
        print(json.dumps({"skipped": "no van Kasteren or Ordonez data (shared data absent)"}))
        return 0
    table: dict[str, dict[int, Any]] = {}
    defaults: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for window, setting in WINDOWS.items():
            table[window] = {}
            for minutes in args.minutes:
                rules = {"night_exit": {**setting, "return_minutes": minutes}}
                scores = {home.name: replay_and_score(home, Path(tmp), rules) for home in homes}
                table[window][minutes] = row = night_exit_row(scores)
                print(f"night_exit, window {window}, N = {minutes} min: detected {row['detected']}, "
                      f"{row['false_alarms']} false alarms, {row['false_alarms_per_week']} a week", file=sys.stderr)
        for home in homes:
            result = replay_and_score(home, Path(tmp), {})
            defaults[home.name] = {key: result[key] for key in ("weeks", "raised", "false_alarms",
                                                                "false_alarms_per_week", "false_alarms_by_rule")}
            defaults[home.name]["kinds"] = {k: {f: v.get(f) for f in ("labels", "detected", "recall", "latency_s")}
                                            for k, v in result["kinds"].items()}
        as_pulse: dict[str, Any] = {}
        for home in homes:
            if "bed" in home.devices.values():
                result = replay_and_score(home, Path(tmp), {}, BedSensorKind.PULSE)
                as_pulse[home.name] = {key: result[key] for key in ("false_alarms", "false_alarms_per_week",
                                                                    "false_alarms_by_rule")}
                as_pulse[home.name]["kinds"] = {k: {f: v.get(f) for f in ("labels", "detected")}
                                                for k, v in result["kinds"].items()}
        engines = {home.name: in_process(home, Path(tmp)) for home in homes}
        windows = {home.name: learned_window(home, engines[home.name]) for home in homes}
        house_a = next((h for h in homes if h.name == "vankasteren_houseA"), None)
        toilets = toilet_visits(house_a, engines[house_a.name]) if house_a is not None else None
    print(json.dumps({"night_exit_by_return_minutes": table, "defaults": defaults,
                      "bed_sensor_kind": BED_SENSOR_KIND.value, "bed_as_pulse": as_pulse,
                      "learned_night_window": windows, "night_toilet_visits_house_a": toilets,
                      "homes": {h.name: {"days": round(h.days, 1), "events": len(h.messages)} for h in homes}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
