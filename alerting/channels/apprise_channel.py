"""The Apprise channel: every contact point that is a URL (`json://…`, `ntfys://…`, …).

Apprise 2.x returns a structured result from `notify()` whose per-service log holds the
reason for a failure, so the detail comes from there rather than from a global log capture.
"""

import logging
import threading
from urllib.parse import urlsplit

import apprise

from alerting.channels import Delivery, Message

TIMEOUT_S = 30.0
"""Upper bound for one Apprise delivery, retries included. Each HTTP request has Apprise's
own connect and read timeouts (4 s each by default; `?cto=…&rto=…` in the URL changes them)."""

EMAIL_SCHEMES = frozenset({"mailto", "mailtos"})
"""Apprise's own e-mail plugin is not used: e-mail goes through `mailto:` and the centre's SMTP server."""

_ASSET = apprise.AppriseAsset(service_timeout=TIMEOUT_S, secure_logging=True)
_SERVICES = apprise.NotificationManager()  # type: ignore[no-untyped-call]  # unannotated in apprise
"""Apprise's plugin registry (a singleton), to tell an unknown scheme from a bad URL."""


def scheme(address: str) -> str:
    """The URL scheme of `address`, lower case; "" when it is not a URL."""
    name, sep, _ = address.partition("://")
    return name.lower() if sep and name.isascii() and name.isalnum() else ""


def notify_type(priority: int) -> apprise.NotifyType:
    """Apprise's notification type for a priority: failure for 1–2, warning for 3–4, info otherwise."""
    if priority in (1, 2):
        return apprise.NotifyType.FAILURE
    if priority in (3, 4):
        return apprise.NotifyType.WARNING
    return apprise.NotifyType.INFO


class _ThisThreadsLog(logging.Handler):
    """Keeps Apprise's warnings and errors logged by the current thread only."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(record.getMessage())


def _load(address: str) -> apprise.NotifyBase | str:
    """The Apprise service for `address`, or what is wrong with the address."""
    name = scheme(address)
    if not name:
        return "not a notification URL (expected e.g. json://host/path or mailto:someone@example.org)"
    if name in EMAIL_SCHEMES:
        return "write e-mail addresses as mailto:someone@example.org; the mail server is set by the centre"
    if name in ("http", "https"):
        return f"{name}:// is not a notification service; write a webhook as json://host/path (jsons:// for HTTPS)"
    if name not in _SERVICES:
        return f"unknown notification service {name}://"
    log = _ThisThreadsLog()
    apprise_logger = logging.getLogger(apprise.LOGGER_NAME)
    apprise_logger.addHandler(log)
    try:
        service = apprise.Apprise.instantiate(address, asset=_ASSET)
    finally:
        apprise_logger.removeHandler(log)
    if service is None:
        reasons = "; ".join(dict.fromkeys(log.lines))  # in order, without repeats
        return _scrub(f"not a usable {name}:// URL" + (f": {reasons}" if reasons else ""), address)
    return service


def server_host(address: str) -> str | None:
    """The host an Apprise URL's messages connect to, as Apprise itself parsed it (brackets
    of an IPv6 address removed), when the URL names one: a service that can be self-hosted
    (it has a plain `protocol` beside its TLS one: json://, ntfy://, gotify://, mqtt://, …)
    with a host in its URL. None for a service with only a public endpoint (tgram://,
    discord://, …: what stands where a host would be is a token), for a URL without a host
    (ntfys://topic, on the public ntfy.sh), and for an address Apprise cannot use."""
    loaded = _load(address)
    if isinstance(loaded, str) or not getattr(type(loaded), "protocol", None):
        return None
    host = str(getattr(loaded, "host", "") or "").strip("[]")
    return host or None


def validate_url(address: str) -> str | None:
    """None when Apprise can send to `address`, otherwise the problem."""
    loaded = _load(address)
    return loaded if isinstance(loaded, str) else None


def send_apprise(address: str, message: Message) -> Delivery:
    """Send `message` to an Apprise URL. Delivery problems are returned, not raised."""
    channel = scheme(address) or "apprise"
    loaded = _load(address)
    if isinstance(loaded, str):
        return Delivery(ok=False, channel=channel, detail=loaded)
    sender = apprise.Apprise(asset=_ASSET)
    sender.add(loaded)
    result = sender.notify(
        body=message.body_with_links(),
        title=message.subject,
        notify_type=notify_type(message.priority),
        body_format=apprise.NotifyFormat.TEXT,
        timeout=TIMEOUT_S,
    )
    service = loaded.service_name or channel
    if result:
        return Delivery(ok=True, channel=channel, detail=f"accepted by {service}")
    reasons = "; ".join(dict.fromkeys(entry.message for entry in result.logs()))
    if result.status == apprise.AppriseResultStatus.TIMEOUT:
        detail = f"{service}: no answer within {TIMEOUT_S:g} s"
    else:
        detail = f"{service}: {reasons or 'not delivered (' + result.status.name.lower() + ')'}"
    return Delivery(ok=False, channel=channel, detail=_scrub(detail, address))


def _scrub(detail: str, address: str) -> str:
    """`detail` with any password from the URL masked (Apprise masks its own logs, this is a second guard)."""
    try:
        password = urlsplit(address).password
    except ValueError:
        return detail
    return detail.replace(password, "****") if password else detail
