"""The centre's MQTT link: receive, hand to ingest in batches, acknowledge after commit.

paho-mqtt 2.x with `manual_ack=True`: the broker's PUBACK for a message is sent only
after its batch is committed, so a centre crash before the commit means the broker
redelivers it (and ingest drops the copy by message id). The session is persistent
(stable client id, no clean start) so messages published while the centre is down wait
at the broker. The hand-over queue is bounded: a slow database blocks paho's network
thread, which stops reading the socket. That is backpressure, never loss (aiomqtt's
"queue is full, discarding" is the failure we avoid).

A message is acknowledged only on the connection it arrived on. After a reconnect the
broker redelivers what was not acknowledged, under the same packet id; acknowledging the
old copy as well could, once the broker has reused that id, acknowledge a newer message
that is not stored yet. The redelivered copy is stored (a duplicate, dropped by id) and
acknowledged instead.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from monitoring_centre.ingest import Inbound, Ingest
from telecare_protocol.topics import SUBSCRIPTION

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
MAX_BATCH = 500
RETRY_DELAY_S = 1.0


class Receiver:
    def __init__(self, ingest: Ingest, *, host: str, port: int, username: str, password: str, client_id: str,
                 mqtt_v5: bool = True, queue_size: int = 1000,
                 on_alerts: Callable[[set[int]], None] = lambda ids: None) -> None:
        self.ingest = ingest
        self.on_alerts = on_alerts
        self.host, self.port = host, port
        self.connected = threading.Event()
        self._queue: queue.Queue[Inbound] = queue.Queue(maxsize=queue_size)
        self._stopping = threading.Event()
        self._link = 0
        """Counts connections to the broker; see the module docstring."""
        self._link_lock = threading.Lock()
        self._worker = threading.Thread(target=self._work, name="centre-ingest", daemon=True)
        protocol = mqtt.MQTTv5 if mqtt_v5 else mqtt.MQTTv311
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                                  clean_session=None if mqtt_v5 else False, manual_ack=True)
        self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._mqtt_v5 = mqtt_v5

    def start(self) -> None:
        self._worker.start()
        if self._mqtt_v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
            self.client.connect_async(self.host, self.port, keepalive=30, clean_start=False, properties=properties)
        else:
            self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        """Stop reading, finish storing what was received, then disconnect.

        The worker drains the queue first, so its acknowledgements still reach the broker."""
        self._stopping.set()
        self.client.unsubscribe(SUBSCRIPTION)
        self._worker.join(timeout=30)
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _userdata: object, _flags: object, reason: object,
                    _properties: object) -> None:
        if getattr(reason, "is_failure", False):
            log.error("broker refused the centre: %s", reason)
            return
        with self._link_lock:
            self._link += 1
        client.subscribe(SUBSCRIPTION, qos=1)
        self.connected.set()
        log.info("centre connected to the broker at %s:%s", self.host, self.port)

    def _on_disconnect(self, _client: mqtt.Client, _userdata: object, _flags: object, reason: object,
                       _properties: object) -> None:
        self.connected.clear()
        if not self._stopping.is_set():
            log.warning("centre lost the broker (%s); reconnecting", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        # Blocks while the queue is full: paho stops reading, the broker holds the rest.
        self._queue.put(Inbound(topic=message.topic, payload=bytes(message.payload), mid=message.mid,
                                qos=message.qos, link=self._link))

    def _work(self) -> None:
        while not (self._stopping.is_set() and self._queue.empty()):
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._store_then_ack(batch)

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
            for inbound in batch:
                if inbound.qos > 0 and inbound.link == self._link:
                    self.client.ack(inbound.mid, inbound.qos)
        if outcome.changed_alerts:
            self.on_alerts(outcome.changed_alerts)
