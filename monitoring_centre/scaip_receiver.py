"""A receiver for other makers' social alarm units speaking SCAIP (CLC/TS 50134-9, formerly
SS 91100): SCAIP XML (`telecare_protocol.scaip`) in SIP MESSAGE requests (RFC 3428) over UDP
and TCP, on one port. Off unless `TELECARE_SCAIP__*` is set (`centre_app/centre.py`).

Each unit is a pseudo-hub: its caller id (`cid`, which must also be the user of the SIP From
URI) maps to a hub id enrolled at the centre for the person (`ScaipSettings.units`). What a
unit says becomes our protocol's messages for that hub, stored through the same ingest as the
hubs' MQTT messages (`Ingest.process`, one message per batch, so an alarm is committed alone
and at once): an alarm reaches the same alarm queue, escalation and record, and a heartbeat
(`PI`, or a test transmission) is supervised like a hub's (`detection/supervision.py`: no
heartbeat for 2 x `heartbeat_interval_s` plus grace raises `hub_offline`). Events carry the
device id of the hub (the unit): ingest knows a hub's own id without enrolling its devices;
the SCAIP device type, status, device id and component, location and call-back address go
into the event's detail. The message id is derived from the unit, its reference and the SIP
transaction (`message_id`), so a retransmission is stored once.

What the unit gets back, and what is counted (`telecare_scaip_messages_total{outcome}`):

- an alarm, event or heartbeat from an enrolled unit: 200 OK with an `mrs` carrying its `ref`
  and `snu` 0; outcome `stored`, `heartbeat` or `duplicate` (already stored);
- a status we have no word for (`scaip.meaning`): `snu` 0 (received, not stored); `ignored`;
- a retransmission of a request already answered (same Call-ID, CSeq and Via branch): the
  same answer again; `retransmission`;
- a SCAIP body that does not parse, a mandatory tag missing, a code not in the tables, a body
  too long: `snu` 2, 7, 3 or 1, with `ste` naming the field; `rejected`;
- a From user that is not the `cid` (a spoofed caller): `snu` 3; `rejected`;
- a caller id that is not enrolled: `snu` 5 (not treated); `rejected`;
- a `ref` the unit already used in another transaction within `replay_window_s` (a replay, or a
  unit whose counter started again): `snu` 3, `rejected`; except a call for help, which is never
  refused: it is taken (at worst a repeat of the alarm already open) and counted `reused_reference`;
- refused by ingest (the unit's hub is not enrolled at the centre): `snu` 5; `rejected`;
- the database failing: `snu` 6 (busy: send again); `rejected`;
- a source outside `allowed_networks`: 403 Forbidden; another content type: 415; another
  method: 405 (OPTIONS: 200 OK); not a SIP request: no answer (UDP), the connection closed (TCP).

Each rejection is also counted by reason (`telecare_scaip_rejected_total{reason}`) and logged.
A unit's clock: SCAIP requests carry no time, so every message is stamped with the centre's
receive time; a SIP `Date` header more than `max_clock_skew_s` away from it is counted
(`clock_wrong`, the message still taken: an alarm is never refused for its time) and its offset
kept in the event's detail.

The SIP here is the least RFC 3261 needs to answer a MESSAGE (no library: the Python SIP
stacks on the package index are abandoned or full user agents around C libraries): the
request line, headers (compact forms too), a body framed by Content-Length (mandatory on TCP),
and a response that copies Via, From, To (with a tag of ours), Call-ID and CSeq. No
registration, no authentication (SCAIP leaves security to the transport: keep the port on the
centre's network or behind the SIP proxy and restrict `allowed_networks`), no TLS, no voice.
"""

import hashlib
import ipaddress
import logging
import socket
import socketserver
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from io import BufferedIOBase
from typing import Literal

from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, field_validator
from sqlalchemy import select

from monitoring_centre.enrolment import check_hub_id
from monitoring_centre.ingest import Inbound, Ingest
from monitoring_centre.storage import Hub, utc_now
from telecare_protocol import DeviceEvent, Heartbeat, Power, encode, scaip
from telecare_protocol.codes import ALARM_CODES, DEFAULT_PRIORITY, EventCode
from telecare_protocol.topics import topic_for

log = logging.getLogger(__name__)

NAMESPACE = uuid.UUID("5b0c1c52-2a4e-4d0f-9a49-3f3d2f7c5c11")
"""Message ids of SCAIP requests are uuid5(NAMESPACE, "scaip/{cid}/{ref}/{SIP transaction}")."""
MAX_HEADER_BYTES = 8192
MAX_MESSAGE_BYTES = MAX_HEADER_BYTES + scaip.MAX_BODY_BYTES
ANSWERS_KEPT = 1024
"""Answers remembered for retransmissions (RFC 3261 17.2.3: a retransmitted request gets the same answer)."""
REFERENCES_KEPT = 10_000
"""References remembered per unit for `replay_window_s`, at most."""
TCP_IDLE_S = 300.0
"""A TCP connection quiet this long is closed (a unit opens a new one for its next message)."""
XML_TYPES = frozenset({scaip.CONTENT_TYPE, "application/xml", "text/xml"})
"""Content types taken as SCAIP: its registered type, and the plain XML types some units send."""
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "c": "content-type", "l": "content-length",
            "m": "contact"}


class ScaipSettings(BaseModel):
    """The SCAIP receiver: where it listens, which units it takes, how it supervises them."""

    model_config = ConfigDict(use_attribute_docstrings=True)  # the docstrings describe the settings

    host: str = "127.0.0.1"
    """The address to listen on ("0.0.0.0" or "::" for every interface)."""
    port: int = Field(default=5060, ge=0, le=65535)
    """The SIP port, for UDP and TCP alike (5060 is SIP's; 0 picks a free one, for tests)."""
    transports: list[Literal["udp", "tcp"]] = Field(default=["udp", "tcp"], min_length=1)
    """Which transports to listen on, as a JSON list."""
    units: dict[str, str] = Field(default_factory=dict)
    """Each unit's caller id (`cid`) → its person's hub id, as a JSON object: {"26317": "scaip-26317"}"""
    heartbeat_interval_s: int = Field(default=600, gt=0, le=86400)
    """Seconds between a unit's heartbeats (alarm bridges use 5 or 10 min): 2 missed, plus grace, is offline"""
    allowed_networks: list[IPvAnyNetwork] = Field(default_factory=lambda: ["0.0.0.0/0", "::/0"],
                                                  validate_default=True)
    """Networks the units may send from, as a JSON list; others get 403."""
    replay_window_s: int = Field(default=86400, gt=0)
    """How long a unit's references are remembered: the same `ref` in a new transaction is refused."""
    max_clock_skew_s: float = Field(default=120.0, gt=0)
    """A SIP Date header further than this from the centre's clock is counted as `clock_wrong`."""

    @field_validator("units")
    @classmethod
    def _units(cls, value: dict[str, str]) -> dict[str, str]:
        for caller_id, hub_id in value.items():
            if not caller_id.isdigit() or len(caller_id) > 16:
                raise ValueError(f"caller id {caller_id!r}: 1-16 digits, as the unit sends it in <cid>")
            check_hub_id(hub_id)  # raises HubIdRefused (a ValueError) naming the problem
        return value


class ScaipMetrics:
    """/metrics: every request by outcome, and rejections by reason."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter("telecare_scaip_messages", "SCAIP requests, by outcome", ["outcome"],
                                registry=registry)
        self.rejected = Counter("telecare_scaip_rejected", "SCAIP requests refused, by reason", ["reason"],
                                registry=registry)
        self.clock_wrong = Counter("telecare_scaip_clock_wrong", "SCAIP requests whose SIP Date was off",
                                   registry=registry)


@dataclass
class SipRequest:
    """One SIP request as received: method, URI, headers (names lower case, compact forms expanded,
    values in order), body."""

    method: str
    uri: str
    headers: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None


class SipError(ValueError):
    """Not a SIP request we can read."""


def parse_sip(data: bytes) -> SipRequest:
    """A SIP request from its bytes (RFC 3261 section 7). Raises `SipError` naming the problem."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    if not sep:
        raise SipError("no blank line after the headers")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise SipError("the headers are not UTF-8") from None
    lines = text.replace("\r\n", "\n").split("\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] != "SIP/2.0" or not parts[0].isalpha() or not parts[0].isupper():
        raise SipError(f"not a SIP/2.0 request line: {lines[0][:80]!r}")
    request = SipRequest(method=parts[0], uri=parts[1])
    last: str | None = None
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and last is not None:  # a folded header line continues the last value
            request.headers[last][-1] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise SipError(f"not a header line: {line[:80]!r}")
        key = name.strip().lower()
        key = _COMPACT.get(key, key)
        values = [value.strip()] if key != "via" else [v.strip() for v in value.split(",") if v.strip()]
        request.headers.setdefault(key, []).extend(values)
        last = key
    length = request.header("content-length")
    if length is not None:
        if not length.isdigit():
            raise SipError(f"Content-Length {length[:20]!r} is not a number")
        if int(length) > len(body):
            raise SipError(f"the body is shorter than its Content-Length ({len(body)} < {length})")
        body = body[: int(length)]
    request.body = body
    return request


def uri_user(value: str) -> str | None:
    """The user part of the URI in a From header: "26317" in `"Unit" <sip:26317@host>;tag=1`."""
    inside = value[value.index("<") + 1: value.index(">")] if "<" in value and ">" in value else value.split(";")[0]
    scheme, colon, rest = inside.strip().partition(":")
    if not colon or scheme.lower() not in ("sip", "sips", "tel"):
        return None
    user = rest.split("@")[0] if "@" in rest else (rest if scheme.lower() == "tel" else "")
    return user.split(";")[0] or None


def message_id(caller_id: str, reference: str, transaction: str) -> uuid.UUID:
    """Our message id for a unit's request: the same unit, reference and SIP transaction (Call-ID,
    CSeq, Via branch: a retransmission) give the same id, so ingest stores it once."""
    return uuid.uuid5(NAMESPACE, f"scaip/{caller_id}/{reference}/{transaction}")


@dataclass
class _Unit:
    references: OrderedDict[str, tuple[datetime, str]] = field(default_factory=OrderedDict)
    """ref → (when it was taken, the transaction that took it)."""
    power: Power | None = None


class ScaipReceiver:
    """The SCAIP listener: SIP MESSAGE over UDP and TCP, SCAIP in, our messages into ingest.

    `ingest`: the centre's ingest (its public `process`, one message per call). `settings`: where
    to listen and which units (`ScaipSettings`). `on_alerts`: told the ids of alerts each stored
    message changed (the centre wakes its consoles and escalator). `registry`: where the counters
    go. `clock`: the centre's UTC now.

    Threads: `start()` binds the sockets (raises OSError if the port is taken) and serves UDP on
    one thread ("scaip-udp") and each TCP connection on a thread of its own; `stop()` (any
    thread) closes them. `port` is the bound port once started.
    """

    def __init__(self, ingest: Ingest, settings: ScaipSettings, *,
                 on_alerts: Callable[[set[int]], None] = lambda ids: None,
                 registry: CollectorRegistry | None = None, clock: Callable[[], datetime] = utc_now) -> None:
        self.ingest = ingest
        self.settings = settings
        self.on_alerts = on_alerts
        self.metrics = ScaipMetrics(registry or CollectorRegistry())
        self.clock = clock
        self.port = settings.port
        self._lock = threading.Lock()
        self._ingesting = threading.Lock()
        """One SCAIP message into ingest at a time (ingest is written for one caller per hub: the MQTT
        receiver's thread takes the hubs' messages, this one the units', never the same hub)."""
        self._answers: OrderedDict[tuple[str, str, str], bytes] = OrderedDict()
        self._units: dict[str, _Unit] = {}
        self._servers: list[socketserver.UDPServer | socketserver.TCPServer] = []
        self._threads: list[threading.Thread] = []

    # --- sockets --------------------------------------------------------------------------

    def start(self) -> None:
        """Bind and serve (UDP and TCP on the same port number)."""
        family = socket.AF_INET6 if ":" in self.settings.host else socket.AF_INET
        receiver = self
        port = self.settings.port

        class Udp(socketserver.UDPServer):
            address_family = family
            max_packet_size = MAX_MESSAGE_BYTES

        class Tcp(socketserver.ThreadingTCPServer):
            address_family = family
            daemon_threads = True
            allow_reuse_address = True

        class UdpHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                answer = receiver.answer(data, (self.client_address[0], self.client_address[1]), "UDP")
                if answer is not None:
                    sock.sendto(answer, self.client_address)

        class TcpHandler(socketserver.StreamRequestHandler):
            timeout = TCP_IDLE_S

            def handle(self) -> None:
                receiver._serve_stream(self.rfile, self.wfile, (self.client_address[0], self.client_address[1]))

        names: list[str] = []
        # Port 0 (tests): the system picks the UDP port, and TCP must get the same number; another
        # program may hold it for TCP, so pick again (a fixed port is tried once and fails loudly).
        for attempt in range(1 if self.settings.port else 20):
            self._servers, names, port = [], [], self.settings.port
            try:
                if "udp" in self.settings.transports:
                    udp = Udp((self.settings.host, port), UdpHandler)
                    port = int(udp.server_address[1])
                    self._servers.append(udp)
                    names.append("scaip-udp")
                if "tcp" in self.settings.transports:
                    tcp = Tcp((self.settings.host, port), TcpHandler)
                    port = int(tcp.server_address[1])
                    self._servers.append(tcp)
                    names.append("scaip-tcp")
                break
            except OSError:
                for server in self._servers:
                    server.server_close()
                if self.settings.port or attempt == 19:
                    raise
        self.port = port
        for server, name in zip(self._servers, names, strict=True):
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name=name,
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("SCAIP receiver on %s port %d (%s), %d units", self.settings.host, port,
                 "/".join(self.settings.transports), len(self.settings.units))

    def stop(self) -> None:
        """Stop serving and close the sockets (a message being handled finishes)."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        self._servers.clear()
        self._threads.clear()

    def _serve_stream(self, rfile: BufferedIOBase, wfile: BufferedIOBase, source: tuple[str, int]) -> None:
        """Requests one after another on a TCP connection, framed by Content-Length."""
        while True:
            try:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = rfile.readline(MAX_HEADER_BYTES + 1)
                    if not line:
                        return  # the unit closed the connection
                    if line in (b"\r\n", b"\n") and not head:
                        continue  # a keep-alive (RFC 5626) between messages
                    head += line if line.endswith(b"\r\n") else line.rstrip(b"\n") + b"\r\n"
                    if len(head) > MAX_HEADER_BYTES:
                        self._reject("too_large", source[0], "TCP headers longer than the limit")
                        return
                length = _content_length(head)
                if length is None or length > scaip.MAX_BODY_BYTES:
                    self._reject("malformed_sip", source[0], "TCP request without a usable Content-Length")
                    return
                body = rfile.read(length)
            except (OSError, ValueError):
                return  # the connection failed or timed out idle
            answer = self.answer(head + body, source, "TCP")
            if answer is None:
                return
            try:
                wfile.write(answer)
            except OSError:
                return

    # --- one request -----------------------------------------------------------------------

    def answer(self, data: bytes, source: tuple[str, int], transport: str) -> bytes | None:
        """The SIP response to one request's bytes from `source` (address, port), None when there is
        nothing to answer. Never raises."""
        try:
            request = parse_sip(data)
        except SipError as e:
            self._reject("malformed_sip", source[0], str(e))
            return None
        if not request.headers.get("via") or not all(
                request.header(h) for h in ("from", "to", "call-id", "cseq")):
            self._reject("malformed_sip", source[0], "a request without Via, From, To, Call-ID or CSeq")
            return None
        try:
            return self._answer(request, source, transport)
        except Exception:  # a bug must cost one message an answer, never the listener
            log.exception("SCAIP: failed on a request from %s", source[0])
            self._reject("internal_error", source[0], "see the log")
            return _response(request, source, 500, "Server Internal Error")

    def _answer(self, request: SipRequest, source: tuple[str, int], transport: str) -> bytes | None:
        if request.method == "ACK":
            return None
        if not self._allowed(source[0]):
            self._reject("network", source[0], "not in TELECARE_SCAIP__ALLOWED_NETWORKS")
            return _response(request, source, 403, "Forbidden")
        if request.method == "OPTIONS":
            return _response(request, source, 200, "OK", extra=[("Allow", "MESSAGE, OPTIONS")])
        if request.method != "MESSAGE":
            self._reject("method", source[0], f"{request.method} is not MESSAGE")
            return _response(request, source, 405, "Method Not Allowed", extra=[("Allow", "MESSAGE, OPTIONS")])
        content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if content_type not in XML_TYPES:
            self._reject("content_type", source[0], f"content type {content_type[:60]!r}")
            return _response(request, source, 415, "Unsupported Media Type", extra=[("Accept", scaip.CONTENT_TYPE)])
        transaction = (request.header("call-id") or "", request.header("cseq") or "",
                       _branch(request.headers["via"][0]))
        with self._lock:
            cached = self._answers.get(transaction)
        if cached is not None:
            self.metrics.messages.labels("retransmission").inc()
            return cached
        reference, status, text = self._take(request, source[0], transaction)
        reply = scaip.build_response(scaip.Response(reference=reference or "", status=status, status_text=text))
        answer = _response(request, source, 200, "OK", body=reply)
        with self._lock:
            self._answers[transaction] = answer
            while len(self._answers) > ANSWERS_KEPT:
                self._answers.popitem(last=False)
        return answer

    def _take(self, request: SipRequest, source: str, transaction: tuple[str, str, str]) -> tuple[
            str | None, scaip.StatusNumber, str]:
        """Check and store one SCAIP request: (its reference, if readable; status number, status
        text) for the `mrs`."""
        try:
            mrq = scaip.parse_request(request.body)
        except scaip.ScaipError as e:
            self._reject(e.status.name.lower(), source, str(e))
            return e.reference, e.status, f"{e.field}: {e.detail}"
        ref = mrq.reference
        sender = uri_user(request.header("from") or "")
        if sender != mrq.caller_id:
            self._reject("spoofed", source, f"From user {sender!r} is not cid {mrq.caller_id!r}")
            return ref, scaip.StatusNumber.WRONG_DATA, "cid: not the caller in the SIP From header"
        hub_id = self.settings.units.get(mrq.caller_id)
        if hub_id is None:
            self._reject("unknown_caller", source, f"caller id {mrq.caller_id!r} is not enrolled")
            return ref, scaip.StatusNumber.NOT_TREATED, "cid: not a unit of this centre"
        now = self.clock()
        key = "/".join(transaction)
        with self._lock:
            unit = self._units.setdefault(mrq.caller_id, _Unit())
            _forget(unit, now - timedelta(seconds=self.settings.replay_window_s))
            seen = unit.references.get(mrq.reference)
        if seen is not None and seen[1] != key:
            if scaip.meaning(mrq).code not in ALARM_CODES:
                self._reject("replayed", source, f"unit {mrq.caller_id} reused reference {mrq.reference!r}")
                return ref, scaip.StatusNumber.WRONG_DATA, "ref: this reference was already used"
            # a call for help is never refused: at worst it repeats the alarm already open
            self.metrics.messages.labels("reused_reference").inc()
            log.warning("SCAIP unit %s reused reference %r for a call for help: taken", mrq.caller_id, ref)
        offset = self._clock_offset(request, now)
        status, text = self._store(mrq, hub_id, now, offset, key)
        if status == scaip.StatusNumber.OK:
            with self._lock:
                unit.references[mrq.reference] = (now, key)
                while len(unit.references) > REFERENCES_KEPT:
                    unit.references.popitem(last=False)
        return ref, status, text

    def _store(self, mrq: scaip.Request, hub_id: str, now: datetime, offset: float | None,
               transaction: str) -> tuple[scaip.StatusNumber, str]:
        meaning = scaip.meaning(mrq)
        message_uuid = message_id(mrq.caller_id, mrq.reference, transaction)
        message: DeviceEvent | Heartbeat
        if meaning.heartbeat:
            message = Heartbeat(id=message_uuid, hub_id=hub_id, device_id=hub_id,
                                source_ts=now, hub_ts=now, power=self._power(hub_id, mrq.caller_id),
                                uptime_s=0, interval_s=self.settings.heartbeat_interval_s)
            topic, lane, outcome = topic_for(hub_id, "heartbeat"), "data", "heartbeat"
        elif meaning.code is not None and meaning.device_type is not None:
            detail = _detail(mrq, offset)
            message = DeviceEvent(id=message_uuid, hub_id=hub_id, device_id=hub_id,
                                  device_type=meaning.device_type, code=meaning.code,
                                  priority=int(DEFAULT_PRIORITY[meaning.code]), source_ts=now, hub_ts=now,
                                  detail=detail)
            alarm = meaning.code in ALARM_CODES
            topic, lane, outcome = topic_for(hub_id, "event", meaning.code), "alarms" if alarm else "data", "stored"
            self._note_power(mrq.caller_id, meaning.code)
        else:
            log.info("SCAIP unit %s (%s): %s", mrq.caller_id, hub_id, meaning.why_not)
            self.metrics.messages.labels("ignored").inc()
            return scaip.StatusNumber.OK, ""
        try:
            with self._ingesting:
                result = self.ingest.process([Inbound(topic=topic, payload=encode(message), lane=lane)])
        except Exception:  # the database failed: nothing stored, the unit should send again
            log.exception("SCAIP: could not store a message of unit %s", mrq.caller_id)
            self._reject("store_failed", hub_id, "the database failed")
            return scaip.StatusNumber.BUSY, "the centre could not store it: send again"
        receipt = result.receipts[0] if result.receipts else None
        if receipt is None or receipt.refused is not None:
            reason = receipt.refused if receipt is not None else "no receipt"
            self._reject(f"ingest_{reason}", hub_id, f"ingest refused it: {reason}")
            return scaip.StatusNumber.NOT_TREATED, f"not taken by the centre ({reason})"
        if result.duplicates:
            outcome = "duplicate"
        self.metrics.messages.labels(outcome).inc()
        if result.changed_alerts:
            self.on_alerts(result.changed_alerts)
        return scaip.StatusNumber.OK, ""

    # --- helpers -------------------------------------------------------------------------

    def _reject(self, reason: str, source: str, detail: str) -> None:
        self.metrics.messages.labels("rejected").inc()
        self.metrics.rejected.labels(reason).inc()
        log.warning("SCAIP request from %s refused (%s): %s", source, reason, detail)

    def _allowed(self, source: str) -> bool:
        try:
            address = ipaddress.ip_address(source.partition("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address.version == network.version and address in network
                   for network in self.settings.allowed_networks)

    def _clock_offset(self, request: SipRequest, now: datetime) -> float | None:
        """The unit's clock minus ours, in seconds, from its SIP Date header; None without one."""
        date = request.header("date")
        if date is None:
            return None
        try:
            sent = parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError):
            return None
        if sent.tzinfo is None:
            return None
        offset = (sent - now).total_seconds()
        if abs(offset) > self.settings.max_clock_skew_s:
            self.metrics.clock_wrong.inc()
            log.warning("SCAIP request with a SIP Date %.0f s from the centre's clock: stamped with the centre's",
                        offset)
        return offset

    def _power(self, hub_id: str, caller_id: str) -> Power:
        """What a heartbeat says of the unit's power: what its last power event said (a SCAIP
        heartbeat carries none), read back from the hub's row after a restart; mains by default."""
        with self._lock:
            known = self._units.setdefault(caller_id, _Unit()).power
        if known is not None:
            return known
        with self.ingest.sessions() as session:
            stored = session.scalar(select(Hub.power).where(Hub.id == hub_id))
        return Power.BATTERY if stored == Power.BATTERY else Power.MAINS

    def _note_power(self, caller_id: str, code: EventCode) -> None:
        if code in (EventCode.POWER_FAILURE, EventCode.POWER_RESTORED):
            with self._lock:
                self._units.setdefault(caller_id, _Unit()).power = (
                    Power.BATTERY if code == EventCode.POWER_FAILURE else Power.MAINS)


def _forget(unit: _Unit, before: datetime) -> None:
    while unit.references:
        ref, (at, _key) = next(iter(unit.references.items()))
        if at >= before:
            return
        del unit.references[ref]


def _detail(mrq: scaip.Request, offset: float | None) -> dict[str, str | int | float | bool]:
    """What the unit said, for the operators: SCAIP names and the elements that locate it."""
    detail: dict[str, str | int | float | bool] = {
        "source": "scaip", "scaip_caller_id": mrq.caller_id, "scaip_reference": mrq.reference,
        "scaip_device_type": scaip.device_type_name(mrq.device_type),
        "scaip_status": scaip.status_name(mrq.status_code), "scaip_message_type": mrq.message_type.value,
    }
    if mrq.priority is not None:
        detail["scaip_priority"] = mrq.priority
    for tag, name in (("did", "scaip_device_id"), ("dco", "scaip_device_component"), ("lco", "scaip_location_code"),
                      ("lte", "scaip_location"), ("stt", "scaip_status_text"), ("crd", "scaip_call_back")):
        value = mrq.text(tag)
        if value:
            detail[name] = value
    if offset is not None:
        detail["unit_clock_offset_s"] = round(offset, 1)
    return detail


def _branch(via: str) -> str:
    for parameter in via.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "branch":
            return value.strip()
    return ""


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() in (b"content-length", b"l"):
            text = value.strip()
            return int(text) if text.isdigit() else None
    return None


def _response(request: SipRequest, source: tuple[str, int], code: int, reason: str, *, body: bytes = b"",
              extra: list[tuple[str, str]] | None = None) -> bytes:
    """A SIP response to `request` (RFC 3261 8.2.6): its Vias (the top one with `received`, and
    `rport` filled in when the request asks for it, RFC 3581), From, To with our tag, Call-ID,
    CSeq; then `extra` and the body. It goes back to where the request came from."""
    vias = list(request.headers.get("via", []))
    if vias:
        top = vias[0]
        parameters = [p.strip().lower() for p in top.split(";")[1:]]
        if "rport" in parameters:
            top = ";".join(f"rport={source[1]}" if p.strip().lower() == "rport" else p for p in top.split(";"))
        if not any(p.startswith("received=") for p in parameters):
            top += f";received={source[0]}"
        vias[0] = top
    to = request.header("to") or ""
    if ";tag=" not in to.lower():
        seed = f"{request.header('call-id')}/{request.header('cseq')}".encode()
        to += ";tag=" + hashlib.sha256(seed).hexdigest()[:10]
    lines = [f"SIP/2.0 {code} {reason}", *(f"Via: {via}" for via in vias), f"From: {request.header('from')}",
             f"To: {to}", f"Call-ID: {request.header('call-id')}", f"CSeq: {request.header('cseq')}",
             "Server: telecare-centre", *(f"{name}: {value}" for name, value in extra or [])]
    if body:
        lines.append(f"Content-Type: {scaip.CONTENT_TYPE}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
