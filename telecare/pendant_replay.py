"""`telecare pendant-replay`: what the pendant would have sent for a recorded accelerometer trace.

Input: a CSV file with the header `t,ax,ay,az` (time in seconds, acceleration in g), one
sample a line. The samples run through the pendant's own logic (`firmware_stubs.pendant.
on_accelerometer`: the fall detector, then the cancel window), exactly as on the device.

Output: one JSON line on stdout per fall alarm the pendant would have sent,
`{"t": 12.4, "kind": "fall"}`, where `t` is the IMPACT time of the fall (the largest |a| of
its impact episode, in the file's time), not the time the alarm would go out (which is the
detector's confirmation, about 2.5 s after the impact, plus the 20 s cancel window). Nothing
else goes to stdout; warnings and errors go to stderr.

Rules:
* No cancel press happens in a replay: a fall still inside its cancel window when the input
  ends counts as sent. A second fall inside an open window is the same alarm (the pendant
  keeps the first window), so it is not listed again.
* The input ending during a fall's confirmation is judged on what there is (see
  `firmware_stubs.fall_detector.MIN_POSTURE_S`).
* `--rate` is the nominal sampling rate (20-200 Hz); the `t` column wins for timing, since it
  is what the recorder measured. When the median sample interval differs from 1/rate by more
  than 20 %, a warning goes to stderr.
* A bad file (no or wrong header, wrong number of columns, a value that is not a finite
  number, a `t` that does not increase) is refused with a message naming the line, exit code 2.
"""

import argparse
import csv
import itertools
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from firmware_stubs.bthome import Transmitter
from firmware_stubs.fall_detector import MAX_RATE_HZ, MIN_RATE_HZ, FallDetector
from firmware_stubs.pendant import Pendant, fall_detected, on_accelerometer

HEADER = ("t", "ax", "ay", "az")
RATE_TOLERANCE = 0.2
"""Warn when the file's median sample interval is more than 20 % off 1/--rate."""
EXIT_BAD_INPUT = 2
_REPLAY_MAC = bytes(6)  # a replay broadcasts nothing; the transmitter only numbers frames


class ReplayInputError(ValueError):
    """A CSV file the replay refuses; the message names the line."""


@dataclass(frozen=True)
class Sample:
    t: float
    ax: float
    ay: float
    az: float


@dataclass(frozen=True)
class FallAlarm:
    t: float
    """Impact time of the fall, seconds in the file's time."""

    def to_json(self) -> str:
        return json.dumps({"t": round(self.t, 3), "kind": "fall"})


def read_samples(lines: TextIO, name: str) -> list[Sample]:
    """The samples of a `t,ax,ay,az` CSV; `ReplayInputError` naming the line if anything is off."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise ReplayInputError(f"{name}: the file is empty; expected the header line t,ax,ay,az")
    if tuple(h.strip().lstrip("\ufeff").lower() for h in header) != HEADER:
        raise ReplayInputError(f"{name}: line 1: the header is {','.join(header)!r}; expected t,ax,ay,az")
    samples: list[Sample] = []
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(HEADER):
            raise ReplayInputError(f"{name}: line {line}: {len(row)} columns; expected 4 (t,ax,ay,az)")
        values: list[float] = []
        for column, cell in zip(HEADER, row, strict=True):
            try:
                value = float(cell)
            except ValueError:
                raise ReplayInputError(f"{name}: line {line}: {column} is {cell.strip()!r}, not a number") from None
            if not math.isfinite(value):
                raise ReplayInputError(f"{name}: line {line}: {column} is {cell.strip()!r}, not a finite number")
            values.append(value)
        sample = Sample(*values)
        if samples and not sample.t > samples[-1].t:
            raise ReplayInputError(f"{name}: line {line}: t {sample.t:g} does not increase "
                                   f"(the previous sample was at {samples[-1].t:g})")
        samples.append(sample)
    return samples


def median_interval(samples: list[Sample]) -> float | None:
    if len(samples) < 2:
        return None
    gaps = sorted(b.t - a.t for a, b in itertools.pairwise(samples))
    return gaps[len(gaps) // 2]


def replay(samples: list[Sample], rate_hz: float) -> list[FallAlarm]:
    """The fall alarms the pendant sends for these samples, no cancel press, input end = sent."""
    detector = FallDetector(rate_hz)
    pendant = Pendant(tx=Transmitter(mac=_REPLAY_MAC))
    alarms: list[FallAlarm] = []
    open_impact: float | None = None  # impact time of the fall whose cancel window is open

    def after(frame: bytes | None, impact: float | None, now: float) -> None:
        nonlocal open_impact
        if frame is not None and open_impact is not None:  # the window expired: the alarm went out
            alarms.append(FallAlarm(open_impact))
            open_impact = None
        if impact is not None and pendant.fall_detected_at == now and open_impact is None:
            open_impact = impact  # this fall opened a new window (one inside an open window is merged)

    for s in samples:
        pendant, frame, decision = on_accelerometer(pendant, detector, s.t, s.ax, s.ay, s.az)
        after(frame, None if decision is None else decision.t, s.t)
    last = detector.finish()
    if last is not None and samples:
        pendant, frame = fall_detected(pendant, samples[-1].t)
        after(frame, last.t, samples[-1].t)
    if open_impact is not None:  # still in its cancel window at the end: nobody cancelled it
        alarms.append(FallAlarm(open_impact))
    return alarms


def add_command(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    cmd = commands.add_parser("pendant-replay", help="run the pendant's fall detector over a recorded CSV trace",
                              description="Prints one JSON line per fall alarm the pendant would have sent.")
    cmd.add_argument("--input", type=Path, required=True, help="CSV with the header t,ax,ay,az (seconds, g)")
    cmd.add_argument("--rate", type=float, required=True,
                     help=f"sampling rate of the file in Hz ({MIN_RATE_HZ:g}-{MAX_RATE_HZ:g})")


def run(args: argparse.Namespace) -> int:
    path: Path = args.input
    rate: float = args.rate
    if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
        print(f"error: --rate {rate:g} Hz is outside {MIN_RATE_HZ:g}-{MAX_RATE_HZ:g} Hz", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        with path.open(encoding="utf-8", newline="") as f:
            samples = read_samples(f, str(path))
    except ReplayInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (OSError, UnicodeDecodeError) as e:
        print(f"error: cannot read {path}: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    interval = median_interval(samples)
    if interval is not None and abs(interval * rate - 1.0) > RATE_TOLERANCE:
        print(f"warning: {path}: the t column has a median interval of {interval:g} s ({1 / interval:.4g} Hz), "
              f"not the {rate:g} Hz of --rate; timing follows the t column", file=sys.stderr)
    alarms = replay(samples, rate)
    for alarm in alarms:
        print(alarm.to_json())
    print(f"{path}: {len(samples)} samples, {len(alarms)} fall alarm(s)", file=sys.stderr)
    return 0
