"""Recording a run: the message stream, its labels and the people file, side by side.

`OUT.jsonl` holds one protocol message per line, exactly as the hub publishes it
(`telecare_protocol.encode`); `OUT.labels.jsonl` one injected incident per line;
`OUT.people.toml` who lives where (read by `telecare replay --people`). The people file is
written by hand because the standard library reads TOML but does not write it; the values
are strings, numbers and booleans, and JSON's string escapes are valid TOML.
"""

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from device_sims.home import Kind
from device_sims.incidents import Label
from device_sims.simulation import HomeSim
from telecare_protocol import Message, encode


def companion_paths(out: Path) -> tuple[Path, Path]:
    """(labels file, people file) next to the stream `out`."""
    stem = out.name[:-len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    return out.with_name(f"{stem}.labels.jsonl"), out.with_name(f"{stem}.people.toml")


def write_stream(messages: Iterable[Message], handle: IO[str]) -> Iterator[Message]:
    """Write each message as one line and pass it on (so a run can record and publish at once)."""
    for message in messages:
        handle.write(encode(message).decode() + "\n")
        yield message


def write_labels(labels: Iterable[Label], path: Path) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for label in labels:
            handle.write(json.dumps(label.as_json()) + "\n")


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML for {type(value).__name__}")


def people_toml(homes: Iterable[HomeSim]) -> str:
    """The people file for `homes`, in the format `detection.people` reads."""
    blocks = []
    for home in homes:
        layout, who = home.layout, home.personality
        lines = ["[[person]]", f"id = {_toml(layout.person_id)}", f"name = {_toml(who.name)}",
                 f"hubs = {_toml([layout.hub_id])}", f"timezone = {_toml(home.timezone)}",
                 f"spo2_scale = {home.spo2_scale}", "", "[person.devices]"]
        lines += [f"{_toml(d.device_id)} = {_toml(d.location)}" for d in layout.devices]
        lines += ["", "[person.expected_intervals]"]
        lines += [f"{_toml(d.device_id)} = {d.expected_interval_s}" for d in layout.devices]
        if who.oximetry == "spot" and any(d.kind is Kind.OXIMETER for d in layout.devices):
            lines += ["", "[person.measurement_schedule]", f"times = {_toml(list(who.spot_check_times))}",
                      "window_minutes = 120"]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def write_people(homes: Iterable[HomeSim], path: Path) -> None:
    path.write_text(people_toml(homes), encoding="utf-8")
