"""A hub's clock, judged against the centre's: how far off it is, and where its messages belong in time.

A Raspberry Pi has no real-time clock. After a power cut it runs from a saved time (or
1970) until NTP answers, minutes, days or years off, so no rule may judge a hub's message
by its hub-stamped times alone. The centre stamps every message with its own receive time;
this module compares the two (pure: no clock reads; times come from the caller).

**The offset.** A message received at `received_at` gives a sample `hub_ts − received_at`:
the hub clock's offset minus the message's delay (network, the hub's outbox, the centre's
queue). A delay only ever lowers a sample, so the offset is at least every sample, and the
best estimate is the highest sample over the last `WINDOW` of receive time: the sample with
the least delay (the idea of NTP's clock filter, RFC 5905 §10). Positive: the hub is ahead.

**The verdict** (`Verdict`), after each message:
- `AHEAD`: the estimate is more than `MAX_CLOCK_OFFSET` ahead. One sample proves it: no delay
  makes a stamp later than its receipt.
- `BEHIND`: more than `MAX_CLOCK_OFFSET` behind, confirmed by a heartbeat that was live: made
  with an (almost) empty outbox (`outbox_depth` <= `LIVE_OUTBOX_DEPTH`) and received as long
  after the hub's previous heartbeat as the hub made it after it (their receive times as far
  apart as their `uptime_s`, within `PACE_TOLERANCE` or half the gap, whichever is less).
  Late messages look behind too: an outbox replayed after an outage, a broker's backlog
  delivered to a restarted centre. Those arrive in bursts, much closer together than the hub
  made them, so they never confirm it.
- `IN_DOUBT`: behind by more than the bound, not (yet) confirmed: late messages or a slow
  clock, not yet told apart. Rules that compare the hub's times with the centre's clock wait
  (no device "not seen", no activity or schedule timer) until it is settled.
- `RIGHT`: within the bound. `UNKNOWN`: no sample in the window.

**Steps.** Two heartbeats of one run of the hub agent (`uptime_s` grew) whose `hub_ts` moved
by more, or less, than their `uptime_s` did show that the hub's clock was set (NTP stepping
it). The samples from before are forgotten, so a corrected clock is `RIGHT` at its next
heartbeat. A smaller `uptime_s` is a restart of the agent: the samples are forgotten too.

**Placing a message** (`place`): while the verdict is `AHEAD` or `BEHIND`, every time a
message carries (`source_ts`, `hub_ts`, a heartbeat's `devices[].last_seen`) is moved back
by the estimate, and never later than the receive time, so the engine's rules see it on the
centre's clock. Otherwise times are as stamped (an honest clock's times are the most
precise), except a time more than `MAX_CLOCK_OFFSET` after the receipt, which is impossible
and becomes the receive time.
"""

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from telecare_protocol import DeviceEvent, DeviceStatus, Heartbeat, Message, Reading
from telecare_protocol.codec import CLOCK_TOLERANCE

MAX_CLOCK_OFFSET: Final = CLOCK_TOLERANCE
"""How far a hub's clock may be from the centre's before it is wrong: the protocol's 2 min
(`telecare_protocol.codec.CLOCK_TOLERANCE`, which argues it against NTP's accuracy and the
5 min a receiver once allowed)."""
WINDOW: Final = timedelta(minutes=10)
"""Samples are kept for this long of receive time: ten of the hub's 60 s default heartbeats
(`hub_agent.config`), so a live sample is always in it while the hub is connected, even during
a replay of its outbox (design)."""
PACE_TOLERANCE: Final = timedelta(seconds=10)
"""Two heartbeats arrived at the hub's pace when their receive times are as far apart as their
`uptime_s`, within this; the same tolerance tells a step of the hub's clock from drift (NTP slews
at most 500 ppm, 0.03 s a minute: RFC 5905). Covers the jitter of a live link (design)."""
LIVE_OUTBOX_DEPTH: Final = 100
"""A heartbeat made with at most this many unacknowledged messages in the hub's outbox was sent
at once: a hub with a 1 Hz oximeter (2 readings a second) has a few in flight while its link
keeps up; one still sending a backlog has hundreds or thousands ahead of its heartbeat (design)."""


class Verdict(StrEnum):
    """What the centre makes of a hub's clock (see the module docstring)."""

    UNKNOWN = "unknown"
    RIGHT = "right"
    AHEAD = "ahead"
    BEHIND = "behind"
    IN_DOUBT = "in_doubt"


WRONG: Final = frozenset({Verdict.AHEAD, Verdict.BEHIND})
"""Verdicts under which the hub's messages are placed on the centre's clock, and `hub_clock_wrong` is raised."""


@dataclass(frozen=True)
class _Beat:
    received_at: datetime
    hub_ts: datetime
    uptime_s: float


class Sample:
    """The message that gave the current estimate: when it was received and what it said. One is made
    for every message, so its offset is computed once and its id made text only when read."""

    __slots__ = ("_id", "hub_ts", "offset", "received_at")

    def __init__(self, received_at: datetime, hub_ts: datetime, message_id: object) -> None:
        self.received_at = received_at
        self.hub_ts = hub_ts
        self.offset: timedelta = hub_ts - received_at
        """`hub_ts` − `received_at` (positive: the hub's stamp is later than the receipt)."""
        self._id = message_id

    @property
    def message_id(self) -> str:
        """The message's id, as text."""
        return str(self._id)


class HubClock:
    """One hub's clock. Feed it every message of the hub, in arrival order, with its receive time."""

    def __init__(self) -> None:
        self._samples: deque[Sample] = deque()
        """The samples that may still be the highest in the window: received in order, offsets
        strictly decreasing (a sliding-window maximum: at most one per distinct offset)."""
        self._beat: _Beat | None = None
        self._behind_confirmed = False
        self.steps = 0
        """How many times the hub's clock was seen to be set (a step) or its agent restarted."""

    @property
    def estimate(self) -> timedelta | None:
        """The estimated offset of the hub's clock (positive: ahead), or None with no sample in the window."""
        return self._samples[0].offset if self._samples else None

    @property
    def best(self) -> Sample | None:
        """The sample the estimate comes from."""
        return self._samples[0] if self._samples else None

    @property
    def verdict(self) -> Verdict:
        estimate = self.estimate
        if estimate is None:
            return Verdict.UNKNOWN
        if estimate > MAX_CLOCK_OFFSET:
            return Verdict.AHEAD
        if estimate < -MAX_CLOCK_OFFSET:
            return Verdict.BEHIND if self._behind_confirmed else Verdict.IN_DOUBT
        return Verdict.RIGHT

    def observe(self, message: Message, received_at: datetime) -> Verdict:
        """Add the message's sample (and, for a heartbeat, its pace and any step); returns the verdict."""
        if not isinstance(message, Heartbeat):
            return self.observe_stamp(message.hub_ts, received_at, message.id)
        self.expire(received_at)
        paced = self._heartbeat(message, received_at)
        self._add(Sample(received_at, message.hub_ts, message.id))
        estimate = self.estimate
        assert estimate is not None  # a sample was just added
        if estimate >= -MAX_CLOCK_OFFSET:
            self._behind_confirmed = False
        elif paced and message.outbox_depth <= LIVE_OUTBOX_DEPTH:
            self._behind_confirmed = True
        return self.verdict

    def observe_stamp(self, hub_ts: datetime, received_at: datetime, message_id: object) -> Verdict:
        """`observe` for a message that is not a heartbeat (no pace, no step): its `hub_ts`, receive
        time and id. The same state and verdict, in one call: it runs for every reading."""
        samples = self._samples
        if not samples or samples[0].received_at < received_at - WINDOW:
            self.expire(received_at)
        sample = Sample(received_at, hub_ts, message_id)
        offset = sample.offset
        while samples and samples[-1].offset <= offset:
            samples.pop()
        samples.append(sample)
        estimate = samples[0].offset
        if estimate >= -MAX_CLOCK_OFFSET:
            self._behind_confirmed = False
            return Verdict.AHEAD if estimate > MAX_CLOCK_OFFSET else Verdict.RIGHT
        return Verdict.BEHIND if self._behind_confirmed else Verdict.IN_DOUBT

    def expire(self, now: datetime) -> None:
        """Forget samples received more than `WINDOW` before `now`."""
        samples = self._samples
        if samples:
            since = now - WINDOW
            while samples and samples[0].received_at < since:
                samples.popleft()
        if not self._samples:
            self._behind_confirmed = False

    def place(self, message: Message, received_at: datetime) -> Message:
        """The message on the centre's clock when the hub's clock is wrong (`WRONG`). Otherwise as it is,
        except a time more than `MAX_CLOCK_OFFSET` after its receipt (impossible), which becomes the receipt."""
        estimate = self.estimate
        wrong = self.verdict in WRONG and estimate is not None
        if not wrong and possible(message, received_at):
            return message

        def moved(stamp: datetime) -> datetime:
            if wrong and estimate is not None:
                try:
                    return min(stamp - estimate, received_at)
                except OverflowError:  # a device time and a hub time thousands of years apart
                    return received_at
            return received_at if stamp > received_at + MAX_CLOCK_OFFSET else stamp

        update: dict[str, object] = {"source_ts": moved(message.source_ts), "hub_ts": moved(message.hub_ts)}
        if isinstance(message, Heartbeat):
            update["devices"] = tuple(
                status if status.last_seen is None else
                DeviceStatus(device_id=status.device_id, last_seen=moved(status.last_seen),
                             battery_pct=status.battery_pct)
                for status in message.devices)
        placed: Reading | DeviceEvent | Heartbeat = message.model_copy(update=update)
        return placed

    def _heartbeat(self, beat: Heartbeat, received_at: datetime) -> bool:
        """Note a step or a restart; returns whether this heartbeat came at the hub's pace after the previous."""
        previous, self._beat = self._beat, _Beat(received_at, beat.hub_ts, beat.uptime_s)
        if previous is None:
            return False
        if beat.uptime_s < previous.uptime_s:  # the agent restarted: its clock may have been set meanwhile
            self._forget()
            return False
        made = timedelta(seconds=beat.uptime_s - previous.uptime_s)
        if abs((beat.hub_ts - previous.hub_ts) - made) > PACE_TOLERANCE:  # the hub's clock was set
            self._forget()
        return abs((received_at - previous.received_at) - made) <= min(PACE_TOLERANCE, made / 2)

    def _forget(self) -> None:
        self._samples.clear()
        self._behind_confirmed = False
        self.steps += 1

    def _add(self, sample: Sample) -> None:
        while self._samples and self._samples[-1].offset <= sample.offset:
            self._samples.pop()
        self._samples.append(sample)


def possible(message: Message, received_at: datetime) -> bool:
    """No time the message carries is more than `MAX_CLOCK_OFFSET` after its receipt (which no clock
    that is right could stamp)."""
    limit = received_at + MAX_CLOCK_OFFSET
    return message.source_ts <= limit and message.hub_ts <= limit and (
        not isinstance(message, Heartbeat)
        or all(s.last_seen <= limit for s in message.devices if s.last_seen is not None))


def describe(offset: timedelta) -> str:
    """An offset as an operator reads it: "1 h 0 min ahead", "14 days behind", "3 min 5 s ahead"."""
    seconds = round(abs(offset.total_seconds()))
    side = "ahead" if offset > timedelta(0) else "behind"
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days {side}"
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min {side}"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s {side}"
    return f"{seconds} s {side}"
