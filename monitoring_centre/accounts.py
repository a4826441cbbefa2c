"""The centre's accounts as an administrator manages them: list, change a role, disable.

Creating an account and setting its password need the password hasher, so they are in the
application shell (`centre_app/admin.py`, `add_user` and `new_password`); what is here needs only
the database. Every change is audited with the values before and after, as JSON:
`{"username": "kim", "before": {"role": "nurse", ...}, "after": {"role": "team_lead", ...}}`.

No account is ever deleted: the audit log names accounts, and its rows must keep meaning who
did what. A disabled account keeps its row; its password hash is replaced by `DISABLED_HASH`,
which no password matches (Argon2 refuses it as a hash), and its sessions end at once
(`User.session_epoch` raised). An administrator gives it a new one-time password to enable it again.
"""

import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitoring_centre import audit
from monitoring_centre.roles import ROLES, Role
from monitoring_centre.storage import Person, User

DISABLED_HASH = "!disabled"
"""The password hash of a disabled account: not an Argon2 hash, so no password ever matches it."""


class AccountRefused(ValueError):
    """A change to an account that cannot be made; the message says why."""


@dataclass(frozen=True)
class AccountView:
    """One account as the administrator's list shows it (never its password hash)."""

    id: int
    username: str
    display_name: str
    role: str
    person_id: int | None
    """For a `person` account: whose own account it is."""
    person_name: str | None
    disabled: bool


def is_disabled(user: User) -> bool:
    return user.password_hash == DISABLED_HASH


def _state(user: User) -> dict[str, object]:
    return {"role": user.role, "display_name": user.display_name, "person_id": user.person_id,
            "disabled": is_disabled(user)}


def accounts(session: Session) -> list[AccountView]:
    """Every account, by username."""
    names = dict(session.execute(select(Person.id, Person.name)).all())
    return [AccountView(id=user.id, username=user.username, display_name=user.display_name, role=user.role,
                        person_id=user.person_id, person_name=names.get(user.person_id) if user.person_id else None,
                        disabled=is_disabled(user))
            for user in session.scalars(select(User).order_by(User.username))]


def find(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def _audit(session: Session, by: str, action: str, user: User, before: dict[str, object]) -> None:
    detail = json.dumps({"username": user.username, "before": before, "after": _state(user)}, sort_keys=True)
    audit.record(session, by, action, [user.person_id], detail)


def audit_created(session: Session, user: User, *, by: str) -> None:
    """The audit row of a new account (made by `centre_app.admin.add_user`): before is null."""
    audit.record(session, by, "create_user", [user.person_id],
                 json.dumps({"username": user.username, "before": None, "after": _state(user)}, sort_keys=True))


def change(session: Session, user: User, *, by: str, role: str | None = None,
           display_name: str | None = None) -> bool:
    """A new role or display name for the account. A changed role ends the account's sessions
    (its tokens carry the role it signed in with; the next sign-in gets the new one). Raises
    `AccountRefused`: an unknown role, a role to or from `person` (that account belongs to one
    person: make a new one), or an administrator taking away their own administration.
    False (nothing recorded) when nothing changes."""
    before = _state(user)
    if role is not None and role != user.role:
        if role not in ROLES:
            raise AccountRefused(f"role {role!r} is not one of {', '.join(ROLES)}")
        if Role.PERSON in (role, user.role):
            raise AccountRefused("a person's own account belongs to that person: it cannot change role, "
                                 "and no other account can become one (create a new account instead)")
        if user.username == by:
            raise AccountRefused("you cannot change your own role: ask another administrator")
        user.role = role
        user.session_epoch += 1
    if display_name is not None:
        user.display_name = display_name
    if _state(user) == before:
        return False
    _audit(session, by, "change_user", user, before)
    return True


def disable(session: Session, user: User, *, by: str) -> bool:
    """No one can sign in to the account any more, and every session of it ends now. Raises
    `AccountRefused` for the administrator's own account. False when it was disabled already."""
    if user.username == by:
        raise AccountRefused("you cannot disable your own account: ask another administrator")
    if is_disabled(user):
        return False
    before = _state(user)
    user.password_hash = DISABLED_HASH
    user.session_epoch += 1
    _audit(session, by, "disable_user", user, before)
    return True


def password_set(session: Session, user: User, password_hash: str, *, by: str) -> None:
    """A new password (given as its hash by `centre_app.admin`) that the administrator passes on:
    enables a disabled account, and ends every session of it. Audited, never the password."""
    before = _state(user)
    user.password_hash = password_hash
    user.session_epoch += 1
    _audit(session, by, "reset_password", user, before)
