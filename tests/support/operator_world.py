"""The operator's pages in a real Chromium against a real HTTP server: the centre's app alone
(`api_world.api_app`: no broker, no escalator) served on a loopback port, with its live feed
bound to the server's event loop so that alarms raised here reach open pages as they would
from ingest, and a way to stop the server while a page is open.

Accounts: besides `api_world.populate`'s (admin, operator, ...), two operators with names,
NIGHT ("Nina Patel") and RELIEF ("Raj Singh"), all with `api_world.PASSWORD`."""

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from centre_app.api.deps import CentreState
from centre_app.auth import create_user
from detection.events import PENDANT_ALARM
from monitoring_centre.alerts import raise_alert
from monitoring_centre.storage import Alert, Person, utc_now
from tests.support.api_world import ADMIN, PASSWORD, World, api_app, bearer, served

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
"""Where the pages' screenshots go: docs/console/operator-*.png, at 1440×900."""
NIGHT = ("nina", "Nina Patel")
RELIEF = ("raj", "Raj Singh")
BIND_PATH = "/test-only/bind-feed"


@dataclass
class LiveWorld:
    url: str
    app: FastAPI
    world: World
    stack: ExitStack
    loop: list[asyncio.AbstractEventLoop] = field(default_factory=list)

    @property
    def state(self) -> CentreState:
        state = self.app.state.centre
        assert isinstance(state, CentreState)
        return state

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.state.sessions

    def raise_alarm(self, person: str, rule: Any = PENDANT_ALARM, why: str = "test") -> int:
        """An alarm for `person` ("ada", "bob") as ingest would raise it, told to open pages."""
        with self.sessions() as session, session.begin():
            alert = raise_alert(session, person_id=self.world.people[person], hub_id=f"hub-{person}", rule=rule,
                                subject="", at=utc_now(), evidence={"code": "manual_alarm"}, why=why)
            alert_id = alert.id
        self.state.feed.publish({alert_id})
        return alert_id

    def alert(self, alert_id: int) -> Alert:
        with self.sessions() as session:
            return session.get_one(Alert, alert_id)

    @contextmanager
    def admin(self) -> Iterator[httpx.Client]:
        """An API client signed in as the administrator."""
        with httpx.Client(base_url=self.url, timeout=30) as client:
            client.headers.update(bearer(client, ADMIN))
            yield client

    def stop(self) -> None:
        """Stops the server as a centre stops: every open stream ended, then the server."""
        self.loop[0].call_soon_threadsafe(self.state.feed.close)
        self.stack.close()


@contextmanager
def live_world(tmp_path: Path) -> Iterator[LiveWorld]:
    """The served app (test NHS numbers allowed, as in the demo) and its world; stopped on leaving."""
    app, engine, world = api_app(f"sqlite:///{tmp_path / 'centre.db'}", allow_test_nhs_numbers=True)
    loops: list[asyncio.AbstractEventLoop] = []

    @app.post(BIND_PATH, include_in_schema=False)
    async def bind() -> None:  # the feed on the server's own event loop, as the centre's start-up does
        loops.append(asyncio.get_running_loop())
        app.state.centre.feed.bind(loops[0])

    app.state.centre.alerts_changed = app.state.centre.feed.publish  # as the centre tells its consoles
    with app.state.centre.sessions() as session, session.begin():
        for username, name in (NIGHT, RELIEF):
            create_user(session, username, PASSWORD, "operator", name)
    stack = ExitStack()
    try:
        url = stack.enter_context(served(app))
        httpx.post(f"{url}{BIND_PATH}", timeout=30).raise_for_status()
        yield LiveWorld(url, app, world, stack, loops)
    finally:
        stack.close()
        engine.dispose()


def sign_in(page: Any, url: str, username: str, next_path: str = "") -> None:
    """Signs in on the sign-in page (as a person would: the form) and waits for the landing page."""
    page.goto(f"{url}/signin{'?next=' + quote(next_path, safe='/') if next_path else ''}")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}{next_path or '/operator'}**", timeout=30_000)


def person_name(world: LiveWorld, person: str) -> str:
    with world.sessions() as session:
        return session.get_one(Person, world.world.people[person]).name


def screenshot(page: Any, name: str) -> None:
    """The page as an operator sees it on a 1440×900 screen, into docs/console/operator-<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.mouse.move(200, 450)
    page.mouse.wheel(0, -10_000)  # from the top of the page, header and menu in view
    page.screenshot(path=str(SCREENSHOTS / f"operator-{name}.png"))
