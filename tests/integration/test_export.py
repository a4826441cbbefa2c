"""Export of readings over InfluxDB's /api/v2/write, against a real VictoriaMetrics.

Readings are stored by ingest, exported after commit from the durable cursor, and read
back through VictoriaMetrics' /api/v1/export: values, tags (quality flags included) and
millisecond timestamps must match; a reading without a value is skipped and counted; a
second pass sends nothing again; a new exporter (a restarted centre) resumes at the cursor.
"""

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import sessionmaker

from centre_app import schema
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.export import CURSOR_FILE, ExportMetrics, ExportSettings, FileCursor, InfluxExport
from monitoring_centre.ingest import Inbound, Ingest, IngestMetrics
from monitoring_centre.storage import make_engine
from telecare_protocol import Reading, encode
from telecare_protocol.codes import Metric, QualityFlag
from telecare_protocol.topics import topic_for
from tests.support.helpers import free_port
from tests.support.waiting import wait_for

VICTORIA = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[str]:
    if not Path(VICTORIA).exists():
        pytest.skip("victoria-metrics is not installed")
    port = free_port()
    process = subprocess.Popen([VICTORIA, f"-httpListenAddr=127.0.0.1:{port}",
                                f"-storageDataPath={tmp_path / 'vm'}", "-retentionPeriod=100y"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, timeout=20, what="VictoriaMetrics to start")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def _exported(url: str, metric: str) -> list[dict[str, Any]]:
    httpx.get(f"{url}/internal/force_flush").raise_for_status()
    response = httpx.get(f"{url}/api/v1/export", params={"match[]": f'{{__name__="{metric}"}}',
                                                        "start": "2026-01-01T00:00:00Z"})
    response.raise_for_status()
    return [json.loads(line) for line in response.text.splitlines() if line]


def test_readings_are_exported_with_their_flags_and_resume_from_the_cursor(tmp_path: Path, database_url: str,
                                                                          victoria: str) -> None:
    engine = make_engine(database_url)
    schema.upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session, session.begin():
        person = enrol_home(session, name="Ada", address="", hub_id="hub-1",
                            devices=[DeviceRecord("oximeter-1", "oximeter")])
    ingest = Ingest(sessions, IngestMetrics(CollectorRegistry()), clock=lambda: START + timedelta(days=1))

    def reading(minute: int, value: float | None, *flags: QualityFlag) -> Reading:
        at = START + timedelta(minutes=minute)
        return Reading(hub_id="hub-1", device_id="oximeter-1", source_ts=at, hub_ts=at, metric=Metric.SPO2,
                       value=value, unit="%", quality=flags)

    first = [reading(0, 97.0), reading(1, 93.5, QualityFlag.QUESTIONABLE, QualityFlag.LOW_PERFUSION),
             reading(2, None, QualityFlag.SENSOR_OFF)]
    ingest.process([Inbound(topic_for("hub-1", "reading"), encode(r)) for r in first])

    settings = ExportSettings(influx_url=victoria, influx_org="care", influx_bucket="telecare", batch=2)
    cursor = FileCursor(tmp_path / CURSOR_FILE)
    metrics = ExportMetrics(CollectorRegistry())
    exporter = InfluxExport(sessions, settings, cursor, metrics)
    assert exporter.drain() == 2
    assert cursor.get() == 3
    assert metrics.skipped._value.get() == 1
    assert exporter.drain() == 0  # nothing new: nothing sent again
    exporter.stop()

    # A new exporter, as after a restart, carries on from the cursor in the file.
    ingest.process([Inbound(topic_for("hub-1", "reading"), encode(reading(3, 91.0)))])
    again = InfluxExport(sessions, settings, FileCursor(tmp_path / CURSOR_FILE), ExportMetrics(CollectorRegistry()))
    assert again.drain() == 1
    again.stop()

    def series() -> list[dict[str, Any]] | None:
        found = _exported(victoria, "spo2_value")
        return found if sum(len(s["values"]) for s in found) == 3 else None

    found = wait_for(series, timeout=20, what="the points to be queryable")
    points = sorted((t, v, s["metric"]["quality"]) for s in found for t, v in zip(s["timestamps"], s["values"],
                                                                                     strict=True))
    base = int(START.timestamp() * 1000)
    assert points == [(base, 97.0, "ok"), (base + 60_000, 93.5, "low_perfusion|questionable"),
                      (base + 180_000, 91.0, "ok")]
    for s in found:
        assert s["metric"]["person"] == str(person.id)
        assert s["metric"]["device"] == "oximeter-1"
        assert s["metric"]["unit"] == "%"
    engine.dispose()


def test_a_server_that_is_down_does_not_move_the_cursor(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'centre.db'}")
    schema.upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session, session.begin():
        enrol_home(session, name="Ada", address="", hub_id="hub-1", devices=[DeviceRecord("oximeter-1", "oximeter")])
    Ingest(sessions, IngestMetrics(CollectorRegistry())).process([Inbound(topic_for("hub-1", "reading"), encode(
        Reading(hub_id="hub-1", device_id="oximeter-1", source_ts=datetime.now(UTC) - timedelta(seconds=1),
                metric=Metric.SPO2, value=96.0, unit="%")))])
    cursor = FileCursor(tmp_path / CURSOR_FILE)
    exporter = InfluxExport(sessions, ExportSettings(influx_url=f"http://127.0.0.1:{free_port()}"), cursor)
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 - whatever the client raises for a refused connection
        exporter.export_once()
    assert time.monotonic() - started < 30
    assert cursor.get() == 0
    exporter.stop()
    engine.dispose()
