"""`storage.one_worker_at_a_time`: a periodic pass (starting escalations, writing the record) runs on
one worker at a time on PostgreSQL; the others skip it while it runs, and take it once it is free.
On SQLite (one writer) every pass may run."""


import pytest
from sqlalchemy.orm import Session, sessionmaker

from monitoring_centre.storage import one_worker_at_a_time


@pytest.fixture
def sessions(migrated_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    return migrated_sessions


def test_a_second_worker_skips_the_pass_while_the_first_runs_it(sessions: sessionmaker[Session]) -> None:
    postgres = sessions.kw["bind"].dialect.name == "postgresql"
    with sessions() as first, one_worker_at_a_time(first, "start_escalations") as first_may:
        assert first_may
        with sessions() as second, one_worker_at_a_time(second, "start_escalations") as second_may:
            assert second_may is (not postgres)
        with sessions() as other, one_worker_at_a_time(other, "write_records") as other_job:
            assert other_job  # another job's lock is another lock
    with sessions() as later, one_worker_at_a_time(later, "start_escalations") as later_may:
        assert later_may  # released when the first pass ended
