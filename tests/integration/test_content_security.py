"""Under the centre's Content-Security-Policy, in a real headless Chromium: the operator's console
and /docs work, the browser blocks nothing on them, and neither page asks any other host for
anything (centres run on closed networks)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api_world import PASSWORD, api_app, served


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
    page.on("console", lambda message: blocked.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text else None)
    page.on("request", lambda request: requests.append(request.url))
    return blocked, requests


def test_the_console_works_under_the_policy(api_url: str, browser_page: Any) -> None:
    page = browser_page
    blocked, requests = _watch(page)
    page.goto(f"{api_url}/")
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#link.up", timeout=10_000)
    page.locator("#queue tbody tr[data-rule=pendant_alarm]").first.wait_for(timeout=10_000)
    assert page.locator("#queue tbody tr").count() == 2  # Ada's alert and Bob's
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
