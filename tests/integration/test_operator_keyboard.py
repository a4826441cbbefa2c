"""The operator's queue by keyboard alone, and what it shows when the centre goes away: in a
real Chromium against a real server."""

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from monitoring_centre.storage import Alert
from tests.support.accessibility import assert_accessible
from tests.support.operator_world import NIGHT, live_world, screenshot, sign_in

WAIT = 15_000


def test_take_acknowledge_and_resolve_by_keyboard_alone(tmp_path: Path, browser_page: Any) -> None:
    page = browser_page
    with live_world(tmp_path) as world:
        sign_in(page, world.url, NIGHT[0])
        page.locator("#link.op-link--up").wait_for(timeout=WAIT)
        rows = page.locator("#queue tbody tr")
        expect(rows).to_have_count(2, timeout=WAIT)
        assert "Enter" in (page.locator(".op-keys").text_content() or "")  # the keys are documented on the page

        page.keyboard.press("j")  # the first call: Ada's, raised first
        expect(rows.first).to_be_focused()
        page.keyboard.press("j")
        expect(rows.nth(1)).to_be_focused()
        page.keyboard.press("k")
        page.keyboard.press("Enter")
        page.locator("#call-heading", has_text="Ada").wait_for(timeout=WAIT)
        expect(page.locator("#call-heading")).to_be_focused()

        page.keyboard.press("t")
        page.locator("#call-taken", has_text="You took this call").wait_for(timeout=WAIT)
        page.keyboard.press("a")
        page.locator("#acknowledge", has_text="Acknowledged").wait_for(timeout=WAIT)
        ada_alert = world.world.alerts["ada"]
        assert world.alert(ada_alert).status == "acknowledged"

        page.keyboard.press("r")
        expect(page.locator("#resolve-outcome")).to_be_focused()
        page.keyboard.type("Pressed")  # a closed select chooses the option its typed letters begin
        expect(page.locator("#resolve-outcome")).to_have_value("false_alarm")
        page.keyboard.press("Tab")
        page.keyboard.type("Pressed it while dusting")
        page.keyboard.press("Tab")
        expect(page.get_by_role("button", name="Resolve")).to_be_focused()
        page.keyboard.press("Enter")
        page.locator("#call").wait_for(state="hidden", timeout=WAIT)
        expect(rows).to_have_count(1, timeout=WAIT)
        resolved: Alert = world.alert(ada_alert)
        assert (resolved.status, resolved.outcome) == ("resolved", "false_alarm")

        page.keyboard.press("j")
        page.keyboard.press("Enter")
        page.locator("#call-heading", has_text="Bob").wait_for(timeout=WAIT)
        page.keyboard.press("Escape")  # back to the queue, on the call it came from
        page.locator("#call").wait_for(state="hidden", timeout=WAIT)
        expect(rows.first).to_be_focused()
        assert_accessible(page, "the queue after the keyboard")


def test_a_lost_connection_greys_the_queue_within_5_s(tmp_path: Path, browser_page: Any) -> None:
    page = browser_page
    with live_world(tmp_path) as world:
        sign_in(page, world.url, NIGHT[0])
        page.locator("#link.op-link--up").wait_for(timeout=WAIT)
        take = page.get_by_role("button", name="Take the call of Bob")
        expect(take).to_be_enabled(timeout=WAIT)
        rows = page.locator("#queue tbody tr")
        expect(rows).to_have_count(2)
        page.get_by_label("Name").fill("bo")  # the filters: by name...
        expect(rows).to_have_count(1)
        assert "Bob" in rows.first.inner_text()
        page.get_by_label("Name").fill("")
        page.get_by_label("2 Urgent").check()  # ...and by priority (both are priority 1)
        expect(page.locator("#empty")).to_contain_text("No call matches the filters (2 hidden)")
        page.get_by_label("2 Urgent").uncheck()
        expect(rows).to_have_count(2)
        assert page.locator("#connection-lost").is_hidden()

        world.stop()  # the centre goes away, as it does when it stops

        page.locator("#connection-lost").wait_for(timeout=5_000)
        assert "Connection to the centre lost at" in page.locator("#connection-lost").inner_text()
        expect(page.locator("#link")).to_have_text("Not connected")
        expect(take).to_be_disabled()  # the stale queue cannot be acted on
        expect(page.locator("#workspace")).to_have_attribute("disabled", "")
        page.locator("#queue tbody tr").first.click(force=True)
        assert page.locator("#call").is_hidden()
        assert_accessible(page, "the queue, disconnected")
        screenshot(page, "disconnected")
