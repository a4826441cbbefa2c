"""Optional export of readings to InfluxDB (or anything that takes its `/api/v2/write`,
such as VictoriaMetrics), for dashboards outside the centre.

The centre's database stays the record; the export is a copy, sent after the commit by a
thread of its own, so a slow or absent time-series server never slows ingest or loses
anything. It reads committed readings in id order after a durable cursor (the last
exported reading id) and moves the cursor only after the server accepted the write; a
crash between the two re-sends one batch, which the server overwrites (same series, same
timestamp). Reading ids follow commit order because one ingest worker writes them.

The cursor is a small JSON file, `export-cursor.json`, in the centre's data directory
(written to a temporary file, fsynced, then renamed), because storage has no table for it
yet. A table `export_cursors(name TEXT PRIMARY KEY, last_id BIGINT, updated_at)` would
be better (see the report to the lead).

Line protocol: measurement = the metric (`spo2`, `heart_rate`, …), field `value`, tags
`person` (the centre's person id, not the name), `device`, `unit` and `quality` (the
reading's quality flags joined with `|`, `ok` when there are none; `clock_suspect` too when the
hub's clock was ahead), time = the device's `source_ts` in milliseconds (the centre's receive
time for a `clock_suspect` reading). A reading with no value (sensor off, invalid) is skipped: it
has nothing to chart, and it stays in the centre with its flag; skipped readings are counted.
"""

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write.point import Point
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, Field, SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitoring_centre.periodic import PeriodicWorker
from monitoring_centre.storage import Reading


class ExportSettings(BaseModel):
    """Optional copy of readings to InfluxDB (or anything speaking its /api/v2/write), `export.py`."""

    influx_url: str | None = Field(default=None, description="e.g. http://127.0.0.1:8086; none: no export")
    influx_token: SecretStr = Field(default=SecretStr(""), description="API token with write access to the bucket")
    influx_org: str = Field(default="", description="InfluxDB organisation the bucket belongs to")
    influx_bucket: str = Field(default="telecare", description="bucket the readings are written to")
    interval_s: float = Field(default=5.0, gt=0, description="how often committed readings are sent")
    batch: int = Field(default=5000, gt=0, description="readings per write")


log = logging.getLogger(__name__)

CURSOR_FILE = "export-cursor.json"


class FileCursor:
    """The last exported reading id, kept durably in a JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def get(self) -> int:
        try:
            return int(json.loads(self.path.read_text(encoding="utf-8"))["last_reading_id"])
        except FileNotFoundError:
            return 0

    def set(self, last_id: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("w", encoding="utf-8") as f:
            json.dump({"last_reading_id": last_id}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, self.path)


@dataclass(frozen=True)
class Exported:
    written: int
    skipped: int
    last_id: int


def point_of(reading: Reading) -> Point | None:
    """The reading as one InfluxDB point, or None when it has no value."""
    if reading.value is None:
        return None
    flags = [str(flag) for flag in reading.quality] + (["clock_suspect"] if reading.clock_suspect else [])
    quality = "|".join(sorted(flags)) or "ok"
    when = reading.received_at if reading.clock_suspect else reading.source_ts  # never a time the hub made up
    point: Point = Point(reading.metric)  # type: ignore[no-untyped-call]  # influxdb-client is untyped
    for key, value in (("person", str(reading.person_id)), ("device", reading.device_id), ("unit", reading.unit),
                       ("quality", quality)):
        point.tag(key, value)  # type: ignore[no-untyped-call]
    point.field("value", float(reading.value))  # type: ignore[no-untyped-call]
    point.time(int(when.timestamp() * 1000), WritePrecision.MS)  # type: ignore[no-untyped-call]
    return point


class ExportMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.written = Counter("telecare_export_written", "Readings written to the time-series server",
                               registry=registry)
        self.skipped = Counter("telecare_export_skipped", "Readings not exported because they have no value",
                               registry=registry)
        self.failures = Counter("telecare_export_failures", "Writes the time-series server refused or missed",
                                registry=registry)


class InfluxExport:
    def __init__(self, sessions: sessionmaker[Session], settings: ExportSettings, cursor: FileCursor,
                 metrics: ExportMetrics | None = None) -> None:
        if not settings.influx_url:
            raise ValueError("export.influx_url is not set")
        self.sessions = sessions
        self.settings = settings
        self.cursor = cursor
        self.metrics = metrics
        self.client = InfluxDBClient(url=settings.influx_url, token=settings.influx_token.get_secret_value(),
                                     org=settings.influx_org, timeout=10_000)
        self.writer = self.client.write_api(write_options=SYNCHRONOUS)
        self._worker = PeriodicWorker("centre-export", self.drain, settings.interval_s, on_error=self._failed,
                                      logger=log)

    def export_once(self) -> Exported:
        """Send the next batch of committed readings; the cursor moves only after the server accepted them."""
        after = self.cursor.get()
        with self.sessions() as session:
            readings = list(session.scalars(
                select(Reading).where(Reading.id > after).order_by(Reading.id).limit(self.settings.batch)))
        if not readings:
            return Exported(0, 0, after)
        points = [p for p in (point_of(r) for r in readings) if p is not None]
        if points:
            self.writer.write(bucket=self.settings.influx_bucket, org=self.settings.influx_org, record=points,
                              write_precision=WritePrecision.MS)  # type: ignore[arg-type]
        last = readings[-1].id
        self.cursor.set(last)
        skipped = len(readings) - len(points)
        if self.metrics is not None:
            self.metrics.written.inc(len(points))
            self.metrics.skipped.inc(skipped)
        return Exported(len(points), skipped, last)

    def drain(self) -> int:
        """Export until nothing committed is left; returns how many points were written."""
        total = 0
        while True:
            done = self.export_once()
            total += done.written
            if done.written + done.skipped == 0:
                return total

    def start(self) -> None:
        """Drain every `settings.interval_s` seconds on a thread of its own ("centre-export")."""
        self._worker.start()

    def stop(self) -> None:
        """Stop the thread (waiting up to 30 s for a write in progress) and close the client."""
        self._worker.stop(timeout=30)
        self.client.close()  # type: ignore[no-untyped-call]

    def _failed(self) -> None:
        """The server is down or refused: the cursor has not moved, the next drain tries again."""
        if self.metrics is not None:
            self.metrics.failures.inc()


def build(sessions: sessionmaker[Session], settings: ExportSettings, data_dir: Path | None,
          registry: CollectorRegistry) -> InfluxExport | None:
    """The export the settings ask for, or None."""
    if not settings.influx_url:
        return None
    if data_dir is None:
        raise ValueError("export needs a data directory for its cursor (TELECARE_DATA_DIR)")
    return InfluxExport(sessions, settings, FileCursor(data_dir / CURSOR_FILE), ExportMetrics(registry))
