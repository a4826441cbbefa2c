from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from monitoring_centre import audit
from monitoring_centre.api.deps import Centre, Db
from monitoring_centre.auth import authenticate, issue_token

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth2 token type, not a secret)
    role: str


@router.post("/token")
def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], session: Db, centre: Centre) -> Token:
    """OAuth2 password flow: form fields `username` and `password`, returns a bearer token."""
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
