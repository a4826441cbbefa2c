"""The centre's accounts, for administrators: list, create, change role, disable, new password.

Thin routes over `monitoring_centre/accounts.py` (and `centre_app/admin.py`, `add_user`, for
the password hash). There are no default passwords: a new account, and a password reset, get a
generated one-time password (20 characters, `secrets.token_urlsafe(15)`), in the answer only, for
the administrator to pass on; the centre keeps only its Argon2 hash. Every change is audited
with before and after (never a password); every refusal too (`deps.refuse`).
"""

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import select

from centre_app.admin import AdminError, add_user
from centre_app.api.deps import Admin, Db, DocumentedRoute, RowId, errors, invalid, refuse, refuses
from centre_app.auth import hash_password
from monitoring_centre import accounts, audit
from monitoring_centre.roles import ROLES
from monitoring_centre.storage import Person, User

router = APIRouter(prefix="/api/v1/users", tags=["accounts"], route_class=DocumentedRoute)


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    person_id: int | None = Field(description="for a `person` account: whose own account it is")
    person_name: str | None
    disabled: bool


class UserIn(BaseModel):
    username: str = Field(min_length=2, max_length=100, pattern=r"^[A-Za-z0-9._@-]+$")
    role: str = Field(description=f"one of {', '.join(ROLES)}")
    display_name: str = Field(default="", max_length=200)
    person_id: RowId | None = Field(default=None, description="required for, and only for, the `person` role")


class UserChange(BaseModel):
    role: str | None = Field(default=None, description=f"one of {', '.join(ROLES)}; not to or from `person`")
    display_name: str | None = Field(default=None, max_length=200)


class OneTimePassword(BaseModel):
    """A password shown once, here, for the administrator to pass on; never stored or logged."""

    user: UserOut
    password: str


def _out(session: Db, user: User) -> UserOut:
    person = session.get(Person, user.person_id) if user.person_id else None
    return UserOut(id=user.id, username=user.username, display_name=user.display_name, role=user.role,
                   person_id=user.person_id, person_name=person.name if person else None,
                   disabled=accounts.is_disabled(user))


@refuses(404)
def account(request: Request, username: str, user: Admin, session: Db) -> User:
    """The account at the path's `{username}`; 404 "no such account", audited."""
    found = accounts.find(session, username)
    if found is None:
        raise refuse(request, session, user, status.HTTP_404_NOT_FOUND, "no such account", None, "none")
    return found


Account = Annotated[User, Depends(account)]


@router.get("")
def list_users(user: Admin, session: Db) -> list[UserOut]:
    """Every account, by username (the person's name shown for a person's own account: audited
    as a view of those people)."""
    views = accounts.accounts(session)
    audit.record(session, user.username, "view_users", [v.person_id for v in views if v.person_id] or [None])
    session.commit()
    return [UserOut(**vars(v)) for v in views]


@router.post("", status_code=status.HTTP_201_CREATED, responses=errors(409))
def create(request: Request, new: UserIn, user: Admin, session: Db) -> OneTimePassword:
    """A new account with a one-time password (see the module docstring). 409 if the username
    is taken; 422 for an unknown role, or a person account without its person."""
    if new.role not in ROLES:
        raise invalid(("body", "role"), f"role must be one of {', '.join(ROLES)}")
    if new.person_id is not None and session.get(Person, new.person_id) is None:
        raise invalid(("body", "person_id"), "no such person")
    if new.person_id is not None and session.scalar(select(User.id).where(User.person_id == new.person_id)):
        raise refuse(request, session, user, status.HTTP_409_CONFLICT, "this person has an account already",
                     new.person_id)
    if accounts.find(session, new.username) is not None:
        raise refuse(request, session, user, status.HTTP_409_CONFLICT, f"an account {new.username!r} exists already",
                     None)
    try:
        password = add_user(session, new.username, new.role, display_name=new.display_name,
                            person_id=new.person_id)
    except AdminError as problem:
        raise invalid(("body",), str(problem)) from None
    created = accounts.find(session, new.username)
    assert created is not None
    accounts.audit_created(session, created, by=user.username)
    session.commit()
    return OneTimePassword(user=_out(session, created), password=password)


@router.patch("/{username}")
def change(body: UserChange, user: Admin, target: Account, session: Db) -> UserOut:
    """A new role or display name. A changed role ends the account's sessions. 422 for an unknown
    role, a change to or from `person`, or an administrator's own role."""
    try:
        accounts.change(session, target, by=user.username, role=body.role, display_name=body.display_name)
    except accounts.AccountRefused as problem:
        raise invalid(("body", "role"), str(problem)) from None
    session.commit()
    return _out(session, target)


@router.post("/{username}/disable", responses=errors(409))
def disable(request: Request, user: Admin, target: Account, session: Db) -> UserOut:
    """No one can sign in to the account any more; its sessions end now. 409 for the
    administrator's own account. Disabling a disabled account changes nothing."""
    try:
        accounts.disable(session, target, by=user.username)
    except accounts.AccountRefused as problem:
        raise refuse(request, session, user, status.HTTP_409_CONFLICT, str(problem), target.person_id) from None
    session.commit()
    return _out(session, target)


@router.post("/{username}/password")
def new_password(user: Admin, target: Account, session: Db) -> OneTimePassword:
    """A new one-time password for the account (which enables it if it was disabled); its sessions end."""
    password = new_one_time_password()
    accounts.password_set(session, target, hash_password(password), by=user.username)
    session.commit()
    return OneTimePassword(user=_out(session, target), password=password)


def new_one_time_password() -> str:
    """20 URL-safe characters (120 bits), as `centre_app.admin.add_user` gives a new account."""
    return secrets.token_urlsafe(15)

