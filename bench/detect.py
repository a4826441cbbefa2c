"""Cost of the threshold and trend rules per reading, at county scale.

Population (seeded, reproducible): `--people` (10,000) people x `--days` (7) days of spot
checks, 3 a day at 09:00, 14:00 and 20:00 (SpO2 and pulse, like oximetry @home), around a
personal baseline with ~2% scatter, 5% of the people declining slowly (so the trend rules
do real work), 2% of readings flagged questionable. Plus `--continuous` (10) people with
1 Hz overnight oximetry (22:00-06:00, SpO2 and pulse), 7 nights. 10,000 people all on 1 Hz
overnight would be 2 x 10^10 readings a week: a centre would not see that (continuous
oximetry is prescribed to few), and this bench scales it to `--continuous` people.

Timed: `Engine.observe` over every reading. Baseline, in the same run: iterating the same
reading objects in Python and reading their value and time (what any consumer pays).
Readings are built before timing (pydantic `model_construct`, already valid values).

    .venv/bin/python bench/detect.py [--people 10000] [--days 7] [--continuous 10]
    .venv/bin/python bench/detect.py --memory [--days 14]   # engine state per person instead
    .venv/bin/python bench/detect.py --reference ...        # the full paths only (`Engine(fast=False)`)
    .venv/bin/python bench/detect.py --live ...             # with receive times, as the centre observes
"""

import argparse
import json
import resource
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detection.engine import Engine, Raise
from detection.people import PersonProfile
from telecare_protocol import Metric, QualityFlag, Reading

START = datetime(2026, 3, 2, tzinfo=UTC)
RECEIVED_AFTER = timedelta(seconds=1)
"""With `--live`, when the centre receives each reading after it was taken."""


def reading(hub: str, metric: Metric, value: float, at: datetime, flagged: bool) -> Reading:
    return Reading.model_construct(
        hub_id=hub, device_id="oxi", metric=metric, value=value, unit="%" if metric == Metric.SPO2 else "/min",
        quality=(QualityFlag.QUESTIONABLE,) if flagged else (), source_ts=at, hub_ts=at)


def spot_person(rng: np.random.Generator, hub: str, days: int) -> list[Reading]:
    base, decline = rng.uniform(95.5, 98.0), rng.uniform(0.5, 1.5) if rng.random() < 0.05 else 0.0
    pulse_base = rng.uniform(60, 85)
    out = []
    for day in range(days):
        for hour in (9, 14, 20):
            at = START + timedelta(days=day, hours=hour, minutes=float(rng.integers(0, 30)))
            spo2 = float(np.clip(round(base - decline * max(0, day - days / 2) + rng.normal(0, 1.2), 1), 70, 100))
            out.append(reading(hub, Metric.SPO2, spo2, at, rng.random() < 0.02))
            out.append(reading(hub, Metric.PULSE_RATE, float(round(pulse_base + rng.normal(0, 5))),
                               at + timedelta(seconds=1), False))
    return out


def continuous_person(rng: np.random.Generator, hub: str, days: int) -> Iterator[list[Reading]]:
    """One night at a time, so the bench holds one night's reading objects, not a week's."""
    seconds = 8 * 3600
    for night in range(days):
        out = []
        start = START + timedelta(days=night, hours=22)
        spo2 = np.clip(np.round(96 + np.cumsum(rng.normal(0, 0.05, seconds)) * 0.1 + rng.normal(0, 0.7, seconds), 1),
                       85, 100)
        pulse = np.round(62 + rng.normal(0, 2, seconds))
        for s in range(seconds):
            at = start + timedelta(seconds=s)
            out.append(reading(hub, Metric.SPO2, float(spo2[s]), at, False))
            out.append(reading(hub, Metric.PULSE_RATE, float(pulse[s]), at, False))
        yield out


def memory_per_person(seed: int, days: int, sample: int = 300) -> dict[str, float]:
    """Engine state per person (tracemalloc, on a sample: tracing slows everything down)."""
    import gc
    import tracemalloc

    rng = np.random.default_rng(seed)
    profiles = [PersonProfile(id=f"m{i}", hubs=(f"mem-{i}",), devices={"oxi": "oximeter"}) for i in range(sample + 1)]
    tracemalloc.start()
    engine = Engine(profiles)
    gc.collect()
    empty = tracemalloc.get_traced_memory()[0]
    for i in range(sample):
        for message in spot_person(rng, f"mem-{i}", days):
            engine.observe(message)
    gc.collect()
    spot = tracemalloc.get_traced_memory()[0]
    for night in continuous_person(rng, f"mem-{sample}", days):
        for message in night:
            engine.observe(message)
        del night
    gc.collect()
    continuous = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return {"bytes_empty_person": round(empty / (sample + 1)), "bytes_spot_person": round(empty / (sample + 1) + (
        spot - empty) / sample), "bytes_continuous_person": round(empty / (sample + 1) + continuous - spot)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--continuous", type=int, default=10)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--memory", action="store_true", help="only measure engine memory per person (tracemalloc)")
    parser.add_argument("--live", action="store_true",
                        help="observe each reading with a receive time (1 s after it was taken), as the centre does: "
                             "its hub's clock judged and the reading placed (detection/clock.py)")
    parser.add_argument("--reference", action="store_true",
                        help="run every reading through the full paths (Engine(fast=False)), as before the fast paths")
    args = parser.parse_args()
    if args.memory:
        print(json.dumps({"days": args.days, **memory_per_person(args.seed, args.days)}))
        return 0
    rng = np.random.default_rng(args.seed)
    total = args.people + args.continuous
    profiles = [PersonProfile(id=f"p{i}", hubs=(f"hub-{i}",), devices={"oxi": "oximeter"}) for i in range(total)]
    engine = Engine(profiles, fast=not args.reference)
    engine_ns = baseline_ns = 0
    readings = alerts = 0
    spot_ns = spot_readings = 0
    rules: dict[str, int] = {}
    for i in range(total):
        hub = f"hub-{i}"
        chunks: Iterable[list[Reading]] = (
            [spot_person(rng, hub, args.days)] if i < args.people else continuous_person(rng, hub, args.days))
        for stream in chunks:
            began = time.perf_counter_ns()
            checksum = 0.0
            for message in stream:
                checksum += (message.value or 0.0) + message.source_ts.second
            baseline_ns += time.perf_counter_ns() - began
            received = [message.source_ts + RECEIVED_AFTER for message in stream] if args.live else [None] * len(stream)
            began = time.perf_counter_ns()
            for message, at in zip(stream, received, strict=True):
                for decision in engine.observe(message, at):
                    if isinstance(decision, Raise) and decision.explanation.get("episode") == "new":
                        alerts += 1
                        rules[decision.rule] = rules.get(decision.rule, 0) + 1
            spent = time.perf_counter_ns() - began
            engine_ns += spent
            readings += len(stream)
            if i < args.people:
                spot_ns, spot_readings = spot_ns + spent, spot_readings + len(stream)
    ns = engine_ns / readings
    base = baseline_ns / readings
    print(json.dumps({
        "ns_per_reading": round(ns, 1), "readings": readings, "people": total,
        "continuous_people": args.continuous, "days": args.days,
        "baseline_ns_per_reading": round(base, 1), "ratio": round(ns / base, 1),
        "engine_seconds": round(engine_ns / 1e9, 2),
        "ns_per_spot_reading": round(spot_ns / max(spot_readings, 1), 1), "spot_readings": spot_readings,
        "ns_per_continuous_reading": round((engine_ns - spot_ns) / max(readings - spot_readings, 1), 1),
        "alerts": alerts, "alerts_by_rule": dict(sorted(rules.items())),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "fast": not args.reference, "live": args.live,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
