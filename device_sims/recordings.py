"""Real labelled recordings of homes, converted to what `telecare sim --record` writes.

Two public data sets of binary sensors in single-resident homes, for developing and measuring
the activity rules (never shipped with the product; the caller gives the folder, and each
folder's SOURCE.md gives provenance, licence and how labels are encoded):

- van Kasteren house A (UbiComp 2008; `vankasteren`): 28 days; front, bedroom, toilet and
  bathroom doors, toilet flush, kitchen switches; no bed sensor and no motion sensor;
- Ordóñez A and B (UCI ADL binary sensors, Sensors 2013; `ordonez`): 14 and 21 days; bed and
  seat pressure, the main door, toilet flush, PIRs, kitchen switches.

Each becomes a `Recording`: protocol messages (`DeviceEvent`s, in time order, ids derived
from the home and the row so the same files give the same bytes), the person's device
locations (the people file) and labels in the simulator's label format
(`device_sims.incidents.Label`, docs/scenarios.md), for `telecare replay` and `telecare score`.

Sensors → events: a door's activation interval is `door_opened` at its start and
`door_closed` at its end; a bed pressure mat is `bed_occupied` / `bed_vacated`; a seat mat is
`activity` when sat on and when left; a flush, a PIR or a switch is `activity` at its start.

Labels: every "leave the house" interval (van Kasteren `leave-house`, Ordóñez `Leaving`) is
- `night_exit` (expect `night_exit`) when it starts in the night: from 22:00, or from the
  resident's usual labelled bedtime if earlier (the median start of their `go-to-bed` /
  `Sleeping` labels from 18:00), to 06:00 (`NIGHT`);
- otherwise `outing` (expect `house_unoccupied`): the home really was empty, so a
  `house_unoccupied` alert then is not counted as a false alarm; its recall is no target
  (an ordinary outing should not alarm).
The bedtime labels are read only to place these labels, never given to the engine. Times are
local wall-clock time as the files give them (van Kasteren's written as if UTC; Ordóñez's
with no zone; neither crosses a DST change), so the person's time zone is "UTC".
"""

import json
import statistics
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from detection.rules import RuleId
from device_sims.incidents import Label
from telecare_protocol import DeviceEvent, DeviceType, EventCode, encode
from telecare_protocol.codes import DEFAULT_PRIORITY

NIGHT = (time(22), time(6))
"""The night of the labels: 22:00 (or the usual labelled bedtime, if earlier) to 06:00 (activity
products: 22:00-06:00, docs/detection.md)."""
EVENING = time(18)
"""Labelled bedtimes from this local time on count for the usual one (`night_exit.night_start`'s floor)."""
NAMESPACE = uuid.UUID("8f1d1c52-4a52-4a1b-9a55-6f0c1f6c2d10")
"""Message ids are uuid5(NAMESPACE, "<home>/<row>/<edge>"): the same files give the same ids."""
VANKASTEREN_DOORS = {"Front door": "front_door", "Hall-Bedroom door": "bedroom_door",
                     "Hall-Toilet door": "toilet_door", "Hall-Bathroom door": "bathroom_door"}
VANKASTEREN_SWITCHES = {"Toilet Flush": "toilet", "Washing machine": "hall"}
"""Everything else in house A is a kitchen appliance or cupboard (sensor id 4 has no name in the
converted files; by its event count it is the original's id 7, the cups cupboard)."""
ORDONEZ_PLACES = {"Bedroom": "bedroom", "Bathroom": "bathroom", "Kitchen": "kitchen", "Living": "living_room",
                  "Entrance": "front_door"}
ORDONEZ_LOCATIONS = {"Bed": "bed", "Toilet": "toilet", "Maindoor": "front_door", "Seat": "living_room"}
"""A sensor's own location, where it says more than its room (`ORDONEZ_PLACES`)."""


class RecordingError(ValueError):
    """A data file is missing or not in the format its SOURCE.md describes; the message names it."""


@dataclass(frozen=True)
class Interval:
    """One activation or label interval, local wall-clock time (as UTC)."""

    start: datetime
    end: datetime
    name: str
    place: str = ""


@dataclass(frozen=True)
class Recording:
    """A converted home: its stream, where its devices are, and its labels."""

    name: str
    person_id: str
    hub_id: str
    messages: tuple[DeviceEvent, ...]
    devices: dict[str, str]
    """Device id → location (the people file's `[person.devices]`)."""
    labels: tuple[Label, ...]

    @property
    def days(self) -> float:
        return (self.messages[-1].source_ts - self.messages[0].source_ts) / timedelta(days=1)

    def people_toml(self, rules: dict[str, dict[str, int | float | str | bool]] | None = None) -> str:
        """The people file (docs/detection.md, "The people file"), with optional rule overrides."""
        lines = ["[[person]]", f"id = {json.dumps(self.person_id)}", f"hubs = [{json.dumps(self.hub_id)}]",
                 'timezone = "UTC"', "", "[person.devices]"]
        lines += [f"{json.dumps(device)} = {json.dumps(where)}" for device, where in sorted(self.devices.items())]
        for rule, values in sorted((rules or {}).items()):
            lines += ["", f"[person.rules.{rule}]"]
            lines += [f"{name} = {json.dumps(value)}" for name, value in sorted(values.items())]
        return "\n".join(lines) + "\n"

    def write(self, out: Path, rules: dict[str, dict[str, int | float | str | bool]] | None = None) -> None:
        """`out` (the stream), and beside it OUT.people.toml and OUT.labels.jsonl, as `telecare sim` names them."""
        stem = out.name.removesuffix(".jsonl")
        out.write_text("".join(encode(m).decode() + "\n" for m in self.messages), encoding="utf-8")
        out.with_name(f"{stem}.people.toml").write_text(self.people_toml(rules), encoding="utf-8")
        out.with_name(f"{stem}.labels.jsonl").write_text(
            "".join(json.dumps(label.as_json()) + "\n" for label in self.labels), encoding="utf-8")


def _event(home: str, key: str, device: str, device_type: DeviceType, code: EventCode, at: datetime,
           hub: str) -> DeviceEvent:
    return DeviceEvent(id=uuid.uuid5(NAMESPACE, f"{home}/{key}"), hub_id=hub, device_id=device,
                       device_type=device_type, code=code, priority=int(DEFAULT_PRIORITY[code]), source_ts=at,
                       hub_ts=at)


def _device_id(*parts: str) -> str:
    return "-".join("".join(c if c.isalnum() else "-" for c in part.lower()) for part in parts if part)


def _after_noon(at: datetime) -> float:
    return (at.hour * 60 + at.minute - 720) % 1440


def night_from(bedtimes: Iterable[datetime]) -> time:
    """Where the labels' night starts: 22:00, or the median labelled bedtime from 18:00 if earlier."""
    evening = [_after_noon(b) for b in bedtimes if b.time() >= EVENING or b.time() < NIGHT[1]]
    if not evening:
        return NIGHT[0]
    median = int(statistics.median(evening) + 720) % 1440
    usual = time(median // 60, median % 60)
    return usual if EVENING <= usual < NIGHT[0] else NIGHT[0]


def leave_labels(leaving: Iterable[Interval], bedtimes: Iterable[datetime], person: str, hub: str,
                 door: str) -> tuple[Label, ...]:
    """Each "leave the house" interval as a `night_exit` or an `outing` label (module docstring)."""
    start = night_from(bedtimes)
    labels = []
    for out in sorted(leaving, key=lambda i: i.start):
        at_night = out.start.time() >= start or out.start.time() < NIGHT[1]
        kind, expect = ("night_exit", (RuleId.NIGHT_EXIT,)) if at_night else ("outing", (RuleId.HOUSE_UNOCCUPIED,))
        labels.append(Label(kind, person, hub, door, out.start, out.end, tuple(str(rule) for rule in expect)))
    return tuple(labels)


def _read(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as error:
        raise RecordingError(f"{path.name}: cannot read it ({error.strerror})") from None


# van Kasteren house A -------------------------------------------------------------------------

def _epoch(text: str) -> datetime:
    return datetime.fromtimestamp(float(text), tz=UTC)


def _vk_intervals(path: Path) -> list[tuple[datetime, datetime, int]]:
    out = []
    for number, line in enumerate(_read(path), 1):
        if line.strip():
            try:
                start, duration, ident = line.split("\t")
                out.append((_epoch(start), _epoch(start) + timedelta(seconds=float(duration)), int(ident)))
            except ValueError:
                raise RecordingError(f"{path.name}: line {number}: not 'start<TAB>duration<TAB>id'") from None
    return out


def _vk_names(path: Path) -> dict[int, str]:
    names = {}
    for line in _read(path):
        if line.strip():
            key, _, name = line.partition("\t")
            names[int(key)] = name.strip()
    return names


def vankasteren(folder: Path, person: str = "vk-house-a", hub: str = "hub-vk-house-a") -> Recording:
    """van Kasteren house A (`houseA.sensors`, `.activities` and their name files) as a `Recording`."""
    sensor_names = _vk_names(folder / "houseA.sensor_names")
    activity_names = _vk_names(folder / "houseA.activity_names")
    devices: dict[str, str] = {}
    messages: list[DeviceEvent] = []
    for row, (start, end, ident) in enumerate(_vk_intervals(folder / "houseA.sensors")):
        name = sensor_names.get(ident, f"sensor {ident}")
        device = _device_id("vk", name)
        if name in VANKASTEREN_DOORS:
            devices[device] = VANKASTEREN_DOORS[name]
            messages += [_event(person, f"{row}/on", device, DeviceType.DOOR_SENSOR, EventCode.DOOR_OPENED, start, hub),
                         _event(person, f"{row}/off", device, DeviceType.DOOR_SENSOR, EventCode.DOOR_CLOSED, end, hub)]
        else:
            devices[device] = VANKASTEREN_SWITCHES.get(name, "kitchen")
            messages.append(_event(person, f"{row}/on", device, DeviceType.MOTION_SENSOR, EventCode.ACTIVITY, start,
                                   hub))
    labels = [Interval(s, e, activity_names.get(i, str(i))) for s, e, i in _vk_intervals(folder / "houseA.activities")]
    door = next(d for d, where in devices.items() if where == "front_door")
    return Recording(
        "vankasteren_houseA", person, hub, tuple(sorted(messages, key=lambda m: m.source_ts)), devices,
        leave_labels([i for i in labels if i.name == "leave-house"],
                     [i.start for i in labels if i.name == "go-to-bed"], person, hub, door))


# Ordóñez A and B ------------------------------------------------------------------------------

def _ordonez_rows(path: Path, columns: int) -> list[Interval]:
    """Rows of `Ordonez?_Sensors.txt` / `_ADLs.txt`: split on whitespace (SOURCE.md, "Format")."""
    rows = []
    for number, line in enumerate(_read(path)[2:], 3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4 + columns:
            raise RecordingError(f"{path.name}: line {number}: expected {4 + columns} fields, found {len(parts)}")
        try:
            start = datetime.fromisoformat(f"{parts[0]}T{parts[1]}").replace(tzinfo=UTC)
            end = datetime.fromisoformat(f"{parts[2]}T{parts[3]}").replace(tzinfo=UTC)
        except ValueError:
            raise RecordingError(f"{path.name}: line {number}: times not 'YYYY-MM-DD HH:MM:SS'") from None
        rows.append(Interval(start, end, parts[4], parts[-1] if columns == 3 else ""))
    return rows


def ordonez(folder: Path, home: str) -> Recording:
    """Ordóñez home "A" or "B" (`Ordonez{home}_Sensors.txt`, `_ADLs.txt`) as a `Recording`. Label rows
    that end before they start (SOURCE.md, "Known defects") are left out."""
    if home not in ("A", "B"):
        raise RecordingError(f"Ordonez homes are A and B, not {home!r}")
    person, hub = f"ordonez-{home.lower()}", f"hub-ordonez-{home.lower()}"
    devices: dict[str, str] = {}
    messages: list[DeviceEvent] = []
    for row, sensor in enumerate(_ordonez_rows(folder / f"Ordonez{home}_Sensors.txt", 3)):
        where = ORDONEZ_LOCATIONS.get(sensor.name) or ORDONEZ_PLACES.get(sensor.place)
        if where is None:
            raise RecordingError(f"Ordonez{home}_Sensors.txt: no location for {sensor.name} in {sensor.place}")
        device = _device_id("ord", home, sensor.name, sensor.place)
        devices[device] = where
        edges: list[tuple[str, DeviceType, EventCode, datetime]]
        if where == "front_door":
            edges = [("on", DeviceType.DOOR_SENSOR, EventCode.DOOR_OPENED, sensor.start),
                     ("off", DeviceType.DOOR_SENSOR, EventCode.DOOR_CLOSED, sensor.end)]
        elif where == "bed":
            edges = [("on", DeviceType.BED_MONITOR, EventCode.BED_OCCUPIED, sensor.start),
                     ("off", DeviceType.BED_MONITOR, EventCode.BED_VACATED, sensor.end)]
        elif sensor.name == "Seat":
            edges = [("on", DeviceType.MOTION_SENSOR, EventCode.ACTIVITY, sensor.start),
                     ("off", DeviceType.MOTION_SENSOR, EventCode.ACTIVITY, sensor.end)]
        else:
            edges = [("on", DeviceType.MOTION_SENSOR, EventCode.ACTIVITY, sensor.start)]
        messages += [_event(person, f"{row}/{edge}", device, kind, code, at, hub) for edge, kind, code, at in edges]
    labels = [i for i in _ordonez_rows(folder / f"Ordonez{home}_ADLs.txt", 1) if i.end >= i.start]
    door = next(d for d, where in devices.items() if where == "front_door")
    return Recording(
        f"ordonez_{home}", person, hub, tuple(sorted(messages, key=lambda m: m.source_ts)), devices,
        leave_labels([i for i in labels if i.name == "Leaving"], [i.start for i in labels if i.name == "Sleeping"],
                     person, hub, door))
