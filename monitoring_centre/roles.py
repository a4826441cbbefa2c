"""The centre's account roles: the one place their names are written.

An account (`storage.User.role`) has one role. Who each role may see is `access.py`; what each
may do is said by the routes that name them (`centre_app/api/deps.py`, `require_roles`).
"""

from enum import StrEnum


class Role(StrEnum):
    """An account's role, stored as its value in `users.role` (at most 16 characters)."""

    ADMIN = "admin"
    """Runs the centre: accounts, teams, responders; sees everyone."""
    OPERATOR = "operator"
    """Answers alarms in the monitoring centre; sees everyone the centre monitors."""
    NURSE = "nurse"
    """A community nurse: sees her own caseload and her teams' (direct care)."""
    TEAM_LEAD = "team_lead"
    """A nurse who leads teams: sees as a nurse does, and shares her teams' caseloads among
    their members (`monitoring_centre/teams.py`)."""
    FAMILY = "family"
    """A relative or friend: sees only the people who consented to it."""
    PERSON = "person"
    """Someone at home with their own account: sees their own record and decides which family
    members may see it."""


ROLE_TITLES: dict[Role, str] = {
    Role.ADMIN: "administrator", Role.OPERATOR: "centre operator", Role.NURSE: "community nurse",
    Role.TEAM_LEAD: "nursing team lead", Role.FAMILY: "family member", Role.PERSON: "",
}
"""Each role in words, as the pages' header says it after the account's name ("Jane Smith,
community nurse"); a person at home is simply their name."""
ROLES: tuple[str, ...] = tuple(role.value for role in Role)
"""Every role's name, in `Role` order (the choices of `telecare admin add-user --role`)."""
CLINICIANS: frozenset[Role] = frozenset({Role.NURSE, Role.TEAM_LEAD})
"""Roles that give direct care to a caseload: they may be members of a team, have people
assigned to them, and enter a person's frailty category."""
CASELOAD_MANAGERS: frozenset[Role] = frozenset({Role.ADMIN, Role.TEAM_LEAD})
"""Roles that assign people to nurses and teams (an administrator anywhere; a team lead within
her own teams)."""
