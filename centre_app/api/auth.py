"""Sign-in: `POST /api/v1/auth/token`.

Nothing here holds a database transaction while it waits or computes: the account is read in
one short transaction, the password is checked (Argon2, a quarter of a second or more) outside
any, at the lowest CPU priority and at most `PASSWORD_CHECKS_AT_ONCE` at a time
(`centre_app.auth.check_password`), and the audit row is written in a short transaction of its own. On SQLite every
transaction holds the one write lock, and a sign-in that kept it through the hash held up
every home's alarms behind it. Throttling (a growing wait, by account and address; never for
the centre's own network) is `centre_app/signin_throttle.py`.
"""

import asyncio
import math
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from centre_app.api.deps import Centre, CentreState, DocumentedRoute, errors
from centre_app.auth import check_password, find_user, issue_token
from centre_app.signin_throttle import Admitted, Refused, SigninThrottle
from monitoring_centre import audit
from monitoring_centre.storage import User

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], route_class=DocumentedRoute)

_sleep = asyncio.sleep
"""How a refusal pauses (tests record the pauses instead of taking them)."""
USERNAME_CHARS = 100
"""The audit log's actor column holds 100 characters: longer usernames are recorded cut."""


def signin_throttle(request: Request) -> SigninThrottle:
    """This app's throttle, made from `settings.trusted_networks` on first use (on the event loop,
    so only once); a test may set `app.state.signin_throttle` first."""
    throttle: SigninThrottle | None = getattr(request.app.state, "signin_throttle", None)
    if throttle is None:
        settings = request.app.state.centre.settings
        throttle = request.app.state.signin_throttle = SigninThrottle(settings.trusted_networks)
    return throttle


def _read_account(sessions: sessionmaker[Session], username: str) -> User | None:
    """The account, read in a transaction that ends before the password is checked."""
    with sessions() as session:
        return find_user(session, username)


def _record(centre: CentreState, actor: str, action: str, detail: str) -> None:
    """One audit row, in a transaction of its own; kept in memory while the database is full,
    so that sign-in works then too (`CentreState.api_session`)."""
    with centre.api_session() as session:
        audit.record(session, actor, action, [None], detail)
        session.commit()


def _detail(address: str, unrecorded_refusals: int) -> str:
    """The audit detail: "from 203.0.113.7", and "; 12 earlier attempts refused (too soon)" if any."""
    detail = f"from {address or 'an unknown address'}"
    if unrecorded_refusals:
        detail += f"; {unrecorded_refusals} earlier attempts refused (too soon)"
    return detail


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth2 token type, not a secret)
    role: str


@router.post("/token", responses=errors(401, 429))
async def token(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()], centre: Centre) -> Token:
    """OAuth2 password flow: form fields `username` and `password`, returns a bearer token.
    401 for a wrong username or password. After repeated wrong passwords for an account or from an
    address, 429 with `Retry-After` (seconds) until the wait is over (`centre_app/signin_throttle.py`);
    never from `TELECARE_TRUSTED_NETWORKS`. Every attempt is audited (`login`, `login_failed`,
    `login_refused`, with the client's address)."""
    actor = form.username[:USERNAME_CHARS]
    address = request.client.host if request.client else ""
    throttle = signin_throttle(request)
    attempt = throttle.admit(actor, address)
    if isinstance(attempt, Refused):
        if attempt.record:
            await run_in_threadpool(_record, centre, actor, "login_refused",
                                    f"{_detail(address, 0)}; too many failed sign-ins, next check in "
                                    f"{attempt.retry_after_s} s")
        pause = min(float(attempt.retry_after_s), throttle.refusal_pause_s)
        if pause > 0:
            await _sleep(pause)  # on the event loop: no worker thread, no transaction waits
        retry_after_s = max(0, math.ceil(attempt.retry_after_s - pause))  # what is left of the wait
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            f"too many failed sign-ins: try again in {retry_after_s} s",
                            headers={"Retry-After": str(retry_after_s)})
    user = await _check(centre.sessions, form.username, form.password, throttle, attempt)
    if user is None:
        await run_in_threadpool(_record, centre, actor, "login_failed",
                                _detail(address, attempt.unrecorded_refusals))
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password",
                            headers={"WWW-Authenticate": "Bearer"})
    await run_in_threadpool(_record, centre, user.username, "login",
                            _detail(address, attempt.unrecorded_refusals))
    settings = centre.settings
    return Token(access_token=issue_token(user, settings.jwt_secret.get_secret_value(), settings.token_ttl_s),
                 role=user.role)


async def _check(sessions: sessionmaker[Session], username: str, password: str, throttle: SigninThrottle,
                 attempt: Admitted) -> User | None:
    """The account if the password is right, else None; the throttle is told either way. The
    account is read on a worker thread; then the password is checked on a low-priority thread of
    its own (`check_password`), with no transaction open."""
    user = await run_in_threadpool(_read_account, sessions, username)
    right = await check_password(user.password_hash if user else None, password)
    throttle.settle(attempt, right)
    return user if right else None
