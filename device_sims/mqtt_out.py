"""Virtual hubs on a real broker: one MQTT login per hub, QoS 1, at a set rate.

The broker's ACL (`pattern write telecare/v1/hubs/%u/#`) lets an account publish only
under its own username, so every virtual hub logs in as itself: one connection per hub.
A fleet's accounts come from `fleet_accounts` (random passwords) and are written as a
credentials file for `telecare sim … --credentials` plus the broker's password file
(`monitoring_centre.broker.mosquitto_password_line`, mosquitto 2.x's own hash).

Each connection runs paho's network thread. That is a thread per hub: fine for hundreds
of hubs on one machine; for thousands, split the fleet over several processes.
"""

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from monitoring_centre.broker import BrokerAccount, mosquitto_password_line
from telecare_protocol import Message, encode
from telecare_protocol.topics import BROKER_ACL_PATTERN, topic_for


class PublishError(RuntimeError):
    """The broker refused a hub, or did not acknowledge everything in time."""


def fleet_accounts(hub_ids: Iterable[str]) -> dict[str, BrokerAccount]:
    return {hub_id: BrokerAccount.generate(hub_id, "hub") for hub_id in hub_ids}


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def write_credentials(accounts: dict[str, BrokerAccount], path: Path) -> None:
    """`{"hub-001": "password", …}`, readable by its owner only."""
    _write_private(path, json.dumps({a.username: a.password for a in accounts.values()}, indent=1) + "\n")


def write_broker_files(accounts: dict[str, BrokerAccount], directory: Path) -> None:
    """Mosquitto `passwd` (hashed) and `acl` for the fleet's hubs."""
    directory.mkdir(parents=True, exist_ok=True)
    _write_private(directory / "passwd",
                   "".join(mosquitto_password_line(a.username, a.password) + "\n" for a in accounts.values()))
    _write_private(directory / "acl", BROKER_ACL_PATTERN + "\n")


def read_credentials(path: Path) -> dict[str, str]:
    """Hub id → password, from a file `write_credentials` wrote. Raises ValueError if malformed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such credentials file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a credentials file: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError(f'{path}: expected a JSON object {{"hub-id": "password", …}}')
    return data


class _Connection:
    def __init__(self, hub_id: str, password: str, host: str, port: int) -> None:
        self.hub_id = hub_id
        self.connected = threading.Event()
        self.refused: str | None = None
        self.unacked: set[int] = set()
        self.early: set[int] = set()
        self.lock = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sim-{hub_id}", protocol=mqtt.MQTTv5)
        self.client.username_pw_set(hub_id, password)
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(100)
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.connect_async(host, port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        if getattr(reason, "is_failure", False):
            self.refused = str(reason)
        self.connected.set()

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, _r: object, _p: object) -> None:
        with self.lock:
            if mid in self.unacked:
                self.unacked.discard(mid)
            else:
                self.early.add(mid)
            self.lock.notify_all()

    def publish(self, message: Message) -> None:
        mid = self.client.publish(topic_for(self.hub_id, message.type), encode(message), qos=1).mid
        with self.lock:
            if mid in self.early:
                self.early.discard(mid)
            else:
                self.unacked.add(mid)

    def pending(self) -> int:
        with self.lock:
            return len(self.unacked)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class PublishStats:
    published: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.published / self.seconds if self.seconds > 0 else 0.0


class FleetPublisher:
    """One logged-in connection per hub; `publish` paces and sends, `close` waits for PUBACKs."""

    def __init__(self, credentials: dict[str, str], hub_ids: Iterable[str], host: str, port: int,
                 connect_timeout: float = 30.0) -> None:
        missing = [h for h in hub_ids if h not in credentials]
        if missing:
            raise PublishError(f"no credentials for {len(missing)} hub(s), e.g. {missing[0]}")
        wanted = list(dict.fromkeys(hub_ids))
        self.connections = {h: _Connection(h, credentials[h], host, port) for h in wanted}
        deadline = time.monotonic() + connect_timeout
        for conn in self.connections.values():
            if not conn.connected.wait(max(0.0, deadline - time.monotonic())):
                self.close(0)
                raise PublishError(f"no answer from the broker at {host}:{port} for {conn.hub_id}")
            if conn.refused:
                self.close(0)
                raise PublishError(f"the broker refused {conn.hub_id}: {conn.refused}")

    def publish(self, message: Message) -> None:
        self.connections[message.hub_id].publish(message)

    def publish_at_rate(self, messages: Iterable[Message], rate: float | None) -> Iterator[Message]:
        """Publish each message (no faster than `rate` a second when set), passing it on."""
        start = time.monotonic()
        for n, message in enumerate(messages):
            if rate:
                delay = start + n / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self.publish(message)
            yield message

    def pending(self) -> int:
        return sum(c.pending() for c in self.connections.values())

    def wait_delivered(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.pending():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Wait for the broker to acknowledge everything, then disconnect every hub."""
        delivered = self.wait_delivered(timeout) if timeout else True
        for conn in self.connections.values():
            conn.close()
        if not delivered:
            raise PublishError(f"{self.pending()} message(s) not acknowledged by the broker within {timeout:g} s")
