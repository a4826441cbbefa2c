"""The nurse's pages in Chromium: sign in, land on the caseload ordered by risk with its reasons,
open a person, switch 24 h / 7 d / 30 d, see the bands and a flagged reading, write a review note
that closes a task, change a threshold with a reason, add an absence; a team lead assigns a person
to a team. axe-core on every page; screenshots at 1440x900 into docs/console/."""

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from centre_app.auth import create_user
from monitoring_centre.storage import AuditEntry, PlannedAbsence, ReviewNote, RuleSetting, Team, utc_now
from tests.support.accessibility import assert_accessible
from tests.support.api_world import PASSWORD
from tests.support.pages import screenshot, sign_in, views_site


def test_nurse_reviews_charts_and_changes_settings(tmp_path: Path, browser_page: Any) -> None:
    page = browser_page
    page.set_viewport_size({"width": 1440, "height": 900})
    with views_site(tmp_path) as site:
        ada = site.world.people["ada"]
        sign_in(page, site, "nurse", "/nurse")
        row = page.locator(f"#caseload tr[data-person-id='{ada}']")
        row.wait_for()
        assert "Ada" in row.inner_text()
        assert "SpO2 trend alert" in row.inner_text()  # the score's parts, in words
        assert page.locator("#caseload tbody tr").count() == 1  # Bob is not on her caseload
        assert_accessible(page, "caseload")
        screenshot(page, "nurse-caseload")

        row.get_by_role("link", name="Ada").click()
        page.wait_for_url(f"{site.url}/nurse/people/{ada}")
        page.locator("#chart-status", has_text="Showing the last 24 hours").wait_for()
        page.locator("#chart-spo2 canvas").first.wait_for()
        assert "Urgent band ≤ 92 %" in page.locator("#bands-spo2").inner_text()
        assert "NEWS2 bands (SpO2 Scale 1)" in page.locator("#bands-spo2").inner_text()
        screenshot(page, "nurse-person")
        page.get_by_text("The readings as a table").first.click()
        flagged = page.locator("#flagged-spo2")
        assert "flagged: questionable" in flagged.inner_text()
        assert "71" in flagged.inner_text()
        assert "flagged reading" in page.locator("#summary-spo2").inner_text()
        assert page.locator("#table-activity table tbody tr").count() >= 7
        assert_accessible(page, "person page, 24 h")

        page.get_by_role("button", name="7 days").click()
        page.locator("#chart-status", has_text="Showing the last 7 days").wait_for()
        assert page.get_by_role("button", name="7 days").get_attribute("aria-pressed") == "true"
        page.get_by_role("button", name="30 days").click()
        page.locator("#chart-status", has_text="Showing the last 30 days").wait_for()
        assert "30 days" in page.locator("#summary-spo2").inner_text()
        # Over 30 days, the review alerts are marked on the timeline.
        assert "alerts opened" in page.locator("#summary-spo2").inner_text() or "alert opened" in page.locator(
            "#summary-spo2").inner_text()

        # A threshold, with a reason: saved, audited before and after, the bands redrawn.
        page.select_option("#threshold-setting", "spo2_low.review_at_or_below")
        page.fill("#threshold-value", "93")
        page.get_by_role("button", name="Save threshold").click()
        page.locator("#threshold-error", has_text="say why").wait_for()
        page.fill("#threshold-reason", "COPD, usual 93-94 %: GP agreed")
        page.get_by_role("button", name="Save threshold").click()
        page.locator("#threshold-status", has_text="is now 93").wait_for()
        page.locator("#bands-spo2", has_text="the person's own threshold").wait_for()

        # An absence.
        page.fill("#absence-from", "2031-06-03")
        page.fill("#absence-to", "2031-06-10")
        page.fill("#absence-reason", "Hospital, planned hip operation")
        page.get_by_role("button", name="Add absence").click()
        page.locator("#absences", has_text="Hospital, planned hip operation").wait_for()
        assert_accessible(page, "person page after changes")

        # The review tasks: a note closes one.
        page.get_by_role("link", name="Review tasks").first.click()
        page.wait_for_url(f"{site.url}/nurse/tasks")
        task = page.locator(f"li[data-alert-id='{site.views.trend_alert}']")
        assert "7-day baseline" in task.inner_text()
        assert_accessible(page, "review tasks")
        screenshot(page, "nurse-tasks")
        task.get_by_role("button", name="Save review and close task").click()
        page.locator(f"#plan-{site.views.trend_alert}-error", has_text="write the plan").wait_for()
        task.locator("textarea").fill("Phoned Ada: breathless on stairs; GP home visit booked tomorrow")
        task.get_by_role("button", name="Save review and close task").click()
        page.locator("#tasks-status", has_text="The task is closed").wait_for()
        assert page.locator(f"li[data-alert-id='{site.views.trend_alert}']").count() == 0
        page.reload()
        assert page.locator(f"li[data-alert-id='{site.views.trend_alert}']").count() == 0
        assert page.locator(f"li[data-alert-id='{site.views.missed_alert}']").count() == 1

    with site.sessions() as session:
        note = session.scalars(select(ReviewNote)).one()
        assert note.plan.startswith("Phoned Ada") and note.written_by == "nurse"
        assert note.record_status == "kept" and "ClinicalImpression" in note.record_bundle
        setting = session.scalars(select(RuleSetting).where(RuleSetting.person_id == ada)).one()
        assert setting.params["review_at_or_below"] == 93
        change = session.scalars(select(AuditEntry).where(AuditEntry.action == "change_rule_setting")).one()
        assert json.loads(change.detail)["before"] is None and json.loads(change.detail)["after"] == setting.params
        absence = session.scalars(select(PlannedAbsence)).one()
        assert absence.reason == "Hospital, planned hip operation" and absence.created_by == "nurse"
        reviewed = session.scalars(select(AuditEntry).where(AuditEntry.action == "review_task")).one()
        assert json.loads(reviewed.detail)["before"] == {"task": "open"}


def test_nurse_may_not_open_someone_else(tmp_path: Path, browser_page: Any) -> None:
    page = browser_page
    with views_site(tmp_path) as site:
        sign_in(page, site, "nurse", "/nurse")
        response = page.goto(f"{site.url}/nurse/people/{site.world.people['bob']}")
        assert response is not None and response.status == 404
        assert "Page not found" in page.locator("h1").inner_text()
        assert_accessible(page, "refusal")
        with site.sessions() as session:
            refused = session.scalars(select(AuditEntry).where(AuditEntry.action == "refused",
                                                               AuditEntry.actor == "nurse")).all()
            assert [entry.person_id for entry in refused] == [site.world.people["bob"]]


def test_team_lead_assigns_a_person_to_a_team(tmp_path: Path, browser_page: Any) -> None:
    page = browser_page
    page.set_viewport_size({"width": 1440, "height": 900})
    with views_site(tmp_path) as site:
        with site.sessions() as session, session.begin():
            lead = create_user(session, "lead", PASSWORD, "team_lead", "Lena Lead")
            session.flush()
            team = Team(name="North", created_at=utc_now())
            session.add(team)
            session.flush()
            from monitoring_centre.storage import TeamMember
            session.add(TeamMember(team_id=team.id, user_id=lead.id, added_at=utc_now()))
            from monitoring_centre.access import grant
            from monitoring_centre.storage import Person
            grant(session, lead, session.get_one(Person, site.world.people["bob"]), "direct_care")
            team_id = team.id
        sign_in(page, site, "lead", "/nurse")
        page.get_by_role("link", name="Teams and caseloads").click()
        page.wait_for_url(f"{site.url}/nurse/teams")
        assert_accessible(page, "teams")
        page.select_option("#assign-person", str(site.world.people["bob"]))
        page.select_option("#assign-to", f"team:{team_id}")
        page.get_by_role("button", name="Assign").click()
        page.locator(f"#team-{team_id}-people", has_text="Bob").wait_for()
        screenshot(page, "nurse-teams")
        with site.sessions() as session:
            assigned = session.scalars(select(AuditEntry).where(AuditEntry.action == "assign_caseload")).one()
            assert assigned.actor == "lead" and assigned.person_id == site.world.people["bob"]
