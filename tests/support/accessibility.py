"""axe-core (through `axe-playwright-python`) on a page open in Chromium: no serious or critical
violation may remain, on any page of any role."""

from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

BLOCKING_IMPACTS = frozenset({"serious", "critical"})
"""axe-core's impact levels the pages must be free of (the others are reported, not failed)."""

_axe = Axe()


def blocking_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now, with impact serious or critical: each
    `{"id", "impact", "help", "nodes": [...]}`."""
    results = _axe.run(page)
    return [violation for violation in results.response["violations"] if violation.get("impact") in BLOCKING_IMPACTS]


def assert_accessible(page: Page, what: str = "") -> None:
    """Fails, naming each rule and the first few elements, if axe-core finds a serious or
    critical violation on the page."""
    found = blocking_violations(page)
    summary = "; ".join(f"{v['id']} ({v['impact']}): {v['help']} at "
                        f"{[node.get('target') for node in v['nodes'][:3]]}" for v in found)
    assert not found, f"{what or page.url}: {summary}"
