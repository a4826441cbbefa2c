"""The hub's MQTT link to the centre.

Per-hub credentials (the username is the hub id, so the broker's ACL lets it publish
only under its own topics), QoS 1, a persistent session (same client id, no clean
start) and a retained last will saying "offline", so the centre knows when the home
stops being monitored. Messages wait in paho's in-memory queue until PUBACK; a durable
on-disk outbox comes with the hub agent issue.
"""

import logging
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from telecare_protocol import Message, encode
from telecare_protocol.topics import status_topic, topic_for

log = logging.getLogger(__name__)
SESSION_EXPIRY_S = 7 * 24 * 3600


class Uplink:
    def __init__(self, *, hub_id: str, password: str, host: str, port: int, mqtt_v5: bool = True) -> None:
        self.hub_id = hub_id
        self.host, self.port = host, port
        self.connected = threading.Event()
        self._stopping = threading.Event()
        self._mqtt_v5 = mqtt_v5
        # PUBACKs by message id. paho may report a PUBACK before `publish` has returned
        # the id to us, so an early ack waits in `_early_acks` for its `send` to claim it.
        self._unacked: set[int] = set()
        self._early_acks: set[int] = set()
        self._acked = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"hub-agent-{hub_id}",
                                  protocol=mqtt.MQTTv5 if mqtt_v5 else mqtt.MQTTv311,
                                  clean_session=None if mqtt_v5 else False)
        self.client.username_pw_set(hub_id, password)
        self.client.max_queued_messages_set(0)  # unbounded: never drop an alarm for want of room
        self.client.will_set(status_topic(hub_id), "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish

    @property
    def unacked(self) -> int:
        with self._acked:
            return len(self._unacked)

    def start(self) -> None:
        if self._mqtt_v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
            self.client.connect_async(self.host, self.port, keepalive=30, clean_start=False, properties=properties)
        else:
            self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def send(self, message: Message) -> None:
        """Queue a message for the broker (also while disconnected: paho sends it on connect)."""
        self._track(self.client.publish(topic_for(self.hub_id, message.type), encode(message), qos=1).mid)

    def _track(self, mid: int) -> None:
        with self._acked:
            if mid in self._early_acks:
                self._early_acks.discard(mid)
            else:
                self._unacked.add(mid)

    def wait_until_delivered(self, timeout: float) -> bool:
        """True once the broker has acknowledged everything sent so far."""
        with self._acked:
            return self._acked.wait_for(lambda: not self._unacked, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Wait for the broker to have everything, say "offline", then disconnect."""
        if not self.wait_until_delivered(timeout):
            log.error("hub %s stopping with %d messages the broker never acknowledged", self.hub_id, self.unacked)
        if self.connected.is_set():
            self.client.publish(status_topic(self.hub_id), "offline", qos=1, retain=True).wait_for_publish(timeout)
        self._stopping.set()
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _userdata: object, _flags: object, reason: object,
                    _properties: object) -> None:
        if getattr(reason, "is_failure", False):
            log.error("broker refused hub %s: %s", self.hub_id, reason)
            return
        self._track(client.publish(status_topic(self.hub_id), "online", qos=1, retain=True).mid)
        self.connected.set()

    def _on_disconnect(self, _client: mqtt.Client, _userdata: object, _flags: object, reason: object,
                       _properties: object) -> None:
        self.connected.clear()
        if not self._stopping.is_set():
            log.warning("hub %s lost the broker (%s); reconnecting", self.hub_id, reason)

    def _on_publish(self, _client: mqtt.Client, _userdata: object, mid: int, _reason: object,
                    _properties: object) -> None:
        with self._acked:
            if mid in self._unacked:
                self._unacked.discard(mid)
            else:
                self._early_acks.add(mid)
            self._acked.notify_all()
