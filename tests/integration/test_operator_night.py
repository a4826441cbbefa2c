"""A night shift at the operator's workstation, in a real Chromium against a real server: alarms
arrive live on the queue with their age coloured against the answer targets, a new priority 1
alarm gives a tone and a banner (and again when it comes again, after the call was taken), the
sound is muted (and the mute logged), a call is taken (a
second operator sees who has it and cannot take it), the call screen shows the caller's record,
why the alarm was raised in plain words, the script and the escalation so far, notes and
actions are recorded, the alarms are acknowledged and resolved with outcomes, then found in the
history; the handover lists what is left and takes a note; the answer-time page counts the
night's calls. axe-core finds no serious or critical violation on any page."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect
from sqlalchemy import select

from detection.events import FALL, HUB_OFFLINE
from monitoring_centre.alerts import raise_alert
from monitoring_centre.storage import Alert, AuditEntry, utc_now
from tests.support.accessibility import assert_accessible
from tests.support.api_world import bearer
from tests.support.operator_world import NIGHT, RELIEF, LiveWorld, live_world, screenshot, sign_in

WAIT = 15_000
"""ms: how long a locator waits for the page to catch up (a busy two-core machine)."""


def _fill_adas_record(world: LiveWorld) -> None:
    """Ada's caller record and her two keyholders, as an administrator enters them."""
    ada = world.world.people["ada"]
    with world.admin() as admin:
        changed = admin.patch(f"/api/v1/patients/{ada}", json={
            "name": "Ada Lovelace", "address": "12 St James's Square, London SW1Y 4JH",
            "date_of_birth": "1938-12-10", "access_notes": "Side door; the hall light switch is on the left",
            "phones": [{"label": "home", "number": "020 7946 0001"}],
            "conditions": "COPD; atrial fibrillation", "medication_summary": "Apixaban 5 mg twice daily",
            "allergies": "Penicillin", "communication_needs": "Hard of hearing: speak slowly",
            "property_risks": "Oxygen cylinders in the bedroom", "pets": "A cat, Byron",
            "gp_practice": "St James's Surgery", "nhs_number": "943 476 5919"})
        assert changed.status_code == 200, changed.text
        ids = []
        for name, number in (("Susan Hughes", "+447700900123"), ("Tom King", "+447700900456")):
            made = admin.post("/api/v1/responders", json={"name": name, "role": "keyholder",
                                                          "contact_points": [f"sms:{number}"]})
            assert made.status_code == 201, made.text
            ids.append(made.json()["id"])
        assert admin.put(f"/api/v1/patients/{ada}/contacts", json={"responder_ids": ids}).status_code == 200


LAID_OUT = """() => {
  const call = document.getElementById("call");
  const panel = call.getBoundingClientRect();
  const problems = [];
  if (call.scrollWidth > call.clientWidth + 1) {
    problems.push(`the panel scrolls sideways: ${call.scrollWidth} > ${call.clientWidth}`);
  }
  for (const row of call.querySelectorAll(".op-facts .nhsuk-summary-list__row")) {
    const key = row.querySelector("dt").getBoundingClientRect();
    const value = row.querySelector("dd").getBoundingClientRect();
    const side = key.right > value.left + 0.5 && key.bottom > value.top + 0.5 && value.bottom > key.top + 0.5;
    if (side) problems.push(`label over its value: ${row.textContent}`);
  }
  for (const element of call.querySelectorAll("*")) {
    if (!element.getClientRects().length) continue;
    const box = element.getBoundingClientRect();
    if (box.width && box.right > panel.right + 0.5) {
      problems.push(`past the panel's edge: ${element.id || element.tagName} ${element.textContent.slice(0, 40)}`);
    }
    const clips = getComputedStyle(element).overflowX !== "visible";
    if (clips && !["INPUT", "SELECT", "TEXTAREA"].includes(element.tagName) && element !== call
        && element.scrollWidth > element.clientWidth + 1) problems.push(`clipped: ${element.id || element.tagName}`);
  }
  return problems;
}"""
"""Problems with the call screen's layout: a label over its value, anything past the panel's right
edge or cut off (the panel scrolls down, never sideways)."""


def _raise(world: LiveWorld, person: str, rule: Any, ago: timedelta = timedelta()) -> int:
    with world.sessions() as session, session.begin():
        alert = raise_alert(session, person_id=world.world.people[person], hub_id=f"hub-{person}", rule=rule,
                            subject="", at=utc_now() - ago, evidence={"code": "test"}, why="test")
        alert_id = alert.id
    world.state.feed.publish({alert_id})
    return alert_id


def _audited(world: LiveWorld, action: str, username: str) -> int:
    with world.sessions() as session:
        return len(session.scalars(select(AuditEntry).where(AuditEntry.action == action,
                                                            AuditEntry.actor == username)).all())


def test_a_night_at_the_workstation(tmp_path: Path, browser_page: Any) -> None:
    page = browser_page
    page.set_viewport_size({"width": 1440, "height": 900})
    with live_world(tmp_path) as world:
        _fill_adas_record(world)
        _raise(world, "bob", FALL, ago=timedelta(minutes=4))  # waiting already, past 180 s

        sign_in(page, world.url, NIGHT[0])
        assert "Nina Patel, centre operator" in page.locator(".nhsuk-header__account").inner_text()
        page.locator("#link.op-link--up").wait_for(timeout=WAIT)
        ada_row = page.locator("#queue tbody tr", has_text="Ada Lovelace")
        bob_row = page.locator("#queue tbody tr", has_text="Bob")
        ada_row.wait_for(timeout=WAIT)
        # Bob's call: his help press and his fall, one row, aged from the fall 4 minutes ago: late.
        assert "Help button pressed" in bob_row.inner_text() and "Fall" in bob_row.inner_text()
        assert bob_row.locator("td.op-age-cell").get_attribute("data-band") == "late"
        assert "min" in bob_row.locator("td.op-age-cell").inner_text()
        assert ada_row.locator("td.op-age-cell").get_attribute("data-band") in ("ok", "warn")
        raised = ada_row.locator("td").nth(4).inner_text()  # "Mon 30 Nov, 03:50:09": with its date
        assert any(month in raised for month in ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
                                                 "Oct", "Nov", "Dec")), raised
        assert_accessible(page, "the queue")

        # A new priority 1 alarm: a banner and a tone (the sound is on), and Ada's row has two reasons.
        page.locator("body").click()  # a gesture: browsers start audio only after one
        ada_fall = _raise(world, "ada", FALL)
        page.locator("#cue", has_text="New priority 1 alarm: Ada Lovelace, Fall").wait_for(timeout=WAIT)
        ada_row.locator(".op-alarm", has_text="Fall").wait_for(timeout=WAIT)
        assert page.locator("#queue tbody tr", has_text="Ada Lovelace").count() == 1
        assert page.locator("#cue").get_attribute("data-sounded") == "1"
        screenshot(page, "queue")

        # Muting is this session's choice, and the centre logs it; a new alarm then only shows.
        page.get_by_role("button", name="Mute new-alarm sound").click()
        page.locator("#mute[aria-pressed=true]").wait_for(timeout=WAIT)
        assert _audited(world, "console_sound_muted", NIGHT[0]) == 1
        _raise(world, "bob", HUB_OFFLINE)
        page.locator("#cue", has_text="(sound muted)").wait_for(timeout=WAIT)
        assert page.locator("#cue").get_attribute("data-sounded") == "1"
        page.keyboard.press("m")  # the shortcut turns it back on, logged too
        page.locator("#mute[aria-pressed=false]").wait_for(timeout=WAIT)
        assert _audited(world, "console_sound_on", NIGHT[0]) == 1

        # Nina takes Ada's call; the call screen opens on it.
        ada_row.get_by_role("button", name="Take the call of Ada Lovelace").click()
        page.locator("#call-taken", has_text="You took this call").wait_for(timeout=WAIT)
        ada_row.locator("td.op-taken-cell", has_text="You").wait_for(timeout=WAIT)
        assert page.locator("#call-heading").inner_text().startswith("Ada Lovelace: ")
        caller = page.locator("#caller").inner_text()
        for shown in ("12 St James's Square", "Side door", "020 7946 0001", "COPD", "Apixaban", "Penicillin",
                      "Hard of hearing", "Oxygen cylinders", "Byron", "St James's Surgery", "943 476 5919", "87"):
            assert shown in caller, shown
        keyholders = page.locator("#keyholders > li")
        assert keyholders.count() == 2
        assert "Susan Hughes" in keyholders.nth(0).inner_text() and "+447700900123" in keyholders.nth(0).inner_text()
        assert "Tom King" in keyholders.nth(1).inner_text()
        assert keyholders.nth(0).locator("a.op-phone").get_attribute("href") == "tel:+447700900123"  # one click
        why = page.locator("#why-summary").inner_text()
        assert why and "{" not in why and '":' not in why, why
        assert page.locator("#script-steps li").count() >= 2
        assert page.locator("#escalation-log li").count() >= 1
        assert_accessible(page, "the call screen")

        # Ada falls (or presses) again after Nina took the call: the same alarm, counted, and a banner and
        # a tone again, saying who has the call: a person who calls again is never silent.
        _raise(world, "ada", FALL)
        page.locator("#cue", has_text="Came again: Ada Lovelace, Fall").wait_for(timeout=WAIT)
        again = page.locator("#cue").inner_text()
        assert "×2" in again and "the call is with Nina Patel" in again, again
        assert page.locator("#cue").get_attribute("data-sounded") == "2"

        # The relief operator sees who has the call and cannot take it.
        relief_context = page.context.browser.new_context(viewport={"width": 1440, "height": 900})
        relief = relief_context.new_page()
        sign_in(relief, world.url, RELIEF[0])
        relief_ada = relief.locator("#queue tbody tr", has_text="Ada Lovelace")
        relief_ada.locator("td.op-taken-cell", has_text="Nina Patel since").wait_for(timeout=WAIT)
        assert relief_ada.get_by_role("button").count() == 0
        relief_ada.click()
        relief.locator("#call-taken", has_text="Taken by Nina Patel").wait_for(timeout=WAIT)
        assert relief.locator("#take").is_disabled() and relief.locator("#acknowledge").is_disabled()
        with httpx.Client(base_url=world.url) as api:
            refused = api.post(f"/api/v1/calls/{world.world.people['ada']}/take", headers=bearer(api, RELIEF[0]))
        assert refused.status_code == 409 and "taken by Nina Patel" in refused.json()["detail"]

        # Taking the call answered it: its alarms are acknowledged (the escalation stops). An alarm
        # that joins the call Nina holds is shown as new within it until she acknowledges it.
        page.locator("#acknowledge", has_text="Acknowledged").wait_for(timeout=WAIT)
        assert page.locator("#acknowledge").is_disabled() and page.locator("#call-new").is_hidden()
        joined = _raise(world, "ada", HUB_OFFLINE)
        page.locator("#call-new", has_text="New in this call, not yet acknowledged").wait_for(timeout=WAIT)
        page.locator("#call-alarms .op-alarm-choice--new", has_text="not yet acknowledged").wait_for(timeout=WAIT)
        page.get_by_role("button", name="Acknowledge the new alarm").click()
        page.locator("#call-new").wait_for(state="hidden", timeout=WAIT)
        with world.sessions() as session:
            assert session.get_one(Alert, joined).status == "acknowledged"
        with httpx.Client(base_url=world.url) as api:  # dealt with, so the call goes on with its two alarms
            done = api.post(f"/api/v1/alerts/{joined}/resolve", headers=bearer(api, NIGHT[0]),
                            json={"outcome": "technical", "note": ""})
            assert done.status_code == 200, done.text
        expect(page.locator("#call-alarms button")).to_have_count(2, timeout=WAIT)

        # Notes and actions; "no further action" needs its reason.
        page.select_option("#note-action", "called_back")
        page.fill("#note-text", "Spoke to Ada: she slipped getting up, is sitting in her chair")
        page.get_by_role("button", name="Save note").click()
        page.locator("#notes li", has_text="Called back").wait_for(timeout=WAIT)
        page.select_option("#note-action", "no_further_action")
        page.get_by_role("button", name="Save note").click()
        page.locator("#note-error:not(:empty)").wait_for(timeout=WAIT)
        page.fill("#note-reason", "Her daughter is on her way and will stay the night")
        page.get_by_role("button", name="Save note").click()
        page.locator("#notes li", has_text="daughter is on her way").wait_for(timeout=WAIT)
        relief.locator("#notes li", has_text="Called back").wait_for(timeout=WAIT)  # the other screen follows live
        page.locator("#call-heading").focus()  # the call screen from its top
        assert page.evaluate(LAID_OUT) == []
        screenshot(page, "call")
        screenshot(relief, "taken-by-another")

        # Resolve each alarm of the call with its outcome (taking the call acknowledged them).
        assert page.locator("#acknowledge").is_disabled()
        assert page.locator("#call-alarms [aria-pressed=true]").count() == 1
        page.select_option("#resolve-outcome", "resolved_by_call")
        page.get_by_role("button", name="Resolve").click()
        page.locator("#resolve-error", has_text="reason").wait_for(timeout=WAIT)
        assert page.evaluate(LAID_OUT) == []  # the error too, whole, inside the panel
        page.fill("#resolve-note", "Unhurt; her daughter is with her")
        page.get_by_role("button", name="Resolve").click()
        page.locator("#resolve-error:empty").wait_for(state="attached", timeout=WAIT)
        expect(page.locator("#call-alarms button")).to_have_count(1, timeout=WAIT)  # the call goes on...
        expect(page.locator("#call-alarms button")).to_contain_text("Fall")  # ...with its other alarm
        page.select_option("#resolve-outcome", "false_alarm")
        page.get_by_role("button", name="Resolve").click()
        page.locator("#call").wait_for(state="hidden", timeout=WAIT)
        ada_row.wait_for(state="detached", timeout=WAIT)
        relief_ada.wait_for(state="detached", timeout=WAIT)  # gone from every console, live
        with world.sessions() as session:
            adas = session.scalars(select(Alert).where(Alert.person_id == world.world.people["ada"])).all()
            assert {(a.status, a.outcome) for a in adas} == {("resolved", "resolved_by_call"),
                                                             ("resolved", "false_alarm"), ("resolved", "technical")}
        assert ada_fall in {a.id for a in adas}
        relief_context.close()

        # The history finds them; the handover lists what is left and takes a note.
        page.get_by_role("link", name="History").click()
        page.fill("#history-q", "Ada")
        page.get_by_role("button", name="Search").click()
        page.locator("#history tbody tr").nth(2).wait_for(timeout=WAIT)
        history = page.locator("#history tbody").inner_text()
        assert page.locator("#history tbody tr").count() == 3
        assert "Spoken to; no visit needed" in history and "Pressed or triggered by accident" in history
        assert "Bob" not in history
        assert "Nina Patel" in history and NIGHT[0] not in history  # "Resolved by" in names, not usernames
        # A row opens the alarm: the call's notes (written on either alarm) and what happened, in words.
        page.locator("#history tbody tr", has_text="Fall").get_by_role("button").click()
        page.locator("#history-detail-notes li", has_text="daughter is on her way").wait_for(timeout=WAIT)
        assert "Acknowledged by Nina Patel" in page.locator("#history-detail-log").inner_text()
        assert_accessible(page, "the history")
        screenshot(page, "history")

        page.get_by_role("link", name="Handover").click()
        page.locator("#handover-open tbody tr", has_text="Bob").wait_for(timeout=WAIT)
        assert "None." in page.locator("#handover-in-progress tbody").inner_text()
        with httpx.Client(base_url=world.url) as api:  # the relief operator takes Bob's call and calls him
            relief_bearer = bearer(api, RELIEF[0])
            assert api.post(f"/api/v1/calls/{world.world.people['bob']}/take", headers=relief_bearer).is_success
            noted = api.post(f"/api/v1/alerts/{world.world.alerts['bob']}/notes", headers=relief_bearer,
                             json={"action": "called_back", "text": "No answer; calling his son"})
            assert noted.status_code == 201, noted.text
        page.reload()
        in_progress = page.locator("#handover-in-progress tbody tr", has_text="Bob")
        in_progress.wait_for(timeout=WAIT)
        assert "Raj Singh since" in in_progress.inner_text() and "calling his son" in in_progress.inner_text()
        assert "None." in page.locator("#handover-open tbody").inner_text()
        page.fill("#handover-text", "Bob's hub went offline at the end of the shift; Raj is on his fall")
        page.get_by_role("button", name="Add note").click()
        page.locator("#handover-notes li", has_text="Nina Patel: Bob's hub went offline").wait_for(timeout=WAIT)
        assert_accessible(page, "the handover")
        screenshot(page, "handover")

        # The night's answer times: six alarm calls raised today (Ada's and Bob's help presses from
        # before the shift, Bob's fall, Ada's fall, Bob's hub offline, Ada's hub offline), all six
        # answered: Ada's when Nina took her call and acknowledged the alarm that joined it, Bob's
        # when Raj took his.
        page.get_by_role("link", name="Answer times").click()
        today = page.locator("#kpi-days tbody tr").last
        cells = today.locator("td")
        assert today.locator("th").inner_text() == utc_now().date().isoformat()
        assert cells.nth(0).inner_text() == "6" and cells.nth(1).inner_text() == "6"
        assert page.locator("#kpi-alarms").inner_text() == "6"
        assert_accessible(page, "the answer times")

        # Signed out, the pages are refused until signing in again.
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{world.url}/signin**", timeout=WAIT)
        page.goto(f"{world.url}/operator")
        page.wait_for_url(f"{world.url}/signin?next=/operator", timeout=WAIT)
