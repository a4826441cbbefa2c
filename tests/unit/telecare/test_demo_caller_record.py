"""The demo's person comes with a full caller record for the operator's call screen (issue 12)."""

import secrets
from datetime import date
from pathlib import Path

from sqlalchemy import select

from centre_app.centre import Centre
from centre_app.settings import CentreSettings
from device_sims.demo_day import DEMO_HUB_ID
from monitoring_centre.caller_record import record
from monitoring_centre.roles import Role
from monitoring_centre.storage import Hub, Person
from telecare.demo import _enrol_demo_home


def test_the_demo_person_has_a_caller_record_and_a_daughter_as_keyholder(tmp_path: Path) -> None:
    centre = Centre(CentreSettings(database_url=f"sqlite:///{tmp_path / 'centre.db'}",
                                   jwt_secret=secrets.token_urlsafe(48), mqtt_password=secrets.token_urlsafe(16),
                                   allow_test_nhs_numbers=True))
    try:
        _enrol_demo_home(centre, {role: "a-long-demo-password-" + secrets.token_hex(4) for role in Role})
        with centre.sessions() as session:
            person = session.scalars(select(Person).join(Hub, Hub.person_id == Person.id)
                                     .where(Hub.id == DEMO_HUB_ID)).one()
            caller = record(session, person, date(2026, 3, 14))  # her 85th birthday
    finally:
        centre.engine.dispose()
    assert caller.age == 85 and caller.phones and caller.conditions and caller.gp_practice and caller.pets
    assert caller.access_notes and "1234" not in caller.access_notes  # the key-safe code is not an operator's
    assert [(k.order, k.relationship) for k in caller.keyholders] == [(1, "daughter")]
