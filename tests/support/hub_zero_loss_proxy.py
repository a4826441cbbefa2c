"""A TCP relay between the hub and the broker that can cut the network: while partitioned it
swallows whatever either side sends (as a dead router would: the sender's TCP stack thinks
it went), and `heal` drops the old connections so the hub must dial again."""

import contextlib
import socket
import threading
from types import TracebackType
from typing import Self


class NetworkCut:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.host, self.port = "127.0.0.1", int(self._listener.getsockname()[1])
        self.partitioned = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="network-cut", daemon=True)

    def partition(self) -> None:
        self.partitioned.set()

    def heal(self) -> None:
        """Close every connection made so far (what was swallowed is gone) and relay new ones again."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
            self.partitioned.clear()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if not self.partitioned.is_set():
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._closed.set()
        self._listener.close()
        self.heal()
        self._thread.join(2)
