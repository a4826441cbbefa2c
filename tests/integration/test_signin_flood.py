"""Sign-in throttling through the real web server (uvicorn, real sockets), with real Mosquitto and
SQLite: the client address the throttle judges is the socket's, or the one a reverse proxy on the
same host forwards; an attacker elsewhere is slowed, the console on the centre's own network signs
in and a home's press is stored all the while, and every attempt is audited with its address."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from centre_app.centre import Centre, CentreThread
from centre_app.signin_throttle import PAIR_ALLOWANCE
from monitoring_centre.broker import BrokerAccount
from monitoring_centre.storage import AuditEntry
from tests.support.centre import OPERATOR, centre_settings, enrol_test_homes, get_json, press_pendant
from tests.support.waiting import wait_for

ELSEWHERE = "127.0.0.2"
"""Outside the trusted network of these tests (127.0.0.1/32); Linux answers all of 127.0.0.0/8."""


@pytest.fixture
def centre(tmp_path: Path, mosquitto: Any, broker_accounts: dict[str, BrokerAccount]) -> Iterator[Centre]:
    centre = Centre(centre_settings(tmp_path / "centre.db", mosquitto, broker_accounts,
                                    trusted_networks=["127.0.0.1/32"]))
    enrol_test_homes(centre)
    with CentreThread(centre):
        yield centre


def sign_in(centre: Centre, password: str, source: str = "127.0.0.1",
            headers: dict[str, str] | None = None) -> httpx.Response:
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=30) as client:
        return client.post(f"{centre.url}/api/v1/auth/token", headers=headers,
                           data={"username": OPERATOR[0], "password": password})


def guess_until_refused(centre: Centre, source: str = "127.0.0.1",
                        headers: dict[str, str] | None = None) -> tuple[int, httpx.Response]:
    """Wrong passwords, one after another, until one is refused: (how many were checked, the refusal).
    The wait doubles with each failure, so one soon outlasts the time a check takes, however slow."""
    for checked in range(PAIR_ALLOWANCE + 12):
        answer = sign_in(centre, "wrong-guess", source, headers)
        if answer.status_code != 401:
            assert answer.status_code == 429 and "Retry-After" in answer.headers
            return checked, answer
    raise AssertionError("never refused")


def addresses_audited(centre: Centre) -> list[tuple[str, str]]:
    with centre.sessions() as session:
        return [(action, detail) for action, detail in session.execute(
            select(AuditEntry.action, AuditEntry.detail).where(AuditEntry.actor == OPERATOR[0])
            .order_by(AuditEntry.id))]


def test_an_attacker_elsewhere_is_slowed_while_the_console_signs_in_and_a_press_is_stored(
        centre: Centre, mosquitto: Any, broker_accounts: dict[str, BrokerAccount]) -> None:
    checked, _refused = guess_until_refused(centre, ELSEWHERE)
    assert checked > PAIR_ALLOWANCE
    console = sign_in(centre, OPERATOR[1])
    assert console.status_code == 200
    press_pendant(mosquitto, broker_accounts)
    bearer = console.json()["access_token"]
    wait_for(lambda: get_json(centre.url, "/api/v1/alerts?status=active", bearer), what="the press, stored")
    rows = addresses_audited(centre)
    assert rows[:checked] == [("login_failed", f"from {ELSEWHERE}")] * checked
    assert rows[checked][0] == "login_refused" and rows[checked][1].startswith(
        f"from {ELSEWHERE}; too many failed sign-ins, next check in ")
    assert rows[checked + 1] == ("login", "from 127.0.0.1")


def test_behind_a_proxy_on_the_same_host_the_forwarded_address_is_judged(centre: Centre) -> None:
    """A reverse proxy on loopback that sends X-Forwarded-For: the client it names is throttled as
    itself, not trusted as the proxy (uvicorn believes the header from 127.0.0.1 only)."""
    guess_until_refused(centre, headers={"X-Forwarded-For": "203.0.113.9"})
    assert sign_in(centre, OPERATOR[1]).status_code == 200  # the centre's own network, no proxy
    assert ("login_failed", "from 203.0.113.9") in addresses_audited(centre)
