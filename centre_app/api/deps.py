"""Typed dependencies shared by the routers: the database session, the caller, what the
caller may do (role guards) and what they may see (a person or an alert by its path id).

A route names what it needs in its signature and gets it checked:

    def acknowledge(alert: VisibleAlert, user: CentreStaff, session: Db) -> ...

Dependencies run in the order of the parameters, so put a role guard before the person or
alert it guards: a caller without the role is refused (403) before anything is looked up.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from centre_app.auth import username_from_token
from centre_app.settings import CentreSettings
from monitoring_centre.access import may_decide_for, visible_person_ids
from monitoring_centre.live import AlertFeed
from monitoring_centre.storage import Alert, Person, User

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token")


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


def centre(request: Request) -> CentreState:
    state: CentreState = request.app.state.centre
    return state


def db(request: Request) -> Iterator[Session]:
    with centre(request).sessions() as session:
        yield session


def current_user(request: Request, token: Annotated[str, Depends(oauth2)],
                 session: Annotated[Session, Depends(db, scope="function")]) -> User:
    secret = centre(request).settings.jwt_secret.get_secret_value()
    username = username_from_token(token, secret)
    user = session.scalar(select(User).where(User.username == username)) if username else None
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or expired token",
                            headers={"WWW-Authenticate": "Bearer"})
    return user


Db = Annotated[Session, Depends(db, scope="function")]
"""A session that ends with the route function, before the response is sent: a streamed
response must never hold a transaction (on SQLite, that would block every writer)."""
CurrentUser = Annotated[User, Depends(current_user)]
Centre = Annotated[CentreState, Depends(centre)]


def require_roles(*roles: str) -> Callable[[User], User]:
    """A dependency that passes the caller through if their role is one of `roles`, and
    otherwise refuses the request: 403 "only a or b users may do this" (roles in the order given)."""

    def guard(user: CurrentUser) -> User:
        if user.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"only {' or '.join(roles)} users may do this")
        return user

    return guard


CentreStaff = Annotated[User, Depends(require_roles("operator", "nurse", "admin"))]
"""The centre's own staff: they own alerts (acknowledge, resolve); never the person or their family."""
AdminOrOperator = Annotated[User, Depends(require_roles("admin", "operator"))]
Admin = Annotated[User, Depends(require_roles("admin"))]


def may_see(session: Session, user: User, person_id: int) -> bool:
    """Whether `user` may see the person with this id (whether or not such a person exists)."""
    visible = visible_person_ids(session, user)
    return visible is None or person_id in visible


def visible_person(person_id: int, user: CurrentUser, session: Db) -> Person:
    """The person at the path's `{person_id}`, if the caller may see them. Raises 404 "no such
    person" when there is no such person or the caller may not see them: no hint that they exist."""
    person = session.get(Person, person_id)
    if person is None or not may_see(session, user, person_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such person")
    return person


def person_decided_for(person_id: int, user: CurrentUser, session: Db) -> Person:
    """The person at the path's `{person_id}`, if the caller may decide for them (the person
    themselves, or an admin recording their decision): their consent, their audit log. Raises
    404 "no such person" otherwise."""
    person = session.get(Person, person_id)
    if person is None or not may_decide_for(user, person_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such person")
    return person


def visible_alert(alert_id: int, user: CurrentUser, session: Db) -> Alert:
    """The alert at the path's `{alert_id}`, if the caller may see its person. Raises 404 "no
    such alert" otherwise."""
    alert = session.get(Alert, alert_id)
    if alert is None or not may_see(session, user, alert.person_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such alert")
    return alert


VisiblePerson = Annotated[Person, Depends(visible_person)]
PersonDecidedFor = Annotated[Person, Depends(person_decided_for)]
VisibleAlert = Annotated[Alert, Depends(visible_alert)]
