"""A person's readings over time, summarised for a nurse: one point per time bucket.

Each bucket gives the lowest, median and highest *clean* value, and counts the readings
the device flagged (questionable, low perfusion, probe off) apart, so a chart never shows
a flagged value as a result and never hides that there were some.

A reading is placed by its `source_ts`, except one stored `clock_suspect` (stamped after
its own receipt: the hub's clock was ahead), which is placed by its receive time and counted
as flagged: its value is kept and seen, never charted at a time the hub made up. A value outside what
an oximeter measures (SpO2 0 %, pulse 0: `telecare_protocol.codes.MEASURABLE`) is counted as flagged
too, also in rows stored before ingest flagged such values `no_signal`.
"""

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from monitoring_centre.storage import Reading
from telecare_protocol.codes import Metric, measurable

MAX_BUCKETS = 500


@dataclass(frozen=True)
class Bucket:
    start: datetime
    low: float | None
    median: float | None
    high: float | None
    clean: int
    flagged: int


def summarise(session: Session, person_id: int, metric: Metric, since: datetime, until: datetime,
              bucket: timedelta) -> list[Bucket]:
    if bucket <= timedelta(0) or (until - since) / bucket > MAX_BUCKETS:
        raise ValueError(f"at most {MAX_BUCKETS} buckets: choose a longer bucket or a shorter window")
    rows = session.execute(
        select(Reading.source_ts, Reading.received_at, Reading.clock_suspect, Reading.value, Reading.quality)
        .where(Reading.person_id == person_id, Reading.metric == metric.value,
               or_(and_(~Reading.clock_suspect, Reading.source_ts >= since, Reading.source_ts < until),
                   and_(Reading.clock_suspect, Reading.received_at >= since, Reading.received_at < until)))
    )
    values: dict[int, list[float]] = {}
    flagged: dict[int, int] = {}
    for source_ts, received_at, clock_suspect, value, quality in rows:
        index = int(((received_at if clock_suspect else source_ts) - since) / bucket)
        if value is None or quality or clock_suspect or not measurable(metric, value):
            flagged[index] = flagged.get(index, 0) + 1
        else:
            values.setdefault(index, []).append(value)
    result = []
    for index in sorted(set(values) | set(flagged)):
        clean = values.get(index, [])
        result.append(Bucket(
            start=since + index * bucket, low=min(clean) if clean else None,
            median=statistics.median(clean) if clean else None, high=max(clean) if clean else None,
            clean=len(clean), flagged=flagged.get(index, 0),
        ))
    return result
