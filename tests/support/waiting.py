"""Waiting in tests. Every wait on something another thread, process or server does goes
through `wait_for`: poll a probe until it gives something truthy, and fail clearly, naming
what was awaited and for how long, when it does not. `holds_within` is the same wait for
the checks that something does *not* happen (`assert not holds_within(...)`)."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class TimedOut(AssertionError):
    """`wait_for` ran out of time; the message names what it waited for and the timeout."""


def wait_for(probe: Callable[[], T | None], timeout: float = 10.0, what: str = "condition", *,
             interval: float = 0.02) -> T:
    """Call `probe` every `interval` seconds until it returns something truthy, and return that.
    Raises `TimedOut` if it is still falsy `timeout` seconds after the first call (it is called
    once more after the deadline, so a slow probe still gets its last look)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimedOut(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def holds_within(probe: Callable[[], object], timeout: float, *, interval: float = 0.02) -> bool:
    """True as soon as `probe()` is truthy, False if it still is not after `timeout` seconds."""
    try:
        wait_for(probe, timeout, interval=interval)
    except TimedOut:
        return False
    return True
