"""The operator's console in a real headless Chromium: sign in, see a pendant alarm arrive
live (no reload), acknowledge it; on a full disk, the queue stays and a banner says why."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from centre_app.centre import Centre, CentreThread
from monitoring_centre.broker import BrokerAccount
from monitoring_centre.storage import Reading as StoredReading
from monitoring_centre.storage import utc_now
from monitoring_centre.storage_health import QUIET_S
from telecare_protocol import Reading, encode
from telecare_protocol.codes import Metric, QualityFlag
from telecare_protocol.topics import topic_for
from tests.support.centre import OPERATOR, centre_settings, enrol_test_homes, press_pendant
from tests.support.full_disk import Disk
from tests.support.helpers import mqtt_client
from tests.support.waiting import wait_for


def test_alarm_appears_live_and_is_acknowledged(tmp_path: Path, mosquitto: Any,
                                                 broker_accounts: dict[str, BrokerAccount], browser_page: Any) -> None:
    centre = Centre(centre_settings(tmp_path / "centre.db", mosquitto, broker_accounts))
    enrol_test_homes(centre)
    page = browser_page
    with CentreThread(centre):
        page.goto(f"{centre.url}/")
        page.fill("input[name=username]", OPERATOR[0])
        page.fill("input[name=password]", OPERATOR[1])
        page.click("button[type=submit]")
        page.wait_for_selector("#link.up", timeout=10_000)
        assert page.locator("#queue tbody tr").count() == 0

        press_pendant(mosquitto, broker_accounts)

        row = page.locator("#queue tbody tr[data-rule=pendant_alarm]")
        row.wait_for(timeout=10_000)
        assert "Ada Lovelace" in row.inner_text()
        assert "1 Emergency" in row.inner_text()
        # The escalation column: the chain has started (the operators' step is the queue itself).
        # (Locators, not wait_for_function: the console's Content-Security-Policy forbids evaluating strings.)
        page.locator("#queue tbody tr[data-rule=pendant_alarm] td.escalation", has_text="emergency: running").wait_for(
            timeout=10_000)
        assert not page.locator("#login").is_visible()
        # Everything to act on it, one click away: where the person is, and what the escalation has done.
        row.locator("td").nth(1).click()
        page.wait_for_selector("#detail:not([hidden])", timeout=10_000)
        assert page.locator("#detail-title").inner_text() == "Help button pressed: Ada Lovelace"
        assert "1 Test Street" in page.locator("#detail-person").inner_text()
        assert "emergency chain" in page.locator("#detail-chain").inner_text()
        assert "alarm queue" in page.locator("#detail-log").inner_text()
        assert "manual_alarm" in page.locator("#detail-evidence").inner_text()
        page.screenshot(path=str(tmp_path / "console.png"))
        row.get_by_role("button", name="Acknowledge").click()
        page.wait_for_selector("#queue tbody tr.acknowledged", timeout=10_000)

        # Resolving without a visit needs the reason; with it, the alert leaves the queue.
        acknowledged = page.locator("#queue tbody tr.acknowledged")
        acknowledged.locator("select[name=outcome]").select_option("resolved_by_call")
        acknowledged.get_by_role("button", name="Resolve").click()
        page.locator("form.resolve .error", has_text="reason").wait_for(timeout=10_000)
        acknowledged.locator("input[name=note]").fill("Spoke to Ada: pressed while dusting, she is well")
        acknowledged.get_by_role("button", name="Resolve").click()
        page.wait_for_selector("#empty:not([hidden])", timeout=10_000)


def test_readings_show_clean_values_and_count_flagged_ones(tmp_path: Path, mosquitto: Any,
                                                           broker_accounts: dict[str, BrokerAccount],
                                                           browser_page: Any) -> None:
    centre = Centre(centre_settings(tmp_path / "centre.db", mosquitto, broker_accounts))
    enrol_test_homes(centre)
    now = datetime.now(UTC)
    readings = [Reading(hub_id="hub-1", device_id="oximeter-1", source_ts=now - timedelta(minutes=m), metric=metric,
                        value=value, unit=unit, quality=quality)
                for m, metric, value, unit, quality in [
                    (30, Metric.SPO2, 96.0, "%", ()), (29, Metric.SPO2, 70.0, "%", (QualityFlag.QUESTIONABLE,)),
                    (28, Metric.PULSE_RATE, 72.0, "/min", ())]]
    with CentreThread(centre):
        hub = mqtt_client(mosquitto, broker_accounts["hub-1"])
        for reading in readings:
            hub.publish(topic_for("hub-1", "reading"), encode(reading), qos=1).wait_for_publish(5)
        hub.disconnect()
        hub.loop_stop()
        wait_for(lambda: _stored(centre, len(readings)), what="the readings to be stored")

        page = browser_page
        page.goto(f"{centre.url}/")
        page.fill("input[name=username]", OPERATOR[0])
        page.fill("input[name=password]", OPERATOR[1])
        page.click("button[type=submit]")
        ada = page.locator("#caseload tbody tr", has_text="Ada Lovelace")
        ada.wait_for(timeout=10_000)
        assert ada.locator("td.spo2").inner_text() == "96 %"  # the questionable 70 % is not charted...
        assert ada.locator("td.pulse").inner_text() == "72 /min"
        assert ada.locator("td.flagged").inner_text() == "1"  # ...but it is counted
        brian = page.locator("#caseload tbody tr", has_text="Brian Jones")
        assert brian.locator("td.spo2").inner_text() == "no clean reading"


def _stored(centre: Centre, count: int) -> bool:
    with centre.sessions() as session:
        return (session.scalar(select(func.count()).select_from(StoredReading)) or 0) >= count


def test_a_full_disk_shows_a_banner_and_the_queue_stays_readable(tmp_path: Path, mosquitto: Any,
                                                                 broker_accounts: dict[str, BrokerAccount],
                                                                 browser_page: Any) -> None:
    centre = Centre(centre_settings(tmp_path / "centre.db", mosquitto, broker_accounts))
    enrol_test_homes(centre)
    page = browser_page
    with CentreThread(centre):
        page.goto(f"{centre.url}/")
        page.fill("input[name=username]", OPERATOR[0])
        page.fill("input[name=password]", OPERATOR[1])
        page.click("button[type=submit]")
        page.wait_for_selector("#link.up", timeout=10_000)
        press_pendant(mosquitto, broker_accounts)
        page.locator("#queue tbody tr[data-rule=pendant_alarm]").wait_for(timeout=10_000)
        assert page.locator("#storage-fault").is_hidden()

        disk = Disk(centre)
        disk.fill()
        page.wait_for_selector("#storage-fault:not([hidden])", timeout=10_000)  # told live, no reload
        assert "Storage fault since" in page.locator("#storage-fault").inner_text()
        assert page.locator("#link").inner_text() == "live: storage fault"
        page.reload()  # the queue is read again, its audit rows kept in memory
        page.locator("#queue tbody tr[data-rule=pendant_alarm]").wait_for(timeout=10_000)
        page.wait_for_selector("#storage-fault:not([hidden])", timeout=10_000)

        disk.free()
        centre.storage.clock = lambda: utc_now() + timedelta(seconds=QUIET_S)
        assert centre.storage.retry(centre.sessions)
        page.wait_for_selector("#storage-fault[hidden]", state="attached", timeout=10_000)
        assert page.locator("#link").inner_text() == "live"


def test_a_wait_after_failed_sign_ins_is_told_as_such_not_as_a_wrong_password(
        tmp_path: Path, mosquitto: Any, broker_accounts: dict[str, BrokerAccount], browser_page: Any) -> None:
    """From outside the trusted networks (here: none), repeated wrong passwords earn a wait; the
    console says so, so an operator who then types the right one does not doubt it."""
    centre = Centre(centre_settings(tmp_path / "centre.db", mosquitto, broker_accounts, trusted_networks=[]))
    enrol_test_homes(centre)
    page = browser_page
    with CentreThread(centre):
        page.goto(f"{centre.url}/")
        page.fill("input[name=username]", OPERATOR[0])
        for _ in range(20):  # the wait doubles with each failure: one soon outlasts a slow check
            page.fill("input[name=password]", "wrong-guess")
            page.evaluate("document.querySelector('#login-error').textContent = ''")
            page.click("button[type=submit]")
            page.wait_for_selector("#login-error:not(:empty)", timeout=30_000)
            if "Too many" in page.locator("#login-error").inner_text():
                break
        assert page.locator("#login-error").inner_text().startswith("Too many failed sign-ins: try again in ")
