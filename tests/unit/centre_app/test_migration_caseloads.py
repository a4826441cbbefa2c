"""Migration 0005: a centre with people, accounts and a nurse's caseload under 0004 keeps them all,
and gains teams, team caseloads and frailty entries."""

from alembic import command
from sqlalchemy import text
from sqlalchemy.orm import Session

from centre_app import schema
from monitoring_centre import access, frailty, teams
from monitoring_centre.frailty import FrailtyCategory
from monitoring_centre.storage import Person, User, make_engine


def test_a_database_at_0004_upgrades_with_its_rows(database_url: str) -> None:
    engine = make_engine(database_url)
    config = schema.alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
        for name in ("Ada", "Bob"):
            connection.execute(text("INSERT INTO people (name, address, service, access_details) "
                                    "VALUES (:name, '', 'monitored', '')"), {"name": name})
        ada, bob = connection.execute(text("SELECT id FROM people ORDER BY name")).scalars().all()
        connection.execute(text("INSERT INTO users (username, password_hash, role, display_name) "
                                "VALUES ('nurse', 'x', 'nurse', 'Nurse')"))
        nurse_id = connection.execute(text("SELECT id FROM users")).scalar_one()
        connection.execute(text("INSERT INTO care_relationships (user_id, person_id, basis, granted_at) "
                                "VALUES (:u, :p, 'direct_care', '2026-01-01 00:00:00')"), {"u": nurse_id, "p": ada})
    schema.upgrade(engine)
    with Session(engine) as session, session.begin():
        nurse = session.get_one(User, nurse_id)
        assert access.visible_person_ids(session, nurse) == {ada}  # her caseload, as before
        team = teams.create_team(session, "North", by="admin")
        teams.add_member(session, team, nurse, by="admin")
        teams.assign_to_team(session, session.get_one(Person, bob), team, by="admin")
        frailty.set_category(session, bob, FrailtyCategory.MILD, by="nurse")
        assert access.visible_person_ids(session, nurse) == {ada, bob}
        assert [entry.category for entry in frailty.history(session, bob)] == [FrailtyCategory.MILD]
    engine.dispose()
