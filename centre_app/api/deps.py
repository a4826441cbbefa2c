"""Typed dependencies shared by the routers: the database session, the caller, what the
caller may do (role guards) and what they may see (a person or an alert by its path id).

A route names what it needs in its signature and gets it checked:

    def acknowledge(alert: VisibleAlert, user: CentreStaff, session: Db) -> ...

Dependencies run in the order of the parameters, so put a role guard before the person or
alert it guards: a caller without the role is refused (403) before anything is looked up.

Every refusal these dependencies make (403 for the role, 404 for a person or alert the caller
may not see) is written to the audit log, in `refuse`: action "refused", the person asked
about when there is one, and the request in the detail. Every id in a path is a `RowId`
(1 to `ROW_ID_MAX`): a larger one is refused with a 422 before any query.

Routers make their routes with `route_class=DocumentedRoute`: the OpenAPI document then lists
the refusals a route's dependencies make (401, 403, 404, each an `ErrorOut`); a route adds its
own with `responses=errors(409)`. A 422 of a route's own is raised with `invalid()`, in
FastAPI's validation-error shape, the one the document declares.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, TypeVar

from annotated_types import Interval
from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, BeforeValidator
from sqlalchemy.orm import Session, sessionmaker

from centre_app.auth import signed_in_user
from centre_app.settings import CentreSettings
from monitoring_centre import audit
from monitoring_centre.access import may_decide_for, visible_person_ids
from monitoring_centre.live import AlertFeed
from monitoring_centre.storage import Alert, Person, User
from monitoring_centre.storage_health import StorageHealth

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
SESSION_COOKIE = "telecare_session"
"""The web pages' sign-in: the same bearer token, in an HttpOnly, SameSite=Strict cookie set by
`POST /signin` (`centre_app/pages/signin.py`). An API client sends the token in `Authorization`."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

ROW_ID_MAX = 2**31 - 1
"""The largest id a table's key holds on every database the centre runs on: PostgreSQL's
INTEGER (4 bytes; SQLite's holds 8). The database fails on a larger one, so it never gets one."""
RowId = Annotated[int, Interval(ge=1, le=ROW_ID_MAX)]
"""An id in a path (`person_id: RowId`) or a body (`list[RowId]`): 422 outside 1..ROW_ID_MAX."""


class ErrorOut(BaseModel):
    """The body of every refusal but a 422: `{"detail": "no such person"}`."""

    detail: str


ERROR_MEANINGS = {
    400: "The body could not be read: not JSON, or not UTF-8.",
    401: "Not signed in, or the token has expired.",
    403: "The caller's role may not do this.",
    404: "No such thing, or the caller may not see it (the two are not told apart).",
    409: "The change conflicts with the current state.",
    429: "Too many failed sign-ins for this username: try again later.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route or router: each status code (one of `ERROR_MEANINGS`) with its
    meaning and an `ErrorOut` body."""
    return {code: {"model": ErrorOut, "description": ERROR_MEANINGS[code]} for code in codes}


def invalid(location: tuple[str | int, ...], message: str) -> RequestValidationError:
    """A route's own 422, in FastAPI's validation-error shape (the `HTTPValidationError` of the
    OpenAPI document): `{"detail": [{"loc": ["body", "outcome"], "msg": ..., "type": "value_error"}]}`.
    `location` starts with where the value came from: "path", "query" or "body"."""
    return RequestValidationError([{"type": "value_error", "loc": location, "msg": message}])


def _iso_only(value: object) -> object:
    """A time in a query is ISO 8601 text: pydantic would also read a bare number as Unix
    seconds, which no one means and the OpenAPI `date-time` format does not allow."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
        raise ValueError("an ISO 8601 date or date-time (e.g. 2026-11-30 or 2026-11-30T08:00Z), not a number")
    return value


IsoBound = Annotated[datetime, BeforeValidator(_iso_only)]
"""A date-time in a query (`from`, `to`): ISO 8601 text only, 422 for a bare number."""


_Dependency = TypeVar("_Dependency", bound=Callable[..., Any])
_REFUSALS: dict[Callable[..., Any], tuple[int, ...]] = {}


def refuses(*codes: int) -> Callable[[_Dependency], _Dependency]:
    """Marks a dependency as one that may answer these status codes, so `DocumentedRoute` lists
    them for every route that depends on it."""

    def mark(dependency: _Dependency) -> _Dependency:
        _REFUSALS[dependency] = codes
        return dependency

    return mark


def _tree(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _tree(sub)


class DocumentedRoute(APIRoute):
    """A route whose OpenAPI entry lists every refusal its dependencies make (`refuses`), and
    FastAPI's 400 for a body it cannot read when it takes one, with the route's own `responses=`
    on top: a route that takes a `VisiblePerson` documents its 404 without saying so."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        roots = [get_dependant(path=path, call=endpoint)]
        roots += [get_dependant(path=path, call=extra.dependency) for extra in kwargs.get("dependencies") or ()]
        tree = [dependant for root in roots for dependant in _tree(root)]
        implied = {code for dependant in tree if dependant.call is not None
                   for code in _REFUSALS.get(dependant.call, ())}
        if any(dependant.body_params for dependant in tree):
            implied.add(400)
        kwargs["responses"] = {**errors(*sorted(implied)), **(kwargs.get("responses") or {})}
        super().__init__(path, endpoint, **kwargs)


@dataclass
class CentreState:
    settings: CentreSettings
    sessions: sessionmaker[Session]
    feed: AlertFeed
    registry: CollectorRegistry
    alerts_changed: Callable[[set[int]], None]
    """Tells open consoles and the escalator that these alerts changed (as ingest does)."""
    profile_changed: Callable[[int], None] = field(default=lambda _person_id: None)
    """Tells the detection engine that a person's settings or absences changed."""
    check_rule_setting: Callable[[str, dict[str, Any]], dict[str, Any]] = field(default=lambda _rule, params: params)
    """Validates a person's parameters for a rule against the rule's own (raises ValueError)."""
    storage: StorageHealth = field(default_factory=StorageHealth)
    """Whether the database takes writes, and the audit rows waiting for it (see `db`)."""

    def api_session(self, on_deferred: Callable[[], None] | None = None) -> audit.AuditDeferringSession:
        """A session for a route: audit rows it cannot store for lack of space wait in memory
        (`audit.AuditDeferringSession`), and `on_deferred` is told."""
        return audit.AuditDeferringSession(self.storage, on_deferred, **self.sessions.kw)


STORAGE_FAULT_HEADER = "Telecare-Storage-Fault"
"""On an answer given while the database refuses writes: "true". The read was served, its audit
rows wait in memory (`audit.AuditDeferringSession`); the console shows a storage-fault banner."""


def centre(request: Request) -> CentreState:
    state: CentreState = request.app.state.centre
    return state


def db(request: Request, response: Response) -> Iterator[Session]:
    """A session whose audit rows wait in memory when the database is full (`audit.AuditDeferringSession`);
    the answer then carries `STORAGE_FAULT_HEADER`, as does any answer during a storage fault."""
    state = centre(request)

    def flag() -> None:
        response.headers[STORAGE_FAULT_HEADER] = "true"

    if state.storage.fault is not None:
        flag()
    with state.api_session(flag) as session:
        yield session


@refuses(401)
def current_user(request: Request, token: Annotated[str | None, Depends(oauth2)],
                 session: Annotated[Session, Depends(db, scope="function")]) -> User:
    """The signed-in account: from the `Authorization: Bearer` token, or else from the pages'
    `SESSION_COOKIE`. 401 if neither holds a valid token of an account not signed out since.
    A change (not GET/HEAD/OPTIONS) signed in by the cookie must come from this centre's own
    pages (`same_site`), else 403: the cookie alone never authorises another site's request."""
    from_cookie = token is None
    if token is None:
        token = request.cookies.get(SESSION_COOKIE)
    secret = centre(request).settings.jwt_secret.get_secret_value()
    user = signed_in_user(session, token, secret) if token else None
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "not signed in, or the sign-in has expired",
                            headers={"WWW-Authenticate": "Bearer"})
    if from_cookie and request.method not in SAFE_METHODS and not same_site(request):
        raise refuse(request, session, user, status.HTTP_403_FORBIDDEN,
                     "a change signed in by cookie must come from this centre's own pages", None,
                     why=f"Origin {request.headers.get('origin')!r}, "
                         f"Sec-Fetch-Site {request.headers.get('sec-fetch-site')!r}")
    return user


def same_site(request: Request) -> bool:
    """Whether a browser says the request comes from this centre's own pages: `Sec-Fetch-Site:
    same-origin`, or an `Origin` equal to the request's own scheme and host. Browsers send one
    or both with every POST, PUT and DELETE (Fetch Metadata, W3C; Origin, RFC 6454); another
    site cannot forge them."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    origin = request.headers.get("origin")
    return origin is not None and origin == f"{request.url.scheme}://{request.headers.get('host', '')}"


Db = Annotated[Session, Depends(db, scope="function")]
"""A session that ends with the route function, before the response is sent: a streamed
response must never hold a transaction (on SQLite, that would block every writer)."""
CurrentUser = Annotated[User, Depends(current_user)]
Centre = Annotated[CentreState, Depends(centre)]


def refuse(request: Request, session: Session, user: User, code: int, message: str,
           person_id: int | None, why: str = "") -> HTTPException:
    """Writes the refusal to the audit log and returns the `HTTPException(code, message)` to raise.

    The row: actor the caller, action "refused", the person asked about (`person_id`: None when
    there is none, or when no such person exists), detail "GET /api/v1/patients/7/record: 404
    no such person (not visible)": the request as sent, so the id asked for is there even for a
    person who does not exist, the answer, and `why` (for the log only: the caller is told
    `message` alone). Committed at once: the request ends with the refusal."""
    reason = f" ({why})" if why else ""
    audit.record(session, user.username, "refused", [person_id],
                 f"{request.method} {request.url.path}: {code} {message}{reason}")
    session.commit()
    return HTTPException(code, message)


def _id_in_path(request: Request, name: str) -> int | None:
    raw = request.path_params.get(name)
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        return None
    value = int(raw)
    return value if 1 <= value <= ROW_ID_MAX else None


def person_asked_about(request: Request, session: Session) -> int | None:
    """The person a request's path names, by `{person_id}` or by the person of `{alert_id}`,
    if they exist; else None. For the audit of a refusal made before the path is checked."""
    person_id = _id_in_path(request, "person_id")
    if person_id is not None:
        return person_id if session.get(Person, person_id) is not None else None
    alert_id = _id_in_path(request, "alert_id")
    alert = session.get(Alert, alert_id) if alert_id is not None else None
    return alert.person_id if alert is not None else None


def require_roles(*roles: str) -> Callable[..., User]:
    """A dependency that passes the caller through if their role is one of `roles`, and
    otherwise refuses the request, audited (`refuse`): 403 "only a or b users may do this"
    (roles in the order given)."""

    @refuses(403)
    def guard(request: Request, user: CurrentUser, session: Db) -> User:
        if user.role not in roles:
            raise refuse(request, session, user, status.HTTP_403_FORBIDDEN,
                         f"only {' or '.join(roles)} users may do this", person_asked_about(request, session))
        return user

    return guard


CentreStaff = Annotated[User, Depends(require_roles("operator", "nurse", "team_lead", "admin"))]
"""The centre's own staff: they own alerts (acknowledge, resolve); never the person or their family."""
AdminOrOperator = Annotated[User, Depends(require_roles("admin", "operator"))]
Admin = Annotated[User, Depends(require_roles("admin"))]


def may_see(session: Session, user: User, person_id: int) -> bool:
    """Whether `user` may see the person with this id (whether or not such a person exists)."""
    visible = visible_person_ids(session, user)
    return visible is None or person_id in visible


@refuses(404)
def visible_person(request: Request, person_id: RowId, user: CurrentUser, session: Db) -> Person:
    """The person at the path's `{person_id}`, if the caller may see them. Raises 404 "no such
    person" when there is no such person or the caller may not see them: no hint that they
    exist. The refusal is audited (`refuse`)."""
    person = session.get(Person, person_id)
    if person is None:
        raise refuse(request, session, user, status.HTTP_404_NOT_FOUND, "no such person", None, "none")
    if not may_see(session, user, person_id):
        raise refuse(request, session, user, status.HTTP_404_NOT_FOUND, "no such person", person_id, "not visible")
    return person


@refuses(404)
def person_decided_for(request: Request, person_id: RowId, user: CurrentUser, session: Db) -> Person:
    """The person at the path's `{person_id}`, if the caller may decide for them (the person
    themselves, or an admin recording their decision): their consent, their audit log. Raises
    404 "no such person" otherwise, audited (`refuse`)."""
    person = session.get(Person, person_id)
    if person is None:
        raise refuse(request, session, user, status.HTTP_404_NOT_FOUND, "no such person", None, "none")
    if not may_decide_for(user, person_id):
        raise refuse(request, session, user, status.HTTP_404_NOT_FOUND, "no such person", person_id,
                     "not theirs to decide")
    return person


@refuses(404)
def visible_alert(request: Request, alert_id: RowId, user: CurrentUser, session: Db) -> Alert:
    """The alert at the path's `{alert_id}`, if the caller may see its person. Raises 404 "no
    such alert" otherwise, audited (`refuse`) with the alert's person."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise refuse(request, session, user, status.HTTP_404_NOT_FOUND, "no such alert", None, "none")
    if not may_see(session, user, alert.person_id):
        raise refuse(request, session, user, status.HTTP_404_NOT_FOUND, "no such alert", alert.person_id,
                     "not visible")
    return alert


VisiblePerson = Annotated[Person, Depends(visible_person)]
PersonDecidedFor = Annotated[Person, Depends(person_decided_for)]
VisibleAlert = Annotated[Alert, Depends(visible_alert)]
