"""What every page shares: the templates, the signed-in user, the role check and the error page.

Pages are server-rendered (Jinja2, as FastAPI documents) on NHS.UK frontend's styles and
components (`nhsuk-frontend-jinja`, the vendored `nhsuk-frontend` 10.6.1); the live parts (the
operator's queue, charts) are small scripts over the same JSON API every other client uses, so
every read and refusal is checked and audited in one place.

- `PageUser`: the account signed in by the session cookie; a page asked for without one
  redirects to `/signin?next=<path>` (`SignInNeeded`).
- `page_roles(Role.NURSE, ...)`: the account, if its role may open the page; else a 403 page,
  the refusal audited (`centre_app.api.deps.refuse`).
- `render(request, user, "nurse/caseload.html", title=..., **context)`: a page in `base.html`
  with the role's menu and the user's name.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Protocol
from urllib.parse import quote
from zoneinfo import ZoneInfo

import nhsuk_frontend_jinja  # type: ignore[import-untyped]
from fastapi import Depends, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import (
    ChainableUndefined,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from centre_app.api.deps import SESSION_COOKIE, Db, centre, person_asked_about, refuse
from centre_app.auth import signed_in_user
from centre_app.pages.navigation import menu
from monitoring_centre import nhs_number
from monitoring_centre.roles import ROLE_TITLES, Role
from monitoring_centre.storage import User

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
SERVICE_NAME = "Telecare monitoring centre"
DEFAULT_ZONE = "Europe/London"

environment = Environment(
    loader=ChoiceLoader([FileSystemLoader(TEMPLATES),
                         FileSystemLoader(Path(nhsuk_frontend_jinja.__file__).parent / "templates")]),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True, lstrip_blocks=True,
    undefined=ChainableUndefined)  # NHS.UK frontend's macros read optional parameters as `params.a.b`
templates = Jinja2Templates(env=environment)


_TITLES = {role.value: words for role, words in ROLE_TITLES.items()}


class Account(Protocol):
    display_name: str
    username: str
    role: str


def signed_in_as(user: Account) -> str:
    """An account as the pages name it (the header, a team's members): the display name and the
    role in words ("Jane Smith, community nurse"); the username only for an account with no
    display name."""
    words = _TITLES.get(user.role, "")
    name = user.display_name or user.username
    return f"{name}, {words}" if words else name


environment.globals["signed_in_as"] = signed_in_as
environment.filters["signed_in_as"] = signed_in_as


@pass_context
def local_time(context: Context, moment: datetime | None, style: str = "%-d %b %Y %H:%M") -> str:
    """A time as every page shows it: in the centre's time zone (`settings.timezone`, named once
    per page by `base.html`), never in UTC or the server's zone; "" for None."""
    if moment is None:
        return ""
    zone = ZoneInfo(str(context.get("centre_zone") or DEFAULT_ZONE))
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(zone).strftime(style)


def zone_words(zone: str) -> str:
    """The time zone the pages' times are in, in words: "UK time" for Europe/London."""
    return "UK time (GMT, or BST in summer)" if zone == DEFAULT_ZONE else f"{zone} time"


environment.filters["local_time"] = local_time
environment.filters["nhs_number"] = nhs_number.spaced


class SignInNeeded(Exception):
    """A page was asked for without a valid session: answered by a redirect to the sign-in page,
    which comes back to `next_path` afterwards."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def local_path(candidate: str | None, default: str) -> str:
    """`candidate` if it is a path on this site ("/nurse/people/7"), else `default`: a sign-in
    never sends the browser to another site (no open redirect: "//evil.example" is refused)."""
    if candidate and candidate.startswith("/") and not candidate.startswith("//") and "\\" not in candidate:
        return candidate
    return default


def page_user(request: Request, session: Db) -> User:
    """The account signed in by the session cookie, or `SignInNeeded`."""
    token = request.cookies.get(SESSION_COOKIE)
    secret = centre(request).settings.jwt_secret.get_secret_value()
    user = signed_in_user(session, token, secret) if token else None
    if user is None:
        raise SignInNeeded(request.url.path)
    return user


PageUser = Annotated[User, Depends(page_user)]


def page_roles(*roles: Role) -> Callable[..., User]:
    """A dependency: the signed-in account if its role is one of `roles`; else an audited 403
    page ("this page is for operators"). Menus show each role only its own pages
    (`navigation.NAVIGATION`); this refuses the rest when typed in."""

    def guard(request: Request, user: PageUser, session: Db) -> User:
        if user.role not in roles:
            raise refuse(request, session, user, status.HTTP_403_FORBIDDEN,
                         f"this page is for {' and '.join(role.value.replace('_', ' ') for role in roles)} accounts",
                         person_asked_about(request, session))
        return user

    return guard


def render(request: Request, user: User | None, template: str, *, title: str, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    """The page `template` (extending `base.html`) for `user` (None: signed out) with `title`
    (the page's <h1> and <title>) and the template's own `context`."""
    path = request.url.path
    zone = centre(request).settings.timezone
    items = [{"text": item.text, "href": item.href, "current": item.href == path,
              "active": path.startswith(item.href + "/")} for item in (menu(user.role) if user else ())]
    return templates.TemplateResponse(request, template, {
        "user": user, "menu": items, "title": title, "service_name": SERVICE_NAME, "current_path": path,
        "centre_zone": zone, "zone_words": zone_words(zone), **context}, status_code=status_code)


def signed_in_or_none(request: Request, session: Session) -> User | None:
    """The session cookie's account, or None (for pages that also serve the signed out)."""
    token = request.cookies.get(SESSION_COOKIE)
    secret = centre(request).settings.jwt_secret.get_secret_value()
    return signed_in_user(session, token, secret) if token else None


async def sign_in_needed(request: Request, problem: Exception) -> Response:
    """`SignInNeeded` → 303 to `/signin?next=<the page asked for>`."""
    next_path = problem.next_path if isinstance(problem, SignInNeeded) else "/"
    return RedirectResponse(f"/signin?next={quote(next_path)}", status_code=status.HTTP_303_SEE_OTHER)


def error_page(request: Request, problem: HTTPException) -> HTMLResponse:
    """A page's refusal or missing thing as a page in the site's layout (the API keeps its JSON)."""
    with centre(request).sessions() as session:
        user = signed_in_or_none(request, session)
    return render(request, user, "error.html", title={403: "Not for this account", 404: "Page not found"}.get(
        problem.status_code, "Something went wrong"), status_code=problem.status_code, detail=problem.detail)
