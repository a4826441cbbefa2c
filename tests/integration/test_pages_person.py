"""The person's own page in Chromium at a phone's size (390x844): sign in, land on "My record";
readings and alerts in words, no sideways scrolling, no operator controls; give a family member
access and see it take effect for the family account, then withdraw it and see that too; who
looked, in words; add an absence. axe-core on every page; screenshots into docs/console/."""

from pathlib import Path
from typing import Any

from sqlalchemy import select

from monitoring_centre.storage import AuditEntry, PlannedAbsence
from tests.support.accessibility import assert_accessible
from tests.support.pages import screenshot, sign_in, views_site

PHONE = {"width": 390, "height": 844}


def page_width(page: Any) -> int:
    """The document's scroll width (Playwright's evaluate runs over the DevTools protocol, which the
    page's Content-Security-Policy does not govern)."""
    width: int = page.evaluate("document.documentElement.scrollWidth")
    return width


def test_person_sees_their_record_gives_and_withdraws_access(tmp_path: Path, browser_page: Any) -> None:
    page = browser_page
    page.set_viewport_size(PHONE)
    with views_site(tmp_path) as site:
        ada = site.world.people["ada"]
        # The nurse looks at Ada's readings first, so the page has someone to name.
        sign_in(page, site, "nurse", "/nurse")
        page.goto(f"{site.url}/nurse/people/{ada}")
        page.locator("#chart-status", has_text="Showing").wait_for()
        page.context.clear_cookies()

        sign_in(page, site, "ada", "/me")
        readings = page.locator("#readings")
        assert "Your oxygen level" in readings.inner_text()
        assert "which is" in readings.inner_text()
        assert "Over the last 7 days it was between" in readings.inner_text()
        assert "Help button pressed" in page.locator("#alerts").inner_text()
        assert "nurse looked at your readings" in page.locator("#looked").inner_text().lower()
        assert page.get_by_role("button", name="Acknowledge").count() == 0  # no operator controls
        assert page.locator("a[href^='/operator'], a[href^='/nurse']").count() == 0
        assert page_width(page) <= PHONE["width"]
        assert_accessible(page, "my record")
        screenshot(page, "person-me")

        # Give the daughter access: she sees Ada at once.
        page.fill("#give-username", "daughter")
        page.get_by_role("button", name="Let them see my record").click()
        page.get_by_role("button", name="Stop Ada's daughter seeing my record").wait_for()
        assert page_width(page) <= PHONE["width"]
        daughter_page = page.context.browser.new_page(viewport=PHONE)
        sign_in(daughter_page, site, "daughter", "/family")
        assert daughter_page.locator(f"section[data-person-id='{ada}']").count() == 1
        assert "Ada's oxygen level" in daughter_page.locator(f"section[data-person-id='{ada}']").inner_text()

        # Withdraw it: her next look shows nobody.
        page.get_by_role("button", name="Stop Ada's daughter seeing my record").click()
        page.locator("#access-status", has_text="can no longer see").wait_for()
        daughter_page.reload()
        assert daughter_page.locator(f"section[data-person-id='{ada}']").count() == 0
        assert daughter_page.locator("#no-people").is_visible()
        daughter_page.close()

        # Who looked now names the daughter.
        page.reload()
        assert "Your family member Ada's daughter looked at your details" in page.locator("#looked").inner_text()

        # Time away.
        page.fill("#absence-from", "2031-06-03")
        page.fill("#absence-to", "2031-06-10")
        page.fill("#absence-reason", "Staying with my sister")
        page.get_by_role("button", name="Tell the centre").click()
        page.locator("#absences", has_text="Away 3 June to 10 June: Staying with my sister").wait_for()
        assert page_width(page) <= PHONE["width"]
        assert_accessible(page, "my record after changes")
        screenshot(page, "person-me-after")

    with site.sessions() as session:
        actions = [e.action for e in session.scalars(select(AuditEntry).where(AuditEntry.actor == "ada"))]
        assert "give_consent" in actions and "withdraw_consent" in actions and "plan_absence" in actions
        absence = session.scalars(select(PlannedAbsence)).one()
        assert absence.created_by == "ada"
        assert (absence.ends_at - absence.starts_at).days == 8
