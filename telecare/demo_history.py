"""Seeding the demo centre with Margaret's last 30 days (`device_sims.demo_history`).

The messages go through the centre's own ingest (`monitoring_centre.ingest.Ingest.process`) and
detection (`EngineRunner`), exactly as if her hub had published them, on a clock that plays the
30 days in order: each batch is received a moment after its messages were made, and detection
ticks every few simulated minutes. So the readings, the bed and door events and the alerts the
rules raise from them (an SpO2 trend over the last days: a review task for the nurse) are the
centre's own, not rows written by hand. Run before the centre serves; its detection then warms up
from what is stored (`Centre.serve`).
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from detection.engine import Engine
from device_sims.demo_day import DEMO_HUB_ID
from device_sims.demo_history import HISTORY_DAYS, history
from monitoring_centre import person_settings
from monitoring_centre.detection_runner import EngineRunner
from monitoring_centre.ingest import Inbound, Ingest, IngestMetrics
from monitoring_centre.storage import Hub, InboundMessage
from telecare_protocol import Message, encode
from telecare_protocol.messages import Heartbeat
from telecare_protocol.topics import topic_for

RECEIVE_DELAY = timedelta(seconds=1)
"""Each batch is received this long after its last message, a heartbeat (so the hub's clock is judged right)."""
TICK = timedelta(minutes=10)
"""How often detection's clock-driven rules run over the history: never past a message not yet received."""


@dataclass(frozen=True)
class Seeded:
    messages: int
    alerts: set[int]
    first: datetime
    last: datetime


def has_history(sessions: sessionmaker[Session]) -> bool:
    """True when the centre already holds messages from the demo's hub (a `--keep-data` run)."""
    with sessions() as session:
        return bool(session.scalar(select(func.count()).select_from(InboundMessage)
                                   .where(InboundMessage.hub_id == DEMO_HUB_ID)))


MARGARET_SPO2_LOW = {"review_at_or_below": 92, "urgent_at_or_below": 90}
"""Margaret's own SpO2 thresholds: with COPD her usual is 95-97 %, and her respiratory nurse asked
for a review at 92 % or below (the defaults, NEWS2 Scale 1's 94 %, would call her every week)."""


def seed_demo(sessions: sessionmaker[Session], *, now: datetime, timezone: str) -> Seeded | None:
    """On a fresh start, Margaret's care plan and her last 30 days; None when the centre already
    holds her hub's messages (`--keep-data` after an earlier run), which are not played twice."""
    if has_history(sessions):
        return None
    with sessions() as session:
        person_id = session.scalars(select(Hub.person_id).where(Hub.id == DEMO_HUB_ID)).one()
    set_care_plan(sessions, person_id)
    return seed_history(sessions, now=now, timezone=timezone)


def set_care_plan(sessions: sessionmaker[Session], person_id: int) -> None:
    """What Margaret's nurse set for her before the history began: her own SpO2 thresholds."""
    with sessions() as session, session.begin():
        person_settings.set_rule(session, person_id, "spo2_low", dict(MARGARET_SPO2_LOW), by="demo",
                                 reason="COPD: usual SpO2 95-97 %; review at 92 % or below (respiratory nurse)")


def seed_history(sessions: sessionmaker[Session], *, now: datetime, timezone: str,
                 days: int = HISTORY_DAYS) -> Seeded:
    """Put the `days` local days before `now`'s, and that day up to `now`, through the centre's ingest
    and detection."""
    clock = _Clock(now)
    runner = EngineRunner(Engine([]), sessions, tick_s=TICK.total_seconds(), timezone=timezone, clock=clock)
    runner.load()
    ingest = Ingest(sessions, IngestMetrics(CollectorRegistry()), clock=clock, detector=runner)
    alerts: set[int] = set()
    count = 0
    first: datetime | None = None
    next_tick: datetime | None = None
    for batch in _batches(history(now - RECEIVE_DELAY, timezone, days=days)):
        made = _made(batch[-1])
        first = first or _made(batch[0])
        next_tick = next_tick or first + TICK
        while next_tick <= _made(batch[0]):
            clock.at = next_tick
            alerts |= runner.tick(next_tick)
            next_tick += TICK
        clock.at = made + RECEIVE_DELAY
        outcome = ingest.process([Inbound(topic_for(DEMO_HUB_ID, m.type, getattr(m, "code", None)), encode(m))
                                  for m in batch])
        alerts |= outcome.changed_alerts
        count += outcome.stored
    end = clock.at
    return Seeded(count, alerts, first or end, end)


class _Clock:
    """The centre's "now" while the history plays."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _made(message: Message) -> datetime:
    assert message.hub_ts is not None  # the simulated hub stamps every message
    return message.hub_ts


def _batches(messages: Iterable[Message]) -> Iterator[list[Message]]:
    """The messages up to and including each heartbeat: what the hub sends between two beats."""
    batch: list[Message] = []
    for message in messages:
        batch.append(message)
        if isinstance(message, Heartbeat):
            yield batch
            batch = []
    if batch:
        yield batch
