"""PeriodicWorker: runs on its named daemon thread, survives a failing run, stops, wakes early.

Every wait here is on an event with a generous timeout; intervals that must not elapse
are an hour long, so a pass never depends on the machine being fast."""

import logging
import threading

import pytest

from monitoring_centre.periodic import PeriodicWorker

HOUR_S = 3600.0
PATIENCE_S = 10.0


class Runs:
    """A callable that counts its calls and sets an event when the `target`-th one starts."""

    def __init__(self, target: int = 1) -> None:
        self.count = 0
        self.target = target
        self.reached = threading.Event()
        self.threads: list[threading.Thread] = []

    def __call__(self) -> None:
        self.count += 1
        self.threads.append(threading.current_thread())
        if self.count >= self.target:
            self.reached.set()


def test_runs_every_interval_on_its_named_daemon_thread() -> None:
    runs = Runs(target=3)
    worker = PeriodicWorker("test-periodic", runs, interval_s=0.01)
    worker.start()
    try:
        assert runs.reached.wait(PATIENCE_S)
        assert worker.running
    finally:
        assert worker.stop(timeout=PATIENCE_S)
    assert {thread.name for thread in runs.threads} == {"test-periodic"}
    assert all(thread.daemon for thread in runs.threads)
    assert threading.current_thread() not in runs.threads


def test_the_first_run_waits_an_interval_unless_asked_to_run_at_start() -> None:
    at_start = Runs()
    later = Runs()
    eager = PeriodicWorker("eager", at_start, interval_s=HOUR_S, run_at_start=True)
    patient = PeriodicWorker("patient", later, interval_s=HOUR_S)
    eager.start()
    patient.start()
    try:
        assert at_start.reached.wait(PATIENCE_S)
    finally:
        assert eager.stop(timeout=PATIENCE_S)
        assert patient.stop(timeout=PATIENCE_S)
    assert later.count == 0


def test_a_failing_run_is_logged_counted_and_the_worker_carries_on(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0
    recovered = threading.Event()
    errors: list[str] = []

    def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database went away")
        recovered.set()

    worker = PeriodicWorker("flaky-worker", flaky, interval_s=0.01,
                            on_error=lambda: errors.append(threading.current_thread().name))
    with caplog.at_level(logging.ERROR, logger="monitoring_centre.periodic"):
        worker.start()
        try:
            assert recovered.wait(PATIENCE_S)
        finally:
            assert worker.stop(timeout=PATIENCE_S)
    assert errors == ["flaky-worker"]
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 1
    assert "flaky-worker" in failures[0].getMessage()
    assert failures[0].exc_info is not None and "database went away" in str(failures[0].exc_info[1])


def test_failures_go_to_the_owners_logger(caplog: pytest.LogCaptureFixture) -> None:
    failed = threading.Event()

    def broken() -> None:
        raise ValueError("nope")

    worker = PeriodicWorker("owned", broken, interval_s=HOUR_S, run_at_start=True, on_error=failed.set,
                            logger=logging.getLogger("monitoring_centre.retention"))
    with caplog.at_level(logging.ERROR, logger="monitoring_centre.retention"):
        worker.start()
        try:
            assert failed.wait(PATIENCE_S)
        finally:
            assert worker.stop(timeout=PATIENCE_S)
    assert [r.name for r in caplog.records if "owned" in r.getMessage()] == ["monitoring_centre.retention"]


def test_stop_ends_a_long_wait_at_once_and_the_thread_ends() -> None:
    runs = Runs()
    worker = PeriodicWorker("sleepy", runs, interval_s=HOUR_S)
    worker.start()
    assert worker.running
    assert worker.stop(timeout=PATIENCE_S)  # would take an hour if the wait were not interrupted
    assert not worker.running
    assert runs.count == 0
    assert worker.stop(timeout=PATIENCE_S)  # a second stop is harmless


def test_stop_lets_the_run_in_progress_finish() -> None:
    inside = threading.Event()
    release = threading.Event()
    finished = threading.Event()

    def slow() -> None:
        inside.set()
        release.wait(PATIENCE_S)
        finished.set()

    worker = PeriodicWorker("slow", slow, interval_s=HOUR_S, run_at_start=True)
    worker.start()
    assert inside.wait(PATIENCE_S)
    worker.request_stop()
    assert not worker.join(timeout=0)  # still in its run
    release.set()
    assert worker.join(timeout=PATIENCE_S)
    assert finished.is_set()


def test_wake_runs_now_rather_than_at_the_end_of_the_interval() -> None:
    runs = Runs()
    worker = PeriodicWorker("wakeful", runs, interval_s=HOUR_S)
    worker.start()
    try:
        worker.wake()
        assert runs.reached.wait(PATIENCE_S)  # an hour early
    finally:
        assert worker.stop(timeout=PATIENCE_S)
    assert runs.count == 1


def test_a_wake_during_a_run_starts_another_run_after_it() -> None:
    first_inside = threading.Event()
    release = threading.Event()
    second = threading.Event()
    calls = 0

    def work() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            first_inside.set()
            release.wait(PATIENCE_S)
        else:
            second.set()

    worker = PeriodicWorker("busy", work, interval_s=HOUR_S, run_at_start=True)
    worker.start()
    try:
        assert first_inside.wait(PATIENCE_S)
        worker.wake()  # while the first run is still going
        release.set()
        assert second.wait(PATIENCE_S)
    finally:
        assert worker.stop(timeout=PATIENCE_S)


def test_stopped_before_start_never_runs_and_starting_twice_is_refused() -> None:
    runs = Runs()
    idle = PeriodicWorker("idle", runs, interval_s=HOUR_S, run_at_start=True)
    assert idle.stop(timeout=PATIENCE_S)
    idle.start()  # too late: it ends without running
    assert idle.join(timeout=PATIENCE_S)

    once = PeriodicWorker("once", runs, interval_s=HOUR_S)
    once.start()
    try:
        with pytest.raises(RuntimeError, match="once"):
            once.start()
    finally:
        assert once.stop(timeout=PATIENCE_S)
    assert runs.count == 0


@pytest.mark.parametrize("interval_s", [0.0, -1.0, float("nan")])
def test_the_interval_must_be_positive(interval_s: float) -> None:
    with pytest.raises(ValueError, match="interval_s"):
        PeriodicWorker("bad", lambda: None, interval_s=interval_s)
