"""The receiver's MQTT client reads its socket in large pieces (`BufferedClient`): every packet of a
read is delivered, in order, in one `loop_read`, a packet split across reads is put together, and
bytes of a closed connection are never taken for the next one's. A socket stand-in hands out bytes
as the network would."""

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from monitoring_centre.receiver import BufferedClient


def publish_packet(topic: str, payload: bytes) -> bytes:
    """An MQTT 3.1.1 PUBLISH at QoS 0 (no packet id), as a broker sends it."""
    body = len(topic).to_bytes(2, "big") + topic.encode() + payload
    length, encoded = len(body), bytearray()
    while True:
        byte, length = length % 128, length // 128
        encoded.append(byte | (128 if length else 0))
        if not length:
            break
    return bytes([0x30]) + bytes(encoded) + body


class Network:
    """A socket whose `recv` returns the next of `reads` (at most what is asked), then would block;
    a `None` among them would block once (the rest has not arrived yet)."""

    def __init__(self, *reads: bytes | None) -> None:
        self.reads = list(reads)
        self.calls = 0

    def recv(self, size: int) -> bytes:
        self.calls += 1
        if not self.reads:
            raise BlockingIOError
        if self.reads[0] is None:
            self.reads.pop(0)
            raise BlockingIOError
        data, rest = self.reads[0][:size], self.reads[0][size:]
        if rest:
            self.reads[0] = rest
        else:
            self.reads.pop(0)
        return data

    def close(self) -> None:
        pass


def client_on(network: Network) -> tuple[BufferedClient, list[tuple[str, bytes]]]:
    client = BufferedClient(CallbackAPIVersion.VERSION2, client_id="centre", protocol=mqtt.MQTTv311)
    received: list[tuple[str, bytes]] = []
    client.on_message = lambda _c, _u, message: received.append((message.topic, bytes(message.payload)))
    client._sock = network  # type: ignore[assignment]
    return client, received


def test_every_packet_of_one_read_is_delivered_in_order_in_one_loop_read() -> None:
    packets = [publish_packet(f"telecare/v1/hubs/hub-1/reading{n}", b'{"n": %d}' % n + b"x" * 300)
               for n in range(50)]  # one long varint length each
    network = Network(b"".join(packets))
    client, received = client_on(network)
    assert client.loop_read() == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert [topic for topic, _ in received] == [f"telecare/v1/hubs/hub-1/reading{n}" for n in range(50)]
    assert received[7][1] == b'{"n": 7}' + b"x" * 300
    assert network.calls <= 3  # stock paho: at least three reads per packet


def test_a_packet_split_across_reads_is_put_together() -> None:
    first, second = publish_packet("a/b", b"one"), publish_packet("a/c", b"two" * 100)
    whole = first + second
    network = Network(whole[:len(first) + 2], None, whole[len(first) + 2:])  # cut in the second's header
    client, received = client_on(network)
    client.loop_read()
    assert received == [("a/b", b"one")]
    client.loop_read()  # the socket is readable again
    assert received == [("a/b", b"one"), ("a/c", b"two" * 100)]


def test_bytes_of_a_closed_connection_are_not_read_on_the_next() -> None:
    old = Network(publish_packet("old/one", b"1") + publish_packet("old/two", b"2") * 3)
    new = Network(publish_packet("new/one", b"3"))
    client, received = client_on(old)

    def reconnected_mid_read(_client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        received.append((message.topic, bytes(message.payload)))
        client._sock = new  # type: ignore[assignment]

    client.on_message = reconnected_mid_read
    client.loop_read()
    client.loop_read()
    assert [topic for topic, _ in received] == ["old/one", "new/one"]


class Wire:
    """A socket that takes everything written to it."""

    def __init__(self) -> None:
        self.sent = bytearray()
        self.sends = 0

    def send(self, data: bytes) -> int:
        self.sends += 1
        self.sent += data
        return len(data)

    def close(self) -> None:
        pass


def on_the_wire(manual_ack: bool = True) -> tuple[BufferedClient, Wire]:
    """A client writing to a `Wire` (with no network thread, paho writes as soon as a packet is queued)."""
    client = BufferedClient(CallbackAPIVersion.VERSION2, client_id="centre", protocol=mqtt.MQTTv5,
                            manual_ack=manual_ack)
    wire = Wire()
    client._sock = wire  # type: ignore[assignment]
    return client, wire


def test_a_batch_is_acknowledged_as_ack_would_one_by_one_in_one_write() -> None:
    mids = [7, 8, 300, 65535, 1]
    one_by_one, expected = on_the_wire()
    for mid in mids:
        one_by_one.ack(mid, 1)
    batched, wire = on_the_wire()
    assert batched.ack_all(mids) == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert wire.sent == expected.sent == b"".join(bytes([0x40, 2]) + mid.to_bytes(2, "big") for mid in mids)
    assert (wire.sends, expected.sends) == (1, len(mids))


def test_without_manual_ack_nothing_is_sent_twice() -> None:
    """paho acknowledged on receipt already: `ack_all`, like `ack`, sends nothing."""
    client, wire = on_the_wire(manual_ack=False)
    client.ack_all([1, 2])
    client.ack(3, 1)
    assert wire.sent == b""
