"""Repeats counted on an open alert by two transactions at once (two threads of a worker, or two
workers during a takeover) are both counted: `raise_alert` reads the open alert locked and fresh,
so the second waits for the first's commit instead of writing over it with a stale count."""

import threading
import time
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from detection.rules import CATALOGUE, RuleId
from monitoring_centre.alerts import raise_alert
from monitoring_centre.enrolment import enrol_home
from monitoring_centre.storage import Alert
from tests.support.alerting_home import T0


def press(session: Session, person_id: int, seconds: float) -> Alert:
    return raise_alert(session, person_id=person_id, hub_id="hub-ada", rule=CATALOGUE[RuleId.PENDANT_ALARM],
                       subject="", at=T0 + timedelta(seconds=seconds), evidence={"n": seconds}, why="test")


def test_two_repeats_counted_at_once_are_both_counted(migrated_sessions: sessionmaker[Session]) -> None:
    with migrated_sessions() as session, session.begin():
        person_id = enrol_home(session, name="Ada", address="1 Test Street", hub_id="hub-ada", devices=[]).id
        alert_id = press(session, person_id, 0).id
    first = migrated_sessions()
    press(first, person_id, 1)  # counted, not yet committed: the alert's row is locked
    second_done = threading.Event()

    def second() -> None:
        with migrated_sessions() as session, session.begin():
            press(session, person_id, 2)
        second_done.set()

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.5)  # the second is waiting for the first (PostgreSQL: the row lock; SQLite: the write lock)
    first.commit()
    first.close()
    thread.join(timeout=30)
    assert second_done.is_set()
    with migrated_sessions() as session:
        alert = session.get_one(Alert, alert_id)
        assert alert.repeat_count == 2
        assert [item["n"] for item in alert.explanation["evidence"]] == [0, 1, 2]
