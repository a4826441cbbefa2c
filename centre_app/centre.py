"""The monitoring centre process: database, MQTT receiver, ingest, API and console."""

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import uvicorn
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from alerting.channels import InternalTargets
from alerting.escalator import AlertingMetrics, AlertingSettings, Escalator
from centre_app import schema
from centre_app.api import health
from centre_app.api.app import create_app
from centre_app.api.deps import CentreState
from centre_app.settings import CentreSettings
from detection.engine import Engine
from monitoring_centre import change_feed, export, kpis
from monitoring_centre.alerts import ACTIVE
from monitoring_centre.detection_queue import FROM_QUEUE, QUEUED, SharedDetection
from monitoring_centre.detection_runner import NO_SIGNAL_READINGS, EngineRunner
from monitoring_centre.ingest import Ingest, IngestMetrics
from monitoring_centre.live import AlertFeed
from monitoring_centre.periodic import PeriodicWorker
from monitoring_centre.profiles import SETTINGS_IGNORED, check_rule_setting
from monitoring_centre.receiver import SESSION_EXPIRY_S, Receiver
from monitoring_centre.retention import RetentionJob
from monitoring_centre.scaip_receiver import ScaipReceiver
from monitoring_centre.storage import WRITE_TURNS, Alert, make_engine
from monitoring_centre.storage_health import RETRY_S, StorageHealth
from monitoring_centre.workers import LeaseKeeper, new_run

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handling. uvicorn would catch SIGTERM, shut
    the web server down, then raise SIGTERM again, killing the process before the receiver
    and the escalator had stopped. Whoever runs the centre decides what a signal means."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.before_shutdown: Callable[[], None] = lambda: None
        """Called on the event loop as the shutdown begins: `Centre` ends the consoles' open event
        streams here, which uvicorn would otherwise wait for and then cancel (a traceback each)."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.before_shutdown()
        await super().shutdown(sockets)


class OpenAlerts(Collector):
    """/metrics: active alerts by priority, counted at each scrape."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("telecare_alerts_active", "Alerts open, acknowledged or in progress, by priority",
                                   labels=["priority"])
        with self.sessions() as session:
            counts = dict(session.execute(select(Alert.priority, func.count()).where(Alert.status.in_(ACTIVE))
                                          .group_by(Alert.priority)).all())
        for priority in range(1, 6):
            family.add_metric([str(priority)], float(counts.get(priority, 0)))
        yield family


def data_dir(settings: CentreSettings) -> Path | None:
    """Where small state files go: the setting, else next to a SQLite database."""
    if settings.data_dir is not None:
        return settings.data_dir
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).parent
    return None


class Centre:
    """One monitoring-centre process: database, receiver, ingest, detection, escalation, HTTP API.

    `settings`: every setting (`CentreSettings`, read from `TELECARE_*`). Building it migrates the
    database to the current schema (Alembic) and wires the parts; nothing runs until `serve()`.

    Threads, and who calls what:
    - the event loop (`serve`, `serve_until_signalled`): uvicorn's HTTP server and the consoles' live
      streams; `stop()` may be called from any thread or a signal handler;
    - the receiver's two paho network threads and its ingest thread (`Receiver`): messages in, one
      transaction per batch, `Ingest.process` → `EngineRunner.observe`, PUBACK after commit;
    - `PeriodicWorker` threads: the detection tick (`detection_tick_s`), retention (hourly by default),
      the InfluxDB export, the audit retry after a storage fault (5 s), and the escalator's three loops;
    - `_alerts_changed` is called by ingest, the tick and the API when alerts change: it tells the
      consoles (`AlertFeed`, thread-safe) and wakes the escalator;
    - with several workers (`TELECARE_WORKER`, PostgreSQL): the lease keeper (`workers.LeaseKeeper`:
      heartbeat, claim, renew, release), the detection queue's reader (`detection_queue.SharedDetection`),
      and the change feed's listener (`change_feed`: the other workers' notices → `_changed_elsewhere`,
      `detection.refresh`, `_changes_missed`).
    On stop the receiver stops first (its persistent sessions kept at the broker), then the timers.
    """

    def __init__(self, settings: CentreSettings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        schema.upgrade(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.registry = CollectorRegistry()
        kpis.observe_answer_times(self.sessions, self.registry)  # answer, accept, resolve histograms
        # the centre's other workers (PostgreSQL NOTIFY; nobody on SQLite): changes made on any worker reach
        # every worker's consoles and detection runner (`_changed_elsewhere`, `_changes_missed`)
        self.changes = change_feed.for_engine(self.engine,
                                              change_feed.worker_name(settings.worker or settings.mqtt_client_id))
        self.changes.watch(self.sessions)
        self.changes.subscribe(change_feed.Subscriber(
            alerts_changed=self._changed_elsewhere, profile_changed=lambda person_id: self.detection.refresh(person_id),
            resync=self._changes_missed))
        self.feed = AlertFeed(others=lambda alert_ids: self.changes.announce(alert_ids=alert_ids))
        # a full disk: reads go on, the consoles and /health say so, audit rows wait in memory
        self.storage = StorageHealth(registry=self.registry, on_change=lambda: self.feed.publish(set()))
        self.storage.watch(self.engine)
        turn = WRITE_TURNS.get(self.engine)
        if turn is not None:  # SQLite: what the centre's writers queued for the write lock (`write_turn`)
            for name, what, read in (
                    ("telecare_sqlite_write_waits", "Write transactions that waited for another's to end", "waited"),
                    ("telecare_sqlite_write_wait_seconds", "Seconds write transactions waited for the write lock",
                     "waited_s"),
                    ("telecare_sqlite_write_turn_timeouts", "Writers that went on without a turn after the busy "
                     "timeout", "timed_out")):
                Gauge(name, what, registry=self.registry).set_function(partial(getattr, turn, read))
        self.storage_retry = PeriodicWorker("storage-retry", lambda: self.storage.retry(self.sessions), RETRY_S,
                                            logger=log)
        self.escalator = Escalator(self.sessions, AlertingSettings(
            public_url=settings.public_url or self.url, worker=settings.worker_client_id,
            internal_targets=InternalTargets.parse(settings.allowed_internal_targets), smtp=settings.smtp,
            notify=settings.notify,
            fhir_base_url=settings.fhir_base_url, timezone=settings.timezone, centre_phone=settings.centre_phone,
            poll_s=settings.alerting_poll_s, allow_test_nhs_numbers=settings.allow_test_nhs_numbers,
        ), AlertingMetrics(self.registry), on_change=self.feed.publish)
        self.registry.register(OpenAlerts(self.sessions))
        self.registry.register(SETTINGS_IGNORED)  # stored settings beyond a floor, ignored at load
        self.registry.register(NO_SIGNAL_READINGS)  # SpO2 0 %, pulse 0: flagged no_signal, never an alarm
        self.detection = EngineRunner(Engine([]), self.sessions, tick_s=settings.detection_tick_s,
                                      timezone=settings.timezone, on_alerts=self._alerts_changed,
                                      backlog=lambda: self.receiver.queue_depth >= settings.ingest_queue_size)
        people = Gauge("telecare_detection_people", "People the detection engine is watching", registry=self.registry)
        people.set_function(lambda: float(len(self.detection.people)))
        # several workers (TELECARE_WORKER): this one detects only the people whose leases it holds
        self.shared: SharedDetection | None = None
        self.leases: LeaseKeeper | None = None
        if settings.worker is not None:
            identity = new_run(settings.worker)
            self.detection.share()
            self.shared = SharedDetection(self.detection, self.sessions, identity,
                                          warm_up_days=settings.detection_warm_up_days, on_alerts=self._alerts_changed)
            self.leases = LeaseKeeper(self.sessions, identity, self.shared, heartbeat_s=settings.worker_heartbeat_s,
                                      lease_s=settings.worker_lease_s)
            self.registry.register(QUEUED)  # stored here, detected by another worker
            self.registry.register(FROM_QUEUE)  # stored by another worker, detected here
        self.ingest = Ingest(self.sessions, IngestMetrics(self.registry), detector=self.shared or self.detection)
        self.receiver = Receiver(
            self.ingest, host=settings.mqtt_host, port=settings.mqtt_port, username=settings.mqtt_username,
            password=settings.mqtt_password.get_secret_value(), client_id=settings.worker_client_id,
            other_brokers=[(host, int(port)) for host, _, port in
                           (entry.rpartition(":") for entry in settings.mqtt_other_brokers)],
            mqtt_v5=settings.mqtt_v5, shared_subscriptions=settings.mqtt_shared_subscriptions,
            session_expiry_s=(settings.worker_session_expiry_s if settings.mqtt_shared_subscriptions
                              else SESSION_EXPIRY_S),
            queue_size=settings.ingest_queue_size, max_batch=settings.ingest_max_batch,
            on_alerts=self._alerts_changed, registry=self.registry,
        )
        # other makers' alarm units (SCAIP over SIP), into the same ingest: off unless configured
        self.scaip = None if settings.scaip is None else ScaipReceiver(
            self.ingest, settings.scaip, on_alerts=self._alerts_changed, registry=self.registry)
        self.retention = RetentionJob(self.sessions, settings.retention)
        self.export = export.build(self.sessions, settings.export, data_dir(settings), self.registry)
        self.app = create_app(CentreState(settings, self.sessions, self.feed, self.registry, self._alerts_changed,
                                          profile_changed=self._profile_changed,
                                          check_rule_setting=check_rule_setting, storage=self.storage))
        health.attach(self.app, health.HealthSources(broker=lambda: self.receiver.broker,
                                                     escalator_last_pass=lambda: self.escalator.last_pass_at))
        self.server = _Server(uvicorn.Config(
            self.app, host=settings.http_host, port=settings.http_port, log_level="warning", lifespan="off",
            timeout_graceful_shutdown=2,  # open console streams must not hold a shutdown up
        ))
        self.server.before_shutdown = self.feed.close

    @property
    def url(self) -> str:
        return f"http://{self.settings.http_host}:{self.settings.http_port}"

    def _profile_changed(self, person_id: int) -> None:
        self.detection.refresh(person_id)
        self.changes.announce(person_ids={person_id})  # the worker that holds the person, if another

    def _changed_elsewhere(self, alert_ids: frozenset[int]) -> None:
        """Another worker changed these alerts: this worker's consoles hear of them, its escalator looks."""
        self.feed.deliver(alert_ids)
        self.escalator.wake()

    def _changes_missed(self) -> None:
        """The other workers' notices may have been missed: consoles refetch, profiles are read again."""
        self.feed.resync()
        self.detection.load()

    def _alerts_changed(self, alert_ids: set[int]) -> None:
        self.feed.publish(alert_ids)
        self.escalator.wake()

    def stop(self) -> None:
        """Ask a running centre to shut down cleanly (thread-safe)."""
        self.server.should_exit = True

    async def serve_until_signalled(self) -> None:
        """`telecare centre`: run until SIGTERM (systemd) or SIGINT (Ctrl-C), then stop cleanly."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        await self.serve()

    async def serve(self) -> None:
        """Run until cancelled or `server.should_exit` is set."""
        self.feed.bind(asyncio.get_running_loop())
        self.changes.start()  # the other workers' changes, heard from now on
        # before the first message: the engine's state from history, then live
        if self.leases is None:
            await asyncio.to_thread(self.detection.load)
            await asyncio.to_thread(self.detection.warm_up, self.settings.detection_warm_up_days)
        else:  # several workers: this worker's people (rendezvous over the live workers), each warmed up
            await asyncio.to_thread(self.leases.start)
        if self.shared is not None:
            self.shared.start()
        self.escalator.start()
        self.receiver.start()
        if self.scaip is not None:
            self.scaip.start()
        self.detection.start()
        self.retention.start()
        self.storage_retry.start()
        if self.export is not None:
            self.export.start()
        try:
            await self.server.serve()
        except SystemExit as stopped:  # uvicorn exits the process when it cannot listen; a centre says why
            raise CentreNotListening(f"the centre cannot listen on {self.settings.http_host}:"
                                     f"{self.settings.http_port} (is the port in use?)") from stopped
        finally:
            if self.scaip is not None:
                await asyncio.to_thread(self.scaip.stop)
            await asyncio.to_thread(self.receiver.stop)
            if self.shared is not None:
                await asyncio.to_thread(self.shared.stop)
            if self.leases is not None:  # a clean stop: the leases go back at once
                await asyncio.to_thread(self.leases.stop)
            await asyncio.to_thread(self.detection.stop)
            await asyncio.to_thread(self.retention.stop)
            await asyncio.to_thread(self.storage_retry.stop)
            if self.export is not None:
                await asyncio.to_thread(self.export.stop)
            await asyncio.to_thread(self.escalator.stop)
            await asyncio.to_thread(self.changes.stop)
            self.engine.dispose()


class CentreNotListening(OSError):
    """The centre's web server could not take its port (another program has it, or no right to it)."""


class CentreThread:
    """A centre on a thread of its own, for tests and benchmarks."""

    def __init__(self, centre: Centre) -> None:
        self.centre = centre
        self._thread = threading.Thread(target=lambda: asyncio.run(centre.serve()), name="centre", daemon=True)

    def __enter__(self) -> Centre:
        self._thread.start()
        if not self.centre.receiver.connected.wait(timeout=20):
            raise RuntimeError("the centre could not connect to the broker")
        for _ in range(200):
            if self.centre.server.started:
                return self.centre
            self._thread.join(timeout=0.05)
        raise RuntimeError("the centre's web server did not start")

    def __exit__(self, *_exc: object) -> None:
        self.centre.server.should_exit = True
        self._thread.join(timeout=30)
