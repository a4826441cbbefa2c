"""Under the centre's Content-Security-Policy, in a real headless Chromium: every page of every
role's menu, the sign-in page and /docs work, the browser blocks nothing on them, and none asks
any other host for anything (centres run on closed networks). The templates and scripts
themselves are checked for inline script and style in tests/unit/centre_app/test_api_headers.py."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from centre_app.pages.navigation import NAVIGATION
from monitoring_centre.roles import Role
from tests.support.api_world import ADMIN, PASSWORD, api_app, served

ACCOUNTS = {Role.ADMIN: ADMIN, Role.OPERATOR: "operator", Role.NURSE: "nurse", Role.FAMILY: "daughter",
            Role.PERSON: "ada"}
"""An account of `api_world` for each role whose menu is visited (a team lead's menu is a nurse's, and more)."""


@pytest.fixture
def api_url(tmp_path: Path) -> Iterator[str]:
    app, engine, _world = api_app(f"sqlite:///{tmp_path / 'centre.db'}")
    try:
        with served(app) as url:
            yield url
    finally:
        engine.dispose()


def _watch(page: Any) -> tuple[list[str], list[str]]:
    """Console messages that report something the policy blocked, and the URL of every request
    the page makes."""
    blocked: list[str] = []
    requests: list[str] = []
    page.on("console", lambda message: blocked.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text or "Refused to" in message.text else None)
    page.on("request", lambda request: requests.append(request.url))
    return blocked, requests


def test_the_operator_queue_works_under_the_policy(api_url: str, browser_page: Any) -> None:
    page = browser_page
    blocked, requests = _watch(page)
    page.goto(f"{api_url}/")
    page.fill("#username", "operator")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.locator("#link.op-link--up").wait_for(timeout=15_000)
    page.locator("#queue tbody tr[data-rules~=pendant_alarm]").first.wait_for(timeout=15_000)
    assert page.locator("#queue tbody tr").count() == 2  # Ada's alert and Bob's
    assert blocked == []
    assert all(url.startswith(api_url) for url in requests), requests


@pytest.mark.parametrize("role", list(ACCOUNTS))
def test_every_page_of_each_menu_works_under_the_policy(api_url: str, browser_page: Any, role: Role) -> None:
    page = browser_page
    blocked, requests = _watch(page)
    page.goto(f"{api_url}/signin")
    page.fill("#username", ACCOUNTS[role])
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{api_url}{NAVIGATION[role][0].href}**", timeout=15_000)
    for item in NAVIGATION[role]:
        page.goto(f"{api_url}{item.href}", wait_until="load")
        page.locator("main").wait_for(timeout=15_000)
    assert blocked == []
    assert all(url.startswith(api_url) for url in requests), requests


def test_docs_render_from_the_centre_alone(api_url: str, browser_page: Any) -> None:
    page = browser_page
    blocked, requests = _watch(page)
    page.goto(f"{api_url}/docs")
    page.locator(".opblock").first.wait_for(timeout=20_000)
    assert page.locator(".opblock").count() >= 20  # every operation of the document, rendered
    assert "Telecare monitoring centre" in page.locator(".title").first.inner_text()
    assert blocked == []
    assert all(url.startswith(api_url) for url in requests), requests
