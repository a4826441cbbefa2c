"""What the benchmarks share: a free loopback port, and latency percentiles.

Each bench is run as a script (`.venv/bin/python bench/NAME.py`), so this module is imported
from the bench folder itself (`sys.path[0]`)."""

import socket
import statistics


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50 (the median), p99 (nearest rank below) and max of `samples`, in their own unit, rounded to 0.01."""
    ordered = sorted(samples)
    return {"p50": round(statistics.median(ordered), 2), "p99": round(ordered[int(0.99 * (len(ordered) - 1))], 2),
            "max": round(ordered[-1], 2)}
