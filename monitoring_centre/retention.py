"""Retention: raw data older than its period is deleted, in bounded chunks.

What goes, and when (`RetentionSettings`):
- readings and events received more than `readings_days` ago (by the centre's receive time,
  never the hub-stamped `source_ts`: a hub without a real-time clock can stamp 1970, which
  would purge a reading at once, or a year ahead, which would keep it forever);
- accepted inbound messages (the raw payloads, heartbeats included) received more than
  `inbound_days` ago, unless a reading or event still kept refers to one (it goes with them);
- dead letters received more than `dead_letters_days` ago.
Alerts, their transitions, escalations, notifications and the audit log are never deleted
here: they are the record of what the centre did about a person, kept under the
organisation's health-records schedule, not a telemetry window.

Each chunk is its own short transaction (`chunk` rows), so on SQLite ingest never waits
behind one long delete holding the write lock, and on PostgreSQL no huge transaction
bloats the WAL. A crash between chunks loses nothing: the next run carries on.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session, sessionmaker

from monitoring_centre.periodic import PeriodicWorker
from monitoring_centre.storage import DeadLetter, Event, InboundMessage, Reading, utc_now


class RetentionSettings(BaseModel):
    """How long raw data is kept (`retention.py`). Alerts, their transitions and the audit log
    are the record of what the centre did and are never purged by the retention job.

    400 days for readings is a local policy default, not a cited figure: a year of baselines
    for the detection rules plus a season to compare against. The NHS Records Management Code
    of Practice governs the health record as a whole; set these to your organisation's schedule."""

    readings_days: float = Field(default=400, gt=0, description="readings and events, and their inbound messages")
    inbound_days: float = Field(default=400, gt=0, description="accepted messages (heartbeats and all)")
    dead_letters_days: float = Field(default=90, gt=0, description="refused input, kept for inspection")
    interval_s: float = Field(default=3600, gt=0, description="how often the retention job runs")
    chunk: int = Field(default=5000, gt=0, description="rows deleted per transaction (short write locks)")


log = logging.getLogger(__name__)


@dataclass
class Purged:
    readings: int = 0
    events: int = 0
    inbound: int = 0
    dead_letters: int = 0
    chunks: int = 0
    by_table: dict[str, int] = field(default_factory=dict)


def purge(sessions: sessionmaker[Session], settings: RetentionSettings, now: datetime | None = None) -> Purged:
    """Delete everything past its retention period; returns how much went."""
    now = now or utc_now()
    purged = Purged()
    readings_cutoff = now - timedelta(days=settings.readings_days)
    purged.readings, chunks_r = _in_chunks(sessions, Reading, Reading.id, Reading.received_at < readings_cutoff,
                                           settings.chunk)
    purged.events, chunks_e = _in_chunks(sessions, Event, Event.id, Event.received_at < readings_cutoff,
                                         settings.chunk)
    unreferenced = ~exists().where(Reading.message_id == InboundMessage.id) & ~exists().where(
        Event.message_id == InboundMessage.id)
    purged.inbound, chunks_i = _in_chunks(
        sessions, InboundMessage, InboundMessage.id,
        (InboundMessage.received_at < now - timedelta(days=settings.inbound_days)) & unreferenced, settings.chunk)
    purged.dead_letters, chunks_d = _in_chunks(
        sessions, DeadLetter, DeadLetter.id, DeadLetter.received_at < now - timedelta(days=settings.dead_letters_days),
        settings.chunk)
    purged.chunks = chunks_r + chunks_e + chunks_i + chunks_d
    purged.by_table = {"readings": purged.readings, "events": purged.events, "inbound_messages": purged.inbound,
                       "dead_letters": purged.dead_letters}
    if any(purged.by_table.values()):
        log.info("retention purged %s", purged.by_table)
    return purged


def _in_chunks(sessions: sessionmaker[Session], model: Any, key: Any, condition: Any, chunk: int) -> tuple[int, int]:
    """Delete matching rows `chunk` at a time, one transaction each; returns (rows, chunks)."""
    total = chunks = 0
    while True:
        with sessions() as session, session.begin():
            ids = list(session.scalars(select(key).where(condition).order_by(key).limit(chunk)))
            if not ids:
                return total, chunks
            session.execute(delete(model).where(key.in_(ids)), execution_options={"synchronize_session": False})
        total += len(ids)
        chunks += 1


class RetentionJob:
    """Runs `purge` every `settings.interval_s` seconds on a thread of its own ("centre-retention");
    a failed run is logged and tried again at the next interval."""

    def __init__(self, sessions: sessionmaker[Session], settings: RetentionSettings,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.sessions = sessions
        self.settings = settings
        self.clock = clock
        self._worker = PeriodicWorker("centre-retention", self.run_once, settings.interval_s, logger=log)

    def run_once(self) -> Purged:
        """One purge at the clock's time, on the caller's thread."""
        return purge(self.sessions, self.settings, self.clock())

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        """Stop the thread, waiting up to 30 s for a purge in progress to finish."""
        self._worker.stop(timeout=30)
