"""Every page gives times in the centre's time zone (its `timezone` setting), named once per page;
NHS numbers always 3-3-4; the nurse's charts label their axes en-GB in that zone, never by the
browser's locale or zone."""

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from centre_app.api.deps import CentreState
from centre_app.pages.rendering import environment
from monitoring_centre import teams
from monitoring_centre.nhs_number import spaced
from monitoring_centre.storage import Person, PlannedAbsence, User
from tests.support.api_world import ADMIN, PASSWORD, api_app

PAGES = Path(__file__).resolve().parents[4] / "centre_app" / "pages"
SAME_SITE = {"sec-fetch-site": "same-origin"}
UTC_DAYS_LEFT = {"operator/kpis.html"}
"""The answer-time figures are still counted per UTC day by `monitoring_centre/kpis.py` and say so."""


def test_nhs_numbers_are_spaced_3_3_4() -> None:
    assert spaced("9990001235") == "999 000 1235"
    assert spaced("999 000 1235") == "999 000 1235"
    assert spaced("not recorded") == "not recorded"


def test_the_local_time_filter_gives_the_centres_zone() -> None:
    template = environment.from_string("{{ at | local_time }}")
    summer = datetime(2026, 6, 1, 4, 52, tzinfo=UTC)
    assert template.render(at=summer, centre_zone="Europe/London") == "1 Jun 2026 05:52"
    assert template.render(at=datetime(2026, 11, 30, 4, 52, tzinfo=UTC), centre_zone="Europe/London") == \
        "30 Nov 2026 04:52"
    assert template.render(at=None, centre_zone="Europe/London") == ""


def test_no_template_formats_a_time_itself_or_in_utc() -> None:
    for path in (PAGES / "templates").rglob("*.html"):
        name = path.relative_to(PAGES / "templates").as_posix()
        text = path.read_text()
        assert not re.search(r"strftime\([^)]*%H", text), f"{name}: a time not through local_time"
        if name not in UTC_DAYS_LEFT:
            assert "UTC" not in text, f"{name} gives a time in UTC"


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    app, engine, _world = api_app(database_url)
    with TestClient(app, base_url="https://centre.test") as test_client:
        yield test_client
    engine.dispose()


def test_the_nurse_page_gives_local_times_the_zone_once_and_a_spaced_nhs_number(client: TestClient) -> None:
    centre: CentreState = cast(FastAPI, client.app).state.centre
    with centre.sessions() as session, session.begin():
        ada = session.scalars(select(Person).where(Person.name == "Ada")).one()
        nurse = session.scalars(select(User).where(User.username == "nurse")).one()
        ada.nhs_number = "9990001235"
        teams.assign_to_nurse(session, ada, nurse, by=ADMIN)
        session.add(PlannedAbsence(person_id=ada.id, starts_at=datetime(2031, 6, 3, 4, 30, tzinfo=UTC),
                                   ends_at=datetime(2031, 6, 10, 4, 30, tzinfo=UTC), reason="holiday",
                                   created_by="nurse", created_at=datetime(2031, 6, 1, tzinfo=UTC)))
        ada_id = ada.id
    signed_in = client.post("/signin", data={"username": "nurse", "password": PASSWORD, "next": ""},
                            headers=SAME_SITE, follow_redirects=False)
    assert signed_in.status_code == 303, signed_in.text
    page = client.get(f"/nurse/people/{ada_id}")
    assert page.status_code == 200, page.text
    text = page.text
    assert "NHS number 999 000 1235" in text
    assert "3 Jun 2031 05:30 to 10 Jun 2031 05:30" in text and "UTC" not in text
    assert text.count("Times are UK time") == 1 and 'data-time-zone="Europe/London"' in text


def test_the_nurse_charts_label_their_axes_en_gb_in_the_centres_zone() -> None:
    script = (PAGES / "static" / "js" / "nurse" / "person.js").read_text()
    assert "axes: [{}" not in script and script.count("tzDate, axes: [") == 2
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    check = (
        'globalThis.document = { documentElement: { dataset: { timeZone: "Europe/London" } } };'
        f'const m = await import({json.dumps((PAGES / "static" / "js" / "time.js").as_uri())});'
        "console.log(JSON.stringify(["
        " m.axisLabels(null, [Date.UTC(2026, 5, 1, 5) / 1000, Date.UTC(2026, 5, 1, 11) / 1000]),"
        " m.axisLabels(null, [Date.UTC(2026, 10, 1) / 1000, Date.UTC(2026, 10, 29) / 1000]),"
        ' m.zonedMidnight("2026-06-03"), m.zonedMidnight("2026-11-30", 1)]));')
    result = subprocess.run([node, "--input-type=module", "-e", check], capture_output=True, text=True, timeout=60,
                            check=True)
    assert json.loads(result.stdout) == [["06:00", "12:00"], ["1 Nov", "29 Nov"], "2026-06-02T23:00:00.000Z",
                                         "2026-12-01T00:00:00.000Z"]
