"""A family member's page in Chromium at a phone's size: she sees only the person who consented
(Ada, not Bob), in words, and, being Ada's keyholder, accepts the centre's request to go: the alert
goes in progress as by the link in the message. Another family account that is no keyholder sees
no request. axe-core on every page; screenshots into docs/console/."""

from pathlib import Path
from typing import Any

from sqlalchemy import select

from centre_app.auth import create_user
from monitoring_centre import access
from monitoring_centre.storage import Alert, AuditEntry, Person, User
from tests.support.accessibility import assert_accessible
from tests.support.api_world import PASSWORD
from tests.support.pages import screenshot, sign_in, views_site

PHONE = {"width": 390, "height": 844}


def test_family_sees_the_consented_person_and_accepts_a_request(tmp_path: Path, browser_page: Any) -> None:
    page = browser_page
    page.set_viewport_size(PHONE)
    with views_site(tmp_path) as site:
        ada, bob = site.world.people["ada"], site.world.people["bob"]
        with site.sessions() as session, session.begin():
            person = session.scalars(select(User).where(User.username == "ada")).one()
            daughter = session.scalars(select(User).where(User.username == "daughter")).one()
            access.give_consent(session, person, session.get_one(Person, ada), daughter, "my daughter")
            create_user(session, "cousin", PASSWORD, "family", "Bob's cousin")

        sign_in(page, site, "daughter", "/family")
        assert page.locator(f"section[data-person-id='{ada}']").count() == 1
        assert page.locator(f"section[data-person-id='{bob}']").count() == 0
        assert "Bob" not in page.locator("main").inner_text()
        section = page.locator(f"section[data-person-id='{ada}']")
        assert "Ada's oxygen level" in section.inner_text()
        assert "Help button pressed" in section.inner_text()
        request = page.locator(f"li[data-notification-id='{site.views.notification}']")
        assert "Can you go now?" in request.inner_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert_accessible(page, "family page")
        screenshot(page, "family")

        request.get_by_role("button", name="Yes, I'm going").click()
        request.locator(".telecare-answer-result", has_text="the centre knows you are going to Ada").wait_for()
        assert_accessible(page, "family page after accepting")
        page.reload()
        assert page.locator(f"li[data-notification-id='{site.views.notification}']").count() == 0
        with site.sessions() as session:
            alert = session.get_one(Alert, site.world.alerts["ada"])
            assert alert.status == "in_progress"
            actions = {e.action for e in session.scalars(select(AuditEntry).where(AuditEntry.person_id == ada))}
            assert {"keyholder_accepted", "show_access_details"} <= actions

        # A family account that is no keyholder and has no consent sees nothing of anyone.
        page.context.clear_cookies()
        sign_in(page, site, "cousin", "/family")
        assert page.locator("#no-people").is_visible()
        assert "Nobody has asked you to help" in page.locator("#requests").inner_text()
        assert_accessible(page, "family page, nobody")
        # And the nurse's pages are not hers.
        response = page.goto(f"{site.url}/nurse")
        assert response is not None and response.status == 403
