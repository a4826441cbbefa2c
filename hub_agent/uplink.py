"""The hub's MQTT link to the centre, sending from the durable outbox.

`send` commits the message to the outbox (`hub_agent.outbox`) and returns: that commit
is the durability point. A sender thread takes batches from the outbox in its sending
order (alarms first) while the broker is connected, keeps at most `window` messages
unacknowledged on the wire, and deletes each row when the broker's PUBACK arrives.

Per-hub credentials (the username is the hub id, so the broker's ACL lets it publish only
under its own topics), MQTT 5 (3.1.1 for the demo's embedded broker), QoS 1, a persistent
session (same client id, no clean start, a week's session expiry) and a retained last
will saying "offline", so the centre knows when the home stops being monitored.

Resending: rows in flight when the connection drops are resent by paho on reconnect,
with the same bytes (so the same protocol message id; the centre deduplicates on it).
Rows in flight when the hub dies (power cut, SIGKILL) are still in the outbox and are
sent again after the restart. A message may therefore reach the broker twice; it is
never lost and never gets a new id.

TLS: with `tls_ca` the broker's certificate must chain to that CA and name the host we
dialled (Python's default TLS context: TLS 1.2 or later, CERT_REQUIRED, host name
checked). `tls_cert`/`tls_key` add a client certificate for brokers that require one.
"""

import logging
import sqlite3
import ssl
import threading
import time
from pathlib import Path
from typing import Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub_agent.outbox import DEFAULT_BUDGET_BYTES, Outbox, Pending
from telecare_protocol import Message, encode
from telecare_protocol.topics import status_topic, topic_for

log = logging.getLogger(__name__)
SESSION_EXPIRY_S: Final = 7 * 24 * 3600
DEFAULT_WINDOW: Final = 256
"""Messages on the wire awaiting PUBACK. Bounds how far an alarm queues behind readings already sent,
and is large enough for a backlog to replay at thousands of messages a second over a slow link."""
DELETE_BATCH: Final = 1024
DELETE_DELAY_S: Final = 0.05
"""Acknowledged rows are deleted in batches: a crash in between only means a duplicate, never a loss."""
_STATUS: Final = -1
"""Stands for the online/offline status publishes (not outbox rows) in the PUBACK book-keeping."""
_DIRECT: Final = -2
"""Stands for a message sent from memory because the outbox could not commit it."""


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

    def __init__(self, *, hub_id: str, password: str, host: str, port: int, outbox_path: Path | None = None,
                 outbox_budget_bytes: int = DEFAULT_BUDGET_BYTES, tls_ca: Path | None = None,
                 tls_cert: Path | None = None, tls_key: Path | None = None, mqtt_v5: bool = True,
                 window: int = DEFAULT_WINDOW, reconnect_max_delay_s: int = 30) -> None:
        if window < 1:
            raise ValueError("the in-flight window must be at least 1")
        self.hub_id = hub_id
        self.host, self.port = host, port
        self.window = window
        self.outbox = Outbox(outbox_path, hub_id=hub_id, budget_bytes=outbox_budget_bytes)
        self.connected = threading.Event()
        self.refused = 0
        """PUBACKs with a failure reason code. Those rows stay in the outbox and are retried after a restart."""
        self.not_durable = 0
        """Messages the outbox could not commit (storage full or broken), sent from memory instead."""
        self._direct = 0
        self._stopping = threading.Event()
        self._mqtt_v5 = mqtt_v5
        # PUBACK book-keeping, under `_cond`. paho may report a PUBACK before `publish` has returned the
        # mid to us, so an early ack waits in `_early` for its publisher to claim it.
        self._cond = threading.Condition()
        self._rows_by_mid: dict[int, int] = {}
        self._early: dict[int, object] = {}
        self._acked: list[int] = []
        self._acked_since = 0.0
        self._in_flight = 0
        self._wake = True
        self._sender: threading.Thread | None = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"hub-agent-{hub_id}",
                                  protocol=mqtt.MQTTv5 if mqtt_v5 else mqtt.MQTTv311,
                                  clean_session=None if mqtt_v5 else False)
        self.client.username_pw_set(hub_id, password)
        if tls_ca is not None or tls_cert is not None:
            self.client.tls_set_context(tls_context(tls_ca, tls_cert, tls_key))
        self.client.max_inflight_messages_set(window)
        self.client.max_queued_messages_set(0)  # our window bounds it; paho must never refuse a row
        self.client.will_set(status_topic(hub_id), "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=reconnect_max_delay_s)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish

    @property
    def unacked(self) -> int:
        """Messages the broker has not acknowledged yet: the outbox depth (and any sent from memory only)."""
        return self.outbox.depth + self._direct

    def start(self) -> None:
        if self._mqtt_v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
            self.client.connect_async(self.host, self.port, keepalive=30, clean_start=False, properties=properties)
        else:
            self.client.connect_async(self.host, self.port, keepalive=30)
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
            with self._cond:
                self._direct += 1
            info = self.client.publish(topic_for(self.hub_id, message.type), encode(message), qos=1)
            self._claim(info.mid, _DIRECT)
            return
        with self._cond:
            self._wake = True
            self._cond.notify_all()

    def wait_until_delivered(self, timeout: float) -> bool:
        """True once the broker has acknowledged everything sent so far (the outbox is empty)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.unacked == 0, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Wait for the broker to have everything, say "offline", then disconnect. What is left stays on disk."""
        if not self.wait_until_delivered(timeout):
            log.error("hub %s stopping with %d messages the broker has not acknowledged; they stay in the outbox",
                      self.hub_id, self.unacked)
        if self.connected.is_set():
            info = self.client.publish(status_topic(self.hub_id), "offline", qos=1, retain=True)
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
        self._delete_acked()
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
        """Fill the window from the outbox, then delete what was acknowledged (when a delete is due)."""
        with self._cond:
            self._cond.wait_for(self._has_work, timeout=DELETE_DELAY_S if self._acked else 1.0)
            room = self.window - self._in_flight if self.connected.is_set() and self._wake else 0
            self._wake = False
        if room > 0 and not self._stopping.is_set():
            batch = self.outbox.next_batch(room)
            for row in batch:
                self._publish(row)
            if len(batch) == room:  # perhaps more waiting: look again when the window has room
                with self._cond:
                    self._wake = True
        with self._cond:
            due = self._delete_due()
        if due:
            self._delete_acked()

    def _delete_due(self) -> bool:
        """Deletes are batched (one disk flush each): when enough have gathered, when the oldest has
        waited `DELETE_DELAY_S`, or when nothing is in flight any more. Called under `_cond`."""
        if not self._acked:
            return False
        return (len(self._acked) >= DELETE_BATCH or self._in_flight == 0 or self._stopping.is_set()
                or time.monotonic() - self._acked_since >= DELETE_DELAY_S)

    def _delete_acked(self) -> None:
        with self._cond:
            acked, self._acked = self._acked, []
        if not acked:
            return
        try:
            self.outbox.delete(acked)
        except BaseException:
            with self._cond:
                self._acked[:0] = acked  # try again next time; meanwhile they are only resent after a restart
            raise
        with self._cond:
            self._cond.notify_all()  # wait_until_delivered

    def _has_work(self) -> bool:
        if self._stopping.is_set() or self._delete_due():
            return True
        return self._wake and self.connected.is_set() and self._in_flight < self.window

    def _publish(self, row: Pending) -> None:
        with self._cond:
            self._in_flight += 1
        info = self.client.publish(topic_for(self.hub_id, row.kind), row.payload, qos=1)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            # paho did not keep it: hand everything out again (duplicates on the wire, never a loss).
            log.error("hub %s: paho refused message %s (%s); resending from the outbox", self.hub_id,
                      row.message_id, mqtt.error_string(info.rc))
            with self._cond:
                self._in_flight -= 1
                self._wake = True
            self.outbox.release()
            return
        self._claim(info.mid, row.row_id)

    def _claim(self, mid: int, row_id: int) -> None:
        """Note which row a mid carries; settle it at once if its PUBACK has already come."""
        with self._cond:
            if mid in self._early:
                self._settle(row_id, self._early.pop(mid))
            else:
                self._rows_by_mid[mid] = row_id

    def _settle(self, row_id: int, reason: object) -> None:
        """One PUBACK for one row (called under `_cond`)."""
        if row_id == _STATUS:
            return
        if row_id == _DIRECT:
            self._direct -= 1
            self._cond.notify_all()
            return
        self._in_flight -= 1
        self._wake = True
        if getattr(reason, "is_failure", False):
            self.refused += 1
            log.error("broker refused row %d from hub %s: %s; it stays in the outbox", row_id, self.hub_id, reason)
        else:
            if not self._acked:
                self._acked_since = time.monotonic()
            self._acked.append(row_id)
        self._cond.notify_all()

    # --- paho callbacks (its network thread) -----------------------------------------------

    def _on_connect(self, client: mqtt.Client, _userdata: object, _flags: object, reason: object,
                    _properties: object) -> None:
        if getattr(reason, "is_failure", False):
            log.error("broker refused hub %s: %s", self.hub_id, reason)
            return
        self._claim(client.publish(status_topic(self.hub_id), "online", qos=1, retain=True).mid, _STATUS)
        self.connected.set()
        with self._cond:
            self._wake = True
            self._cond.notify_all()

    def _on_disconnect(self, _client: mqtt.Client, _userdata: object, _flags: object, reason: object,
                       _properties: object) -> None:
        self.connected.clear()
        if not self._stopping.is_set():
            log.warning("hub %s lost the broker (%s); reconnecting", self.hub_id, reason)

    def _on_publish(self, _client: mqtt.Client, _userdata: object, mid: int, reason: object,
                    _properties: object) -> None:
        with self._cond:
            row_id = self._rows_by_mid.pop(mid, None)
            if row_id is None:
                self._early[mid] = reason
            else:
                self._settle(row_id, reason)
