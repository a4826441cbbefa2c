"""The APIs behind the nurse's, the person's and the family's pages: chart series with flags and
bands, the activity pattern against the learned baselines, review tasks and their notes (a FHIR
ClinicalImpression), keyholder requests on the family page. Who sees what: a nurse only her
caseload, a family member only her own requests; every refusal audited."""

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from centre_app.auth import create_user
from monitoring_centre.storage import Alert, AuditEntry, ReviewNote
from tests.support.api_world import PASSWORD, World, api_app, bearer
from tests.support.views_world import FLAGGED_VALUE, Views, add_views


@dataclass(frozen=True)
class Setup:
    client: TestClient
    world: World
    views: Views
    sessions: sessionmaker[Session]


@pytest.fixture
def setup(database_url: str) -> Iterator[Setup]:
    app, engine, world = api_app(database_url)
    sessions: sessionmaker[Session] = app.state.centre.sessions
    views = add_views(sessions, world)
    with sessions() as session, session.begin():
        create_user(session, "cousin", PASSWORD, "family", "A cousin, no keyholder")
    with TestClient(app) as client:
        yield Setup(client, world, views, sessions)
    engine.dispose()


def _refusals(setup: Setup, actor: str) -> list[AuditEntry]:
    with setup.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.actor == actor,
                                                             AuditEntry.action == "refused")))


def test_series_has_clean_buckets_flagged_readings_bands_and_alerts(setup: Setup) -> None:
    ada = setup.world.people["ada"]
    answer = setup.client.get(f"/api/v1/patients/{ada}/series?metric=spo2&hours=720",
                              headers=bearer(setup.client, "nurse"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["unit"] == "%" and body["bucket_minutes"] == 144
    medians = [b["median"] for b in body["buckets"] if b["median"] is not None]
    assert medians and FLAGGED_VALUE not in medians  # a flagged value is never a result
    assert min(medians) == 92.0 and max(medians) == 97.0
    assert body["flagged_total"] >= 29
    assert all(f["value"] == FLAGGED_VALUE and f["flags"] == ["questionable"] for f in body["flagged"])
    bands = {(b["name"], b["range_text"]) for b in body["alert_bands"]}
    assert bands == {("urgent", "≤ 92 %"), ("review today", "93–94 %")}  # oximetry@home, NEWS2 Scale 1
    assert body["news2_table"] == "SpO2 Scale 1"
    first = body["news2_bands"][0]
    assert (first["low"], first["high"], first["score"]) == (0, 91, 3)
    assert {a["id"] for a in body["alerts"]} >= {setup.views.trend_alert, setup.views.missed_alert}
    pulse = setup.client.get(f"/api/v1/patients/{ada}/series?metric=pulse_rate&hours=24",
                             headers=bearer(setup.client, "nurse")).json()
    assert {b["range_text"] for b in pulse["alert_bands"]} == {"≥ 131 /min", "111–130 /min", "≤ 40 /min"}
    uncharted = setup.client.get(f"/api/v1/patients/{ada}/series?metric=perfusion_index",
                                 headers=bearer(setup.client, "nurse"))
    assert uncharted.status_code == 422  # only SpO2 and pulse have bands to draw


def test_a_persons_own_threshold_moves_the_band(setup: Setup) -> None:
    ada = setup.world.people["ada"]
    nurse = bearer(setup.client, "nurse")
    changed = setup.client.put(f"/api/v1/patients/{ada}/rules/spo2_low", headers=nurse,
                               json={"params": {"review_at_or_below": 93}, "reason": "COPD: usual 93-94 %"})
    assert changed.status_code == 200, changed.text
    body = setup.client.get(f"/api/v1/patients/{ada}/series?metric=spo2&hours=24", headers=nurse).json()
    review = next(b for b in body["alert_bands"] if b["name"] == "review today")
    assert review["range_text"] == "93 %" and review["own"] is True


def test_activity_pattern_against_the_learned_baselines(setup: Setup) -> None:
    ada = setup.world.people["ada"]
    answer = setup.client.get(f"/api/v1/patients/{ada}/activity?days=7", headers=bearer(setup.client, "nurse"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["has_bed_sensor"] and body["has_toilet_sensor"] and len(body["days"]) == 7
    days = body["days"]
    earlier = days[:-1]
    assert all(d["first_activity"] == "07:35" and d["first_activity_median"] == "07:35" for d in earlier)
    assert all(d["first_activity_deadline"] == "08:35" and not d["learning_morning"] for d in earlier)
    assert all(d["bedtime"] == "22:30" and d["bedtime_usual"] == "22:30" for d in earlier)
    busy = [d for d in days if d["toilet_visits"] == 3]
    assert len(busy) == 1 and busy[0]["out_of_bed"] == 3 and busy[0]["out_of_bed_minutes"] == 30
    assert busy[0]["toilet_mean"] == 1.0 and busy[0]["out_of_bed_mean"] == 1.0
    after = days[days.index(busy[0]) + 1]
    assert after["toilet_limit"] > after["toilet_mean"] > 1.0  # the busy night entered the baseline


def test_nurse_sees_only_her_caseload_and_refusals_are_audited(setup: Setup) -> None:
    bob = setup.world.people["bob"]
    nurse = bearer(setup.client, "nurse")
    for url in (f"/api/v1/patients/{bob}/series?metric=spo2", f"/api/v1/patients/{bob}/activity",
                f"/api/v1/patients/{bob}/review-notes"):
        assert setup.client.get(url, headers=nurse).status_code == 404
    assert setup.client.post(f"/api/v1/review-tasks/{setup.world.alerts['bob']}/review", headers=nurse,
                             json={"plan": "x"}).status_code == 404
    assert [e.person_id for e in _refusals(setup, "nurse")] == [bob] * 4
    operator = bearer(setup.client, "operator")
    assert setup.client.get(f"/api/v1/patients/{bob}/series?metric=spo2", headers=operator).status_code == 403
    assert setup.client.get("/api/v1/review-tasks", headers=bearer(setup.client, "daughter")).status_code == 403
    assert len(_refusals(setup, "operator")) == 1


def test_review_tasks_and_notes(setup: Setup) -> None:
    nurse = bearer(setup.client, "nurse")
    tasks = setup.client.get("/api/v1/review-tasks", headers=nurse).json()
    assert [(t["alert_id"], t["kind"]) for t in tasks] == [(setup.views.missed_alert, "missed measurement"),
                                                          (setup.views.trend_alert, "trend")]
    trend = next(t for t in tasks if t["kind"] == "trend")
    assert "7-day baseline: mean 96 %, SD 0.8, lower limit 94.2 % (7 days)" in trend["evidence"]
    url = f"/api/v1/review-tasks/{setup.views.trend_alert}/review"
    assert setup.client.post(url, headers=nurse, json={"plan": "   "}).status_code == 422
    written = setup.client.post(url, headers=nurse, json={"plan": "Phoned Ada; GP visit tomorrow"})
    assert written.status_code == 201, written.text
    assert written.json()["record_status"] == "kept"
    assert setup.client.post(url, headers=nurse, json={"plan": "again"}).status_code == 409
    not_a_task = f"/api/v1/review-tasks/{setup.world.alerts['ada']}/review"
    assert setup.client.post(not_a_task, headers=nurse, json={"plan": "x"}).status_code == 409
    left = setup.client.get("/api/v1/review-tasks", headers=nurse).json()
    assert [t["alert_id"] for t in left] == [setup.views.missed_alert]
    notes = setup.client.get(f"/api/v1/patients/{setup.world.people['ada']}/review-notes", headers=nurse).json()
    assert [n["plan"] for n in notes] == ["Phoned Ada; GP visit tomorrow"]
    with setup.sessions() as session:
        note = session.scalars(select(ReviewNote)).one()
        bundle = json.loads(note.record_bundle)
        kinds = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
        assert kinds == ["Patient", "ClinicalImpression"]
        impression = bundle["entry"][1]["resource"]
        assert impression["summary"] == "Reviewed, plan: Phoned Ada; GP visit tomorrow"
        assert impression["problem"][0]["reference"] == f"DetectedIssue/alert-issue-{setup.views.trend_alert}"
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "review_task")).one()
        assert json.loads(entry.detail)["after"] == {"task": "reviewed", "plan": "Phoned Ada; GP visit tomorrow"}
        assert session.get_one(Alert, setup.views.trend_alert).status == "open"  # the alert's state is not ours
    record = setup.client.get(f"/api/v1/patients/{setup.world.people['ada']}/record", headers=nurse).json()
    summaries = [e["resource"].get("summary") for e in record["entry"]
                 if e["resource"]["resourceType"] == "ClinicalImpression"]
    assert summaries == ["Reviewed, plan: Phoned Ada; GP visit tomorrow"]  # the review is in the person's record


def test_keyholder_requests_are_the_accounts_own(setup: Setup) -> None:
    daughter = bearer(setup.client, "daughter")
    cousin = bearer(setup.client, "cousin")
    requests = setup.client.get("/api/v1/keyholder-requests", headers=daughter).json()
    assert [r["notification_id"] for r in requests] == [setup.views.notification]
    assert setup.client.get("/api/v1/keyholder-requests", headers=cousin).json() == []
    url = f"/api/v1/keyholder-requests/{setup.views.notification}"
    assert setup.client.post(f"{url}/accept", headers=cousin).status_code == 404
    assert len(_refusals(setup, "cousin")) == 1
    nurse = bearer(setup.client, "nurse")
    assert setup.client.get("/api/v1/keyholder-requests", headers=nurse).status_code == 403
    declined = setup.client.post(f"{url}/decline", headers=daughter)
    assert declined.status_code == 200 and declined.json()["answer"] == "declined"
    assert setup.client.get("/api/v1/keyholder-requests", headers=daughter).json() == []
    with setup.sessions() as session:
        assert session.get_one(Alert, setup.world.alerts["ada"]).status == "open"  # the escalation goes on


def test_keyholder_accepts_once(setup: Setup) -> None:
    daughter = bearer(setup.client, "daughter")
    url = f"/api/v1/keyholder-requests/{setup.views.notification}/accept"
    accepted = setup.client.post(url, headers=daughter)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["answer"] == "accepted"
    assert setup.client.post(url, headers=daughter).status_code == 409  # a replay: already accepted
    with setup.sessions() as session:
        assert session.get_one(Alert, setup.world.alerts["ada"]).status == "in_progress"
