"""One console's live stream of alert notices (`GET /api/v1/alerts/stream`), read on a thread, for
tests: the alert-id lists of its notices, whether it opened, and whether the centre ended it."""

import json
import queue
import threading

import httpx


class AlertStream:
    """`base_url`: the centre; `headers`: the console's sign-in (e.g. an Authorization header)."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.notices: list[list[int]] = []
        self.opened = threading.Event()
        """Set once the stream's first line (`retry:`) has come."""
        self.ended = threading.Event()
        """Set once the centre ended the stream (or it failed)."""
        self._event = "message"  # the type of the event being read (SSE's default)
        threading.Thread(target=self._read, args=(base_url, headers), daemon=True).start()

    def _read(self, base_url: str, headers: dict[str, str]) -> None:
        try:
            with httpx.stream("GET", f"{base_url}/api/v1/alerts/stream", headers=headers,
                              timeout=httpx.Timeout(10.0, read=None)) as response:
                for line in response.iter_lines():
                    if line.startswith("retry:"):
                        self.opened.set()
                    self.lines.put(line)
        finally:
            self.ended.set()

    def heard(self, alert_id: int) -> bool:
        """Takes in what has arrived; whether a notice with `alert_id` is among it. Events of another
        type (`event: storage`) are not notices of alerts."""
        while not self.lines.empty():
            line = self.lines.get_nowait()
            if line.startswith("event: "):
                self._event = line[7:]
            elif line.startswith("data: ") and self._event == "message":
                self.notices.append(json.loads(line[6:])["alert_ids"])
            elif line == "":
                self._event = "message"
        return any(alert_id in notice for notice in self.notices)

    def times(self, alert_id: int) -> int:
        """Takes in what has arrived; how many notices name `alert_id`."""
        self.heard(alert_id)
        return sum(alert_id in notice for notice in self.notices)
