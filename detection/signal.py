"""Readings with no signal: flagged, counted, never a clinical alarm, and an alert of their own when they go on.

A pulse oximeter that finds no signal (no finger in the clip, no pulse found) says so in its
status bits (`sensor_off`, a null value), or, as a monitor in the field did, sends SpO2 0 %
and pulse 0 with no status bit at all. Taken as readings, those zeros raised 14 `spo2_low`
and 10 `pulse_low` alerts on one day. So:

- `with_signal_flag`: a reading whose value lies outside what an oximeter measures on a
  living person (`telecare_protocol.codes.MEASURABLE`: SpO2 50-100 %, pulse 20-250 /min)
  gets `QualityFlag.NO_SIGNAL`, whoever sent it; the hub sets it at source
  (`hub_agent/plx.py`), ingest stores it (`monitoring_centre/ingest.py`), and the engine
  sets it again for a reading that reached it without (a replay, an older hub, the
  warm-up's stored payloads) before any rule sees it. From there it is a flagged reading
  like any other: it never counts toward a threshold's persistence, never enters a trend,
  never meets a scheduled measurement, and is never a sign of activity (`activity.py`).
  The engine counts every one (`EngineCounts.no_signal`, by metric; the centre's
  `telecare_detection_no_signal_readings_total{metric}`).
- `no_signal` (supervision, priority 4, per device): a device whose readings have had no
  signal for `minutes` (60) on end while it keeps sending. "No signal" is a null value, a
  value flagged `no_signal`, or `sensor_off` / `invalid` / `data_unavailable`
  (`SIGNAL_LOST`). A reading with a signal (even one flagged questionable: there is a
  finger in the clip) ends the run and clears the condition. A device that stops sending
  altogether is `device_not_seen`'s business; a shorter run is shown on the nurses' chart
  as flagged readings. Late readings (older than the device's latest, an outbox replay)
  are left out: the condition is about the device now.

Shapes: times are aware datetimes on the engine's (placed) clock; `minutes` is whole minutes.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from detection.decisions import Decision, PersonContext
from detection.rules import CATALOGUE, RuleId
from telecare_protocol import Metric, QualityFlag, Reading
from telecare_protocol.codes import NO_VALUE_REASONS, signal_quality

SIGNAL_LOST = NO_VALUE_REASONS | {QualityFlag.NO_SIGNAL}
"""The flags that say a reading measured nothing: a probe off, no value, a placeholder value."""
WATCHED = frozenset({Metric.SPO2, Metric.PULSE_RATE})
"""The metrics whose readings say whether an oximeter measures (the ones the rules read)."""


def with_signal_flag(reading: Reading) -> Reading:
    """The reading, with `NO_SIGNAL` added when its value is outside the measurable range
    (the same reading object when nothing changes)."""
    quality = signal_quality(reading.metric, reading.value, reading.quality)
    return reading if quality is reading.quality else reading.model_copy(update={"quality": quality})


def has_signal(reading: Reading) -> bool:
    """Whether the reading measured something: a value, and none of `SIGNAL_LOST`."""
    return reading.value is not None and not SIGNAL_LOST.intersection(reading.quality)


@dataclass
class _Run:
    """Readings with no signal from one device since its last reading with one."""

    since: datetime
    last: datetime
    count: int = 1
    flags: set[str] = field(default_factory=set)


class SignalRule:
    """`no_signal` for one person's devices (see the module docstring)."""

    def __init__(self, ctx: PersonContext) -> None:
        self.ctx = ctx
        self.runs: dict[str, _Run] = {}
        self.latest: dict[str, datetime] = {}

    def fast_reading(self, reading: Reading) -> bool:
        """`reading` for a clean reading (a value, no quality flag) of a watched metric from a device with no
        run of readings without a signal: the device's latest time noted as `reading` notes it (which returns
        no decision then), and True; False, having changed nothing, for a device in such a run."""
        device, at = reading.device_id, reading.source_ts
        if device in self.runs:
            return False
        latest = self.latest.get(device)
        if latest is None or not at < latest:  # a late reading changes nothing
            self.latest[device] = at
        return True

    def reading(self, reading: Reading) -> list[Decision]:
        if reading.metric not in WATCHED:
            return []
        device, at = reading.device_id, reading.source_ts
        latest = self.latest.get(device)
        if latest is not None and at < latest:
            return []  # late: the condition follows the live stream
        self.latest[device] = at
        if has_signal(reading):
            run = self.runs.pop(device, None)
            if run is None:
                return []
            return self.ctx.clear(RuleId.NO_SIGNAL, device, at,
                                  {"why": "a reading with a signal", "reading_id": str(reading.id),
                                   "source_ts": at.isoformat(), "no_signal_since": run.since.isoformat()})
        run = self.runs.get(device)
        if run is None:
            run = self.runs[device] = _Run(since=at, last=at)
        else:
            run.last, run.count = at, run.count + 1
        run.flags.update(flag.value for flag in reading.quality)
        settings = self.ctx.settings[RuleId.NO_SIGNAL]
        minutes = settings.i("minutes")
        if run.last - run.since < timedelta(minutes=minutes):
            return []
        lasted = int((run.last - run.since).total_seconds() // 60)
        return self.ctx.raise_(
            RuleId.NO_SIGNAL, device, settings.i("priority"),
            f"{CATALOGUE[RuleId.NO_SIGNAL].title.split(' (')[0]} for {lasted} min ({device})",
            {"device_id": device, "since": run.since.isoformat(), "last_reading": str(reading.id),
             "last_at": at.isoformat(), "readings": run.count, "flags": sorted(run.flags), "minutes": minutes,
             "source": settings.source("minutes")}, at)
