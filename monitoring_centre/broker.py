"""An MQTT broker for the demo and the tests, with per-hub accounts and topic ACLs.

Mosquitto is the real thing: `Mosquitto` runs it as a subprocess from a generated config.
When it is not installed, `EmbeddedBroker` runs amqtt in a thread with the same accounts
and the same ACL semantics, so the demo still works from a plain `pip install`. Both
listen on 127.0.0.1 only and refuse anonymous clients.

ACL, on both brokers (`telecare_protocol.topics.HUB_ACL` and `CENTRE_ACL`):
- every account may publish under `telecare/v1/hubs/<its username>/` (`BROKER_ACL_PATTERN`);
  a hub's username is its hub id, so a hub can only ever speak as itself. Like mosquitto's
  `pattern` lines this applies to centre accounts too, which is harmless: no hub has a
  centre's username.
- every account may read its own ack topic `telecare/v1/acks/<its username>` and no other
  (`ACK_ACL_PATTERN`): a hub hears the centre confirm its own messages only.
- centre accounts may read (subscribe to and receive) everything under `telecare/v1/hubs/`,
  and publish the acks under `telecare/v1/acks/`. Hubs cannot write there.
- hubs read nothing else: one home must not see another home's alarms.

Accounts: a hub's username is its hub id, checked by `monitoring_centre.enrolment.check_hub_id`
(the protocol's id pattern, and never a reserved name such as `centre`); two accounts of one
name are refused (`password_file_text`), because the broker would let only one of them in.

No retained messages, on both brokers. Mosquitto has no per-topic retain ACL, and a broker that
keeps retained messages keeps whatever a hub retains under its own prefix for ever, in memory
and in every autosave (100 MB of them once meant 63 MB/s of writes and ten times the alarm
latency). The protocol needs none: the hub's `status` and its last will are plain QoS 1
messages, which the centre's persistent sessions receive even when published while it is
down, and liveness is judged by heartbeats. So Mosquitto runs with `retain_available false`:
a client that publishes a retained message is disconnected, and one whose last will is
retained is refused at CONNECT ("Retain not supported"). The embedded broker keeps nothing
retained either (`_NoRetainBroker`: the message is delivered, never kept).
"""

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Protocol, Self

from amqtt.broker import Broker as _AmqttBroker
from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from monitoring_centre.enrolment import check_hub_id
from telecare_protocol.codec import MAX_PAYLOAD_BYTES
from telecare_protocol.topics import ACKS_ROOT, CENTRE_ACL, HUB_ACL, ROOT

HOST = "127.0.0.1"
_log = logging.getLogger(__name__)
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin")
"""Debian and Homebrew-style installs put mosquitto in sbin, which is often not on a user's PATH."""

PBKDF2_ITERATIONS = 101
"""What `mosquitto_passwd` 2.x writes. Weak against offline guessing of human passwords; our
broker passwords are random tokens (`BrokerAccount.generate`), where it does not matter."""

_FORBIDDEN_IN_USERNAME = frozenset("+#/:")

RETAIN_AVAILABLE = "retain_available false"
"""Mosquitto's setting for the no-retained-messages rule (module docstring); `deploy/centre/mosquitto.conf`
sets the same."""

MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 4096
"""Mosquitto's `max_packet_size`: the protocol's largest payload (64 KiB) plus room for the MQTT
headers (fixed header, a topic of about 100 bytes, packet id, MQTT 5 properties). A client
sending more is disconnected at the broker; up to this, an oversized payload still reaches
ingest and is dead-lettered as `too_large`. `deploy/centre/mosquitto.conf` sets the same value."""


class BrokerStartError(RuntimeError):
    """The broker did not come up; the message carries the end of its log."""


@dataclass(frozen=True)
class BrokerAccount:
    """A broker login. A hub's username is its hub id; it appears in topics and ACLs."""

    username: str
    password: str = field(repr=False)
    role: Literal["hub", "centre"]

    def __post_init__(self) -> None:
        name = self.username
        check_username(name)
        if self.role == "hub":
            check_hub_id(name)  # a hub's username is its id: the protocol's pattern, never a reserved name
        if not self.password:
            raise ValueError(f"broker account {name!r} has an empty password")
        if self.role not in ("hub", "centre"):
            raise ValueError(f"broker account {name!r} has unknown role {self.role!r}")

    @classmethod
    def generate(cls, username: str, role: Literal["hub", "centre"]) -> "BrokerAccount":
        """An account with a fresh random password (there are no default passwords)."""
        return cls(username, secrets.token_urlsafe(24), role)


def check_username(name: str) -> None:
    """Raise `ValueError` for a username no broker account may have.

    `+`/`#` would turn `%u` in the ACL pattern into a wildcard (mosquitto #1610); `/` would
    let a hub claim a sub-tree; `:` and whitespace would break the password and ACL files."""
    if not name or any(c in _FORBIDDEN_IN_USERNAME or c.isspace() or not c.isprintable() for c in name):
        raise ValueError(f"invalid broker username {name!r}: no '+', '#', '/', ':', whitespace or control chars")


def password_file_text(entries: Iterable[tuple[str, str]]) -> str:
    """A mosquitto 2.x `password_file` from (username, `$7$` hash) pairs, one line each, in order.

    Raises `ValueError` for a username `check_username` refuses, and for a second entry of a
    name: Mosquitto would let only one of the two accounts in (a hub enrolled as `centre` shut
    the real centre out that way)."""
    seen: set[str] = set()
    lines = []
    for username, password_hash in entries:
        check_username(username)
        if username in seen:
            raise ValueError(f"two broker accounts named {username!r}: the broker would let only one of them in")
        seen.add(username)
        lines.append(f"{username}:{password_hash}\n")
    return "".join(lines)


def _pbkdf2(password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, dklen=64)


def mosquitto_password_hash(password: str, *, iterations: int = PBKDF2_ITERATIONS) -> str:
    """`$7$<iterations>$<b64 salt>$<b64 PBKDF2-SHA512>`: mosquitto 2.x's password-file hash."""
    if iterations < 1:
        raise ValueError("iterations must be positive")
    salt = secrets.token_bytes(12)
    digest = _pbkdf2(password, salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def mosquitto_password_line(username: str, password: str) -> str:
    """One line of a mosquitto 2.x `password_file`, as `mosquitto_passwd -b` writes it.

    Hand-written so the demo does not need `mosquitto_passwd` on the PATH.
    """
    check_username(username)  # same username rules as everywhere else
    return f"{username}:{mosquitto_password_hash(password)}"


def verify_mosquitto_password(password_hash: str, password: str) -> bool:
    """Check a password against a `$7$` hash (used by the embedded broker)."""
    try:
        _, kind, iterations, salt_b64, digest_b64 = password_hash.split("$")
        if kind != "7":
            return False
        salt = base64.b64decode(salt_b64, validate=True)
        expected = base64.b64decode(digest_b64, validate=True)
        actual = _pbkdf2(password, salt, int(iterations))
    except ValueError:  # wrong field count, bad base64 (binascii.Error) or iteration count
        return False
    return hmac.compare_digest(actual, expected)


def find_mosquitto() -> str | None:
    """The mosquitto executable: on the PATH, or in the sbin directories."""
    found = shutil.which("mosquitto")
    if found is None:
        found = shutil.which("mosquitto", path=os.pathsep.join(SBIN_DIRS))
    return found


class Broker(Protocol):
    """What the demo and the tests need of either broker."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def mqtt5(self) -> bool:
        """False for the embedded broker, which speaks MQTT 3.1.1 only."""
        ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _accounts_by_name(accounts: Iterable[BrokerAccount]) -> dict[str, BrokerAccount]:
    by_name: dict[str, BrokerAccount] = {}
    for account in accounts:
        if account.username in by_name:
            raise ValueError(f"duplicate broker username {account.username!r}")
        by_name[account.username] = account
    return by_name


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds password hashes or points at them)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to a file that already existed


class Mosquitto:
    """A mosquitto subprocess on 127.0.0.1 with generated config, password and ACL files.

    Durability of queued QoS 1 messages (for a centre with a persistent session):
    - `persistence true`: sessions, subscriptions and queued messages are saved to
      `mosquitto.db` in `directory` on a clean shutdown (SIGTERM) and every
      `autosave_interval` seconds, and reloaded on start. A graceful `restart()` loses nothing.
    - A crash (SIGKILL, power loss) loses whatever arrived since the last autosave, although
      the hub already got its PUBACK (PUBACK is not tied to a disk write, mosquitto #1855);
      the hub's outbox cannot cover that. `autosave_interval=1` bounds the loss to about a
      second, at the price of rewriting the whole database every second, which is cheap for
      a demo and small sites and grows with the queue. `autosave_on_changes` would save per
      message instead, which is quadratic for a large backlog.
    - `max_queued_messages` (default 1000) drops further messages for an offline client
      *silently* (mosquitto #1593). We set a large finite limit rather than 0 ("unlimited"),
      which dropped messages in some 2.0.x releases (mosquitto #1956, #2879). Size it to
      (messages per minute from all hubs) x (longest centre outage in minutes).
      `max_queued_bytes 0` means no byte limit.
    - `max_inflight_messages` stays at mosquitto's 20: it limits unacknowledged messages on
      the wire, not what is kept, so raising it (or 0, no limit) would not stop drops; it
      would only flood a reconnecting centre with its whole backlog at once.
    """

    mqtt5 = True

    def __init__(
        self,
        directory: Path | str,
        accounts: Iterable[BrokerAccount],
        *,
        port: int | None = None,
        executable: str | None = None,
        autosave_interval: int = 1,
        max_queued_messages: int = 100_000,
        start_timeout: float = 10.0,
    ) -> None:
        found = executable or find_mosquitto()
        if found is None:
            raise FileNotFoundError("mosquitto is not installed (looked on the PATH and in /usr/sbin, /usr/local/sbin)")
        self.executable = found
        self.directory = Path(directory)
        self.accounts = _accounts_by_name(accounts)
        self._port = port if port is not None else _free_port()
        self.autosave_interval = autosave_interval
        self.max_queued_messages = max_queued_messages
        self.start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        return self._port

    @property
    def config_path(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.directory / "mosquitto.log"

    @property
    def db_path(self) -> Path:
        return self.directory / "mosquitto.db"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def config_text(self) -> str:
        lines = [
            f"listener {self._port} {HOST}",
            "allow_anonymous false",
            f"password_file {self.directory / 'passwd'}",
            f"acl_file {self.directory / 'acl'}",
            "persistence true",
            # Trailing separator: mosquitto 1.x concatenates location and file name.
            f"persistence_location {self.directory}{os.sep}",
            f"autosave_interval {self.autosave_interval}",
            f"max_queued_messages {self.max_queued_messages}",
            "max_queued_bytes 0",
            "max_inflight_messages 20",
            f"max_packet_size {MAX_PACKET_BYTES}",
            RETAIN_AVAILABLE,  # no retained messages (module docstring)
            "log_dest stderr",  # captured to mosquitto.log, with errors from before logging starts
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # As root, mosquitto drops to user "mosquitto", which cannot read our 0600 files.
            import pwd

            lines.append(f"user {pwd.getpwuid(0).pw_name}")
        return "\n".join(lines) + "\n"

    def acl_text(self) -> str:
        lines = ["# Each account may write only under its own username (a hub's id), and read only its own acks.",
                 *HUB_ACL, ""]
        for account in self.accounts.values():
            if account.role == "centre":
                lines += [f"user {account.username}", *CENTRE_ACL, ""]
        return "\n".join(lines)

    def password_text(self) -> str:
        return password_file_text((a.username, mosquitto_password_hash(a.password)) for a in self.accounts.values())

    def write_files(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_private(self.directory / "passwd", self.password_text())
        _write_private(self.directory / "acl", self.acl_text())
        _write_private(self.config_path, self.config_text())

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> None:
        """Start mosquitto and wait until it accepts connections."""
        if self.running:
            return
        if _accepts_connections(HOST, self._port):
            raise BrokerStartError(f"port {self._port} on {HOST} is already in use by another process")
        self.write_files()
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [self.executable, "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + self.start_timeout
        while True:
            code = self._process.poll()
            if code is not None:
                self._close_log()
                raise BrokerStartError(f"mosquitto exited with status {code}; log tail:\n{self.log_tail()}")
            if _accepts_connections(HOST, self._port):
                return
            if time.monotonic() > deadline:
                self.kill()
                raise BrokerStartError(
                    f"mosquitto did not listen on {HOST}:{self._port} within {self.start_timeout}s; log tail:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (mosquitto then saves its database), SIGKILL if it does not exit in time."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._process = None
        self._close_log()

    def kill(self) -> None:
        """SIGKILL: a crash, without the shutdown save. For testing durability."""
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            self._process.wait()
        self._process = None
        self._close_log()

    def restart(self) -> None:
        """Graceful stop and start on the same port, keeping the persisted sessions."""
        self.stop()
        self.start()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# --- the embedded fallback (amqtt) -------------------------------------------------------


class _AccountAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """amqtt auth plugin: username and password against `$7$` hashes held in memory.

    amqtt's own FileAuthPlugin reads argon2/bcrypt hashes from a file; checking the same
    PBKDF2 hashes we give mosquitto keeps one code path and no password file on disk.
    """

    @dataclass
    class Config:
        password_hashes: dict[str, str] = field(default_factory=dict)

    async def authenticate(self, *, session: Session) -> bool:
        username: str | None = session.username
        password_hash = self.config.password_hashes.get(username) if username else None
        if password_hash is None:
            return False  # anonymous or unknown: refused (None would mean "no opinion")
        password: str = session.password or ""
        return verify_mosquitto_password(password_hash, password)


class _HubTopicPlugin(BaseTopicPlugin):  # type: ignore[misc]
    """amqtt topic plugin with mosquitto's ACL semantics (see the module docstring).

    amqtt's TopicAccessControlListPlugin takes fixed per-user topic lists, with no `%u`.
    """

    @dataclass
    class Config:
        centres: list[str] = field(default_factory=list)

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: Action | None = None
    ) -> bool:
        username: str | None = session.username if session is not None else None
        if not username or not topic:
            return False
        centre = username in self.config.centres
        if action == Action.PUBLISH:
            return topic.startswith(f"{ROOT}/{username}/") or (centre and topic.startswith(f"{ACKS_ROOT}/"))
        if action in (Action.SUBSCRIBE, Action.RECEIVE):
            if topic == f"{ACKS_ROOT}/{username}":  # its own acks, as a literal filter: never a wildcard
                return True
            # A filter that starts with the literal root can only match topics under it.
            return centre and topic.startswith(f"{ROOT}/")
        return False


class _NoRetainBroker(_AmqttBroker):  # type: ignore[misc]
    """amqtt that keeps no retained message, as Mosquitto with `retain_available false`.

    A retained publish or last will is still delivered to the clients subscribed at that
    moment; it is never stored, so a later subscriber does not get it. (Mosquitto disconnects
    the client instead: MQTT 3.1.1, which amqtt speaks, has no way to say "retain not supported".)"""

    async def retain_message(self, source_session: Session | None, topic_name: str | None,
                             data: bytes | bytearray | None, qos: int | None = None) -> None:
        if data:
            client = source_session.client_id if source_session is not None else "the broker"
            _log.warning("not retaining a message from %s on %s: this broker keeps no retained messages",
                         client, topic_name)


class EmbeddedBroker:
    """amqtt in its own thread and event loop, for when mosquitto is not installed.

    MQTT 3.1.1 only; nothing is persisted across a restart, and nothing retained is kept
    (`_NoRetainBroker`), as on Mosquitto.
    """

    mqtt5 = False

    def __init__(
        self, accounts: Iterable[BrokerAccount], *, port: int | None = None, start_timeout: float = 10.0
    ) -> None:
        self.accounts = _accounts_by_name(accounts)
        self._port = port if port is not None else _free_port()
        self.start_timeout = start_timeout
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        return self._port

    def config(self) -> dict[str, Any]:
        """amqtt broker config: our two plugins only (amqtt's defaults allow anonymous)."""
        hashes = {name: mosquitto_password_hash(a.password) for name, a in self.accounts.items()}
        centres = [name for name, a in self.accounts.items() if a.role == "centre"]
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{HOST}:{self._port}"}},
            "plugins": {
                f"{__name__}._AccountAuthPlugin": {"password_hashes": hashes},
                f"{__name__}._HubTopicPlugin": {"centres": centres},
            },
        }

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name=f"amqtt-{self._port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.start_timeout):
            raise BrokerStartError(f"embedded broker did not start within {self.start_timeout}s")
        if self._error is not None:
            self._thread.join(self.start_timeout)
            raise BrokerStartError(f"embedded broker failed to start on {HOST}:{self._port}: {self._error}") from (
                self._error
            )

    def stop(self, timeout: float = 10.0) -> None:
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"embedded broker did not stop within {timeout}s")
        self._thread = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()
            self._loop = None

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        try:
            broker = _NoRetainBroker(self.config())  # created on this loop: it binds to the running loop
            await broker.start()
        except Exception as e:  # reported to start(), in the caller's thread
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            await broker.shutdown()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_broker(
    directory: Path | str, accounts: Iterable[BrokerAccount], port: int | None = None, *, prefer: str = "auto"
) -> Mosquitto | EmbeddedBroker:
    """Start a broker. `prefer`: "auto" (mosquitto if installed, else the embedded amqtt broker,
    MQTT 3.1.1 only), "mosquitto" (FileNotFoundError if it is not installed) or "embedded"."""
    if prefer not in ("auto", "mosquitto", "embedded"):
        raise ValueError(f"unknown broker {prefer!r}: expected 'auto', 'mosquitto' or 'embedded'")
    accounts = list(accounts)
    broker: Mosquitto | EmbeddedBroker
    if prefer == "mosquitto" or (prefer == "auto" and find_mosquitto() is not None):
        broker = Mosquitto(directory, accounts, port=port)
    else:
        broker = EmbeddedBroker(accounts, port=port)
    broker.start()
    return broker
