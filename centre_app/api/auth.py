from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from centre_app.api.deps import Centre, Db
from centre_app.auth import authenticate, issue_token
from monitoring_centre import audit
from monitoring_centre.storage import AuditEntry, utc_now

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

MAX_FAILURES = 5
FAILURE_WINDOW_S = 15 * 60
"""Five wrong passwords for a username within 15 minutes locks it for the rest of the
window (the audit log is the counter): password guessing is slowed to a crawl, and an
operator who mistypes is back within minutes."""


def recent_failures(session: Session, username: str) -> int:
    since = utc_now() - timedelta(seconds=FAILURE_WINDOW_S)
    return session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.actor == username, AuditEntry.action == "login_failed", AuditEntry.at >= since)) or 0


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth2 token type, not a secret)
    role: str


@router.post("/token")
def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], session: Db, centre: Centre) -> Token:
    """OAuth2 password flow: form fields `username` and `password`, returns a bearer token.
    After repeated wrong passwords for one username, sign-in is refused for a while."""
    if recent_failures(session, form.username[:100]) >= MAX_FAILURES:
        audit.record(session, form.username[:100], "login_refused", [None], "too many failed sign-ins")
        session.commit()
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            f"too many failed sign-ins: try again in {FAILURE_WINDOW_S // 60} minutes",
                            headers={"Retry-After": str(FAILURE_WINDOW_S)})
    user = authenticate(session, form.username, form.password)
    if user is None:
        audit.record(session, form.username[:100], "login_failed", [None])
        session.commit()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password",
                            headers={"WWW-Authenticate": "Bearer"})
    audit.record(session, user.username, "login", [None])
    session.commit()
    settings = centre.settings
    return Token(access_token=issue_token(user, settings.jwt_secret.get_secret_value(), settings.token_ttl_s),
                 role=user.role)
