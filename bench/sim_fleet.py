"""How fast the simulator generates a fleet's stream, and what merging homes costs.

    .venv/bin/python bench/sim_fleet.py [--homes 200] [--days 1]

Baseline: the same homes' streams generated one after another (no merge). Measured: the
fleet stream (`fleet_stream`, homes merged in time order, as `telecare sim fleet` publishes
it), encoded to JSON as `--record` writes it. Prints a final JSON line:

    messages            messages in the fleet stream
    baseline_msgs_per_s homes one by one, not encoded
    fleet_msgs_per_s    merged and encoded
    ratio               fleet / baseline (1.0 = merging and encoding are free)
    peak_rss_mb         the process's peak resident memory
"""

import argparse
import json
import resource
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from device_sims.simulation import fleet_homes, fleet_stream, home_stream
from telecare_protocol import encode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--homes", type=int, default=200)
    parser.add_argument("--days", type=int, default=1)
    args = parser.parse_args()
    first = date(2026, 3, 2)

    started = time.perf_counter()
    baseline = sum(sum(1 for _ in home_stream(h))
                   for h in fleet_homes(args.homes, seed=1, first_day=first, days=args.days))
    baseline_s = time.perf_counter() - started

    started = time.perf_counter()
    count = 0
    for message in fleet_stream(fleet_homes(args.homes, seed=1, first_day=first, days=args.days)):
        encode(message)
        count += 1
    fleet_s = time.perf_counter() - started
    assert count == baseline, (count, baseline)
    print(json.dumps({
        "homes": args.homes, "days": args.days, "messages": count,
        "baseline_msgs_per_s": round(baseline / baseline_s), "fleet_msgs_per_s": round(count / fleet_s),
        "ratio": round((count / fleet_s) / (baseline / baseline_s), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


if __name__ == "__main__":
    main()
