"""The administrator's pages in Chromium, as an administrator uses them: sign in and land on
people and homes, enrol a home (its hub's broker password shown once), add a device, create an
account (its one-time password shown once, and it signs in), change its role and disable it,
add a responder with a contact point and send it a test message (caught by a local SMTP
server), edit a person's caller record and service, set their keyholders in order, plan an
absence, change a rule setting with a reason, make a team with a member and a caseload, edit
a call script and retire a home. Every page passes
axe-core; each is saved as a screenshot for `docs/console/`.

And the keyholder's accept page on a phone (390 x 844): the centre's phone number, what to do,
when to call 999; "yes, I am going" then the way in; "no, I cannot go" recorded.
"""

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, ViewportSize, expect
from sqlalchemy import select

from alerting.acceptance import accept_token, link_key
from alerting.tables import Notification
from monitoring_centre.storage import AuditEntry, Device, Hub, Person, Responder, utc_now
from tests.support.accessibility import assert_accessible
from tests.support.api_world import ADMIN, PASSWORD, World, api_app, bearer, served
from tests.support.smtp_server import SmtpServer, smtp_server

SCREENSHOTS = Path(__file__).parents[2] / "docs" / "console"
CENTRE_PHONE = "01632 960 123"
DESKTOP = ViewportSize(width=1440, height=900)
PHONE = ViewportSize(width=390, height=844)


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[tuple[str, Any, World, SmtpServer]]:
    with smtp_server() as mail:
        app, engine, world = api_app(
            f"sqlite:///{tmp_path / 'centre.db'}", allow_test_nhs_numbers=True, centre_phone=CENTRE_PHONE,
            smtp={"host": mail.host, "port": mail.port, "starttls": False, "mail_from": "centre@centre.test"})
        with served(app) as url:
            yield url, app.state.centre.sessions, world, mail
        engine.dispose()


def shot(page: Page, name: str, *, fresh: bool = True) -> None:
    """The page as it opens (`fresh`: asked for again, at the top; a reload would keep the scroll)."""
    if fresh:
        page.goto(page.url)
    assert_accessible(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


def sign_in(page: Page, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/signin")
    page.fill("#username", username)
    page.fill("#password", password)
    page.get_by_role("button", name="Sign in").click()


def audit_actions(sessions: Any, actor: str) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(AuditEntry.action).where(AuditEntry.actor == actor)
                                    .order_by(AuditEntry.id)))


def test_an_administrator_runs_the_centre_from_its_pages(
        centre: tuple[str, Any, World, SmtpServer], browser_page: Page) -> None:
    url, sessions, _world, mail = centre
    page = browser_page
    page.set_viewport_size(DESKTOP)
    sign_in(page, url, ADMIN, PASSWORD)
    expect(page).to_have_url(f"{url}/admin/people")
    expect(page.get_by_role("heading", level=1)).to_have_text("People and homes")
    assert_accessible(page)

    # Enrol a home: the hub's broker login is shown once, and only its hash is kept.
    page.fill("#enrol-name", "Edith Clarke")
    page.fill("#enrol-address", "3 Mill Lane, Ashford")
    page.fill("#enrol-nhs", "999 000 1235")
    page.select_option("#enrol-service", "keyholder_only")
    page.fill("#enrol-hub", "hub-edith")
    page.fill("#enrol-devices", "pendant-1:pendant\npir-1:motion:kitchen")
    page.fill("#enrol-access", "Key safe by the back door, code 9753")
    page.get_by_role("button", name="Enrol home").click()
    expect(page.get_by_test_id("hub-credentials")).to_be_visible()
    password = page.get_by_test_id("broker-password").inner_text()
    assert len(password) >= 24
    assert_accessible(page)
    with sessions() as session:
        hub = session.get_one(Hub, "hub-edith")
        edith = hub.person_id
        assert hub.broker_password_hash and password not in hub.broker_password_hash
    page.goto(f"{url}/admin/people")
    expect(page.get_by_test_id("people")).to_contain_text("Edith Clarke")
    expect(page.get_by_test_id("hub-credentials")).to_be_hidden()  # once: gone on the next visit
    assert password not in page.content()
    shot(page, "admin-people.png")

    # A device, with its battery and when it was last heard from.
    page.goto(f"{url}/admin/devices")
    page.select_option("#device-hub", "hub-edith")
    page.fill("#device-id", "door-1")
    page.select_option("#device-kind", "door")
    page.select_option("#device-location", "front_door")
    page.get_by_role("button", name="Add device").click()
    expect(page.get_by_test_id("flash")).to_have_text("Device added")
    row = page.locator('[data-device="hub-edith/door-1"]')
    expect(row).to_contain_text("not reported")
    expect(row).to_contain_text("quiet")  # never heard from
    with sessions() as session, session.begin():  # as ingest keeps them from the hub's heartbeats
        pendant = session.get_one(Device, ("hub-edith", "pendant-1"))
        pendant.battery_pct, pendant.last_seen = 82, utc_now() - timedelta(minutes=4)
    page.goto(f"{url}/admin/devices")
    heard = page.locator('[data-device="hub-edith/pendant-1"]')
    expect(heard).to_contain_text("82 %")
    expect(heard).to_contain_text("working")
    shot(page, "admin-devices.png")

    # An account with a one-time password that the administrator passes on.
    page.goto(f"{url}/admin/users")
    page.fill("#user-username", "kim.nurse")
    page.fill("#user-name", "Kim Nurse")
    page.select_option("#user-role", "nurse")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_test_id("one-time-password")).to_be_visible()
    one_time = page.get_by_test_id("password").inner_text()
    assert httpx.post(f"{url}/api/v1/auth/token", data={"username": "kim.nurse", "password": one_time}
                      ).status_code == 200
    assert_accessible(page)
    page.goto(f"{url}/admin/users")
    kim = page.locator('[data-user="kim.nurse"]')
    expect(kim.get_by_test_id("role")).to_have_text("nurse")
    kim.get_by_label("Role of kim.nurse").select_option("team_lead")
    kim.get_by_role("button", name="Change role").click()
    expect(page.get_by_test_id("flash")).to_have_text("Role changed")
    expect(kim.get_by_test_id("role")).to_have_text("team lead")
    page.once("dialog", lambda dialog: dialog.accept())
    kim.get_by_role("button", name="Disable kim.nurse").click()
    expect(page.get_by_test_id("flash")).to_have_text("Account disabled")
    expect(kim).to_contain_text("disabled")
    assert httpx.post(f"{url}/api/v1/auth/token", data={"username": "kim.nurse", "password": one_time}
                      ).status_code == 401
    shot(page, "admin-users.png")

    # A responder with a contact point, and a test message through the real channel.
    page.goto(f"{url}/admin/responders")
    page.fill("#responder-name", "Kim Keyholder")
    page.select_option("#responder-role", "keyholder")
    page.fill("#contact-1", "mailto:kim@family.test")
    page.get_by_role("button", name="Add responder").click()
    expect(page.locator('[data-responder="Kim Keyholder"]')).to_contain_text("mailto:kim@family.test")
    page.get_by_role("button", name="Send a test to Kim Keyholder").click()
    expect(page.get_by_test_id("test-results")).to_contain_text("mailto:kim@family.test: sent")
    [test_mail] = mail.mailbox.received
    assert test_mail.rcpt_tos == ["kim@family.test"] and "test" in str(test_mail.message["Subject"]).lower()
    assert_accessible(page)
    shot(page, "admin-responders.png")
    with httpx.Client(base_url=url) as api:
        lee = api.post("/api/v1/responders", headers=bearer(api, ADMIN),
                       json={"name": "Lee Neighbour", "role": "keyholder", "contact_points": ["mailto:lee@n.test"]})
        assert lee.status_code == 201, lee.text

    # The person's keyholders in their order, and a rule setting with its reason.
    page.goto(f"{url}/admin/people/{edith}")
    expect(page.get_by_test_id("person-name")).to_have_text("Edith Clarke")
    page.select_option("#keyholder-1", label="Lee Neighbour")
    page.select_option("#keyholder-2", label="Kim Keyholder")
    page.get_by_role("button", name="Save keyholders").click()
    expect(page.get_by_test_id("flash")).to_have_text("Keyholders saved")
    expect(page.locator("[data-testid=keyholders] li")).to_have_text([re.compile("^Lee Neighbour"),
                                                                         re.compile("^Kim Keyholder")])
    page.get_by_text("Edit details").click()
    page.fill("#edit-allergies", "Penicillin")
    page.fill("#edit-communication", "Hard of hearing: speak slowly")
    page.get_by_role("button", name="Save details").click()
    expect(page.get_by_test_id("flash")).to_have_text("Details saved")
    expect(page.get_by_test_id("caller-record")).to_contain_text("Penicillin")
    page.get_by_text("Edit details").click()
    page.select_option("#edit-service", "monitored")
    page.get_by_role("button", name="Change service").click()
    expect(page.get_by_test_id("service")).to_have_text("monitored")
    page.fill("#absence-from", "2031-03-01T10:00")
    page.fill("#absence-until", "2031-03-08T18:00")
    page.fill("#absence-reason", "Hospital stay")
    page.get_by_role("button", name="Plan absence").click()
    expect(page.get_by_test_id("absences")).to_contain_text("Hospital stay")
    page.select_option("#rule-parameter", "door_left_open.minutes")
    page.fill("#rule-value", "30")
    page.fill("#rule-reason", "GP's instruction: she airs the house every morning")
    page.get_by_role("button", name="Save setting").click()
    expect(page.get_by_test_id("rule-settings")).to_contain_text("Minutes a door may stay open before it alerts: 30")
    expect(page.get_by_test_id("rule-settings")).to_contain_text("airs the house")
    assert_accessible(page)
    shot(page, "admin-person.png")

    # A responder changed, and one retired: the confirmation names whose keyholder they are.
    page.goto(f"{url}/admin/responders")
    kim_row = page.locator('[data-responder="Kim Keyholder"]')
    expect(kim_row).to_contain_text("Edith Clarke")
    kim_row.get_by_text("Change Kim Keyholder").click()
    kim_row.get_by_label("First contact point").fill("mailto:kim@new.test")
    kim_row.get_by_role("button", name="Save Kim Keyholder").click()
    expect(page.get_by_test_id("flash")).to_have_text("Responder changed")
    expect(page.locator('[data-responder="Kim Keyholder"]')).to_contain_text("mailto:kim@new.test")
    asked: list[str] = []

    def confirm(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", confirm)
    lee_row = page.locator('[data-responder="Lee Neighbour"]')
    lee_row.get_by_text("Change Lee Neighbour").click()
    lee_row.get_by_role("button", name="Retire Lee Neighbour").click()
    expect(page.get_by_test_id("flash")).to_have_text("Responder retired")
    assert asked == ["Retire Lee Neighbour? They will not be called from now on and come off the keyholder lists "
                     "of Edith Clarke."]
    expect(page.locator('[data-responder="Lee Neighbour"]')).to_contain_text("retired")
    assert_accessible(page)

    # Teams, policies and call scripts.
    with httpx.Client(base_url=url) as api:
        assert api.post("/api/v1/users", headers=bearer(api, ADMIN),
                        json={"username": "lead.kim", "role": "team_lead"}).status_code == 201
    page.goto(f"{url}/admin/teams")
    page.fill("#team-name", "North locality nursing")
    page.get_by_role("button", name="Create team").click()
    team = page.locator('[data-team="North locality nursing"]')
    team.get_by_label("Add a nurse or team lead to North locality nursing").select_option("lead.kim")
    team.get_by_role("button", name="Add to team").click()
    expect(page.get_by_test_id("flash")).to_have_text("Member added")
    team.get_by_label("Put a person on North locality nursing's caseload").select_option(str(edith))
    team.get_by_role("button", name="Add to caseload").click()
    expect(page.get_by_test_id("flash")).to_have_text("Added to the caseload")
    expect(team).to_contain_text("lead.kim")
    expect(team.get_by_role("link", name="Edith Clarke")).to_be_visible()
    shot(page, "admin-teams.png")
    page.goto(f"{url}/admin/policies")
    expect(page.get_by_role("heading", level=1)).to_have_text("Escalation policies")
    expect(page.locator('[data-policy="keyholder_only"]')).to_contain_text("Tell the keyholders, then wait 5 min")
    shot(page, "admin-policies.png")
    page.goto(f"{url}/admin/scripts")
    script = page.locator('[data-script="door_left_open"]')
    script.locator("summary").click()
    script.get_by_label("Title").fill("Door left open (front or back)")
    script.get_by_role("button", name="Save script").click()
    expect(page.get_by_test_id("flash")).to_have_text("Call script saved")
    expect(script.get_by_role("heading", level=2)).to_have_text("Door left open (front or back)")
    shot(page, "admin-scripts.png")

    # Retire the home: the hub and devices leave the books, the person stays.
    page.goto(f"{url}/admin/people/{edith}")
    page.fill("#retire-reason", "Moved into residential care")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Retire the home").click()
    expect(page.get_by_test_id("flash")).to_have_text("Home retired")
    expect(page.get_by_text("Nothing to retire")).to_be_visible()
    with sessions() as session:
        assert session.get(Hub, "hub-edith") is None and session.get(Person, edith) is not None
    actions = audit_actions(sessions, ADMIN)
    for action in ("enrol_home", "add_device", "create_user", "create_responder", "test_responder",
                   "change_contacts", "change_rule_setting", "create_team", "add_team_member", "assign_caseload",
                   "edit_call_script", "edit_caller_record", "change_service", "plan_absence", "retire_home",
                   "view_patient", "change_responder", "retire_responder"):
        assert action in actions, action
    with sessions() as session:
        details = list(session.scalars(select(AuditEntry.detail).where(AuditEntry.actor == ADMIN)))
    assert not any("9753" in detail or password in detail or one_time in detail for detail in details)


def _link(sessions: Any, world: World, person: str, responder: str) -> str:
    """An accept link for the person's open alert, as the escalator would have sent it to `responder`."""
    with sessions() as session, session.begin():
        keyholder = Responder(name=responder, role="keyholder", active=True)
        session.add(keyholder)
        session.flush()
        reference = f"test/{person}/{keyholder.id}"
        token, hashed = accept_token(link_key(session), reference)
        session.add(Notification(alert_id=world.alerts[person], responder_id=keyholder.id, responder_name=responder,
                                 address="mailto:kim@family.test", reference=reference, purpose="alert",
                                 reason="keyholder 1 of 1", status="sent", created_at=utc_now(), sent_at=utc_now(),
                                 accept_token_hash=hashed))
        session.get_one(Person, world.people[person]).access_details = "Key safe left of the door, code 2468"
    return token


def test_the_accept_page_on_a_phone_gives_the_centres_number_what_to_do_and_when_to_call_999(
        centre: tuple[str, Any, World, SmtpServer], browser_page: Page) -> None:
    url, sessions, world, _mail = centre
    going, not_going = _link(sessions, world, "ada", "Kim"), _link(sessions, world, "bob", "Lee")
    page = browser_page
    page.set_viewport_size(PHONE)
    page.goto(f"{url}/accept/{going}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Ada")
    expect(page.get_by_text("Kim, can you go to Ada now?")).to_be_visible()
    expect(page.get_by_test_id("centre-phone").first).to_have_attribute("href", "tel:01632960123")
    expect(page.get_by_text("Call 999 if Ada:")).to_be_visible()
    assert "2468" not in page.content()
    width = page.evaluate("document.documentElement.scrollWidth")  # no sideways scrolling on a phone
    assert width <= PHONE["width"], width
    assert_accessible(page)
    shot(page, "accept.png", fresh=False)
    page.get_by_role("button", name="Yes, I am going").click()
    expect(page.get_by_test_id("accepted")).to_contain_text("You are going to Ada")
    expect(page.locator("#access")).to_have_text("Key safe left of the door, code 2468")
    expect(page.locator("#address")).to_have_text("1 Test Street")
    assert_accessible(page)
    shot(page, "accept-accepted.png", fresh=False)

    page.goto(f"{url}/accept/{not_going}")
    page.get_by_role("button", name="No, I cannot go").click()
    expect(page.get_by_text("You said you cannot go to Bob")).to_be_visible()
    assert "2468" not in page.content()
    assert_accessible(page)
    with sessions() as session:
        declined = session.scalars(select(AuditEntry).where(AuditEntry.action == "decline_accept_link")).one()
        assert declined.person_id == world.people["bob"] and declined.actor.endswith(":Lee")
    page.goto(f"{url}/accept/not-a-link")
    expect(page.get_by_role("heading", level=1)).to_have_text("Link not valid")
    assert json.dumps(CENTRE_PHONE)[1:-1] in page.content()
