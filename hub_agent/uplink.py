"""The hub's MQTT link to the centre, sending from the durable outbox.

`send` commits the message to the outbox (`hub_agent.outbox`) and returns: that commit
is the durability point. A sender thread takes batches from the outbox in its sending
order (alarms first) while the broker is connected, keeps at most `window` messages
waiting for the broker's PUBACK, and deletes a row only when the centre's end-to-end ack
(`telecare_protocol.Ack`, on the hub's own topic `telecare/v1/acks/<hub id>`) names it:
a PUBACK says only that the broker has the message, and a broker can still lose it.

Topics (`telecare_protocol.topics.topic_for`): a call for help (`codes.ALARM_CODES`: a help
button, a pull cord, a fall) goes on `telecare/v1/hubs/<hub id>/alarms`, which the centre reads
on a session of its own, so it never waits at the broker behind other events; every other
message goes on its type's topic. The outbox's alarm lane already sends alarms first.

Per-hub credentials (the username is the hub id, so the broker's ACL lets it publish only
under its own topics), MQTT 5 (3.1.1 for the demo's embedded broker), QoS 1, a persistent
session (same client id, no clean start, a week's session expiry) and a last will saying
"offline", so the centre knows when the home stops being monitored. The status and the will
are never retained: the centre's broker keeps no retained messages (`retain_available false`
refuses a retained will at CONNECT), and the centre's persistent sessions get the will even
when it is published while the centre is down.

Resending, always with the same bytes (so the same message id; the centre deduplicates and
acknowledges the copy): after a reconnect, every message the centre has not acknowledged
(paho also resends what had no PUBACK); after a restart, everything still in the outbox;
and, while the link is up, an alarm or other event whose ack is overdue, backing off
(`hub_agent.resend`). Readings and heartbeats have no timer: a timer over an hour's backlog
would multiply it at the broker while the centre is down. They are kept until acknowledged
too, and resent when the centre acknowledges a later one (the centre takes them in order,
so an earlier one without an ack was lost on the way: `Outbox.requeue_gaps`; a copy lost too is
resent again once a reading sent after it is acknowledged), or after a reconnect or restart;
heartbeats make sure a later one comes. A message may reach the
centre more than once; it is never lost and never gets a new id.

Acks arrive on the persistent session's subscription (QoS 1), so acks sent while the hub was
away wait for it. Each acknowledged message is reported once to the listeners
(`add_listener`), on the sender thread, as a `Confirmation`: the agent turns an acknowledged
alarm into the person's "help is coming" signal (`hub_agent.confirmation`).

Brokers: `host`/`port` is the first of an ordered list; `fallbacks` are the others. After
`FAILOVER_AFTER` failed attempts in a row at one broker (refused, unreachable, or a CONNACK with
a failure reason), the next attempt goes to the next broker in the list, round and round. The
centre reads every broker (a session on each) and acknowledges each message on the broker it
came in by; a message sent to a broker that then died goes again by the next one (its ack never
came), and the centre acknowledges the copy without storing it twice. So failing over loses
nothing and duplicates nothing. The hub stays on the broker that works until that one fails.

TLS: with `tls_ca` the broker's certificate must chain to that CA and name the host we
dialled (Python's default TLS context: TLS 1.2 or later, CERT_REQUIRED, host name
checked). `tls_cert`/`tls_key` add a client certificate for brokers that require one.
"""

import json
import logging
import sqlite3
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub_agent.outbox import DEFAULT_BUDGET_BYTES, Lane, Outbox, Pending, lane_of
from hub_agent.resend import ACK_TIMEOUT_S, RESEND_MAX_S, ResendSchedule
from telecare_protocol import Ack, DeviceEvent, Message, ProtocolError, decode_ack, encode
from telecare_protocol.topics import ack_topic, status_topic, topic_for

log = logging.getLogger(__name__)
SESSION_EXPIRY_S: Final = 7 * 24 * 3600
DEFAULT_WINDOW: Final = 256
FAILOVER_AFTER: Final = 2
"""Failed attempts in a row at one broker before the next is tried. With paho's reconnect delay
(1 s, doubling) the hub moves on about 3 s after its broker dies, and one lost packet or one
slow restart does not send it away."""
"""Messages on the wire awaiting PUBACK. Bounds how far an alarm queues behind readings already sent,
and is large enough for a backlog to replay at thousands of messages a second over a slow link."""
TIMED_LANES: Final = frozenset({Lane.ALARM, Lane.EVENT})
"""Lanes resent on a timer when the centre's ack is late (see the module docstring)."""


@dataclass(frozen=True)
class Confirmation:
    """Messages the centre has just acknowledged, each reported once: stored, or refused for good."""

    stored: tuple[str, ...]
    """Message ids the centre has committed."""
    refused: tuple[tuple[str, str], ...]
    """(message id, reason) for each message the centre dead-lettered; it will not be resent."""


@dataclass(frozen=True)
class _Publish:
    """What a paho mid carries, for the PUBACK book-keeping."""

    message_id: str | None
    """None: the online/offline status, which is not a protocol message."""
    lane: Lane = Lane.ROUTINE
    direct: bool = False
    """Sent from memory because the outbox could not commit it."""


_STATUS: Final = _Publish(None)


def tls_context(ca: Path | None, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    """A client TLS context that verifies the broker (chain to `ca`, or the system's CAs, and host name)."""
    context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None:
        context.load_cert_chain(str(cert), str(key) if key is not None else None)
    return context


class Uplink:
    """Sends every message the hub produces to the broker, surviving outages and restarts.

    `outbox_path=None` keeps the outbox in memory: nothing survives a restart. That is for
    tests and the demo only; a real hub passes a file on persistent storage.
    """

    def __init__(self, *, hub_id: str, password: str, host: str, port: int,
                 fallbacks: Sequence[tuple[str, int]] = (), outbox_path: Path | None = None,
                 outbox_budget_bytes: int = DEFAULT_BUDGET_BYTES, tls_ca: Path | None = None,
                 tls_cert: Path | None = None, tls_key: Path | None = None, mqtt_v5: bool = True,
                 window: int = DEFAULT_WINDOW, reconnect_max_delay_s: int = 30,
                 ack_timeout_s: float = ACK_TIMEOUT_S, resend_max_s: float = RESEND_MAX_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if window < 1:
            raise ValueError("the in-flight window must be at least 1")
        self.hub_id = hub_id
        self.brokers: tuple[tuple[str, int], ...] = ((host, port), *fallbacks)
        """The brokers in the order tried: (host, port)."""
        self.broker_index = 0
        """Which of `brokers` the link uses (or is trying) now."""
        self.failovers = 0
        """Moves to the next broker after `FAILOVER_AFTER` failed attempts."""
        self._failed_attempts = 0
        self.window = window
        self.outbox = Outbox(outbox_path, hub_id=hub_id, budget_bytes=outbox_budget_bytes)
        self.connected = threading.Event()
        self.refused = 0
        """PUBACKs with a failure reason code. Those rows stay in the outbox and are retried after a reconnect."""
        self.centre_refused: Counter[str] = Counter()
        """Messages the centre dead-lettered for good, by reason: logged, not resent, reported to listeners."""
        self.not_durable = 0
        """Messages the outbox could not commit (storage full or broken), sent from memory instead."""
        self.resent = 0
        """Messages resent because the centre's ack was overdue (reconnects not counted)."""
        self.bad_acks = 0
        """Acks that did not decode, or named another hub: logged and ignored."""
        self._ack_topic = ack_topic(hub_id)
        self._listeners: list[Callable[[Confirmation], None]] = []
        self._stopping = threading.Event()
        self._mqtt_v5 = mqtt_v5
        # Book-keeping, under `_cond`. paho may report a PUBACK before `publish` has returned the
        # mid to us, so an early PUBACK waits in `_early` for its publisher to claim it.
        self._cond = threading.Condition()
        self._published: dict[int, _Publish] = {}
        self._early: dict[int, object] = {}
        self._in_flight = 0
        self._wake = True
        self._acks: list[Ack] = []
        """Acks received, waiting for the sender thread to delete their rows."""
        self._schedule = ResendSchedule(first_s=ack_timeout_s, max_s=resend_max_s, clock=clock)
        self._direct: dict[str, tuple[str, bytes, Lane]] = {}
        """Messages sent from memory (the outbox could not commit them), by id: topic, payload, lane."""
        self._sender: threading.Thread | None = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"hub-agent-{hub_id}",
                                  protocol=mqtt.MQTTv5 if mqtt_v5 else mqtt.MQTTv311,
                                  clean_session=None if mqtt_v5 else False)
        self.client.username_pw_set(hub_id, password)
        if tls_ca is not None or tls_cert is not None:
            self.client.tls_set_context(tls_context(tls_ca, tls_cert, tls_key))
        self.client.max_inflight_messages_set(window)
        self.client.max_queued_messages_set(0)  # our window bounds it; paho must never refuse a row
        self.client.will_set(status_topic(hub_id), "offline", qos=1, retain=False)
        self.client.reconnect_delay_set(min_delay=1, max_delay=reconnect_max_delay_s)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message

    @property
    def unacked(self) -> int:
        """Messages the centre has not acknowledged yet: the outbox depth, and any sent from memory only."""
        return self.outbox.depth + len(self._direct)

    @property
    def on_the_wire(self) -> int:
        """Outbox messages published and waiting for the broker's PUBACK (at most `window`)."""
        return self._in_flight

    def add_listener(self, listener: Callable[[Confirmation], None]) -> None:
        """Call `listener` with every `Confirmation`, on the sender thread (it must be quick and not raise)."""
        self._listeners.append(listener)

    def waiting_events(self) -> list[DeviceEvent]:
        """The alarm lane's events the centre has not acknowledged yet, oldest first: after a restart,
        the alarms still waiting for their ack (and the events of their devices sent ahead of them)."""
        return [DeviceEvent.model_validate_json(payload) for payload in self.outbox.alarm_payloads()]

    @property
    def host(self) -> str:
        """The broker the link uses (or is trying) now."""
        return self.brokers[self.broker_index][0]

    @property
    def port(self) -> int:
        return self.brokers[self.broker_index][1]

    def _dial(self) -> None:
        """Sets where paho (re)connects next: `brokers[broker_index]`. Safe on paho's thread:
        `connect_async` only records the address; paho's loop makes the attempt."""
        if self._mqtt_v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
            self.client.connect_async(self.host, self.port, keepalive=30, clean_start=False, properties=properties)
        else:
            self.client.connect_async(self.host, self.port, keepalive=30)

    def start(self) -> None:
        self._dial()
        self.client.loop_start()
        self._sender = threading.Thread(target=self._send_loop, name=f"uplink-{self.hub_id}", daemon=True)
        self._sender.start()

    def send(self, message: Message) -> None:
        """Commit a message to the outbox; it is durable when this returns, and sent as soon as it can be.

        Should the commit itself fail (storage full or broken), the message is still handed to paho,
        held in memory only, and counted in `not_durable`: an alarm must not wait for a new SD card.
        """
        try:
            self.outbox.put(message)
        except sqlite3.Error as exc:
            self.not_durable += 1
            log.error("hub %s could not commit message %s to its outbox (%s): sending it from memory only",
                      self.hub_id, message.id, exc)
            code = message.code.value if isinstance(message, DeviceEvent) else None
            sent = (topic_for(self.hub_id, message.type, code), encode(message), lane_of(message))
            with self._cond:
                self._direct[str(message.id)] = sent
            self._publish_direct(str(message.id), *sent)
            return
        with self._cond:
            self._wake = True
            self._cond.notify_all()

    def wait_until_delivered(self, timeout: float) -> bool:
        """True once the centre has acknowledged everything sent so far (the outbox is empty)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.unacked == 0, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Wait for the centre to have everything, say "offline", then disconnect. What is left stays on disk."""
        if not self.wait_until_delivered(timeout):
            log.error("hub %s stopping with %d messages the centre has not acknowledged; they stay in the outbox",
                      self.hub_id, self.unacked)
        if self.connected.is_set():
            info = self.client.publish(status_topic(self.hub_id), "offline", qos=1, retain=False)
            self._claim(info.mid, _STATUS)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError) as exc:  # the link dropped meanwhile: the last will says it
                log.warning("hub %s could not say offline: %s", self.hub_id, exc)
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._sender is not None:
            self._sender.join(timeout)
        self.client.disconnect()
        self.client.loop_stop()
        self.outbox.close()

    # --- the sender thread ---------------------------------------------------------------

    def _send_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._send_some()
            except Exception:  # a broken disk must not silently end sending: log, wait, try again
                log.exception("hub %s uplink sender failed; retrying in a second", self.hub_id)
                self._stopping.wait(1.0)

    def _send_some(self) -> None:
        """Settle the acks that came in, resend what is overdue, then fill the window from the outbox."""
        with self._cond:
            self._cond.wait_for(self._has_work, timeout=self._idle_wait_s())
            acks, self._acks = self._acks, []
            due = self._schedule.due() if self.connected.is_set() else []
        if acks:
            self._settle_acks(acks)
        if due:
            self._resend(due)
        with self._cond:
            room = self.window - self._in_flight if self.connected.is_set() and self._wake else 0
            self._wake = False
        if room > 0 and not self._stopping.is_set():
            batch = self.outbox.next_batch(room)
            for row in batch:
                self._publish(row)
            if len(batch) == room:  # perhaps more waiting: look again when the window has room
                with self._cond:
                    self._wake = True

    def _idle_wait_s(self) -> float:
        """How long the sender may sleep when there is nothing to do: until the next resend is due, at most 1 s."""
        next_due = self._schedule.next_due_in()
        return 1.0 if next_due is None else min(1.0, next_due)

    def _has_work(self) -> bool:
        """Called under `_cond`."""
        if self._stopping.is_set() or self._acks:
            return True
        if not self.connected.is_set():
            return False
        return self._schedule.next_due_in() == 0 or (self._wake and self._in_flight < self.window)

    def _settle_acks(self, acks: list[Ack]) -> None:
        """Delete what the centre acknowledged (one transaction), stop its timers, tell the listeners once."""
        stored = list(dict.fromkeys(str(message_id) for ack in acks for message_id in ack.stored))
        refused = {str(r.id): r.reason for ack in acks for r in ack.refused}
        try:
            settled = self.outbox.acknowledge([*stored, *refused])
        except BaseException:
            with self._cond:
                self._acks[:0] = acks  # try again next time; meanwhile nothing is lost, only resent
            raise
        done = {row.message_id for row in settled}
        routine = [row.row_id for row in settled if row.lane is Lane.ROUTINE]
        gaps = self.outbox.requeue_gaps(Lane.ROUTINE, max(routine)) if routine else 0
        if gaps:
            self.resent += gaps
            log.warning("hub %s: the centre acknowledged later readings but not %d earlier ones; resending them",
                        self.hub_id, gaps)
        with self._cond:
            self._wake = self._wake or gaps > 0
            for message_id in [*stored, *refused]:
                if self._direct.pop(message_id, None) is not None:
                    done.add(message_id)
            self._schedule.acknowledged([*stored, *refused])
            self._cond.notify_all()  # wait_until_delivered
        for message_id, reason in refused.items():
            if message_id in done:
                self.centre_refused[reason] += 1
                log.error("the centre refused message %s from hub %s for good (%s): it will not be resent",
                          message_id, self.hub_id, reason)
        confirmation = Confirmation(tuple(m for m in stored if m in done),
                                    tuple((m, reason) for m, reason in refused.items() if m in done))
        if confirmation.stored or confirmation.refused:
            for listener in self._listeners:
                try:
                    listener(confirmation)
                except Exception:
                    log.exception("hub %s: a confirmation listener failed", self.hub_id)

    def _resend(self, due: list[str]) -> None:
        """Hand out again the messages whose ack is overdue (same bytes, same id)."""
        with self._cond:
            direct = {message_id: self._direct[message_id] for message_id in due if message_id in self._direct}
        for message_id, sent in direct.items():
            self._publish_direct(message_id, *sent)
        found = self.outbox.requeue([message_id for message_id in due if message_id not in direct])
        with self._cond:
            self._schedule.acknowledged(set(due) - found - set(direct))  # gone from the outbox meanwhile
            self._wake = True
        self.resent += len(found) + len(direct)
        log.info("hub %s: no ack from the centre for %d messages; resending them", self.hub_id,
                 len(found) + len(direct))

    def _publish(self, row: Pending) -> None:
        with self._cond:
            self._in_flight += 1
        info = self.client.publish(self._topic_of(row), row.payload, qos=1)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            # paho did not keep it: hand everything out again (duplicates on the wire, never a loss).
            log.error("hub %s: paho refused message %s (%s); resending from the outbox", self.hub_id,
                      row.message_id, mqtt.error_string(info.rc))
            with self._cond:
                self._in_flight -= 1
                self._wake = True
            self.outbox.release()
            return
        self._claim(info.mid, _Publish(row.message_id, row.lane))

    def _topic_of(self, row: Pending) -> str:
        """The topic of an outbox row: `alarms` for a call for help, else its type's (`topic_for`).

        Only events of the alarm lane can be calls for help, so only their payload is read for its code."""
        code = None
        if row.kind == "event" and row.lane is Lane.ALARM:
            try:
                found = json.loads(row.payload).get("code")
            except (ValueError, AttributeError):
                found = None  # unreadable: the events topic, where the centre dead-letters it
            code = found if isinstance(found, str) else None
        return topic_for(self.hub_id, row.kind, code)

    def _publish_direct(self, message_id: str, topic: str, payload: bytes, lane: Lane) -> None:
        info = self.client.publish(topic, payload, qos=1)
        self._claim(info.mid, _Publish(message_id, lane, direct=True))

    def _claim(self, mid: int, publish: _Publish) -> None:
        """Note what a mid carries; settle it at once if its PUBACK has already come."""
        with self._cond:
            if mid in self._early:
                self._settle(publish, self._early.pop(mid))
            else:
                self._published[mid] = publish

    def _settle(self, publish: _Publish, reason: object) -> None:
        """One PUBACK (called under `_cond`): the window has room, and the wait for the centre's ack begins."""
        if publish.message_id is None:
            return
        if not publish.direct:
            self._in_flight -= 1
            self._wake = True
        if getattr(reason, "is_failure", False):
            self.refused += 1
            log.error("broker refused message %s from hub %s: %s; it stays in the outbox", publish.message_id,
                      self.hub_id, reason)
        elif publish.lane in TIMED_LANES or publish.direct:
            self._schedule.published(publish.message_id)
        self._cond.notify_all()

    # --- paho callbacks (its network thread) -----------------------------------------------

    def _on_connect(self, client: mqtt.Client, _userdata: object, _flags: object, reason: object,
                    _properties: object) -> None:
        if getattr(reason, "is_failure", False):
            log.error("broker %s:%d refused hub %s: %s", self.host, self.port, self.hub_id, reason)
            self._attempt_failed()
            return
        self._failed_attempts = 0
        client.subscribe(self._ack_topic, qos=1)  # before any message goes: the broker handles them in order
        self._claim(client.publish(status_topic(self.hub_id), "online", qos=1, retain=False).mid, _STATUS)
        with self._cond:
            # A reconnect may follow a broker crash that lost what it had PUBACKed: everything the centre
            # has not acknowledged goes again, in lane order (paho also resends what had no PUBACK).
            self._schedule.stop_timers()
            self.outbox.release()
            direct = dict(self._direct)
            self._wake = True
            self.connected.set()
            self._cond.notify_all()
        for message_id, sent in direct.items():
            self._publish_direct(message_id, *sent)

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: object) -> None:
        """paho could not reach the broker (refused, unreachable, TLS failure)."""
        self._attempt_failed()

    def _attempt_failed(self) -> None:
        """Counts a failed attempt; after `FAILOVER_AFTER` in a row, the next broker in the list."""
        self._failed_attempts += 1
        if len(self.brokers) > 1 and self._failed_attempts >= FAILOVER_AFTER and not self._stopping.is_set():
            was = f"{self.host}:{self.port}"
            self.broker_index = (self.broker_index + 1) % len(self.brokers)
            self._failed_attempts = 0
            self.failovers += 1
            log.warning("hub %s: broker %s failed %d times; trying %s:%d", self.hub_id, was, FAILOVER_AFTER,
                        self.host, self.port)
            self._dial()

    def _on_disconnect(self, _client: mqtt.Client, _userdata: object, _flags: object, reason: object,
                       _properties: object) -> None:
        self.connected.clear()
        if not self._stopping.is_set():
            log.warning("hub %s lost the broker (%s); reconnecting", self.hub_id, reason)

    def _on_publish(self, _client: mqtt.Client, _userdata: object, mid: int, reason: object,
                    _properties: object) -> None:
        with self._cond:
            publish = self._published.pop(mid, None)
            if publish is None:
                self._early[mid] = reason
            else:
                self._settle(publish, reason)

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        """An ack from the centre: checked here, settled by the sender thread (a disk write)."""
        if message.topic != self._ack_topic:
            return
        try:
            ack = decode_ack(bytes(message.payload))
        except ProtocolError as error:
            self.bad_acks += 1
            log.error("hub %s ignored an ack it cannot read: %s", self.hub_id, error)
            return
        if ack.hub_id != self.hub_id:
            self.bad_acks += 1
            log.error("hub %s ignored an ack addressed to hub %s", self.hub_id, ack.hub_id)
            return
        with self._cond:
            self._acks.append(ack)
            self._cond.notify_all()
