"""Helpers of the pages' browser tests: a served centre with the views world, sign-in, screenshots."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from tests.support.api_world import PASSWORD, World, api_app, served
from tests.support.views_world import Views, add_views

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
"""Where the pages' screenshots go (docs/console/*.png)."""


@dataclass(frozen=True)
class Site:
    url: str
    world: World
    views: Views
    sessions: sessionmaker[Session]


@contextmanager
def views_site(tmp_path: Path) -> Iterator[Site]:
    """The HTTP app alone on SQLite with `api_world` and `views_world`, served on a loopback port."""
    app, engine, world = api_app(f"sqlite:///{tmp_path / 'centre.db'}")
    sessions: sessionmaker[Session] = app.state.centre.sessions
    views = add_views(sessions, world)
    try:
        with served(app) as url:
            yield Site(url, world, views, sessions)
    finally:
        engine.dispose()


def sign_in(page: Any, site: Site, username: str, landing: str) -> None:
    """Signs in on the sign-in page and waits for the role's landing page."""
    page.goto(f"{site.url}/signin")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.url}{landing}", timeout=15_000)


def screenshot(page: Any, name: str) -> None:
    """A full-page PNG of the page as it is, into docs/console/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
