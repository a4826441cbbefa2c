"""Helpers for tests that talk to a real MQTT broker: free ports, connected paho clients,
and an inbox to wait on. Every wait is bounded and fails loudly when it runs out."""

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from monitoring_centre.broker import Broker, BrokerAccount
from tests.support.waiting import holds_within, wait_for

MQTTv5 = MQTTProtocolVersion.MQTTv5
MQTTv311 = MQTTProtocolVersion.MQTTv311
TIMEOUT = 10.0
"""Upper bound for anything that should happen (a CONNACK, a delivery): long enough for a slow CI runner."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing is listening on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ClientState:
    """What a helper client learnt from the broker; kept as the paho client's userdata."""

    connected: threading.Event = field(default_factory=threading.Event)
    connack: ReasonCode | None = None
    session_present: bool = False
    disconnected: threading.Event = field(default_factory=threading.Event)
    acks: dict[int, list[ReasonCode]] = field(default_factory=dict)
    """SUBACK reason codes and PUBACK reason code (as a one-element list), by message id."""
    acked: threading.Lock = field(default_factory=threading.Lock)
    """Guards `acks`, which paho's network thread fills in."""


def state(client: Client) -> ClientState:
    userdata: ClientState = client.user_data_get()
    return userdata


class Inbox:
    """Collects messages from paho's network thread; tests wait on it with a timeout."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: list[tuple[str, bytes]] = []

    def on_message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def payloads(self) -> list[bytes]:
        with self._lock:
            return [payload for _, payload in self.messages]

    def wait_for(self, predicate: Callable[[list[tuple[str, bytes]]], bool], timeout: float = TIMEOUT) -> bool:
        """True as soon as `predicate(messages)` holds, False if it still does not after `timeout`."""

        def holds() -> bool:
            with self._lock:
                return predicate(self.messages)

        return holds_within(holds, timeout)

    def wait_for_payload(self, payload: bytes, timeout: float = TIMEOUT) -> bool:
        return self.wait_for(lambda messages: any(p == payload for _, p in messages), timeout)


def mqtt_client(
    broker: Broker,
    account: BrokerAccount | None,
    client_id: str | None = None,
    protocol: MQTTProtocolVersion = MQTTv5,
    *,
    clean_start: bool = True,
    session_expiry: int | None = None,
    on_message: Callable[[Client, Any, MQTTMessage], None] | None = None,
    timeout: float = TIMEOUT,
) -> Client:
    """A paho 2.x client connected to `broker`, network loop running.

    `account=None` connects anonymously. `clean_start=False` with a `session_expiry` (MQTT 5)
    or `clean_start=False` alone (3.1.1 clean_session) asks for a persistent session; pass a
    stable `client_id` for it. Raises ConnectionRefusedError if the broker refuses.
    `on_message` is attached before connecting, so a resumed session's queued messages
    are not missed.
    """
    v5 = protocol == MQTTv5
    client = Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id or "",
        clean_session=None if v5 else clean_start,
        userdata=ClientState(),
        protocol=protocol,
        reconnect_on_failure=False,
    )
    st = state(client)

    def on_connect(c: Client, s: ClientState, flags: ConnectFlags, rc: ReasonCode, props: Properties | None) -> None:
        s.connack = rc
        s.session_present = flags.session_present
        s.connected.set()

    def on_disconnect(
        c: Client, s: ClientState, flags: DisconnectFlags, rc: ReasonCode, props: Properties | None
    ) -> None:
        s.disconnected.set()
        s.connected.set()  # wake a waiting connect: no CONNACK is coming

    def on_subscribe(c: Client, s: ClientState, mid: int, codes: list[ReasonCode], props: Properties | None) -> None:
        with s.acked:
            s.acks[mid] = codes

    def on_publish(c: Client, s: ClientState, mid: int, rc: ReasonCode, props: Properties) -> None:
        with s.acked:
            s.acks[mid] = [rc]

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_subscribe = on_subscribe
    client.on_publish = on_publish
    if on_message is not None:
        client.on_message = on_message
    if account is not None:
        client.username_pw_set(account.username, account.password)

    if v5:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if session_expiry is not None:
            properties.SessionExpiryInterval = session_expiry
        client.connect(broker.host, broker.port, keepalive=30, clean_start=clean_start, properties=properties)
    else:
        client.connect(broker.host, broker.port, keepalive=30)
    client.loop_start()
    if not st.connected.wait(timeout):
        client.loop_stop()
        raise TimeoutError(f"no CONNACK from {broker.host}:{broker.port} within {timeout}s")
    if st.connack is None or st.connack.is_failure:
        client.disconnect()
        client.loop_stop()
        raise ConnectionRefusedError(f"broker refused the connection: {st.connack or 'closed without CONNACK'}")
    return client


def wait_ack(client: Client, mid: int, timeout: float = TIMEOUT) -> list[ReasonCode]:
    """The SUBACK or PUBACK reason codes for message id `mid`."""
    st = state(client)

    def acked() -> list[ReasonCode] | None:
        with st.acked:
            return st.acks.get(mid)

    return wait_for(acked, timeout, f"the acknowledgement of message {mid}")


def subscribe(client: Client, topic: str, qos: int = 1, timeout: float = TIMEOUT) -> list[ReasonCode]:
    """Subscribe and wait for the SUBACK; returns its reason codes (a refusal is not raised)."""
    result, mid = client.subscribe(topic, qos)
    if mid is None:
        raise ConnectionError(f"subscribe to {topic!r} was not sent: {result}")
    return wait_ack(client, mid, timeout)


def publish(client: Client, topic: str, payload: bytes, qos: int = 1, timeout: float = TIMEOUT) -> ReasonCode | None:
    """Publish and, for QoS 1, wait for the PUBACK and return its reason code."""
    info = client.publish(topic, payload, qos=qos)
    if qos == 0 or info.mid is None:
        return None
    return wait_ack(client, info.mid, timeout)[0]


def close(client: Client) -> None:
    """Disconnect cleanly (a persistent session stays at the broker) and stop the loop."""
    st = state(client)
    if client.is_connected():
        client.disconnect()
        st.disconnected.wait(TIMEOUT)
    client.loop_stop()
