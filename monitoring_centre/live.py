"""Live alert changes for open consoles.

The ingest thread calls `publish` with the ids of alerts that changed; each console's
event stream gets them on the web server's event loop. Only ids travel here: a console
then fetches the alerts through the API, where access rules and the audit log apply.
Even an id says that a person had an alert, and when: a stream passes on only those its
user may see (`visible_alert_ids`, by `access.visible_person_ids`), checked at each notice
so a consent withdrawn ends the notices at once.

With several centre workers, `publish` also tells the others (`others`, e.g.
`change_feed.PostgresChanges.announce`), and their notices come in through `deliver` (this
worker's streams only). When notices may have been missed (the link to the other workers was
lost), `resync()` ends every open stream: the console reconnects within a second and refetches
everything, as after any lost connection.

When the centre stops, `close()` ends every open stream at once (a stream checks `closed`
after each notice), so the web server's graceful shutdown has no open response to wait
for and then cancel.
"""

import asyncio
import enum
import logging
import threading
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitoring_centre.access import visible_person_ids
from monitoring_centre.storage import Alert, User

log = logging.getLogger(__name__)


class Marker(enum.Enum):
    """A notice that is not a list of alert ids."""

    RESYNC = "resync"
    """Notices may have been missed: the stream ends, so the console reconnects and refetches everything."""


Notice = list[int] | Marker
"""What a stream's queue holds: the ids of alerts that changed (ascending), or a `Marker`."""


def visible_alert_ids(session: Session, user: User, alert_ids: Sequence[int]) -> list[int]:
    """Those of `alert_ids` whose person `user` may see now, in the order given (an operator
    or an administrator sees them all, without a query). Unknown ids are left out."""
    visible = visible_person_ids(session, user)
    if visible is None:
        return list(alert_ids)
    if not visible or not alert_ids:
        return []
    allowed = set(session.scalars(select(Alert.id).where(Alert.id.in_(alert_ids), Alert.person_id.in_(visible))))
    return [alert_id for alert_id in alert_ids if alert_id in allowed]


class AlertFeed:
    """This worker's open streams. `others`: called (on the publishing thread, after the local
    fan-out) with the ids each `publish` is told, to tell the centre's other workers; it must not
    raise (one that does is logged)."""

    def __init__(self, others: Callable[[set[int]], None] | None = None) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._others = others
        self._subscribers: set[asyncio.Queue[Notice]] = set()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once `close()` has been called: a stream that sees it ends."""
        return self._closed

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self) -> "asyncio.Queue[Notice]":
        feed: asyncio.Queue[Notice] = asyncio.Queue(maxsize=100)
        with self._lock:
            self._subscribers.add(feed)
            if self._closed:  # opened while the centre stops: wake it at once, to end
                feed.put_nowait([])
        return feed

    def close(self) -> None:
        """End every open stream: set `closed`, then wake each with an empty notice. Call it on
        the event loop's thread (the web server's shutdown does), before open connections are
        waited for."""
        with self._lock:
            self._closed = True
            subscribers = list(self._subscribers)
        for feed in subscribers:
            if feed.full():
                feed.get_nowait()
            feed.put_nowait([])

    def unsubscribe(self, feed: "asyncio.Queue[Notice]") -> None:
        with self._lock:
            self._subscribers.discard(feed)

    def publish(self, alert_ids: set[int]) -> None:
        """Thread-safe: called from the ingest worker, the tick, the escalator and the API after their
        commit. Tells this worker's streams, then the other workers (`others`; not an empty set)."""
        self.deliver(alert_ids)
        if self._others is not None and alert_ids:
            try:
                self._others(alert_ids)
            except Exception:
                log.exception("could not tell the other workers of changed alerts (they are committed)")

    def deliver(self, alert_ids: Iterable[int]) -> None:
        """Thread-safe: tell this worker's streams only (a notice from another worker)."""
        self._put(sorted(alert_ids))

    def resync(self) -> None:
        """Thread-safe: notices may have been missed; every open stream ends, and its console
        reconnects and refetches everything."""
        self._put(Marker.RESYNC)

    def _put(self, notice: Notice) -> None:
        if self._loop is None or self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._fan_out, notice)

    def _fan_out(self, notice: Notice) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for feed in subscribers:
            if feed.full():  # a stalled console: drop its oldest notice, it refetches everything anyway
                feed.get_nowait()
            feed.put_nowait(notice)
