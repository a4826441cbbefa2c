"""Typed dependencies shared by the routers: the database session and the caller."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitoring_centre.auth import username_from_token
from monitoring_centre.live import AlertFeed
from monitoring_centre.settings import CentreSettings
from monitoring_centre.storage import User

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token")


@dataclass
class CentreState:
    settings: CentreSettings
    sessions: sessionmaker[Session]
    feed: AlertFeed
    registry: CollectorRegistry


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
