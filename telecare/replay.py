"""`telecare replay`: run the detection engine over a recorded message stream.

The same `Engine` the centre runs, over a `*.jsonl` recording (one protocol message per
line, in publish order), ticking every `--tick` seconds of message time (default 60) and
once at the end. Writes one JSON line per alert an operator would see:

- the first `Raise` of a condition (`episode` "new"): `{"raised_at", "person", "rule",
  "subject", "priority", "title", "explanation"}`. Repeats and escalations of a condition
  already open are not written: the centre shows them as a count on the one alert;
- its `Clear`, when the engine clears it: `{"cleared_at", "person", "rule", "subject",
  "explanation"}`.

Deterministic: the same input gives the same bytes (keys in a fixed order, no clock
reads). A line that cannot be decoded is counted and reported on stderr with its line
number, never a crash; messages from hubs no person owns are counted too.
"""

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, TextIO

from detection.engine import Clear, Decision, Engine, Raise
from detection.people import PeopleFileError, load_people
from telecare_protocol import Message, ProtocolError, decode

MAX_REPORTED = 20


@dataclass
class ReplayStats:
    lines: int = 0
    messages: int = 0
    bad_lines: int = 0
    bad: list[str] = field(default_factory=list)
    unknown_hub: int = 0
    raised: int = 0
    cleared: int = 0
    ticks: int = 0


def read_stream(handle: IO[str], stats: ReplayStats) -> Iterator[Message]:
    for number, line in enumerate(handle, 1):
        stats.lines += 1
        text = line.strip()
        if not text:
            continue
        try:
            message = decode(text)
        except ProtocolError as error:
            stats.bad_lines += 1
            if len(stats.bad) < MAX_REPORTED:
                stats.bad.append(f"line {number}: {error.reason}: {error.field}: {error.detail}")
            continue
        stats.messages += 1
        yield message


def _line(decision: Decision) -> dict[str, Any]:
    if isinstance(decision, Raise):
        return {"raised_at": decision.at.isoformat(), "person": decision.person, "rule": decision.rule,
                "subject": decision.subject, "priority": decision.priority, "title": decision.title,
                "explanation": decision.explanation}
    return {"cleared_at": decision.at.isoformat(), "person": decision.person, "rule": decision.rule,
            "subject": decision.subject, "explanation": decision.explanation}


def replay(engine: Engine, messages: Iterator[Message], out: TextIO, stats: ReplayStats,
           tick: timedelta = timedelta(seconds=60)) -> None:
    """Observe every message, ticking at each `tick` of message time, and once at the end."""
    clock: datetime | None = None
    next_tick: datetime | None = None

    def write(decisions: list[Decision]) -> None:
        for decision in decisions:
            if isinstance(decision, Raise) and decision.explanation.get("episode", "new") != "new":
                continue
            if isinstance(decision, Raise):
                stats.raised += 1
            elif isinstance(decision, Clear):
                stats.cleared += 1
            out.write(json.dumps(_line(decision), ensure_ascii=False, default=str) + "\n")

    for message in messages:
        if engine.person_for_hub(message.hub_id) is None:
            stats.unknown_hub += 1
        at = message.source_ts
        if next_tick is None:
            next_tick = at + tick
        while at >= next_tick:
            write(engine.tick(next_tick))
            stats.ticks += 1
            next_tick += tick
        write(engine.observe(message))
        clock = at if clock is None else max(clock, at)
    if clock is not None:
        write(engine.tick(clock))
        stats.ticks += 1


def run(input_path: Path, people_path: Path, output_path: Path, tick_s: float = 60.0,
        err: TextIO | None = None) -> int:
    err = err or sys.stderr  # looked up per call: the default must follow a redirected stderr
    try:
        people = load_people(people_path)
    except PeopleFileError as error:
        print(f"telecare replay: {error}", file=err)
        return 2
    stats = ReplayStats()
    try:
        with input_path.open(encoding="utf-8", errors="replace") as handle, \
                output_path.open("w", encoding="utf-8") as out:
            replay(Engine(people), read_stream(handle, stats), out, stats, timedelta(seconds=tick_s))
    except OSError as error:
        print(f"telecare replay: {error}", file=err)
        return 2
    for problem in stats.bad:
        print(f"telecare replay: {input_path}: {problem}", file=err)
    if stats.bad_lines > len(stats.bad):
        print(f"telecare replay: ... and {stats.bad_lines - len(stats.bad)} more bad lines", file=err)
    print(f"telecare replay: {stats.messages} messages, {stats.bad_lines} bad lines, "
          f"{stats.unknown_hub} from hubs in no profile; {stats.raised} alerts raised, {stats.cleared} cleared "
          f"-> {output_path}", file=err)
    return 0


def add_command(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    replay_cmd = commands.add_parser("replay", help="run the detection engine over a recorded message stream")
    replay_cmd.add_argument("--input", type=Path, required=True, help="recorded stream (*.jsonl)")
    replay_cmd.add_argument("--people", type=Path, required=True, help="people file (TOML)")
    replay_cmd.add_argument("--output", type=Path, required=True, help="where the alerts go (*.jsonl)")
    replay_cmd.add_argument("--tick", type=float, default=60.0, help="seconds of message time between ticks")


def run_args(args: argparse.Namespace) -> int:
    if args.tick <= 0:
        print("telecare replay: --tick must be positive", file=sys.stderr)
        return 2
    return run(args.input, args.people, args.output, args.tick)
