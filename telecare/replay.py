"""`telecare replay`: run the detection engine over a recorded message stream.

The same `Engine` the centre runs, over a `*.jsonl` recording (one protocol message per
line, in publish order), ticking every `--tick` seconds of message time (default 60) and
once at the end. Writes every decision as one JSON line, each with its `decision` and its
time `at` (ISO 8601), in the order they happen:

- `raise`: a new episode of a condition (what an operator sees as a new alert): `person`,
  `rule`, `subject`, `priority`, `title`, `policy` (the escalation chain it follows,
  `alerting.policy.policy_for` for its rule, priority and `--service`), `explanation`;
- `repeat`: new evidence on an open condition (`explanation.episode` "repeat"), or the same
  condition at a more urgent priority ("escalated"); the centre counts it on the one alert;
- `escalate`: a step of the alert's chain, as `alerting/escalation.py` would run it if nobody
  acknowledged: the first step when the alert opens, each next one its step's `wait_s`
  later, `cycles` times over (`step`, `steps`, `cycle`, `cycles`, `audience`, `wait_s`); then,
  for a chain that tells the operators until someone acknowledges, one line with
  `exhausted: true` when they are first told again (and `wait_s`, how often after that). The
  chain stops when the condition clears, when the engine starts a new episode of it (the
  replay cannot know when a person closed the alert, so it takes the earlier one as closed),
  and at the end of the recording. Keyholders are one step (the replay has no contacts), and
  muting by an offline hub (`alerting/inhibit.py`) is not simulated;
- `clear`: the condition's all-clear: `person`, `rule`, `subject`, `explanation`;
- `observed` (last, one per person): `person`, `from` (their first message) and `to` (the
  end of the recording): the time watched, for rates per week (`telecare score`).

Deterministic: the same input gives the same bytes (keys in a fixed order, no clock
reads). A line that cannot be decoded is counted and reported on stderr with its line
number, never a crash; messages from hubs no person owns are counted too. A progress bar
goes to stderr when it is a terminal.
"""

import argparse
import heapq
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from alerting.policy import Audience, Policy, policy_for
from detection.engine import Clear, Decision, Engine, Raise
from detection.people import PeopleFileError, load_people
from telecare_protocol import Message, ProtocolError, decode

MAX_REPORTED = 20
SERVICES = ("monitored", "keyholder_only")
"""A person's service (`monitoring_centre.storage.Person.service`): which alarm chain applies."""
EXHAUSTED_MIN_WAIT_S = 60
"""An exhausted chain tells the operators again at the interval of its last step, at least a minute
(`alerting/escalation.py`, `_notify_operators`)."""


class Kind(StrEnum):
    """A line's `decision`."""

    RAISE = "raise"
    REPEAT = "repeat"
    ESCALATE = "escalate"
    CLEAR = "clear"
    OBSERVED = "observed"


@dataclass
class ReplayStats:
    lines: int = 0
    messages: int = 0
    bad_lines: int = 0
    bad: list[str] = field(default_factory=list)
    unknown_hub: int = 0
    raised: int = 0
    repeats: int = 0
    escalations: int = 0
    cleared: int = 0
    ticks: int = 0


def read_stream(handle: Iterable[str], stats: ReplayStats) -> Iterator[Message]:
    """The recording's messages, one a line; a line that cannot be decoded is counted in `stats`."""
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


Key = tuple[str, str, str]
"""(person, rule, subject): one condition."""


@dataclass
class _Chain:
    """One alert's escalation chain as nobody acknowledges it: where it is and when it next acts."""

    raised: Raise
    policy: Policy
    due: datetime
    step: int = 0
    cycle: int = 0
    exhausted: bool = False
    generation: int = 0


class Escalations:
    """The chains of the replay's open alerts, stepped on the replay's clock with the timing of
    `alerting/escalation.py`: the first step when the alert opens, the next after each step's
    `wait_s`, `cycles` times over; then, if the policy says `until_acknowledged`, the operators
    are told again (one `exhausted` line, with how often it would go on). `service` is the
    person's service (`SERVICES`), for the alarm chain of a help press or a fall."""

    def __init__(self, service: str = "monitored") -> None:
        self.service = service
        self._chains: dict[Key, _Chain] = {}
        self._heap: list[tuple[datetime, int, Key, int]] = []
        self._seq = 0

    def policy(self, decision: Raise) -> Policy:
        return policy_for(decision.priority, self.service, decision.rule)

    def open(self, decision: Raise, now: datetime) -> None:
        """A new alert: its chain starts now (an earlier chain of the condition ends)."""
        key = (decision.person, str(decision.rule), decision.subject)
        old = self._chains.pop(key, None)
        policy = self.policy(decision)
        if not policy.steps or policy.cycles <= 0:
            return  # logged only: never sent
        chain = _Chain(decision, policy, max(decision.at, now), generation=(old.generation + 1 if old else 0))
        self._chains[key] = chain
        self._push(key, chain)

    def close(self, person: str, rule: str, subject: str) -> None:
        """The condition cleared: its chain stops."""
        self._chains.pop((person, rule, subject), None)

    def due(self, until: datetime) -> list[dict[str, Any]]:
        """Every step due at or before `until`, in time order, as lines."""
        lines: list[dict[str, Any]] = []
        while self._heap and self._heap[0][0] <= until:
            _, _, key, generation = heapq.heappop(self._heap)
            chain = self._chains.get(key)
            if chain is None or chain.generation != generation:
                continue  # cleared, or replaced by a newer episode
            lines.append(self._run(key, chain))
        return lines

    def _push(self, key: Key, chain: _Chain) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (chain.due, self._seq, key, chain.generation))

    def _run(self, key: Key, chain: _Chain) -> dict[str, Any]:
        policy, at = chain.policy, chain.due
        raised = chain.raised
        line: dict[str, Any] = {"decision": Kind.ESCALATE.value, "at": at.isoformat(), "person": raised.person,
                                "rule": raised.rule, "subject": raised.subject, "priority": raised.priority,
                                "policy": policy.name}
        if chain.exhausted:
            every = max(policy.steps[-1].wait_s, EXHAUSTED_MIN_WAIT_S)
            line.update(step=None, steps=len(policy.steps), cycle=None, cycles=policy.cycles,
                        audience=Audience.OPERATORS.value, wait_s=every, exhausted=True)
            del self._chains[key]
            return line
        step = policy.steps[chain.step]
        line.update(step=chain.step + 1, steps=len(policy.steps), cycle=chain.cycle + 1, cycles=policy.cycles,
                    audience=step.audience.value, wait_s=step.wait_s, exhausted=False)
        chain.step += 1
        if chain.step == len(policy.steps):
            chain.step, chain.cycle = 0, chain.cycle + 1
        chain.due = at + timedelta(seconds=step.wait_s)
        if chain.cycle >= policy.cycles:
            if not policy.until_acknowledged:
                del self._chains[key]  # told once, as its policy says
                return line
            chain.exhausted = True
        self._push(key, chain)
        return line


def _line(decision: Decision, policy: Policy | None = None) -> dict[str, Any]:
    if isinstance(decision, Raise):
        episode = decision.explanation.get("episode", "new")
        kind = Kind.RAISE if episode == "new" else Kind.REPEAT
        line: dict[str, Any] = {"decision": kind.value, "at": decision.at.isoformat(), "person": decision.person,
                                "rule": decision.rule, "subject": decision.subject, "priority": decision.priority,
                                "title": decision.title}
        if policy is not None:
            line["policy"] = policy.name
        line["explanation"] = decision.explanation
        return line
    return {"decision": Kind.CLEAR.value, "at": decision.at.isoformat(), "person": decision.person,
            "rule": decision.rule, "subject": decision.subject, "explanation": decision.explanation}


def replay(engine: Engine, messages: Iterator[Message], out: TextIO, stats: ReplayStats,
           tick: timedelta = timedelta(seconds=60), service: str = "monitored") -> None:
    """Observe every message, ticking at each `tick` of message time, and once at the end; write
    every decision and the escalation steps between them (module docstring)."""
    clock: datetime | None = None
    next_tick: datetime | None = None
    chains = Escalations(service)
    first_seen: dict[str, datetime] = {}

    def emit(line: dict[str, Any]) -> None:
        out.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")

    def steps_until(moment: datetime) -> None:
        for line in chains.due(moment):
            stats.escalations += 1
            emit(line)

    def write(decisions: list[Decision], now: datetime) -> None:
        for decision in decisions:
            policy = None
            if isinstance(decision, Raise):
                if decision.explanation.get("episode", "new") == "new":
                    stats.raised += 1
                    policy = chains.policy(decision)
                    chains.open(decision, now)
                else:
                    stats.repeats += 1
            elif isinstance(decision, Clear):
                stats.cleared += 1
                chains.close(decision.person, str(decision.rule), decision.subject)
            emit(_line(decision, policy))
            steps_until(now)

    for message in messages:
        person = engine.person_for_hub(message.hub_id)
        if person is None:
            stats.unknown_hub += 1
        at = message.source_ts
        if person is not None and person not in first_seen:
            first_seen[person] = at
        if next_tick is None:
            next_tick = at + tick
        while at >= next_tick:
            steps_until(next_tick)
            write(engine.tick(next_tick), next_tick)
            stats.ticks += 1
            next_tick += tick
        clock = at if clock is None else max(clock, at)
        steps_until(clock)
        write(engine.observe(message), clock)
    if clock is not None:
        steps_until(clock)
        write(engine.tick(clock), clock)
        stats.ticks += 1
        for person in sorted(first_seen):
            emit({"decision": Kind.OBSERVED.value, "person": person, "from": first_seen[person].isoformat(),
                  "to": clock.isoformat()})


def _progress(path: Path) -> Callable[[Iterator[str]], Iterator[str]]:
    """Lines of the recording through a progress bar on stderr (shown only on a terminal)."""
    from tqdm import tqdm

    try:
        size = path.stat().st_size
    except OSError:
        size = None

    def lines(handle: Iterator[str]) -> Iterator[str]:
        with tqdm(total=size, unit="B", unit_scale=True, file=sys.stderr, mininterval=1.0, disable=None,
                  desc="replay") as bar:
            for line in handle:
                bar.update(len(line))
                yield line

    return lines


def run(input_path: Path, people_path: Path, output_path: Path, tick_s: float = 60.0,
        err: TextIO | None = None, service: str = "monitored") -> int:
    """`telecare replay`: 0, or 2 with a one-line reason on `err` for an unreadable input or people file."""
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
            replay(Engine(people), read_stream(_progress(input_path)(handle), stats), out, stats,
                   timedelta(seconds=tick_s), service)
    except OSError as error:
        print(f"telecare replay: {error}", file=err)
        return 2
    for problem in stats.bad:
        print(f"telecare replay: {input_path}: {problem}", file=err)
    if stats.bad_lines > len(stats.bad):
        print(f"telecare replay: ... and {stats.bad_lines - len(stats.bad)} more bad lines", file=err)
    print(f"telecare replay: {stats.messages} messages, {stats.bad_lines} bad lines, "
          f"{stats.unknown_hub} from hubs in no profile; {stats.raised} alerts raised, {stats.repeats} repeats, "
          f"{stats.escalations} escalation steps, {stats.cleared} cleared -> {output_path}", file=err)
    return 0


def add_command(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    replay_cmd = commands.add_parser("replay", help="run the detection engine over a recorded message stream")
    replay_cmd.add_argument("--input", type=Path, required=True, help="recorded stream (*.jsonl)")
    replay_cmd.add_argument("--people", type=Path, required=True, help="people file (TOML)")
    replay_cmd.add_argument("--output", type=Path, required=True, help="where the decisions go (*.jsonl)")
    replay_cmd.add_argument("--tick", type=float, default=60.0, help="seconds of message time between ticks")
    replay_cmd.add_argument("--service", choices=SERVICES, default="monitored",
                            help="the people's service, for the alarm chain (default: monitored)")


def run_args(args: argparse.Namespace) -> int:
    if args.tick <= 0:
        print("telecare replay: --tick must be positive", file=sys.stderr)
        return 2
    return run(args.input, args.people, args.output, args.tick, service=args.service)
