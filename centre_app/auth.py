"""Operator accounts: password hashing (Argon2) and bearer tokens (JWT, HS256)."""

import asyncio
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitoring_centre.roles import ROLES
from monitoring_centre.storage import User, utc_now

_hasher = PasswordHasher()

PASSWORD_CHECKS_AT_ONCE = 2
"""Sign-in checks that run at the same time; more wait their turn, asleep on the event loop. Each
check is four Argon2 lanes on four threads (RFC 9106 §4, argon2-cffi's default profile), so two
already keep a small centre's cores busy: more at once would only add memory (64 MiB each) and
threads for the alarm path to compete with."""
PASSWORD_CHECK_NICE = 19
"""The CPU priority of a check (the lowest, `nice 19`): its thread and the Argon2 lane threads it
starts (which inherit it) run only when the alarm path has no use for the CPU. Linux only, where a
nice value is per thread."""
_checks: ThreadPoolExecutor | None = None
_checks_made = threading.Lock()


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


def find_user(session: Session, username: str) -> User | None:
    """The account signing in, or None. A quick read: end its transaction before `verify_password`
    (on SQLite every transaction holds the write lock the alarm path needs)."""
    return session.scalar(select(User).where(User.username == username))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches the stored Argon2 hash (None: no such account, always False).
    Slow on purpose (Argon2id, 64 MiB, three passes: a quarter to half a second of a core), so
    never call it inside a database transaction. An unknown account costs the same work as a
    known one: no user enumeration by timing."""
    if password_hash is None:
        _hasher.hash(password)
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _lower_priority() -> None:
    if sys.platform == "linux":  # elsewhere PRIO_PROCESS with a thread id would mean the whole process
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PASSWORD_CHECK_NICE)


def _checkers() -> ThreadPoolExecutor:
    global _checks
    with _checks_made:
        if _checks is None:
            _checks = ThreadPoolExecutor(PASSWORD_CHECKS_AT_ONCE, "password-check", initializer=_lower_priority)
        return _checks


async def check_password(password_hash: str | None, password: str) -> bool:
    """`verify_password` for a request: on one of `PASSWORD_CHECKS_AT_ONCE` threads kept at the
    lowest CPU priority (`PASSWORD_CHECK_NICE`), awaited without holding the caller's thread."""
    return await asyncio.get_running_loop().run_in_executor(_checkers(), verify_password, password_hash, password)


def issue_token(user: User, secret: str, ttl_s: int) -> str:
    """A bearer token (JWT, HS256) for `ttl_s` seconds: claims `sub` (username), `role`, `iat`,
    `exp` and `epoch` (`User.session_epoch` when issued: a sign-out ends it)."""
    now = utc_now()
    claims = {"sub": user.username, "role": user.role, "iat": now, "exp": now + timedelta(seconds=ttl_s),
              "epoch": user.session_epoch}
    return jwt.encode(claims, secret, algorithm="HS256")


@dataclass(frozen=True)
class TokenClaims:
    """What a valid token says: whose it is, and the session epoch it was issued in."""

    username: str
    epoch: int


def claims_from_token(token: str, secret: str) -> TokenClaims | None:
    """The token's claims if its signature and expiry are good, else None. A token from before
    session epochs existed counts as epoch 0."""
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["sub", "exp"]})
    except jwt.PyJWTError:
        return None
    subject, epoch = claims.get("sub"), claims.get("epoch", 0)
    if not isinstance(subject, str) or not isinstance(epoch, int) or isinstance(epoch, bool):
        return None
    return TokenClaims(subject, epoch)


def signed_in_user(session: Session, token: str, secret: str) -> User | None:
    """The account a token signs in, or None: a bad or expired token, no such account any more,
    or an account signed out since the token was issued (`User.session_epoch`)."""
    claims = claims_from_token(token, secret)
    if claims is None:
        return None
    user = find_user(session, claims.username)
    return user if user is not None and user.session_epoch == claims.epoch else None
