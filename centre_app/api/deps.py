"""Typed dependencies shared by the routers: the database session and the caller."""

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
from monitoring_centre.access import visible_person_ids
from monitoring_centre.live import AlertFeed
from monitoring_centre.storage import User

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


def require_role(user: User, *roles: str) -> None:
    """Refuse the request unless the caller has one of `roles`."""
    if user.role not in roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"only {' or '.join(roles)} users may do this")


def may_see(session: Session, user: User, person_id: int) -> bool:
    visible = visible_person_ids(session, user)
    return visible is None or person_id in visible
