"""A real SMTP server on 127.0.0.1 for channel tests (aiosmtpd), recording what it receives."""

import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.helpers import free_port


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the server received it: the envelope and the parsed content."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        """The plain-text body, decoded."""
        body = self.message.get_body(("plain",))
        assert body is not None, "the mail has no text/plain part"
        content: str = body.get_content()
        return content


class Mailbox:
    """The aiosmtpd handler: accepts mail (or refuses some recipients) and keeps every message."""

    def __init__(self, refuse: Mapping[str, str] | None = None) -> None:
        self.refuse = dict(refuse or {})
        """Recipient address → the SMTP reply that refuses it, e.g. "550 5.1.1 No such user"."""
        self._lock = threading.Lock()
        self._received: list[ReceivedMail] = []

    @property
    def received(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._received)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self._received.append(ReceivedMail(envelope.mail_from or "", list(envelope.rcpt_tos), parsed))
        return f"250 2.0.0 Ok: queued as test-{len(self._received)}"


class Accounts:
    """An aiosmtpd authenticator accepting exactly the given username/password pairs."""

    def __init__(self, accounts: Mapping[str, str]) -> None:
        self.accounts = dict(accounts)

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        # handled=False: aiosmtpd answers a failure itself (535)
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        username, password = auth_data.login.decode(), auth_data.password.decode()
        return AuthResult(success=self.accounts.get(username) == password, handled=False)


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    mailbox: Mailbox


@contextmanager
def smtp_server(
    *, refuse: Mapping[str, str] | None = None, accounts: Mapping[str, str] | None = None
) -> Iterator[SmtpServer]:
    """A plaintext SMTP server on 127.0.0.1 for the duration of the block.

    With `accounts`, AUTH is offered without TLS and required before MAIL FROM.
    """
    mailbox = Mailbox(refuse)
    auth: dict[str, Any] = {}
    if accounts is not None:
        auth = {"authenticator": Accounts(accounts), "auth_required": True, "auth_require_tls": False}
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), ready_timeout=5.0, **auth)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", controller.port, mailbox)
    finally:
        controller.stop()


@contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections but never says anything (a hung mail server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port: int = listener.getsockname()[1]
        yield port
