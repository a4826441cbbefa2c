"""The centre's SQLite writers queue for the write lock in the process (`write_turn`), on a real file."""

import sqlite3
import threading
from pathlib import Path
from unittest.mock import patch

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from monitoring_centre import storage
from monitoring_centre.write_turn import Turn


def engine_at(path: Path, timeout_s: float = 5.0) -> tuple[Engine, Turn]:
    """An engine whose writers wait at most `timeout_s` (for the turn, then for SQLite): a turn never given
    back fails a test in seconds, not the 30 s of production."""
    with patch.object(storage, "SQLITE_BUSY_TIMEOUT_S", timeout_s):
        engine = storage.make_engine(storage.sqlite_url(path))
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (a INTEGER)"))
    return engine, storage.WRITE_TURNS[engine]


def free(turn: Turn) -> bool:
    if not turn.take():
        return False
    turn.give_back()
    return True


def test_a_writer_waits_for_the_turn_and_begins_once_the_other_transaction_ends(tmp_path: Path) -> None:
    engine, turn = engine_at(tmp_path / "centre.db")
    holding, release, second_done = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))
            holding.set()
            release.wait(10)

    def second() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (2)"))
        second_done.set()

    one = threading.Thread(target=first)
    one.start()
    assert holding.wait(10)
    two = threading.Thread(target=second)
    two.start()
    assert not second_done.wait(0.3)  # queued behind the first transaction
    assert turn.waited == 0
    release.set()
    one.join(10)
    two.join(10)
    assert second_done.is_set()
    assert (turn.waited, turn.timed_out) == (1, 0)
    assert turn.waited_s > 0
    with engine.connect() as connection:
        assert connection.execute(text("SELECT a FROM t ORDER BY a")).scalars().all() == [1, 2]
    assert free(turn)


def test_the_turn_is_given_back_however_a_transaction_ends(tmp_path: Path) -> None:
    engine, turn = engine_at(tmp_path / "centre.db")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (1)"))
    assert free(turn)
    with pytest.raises(ZeroDivisionError), engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (2)"))
        raise ZeroDivisionError
    assert free(turn)
    with Session(engine) as session:
        session.execute(text("INSERT INTO t VALUES (3)"))
        session.rollback()
    assert free(turn)
    with Session(engine) as session:  # closed with its transaction open
        session.execute(text("INSERT INTO t VALUES (4)"))
    assert free(turn)
    connection = engine.connect()
    connection.execute(text("INSERT INTO t VALUES (5)"))
    connection.invalidate()  # the driver's connection closed under it
    connection.close()
    assert free(turn)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT a FROM t")).scalars().all() == [1]


def test_a_read_takes_no_turn_and_goes_on_while_a_writer_holds_it(tmp_path: Path) -> None:
    engine, turn = engine_at(tmp_path / "centre.db")
    taken = turn.taken
    with engine.begin() as writer:
        writer.execute(text("INSERT INTO t VALUES (1)"))
        with Session(engine) as session:
            storage.begin_read(session)
            assert session.execute(text("SELECT count(*) FROM t")).scalar() == 0  # the snapshot before
            session.rollback()
    assert turn.taken == taken + 1


def test_a_begin_that_fails_gives_the_turn_back(tmp_path: Path) -> None:
    path = tmp_path / "centre.db"
    engine, turn = engine_at(path, timeout_s=0.05)
    outsider = sqlite3.connect(path, isolation_level=None)  # another process's writer: no turn of ours
    outsider.execute("BEGIN IMMEDIATE")
    with pytest.raises(OperationalError, match="locked"), engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (1)"))
    assert free(turn)
    outsider.execute("COMMIT")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (2)"))
    assert free(turn)


def test_a_turn_not_had_in_time_lets_the_writer_go_on_counted() -> None:
    turn = Turn(timeout_s=0.05)
    assert turn.take()
    had: list[bool] = []
    other = threading.Thread(target=lambda: had.append(turn.take()))
    other.start()
    other.join(10)
    assert had == [False]
    assert (turn.taken, turn.waited, turn.timed_out) == (1, 0, 1)
    turn.give_back()
    assert free(turn)
