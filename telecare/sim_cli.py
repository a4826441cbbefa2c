"""`telecare sim …`: run a scenario or a fleet of simulated homes.

`run` plays a scenario file (device_sims/scenarios/*.toml); `fleet` runs N ordinary homes
for D days; `accounts` makes broker logins for a fleet. Output: `--record OUT.jsonl`
(plus OUT.labels.jsonl and OUT.people.toml), and/or `--mqtt HOST:PORT --credentials FILE`
(virtual hubs publishing to a real broker). Bad input exits with status 2 and a one-line
reason, never a traceback. A summary JSON line goes to stdout; progress to stderr.
"""

import argparse
import contextlib
import itertools
import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from device_sims.simulation import HomeSim

DELIVERY_TIMEOUT_S = 60.0
"""How long to wait, at the end, for the broker to acknowledge everything published."""


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    sim = commands.add_parser("sim", help="simulated homes: scenarios with labelled incidents, and fleets")
    tasks = sim.add_subparsers(dest="task", required=True)

    run = tasks.add_parser("run", help="run a scenario file (TOML; see docs/scenarios.md)")
    run.add_argument("scenario", help="path, or the name of a shipped scenario (e.g. falls)")
    run.add_argument("--seed", type=int, help="override the scenario's seed")
    _outputs(run)
    pace = run.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, help="play at SPEED x real time (default: as fast as possible)")
    pace.add_argument("--realtime", action="store_true", help="play in real time (--speed 1)")

    fleet = tasks.add_parser("fleet", help="N ordinary homes for D simulated days")
    fleet.add_argument("--homes", type=int, required=True)
    fleet.add_argument("--days", type=float, required=True, help="simulated days (fractions allowed)")
    fleet.add_argument("--seed", type=int, default=1)
    fleet.add_argument("--start", type=date.fromisoformat,
                       help="local date the fleet's first day starts (default: so the run ends today);"
                            " give it for a reproducible stream")
    fleet.add_argument("--heartbeat", type=int, default=300, help="hub heartbeat interval, seconds (default 300)")
    _outputs(fleet)
    pace = fleet.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, help="publish MSGS_PER_S messages a second, whatever the simulated time")
    pace.add_argument("--speed", type=float, help="simulated time runs SPEED x real time")

    accounts = tasks.add_parser("accounts", help="broker logins for a fleet: credentials.json, passwd, acl")
    accounts.add_argument("--homes", type=int, required=True)
    accounts.add_argument("--out", type=Path, required=True, help="directory to write into")


def _outputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--record", type=Path, metavar="OUT.jsonl",
                        help="write the stream, OUT.labels.jsonl and OUT.people.toml")
    parser.add_argument("--mqtt", metavar="HOST:PORT", help="publish as virtual hubs to this broker")
    parser.add_argument("--credentials", type=Path, help="JSON {hub id: password} (from `telecare sim accounts`)")


class UsageError(ValueError):
    pass


def run(args: argparse.Namespace) -> int:
    from device_sims.mqtt_out import PublishError
    from device_sims.scenario import ScenarioError

    try:
        if args.task == "accounts":
            return _accounts(args)
        return _simulate(args)
    except (UsageError, ScenarioError, PublishError) as problem:
        print(f"telecare sim {args.task}: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _accounts(args: argparse.Namespace) -> int:
    from device_sims.mqtt_out import fleet_accounts, write_broker_files, write_credentials
    from device_sims.simulation import fleet_hub_ids

    if not 1 <= args.homes <= 100_000:
        raise UsageError("--homes must be 1-100000")
    accounts = fleet_accounts(fleet_hub_ids(args.homes))
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        write_credentials(accounts, args.out / "credentials.json")
        write_broker_files(accounts, args.out)
    except OSError as exc:
        raise UsageError(f"cannot write to {args.out}: {exc.strerror}") from None
    print(json.dumps({"hubs": len(accounts), "credentials": str(args.out / "credentials.json"),
                      "password_file": str(args.out / "passwd"), "acl_file": str(args.out / "acl")}))
    return 0


def _broker(text: str | None) -> tuple[str, int] | None:
    if text is None:
        return None
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--mqtt {text!r} is not HOST:PORT")
    return host, int(port)


def _homes(args: argparse.Namespace) -> list[HomeSim]:
    from device_sims.scenario import load_scenario
    from device_sims.simulation import fleet_homes, scenario_homes

    if args.task == "run":
        return scenario_homes(load_scenario(args.scenario), seed=args.seed)
    if not 1 <= args.homes <= 100_000:
        raise UsageError("--homes must be 1-100000")
    if not 0 < args.days <= 366:
        raise UsageError("--days must be more than 0 and at most 366")
    if not 10 <= args.heartbeat <= 86400:
        raise UsageError("--heartbeat must be 10-86400 seconds")
    whole_days = max(1, int(-(-args.days // 1)))
    start = args.start or (datetime.now(UTC).date() - timedelta(days=whole_days))
    homes = fleet_homes(args.homes, seed=args.seed, first_day=start, days=whole_days,
                        heartbeat_interval_s=args.heartbeat)
    return homes


def _simulate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from device_sims.clock import RealClock
    from device_sims.mqtt_out import FleetPublisher, read_credentials
    from device_sims.record import companion_paths, write_labels, write_people, write_stream
    from device_sims.simulation import all_labels, fleet_stream, message_time
    from telecare_protocol import Message

    broker = _broker(args.mqtt)
    if broker and args.credentials is None:
        raise UsageError("--mqtt needs --credentials FILE (see `telecare sim accounts`)")
    speed = 1.0 if getattr(args, "realtime", False) else args.speed
    rate = getattr(args, "rate", None)
    if speed is not None and not speed > 0:
        raise UsageError("--speed must be positive")
    if rate is not None and not rate > 0:
        raise UsageError("--rate must be positive")
    try:
        homes = _homes(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    credentials = None
    if broker:
        try:
            credentials = read_credentials(args.credentials)
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    stream: Iterator[Message] = fleet_stream(homes)
    if args.task == "fleet" and args.days < homes[0].routine.days:
        cutoff = homes[0].routine.start + timedelta(days=args.days)
        stream = itertools.takewhile(lambda m: message_time(m) < cutoff, stream)  # time-ordered: stop at once
    if speed is not None:
        clock = RealClock(origin=homes[0].routine.start, speed=speed)
        stream = (m for _, m in clock.pace((message_time(m), m) for m in stream))

    labels = all_labels(homes)
    labels_path, people_path = companion_paths(args.record or Path("unused.jsonl"))
    with contextlib.ExitStack() as stack:
        if args.record is not None:
            try:
                args.record.parent.mkdir(parents=True, exist_ok=True)  # `--record out/x.jsonl` on a fresh clone
                # Paced runs write line by line, so the file can be followed as it grows.
                handle = stack.enter_context(args.record.open("w", encoding="utf-8",
                                                              buffering=1 if speed is not None else -1))
                # Known before the first message: written first, so a stopped real-time run keeps them.
                write_labels(labels, labels_path)
                write_people(homes, people_path)
            except OSError as exc:
                raise UsageError(f"cannot write {args.record}: {exc.strerror}") from None
            stream = write_stream(stream, handle)
        publisher = None
        if broker and credentials is not None:
            publisher = FleetPublisher(credentials, [h.layout.hub_id for h in homes], *broker)
            stream = publisher.publish_at_rate(stream, rate)
        started = time.monotonic()
        count = 0
        for _ in tqdm(stream, unit="msg", file=sys.stderr, mininterval=1.0, disable=None):
            count += 1
        if publisher is not None:
            publisher.wait_delivered(DELIVERY_TIMEOUT_S)
        seconds = time.monotonic() - started  # up to the last PUBACK, before the hubs log out
        if publisher is not None:
            publisher.close(DELIVERY_TIMEOUT_S)
    summary: dict[str, object] = {"homes": len(homes), "messages": count, "labels": len(labels),
                                  "seconds": round(seconds, 3), "rate": round(count / seconds, 1) if seconds else None}
    if args.record is not None:
        summary.update(record=str(args.record), labels_file=str(labels_path), people_file=str(people_path))
    print(json.dumps(summary))
    return 0
