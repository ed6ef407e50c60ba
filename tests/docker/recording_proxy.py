"""A Docker API proxy for tests: it forwards every byte between clients and the engine's socket, and keeps what the
clients sent, so that a test can read the exact container configuration an executor asked for (Podman's own
inspection leaves out what it ignores, such as device requests). It can also hold container creations until a number
of those that ask for GPUs have arrived, so that a test knows those executions were all under way at once."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

CREATE = b"/containers/create"
GPU_REQUEST = b'"DeviceIDs"'  # in the body of a creation that asks for GPUs


class RecordingProxy:
    def __init__(self, upstream: str, path: Path, *, hold_creates: int = 0, hold_timeout: float = 30) -> None:
        self.upstream = upstream.removeprefix("unix://")
        self.path = path
        self.hold_creates = hold_creates
        self.hold_timeout = hold_timeout
        self._sent: list[bytearray] = []
        self._lock = threading.Lock()
        self._creates_seen = 0
        self._released = threading.Event()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sockets: list[socket.socket] = []
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def start(self) -> RecordingProxy:
        self._server.bind(str(self.path))
        self._server.listen(64)
        self._thread = threading.Thread(target=self._accept, daemon=True, name="docker-proxy")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            engine.connect(self.upstream)
            sent = bytearray()
            with self._lock:
                self._sent.append(sent)
                self._sockets += [client, engine]
            threading.Thread(target=self._pump, args=(client, engine, sent), daemon=True).start()
            threading.Thread(target=self._pump, args=(engine, client, None), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, record: bytearray | None) -> None:
        try:
            while chunk := source.recv(65536):
                if record is not None:
                    if GPU_REQUEST in chunk:
                        self._hold()
                    with self._lock:
                        record += chunk
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _hold(self) -> None:
        with self._lock:
            self._creates_seen += 1
            if self._creates_seen >= self.hold_creates:
                self._released.set()
        self._released.wait(self.hold_timeout)

    def creates(self) -> list[dict[str, Any]]:
        """The bodies of the container creations clients asked for, in the order they were sent on each
        connection."""
        with self._lock:
            streams = [bytes(sent) for sent in self._sent]
        bodies = []
        for stream in streams:
            for line, body in _requests(stream):
                if line.startswith(b"POST ") and CREATE in line:
                    bodies.append(json.loads(body))
        return bodies


def _requests(stream: bytes) -> list[tuple[bytes, bytes]]:
    """The (request line, body) of each HTTP/1.1 request in a client's byte stream (bodies with Content-Length)."""
    requests = []
    position = 0
    while True:
        end = stream.find(b"\r\n\r\n", position)
        if end < 0:
            return requests
        head = stream[position:end].split(b"\r\n")
        length = 0
        for header in head[1:]:
            name, _, value = header.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
            if name.strip().lower() == b"transfer-encoding":
                return requests  # not sent by the Docker SDK for the calls tests look at
        body = stream[end + 4 : end + 4 + length]
        requests.append((head[0], body))
        position = end + 4 + length
