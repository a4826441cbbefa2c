"""Faults found in the field: a person's settings switched off their help button. Over the
real API: a setting that would disable or demote a help press, a pull cord or a fall is
refused with 422 naming the safety floor and its source, nothing is stored, and the next
presses still raise a priority 1 alert that is escalated (hazard log H20). SQLite and PostgreSQL."""

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from alerting.policy import EMERGENCY, policy_for, reaches_operators
from centre_app.auth import create_user
from centre_app.centre import Centre
from centre_app.settings import CentreSettings
from detection.rules import ALARM_FLOOR
from monitoring_centre.access import grant
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.ingest import Inbound
from monitoring_centre.storage import Alert, AuditEntry, RuleSetting
from telecare_protocol import DeviceEvent, DeviceType, EventCode, encode
from telecare_protocol.topics import topic_for

PASSWORD = "a-long-test-password-" + secrets.token_hex(4)
REFUSED: list[tuple[str, dict[str, bool | int]]] = [
    ("pendant_alarm", {"enabled": False}),
    ("pendant_alarm", {"priority": 5}),
    ("pendant_alarm", {"priority": 2}),
    ("fall", {"enabled": False}),
    ("fall", {"priority": 5}),
    ("fall", {"priority": 3}),
]
"""What the field report did (`enabled: false`, `priority: 5`), and a milder demotion."""


@pytest.fixture
def centre(database_url: str) -> Iterator[tuple[Centre, TestClient, int]]:
    centre = Centre(CentreSettings(database_url=database_url, jwt_secret=secrets.token_urlsafe(48),
                                   mqtt_password=secrets.token_urlsafe(16)))
    with centre.sessions() as session, session.begin():
        ada = enrol_home(session, name="Ada", address="1 Test Street", hub_id="hub-a",
                         devices=[DeviceRecord("pendant-a", "pendant"), DeviceRecord("cord-a", "pull_cord")])
        nurse = create_user(session, "nurse", PASSWORD, "nurse", "Nurse")
        grant(session, nurse, ada, "direct_care")
        create_user(session, "admin", PASSWORD, "admin", "Admin")
        ada_id = ada.id
    centre.detection.load()  # as `Centre.serve` does before the first message
    with TestClient(centre.app) as client:
        yield centre, client, ada_id
    centre.engine.dispose()


def login(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def said(body: Any) -> str:
    """Every piece of text in an error body, whatever its shape."""
    if isinstance(body, dict):
        return " ".join(said(value) for value in body.values())
    if isinstance(body, list):
        return " ".join(said(value) for value in body)
    return str(body)


def press(centre: Centre, device: str, kind: DeviceType, code: EventCode, when: datetime) -> None:
    message = DeviceEvent.new(hub_id="hub-a", device_id=device, device_type=kind, code=code, source_ts=when)
    centre.ingest.process([Inbound(topic_for("hub-a", "event"), encode(message))])


@pytest.mark.parametrize("role", ["admin", "nurse"])
def test_settings_that_would_disable_or_demote_an_alarm_are_refused_and_presses_still_alarm(
        centre: tuple[Centre, TestClient, int], role: str) -> None:
    app, api, ada = centre
    told: list[int] = []
    app.app.state.centre.profile_changed = told.append
    who = login(api, role)
    for rule, params in REFUSED:
        response = api.put(f"/api/v1/patients/{ada}/rules/{rule}", headers=who,
                           json={"params": params, "reason": "x"})
        assert response.status_code == 422, (rule, params, response.text)
        text = said(response.json())
        assert f"{rule}.{next(iter(params))}" in text and "safety floor" in text, text
        assert ALARM_FLOOR in text  # the floor's source
    with app.sessions() as session:
        assert session.scalars(select(RuleSetting)).all() == []
        assert session.scalars(select(AuditEntry).where(AuditEntry.action == "change_rule_setting")).all() == []
    assert told == []

    # Setting the floor itself is allowed (and changes nothing).
    kept = api.put(f"/api/v1/patients/{ada}/rules/pendant_alarm", headers=who,
                   json={"params": {"enabled": True, "priority": 1}, "reason": "as it must be"})
    assert kept.status_code == 200, kept.text
    app.detection.refresh(ada)

    # Two presses after the refused changes: one priority 1 alarm and its repeat, on the alarm chain.
    now = datetime.now(UTC) - timedelta(minutes=5)
    press(app, "pendant-a", DeviceType.PERSONAL_TRIGGER, EventCode.MANUAL_ALARM, now)
    press(app, "pendant-a", DeviceType.PERSONAL_TRIGGER, EventCode.MANUAL_ALARM, now + timedelta(seconds=20))
    press(app, "pendant-a", DeviceType.PERSONAL_TRIGGER, EventCode.FALL_DETECTED, now + timedelta(minutes=1))
    with app.sessions() as session:
        alerts = {a.rule: a for a in session.scalars(select(Alert))}
    alarm, fall = alerts["pendant_alarm"], alerts["fall"]
    assert (alarm.priority, alarm.repeat_count, alarm.status) == (1, 1, "open")
    assert fall.priority == 1
    for alert in (alarm, fall):
        chain = policy_for(alert.priority, "monitored", alert.rule)
        assert chain is EMERGENCY and reaches_operators(chain)


def test_an_out_of_range_threshold_is_refused_naming_its_bound(centre: tuple[Centre, TestClient, int]) -> None:
    _app, api, ada = centre
    nurse = login(api, "nurse")
    low = api.put(f"/api/v1/patients/{ada}/rules/spo2_low", headers=nurse,
                  json={"params": {"urgent_at_or_below": 80}, "reason": "x"})
    assert low.status_code == 422
    assert "below its floor 88" in said(low.json()) and "BTS" in said(low.json())
    high = api.put(f"/api/v1/patients/{ada}/rules/pulse_high", headers=nurse,
                   json={"params": {"urgent_at_or_above": 150}, "reason": "x"})
    assert high.status_code == 422 and "above its ceiling 131" in said(high.json())
    fine = api.put(f"/api/v1/patients/{ada}/rules/spo2_low", headers=nurse,
                   json={"params": {"urgent_at_or_below": 90}, "reason": "clinician's instruction"})
    assert fine.status_code == 200, fine.text
