"""`telecare centre` as an administrator starts it: it says what it uses, says loudly that it
cannot reach the broker and keeps trying, and `/health` and `/metrics` tell the same story; once
the broker is there, it connects and `/health` turns 200."""

import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from monitoring_centre.broker import BrokerAccount, Mosquitto, find_mosquitto
from tests.support.helpers import free_port
from tests.support.waiting import wait_for


class Output:
    """A process's merged output, read on a thread so the test can wait for a line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)


@pytest.fixture
def centre_env(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TELECARE_")}
    return env | {"TELECARE_DATABASE_URL": f"sqlite:///{tmp_path / 'centre.db'}",
                  "TELECARE_JWT_SECRET": secrets.token_urlsafe(48), "TELECARE_MQTT_PASSWORD": secrets.token_urlsafe(24),
                  "TELECARE_MQTT_PORT": str(free_port()), "TELECARE_HTTP_PORT": str(free_port())}


@contextmanager
def running_centre(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], Output, str]]:
    """`telecare centre` with `env`: the process, its output, and its base URL; stopped on the way out."""
    process = subprocess.Popen([sys.executable, "-m", "telecare.cli", "centre"], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = Output(process)
    try:
        yield process, output, f"http://127.0.0.1:{env['TELECARE_HTTP_PORT']}"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url)
    except httpx.TransportError:
        return None


def test_without_a_broker_the_centre_says_so_and_is_not_healthy(centre_env: dict[str, str]) -> None:
    broker = f"127.0.0.1:{centre_env['TELECARE_MQTT_PORT']}"
    with running_centre(centre_env) as (_process, output, url):
        wait_for(lambda: "cannot reach the broker" in output.text(), timeout=60,
                 what="the centre to say it cannot reach the broker")
        wait_for(lambda: output.text().count("cannot reach the broker") >= 4, timeout=30,
                 what="the centre to retry, and say so again")
        health = wait_for(lambda: _get(f"{url}/health"), timeout=30, what="the centre's web server")
        metrics = httpx.get(f"{url}/metrics").text
    text = output.text()
    assert f"database sqlite:///{centre_env['TELECARE_DATABASE_URL'].removeprefix('sqlite:///')}" in text
    assert f"broker {broker}: connecting as 'centre'" in text
    assert f"ERROR monitoring_centre.receiver: centre's data session cannot reach the broker at {broker}" in text
    assert centre_env["TELECARE_MQTT_PASSWORD"] not in text
    assert health.status_code == 503
    checks = health.json()["checks"]
    assert checks["broker"]["connected"] is False and checks["broker"]["address"] == broker
    assert checks["database"]["ok"] is True
    assert "telecare_broker_connected 0.0" in metrics


@pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")
def test_the_centre_connects_when_the_broker_comes_and_health_turns_ok(centre_env: dict[str, str],
                                                                      tmp_path: Path) -> None:
    port = int(centre_env["TELECARE_MQTT_PORT"])
    account = BrokerAccount("centre", centre_env["TELECARE_MQTT_PASSWORD"], "centre")
    with running_centre(centre_env) as (_process, output, url):
        wait_for(lambda: "cannot reach the broker" in output.text(), timeout=60, what="the first failed attempt")
        with Mosquitto(tmp_path / "broker", [account], port=port):
            wait_for(lambda: (r := _get(f"{url}/health")) is not None and r.status_code == 200, timeout=30,
                     what="/health to turn 200 once the broker is up")
            metrics = httpx.get(f"{url}/metrics").text
            assert "telecare_broker_connected 1.0" in metrics
            assert "centre's data session connected to the broker" in output.text()
        def failing() -> httpx.Response | None:
            response = _get(f"{url}/health")
            return response if response is not None and response.status_code == 503 else None

        down = wait_for(failing, timeout=30, what="/health to turn 503 once the broker has gone")
        assert down.json()["checks"]["broker"]["connected"] is False
