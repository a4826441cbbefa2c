"""Processes and exact counting for the end-to-end acknowledgement tests: a real centre process
(`telecare centre`'s code, settings in `TELECARE_*` variables), a real hub agent process
(`tests.support.hub_e2e_process`), and what the hub's journal and the centre's database say."""

import json
import os
import secrets
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from monitoring_centre.storage import Alert, Event, InboundMessage
from tests.support.helpers import free_port
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
RUN_CENTRE = ("import asyncio\n"
              "from centre_app.centre import Centre\n"
              "from centre_app.settings import CentreSettings\n"
              "asyncio.run(Centre(CentreSettings()).serve_until_signalled())\n")
"""What `telecare centre` runs (telecare/admin_cli.py), without the rest of the command line."""
ACTIVE = ("open", "acknowledged", "in_progress")


class CentreProcess:
    """The centre as its own process; `terminate` is the SIGTERM systemd sends, `kill` a crash."""

    def __init__(self, tmp: Path, database_url: str, broker_host: str, broker_port: int, password: str) -> None:
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("TELECARE_")}
        self.env |= {"TELECARE_DATABASE_URL": database_url, "TELECARE_JWT_SECRET": secrets.token_urlsafe(48),
                     "TELECARE_MQTT_HOST": broker_host, "TELECARE_MQTT_PORT": str(broker_port),
                     "TELECARE_MQTT_PASSWORD": password, "TELECARE_HTTP_PORT": str(free_port()),
                     "TELECARE_DATA_DIR": str(tmp)}
        self.log_path = tmp / "centre.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 60) -> None:
        """Start it and wait until it serves and both its broker sessions are connected."""
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen([sys.executable, "-c", RUN_CENTRE], env=self.env, cwd=REPO,
                                        stdout=self._log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{self.env['TELECARE_HTTP_PORT']}/metrics"

        def up() -> bool:
            assert self.running, self.log_path.read_text()[-3000:]
            try:
                text = httpx.get(url, timeout=1).text
            except httpx.HTTPError:
                return False
            return "telecare_ingest" in text and ("telecare_broker_connected" not in text
                                                  or "telecare_broker_connected 1.0" in text)

        wait_for(up, timeout=timeout, what="the centre to start")

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, as systemd stops `telecare centre`; returns its exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self._close_log()

    def stop(self) -> None:
        if self.running:
            assert self.process is not None
            self.process.kill()
            self.process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class HubProcess:
    """The hub agent process, steered through its control directory."""

    def __init__(self, tmp: Path, hub_id: str, host: str, port: int, password: str, *, burst: int = 40) -> None:
        directory = tmp / "hub"
        directory.mkdir()
        self.control = directory / "control"
        self.control.mkdir()
        self.journal_path = directory / "journal.jsonl"
        self.journal_path.touch()
        self.log_path = directory / "hub.log"
        self.outbox = directory / "outbox.db"
        self.argv = [sys.executable, "-m", "tests.support.hub_e2e_process", "--hub-id", hub_id, "--host", host,
                     "--port", str(port), "--outbox", str(self.outbox), "--journal", str(self.journal_path),
                     "--control", str(self.control), "--burst", str(burst)]
        self.env = {**os.environ, "HUB_PASSWORD": password}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdout=log, stderr=log)

    def tell(self, command: str) -> None:
        (self.control / command).touch()

    def finish(self, timeout: float = 120) -> int:
        """Stop the stream; the hub exits once the centre has acknowledged everything (0) or gives up (1)."""
        assert self.process is not None
        self.tell("stop")
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def journal(self) -> "HubJournal":
        return HubJournal.read(self.journal_path)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


@dataclass
class HubJournal:
    """What the hub committed, what the centre acknowledged to it, and what it told the person."""

    committed: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    """Message id -> (type, event code)."""
    committed_twice: list[str] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    notices: list[tuple[str, str]] = field(default_factory=list)
    """(signal, alarm id) in the order the hub signalled them."""
    bursts: list[list[str]] = field(default_factory=list)
    """Per burst, the ids committed from its start until the broker had PUBACKed it all."""
    done: dict[str, object] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> "HubJournal":
        journal = cls()
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if "committed" in record:
                if record["committed"] in journal.committed:
                    journal.committed_twice.append(record["committed"])
                journal.committed[record["committed"]] = (record["type"], record["code"])
            elif "acked" in record:
                journal.acked += record["acked"]
                journal.refused += [tuple(r) for r in record["refused"]]
            elif "notice" in record:
                journal.notices.append((record["notice"], record["id"]))
            elif "burst_published" in record:
                journal.bursts.append(record["ids"])
            elif "done" in record:
                journal.done = record
        return journal

    def of_code(self, code: str) -> set[str]:
        return {message_id for message_id, (_type, c) in self.committed.items() if c == code}

    @property
    def presses(self) -> set[str]:
        return self.of_code("manual_alarm")


def stored_ids(sessions: sessionmaker[Session], hub_id: str) -> Counter[str]:
    """Every message id the centre stored for the hub, with how many rows each has (a key is unique)."""
    with sessions() as session:
        return Counter(session.scalars(select(InboundMessage.id).where(InboundMessage.hub_id == hub_id)))


def assert_every_message_stored_once_and_alarmed_once(journal: HubJournal, sessions: sessionmaker[Session],
                                                      hub_id: str, person_id: int) -> None:
    """The exact count: every committed message acknowledged once and stored once, nothing refused,
    one "help is coming" per press, and the presses made one alert with every later press a repeat.

    Heartbeats are the one exception the outbox makes on purpose: one not (or no longer) on its way when
    a newer one is committed is replaced by it (only the newest is worth sending), so it may never be
    acknowledged, or be stored from an earlier copy after the hub forgot it."""
    assert journal.done.get("done") is True, journal.done
    assert journal.committed_twice == []
    committed = set(journal.committed)
    acked = set(journal.acked)
    must_arrive = {message_id for message_id, (kind, _code) in journal.committed.items() if kind != "heartbeat"}
    assert len(journal.acked) == len(acked), "a message was reported acknowledged twice"
    assert must_arrive <= acked <= committed, (f"{len(must_arrive - acked)} committed, never acked; "
                                               f"{len(acked - committed)} acked, never committed")
    assert journal.refused == []
    stored = stored_ids(sessions, hub_id)
    assert acked <= set(stored) <= committed, (f"{len(acked - set(stored))} acknowledged but not stored; "
                                               f"{len(set(stored) - committed)} stored but never committed")
    assert set(stored) & must_arrive == must_arrive
    assert all(n == 1 for n in stored.values())
    events = {message_id for message_id, (kind, _code) in journal.committed.items() if kind == "event"}
    with sessions() as session:
        event_rows = Counter(session.scalars(select(Event.message_id).where(Event.hub_id == hub_id)))
        pendant = list(session.scalars(select(Alert).where(Alert.person_id == person_id,
                                                           Alert.rule == "pendant_alarm")))
        conditions = list(session.execute(select(Alert.rule, Alert.subject, func.count()).where(
            Alert.status.in_(ACTIVE)).group_by(Alert.rule, Alert.subject)))
    assert set(event_rows) == events and all(n == 1 for n in event_rows.values())
    presses = journal.presses
    received = [alarm_id for signal_name, alarm_id in journal.notices if signal_name == "received"]
    assert sorted(received) == sorted(presses), "each press is confirmed to the person exactly once"
    [alert] = pendant
    assert alert.repeat_count == len(presses) - 1, "a press counted twice, or not at all"
    assert all(n == 1 for _rule, _subject, n in conditions), conditions
