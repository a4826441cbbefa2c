"""A nurse's view of a person's readings: buckets of clean values, flagged readings counted
apart, on SQLite and PostgreSQL, through the API with its access rules."""

import secrets
import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from centre_app.auth import create_user
from centre_app.centre import Centre
from centre_app.settings import CentreSettings
from monitoring_centre import access
from monitoring_centre.enrolment import enrol_home
from monitoring_centre.storage import InboundMessage, Reading, utc_now

PASSWORD = "a-long-test-password-" + secrets.token_hex(4)


@pytest.fixture
def centre(database_url: str) -> Centre:
    return Centre(CentreSettings(database_url=database_url, jwt_secret=secrets.token_urlsafe(48),
                                 mqtt_password=secrets.token_urlsafe(16)))


def add_reading(session: Session, person_id: int, minutes_ago: float, value: float | None,
                quality: list[str], metric: str = "spo2", stamped_ahead: timedelta | None = None) -> None:
    """A stored reading received `minutes_ago`; `stamped_ahead`: by a hub clock that far ahead (clock_suspect)."""
    received = utc_now() - timedelta(minutes=minutes_ago)
    at = received + (stamped_ahead or timedelta(0))
    message_id = str(uuid.uuid4())
    session.add(InboundMessage(id=message_id, type="reading", hub_id="hub-a", device_id="oximeter-1",
                               source_ts=at, hub_ts=at, received_at=received, payload="{}"))
    session.add(Reading(message_id=message_id, person_id=person_id, device_id="oximeter-1", metric=metric,
                        value=value, unit="%", quality=quality, source_ts=at, received_at=received,
                        clock_suspect=stamped_ahead is not None))


def test_buckets_chart_clean_values_and_count_flagged_ones(centre: Centre) -> None:
    with centre.sessions() as session, session.begin():
        ada = enrol_home(session, name="Ada", address="", hub_id="hub-a", devices=[])
        bob = enrol_home(session, name="Bob", address="", hub_id="hub-b", devices=[])
        nurse = create_user(session, "nurse", PASSWORD, "nurse")
        access.grant(session, nurse, ada, "direct_care")
        for minutes_ago, value, quality in [(50, 95, []), (48, 93, []), (46, 97, []),  # one clean bucket
                                            (20, 70, ["questionable"]), (19, None, ["sensor_off"]),
                                            (18, 94, [])]:
            add_reading(session, ada.id, minutes_ago, value, quality)
        add_reading(session, ada.id, 18, 80, [], metric="pulse_rate")
        add_reading(session, ada.id, 60 * 80, 99, [])  # older than the window
        ada_id, bob_id = ada.id, bob.id
    with TestClient(centre.app) as client:
        token = client.post("/api/v1/auth/token", data={"username": "nurse", "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        response = client.get(f"/api/v1/patients/{ada_id}/readings", headers=headers,
                              params={"metric": "spo2", "hours": 2, "bucket_minutes": 30})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["unit"] == "%" and body["bucket_minutes"] == 30
        # Buckets start at now - 2 h: 50-46 min ago falls in the third, 20-18 min ago in the fourth.
        summary = [(b["low"], b["median"], b["high"], b["clean"], b["flagged"]) for b in body["buckets"]]
        assert summary == [(93, 95, 97, 3, 0), (94, 94, 94, 1, 2)]  # the 70 % and the probe-off: counted, not charted
        assert client.get(f"/api/v1/patients/{bob_id}/readings", headers=headers,
                          params={"metric": "spo2"}).status_code == 404  # not on her caseload
        assert client.get(f"/api/v1/patients/{ada_id}/readings", headers=headers,
                          params={"metric": "spo2", "hours": 744, "bucket_minutes": 1}).status_code == 422
        assert client.get(f"/api/v1/patients/{ada_id}/readings", headers=headers,
                          params={"metric": "temperature"}).status_code == 422


def test_a_reading_stamped_by_a_clock_ahead_is_counted_when_received_and_never_charted(centre: Centre) -> None:
    with centre.sessions() as session, session.begin():
        ada = enrol_home(session, name="Ada", address="", hub_id="hub-a", devices=[])
        nurse = create_user(session, "nurse", PASSWORD, "nurse")
        access.grant(session, nurse, ada, "direct_care")
        add_reading(session, ada.id, 50, 95, [])
        add_reading(session, ada.id, 49, 60, [], stamped_ahead=timedelta(hours=1))  # would chart 11 min from now
        ada_id = ada.id
    with TestClient(centre.app) as client:
        token = client.post("/api/v1/auth/token", data={"username": "nurse", "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        body = client.get(f"/api/v1/patients/{ada_id}/readings", headers=headers,
                          params={"metric": "spo2", "hours": 2, "bucket_minutes": 30}).json()
    assert [(b["low"], b["high"], b["clean"], b["flagged"]) for b in body["buckets"]] == [(95, 95, 1, 1)]
