"""Every page, asked for by every role: a role a page is not for gets the 403 page (its refusal
audited) or a redirect; no page shows another role's controls; no page shows a person the
account may not see.

The pages are found in the app's own routes when the test runs (every GET route outside the
API, the static files and the signed-out pages), so a page added later is covered without
editing this file; a per-person page is asked for with each person's id (and a per-alert page
with each alert's). Who a page is for is read from the menus (`navigation.NAVIGATION`): a page
belongs to every role with the nearest menu entry at its path or above it (`/nurse/people/7` to
the roles whose menu has `/nurse`, `/nurse/teams` to the team lead's own entry). The
accounts: `tests/support/api_world.py` (Ada on the nurse's caseload, the daughter with Ada's
consent, `ada` Ada's own account), and a team lead with no one on her caseload.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from playwright.sync_api import Page as BrowserPage
from sqlalchemy import Engine, func, select

from centre_app.api.deps import SESSION_COOKIE
from centre_app.auth import create_user
from centre_app.pages import JSON_PREFIXES
from centre_app.pages.navigation import ADMIN_PAGES, NAVIGATION
from monitoring_centre.access import grant
from monitoring_centre.roles import Role
from monitoring_centre.storage import AuditEntry, Person, User
from tests.support.api_world import ADMIN, PASSWORD, World, api_app, served

ACCOUNTS = {Role.OPERATOR: "operator", Role.NURSE: "nurse", Role.TEAM_LEAD: "lead", Role.PERSON: "ada",
            Role.FAMILY: "daughter", Role.ADMIN: ADMIN}
NOT_PAGES = ("/static", "/docs", "/console", "/accept", "/signin", "/signout")
"""Paths that are not a role's page: files, the API's documents, the signed-out pages."""
SEES_EVERYONE = frozenset({Role.OPERATOR, Role.ADMIN})
SEES = {Role.NURSE: {"ada"}, Role.FAMILY: {"ada"}, Role.PERSON: {"ada"}, Role.TEAM_LEAD: set[str]()}
"""Whom each other role's account may see, by the populated world's names."""
FACTS = {"ada": ("Ada", "1 Test Street"), "bob": ("Bob", "2 Test Street")}
"""What would show that a page holds a person's data: their name (as a word) or their address."""

OPERATOR_CONTROLS = re.compile(r"<button[^>]*>\s*(Acknowledge|Resolve|Accept the alarm)\b", re.IGNORECASE)
ADMIN_CONTROLS = re.compile(r"data-admin-form|/api/v1/(users|homes|devices)\b")


@dataclass(frozen=True)
class Page:
    template: str
    path: str


def build(database: Path) -> tuple[FastAPI, Engine, World]:
    """The populated world, with a team lead and the daughter's consent to see Ada."""
    app, engine, people = api_app(f"sqlite:///{database}")
    with app.state.centre.sessions() as session, session.begin():
        create_user(session, "lead", PASSWORD, "team_lead", "Team lead with no caseload")
        daughter = session.scalars(select(User).where(User.username == "daughter")).one()
        grant(session, daughter, session.get_one(Person, people.people["ada"]), "consent")
    return app, engine, people


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, World]]:
    app, engine, people = build(tmp_path_factory.mktemp("pages") / "centre.db")
    with TestClient(app, base_url="https://centre.test") as client:
        yield client, people
    engine.dispose()


def get_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Every route of the app with its full path, looking into included routers (FastAPI keeps
    an included router as one entry holding the router and its prefix)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):
            context = getattr(route, "include_context", None)
            yield from get_routes(route.original_router.routes, prefix + getattr(context, "prefix", ""))


def pages(client: TestClient, world: World) -> list[Page]:
    """Every page the app has now, with each path parameter filled in every way the world allows."""
    values = {"person_id": [str(i) for i in world.people.values()],
              "alert_id": [str(i) for i in world.alerts.values()]}
    found = []
    for template, route in get_routes(client.app.routes):  # type: ignore[attr-defined]
        if "GET" not in (route.methods or ()) or template == "/" or template.startswith((*JSON_PREFIXES, *NOT_PAGES)):
            continue
        names = re.findall(r"\{(\w+)(?::\w+)?\}", template)
        if any(name not in values for name in names):
            continue  # a parameter this world cannot fill (none of today's pages has one)
        for choice in product(*(values[name] for name in names)):
            path = template
            for name, value in zip(names, choice, strict=True):
                path = re.sub(r"\{" + name + r"(?::\w+)?\}", value, path)
            found.append(Page(template, path))
    return found


def owners(path: str) -> set[Role]:
    """The roles a page is for: those whose menu has the nearest entry at its path or above it
    (`/nurse/teams` is the team lead's own entry, though it is under the nurse's `/nurse`)."""
    above = {(item.href, role) for role, items in NAVIGATION.items() for item in items
             if path == item.href or path.startswith(item.href + "/")}
    nearest = max((len(href) for href, _role in above), default=0)
    return {role for href, role in above if len(href) == nearest}


def sign_in(client: TestClient, role: Role) -> None:
    client.cookies.clear()
    answer = client.post("/signin", data={"username": ACCOUNTS[role], "password": PASSWORD},
                         headers={"sec-fetch-site": "same-origin"}, follow_redirects=False)
    assert answer.status_code == 303 and SESSION_COOKIE in client.cookies, answer.text


def refusals(client: TestClient, username: str, path: str) -> int:
    with client.app.state.centre.sessions() as session:  # type: ignore[attr-defined]
        return session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.actor == username, AuditEntry.action == "refused",
            AuditEntry.detail.startswith(f"GET {path}:"))) or 0


def strangers(role: Role) -> list[str]:
    """The world's people this role's account may not see."""
    return [] if role in SEES_EVERYONE else [name for name in FACTS if name not in SEES[role]]


def test_the_administrators_pages_are_all_there(world: tuple[TestClient, World]) -> None:
    client, people = world
    templates = {page.template for page in pages(client, people)}
    assert {item.href for item in ADMIN_PAGES} <= templates
    assert "/admin/people/{person_id}" in templates


@pytest.mark.parametrize("role", list(ACCOUNTS))
def test_each_role_opens_only_its_own_pages_and_sees_only_its_own_controls_and_people(
        world: tuple[TestClient, World], role: Role) -> None:
    client, people = world
    username = ACCOUNTS[role]
    sign_in(client, role)
    checked = []
    for page in pages(client, people):
        before = refusals(client, username, page.path)
        answer = client.get(page.path, follow_redirects=False)
        where = f"{role.value} GET {page.path}"
        assert answer.status_code < 500, f"{where}: {answer.status_code} {answer.text[:500]}"
        if role not in owners(page.path):
            assert answer.status_code == 403 or answer.status_code in (302, 303, 307), where
            if answer.status_code == 403:
                assert "text/html" in answer.headers["content-type"], where
                assert refusals(client, username, page.path) == before + 1, f"{where}: refusal not audited"
            else:
                assert answer.headers["location"] != page.path, where
            assert_no_one_shown(answer.text, strangers(role), where)
            continue
        assert answer.status_code != 403, f"{where}: a page of the role's own menu refused"
        if answer.status_code != 200:
            continue  # 404: a person this account may not see (audited by the page's own check)
        checked.append(page.path)
        html = answer.text
        if role != Role.OPERATOR:
            assert not OPERATOR_CONTROLS.search(html), f"{where}: an operator's control"
        if role != Role.ADMIN:
            assert not ADMIN_CONTROLS.search(html), f"{where}: an administrator's form"
        assert_no_one_shown(html, strangers(role), where)
    assert checked, f"{role.value}: no page of its own was found"
    landing = client.get("/", follow_redirects=True)
    menu = re.findall(r'class="nhsuk-header__navigation-link"\s+href="([^"]+)"', landing.text)
    assert menu == [item.href for item in NAVIGATION[role]], f"{role.value}: the menu is not the role's own"


def assert_no_one_shown(html: str, names: list[str], where: str) -> None:
    for name in names:
        word, address = FACTS[name]
        assert not re.search(rf"\b{word}\b", html), f"{where}: shows {word}, whom this account may not see"
        assert address not in html, f"{where}: shows {word}'s address"


def test_a_person_sees_their_own_name_and_a_family_member_the_consented_person(
        world: tuple[TestClient, World]) -> None:
    client, people = world
    for role in (Role.PERSON, Role.FAMILY):
        sign_in(client, role)
        landing = client.get("/", follow_redirects=True)
        assert landing.status_code == 200, landing.text[:300]
        own = [page for page in pages(client, people) if role in owners(page.path)]
        texts = [client.get(page.path).text for page in own]
        assert any(re.search(r"\bAda\b", text) for text in texts), f"{role.value}: Ada's own pages do not name her"


API_CALL = re.compile(r"/api/v1/(?!.*stream)")
"""The page scripts' reads (the live event stream never ends, so it is not waited for)."""


class OpenReads:
    """Counts the page scripts' API reads that have not yet finished (requests seen by Playwright)."""

    def __init__(self, page: BrowserPage) -> None:
        self.open = 0
        page.on("request", lambda request: self._count(request.url, 1))
        page.on("requestfinished", lambda request: self._count(request.url, -1))
        page.on("requestfailed", lambda request: self._count(request.url, -1))

    def _count(self, url: str, change: int) -> None:
        if API_CALL.search(url):
            self.open += change

    def settle(self, page: BrowserPage) -> None:
        """Waits (at most 10 s) until the page has loaded and none of its scripts' reads is open."""
        page.wait_for_load_state("load")
        for _ in range(100):
            if self.open <= 0:
                return
            page.wait_for_timeout(100)
        raise AssertionError(f"{page.url}: the page's reads did not finish")


def test_in_chromium_no_page_shows_another_roles_controls_or_people(tmp_path: Path, browser_page: BrowserPage) -> None:
    """The same checks on the pages as the browser shows them, after their scripts have drawn
    what they read from the API (the operator's queue, the nurse's charts): every page of each
    role's own menu."""
    app, engine, _people = build(tmp_path / "centre.db")
    page = browser_page
    reads = OpenReads(page)
    try:
        with served(app) as url:
            routes = {template for template, _route in get_routes(app.routes)}
            for role, username in ACCOUNTS.items():
                page.context.clear_cookies()
                page.goto(f"{url}/signin")
                page.fill("#username", username)
                page.fill("#password", PASSWORD)
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url(f"{url}{NAVIGATION[role][0].href}")
                for item in NAVIGATION[role]:
                    if item.href not in routes:
                        continue  # a page not built yet
                    page.goto(url + item.href)
                    reads.settle(page)
                    where = f"{role.value} in Chromium {item.href}"
                    html = page.content()
                    if role != Role.OPERATOR:
                        assert not OPERATOR_CONTROLS.search(html), f"{where}: an operator's control"
                        assert page.get_by_role("button", name=re.compile("^(Acknowledge|Resolve)")).count() == 0, where
                    if role != Role.ADMIN:
                        assert not ADMIN_CONTROLS.search(html), f"{where}: an administrator's form"
                    assert_no_one_shown(page.locator("body").inner_text(), strangers(role), where)
    finally:
        engine.dispose()
