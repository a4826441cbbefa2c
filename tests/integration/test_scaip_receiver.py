"""The SCAIP receiver (monitoring_centre/scaip_receiver.py) on a free loopback port, with the
centre's real ingest and detection engine on a SQLite database: SIP MESSAGE requests over UDP
and TCP, as another maker's social alarm unit sends them."""

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from centre_app import schema
from centre_app.settings import CentreSettings
from detection.engine import Engine
from monitoring_centre.detection_runner import EngineRunner
from monitoring_centre.enrolment import enrol_home
from monitoring_centre.ingest import Ingest, IngestMetrics
from monitoring_centre.scaip_receiver import ScaipReceiver, ScaipSettings
from monitoring_centre.storage import Alert, Event, Hub, make_engine
from telecare_protocol import scaip

UNIT, HUB = "26317", "scaip-26317"
NOT_AT_THE_CENTRE = "555"
"""Listed in the settings, but its hub was never enrolled."""
ALARM = b"<mrq><ref>00001883</ref><mty>ME</mty><cid>26317</cid><dty>0003</dty><stc>0010</stc>" \
        b"<crd>gsm:+447700900123</crd><lco>012</lco></mrq>"


@dataclass
class World:
    sessions: sessionmaker[Session]
    receiver: ScaipReceiver
    runner: EngineRunner
    registry: CollectorRegistry
    person_id: int
    woken: list[set[int]] = field(default_factory=list)

    def count(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def alerts(self) -> list[Alert]:
        with self.sessions() as session:
            return list(session.scalars(select(Alert).order_by(Alert.id)))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    engine = make_engine(f"sqlite:///{tmp_path / 'centre.db'}")
    schema.upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session, session.begin():
        person = enrol_home(session, name="Margaret Hughes", address="12 Elm Road", hub_id=HUB, devices=[])
    runner = EngineRunner(Engine([]), sessions, tick_s=10)
    runner.load()
    registry = CollectorRegistry()
    ingest = Ingest(sessions, IngestMetrics(registry), detector=runner)
    settings = ScaipSettings(port=0, units={UNIT: HUB, NOT_AT_THE_CENTRE: "scaip-555"}, heartbeat_interval_s=300)
    woken: list[set[int]] = []
    receiver = ScaipReceiver(ingest, settings, on_alerts=woken.append, registry=registry)
    receiver.start()
    try:
        yield World(sessions, receiver, runner, registry, person.id, woken)
    finally:
        receiver.stop()
        engine.dispose()


def sip(body: bytes, *, user: str = UNIT, method: str = "MESSAGE", call_id: str | None = None, cseq: int = 1,
        branch: str | None = None, content_type: str = "application/scaip+xml", transport: str = "UDP",
        headers: tuple[str, ...] = ()) -> bytes:
    """A SIP request as a unit sends it (RFC 3261, RFC 3428)."""
    lines = [f"{method} sip:alarms@127.0.0.1 SIP/2.0",
             f"Via: SIP/2.0/{transport} 127.0.0.1:5070;branch=z9hG4bK{branch or uuid.uuid4().hex[:12]};rport",
             "Max-Forwards: 70", f"From: \"Unit\" <sip:{user}@127.0.0.1>;tag=u{user}",
             "To: <sip:alarms@127.0.0.1>", f"Call-ID: {call_id or uuid.uuid4().hex}@127.0.0.1",
             f"CSeq: {cseq} {method}", *headers, f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes

    def mrs(self) -> scaip.Response:
        return scaip.parse_response(self.body)


def parse_answer(raw: bytes) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return Answer(int(lines[0].split(" ")[1]), headers, body, raw)


def udp(world: World, request: bytes) -> Answer:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(10)  # a guard against a hang, not a measurement
        client.sendto(request, ("127.0.0.1", world.receiver.port))
        raw, _ = client.recvfrom(65535)
    return parse_answer(raw)


def tcp(world: World, *requests: bytes) -> list[Answer]:
    answers = []
    with socket.create_connection(("127.0.0.1", world.receiver.port), timeout=10) as client:
        stream = client.makefile("rb")
        for request in requests:
            client.sendall(request)
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                head += stream.readline()
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            answers.append(parse_answer(head + stream.read(length)))
    return answers


def test_an_alarm_from_an_enrolled_unit_is_answered_and_raises_the_persons_alert(world: World) -> None:
    answer = udp(world, sip(ALARM))
    assert answer.status == 200 and answer.headers["content-type"] == scaip.CONTENT_TYPE
    assert answer.mrs() == scaip.Response(reference="00001883", status=scaip.StatusNumber.OK)
    assert "received=127.0.0.1" in answer.headers["via"] and "rport=" in answer.headers["via"]
    assert ";tag=" in answer.headers["to"]

    [alarm] = world.alerts()
    assert (alarm.rule, alarm.person_id, alarm.hub_id, alarm.priority, alarm.status) == \
        ("pendant_alarm", world.person_id, HUB, 1, "open")
    assert world.woken == [{alarm.id}]  # the centre's escalator and consoles are told at once
    with world.sessions() as session:
        event = session.scalar(select(Event).where(Event.hub_id == HUB))
        assert event is not None and event.code == "manual_alarm"
        assert event.detail["scaip_reference"] == "00001883" and event.detail["scaip_call_back"] == "gsm:+447700900123"
        assert event.detail["scaip_device_type"] == "personal trigger (0003)"
    assert world.count("telecare_scaip_messages_total", outcome="stored") == 1


def test_over_tcp_several_messages_share_a_connection_and_a_fall_is_a_fall(world: World) -> None:
    fall = b"<mrq><ref>F1</ref><cid>26317</cid><dty>0005</dty><stc>0009</stc></mrq>"
    battery = b"<mrq><ref>F2</ref><cid>26317</cid><dty>0005</dty><stc>0016</stc></mrq>"
    first, second = tcp(world, sip(fall, transport="TCP"), sip(battery, transport="TCP"))
    assert first.mrs().status == second.mrs().status == scaip.StatusNumber.OK
    assert (first.mrs().reference, second.mrs().reference) == ("F1", "F2")
    assert sorted(a.rule for a in world.alerts()) == ["battery_low", "fall"]


def test_a_unit_that_stops_beating_is_supervised_like_a_hub(world: World) -> None:
    beat = b"<mrq><ref>00001A85</ref><cha>0</cha><mty>PI</mty><cid>26317</cid><dty>02</dty><did>00</did>" \
           b"<crd>no-voice:</crd><stc>102</stc></mrq>"
    assert udp(world, sip(beat)).mrs().status == scaip.StatusNumber.OK
    with world.sessions() as session:
        hub = session.get(Hub, HUB)
        assert hub is not None and hub.last_heartbeat_at is not None and hub.heartbeat_interval_s == 300
    assert world.alerts() == []
    assert world.count("telecare_scaip_messages_total", outcome="heartbeat") == 1

    world.runner.tick(datetime.now(UTC) + timedelta(hours=1))  # no heartbeat for an hour
    [offline] = world.alerts()
    assert (offline.rule, offline.person_id) == ("hub_offline", world.person_id)


def test_a_retransmission_gets_the_same_answer_and_raises_nothing_twice(world: World) -> None:
    request = sip(ALARM, call_id="same-call", branch="same")
    first, again = udp(world, request), udp(world, request)
    assert again.raw == first.raw
    assert len(world.alerts()) == 1 and world.alerts()[0].repeat_count == 0
    assert world.count("telecare_scaip_messages_total", outcome="retransmission") == 1


def test_a_replayed_reference_is_refused_and_counted_but_a_call_for_help_never_is(world: World) -> None:
    assert udp(world, sip(ALARM)).mrs().status == scaip.StatusNumber.OK
    reset = b"<mrq><ref>R1</ref><mty>RE</mty><cid>26317</cid><dty>0003</dty></mrq>"
    assert udp(world, sip(reset)).mrs().status == scaip.StatusNumber.OK
    replay = udp(world, sip(reset))  # the same reset again, in a new transaction
    assert replay.mrs().status == scaip.StatusNumber.WRONG_DATA and replay.mrs().reference == "R1"
    assert "already used" in replay.mrs().status_text
    assert world.count("telecare_scaip_rejected_total", reason="replayed") == 1

    again = udp(world, sip(ALARM))  # the alarm's reference again: a replay, or a unit counting from 1 again
    assert again.mrs().status == scaip.StatusNumber.OK
    assert world.count("telecare_scaip_messages_total", outcome="reused_reference") == 1
    assert len([a for a in world.alerts() if a.rule == "pendant_alarm"]) == 1  # one alert, whatever the cause


def test_unknown_and_spoofed_callers_are_refused_and_counted(world: World) -> None:
    stranger = ALARM.replace(b"26317", b"999999")
    unknown = udp(world, sip(stranger, user="999999")).mrs()
    assert unknown.status == scaip.StatusNumber.NOT_TREATED and unknown.reference == "00001883"
    spoofed = udp(world, sip(ALARM, user="999999")).mrs()  # a stranger claiming to be our unit
    assert spoofed.status == scaip.StatusNumber.WRONG_DATA and "From" in spoofed.status_text
    not_enrolled = udp(world, sip(ALARM.replace(b"26317", b"555"), user="555")).mrs()
    assert not_enrolled.status == scaip.StatusNumber.NOT_TREATED and "unknown_hub" in not_enrolled.status_text
    assert world.alerts() == []
    assert world.count("telecare_scaip_rejected_total", reason="unknown_caller") == 1
    assert world.count("telecare_scaip_rejected_total", reason="spoofed") == 1
    assert world.count("telecare_scaip_rejected_total", reason="ingest_unknown_hub") == 1


@pytest.mark.parametrize(("body", "status", "reason", "says"), [
    (b"<mrq><ref>B1</ref><cid>26317</cid>", scaip.StatusNumber.INVALID_FORMAT, "invalid_format", "body"),
    (b"<mrq><ref>B2</ref><cid>26317</cid><dty>3</dty><stc>9999</stc></mrq>", scaip.StatusNumber.WRONG_DATA,
     "wrong_data", "stc"),
    (b"<mrq><ref>B3</ref><cid>26317</cid></mrq>", scaip.StatusNumber.MANDATORY_TAG_MISSING,
     "mandatory_tag_missing", "dty"),
])
def test_bad_scaip_is_answered_with_its_status_and_field(world: World, body: bytes, status: scaip.StatusNumber,
                                                         reason: str, says: str) -> None:
    mrs = udp(world, sip(body)).mrs()
    assert mrs.status == status and mrs.status_text.startswith(says) and mrs.reference == body[10:12].decode()
    assert world.count("telecare_scaip_rejected_total", reason=reason) == 1
    assert world.alerts() == []


def test_not_sip_is_counted_and_the_listener_carries_on(world: World) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.sendto(b"\x00\xffgarbage\r\n\r\n", ("127.0.0.1", world.receiver.port))
    options = udp(world, sip(b"", method="OPTIONS", content_type="application/sdp"))  # handled after the garbage
    assert options.status == 200 and "MESSAGE" in options.headers["allow"]
    assert world.count("telecare_scaip_rejected_total", reason="malformed_sip") == 1
    assert udp(world, sip(b"v=0", method="INVITE", content_type="application/sdp")).status == 405
    assert udp(world, sip(b"hello", content_type="text/plain")).status == 415


def test_a_unit_with_a_wrong_clock_is_still_heard_and_counted(world: World) -> None:
    an_hour_off = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    assert udp(world, sip(ALARM, headers=(f"Date: {an_hour_off}",))).mrs().status == scaip.StatusNumber.OK
    [alarm] = world.alerts()
    assert abs((alarm.opened_at.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds()) < 600  # the centre's time
    assert world.count("telecare_scaip_clock_wrong_total") == 1
    with world.sessions() as session:
        event = session.scalar(select(Event).where(Event.hub_id == HUB))
        assert event is not None and 3500 < event.detail["unit_clock_offset_s"] < 3700


def test_the_centre_reads_the_receiver_from_its_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELECARE_SCAIP__PORT", "5062")
    monkeypatch.setenv("TELECARE_SCAIP__UNITS", '{"26317": "scaip-26317"}')
    settings = CentreSettings(database_url="sqlite://", jwt_secret="x" * 40, mqtt_password="a-real-password")
    assert settings.scaip == ScaipSettings(port=5062, units={UNIT: HUB})
    monkeypatch.setenv("TELECARE_SCAIP__UNITS", '{"not digits": "scaip-1"}')
    with pytest.raises(ValueError, match="1-16 digits"):
        CentreSettings(database_url="sqlite://", jwt_secret="x" * 40, mqtt_password="a-real-password")
