"""The activity rules on a real home: van Kasteren house A (28 days, one resident).

Data: `shared/data/vankasteren_houseA` (van Kasteren et al., UbiComp 2008; see its
SOURCE.md). Binary sensors as activation intervals; timestamps are local wall-clock time
written as if UTC, so the person's profile uses timezone "UTC" and the times are taken as
they are. Sensors map to our devices:

- Front door → `front_door` (door_opened at the start of the interval, door_closed at its end);
- Hall-Bedroom door → `bedroom_door`, Hall-Toilet door → `toilet_door`, Hall-Bathroom door →
  `bathroom_door` (opened/closed the same way);
- Toilet Flush → `toilet` activity; fridge, freezer, microwave, dishwasher and cupboards →
  `kitchen` activity; washing machine → `hall` activity (only "someone is in"). Sensor id 4
  has no name in the converted files; by its event count it is the original's id 7, the
  cups cupboard (kitchen).

House A has no bed sensor: the rules see only doors and switches. `night_exit` takes the
bedroom door used tonight as "went to bed"; `out_of_bed_at_night` needs a bed sensor and
does not run. The go-to-bed labels are used only for SCORING, never as detector input.

Scored:
- night exits: labelled leave-house starting 22:00-06:00; detected by a `night_exit` alert
  from 5 min before to 30 min after the label's start;
- night toilet visits: labelled use-toilet inside a go-to-bed interval; detected when the
  night toilet counter (the input of `night_toilet_frequency`) counted a visit from 5 min
  before the label to 5 min after it;
- the same night-time leave-house labels, detected by `night_exit` or `house_unoccupied`
  while the person is out (reported apart: house A's one such label is a weekend away that
  began at 22:03 after dinner, not a wandering exit from bed);
- false alarms: every alert (new episode) that is not a detected night exit, per week
  `house_unoccupied` alerts raised while a leave-house label says the home really was empty
  are counted apart (true, but an outing longer than learnt is not an emergency).

    .venv/bin/python bench/eval_activity.py
"""

import json
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detection.activity import night_toilet_visits
from detection.engine import Decision, Engine, Raise
from detection.people import PersonProfile
from telecare_protocol import DeviceEvent, DeviceType, EventCode

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "vankasteren_houseA"
HUB = "hub-housea"
DOORS = {"Front door": "front_door", "Hall-Bedroom door": "bedroom_door", "Hall-Toilet door": "toilet_door",
         "Hall-Bathroom door": "bathroom_door"}
SWITCHES = {"Toilet Flush": "toilet", "Washing machine": "hall"}
"""Everything else in house A is a kitchen appliance or cupboard."""
NIGHT_START, NIGHT_END = 22, 6


def local(epoch: float) -> datetime:
    """Local wall-clock time written as if UTC (SOURCE.md): taken as it is, in a UTC profile."""
    return datetime.fromtimestamp(epoch, tz=UTC)


def names(path: Path) -> dict[int, str]:
    rows = (line.split("\t", 1) for line in path.read_text().splitlines() if line.strip())
    return {int(key): name.strip() for key, name in rows}


def intervals(path: Path) -> list[tuple[datetime, datetime, int]]:
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            start, duration, ident = line.split("\t")
            out.append((local(float(start)), local(float(start) + float(duration)), int(ident)))
    return out


def device_id(name: str) -> str:
    return "s-" + "".join(c if c.isalnum() else "-" for c in name.lower())


def events(sensor_names: dict[int, str]) -> tuple[list[DeviceEvent], dict[str, str]]:
    devices: dict[str, str] = {}
    out: list[DeviceEvent] = []
    for start, end, ident in intervals(DATA / "houseA.sensors"):
        name = sensor_names.get(ident, f"sensor {ident}")  # id 4 is unnamed: by its count, the cups cupboard
        device = device_id(name)
        if name in DOORS:
            devices[device] = DOORS[name]
            out += [DeviceEvent.new(hub_id=HUB, device_id=device, device_type=DeviceType.DOOR_SENSOR,
                                    code=EventCode.DOOR_OPENED, source_ts=start),
                    DeviceEvent.new(hub_id=HUB, device_id=device, device_type=DeviceType.DOOR_SENSOR,
                                    code=EventCode.DOOR_CLOSED, source_ts=end)]
        else:
            devices[device] = SWITCHES.get(name, "kitchen")
            out.append(DeviceEvent.new(hub_id=HUB, device_id=device, device_type=DeviceType.MOTION_SENSOR,
                                       code=EventCode.ACTIVITY, source_ts=start))
    out.sort(key=lambda e: e.source_ts)
    return out, devices


def at_night(when: datetime) -> bool:
    return when.hour >= NIGHT_START or when.hour < NIGHT_END


def main() -> int:
    if not DATA.exists():
        print(json.dumps({"skipped": "vankasteren_houseA not found (shared data absent)"}))
        return 0
    sensor_names = names(DATA / "houseA.sensor_names")
    activity_names = names(DATA / "houseA.activity_names")
    stream, devices = events(sensor_names)
    person = PersonProfile(id="house-a", hubs=(HUB,), timezone="UTC", devices=devices)
    engine = Engine([person])
    decisions: list[Decision] = []
    next_tick = stream[0].source_ts + timedelta(seconds=60)
    for event in stream:
        while event.source_ts >= next_tick:
            decisions += engine.tick(next_tick)
            next_tick += timedelta(seconds=60)
        decisions += engine.observe(event)
    decisions += engine.tick(stream[-1].source_ts)
    alerts = [d for d in decisions if isinstance(d, Raise) and d.explanation.get("episode") == "new"]

    labels = [(s, e, activity_names[i]) for s, e, i in intervals(DATA / "houseA.activities")]
    beds = [(s, e) for s, e, name in labels if name == "go-to-bed"]
    exits = [s for s, _, name in labels if name == "leave-house" and at_night(s)]
    night_outings = [(s, e) for s, e, name in labels if name == "leave-house" and at_night(s)]
    toilets = [(s, e) for s, e, name in labels if name == "use-toilet" and any(b <= s and e <= f for b, f in beds)]
    counted = [v for visits in night_toilet_visits(engine._people["house-a"].activity).values() for v in visits]
    slack = timedelta(minutes=5)
    toilet_hits = [any(s - slack <= v <= e + slack for v in counted) for s, e in toilets]
    in_window = [hit for hit, (s, _) in zip(toilet_hits, toilets, strict=True) if at_night(s)]
    exit_alerts = [a for a in alerts if a.rule == "night_exit"]
    matched: set[int] = set()
    exit_hits = []
    for start in exits:
        hits = [i for i, a in enumerate(alerts) if a.rule == "night_exit"
                and start - slack <= a.at <= start + timedelta(minutes=30)]
        matched.update(hits)
        exit_hits.append(bool(hits))
    any_rule = [any(a.rule in ("night_exit", "house_unoccupied") and s - slack <= a.at <= e for a in alerts)
                for s, e in night_outings]
    outings = [(s, e) for s, e, name in labels if name == "leave-house"]
    really_out = {i for i, a in enumerate(alerts)
                  if a.rule == "house_unoccupied" and any(s <= a.at <= e for s, e in outings)}
    false = [a for i, a in enumerate(alerts) if i not in matched and i not in really_out]
    weeks = (stream[-1].source_ts - stream[0].source_ts).total_seconds() / (7 * 86400)
    for alert in alerts:
        print(f"{alert.at.isoformat()} {alert.rule} p{alert.priority}: {alert.title}")
    print(json.dumps({
        "recall": {"night_exit": round(sum(exit_hits) / len(exit_hits), 3) if exit_hits else None,
                   "night_toilet_visit": round(sum(toilet_hits) / len(toilet_hits), 3) if toilet_hits else None,
                   "night_toilet_visit_22_06": round(sum(in_window) / len(in_window), 3) if in_window else None,
                   "night_leave_house_by_any_rule": round(sum(any_rule) / len(any_rule), 3) if any_rule else None},
        "labelled": {"night_exits": len(exits), "night_toilet_visits": len(toilets),
                     "night_toilet_visits_22_06": len(in_window)},
        "counted_night_toilet_visits": len(counted), "night_exit_alerts": len(exit_alerts),
        "house_unoccupied_while_really_out": len(really_out),
        "false_alarms": len(false), "false_alarms_per_week": round(len(false) / weeks, 2),
        "false_alarms_by_rule": dict(sorted(Counter(a.rule for a in false).items())),
        "weeks": round(weeks, 2), "events": len(stream),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
