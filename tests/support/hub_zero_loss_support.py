"""Helpers for the hub's zero-loss and TLS tests: the numbered message stream, a collecting
subscriber with a persistent session, a throwaway certificate authority, and Mosquitto
with a TLS listener."""

import datetime as dt
import ipaddress
import json
import ssl
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub_agent.outbox import Lane, lane_of
from monitoring_centre.broker import BrokerAccount, Mosquitto
from telecare_protocol import Ack, DeviceEvent, DeviceType, EventCode, Message, Metric, Reading, decode, encode
from telecare_protocol.topics import ROOT, STATUS, ack_topic
from tests.support.waiting import holds_within

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
_NAMESPACE = uuid.UUID("5b0d7e0c-6c39-4c53-9a8e-0f6f3c1d2a77")
DEVICES = ("pendant-1", "door-1", "oximeter-1", "oximeter-2")


def message_id(hub_id: str, n: int) -> uuid.UUID:
    """The id of message number `n`: the same on every run, so a message re-made after a crash keeps its id."""
    return uuid.uuid5(_NAMESPACE, f"{hub_id}/{n}")


def numbered_message(hub_id: str, n: int) -> Message:
    """Message number `n` of the stream: one pendant alarm in ten, two door events, seven oximeter readings."""
    source_ts = T0 + dt.timedelta(seconds=n)
    slot = n % 10
    if slot == 0:
        return DeviceEvent(id=message_id(hub_id, n), hub_id=hub_id, device_id="pendant-1",
                           device_type=DeviceType.PERSONAL_TRIGGER, code=EventCode.MANUAL_ALARM, priority=1,
                           source_ts=source_ts, detail={"n": n})
    if slot in (1, 2):
        code = EventCode.DOOR_OPENED if slot == 1 else EventCode.DOOR_CLOSED
        return DeviceEvent(id=message_id(hub_id, n), hub_id=hub_id, device_id="door-1",
                           device_type=DeviceType.DOOR_SENSOR, code=code, priority=9, source_ts=source_ts,
                           detail={"n": n})
    device = "oximeter-1" if slot % 2 else "oximeter-2"
    return Reading(id=message_id(hub_id, n), hub_id=hub_id, device_id=device, source_ts=source_ts,
                   metric=Metric.SPO2, value=float(90 + n % 10), unit="%")


@dataclass(frozen=True)
class Received:
    message_id: str
    n: int
    device_id: str
    lane: Lane


@dataclass
class Collector:
    """Everything a subscriber received, in arrival order, duplicates included."""

    numbers: dict[str, int]
    """Message id -> number, for the stream being checked."""
    arrivals: list[Received] = field(default_factory=list)
    strays: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic.endswith("/" + STATUS):
            return  # the hub's online/offline, not a protocol message
        try:
            decoded = decode(bytes(message.payload))
        except ValueError:
            decoded = None
        with self.lock:
            n = self.numbers.get(str(decoded.id)) if decoded is not None else None
            if decoded is None or n is None:
                self.strays.append(bytes(message.payload))
            else:
                self.arrivals.append(Received(str(decoded.id), n, decoded.device_id, lane_of(decoded)))

    def distinct(self) -> list[Received]:
        """First arrival of each message id, in arrival order (what a deduplicating centre keeps)."""
        with self.lock:
            seen: set[str] = set()
            first = []
            for arrival in self.arrivals:
                if arrival.message_id not in seen:
                    seen.add(arrival.message_id)
                    first.append(arrival)
            return first

    def wait_for_count(self, count: int, timeout: float) -> bool:
        """True as soon as `count` distinct messages have arrived, False if not within `timeout` seconds."""

        def arrived() -> bool:
            with self.lock:
                return len({a.message_id for a in self.arrivals}) >= count

        return holds_within(arrived, timeout)


def subscriber(host: str, port: int, account: BrokerAccount, client_id: str, collector: Collector, *,
               topic: str = f"{ROOT}/+/+", tls: ssl.SSLContext | None = None, acknowledge: bool = True) -> mqtt.Client:
    """A centre-side client with a persistent session (QoS 1, clean_start False, an hour's expiry):
    the broker keeps what arrives while it is away, and it reconnects by itself within a second or two.
    With `acknowledge` it stands in for the centre's end-to-end ack too: each protocol message it
    receives is acknowledged at once on its hub's ack topic, which is what lets the hub forget it."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(account.username, account.password)
    if tls is not None:
        client.tls_set_context(tls)
    client.reconnect_delay_set(min_delay=1, max_delay=1)
    subscribed = threading.Event()

    def on_connect(c: mqtt.Client, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if not reason.is_failure:
            c.subscribe(topic, qos=1)

    def on_subscribe(_c: mqtt.Client, _u: Any, _mid: int, _codes: Any, _props: Any) -> None:
        subscribed.set()

    def on_message(c: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        collector.on_message(c, userdata, message)
        if acknowledge and not message.topic.endswith("/" + STATUS):
            try:
                decoded = decode(bytes(message.payload))
            except ValueError:
                return
            c.publish(ack_topic(decoded.hub_id), encode(Ack(hub_id=decoded.hub_id, stored=(decoded.id,))), qos=1)

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 3600
    client.connect_async(host, port, keepalive=10, clean_start=False, properties=properties)
    client.loop_start()
    if not subscribed.wait(10):
        client.loop_stop()
        raise TimeoutError(f"subscriber {client_id} did not subscribe to {host}:{port} within 10 s")
    return client


def close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


# --- a throwaway certificate authority ----------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    """PEM files in one directory: a CA, server certificates, client certificates."""

    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(directory: Path, name: str = "ca") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA, written as `<name>.crt` (and its key as `<name>.key`)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(f"test {name}")).issuer_name(_name(f"test {name}"))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(directory / f"{name}.key", key)
    return cert, key


def issue(directory: Path, name: str, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], *,
          dns: Iterable[str] = (), ips: Iterable[str] = (), client: bool = False) -> tuple[Path, Path]:
    """A leaf certificate signed by `ca` for the given names: (`<name>.crt`, `<name>.key`)."""
    ca_cert, ca_key = ca
    key = _key()
    now = dt.datetime.now(dt.UTC)
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    usage = x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH if client else x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
    builder = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key_path, key)
    return cert_path, key_path


class TlsMosquitto(Mosquitto):
    """The repo's Mosquitto with its one listener speaking TLS (optionally requiring client certificates)."""

    def __init__(self, directory: Path, accounts: Iterable[BrokerAccount], *, cafile: Path, certfile: Path,
                 keyfile: Path, require_certificate: bool = False) -> None:
        super().__init__(directory, accounts)
        self.tls_files = (cafile, certfile, keyfile)
        self.require_certificate = require_certificate

    def config_text(self) -> str:
        cafile, certfile, keyfile = self.tls_files
        lines = [f"cafile {cafile}", f"certfile {certfile}", f"keyfile {keyfile}", "tls_version tlsv1.2"]
        if self.require_certificate:
            lines.append("require_certificate true")
        return super().config_text() + "\n".join(lines) + "\n"


def read_progress(path: Path) -> int:
    """The last message number the sender committed, or -1."""
    try:
        return int(json.loads(path.read_text())["last"])
    except FileNotFoundError:
        return -1
