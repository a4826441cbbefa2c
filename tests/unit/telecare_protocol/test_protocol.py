"""The wire contract: round trips, every typed rejection, fuzzing, topics and the generated doc."""

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telecare_protocol import (
    DeviceEvent,
    DeviceStatus,
    DeviceType,
    EventCode,
    Heartbeat,
    ImpossibleValue,
    MalformedMessage,
    Metric,
    MissingField,
    Power,
    ProtocolError,
    QualityFlag,
    Reading,
    UnknownVersion,
    decode,
    encode,
)
from telecare_protocol.codes import DEFAULT_PRIORITY, METRICS, SCAIP_STATUS, Priority
from telecare_protocol.schema import examples, json_schemas, render_protocol_doc
from telecare_protocol.topics import KINDS, STATUS, Topic, parse_topic, status_topic, topic_for
from tests.support.examples import property_examples

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
DOC = Path(__file__).resolve().parents[3] / "docs" / "protocol.md"


def reading(**changes: Any) -> Reading:
    fields: dict[str, Any] = dict(hub_id="hub-1", device_id="oximeter-1", source_ts=NOW - timedelta(seconds=5),
                                  hub_ts=NOW - timedelta(seconds=4), metric=Metric.SPO2, value=96.0, unit="%")
    return Reading(**(fields | changes))


def event(**changes: Any) -> DeviceEvent:
    fields: dict[str, Any] = dict(hub_id="hub-1", device_id="pendant-1", source_ts=NOW - timedelta(seconds=2),
                                  hub_ts=NOW - timedelta(seconds=1), device_type=DeviceType.PERSONAL_TRIGGER,
                                  code=EventCode.MANUAL_ALARM, priority=1)
    return DeviceEvent(**(fields | changes))


def heartbeat(**changes: Any) -> Heartbeat:
    fields: dict[str, Any] = dict(
        hub_id="hub-1", device_id="hub-1", source_ts=NOW, hub_ts=NOW, power=Power.BATTERY, uptime_s=3600.5,
        interval_s=300, outbox_depth=7,
        devices=(DeviceStatus(device_id="oximeter-1", last_seen=NOW - timedelta(minutes=1), battery_pct=64),
                 DeviceStatus(device_id="door-1", last_seen=None)),
    )
    return Heartbeat(**(fields | changes))


def wire(message: Reading | DeviceEvent | Heartbeat) -> dict[str, Any]:
    """The message as the JSON object a receiver would get, ready to be tampered with."""
    data: dict[str, Any] = json.loads(encode(message))
    return data


def payload(data: Any) -> bytes:
    return json.dumps(data).encode()


def rejected(data: Any, error: type[ProtocolError], field: str) -> ProtocolError:
    """Decode `data` (a JSON-able object or raw bytes) and check it is refused with `error` on `field`."""
    raw = data if isinstance(data, bytes | str) else payload(data)
    with pytest.raises(ProtocolError) as caught:
        decode(raw, now=NOW)
    assert type(caught.value) is error, f"{type(caught.value).__name__}: {caught.value}"
    assert caught.value.field == field, str(caught.value)
    assert caught.value.detail
    return caught.value


# Round trips ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("message", [
    reading(),
    reading(value=None, quality=(QualityFlag.SENSOR_OFF,)),
    reading(metric=Metric.PULSE_RATE, value=72, unit="/min", quality=(QualityFlag.LOW_PERFUSION,
                                                                       QualityFlag.QUESTIONABLE)),
    reading(source_ts=datetime(2025, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))),
    event(),
    event(code=EventCode.FALL_DETECTED, device_type=DeviceType.FALL_DETECTOR,
          detail={"impact_g": 3.25, "cancel_window_s": 30, "cancelled": False, "note": "pendant"}),
    heartbeat(),
    heartbeat(devices=()),
    *examples().values(),
], ids=lambda m: m.type)
def test_every_message_type_round_trips(message: Reading | DeviceEvent | Heartbeat) -> None:
    decoded = decode(encode(message), now=NOW)
    assert decoded == message
    assert type(decoded) is type(message)
    assert decode(encode(message).decode(), now=NOW) == message  # str payloads too


def test_round_trip_keeps_the_details_that_matter() -> None:
    null = decode(encode(reading(value=None, quality=(QualityFlag.SENSOR_OFF,))), now=NOW)
    assert isinstance(null, Reading)
    assert null.value is None and null.quality == (QualityFlag.SENSOR_OFF,)
    alarm = decode(encode(event(detail={"n": 2, "x": 0.5, "ok": True, "s": "a"})), now=NOW)
    assert isinstance(alarm, DeviceEvent)
    assert alarm.detail == {"n": 2, "x": 0.5, "ok": True, "s": "a"}
    assert [type(v) for v in alarm.detail.values()] == [int, float, bool, str]
    beat = decode(encode(heartbeat()), now=NOW)
    assert isinstance(beat, Heartbeat)
    assert [d.device_id for d in beat.devices] == ["oximeter-1", "door-1"]
    assert beat.devices[0].battery_pct == 64 and beat.devices[1].last_seen is None


def test_the_id_minted_at_the_source_survives_decoding() -> None:
    message = reading()
    assert decode(encode(message), now=NOW).id == message.id
    assert reading().id != message.id


def test_event_new_uses_the_default_priority() -> None:
    for code in EventCode:
        made = DeviceEvent.new(hub_id="hub-1", device_id="d-1", device_type=DeviceType.DOOR_SENSOR, code=code,
                               source_ts=NOW)
        assert made.priority == DEFAULT_PRIORITY[code]
        assert decode(encode(made)) == made  # hub_ts defaults to the real clock


# Unknown version --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [3, 0, -1, "1", True, 1.0, [1], {"v": 1}, 10**30])
def test_unknown_version_is_rejected(version: Any) -> None:
    error = rejected(wire(reading()) | {"version": version}, UnknownVersion, "version")
    assert error.reason == "unknown_version"


@pytest.mark.parametrize("make", [reading, event, heartbeat])
def test_json_true_is_not_version_one(make: Any) -> None:
    """`True == 1` in Python, so a lazy check would take `"version": true` for version 1."""
    raw = payload(wire(make()) | {"version": 1}).replace(b'"version": 1', b'"version": true')
    assert b'"version": true' in raw
    error = rejected(raw, UnknownVersion, "version")
    assert "True" in error.detail


# Missing fields ---------------------------------------------------------------------------------------------------

ENVELOPE = ["version", "id", "hub_id", "device_id", "source_ts", "hub_ts", "type"]


@pytest.mark.parametrize("field", ENVELOPE)
@pytest.mark.parametrize("make", [reading, event, heartbeat], ids=["reading", "event", "heartbeat"])
def test_each_envelope_field_is_required(make: Any, field: str) -> None:
    data = wire(make())
    del data[field]
    error = rejected(data, MissingField, field)
    assert error.reason == "missing_field"


@pytest.mark.parametrize(("make", "field"), [
    (reading, "metric"), (reading, "value"), (reading, "unit"),
    (event, "device_type"), (event, "code"), (event, "priority"),
    (heartbeat, "power"), (heartbeat, "uptime_s"), (heartbeat, "interval_s"),
])
def test_each_body_field_is_required(make: Any, field: str) -> None:
    data = wire(make())
    del data[field]
    rejected(data, MissingField, field)


def test_null_version_counts_as_missing() -> None:
    rejected(wire(reading()) | {"version": None}, MissingField, "version")


def test_missing_nested_field_names_its_path() -> None:
    data = wire(heartbeat())
    del data["devices"][1]["last_seen"]
    rejected(data, MissingField, "devices.1.last_seen")


def test_a_missing_field_wins_over_other_faults() -> None:
    data = wire(reading()) | {"value": 150}
    del data["device_id"]
    rejected(data, MissingField, "device_id")


# Impossible values ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("metric", "value", "unit"), [
    (Metric.SPO2, -1, "%"),
    (Metric.SPO2, 100.5, "%"),
    (Metric.PULSE_RATE, 301, "/min"),
    (Metric.PULSE_RATE, -5, "/min"),
    (Metric.PERFUSION_INDEX, 100.01, "%"),
])
def test_values_outside_the_physical_range_are_impossible(metric: Metric, value: float, unit: str) -> None:
    data = wire(reading()) | {"metric": str(metric), "value": value, "unit": unit}
    error = rejected(data, ImpossibleValue, "value")
    assert error.reason == "impossible_value"


@pytest.mark.parametrize(("metric", "value", "unit"), [
    (Metric.SPO2, 0, "%"), (Metric.SPO2, 100, "%"), (Metric.PULSE_RATE, 300, "/min"), (Metric.PULSE_RATE, 0, "/min"),
])
def test_range_limits_themselves_are_possible(metric: Metric, value: float, unit: str) -> None:
    decoded = decode(payload(wire(reading()) | {"metric": str(metric), "value": value, "unit": unit}), now=NOW)
    assert isinstance(decoded, Reading) and decoded.value == value


@pytest.mark.parametrize(("metric", "unit"), [(Metric.SPO2, "/min"), (Metric.PULSE_RATE, "%"),
                                              (Metric.PULSE_RATE, "bpm"), (Metric.SPO2, "")])
def test_unit_mismatch_is_impossible(metric: Metric, unit: str) -> None:
    rejected(wire(reading()) | {"metric": str(metric), "value": 50, "unit": unit}, ImpossibleValue, "unit")


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize(("make", "field"), [(reading, "value"), (heartbeat, "uptime_s")])
def test_nan_and_infinity_are_impossible(make: Any, field: str, token: str) -> None:
    raw = json.dumps(wire(make()) | {field: 12345}).replace("12345", token)
    assert token in raw
    rejected(raw.encode(), ImpossibleValue, field)


@pytest.mark.parametrize("quality", [[], ["questionable"], ["low_perfusion", "early_estimate"]])
def test_null_value_without_a_reason_flag_is_impossible(quality: list[str]) -> None:
    rejected(wire(reading()) | {"value": None, "quality": quality}, ImpossibleValue, "value")


@pytest.mark.parametrize("flag", ["sensor_off", "invalid", "data_unavailable"])
def test_null_value_with_a_reason_flag_is_accepted(flag: str) -> None:
    decoded = decode(payload(wire(reading()) | {"value": None, "quality": ["questionable", flag]}), now=NOW)
    assert isinstance(decoded, Reading) and decoded.value is None


@pytest.mark.parametrize("priority", [10, -1, 99])
def test_priority_outside_scaip_range_is_impossible(priority: int) -> None:
    rejected(wire(event()) | {"priority": priority}, ImpossibleValue, "priority")


def test_battery_over_100_in_a_heartbeat_device_is_impossible() -> None:
    data = wire(heartbeat())
    data["devices"][0]["battery_pct"] = 101
    rejected(data, ImpossibleValue, "devices.0.battery_pct")


@pytest.mark.parametrize(("field", "value"), [("uptime_s", -1), ("interval_s", 0), ("interval_s", 86401),
                                              ("outbox_depth", -1)])
def test_heartbeat_numbers_outside_their_range_are_impossible(field: str, value: int) -> None:
    rejected(wire(heartbeat()) | {field: value}, ImpossibleValue, field)


# Timestamps: never a reason to refuse ------------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "field"), [(reading, "source_ts"), (reading, "hub_ts"), (event, "source_ts"),
                                             (event, "hub_ts"), (heartbeat, "source_ts"), (heartbeat, "hub_ts")])
@pytest.mark.parametrize("offset", [timedelta(minutes=6), timedelta(hours=1), timedelta(days=400),
                                    -timedelta(days=14), -timedelta(days=365 * 50)])
def test_no_message_is_refused_for_its_times_however_far_ahead_or_behind(make: Any, field: str,
                                                                         offset: timedelta) -> None:
    """A Raspberry Pi has no real-time clock: its alarms must be accepted whatever time it thinks it is."""
    message = make(**{field: NOW + offset})
    assert decode(encode(message), now=NOW) == message
    assert decode(encode(message)) == message  # the real clock is not consulted either


def test_a_heartbeat_device_last_seen_in_the_future_is_accepted() -> None:
    ahead = DeviceStatus(device_id="door-1", last_seen=NOW + timedelta(hours=6), battery_pct=50)
    beat = heartbeat(devices=(heartbeat().devices[0], ahead))
    assert decode(encode(beat), now=NOW) == beat


def test_old_timestamps_are_accepted() -> None:
    replayed = reading(source_ts=NOW - timedelta(days=3), hub_ts=NOW - timedelta(days=3))
    assert decode(encode(replayed), now=NOW) == replayed


def test_naive_timestamps_are_malformed() -> None:
    rejected(wire(reading()) | {"source_ts": "2025-03-01T11:59:00"}, MalformedMessage, "source_ts")


@pytest.mark.parametrize(("field", "stamp"), [("hub_ts", "9999-12-31T23:00:00-12:30"),
                                              ("source_ts", "0001-01-01T00:30:00+14:00")])
def test_a_time_that_is_no_instant_in_utc_is_malformed(field: str, stamp: str) -> None:
    """The one thing a time can be refused for: no receiver can store or compare year 10000 (or 0) in UTC."""
    rejected(wire(reading()) | {field: stamp}, MalformedMessage, field)
    late = wire(heartbeat())
    late["devices"][0]["last_seen"] = stamp
    rejected(late, MalformedMessage, "devices.0.last_seen")


# Malformed --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"", b"not json", b"{", b"\xff\xfe\xfa", b"{\"version\": 1,}", "\x00"])
def test_not_json_is_malformed(raw: bytes | str) -> None:
    error = rejected(raw, MalformedMessage, "$")
    assert error.reason == "malformed"


@pytest.mark.parametrize("document", [[], [1, 2], "reading", 1, None, True])
def test_json_that_is_not_an_object_is_malformed(document: Any) -> None:
    rejected(document, MalformedMessage, "$")


def test_invalid_utf8_inside_a_message_is_malformed() -> None:
    raw = encode(reading()).replace(b'"oximeter-1"', b'"oxi\xc3\x28meter"')
    rejected(raw, MalformedMessage, "$")


def test_oversized_payload_is_malformed() -> None:
    data = wire(event()) | {"detail": {"note": "x" * 70_000}}
    rejected(data, MalformedMessage, "$")


def test_deeply_nested_json_is_malformed() -> None:
    rejected(b"[" * 50_000 + b"]" * 50_000, MalformedMessage, "$")


@pytest.mark.parametrize("make", [reading, event, heartbeat])
def test_unknown_field_is_malformed(make: Any) -> None:
    rejected(wire(make()) | {"colour": "blue"}, MalformedMessage, "colour")


def test_unknown_field_in_a_heartbeat_device_is_malformed() -> None:
    data = wire(heartbeat())
    data["devices"][0]["rssi"] = -70
    rejected(data, MalformedMessage, "devices.0.rssi")


@pytest.mark.parametrize("kind", ["alarm", "Reading", "", 1, None, ["reading"], {"t": 1}])
def test_bad_type_is_malformed_or_missing(kind: Any) -> None:
    data = wire(reading()) | {"type": kind}
    if kind is None:
        rejected(data, MissingField, "type")
    else:
        rejected(data, MalformedMessage, "type")


def test_type_must_match_the_body() -> None:
    rejected(wire(reading()) | {"type": "event"}, MissingField, "device_type")
    rejected(wire(event()) | {"type": "heartbeat"}, MissingField, "power")


@pytest.mark.parametrize("bad", ["hub+1", "hub#", "hub/2", "#", "+", "a/b/c", "Hub-1", "", "-hub", "hub 1",
                                 "hub\n", "h" * 64, "hüb"])
@pytest.mark.parametrize("field", ["hub_id", "device_id"])
def test_ids_unsafe_in_a_topic_are_malformed(field: str, bad: str) -> None:
    rejected(wire(reading()) | {field: bad}, MalformedMessage, field)


def test_a_heartbeat_device_id_is_checked_too() -> None:
    data = wire(heartbeat())
    data["devices"][0]["device_id"] = "door/1"
    rejected(data, MalformedMessage, "devices.0.device_id")


@pytest.mark.parametrize(("make", "field", "value"), [
    (reading, "id", "not-a-uuid"), (reading, "id", None), (reading, "metric", "temperature"),
    (reading, "quality", ["smudged"]), (reading, "source_ts", "yesterday"), (reading, "value", [96]),
    (event, "code", "explosion"), (event, "device_type", "toaster"), (event, "detail", {"nested": {"a": 1}}),
    (event, "detail", ["a"]), (heartbeat, "power", "solar"), (heartbeat, "devices", {"a": 1}),
])
def test_wrong_types_and_unknown_vocabulary_are_malformed(make: Any, field: str, value: Any) -> None:
    with pytest.raises(MalformedMessage) as caught:
        decode(payload(wire(make()) | {field: value}), now=NOW)
    assert caught.value.field.split(".")[0] == field


# Reason codes -----------------------------------------------------------------------------------------------------


def test_reason_codes_are_the_documented_strings() -> None:
    assert {cls.__name__: cls.reason for cls in (MalformedMessage, UnknownVersion, MissingField,
                                                  ImpossibleValue)} == {
        "MalformedMessage": "malformed",
        "UnknownVersion": "unknown_version",
        "MissingField": "missing_field",
        "ImpossibleValue": "impossible_value",
    }
    assert ProtocolError.reason == "malformed"
    for cls in (MalformedMessage, UnknownVersion, MissingField, ImpossibleValue):
        assert issubclass(cls, ProtocolError) and issubclass(cls, ValueError)
        error = cls("some.field", "because")
        assert (error.field, error.detail, str(error)) == ("some.field", "because", "some.field: because")


# Properties -------------------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)

VALID = {"reading": wire(reading(quality=(QualityFlag.QUESTIONABLE,))), "event": wire(event(detail={"a": 1})),
         "heartbeat": wire(heartbeat())}

plausible = (
    json_values
    | st.datetimes(timezones=st.none() | st.sampled_from([UTC, timezone(timedelta(hours=14)),
                                                          timezone(timedelta(hours=-12, minutes=-30))]))
    .map(lambda d: d.isoformat())
    | st.sampled_from([*(m.value for m in Metric), *(u.unit for u in METRICS.values()), *(f.value for f in QualityFlag),
                       *(c.value for c in EventCode), "reading", "event", "heartbeat", "hub-1", str(uuid.uuid4())])
    | st.integers(min_value=-2, max_value=302)
    | st.lists(st.sampled_from([f.value for f in QualityFlag]), max_size=3)
)


def _decodes_or_refuses(raw: bytes | str) -> None:
    try:
        message = decode(raw, now=NOW)
    except ProtocolError as error:
        assert error.reason in {"malformed", "unknown_version", "missing_field", "impossible_value"}
        assert isinstance(error.field, str) and error.field
    else:
        assert decode(encode(message), now=NOW) == message


@given(st.binary(max_size=512))
def test_random_bytes_never_raise_anything_but_protocol_error(raw: bytes) -> None:
    _decodes_or_refuses(raw)


@given(json_values)
def test_random_json_never_raises_anything_but_protocol_error(value: Any) -> None:
    _decodes_or_refuses(json.dumps(value))


@given(st.dictionaries(st.text(max_size=10), json_values, max_size=8))
def test_random_json_objects_never_raise_anything_but_protocol_error(value: dict[str, Any]) -> None:
    _decodes_or_refuses(json.dumps(value))


@given(st.data())
@settings(max_examples=property_examples(300))
def test_a_valid_message_with_one_field_replaced_decodes_or_refuses(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(sorted(VALID)))
    message = json.loads(json.dumps(VALID[kind]))
    target = message
    if kind == "heartbeat" and data.draw(st.booleans()):
        target = message["devices"][0]
    field = data.draw(st.sampled_from(sorted(target)))
    if data.draw(st.integers(0, 9)) == 0:
        del target[field]
    else:
        target[field] = data.draw(plausible)
    _decodes_or_refuses(json.dumps(message))


def _readings() -> st.SearchStrategy[Reading]:
    ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,62}", fullmatch=True)
    stamps = st.datetimes(min_value=datetime(2000, 1, 1), max_value=(NOW + timedelta(minutes=4)).replace(tzinfo=None),
                          timezones=st.just(UTC))

    def build(metric: Metric) -> st.SearchStrategy[Reading]:
        spec = METRICS[metric]
        return st.builds(
            Reading, id=st.uuids(), hub_id=ids, device_id=ids, source_ts=stamps, hub_ts=stamps, metric=st.just(metric),
            value=st.floats(min_value=spec.low, max_value=spec.high), unit=st.just(spec.unit),
            quality=st.lists(st.sampled_from(QualityFlag), max_size=3).map(tuple),
        )

    return st.sampled_from(Metric).flatmap(build)


@given(_readings())
def test_valid_generated_readings_round_trip(message: Reading) -> None:
    assert decode(encode(message), now=NOW) == message


# Topics -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("message_type", sorted(KINDS))
@pytest.mark.parametrize("hub_id", ["hub-1", "0", "a_b-c"])
def test_topic_for_and_parse_topic_round_trip(hub_id: str, message_type: str) -> None:
    topic = topic_for(hub_id, message_type)
    assert topic == f"telecare/v1/hubs/{hub_id}/{KINDS[message_type]}"
    assert parse_topic(topic) == Topic(hub_id=hub_id, kind=KINDS[message_type])


def test_status_topic_parses() -> None:
    assert status_topic("hub-1") == "telecare/v1/hubs/hub-1/status"
    assert parse_topic(status_topic("hub-1")) == Topic(hub_id="hub-1", kind=STATUS)


@pytest.mark.parametrize("topic", [
    "zigbee2mqtt/door", "telecare/v2/hubs/hub-1/readings", "telecare/v1/hub/hub-1/readings", "telecare/v1/hubs",
    "telecare/v1/hubs/", "telecare/v1/hubs/hub-1", "telecare/v1/hubs/hub-1/", "telecare/v1/hubs/hub-1/reading",
    "telecare/v1/hubs/hub-1/alarm", "telecare/v1/hubs/hub-1/readings/extra", "telecare/v1/hubs//readings",
    "telecare/v1/hubs/hub-1/status/x", "/telecare/v1/hubs/hub-1/readings", "xtelecare/v1/hubs/hub-1/events",
])
def test_parse_topic_refuses_foreign_topics(topic: str) -> None:
    assert parse_topic(topic) is None


def test_every_message_is_published_on_its_own_kind() -> None:
    for name, message in examples().items():
        parsed = parse_topic(topic_for(message.hub_id, message.type))
        assert parsed is not None and parsed.hub_id == message.hub_id and parsed.kind == KINDS[name]


# Schema and doc ---------------------------------------------------------------------------------------------------


def test_json_schemas_describe_each_message_and_what_a_receiver_insists_on() -> None:
    schemas = json_schemas()
    assert set(schemas) == {"reading", "event", "heartbeat"}
    for name, schema in schemas.items():
        assert schema["properties"]["type"]["const"] == name
        assert schema["additionalProperties"] is False
        assert {"version", "id", "hub_id", "device_id", "source_ts", "hub_ts", "type"} <= set(schema["required"])
        json.dumps(schema)
    assert "value" in schemas["reading"]["required"] and "quality" not in schemas["reading"]["required"]
    assert schemas["event"]["properties"]["priority"]["maximum"] == 9


def test_doc_examples_decode() -> None:
    for name, message in examples().items():
        assert message.type == name
        assert decode(encode(message), now=NOW) == message


def test_doc_tables_come_from_the_code() -> None:
    doc = render_protocol_doc()
    for code in EventCode:
        assert f"| `{code}` | {SCAIP_STATUS[code]} | {int(DEFAULT_PRIORITY[code])} `{DEFAULT_PRIORITY[code].name}` |" \
            in doc
    for priority in Priority:
        assert f"| {int(priority)} | `{priority.name}` |" in doc
    for metric, spec in METRICS.items():
        assert f"| `{metric}` | `{spec.unit}` | {spec.low:g}–{spec.high:g} {spec.unit} |" in doc
    for flag in QualityFlag:
        assert f"| `{flag}` |" in doc
    assert "pattern write telecare/v1/hubs/%u/#" in doc
    assert doc.count("```json") == 8  # an example and a schema of each message, and of the ack


def test_committed_doc_matches_the_code() -> None:
    assert DOC.read_text(encoding="utf-8") == render_protocol_doc(), (
        "docs/protocol.md is stale: run `python -m telecare_protocol.schema > docs/protocol.md`")


@pytest.mark.parametrize(("make", "field", "value"), [
    (reading, "value", True), (reading, "value", "98"), (event, "priority", True), (event, "priority", "1"),
    (event, "priority", float("nan")), (heartbeat, "interval_s", 60.5),
])
def test_no_type_coercion_on_the_wire(make: Any, field: str, value: Any) -> None:
    """`true` is not an SpO2 of 1 %, nor `"1"` an emergency: wrong types are malformed."""
    rejected(wire(make()) | {field: value}, MalformedMessage, field)
