"""The operator's queue on a whole centre (broker, receiver, escalator) in a real Chromium: a help
press published by a hub appears live, with its cue; on a full disk the queue stays readable and a
banner says why; repeated wrong passwords earn a wait that the sign-in page names as such.
(Moved here from the old static console's tests.)"""

from datetime import timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from centre_app.centre import Centre, CentreThread
from monitoring_centre.broker import BrokerAccount
from monitoring_centre.storage import utc_now
from monitoring_centre.storage_health import QUIET_S
from tests.support.centre import OPERATOR, centre_settings, enrol_test_homes, press_pendant
from tests.support.full_disk import Disk

WAIT = 15_000


def _sign_in(page: Any, url: str, password: str = OPERATOR[1]) -> None:
    page.goto(f"{url}/")
    page.fill("#username", OPERATOR[0])
    page.fill("#password", password)
    page.click("button[type=submit]")


def test_a_press_appears_live_and_the_escalation_is_told_in_words(
        tmp_path: Path, mosquitto: Any, broker_accounts: dict[str, BrokerAccount], browser_page: Any) -> None:
    centre = Centre(centre_settings(tmp_path / "centre.db", mosquitto, broker_accounts))
    enrol_test_homes(centre)
    page = browser_page
    with CentreThread(centre):
        _sign_in(page, centre.url)
        page.locator("#link.op-link--up").wait_for(timeout=WAIT)
        expect(page.locator("#queue tbody tr")).to_have_count(0)
        page.locator("body").click()

        press_pendant(mosquitto, broker_accounts)

        row = page.locator("#queue tbody tr[data-rules~=pendant_alarm]")
        row.wait_for(timeout=WAIT)
        assert "Ada Lovelace" in row.inner_text() and "1 Emergency" in row.inner_text()
        page.locator("#cue", has_text="New priority 1 alarm: Ada Lovelace").wait_for(timeout=WAIT)
        row.click()
        page.locator("#call-heading", has_text="Ada Lovelace").wait_for(timeout=WAIT)
        why = page.locator("#why-summary").inner_text()
        assert why and "{" not in why, why
        # The escalation has started: the alarm queue (the operators' own step) is in its log, in words.
        page.locator("#escalation-log li", has_text="queue").first.wait_for(timeout=WAIT)


def test_a_full_disk_shows_a_banner_and_the_queue_stays_readable(
        tmp_path: Path, mosquitto: Any, broker_accounts: dict[str, BrokerAccount], browser_page: Any) -> None:
    centre = Centre(centre_settings(tmp_path / "centre.db", mosquitto, broker_accounts))
    enrol_test_homes(centre)
    page = browser_page
    with CentreThread(centre):
        _sign_in(page, centre.url)
        page.locator("#link.op-link--up").wait_for(timeout=WAIT)
        press_pendant(mosquitto, broker_accounts)
        page.locator("#queue tbody tr[data-rules~=pendant_alarm]").wait_for(timeout=WAIT)
        assert page.locator("#storage-fault").is_hidden()

        disk = Disk(centre)
        disk.fill()
        page.locator("#storage-fault").wait_for(timeout=WAIT)  # told live, no reload
        assert "Storage fault since" in page.locator("#storage-fault").inner_text()
        expect(page.locator("#link")).to_have_text("Live: storage fault")
        page.reload()  # the queue is read again, its audit rows kept in memory
        page.locator("#queue tbody tr[data-rules~=pendant_alarm]").wait_for(timeout=WAIT)
        page.locator("#storage-fault").wait_for(timeout=WAIT)

        disk.free()
        centre.storage.clock = lambda: utc_now() + timedelta(seconds=QUIET_S)
        assert centre.storage.retry(centre.sessions)
        page.locator("#storage-fault").wait_for(state="hidden", timeout=WAIT)
        expect(page.locator("#link")).to_have_text("Live")


def test_a_wait_after_failed_sign_ins_is_told_as_such_not_as_a_wrong_password(
        tmp_path: Path, mosquitto: Any, broker_accounts: dict[str, BrokerAccount], browser_page: Any) -> None:
    """From outside the trusted networks (here: none), repeated wrong passwords earn a wait; the
    sign-in page says so, so an operator who then types the right one does not doubt it."""
    centre = Centre(centre_settings(tmp_path / "centre.db", mosquitto, broker_accounts, trusted_networks=[]))
    enrol_test_homes(centre)
    page = browser_page
    with CentreThread(centre):
        for _ in range(20):  # the wait doubles with each failure: one soon outlasts a slow check
            _sign_in(page, centre.url, "wrong-guess")
            summary = page.locator(".nhsuk-error-summary")
            summary.wait_for(timeout=30_000)
            if "too many" in summary.inner_text().lower():
                break
        assert "too many failed sign-ins: try again in " in page.locator(".nhsuk-error-summary").inner_text().lower()
