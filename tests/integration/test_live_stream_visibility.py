"""The consoles' event stream tells each user only about alerts they may see: an operator hears
of everyone's, a nurse of her caseload's, a family member of the people who consented, and no
one else even learns the id of another person's alert. Over a running centre, with real streams."""

from functools import partial
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from centre_app.centre import Centre, CentreThread
from detection.events import PENDANT_ALARM
from monitoring_centre.access import grant
from monitoring_centre.alerts import raise_alert
from monitoring_centre.broker import BrokerAccount
from monitoring_centre.enrolment import enrol_home
from monitoring_centre.storage import User, utc_now
from tests.support.api_world import bearer, populate
from tests.support.centre import centre_settings
from tests.support.live_stream import AlertStream
from tests.support.waiting import wait_for


def test_each_console_hears_only_of_the_alerts_its_user_may_see(
        tmp_path: Path, mosquitto: Any, broker_accounts: dict[str, BrokerAccount]) -> None:
    centre = Centre(centre_settings(tmp_path / "centre.db", mosquitto, broker_accounts))
    world = populate(centre.sessions)  # the nurse has Ada; the daughter has no one yet
    ada, bob = world.alerts["ada"], world.alerts["bob"]
    with CentreThread(centre):
        with httpx.Client(base_url=centre.url) as client:
            listeners = {who: AlertStream(centre.url, bearer(client, who)) for who in ("operator", "nurse", "daughter")}
        for listener in listeners.values():
            assert listener.opened.wait(10), "a stream did not open"

        centre.feed.publish({ada, bob})
        centre.feed.publish({bob})
        # Then a marker everyone may see: Cy, on the nurse's caseload, who consents to the daughter.
        # Notices arrive in order, so whatever came before it has arrived once it has.
        with centre.sessions() as session, session.begin():
            cy = enrol_home(session, name="Cy", address="3 Test Street", hub_id="hub-cy", devices=[])
            for username, basis in (("nurse", "direct_care"), ("daughter", "consent")):
                grant(session, session.scalars(select(User).where(User.username == username)).one(), cy, basis)
            marker = raise_alert(session, person_id=cy.id, hub_id="hub-cy", rule=PENDANT_ALARM, subject="",
                                 at=utc_now(), evidence={}, why="test").id
        centre.feed.publish({marker})
        for who, listener in listeners.items():
            wait_for(partial(listener.heard, marker), what=f"the {who}'s console to hear of Cy")

    def before_marker(who: str) -> list[list[int]]:
        notices = listeners[who].notices
        return notices[:next(i for i, notice in enumerate(notices) if marker in notice)]

    heard = {who: {alert_id for notice in before_marker(who) for alert_id in notice} for who in listeners}
    assert {ada, bob} <= heard["operator"]
    assert [ada, bob] in before_marker("operator") and [bob] in before_marker("operator")
    assert heard["nurse"] == {ada}  # Ada's caseload alert; never Bob's, not even alone
    assert [ada] in before_marker("nurse")
    assert heard["daughter"] == set()  # no consent yet: not a single id
    assert all(notice == [marker] for notice in listeners["daughter"].notices if marker in notice)
