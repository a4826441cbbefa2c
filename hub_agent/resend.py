"""When the hub resends a message the centre has not acknowledged: a timer per message, backing off.

The broker's PUBACK starts the wait for the centre's ack. If no ack comes within the
message's timeout, it is resent (same bytes, same id: the centre deduplicates and acks the
copy), and its next timeout doubles, up to a cap:

    timeout(n) = min(first_s * 2**n, max_s)    n = resends so far

so a message is tried at about 5, 15, 35, 75 s after its first PUBACK, then every 60 s while
the link is up. The cap bounds how long a message the broker lost silently waits once the
centre answers again; the doubling bounds the duplicates a long centre outage piles up at the
broker. Every unacknowledged message is also resent after a reconnect (the uplink makes the
whole outbox pending again), whatever its timer says: a reconnect is how a broker crash shows.

Pure book-keeping with an injectable monotonic clock; the uplink's sender thread calls it.
Not thread-safe: one caller (the uplink holds its lock around it).
"""

import heapq
import time
from collections.abc import Callable, Iterable
from typing import Final

ACK_TIMEOUT_S: Final = 5.0
"""First wait for the centre's ack after the broker's PUBACK. An unloaded centre acks within tens of
milliseconds (`bench/alarm_received.py`); a busy one commits a batch within a second or two."""
RESEND_MAX_S: Final = 60.0
"""Longest wait between two resends of one message: within the 60 s a hub allows the centre to confirm
an alarm (`hub_agent.confirmation.ALARM_CONFIRM_BOUND_S`)."""


class ResendSchedule:
    """Deadlines for the centre's acks, one per message id, with exponential backoff per message."""

    def __init__(self, *, first_s: float = ACK_TIMEOUT_S, max_s: float = RESEND_MAX_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < first_s <= max_s:
            raise ValueError("resend timeouts must satisfy 0 < first_s <= max_s")
        self.first_s = first_s
        self.max_s = max_s
        self._clock = clock
        self._resends: dict[str, int] = {}
        """Per message waiting for its ack: how many times it has been resent so far."""
        self._deadline: dict[str, float] = {}
        """Per message whose timer runs (published, PUBACK'd, not acked): when it is due."""
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        """Messages waiting for the centre's ack that this schedule knows of."""
        return len(self._resends)

    def timeout_s(self, message_id: str) -> float:
        """The message's current timeout: `first_s` doubled per resend so far, capped at `max_s`."""
        return float(min(self.first_s * 2.0 ** min(self._resends.get(message_id, 0), 32), self.max_s))

    def published(self, message_id: str) -> None:
        """The broker has the message (PUBACK): its timer starts, with its current timeout."""
        self._resends.setdefault(message_id, 0)
        due = self._clock() + self.timeout_s(message_id)
        self._deadline[message_id] = due
        heapq.heappush(self._heap, (due, message_id))

    def acknowledged(self, message_ids: Iterable[str]) -> None:
        """The centre acknowledged these: forget them (ids never published are ignored)."""
        for message_id in message_ids:
            self._resends.pop(message_id, None)
            self._deadline.pop(message_id, None)

    def due(self) -> list[str]:
        """Messages whose timer has run out, oldest deadline first. Each counts one more resend and its
        timer stops until `published` again."""
        now = self._clock()
        out = []
        while self._heap and self._heap[0][0] <= now:
            deadline, message_id = heapq.heappop(self._heap)
            if self._deadline.get(message_id) != deadline:
                continue  # superseded by a later `published`, or acknowledged
            del self._deadline[message_id]
            self._resends[message_id] += 1
            out.append(message_id)
        return out

    def next_due_in(self) -> float | None:
        """Seconds until the next timer runs out (0 if one already has), or None if none runs."""
        while self._heap and self._deadline.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        if not self._heap:
            return None
        return max(0.0, self._heap[0][0] - self._clock())

    def stop_timers(self) -> None:
        """The link dropped: no timer runs until the messages are published again (their backoff is kept)."""
        self._deadline.clear()
        self._heap.clear()
