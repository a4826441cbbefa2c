"""The centre's end-to-end `Ack` (schema version 2) and `decode_ack`, on real byte strings; and
that a version 1 hub's messages still decode."""

import contextlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telecare_protocol import (
    SCHEMA_VERSION,
    Ack,
    MalformedMessage,
    MissingField,
    ProtocolError,
    Reading,
    Refusal,
    UnknownVersion,
    decode,
    decode_ack,
    encode,
)
from telecare_protocol.ack import MAX_ACK_ENTRIES
from telecare_protocol.codec import MAX_PAYLOAD_BYTES
from telecare_protocol.topics import ACK_ACL_PATTERN, ACKS_ROOT, CENTRE_ACL, ROOT, ack_topic, parse_topic

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
STORED_1 = "0b7e3c9a-5f1d-4e2a-9c3b-7d8e6f5a4b21"
STORED_2 = "6f1c2a4e-8b3d-4f7a-9e21-5c0d7b3a1f42"
REFUSED = "3e2d1c0b-9a8f-4e7d-8c6b-5a4f3e2d1c0b"

ACK = (b'{"version":2,"id":"9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d","hub_id":"hub-0042",'
       b'"centre_ts":"2025-03-01T07:30:01.040000Z","type":"ack",'
       b'"stored":["0b7e3c9a-5f1d-4e2a-9c3b-7d8e6f5a4b21","6f1c2a4e-8b3d-4f7a-9e21-5c0d7b3a1f42"],'
       b'"refused":[{"id":"3e2d1c0b-9a8f-4e7d-8c6b-5a4f3e2d1c0b","reason":"unknown_device"}]}')
"""An ack exactly as the centre publishes it."""

V1_READING = (b'{"version":1,"id":"6f1c2a4e-8b3d-4f7a-9e21-5c0d7b3a1f42","hub_id":"hub-0042",'
              b'"device_id":"oximeter-1","source_ts":"2025-03-01T07:30:00Z","hub_ts":"2025-03-01T07:30:01Z",'
              b'"type":"reading","metric":"spo2","value":94.0,"unit":"%","quality":["low_perfusion"]}')
"""What a hub that predates acks sends."""


def tampered(**changes: Any) -> bytes:
    data = json.loads(ACK)
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data).encode()


def refused_with(raw: bytes | str, error: type[ProtocolError], field: str) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        decode_ack(raw)
    assert type(caught.value) is error, f"{type(caught.value).__name__}: {caught.value}"
    assert caught.value.field == field, str(caught.value)
    assert caught.value.detail
    return caught.value


def test_a_published_ack_decodes() -> None:
    ack = decode_ack(ACK)
    assert ack.type == "ack" and ack.version == 2 and ack.hub_id == "hub-0042"
    assert [str(i) for i in ack.stored] == [STORED_1, STORED_2]
    assert ack.refused == (Refusal(id=uuid.UUID(REFUSED), reason="unknown_device"),)
    assert ack.centre_ts == datetime(2025, 3, 1, 7, 30, 1, 40000, tzinfo=UTC)


def test_an_ack_round_trips_byte_for_byte() -> None:
    assert encode(decode_ack(ACK)) == ACK
    assert decode_ack(ACK.decode()) == decode_ack(ACK)


def test_hubs_write_version_2_and_a_version_1_hub_still_decodes() -> None:
    assert SCHEMA_VERSION == 2
    assert json.loads(encode(Reading(hub_id="hub-1", device_id="oximeter-1", source_ts=NOW, metric="spo2",
                                     value=97.0, unit="%")))["version"] == 2
    old = decode(V1_READING, now=NOW)
    assert old.version == 1 and old.type == "reading" and old.value == 94.0
    assert encode(old) == V1_READING


def test_an_ack_is_not_a_hub_message_and_a_hub_message_is_not_an_ack() -> None:
    with pytest.raises(MalformedMessage) as caught:
        decode(ACK, now=NOW)
    assert caught.value.field == "type"
    refused_with(V1_READING.replace(b'"version":1', b'"version":2'), MalformedMessage, "type")


@pytest.mark.parametrize("version", [1, 3, 0, "2", True, 2.0, None, ...])
def test_an_ack_needs_version_2(version: Any) -> None:
    error = MissingField if version in (None, ...) else UnknownVersion
    refused_with(tampered(version=version), error, "version")


@pytest.mark.parametrize("field", ["type", "id", "centre_ts", "hub_id"])
def test_each_envelope_field_of_an_ack_is_required(field: str) -> None:
    refused_with(tampered(**{field: ...}), MissingField, field)


@pytest.mark.parametrize(("changes", "field"), [
    ({"stored": ["not-a-uuid"]}, "stored.0"),
    ({"stored": [1]}, "stored.0"),
    ({"refused": [{"id": REFUSED, "reason": "Unknown Device"}]}, "refused.0.reason"),
    ({"refused": [{"id": REFUSED, "reason": "x", "extra": 1}]}, "refused.0.extra"),
    ({"hub_id": "hub/1"}, "hub_id"),
    ({"hub_id": "hub-#"}, "hub_id"),
    ({"centre_ts": "2025-03-01T07:30:01"}, "centre_ts"),
    ({"type": "reading"}, "type"),
    ({"extra": True}, "extra"),
    ({"stored": [], "refused": []}, "$"),
    ({"stored": [str(uuid.uuid4()) for _ in range(MAX_ACK_ENTRIES + 1)], "refused": []}, "stored"),
    ({"stored": [str(uuid.uuid4()) for _ in range(MAX_ACK_ENTRIES)]}, "$"),
])
def test_a_malformed_ack_names_its_field(changes: dict[str, Any], field: str) -> None:
    refused_with(tampered(**changes), MalformedMessage, field)


def test_a_refusal_without_its_id_or_reason_is_missing_a_field() -> None:
    refused_with(tampered(refused=[{"reason": "malformed"}]), MissingField, "refused.0.id")
    refused_with(tampered(refused=[{"id": REFUSED}]), MissingField, "refused.0.reason")


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1]", b"\xff\xfe", b"{", b"null"])
def test_bytes_that_are_not_an_ack_object_are_malformed(raw: bytes) -> None:
    refused_with(raw, MalformedMessage, "$")


def test_an_ack_from_the_far_future_is_still_heard() -> None:
    """No clock check: a hub whose clock is wrong must still learn that its alarm arrived."""
    ack = decode_ack(tampered(centre_ts="2099-01-01T00:00:00Z"))
    assert ack.centre_ts.year == 2099


def test_the_largest_possible_ack_fits_in_one_payload() -> None:
    worst = Ack(hub_id="h" * 63, refused=tuple(Refusal(id=uuid.uuid4(), reason="r" * 40)
                                               for _ in range(MAX_ACK_ENTRIES)))
    raw = encode(worst)
    assert len(raw) < MAX_PAYLOAD_BYTES
    assert decode_ack(raw) == worst
    all_stored = Ack(hub_id="h" * 63, stored=tuple(uuid.uuid4() for _ in range(MAX_ACK_ENTRIES)))
    assert len(encode(all_stored)) < len(raw)


def test_an_oversized_payload_is_malformed_before_it_is_parsed() -> None:
    refused_with(b'{"version": 2, "pad": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}', MalformedMessage, "$")


def test_the_ack_topic_is_the_hubs_own_and_outside_what_hubs_may_write() -> None:
    assert ack_topic("hub-0042") == "telecare/v1/acks/hub-0042"
    assert ack_topic("hub-0042").startswith(ACKS_ROOT + "/")
    assert not ack_topic("hub-0042").startswith(ROOT + "/")
    assert parse_topic(ack_topic("hub-0042")) is None
    assert ACK_ACL_PATTERN == "pattern read telecare/v1/acks/%u"
    assert "topic write telecare/v1/acks/#" in CENTRE_ACL


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode()))
def test_random_bytes_never_raise_anything_but_protocol_error(raw: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_ack(raw)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["version", "id", "hub_id", "centre_ts", "type", "stored", "refused", "x"]),
                       st.none() | st.booleans() | st.integers() | st.text(max_size=40)
                       | st.lists(st.text(max_size=40), max_size=3)))
def test_random_ack_shaped_objects_never_raise_anything_but_protocol_error(data: dict[str, Any]) -> None:
    with contextlib.suppress(ProtocolError):
        decode_ack(json.dumps({"version": 2, "type": "ack"} | data))
