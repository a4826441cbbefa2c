"""Where each role lands and what its menu holds: the one place pages are tied to roles.

A role sees only the pages it may use (`NAVIGATION`); each page's route checks the same roles
(`centre_app/pages/rendering.py`, `page_roles`), so a link that is not shown is also refused.
"""

from dataclasses import dataclass

from monitoring_centre.roles import Role


@dataclass(frozen=True)
class NavItem:
    """A menu entry: its words and the page's path (e.g. `NavItem("Alarm queue", "/operator")`)."""

    text: str
    href: str


OPERATOR_PAGES = (NavItem("Alarm queue", "/operator"), NavItem("History", "/operator/history"),
                  NavItem("Handover", "/operator/handover"), NavItem("Answer times", "/operator/kpis"))
NURSE_PAGES = (NavItem("Caseload", "/nurse"), NavItem("Review tasks", "/nurse/tasks"))
ADMIN_PAGES = (NavItem("People and homes", "/admin/people"), NavItem("Devices", "/admin/devices"),
               NavItem("Users", "/admin/users"), NavItem("Responders", "/admin/responders"),
               NavItem("Teams and caseloads", "/admin/teams"), NavItem("Call scripts", "/admin/scripts"),
               NavItem("Escalation policies", "/admin/policies"), NavItem("Answer times", "/operator/kpis"))

NAVIGATION: dict[Role, tuple[NavItem, ...]] = {
    Role.OPERATOR: OPERATOR_PAGES,
    Role.NURSE: NURSE_PAGES,
    Role.TEAM_LEAD: (*NURSE_PAGES, NavItem("Teams and caseloads", "/nurse/teams")),
    Role.PERSON: (NavItem("My record", "/me"),),
    Role.FAMILY: (NavItem("People I help", "/family"),),
    Role.ADMIN: ADMIN_PAGES,
}
"""Each role's menu, its landing page first."""


def menu(role: str) -> tuple[NavItem, ...]:
    """The role's menu; empty for a role this centre does not know (it then sees no page)."""
    try:
        return NAVIGATION[Role(role)]
    except ValueError:
        return ()


def landing(role: str) -> str:
    """The path a role lands on after signing in: its menu's first page (`/signin` if none)."""
    pages = menu(role)
    return pages[0].href if pages else "/signin"

