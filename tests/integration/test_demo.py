"""`telecare demo --duration N`: starts, raises the scripted alarms, shows them at the API, exits 0."""

import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerting.channels import Message, SmtpSettings, send
from monitoring_centre.broker import find_mosquitto
from monitoring_centre.storage import Alert, make_engine
from telecare.demo_mail import start_outbox
from tests.support.helpers import free_port
from tests.support.waiting import wait_for


@dataclass
class Demo:
    process: subprocess.Popen[str]
    url: str
    """The console URL it printed, without the trailing slash."""
    credentials: dict[str, Any]
    bearer: str
    lines: list[str]
    """Everything it printed so far, read by a thread of its own (`communicate` after `readline`
    would skip what the text buffer already holds)."""
    reader: threading.Thread

    def finish(self, timeout: float) -> str:
        """Wait for the demo to end by itself; everything it printed."""
        self.process.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return "".join(self.lines)


@contextmanager
def running_demo(tmp_path: Path, *args: str) -> Iterator[Demo]:
    """`telecare demo` in a subprocess, once its API answers; killed on the way out if still running."""
    port = free_port()
    data_dir = tmp_path / "demo"
    process = subprocess.Popen([sys.executable, "-m", "telecare.cli", "demo", "--port", str(port),
                                "--data-dir", str(data_dir), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in first_line, first_line
        lines = [first_line]
        stdout = process.stdout
        reader = threading.Thread(target=lambda: lines.extend(stdout), daemon=True)
        reader.start()
        credentials_file = data_dir / "demo-credentials.json"
        assert stat.S_IMODE(os.stat(credentials_file).st_mode) == 0o600
        credentials = json.loads(credentials_file.read_text())
        url = f"http://127.0.0.1:{port}"
        bearer = wait_for(lambda: _token(url, credentials), timeout=20, what="the centre's API")
        yield Demo(process, url, credentials, bearer, lines, reader)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def run_demo(tmp_path: Path, broker: str) -> None:
    with running_demo(tmp_path, "--duration", "20", "--broker", broker) as demo:
        assert set(demo.credentials) == {"username", "password", "accounts"} and len(demo.credentials["password"]) >= 16
        accounts = demo.credentials["accounts"]
        assert set(accounts) == {"admin", "operator", "nurse", "team_lead", "family", "person"}  # one per role
        for role, account in accounts.items():  # each can sign in, and sees what its role may see
            bearer = _token(demo.url, account)
            assert bearer, role
            seen = httpx.get(f"{demo.url}/api/v1/patients", headers={"Authorization": f"Bearer {bearer}"})
            assert seen.status_code == 200, (role, seen.text)
            assert [p["name"] for p in seen.json()] == ["Margaret Hughes"], role

        def scripted_alarms() -> set[str] | None:
            alerts = httpx.get(f"{demo.url}/api/v1/alerts", headers={"Authorization": f"Bearer {demo.bearer}"}).json()
            rules = {alert["rule"] for alert in alerts}
            return rules if {"pendant_alarm", "fall"} <= rules else None

        rules = wait_for(scripted_alarms, timeout=20, what="the scripted pendant alarm and fall")
        assert "hub_offline" not in rules  # the hub is connected while the demo runs
        _check_the_seeded_history(demo)
        output = demo.finish(timeout=60)
    assert demo.process.returncode == 0, output
    assert "Help button pressed x1" in output and "Fall detected" in output
    assert "Traceback" not in output
    # The closing summary: what was raised, what was waiting at the stop, the keyholder mail, how to look again.
    summary = output[output.index("Alerts in the centre:"):]
    [live] = [line for line in summary.splitlines() if "raised while the demo ran:" in line]
    assert "Help button pressed x1" in live and re.search(r"Fall detected[^;]* x1", live), live  # not one every 30 s
    assert "from Margaret's 30 days of history: " in summary and "below the person's 7-day baseline" in summary
    assert "still open at the stop: 4" in summary, summary
    assert "calls never answered (no operator acknowledged them): 2" in summary
    assert "review tasks waiting for the nurse: 2" in summary
    assert "keyholder messages sent: 0" in summary  # 20 s: the keyholder's turn comes after 3 minutes
    assert "mail to community.nurses@demo.invalid: " in output  # the review tasks reach the nursing team
    assert "--keep-data" in summary
    assert "hub_offline" not in summary and "Hub offline" not in summary  # the stop itself is left out


def _check_the_seeded_history(demo: Demo) -> None:
    """Margaret's 30 days went through the centre before the live day: her readings over the month
    reach the API, and the SpO2 decline of her last days is a review task for her nurse at the start."""
    nurse = _token(demo.url, demo.credentials["accounts"]["nurse"])
    headers = {"Authorization": f"Bearer {nurse}"}
    [margaret] = httpx.get(f"{demo.url}/api/v1/patients", headers=headers).json()
    month = httpx.get(f"{demo.url}/api/v1/patients/{margaret['id']}/readings", headers=headers,
                      params={"metric": "spo2", "hours": 31 * 24, "bucket_minutes": 24 * 60}).json()
    days = [bucket for bucket in month["buckets"] if bucket["clean"]]
    assert len(days) >= 30, month  # 30 days of history and the live day
    assert sum(bucket["clean"] for bucket in days) >= 30 * 3  # spot checks every day
    tasks = httpx.get(f"{demo.url}/api/v1/review-tasks", headers=headers).json()
    assert any(task["kind"] == "trend" and task["rule"].startswith("spo2_trend") for task in tasks), tasks


def _token(base: str, credentials: dict[str, Any]) -> str | None:
    try:
        response = httpx.post(f"{base}/api/v1/auth/token", data=credentials)
    except httpx.TransportError:
        return None
    return str(response.json()["access_token"]) if response.status_code == 200 else None


@pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")
def test_demo_with_mosquitto(tmp_path: Path) -> None:
    run_demo(tmp_path, "mosquitto")


def test_demo_with_the_embedded_broker(tmp_path: Path) -> None:
    run_demo(tmp_path, "embedded")


def test_the_demo_outbox_keeps_each_mail_and_shows_its_accept_link(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    outbox = start_outbox(tmp_path / "outbox")
    try:
        smtp = SmtpSettings(host=outbox.hostname, port=outbox.port, starttls=False, mail_from="centre@demo.invalid")
        message = Message(subject="Help button pressed: Margaret Hughes", body="Alert 1.", priority=1,
                          reference="alert-1/cycle-0/step-2/responder-2/contact-0",
                          links={"accept": "http://127.0.0.1:8080/accept/abc"})
        delivery = send("mailto:susan@demo.invalid", message, smtp)
        assert delivery.ok, delivery.detail
        [kept] = list((tmp_path / "outbox").glob("*.eml"))
        assert b"Help button pressed: Margaret Hughes" in kept.read_bytes()
        assert capsys.readouterr().out == ""  # held: the demo's first lines say where to sign in
        outbox.handler.show()
        held = capsys.readouterr().out
        assert send("mailto:bob@demo.invalid", message, smtp).ok
        after = capsys.readouterr().out
    finally:
        outbox.stop()
    assert "mail to susan@demo.invalid: [EMERGENCY] Help button pressed: Margaret Hughes" in held
    assert "accept: http://127.0.0.1:8080/accept/abc" in held
    assert "mail to bob@demo.invalid: [EMERGENCY] Help button pressed: Margaret Hughes" in after


@pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")
def test_ctrl_c_stops_the_demo_cleanly(tmp_path: Path) -> None:
    with running_demo(tmp_path) as demo:
        demo.process.send_signal(signal.SIGINT)
        output = demo.finish(timeout=30)
    assert demo.process.returncode == 0, output
    assert "Alerts in the centre:" in output and "Traceback" not in output
    assert not _listening(int(demo.url.rsplit(":", 1)[1]))  # everything it started has stopped


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")
def test_the_demo_shows_the_scripted_alarms_in_the_browser(tmp_path: Path, browser_page: Any) -> None:
    with running_demo(tmp_path, "--duration", "30") as demo:
        page = browser_page
        page.goto(f"{demo.url}/")
        page.fill("input[name=username]", demo.credentials["username"])
        page.fill("input[name=password]", demo.credentials["password"])
        page.click("button[type=submit]")
        page.wait_for_url(f"{demo.url}/operator", timeout=20_000)  # the operator's alarm queue
        for rule in ("pendant_alarm", "fall"):  # one person's press and fall: one call, two alarms
            page.locator(f"#queue tbody tr[data-rules~={rule}]").wait_for(timeout=20_000)
        assert "Margaret Hughes" in page.locator("#queue tbody").inner_text()
        output = demo.finish(timeout=60)
    assert demo.process.returncode == 0, output


def _alerts(data_dir: Path) -> list[tuple[str, datetime, int]]:
    """(rule, opened_at, repeat_count) of every alert in a demo's database."""
    engine = make_engine(f"sqlite:///{data_dir / 'centre.db'}")
    try:
        with Session(engine) as session:
            return [(a.rule, a.opened_at, a.repeat_count) for a in session.scalars(select(Alert))]
    finally:
        engine.dispose()


def _run_until_the_pendant_alarm(tmp_path: Path, *args: str) -> str:
    with running_demo(tmp_path, "--duration", "15", *args) as demo:
        def pressed() -> bool:
            alerts = httpx.get(f"{demo.url}/api/v1/alerts", headers={"Authorization": f"Bearer {demo.bearer}"})
            return any(alert["rule"] == "pendant_alarm" for alert in alerts.json())

        wait_for(pressed, timeout=30, what="the scripted pendant alarm")
        output = demo.finish(timeout=60)
    assert demo.process.returncode == 0, output
    return output


def test_each_run_starts_afresh_unless_told_to_keep_its_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    first_started = datetime.now(UTC)
    output = _run_until_the_pendant_alarm(tmp_path)
    assert "Margaret's last 30 days" in output  # seeded on a fresh start
    (data_dir / "notes.txt").write_text("not the demo's")
    second_started = datetime.now(UTC)
    output = _run_until_the_pendant_alarm(tmp_path)
    assert "a fresh start" in output and "Margaret's last 30 days" in output
    alerts = _alerts(data_dir)
    assert not [a for a in alerts if first_started <= a[1] < second_started], alerts  # none left from run 1
    history = [a for a in alerts if a[1] < first_started]  # the seeded days' alerts, raised before either run
    assert [rule for rule, _, _ in history if rule.startswith("spo2_trend")], alerts
    assert [repeats for rule, _, repeats in alerts if rule == "pendant_alarm"] == [0]
    assert (data_dir / "notes.txt").read_text() == "not the demo's"  # only the demo's own files go

    third_started = datetime.now(UTC)
    output = _run_until_the_pendant_alarm(tmp_path, "--keep-data")
    assert "Margaret's last 30 days" not in output  # her history is there already: not played twice
    kept = _alerts(data_dir)
    assert any(second_started <= opened < third_started for _, opened, _ in kept)  # run 2's alerts are still there
    assert sorted(a for a in kept if a[1] < first_started) == sorted(history)


@pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")
def test_ctrl_c_with_a_console_open_stops_cleanly(tmp_path: Path) -> None:
    with running_demo(tmp_path) as demo:
        opened, ended = threading.Event(), threading.Event()

        def console() -> None:  # the console's live stream of alert changes, as the browser holds it
            with httpx.stream("GET", f"{demo.url}/api/v1/alerts/stream", timeout=None,
                              headers={"Authorization": f"Bearer {demo.bearer}"}) as stream:
                for _chunk in stream.iter_text():
                    opened.set()
            ended.set()

        threading.Thread(target=console, daemon=True).start()
        assert opened.wait(20), "the console's stream did not open"
        demo.process.send_signal(signal.SIGINT)
        output = demo.finish(timeout=30)
    assert demo.process.returncode == 0, output
    assert "Traceback" not in output and "CancelledError" not in output, output
    assert ended.wait(10), "the server did not end the console's stream"
