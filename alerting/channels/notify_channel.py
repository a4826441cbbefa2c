"""The GOV.UK Notify channel: text messages to `sms:` contact points, and e-mail to `mailto:`
contact points when the centre has a Notify e-mail template.

Sent with GOV.UK Notify's own client (`notifications-python-client`): it signs each request
with a JWT (HS256, `iss` the service id, `iat` now, under the API key's secret) and posts JSON
to `{base_url}/v2/notifications/sms` or `/email`: the recipient (`phone_number` or
`email_address`), `template_id`, `personalisation` (`body`, and `subject` for e-mail) and our
`reference` (the notification's reference: a retry carries the same one, so Notify's records
show the repeat). Notify answers 201 with the notification's id.

How Notify's answers become our delivery status (Notify API docs, "Error codes"):

- 201: accepted → sent.
- 400 (`BadRequestError`, `ValidationError`: a bad number or address, a recipient a trial-mode
  service or a team key may not send to, a bad template) → failed at once (`retry=False`).
- 403 (`AuthError`: a bad or revoked key, or our clock more than 30 s off) → failed at once.
- 429 (`RateLimitError`, `TooManyRequestsError`: too many requests, or the daily limit) → retried
  (`notify.RETRY_AFTER_S`).
- 500, 503, any other status, no answer, a timeout (Notify or the network down) → retried.

The API key is never written into a detail (the client never puts it in an error message;
`_scrub` masks it anyway).
"""

import re
import uuid
from typing import Any
from urllib.parse import unquote

from notifications_python_client.errors import APIError
from notifications_python_client.notifications import NotificationsAPIClient

from alerting.channels import Delivery, Message, NotifySettings

SMS_CHANNEL = "notify-sms"
EMAIL_CHANNEL = "notify-email"
SMS_SCHEME = "sms:"
PERMANENT = frozenset({400, 403})
"""Notify's answers that no retry can change (see the module docstring)."""
_PHONE = re.compile(r"^(\+[1-9][0-9]{7,14}|0[0-9]{9,10})$")
"""An international number (E.164: "+", country code, up to 15 digits) or a UK national one (07…)."""


def is_sms(address: str) -> bool:
    """True for addresses this channel texts (scheme `sms`, any case)."""
    return address[:4].lower() == SMS_SCHEME


def phone_number(address: str) -> str:
    """The number an `sms:` contact point names, e.g. "+447700900123". ValueError says what is wrong."""
    number = unquote(address[len(SMS_SCHEME):])
    if "?" in number or "," in number:
        raise ValueError("give one phone number per sms: contact point, without ?body=")
    if not _PHONE.match(number):
        raise ValueError(f"{number!r} is not a phone number (write sms:+447700900123 or sms:07700900123)")
    return number


def is_phone_number(number: str) -> bool:
    """Whether `number` is written as a phone number this centre accepts ("+447700900123", "07700900123")."""
    return bool(_PHONE.match(number))


def validate_sms(address: str) -> str | None:
    """None when `address` is a usable `sms:` contact point, otherwise the problem."""
    try:
        phone_number(address)
    except ValueError as e:
        return str(e)
    return None


def check_uuid(value: str) -> str:
    """`value` if it is a UUID as Notify writes its ids, else ValueError."""
    try:
        uuid.UUID(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a Notify id (a UUID such as 8ab1c1e4-…)") from None
    return value


def check_api_key(key: str) -> None:
    """ValueError unless `key` ends with a service id and a secret, each a UUID (as the client
    reads them: the last 73 characters). The message never quotes the key."""
    if len(key) < 74 or key[-37] != "-":
        raise ValueError("a GOV.UK Notify API key ends with the service id and the secret key (two UUIDs)")
    for part in (key[-73:-37], key[-36:]):
        try:
            uuid.UUID(part)
        except ValueError:
            raise ValueError("a GOV.UK Notify API key ends with the service id and the secret key "
                             "(two UUIDs); this one does not") from None


def personalisation(message: Message, *, sms: bool) -> dict[str, str]:
    """What fills the template: {"body": the SMS text} for a text message; {"subject", "body"}
    (the body with its links) for e-mail."""
    if sms:
        return {"body": message.text_message()}
    return {"subject": " ".join(message.subject.split()), "body": message.body_with_links()}


def send_notify_sms(address: str, message: Message, notify: NotifySettings | None) -> Delivery:
    """Text `message` to the `sms:` contact point through Notify. Problems are returned, not raised."""
    try:
        number = phone_number(address)
    except ValueError as e:
        return Delivery(ok=False, channel=SMS_CHANNEL, detail=str(e), retry=False)
    if notify is None or notify.sms_template_id is None:
        return Delivery(ok=False, channel=SMS_CHANNEL, retry=False,
                        detail="no GOV.UK Notify SMS template configured (TELECARE_NOTIFY__SMS_TEMPLATE_ID)")
    template_id = notify.sms_template_id
    sender_id = notify.sms_sender_id
    return _send(SMS_CHANNEL, notify, lambda client: client.send_sms_notification(
        phone_number=number, template_id=template_id, personalisation=personalisation(message, sms=True),
        reference=message.reference, sms_sender_id=sender_id))


def send_notify_email(address: str, message: Message, notify: NotifySettings) -> Delivery:
    """E-mail `message` to the `mailto:` contact point through Notify. Problems are returned, not raised."""
    from alerting.channels.email import mailbox

    try:
        recipient = mailbox(address)
    except ValueError as e:
        return Delivery(ok=False, channel=EMAIL_CHANNEL, detail=str(e), retry=False)
    template_id = notify.email_template_id
    return _send(EMAIL_CHANNEL, notify, lambda client: client.send_email_notification(
        email_address=recipient, template_id=template_id, personalisation=personalisation(message, sms=False),
        reference=message.reference))


def _send(channel: str, notify: NotifySettings, post: Any) -> Delivery:
    """One request through a client of its own (the client is not thread-safe; sends run in parallel)."""
    key = notify.api_key.get_secret_value()
    client = NotificationsAPIClient(key, base_url=notify.base_url, timeout=notify.timeout_s)  # type: ignore[no-untyped-call]
    try:
        answer = post(client)
    except APIError as e:
        return _failed(channel, e, key)
    except Exception as e:  # a bug or an odd answer must not stop the other sends
        return Delivery(ok=False, channel=channel, detail=_scrub(f"GOV.UK Notify: {type(e).__name__}: {e}", key))
    finally:
        client.request_session.close()
    notification_id = answer.get("id") if isinstance(answer, dict) else None
    return Delivery(ok=True, channel=channel, detail=f"accepted by GOV.UK Notify (id {notification_id})")


def _failed(channel: str, error: APIError, key: str) -> Delivery:
    """Notify's refusal, or the network's failure, as a delivery: permanent for 400 and 403."""
    status = error.status_code
    if error.response is None:  # the client reports a failed connection or a timeout as a 503 with no answer
        cause = error.__cause__
        what = f"no answer ({type(cause).__name__ if cause else 'connection failed'})"
        return Delivery(ok=False, channel=channel, detail=_scrub(f"GOV.UK Notify: {what}", key))
    detail = f"GOV.UK Notify answered {status}: {_explain(error.message)}"
    return Delivery(ok=False, channel=channel, detail=_scrub(detail, key), retry=status not in PERMANENT)


def _explain(message: object) -> str:
    """Notify's errors ([{"error": "BadRequestError", "message": "…"}]) as one line."""
    if isinstance(message, list):
        parts = [f"{item.get('error', 'Error')}: {item.get('message', '')}" if isinstance(item, dict) else str(item)
                 for item in message]
        return "; ".join(parts) or "no reason given"
    return str(message)


def _scrub(detail: str, key: str) -> str:
    """`detail` with the API key and its secret masked, in case an answer echoes them."""
    for secret in (key, key[-36:]):
        if secret:
            detail = detail.replace(secret, "****")
    return detail
