"""Notification channels: how a message reaches a responder's contact point.

A contact point is one address. `mailto:someone@example.org` is sent by e-mail through the
centre's SMTP server (`email.py`), or through GOV.UK Notify when the centre has a Notify
e-mail template (`NotifySettings.email_template_id`); `sms:+447700900123` (RFC 5724) is a
text message through GOV.UK Notify (`notify_channel.py`); anything else is an Apprise URL
such as `json://host:port/path` or `ntfys://host/topic` (`apprise_channel.py`).

`send` never raises for a delivery problem: an unreachable server, a refused login, a
rejected recipient, a bad address or one inside the centre's own networks (`targets.py`)
all come back as `Delivery(ok=False)` with a detail fit for the notification log. A
failure that no retry can cure (Notify's 400 or 403: a bad number, a bad key) says so with
`retry=False`, and the notification is marked failed at once (`notify.record`).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from alerting.channels.targets import NO_INTERNAL_TARGETS, InternalTargets

__all__ = ["Delivery", "InternalTargets", "Message", "NotifySettings", "SmtpSettings", "send", "validate_address"]


@dataclass(frozen=True)
class Message:
    """One notification to one responder, channel-neutral."""

    subject: str
    body: str
    """Plain text, already written for a human."""
    priority: int
    """1 emergency … 5 restoral, 9 routine (`telecare_protocol.codes.Priority`)."""
    reference: str
    """Stable id of what this is about, e.g. "alert-12/step-0/responder-3".

    A retry of the same notification carries the same reference, so receivers can
    recognise the duplicate (it becomes the e-mail Message-ID)."""
    links: Mapping[str, str] = field(default_factory=dict)
    """Actions the responder can take, by name, e.g. {"accept": url}."""
    sms: str = ""
    """The whole text for a text message, links included: plain and short (160 characters, one
    SMS, where the names and the link allow). Empty: a text message is made of the subject and
    the links (`text_message`)."""

    def __post_init__(self) -> None:
        if not self.reference.strip():
            raise ValueError("a message needs a reference: it identifies retries of the same notification")

    def body_with_links(self) -> str:
        """The body followed by one "Accept: <url>" line per link."""
        if not self.links:
            return self.body
        lines = [f"{name.replace('_', ' ').capitalize()}: {url}" for name, url in self.links.items()]
        return self.body.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"

    def text_message(self) -> str:
        """The text for an SMS: `sms` when given, else the subject followed by the links."""
        if self.sms:
            return self.sms
        return " ".join([" ".join(self.subject.split()), *self.links.values()])


@dataclass(frozen=True)
class Delivery:
    """The outcome of one send, for the notification log."""

    ok: bool
    channel: str
    """Which channel sent it: "email", "notify-sms", "notify-email", or the Apprise URL scheme as written
    ("json", "ntfys", …)."""
    detail: str
    """The server's answer or the error; never contains a password or an API key."""
    retry: bool = True
    """For a failure: whether trying again may help (a server down, a rate limit). False when it
    cannot (a refused number or key): the notification is then failed at once, not retried."""


class SmtpSettings(BaseModel):
    """How the centre reaches its outgoing mail server."""

    model_config = ConfigDict(use_attribute_docstrings=True)  # the docstrings describe the settings

    host: str = Field(min_length=1)
    """The mail server's host name."""
    port: int = Field(default=587, ge=1, le=65535)
    """587 (submission, STARTTLS) or 465 (implicit TLS)."""
    username: str | None = None
    """Login, if the server wants one; none sends without logging in."""
    password: SecretStr | None = None
    """Password for `username`."""
    starttls: bool = True
    """Upgrade the connection with STARTTLS, and refuse to send if the server does not offer it."""
    use_tls: bool = False
    """Implicit TLS from the first byte (usually port 465); `starttls` is then not used."""
    mail_from: str
    """The sender, "alerts@centre.example.org" or "Telecare Centre <alerts@centre.example.org>"."""
    timeout_s: float = Field(default=10.0, gt=0)
    """Seconds to wait for the server at each step before a send counts as failed (and is retried)."""

    @field_validator("mail_from")
    @classmethod
    def _mail_from_is_an_address(cls, value: str) -> str:
        from alerting.channels.email import sender_address

        sender_address(value)  # raises ValueError naming the problem
        return value

    @model_validator(mode="after")
    def _password_with_username(self) -> "SmtpSettings":
        if self.username and self.password is None:
            raise ValueError("an SMTP username needs a password")
        return self


class NotifySettings(BaseModel):
    """How the centre reaches GOV.UK Notify, for text messages (`sms:` contact points) and, when
    `email_template_id` is set, for e-mail (`mailto:` contact points, instead of SMTP).

    The templates are made in Notify's web interface. The SMS template's whole content is
    `((body))`; the e-mail template's subject is `((subject))` and its content `((body))`.
    Our messages fill these placeholders (`notify_channel.personalisation`)."""

    model_config = ConfigDict(use_attribute_docstrings=True)  # the docstrings describe the settings

    api_key: SecretStr
    """The API key from Notify: its name, then the service id and the secret key (two UUIDs)."""
    sms_template_id: str | None = None
    """The SMS template's id (a UUID); none: `sms:` contact points cannot be sent to."""
    email_template_id: str | None = None
    """The e-mail template's id (a UUID); none: e-mail goes through the SMTP server."""
    base_url: str = Field(default="https://api.notifications.service.gov.uk", min_length=1)
    """Notify's API, or the proxy a closed network (e.g. HSCN) reaches it through."""
    sms_sender_id: str | None = None
    """Which of the service's text message senders to use (a UUID); none: the service's default."""
    timeout_s: float = Field(default=10.0, gt=0)
    """Seconds to wait for Notify before a send counts as failed (and is retried)."""

    @field_validator("api_key")
    @classmethod
    def _key_has_service_and_secret(cls, value: SecretStr) -> SecretStr:
        from alerting.channels.notify_channel import check_api_key

        check_api_key(value.get_secret_value())  # ValueError says what is wrong, never the key
        return value

    @field_validator("sms_template_id", "email_template_id", "sms_sender_id")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        from alerting.channels.notify_channel import check_uuid

        return None if value is None else check_uuid(value)


def is_mailto(address: str) -> bool:
    """True for addresses the e-mail channel handles (scheme `mailto`, any case)."""
    return address[:7].lower() == "mailto:"


def is_tel(address: str) -> bool:
    """True for a `tel:` contact point (RFC 3966, any case): a number for the operator to phone,
    shown on the call screen. No channel sends to it; the escalation leaves it out."""
    return address[:4].lower() == "tel:"


def validate_address(address: str) -> str | None:
    """None when `address` can be used as a contact point, otherwise what is wrong with it."""
    if not address.strip():
        return "the address is empty"
    if address != address.strip():
        return "the address has spaces around it"
    if is_mailto(address):
        from alerting.channels.email import validate_mailto

        return validate_mailto(address)
    from alerting.channels.notify_channel import is_phone_number, is_sms, validate_sms

    if is_tel(address):
        number = address[4:]
        return None if is_phone_number(number) else (
            f"{number!r} is not a phone number (write tel:+447700900123 or tel:07700900123)")

    if is_sms(address):
        return validate_sms(address)
    from alerting.channels.apprise_channel import validate_url

    return validate_url(address)


def send(address: str, message: Message, smtp: SmtpSettings | None, *,
         internal: InternalTargets = NO_INTERNAL_TARGETS, notify: NotifySettings | None = None) -> Delivery:
    """Deliver `message` to one contact point. Delivery problems are returned, never raised.
    An Apprise URL whose host is inside the centre's own networks is not sent to unless
    `internal` allows it (`targets.refusal`); mail goes through `smtp`, or through GOV.UK Notify
    when `notify` has an e-mail template; `sms:` goes through `notify` (the centre's own setting:
    its base URL is never limited, like the SMTP server)."""
    from alerting.channels.notify_channel import is_sms, send_notify_email, send_notify_sms

    if is_tel(address):  # the escalation never sends here (`recipient_of`); refused should one arrive
        return Delivery(ok=False, channel="tel", retry=False,
                        detail="not sent: a tel: contact point is a number for the operator to phone")
    if is_mailto(address):
        if notify is not None and notify.email_template_id is not None:
            return send_notify_email(address, message, notify)
        from alerting.channels.email import send_email

        return send_email(address, message, smtp)
    if is_sms(address):
        return send_notify_sms(address, message, notify)
    from alerting.channels.apprise_channel import scheme, send_apprise
    from alerting.channels.targets import refusal

    refused = refusal(address, internal)
    if refused is not None:
        return Delivery(ok=False, channel=scheme(address) or "apprise", detail=f"not sent: {refused}")
    return send_apprise(address, message)
