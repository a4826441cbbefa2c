"""The demo's outgoing mail: a local SMTP server that keeps each message as a file.

The centre sends to it exactly as it would send to a real mail server, so the demo shows
the escalation leaving the centre: an alarm nobody acknowledges reaches the simulated
keyholder after three minutes, with a link to accept it.
"""

import itertools
import re
import socket
import threading
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class Outbox:
    """An aiosmtpd handler: writes each message to `directory/NNNN.eml` and prints a line. The lines of
    mail sent before `show` (the escalations of the seeded history, at start) wait for it, so the demo's
    first line is always where to sign in."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._held: list[str] | None = []

    def show(self) -> None:
        """Print the lines held so far, and every later one as its mail arrives."""
        with self._lock:
            held, self._held = self._held or [], None
            for line in held:
                print(line, flush=True)

    def _print(self, line: str) -> None:
        with self._lock:
            if self._held is not None:
                self._held.append(line)
            else:
                print(line, flush=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or envelope.content
        path = self.directory / f"{next(self._numbers):04d}.eml"
        path.write_bytes(content)
        message = message_from_bytes(content, policy=policy.default)
        body = message.get_body(("plain",))
        link = re.search(r"Accept: (\S+)", body.get_content()) if body is not None else None
        self._print(f"  mail to {', '.join(envelope.rcpt_tos)}: {str(message['Subject']).strip()}"
                    + (f"\n    accept: {link.group(1)}" if link else ""))
        return "250 OK: kept in the demo outbox"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_outbox(directory: Path) -> Controller:
    controller = Controller(Outbox(directory), hostname="127.0.0.1", port=free_port(), ready_timeout=5.0)
    controller.start()
    return controller
