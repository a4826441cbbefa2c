"""Operator accounts: password hashing (Argon2) and bearer tokens (JWT, HS256)."""

from datetime import timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitoring_centre.storage import User, utc_now

ROLES = ("admin", "operator", "nurse", "family", "person")
"""`person` is someone at home, with their own account: they see their own record and
decide which family members may see it."""
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_user(session: Session, username: str, password: str, role: str, display_name: str = "",
                person_id: int | None = None) -> User:
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {ROLES}")
    if (role == "person") != (person_id is not None):
        raise ValueError("a `person` account belongs to exactly one person, and only it does")
    if len(password) < 12:
        raise ValueError("a password has at least 12 characters")
    user = User(username=username, password_hash=hash_password(password), role=role, display_name=display_name,
                person_id=person_id)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        _hasher.hash(password)  # same work either way: no user enumeration by timing
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return user


def issue_token(user: User, secret: str, ttl_s: int) -> str:
    now = utc_now()
    claims = {"sub": user.username, "role": user.role, "iat": now, "exp": now + timedelta(seconds=ttl_s)}
    return jwt.encode(claims, secret, algorithm="HS256")


def username_from_token(token: str, secret: str) -> str | None:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["sub", "exp"]})
    except jwt.PyJWTError:
        return None
    subject = claims.get("sub")
    return subject if isinstance(subject, str) else None
