"""Mosquitto, NATS JetStream (its MQTT gateway) and RabbitMQ (rabbitmq_mqtt) against our no-loss checks.

Issue 17 asks whether a clustered broker from Debian's packages should replace what is built: two
independent Mosquittos, the hub failing over between them and the centre subscribed to both
(docs/operating.md, "Availability"). This bench runs each broker that is installed on free
loopback ports, with its own configuration and data folders in a temporary directory, and stops
it afterwards (none is left running, none is enabled as a service). For each broker it runs the
same checks with our own client code: the hub's `Uplink` (outbox, QoS 1, persistent session, the
centre's end-to-end ack) or paho set up as the hub and the centre's receiver set it up (QoS 1,
persistent sessions, `manual_ack=True` on the centre's side):

- `acl`: per-hub accounts with a topic ACL. Hub 1 publishing as itself reaches the centre (the
  control); publishing on hub 2's topic, reading hub 2's topics or acks, forging its own ack and
  connecting anonymously must all fail.
- `offline_queue`: QoS 1 messages published while the centre's persistent session is offline are
  delivered when it comes back.
- `redelivery`: a centre that dies (its socket closed, no DISCONNECT) before acknowledging gets the
  messages again on its next connection; 0 lost.
- `crash_backlog`: is a PUBACK durable? With the centre's session offline, the hub publishes 1000
  messages and has every PUBACK; the broker is killed (SIGKILL) at once (`crash_backlog_after_2s`:
  2 s later, past Mosquitto's 1 s autosave) and started again; what
  the broker had acknowledged and then never delivers is lost at the broker (the hub's outbox,
  not the broker, covers that loss: see `crash_end_to_end`).
- `crash`: the broker is killed (SIGKILL) and started again under a steady QoS 1 stream.
  `broker_only`: a plain QoS 1 publisher, counting what the broker PUBACKed and then lost (the
  broker's own durability). `end_to_end`: our hub's `Uplink`, which forgets a message only on the
  centre's ack; lost must be 0, duplicates are allowed (the centre drops them by message id).
- `mqtt5` and `shared_subscription`: does the broker accept an MQTT 5 CONNECT, and does
  `$share/g/...` split one stream between two subscribers (what issue 17's centre workers need)?
- `rate`: a QoS 1 stream of `--messages` readings from one publisher (256 in flight, as the hub's
  window) to one manually acknowledging subscriber, msgs/s end to end, and the broker's RSS (all
  processes of its process group) at start and after the stream; `ratio` is against Mosquitto in
  the same run.

Mosquitto runs from `monitoring_centre.broker.Mosquitto` (our configuration: persistence with a
1 s autosave, MQTT 5, the `pattern` ACL). NATS 2.9 runs with JetStream (file store) and its `mqtt`
block, one account, and per-user publish/subscribe permissions (NATS subjects: `/` becomes `.`).
RabbitMQ 3.10 runs with only the rabbitmq_mqtt plugin (no AMQP listener), users from a definitions
file and topic permissions on `amq.topic` with `{username}` expansion. NATS and RabbitMQ are
spoken to in MQTT 3.1.1 (see `mqtt5`), Mosquitto in MQTT 5, as the hub and the centre do today.

`--nats-pair` and `--rabbitmq-pair` add a two-node cluster of each on loopback (`check_pair`): the hub's
`Uplink` on node 1 with node 2 as its fallback, the centre's session on node 2, node 1 killed under the
stream and left dead. Does the survivor carry on?

One JSON line per broker (or `{"broker": ..., "skipped": reason}` when it is not installed), and one per
cluster. Not part of `make test` or `make bench`: it needs packages CI does not install, and takes
about five minutes (the clusters about four more).

    .venv/bin/python bench/broker_eval.py [--brokers mosquitto,nats,rabbitmq] [--messages 5000]
        [--rate 200] [--seconds 8] [--nats-pair] [--rabbitmq-pair]
"""

import argparse
import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import IO, Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub_agent.uplink import DEFAULT_WINDOW, SESSION_EXPIRY_S, Uplink
from monitoring_centre.broker import BrokerAccount, BrokerStartError, Mosquitto, find_mosquitto
from telecare_protocol import Ack, Metric, Reading, decode, encode
from telecare_protocol.topics import SUBSCRIPTION, ack_topic, topic_for

HOST = "127.0.0.1"
HUB, OTHER_HUB, CENTRE = "hub-1", "hub-2", "centre"
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin")
RABBITMQ_BIN_DIRS = ("/usr/lib/rabbitmq/bin",)
"""Debian's rabbitmq-server package: the real start script (the one in sbin switches to the rabbitmq user)."""
WAIT_S = 10.0
"""Upper bound for anything that should happen (a CONNACK, a delivery) on a loaded machine."""
QUIET_S = 1.5
"""How long a message that must not arrive is waited for."""
NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
INTERNAL_SNOOP = "$MQTT/sub/#"
"""As an MQTT topic, NATS's delivery subjects for every QoS 1 subscriber (`JETSTREAM_DELIVERY`): a hub must
not read other sessions' deliveries there. On the other brokers it is an ordinary topic nobody writes."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


def find_executable(name: str, extra_dirs: tuple[str, ...] = SBIN_DIRS) -> str | None:
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(extra_dirs))


def group_pids(pgid: int) -> list[int]:
    """Every process whose process group is `pgid` (a broker and its helpers, such as Erlang's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def rss_mb(pids: list[int]) -> float:
    """The summed VmRSS of `pids`, in MiB (0 for a process that is gone)."""
    total_kb = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return round(total_kb / 1024, 1)


# --- the brokers ---------------------------------------------------------------------------


class EvalBroker(Protocol):
    """A broker under evaluation, on 127.0.0.1, with the accounts of `accounts()`."""

    name: str
    mqtt5: bool
    """Whether our clients speak MQTT 5 to it (Mosquitto) or 3.1.1."""

    @property
    def port(self) -> int: ...

    def version(self) -> str: ...

    def start(self) -> None:
        """Start and wait until the MQTT port accepts connections; raises `BrokerStartError`."""

    def stop(self) -> None:
        """Graceful stop (SIGTERM), keeping the data folder."""

    def kill(self) -> None:
        """SIGKILL: a crash, without any shutdown save."""

    def pids(self) -> list[int]: ...

    def settings(self) -> dict[str, Any]:
        """The settings that shape the results (in-flight limits, durability)."""

    def close(self) -> None:
        """Stop everything this broker started (the Erlang port mapper too)."""


class MosquittoBroker:
    """`monitoring_centre.broker.Mosquitto`: the configuration the centre runs."""

    name = "mosquitto"
    mqtt5 = True

    def __init__(self, directory: Path, accounts: list[BrokerAccount]) -> None:
        self._broker = Mosquitto(directory, accounts, port=free_port())

    @property
    def port(self) -> int:
        return self._broker.port

    def version(self) -> str:
        out = subprocess.run([self._broker.executable, "-h"], capture_output=True, text=True, check=False).stdout
        match = re.search(r"mosquitto version (\S+)", out)
        return match.group(1) if match else "unknown"

    def start(self) -> None:
        self._broker.start()

    def stop(self) -> None:
        self._broker.stop()

    def kill(self) -> None:
        self._broker.kill()

    def pids(self) -> list[int]:
        process = self._broker._process
        return [process.pid] if process is not None and process.poll() is None else []

    def settings(self) -> dict[str, Any]:
        return {"autosave_interval_s": self._broker.autosave_interval, "max_inflight_messages": 20,
                "max_queued_messages": self._broker.max_queued_messages}

    def close(self) -> None:
        self._broker.stop()


class GroupProcess:
    """A broker subprocess in a process group of its own, so a kill reaches its helpers too."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path, port: int,
                 start_timeout: float) -> None:
        self.argv, self.env, self.log_path, self.port = argv, env, log_path, port
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        if listening(self.port):
            raise BrokerStartError(f"port {self.port} is already in use")
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while not listening(self.port):
            code = self.process.poll()
            if code is not None or time.monotonic() > deadline:
                self.kill()
                raise BrokerStartError(f"{self.argv[0]} did not listen on {self.port} (exit {code}):\n{self.tail()}")
            time.sleep(0.05)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _signal_group(self, sig: signal.Signals) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def stop(self, timeout: float = 60.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait()
        self._wait_group_gone()
        self._close_log()

    def kill(self) -> None:
        self._signal_group(signal.SIGKILL)
        if self.process is not None:
            self.process.wait()
        self._wait_group_gone()
        self._close_log()

    def _wait_group_gone(self, timeout: float = 10.0) -> None:
        """Until no process of the group is left (a helper may outlive the leader for a moment)."""
        if self.process is None:
            return
        deadline = time.monotonic() + timeout
        while group_pids(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def pids(self) -> list[int]:
        return group_pids(self.process.pid) if self.process is not None else []

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


JETSTREAM_DELIVERY = "$MQTT.sub.>"
"""The subjects NATS's MQTT gateway delivers QoS 1 messages on (a JetStream consumer per subscription):
without subscribe permission on them, a QoS 1 subscription is refused ("subscribe permission violation")."""


def nats_subject(topic: str) -> str:
    """An MQTT topic as NATS's MQTT gateway maps it to a subject (our topics have no `.`)."""
    return topic.replace("/", ".").replace("+", "*").replace("#", ">")


class NatsBroker:
    """nats-server with JetStream (file store) and its MQTT gateway, one account, per-user permissions.

    NATS has no `%u` pattern in a configuration file (only in JWT templates of operator mode),
    so each hub gets its own publish and subscribe lines, as our configuration generator would write
    them. `ack_wait` (redelivery to a connected client that has not acknowledged) stays at 30 s and
    `max_ack_pending` at 1024, the defaults."""

    name = "nats"
    mqtt5 = False

    def __init__(self, directory: Path, accounts: list[BrokerAccount], executable: str, *,
                 server_name: str = "eval_nats", cluster_port: int | None = None, routes: tuple[int, ...] = ()) -> None:
        """`cluster_port` and `routes` (the other nodes' cluster ports) make it a node of a cluster on loopback."""
        self.directory, self.accounts, self.executable = directory, accounts, executable
        self.server_name, self.cluster_port, self.routes = server_name, cluster_port, routes
        self._port, self._client_port = free_port(), free_port()
        directory.mkdir(parents=True, exist_ok=True)
        self.config_path = directory / "nats.conf"
        self.config_path.write_text(self.config_text())
        self._process = GroupProcess([executable, "-c", str(self.config_path)], dict(os.environ),
                                     directory / "nats.log", self._port, start_timeout=60.0)

    @property
    def port(self) -> int:
        return self._port

    def _user(self, account: BrokerAccount) -> str:
        if account.role == "centre":
            publish = [nats_subject("telecare/v1/acks/#")]
            subscribe = [nats_subject("telecare/v1/hubs/#"), "$share.g." + nats_subject("telecare/v1/hubs/#")]
        else:
            publish = [nats_subject(f"telecare/v1/hubs/{account.username}/#")]
            subscribe = [nats_subject(ack_topic(account.username))]
        subscribe.append(JETSTREAM_DELIVERY)
        return (f'{{user: "{account.username}", password: "{account.password}", '
                f'allowed_connection_types: ["MQTT"], '
                f'permissions: {{publish: {{allow: {json.dumps(publish)}}}, '
                f'subscribe: {{allow: {json.dumps(subscribe)}}}}}}}')

    def config_text(self) -> str:
        users = "\n      ".join(self._user(a) for a in self.accounts)
        cluster = ""
        if self.cluster_port is not None:
            routes = json.dumps([f"nats-route://{HOST}:{port}" for port in self.routes])
            cluster = f'cluster {{ name: "eval", listen: "{HOST}:{self.cluster_port}", routes: {routes} }}\n'
        return (f'server_name: "{self.server_name}"\nlisten: "{HOST}:{self._client_port}"\n{cluster}'
                f'jetstream {{ store_dir: "{self.directory / "jetstream"}" }}\n'
                f'mqtt {{ listen: "{HOST}:{self._port}" }}\n'
                f"accounts {{\n  TELECARE {{\n    jetstream: enabled\n    users: [\n      {users}\n    ]\n  }}\n}}\n")

    def version(self) -> str:
        out = subprocess.run([self.executable, "--version"], capture_output=True, text=True, check=False).stdout
        match = re.search(r"\bv(\d\S*)", out)
        return match.group(1) if match else "unknown"

    def start(self) -> None:
        self._process.start()

    def stop(self) -> None:
        self._process.stop()

    def kill(self) -> None:
        self._process.kill()

    def pids(self) -> list[int]:
        return self._process.pids()

    def settings(self) -> dict[str, Any]:
        return {"jetstream_store": "file", "mqtt_ack_wait_s": 30, "mqtt_max_ack_pending": 1024}

    def log_tail(self, lines: int = 400) -> str:
        return self._process.tail(lines)

    def close(self) -> None:
        self._process.stop()


def rabbit_password_hash(password: str) -> str:
    """RabbitMQ's `rabbit_password_hashing_sha256`: base64(salt + SHA-256(salt + password)), 4-byte salt."""
    salt = secrets.token_bytes(4)
    return base64.b64encode(salt + sha256(salt + password.encode()).digest()).decode()


class RabbitBroker:
    """rabbitmq-server with only the rabbitmq_mqtt plugin, its own node name, ports, Erlang port mapper and folders.

    Users come from a definitions file; topic permissions on `amq.topic` (MQTT topics become routing
    keys with `.` for `/`) give each hub write on `telecare.v1.hubs.{username}.*` and read on
    `telecare.v1.acks.{username}`: RabbitMQ expands `{username}` as Mosquitto expands `%u`. The
    ordinary vhost permissions are `.*` for everyone (the MQTT plugin declares a queue per client),
    so the AMQP listener is off. `mqtt.prefetch` (messages in flight to a subscriber) stays at 10."""

    name = "rabbitmq"
    mqtt5 = False

    def __init__(self, directory: Path, accounts: list[BrokerAccount], script: str, *, home: Path | None = None,
                 epmd_port: int | None = None) -> None:
        """`home` (where Erlang keeps its cookie) and `epmd_port` shared by nodes that are to form a cluster."""
        self.directory, self.accounts, self.script = directory, accounts, script
        self._port = free_port()
        self.epmd_port = epmd_port if epmd_port is not None else free_port()
        self.dist_port = free_port()
        self.home = home if home is not None else directory / "home"
        directory.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        self.node_name = f"eval{self._port}@localhost"
        (directory / "definitions.json").write_text(json.dumps(self.definitions()))
        (directory / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        (directory / "rabbitmq-env.conf").write_text("")
        (directory / "rabbitmq.conf").write_text(
            f"listeners.tcp = none\nmqtt.listeners.tcp.default = {HOST}:{self._port}\n"
            "mqtt.allow_anonymous = false\nmqtt.vhost = /\nmqtt.exchange = amq.topic\nloopback_users = none\n"
            f"load_definitions = {directory / 'definitions.json'}\n"
            f"log.file.level = info\nlog.console = false\n")
        self.env = {**os.environ, "HOME": str(self.home), "RABBITMQ_NODENAME": self.node_name,
                    "RABBITMQ_CONF_ENV_FILE": str(directory / "rabbitmq-env.conf"),
                    "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
                    "RABBITMQ_ADVANCED_CONFIG_FILE": str(directory / "advanced.config"),
                    "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
                    "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
                    "RABBITMQ_LOG_BASE": str(directory / "log"),
                    "RABBITMQ_PID_FILE": str(directory / "rabbitmq.pid"),
                    "RABBITMQ_DIST_PORT": str(self.dist_port), "ERL_EPMD_PORT": str(self.epmd_port)}
        self._process = GroupProcess([script], self.env, directory / "rabbitmq.out", self._port,
                                     start_timeout=120.0)

    @property
    def port(self) -> int:
        return self._port

    def definitions(self) -> dict[str, Any]:
        users, permissions, topic_permissions = [], [], []
        for account in self.accounts:
            users.append({"name": account.username, "password_hash": rabbit_password_hash(account.password),
                          "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []})
            permissions.append({"user": account.username, "vhost": "/", "configure": ".*", "write": ".*",
                                "read": ".*"})
            if account.role == "centre":
                write, read = r"^telecare\.v1\.acks\.", r"^(\$share\.g\.)?telecare\.v1\.hubs\."
            else:
                write, read = r"^telecare\.v1\.hubs\.{username}\.", r"^telecare\.v1\.acks\.{username}$"
            topic_permissions.append({"user": account.username, "vhost": "/", "exchange": "amq.topic",
                                      "write": write, "read": read})
        return {"users": users, "vhosts": [{"name": "/"}], "permissions": permissions,
                "topic_permissions": topic_permissions}

    def version(self) -> str:
        return Path(self.script).parent.parent.name.removeprefix("rabbitmq_server-")

    def start(self) -> None:
        self._process.start()

    def stop(self) -> None:
        self._process.stop()

    def kill(self) -> None:
        self._process.kill()

    def pids(self) -> list[int]:
        return self._process.pids()

    def settings(self) -> dict[str, Any]:
        return {"mqtt_prefetch": 10, "queue_type": "classic durable (clean_session false)"}

    def log_tail(self, lines: int = 400) -> str:
        """The end of the node's own log file (RabbitMQ logs there, not to its standard output)."""
        found = sorted((self.directory / "log").glob("*.log"))
        texts = [f.read_text(errors="replace") for f in found]
        return "\n".join("\n".join(t.splitlines()[-lines:]) for t in texts)

    def close(self) -> None:
        self._process.stop()
        epmd = find_executable("epmd")
        if epmd is not None:  # the port mapper Erlang started for this node, on its own port: ours to stop
            subprocess.run([epmd, "-kill"], env=self.env, capture_output=True, check=False)


# --- our clients ---------------------------------------------------------------------------


class Peer:
    """paho 2.x as the hub and the centre use it: QoS 1, optionally a persistent session and manual acks.

    With `manual_ack`, each message is acknowledged after `on_message` has recorded it, on the
    connection it came by (the receiver's "PUBACK after commit"); `ack=False` never acknowledges."""

    def __init__(self, broker: EvalBroker, account: BrokerAccount | None, client_id: str, *,
                 persistent: bool = False, manual_ack: bool = False, ack: bool = True, reconnect: bool = False,
                 mqtt5: bool | None = None, inflight: int = 20,
                 resubscribe: tuple[str, ...] = (), on_record: Callable[[str, bytes], None] | None = None) -> None:
        self.broker = broker
        self.v5 = broker.mqtt5 if mqtt5 is None else mqtt5
        self.persistent, self.ack, self.manual_ack = persistent, ack, manual_ack
        self.resubscribe, self.on_record = resubscribe, on_record
        self.lock = threading.Lock()
        self.received: list[tuple[str, bytes]] = []
        self.connected = threading.Event()
        self.answered = threading.Event()
        """A CONNACK came, or the connection closed without one."""
        self.connack_failure: str | None = None
        self.session_present = False
        self.disconnects = 0
        self.subacks: dict[int, list[Any]] = {}
        self.pubacks: dict[int, Any] = {}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311,
                                  clean_session=None if self.v5 else not persistent, manual_ack=manual_ack,
                                  reconnect_on_failure=reconnect)
        if account is not None:
            self.client.username_pw_set(account.username, account.password)
        self.client.max_inflight_messages_set(inflight)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message

    def connect(self, timeout: float = WAIT_S) -> bool:
        """True once the broker has accepted the CONNECT."""
        self.answered.clear()
        if self.v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY_S if self.persistent else 0
            self.client.connect_async(HOST, self.broker.port, keepalive=30, clean_start=not self.persistent,
                                      properties=properties)
        else:
            self.client.connect_async(HOST, self.broker.port, keepalive=30)
        self.client.loop_start()
        self.answered.wait(timeout)
        return self.connected.is_set()

    def subscribe(self, topic: str, timeout: float = WAIT_S) -> str:
        """Subscribe at QoS 1: "granted", the refusal's reason, or "no SUBACK"."""
        result, mid = self.client.subscribe(topic, qos=1)
        if result != mqtt.MQTT_ERR_SUCCESS or mid is None:
            return f"not sent ({mqtt.error_string(result)})"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                codes = self.subacks.get(mid)
            if codes is not None:
                failed = [str(c) for c in codes if getattr(c, "is_failure", False)]
                return f"refused ({', '.join(failed)})" if failed else "granted"
            if not self.connected.is_set():
                return "connection closed"
            time.sleep(0.01)
        return "no SUBACK"

    def publish(self, topic: str, payload: bytes) -> int:
        return self.client.publish(topic, payload, qos=1).mid

    def puback(self, mid: int, timeout: float = WAIT_S) -> str:
        """"accepted", the PUBACK's failure reason, "connection closed" or "no PUBACK"."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if mid in self.pubacks:
                    reason = self.pubacks[mid]
                    return f"refused ({reason})" if getattr(reason, "is_failure", False) else "accepted"
            if not self.connected.is_set():
                return "connection closed"
            time.sleep(0.01)
        return "no PUBACK"

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def payloads(self) -> list[bytes]:
        with self.lock:
            return [payload for _, payload in self.received]

    def wait_count(self, n: int, timeout: float = WAIT_S) -> bool:
        deadline = time.monotonic() + timeout
        while self.count() < n:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def die(self) -> None:
        """Stop as a crashed process would: no DISCONNECT, no acks, the socket just closes."""
        self.client.loop_stop()
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _u: object, flags: Any, reason: Any, _p: object) -> None:
        if getattr(reason, "is_failure", False):
            self.connack_failure = str(reason)
        else:
            self.session_present = bool(flags.session_present)
            self.connected.set()
            for topic in self.resubscribe:  # as the receiver does on every connect
                client.subscribe(topic, qos=1)
        self.answered.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        self.connected.clear()
        self.disconnects += 1
        self.answered.set()

    def _on_subscribe(self, _c: mqtt.Client, _u: object, mid: int, codes: list[Any], _p: object) -> None:
        with self.lock:
            self.subacks[mid] = codes

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, reason: Any, _p: object) -> None:
        with self.lock:
            self.pubacks[mid] = reason

    def _on_message(self, client: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        payload = bytes(message.payload)
        with self.lock:
            self.received.append((message.topic, payload))
        if self.on_record is not None:
            self.on_record(message.topic, payload)
        if self.manual_ack and self.ack:
            client.ack(message.mid, message.qos)


def readings_topic(hub: str) -> str:
    return topic_for(hub, "reading")


def reading(n: int) -> Reading:
    return Reading(hub_id=HUB, device_id="oximeter-1", metric=Metric.SPO2, value=90.0 + n % 10, unit="%",
                   source_ts=NOW)


# --- the checks ----------------------------------------------------------------------------


def check_acl(broker: EvalBroker, accounts: dict[str, BrokerAccount]) -> dict[str, Any]:
    """What hub 1 can and cannot do. Every `*_delivered` but `own_publish_delivered` must be False."""
    result: dict[str, Any] = {}
    centre = Peer(broker, accounts[CENTRE], "eval-centre-acl")
    peers = [centre]
    try:
        if not centre.connect():
            return {"error": f"the centre account could not connect: {centre.connack_failure}"}
        result["centre_subscribe"] = centre.subscribe(SUBSCRIPTION)  # what the receiver subscribes to

        hub = Peer(broker, accounts[HUB], "eval-acl-own")
        peers.append(hub)
        hub.connect()
        mid = hub.publish(readings_topic(HUB), b"own")
        result["own_publish"] = hub.puback(mid)
        result["own_publish_delivered"] = centre.wait_count(1)

        spoofer = Peer(broker, accounts[HUB], "eval-acl-spoof")
        peers.append(spoofer)
        spoofer.connect()
        mid = spoofer.publish(readings_topic(OTHER_HUB), b"spoofed")
        result["spoof_publish"] = spoofer.puback(mid)
        time.sleep(QUIET_S)
        result["spoof_delivered"] = b"spoofed" in centre.payloads()

        forger = Peer(broker, accounts[HUB], "eval-acl-forge")
        listener = Peer(broker, accounts[HUB], "eval-acl-own-acks")
        peers += [forger, listener]
        listener.connect()
        listener.subscribe(ack_topic(HUB))
        forger.connect()
        mid = forger.publish(ack_topic(HUB), b"forged ack")
        result["forge_own_ack_publish"] = forger.puback(mid)
        time.sleep(QUIET_S)
        result["forged_ack_delivered"] = b"forged ack" in listener.payloads()

        snoop_acks = Peer(broker, accounts[HUB], "eval-acl-snoop-acks")
        snoop_hub = Peer(broker, accounts[HUB], "eval-acl-snoop-hub")
        peers += [snoop_acks, snoop_hub]
        snoop_acks.connect()
        result["subscribe_other_acks"] = snoop_acks.subscribe(ack_topic(OTHER_HUB))
        snoop_hub.connect()
        result["subscribe_other_hub"] = snoop_hub.subscribe(f"telecare/v1/hubs/{OTHER_HUB}/#")
        internal = Peer(broker, accounts[HUB], "eval-acl-internal")
        peers.append(internal)
        internal.connect()
        result["subscribe_internal"] = internal.subscribe(INTERNAL_SNOOP)
        other = Peer(broker, accounts[OTHER_HUB], "eval-acl-other")
        peers.append(other)
        other.connect()
        other.puback(other.publish(topic_for(OTHER_HUB, "event", "manual_alarm"), b"other home's alarm"))
        centre.puback(centre.publish(ack_topic(OTHER_HUB), b"other hub's ack"))
        time.sleep(QUIET_S)
        result["other_acks_delivered"] = b"other hub's ack" in snoop_acks.payloads()
        result["other_hub_delivered"] = b"other home's alarm" in snoop_hub.payloads()
        result["internal_delivered"] = any(b"other home's alarm" in p or b"other hub's ack" in p
                                           for p in internal.payloads())

        anonymous = Peer(broker, None, "eval-acl-anonymous")
        peers.append(anonymous)
        result["anonymous_connected"] = anonymous.connect()
        wrong = Peer(broker, BrokerAccount(HUB, "wrong-password", "hub"), "eval-acl-wrong")
        peers.append(wrong)
        result["wrong_password_connected"] = wrong.connect()
        result["passed"] = bool(result["own_publish_delivered"]) and not any(
            result[k] for k in ("spoof_delivered", "forged_ack_delivered", "other_acks_delivered",
                                "other_hub_delivered", "internal_delivered", "anonymous_connected",
                                "wrong_password_connected"))
        return result
    finally:
        for peer in peers:
            peer.close()


def check_offline_queue(broker: EvalBroker, accounts: dict[str, BrokerAccount], n: int = 100) -> dict[str, Any]:
    """Messages published while the centre's persistent session is offline reach it when it returns."""
    centre = Peer(broker, accounts[CENTRE], "eval-centre-offline", persistent=True, manual_ack=True)
    centre.connect()
    centre.subscribe(readings_topic("+"))
    centre.close()
    hub = Peer(broker, accounts[HUB], "eval-hub-offline", persistent=True)
    try:
        hub.connect()
        mids = [hub.publish(readings_topic(HUB), json.dumps({"seq": i}).encode()) for i in range(n)]
        accepted = sum(hub.puback(mid) == "accepted" for mid in mids)
    finally:
        hub.close()
    back = Peer(broker, accounts[CENTRE], "eval-centre-offline", persistent=True, manual_ack=True)
    try:
        back.connect()
        back.wait_count(n, timeout=20)
        time.sleep(0.5)
        distinct = len(set(back.payloads()))
        return {"sent": n, "pubacked": accepted, "delivered": distinct, "session_present": back.session_present,
                "passed": distinct == n}
    finally:
        back.close()


def check_redelivery(broker: EvalBroker, accounts: dict[str, BrokerAccount], n: int = 50) -> dict[str, Any]:
    """A centre that dies before acknowledging gets every message again on its next connection."""
    first = Peer(broker, accounts[CENTRE], "eval-centre-redeliver", persistent=True, manual_ack=True, ack=False)
    first.connect()
    first.subscribe(readings_topic("+"))
    hub = Peer(broker, accounts[HUB], "eval-hub-redeliver", persistent=True)
    try:
        hub.connect()
        for i in range(n):
            hub.publish(readings_topic(HUB), json.dumps({"seq": i}).encode())
        first.wait_count(1)
        time.sleep(1.0)  # as many as the broker lets be in flight without an ack
        before = first.count()
        first.die()
        time.sleep(0.5)
        second = Peer(broker, accounts[CENTRE], "eval-centre-redeliver", persistent=True, manual_ack=True)
        try:
            second.connect()
            second.wait_count(n, timeout=40)
            time.sleep(0.5)
            got = {json.loads(p)["seq"] for p in second.payloads()}
            return {"sent": n, "received_unacked_before_dying": before, "delivered_after": len(got),
                    "lost": n - len(got), "passed": len(got) == n}
        finally:
            second.close()
    finally:
        hub.close()


def _restart_later(broker: EvalBroker, kill_at: float, down_s: float, out: dict[str, Any]) -> threading.Thread:
    """Kill the broker `kill_at` s from now, start it again `down_s` later; `out` gets the times."""

    def run() -> None:
        time.sleep(kill_at)
        broker.kill()
        killed = time.monotonic()
        time.sleep(down_s)
        try:
            broker.start()
            out["restart_s"] = round(time.monotonic() - killed, 2)
        except BrokerStartError as error:
            out["restart_error"] = str(error)[-500:]

    thread = threading.Thread(target=run, name="broker-restart", daemon=True)
    thread.start()
    return thread


def _settle(count: Callable[[], int], quiet_s: float = 3.0, timeout: float = 90.0) -> None:
    """Until `count()` has not moved for `quiet_s` (or `timeout` passes)."""
    deadline = time.monotonic() + timeout
    last, since = count(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return


def check_crash_broker_only(broker: EvalBroker, accounts: dict[str, BrokerAccount], rate: float,
                            seconds: float) -> dict[str, Any]:
    """SIGKILL and restart under a steady QoS 1 stream from a plain publisher (no outbox, no end-to-end ack):
    what the broker PUBACKed and then never delivered is the broker's own loss."""
    subscription = readings_topic("+")
    centre = Peer(broker, accounts[CENTRE], "eval-centre-crash", persistent=True, manual_ack=True, reconnect=True,
                  resubscribe=(subscription,))
    hub = Peer(broker, accounts[HUB], "eval-hub-crash", persistent=True, reconnect=True, inflight=DEFAULT_WINDOW)
    times: dict[str, Any] = {}
    try:
        centre.connect()
        hub.connect()
        n = int(rate * seconds)
        restart = _restart_later(broker, seconds / 3, 0.5, times)
        mids: dict[int, int] = {}
        start = time.monotonic()
        for i in range(n):
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
            mids[hub.publish(readings_topic(HUB), json.dumps({"seq": i}).encode())] = i
        restart.join()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with hub.lock:
                if all(mid in hub.pubacks for mid in mids):
                    break
            time.sleep(0.2)
        _settle(centre.count)
        with hub.lock:
            pubacked = {seq for mid, seq in mids.items() if mid in hub.pubacks}
        seqs = Counter(json.loads(p)["seq"] for p in centre.payloads())
        return {"published": n, "pubacked": len(pubacked), "delivered": len(seqs),
                "lost_after_puback": len(pubacked - set(seqs)), "duplicates": sum(seqs.values()) - len(seqs),
                **times}
    finally:
        hub.close()
        centre.close()


def check_crash_end_to_end(broker: EvalBroker, accounts: dict[str, BrokerAccount], rate: float, seconds: float,
                           outbox: Path) -> dict[str, Any]:
    """SIGKILL and restart under a steady stream from our hub's `Uplink`, the centre acknowledging each
    message end to end after recording it: 0 lost expected, duplicates counted."""
    received: Counter[uuid.UUID] = Counter()
    lock = threading.Lock()
    centre_account = accounts[CENTRE]

    def record(_topic: str, payload: bytes) -> None:
        message = decode(payload)
        with lock:
            received[message.id] += 1
        centre.client.publish(ack_topic(message.hub_id), encode(Ack(hub_id=message.hub_id, stored=(message.id,))),
                              qos=1)

    subscription = readings_topic("+")
    centre = Peer(broker, centre_account, "eval-centre-e2e", persistent=True, manual_ack=True, reconnect=True,
                  resubscribe=(subscription,), on_record=record)
    uplink = Uplink(hub_id=HUB, password=accounts[HUB].password, host=HOST, port=broker.port, outbox_path=outbox,
                    mqtt_v5=broker.mqtt5, reconnect_max_delay_s=2)
    times: dict[str, Any] = {}
    sent: list[uuid.UUID] = []
    try:
        centre.connect()
        uplink.start()
        uplink.connected.wait(WAIT_S)
        n = int(rate * seconds)
        restart = _restart_later(broker, seconds / 3, 0.5, times)
        start = time.monotonic()
        for i in range(n):
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
            message = reading(i)
            uplink.send(message)
            sent.append(message.id)
        restart.join()
        delivered_all = uplink.wait_until_delivered(120)
        _settle(centre.count, quiet_s=1.0)
        with lock:
            distinct = set(received)
            total = sum(received.values())
        return {"sent": n, "acknowledged_all": delivered_all, "delivered": len(distinct),
                "lost": len(set(sent) - distinct), "duplicates": total - len(distinct), "hub_resent": uplink.resent,
                **times}
    finally:
        uplink.stop(timeout=2)
        centre.close()


def check_mqtt5_and_shared(broker: EvalBroker, accounts: dict[str, BrokerAccount], n: int = 40) -> dict[str, Any]:
    """An MQTT 5 CONNECT, then `$share/g/...` with two subscribers (MQTT 5 if accepted, else 3.1.1)."""
    probe = Peer(broker, accounts[CENTRE], "eval-v5-probe", mqtt5=True)
    mqtt5 = probe.connect()
    result: dict[str, Any] = {"mqtt5": mqtt5, "mqtt5_refusal": None if mqtt5 else (probe.connack_failure or
                                                                                   "connection closed")}
    probe.close()
    topic = topic_for(HUB, "heartbeat")
    members = [Peer(broker, accounts[CENTRE], f"eval-share-{i}", mqtt5=mqtt5, manual_ack=True) for i in range(2)]
    hub = Peer(broker, accounts[HUB], "eval-share-hub")
    try:
        subacks = []
        for member in members:
            member.connect()
            subacks.append(member.subscribe("$share/g/telecare/v1/hubs/+/heartbeat"))
        hub.connect()
        for i in range(n):
            hub.publish(topic, json.dumps({"seq": i}).encode())
        time.sleep(3.0)
        counts = [m.count() for m in members]
        if sum(counts) == n and all(counts):
            verdict = "shared: the stream was split between the two subscribers"
        elif all(c == n for c in counts):
            verdict = "not shared: each subscriber got every message"
        elif any(s != "granted" for s in subacks) or not all(m.connected.is_set() for m in members):
            verdict = "refused"
        else:
            verdict = "no delivery: `$share/...` taken as an ordinary topic name"
        result["shared_subscription"] = {"subacks": subacks, "delivered_per_subscriber": counts, "sent": n,
                                         "verdict": verdict}
        return result
    finally:
        hub.close()
        for member in members:
            member.close()


def _wait_progress(count: Callable[[], int], n: int, stall_s: float = 15.0, timeout: float = 300.0) -> bool:
    """Until `count()` reaches `n`: False if it stalls for `stall_s` or `timeout` passes."""
    deadline = time.monotonic() + timeout
    last, since = count(), time.monotonic()
    while (now := count()) < n:
        if now != last:
            last, since = now, time.monotonic()
        if time.monotonic() - since > stall_s or time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def check_crash_backlog(broker: EvalBroker, accounts: dict[str, BrokerAccount], n: int = 1000,
                        pause_s: float = 0.0) -> dict[str, Any]:
    """Is a PUBACK durable? The centre's session is offline; the hub publishes `n` messages and has every
    PUBACK; `pause_s` later the broker is killed (SIGKILL) and started again; how many reach the centre?

    The centre's session is made 2 s before the hub publishes, so a periodic save has it; only the
    messages are at stake."""
    subscription = readings_topic("+")
    client_id = f"eval-centre-backlog-{pause_s:g}"
    centre = Peer(broker, accounts[CENTRE], client_id, persistent=True, manual_ack=True)
    centre.connect()
    centre.subscribe(subscription)
    centre.close()
    time.sleep(2.0)
    hub = Peer(broker, accounts[HUB], f"eval-hub-backlog-{pause_s:g}", persistent=True, inflight=DEFAULT_WINDOW)
    try:
        hub.connect()
        mids = [hub.publish(readings_topic(HUB), json.dumps({"seq": i}).encode()) for i in range(n)]
        accepted = sum(hub.puback(mid, timeout=60) == "accepted" for mid in mids)
    finally:
        hub.close()
    time.sleep(pause_s)
    broker.kill()
    started = time.monotonic()
    broker.start()
    restart_s = round(time.monotonic() - started, 2)
    back = Peer(broker, accounts[CENTRE], client_id, persistent=True, manual_ack=True,
                reconnect=True, resubscribe=(subscription,))
    try:
        back.connect(timeout=30)
        _wait_progress(back.count, n, stall_s=5.0, timeout=120)
        seqs = Counter(json.loads(p)["seq"] for p in back.payloads())
        return {"pause_before_kill_s": pause_s, "pubacked": accepted, "delivered_after_crash": len(seqs),
                "lost_after_puback": accepted - len(seqs), "restart_s": restart_s}
    finally:
        back.close()


def check_rate(broker: EvalBroker, accounts: dict[str, BrokerAccount], n: int) -> dict[str, Any]:
    """A QoS 1 stream of `n` readings, one publisher (hub window in flight) to one manually acknowledging
    centre session: msgs/s from the first publish to the last delivery, and the broker's RSS after."""
    payloads = [encode(reading(i)) for i in range(n)]
    centre = Peer(broker, accounts[CENTRE], "eval-centre-rate", persistent=True, manual_ack=True)
    hub = Peer(broker, accounts[HUB], "eval-hub-rate", persistent=True, inflight=DEFAULT_WINDOW)
    try:
        centre.connect()
        centre.subscribe(readings_topic("+"))
        hub.connect()
        start = time.monotonic()
        for payload in payloads:
            hub.publish(readings_topic(HUB), payload)
        complete = _wait_progress(centre.count, n)
        elapsed = time.monotonic() - start
        return {"messages": n, "complete": complete, "seconds": round(elapsed, 2),
                "msgs_per_s": round(centre.count() / elapsed, 1), "rss_mb_after": rss_mb(broker.pids())}
    finally:
        hub.close()
        centre.close()


def check_pair(first: EvalBroker, second: EvalBroker, accounts: dict[str, BrokerAccount], rate: float,
               seconds: float, outbox: Path, log_of_survivor: Callable[[], str]) -> dict[str, Any]:
    """Two clustered nodes, already running. The hub's `Uplink` has node 1 first and node 2 as its
    fallback; the centre's session is on node 2. Node 1 is killed under the stream and not started
    again: does everything still reach the centre through node 2?"""
    received: Counter[uuid.UUID] = Counter()
    lock = threading.Lock()

    def record(_topic: str, payload: bytes) -> None:
        message = decode(payload)
        with lock:
            received[message.id] += 1
        centre.client.publish(ack_topic(message.hub_id), encode(Ack(hub_id=message.hub_id, stored=(message.id,))),
                              qos=1)

    subscription = readings_topic("+")
    centre = Peer(second, accounts[CENTRE], "eval-centre-pair", persistent=True, manual_ack=True, reconnect=True,
                  resubscribe=(subscription,), on_record=record)
    uplink = Uplink(hub_id=HUB, password=accounts[HUB].password, host=HOST, port=first.port,
                    fallbacks=[(HOST, second.port)], outbox_path=outbox, mqtt_v5=False, reconnect_max_delay_s=2)
    sent: list[uuid.UUID] = []
    result: dict[str, Any] = {"nodes": 2}
    try:
        deadline = time.monotonic() + 60
        while not centre.connect(timeout=5) and time.monotonic() < deadline:  # a cluster elects its leaders first
            centre.close()
            time.sleep(1)
        result["centre_connected"] = centre.connected.is_set()
        uplink.start()
        result["hub_connected"] = uplink.connected.wait(30)
        n = int(rate * seconds)
        killed_at = n // 3
        for i in range(n):
            if i == killed_at:
                first.kill()
            message = reading(i)
            uplink.send(message)
            sent.append(message.id)
            time.sleep(1 / rate)
        result["acknowledged_all"] = uplink.wait_until_delivered(60)
        result["hub_connected_at_end"] = uplink.connected.is_set()
        with lock:
            distinct = set(received)
        after = sent[killed_at:]
        result.update({"sent": n, "delivered": len(distinct), "still_in_hub_outbox": uplink.unacked,
                       "delivered_after_kill": len(set(after) & distinct), "hub_failovers": uplink.failovers})
        probe = Peer(second, accounts[CENTRE], "eval-centre-pair-new", persistent=True)
        result["new_session_on_survivor"] = probe.connect(timeout=10) and probe.subscribe(subscription)
        probe.close()
        result["survivor_log"] = [line[-240:] for line in log_of_survivor().splitlines()
                                  if re.search(r"quorum|leader|majority|timeout|mqtt.*(error|fail)", line,
                                               re.IGNORECASE)][-4:]
        return result
    finally:
        uplink.stop(timeout=1)
        centre.close()


def check_nats_pair(directory: Path, accounts: dict[str, BrokerAccount], executable: str, rate: float,
                    seconds: float) -> dict[str, Any]:
    """`check_pair` on two NATS nodes clustered on loopback, JetStream on both."""
    ports = (free_port(), free_port())
    nodes = [NatsBroker(directory / f"node{i + 1}", list(accounts.values()), executable, server_name=f"eval_n{i + 1}",
                        cluster_port=ports[i], routes=(ports[1 - i],)) for i in range(2)]
    try:
        for node in nodes:
            node.start()
        return check_pair(nodes[0], nodes[1], accounts, rate, seconds, directory / "outbox.db",
                          lambda: nodes[1].log_tail(400))
    finally:
        for node in nodes:
            node.close()


def check_rabbit_pair(directory: Path, accounts: dict[str, BrokerAccount], script: str, rate: float,
                      seconds: float) -> dict[str, Any]:
    """`check_pair` on two RabbitMQ nodes clustered on loopback (one Erlang cookie and port mapper):
    node 2 joins node 1 with `rabbitmqctl join_cluster`."""
    home = directory / "home"
    epmd_port = free_port()
    nodes = [RabbitBroker(directory / f"node{i + 1}", list(accounts.values()), script, home=home,
                          epmd_port=epmd_port) for i in range(2)]
    first, second = nodes
    ctl = str(Path(script).with_name("rabbitmqctl"))
    joined: list[str] = []
    try:
        for node in nodes:
            node.start()
        for command in (["stop_app"], ["join_cluster", first.node_name], ["start_app"]):
            done = subprocess.run([ctl, "-n", second.node_name, *command], env=second.env, capture_output=True,
                                  text=True, timeout=180, check=False)
            joined.append(f"{command[0]}: exit {done.returncode}")
            if done.returncode != 0:
                return {"nodes": 2, "cluster_formed": False, "steps": joined, "error": done.stderr[-500:]}
        deadline = time.monotonic() + 120
        while not listening(second.port) and time.monotonic() < deadline:
            time.sleep(0.2)
        result = check_pair(first, second, accounts, rate, seconds, directory / "outbox.db", second.log_tail)
        return {"cluster_formed": True, "steps": joined, **result}
    finally:
        for node in nodes:
            node.close()


# --- the run -------------------------------------------------------------------------------


def make_accounts() -> dict[str, BrokerAccount]:
    return {HUB: BrokerAccount.generate(HUB, "hub"), OTHER_HUB: BrokerAccount.generate(OTHER_HUB, "hub"),
            CENTRE: BrokerAccount.generate(CENTRE, "centre")}


def rabbitmq_script() -> str:
    """The release's own rabbitmq-server start script (not sbin's wrapper, which switches user), or why
    there is none, starting with "not "."""
    found = shutil.which("rabbitmq-server", path=os.pathsep.join(RABBITMQ_BIN_DIRS))
    if found is None:
        return "not installed: rabbitmq-server (apt-get install rabbitmq-server)"
    script = Path(found).resolve()
    release = script.parent.parent
    if not release.name.startswith("rabbitmq_server-"):
        return f"not a known layout: {script.name} is not in a rabbitmq_server-<version> release"
    if not any(release.glob("plugins/rabbitmq_mqtt-*")):
        return "not usable: rabbitmq-server has no rabbitmq_mqtt plugin"
    return str(script)


def make_broker(name: str, directory: Path, accounts: list[BrokerAccount]) -> EvalBroker | str:
    """The broker, or why it is skipped."""
    if name == "mosquitto":
        if find_mosquitto() is None:
            return "mosquitto is not installed (apt-get install mosquitto)"
        return MosquittoBroker(directory, accounts)
    if name == "nats":
        executable = find_executable("nats-server")
        if executable is None:
            return "nats-server is not installed (apt-get install nats-server)"
        return NatsBroker(directory, accounts, executable)
    if name == "rabbitmq":
        script = rabbitmq_script()
        return script if script.startswith("not ") else RabbitBroker(directory, accounts, script)
    raise ValueError(f"unknown broker {name!r}: mosquitto, nats or rabbitmq")


def evaluate(broker: EvalBroker, accounts: dict[str, BrokerAccount], args: argparse.Namespace,
             directory: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"broker": broker.name, "version": broker.version(),
                              "mqtt_version_used": "5" if broker.mqtt5 else "3.1.1", "settings": broker.settings()}
    started = time.monotonic()
    broker.start()
    result["start_s"] = round(time.monotonic() - started, 2)
    time.sleep(1.0)
    result["rss_mb_idle"] = rss_mb(broker.pids())
    checks: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("acl", lambda: check_acl(broker, accounts)),
        ("offline_queue", lambda: check_offline_queue(broker, accounts)),
        ("redelivery", lambda: check_redelivery(broker, accounts)),
        ("protocol", lambda: check_mqtt5_and_shared(broker, accounts)),
        ("rate", lambda: check_rate(broker, accounts, args.messages)),
        ("crash_backlog", lambda: check_crash_backlog(broker, accounts)),
        ("crash_backlog_after_2s", lambda: check_crash_backlog(broker, accounts, pause_s=2.0)),
        ("crash_broker_only", lambda: check_crash_broker_only(broker, accounts, args.rate, args.seconds)),
        ("crash_end_to_end", lambda: check_crash_end_to_end(broker, accounts, args.rate, args.seconds,
                                                            directory / "outbox.db")),
    ]
    for name, check in checks:
        try:
            result[name] = check()
        except Exception as error:  # one failed check must not hide the others' figures
            result[name] = {"error": f"{type(error).__name__}: {error}"[:500]}
    result["wall_s"] = round(time.monotonic() - started, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default="mosquitto,nats,rabbitmq")
    parser.add_argument("--messages", type=int, default=5000, help="readings in the rate check")
    parser.add_argument("--rate", type=float, default=200.0, help="msgs/s of the steady stream in the crash checks")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of that stream; the kill is at a third")
    parser.add_argument("--nats-pair", action="store_true",
                        help="also run two NATS nodes as a cluster and kill one under the stream")
    parser.add_argument("--rabbitmq-pair", action="store_true",
                        help="also run two RabbitMQ nodes as a cluster and kill one under the stream")
    args = parser.parse_args()
    baseline: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="broker-eval-") as tmp:
        for name in filter(None, args.brokers.split(",")):
            accounts = make_accounts()
            made = make_broker(name, Path(tmp) / name, list(accounts.values()))
            if isinstance(made, str):
                print(json.dumps({"broker": name, "skipped": made}), flush=True)
                continue
            try:
                result = evaluate(made, accounts, args, Path(tmp) / name)
            except BrokerStartError as error:
                result = {"broker": name, "error": str(error)[-800:]}
            finally:
                made.close()
            rate = result.get("rate", {})
            if name == "mosquitto" and "msgs_per_s" in rate:
                baseline = result
            if baseline is not None and "msgs_per_s" in rate and baseline["rate"]["msgs_per_s"]:
                result["ratio"] = {
                    "msgs_per_s": round(rate["msgs_per_s"] / baseline["rate"]["msgs_per_s"], 2),
                    "rss_mb_after": round(rate["rss_mb_after"] / max(baseline["rate"]["rss_mb_after"], 0.1), 1),
                    "rss_mb_idle": round(result["rss_mb_idle"] / max(baseline["rss_mb_idle"], 0.1), 1)}
            result["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
            print(json.dumps(result), flush=True)
        nats = find_executable("nats-server")
        if args.nats_pair and nats is not None:
            pair = check_nats_pair(Path(tmp) / "nats-pair", make_accounts(), nats, args.rate, args.seconds)
            print(json.dumps({"broker": "nats-cluster-of-2", **pair,
                              "loadavg": Path("/proc/loadavg").read_text().split()[:3]}), flush=True)
        script = rabbitmq_script()
        if args.rabbitmq_pair and not script.startswith("not "):
            pair = check_rabbit_pair(Path(tmp) / "rabbitmq-pair", make_accounts(), script, args.rate, args.seconds)
            print(json.dumps({"broker": "rabbitmq-cluster-of-2", **pair,
                              "loadavg": Path("/proc/loadavg").read_text().split()[:3]}), flush=True)


if __name__ == "__main__":
    main()
