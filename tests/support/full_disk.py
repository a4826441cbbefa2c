"""A full disk under a centre's SQLite database, for tests of the storage fault.

Filled honestly: SQLite is told the database may not grow (`PRAGMA max_page_count` at its
current size, on every new connection), then rows are added until SQLite answers SQLITE_FULL
("database or disk is full"), as it does when the file system is full; `free` lifts the limit."""

from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from centre_app.centre import Centre
from monitoring_centre.storage import AuditEntry, utc_now
from monitoring_centre.storage_health import is_storage_fault


class Disk:
    """The database's disk, which a test can fill and then free."""

    def __init__(self, centre: Centre) -> None:
        self.centre = centre
        self.pages = 0

    def _limit(self, dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count={self.pages}")

    def fill(self) -> None:
        engine = self.centre.engine
        with engine.connect() as connection:
            self.pages = int(connection.exec_driver_sql("PRAGMA page_count").scalar_one())
        event.listen(engine, "connect", self._limit)
        engine.dispose()  # every connection from now on has the limit
        for size in (4000, 500, 50, 1):  # then take what room is left in the last pages
            while True:
                try:
                    with self.centre.sessions() as session:
                        session.add(AuditEntry(at=utc_now(), actor="test:disk", action="filler", person_id=None,
                                               detail="x" * size))
                        session.commit()
                except OperationalError as full:
                    assert is_storage_fault(full), full
                    break

    def free(self) -> None:
        event.remove(self.centre.engine, "connect", self._limit)
        self.centre.engine.dispose()
