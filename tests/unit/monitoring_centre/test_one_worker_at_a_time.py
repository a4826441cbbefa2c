"""`storage.one_worker_at_a_time`: a periodic pass (starting escalations, writing the record) runs on
one worker at a time on PostgreSQL; the others skip it while it runs, and take it once it is free.
On SQLite (one writer) every pass may run."""


import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from monitoring_centre.storage import one_worker_at_a_time


def test_a_second_worker_skips_the_pass_while_the_first_runs_it(migrated_sessions: sessionmaker[Session]) -> None:
    postgres = migrated_sessions.kw["bind"].dialect.name == "postgresql"
    with migrated_sessions() as first, one_worker_at_a_time(first, "start_escalations") as first_may:
        assert first_may
        with migrated_sessions() as second, one_worker_at_a_time(second, "start_escalations") as second_may:
            assert second_may is (not postgres)
        with migrated_sessions() as other, one_worker_at_a_time(other, "write_records") as other_job:
            assert other_job  # another job's lock is another lock
    with migrated_sessions() as later, one_worker_at_a_time(later, "start_escalations") as later_may:
        assert later_may  # released when the first pass ended


def test_a_pass_leaves_no_lock_behind_whichever_connection_its_session_ends_on(
        migrated_sessions: sessionmaker[Session]) -> None:
    """A pass commits and rolls back inside its block, and each time its session hands its connection
    back to the pool; meanwhile other threads take connections. After the passes, no lock is left held
    for another worker to trip on."""
    engine = migrated_sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's; SQLite has one writer")
    for _ in range(6):
        with migrated_sessions() as session, one_worker_at_a_time(session, "write_records") as mine:
            assert mine
            session.execute(text("SELECT 1"))
            session.commit()  # the session's connection goes back to the pool...
            other = engine.connect()  # ...and another thread takes it
            other.execute(text("SELECT 1"))
            session.execute(text("SELECT 1"))  # the session goes on, on another connection
        other.close()
    with engine.connect() as connection:
        held = connection.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")).scalar()
    assert held == 0
    with migrated_sessions() as another_worker, one_worker_at_a_time(another_worker, "write_records") as may:
        assert may
