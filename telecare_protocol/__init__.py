"""The wire contract between a hub agent and the monitoring centre.

Pure code, no I/O: message types (`messages`, and the centre's `ack`), their vocabulary (`codes`), the
JSON codec with typed rejections (`codec`, `errors`) and the MQTT topic layout
(`topics`). See docs/protocol.md for the JSON Schema of every message.
"""

from telecare_protocol.ack import Ack, Refusal
from telecare_protocol.codec import decode, decode_ack, encode
from telecare_protocol.codes import DeviceType, EventCode, Metric, Power, Priority, QualityFlag
from telecare_protocol.errors import (
    ImpossibleValue,
    MalformedMessage,
    MissingField,
    ProtocolError,
    UnknownVersion,
)
from telecare_protocol.messages import (
    SCHEMA_VERSION,
    DeviceEvent,
    DeviceStatus,
    Heartbeat,
    Message,
    Reading,
)

__all__ = [
    "SCHEMA_VERSION",
    "Ack",
    "DeviceEvent",
    "DeviceStatus",
    "DeviceType",
    "EventCode",
    "Heartbeat",
    "ImpossibleValue",
    "MalformedMessage",
    "Message",
    "Metric",
    "MissingField",
    "Power",
    "Priority",
    "ProtocolError",
    "QualityFlag",
    "Reading",
    "Refusal",
    "UnknownVersion",
    "decode",
    "decode_ack",
    "encode",
]
