"""Simulated and real time for the simulators.

A week of a home must run in seconds in tests and benches, and in real time (or a
multiple of it) for a demo. Both clocks take the same thing: items stamped with a
simulated UTC time, pushed onto a heap; they hand them back in time order. `SimClock`
jumps straight to each item's time; `RealClock` first sleeps until the wall clock
reaches it, scaled by `speed`.
"""

import asyncio
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

T = TypeVar("T")


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("simulated times are timezone-aware (UTC)")


@dataclass
class SimClock(Generic[T]):
    """Discrete-event time: `now` jumps to each item's time as it is taken off the heap.

    Ties come out in the order they were scheduled (a sequence number breaks them), so
    a run is deterministic.
    """

    now: datetime
    _heap: list[tuple[datetime, int, T]] = field(default_factory=list)
    _seq: Iterator[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        _require_aware(self.now)

    def schedule(self, at: datetime, item: T) -> None:
        """Queue `item` for time `at` (never before `now`: the past cannot be changed)."""
        _require_aware(at)
        heapq.heappush(self._heap, (max(at, self.now), next(self._seq), item))

    def schedule_all(self, items: Iterable[tuple[datetime, T]]) -> None:
        for at, item in items:
            self.schedule(at, item)

    def __len__(self) -> int:
        return len(self._heap)

    def peek(self) -> datetime | None:
        return self._heap[0][0] if self._heap else None

    def pop(self) -> tuple[datetime, T]:
        at, _, item = heapq.heappop(self._heap)
        self.now = at
        return at, item

    def run(self, until: datetime | None = None) -> Iterator[tuple[datetime, T]]:
        """Items in time order; stops when the heap is empty or the next item is after `until`.

        Items may be scheduled while iterating (a heartbeat schedules the next one).
        """
        while self._heap and (until is None or self._heap[0][0] <= until):
            yield self.pop()


@dataclass
class RealClock:
    """Maps simulated time onto the wall clock: `origin` is played at the moment `start` is
    called, and every simulated second after it takes 1/`speed` wall-clock seconds."""

    origin: datetime
    speed: float = 1.0
    monotonic: Callable[[], float] = time.monotonic
    _wall_start: float | None = None

    def __post_init__(self) -> None:
        _require_aware(self.origin)
        if not self.speed > 0:
            raise ValueError("speed must be positive")

    def start(self) -> None:
        self._wall_start = self.monotonic()

    def wall_delay(self, at: datetime) -> float:
        """Seconds to wait before `at` is due (0 when already due)."""
        if self._wall_start is None:
            self.start()
        assert self._wall_start is not None
        due = self._wall_start + (at - self.origin).total_seconds() / self.speed
        return max(0.0, due - self.monotonic())

    def now(self) -> datetime:
        """The simulated time the wall clock has reached."""
        if self._wall_start is None:
            return self.origin
        return self.origin + timedelta(seconds=(self.monotonic() - self._wall_start) * self.speed)

    def pace(self, items: Iterable[tuple[datetime, T]]) -> Iterator[tuple[datetime, T]]:
        """Yield each (time, item) once the wall clock reaches it, sleeping in between."""
        for at, item in items:
            delay = self.wall_delay(at)
            if delay > 0:
                time.sleep(delay)
            yield at, item

    async def apace(self, items: Iterable[tuple[datetime, T]]) -> AsyncIterator[tuple[datetime, T]]:
        """`pace` for asyncio code: awaits instead of blocking the loop."""
        for at, item in items:
            delay = self.wall_delay(at)
            if delay > 0:
                await asyncio.sleep(delay)
            yield at, item
