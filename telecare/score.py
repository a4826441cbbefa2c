"""`telecare score`: a replay's decisions against labelled incidents, as JSON.

    telecare score --alerts ALERTS.jsonl --labels LABELS.jsonl [--slack 30] [--lead 0] [--weeks W]

`ALERTS.jsonl` is what `telecare replay` writes (a `decision` and its time `at` a line);
`LABELS.jsonl` one incident a line, as `telecare sim --record` writes `OUT.labels.jsonl`
(docs/scenarios.md) and as any other labelled recording may be converted to:
`{"incident", "person", "start", "end", "expect"}` (times ISO 8601 with a zone; `expect` the
rules any one of which catches it, `[]` for an incident that must not alarm; other keys, such
as `hub_id` and `device_id`, are ignored).

How it counts (`score`):

- an incident is **detected** by the first `raise` or `repeat` of its person with a rule in its
  `expect`, from `lead` minutes before its start to `slack` minutes after its end (a repeat
  counts: it is what the centre shows on an alert still open, or opens anew once the earlier one
  was closed); its **latency** is from the labelled start to that line, in seconds (negative
  when the alert came first, inside `lead`);
- a `raise` that detects no incident is a **false alarm**; it is counted against every incident
  kind whose `expect` holds its rule, and by rule. A raise inside a must-not-alarm incident
  (`expect` `[]`) is a false alarm too; such incidents report how many of them `alarmed`;
- **per week** is per person-week watched: the `observed` lines of the replay (each person,
  from their first message to the end of the recording), or `--weeks`.

Per incident kind it prints `labels`, `detected`, `recall`, `latency_s` (`median`, `max`),
`false_alarms` and `false_alarms_per_week`; then the totals and the false alarms by rule.
Bad input (an unreadable file, a line that is not JSON or lacks a field, no time watched)
exits with status 2 and a one-line reason naming the file and line.
"""

import argparse
import json
import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

WEEK = timedelta(days=7)
MATCHING = frozenset({"raise", "repeat"})
"""The decisions that can detect an incident (`raise`: a new alert; `repeat`: on the open one)."""


class ScoreInputError(ValueError):
    """A file `telecare score` cannot use; the message names the file and the line."""


@dataclass(frozen=True)
class AlertLine:
    """One `raise` or `repeat` of a replay (other decisions are not scored)."""

    decision: str
    at: datetime
    person: str
    rule: str


@dataclass(frozen=True)
class Observed:
    """How long a person was watched: from their first message to the end of the recording."""

    person: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class LabelLine:
    """One labelled incident: `expect` the rules any one of which catches it (empty: must not alarm)."""

    incident: str
    person: str
    start: datetime
    end: datetime
    expect: tuple[str, ...]


def when(text: object, where: str) -> datetime:
    """An ISO 8601 time with a zone ("Z" allowed); ScoreInputError naming `where` otherwise."""
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise ScoreInputError(f"{where}: {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ScoreInputError(f"{where}: {text!r} has no time zone")
    return moment


def _objects(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ScoreInputError(f"{path}: cannot read it ({error})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}: line {number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            raise ScoreInputError(f"{where}: not JSON ({error.msg})") from None
        if not isinstance(data, dict):
            raise ScoreInputError(f"{where}: not a JSON object")
        yield where, data


def _field(data: dict[str, Any], name: str, where: str) -> Any:
    if name not in data:
        raise ScoreInputError(f"{where}: no {name!r}")
    return data[name]


def load_alerts(path: Path) -> tuple[list[AlertLine], list[Observed]]:
    """The raises and repeats of a replay's output, and its `observed` lines."""
    alerts: list[AlertLine] = []
    observed: list[Observed] = []
    for where, data in _objects(path):
        decision = _field(data, "decision", where)
        if decision in MATCHING:
            alerts.append(AlertLine(decision, when(_field(data, "at", where), where),
                                    str(_field(data, "person", where)), str(_field(data, "rule", where))))
        elif decision == "observed":
            observed.append(Observed(str(_field(data, "person", where)), when(_field(data, "from", where), where),
                                     when(_field(data, "to", where), where)))
    return alerts, observed


def load_labels(path: Path) -> list[LabelLine]:
    """The labelled incidents (docs/scenarios.md, "What a run produces")."""
    labels = []
    for where, data in _objects(path):
        expect = _field(data, "expect", where)
        if not isinstance(expect, list) or not all(isinstance(rule, str) for rule in expect):
            raise ScoreInputError(f"{where}: 'expect' must be a list of rule names")
        start, end = when(_field(data, "start", where), where), when(_field(data, "end", where), where)
        if end < start:
            raise ScoreInputError(f"{where}: ends before it starts")
        labels.append(LabelLine(str(_field(data, "incident", where)), str(_field(data, "person", where)), start, end,
                                tuple(expect)))
    return labels


def weeks_watched(observed: Iterable[Observed]) -> float:
    """Person-weeks: each person's watched time, summed (a person seen twice counts once, widest)."""
    spans: dict[str, tuple[datetime, datetime]] = {}
    for item in observed:
        start, end = spans.get(item.person, (item.start, item.end))
        spans[item.person] = (min(start, item.start), max(end, item.end))
    return sum(((end - start) / WEEK for start, end in spans.values()), 0.0)


def _rate(count: int, weeks: float) -> float | None:
    return round(count / weeks, 3) if weeks > 0 else None


def score(alerts: Sequence[AlertLine], labels: Sequence[LabelLine], weeks: float,
          slack: timedelta = timedelta(minutes=30), lead: timedelta = timedelta(0)) -> dict[str, Any]:
    """Recall, latency and false alarms per incident kind (the module docstring says how each is counted)."""
    ordered = sorted(range(len(alerts)), key=lambda i: alerts[i].at)
    explained: set[int] = set()
    detected: dict[str, list[float | None]] = defaultdict(list)
    alarmed: dict[str, list[bool]] = defaultdict(list)
    expect_of: dict[str, set[str]] = defaultdict(set)
    for label in labels:
        expect_of[label.incident].update(label.expect)
        start, end = label.start - lead, label.end + slack
        inside = [i for i in ordered if alerts[i].person == label.person and start <= alerts[i].at <= end]
        if not label.expect:
            alarmed[label.incident].append(any(alerts[i].decision == "raise" for i in inside))
            continue
        hits = [i for i in inside if alerts[i].rule in label.expect]
        explained.update(i for i in hits if alerts[i].decision == "raise")
        detected[label.incident].append((alerts[hits[0]].at - label.start).total_seconds() if hits else None)
    false = [alerts[i] for i in ordered if alerts[i].decision == "raise" and i not in explained]
    false_by_rule = Counter(alert.rule for alert in false)
    kinds: dict[str, Any] = {}
    for kind in sorted(set(detected) | set(alarmed)):
        expect = sorted(expect_of[kind])
        false_here = sum(false_by_rule[rule] for rule in expect)
        if kind in alarmed:
            kinds[kind] = {"labels": len(alarmed[kind]), "expect": [], "alarmed": sum(alarmed[kind])}
            continue
        latencies = [s for s in detected[kind] if s is not None]
        kinds[kind] = {
            "labels": len(detected[kind]), "expect": expect, "detected": len(latencies),
            "recall": round(len(latencies) / len(detected[kind]), 3),
            "latency_s": {"median": round(statistics.median(latencies), 1), "max": round(max(latencies), 1)}
            if latencies else None,
            "false_alarms": false_here, "false_alarms_per_week": _rate(false_here, weeks),
        }
    return {
        "weeks": round(weeks, 3), "raised": sum(1 for a in alerts if a.decision == "raise"),
        "false_alarms": len(false), "false_alarms_per_week": _rate(len(false), weeks),
        "false_alarms_by_rule": dict(sorted(false_by_rule.items())),
        "slack_minutes": slack / timedelta(minutes=1), "lead_minutes": lead / timedelta(minutes=1),
        "kinds": kinds,
    }


def score_files(alerts_path: Path, labels_path: Path, slack: timedelta = timedelta(minutes=30),
                lead: timedelta = timedelta(0), weeks: float | None = None) -> dict[str, Any]:
    """`score` of two files; ScoreInputError when one cannot be used or no time watched is known."""
    alerts, observed = load_alerts(alerts_path)
    labels = load_labels(labels_path)
    if weeks is None:
        if not observed:
            raise ScoreInputError(f"{alerts_path}: no 'observed' lines (replay it again, or give --weeks)")
        weeks = weeks_watched(observed)
    return score(alerts, labels, weeks, slack, lead)


def add_command(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    cmd = commands.add_parser("score", help="score a replay's decisions against labelled incidents (JSON)")
    cmd.add_argument("--alerts", type=Path, required=True, help="what `telecare replay` wrote (*.jsonl)")
    cmd.add_argument("--labels", type=Path, required=True, help="labelled incidents (*.labels.jsonl)")
    cmd.add_argument("--slack", type=float, default=30.0,
                     help="minutes after an incident's end that an alert still detects it (default 30)")
    cmd.add_argument("--lead", type=float, default=0.0,
                     help="minutes before an incident's labelled start that an alert already detects it (default 0)")
    cmd.add_argument("--weeks", type=float, help="person-weeks watched (default: the replay's 'observed' lines)")


def run_args(args: argparse.Namespace) -> int:
    if args.slack < 0 or args.lead < 0 or (args.weeks is not None and not args.weeks > 0):
        print("telecare score: --slack and --lead must be 0 or more, --weeks more than 0", file=sys.stderr)
        return 2
    try:
        result = score_files(args.alerts, args.labels, timedelta(minutes=args.slack), timedelta(minutes=args.lead),
                             args.weeks)
    except ScoreInputError as error:
        print(f"telecare score: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0
