"""The centre's MQTT link: receive, hand to ingest in batches, acknowledge after commit.

paho-mqtt 2.x with `manual_ack=True`: the broker's PUBACK for a message is sent only
after its batch is committed, so a centre crash before the commit means the broker
redelivers it (and ingest drops the copy by message id). The session is persistent
(stable client id, no clean start) so messages published while the centre is down wait
at the broker; stopping keeps them (no unsubscribe, no session expiry 0). After each
commit the hubs get end-to-end acks for every message of the batch (`monitoring_centre.acks`),
stored, duplicate and refused alike. The hand-over queue is bounded: a slow database blocks paho's network
thread, which stops reading the socket. That is backpressure, never loss (aiomqtt's
"queue is full, discarding" is the failure we avoid).

A message is acknowledged only on the connection it arrived on. After a reconnect the
broker redelivers what was not acknowledged, under the same packet id; acknowledging the
old copy as well could, once the broker has reused that id, acknowledge a newer message
that is not stored yet. The redelivered copy is stored (a duplicate, dropped by id) and
acknowledged instead.

Alarms jump the queue, at the broker and here. MQTT delivers a session's messages in
order, so one connection would put a help-button press behind every reading (or door
event) the broker has queued for us when the centre falls behind. The receiver therefore
keeps three persistent sessions:

- `<client_id>` subscribes to everything, `telecare/v1/hubs/+/+` (so input on a topic no
  protocol uses still reaches ingest and is dead-lettered): the bulk lane (readings, heartbeats);
- `<client_id>-alarms` to `telecare/v1/hubs/+/events` and `…/status`: the event lane, and the
  alarm lane for an urgent event (priority 1-3) from a hub of the earlier topic layout;
- `<client_id>-alarm-topic` to `telecare/v1/hubs/+/alarms` only (`ALARM_SUBSCRIPTION`): the
  alarm lane.

The events, status and alarms copies that reach the first session are acknowledged there
unstored: the other sessions hold their own copies at the broker until those are stored.
A call for help on the alarms topic (`telecare_protocol.codes.ALARM_CODES`) therefore waits
at the broker behind no other event, and here it goes into the alarm lane; a batch that
finds any alarm takes the alarm lane alone, committed before any bulk batch, so a press waits
behind at most the one batch already being stored. (The `-alarms` session keeps its
client id, and its persistent session, from before the alarms topic existed.) The price: an
event can be stored before readings, and an alarm before other events, the same hub sent
earlier. Nothing depends on that order (the detection engine orders by the device's
`source_ts`), and each message is still acknowledged, on the connection it came on, only
after its commit.

`max_batch` bounds a batch (one transaction): larger batches amortise the commit (an
fsync with SQLite's synchronous=FULL) over more messages, smaller ones bound how long an
alarm that arrives during a batch waits for it. `bench/ingest.py` measures both.
"""

import logging
import queue
import re
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.client import PUBACK
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import CollectorRegistry, Gauge

from monitoring_centre.acks import acks_for
from monitoring_centre.ingest import Inbound, Ingest, Receipt
from telecare_protocol.codes import Priority
from telecare_protocol.topics import ALARM_SUBSCRIPTION, ALARMS, KINDS, ROOT, STATUS, SUBSCRIPTION

EVENTS_SUFFIX = "/" + KINDS["event"]
ALARMS_SUFFIX = "/" + ALARMS
URGENT = int(Priority.URGENT)
PRIORITY = re.compile(rb'"priority"\s*:\s*([0-9])\b')
"""Read without parsing the JSON: the lane is only a hint, ingest validates everything."""
STATUS_SUFFIX = "/" + STATUS

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
"""How long the broker keeps the only centre's sessions while it is down: a week (what hubs publish meanwhile waits)."""
MAX_BATCH = 500
RETRY_DELAY_S = 1.0


ALARM_SUBSCRIPTIONS = (f"{ROOT}/+/{KINDS['event']}", f"{ROOT}/+/{STATUS}")
"""The event session's topics (its client id, `-alarms`, predates the alarms topic)."""
DATA, EVENTS, ALARM_TOPIC = "data", "alarms", "alarm_topic"
"""The sessions' names, as `Inbound.lane` carries them (`EVENTS` keeps its name from before)."""
SESSION_SUFFIXES = {DATA: "", EVENTS: "-alarms", ALARM_TOPIC: "-alarm-topic"}
"""Each session's client id: the centre's client id and this suffix."""
SUBSCRIPTIONS = {DATA: (SUBSCRIPTION,), EVENTS: ALARM_SUBSCRIPTIONS, ALARM_TOPIC: (ALARM_SUBSCRIPTION,)}
"""What each session subscribes to (QoS 1)."""
SHARE_GROUP = "telecare-centre"
"""With several workers, the bulk and event lanes' subscriptions are MQTT 5 shared subscriptions in a
share group of their own, `$share/telecare-centre-<lane>/<filter>` (`shared`): the broker gives each
message of such a lane to one of the workers' sessions of that lane."""
SHARED_LANES = (DATA, EVENTS)
"""The lanes shared between workers. The alarms topic is not: every worker's alarm-topic session takes
every call for help, the first to commit stores it and the others drop their copies by its id (each
acknowledges it to the hub; a second ack changes nothing there). So a call for help is never given to a
worker that has just died, where it would wait for that worker's restart, its session's expiry or the
hub's resend; calls for help are few, so storing each attempt twice costs little."""


def shared(lane: str, topics: tuple[str, ...]) -> tuple[str, ...]:
    """`topics` as shared subscriptions of `lane`'s share group (see `SHARE_GROUP`)."""
    return tuple(f"$share/{SHARE_GROUP}-{lane}/{topic}" for topic in topics)


def is_alarm_topic(topic: str) -> bool:
    """Events, alarms and hub status: a session of their own carries each (see the module docstring)."""
    return topic.endswith(EVENTS_SUFFIX) or topic.endswith(STATUS_SUFFIX) or topic.endswith(ALARMS_SUFFIX)


def is_urgent(payload: bytes) -> bool:
    """An event of SCAIP priority 1-3 (help button, fall): it takes the first lane."""
    match = PRIORITY.search(payload)
    return match is not None and int(match.group(1)) <= URGENT


_PUBACK = struct.Struct("!BBH")
"""A PUBACK with no reason code (success): command, remaining length 2, packet id (MQTT 3.1.1 and 5)."""


class BufferedClient(mqtt.Client):
    """paho's client, reading its socket up to `READ_SIZE` bytes at a time, and acknowledging a batch
    in one write (`ack_all`).

    paho reads each incoming packet in small pieces (its command byte, each byte of its length, then
    the rest), one system call each, after a `select()` per packet: for a stream of small PUBLISH
    packets that was about 40 % of a subscriber's CPU (a bare subscriber with manual acks, 30,000
    readings: 0.17-0.18 CPU s per 1,000 messages, 0.10 with these reads).
    Here one `recv` fills a buffer the pieces are then taken from, and `loop_read` goes on reading
    packets while the buffer holds any, so no byte waits in it for a `select()` that the socket
    would not wake. Nothing else changes: the same packets in the same order, through paho's own
    parsing and callbacks (manual acknowledgement included). Bytes left from a closed connection
    are never read on the next one (the buffer belongs to one socket)."""

    READ_SIZE = 65536

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_buffer = b""
        self._read_at = 0
        self._read_socket: object = None

    def _buffered(self) -> bool:
        return self._read_socket is self._sock and self._read_at < len(self._read_buffer)

    def _sock_recv(self, bufsize: int) -> bytes:
        if not self._buffered():
            data = super()._sock_recv(self.READ_SIZE)  # raises as paho's would (BlockingIOError: nothing yet)
            if len(data) <= bufsize:
                return data
            self._read_buffer, self._read_at, self._read_socket = data, 0, self._sock
        start = self._read_at
        self._read_at = min(start + bufsize, len(self._read_buffer))
        return self._read_buffer[start:self._read_at]

    def ack_all(self, mids: Sequence[int]) -> MQTTErrorCode:
        """PUBACK each QoS 1 message of `mids` (with `manual_ack`), in this order, as `ack` would one by one,
        but queued as one write: `ack` wakes the network thread and sends a 4-byte packet per message."""
        if not mids or not self._manual_ack:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        packets = b"".join([_PUBACK.pack(PUBACK, 2, mid) for mid in mids])  # as paho's `_send_puback`
        return self._packet_queue(PUBACK, packets, mids[-1], 1)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._sock is not None and self._buffered():
            rc = super().loop_read(max_packets)
        return rc


@dataclass(frozen=True)
class BrokerLink:
    """The centre's link to the broker as `/health` reports it (`Receiver.broker`)."""

    connected: bool
    """All three sessions are connected."""
    since: datetime
    """When `connected` last changed (UTC); the receiver's creation if it never has."""
    host: str
    port: int


class _Link:
    """One MQTT session to one broker, and how many times it has connected."""

    def __init__(self, name: str, client: mqtt.Client, subscriptions: tuple[str, ...], broker: int = 0,
                 address: tuple[str, int] = ("", 0)) -> None:
        self.name = name
        self.broker = broker
        """Which of the receiver's brokers (an index into `Receiver.brokers`)."""
        self.host, self.port = address
        self.client = client
        self.subscriptions = subscriptions
        self.generation = 0
        self.connected = threading.Event()


class Receiver:
    """MQTT in: the centre's persistent sessions at the broker, feeding `Ingest` in batches.

    `ingest`: stores each batch (one transaction). `host`, `port`, `username`, `password`: the broker and
    the centre's account; `other_brokers`: more brokers of the same centre, (host, port) each, read
    the same way (three sessions on each) so that a hub failing over to one is still heard
    (`hub_agent.uplink`); a message is PUBACKed on the session it came by, and the end-to-end acks
    go out on every broker, so a hub gets its ack on whichever broker it is on now; `client_id`: the
    stem of the sessions' client ids (one per session: all
    topics, events and status, alarms). `mqtt_v5`: False only for the demo's embedded broker.
    `shared_subscriptions`: subscribe the bulk and event lanes through MQTT 5 shared subscriptions
    (`shared`; the alarms topic stays unshared: `SHARED_LANES`), one of several
    workers, each with a `client_id` of its own (docs/operating.md, "Several workers").
    `session_expiry_s`: how long the broker keeps the sessions while this centre is away (MQTT 5
    Session Expiry Interval): a week for the only centre; a worker of several sets it short
    (`TELECARE_WORKER_SESSION_EXPIRY_S`), so that a worker that never comes back stops taking its
    turn of the shared stream (the hubs resend what its session held: they keep every message
    until the centre's ack).
    `queue_size`: messages held in memory before the network threads wait (backpressure, not loss);
    `max_batch`: messages per transaction. `on_alerts`: told the ids of alerts each commit changed.
    `registry`: where its gauges go.

    Threads: paho's network thread per session calls `on_message` (queue only, manual ack); one
    ingest thread takes batches, alarm lane first, commits, then PUBACKs each message on the
    connection it came on and publishes the centre's acks to the hubs. `start()` / `stop()` from the
    owner's thread; `stop()` keeps every session at the broker (nothing published meanwhile is lost).
    """

    def __init__(self, ingest: Ingest, *, host: str, port: int, username: str, password: str, client_id: str,
                 other_brokers: Sequence[tuple[str, int]] = (), mqtt_v5: bool = True,
                 shared_subscriptions: bool = False, session_expiry_s: int = SESSION_EXPIRY_S,
                 queue_size: int = 1000,
                 max_batch: int = MAX_BATCH,
                 on_alerts: Callable[[set[int]], None] = lambda ids: None,
                 registry: CollectorRegistry | None = None) -> None:
        self.ingest = ingest
        self.on_alerts = on_alerts
        self.host, self.port = host, port
        self.brokers: tuple[tuple[str, int], ...] = ((host, port), *other_brokers)
        self.max_batch = max_batch
        self.connected = threading.Event()
        """Set while all three sessions on every broker are connected."""
        self._connected_since = datetime.now(UTC)
        self._since_lock = threading.Lock()
        self._queue: queue.Queue[Inbound] = queue.Queue(maxsize=queue_size)
        self._alarms: queue.Queue[Inbound] = queue.Queue(maxsize=queue_size)
        self._events: queue.Queue[Inbound] = queue.Queue(maxsize=queue_size)
        self._arrived = threading.Condition()
        self._stopping = threading.Event()
        self._link_lock = threading.Lock()
        self._worker = threading.Thread(target=self._work, name="centre-ingest", daemon=True)
        self._mqtt_v5 = mqtt_v5
        self._session_expiry_s = session_expiry_s
        self._links = {(index, name): _Link(name, self._client(client_id + suffix, username, password),
                                            shared(name, SUBSCRIPTIONS[name])
                                            if shared_subscriptions and name in SHARED_LANES
                                            else SUBSCRIPTIONS[name], index, address)
                       for index, address in enumerate(self.brokers) for name, suffix in SESSION_SUFFIXES.items()}
        for link in self._links.values():
            link.client.on_connect = self._on_connect(link)
            link.client.on_connect_fail = self._on_connect_fail(link)
            link.client.on_disconnect = self._on_disconnect(link)
            link.client.on_message = self._on_message(link)
        self.client = self._links[0, DATA].client
        if registry is not None:
            Gauge("telecare_broker_connected", "1 while all of the centre's broker sessions are connected",
                  registry=registry).set_function(lambda: float(self.connected.is_set()))
            depth = Gauge("telecare_receiver_queue_depth", "Messages received, not yet stored", ["lane"],
                          registry=registry)
            depth.labels("alarm").set_function(lambda: float(self._alarms.qsize()))
            depth.labels("event").set_function(lambda: float(self._events.qsize()))
            depth.labels("normal").set_function(lambda: float(self._queue.qsize()))

    def _client(self, client_id: str, username: str, password: str) -> mqtt.Client:
        protocol = mqtt.MQTTv5 if self._mqtt_v5 else mqtt.MQTTv311
        client = BufferedClient(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                                clean_session=None if self._mqtt_v5 else False, manual_ack=True)
        client.username_pw_set(username, password)
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        return client

    @property
    def queue_depth(self) -> int:
        return self._alarms.qsize() + self._events.qsize() + self._queue.qsize()

    def start(self) -> None:
        self._worker.start()
        for link in self._links.values():
            if self._mqtt_v5:
                properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                properties.SessionExpiryInterval = self._session_expiry_s
                link.client.connect_async(link.host, link.port, keepalive=30, clean_start=False,
                                          properties=properties)
            else:
                link.client.connect_async(link.host, link.port, keepalive=30)
            link.client.loop_start()

    def stop(self) -> None:
        """Stop taking messages, finish storing what was received, then disconnect, keeping every session.

        Messages arriving from now on are left unacknowledged (the broker redelivers them to the next
        centre); the worker drains the queue first, so its PUBACKs and acks still reach the broker. The
        subscriptions stay, and the DISCONNECT carries no session expiry (the CONNECT's week stands):
        unsubscribing, or ending the session, would make the broker discard what hubs publish while
        the centre is down, after the hubs had their PUBACK."""
        self._stopping.set()
        self._worker.join(timeout=30)
        for link in self._links.values():
            link.client.disconnect()
            link.client.loop_stop()

    def _on_connect(self, link: _Link) -> Callable[..., None]:
        def on_connect(client: mqtt.Client, _userdata: object, _flags: object, reason: object,
                       _properties: object) -> None:
            if getattr(reason, "is_failure", False):
                log.error("broker refused the centre's %s session: %s", link.name, reason)
                return
            with self._link_lock:
                link.generation += 1
            client.subscribe([(topic, 1) for topic in link.subscriptions])
            link.connected.set()
            if all(other.connected.is_set() for other in self._links.values()):
                self._set_connected(True)
            log.info("centre's %s session connected to the broker at %s:%s", link.name, link.host, link.port)
        return on_connect

    @property
    def broker(self) -> BrokerLink:
        """Read-only: whether the centre is connected to the broker, and since when."""
        return BrokerLink(self.connected.is_set(), self._connected_since, self.host, self.port)

    def _set_connected(self, connected: bool) -> None:
        with self._since_lock:
            if connected != self.connected.is_set():
                self._connected_since = datetime.now(UTC)
            if connected:
                self.connected.set()
            else:
                self.connected.clear()

    def _on_connect_fail(self, link: _Link) -> Callable[[mqtt.Client, object], None]:
        def on_connect_fail(_client: mqtt.Client, _userdata: object) -> None:
            if not self._stopping.is_set():  # paho retries, waiting 1 s doubling to 10 s
                log.error("centre's %s session cannot reach the broker at %s:%s; retrying", link.name, link.host,
                          link.port)
        return on_connect_fail

    def _on_disconnect(self, link: _Link) -> Callable[..., None]:
        def on_disconnect(_client: mqtt.Client, _userdata: object, _flags: object, reason: object,
                          _properties: object) -> None:
            link.connected.clear()
            self._set_connected(False)
            if not self._stopping.is_set():
                log.warning("centre's %s session lost the broker (%s); reconnecting", link.name, reason)
        return on_disconnect

    def _on_message(self, link: _Link) -> Callable[[mqtt.Client, object, mqtt.MQTTMessage], None]:
        def on_message(client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
            if self._stopping.is_set():
                return  # stopping: left unacknowledged in the session, redelivered after the restart
            if link.name == DATA and is_alarm_topic(message.topic):
                if message.qos > 0:
                    client.ack(message.mid, message.qos)  # the alarm session stores its own copy
                return
            inbound = Inbound(topic=message.topic, payload=bytes(message.payload), mid=message.mid, qos=message.qos,
                              link=link.generation, lane=link.name, broker=link.broker)
            lane = self._queue
            if link.name == ALARM_TOPIC:
                lane = self._alarms  # ingest refuses anything but a call for help here (`wrong_topic`)
            elif link.name == EVENTS:
                lane = self._alarms if is_urgent(inbound.payload) else self._events
            # Blocks while the lane is full: paho stops reading this session, the broker holds the rest.
            lane.put(inbound)
            with self._arrived:
                self._arrived.notify()
        return on_message

    def _work(self) -> None:
        lanes = (self._alarms, self._events, self._queue)
        while not (self._stopping.is_set() and self.queue_depth == 0):
            with self._arrived:
                if self.queue_depth == 0:
                    self._arrived.wait(timeout=0.2)
            batch: list[Inbound] = []
            for lane in lanes:
                while len(batch) < self.max_batch:
                    try:
                        batch.append(lane.get_nowait())
                    except queue.Empty:
                        break
                if batch and lane is self._alarms:
                    break  # alarms alone: a small batch, committed at once
            if batch:
                self._store_then_ack(batch)

    def _acknowledge_to_hubs(self, receipts: list[Receipt]) -> None:
        """End-to-end acks (QoS 1) for a committed batch, on each broker's alarm session, whose outgoing
        traffic is light: on every broker, so a hub that has just failed over hears it where it is now.
        An ack lost on the way costs only a resend from the hub, acknowledged again."""
        acks = acks_for(receipts, self.ingest.clock())
        for index in range(len(self.brokers)):
            client = self._links[index, EVENTS].client
            for ack in acks:
                info = client.publish(ack.topic, ack.payload, qos=1)
                if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    log.warning("could not publish an ack for %d messages on %s: %s", ack.entries, ack.topic,
                                mqtt.error_string(info.rc))

    def _store_then_ack(self, batch: list[Inbound]) -> None:
        while True:
            try:
                outcome = self.ingest.process(batch)
                break
            except Exception:
                log.exception("could not store a batch of %d messages; nothing acknowledged", len(batch))
                if self._stopping.is_set():
                    return  # unacknowledged: the broker redelivers them to the next centre
                time.sleep(RETRY_DELAY_S)
        with self._link_lock:
            pubacks: dict[tuple[int, str], list[int]] = {}
            for inbound in batch:
                link = self._links[inbound.broker, inbound.lane]
                if inbound.qos > 0 and inbound.link == link.generation:
                    if inbound.qos == 1 and isinstance(link.client, BufferedClient):
                        pubacks.setdefault((inbound.broker, inbound.lane), []).append(inbound.mid)
                    else:
                        link.client.ack(inbound.mid, inbound.qos)
            for key, mids in pubacks.items():  # each link's PUBACKs in arrival order, in one write
                client = self._links[key].client
                assert isinstance(client, BufferedClient)
                client.ack_all(mids)
        self._acknowledge_to_hubs(outcome.receipts)
        if outcome.changed_alerts:
            self.on_alerts(outcome.changed_alerts)
