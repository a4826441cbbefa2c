"""The monitoring centre process: database, MQTT receiver, ingest, API and console."""

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

import uvicorn
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import sessionmaker

from alerting.escalator import AlertingMetrics, AlertingSettings, Escalator
from monitoring_centre import schema
from monitoring_centre.api.app import create_app
from monitoring_centre.api.deps import CentreState
from monitoring_centre.ingest import Ingest, IngestMetrics
from monitoring_centre.live import AlertFeed
from monitoring_centre.receiver import Receiver
from monitoring_centre.settings import CentreSettings
from monitoring_centre.storage import make_engine

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handling. uvicorn would catch SIGTERM, shut
    the web server down, then raise SIGTERM again, killing the process before the receiver
    and the escalator had stopped. Whoever runs the centre decides what a signal means."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Centre:
    def __init__(self, settings: CentreSettings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        schema.upgrade(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.registry = CollectorRegistry()
        self.feed = AlertFeed()
        self.escalator = Escalator(self.sessions, AlertingSettings(
            secret=settings.jwt_secret.get_secret_value(), public_url=settings.public_url or self.url,
            smtp=settings.smtp, fhir_base_url=settings.fhir_base_url, timezone=settings.timezone,
            poll_s=settings.alerting_poll_s,
        ), AlertingMetrics(self.registry), on_change=self.feed.publish)
        self.ingest = Ingest(self.sessions, IngestMetrics(self.registry))
        self.receiver = Receiver(
            self.ingest, host=settings.mqtt_host, port=settings.mqtt_port, username=settings.mqtt_username,
            password=settings.mqtt_password.get_secret_value(), client_id=settings.mqtt_client_id,
            mqtt_v5=settings.mqtt_v5, queue_size=settings.ingest_queue_size, on_alerts=self._alerts_changed,
        )
        self.app = create_app(CentreState(settings, self.sessions, self.feed, self.registry, self._alerts_changed))
        self.server = _Server(uvicorn.Config(
            self.app, host=settings.http_host, port=settings.http_port, log_level="warning", lifespan="off",
            timeout_graceful_shutdown=2,  # open console streams must not hold a shutdown up
        ))

    @property
    def url(self) -> str:
        return f"http://{self.settings.http_host}:{self.settings.http_port}"

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
        self.escalator.start()
        self.receiver.start()
        try:
            await self.server.serve()
        finally:
            await asyncio.to_thread(self.receiver.stop)
            await asyncio.to_thread(self.escalator.stop)
            self.engine.dispose()


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
