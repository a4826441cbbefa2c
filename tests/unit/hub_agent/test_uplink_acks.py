"""The uplink's end-to-end acks without a broker: paho's publish is replaced by a recorder and the
PUBACKs and acks are played to the uplink's callbacks, as paho's network thread would."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hub_agent.uplink import Confirmation, Uplink
from telecare_protocol import Ack, DeviceEvent, DeviceType, EventCode, Message, Metric, Reading, Refusal, encode
from telecare_protocol.topics import ack_topic, topic_for

HUB = "hub-1"
NOW = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


@dataclass
class Info:
    mid: int
    rc: int = 0


@dataclass
class FakePaho:
    """Records what the uplink publishes; every publish succeeds and gets the next mid."""

    published: list[tuple[int, str, bytes]] = field(default_factory=list)

    def publish(self, topic: str, payload: bytes | str, qos: int = 0, retain: bool = False) -> Info:
        mid = len(self.published) + 1
        self.published.append((mid, topic, payload if isinstance(payload, bytes) else payload.encode()))
        return Info(mid)


def message_id_of(payload: bytes) -> str:
    return str(uuid.UUID(payload.split(b'"id":"')[1][:36].decode()))


@dataclass
class Wire:
    """What paho would deliver to the uplink's callbacks."""

    topic: str
    payload: bytes
    qos: int = 1


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def uplink(tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> tuple[Uplink, FakePaho]:
    link = Uplink(hub_id=HUB, password="not-used-here", host="127.0.0.1", port=1, outbox_path=tmp_path / "o.db",
                  ack_timeout_s=5.0, resend_max_s=20.0, clock=clock)
    paho = FakePaho()
    monkeypatch.setattr(link.client, "publish", paho.publish)
    monkeypatch.setattr(link.client, "subscribe", lambda *args, **kwargs: (0, 1))
    link._on_connect(link.client, None, None, None, None)  # connected; the status publish is mid 1
    return link, paho


def press(n: int = 0) -> DeviceEvent:
    return DeviceEvent.new(hub_id=HUB, device_id="pendant-1", device_type=DeviceType.PERSONAL_TRIGGER,
                           code=EventCode.MANUAL_ALARM, source_ts=NOW, detail={"n": n})


def reading() -> Reading:
    return Reading(hub_id=HUB, device_id="oximeter-1", source_ts=NOW, metric=Metric.SPO2, value=95.0, unit="%")


def pump(link: Uplink) -> None:
    """One turn of the sender thread, if it has anything to do (it would otherwise sleep up to a second)."""
    with link._cond:
        busy = link._has_work()
    if busy:
        link._send_some()


def puback_all(link: Uplink, paho: FakePaho) -> None:
    for mid, _topic, _payload in paho.published:
        link._on_publish(link.client, None, mid, None, None)


def ack(link: Uplink, stored: Sequence[Message] = (), refused: Sequence[tuple[Message, str]] = (),
        hub_id: str = HUB) -> None:
    payload = encode(Ack(hub_id=hub_id, stored=tuple(m.id for m in stored),
                         refused=tuple(Refusal(id=m.id, reason=r) for m, r in refused)))
    link._on_message(link.client, None, Wire(ack_topic(HUB), payload))  # type: ignore[arg-type]


def sent_ids(paho: FakePaho) -> list[str]:
    return [message_id_of(p) for _, topic, p in paho.published if topic != topic_for(HUB, "heartbeat")
            and not topic.endswith("/status")]


def test_a_puback_keeps_the_message_and_the_centres_ack_removes_it(uplink: Any) -> None:
    link, paho = uplink
    confirmations: list[Confirmation] = []
    link.add_listener(confirmations.append)
    alarm, level = press(), reading()
    link.send(alarm)
    link.send(level)
    pump(link)
    assert sent_ids(paho) == [str(alarm.id), str(level.id)]
    puback_all(link, paho)
    pump(link)
    assert link.unacked == 2, "the broker's PUBACK must not delete anything"
    ack(link, stored=[alarm, level])
    pump(link)
    assert link.unacked == 0
    assert confirmations == [Confirmation((str(alarm.id), str(level.id)), ())]
    ack(link, stored=[alarm])  # the centre acknowledges a resent duplicate again: reported once only
    pump(link)
    assert len(confirmations) == 1
    assert link.wait_until_delivered(0)


def test_an_overdue_alarm_is_resent_with_the_same_bytes_backing_off(uplink: Any, clock: Clock) -> None:
    link, paho = uplink
    alarm = press()
    link.send(alarm)
    pump(link)
    puback_all(link, paho)
    first = [p for _, _, p in paho.published if p.startswith(b"{")]
    resent_at = []
    for _ in range(120):  # 60 s in half-second steps, PUBACKing each resend at once
        clock.now += 0.5
        before = len(paho.published)
        pump(link)
        pump(link)
        if len(paho.published) > before:
            resent_at.append(clock.now)
            puback_all(link, paho)
    assert resent_at == [5.0, 15.0, 35.0, 55.0]  # waits of 5, 10, 20, then the 20 s cap
    assert {p for _, _, p in paho.published if p.startswith(b"{")} == set(first)
    assert link.resent == 4


def test_readings_are_kept_until_acked_but_resent_only_after_a_reconnect(uplink: Any, clock: Clock) -> None:
    link, paho = uplink
    level = reading()
    link.send(level)
    pump(link)
    puback_all(link, paho)
    clock.now += 120
    pump(link)
    assert sent_ids(paho) == [str(level.id)]
    link._on_disconnect(link.client, None, None, None, None)
    link._on_connect(link.client, None, None, None, None)
    pump(link)
    assert sent_ids(paho) == [str(level.id), str(level.id)]
    ack(link, stored=[level])
    pump(link)
    assert link.unacked == 0


def test_a_reconnect_resends_every_unacknowledged_message_alarms_first(uplink: Any) -> None:
    link, paho = uplink
    level, alarm = reading(), press()
    link.send(level)
    pump(link)
    link.send(alarm)
    pump(link)
    puback_all(link, paho)
    ack(link, stored=[level])
    pump(link)
    link._on_disconnect(link.client, None, None, None, None)
    link._on_connect(link.client, None, None, None, None)
    pump(link)
    assert sent_ids(paho) == [str(level.id), str(alarm.id), str(alarm.id)]


def test_a_refused_message_is_dropped_logged_and_reported(uplink: Any, clock: Clock,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    link, paho = uplink
    confirmations: list[Confirmation] = []
    link.add_listener(confirmations.append)
    alarm = press()
    link.send(alarm)
    pump(link)
    puback_all(link, paho)
    ack(link, refused=[(alarm, "unknown_device")])
    pump(link)
    assert link.unacked == 0
    assert link.centre_refused == {"unknown_device": 1}
    assert confirmations == [Confirmation((), ((str(alarm.id), "unknown_device"),))]
    assert "refused message" in caplog.text and "unknown_device" in caplog.text
    clock.now += 100
    pump(link)
    assert sent_ids(paho) == [str(alarm.id)], "a refused message is never resent"


@pytest.mark.parametrize("payload", [b"not json", b'{"version": 2, "type": "ack"}',
                                     encode(Ack(hub_id="hub-2", stored=(uuid.uuid4(),)))])
def test_an_unreadable_or_misaddressed_ack_is_ignored(uplink: Any, payload: bytes) -> None:
    link, _paho = uplink
    link.send(press())
    pump(link)
    link._on_message(link.client, None, Wire(ack_topic(HUB), payload))
    pump(link)
    assert link.bad_acks == 1 and link.unacked == 1


def test_what_was_acknowledged_before_a_restart_is_not_sent_again(tmp_path: Path, clock: Clock,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "o.db"
    first = Uplink(hub_id=HUB, password="x", host="127.0.0.1", port=1, outbox_path=path, clock=clock)
    paho = FakePaho()
    monkeypatch.setattr(first.client, "publish", paho.publish)
    monkeypatch.setattr(first.client, "subscribe", lambda *args, **kwargs: (0, 1))
    first._on_connect(first.client, None, None, None, None)
    done, waiting = press(0), press(1)
    first.send(done)
    first.send(waiting)
    pump(first)
    puback_all(first, paho)
    ack(first, stored=[done])
    pump(first)
    first.outbox.close()  # the power goes
    second = Uplink(hub_id=HUB, password="x", host="127.0.0.1", port=1, outbox_path=path, clock=clock)
    assert second.unacked == 1
    assert [str(e.id) for e in second.waiting_events()] == [str(waiting.id)]
    second.outbox.close()


def test_readings_the_centre_skipped_are_resent_and_a_lost_copy_again(uplink: Any) -> None:
    """An ack for a later reading shows the earlier ones were lost (the centre takes readings in order); a
    copy is resent again only when a reading sent after it is acknowledged first (the copy was lost too)."""
    link, paho = uplink
    levels = [reading() for _ in range(5)]
    for level in levels[:4]:
        link.send(level)
    pump(link)
    puback_all(link, paho)
    ack(link, stored=[levels[2]])
    pump(link)
    pump(link)
    assert sent_ids(paho) == [str(m.id) for m in (*levels[:4], *levels[:2])]
    ack(link, stored=[levels[3]])  # sent before the copies: the copies are on their way
    pump(link)
    assert len(sent_ids(paho)) == 6, "not again while their copies are on their way"
    link.send(levels[4])
    pump(link)
    ack(link, stored=[levels[4], levels[1]])  # sent after the copies; 0's copy did not come: lost too
    pump(link)
    pump(link)
    assert sent_ids(paho)[6:] == [str(levels[4].id), str(levels[0].id)]
    ack(link, stored=[levels[0]])
    pump(link)
    assert link.unacked == 0 and link.resent == 3
