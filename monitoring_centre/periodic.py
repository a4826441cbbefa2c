"""A job run again and again on a thread of its own: the centre's background workers.

The retention job (`retention.py`), the export of readings (`export.py`), the detection
engine's tick (`detection_runner.py`) and the responders' pipeline (`alerting/escalator.py`)
each run one callable every so many seconds, until the centre stops. `PeriodicWorker` is
that loop, once:

- `start()` (any thread, once) starts a named daemon thread; `stop(timeout)` (any thread)
  ends the wait at once, lets a run in progress finish and joins the thread for at most
  `timeout` seconds. `request_stop()` and `join(timeout)` are the two halves, for an owner
  that stops several workers and should not wait for one before asking the next.
- The worker's thread is the only one that calls `work`: runs never overlap.
- `wake()` (any thread) starts the next run now instead of at the end of the interval; a
  wake during a run starts another run as soon as that one returns.
- A run that raises is logged (with the worker's name) and reported to `on_error`, and the
  worker carries on: the next run is the retry. Nothing a run raises ends the thread.
"""

import logging
import threading
from collections.abc import Callable

_log = logging.getLogger(__name__)


class PeriodicWorker:
    """Runs `work` every `interval_s` seconds on a daemon thread named `name`.

    `interval_s` (seconds, > 0) is the wait between the end of one run and the start of the
    next, so a slow run delays the next rather than piling runs up. With `run_at_start` the
    first run is as soon as the thread starts; without it, one interval later.

    `on_error`, if given, is called on the worker's thread after a failed run has been
    logged (e.g. to count failures); it should not raise. `logger` is where failures are
    logged (the owner's module logger, so a log line says which part of the centre failed).

    Raises `ValueError` if `interval_s` is not positive.
    """

    def __init__(self, name: str, work: Callable[[], object], interval_s: float, *, run_at_start: bool = False,
                 on_error: Callable[[], None] | None = None, logger: logging.Logger | None = None) -> None:
        if not interval_s > 0:
            raise ValueError(f"{name}: interval_s must be positive, got {interval_s!r}")
        self.name = name
        self.work = work
        self.interval_s = interval_s
        self.run_at_start = run_at_start
        self.on_error = on_error
        self.log = logger or _log
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True from `start()` until the thread has ended."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread. Raises `RuntimeError` if called twice."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} has already been started")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Run now rather than at the end of the interval (thread-safe; no effect once stopping)."""
        self._wake.set()

    def request_stop(self) -> None:
        """Ask the thread to end after the run in progress, if any; returns at once (thread-safe)."""
        self._stopping.set()
        self._wake.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait at most `timeout` seconds (None: for ever) for the thread to end.
        Returns True if it has ended or was never started."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def stop(self, timeout: float | None = 30.0) -> bool:
        """`request_stop()`, then `join(timeout)`: True if the thread has ended. Safe before `start()`
        and more than once; a worker stopped before it started never runs."""
        self.request_stop()
        return self.join(timeout)

    def _run(self) -> None:
        if self.run_at_start and not self._stopping.is_set():
            self._run_once()
        while True:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stopping.is_set():
                return
            self._run_once()

    def _run_once(self) -> None:
        try:
            self.work()
        except Exception:  # the next run is the retry; the thread must not die
            self.log.exception("%s failed; running again in %g s", self.name, self.interval_s)
            if self.on_error is not None:
                try:
                    self.on_error()
                except Exception:
                    self.log.exception("%s: on_error failed", self.name)
