"""Signing in over the real API: the password is checked with no database transaction open (on
SQLite, the write lock the alarm path needs stays free), attempts are throttled by account and
address with a growing wait, the centre's own network always gets in, and every attempt is
audited. The throttle's clock is moved by hand and the hasher is held by events: no test waits
on time."""

import os
import secrets
import sqlite3
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select

import centre_app.api.auth
import centre_app.auth
from centre_app.auth import PASSWORD_CHECK_NICE, create_user
from centre_app.centre import Centre
from centre_app.settings import CentreSettings
from centre_app.signin_throttle import ACCOUNT_ALLOWANCE, PAIR_ALLOWANCE, SigninThrottle
from monitoring_centre.storage import AuditEntry

PASSWORD = "a-long-test-password-" + secrets.token_hex(4)
ATTACKER = ("203.0.113.9", 40000)
ELSEWHERE = ("198.51.100.4", 40000)
FLOOR = ("10.20.0.7", 40000)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_centre(database_url: str) -> Centre:
    centre = Centre(CentreSettings(database_url=database_url, jwt_secret=secrets.token_urlsafe(48),
                                   mqtt_password=secrets.token_urlsafe(16),
                                   trusted_networks=["127.0.0.0/8", "10.20.0.0/16"]))
    with centre.sessions() as session, session.begin():
        create_user(session, "op-alice", PASSWORD, "operator")
        create_user(session, "op-bob", PASSWORD, "operator")
    return centre


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(autouse=True)
def pauses(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> list[float]:
    """The pauses before refusals: recorded, and the throttle's clock moved on by each, instead of slept."""
    taken: list[float] = []

    async def record(seconds: float) -> None:
        taken.append(seconds)
        clock.now += seconds

    monkeypatch.setattr(centre_app.api.auth, "_sleep", record)
    return taken


@pytest.fixture
def centre(database_url: str, clock: Clock) -> Iterator[Centre]:
    centre = make_centre(database_url)
    centre.app.state.signin_throttle = SigninThrottle(centre.settings.trusted_networks, clock=clock)
    yield centre
    centre.engine.dispose()


def sign_in(centre: Centre, client_address: tuple[str, int], password: str,
            username: str = "op-alice") -> httpx.Response:
    with TestClient(centre.app, client=client_address) as client:
        response: httpx.Response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    return response


def audit_rows(centre: Centre, actor: str = "op-alice") -> list[tuple[str, str]]:
    with centre.sessions() as session:
        return [(row.action, row.detail) for row in session.execute(
            select(AuditEntry.action, AuditEntry.detail).where(AuditEntry.actor == actor).order_by(AuditEntry.id))]


class GatedHasher(PasswordHasher):
    """Argon2 at its cheapest, but each check waits for `release` after setting `checking`."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.checking = threading.Event()
        self.release = threading.Event()

    def _hold(self) -> None:
        self.checking.set()
        assert self.release.wait(30), "the test never released the check"

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self._hold()
        return super().verify(hash, password)

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self._hold()
        return super().hash(password, salt=salt)


@pytest.mark.parametrize(("username", "password", "status"), [
    ("op-alice", PASSWORD, 200),
    ("op-alice", "not-the-password", 401),
    ("nobody", "not-the-password", 401),  # an unknown account is hashed too (same time either way)
])
def test_another_writer_gets_the_sqlite_write_lock_while_a_password_is_checked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, username: str, password: str, status: int) -> None:
    database = tmp_path / "centre.db"
    centre = make_centre(f"sqlite:///{database}")
    hasher = GatedHasher()
    monkeypatch.setattr(centre_app.auth, "_hasher", hasher)
    answer: dict[str, Any] = {}
    signing_in = threading.Thread(target=lambda: answer.update(response=sign_in(centre, ATTACKER, password,
                                                                                 username)))
    signing_in.start()
    try:
        assert hasher.checking.wait(30), "the sign-in never reached its password check"
        # The alarm path's writer, as impatient as can be: no busy timeout, so a held lock fails at once.
        other = sqlite3.connect(database, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("INSERT INTO audit_log (at, actor, action, detail) VALUES ('2024-01-01', 'ingest', "
                          "'stored', '')")
            other.execute("COMMIT")
        finally:
            other.close()
    finally:
        hasher.release.set()
        signing_in.join(30)
        centre.engine.dispose()
    assert answer["response"].status_code == status


class PriorityRecordingHasher(PasswordHasher):
    """Argon2 at its cheapest, noting the CPU priority (nice value) of each check's thread."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.nice: list[int] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.nice.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return super().verify(hash, password)


@pytest.mark.skipif(sys.platform != "linux", reason="a nice value per thread is Linux's")
def test_a_password_is_checked_at_the_lowest_cpu_priority_leaving_the_cpu_to_the_alarm_path(
        centre: Centre, monkeypatch: pytest.MonkeyPatch) -> None:
    hasher = PriorityRecordingHasher()
    monkeypatch.setattr(centre_app.auth, "_hasher", hasher)
    assert sign_in(centre, FLOOR, PASSWORD).status_code == 200
    assert sign_in(centre, FLOOR, "not-the-password").status_code == 401
    assert hasher.nice == [PASSWORD_CHECK_NICE, PASSWORD_CHECK_NICE]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == 0  # nothing else was lowered


def test_an_attacker_waits_longer_after_each_wrong_password_and_is_told_how_long(
        centre: Centre, clock: Clock, pauses: list[float]) -> None:
    for _ in range(PAIR_ALLOWANCE + 1):
        assert sign_in(centre, ATTACKER, "not-the-password").status_code == 401
    waits = []
    for _ in range(4):
        refused = sign_in(centre, ATTACKER, "not-the-password")
        assert refused.status_code == 429
        waits.append(pauses[-1] + int(refused.headers["Retry-After"]))  # the pause, then what is left
        clock.now += int(refused.headers["Retry-After"])
        assert sign_in(centre, ATTACKER, "not-the-password").status_code == 401
    assert waits == [1, 2, 4, 8]


def test_a_refusal_is_answered_after_a_pause_of_at_most_a_second_asleep_not_at_once(
        centre: Centre, clock: Clock, pauses: list[float]) -> None:
    """A script that ignores Retry-After gets one answer a second, not hundreds."""
    for _ in range(PAIR_ALLOWANCE + 1):
        sign_in(centre, ATTACKER, "not-the-password")  # the last asks for a 1 s wait
    assert pauses == []  # checked attempts are answered at once
    first = sign_in(centre, ATTACKER, "not-the-password")
    assert (first.status_code, first.headers["Retry-After"]) == (429, "0")  # the pause was the whole wait
    for wait in (0, 2):
        clock.now += wait
        sign_in(centre, ATTACKER, "not-the-password")  # the last asks for a 4 s wait
    later = sign_in(centre, ATTACKER, "not-the-password")
    assert (later.status_code, later.headers["Retry-After"]) == (429, "3")
    assert pauses == [1.0, 1.0]


def test_a_wait_refuses_even_the_right_password_but_never_for_long(centre: Centre, clock: Clock) -> None:
    for _ in range(PAIR_ALLOWANCE + 1):
        sign_in(centre, ATTACKER, "not-the-password")
    assert sign_in(centre, ATTACKER, PASSWORD).status_code == 429
    clock.now += 1
    assert sign_in(centre, ATTACKER, PASSWORD).status_code == 200


def test_an_attacker_elsewhere_does_not_keep_the_operator_out(centre: Centre, clock: Clock) -> None:
    for _ in range(PAIR_ALLOWANCE + 1):
        sign_in(centre, ATTACKER, "not-the-password")
    assert sign_in(centre, ATTACKER, "not-the-password").status_code == 429
    assert sign_in(centre, FLOOR, PASSWORD).status_code == 200
    assert sign_in(centre, ELSEWHERE, PASSWORD).status_code == 200


def test_the_floor_gets_in_even_when_the_account_is_attacked_from_everywhere(centre: Centre) -> None:
    for n in range(ACCOUNT_ALLOWANCE + 1):
        assert sign_in(centre, (f"203.0.113.{n}", 40000), "not-the-password").status_code == 401
    assert sign_in(centre, ELSEWHERE, PASSWORD).status_code == 429  # the account itself is slowed now
    for _ in range(3):
        assert sign_in(centre, FLOOR, PASSWORD).status_code == 200
    assert sign_in(centre, ("127.0.0.1", 40000), PASSWORD).status_code == 200


def test_the_floor_is_never_throttled_by_its_own_typing(centre: Centre) -> None:
    for _ in range(20):
        assert sign_in(centre, FLOOR, "not-the-password").status_code == 401
    assert sign_in(centre, FLOOR, PASSWORD).status_code == 200


def test_every_attempt_is_audited_with_its_address(centre: Centre, clock: Clock) -> None:
    for _ in range(PAIR_ALLOWANCE + 1):
        sign_in(centre, ATTACKER, "not-the-password")
    for wait in (1, 2):
        clock.now += wait
        sign_in(centre, ATTACKER, "not-the-password")  # the last asks for a 4 s wait
    for _ in range(3):
        assert sign_in(centre, ATTACKER, "not-the-password").status_code == 429  # 3 s of it, paused
    sign_in(centre, FLOOR, "not-the-password")
    clock.now += 1
    sign_in(centre, ATTACKER, "not-the-password")
    sign_in(centre, FLOOR, PASSWORD)
    assert audit_rows(centre) == [
        *[("login_failed", "from 203.0.113.9")] * (PAIR_ALLOWANCE + 3),
        ("login_refused", "from 203.0.113.9; too many failed sign-ins, next check in 4 s"),
        ("login_failed", "from 10.20.0.7"),
        ("login_failed", "from 203.0.113.9; 2 earlier attempts refused (too soon)"),
        ("login", "from 10.20.0.7"),
    ]
