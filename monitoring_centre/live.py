"""Live alert changes for open consoles.

The ingest thread calls `publish` with the ids of alerts that changed; each console's
event stream gets them on the web server's event loop. Only ids travel here: a console
then fetches the alerts through the API, where access rules and the audit log apply.

When the centre stops, `close()` ends every open stream at once (a stream checks `closed`
after each notice), so the web server's graceful shutdown has no open response to wait
for and then cancel.
"""

import asyncio
import threading


class AlertFeed:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: set[asyncio.Queue[list[int]]] = set()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once `close()` has been called: a stream that sees it ends."""
        return self._closed

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self) -> "asyncio.Queue[list[int]]":
        feed: asyncio.Queue[list[int]] = asyncio.Queue(maxsize=100)
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

    def unsubscribe(self, feed: "asyncio.Queue[list[int]]") -> None:
        with self._lock:
            self._subscribers.discard(feed)

    def publish(self, alert_ids: set[int]) -> None:
        """Thread-safe: called from the ingest worker."""
        if self._loop is None or self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._fan_out, sorted(alert_ids))

    def _fan_out(self, alert_ids: list[int]) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for feed in subscribers:
            if feed.full():  # a stalled console: drop its oldest notice, it refetches everything anyway
                feed.get_nowait()
            feed.put_nowait(alert_ids)
