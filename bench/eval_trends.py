"""How often the SpO2 rules alert on synthetic well and declining people (spot checks).

No labelled real trend data exists in `shared/data`, so this is synthetic and seeded: each
person has a baseline between 95.5 and 98%, three spot checks a day for `--days` days
(readings rounded to whole percent, Gaussian scatter of `--scatter` %-points: ~2 when well,
per the domain brief), and "declining" people lose `--decline` points a day from the middle
of the period. Reported: the share of people with at least one alert, per rule. For well
people every alert is a false alarm; for declining ones, any SpO2 rule is a detection.

    .venv/bin/python bench/eval_trends.py [--people 600] [--days 10] [--scatter 1 2] [--decline 1.5]
"""

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detection.engine import Engine, Raise
from detection.people import PersonProfile
from telecare_protocol import Metric, Reading

START = datetime(2026, 3, 2, tzinfo=UTC)


def share_alerted(people: int, days: int, scatter: float, decline: float, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    engine = Engine([PersonProfile(id=f"p{i}", hubs=(f"hub-{i}",), devices={"oxi": "oximeter"})
                     for i in range(people)])
    alerted: set[tuple[int, str]] = set()
    for i in range(people):
        base = rng.uniform(95.5, 98.0)
        for day in range(days):
            for hour in (9, 14, 20):
                at = START + timedelta(days=day, hours=hour, minutes=float(rng.integers(0, 30)))
                value = float(np.clip(round(base - decline * max(0, day - days / 2) + rng.normal(0, scatter)), 70, 100))
                reading = Reading.model_construct(hub_id=f"hub-{i}", device_id="oxi", metric=Metric.SPO2, value=value,
                                                  unit="%", quality=(), source_ts=at, hub_ts=at)
                for decision in engine.observe(reading):
                    if isinstance(decision, Raise) and decision.explanation.get("episode") == "new":
                        alerted.add((i, decision.rule))
    rules = sorted({rule for _, rule in alerted})
    result = {rule: round(sum(1 for _, r in alerted if r == rule) / people, 3) for rule in rules}
    result["any"] = round(len({i for i, _ in alerted}) / people, 3)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=600)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--scatter", type=float, nargs="+", default=[1.0, 2.0])
    parser.add_argument("--decline", type=float, default=1.5, help="points a day, from mid-period")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    out: dict[str, dict[str, float]] = {}
    for scatter in args.scatter:
        out[f"well_scatter_{scatter:g}"] = share_alerted(args.people, args.days, scatter, 0.0, args.seed)
        out[f"declining_scatter_{scatter:g}"] = share_alerted(args.people, args.days, scatter, args.decline, args.seed)
    print(json.dumps({"people": args.people, "days": args.days, "decline_per_day": args.decline,
                      "share_of_people_alerted": out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
