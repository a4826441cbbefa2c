"""Bad input of every kind, interleaved with good input, through a real Mosquitto into a real centre.

Hypothesis draws streams of good messages (readings, events, heartbeats, a hub's status)
and bad ones (each kind the centre must refuse, with the reason it must give), publishes
them in order from the hubs' own accounts, and checks: every bad one is dead-lettered with
its reason (matched by topic and payload), every good one is stored, a replayed message id
is dropped as a duplicate, and the counters on /metrics equal the dead-letter table.
On SQLite and PostgreSQL.
"""

import json
import re
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.client import Client
from sqlalchemy import func, select

from centre_app.centre import Centre, CentreThread
from monitoring_centre.broker import BrokerAccount, Mosquitto, find_mosquitto
from monitoring_centre.storage import DeadLetter, InboundMessage, Reading
from telecare_protocol import DeviceEvent, DeviceType, EventCode, Heartbeat, Power, encode
from telecare_protocol import Reading as ReadingMessage
from telecare_protocol.codec import MAX_PAYLOAD_BYTES
from telecare_protocol.codes import Metric
from telecare_protocol.messages import SUPPORTED_VERSIONS
from telecare_protocol.topics import ALARMS, KINDS, ROOT, STATUS, status_topic, topic_for
from tests.support.centre import centre_settings, enrol_test_homes
from tests.support.helpers import close, mqtt_client
from tests.support.waiting import wait_for

GHOST = "hub-ghost"
"""A hub with a broker account that the centre has not enrolled."""


@dataclass(frozen=True)
class Publication:
    sender: str
    topic: str
    payload: bytes
    reason: str | None
    """None: good, must be stored; "duplicate": a replay; else the dead-letter reason expected."""
    message_id: str | None = None
    clock_suspect: bool = False
    """Good, stamped by a hub clock that is ahead: stored, flagged `clock_suspect`."""


@dataclass
class World:
    centre: Centre
    clients: dict[str, Client]


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    accounts = {a.username: a for a in (BrokerAccount.generate("centre", "centre"), BrokerAccount.generate(
        "hub-1", "hub"), BrokerAccount.generate("hub-2", "hub"), BrokerAccount.generate(GHOST, "hub"))}
    with Mosquitto(tmp_path / "broker", accounts.values()) as broker:
        centre = Centre(centre_settings(tmp_path / "centre.db", broker, accounts, database_url=database_url))
        enrol_test_homes(centre)
        clients = {name: mqtt_client(broker, accounts[name]) for name in ("hub-1", "hub-2", GHOST)}
        try:
            with CentreThread(centre):
                yield World(centre, clients)
        finally:
            for client in clients.values():
                close(client)


def _now() -> datetime:
    return datetime.now(UTC)


def _reading(hub: str = "hub-1", device: str = "oximeter-1", value: float = 96.0) -> ReadingMessage:
    return ReadingMessage(hub_id=hub, device_id=device, source_ts=_now(), metric=Metric.SPO2, value=value, unit="%")


def _event(hub: str = "hub-1", device: str = "door-1") -> DeviceEvent:
    return DeviceEvent.new(hub_id=hub, device_id=device, device_type=DeviceType.DOOR_SENSOR,
                           code=EventCode.DOOR_OPENED, source_ts=_now())


def _edit(message: ReadingMessage | DeviceEvent, **changes: Any) -> bytes:
    data = json.loads(encode(message))
    for key, value in changes.items():
        if value is _DROP:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data).encode()


_DROP = object()
TOPIC_LEAVES = frozenset({*KINDS.values(), ALARMS, STATUS})
"""Every leaf the protocol uses under a hub's topic: a bad topic is any other."""


@st.composite
def publications(draw: st.DrawFn) -> Publication:
    kind = draw(st.sampled_from([
        "reading", "event", "heartbeat", "status", "replay",
        "not_utf8", "not_json", "unknown_version", "missing_field", "extra_field", "impossible_value",
        "stamped_ahead", "hub_mismatch", "unknown_hub", "unknown_device", "bad_topic", "too_large",
        "wrong_topic", "bad_status",
    ]))
    spo2 = draw(st.floats(min_value=50, max_value=100, allow_nan=False).map(lambda v: round(v, 1)))
    if kind == "reading":
        good = _reading(value=spo2)
        return Publication("hub-1", topic_for("hub-1", "reading"), encode(good), None, str(good.id))
    if kind == "event":
        hub, device = draw(st.sampled_from([("hub-1", "door-1"), ("hub-1", "bed-1"), ("hub-2", "pendant-2")]))
        event = _event(hub, device)
        return Publication(hub, topic_for(hub, "event"), encode(event), None, str(event.id))
    if kind == "heartbeat":
        beat = Heartbeat(hub_id="hub-2", device_id="hub-2", source_ts=_now(), power=Power.MAINS,
                         uptime_s=draw(st.floats(min_value=0, max_value=1e6)), interval_s=60)
        return Publication("hub-2", topic_for("hub-2", "heartbeat"), encode(beat), None, str(beat.id))
    if kind == "status":
        return Publication("hub-2", status_topic("hub-2"), b"online", None)
    if kind == "replay":
        return Publication("hub-1", topic_for("hub-1", "reading"), b"", "duplicate")  # filled in by the test
    if kind == "not_utf8":
        junk = draw(st.binary(min_size=1, max_size=40))
        return Publication("hub-1", topic_for("hub-1", "reading"), b"\xff\xfe" + junk, "malformed")
    if kind == "not_json":  # an opening brace that is never closed can never be JSON
        text = draw(st.text(st.characters(exclude_characters="}", exclude_categories=["Cs"]), max_size=60))
        return Publication("hub-1", topic_for("hub-1", "event"), ("{" + text).encode(), "malformed")
    if kind == "unknown_version":
        version = draw(st.integers(min_value=max(SUPPORTED_VERSIONS) + 1, max_value=10_000))
        return Publication("hub-1", topic_for("hub-1", "reading"), _edit(_reading(), version=version),
                           "unknown_version")
    if kind == "missing_field":
        name = draw(st.sampled_from(["id", "hub_ts", "source_ts", "device_id", "metric"]))
        return Publication("hub-1", topic_for("hub-1", "reading"), _edit(_reading(), **{name: _DROP}),
                           "missing_field")
    if kind == "extra_field":
        name = draw(st.from_regex(r"\Ax[a-z]{1,10}\Z"))
        return Publication("hub-1", topic_for("hub-1", "event"), _edit(_event(), **{name: 1}), "malformed")
    if kind == "impossible_value":
        value = draw(st.floats(min_value=100.5, max_value=1e9))
        return Publication("hub-1", topic_for("hub-1", "reading"), _edit(_reading(), value=value), "impossible_value")
    if kind == "stamped_ahead":  # a hub clock running ahead is no reason to refuse: stored and flagged
        ahead = draw(st.integers(min_value=10, max_value=60 * 24 * 365))
        stamp = (_now() + timedelta(minutes=ahead)).isoformat()
        early = _reading()
        return Publication("hub-1", topic_for("hub-1", "reading"), _edit(early, source_ts=stamp), None,
                           str(early.id), clock_suspect=True)
    if kind == "hub_mismatch":
        forged = _event("hub-2", "pendant-2")
        return Publication("hub-1", topic_for("hub-1", "event"), encode(forged), "hub_mismatch")
    if kind == "unknown_hub":
        return Publication(GHOST, topic_for(GHOST, "reading"), encode(_reading(GHOST, "oximeter-1")), "unknown_hub")
    if kind == "unknown_device":
        device = draw(st.from_regex(r"\Astranger-[a-z0-9]{1,8}\Z"))
        return Publication("hub-1", topic_for("hub-1", "reading"), encode(_reading(device=device)), "unknown_device")
    if kind == "bad_topic":
        leaf = draw(st.from_regex(r"\A[a-z]{1,12}\Z").filter(lambda s: s not in TOPIC_LEAVES))
        return Publication("hub-1", f"{ROOT}/hub-1/{leaf}", encode(_reading()), "bad_topic")
    if kind == "too_large":
        return Publication("hub-1", topic_for("hub-1", "reading"), b" " * (MAX_PAYLOAD_BYTES + 1) + encode(_reading()),
                           "too_large")
    if kind == "wrong_topic":
        return Publication("hub-1", topic_for("hub-1", "event"), encode(_reading()), "wrong_topic")
    assert kind == "bad_status"
    state = draw(st.sampled_from([b"maybe", b"", b"ONLINE!", b"\xff"]))
    return Publication("hub-2", status_topic("hub-2"), state, "malformed")


def _rejected_counts(metrics: str) -> Counter[str]:
    found = re.findall(r'^telecare_ingest_rejected_total\{reason="([a-z_]+)"\} ([0-9.e+]+)$', metrics, re.M)
    return Counter({reason: int(float(value)) for reason, value in found})


def _duplicates(metrics: str) -> int:
    found = re.search(r"^telecare_ingest_duplicates_total ([0-9.e+]+)$", metrics, re.M)
    return int(float(found.group(1))) if found else 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(stream=st.lists(publications(), min_size=1, max_size=12))
def test_every_bad_message_is_dead_lettered_and_every_good_one_stored(world: World, stream: list[Publication]
                                                                      ) -> None:
    centre = world.centre
    base = centre.url
    # A replay re-sends a good reading that has already been stored.
    original = _reading(value=95.0)
    stream = [Publication("hub-1", topic_for("hub-1", "reading"), encode(original), None, str(original.id)),
              *stream]
    stream = [p if p.reason != "duplicate" else Publication(p.sender, p.topic, encode(original), "duplicate")
              for p in stream]
    marker = _reading(value=float(secrets.randbelow(50) + 50))  # stored last: the stream has been read through
    stream.append(Publication("hub-1", topic_for("hub-1", "reading"), encode(marker), None, str(marker.id)))
    with centre.sessions() as session:
        letters_before = session.scalar(select(func.max(DeadLetter.id))) or 0
    duplicates_before = _duplicates(httpx.get(f"{base}/metrics").text)

    for i, publication in enumerate(stream):
        info = world.clients[publication.sender].publish(publication.topic, publication.payload, qos=1)
        if i == 0:
            info.wait_for_publish(10)  # the original is at the broker before any replay of it
            wait_for(lambda: _stored(centre, str(original.id)), what="the original of the replays")

    good = [p for p in stream if p.reason is None and p.message_id]
    bad = [p for p in stream if p.reason not in (None, "duplicate")]
    replays = sum(p.reason == "duplicate" for p in stream)

    def done() -> tuple[list[DeadLetter]] | None:
        if not all(_stored(centre, p.message_id or "") for p in good):
            return None
        with centre.sessions() as session:
            letters = list(session.scalars(select(DeadLetter).where(DeadLetter.id > letters_before)
                                           .order_by(DeadLetter.id)))
        return (letters,) if len(letters) >= len(bad) else None

    [letters] = wait_for(done, timeout=30, what="every good message stored and every bad one dead-lettered")
    assert len(letters) == len(bad)
    remaining = [(d.topic, bytes(d.payload), d.reason) for d in letters]
    for publication in bad:
        expected = (publication.topic[:256], publication.payload[:4096], publication.reason)
        assert expected in remaining, f"{publication.reason} not dead-lettered as such: {publication.payload[:80]!r}"
        remaining.remove(expected)
    wait_for(lambda: _duplicates(httpx.get(f"{base}/metrics").text) - duplicates_before == replays, timeout=10,
             what="the replays counted as duplicates")

    with centre.sessions() as session:
        table = Counter(dict(session.execute(select(DeadLetter.reason, func.count()).group_by(DeadLetter.reason))
                             .all()))
        values = {p.message_id: session.execute(select(Reading.value, Reading.clock_suspect)
                                                .where(Reading.message_id == p.message_id)).one()
                  for p in good if p.topic.endswith("/readings")}
    assert _rejected_counts(httpx.get(f"{base}/metrics").text) == table
    for publication in good:
        if publication.topic.endswith("/readings"):
            assert tuple(values[publication.message_id]) == (json.loads(publication.payload)["value"],
                                                             publication.clock_suspect)


def _stored(centre: Centre, message_id: str) -> bool:
    with centre.sessions() as session:
        return session.get(InboundMessage, message_id) is not None


def test_metrics_show_what_an_operator_needs(world: World) -> None:
    press = DeviceEvent.new(hub_id="hub-2", device_id="pendant-2", device_type=DeviceType.PERSONAL_TRIGGER,
                            code=EventCode.MANUAL_ALARM, source_ts=_now())
    world.clients["hub-2"].publish(topic_for("hub-2", "event"), encode(press), qos=1).wait_for_publish(10)
    wait_for(lambda: _stored(world.centre, str(press.id)), what="the press")
    text = httpx.get(f"{world.centre.url}/metrics").text
    assert 'telecare_alerts_active{priority="1"} 1.0' in text
    assert 'telecare_alerts_active{priority="4"} 0.0' in text
    assert 'telecare_receiver_queue_depth{lane="alarm"} 0.0' in text
    assert "telecare_detection_people 2.0" in text
    stamp = re.search(r"^telecare_ingest_last_commit_timestamp_seconds ([0-9.e+]+)$", text, re.M)
    assert stamp is not None and abs(float(stamp.group(1)) - _now().timestamp()) < 60
