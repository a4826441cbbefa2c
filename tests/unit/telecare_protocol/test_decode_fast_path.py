"""`decode` parses a valid message once (the fast path) and checks anything else step by step: the two
must agree on every payload, the same message or the same refusal naming the same field."""

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telecare_protocol import DeviceEvent, DeviceType, EventCode, Heartbeat, Power, ProtocolError, Reading, decode
from telecare_protocol.codec import _decode_steps, _decode_valid
from telecare_protocol.codes import METRICS, Metric, QualityFlag
from tests.support.examples import property_examples

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
VALID: dict[str, dict[str, Any]] = {
    "reading": json.loads(Reading(hub_id="hub-1", device_id="oxi-1", source_ts=NOW, metric=Metric.SPO2, value=96,
                                  unit="%", quality=(QualityFlag.QUESTIONABLE,)).model_dump_json()),
    "event": json.loads(DeviceEvent.new(hub_id="hub-1", device_id="door-1", device_type=DeviceType.DOOR_SENSOR,
                                        code=EventCode.DOOR_OPENED, source_ts=NOW, detail={"a": 1})
                        .model_dump_json()),
    "heartbeat": json.loads(Heartbeat(hub_id="hub-1", device_id="hub-1", source_ts=NOW, power=Power.MAINS,
                                      uptime_s=5, interval_s=60).model_dump_json()),
}
VALID["heartbeat"]["devices"] = [{"device_id": "oxi-1", "last_seen": NOW.isoformat(), "battery_pct": 50}]
values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                      lambda children: st.lists(children, max_size=3), max_leaves=6)
plausible = (
    values
    | st.datetimes(timezones=st.none() | st.sampled_from([UTC, timezone(timedelta(hours=14)),
                                                          timezone(timedelta(hours=-12, minutes=-30))]))
    .map(lambda d: d.isoformat())
    | st.sampled_from([*(m.value for m in Metric), *(u.unit for u in METRICS.values()), *(f.value for f in QualityFlag),
                       *(c.value for c in EventCode), "reading", "event", "heartbeat", "hub-1", str(uuid.uuid4()),
                       1, 2, 1.0, 2.0, True, "0001-01-01T00:30:00+01:00", "9999-12-31T23:00:00-12:30"])
)


def _outcome(decoder: Any, raw: str) -> Any:
    try:
        return decoder(raw)
    except ProtocolError as error:
        return (type(error), error.field, error.reason)


def _agree(raw: str) -> None:
    steps = _outcome(_decode_steps, raw)
    assert _outcome(decode, raw) == steps
    fast = _decode_valid(raw)
    assert fast is None or fast == steps  # the fast path only ever says "valid", and then rightly


@given(st.data())
@settings(max_examples=property_examples(400))
def test_fast_and_step_by_step_agree_on_a_message_with_one_field_changed(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(sorted(VALID)))
    message = json.loads(json.dumps(VALID[kind]))
    target = message["devices"][0] if kind == "heartbeat" and data.draw(st.booleans()) else message
    field = data.draw(st.sampled_from(sorted(target)))
    if data.draw(st.integers(0, 5)) == 0:
        del target[field]
    else:
        target[field] = data.draw(plausible)
    _agree(json.dumps(message))


@pytest.mark.parametrize("version", [True, 1.0, 2.0, "2", None])
def test_a_version_that_is_no_json_integer_is_refused_as_before(version: Any) -> None:
    raw = json.dumps(VALID["reading"] | {"version": version})
    assert _decode_valid(raw) is None
    with pytest.raises(ProtocolError) as refused:
        decode(raw)
    assert refused.value.field == "version"


@pytest.mark.parametrize("field", ["version", "type", "id", "hub_ts"])
def test_a_field_the_constructor_would_default_is_still_required(field: str) -> None:
    raw = json.dumps({k: v for k, v in VALID["event"].items() if k != field})
    assert _decode_valid(raw) is None
    with pytest.raises(ProtocolError) as refused:
        decode(raw)
    assert (refused.value.reason, refused.value.field) == ("missing_field", field)


@pytest.mark.parametrize("kind", sorted(VALID))
def test_a_valid_message_takes_the_fast_path(kind: str) -> None:
    raw = json.dumps(VALID[kind])
    assert _decode_valid(raw) is not None
    assert decode(raw) == _decode_steps(raw)
