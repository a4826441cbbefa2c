"""The admin's and the nurse's pages speak in words, never in the code's keys: rule settings by
the rule's title and each parameter's plain description (`detection.defaults.LABELS`), call
scripts by the rule's title, escalation policies citing real sources, threshold names in full
(a 0 that means off says "off"), enrolment errors with an example; the keyholder picker offers
keyholders only. Accounts are named by their display name and role in words, the demo's with
real-looking names."""

import re
import secrets
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from alerting import policy
from centre_app.api.deps import CentreState
from centre_app.centre import Centre
from centre_app.settings import CentreSettings
from detection.defaults import DEFAULTS, label, plain
from detection.rules import CATALOGUE, RuleId
from monitoring_centre.roles import ROLE_TITLES, Role
from monitoring_centre.storage import PersonContact, Responder, User
from telecare.demo import ACCOUNTS, _enrol_demo_home
from tests.support.api_world import ADMIN, PASSWORD, World, api_app, bearer

SAME_SITE = {"sec-fetch-site": "same-origin"}
KEY = re.compile(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b")
"""A snake_case key (`battery_low`, `bedtime_min_nights`): never in a page's words."""


@pytest.fixture
def site(database_url: str) -> Iterator[tuple[TestClient, World]]:
    app, engine, world = api_app(database_url)
    with TestClient(app, base_url="https://centre.test") as client:
        yield client, world
    engine.dispose()


def sign_in(client: TestClient, username: str) -> None:
    response = client.post("/signin", data={"username": username, "password": PASSWORD}, headers=SAME_SITE,
                           follow_redirects=False)
    assert response.status_code == 303, response.text


def words(html: str) -> str:
    """What a reader sees: the text between tags, without scripts' data and attributes."""
    return unescape(re.sub(r"<[^>]*>", " ", html))


def options(html: str, select_id: str) -> list[str]:
    select = re.search(rf'<select[^>]*id="{select_id}".*?</select>', html, re.S)
    assert select, select_id
    return [unescape(text).strip() for text in re.findall(r"<option[^>]*>(.*?)</option>", select.group(0), re.S)]


def test_every_parameter_has_a_plain_label_and_no_key_in_it() -> None:
    for rule, table in DEFAULTS.items():
        for name in table:
            text = label(RuleId(rule), name)
            assert text and not KEY.search(text), (rule, name, text)
    assert plain(RuleId.PULSE_LOW, "review_at_or_below", 0) == "off"
    assert plain(RuleId.BATTERY_LOW, "enabled", True) == "on"


def test_admin_rule_settings_are_titles_and_descriptions(site: tuple[TestClient, World]) -> None:
    client, world = site
    ada = world.people["ada"]
    saved = client.put(f"/api/v1/patients/{ada}/rules/night_exit", headers=bearer(client, ADMIN),
                       json={"params": {"bedtime_min_nights": 5}, "reason": "testing"})
    assert saved.status_code == 200, saved.text
    sign_in(client, ADMIN)
    page = client.get(f"/admin/people/{ada}").text
    offered = options(page, "rule-parameter")
    assert offered
    for text in offered:
        assert not KEY.search(text) and "true" not in text and "false" not in text, text
    title = CATALOGUE[RuleId.BATTERY_LOW].title
    assert f"{title}: Rule switched on (default on, from off to on)" in offered
    table = re.search(r'data-testid="rule-settings".*?</table>', page, re.S)
    assert table
    shown = words(table.group(0))
    assert CATALOGUE[RuleId.NIGHT_EXIT].title in shown and "Nights to learn a bedtime before it is used: 5" in shown
    assert not KEY.search(shown.replace("night_exit", "")), shown


def test_keyholder_picker_offers_keyholders_only_and_the_api_refuses_others(site: tuple[TestClient, World]) -> None:
    client, world = site
    centre: CentreState = cast(FastAPI, client.app).state.centre
    with centre.sessions() as session, session.begin():
        team = Responder(name="Centre operators", role="operator")
        susan = Responder(name="Susan Hughes", role="keyholder")
        session.add_all([team, susan])
        session.flush()
        team_id = team.id
    ada = world.people["ada"]
    refused = client.put(f"/api/v1/patients/{ada}/contacts", headers=bearer(client, ADMIN),
                         json={"responder_ids": [team_id]})
    assert refused.status_code == 422 and "not a keyholder" in refused.text
    sign_in(client, ADMIN)
    page = client.get(f"/admin/people/{ada}").text
    picker = re.search(r'id="keyholders-form".*?</form>', page, re.S)
    assert picker
    offered = {unescape(text).strip() for text in re.findall(r"<option[^>]*>(.*?)</option>", picker.group(0))}
    assert "Susan Hughes" in offered
    assert not any("operator" in text.lower() for text in offered), offered


def test_call_scripts_and_policies_in_words(site: tuple[TestClient, World]) -> None:
    client, _world = site
    sign_in(client, ADMIN)
    scripts = words(client.get("/admin/scripts").text)
    assert "Rule pendant_alarm" not in scripts
    assert f"For alerts of the kind “{CATALOGUE[RuleId.PENDANT_ALARM].title}”" in scripts
    policies = words(client.get("/admin/policies").text)
    assert not re.search(r"\b[\w-]+\.md\b", policies), policies
    for chain in policy.POLICIES.values():
        assert ".md" not in chain.source, chain.name


def test_nurse_thresholds_are_named_in_full_and_zero_is_off(site: tuple[TestClient, World]) -> None:
    client, world = site
    sign_in(client, "nurse")
    page = client.get(f"/nurse/people/{world.people['ada']}").text
    table = re.search(r'id="thresholds".*?</table>', page, re.S)
    assert table
    rows = [[cell.strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(0), re.S)]
    labels = {unescape(row[0]): row[1] for row in rows if row}
    assert "SpO2 low (or above target on oxygen): SpO2 Scale 2 (for people at risk of hypercapnic failure): "\
           "urgent at or below" in labels
    assert labels["Pulse low: Review at or below"] == "off"
    assert not any("scale2" in name or KEY.search(name) for name in labels), labels


def test_the_header_names_the_account_and_its_role_in_words(site: tuple[TestClient, World]) -> None:
    client, _world = site
    centre: CentreState = cast(FastAPI, client.app).state.centre
    with centre.sessions() as session, session.begin():
        session.get_one(User, session.scalars(select(User.id).where(User.username == "nurse")).one()) \
            .display_name = "Jane Smith"
    sign_in(client, "nurse")
    page = client.get("/nurse").text
    header = re.search(r'<nav class="nhsuk-header__account".*?</nav>', page, re.S)
    assert header and "Jane Smith, community nurse" in words(header.group(0)), page
    assert "(nurse)" not in words(page)
    assert "on your caseload" in words(page) and "assigned to" not in words(page)
    assert {role: words_ for role, words_ in ROLE_TITLES.items() if "_" in words_ or "(" in words_} == {}


def test_the_demo_accounts_have_real_looking_names_and_susan_is_one_person(tmp_path: Path) -> None:
    for account in ACCOUNTS.values():
        assert re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+", account.name), account
    centre = Centre(CentreSettings(database_url=f"sqlite:///{tmp_path / 'centre.db'}",
                                   jwt_secret=secrets.token_urlsafe(48), mqtt_password=secrets.token_urlsafe(16),
                                   allow_test_nhs_numbers=True))
    try:
        _enrol_demo_home(centre, {role: "a-long-demo-password-" + secrets.token_hex(4) for role in Role})
        with centre.sessions() as session:
            susan = session.scalars(select(User).where(User.username == ACCOUNTS[Role.FAMILY].username)).one()
            keyholders = session.execute(select(Responder.name, PersonContact.relationship).join(
                PersonContact, PersonContact.responder_id == Responder.id)).all()
            names = set(session.scalars(select(User.display_name)))
    finally:
        centre.engine.dispose()
    assert susan.display_name == "Susan Hughes"
    assert [tuple(row) for row in keyholders] == [("Susan Hughes", "daughter")]
    assert names == {account.name for account in ACCOUNTS.values()}
