"""The e-mail channel: `mailto:` contact points, sent through the centre's SMTP server."""

import smtplib
import ssl
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import TYPE_CHECKING
from urllib.parse import unquote

from alerting.channels import Delivery, Message, SmtpSettings

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

CHANNEL = "email"

PRIORITY_WORDS = {1: "EMERGENCY", 2: "URGENT", 3: "HIGH", 4: "SUPERVISION", 5: "RESTORAL", 9: "ROUTINE"}
"""Subject prefixes, by `telecare_protocol.codes.Priority` value."""

_ATEXT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~")
"""Characters allowed as-is on the left of a Message-ID's "@" (RFC 5322 atext)."""


def mailbox(address: str) -> str:
    """The mailbox a `mailto:` contact point names. ValueError says what is wrong with it."""
    rest = address[len("mailto:") :]
    if rest.startswith("//"):
        raise ValueError("write the e-mail address as mailto:someone@example.org; the mail server is set by the centre")
    if "?" in rest:
        raise ValueError("mailto: headers (?subject=…) are not supported; give only the address")
    if "," in rest:
        raise ValueError("give one e-mail address per contact point")
    return _addr_spec(unquote(rest))


def sender_address(mail_from: str) -> str:
    """The envelope sender in `mail_from` ("Name <a@b>" or "a@b"). ValueError if there is none."""
    if "\r" in mail_from or "\n" in mail_from:
        raise ValueError("the sender address must be on one line")
    _, addr = parseaddr(mail_from)
    return _addr_spec(addr or mail_from)


def _addr_spec(text: str) -> str:
    """`text` checked to be one bare e-mail address (local@domain)."""
    if not text:
        raise ValueError("the e-mail address is empty")
    try:
        parsed = Address(addr_spec=text)
    except (ValueError, IndexError, MessageError):
        raise ValueError(f"{text!r} is not an e-mail address") from None
    if not parsed.username or not parsed.domain:
        raise ValueError(f"{text!r} is not an e-mail address (expected someone@example.org)")
    return parsed.addr_spec


def validate_mailto(address: str) -> str | None:
    """None when `address` is a usable `mailto:` contact point, otherwise the problem."""
    try:
        mailbox(address)
    except ValueError as e:
        return str(e)
    return None


def priority_word(priority: int) -> str:
    """The subject prefix word for a priority, e.g. "EMERGENCY" for 1."""
    return PRIORITY_WORDS.get(priority, f"PRIORITY {priority}")


def message_id(reference: str, mail_from: str) -> str:
    """A Message-ID that depends only on the reference and the sender's domain.

    A retry of the same notification gets the same Message-ID, so mail clients and
    relays can see it is a duplicate. Characters not allowed in a Message-ID are %-escaped.
    """
    left = "".join(c if c in _ATEXT else "".join(f"%{b:02X}" for b in c.encode()) for c in reference)
    domain = sender_address(mail_from).rpartition("@")[2]
    return f"<{left}@{domain}>"


def compose(recipient: str, message: Message, smtp: SmtpSettings) -> EmailMessage:
    """The e-mail for `message`, addressed to `recipient`."""
    mail = EmailMessage()
    mail["From"] = smtp.mail_from
    mail["To"] = recipient
    subject = " ".join(message.subject.split())  # a header is one line
    mail["Subject"] = f"[{priority_word(message.priority)}] {subject}"
    mail["Date"] = formatdate(localtime=True)
    mail["Message-ID"] = message_id(message.reference, smtp.mail_from)
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to alarms
    if message.priority in (1, 2):
        mail["X-Priority"] = "1"
    mail.set_content(message.body_with_links())
    return mail


class _Client(smtplib.SMTP):
    """smtplib.SMTP that keeps the server's answer to the message ("250 … queued as …")."""

    answer = ""

    def data(self, msg: "ReadableBuffer | str") -> tuple[int, bytes]:
        code, text = super().data(msg)
        self.answer = f"{code} {text.decode(errors='replace')}"
        return code, text


class _TlsClient(_Client, smtplib.SMTP_SSL):
    """The same over implicit TLS."""


def send_email(address: str, message: Message, smtp: SmtpSettings | None) -> Delivery:
    """Send `message` to the `mailto:` contact point. Delivery problems are returned, not raised."""
    try:
        recipient = mailbox(address)
    except ValueError as e:
        return Delivery(ok=False, channel=CHANNEL, detail=str(e))
    if smtp is None:
        return Delivery(ok=False, channel=CHANNEL, detail="no SMTP server configured")
    mail = compose(recipient, message, smtp)
    server = f"{smtp.host}:{smtp.port}"
    try:
        client = _connect(smtp)
    except (OSError, smtplib.SMTPException) as e:
        return _failed(smtp, f"could not connect to SMTP server {server}: {_explain(e, smtp)}")
    try:
        client.ehlo()
        if smtp.starttls and not smtp.use_tls:
            if not client.has_extn("starttls"):
                return _failed(smtp, f"SMTP server {server} does not offer STARTTLS (starttls=False sends in clear)")
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
        if smtp.username:
            password = smtp.password.get_secret_value() if smtp.password else ""
            client.login(smtp.username, password)
        client.send_message(mail, from_addr=sender_address(smtp.mail_from), to_addrs=[recipient])
    except (OSError, smtplib.SMTPException) as e:
        return _failed(smtp, f"SMTP server {server}: {_explain(e, smtp)}")
    finally:
        _quit(client)
    return Delivery(ok=True, channel=CHANNEL, detail=_scrub(client.answer or "accepted", smtp))


def _connect(smtp: SmtpSettings) -> _Client:
    if smtp.use_tls:
        return _TlsClient(smtp.host, smtp.port, timeout=smtp.timeout_s, context=ssl.create_default_context())
    return _Client(smtp.host, smtp.port, timeout=smtp.timeout_s)


def _quit(client: smtplib.SMTP) -> None:
    """Say goodbye; the message is already accepted or refused, so a failure here changes nothing."""
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()


def _explain(error: Exception, smtp: SmtpSettings) -> str:
    """A one-line description of an SMTP or network error, with the server's code and text."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        refusals = [f"{code} {_text(text)} ({rcpt})" for rcpt, (code, text) in error.recipients.items()]
        return "recipient refused: " + "; ".join(refusals)
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return f"login refused: {error.smtp_code} {_text(error.smtp_error)}"
    if isinstance(error, smtplib.SMTPSenderRefused):
        return f"sender {error.sender} refused: {error.smtp_code} {_text(error.smtp_error)}"
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{error.smtp_code} {_text(error.smtp_error)}"
    if isinstance(error, TimeoutError) or isinstance(error.__context__, TimeoutError):
        # smtplib turns a read timeout into SMTPServerDisconnected; the timeout is its context
        return f"no answer within {smtp.timeout_s:g} s"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return f"connection closed by the server ({error})" if str(error) else "connection closed by the server"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _text(answer: bytes | str) -> str:
    return answer.decode(errors="replace") if isinstance(answer, bytes) else answer


def _failed(smtp: SmtpSettings, detail: str) -> Delivery:
    return Delivery(ok=False, channel=CHANNEL, detail=_scrub(detail, smtp))


def _scrub(detail: str, smtp: SmtpSettings) -> str:
    """`detail` with the SMTP password masked, in case a server echoes it back."""
    password = smtp.password.get_secret_value() if smtp.password else ""
    return detail.replace(password, "****") if password else detail
