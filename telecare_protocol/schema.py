"""The JSON Schema of every message, and docs/protocol.md rendered from the code.

Regenerate the doc with `python -m telecare_protocol.schema > docs/protocol.md`.
Every table below comes from `codes`, `codec`, `errors` and `topics`, and a test fails
when the committed doc differs from `render_protocol_doc()`, so the doc cannot drift.
"""

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from telecare_protocol import codec, topics
from telecare_protocol.ack import ACK_VERSION, MAX_ACK_ENTRIES, Ack, Refusal
from telecare_protocol.codes import (
    ALARM_CODES,
    DEFAULT_PRIORITY,
    MEASURABLE,
    METRICS,
    NO_VALUE_REASONS,
    SCAIP_STATUS,
    DeviceType,
    EventCode,
    Metric,
    Power,
    Priority,
    QualityFlag,
)
from telecare_protocol.errors import ImpossibleValue, MalformedMessage, MissingField, UnknownVersion
from telecare_protocol.messages import (
    MESSAGE_TYPES,
    SUPPORTED_VERSIONS,
    DeviceEvent,
    DeviceStatus,
    Heartbeat,
    Message,
    Reading,
)


def json_schemas() -> dict[str, dict[str, Any]]:
    """Pydantic's validation-mode JSON Schema of each message type, keyed by its `type`.

    `required` also lists the fields Python constructors default but `decode` insists on
    (`codec.REQUIRED_ON_THE_WIRE`), so the schema describes what a receiver accepts.
    """
    schemas: dict[str, dict[str, Any]] = {}
    for name, model in MESSAGE_TYPES.items():
        schema = model.model_json_schema(mode="validation")
        required = {*schema.get("required", ()), *codec.REQUIRED_ON_THE_WIRE}
        schema["required"] = [field for field in schema["properties"] if field in required]
        schemas[name] = schema
    return schemas


_ENVELOPE = {
    "version": "Schema version, a JSON integer. A receiver rejects any version it does not support.",
    "id": "UUID minted once, where the message is born. Retries and replays keep it, so every receiver "
          "deduplicates on it end to end.",
    "hub_id": "The hub that sent it. Equal to the hub id in the topic.",
    "device_id": "The device it is about. A heartbeat's `device_id` is the hub's own id: the hub is the device "
                 "that beats.",
    "source_ts": "When the device measured or saw it (RFC 3339, with a UTC offset), by the hub's clock.",
    "hub_ts": "When the hub received it from the device (RFC 3339, with a UTC offset), by the hub's clock. "
              "The centre measures the hub's clock by it (see Time).",
    "type": "`reading`, `event` or `heartbeat`: which of the messages below it is.",
}

_PRIORITY_MEANING = {
    Priority.EMERGENCY: "Level 1: medical, fire or panic.",
    Priority.URGENT: "Level 2: intermediate.",
    Priority.HIGH: "Level 3: intermediate.",
    Priority.SUPERVISION: "Level 4: supervision or low battery (a link, a power supply or a battery needs attention).",
    Priority.RESTORAL: "Level 5: restorals (a condition has cleared).",
    Priority.ROUTINE: "Routine state with no alarm meaning (a door opened), kept for activity monitoring.",
}

_PLX_SOURCE = {
    QualityFlag.QUESTIONABLE: "Measurement Status bit 14, questionable measurement detected",
    QualityFlag.INVALID: "Measurement Status bit 15, invalid measurement detected",
    QualityFlag.LOW_PERFUSION: "Device and Sensor Status bit 5, low perfusion detected",
    QualityFlag.SENSOR_OFF: "Device and Sensor Status bit 11, sensor unconnected to user, or bit 15, "
                            "sensor disconnected",
    QualityFlag.DATA_UNAVAILABLE: "Measurement Status bit 13, measurement unavailable",
    QualityFlag.MEASUREMENT_ONGOING: "Measurement Status bit 5, measurement ongoing",
    QualityFlag.EARLY_ESTIMATE: "Measurement Status bit 6, early estimated data",
    QualityFlag.NO_SIGNAL: "none: a value outside the metric's measurable range (Metrics), e.g. SpO2 0 % or pulse 0 "
                           "sent with no status bit; set by the hub, and by the centre when a sender did not",
}

_T0 = datetime(2025, 3, 1, 7, 30, tzinfo=UTC)


def ack_schema() -> dict[str, Any]:
    """The JSON Schema of the centre's `Ack`; `required` lists what a hub insists on."""
    schema = Ack.model_json_schema(mode="validation")
    required = {*schema.get("required", ()), *codec.ACK_REQUIRED_ON_THE_WIRE}
    schema["required"] = [field for field in schema["properties"] if field in required]
    return schema


def ack_example() -> Ack:
    """A fixed, valid ack, as shown in the doc: two messages stored, one refused."""
    return Ack(id=uuid.UUID("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"), hub_id="hub-0042",
               centre_ts=_T0 + timedelta(seconds=1, milliseconds=40),
               stored=(uuid.UUID("0b7e3c9a-5f1d-4e2a-9c3b-7d8e6f5a4b21"),
                       uuid.UUID("6f1c2a4e-8b3d-4f7a-9e21-5c0d7b3a1f42")),
               refused=(Refusal(id=uuid.UUID("3e2d1c0b-9a8f-4e7d-8c6b-5a4f3e2d1c0b"), reason="unknown_device"),))


def examples() -> dict[str, Message]:
    """One fixed, valid message of each type, as shown in the doc."""
    return {
        "reading": Reading(
            id=uuid.UUID("6f1c2a4e-8b3d-4f7a-9e21-5c0d7b3a1f42"), hub_id="hub-0042", device_id="oximeter-1",
            source_ts=_T0, hub_ts=_T0 + timedelta(seconds=1), metric=Metric.SPO2, value=94.0, unit="%",
            quality=(QualityFlag.LOW_PERFUSION,),
        ),
        "event": DeviceEvent(
            id=uuid.UUID("0b7e3c9a-5f1d-4e2a-9c3b-7d8e6f5a4b21"), hub_id="hub-0042", device_id="pendant-1",
            source_ts=_T0, hub_ts=_T0 + timedelta(milliseconds=300), device_type=DeviceType.FALL_DETECTOR,
            code=EventCode.FALL_DETECTED, priority=int(DEFAULT_PRIORITY[EventCode.FALL_DETECTED]),
            detail={"cancel_window_s": 30, "cancelled": False},
        ),
        "heartbeat": Heartbeat(
            id=uuid.UUID("c3d9e8f1-2a4b-4c6d-8e0f-1a2b3c4d5e6f"), hub_id="hub-0042", device_id="hub-0042",
            source_ts=_T0, hub_ts=_T0, power=Power.MAINS, uptime_s=86400.0, interval_s=300, outbox_depth=0,
            devices=(
                DeviceStatus(device_id="oximeter-1", last_seen=_T0 - timedelta(hours=2), battery_pct=80),
                DeviceStatus(device_id="pendant-1", last_seen=_T0 - timedelta(minutes=4), battery_pct=None),
            ),
        ),
    }


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _json(value: Any) -> str:
    return "```json\n" + json.dumps(value, indent=2, ensure_ascii=False) + "\n```"


def _range(metric: Metric) -> str:
    spec = METRICS[metric]
    return f"{spec.low:g}–{spec.high:g} {spec.unit}"


def _measurable(metric: Metric) -> str:
    bounds = MEASURABLE.get(metric)
    return "—" if bounds is None else f"{bounds.low:g}–{bounds.high:g} {METRICS[metric].unit}"


def render_protocol_doc() -> str:
    """The full Markdown of docs/protocol.md."""
    from telecare_protocol import scaip  # its XML parser is the centre's dependency, not the hub's

    versions = ", ".join(str(v) for v in sorted(SUPPORTED_VERSIONS))
    tolerance_min = int(codec.CLOCK_TOLERANCE.total_seconds() // 60)
    envelope = [f for f in Reading.model_fields if f in DeviceEvent.model_fields and f in Heartbeat.model_fields]
    kinds: list[tuple[str, ...]] = [(kind, f"`{topics.ROOT}/{{hub_id}}/{level}`") for kind, level in
             [("reading", topics.KINDS["reading"]), ("event", topics.KINDS["event"]),
              ("event whose `code` is a call for help: " + ", ".join(f"`{c}`" for c in sorted(ALARM_CODES)),
               topics.ALARMS),
              ("heartbeat", topics.KINDS["heartbeat"]), ("hub status (not a protocol message)", topics.STATUS)]]
    kinds.append(("ack (centre to hub)", f"`{topics.ACKS_ROOT}/{{hub_id}}`"))
    unsupported = max(SUPPORTED_VERSIONS) + 1
    ranges = "; ".join(f"`{m}` outside {_range(m)}" for m in Metric)
    no_value = ", ".join(f"`{f}`" for f in QualityFlag if f in NO_VALUE_REASONS)
    rejections = [
        (UnknownVersion, "`version`", f"`version` is not a JSON integer in {{{versions}}}: `{unsupported}`, `0`, "
                                      "`\"1\"`, `1.0` and `true` are all rejected."),
        (MissingField, "the absent field, e.g. `source_ts` or `devices.0.last_seen`",
         "A required field is absent, including " + ", ".join(f"`{f}`" for f in codec.REQUIRED_ON_THE_WIRE)
         + " (Python constructors default these; a receiver never does). `version: null` counts as missing."),
        (ImpossibleValue, "the field, e.g. `value`, `unit`, `priority`, `devices.0.battery_pct`",
         f"A value no device could produce: {ranges}; a `unit` that is not the metric's; a null `value` "
         f"without one of {no_value} in `quality`; `NaN` or `Infinity`; any number outside the range its "
         "schema gives (`priority` 0–9, `battery_pct` 0–100, …)."),
        (MalformedMessage, "the field, or `$` for the whole payload",
         f"Not UTF-8 JSON, not a JSON object, over {codec.MAX_PAYLOAD_BYTES // 1024} KiB, an unknown field, "
         "a value of the wrong type, an unknown `type`, an id that does not match its pattern, or a time "
         "without a UTC offset or outside years 1 to 9999 in UTC."),
    ]
    by_priority = {p: [c for c in EventCode if DEFAULT_PRIORITY[c] is p] for p in Priority}
    examples_md = "\n\n".join(f"Example `{name}` message:\n\n" + _json(json.loads(codec.encode(message)))
                              for name, message in examples().items())
    examples_md += "\n\nExample `ack` from the centre:\n\n" + _json(json.loads(codec.encode(ack_example())))
    schemas = json_schemas()
    id_pattern = schemas["reading"]["properties"]["hub_id"]["pattern"]
    schemas_md = "\n\n".join(f"### `{name}`\n\n" + _json(schema) for name, schema in schemas.items())
    schemas_md += "\n\n### `ack` (centre to hub)\n\n" + _json(ack_schema())
    centre_acl = "`, `".join(topics.CENTRE_ACL)
    sections = [
        f"""# Telecare wire protocol, version {max(SUPPORTED_VERSIONS)}

<!-- Generated by `python -m telecare_protocol.schema > docs/protocol.md`. Do not edit by hand:
     tests/test_protocol.py fails when this file differs from the code. -->

The versioned contract between a home hub and the monitoring centre: three JSON messages
(`reading`, `event`, `heartbeat`) a hub publishes over MQTT, and the `ack` the centre sends
back once it has stored them. The package `telecare_protocol` is the only code the two sides
share; `telecare_protocol.decode` applies every rule below (`decode_ack` those of an ack).
The vocabulary follows SCAIP (Swedish standard SS 91100, adopted as CLC/TS 50134-9), the
XML-over-IP social alarm protocol, so events map onto commercial alarm-receiving software.""",
        "## Envelope\n\nEvery message starts with the same fields.\n\n"
        + _table(("Field", "Meaning"), [(f"`{f}`", _ENVELOPE[f]) for f in envelope]),
        f"""## Topics

Each hub publishes under its own id. The centre subscribes to `{topics.SUBSCRIPTION}`, and
acknowledges on the hub's own ack topic.

"""
        + _table(("Kind", "Topic"), kinds)
        + f"""

The hub id in the topic is the hub's broker username. The broker authenticates each hub
and applies the ACL `{topics.BROKER_ACL_PATTERN}`, so a hub can publish only as itself, and
`{topics.ACK_ACL_PATTERN}`, so it reads its own acks and no other hub's. The acks live
outside `{topics.ROOT}/`, so no hub can write one; the centre's account has
`{centre_acl}`.
The centre trusts the hub id in the topic and drops a message whose `hub_id` differs.
Hub and device ids match `{id_pattern}`: `+`, `#` and `/` are impossible in
an id, so substituting a username can never widen the ACL or reach another hub's topics.

Calls for help have a topic of their own: an event whose `code` is one of
{", ".join(f"`{c}`" for c in sorted(ALARM_CODES))} goes on `{topics.ALARMS}`, and nothing
else may (the centre refuses any other message there as `wrong_topic`). The centre reads
`{topics.ALARM_SUBSCRIPTION}` on a session of its own, so a press never waits at the broker
behind other events. A hub of the earlier layout sends them on `{topics.KINDS["event"]}`, which
the centre still stores and raises.

Messages are published with QoS 1 (at least once). Duplicates are therefore normal, and
receivers drop them by `id`.

`{topics.STATUS}` is not a protocol message: plain text `online` or `offline`. The hub publishes
`online` when it connects, `offline` when it stops, and registers `offline` as its MQTT last
will, which the broker publishes when the hub's connection dies. The will is a fast hint; the
heartbeat deadline (`interval_s`) is the authority, because every link must be supervised.

Nothing is retained, the status and the will included. The centre's broker keeps no retained
messages (Mosquitto's `retain_available false`): a client that publishes one is disconnected,
and one whose will is retained is refused at CONNECT. A broker cannot allow retention on some
topics only, and whatever a hub retained under its own topics would be kept for ever. The
centre's sessions are persistent, so a will published while the centre is down still reaches
it when it is back.""",
        f"""## Acknowledgements

A broker's PUBACK means only that the broker has a message: a broker that crashes before it
writes its persistence, or a centre session that is gone, still loses it. As in SCAIP (the
receiving centre's response) and BS 8521 (the "kiss-off"), the centre itself confirms each
message, after its database has committed it:

- `stored`: ids committed now or earlier. A resent message the centre already has (a
  duplicate) is acknowledged again, so a hub may resend whatever it has no ack for.
- `refused`: ids the centre dead-lettered for good, each with its reason (the dead-letter
  reason codes of the centre, e.g. `unknown_device`): resending them would only be refused
  again, so the hub stops and raises a local fault.

Acks go out with QoS 1 after each commit, grouped per hub; one ack names 1 to
{MAX_ACK_ENTRIES} messages, so the largest stays under {codec.MAX_PAYLOAD_BYTES // 1024} KiB.
A hub keeps each message until its ack arrives and resends it with the same `id` until then;
messages the centre cannot attribute to a hub (a topic that is not a hub's) or whose `id`
it cannot read are never acknowledged. `decode_ack` applies the checks of `decode` (payload,
version, type, required fields `{'`, `'.join(codec.ACK_REQUIRED_ON_THE_WIRE)}`, schema) with
no clock check: a hub whose clock is wrong must still hear that its alarm arrived.""",
        f"""## Versions

A receiver accepts every version in {{{versions}}} and rejects any other (`unknown_version`).
A version adds to the one before and never changes what an earlier message means, so the
centre reads every supported version the same way.

| Version | Change |
|---|---|
| 1 | `reading`, `event`, `heartbeat`; delivery confirmed by the broker's PUBACK only. |
| {ACK_VERSION} | The centre's `ack` (`{topics.ACKS_ROOT}/{{hub_id}}`); hubs write version {ACK_VERSION}. |

A version 1 hub keeps working with a version {ACK_VERSION} centre: the centre stores its messages
as before and publishes acks for them too, which nobody subscribes to, so the broker drops
them. A version {ACK_VERSION} hub needs a centre that acknowledges: upgrade the centre and its
broker ACL first, then the hubs.""",
        f"""## Time

Every time is RFC 3339 with a UTC offset and an instant in UTC (years 1 to 9999 once the
offset is applied); any other time is `malformed`. Beyond that, no message is
refused for what its times say, however far ahead or behind: a Raspberry Pi has no real-time
clock, so after a power cut a hub can run days off until NTP answers, and its alarms must
still be raised. (Until the centre judged hub clocks itself, a receiver refused a time more
than 5 minutes ahead of its own clock as `future_timestamp`; that refusal is gone.)

The centre stamps each message with its own receive time and stores it beside the hub's. It
measures each hub's clock from `hub_ts` against that receive time and raises a supervision
alert, `hub_clock_wrong`, when the clock is more than {tolerance_min} minutes off; meanwhile it places the
hub's messages on its own clock, and a time later than the message's receipt is never taken
at its word (the centre's `docs/detection.md`, "Time"). A hub keeps its clock synchronised by
NTP and stamps `hub_ts` when it receives from the device, so that its outbox's delay never
makes a message look younger than it is.""",
        "## Rejections\n\n`decode` raises a `ProtocolError` subclass naming the field at fault (`.field`, "
        "with a dotted path for nested fields), with a human `.detail` and a short `.reason` code that the "
        "centre counts in its dead-letter table and metrics. It never raises anything else, whatever the "
        "bytes. Checks run in this order: payload and JSON, version, type, required fields, schema.\n\n"
        + _table(("Reason", "Error", "Field", "Rule"),
                 [(f"`{e.reason}`", f"`{e.__name__}`", field, rule) for e, field, rule in rejections]),
        "## Priorities\n\nSCAIP carries a priority from 0 to 9; lower is more urgent, and `priority` accepts "
        "any of them. The named levels are the five levels alarm-receiving software commonly uses, plus a "
        "routine level. `DeviceEvent.new` fills in each code's default.\n\n"
        + _table(("Priority", "Name", "Meaning", "Default for"),
                 [(str(int(p)), f"`{p.name}`", _PRIORITY_MEANING[p], ", ".join(f"`{c}`" for c in by_priority[p]) or "—")
                  for p in Priority]),
        "## Event codes\n\nDevice types (`device_type`), after SCAIP's: "
        + ", ".join(f"`{d}`" for d in DeviceType)
        + ". `communication_link` is the hub itself: its power supply and its links to devices and to the "
        "centre.\n\nEach event code and the SCAIP status it corresponds to:\n\n"
        + _table(("Code", "SCAIP status", "Default priority"),
                 [(f"`{c}`", SCAIP_STATUS[c], f"{int(DEFAULT_PRIORITY[c])} `{DEFAULT_PRIORITY[c].name}`")
                  for c in EventCode]),
        "## Metrics\n\nUnits are UCUM, as FHIR uses them with LOINC 59408-5 (SpO2, `%`) and 8867-4 "
        "(heart rate, `/min`). A reading's `unit` must be its metric's unit. The range is what is physically "
        "possible, not what is clinically normal: clinical thresholds belong to the centre. Inside it, a value "
        "outside the measurable range is what an oximeter sends when it finds no signal (SpO2 0 %, pulse 0): it "
        "is delivered and stored, flagged `no_signal`, and never taken as a measurement.\n\n"
        + _table(("Metric", "Unit", "Possible range", "Measurable range"),
                 [(f"`{m}`", f"`{METRICS[m].unit}`", _range(m), _measurable(m)) for m in Metric])
        + "\n\n" + "\n".join(f"- `{m}` measurable: {MEASURABLE[m].source}." for m in Metric if m in MEASURABLE),
        "## Quality flags\n\nA reading carries its quality in `quality`, taken from the status bits of the "
        "Bluetooth SIG Pulse Oximeter Service (PLX, 0x1822) spot-check and continuous measurements. A flagged "
        "reading is delivered and stored, never silently dropped, and a questionable reading must not fire a "
        "threshold alarm on its own. A null `value` must carry one of the flags that explain a gap.\n\n"
        + _table(("Flag", "BLE PLX source", "Explains a null value"),
                 [(f"`{f}`", _PLX_SOURCE[f], "yes" if f in NO_VALUE_REASONS else "no") for f in QualityFlag]),
        "## Examples\n\n" + examples_md,
        "## JSON Schema\n\nPydantic's validation schema of each message. `required` lists what a receiver "
        "insists on.\n\n" + schemas_md,
        scaip.protocol_doc_section(),
    ]
    return "\n\n".join(sections) + "\n"


if __name__ == "__main__":
    print(render_protocol_doc(), end="")
