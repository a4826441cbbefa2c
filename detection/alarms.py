"""Alarms that need no detection: the help button, the pull cord and an uncancelled fall.

A press is always an alarm (domain brief, "Falls"), priority 1, even when it arrives late
(from the hub's outbox; marked `late`), and whatever its timestamps say: the alert opens at
the centre's receive time (an alarm-receiving centre times a call from its arrival), with the
hub's times in the explanation. Times are compared (repeat, late, cancelled falls) on the
engine's axis: as stamped, or on the centre's clock when the hub's clock is wrong (`clock.py`).

Every press or fall is its own episode, except a second one from the same device within
`REPEAT_WITHIN` of the first: that is the same call (a double press), sent as a `repeat` so
the centre counts it on the open alert.

A fall the wearer cancelled on the pendant (`fall_cancelled`) is not an alert: ingest
stores the event, and the engine remembers it so the next fall alert from that device
says how many falls were cancelled in the previous 24 h (a pattern worth a look).
"""

from collections import deque
from datetime import datetime, timedelta
from typing import Any

from detection.decisions import Decision, PersonContext
from detection.rules import RAISED_BY, RuleId, RuleKind
from telecare_protocol import DeviceEvent, DeviceType, EventCode

REPEAT_WITHIN = timedelta(minutes=5)
CANCELLED_WINDOW = timedelta(hours=24)
PULL_CORD_TITLE = "Pull cord pulled"
"""A pull cord raises `pendant_alarm` too (the same call for help), under a title of its own."""


class AlarmRules:
    def __init__(self, ctx: PersonContext) -> None:
        self.ctx = ctx
        self.last: dict[tuple[RuleId, str], datetime] = {}
        self.latest: dict[str, datetime] = {}
        self.cancelled: dict[str, deque[datetime]] = {}

    def event(self, event: DeviceEvent, received_at: datetime | None = None) -> list[Decision]:
        """`received_at`: when the centre received it (None in a replay of a recording: its own time)."""
        if event.code == EventCode.FALL_CANCELLED:
            self.cancelled.setdefault(event.device_id, deque(maxlen=50)).append(event.source_ts)
            return []
        alarm = RAISED_BY.get(event.code)
        if alarm is None or alarm.kind is not RuleKind.ALARM:
            return []
        rule, title = alarm.rule, alarm.title
        if rule == RuleId.PENDANT_ALARM and event.device_type == DeviceType.PULL_CORD:
            title = PULL_CORD_TITLE
        late = event.source_ts < self.latest.get(event.device_id, event.source_ts)
        self.latest[event.device_id] = max(self.latest.get(event.device_id, event.source_ts), event.source_ts)
        previous = self.last.get((rule, event.device_id))
        repeat = previous is not None and abs(event.source_ts - previous) <= REPEAT_WITHIN
        self.last[(rule, event.device_id)] = event.source_ts
        settings = self.ctx.settings[rule]
        explanation: dict[str, Any] = {
            "device_id": event.device_id, "device_type": event.device_type.value, "code": event.code.value,
            "message_id": str(event.id), "source_ts": event.source_ts.isoformat(), "detail": dict(event.detail),
            "late": late, "source": settings.source("priority"),
        }
        if received_at is not None:
            explanation["received_at"] = received_at.isoformat()
        if rule == RuleId.FALL:
            recent = [t for t in self.cancelled.get(event.device_id, ()) if event.source_ts - t <= CANCELLED_WINDOW]
            explanation["cancelled_falls_24h"] = len(recent)
        if not repeat:
            self.ctx.end_quietly(rule)
        return self.ctx.raise_(rule, "", settings.i("priority"), title, explanation, received_at or event.source_ts,
                               repeat=True)
