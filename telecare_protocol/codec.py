"""JSON encoding and strict decoding of protocol messages.

`decode` (a hub's messages, at the centre) and `decode_ack` (the centre's acks, at a hub)
never raise anything but a `ProtocolError` subclass, whatever bytes they are given, and
each error names the field at fault.

Neither judges a message by its times: a timestamp must be RFC 3339 with a UTC offset, and an
instant that exists in UTC (years 1 to 9999 once its offset is applied), and that is all. A
hub's clock can be wrong by days (a Raspberry Pi has no real-time clock), and an alarm from it
must still be raised; the centre stamps each message with its own receive time and judges the
hub's clock itself (`detection/clock.py`, rule `hub_clock_wrong`).

`decode` parses a well-formed message once: the JSON goes straight to pydantic's validator (Rust),
all three message types at once (discriminated by `type`), with a second, tiny strict check of
`version`'s JSON type. Whatever that fast path does not accept, `decode` checks again step by step
(`json.loads`, then each field in order), so a refusal is exactly the one those steps give: the
fast path decides nothing but "valid", and a message it accepts is the one the steps would return.
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, TypeAdapter, ValidationError

from telecare_protocol.ack import ACK_VERSIONS, Ack
from telecare_protocol.errors import (
    ImpossibleValue,
    MalformedMessage,
    MissingField,
    ProtocolError,
    UnknownVersion,
)
from telecare_protocol.messages import MESSAGE_TYPES, SUPPORTED_VERSIONS, DeviceEvent, Heartbeat, Message, Reading

MAX_PAYLOAD_BYTES = 64 * 1024

CLOCK_TOLERANCE = timedelta(minutes=2)
"""How far a hub's clock may be from the centre's. Not a reason to refuse anything: the centre
raises `hub_clock_wrong` beyond it (docs/protocol.md, "Time"). NTP keeps a synchronised clock
within tens of milliseconds over the internet (RFC 5905; ntp.org), and a live message reaches the
centre within a second or two (ingest commits a batch in about 1 s under full load, the centre's
`bench/ingest.py`), so a hub time beyond 2 min of its receipt is an unsynchronised clock, never a
slow link. Tighter than the 5 min a receiver once allowed before refusing a message outright
(`future_timestamp`, as Kerberos's default clock skew, RFC 4120); and a clock within it changes no
detection rule's outcome, since every time-based rule counts in minutes or more."""

REQUIRED_ON_THE_WIRE = ("version", "type", "id", "hub_ts")
"""Fields a Python constructor defaults but a received message must carry: a receiver that
minted its own `id` would defeat end-to-end deduplication, and its own `hub_ts` would lie."""

ACK_REQUIRED_ON_THE_WIRE = ("version", "type", "id", "centre_ts")
"""An ack's fields that its constructor defaults but a hub insists on."""

_ANY_MESSAGE: TypeAdapter[Message] = TypeAdapter(
    Annotated[Reading | DeviceEvent | Heartbeat, Field(discriminator="type")])
"""Every message type in one validator, chosen by `type`: the fast path of `decode`."""


class _Version(BaseModel):
    """`version` as a JSON integer (the models' `Literal[1, 2]` would take `true` or `1.0` for 1)."""

    model_config = ConfigDict(extra="ignore")
    version: StrictInt

_IMPOSSIBLE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"}


def encode(message: Message | Ack) -> bytes:
    """The message as UTF-8 JSON, exactly as published."""
    return message.model_dump_json().encode()


def decode(payload: bytes | str, *, now: datetime | None = None) -> Message:
    """Parse and validate one message, or raise the `ProtocolError` that says why not.

    `now` is not used: it is accepted for callers written when `decode` refused a time more than
    5 minutes ahead of it (`future_timestamp`, until the centre judged hub clocks itself)."""
    fast = _decode_valid(payload)
    return fast if fast is not None else _decode_steps(payload)


def _decode_steps(payload: bytes | str) -> Message:
    """`decode` one check at a time, in the order the refusals rank: payload and JSON, version, type,
    required fields, schema, instants. Raises the first `ProtocolError` met."""
    data = _load_object(payload)
    version = data.get("version")
    if version is None:
        raise MissingField("version", "every message carries its schema version")
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        raise UnknownVersion("version", f"{version!r} is not a supported schema version {sorted(SUPPORTED_VERSIONS)}")
    kind = data.get("type")
    if kind is None:
        raise MissingField("type", "one of " + ", ".join(MESSAGE_TYPES))
    model = MESSAGE_TYPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise MalformedMessage("type", f"{kind!r} is not one of " + ", ".join(MESSAGE_TYPES))
    for name in REQUIRED_ON_THE_WIRE:
        if name not in data:
            raise MissingField(name, "required on the wire")
    try:  # strict: `true` is not an SpO2 of 1, nor "98" a number
        message: Message = model.model_validate_json(payload, strict=True)
    except ValidationError as exc:
        raise _from_validation_error(exc) from None
    _check_instants(message)
    return message


def _decode_valid(payload: bytes | str) -> Message | None:
    """The message when it is valid in every respect `decode` checks, else None (then `decode` finds
    out why, step by step). One JSON parse by pydantic for the message, one for `version`'s type."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        message = _ANY_MESSAGE.validate_json(payload, strict=True)
        _Version.model_validate_json(payload, strict=True)
    except ValidationError:
        return None
    if not message.model_fields_set.issuperset(REQUIRED_ON_THE_WIRE):
        return None  # defaulted by the constructor, not sent: `decode` names the missing field
    try:
        _check_instants(message)
    except MalformedMessage:
        return None
    return message


def decode_ack(payload: bytes | str) -> Ack:
    """Parse and validate one of the centre's acks, or raise the `ProtocolError` that says why not.

    Checks run in the order `decode` runs them: payload and JSON, version (an ack is version 2,
    `ACK_VERSIONS`), type (`ack`), required fields (`ACK_REQUIRED_ON_THE_WIRE`), schema. There is no
    clock check: `centre_ts` is the centre's clock, and a hub whose own clock is wrong must still
    hear that its alarm arrived.
    """
    data = _load_object(payload)
    version = data.get("version")
    if version is None:
        raise MissingField("version", "every ack carries its schema version")
    if type(version) is not int or version not in ACK_VERSIONS:
        raise UnknownVersion("version", f"{version!r} is not a schema version with acks {sorted(ACK_VERSIONS)}")
    kind = data.get("type")
    if kind is None:
        raise MissingField("type", "ack")
    if kind != "ack":
        raise MalformedMessage("type", f"{kind!r} is not ack")
    for name in ACK_REQUIRED_ON_THE_WIRE:
        if name not in data:
            raise MissingField(name, "required on the wire")
    try:
        return Ack.model_validate_json(payload, strict=True)
    except ValidationError as exc:
        raise _from_validation_error(exc) from None


def _load_object(payload: bytes | str) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MalformedMessage("$", f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise MalformedMessage("$", f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedMessage("$", f"a message is a JSON object, not {type(data).__name__}")
    return data


def _from_validation_error(exc: ValidationError) -> ProtocolError:
    errors = exc.errors(include_url=False)
    missing = [e for e in errors if e["type"] == "missing"]
    error = (missing or errors)[0]
    field = ".".join(str(part) for part in error["loc"]) or "$"
    if error["type"] == "missing":
        return MissingField(field, "required")
    if error["type"] == "impossible_value":
        ctx = error.get("ctx") or {}
        return ImpossibleValue(str(ctx.get("field", field)), str(ctx.get("detail", error["msg"])))
    if error["type"] in _IMPOSSIBLE_ERRORS:
        return ImpossibleValue(field, error["msg"])
    return MalformedMessage(field, error["msg"])


def _check_instants(message: Message) -> None:
    """Every time must be an instant in UTC: `9999-12-31T23:00:00-12:30` is year 10000 there, which
    no receiver can store or compare. Not a judgement of the hub's clock, however wrong."""
    stamps: list[tuple[str, datetime | None]] = [("source_ts", message.source_ts), ("hub_ts", message.hub_ts)]
    if message.type == "heartbeat":
        stamps += [(f"devices.{i}.last_seen", d.last_seen) for i, d in enumerate(message.devices)]
    for field, stamp in stamps:
        if stamp is None or 1 < stamp.year < 9999:  # an offset (under a day) cannot take it out of range
            continue
        try:
            stamp.astimezone(UTC)
        except OverflowError:
            raise MalformedMessage(field, f"{stamp.isoformat()} is not a time in UTC (years 1 to 9999)") from None
