"""A local HTTP server that records what it was asked (for the WebAssembly HTTP tests, unit and end to end)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BIG = 1024 * 1024


class QuietHandler(BaseHTTPRequestHandler):
    """A test server's handler: no access log, and answers written whole (a client that stops reading is let go)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass  # the client stopped reading, as it may


class Server:
    """A local HTTP server that records what it was asked."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.release = threading.Event()
        server = self

        class Handler(QuietHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append((self.command, self.path, dict(self.headers.items()), body))
                path = urlsplit(self.path)
                if path.path == "/hello":
                    self._send(200, b"hello from the server\n", {"X-Served-By": "test"})
                elif path.path == "/echo":
                    seen = f"{self.command} {body.decode()} {self.headers.get('X-Test', '-')}"
                    self._send(201, seen.encode())
                elif path.path == "/big":
                    self._send(200, b"x" * BIG)
                elif path.path == "/slow":
                    server.release.wait(10)
                    self._send(200, b"late")
                elif path.path == "/redirect":
                    self._send(302, b"", {"Location": parse_qs(path.query)["to"][0]})
                else:
                    self._send(404, b"no such page")

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    @classmethod
    @contextlib.contextmanager
    def started(cls) -> Iterator[Server]:
        running = cls()
        running.thread.start()
        try:
            yield running
        finally:
            running.release.set()
            running.httpd.shutdown()
            running.httpd.server_close()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"
